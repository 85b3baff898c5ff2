"""The speed model applied to a run: zero-overhead ideal, analytic fits, and the rollback study.

* :func:`ideal_report` - for each fixed-k ov_spec run: measured speedup next to the zero-overhead
  ideal ``tau(k) * T1 / (Tv(k+1) + k * Td)`` with ``T1``, ``Tv``, ``Td`` timed in isolation
  (:func:`ov_spec.bench.speed_model.step_costs`) at the run's mean context, and the loop's own
  overhead per iteration (``other_s / target passes``).
* :func:`analytic_fits` - per two-level chain: pooled acceptance ``alpha`` and cost ratio ``c``,
  the i.i.d. speedup curve over k = 1..MAX_DRAFT_TOKENS, and the k it prefers.
* :func:`rollback_study` - trim vs mask rollback: cost of one rollback and decode tokens/s against
  the prompt length.

These calls run the pipelines' models directly between generations (no generation is in flight).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ov_spec.bench.runners import OvSpecRunner
from ov_spec.bench.speed_model import (
    StepCosts,
    analytic_speedup,
    best_k,
    draft_cost,
    ideal_speedup,
    step_costs,
    target_costs,
)
from ov_spec.bench.stats import Summary
from ov_spec.bench.sweep import Case, Variant, rollback_suffix
from ov_spec.runtime.limits import MAX_DRAFT_TOKENS

K_RANGE = range(1, MAX_DRAFT_TOKENS + 1)


@dataclass
class IdealRow:
    """Measured vs zero-overhead ideal speedup of one fixed-k ov_spec case."""

    case: str
    variant: str
    chain: str
    k: int
    context: int  # mean KV length of the run; step costs were timed there
    tau: float  # measured tokens per target pass
    t1_ms: float  # target, one token
    tv_ms: float  # target, k + 1 tokens in one pass
    td_ms: float  # one drafted token
    td_source: str  # "step_costs" (draft model timed alone), "in-run" (cascade level), "none" (ngram)
    ideal: float  # tau * T1 / (Tv + k * Td)
    measured: float  # tokens/s over ov_spec target-only tokens/s, same run
    ratio: float  # measured / ideal
    overhead_per_iter_ms: float  # other_s / target passes (the loop's own cost per iteration)
    rollback_per_iter_ms: float  # rollback_s / target passes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AnalyticFit:
    """The i.i.d. speed model fitted to one two-level chain."""

    variant: str
    chain: str
    devices: str
    alpha: float  # pooled acceptance over the fixed-k runs
    c: float  # draft step / target step
    c_source: str  # "step_costs" or "in-run"
    measured: dict[int, float] = field(default_factory=dict)  # k -> measured speedup (ov_spec)
    genai: dict[int, float] = field(default_factory=dict)  # k -> measured speedup (genai, same chain)
    predicted: dict[int, float] = field(default_factory=dict)  # k -> analytic speedup, k in K_RANGE
    best_k: int = 0
    best_predicted: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RollbackRow:
    """Trim vs mask rollback at one prompt length."""

    context: int  # prompt tokens
    k: int
    rollback_trim_ms: float  # one rollback of k tokens, timed alone
    rollback_mask_ms: float  # mean per rollback, the compactions it triggers included
    compaction_ms: float  # one compaction of the masked cache
    decode_tps_target: float  # target-only decode tokens/s (1 / TPOT)
    decode_tps_trim: float  # speculative decode tokens/s with trim rollback
    decode_tps_mask: float  # ... with mask rollback
    e2e_tps_target: float  # end-to-end tokens/s (prefill included): generated / total
    e2e_tps_trim: float
    e2e_tps_mask: float
    rollback_share_trim: float  # rollback_s / total_s of the speculative run
    rollback_share_mask: float
    mask_equals_trim: bool  # same output tokens

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CostCache:
    """Step costs, measured once: the target's per (placement, rollback, k, context), a draft's per
    (placement, context), so chains sharing a target or a draft share its measurement."""

    def __init__(self, runner: OvSpecRunner, repeats: int) -> None:
        self.runner = runner
        self.repeats = repeats
        self.targets: dict[tuple, tuple[float, float, float, float, float]] = {}
        self.drafts: dict[tuple, float] = {}

    def get(self, case: Case, draft: str | None, k: int, context: int) -> StepCosts:
        pipe = self.runner.pipeline_for(case)
        key = (case.variant, case.chain[0], case.devices[0], case.rollback, k, context)
        if key not in self.targets:
            self.targets[key] = target_costs(pipe.models[case.chain[0]], context, k, self.repeats)
        td = 0.0
        if draft is not None:
            device = case.devices[case.chain.index(draft)]
            dkey = (case.variant, draft, device, context)
            if dkey not in self.drafts:
                self.drafts[dkey] = draft_cost(pipe.models[draft], context, self.repeats)
            td = self.drafts[dkey]
        t1, tv, trim, mask, compaction = self.targets[key]
        return StepCosts(context, k, t1, tv, td, trim, mask, compaction)


def is_fixed_k(case: Case) -> bool:
    """ov_spec, greedy, a fixed draft length, lossless: the runs the ideal formula describes."""
    return (
        case.engine == "ov_spec"
        and case.sampling == "greedy"
        and case.k > 0
        and not (case.adaptive or case.confidence or case.mtad)
    )


def ideal_report(summaries: Sequence[Summary], costs: CostCache) -> list[IdealRow]:
    """Measured speedup vs the zero-overhead ideal for every fixed-k ov_spec case."""
    rows = []
    for s in summaries:
        case = s.case
        if not is_fixed_k(case) or not s.runs or s.speedup is None or not s.target_passes:
            continue
        context = _bucket(s.mean_context)
        two_level_model = len(case.chain) == 2 and not case.ngram
        draft = case.chain[1] if two_level_model else None
        cost = costs.get(case, draft, case.k, context)
        if two_level_model:
            td, source = cost.td, "step_costs"
        elif case.ngram:
            td, source = 0.0, "none"
        else:  # a cascade: the level below the target, per drafted token, as it ran
            td = s.breakdown.get("draft", 0.0) * s.generated / s.drafted if s.drafted else 0.0
            source = "in-run"
        tau = s.tokens_per_pass or 0.0
        ideal = ideal_speedup(tau, cost.t1, cost.tv, td, case.k)
        per_iter = s.generated / s.target_passes
        rows.append(
            IdealRow(
                case=case.id,
                variant=case.variant,
                chain="+".join(case.chain)
                + (" ngram" if case.ngram else "")
                + rollback_suffix(case.rollback),
                k=case.k,
                context=context,
                tau=tau,
                t1_ms=cost.t1 * 1e3,
                tv_ms=cost.tv * 1e3,
                td_ms=td * 1e3,
                td_source=source,
                ideal=ideal,
                measured=s.speedup,
                ratio=s.speedup / ideal if ideal else 0.0,
                overhead_per_iter_ms=(s.overhead_per_iter_s or 0.0) * 1e3,
                rollback_per_iter_ms=s.breakdown.get("rollback", 0.0) * per_iter * 1e3,
            )
        )
    return rows


def analytic_fits(summaries: Sequence[Summary], costs: CostCache | None) -> list[AnalyticFit]:
    """Fit alpha and c per two-level model chain (greedy) and predict the speedup for k in K_RANGE."""
    groups: dict[tuple, list[Summary]] = {}
    genai: dict[tuple, dict[int, float]] = {}
    for s in summaries:
        c = s.case
        if c.sampling != "greedy" or len(c.chain) != 2 or c.ngram or not s.runs or s.speedup is None:
            continue
        if is_fixed_k(c):
            groups.setdefault((c.variant, c.chain, c.devices, c.rollback), []).append(s)
        elif c.engine == "genai" and c.k and not c.confidence:
            genai.setdefault((c.variant, c.chain, c.devices), {})[c.k] = s.speedup
    base = {
        (s.case.variant, s.case.chain[0], s.case.devices[0]): s
        for s in summaries
        if s.case.engine == "ov_spec" and not s.case.speculative and s.case.sampling == "greedy" and s.runs
    }
    fits = []
    for (variant, chain, devices, rollback), fixed in groups.items():
        drafted = sum(s.drafted for s in fixed)
        if not drafted:
            continue
        alpha = sum(s.accepted for s in fixed) / drafted
        c, source = _cost_ratio(fixed, base.get((variant, chain[0], devices[0])), costs)
        name = "+".join(chain) + rollback_suffix(rollback)
        fit = AnalyticFit(variant, name, ",".join(devices), alpha, c, source)
        fit.measured = {s.case.k: s.speedup for s in fixed if s.speedup is not None}
        fit.genai = dict(genai.get((variant, chain, devices), {}))
        fit.predicted = {k: analytic_speedup(alpha, k, c) for k in K_RANGE}
        fit.best_k = best_k(alpha, c, max(K_RANGE))
        fit.best_predicted = fit.predicted[fit.best_k]
        fits.append(fit)
    return fits


def _cost_ratio(fixed: list[Summary], base: Summary | None, costs: CostCache | None) -> tuple[float, str]:
    """``c = Td / T1``: timed alone when step costs are on, else from the runs' own counters."""
    first = min(fixed, key=lambda s: s.case.k)
    if costs is not None:
        cost = costs.get(first.case, first.case.chain[1], first.case.k, _bucket(first.mean_context))
        return cost.c, "step_costs"
    # In-run: draft seconds per drafted token over the target-only run's seconds per pass.
    td = sum(s.breakdown.get("draft", 0.0) * s.generated for s in fixed) / max(
        sum(s.drafted for s in fixed), 1
    )
    if base is None or not base.target_passes:
        return 0.0, "in-run"
    t1 = base.breakdown.get("verify", 0.0) * base.generated / base.target_passes
    return (td / t1 if t1 else 0.0), "in-run"


def _bucket(context: float) -> int:
    """Round a mean context to 8 tokens so nearby runs share one step-cost measurement."""
    return max(8, int(round(context / 8.0)) * 8)


# -- rollback study ---------------------------------------------------------------------------------
def pick_study_chain(variants: Sequence[Variant]) -> tuple[Variant, tuple[str, str]] | None:
    """The variant with the largest target, paired with its smallest draft model."""
    candidates = [v for v in variants if len(v.manifest.models) > 1]
    if not candidates:
        return None
    variant = max(candidates, key=lambda v: v.manifest.target.num_parameters)
    entries = variant.manifest.by_level()
    draft = min(entries[1:], key=lambda e: (e.num_parameters, -e.level))
    return variant, (entries[0].name, draft.name)


def study_prompt(pipe: Any, texts: Sequence[str], length: int, last: int = 0) -> list[int]:
    """``length`` prompt tokens ending in benchmark prompt ``last``, filled up front with the others.

    The continuation then behaves like the main sweep's (a repeated text would be predicted perfectly
    and never roll back), while the KV cache holds ``length`` tokens.
    """
    tail = pipe.tokenizer.encode(texts[last])
    filler: list[int] = []
    for i in [*range(last + 1, len(texts)), *range(last + 1)]:
        filler += pipe.tokenizer.encode(texts[i] + "\n\n")
    need = max(length - len(tail), 0)
    filler = (filler * (need // max(len(filler), 1) + 1))[:need]
    return (filler + tail)[-length:]


def rollback_study(
    runner: OvSpecRunner,
    variants: Sequence[Variant],
    texts: Sequence[str],
    contexts: Sequence[int],
    k: int,
    max_new_tokens: int,
    repeats: int,
    cost_repeats: int,
    device: str = "CPU",
) -> tuple[str, list[RollbackRow]]:
    """Trim vs mask on the largest target's smallest pair; returns (chain description, rows)."""
    picked = pick_study_chain(variants)
    if picked is None:
        return "", []
    variant, chain = picked
    placement = dict.fromkeys(chain, device)
    trim = runner.pipeline(variant.label, placement, "trim")
    mask = runner.pipeline(variant.label, placement, "mask")
    limit = variant.manifest.max_context - max_new_tokens - k - 2
    rows = []
    for context in sorted({min(c, limit) for c in contexts}):
        prompts = [study_prompt(trim, texts, context, i) for i in range(len(texts))]
        cost = step_costs(trim.models[chain[0]], None, context, k, cost_repeats)
        opts = {"max_new_tokens": max_new_tokens, "models": list(chain), "draft_tokens": k}
        target = _decode_runs(trim, prompts, {"max_new_tokens": max_new_tokens, "use_draft": False}, repeats)
        spec_trim = _decode_runs(trim, prompts, opts, repeats)
        spec_mask = _decode_runs(mask, prompts, opts, repeats)
        rows.append(
            RollbackRow(
                context=context,
                k=k,
                rollback_trim_ms=cost.rollback_trim * 1e3,
                rollback_mask_ms=cost.rollback_mask * 1e3,
                compaction_ms=cost.compaction * 1e3,
                decode_tps_target=_decode_tps(target),
                decode_tps_trim=_decode_tps(spec_trim),
                decode_tps_mask=_decode_tps(spec_mask),
                e2e_tps_target=_e2e_tps(target),
                e2e_tps_trim=_e2e_tps(spec_trim),
                e2e_tps_mask=_e2e_tps(spec_mask),
                rollback_share_trim=_share(spec_trim),
                rollback_share_mask=_share(spec_mask),
                mask_equals_trim=all(a.token_ids == b.token_ids for a, b in zip(spec_trim, spec_mask)),
            )
        )
    return f"{variant.label}: {'+'.join(chain)} k={k} @{device}", rows


def _decode_runs(pipe: Any, prompts: list[list[int]], opts: dict, repeats: int) -> list[Any]:
    """One warm-up, then ``repeats`` passes over every prompt."""
    pipe.generate(prompts[0], **opts)
    return [pipe.generate(prompt, **opts) for _ in range(repeats) for prompt in prompts]


def _decode_tps(results: list[Any]) -> float:
    """Decode-phase tokens/s (generated after the first / time after it): prefill excluded, which
    would swamp end-to-end tokens/s on long prompts."""
    tokens = sum(r.metrics.generated_tokens - 1 for r in results)
    seconds = sum(r.metrics.total_s - r.metrics.ttft_s for r in results)
    return tokens / seconds if seconds > 0 else 0.0


def _e2e_tps(results: list[Any]) -> float:
    """End-to-end tokens/s over all runs (prefill included)."""
    seconds = sum(r.metrics.total_s for r in results)
    return sum(r.metrics.generated_tokens for r in results) / seconds if seconds > 0 else 0.0


def _share(results: list[Any]) -> float:
    total = sum(r.metrics.total_s for r in results)
    return sum(r.metrics.rollback_s for r in results) / total if total else 0.0
