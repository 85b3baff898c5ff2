"""N pipelines, one thread each, fed from one fair queue; results bridged to asyncio.

OpenVINO infer requests are not thread-safe and a pipeline runs one request at a time, so each
worker owns one :class:`~ov_spec.runtime.pipeline.SpeculativePipeline`, loads it in its own thread
and only ever uses it there. Requests wait in a :class:`FairQueue`: round-robin over clients (the
request's ``user`` field, else the peer address), first come first served within a client, so one
client that floods the server cannot starve the others.

A job reports back to the event loop that submitted it through ``loop.call_soon_threadsafe``:
``("start", None)``, ``("chunk", text)`` ..., then ``("done", GenerationResult)`` or
``("error", exception)``. Cancelling a job (client gone, timeout) sets a flag that the pipeline's
streamer callback checks after every iteration of the decode loop, so the worker is free again
within one iteration.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ov_spec.errors import UserError
from ov_spec.manifest import Manifest

log = logging.getLogger("ov_spec.serve")

# Per-pipeline memory beyond weights and KV cache. Measured here on the random test pair: each
# pipeline after the first added 8-11 MB of RSS (compiled graphs, infer requests, tokenizer IRs);
# the first also maps OpenVINO's plugins (about 80 MB, once per process).
PIPELINE_OVERHEAD_BYTES = 16 * 2**20
# The CPU plugin may keep a repacked copy of the weights beside the mapped file: count half again.
WEIGHT_FACTOR = 1.5
KV_BYTES_PER_VALUE = 2  # f16 (a u8 cache takes half: the estimate errs on the safe side)


class QueueFull(Exception):
    """The queue holds ``max_queue`` requests already."""


@dataclass
class Job:
    """One request on its way through the queue and a worker."""

    prompt: list[int]
    options: dict[str, Any]
    client: str
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    cancel_reason: str = ""
    submitted: float = field(default_factory=time.perf_counter)
    started: float = 0.0
    finished: float = 0.0
    worker: int = -1
    steps_after_cancel: int = 0  # decode iterations that completed after cancel(): at most 1
    finish_reason: str = ""

    def post(self, kind: str, value: Any = None) -> None:
        """Hand an event to the submitting event loop (thread-safe)."""
        with contextlib.suppress(RuntimeError):  # a closed loop: the server is shutting down
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))

    def cancel(self, reason: str) -> None:
        if not self.cancelled.is_set():
            self.cancel_reason = reason
            self.cancelled.set()

    @property
    def queue_s(self) -> float:
        return (self.started or time.perf_counter()) - self.submitted


class FairQueue:
    """Round-robin over clients, FIFO within a client; bounded; blocking ``get`` for worker threads."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._clients: OrderedDict[str, deque[Job]] = OrderedDict()
        self._size = 0
        self._closed = False
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return self._size

    def put(self, job: Job) -> None:
        with self._cond:
            if self._size >= self.max_size:
                raise QueueFull
            self._clients.setdefault(job.client, deque()).append(job)
            self._size += 1
            self._cond.notify()

    def get(self) -> Job | None:
        """Next job (blocks); ``None`` once closed."""
        with self._cond:
            while not self._size and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            client, jobs = next(iter(self._clients.items()))
            job = jobs.popleft()
            self._size -= 1
            del self._clients[client]
            if jobs:  # the client goes to the back of the line
                self._clients[client] = jobs
            return job

    def remove(self, job: Job) -> bool:
        """Take a job out before a worker started it; False if it was already taken."""
        with self._cond:
            jobs = self._clients.get(job.client)
            if jobs is None or job not in jobs:
                return False
            jobs.remove(job)
            self._size -= 1
            if not jobs:
                del self._clients[job.client]
            return True

    def close(self) -> list[Job]:
        """Wake every worker to exit; return the jobs still waiting."""
        with self._cond:
            self._closed = True
            left = [job for jobs in self._clients.values() for job in jobs]
            self._clients.clear()
            self._size = 0
            self._cond.notify_all()
            return left


class Worker:
    """One pipeline and the thread that loads it and runs its requests."""

    def __init__(self, index: int, pool: WorkerPool) -> None:
        self.index = index
        self.pool = pool
        self.pipe: Any = None
        self.ready = False
        self.busy = False
        self.job: Job | None = None  # the request running now
        self.loaded = threading.Event()  # set once loading ended, whether or not it succeeded
        self.thread = threading.Thread(target=self._main, name=f"ov_spec-worker-{index}", daemon=True)

    def _main(self) -> None:
        try:
            self.pipe = self.pool.loader()
            self.ready = True
        except Exception as err:  # reported to whoever started the pool (exit code 2 for UserError)
            self.pool.load_failed(self, err)
            return
        finally:
            self.loaded.set()
        log.info("worker %d ready", self.index)
        while (job := self.pool.queue.get()) is not None:
            self.busy, self.job = True, job
            try:
                self._run(job)
            finally:
                self.busy, self.job = False, None

    def _run(self, job: Job) -> None:
        job.started, job.worker = time.perf_counter(), self.index
        if job.cancelled.is_set():  # cancelled between the queue and here
            job.finish_reason, job.finished = "cancelled", job.started
            self.pool.finished(job, None)
            job.post("error", None)
            return
        job.post("start")

        def streamer(chunk: str) -> bool:
            if job.cancelled.is_set():
                job.steps_after_cancel += 1
                return True  # the pipeline stops: finish_reason "cancelled"
            job.post("chunk", chunk)
            return False

        result = None
        try:
            result = self.pipe.generate(job.prompt, streamer=streamer, **job.options)
            job.finish_reason = result.finish_reason
        except UserError as err:
            job.post("error", err)
        except Exception as err:
            log.exception("generation failed on worker %d", self.index)
            job.post("error", err)
        job.finished = time.perf_counter()
        self.pool.finished(job, result)
        if result is not None:
            job.post("done", result)


class WorkerPool:
    """``workers`` pipelines behind one fair queue of at most ``max_queue`` waiting requests."""

    def __init__(self, loader: Callable[[], Any], workers: int, max_queue: int) -> None:
        self.loader = loader
        self.queue = FairQueue(max_queue)
        self.workers = [Worker(i, self) for i in range(workers)]
        self.load_error: Exception | None = None
        self.on_load_error: Callable[[Exception], None] | None = None
        self.on_result: Callable[[Job, Any], None] | None = None  # every generation that ran
        self.on_dropped: Callable[[Job], None] | None = None  # jobs withdrawn before they started
        self.history: deque[Job] = deque(maxlen=256)  # recently finished jobs (tests, Retry-After)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            for w in self.workers:
                w.thread.start()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until every pipeline is loaded; raise the first load error."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for w in self.workers:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not w.loaded.wait(left):
                raise TimeoutError(f"pipelines still loading after {timeout} s")
            if self.load_error is not None:
                raise self.load_error

    @property
    def ready(self) -> bool:
        return all(w.ready for w in self.workers) and self.load_error is None

    def counts(self) -> dict[str, int]:
        """Workers by state, for /health and /metrics."""
        busy = sum(w.busy for w in self.workers)
        ready = sum(w.ready for w in self.workers)
        return {"busy": busy, "idle": ready - busy, "loading": len(self.workers) - ready}

    def submit(self, job: Job) -> None:
        """Queue a job; :class:`QueueFull` if ``max_queue`` are waiting already."""
        self.queue.put(job)

    def withdraw(self, job: Job, reason: str) -> None:
        """The client no longer wants ``job``: drop it from the queue or stop its generation."""
        job.cancel(reason)
        if self.queue.remove(job):
            job.finish_reason = "cancelled"
            job.post("error", None)  # wake whoever still waits on it
            if self.on_dropped is not None:
                self.on_dropped(job)

    def load_failed(self, worker: Worker, err: Exception) -> None:
        if self.load_error is None:
            self.load_error = err
            if not isinstance(err, UserError):
                log.error("worker %d failed to load: %s", worker.index, err)
            if self.on_load_error is not None:
                self.on_load_error(err)

    def finished(self, job: Job, result: Any) -> None:
        """Called by a worker thread when a job ends (``result`` is None after an error)."""
        self.history.append(job)
        if result is not None and self.on_result is not None:
            self.on_result(job, result)
        elif result is None and job.finish_reason == "cancelled" and self.on_dropped is not None:
            self.on_dropped(job)  # withdrawn just as a worker took it

    def retry_after(self) -> int:
        """Seconds a rejected client should wait: the queue's length in recent request durations."""
        recent = [j.finished - j.started for j in list(self.history)[-16:] if j.finished]
        mean = sum(recent) / len(recent) if recent else 1.0
        return max(1, min(60, round(mean * (len(self.queue) + 1) / len(self.workers))))

    def close(self) -> None:
        """Stop accepting work: waiting jobs get an error, running ones are cancelled."""
        for job in self.queue.close():
            job.cancel("shutdown")
            job.post("error", None)
        for w in self.workers:
            if (job := w.job) is not None:
                job.cancel("shutdown")  # stops at the end of its current iteration
        for w in self.workers:
            if w.thread.is_alive():
                w.thread.join(timeout=10)


# --- memory -----------------------------------------------------------------------------------
def kv_cache_bytes(config_json: Path, max_context: int) -> int:
    """A model's KV cache at the full context, from its config.json (0 if it cannot be read)."""
    try:
        c = json.loads(config_json.read_text())
        layers = int(c["num_hidden_layers"])
        heads = int(c.get("num_key_value_heads") or c["num_attention_heads"])
        head_dim = int(c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"])
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return 0
    return 2 * layers * heads * head_dim * max_context * KV_BYTES_PER_VALUE  # keys and values


def pipeline_bytes(manifest: Manifest, folder: Path) -> int:
    """Estimated resident memory of one loaded pipeline: weights, full-context KV caches, overhead."""
    total = PIPELINE_OVERHEAD_BYTES
    for m in manifest.models:
        total += int(WEIGHT_FACTOR * m.size_bytes)
        total += kv_cache_bytes(folder / m.path / "config.json", m.max_context or manifest.max_context)
    return total


def available_bytes(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """MemAvailable from /proc/meminfo (None where there is no such file)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_memory(manifest: Manifest, folder: Path, workers: int, available: int | None = None) -> int:
    """Raise if ``workers`` pipelines do not fit in available memory; return the per-worker estimate."""
    per = pipeline_bytes(manifest, folder)
    available = available_bytes() if available is None else available
    if available is not None and workers * per > available:
        fit = max(available // per, 0)
        raise UserError(
            f"--workers {workers} needs about {workers * per / 2**30:.1f} GiB ({per / 2**20:.0f} MiB per "
            f"pipeline, from the model sizes) but {available / 2**30:.1f} GiB is available; "
            f"use --workers {fit} or fewer" + ("" if fit else " (free some memory first)")
        )
    return per
