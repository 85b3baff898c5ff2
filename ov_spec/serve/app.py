"""The OpenAI-compatible routes (FastAPI) over a :class:`Service`: pipelines, queue, tokenizer, metrics.

Routes: ``POST /v1/chat/completions``, ``POST /v1/completions`` (both with SSE streaming),
``GET /v1/models``, ``GET /health`` (200 only once every pipeline is compiled), ``GET /metrics``
(Prometheus). The same app runs under uvicorn (``python -m ov_spec.serve``) and as the ingress of
each Ray Serve replica (:mod:`ov_spec.serve.ray`).

A request is validated, tokenized (chat template applied) and checked against the context here,
on the event loop, before it queues; only token ids reach a worker. A streamed response starts
once the first text is ready, so an error the runtime finds is still a plain JSON error.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ov_spec.errors import UserError
from ov_spec.manifest import Manifest
from ov_spec.serve import schemas
from ov_spec.serve.errors import FRAMEWORK_TYPES, APIError, bad_request, internal_error
from ov_spec.serve.metrics import CONTENT_TYPE, ServerMetrics
from ov_spec.serve.workers import Job, QueueFull, WorkerPool

log = logging.getLogger("ov_spec.serve")

DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: far more than any prompt that fits a context
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_MAX_QUEUE = 64
API_KEY_ENV = "OV_SPEC_API_KEY"
ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics")


@dataclass
class ServeConfig:
    """What ``python -m ov_spec.serve`` (or a Ray replica) serves, and its limits."""

    folder: Path
    devices: str | None = None
    device_overrides: list[str] = field(default_factory=list)
    property_overrides: list[str] = field(default_factory=list)
    rollback: str | None = None  # None: the runtime's default
    separate_decode: bool | None = None  # see ov_spec.load (None: the runtime's default)
    workers: int = 1
    max_queue: int = DEFAULT_MAX_QUEUE
    timeout_s: float = DEFAULT_TIMEOUT_S
    api_key: str | None = None
    model_name: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


class Service:
    """The pipelines behind the routes: a worker pool, a tokenizer for the front end, metrics."""

    def __init__(self, config: ServeConfig) -> None:
        import openvino as ov

        from ov_spec.runtime.tokenizer import Tokenizer

        self.config = config
        self.manifest = Manifest.read(config.folder)
        # The event loop's own tokenizer (OpenVINO compiled models are not shared across threads).
        self.tokenizer = Tokenizer(
            ov.Core(), Path(config.folder) / self.manifest.tokenizer["path"], self.manifest.tokenizer
        )
        self.model_name = config.model_name or Path(config.folder).resolve().name
        self.max_context = self.manifest.max_context
        self.created = schemas.now()
        self.metrics = ServerMetrics()
        self._calibration = threading.Lock()
        self.pool = WorkerPool(self._load, config.workers, config.max_queue)
        self.pool.on_result = self._count
        self.pool.on_dropped = lambda job: self.metrics.count_cancelled()

    def _load(self) -> Any:
        """One pipeline, compiled and calibrated (runs in its worker's thread)."""
        import ov_spec

        c = self.config
        extra = {"rollback": c.rollback} if c.rollback else {}
        pipe = ov_spec.load(
            c.folder,
            devices=c.devices,
            device_overrides=c.device_overrides,
            property_overrides=c.property_overrides,
            separate_decode=c.separate_decode,
            **extra,
        )
        calibrate = getattr(pipe, "calibrate", None)  # the step costs draft_tokens="auto" needs
        if calibrate is not None:
            # One worker at a time: timings taken side by side would measure the contention, and
            # the first writes the disk cache that the others then read.
            with self._calibration:
                calibrate()
        return pipe

    def _count(self, job: Job, result: Any) -> None:
        self.metrics.count_generation(result, job.queue_s, job.finished - job.submitted)

    def start(self) -> None:
        self.pool.start()

    def close(self) -> None:
        self.pool.close()

    # -- request preparation (event loop) -----------------------------------------------------
    def check_model(self, name: str | None) -> None:
        if name is not None and name != self.model_name:
            raise APIError(
                404,
                f"model {name!r} does not exist; this server serves {self.model_name!r} (GET /v1/models)",
                code="model_not_found",
                param="model",
            )

    def encode(self, text: str) -> list[int]:
        if not text.strip():
            raise bad_request("the prompt is empty; send some text", param="prompt")
        ids = self.tokenizer.encode(text)
        if not ids:
            raise bad_request("the prompt is empty after tokenization; send some text", param="prompt")
        return ids

    def prompt_ids(self, prompt: str | list[str] | list[int]) -> list[int]:
        if isinstance(prompt, str):
            return self.encode(prompt)
        if prompt and isinstance(prompt[0], str):
            return self.encode(prompt[0])
        ids = [int(t) for t in prompt]
        if not ids:
            raise bad_request("the prompt is empty; send some text", param="prompt")
        return ids

    def chat_ids(self, messages: list[dict[str, str]]) -> list[int]:
        try:
            text = self.tokenizer.apply_chat_template(messages)
        except UserError as err:
            raise bad_request(str(err), param="messages") from None
        except Exception as err:  # the template itself refused (e.g. roles out of order)
            raise bad_request(
                f"the model's chat template rejected the messages: {err}", param="messages"
            ) from None
        return self.encode(text)

    def max_tokens(self, requested: int | None, n_prompt: int, default: int | None) -> int:
        """``max_tokens`` checked against the context: prompt + max_tokens must fit."""
        room = self.max_context - n_prompt
        wanted = requested if requested is not None else (default if default is not None else room)
        if wanted > room or wanted < 1:
            raise APIError(
                400,
                f"the prompt ({n_prompt} tokens) + max_tokens ({wanted}) exceeds the model's context of "
                f"{self.max_context} tokens; shorten the prompt or lower max_tokens",
                code="context_length_exceeded",
                param="max_tokens" if requested is not None else "messages",
            )
        return wanted

    def authorize(self, request: Request) -> None:
        key = self.config.api_key
        if not key:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        # compare_digest: the time taken does not depend on how much of the key matched.
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise APIError(
                401,
                "missing or wrong API key; send the header `Authorization: Bearer KEY`",
                code="invalid_api_key",
            )

    async def read_body(self, request: Request) -> bytes:
        limit = self.config.max_body_bytes
        too_big = APIError(
            413, f"the request body exceeds {limit} bytes; send a shorter prompt", code="request_too_large"
        )
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise too_big
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    # -- running a request ---------------------------------------------------------------------
    async def respond(
        self, request: Request, chat: bool, prompt: list[int], options: dict[str, Any], req: Any
    ) -> Response:
        loop = asyncio.get_running_loop()
        client = req.user or (request.client.host if request.client else "")
        job = Job(prompt=prompt, options=options, client=client, loop=loop)
        try:
            self.pool.submit(job)
        except QueueFull:
            wait = self.pool.retry_after()
            raise APIError(
                429,
                f"the server is busy ({self.config.max_queue} requests queued); retry after {wait} s",
                type="rate_limit_error",
                code="queue_full",
                headers={"Retry-After": str(wait)},
            ) from None
        deadline = loop.time() + self.config.timeout_s
        watcher = asyncio.create_task(self._watch_disconnect(request, job))
        try:
            first = await self._next(job, deadline)
        except BaseException:
            watcher.cancel()
            self.pool.withdraw(job, "disconnect")
            raise
        if not req.stream or first[0] != "chunk":
            try:
                return await self._whole(chat, job, first, deadline, req)
            finally:
                watcher.cancel()
                self.pool.withdraw(job, "disconnect")  # no-op once finished
        watcher.cancel()  # StreamingResponse watches for the disconnect from here on
        stream = self._stream(chat, job, first, deadline, req)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)

    async def _watch_disconnect(self, request: Request, job: Job) -> None:
        """Cancel the job when the client goes away (the body has been read, so only that can come)."""
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                self.pool.withdraw(job, "disconnect")
                return
            await asyncio.sleep(0.01)

    async def _next(self, job: Job, deadline: float) -> tuple[str, Any]:
        """The job's next chunk / done / error event ("start" is recorded, not returned)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                kind, value = await asyncio.wait_for(job.events.get(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                self.pool.withdraw(job, "timeout")
                raise APIError(
                    504,
                    f"the request timed out after {self.config.timeout_s:g} s (queue wait + generation); "
                    "lower max_tokens or ask the operator to raise --timeout",
                    type="timeout_error",
                    code="timeout",
                ) from None
            if kind == "start":
                continue
            if kind == "error":
                raise _job_error(value)
            return kind, value

    async def _whole(
        self, chat: bool, job: Job, event: tuple[str, Any], deadline: float, req: Any
    ) -> Response:
        """Wait for the result and answer with one JSON object (also a stream that produced no text)."""
        while event[0] != "done":
            event = await self._next(job, deadline)
        result = event[1]
        rid, created = schemas.new_id("chatcmpl" if chat else "cmpl"), schemas.now()
        finish = schemas.FINISH_REASONS.get(result.finish_reason, result.finish_reason)
        use = schemas.usage(len(result.prompt_token_ids), len(result.token_ids))
        if req.stream:  # nothing was streamed yet: send the whole answer as a short stream
            return StreamingResponse(
                self._replay(chat, rid, created, result.text, finish, use, req, job, result),
                media_type="text/event-stream",
            )
        body = schemas.completion_body(
            chat, rid, created, self.model_name, result.text, finish, use, {"ov_spec": _stats(job, result)}
        )
        return JSONResponse(body)

    async def _replay(
        self,
        chat: bool,
        rid: str,
        created: int,
        text: str,
        finish: str,
        use: dict,
        req: Any,
        job: Job,
        result: Any,
    ) -> AsyncIterator[str]:
        if chat:
            yield _sse(schemas.chunk_body(chat, rid, created, self.model_name, None, role=True))
        if text:
            yield _sse(schemas.chunk_body(chat, rid, created, self.model_name, text))
        for line in self._closing(chat, rid, created, finish, use, req, job, result):
            yield line

    async def _stream(
        self, chat: bool, job: Job, first: tuple[str, Any], deadline: float, req: Any
    ) -> AsyncIterator[str]:
        """SSE in OpenAI's chunk format; the client leaving cancels the generation (``finally``)."""
        rid, created, name = schemas.new_id("chatcmpl" if chat else "cmpl"), schemas.now(), self.model_name
        try:
            if chat:
                yield _sse(schemas.chunk_body(chat, rid, created, name, None, role=True))
            event = first
            while event[0] == "chunk":
                yield _sse(schemas.chunk_body(chat, rid, created, name, event[1]))
                try:
                    event = await self._next(job, deadline)
                except APIError as err:
                    yield _sse(err.body())
                    yield "data: [DONE]\n\n"
                    return
            result = event[1]
            finish = schemas.FINISH_REASONS.get(result.finish_reason, result.finish_reason)
            use = schemas.usage(len(result.prompt_token_ids), len(result.token_ids))
            for line in self._closing(chat, rid, created, finish, use, req, job, result):
                yield line
        finally:
            self.pool.withdraw(job, "disconnect")  # no-op once the job finished

    def _closing(
        self, chat: bool, rid: str, created: int, finish: str, use: dict, req: Any, job: Job, result: Any
    ) -> list[str]:
        """The chunk with finish_reason (usage attached unless asked for separately), then [DONE]."""
        last = schemas.chunk_body(chat, rid, created, self.model_name, None, finish=finish)
        last["ov_spec"] = _stats(job, result)
        separate = bool(req.stream_options and req.stream_options.include_usage)
        if not separate:
            last["usage"] = use  # clients that did not ask for the usage chunk still get the counts
        lines = [_sse(last)]
        if separate:  # OpenAI's form: one more chunk with no choices
            tail = {k: last[k] for k in ("id", "object", "created", "model")}
            lines.append(_sse({**tail, "choices": [], "usage": use}))
        return [*lines, "data: [DONE]\n\n"]


def _job_error(value: Any) -> APIError:
    if value is None:
        return APIError(503, "the request was cancelled", type="server_error", code="cancelled")
    if isinstance(value, UserError):
        return bad_request(str(value))
    return internal_error()


def _stats(job: Job, result: Any) -> dict[str, Any]:
    """ov_spec's own figures for one request (an extra field that OpenAI clients ignore)."""
    m = result.metrics
    return {
        "acceptance_rate": round(m.acceptance_rate, 4),
        "tokens_per_pass": round(m.tokens_per_pass, 4),
        "tokens_per_s": round(m.tokens_per_s, 2),
        "ttft_s": round(m.ttft_s, 5),
        "queue_s": round(job.queue_s, 5),
        "worker": job.worker,
    }


def _sse(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _error_response(err: APIError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


class _CountRequests:
    """ASGI middleware counting responses by route and status (pure ASGI: streams pass untouched)."""

    def __init__(self, app: Any, metrics: ServerMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = scope.get("path", "")
            self.metrics.count_request(path if path in ROUTES else "other", status)


def create_app(service: Service) -> FastAPI:
    """The FastAPI app serving ``service``; starting it (lifespan) starts loading the pipelines."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        yield
        service.close()

    app = FastAPI(title="ov_spec", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.service = service

    @app.exception_handler(APIError)
    async def api_error(request: Request, err: APIError) -> JSONResponse:
        return _error_response(err)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        kind = FRAMEWORK_TYPES.get(err.status_code, "invalid_request_error")
        message = f"{request.method} {request.url.path}: {err.detail}"
        return _error_response(APIError(err.status_code, message, type=kind))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        return _error_response(bad_request(f"invalid request: {err.errors()[0].get('msg', err)}"))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return _error_response(internal_error())

    app.add_middleware(_CountRequests, metrics=service.metrics)

    def authorize(request: Request) -> None:
        service.authorize(request)

    @app.post("/v1/completions", dependencies=[Depends(authorize)])
    async def completions(request: Request) -> Response:
        req = schemas.parse(schemas.CompletionRequest, await service.read_body(request))
        service.check_model(req.model)
        ids = service.prompt_ids(req.prompt)
        options = req.generation_options()
        options["max_new_tokens"] = service.max_tokens(
            req.max_tokens, len(ids), schemas.DEFAULT_COMPLETION_MAX_TOKENS
        )
        return await service.respond(request, False, ids, options, req)

    @app.post("/v1/chat/completions", dependencies=[Depends(authorize)])
    async def chat_completions(request: Request) -> Response:
        req = schemas.parse(schemas.ChatRequest, await service.read_body(request))
        service.check_model(req.model)
        ids = service.chat_ids(req.template_messages())
        options = req.generation_options()
        options["max_new_tokens"] = service.max_tokens(req.max_tokens, len(ids), None)
        return await service.respond(request, True, ids, options, req)

    def model_card() -> dict[str, Any]:
        return {
            "id": service.model_name,
            "object": "model",
            "created": service.created,
            "owned_by": "ov_spec",
            "max_model_len": service.max_context,
            "models": service.manifest.names(),
        }

    @app.get("/v1/models", dependencies=[Depends(authorize)])
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{name:path}", dependencies=[Depends(authorize)])
    async def get_model(name: str) -> dict[str, Any]:
        service.check_model(name)
        return model_card()

    @app.get("/health")
    async def health() -> JSONResponse:
        pool = service.pool
        status = "ok" if pool.ready else ("error" if pool.load_error is not None else "loading")
        body = {"status": status, "workers": pool.counts(), "queue_depth": len(pool.queue)}
        return JSONResponse(body, status_code=200 if status == "ok" else 503)

    @app.get("/metrics", dependencies=[Depends(authorize)])
    async def metrics() -> Response:
        text = service.metrics.render(len(service.pool.queue), service.pool.counts())
        return Response(text, media_type=CONTENT_TYPE)

    return app
