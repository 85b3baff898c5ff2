"""Request bodies of the OpenAI routes, validated with pydantic, and the responses they get.

Unknown fields are rejected (a typo such as ``num_assistant_token`` must not be silently ignored);
OpenAI fields this server does not implement are accepted only at their neutral value. The
speculative options come as extra body fields (``extra_body`` in the openai client): OpenVINO
Model Server's names (``num_assistant_tokens``, ``assistant_confidence_threshold``) and ov_spec's
own (``draft_tokens``, ``models``, ``ngram``, ``adaptive``). Left out, each is the pipeline's default.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ov_spec.serve.errors import APIError, bad_request

# OpenAI's own default sampling temperature (clients that omit it expect sampling, not greedy).
DEFAULT_TEMPERATURE = 1.0
# OpenAI's default max_tokens for the legacy completions route; chat defaults to the context left.
DEFAULT_COMPLETION_MAX_TOKENS = 16
MAX_STOP_STRINGS = 4  # as OpenAI


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class _Request(BaseModel):
    """Fields shared by both routes."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    temperature: float = Field(DEFAULT_TEMPERATURE, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)  # vLLM's extension; 0 = off
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = 1
    user: str | None = None  # also the fairness key of the queue
    # Accepted at their neutral values only.
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[str, float] | None = None
    # Speculative decoding, OpenVINO Model Server's names ...
    num_assistant_tokens: int | None = Field(None, ge=1)
    assistant_confidence_threshold: float | None = Field(None, ge=0.0, lt=1.0)
    # ... and ov_spec's own (passed to SpeculativePipeline.generate unchanged).
    draft_tokens: int | list[int] | str | None = None
    models: list[str] | None = None
    ngram: bool | None = None
    adaptive: bool | None = None

    def check_common(self) -> None:
        """Reject what validates as JSON but is not supported (one line naming the fix)."""
        if self.n != 1:
            raise bad_request(f"only n=1 is supported, got n={self.n}; send separate requests", param="n")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise bad_request(f"max_tokens must be at least 1, got {self.max_tokens}", param="max_tokens")
        stops = self.stop_list()
        if len(stops) > MAX_STOP_STRINGS or any(not s for s in stops):
            raise bad_request(f"stop takes up to {MAX_STOP_STRINGS} non-empty strings", param="stop")
        if self.presence_penalty or self.frequency_penalty or self.logit_bias:
            raise bad_request(
                "presence_penalty, frequency_penalty and logit_bias are not supported (they would change "
                "the distribution speculative sampling preserves); leave them out",
                param="presence_penalty",
            )
        if self.num_assistant_tokens is not None and self.draft_tokens is not None:
            raise bad_request(
                "num_assistant_tokens and draft_tokens both set the draft length; send one",
                param="draft_tokens",
            )

    def stop_list(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])

    def generation_options(self) -> dict[str, Any]:
        """Keyword options for ``SpeculativePipeline.generate`` (max_new_tokens is added later)."""
        options: dict[str, Any] = {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k}
        if self.seed is not None:
            options["seed"] = self.seed
        stops = self.stop_list()
        if stops:
            options["stop"] = stops
        draft = self.num_assistant_tokens if self.num_assistant_tokens is not None else self.draft_tokens
        if draft is not None:
            options["draft_tokens"] = draft
        if self.assistant_confidence_threshold is not None:
            options["min_confidence"] = self.assistant_confidence_threshold
        for name in ("models", "ngram", "adaptive"):
            value = getattr(self, name)
            if value is not None:
                options[name] = value
        return options


class CompletionRequest(_Request):
    """``POST /v1/completions``."""

    prompt: str | list[str] | list[int]
    echo: bool = False
    logprobs: int | None = None
    best_of: int | None = None
    suffix: str | None = None

    def check(self) -> None:
        self.check_common()
        if self.echo or self.logprobs or (self.best_of not in (None, 1)) or self.suffix:
            raise bad_request("echo, logprobs, best_of and suffix are not supported; leave them out")
        batch = isinstance(self.prompt, list) and self.prompt and isinstance(self.prompt[0], str)
        if batch and len(self.prompt) != 1:
            raise bad_request("one prompt per request; send a batch as separate requests", param="prompt")


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart]
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatRequest(_Request):
    """``POST /v1/chat/completions``."""

    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = None  # OpenAI's newer name for max_tokens
    logprobs: bool = False
    response_format: dict[str, Any] | None = None

    def check(self) -> None:
        if self.max_completion_tokens is not None:
            if self.max_tokens is not None and self.max_tokens != self.max_completion_tokens:
                raise bad_request("max_tokens and max_completion_tokens differ; send one")
            self.max_tokens = self.max_completion_tokens
        self.check_common()
        if self.logprobs:
            raise bad_request("logprobs are not supported; leave them out", param="logprobs")
        if self.response_format and self.response_format.get("type", "text") != "text":
            raise bad_request("only response_format type 'text' is supported", param="response_format")

    def template_messages(self) -> list[dict[str, str]]:
        """Messages as the chat template expects them (``developer`` is OpenAI's new ``system``)."""
        return [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
            for m in self.messages
        ]


def parse(kind: type[_Request], body: bytes) -> Any:
    """Validate a JSON body into ``kind``; malformed JSON or a bad field is a 400 naming it."""
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise bad_request(f"the body is not valid JSON ({err.msg} at position {err.pos})") from None
    if not isinstance(raw, dict):
        raise bad_request("the body must be a JSON object")
    try:
        request = kind.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        if first["type"] == "extra_forbidden":
            message = f"unknown field {where!r}; see the server's README for the fields it accepts"
        else:
            message = f"{where}: {first['msg']}"
        raise APIError(400, message, param=where) from None
    request.check()
    return request


# --- responses --------------------------------------------------------------------------------
FINISH_REASONS = {"eos": "stop", "stop": "stop", "length": "length"}  # ov_spec -> OpenAI


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion_body(
    chat: bool, rid: str, created: int, model: str, text: str, finish: str, use: dict, extra: dict
) -> dict[str, Any]:
    """A whole (non-streamed) ``chat.completion`` or ``text_completion`` object."""
    if chat:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None}
    else:
        choice = {"index": 0, "text": text, "logprobs": None}
    choice["finish_reason"] = finish
    obj = "chat.completion" if chat else "text_completion"
    return {
        "id": rid,
        "object": obj,
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": use,
        **extra,
    }


def chunk_body(
    chat: bool,
    rid: str,
    created: int,
    model: str,
    text: str | None,
    finish: str | None = None,
    role: bool = False,
) -> dict[str, Any]:
    """One streamed chunk; ``text=None`` with ``finish`` is the closing chunk."""
    if chat:
        delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
        if text is not None and not role:
            delta["content"] = text
        choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    else:
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
    obj = "chat.completion.chunk" if chat else "text_completion"
    return {"id": rid, "object": obj, "created": created, "model": model, "choices": [choice]}
