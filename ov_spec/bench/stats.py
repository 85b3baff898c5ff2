"""Per-case summaries of the timed records: throughput with its spread, acceptance, time split.

Throughput of a case is measured per repeat as ``sum(tokens) / sum(seconds)`` over the prompt set
(long and short prompts weigh by their tokens); the table reports the median over repeats with
the min and max beside it. Counters (acceptance, passes, time split) are pooled over all runs.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ov_spec.bench.measure import Record, SweepRun
from ov_spec.bench.sweep import Case, baseline_of
from ov_spec.runtime.metrics import mean_draft_length


@dataclass
class LevelSummary:
    """One speculative level of an ov_spec case, pooled over runs."""

    name: str
    acceptance_rate: float  # accepted / drafted
    tokens_per_pass: float  # emitted / passes
    mean_draft_length: float  # ov_spec.runtime.metrics.mean_draft_length: drafted / passes


@dataclass
class Summary:
    """Everything the report says about one case."""

    case: Case
    runs: int = 0  # successful timed generations
    generated: int = 0  # tokens over those runs
    errors: int = 0
    error: str = ""  # the first error message
    tokens_per_s: float = 0.0  # median over repeats
    tokens_per_s_min: float = 0.0
    tokens_per_s_max: float = 0.0
    per_repeat: list[float] = field(default_factory=list)
    speedup: float | None = None  # vs ov_spec target-only on the same target files/device/sampling
    speedup_own: float | None = None  # vs the same engine's target-only
    acceptance_rate: float | None = None  # level 0 (target): accepted / drafted
    tokens_per_pass: float | None = None  # level 0: tokens per target pass (genai: estimated)
    mean_draft_length: float | None = None
    drafted: int = 0  # level 0, pooled
    accepted: int = 0
    levels: list[LevelSummary] = field(default_factory=list)
    # seconds per generated token: draft / verify (target passes) / rollback / other (loop overhead)
    breakdown: dict[str, float] = field(default_factory=dict)
    overhead_per_iter_s: float | None = None  # other_s / target passes
    target_passes: int = 0
    mean_context: float = 0.0  # mean KV length over a run: prompt + generated / 2
    matches: list[bool | None] = field(default_factory=list)  # per prompt: output == target-only (greedy)
    perplexity: float | None = None  # of ov_spec outputs under the target (mean over prompts)

    @property
    def match_rate(self) -> float | None:
        known = [m for m in self.matches if m is not None]
        return sum(known) / len(known) if known else None

    @property
    def matches_text(self) -> str:
        known = [m for m in self.matches if m is not None]
        return f"{sum(known)}/{len(known)}" if known else ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["case"] = self.case.to_dict()
        d["match_rate"] = self.match_rate
        return d


def summarize(cases: Sequence[Case], run: SweepRun) -> list[Summary]:
    """One :class:`Summary` per case (cases without a successful run keep zeros and the error)."""
    by_case: dict[str, list[Record]] = defaultdict(list)
    for record in run.records:
        by_case[record.case].append(record)
    summaries = {case.id: _summary(case, by_case.get(case.id, [])) for case in cases}
    for case in cases:
        s = summaries[case.id]
        ov_base = baseline_of(case, cases, "ov_spec")
        own_base = baseline_of(case, cases)
        if ov_base is not None:
            s.speedup = paired_ratio(s.per_repeat, summaries[ov_base.id].per_repeat)
        if own_base is not None:
            s.speedup_own = paired_ratio(s.per_repeat, summaries[own_base.id].per_repeat)
        if case.sampling == "greedy" and own_base is not None and own_base is not case:
            s.matches = _matches(case, run.outputs.get(case.id, {}), run.outputs.get(own_base.id, {}))
    return [summaries[c.id] for c in cases]


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Throughput ``a`` over ``b``, from their per-repeat figures: the median over repeats of the
    ratio within each repeat (the two ran side by side, see :mod:`ov_spec.bench.measure`), or
    the ratio of the medians where the repeats do not pair up (a failed run). None when either
    has no throughput."""
    if not (a and b and statistics.median(a) and statistics.median(b)):
        return None
    if len(a) == len(b) and all(a) and all(b):
        return statistics.median(x / y for x, y in zip(a, b))
    return statistics.median(a) / statistics.median(b)


def _summary(case: Case, records: list[Record]) -> Summary:
    s = Summary(case)
    ok = [r for r in records if not r.error and r.repeat >= 0]
    failed = [r for r in records if r.error]
    s.runs, s.errors = len(ok), len(failed)
    s.generated = sum(r.generated for r in ok)
    s.error = failed[0].error if failed else ""
    if not ok:
        return s
    repeats: dict[int, list[Record]] = defaultdict(list)
    for r in ok:
        repeats[r.repeat].append(r)
    s.per_repeat = [
        sum(r.generated for r in rs) / sum(r.seconds for r in rs) for _, rs in sorted(repeats.items())
    ]
    s.tokens_per_s = statistics.median(s.per_repeat)
    s.tokens_per_s_min, s.tokens_per_s_max = min(s.per_repeat), max(s.per_repeat)
    s.mean_context = statistics.fmean(r.prompt_tokens + r.generated / 2 for r in ok)
    if case.engine == "ov_spec":
        _pool_ov_spec(s, ok)
    else:
        _pool_genai(s, ok)
    return s


def _pool_ov_spec(s: Summary, records: list[Record]) -> None:
    """Pool ov_spec's GenerationMetrics: acceptance per level, time split, loop overhead."""
    generated = sum(r.generated for r in records)
    totals = {key: sum(r.metrics.get(key, 0.0) for r in records) for key in _TIMES}
    s.breakdown = {name: totals[key] / generated for key, name in _TIMES.items()} if generated else {}
    s.target_passes = sum(r.metrics.get("target_passes", 0) for r in records)
    if s.target_passes:
        s.overhead_per_iter_s = totals["other_s"] / s.target_passes
    if not s.case.speculative:
        return
    pooled: dict[str, dict[str, float]] = {}
    for r in records:
        for level in r.metrics.get("levels", []):
            acc = pooled.setdefault(level["name"], defaultdict(float))
            for key in ("passes", "drafted", "accepted", "emitted"):
                acc[key] += level[key]
    for name, acc in pooled.items():
        s.levels.append(
            LevelSummary(
                name=name,
                acceptance_rate=_ratio(acc["accepted"], acc["drafted"]),
                tokens_per_pass=_ratio(acc["emitted"], acc["passes"]),
                mean_draft_length=mean_draft_length(acc["drafted"], acc["passes"]),
            )
        )
    if s.levels:
        top = s.levels[0]
        first = pooled[top.name]
        s.drafted, s.accepted = int(first["drafted"]), int(first["accepted"])
        s.acceptance_rate, s.tokens_per_pass, s.mean_draft_length = (
            top.acceptance_rate,
            top.tokens_per_pass,
            top.mean_draft_length,
        )


def _pool_genai(s: Summary, records: list[Record]) -> None:
    """Pool genai's counters (see :func:`ov_spec.bench.runners.genai_speculative_counters`).

    Passes and emitted tokens are genai's own per-iteration counts; acceptance is its accepted /
    drafted candidates, so tokens per pass and acceptance come from independent counters.
    """
    drafted = sum(r.metrics.get("drafted", 0) for r in records)
    accepted = sum(r.metrics.get("accepted", 0) for r in records)
    if not drafted:
        return
    passes = sum(r.metrics.get("passes", 0) for r in records)
    emitted = sum(r.metrics.get("emitted", 0) for r in records)
    s.drafted, s.accepted = drafted, accepted
    s.acceptance_rate = accepted / drafted
    if passes:
        s.tokens_per_pass = _ratio(emitted, passes)
        s.mean_draft_length = mean_draft_length(drafted, passes)


def _matches(case: Case, mine: dict[int, dict], base: dict[int, dict]) -> list[bool | None]:
    """Per prompt: is this output the target-only output (tokens for ov_spec, text for genai)?"""
    out: list[bool | None] = []
    for i in sorted(set(mine) | set(base)):
        a, b = mine.get(i), base.get(i)
        if a is None or b is None:
            out.append(None)
        elif a.get("token_ids") is not None and b.get("token_ids") is not None:
            out.append(a["token_ids"] == b["token_ids"])
        else:
            out.append(a["text"] == b["text"])
    return out


_TIMES = {"draft_s": "draft", "target_s": "verify", "rollback_s": "rollback", "other_s": "other"}


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0
