"""Server metrics in Prometheus' text exposition format (``GET /metrics``).

Each metric is defined once, in :data:`METRICS`, with its type and help text. Counters and
histograms are updated when a request ends; gauges (queue depth, workers) are read at scrape time.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

# name -> (type, help)
METRICS: dict[str, tuple[str, str]] = {
    "ov_spec_requests_total": ("counter", "HTTP requests answered, by route and status code."),
    "ov_spec_generations_total": ("counter", "Generations that ended, by finish reason."),
    "ov_spec_rejected_total": ("counter", "Requests refused because the queue was full (HTTP 429)."),
    "ov_spec_queue_depth": ("gauge", "Requests waiting for a worker."),
    "ov_spec_workers": ("gauge", "Pipelines, by state (busy, idle, loading)."),
    "ov_spec_prompt_tokens_total": ("counter", "Prompt tokens of finished generations."),
    "ov_spec_generated_tokens_total": ("counter", "Tokens generated."),
    "ov_spec_generation_seconds_total": ("counter", "Worker time spent generating."),
    "ov_spec_tokens_per_second": (
        "gauge",
        "Generated tokens per second of generation, over every finished request (per worker).",
    ),
    "ov_spec_drafted_tokens_total": ("counter", "Draft tokens proposed to each verifying model."),
    "ov_spec_accepted_tokens_total": ("counter", "Draft tokens each verifying model accepted."),
    "ov_spec_acceptance_rate": ("gauge", "accepted / drafted, per verifying model, over all requests."),
    "ov_spec_time_to_first_token_seconds": (
        "histogram",
        "From request arrival to the first generated token (queue wait included).",
    ),
    "ov_spec_queue_wait_seconds": ("histogram", "Time requests waited for a worker."),
    "ov_spec_request_duration_seconds": ("histogram", "From request arrival to the last token."),
}
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Histogram:
    """Cumulative buckets, sum and count."""

    def __init__(self, buckets: Iterable[float] = BUCKETS) -> None:
        self.bounds = list(buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str) -> list[str]:
        out, running = [], 0
        for bound, n in zip([*self.bounds, float("inf")], self.counts):
            running += n
            le = "+Inf" if bound == float("inf") else _num(bound)
            out.append(f'{name}_bucket{{le="{le}"}} {running}')
        return [*out, f"{name}_sum {_num(self.sum)}", f"{name}_count {self.count}"]


class ServerMetrics:
    """Everything ``/metrics`` reports; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.finish: dict[str, int] = defaultdict(int)
        self.rejected = 0
        self.prompt_tokens = 0
        self.generated_tokens = 0
        self.generation_s = 0.0
        self.drafted: dict[str, int] = defaultdict(int)
        self.accepted: dict[str, int] = defaultdict(int)
        self.ttft = Histogram()
        self.queue_wait = Histogram()
        self.duration = Histogram()

    def count_request(self, route: str, status: int) -> None:
        with self._lock:
            self.requests[(route, status)] += 1
            if status == 429:
                self.rejected += 1

    def count_generation(self, result: Any, queue_s: float, total_s: float) -> None:
        """Record a finished :class:`~ov_spec.runtime.pipeline.GenerationResult`."""
        m = result.metrics
        with self._lock:
            self.finish[result.finish_reason] += 1
            self.prompt_tokens += m.prompt_tokens
            self.generated_tokens += m.generated_tokens
            self.generation_s += m.total_s
            for level in m.levels:
                self.drafted[level.name] += level.drafted
                self.accepted[level.name] += level.accepted
            if m.generated_tokens:
                self.ttft.observe(queue_s + m.ttft_s)
            self.queue_wait.observe(queue_s)
            self.duration.observe(total_s)

    def count_cancelled(self) -> None:
        with self._lock:
            self.finish["cancelled"] += 1

    def render(self, queue_depth: int, workers: dict[str, int]) -> str:
        """The text exposition format, version 0.0.4."""
        with self._lock:
            samples: dict[str, list[str]] = {
                "ov_spec_requests_total": [
                    f'ov_spec_requests_total{{route="{r}",status="{s}"}} {n}'
                    for (r, s), n in sorted(self.requests.items())
                ],
                "ov_spec_generations_total": [
                    f'ov_spec_generations_total{{finish_reason="{f}"}} {n}'
                    for f, n in sorted(self.finish.items())
                ],
                "ov_spec_rejected_total": [f"ov_spec_rejected_total {self.rejected}"],
                "ov_spec_queue_depth": [f"ov_spec_queue_depth {queue_depth}"],
                "ov_spec_workers": [
                    f'ov_spec_workers{{state="{k}"}} {v}' for k, v in sorted(workers.items())
                ],
                "ov_spec_prompt_tokens_total": [f"ov_spec_prompt_tokens_total {self.prompt_tokens}"],
                "ov_spec_generated_tokens_total": [f"ov_spec_generated_tokens_total {self.generated_tokens}"],
                "ov_spec_generation_seconds_total": [
                    f"ov_spec_generation_seconds_total {_num(self.generation_s)}"
                ],
                "ov_spec_tokens_per_second": [
                    f"ov_spec_tokens_per_second {_num(_ratio(self.generated_tokens, self.generation_s))}"
                ],
                "ov_spec_drafted_tokens_total": [
                    f'ov_spec_drafted_tokens_total{{model="{k}"}} {v}'
                    for k, v in sorted(self.drafted.items())
                ],
                "ov_spec_accepted_tokens_total": [
                    f'ov_spec_accepted_tokens_total{{model="{k}"}} {v}'
                    for k, v in sorted(self.accepted.items())
                ],
                "ov_spec_acceptance_rate": [
                    f'ov_spec_acceptance_rate{{model="{k}"}} {_num(_ratio(self.accepted[k], v))}'
                    for k, v in sorted(self.drafted.items())
                ],
                "ov_spec_time_to_first_token_seconds": self.ttft.lines("ov_spec_time_to_first_token_seconds"),
                "ov_spec_queue_wait_seconds": self.queue_wait.lines("ov_spec_queue_wait_seconds"),
                "ov_spec_request_duration_seconds": self.duration.lines("ov_spec_request_duration_seconds"),
            }
        out = []
        for name, (kind, help_text) in METRICS.items():
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples[name]]
        return "\n".join(out) + "\n"


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _num(x: float) -> str:
    return repr(float(x))


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
