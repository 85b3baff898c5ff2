"""The OpenAI-compatible server against the official openai client, on 127.0.0.1.

Servers run in-process (uvicorn in a thread, port 0) on the random-weight test pipeline, so the
whole module takes seconds once that pipeline is cached; the start-up error tests run the CLI as
a subprocess. Every output is compared with a direct ``pipe.generate`` on a separate pipeline.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

import uvicorn  # noqa: E402

import ov_spec  # noqa: E402
from ov_spec.errors import UserError  # noqa: E402
from ov_spec.serve.__main__ import bind  # noqa: E402
from ov_spec.serve.app import ServeConfig, Service, create_app  # noqa: E402
from ov_spec.serve.schemas import ChatRequest, parse  # noqa: E402
from ov_spec.serve.workers import FairQueue, Job, QueueFull, check_memory  # noqa: E402

KEY = "test-key-123"
MODEL = "tiny"


class LiveServer:
    """A uvicorn server on 127.0.0.1:<free port> in a thread, serving one pipeline folder."""

    def __init__(self, folder: Path, **config) -> None:
        self.service = Service(ServeConfig(folder=folder, model_name=MODEL, **config))
        self.sock = bind("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(self.service), log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not (self.server.started and self.service.pool.ready):
            assert time.monotonic() < deadline, "server did not start"
            assert self.service.pool.load_error is None, self.service.pool.load_error
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def client(self, **kw) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=self.service.config.api_key or "none", **kw)

    def async_client(self, **kw) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=self.url + "/v1", api_key=self.service.config.api_key or "none", **kw
        )

    def metrics(self) -> dict[str, float]:
        """``name{labels}`` -> value, parsed by prometheus_client's own parser when it is installed."""
        headers = (
            {"Authorization": f"Bearer {self.service.config.api_key}"} if self.service.config.api_key else {}
        )
        text = httpx.get(self.url + "/metrics", headers=headers).text
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ModuleNotFoundError:
            return {
                line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line[:1] != "#"
            }
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return out


# Text is compared with the runtime's under the exact rollback: under the default (mask) logits
# move by rounding with the cache layout, which depends on each pipeline's history of draft
# lengths (measured timings steer them), so two pipelines may resolve a near-tie differently.
STRICT = "trim"


@pytest.fixture(scope="module")
def pipe(random_pipeline):
    """The independent reference: the same folder, loaded directly."""
    return ov_spec.load(random_pipeline, rollback=STRICT)


@pytest.fixture(scope="module")
def server(random_pipeline):
    """Two workers, an API key and a small body limit."""
    with LiveServer(random_pipeline, workers=2, api_key=KEY, max_body_bytes=16384, rollback=STRICT) as live:
        yield live


def direct(pipe, prompt, **options):
    """``pipe.generate`` as the server runs it: with a streamer, so text is decoded as it streams."""
    return pipe.generate(prompt, streamer=lambda chunk: None, **options)


PROMPTS = ["def f(x):", "import os\n", "class A:", "Once upon a time", "for i in range(10):", "x = [1, 2"]


# --- completions and chat, streamed and not ------------------------------------------------------
@pytest.mark.parametrize("prompt", PROMPTS[:3])
def test_completion_equals_generate(server, pipe, prompt):
    ref = direct(pipe, prompt, max_new_tokens=24)
    out = server.client().completions.create(model=MODEL, prompt=prompt, max_tokens=24, temperature=0)
    assert out.choices[0].text == ref.text
    assert out.choices[0].finish_reason == {"length": "length", "eos": "stop"}[ref.finish_reason]
    assert out.usage.prompt_tokens == len(pipe.tokenizer.encode(prompt)) == len(ref.prompt_token_ids)
    assert out.usage.completion_tokens == len(ref.token_ids)
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens


def test_completion_stream_equals_generate(server, pipe):
    ref = direct(pipe, "import os\n", max_new_tokens=32)
    stream = server.client().completions.create(
        model=MODEL, prompt="import os\n", max_tokens=32, temperature=0, stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks) == ref.text
    assert len(chunks) > 2  # really streamed
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].choices[0].finish_reason == "length"
    assert chunks[-1].usage.prompt_tokens == len(ref.prompt_token_ids)
    assert chunks[-1].usage.completion_tokens == len(ref.token_ids) == 32


def test_chat_equals_generate(server, pipe):
    ref = direct(pipe, "hello", chat=True, max_new_tokens=20)
    out = server.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hello"}], max_tokens=20, temperature=0
    )
    assert out.choices[0].message.role == "assistant"
    assert out.choices[0].message.content == ref.text
    assert out.usage.prompt_tokens == len(ref.prompt_token_ids)
    assert out.usage.completion_tokens == len(ref.token_ids)


def test_chat_stream_with_history_equals_generate(server, pipe):
    messages = [
        {"role": "system", "content": "You write Python."},
        {"role": "user", "content": "A parser?"},
        {"role": "assistant", "content": "def parse(s):"},
        {"role": "user", "content": "Shorter."},
    ]
    ids = pipe.tokenizer.encode(pipe.tokenizer.apply_chat_template(messages))
    ref = direct(pipe, ids, max_new_tokens=24)
    stream = server.client().chat.completions.create(
        model=MODEL,
        messages=messages,
        max_tokens=24,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ref.text
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == len(ids)  # OpenAI's usage chunk
    assert chunks[-1].usage.completion_tokens == 24


def test_sampling_seed_and_stop_pass_through(server, pipe):
    ref = direct(pipe, "def f(x):", max_new_tokens=24, temperature=0.8, top_p=0.9, seed=7)
    out = server.client().completions.create(
        model=MODEL, prompt="def f(x):", max_tokens=24, temperature=0.8, top_p=0.9, seed=7
    )
    assert out.choices[0].text == ref.text
    greedy = direct(pipe, "class A:", max_new_tokens=32).text
    stop = greedy[10:13]
    ref = direct(pipe, "class A:", max_new_tokens=32, stop=[stop])
    out = server.client().completions.create(
        model=MODEL, prompt="class A:", max_tokens=32, temperature=0, stop=stop
    )
    assert ref.finish_reason == "stop" and out.choices[0].finish_reason == "stop"
    assert out.choices[0].text == ref.text
    assert stop not in ref.text and greedy.startswith(ref.text)


def test_speculative_options(server, pipe):
    client = server.client()
    base = dict(model=MODEL, prompt="def f(x):", max_tokens=24, temperature=0)
    greedy = direct(pipe, "def f(x):", max_new_tokens=24, use_draft=False).text
    target_only = client.completions.create(**base, extra_body={"models": ["target"]})
    assert target_only.choices[0].text == greedy
    assert target_only.model_extra["ov_spec"]["tokens_per_pass"] == 1.0  # nothing drafted
    for extra in (
        {"num_assistant_tokens": 2},
        {"draft_tokens": 8, "ngram": True},
        {"assistant_confidence_threshold": 0.3},
    ):
        out = client.completions.create(**base, extra_body=extra)
        assert out.choices[0].text == greedy, extra  # greedy speculative decoding is lossless
    # The options reach the runtime, which validates them: a 400 naming the problem.
    with pytest.raises(openai.BadRequestError, match="verifying level"):
        client.completions.create(**base, extra_body={"draft_tokens": [2, 2, 2]})
    with pytest.raises(openai.BadRequestError, match="no model named 'nope'"):
        client.completions.create(**base, extra_body={"models": ["target", "nope"]})
    with pytest.raises(openai.BadRequestError, match="both set the draft length"):
        client.completions.create(**base, extra_body={"num_assistant_tokens": 2, "draft_tokens": 3})


def test_option_names_map_to_the_runtime():
    req = ChatRequest.model_validate(
        {
            "messages": [{"role": "user", "content": "x"}],
            "num_assistant_tokens": 3,
            "assistant_confidence_threshold": 0.4,
            "models": ["target", "draft1"],
            "seed": 5,
            "stop": "END",
        }
    )
    assert req.generation_options() == {
        "temperature": 1.0,  # OpenAI's default
        "top_p": 1.0,
        "top_k": 0,
        "seed": 5,
        "stop": ["END"],
        "draft_tokens": 3,
        "min_confidence": 0.4,
        "models": ["target", "draft1"],
    }
    auto = ChatRequest.model_validate(
        {"messages": [{"role": "user", "content": "x"}], "draft_tokens": "auto"}
    )
    assert auto.generation_options()["draft_tokens"] == "auto"  # passed through unchanged


def test_models_health_metrics(server):
    models = server.client().models.list()
    assert [m.id for m in models.data] == [MODEL]
    health = httpx.get(server.url + "/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    before = server.metrics()
    out = server.client().completions.create(model=MODEL, prompt="x = [1, 2", max_tokens=10, temperature=0)
    after = server.metrics()
    assert after["ov_spec_generated_tokens_total"] - before["ov_spec_generated_tokens_total"] == 10
    assert (
        after["ov_spec_prompt_tokens_total"] - before["ov_spec_prompt_tokens_total"]
        == out.usage.prompt_tokens
    )
    route = 'ov_spec_requests_total{route="/v1/completions",status="200"}'
    assert after[route] - before.get(route, 0) == 1
    assert after["ov_spec_time_to_first_token_seconds_count"] > before.get(
        "ov_spec_time_to_first_token_seconds_count", 0
    )
    assert 0 <= after['ov_spec_acceptance_rate{model="target"}'] <= 1
    assert (
        after['ov_spec_drafted_tokens_total{model="target"}']
        >= after['ov_spec_accepted_tokens_total{model="target"}']
    )
    assert after["ov_spec_queue_depth"] == 0 and after['ov_spec_workers{state="idle"}'] == 2
    assert after["ov_spec_tokens_per_second"] > 0


def test_health_is_503_until_loaded(random_pipeline):
    from fastapi.testclient import TestClient

    service = Service(ServeConfig(folder=random_pipeline))
    client = TestClient(create_app(service))  # no `with`: lifespan not run, nothing loaded
    r = client.get("/health")
    assert r.status_code == 503 and r.json()["status"] == "loading"


# --- concurrency ---------------------------------------------------------------------------------
def test_32_concurrent_streams_on_2_workers(server, pipe):
    prompts = [f"{PROMPTS[i % len(PROMPTS)]} # {i}" for i in range(32)]
    refs = [direct(pipe, p, max_new_tokens=16).text for p in prompts]
    client = server.async_client(max_retries=0)

    async def one(prompt):
        stream = await client.completions.create(
            model=MODEL, prompt=prompt, max_tokens=16, temperature=0, stream=True
        )
        return "".join([c.choices[0].text async for c in stream])

    async def run():
        return await asyncio.gather(*(one(p) for p in prompts))

    first = len(server.service.pool.history)
    outs = asyncio.run(run())
    assert outs == refs  # none lost, none mixed up
    jobs = list(server.service.pool.history)[first:]
    assert len(jobs) == 32 and {j.worker for j in jobs} == {0, 1}  # both workers served
    assert max(j.queue_s for j in jobs) > 0  # requests really waited for each other


def test_full_queue_answers_429(random_pipeline, pipe):
    with LiveServer(random_pipeline, workers=2, max_queue=2, rollback=STRICT) as live:
        client = live.async_client(max_retries=0)  # the client would otherwise retry 429s itself
        prompts = [f"def f{i}(x):" for i in range(32)]

        async def one(prompt):
            try:
                out = await client.completions.create(
                    model=MODEL, prompt=prompt, max_tokens=200, temperature=0
                )
                return prompt, out.choices[0].text
            except openai.RateLimitError as err:
                assert int(err.response.headers["retry-after"]) >= 1
                assert err.body["code"] == "queue_full"
                return prompt, None

        async def run():
            return await asyncio.gather(*(one(p) for p in prompts))

        results = asyncio.run(run())
        ok = [(p, t) for p, t in results if t is not None]
        rejected = len(results) - len(ok)
        assert rejected > 0 and len(ok) >= 4  # 2 running + 2 queued are always served
        assert live.metrics()["ov_spec_rejected_total"] == rejected
        for p, t in ok[:4]:
            assert t == direct(pipe, p, max_new_tokens=200).text
        assert live.client().completions.create(model=MODEL, prompt="x", max_tokens=4).usage.completion_tokens


def test_disconnect_frees_the_worker(random_pipeline):
    with LiveServer(random_pipeline, workers=1) as live:
        body = {"model": MODEL, "prompt": "def f(x):", "max_tokens": 1000, "temperature": 0, "stream": True}
        with httpx.stream("POST", live.url + "/v1/completions", json=body, timeout=30) as r:
            events = 0
            for line in r.iter_lines():
                events += line.startswith("data: ")
                if events == 3:
                    break  # leaving the block closes the connection mid-stream
        out = live.client().completions.create(model=MODEL, prompt="class A:", max_tokens=8, temperature=0)
        assert out.usage.completion_tokens == 8
        gone, after = list(live.service.pool.history)[-2:]
        assert gone.finish_reason == "cancelled" and gone.cancel_reason == "disconnect"
        assert gone.steps_after_cancel <= 1  # stopped within one iteration of the disconnect
        assert after.started >= gone.finished  # the next request ran on the freed worker


def test_disconnect_cancels_whole_and_queued_requests(random_pipeline):
    with LiveServer(random_pipeline, workers=1) as live:
        body = {"model": MODEL, "prompt": "def f(x):", "max_tokens": 1000, "temperature": 0}

        async def leave_early():
            async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
                pool = live.service.pool
                running = asyncio.create_task(client.post("/v1/completions", json=body))  # not streamed
                while not pool.counts()["busy"]:
                    await asyncio.sleep(0.01)
                queued = asyncio.create_task(
                    client.post("/v1/completions", json={**body, "prompt": "class A:"})
                )
                while not len(pool.queue):
                    await asyncio.sleep(0.01)
                running.cancel(), queued.cancel()  # both clients hang up
                await asyncio.gather(running, queued, return_exceptions=True)

        asyncio.run(leave_early())
        out = live.client().completions.create(model=MODEL, prompt="x = [1, 2", max_tokens=8, temperature=0)
        assert out.usage.completion_tokens == 8
        jobs = list(live.service.pool.history)
        assert [j.prompt for j in jobs][-1] == live.service.tokenizer.encode("x = [1, 2")
        gone = jobs[0]
        assert gone.finish_reason == "cancelled" and gone.cancel_reason == "disconnect"
        assert gone.steps_after_cancel <= 1
        # The queued one never reached a worker (or was dropped as it got there).
        assert len(jobs) == 2 or jobs[1].finish_reason == "cancelled"
        assert live.metrics()['ov_spec_generations_total{finish_reason="cancelled"}'] == 2


# The random model's greedy text repeats, so prompt lookup (part of the default drafter) writes
# 1000 tokens of it faster than these timeouts: the draft model alone does not.
SLOW = {"ngram": False}


def test_timeout_mid_stream_is_an_error_event(random_pipeline):
    with LiveServer(random_pipeline, workers=1, timeout_s=0.5) as live:
        stream = live.client(max_retries=0).completions.create(
            model=MODEL, prompt="def f(x):", max_tokens=1000, temperature=0, stream=True, extra_body=SLOW
        )
        chunks = []
        with pytest.raises(openai.APIError, match="timed out"):
            for chunk in stream:
                chunks.append(chunk)
        assert chunks  # the stream had started: the error came as an SSE event, after 200 OK


def test_timeout_is_504(random_pipeline):
    with LiveServer(random_pipeline, workers=1, timeout_s=0.3) as live:
        with pytest.raises(openai.APIStatusError) as err:
            live.client(max_retries=0).completions.create(
                model=MODEL, prompt="def f(x):", max_tokens=1000, temperature=0, extra_body=SLOW
            )
        assert err.value.status_code == 504 and err.value.body["code"] == "timeout"
        deadline = time.monotonic() + 10
        while live.service.pool.counts()["busy"]:  # the worker stops at its next iteration
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert live.service.pool.history[-1].finish_reason == "cancelled"


# --- bad requests --------------------------------------------------------------------------------
AUTH = {"Authorization": f"Bearer {KEY}"}
GOOD = {"model": MODEL, "prompt": "def f(x):", "max_tokens": 4, "temperature": 0}


@pytest.mark.parametrize(
    "route, content, headers, status, code",
    [
        ("/v1/completions", b'{"prompt": "x", ', AUTH, 400, None),  # malformed JSON
        ("/v1/completions", {**GOOD, "model": "gpt-4"}, AUTH, 404, "model_not_found"),
        ("/v1/completions", {**GOOD, "n": 2}, AUTH, 400, None),
        ("/v1/completions", {**GOOD, "max_tokens": -5}, AUTH, 400, None),
        ("/v1/completions", {**GOOD, "prompt": "word " * 1100}, AUTH, 400, "context_length_exceeded"),
        ("/v1/completions", {**GOOD, "max_tokens": 1020}, AUTH, 400, "context_length_exceeded"),
        ("/v1/completions", GOOD, {}, 401, "invalid_api_key"),
        ("/v1/completions", GOOD, {"Authorization": "Bearer wrong"}, 401, "invalid_api_key"),
        ("/v1/models", None, {"Authorization": f"Basic {KEY}"}, 401, "invalid_api_key"),
        ("/metrics", None, {}, 401, "invalid_api_key"),
        ("/v1/completions", {**GOOD, "prompt": "x" * 20000}, AUTH, 413, "request_too_large"),
        ("/v1/completions", {**GOOD, "num_assistant_token": 3}, AUTH, 400, None),  # a typo is not ignored
        ("/v1/completions", {**GOOD, "temperature": -1}, AUTH, 400, None),
        ("/v1/completions", {**GOOD, "prompt": ["a", "b"]}, AUTH, 400, None),
        ("/v1/completions", {**GOOD, "prompt": "   "}, AUTH, 400, None),
        ("/v1/completions", [1, 2], AUTH, 400, None),
        ("/v1/chat/completions", {"model": MODEL, "messages": []}, AUTH, 400, None),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "word " * 1100}]},
            AUTH,
            400,
            "context_length_exceeded",
        ),
        ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "x"}]}, AUTH, 400, None),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "n": 3}, AUTH, 400, None),
        ("/v1/nothing", GOOD, AUTH, 404, None),
    ],
)
def test_bad_request_gets_openai_error(server, route, content, headers, status, code):
    if content is None:
        r = httpx.get(server.url + route, headers=headers)
    else:
        raw = content if isinstance(content, bytes) else json.dumps(content).encode()
        r = httpx.post(
            server.url + route, content=raw, headers={**headers, "Content-Type": "application/json"}
        )
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and "\n" not in error["message"] and "Traceback" not in r.text
    assert error["code"] == code
    ok = httpx.post(server.url + "/v1/completions", json=GOOD, headers=AUTH)  # still serving
    assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] == 4


def test_oversized_body_without_length_header(server):
    def chunks():
        for _ in range(40):
            yield b"x" * 1024

    r = httpx.post(server.url + "/v1/completions", content=chunks(), headers=AUTH)
    assert r.status_code == 413


def test_openai_client_errors(server):
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        server.client().completions.create(model="other", prompt="x", max_tokens=2)
    with pytest.raises(openai.BadRequestError, match="n=1"):
        server.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], n=2)


def test_parse_rejects_non_object():
    from ov_spec.serve.errors import APIError

    with pytest.raises(APIError, match="valid JSON"):
        parse(ChatRequest, b"{")
    with pytest.raises(APIError, match="unknown field 'tools'"):
        parse(ChatRequest, b'{"messages": [{"role": "user", "content": "x"}], "tools": []}')


# --- the queue and the memory estimate -------------------------------------------------------------
def test_fair_queue_round_robin_over_clients():
    loop = asyncio.new_event_loop()
    q = FairQueue(max_size=5)
    jobs = [Job([1], {}, client, loop) for client in ("a", "a", "a", "b", "c")]
    for j in jobs:
        q.put(j)
    with pytest.raises(QueueFull):
        q.put(Job([1], {}, "d", loop))
    assert q.remove(jobs[1]) and not q.remove(jobs[1])
    order = [q.get() for _ in range(4)]
    assert [j.client for j in order] == ["a", "b", "c", "a"]  # a flooding client waits its turn
    assert order[0] is jobs[0] and order[3] is jobs[2]
    loop.close()


def test_memory_estimate(random_pipeline):
    from ov_spec.manifest import Manifest

    m = Manifest.read(random_pipeline)
    per = check_memory(m, random_pipeline, 1, available=1 << 40)
    weights = sum(e.size_bytes for e in m.models)
    assert per > weights  # weights, plus KV caches at full context, plus the fixed overhead
    with pytest.raises(UserError, match=r"--workers 10 needs about .* use --workers 3 or fewer"):
        check_memory(m, random_pipeline, 10, available=per * 3 + 1)


# --- start-up errors (the CLI) ---------------------------------------------------------------------
def serve_cli(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "ov_spec.serve", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(proc, needle):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr


def test_cli_not_a_pipeline(tmp_path):
    one_line_error(serve_cli(tmp_path), "not an ov_spec pipeline")


def test_cli_port_in_use(random_pipeline):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_line_error(
            serve_cli(random_pipeline, "--port", port), f"port {port} on 127.0.0.1 is already in use"
        )


def test_cli_more_workers_than_memory(random_pipeline):
    one_line_error(serve_cli(random_pipeline, "--workers", 10_000_000), "--workers 10000000 needs about")


def test_cli_missing_device(random_pipeline, tmp_path):
    devices = tmp_path / "devices.json"
    devices.write_text(json.dumps({"models": {"target": {"device": "GPU.7"}}}))
    one_line_error(serve_cli(random_pipeline, "--devices", devices), "GPU.7")
    one_line_error(serve_cli(random_pipeline, "--device", "draft1=NPU"), "NPU")


def test_cli_bad_numbers(random_pipeline):
    one_line_error(serve_cli(random_pipeline, "--workers", 0), "--workers must be at least 1")
    one_line_error(serve_cli(random_pipeline, "--timeout", 0), "--timeout")


@contextmanager
def cli_server(folder, *args):
    port = bind("127.0.0.1", 0).getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ov_spec.serve", str(folder), "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_cli_serves_with_api_key_from_env(random_pipeline, monkeypatch):
    monkeypatch.setenv("OV_SPEC_API_KEY", "from-env")
    with cli_server(random_pipeline) as (proc, url):
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.ConnectError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert httpx.get(url + "/v1/models").status_code == 401
        client = openai.OpenAI(base_url=url + "/v1", api_key="from-env")
        out = client.completions.create(model=Path(random_pipeline).name, prompt="def f(x):", max_tokens=5)
        assert out.usage.completion_tokens == 5


def test_edge_package_with_the_server(random_pipeline, tmp_path):
    import importlib.util
    from importlib import metadata

    spec = importlib.util.spec_from_file_location(
        "package_edge", Path(__file__).parents[1] / "scripts" / "package_edge.py"
    )
    package_edge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(package_edge)
    wheel = tmp_path / "ov_spec-0.1.0-py3-none-any.whl"  # not installed here: only copied
    wheel.write_bytes(b"")
    plain = package_edge.package(random_pipeline, tmp_path / "plain", wheel=wheel)
    served = package_edge.package(random_pipeline, tmp_path / "served", wheel=wheel, serve=True)
    plain_reqs = (plain / "requirements-edge.txt").read_text()
    reqs = (served / "requirements-edge.txt").read_text()
    for name in ("fastapi", "uvicorn"):
        assert f"{name}=={metadata.version(name)}" in reqs.splitlines()
        assert name not in plain_reqs
    assert "python -m ov_spec.serve pipeline" in (served / "README.txt").read_text()
    assert "ov_spec.serve" not in (plain / "README.txt").read_text()


def test_server_imports_no_torch_or_transformers():
    code = (
        "import sys, ov_spec.serve.__main__, ov_spec.serve.app, ov_spec.serve.workers; "
        "print(sorted(m for m in ('torch', 'transformers', 'optimum', 'nncf') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
