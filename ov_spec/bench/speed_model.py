"""The speed model of speculative decoding (docs/method.md), and measuring its inputs.

* :func:`analytic_speedup` - Leviathan et al.'s i.i.d. formula from acceptance ``alpha`` and the
  draft/target cost ratio ``c``.
* :func:`ideal_speedup` - the zero-overhead ideal from measurements:
  ``tau(k) * T1 / (Tv(k+1) + k * Td)`` with the measured mean tokens per target pass ``tau``.
  Acceptance in code comes in bursts, so ``tau`` beats the i.i.d. formula; measuring it is honest.
* :func:`step_costs` - ``T1``, ``Tv(k+1)`` and ``Td`` timed in isolation at a given context length
  (median over repeats, after warm-up), and the cost of one rollback with each strategy.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

import numpy as np

from ov_spec.runtime.limits import MAX_DRAFT_TOKENS, PAGED
from ov_spec.runtime.stateful import StatefulLM


def expected_tokens_per_pass(alpha: float, k: int) -> float:
    """``(1 - alpha^(k+1)) / (1 - alpha)``: drafted-and-accepted plus the bonus token."""
    if alpha >= 1.0:
        return float(k + 1)
    return (1.0 - alpha ** (k + 1)) / (1.0 - alpha)


def analytic_speedup(alpha: float, k: int, c: float) -> float:
    """Leviathan et al.: ``(1 - alpha^(k+1)) / ((1 - alpha) (k c + 1))``; needs ``alpha > c`` to win."""
    return expected_tokens_per_pass(alpha, k) / (k * c + 1.0)


def best_k(alpha: float, c: float, k_max: int = MAX_DRAFT_TOKENS) -> int:
    """The draft length the analytic model prefers for this acceptance and cost ratio."""
    return max(range(1, k_max + 1), key=lambda k: analytic_speedup(alpha, k, c))


def ideal_speedup(tau: float, t1: float, tv: float, td: float, k: int) -> float:
    """Zero-overhead ideal: ``tau * T1 / (Tv(k+1) + k * Td)``."""
    return tau * t1 / (tv + k * td)


@dataclass
class StepCosts:
    """Median seconds of the primitive operations at one context length."""

    context: int
    k: int
    t1: float  # target, one token
    tv: float  # target, k + 1 tokens in one pass
    td: float  # draft, one token (0 when there is no draft model)
    rollback_trim: float  # target rollback of k tokens by state slicing
    rollback_mask: float  # target rollback of k tokens by masking, compactions amortized in
    compaction: float = 0.0  # one compaction of the masked cache (0: none happened)

    @property
    def c(self) -> float:
        """Draft/target cost ratio of the analytic model."""
        return self.td / self.t1 if self.t1 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "c": self.c}


def _median_counter(lm: StatefulLM, counter: str, fn, repeats: int) -> float:
    """Median growth of one of ``lm.stats``' timers per call of ``fn`` (its own clock, no overhead)."""
    samples = []
    for _ in range(repeats):
        before = getattr(lm.stats, counter)
        fn()
        samples.append(getattr(lm.stats, counter) - before)
    return statistics.median(samples)


def step_costs(
    target: StatefulLM, draft: StatefulLM | None, context: int, k: int, repeats: int = 20, seed: int = 0
) -> StepCosts:
    """Time the primitives of one speculative iteration after ``context`` tokens of prefill.

    Uses the models' own caches (they are reset before and after): call between generations.
    """
    t1, tv, trim, mask, compaction = target_costs(target, context, k, repeats, seed)
    td = draft_cost(draft, context, repeats, seed) if draft is not None else 0.0
    return StepCosts(context, k, t1, tv, td, trim, mask, compaction)


def _prompt(lm: StatefulLM, context: int, seed: int) -> list[int]:
    return np.random.default_rng(seed).integers(3, lm.vocab_size, context).tolist()


def _step(lm: StatefulLM, t: int, context: int) -> None:
    """Feed ``t`` tokens after ``context`` cached ones, then roll back to ``context``."""
    lm.forward([7] * t, n_logits=t)
    lm.rollback(context)


def target_costs(
    target: StatefulLM, context: int, k: int, repeats: int = 20, seed: int = 0
) -> tuple[float, float, float, float, float]:
    """``(T1, Tv(k+1), rollback_trim, rollback_mask, compaction)`` in seconds at ``context``.

    ``T1``, ``Tv`` and the trim rollback are medians, timed with the model's own rollback mode
    (trim by switching the mode temporarily). A mask rollback costs almost nothing until the holes
    it leaves trigger a compaction, which copies the cache: a median would never see it, so mask
    rollbacks run until compactions have happened and their cost is the mean over all of them.
    """
    prompt = _prompt(target, context, seed)
    mode = target.rollback_mode
    if mode == PAGED:  # the paged graph: no strategies to switch, its rollback costs nothing
        target.reset()
        target.forward(prompt)
        for _ in range(3):
            _step(target, k + 1, context)
        t1 = _median_counter(target, "infer_s", lambda: _step(target, 1, context), repeats)
        tv = _median_counter(target, "infer_s", lambda: _step(target, k + 1, context), repeats)
        target.reset()
        return t1, tv, 0.0, 0.0, 0.0
    t1 = tv = trim = 0.0
    try:
        for strategy in ("trim", "mask"):
            target.rollback_mode = strategy
            target.reset()
            target.forward(prompt)
            for _ in range(3):  # warm-up: first calls allocate buffers and pick kernels
                _step(target, k + 1, context)
            if strategy == "trim":
                trim = _median_counter(target, "rollback_s", lambda: _step(target, k + 1, context), repeats)
            if strategy == mode:
                t1 = _median_counter(target, "infer_s", lambda: _step(target, 1, context), repeats)
                tv = _median_counter(target, "infer_s", lambda: _step(target, k + 1, context), repeats)
        mask, compaction = _amortized_mask_rollback(target, context, k, repeats)
    finally:
        target.rollback_mode = mode
        target.reset()
    return t1, tv, trim, mask, compaction


def _amortized_mask_rollback(
    target: StatefulLM, context: int, k: int, repeats: int, compactions: int = 2, max_steps: int = 4000
) -> tuple[float, float]:
    """Mean mask-rollback seconds per rollback of ``k + 1`` tokens, and mean seconds per compaction.

    Runs (after the ``context``-token prefill already in the cache) until ``compactions``
    compactions happened, seen as the physical cache shrinking, or ``max_steps`` steps.
    """
    assert target.rollback_mode == "mask"
    seen, steps, total, compaction_s = 0, 0, 0.0, 0.0
    while steps < max_steps and (seen < compactions or steps < repeats):
        slots, before = target.cache_slots, target.stats.rollback_s
        _step(target, k + 1, context)
        spent = target.stats.rollback_s - before
        total += spent
        steps += 1
        if target.cache_slots < slots + k + 1:  # the holes were squeezed out
            seen += 1
            compaction_s += spent
    return total / steps, (compaction_s / seen if seen else 0.0)


def draft_cost(draft: StatefulLM, context: int, repeats: int = 20, seed: int = 0) -> float:
    """``Td``: median seconds of one single-token draft step at ``context``."""
    draft.reset()
    try:
        draft.forward(_prompt(draft, context, seed))
        for _ in range(3):
            _step(draft, 1, context)
        return _median_counter(draft, "infer_s", lambda: _step(draft, 1, context), repeats)
    finally:
        draft.reset()
