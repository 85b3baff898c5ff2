"""The measured cost model behind ``draft_tokens="auto"``: pick the draft length that pays, or none.

Whether speculation pays depends on this device: how a verification pass grows with the tokens it
scores, what a draft step costs, what a rollback costs, and how often drafts are accepted on this
workload. So the runtime measures all of them:

* **Step costs** (:class:`CostTable`, :func:`calibrate`): each model's pass over 1..K+1 tokens at
  two context lengths, with that many tokens really in its KV cache, the rollback after it, and
  what a pass costs extra when its size differs from the model's previous pass (OpenVINO's CPU
  plugin then re-plans: measured +4-5 ms on a 10-15 ms SmolLM2-135M int8 pass, +1 ms on a 1 ms
  pass of the 6.8M pair). Timed once per model files, device, compile properties and rollback
  mode, then cached on disk (:func:`cache_dir`), so the second load is instant.
* **Acceptance** (:class:`Acceptance`): per level, the measured chance that drafted token ``j`` is
  accepted given that tokens ``1..j-1`` were (so bursts count, not only an i.i.d. alpha), kept
  separately after a fully accepted pass and otherwise, with old passes slowly forgotten. The
  export's acceptance preview (``manifest.preview``) is the prior.
* **The choice** (:func:`tokens_per_second`, :class:`AutoDraftLength`): expected tokens per
  second for every k in 0..K, where k = 0 is the verifier decoding alone; the best is used, and
  re-chosen every pass. A k whose pass size differs from the last pass is charged the re-planning
  cost spread over the passes a size is expected to last (the measured mean run of one size, at
  most :data:`SWITCH_HORIZON`), so the pass size changes only when the change is worth it (a k
  that changes every pass was what made "auto" slower than a fixed k). Where
  k = 0 wins, an optimistic estimate is tried now and then, on a budget of
  :data:`EXPLORE_SHARE` of the decoding time, so a pair where speculation never pays stays within
  a few percent of target-only decoding.
* **Two drafters** (:class:`HybridLength`): by default the lowest level can draft by prompt
  lookup or by its draft model; each has its own controller, and each pass the one expecting
  more tokens per second drafts.

Greedy output does not depend on k (verification is lossless), so ``"auto"`` keeps greedy output
equal to the target's; sampling stays exact too, because k is fixed before each draft.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ov_spec.runtime.limits import MAX_DRAFT_TOKENS
from ov_spec.runtime.speculator import PassOutcome
from ov_spec.runtime.stateful import StatefulLM

COST_MODEL_VERSION = 4
TOKEN_COUNTS = (1, 2, 3, 5, 9, MAX_DRAFT_TOKENS + 1)  # tokens per pass timed; linear in between
# cached tokens the passes are timed after; linear in between, and beyond for a 1-token pass (larger
# passes keep their ratio to it there: CostTable.pass_costs)
CONTEXTS = (32, 256)
CALIBRATION_BUDGET_S = 1.5  # per model: timing sweeps (up to three) that fit in this
EXPLORE_SHARE = 0.01  # decoding time that may be lost trying a draft length the model doubts
PRIOR_STRENGTH = 3.0  # pseudo-passes the preview's acceptance counts for
DECAY = 0.98  # weight of the past per new pass (memory of ~50 passes)
DEFAULT_PRIOR = 0.5  # acceptance assumed when the export measured no preview
DEFAULT_OVERHEAD_S = 2e-4  # the loop's own time per pass until it is measured
LOOKUP_IDLE, LOOKUP_EVERY = 4, 8  # prompt lookup: after 4 idle passes, search 1 pass in 8 ...
LOOKUP_SHARE = 0.01  # ... if a search costs more than this share of a pass alone
MEMO_TOKENS = 32  # a choice is reused until the context grows by this much (or acceptance changes)
MEMO_PASSES = 64  # ... or until this many more passes were learned from (costs, sizes, re-planning)
RUN = 4  # calibration: passes of one size in a row; the first pays the re-planning, the rest do not
SWITCH_HORIZON = 8  # at most this many passes share a new size's re-planning cost (see LevelCosts.horizon)
# The measured check on the prediction (AutoDraftLength._guard): tokens/s measured while drafting
# against tokens/s measured decoding alone, each an average over ~20 recent passes.
GUARD_DECAY = 0.95
GUARD_WEAKEN = 0.99  # per refusal: the refusing measurement counts for this share of its passes
GUARD_MIN = 6.0  # (decayed) passes each side needs before the check judges
GUARD_PROBE = 16  # while the baseline is unmeasured or close, one drafting choice in 16 decodes alone
GUARD_CLEAR = 1.3  # drafting this much faster than decoding alone needs no more probing
FORGET = 0.05  # per 8 passes decoded alone: what drafting passes taught fades by this share ...
STALE_PASSES = 256  # ... once this many passes went by without re-measuring it
COSTS_EVERY = 8  # a controller re-derives its costs after this many passes were learned from
HYBRID_SKIP = 8  # HybridLength: the draft model's choice is re-asked at least every 9th pass


# -- step costs -----------------------------------------------------------------------------------
@dataclass
class CostTable:
    """Median seconds of one model's pass over ``t`` tokens after ``context`` cached tokens, in a
    run of passes of that size, and what changing the size costs."""

    contexts: list[int]
    token_counts: list[int]
    pass_s: list[list[float]]  # [context index][token-count index], the pass after one of its size
    rollback_s: list[float]  # [context index]: dropping a few tokens from the cache
    # [context index]: the extra seconds of a pass whose size differs from the previous pass of
    # this model (the CPU plugin re-plans; measured 1.0 vs 1.7-2.6 ms on the 6.8M pair).
    switch_s: list[float] = field(default_factory=list)
    seconds: float = 0.0  # how long the calibration took
    key: dict[str, Any] = field(default_factory=dict)  # what it was measured for (see cost_key)

    def __post_init__(self) -> None:
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def pass_costs(self, context: int, t_max: int) -> np.ndarray:
        """Seconds of a pass over ``t`` tokens for ``t = 0..t_max`` (index 0 is unused, 0.0)."""
        context = int(context) // 8 * 8  # the decode loop asks every pass: reuse within 8 tokens
        key = (context, t_max)
        cached = self._cache.get(key)
        if cached is None:
            ts = np.arange(1, t_max + 1, dtype=np.float64)
            rows = []
            for row in self.pass_s:
                counts, ys = np.asarray(self.token_counts, float), np.asarray(row, float)
                slope = (ys[-1] - ys[-2]) / (counts[-1] - counts[-2]) if len(ys) > 1 else 0.0
                # Linear between measured counts; past the last one, its slope.
                rows.append(
                    np.where(ts > counts[-1], ys[-1] + slope * (ts - counts[-1]), np.interp(ts, counts, ys))
                )
            per_t = np.stack(rows)  # [contexts, t_max]
            out = np.zeros(t_max + 1)
            growth = self._growth_beyond(context)
            if growth is not None:
                out[1:] = per_t[-1] * growth
            else:
                out[1:] = [_in_context(self.contexts, per_t[:, i], context) for i in range(t_max)]
            if len(self._cache) > 256:
                self._cache.clear()
            cached = self._cache[key] = out
        return cached

    def pass_cost(self, tokens: int, context: int) -> float:
        return float(self.pass_costs(context, tokens)[tokens])

    def switch_cost(self, context: int) -> float:
        """Extra seconds of a pass whose size differs from the model's previous pass."""
        if len(self.switch_s) != len(self.contexts):
            return 0.0
        growth = self._growth_beyond(int(context) // 8 * 8)  # (rounded as pass_costs rounds)
        if growth is not None:  # (carried linearly, smollm2-wide's 10 and 13 ms became 30 ms at 1500)
            return self.switch_s[-1] * growth
        return _in_context(self.contexts, self.switch_s, context)

    def _growth_beyond(self, context: int) -> float | None:
        """Past the last timed context: how much a 1-token pass grows from there (the factor every
        pass size and the re-planning cost are scaled by); None inside the timed range.

        Only the 1-token pass is extrapolated; the rest keep their measured ratio to it. Each pass
        size's own slope between two noisy points, carried 5x beyond them, made a 5-token pass of
        smollm2-wide's target 2.25x a 1-token pass at 1500 tokens (timed at 59 and 283: 1.59x,
        1.72x); prompt lookup k=4 then paid 1.17x, so its passes cost ~1.6x. An overestimate is
        never tested (auto stops drafting), an underestimate is (the measured check and the
        learned pass sizes correct it)."""
        if context <= self.contexts[-1] or len(self.contexts) < 2:
            return None
        last = self.pass_s[-1][0]  # (token_counts start at 1)
        one = _in_context(self.contexts, [row[0] for row in self.pass_s], context)
        return one / last if last > 0 else 1.0

    def rollback_cost(self, context: int) -> float:
        return _in_context(self.contexts, self.rollback_s, context)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


def _in_context(contexts: Sequence[int], ys: Sequence[float], context: int) -> float:
    """Linear in the context length, extrapolated with a non-negative slope past the last point."""
    if len(contexts) == 1:
        return float(ys[0])
    slope = max((ys[-1] - ys[0]) / (contexts[-1] - contexts[0]), 0.0)
    if context >= contexts[-1]:
        return float(ys[-1] + slope * (context - contexts[-1]))
    return float(max(np.interp(context, contexts, ys), 0.0))


def calibrate(
    lm: StatefulLM,
    contexts: Sequence[int] = CONTEXTS,
    token_counts: Sequence[int] = TOKEN_COUNTS,
    budget_s: float = CALIBRATION_BUDGET_S,
    seed: int = 0,
    max_context: int = 0,
) -> CostTable:
    """Time ``lm``'s passes over each token count after about each context (its cache is reset after).

    Passes are timed one after another without rolling back in between, as decoding runs them:
    a trimmed cache is re-allocated by the next pass, which would make every pass look dearer.
    That penalty belongs to the rollback, so the rollback cost is the trim of a few tokens plus
    the slowdown of the pass after it. Each size runs :data:`RUN` passes in a row: the first one
    follows a pass of another size and pays the re-planning (its excess over the others is the
    switch cost), the others give the pass cost. One warm-up sweep over every size comes first (a
    new shape picks its kernels); each point is the median of up to three sweeps, as the budget
    allows. The context grows by the tokens fed, so the table records the mean context each row saw.
    """
    start = time.perf_counter()
    if max_context:  # room for the prefill, three sweeps and the rollback probes
        room = max_context - 3 * RUN * sum(token_counts) - 32
        contexts = sorted({max(1, min(c, room)) for c in contexts})
    rng = np.random.default_rng(seed)
    rows: list[list[float]] = []
    rollbacks: list[float] = []
    switches: list[float] = []
    seen: list[int] = []

    def timed(t: int) -> float:
        before = lm.stats.infer_s
        lm.forward([7] * t, n_logits=t)
        return lm.stats.infer_s - before

    try:
        lm.reset()
        lm.forward(rng.integers(3, lm.vocab_size, max(contexts[0], 1)).tolist())
        sweep = sum(timed(t) for t in token_counts)  # warm-up
        rounds = max(1, min(3, int(budget_s / max(sweep * RUN * len(contexts), 1e-9))))
        for context in contexts:
            lm.reset()
            lm.forward(rng.integers(3, lm.vocab_size, context).tolist())
            samples: dict[int, list[float]] = {t: [] for t in token_counts}
            extra: list[float] = []
            lengths = []
            for _ in range(rounds):
                for t in token_counts:
                    lengths.append(len(lm.tokens))
                    run = [timed(t) for _ in range(RUN)]
                    steady = statistics.median(run[1:])
                    samples[t].append(steady)
                    extra.append(run[0] - steady)
            probe = 5  # a k = 4 verification pass, rolled back by four tokens, then the next one
            steady = min(timed(probe) for _ in range(2))
            penalties = []
            for _ in range(2):
                before_rb = lm.stats.rollback_s
                lm.rollback(len(lm.tokens) - 4)
                slower = max(timed(probe) - steady, 0.0)
                penalties.append(lm.stats.rollback_s - before_rb + slower)
            rows.append([statistics.median(samples[t]) for t in token_counts])
            rollbacks.append(statistics.median(penalties))
            switches.append(max(statistics.median(extra), 0.0))
            seen.append(int(statistics.fmean(lengths)))
    finally:
        lm.reset()
    # A pass over more tokens never costs less: noise on a shared machine must not say otherwise.
    rows = [np.maximum.accumulate(np.asarray(r)).tolist() for r in rows]
    return CostTable(seen, list(token_counts), rows, rollbacks, switches, time.perf_counter() - start)


# -- the disk cache -------------------------------------------------------------------------------
def cost_key(
    folder: Path, model_path: str, device: str, device_name: str, properties: Mapping[str, Any], rollback: str
) -> dict[str, Any]:
    """What a cost table depends on: the model files, device, compile properties, rollback, versions."""
    import openvino as ov

    files = {}
    for name in ("openvino_model.xml", "openvino_model.bin"):
        path = folder / model_path / name
        st = path.stat() if path.exists() else None
        files[name] = [st.st_size, st.st_mtime_ns] if st else None
    return {
        "version": COST_MODEL_VERSION,
        "files": files,
        "device": device,
        "device_name": device_name,
        "properties": {str(k): str(v) for k, v in sorted(properties.items())},
        "rollback": rollback,
        "openvino": ov.__version__,
        "cpus": os.cpu_count(),
        "contexts": list(CONTEXTS),
        "token_counts": list(TOKEN_COUNTS),
    }


def cache_dir(folder: Path) -> Path:
    """Where cost tables live: ``$OV_SPEC_CACHE/costs`` (default ``~/.cache/ov_spec/costs``).

    Never inside the pipeline folder: it may be read-only, shared between machines whose costs
    differ, or packaged for an edge box, and loading it must not change it.
    """
    del folder  # tables are keyed by the folder's path and files (see _cache_file)
    return Path(os.environ.get("OV_SPEC_CACHE", "~/.cache/ov_spec")).expanduser() / "costs"


def _cache_file(folder: Path, name: str, key: Mapping[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    # The fallback cache is shared by every pipeline: the folder's path keeps them apart.
    where = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8]
    return cache_dir(folder) / f"{name}-{where}-{digest}.json"


def load_table(folder: Path, name: str, key: Mapping[str, Any]) -> CostTable | None:
    """The cached table for ``key``, or None (missing, unreadable, or measured for another key)."""
    path = _cache_file(folder, name, key)
    try:
        raw = json.loads(path.read_text())
        table = CostTable(**raw)
    except (OSError, ValueError, TypeError):
        return None
    return table if table.key == dict(key) else None


def save_table(folder: Path, name: str, table: CostTable) -> Path | None:
    """Write atomically (temp file + rename); a read-only place is not an error."""
    path = _cache_file(folder, name, table.key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(table.to_dict()))
        os.replace(tmp, path)
        return path
    except OSError:
        return None


# -- acceptance -----------------------------------------------------------------------------------
class Acceptance:
    """Measured acceptance of one drafter at one verifier: ``h[j] = P(token j+1 accepted | 1..j were)``.

    Each pass that drafted ``d`` tokens and accepted ``a`` is a trial at positions
    ``0..min(a, d-1)`` and a success at ``0..a-1``. Counts decay by :data:`DECAY` per pass, so the
    estimate follows the text. A position with few trials leans on the one before it (bursts: a
    token after accepted ones is at least as likely accepted), position 0 on the prior.
    """

    def __init__(
        self, prior: float, k_max: int = MAX_DRAFT_TOKENS, strength: float = PRIOR_STRENGTH, then: float = 0.0
    ):
        """``then``: the prior of a token after accepted ones (a floor under what the position
        before it says; 0: the position before it alone), for drafters whose runs come in bursts."""
        self.prior = float(min(max(prior, 0.0), 0.99))
        self.then = float(min(max(then, 0.0), 0.99))
        self.strength = strength
        self.trials = np.zeros(k_max)
        self.successes = np.zeros(k_max)
        self.passes = 0
        self._h: dict[bool, np.ndarray] = {}  # hazards, until the next update

    def update(self, drafted: int, accepted: int) -> None:
        if drafted <= 0:
            return
        self._h.clear()
        self.trials *= DECAY
        self.successes *= DECAY
        reached = min(accepted + 1, drafted)
        self.trials[:reached] += 1.0
        self.successes[:accepted] += 1.0
        self.passes += 1

    def hazards(self, optimistic: bool = False) -> np.ndarray:
        """``h[j]`` for j = 0..k_max-1; ``optimistic`` adds one standard error (for exploring)."""
        if optimistic in self._h:
            return self._h[optimistic]
        h = []
        before, strength = self.prior, self.strength
        # (plain floats: a loop over numpy scalars cost ~25 us, a tenth of a small model's pass)
        for trials, successes in zip(self.trials.tolist(), self.successes.tolist()):
            n = trials + strength
            mean = (successes + strength * before) / n
            # The bonus is not passed on to the next position: it would compound to certainty.
            h.append(min(mean + math.sqrt(max(mean * (1 - mean), 0.05) / n), 0.99) if optimistic else mean)
            before = max(mean, self.then)
        self._h[optimistic] = np.minimum(np.array(h), 0.995)
        return self._h[optimistic]


def expected_accepted(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For k = 0..K: expected accepted tokens and the chance that all k are accepted."""
    survive = np.cumprod(h)
    return np.concatenate([[0.0], np.cumsum(survive)]), np.concatenate([[1.0], survive])


@dataclass
class LevelCosts:
    """What one iteration of a level costs, in seconds, for the choice of k."""

    verify: np.ndarray  # [K + 2]: verify[t] = the verifier's pass over t tokens (t = k + 1)
    rollback: float  # the verifier's rollback after a rejection
    draft_per_token: float  # the drafter's cost per drafted token
    draft_rollback: float = 0.0  # the drafter's own rollback after a rejection
    overhead: float = 0.0  # the loop's own time per iteration
    switch: float = 0.0  # the verifier's extra time for a pass whose size differs from the last one
    # passes a new size is expected to last, which share its re-planning: the measured mean run of
    # one pass size (CostModel.run_length), at most SWITCH_HORIZON
    horizon: float = SWITCH_HORIZON
    # the same for runs of passes without drafts (CostModel.alone_run): how soon a level that
    # stops drafting (prompt lookup found nothing) drafts again, paying the re-planning back
    alone_horizon: float = SWITCH_HORIZON
    # 1-token passes run on a graph of their own (CostModel.separate): k = 0 re-plans nothing, and
    # ``current`` in tokens_per_second is the verification graph's last size
    separate: bool = False
    # per drafting pass: what a draft model needs first to catch up on tokens it did not see
    # (prompt lookup drafted, or the verifier decoded alone), spread over its measured run of
    # drafting passes (CostModel.draft_run); see AutoDraftLength's ``behind``
    catch_up: float = 0.0
    context: int = 0  # the cached tokens these costs are for (update() re-reads the table there)


def tokens_per_second(
    h: np.ndarray, costs: LevelCosts, k_max: int, current: int | None = None, padded: bool = False
) -> np.ndarray:
    """Expected tokens/s of one level for k = 0..k_max (k = 0: the verifier alone).

    ``current`` is the k of the verifier's last pass: every other k pays the re-planning of a new
    pass size, spread over the ``costs.horizon`` passes it is expected to be kept for; k = 0 after
    a drafting pass pays it twice (leaving the size and coming back when drafting resumes), spread
    over the measured run without drafts (``costs.alone_horizon``). With a separate decode graph
    (``costs.separate``) k = 0 pays nothing and ``current`` is the last verification pass's k.
    ``padded``: every pass is padded to ``k_max`` draft positions (the last pass's size, so no
    re-planning; the filler's rows are cut off unverified).
    """
    expected, all_accepted = expected_accepted(h[:k_max])
    k = np.arange(k_max + 1)
    seconds = (
        costs.verify[k_max + 1 if padded else k + 1]
        + (1.0 - all_accepted) * (costs.rollback + costs.draft_rollback)
        + k * costs.draft_per_token
        + (k > 0) * costs.catch_up
        + costs.overhead
    )
    if current is not None and costs.switch > 0 and not padded:
        switched = (k != current) * (costs.switch / costs.horizon)
        if costs.separate:  # decoding alone runs on its own graph
            switched[0] = 0.0
        elif current:  # decoding alone for a while: leaving the size now and coming back to it
            switched[0] = 2 * costs.switch / costs.alone_horizon
        seconds = seconds + switched
    return (expected + 1.0) / seconds


def catch_up_seconds(table: CostTable, lag: int, context: int, one_by_one: int) -> float:
    """What a draft model ``lag`` tokens behind spends before its usual 1-token first pass
    (ModelProposer.propose): ``lag - 1`` more 1-token passes when ``lag <= one_by_one``, else one
    pass over all ``lag`` tokens in place of the first, and the re-planning there and back."""
    if lag <= 1:
        return 0.0
    if lag <= one_by_one:
        return (lag - 1) * table.pass_cost(1, context)
    return table.pass_cost(lag, context) - table.pass_cost(1, context) + 2 * table.switch_cost(context)


def best_k(rates: np.ndarray) -> int:
    """The k with the highest rate; ties go to the shorter draft."""
    return int(np.argmax(rates))


# -- the controller ---------------------------------------------------------------------------------
class CostModel:
    """Per pipeline: the cost tables of its models and the acceptance of each drafter, kept across
    requests (acceptance measured on one request informs the next)."""

    def __init__(
        self,
        tables: Callable[[str], CostTable],
        priors: Mapping[tuple[str, str], float] | None = None,
        k_max: int = MAX_DRAFT_TOKENS,
        separate: Collection[str] = (),
    ) -> None:
        """``separate``: the verifiers whose 1-token passes run on a graph of their own
        (``ov_spec.runtime.paged``): decoding alone then never re-plans their verification graph."""
        self._table_of = tables
        self.separate = frozenset(separate)
        self._tables: dict[str, CostTable] = {}
        self.priors = dict(priors or {})
        self.k_max = k_max
        self.acceptance: dict[tuple, Acceptance] = {}
        self.overhead: dict[str, float] = {}  # level name -> loop time per iteration (EMA)
        self.scale: dict[str, float] = {}  # verifier -> measured / tabled pass time (EMA)
        # (verifier, drafter; None = decoding alone) -> {tokens per pass: measured / tabled time of
        # a pass of that size that kept the previous pass's size}. In the loop a larger pass can
        # cost more than it did in isolation: on the 6.8M tiny pair, 4-token passes of prompt
        # lookup took 1.5 ms and 1-token passes 1.0 ms, where the table said 1.1 and 0.9 ms.
        # A size no pass re-measured for a while drifts back to the overall scale (forget_drafting).
        self.size_scale: dict[tuple[str, str | None], dict[int, float]] = {}
        # verifier -> measured / tabled re-planning cost, from the passes that changed size (in
        # the loop, 1.2-1.5 ms on that pair's 1 ms passes)
        self.switch_scale: dict[str, float] = {}
        self.draft_scale: dict[tuple[str, str], float] = {}  # (verifier, drafter) -> the same for drafts
        self.explore_budget: dict[tuple[str, str], list[float]] = {}  # (decode s, lost s)
        # verifier -> mean run of passes of one size (EMA, 1..SWITCH_HORIZON): the re-planning
        # horizon. Spreading a new size's cost over 8 passes while choices change every pass
        # under-charges it (prompt lookup on the tiny pair: 57 changes of size in 95 passes).
        self.run_length: dict[str, float] = {}
        self._runs: dict[str, list[int]] = {}  # verifier -> [pass size, passes at it so far]
        self.alone_run: dict[str, float] = {}  # verifier -> the same for runs without drafts
        # (verifier, drafter) -> mean run of passes a draft model drafted without falling behind
        # (EMA): the passes that share the cost of its catching up (LevelCosts.catch_up)
        self.draft_run: dict[tuple[str, str], float] = {}
        # (verifier, drafter or None = decoding alone, pass width) -> decayed [seconds, tokens, passes]
        self.measured: dict[tuple[str, str | None, int], list[float]] = {}
        self._learned_at: dict[tuple[str, str | None, int], int] = {}  # (size key, t) -> version
        self.version = 0  # counts what was learned: a controller's costs are re-derived as it grows
        # (verifier, what drafts, greedy) -> that controller's memo of choices (AutoDraftLength.choose)
        self.memo: dict[tuple[str, str, bool], dict[tuple, Choice]] = {}

    def record(self, verifier: str, drafter: str | None, width: int, seconds: float, tokens: int) -> None:
        """Add one pass to the measured speed of drafting with ``drafter`` at passes of ``width``
        draft positions (``drafter`` None: decoding alone, at any width)."""
        m = self.measured.setdefault((verifier, drafter, width if drafter else 0), [0.0, 0.0, 0.0])
        m[0] = GUARD_DECAY * m[0] + seconds
        m[1] = GUARD_DECAY * m[1] + tokens
        m[2] = GUARD_DECAY * m[2] + 1.0

    def weaken(self, verifier: str, drafter: str, width: int, factor: float = GUARD_WEAKEN) -> None:
        """Count the measurement of drafting at ``width`` as ``factor`` of the passes it was."""
        m = self.measured.get((verifier, drafter, width))
        if m is not None:
            m[2] *= factor

    def record_size(self, verifier: str, width: int) -> None:
        """Count a pass of ``width`` draft positions; a change of size ends a run (with a separate
        decode graph, only the verification graph's sizes make runs)."""
        self.version += 1
        if width == 0 and verifier in self.separate:
            return
        run = self._runs.setdefault(verifier, [width, 0])
        if run[0] != width:
            old = self.run_length.get(verifier, SWITCH_HORIZON)
            self.run_length[verifier] = min(max(0.7 * old + 0.3 * run[1], 1.0), SWITCH_HORIZON)
            if run[0] == 0:
                old = self.alone_run.get(verifier, SWITCH_HORIZON)
                self.alone_run[verifier] = min(max(0.7 * old + 0.3 * run[1], 1.0), SWITCH_HORIZON)
            run[:] = [width, 0]
        run[1] += 1

    def pass_scale(self, verifier: str, drafter: str, t_max: int) -> np.ndarray:
        """Measured / tabled pass time for ``t = 0..t_max`` tokens: a 1-token pass as measured
        decoding alone, larger ones as measured drafting with ``drafter``, linear between measured
        sizes and flat beyond them; the verifier's overall scale where nothing is measured."""
        measured = dict(self.size_scale.get((verifier, drafter), {}))
        alone = self.size_scale.get((verifier, None), {})
        if 1 in alone:
            measured[1] = alone[1]
        overall = self.scale.get(verifier, 1.0)
        if not measured:
            return np.full(t_max + 1, overall)
        sizes = sorted(measured)
        return np.interp(np.arange(t_max + 1), sizes, [measured[t] for t in sizes])

    def learn_pass(self, verifier: str, drafter: str | None, t: int, ratio: float, weight: float) -> None:
        """One measured / tabled sample for a steady pass of ``t`` tokens (see :meth:`pass_scale`)."""
        key = _size_key(verifier, drafter, t)
        sizes = self.size_scale.setdefault(key, {})
        self._learned_at[(*key, t)] = self.version
        sizes[t] = _ema(sizes.get(t, self.scale.get(verifier, 1.0)), ratio, weight)

    def forget_drafting(self, verifier: str, share: float = FORGET) -> None:
        """Move each pass size's factor that drafting taught and no pass re-measured for
        :data:`STALE_PASSES` passes ``share`` of the way to the verifier's overall scale, which
        decoding alone keeps measuring; called per 8 passes decoded alone. A size is only
        re-measured by drafting at it: a slow spell of the machine during a few drafting passes
        could otherwise keep drafting at that size off for good. (Prompt lookup stopping for the
        rest of a run on SmolLM2 had another cause, the guard: see _guard_name.) Sizes in use are
        left alone: on the tiny pair, where 4-token passes cost 1.5 ms in the loop against 1.1
        tabled, fading them all made the default 0.88x of target-only instead of 1.19x."""
        overall = self.scale.get(verifier, 1.0)
        for (name, drafter), sizes in self.size_scale.items():
            if name == verifier and drafter is not None:
                for t in sizes:
                    if self.version - self._learned_at.get((name, drafter, t), 0) > STALE_PASSES:
                        sizes[t] += share * (overall - sizes[t])

    def knows_pass(self, verifier: str, drafter: str | None, t: int) -> bool:
        """Whether a steady pass of ``t`` tokens has been measured (see :meth:`learn_pass`)."""
        return t in self.size_scale.get(_size_key(verifier, drafter, t), {})

    def measured_rate(self, verifier: str, drafter: str | None, width: int = 0) -> tuple[float, float]:
        """(tokens/s, decayed passes) measured for drafting with ``drafter`` at ``width`` (None:
        decoding alone)."""
        seconds, tokens, passes = self.measured.get(
            (verifier, drafter, width if drafter else 0), (0.0, 0.0, 0.0)
        )
        return (tokens / seconds if seconds > 0 else 0.0), passes

    def table(self, name: str) -> CostTable:
        if name not in self._tables:
            table = self._table_of(name)
            self._tables[name] = table
        return self._tables[name]

    def budget(self, verifier: str, drafter: str) -> list[float]:
        """``[decoding seconds, seconds lost exploring]`` of one verifier/drafter pair."""
        return self.explore_budget.setdefault((verifier, drafter), [0.0, 0.0])

    def acceptance_of(self, verifier: str, drafter: str, greedy: bool, state: Any) -> Acceptance:
        key = (verifier, drafter, greedy, state)
        if key not in self.acceptance:
            prior = self.priors.get((verifier, drafter), DEFAULT_PRIOR)
            then = 0.0
            if isinstance(state, tuple) and state and state[0] == "ngram":
                prior, then = ngram_prior(state[1], state[2]), NGRAM_THEN
            if not greedy:  # sampling accepts less often than greedy agreement suggests
                prior, then = prior * 0.8, then * 0.8
            self.acceptance[key] = Acceptance(prior, self.k_max, then=then)
        return self.acceptance[key]


def _size_key(verifier: str, drafter: str | None, t: int) -> tuple[str, str | None]:
    """Where a pass of ``t`` tokens is learned (CostModel.size_scale): a 1-token pass is the
    verifier decoding alone, whoever chose it; a larger one belongs to its drafter."""
    return (verifier, None if t == 1 else drafter)


def _ema(old: float, sample: float, weight: float = 0.1) -> float:
    """One step of an exponential average of a measured/tabled ratio, bounded to 1/4..4."""
    return float(min(max((1 - weight) * old + weight * min(max(sample, 0.25), 4.0), 0.25), 4.0))


# Prompt lookup copies a run of text: once its first token is accepted, the copy is on track and
# the next ones follow far more often than the first did. The prior of a token after accepted
# ones: smollm2-wide, 1500-token code prompts, fixed k=4 accepted 1.27 of 4 copied tokens per pass
# at 36% acceptance, as from a first-token chance of ~0.45 and ~0.75 after it; with flat priors of
# 0.15-0.55 auto never drafted there and ran at target-only speed, 0.86x of k=4.
NGRAM_THEN = 0.7


def ngram_prior(match_length: int, recent: bool) -> float:
    """A weak prior for prompt lookup: longer and more recent matches are accepted more often."""
    return min(0.15 + 0.15 * (match_length - 1) + (0.1 if recent else 0.0), 0.7)


def preview_priors(manifest: Any) -> dict[tuple[str, str], float]:
    """Acceptance priors from the export's preview: each draft vs its level above and vs the target."""
    preview = getattr(manifest, "preview", None) or {}
    entries = preview.get("models", {}) if isinstance(preview, Mapping) else {}
    levels = manifest.by_level()
    out: dict[tuple[str, str], float] = {}
    for m in levels[1:]:
        entry = entries.get(m.name, {})
        above = levels[m.level - 1].name
        if isinstance(entry.get("vs_level_above"), (int, float)):
            out[(above, m.name)] = float(entry["vs_level_above"])
        if isinstance(entry.get("vs_target"), (int, float)):
            out.setdefault((levels[0].name, m.name), float(entry["vs_target"]))
    return out


@dataclass
class Choice:
    """What the controller decided for one pass."""

    k: int
    rate: float  # predicted tokens/s at k
    base: float  # predicted tokens/s of the verifier alone (k = 0)
    costs: LevelCosts | None = None
    explore: bool = False
    width: int = 0  # pad the pass to this many draft positions (> k: keeps the last pass's size)
    guarded: bool = False  # decoding alone because drafting measured slower (see _guard)
    tokens: float = 1.0  # predicted tokens the pass emits (accepted + 1); ``tokens / rate`` its seconds


def _emitted(h: np.ndarray, k: int) -> float:
    """Expected tokens a pass drafting ``k`` emits under hazards ``h``: accepted ones + 1."""
    return float(expected_accepted(h[:k])[0][k]) + 1.0


class AutoDraftLength:
    """``draft_tokens="auto"`` for one level: the draft length of each pass, from the cost model.

    Same interface as :class:`ov_spec.runtime.speculator.DraftLength` (``choose``, ``update``,
    ``reset``), plus :meth:`rate`, the level's predicted tokens/s, which the level above turns into
    this level's cost per token when it drafts with it.
    """

    adaptive = False

    def __init__(
        self,
        model: CostModel,
        verifier: str,
        drafter: str,
        drafter_cost: Callable[[int], tuple[float, float]],
        greedy: bool,
        bucket: Callable[[Sequence[int]], tuple[str, int, bool] | None] | None = None,
        source: str = "",
        behind: Callable[[Sequence[int]], tuple[float, bool]] | None = None,
    ) -> None:
        """``source`` names what drafts, level by level (default ``drafter``): the memo of choices
        is kept per source, since a cascade level and a plain model of one name cost differently.
        ``behind`` (a draft model): for a sequence, the tabled seconds the drafter needs before
        its usual first pass, to feed the tokens it has not seen, and whether it missed whole
        passes (the hybrid's prompt lookup drafted, or the verifier decoded alone), which ends its
        run of drafting passes. On the tiny pair such catching up, the draft's prefill included,
        took 751 of the 823 tokens the draft model was fed under the hybrid default."""
        self.cost_model = model
        self.verifier = verifier
        self.drafter = drafter
        self._drafter_cost = drafter_cost  # context -> (seconds per drafted token, its rollback s)
        self.greedy = greedy
        self._bucket = bucket  # prompt lookup: ("ngram", match length, recent) of the next proposal
        self._behind = behind
        self.k_max = model.k_max
        # (memo key, state, acceptance epoch) -> choice: in the cost model, so kept across
        # requests (the key holds all the choice rests on)
        self._memo = model.memo.setdefault((verifier, source or drafter, greedy), {})
        self._separate = verifier in model.separate
        self.reset()

    def reset(self) -> None:
        self.k = 0  # the draft length chosen last
        self.width = 0  # draft positions the next pass scores (k, or the kept size; see _keep_size)
        self.last_drafted = 0  # draft positions of the last pass: the next choice prefers to keep its size
        self.last_wide = 0  # ... of the last pass that drafted (the verification graph's size)
        self._prev_full = False
        self._state: Any = None
        self._last_bucket: tuple[str, int, bool] = ("ngram", 1, True)  # prompt lookup's last match
        self._choice: Choice | None = None
        # passes without drafts not yet learned from: (measured / tabled pass, the loop's rest)
        self._pending: list[tuple[float, float]] = []
        self._idle = 0  # prompt lookup: passes since a match last paid
        self._lookup_s = 0.0  # prompt lookup: seconds per search (EMA; 0 = not measured yet)
        self.first: Choice | None = None  # the choice of the first decoding pass
        self.explored = 0  # passes that tried a draft length the model doubted
        self.passes = 0
        self.guarded = 0  # passes decoded alone because drafting measured slower (see _guard)
        # what the choices of this request's passes predicted: tokens and seconds (their ratio is
        # the request's predicted speed, next to the measured one)
        self.predicted_tokens = 0.0
        self.predicted_s = 0.0
        self._probe = 0  # drafting choices since the guard last measured decoding alone
        self._costs: tuple[tuple[int, int], LevelCosts] | None = None  # (key, costs), see costs()
        self._extra = 0.0  # a draft model: the catch-up (s, in-loop scale) the next drafting pass pays
        self._run = 0  # ... and its drafting passes since it last fell behind

    def costs(self, context: int) -> LevelCosts:
        """The level's costs at ``context``: the tables, scaled by what the passes measured.

        Reused until the context moves on by MEMO_TOKENS or COSTS_EVERY more passes were learned
        from: every learned value is an average over ~10 passes, and deriving the costs each pass
        cost a 1 ms model's loop ~4% (40 us)."""
        model = self.cost_model
        key = (context // MEMO_TOKENS, model.version // COSTS_EVERY)
        if self._costs is not None and self._costs[0] == key:
            return self._costs[1]
        costs = self._derive_costs(context)
        self._costs = (key, costs)
        return costs

    def _derive_costs(self, context: int) -> LevelCosts:
        model = self.cost_model
        table = model.table(self.verifier)
        per_token, draft_rollback = self._drafter_cost(context)
        scale = model.scale.get(self.verifier, 1.0)
        return LevelCosts(
            verify=table.pass_costs(context, self.k_max + 1)
            * model.pass_scale(self.verifier, self.drafter, self.k_max + 1),
            # The same machine conditions slow the rollback's copies as much as the passes.
            rollback=table.rollback_cost(context) * scale,
            draft_per_token=per_token * model.draft_scale.get((self.verifier, self.drafter), 1.0),
            draft_rollback=draft_rollback,
            overhead=self.cost_model.overhead.get(self.verifier, DEFAULT_OVERHEAD_S),
            switch=table.switch_cost(context) * model.switch_scale.get(self.verifier, scale),
            horizon=model.run_length.get(self.verifier, SWITCH_HORIZON),
            alone_horizon=model.alone_run.get(self.verifier, SWITCH_HORIZON),
            separate=self._separate,
            context=context,
        )

    def rates(self, context: int, state: Any, optimistic: bool = False) -> np.ndarray:
        acc = self.cost_model.acceptance_of(self.verifier, self.drafter, self.greedy, state)
        return tokens_per_second(acc.hazards(optimistic), self.costs(context), self.k_max, self._current)

    def rate(self, context: int, optimistic: bool = False) -> float:
        """This level's best predicted tokens/s at ``context`` (for the level above's choice);
        ``optimistic`` uses the acceptance's optimistic bound (what exploring could find)."""
        state = (*self._last_bucket, self._prev_full) if self._bucket is not None else (self._prev_full,)
        return float(self.rates(context, state, optimistic).max())

    def choose(self, sequence: Sequence[int]) -> int:
        """The draft length of the next pass (0 = the verifier decodes alone).

        The choice is re-derived when the context moves on by :data:`MEMO_TOKENS`, the acceptance
        it rests on changes (every pass at first, then every 4th), the last pass size or the kind
        of match does; otherwise the last one is reused (on a small model a pass costs well under
        a millisecond, and so must deciding it).
        """
        context = len(sequence)
        bucket = None
        if self._bucket is not None:
            # While no kind of match has paid lately, look only every LOOKUP_EVERY-th pass, if a
            # search costs a noticeable share of a pass (LOOKUP_SHARE; on the tiny pair's 1 ms
            # passes). Elsewhere it costs next to nothing and finds matches that pay: on
            # smollm2-wide's 22 ms passes the skipping had left 441-448 passes of 16 requests
            # undrafted instead of 339-345.
            self._idle += 1
            if self._idle > LOOKUP_IDLE and self._idle % LOOKUP_EVERY and self._lookup_dear(context):
                self._state = None
                return self._use(self._derive(context, None, nothing=True))
            start = time.perf_counter()
            bucket = self._bucket(sequence)
            took = time.perf_counter() - start
            self._lookup_s = 0.8 * self._lookup_s + 0.2 * took if self._lookup_s else took
        if bucket is not None and bucket[1] == 0:  # prompt lookup has nothing to copy
            self._state = None
            return self._use(self._derive(context, None, nothing=True))
        if bucket is not None:
            self._last_bucket = bucket
        self._state = (*bucket, self._prev_full) if bucket is not None else (self._prev_full,)
        acc = self.cost_model.acceptance_of(self.verifier, self.drafter, self.greedy, self._state)
        # After its first 8 passes, one pass moves the acceptance by ~2%: re-derive every 4th.
        epoch = acc.passes if acc.passes < 8 else 8 + acc.passes // 4
        catch_up = self._catching_up(sequence)
        # (memoized per factor of ~2 in the catch-up's cost)
        key = (self._memo_key(context), self._state, epoch, math.ceil(math.log2(1.0 + catch_up * 1e4)))
        memo = self._memo.get(key)
        if memo is not None:
            return self._use(self._guard(memo))
        choice = self._derive(context, acc, catch_up=catch_up)
        # Remember the plain choice; an exploring try is never repeated from memory.
        self._remember(key, Choice(0, choice.base, choice.base, choice.costs) if choice.explore else choice)
        return self._use(self._guard(choice))

    def _catching_up(self, sequence: Sequence[int]) -> float:
        """A draft model's catch-up before the next pass, per drafting pass (LevelCosts.catch_up):
        in full when it follows a fully accepted draft, spread over the measured run of drafting
        passes when the draft missed whole passes (which ends that run)."""
        if self._behind is None:
            return 0.0
        seconds, missed = self._behind(sequence)
        pair = (self.verifier, self.drafter)
        seconds *= self.cost_model.draft_scale.get(pair, 1.0)
        self._extra = seconds
        if not missed:
            return seconds
        runs = self.cost_model.draft_run
        if self._run:
            runs[pair] = 0.8 * runs.get(pair, SWITCH_HORIZON) + 0.2 * self._run
            self._run = 0
        return seconds / max(runs.get(pair, SWITCH_HORIZON), 1.0)

    def _lookup_dear(self, context: int) -> bool:
        """Whether one prompt lookup (measured) costs more than LOOKUP_SHARE of a pass alone."""
        costs = self.costs(context)
        return self._lookup_s > LOOKUP_SHARE * (float(costs.verify[1]) + costs.overhead)

    def _guard_name(self) -> str:
        """What the guard measures drafting as: the drafter, and for prompt lookup the length of
        the match. A width where 1-token matches failed says nothing of 3-token ones, which on
        the same prompts were accepted 4-8 times as often (SmolLM2, the shipped and chat prompts)."""
        state = self._state
        if isinstance(state, tuple) and state and state[0] == "ngram":
            return f"{self.drafter}@{state[1]}"
        return self.drafter

    @property
    def _current(self) -> int:
        """The pass size a new pass re-plans from: the last pass's, or with a separate decode
        graph (CostModel.separate) the last verification pass's."""
        return self.last_wide if self._separate else self.last_drafted

    def saw(self, width: int) -> None:
        """The verifier ran a pass with ``width`` draft positions (this controller's or another's)."""
        self.last_drafted = width
        if width:
            self.last_wide = width

    def _memo_key(self, context: int) -> tuple[int, int, int]:
        """What a memoized choice rests on besides acceptance: the context (per MEMO_TOKENS), the
        last pass size, and what was learned (re-derived after MEMO_PASSES learned passes)."""
        return (context // MEMO_TOKENS, self._current, self.cost_model.version // MEMO_PASSES)

    def _remember(self, key: tuple, choice: Choice) -> None:
        if len(self._memo) > 512:  # old contexts and epochs: never asked again
            self._memo.clear()
        self._memo[key] = choice

    def _guard(self, choice: Choice) -> Choice:
        """Check a drafting choice against measurement: the prediction rests on pass costs timed
        in isolation, and on a small, fast pair what a draft's passes do to the verifier's next
        one (caches, thread wake-ups) can outweigh them (the 6.8M tiny target's 2-token passes
        took 3.1 ms after draft passes, its 1-token passes alone 1.0 ms; the table: 1.1, 0.9).
        When drafting at the chosen pass width measured fewer tokens/s than decoding alone,
        decode alone, trying that width again only on the exploration budget; while the two are
        close or the baseline is unmeasured, decode alone one drafting choice in GUARD_PROBE to
        measure it. Each width is judged on its own: that long drafts measured slow must not stop
        the short ones the per-size costs (CostModel.pass_scale) then predict to pay."""
        if choice.k == 0 or choice.explore:
            return choice
        model = self.cost_model
        width = max(choice.k, choice.width)
        drafting, passes = model.measured_rate(self.verifier, self._guard_name(), width)
        alone, alone_passes = model.measured_rate(self.verifier, None)
        alone_choice = Choice(0, choice.base, choice.base, choice.costs)
        if passes >= GUARD_MIN and alone_passes >= GUARD_MIN and drafting < alone:
            decode_s, lost_s = model.budget(self.verifier, self.drafter)
            if lost_s < EXPLORE_SHARE * decode_s:
                return replace(choice, explore=True)
            # Each refusal weakens the measurement a little, so a width measured slow once (in a
            # slow spell, or while the plugin compiled a new shape) is tried again after ~15
            # refusals instead of only on the exploration budget (a prompt lookup width refused
            # this way had stopped lookup for the rest of a run).
            model.weaken(self.verifier, self._guard_name(), width)
            return replace(self._keep_size(alone_choice), guarded=True)
        if alone_passes < GUARD_MIN or drafting < GUARD_CLEAR * alone:
            self._probe += 1
            if self._probe % GUARD_PROBE == 0:
                return self._keep_size(alone_choice)
        return choice

    def _derive(
        self, context: int, acc: Acceptance | None, nothing: bool = False, catch_up: float = 0.0
    ) -> Choice:
        if nothing:  # no draft this pass: the verifier alone (memoized like any choice)
            memo = self._memo.get((self._memo_key(context), None))
            if memo is not None:
                return memo
        costs = self.costs(context)
        base = float(1.0 / (costs.verify[1] + costs.overhead))
        if nothing or acc is None:
            choice = self._keep_size(Choice(0, base, base, costs))
            self._remember((self._memo_key(context), None), choice)
            return choice
        if catch_up:
            costs = replace(costs, catch_up=catch_up)
        h = acc.hazards()
        rates = tokens_per_second(h, costs, self.k_max, self._current)
        k = best_k(rates)
        choice = self._keep_size(Choice(k, float(rates[k]), base, costs, tokens=_emitted(h, k)), h)
        decode_s, lost_s = self.cost_model.budget(self.verifier, self.drafter)
        if choice.k == 0 and lost_s < EXPLORE_SHARE * decode_s:
            hopeful = tokens_per_second(acc.hazards(optimistic=True), costs, self.k_max, self._current)
            k_up = best_k(hopeful)
            # What one try may lose: its time beyond what its tokens would cost the verifier alone.
            loss = (k_up + 1) * (1.0 / rates[k_up] - 1.0 / base) if k_up else 0.0
            if k_up and lost_s + max(loss, 0.0) <= EXPLORE_SHARE * decode_s:
                choice = Choice(k_up, float(rates[k_up]), base, costs, explore=True, tokens=_emitted(h, k_up))
        return choice

    def _keep_size(self, choice: Choice, h: np.ndarray | None = None) -> Choice:
        """A shorter pass than the last one pays the re-planning; padded to the last size it does
        not. Padding wins where scoring more positions costs little (a memory-bound verifier:
        the 103M fp16 target's 5-token pass costs about its 1-token pass) or where prompt lookup's
        kinds of match would change k every pass. ``h``: the acceptance hazards, to weigh every
        k up to the last size; without them only drafting nothing (k = 0) is weighed. (A run
        without drafts pays the re-planning twice, see tokens_per_second: on the tiny pair prompt
        lookup often finds nothing for one pass only.)"""
        last, costs = self._current, choice.costs
        if not last or costs is None or costs.switch <= 0 or choice.k >= last:
            return choice
        if h is None:
            alone = float(tokens_per_second(np.zeros(0), costs, 0, last)[0])
            kept = float(tokens_per_second(np.zeros(last), costs, last, padded=True)[0])
            return Choice(0, kept, choice.base, costs, width=last) if kept > alone else choice
        padded = tokens_per_second(h, costs, last, padded=True)
        k = best_k(padded)
        if padded[k] > choice.rate:
            return Choice(k, float(padded[k]), choice.base, costs, width=last, tokens=_emitted(h, k))
        return choice

    def _use(self, choice: Choice) -> int:
        if choice.k:
            self._idle = 0
        self._choice = choice
        if self.first is None:
            self.first = choice
        self.k = choice.k
        self.width = max(choice.k, choice.width)
        return choice.k

    def update(self, outcome: PassOutcome) -> None:
        """After a pass: learn acceptance, the measured costs, and what exploring cost.

        The cost tables were timed once, perhaps on a busier machine, and a pass in the loop can
        cost more than it did timed alone: the ratio of measured to tabled verification time
        scales the verifier's table per pass size (passes that kept the previous size; see
        CostModel.pass_scale) and overall, a pass that changed size teaches the re-planning cost,
        the rest of a pass without drafts is the loop's own overhead, and what remains of a pass
        with drafts scales the drafter's cost (each an exponential average, bounded to 1/4..4x).
        """
        drafted, accepted, seconds = outcome.drafted, outcome.accepted, outcome.seconds
        emitted, verify_s, width = outcome.emitted, outcome.verify_s, outcome.scored
        choice, self._choice = self._choice, None
        if choice is None:
            return
        self.passes += 1
        self.guarded += choice.guarded
        self.predicted_tokens += choice.tokens
        self.predicted_s += choice.tokens / choice.rate
        model = self.cost_model
        model.record_size(self.verifier, width)
        if seconds > 0:
            model.record(self.verifier, self._guard_name() if drafted else None, width, seconds, emitted or 1)
        # A pass of another size than the one before paid the re-planning.
        # (with a separate decode graph a pass without drafts runs on its own graph of one size)
        switched = width != self._current if width or not self._separate else False
        self.saw(width)
        costs = choice.costs
        tabled = tabled_switch = 0.0  # the table's (unscaled) time of this pass and its re-planning
        if costs is not None:
            table = model.table(self.verifier)
            tabled = float(table.pass_costs(costs.context, self.k_max + 1)[width + 1])
            tabled_switch = table.switch_cost(costs.context) if switched else 0.0
        if width == 0 and not choice.explore and not switched and costs is not None:
            # The common pass on a pair where drafting does not pay: learn in batches of eight,
            # so deciding costs the loop next to nothing.
            pending = self._pending
            if verify_s > 0 and tabled > 0:
                pending.append((verify_s / tabled, seconds - verify_s))
            model.budget(self.verifier, self.drafter)[0] += seconds
            self._prev_full = False
            if len(pending) >= 8:
                # The median of eight passes: one outlier (a page fault, a slow spell's peak) must
                # not move a scale that only decoding alone re-measures. A 1.4 s first inference
                # among seven 35 ms passes had made decoding alone look 2.6x dearer; then no pass
                # decoded alone again to correct it.
                ratio = statistics.median(r for r, _ in pending)
                rest = statistics.median(o for _, o in pending)
                # (eight passes per sample: a heavier weight than a single pass gets)
                model.scale[self.verifier] = _ema(model.scale.get(self.verifier, 1.0), ratio, 0.3)
                model.learn_pass(self.verifier, None, 1, ratio, 0.3)
                model.forget_drafting(self.verifier)
                old = model.overhead.get(self.verifier, DEFAULT_OVERHEAD_S)
                model.overhead[self.verifier] = max(0.7 * old + 0.3 * rest, 0.0)
                self._pending = []
            return
        if drafted > 0 and self._state is not None:
            self.cost_model.acceptance_of(self.verifier, self.drafter, self.greedy, self._state).update(
                drafted, accepted
            )
        if costs is not None and seconds > 0 and verify_s > 0:
            ratio = verify_s / (tabled + tabled_switch)
            model.scale[self.verifier] = _ema(model.scale.get(self.verifier, 1.0), ratio)
            if not switched:
                model.learn_pass(self.verifier, self.drafter, width + 1, verify_s / tabled, 0.1)
            elif tabled_switch > 0 and model.knows_pass(self.verifier, self.drafter, width + 1):
                # A size measured steady: the rest of the pass was the re-planning. (A size only
                # ever run after another size stays unmeasured: one pass cannot tell its cost
                # from the re-planning. pass_scale interpolates it from the measured sizes.)
                extra = (verify_s - float(costs.verify[width + 1])) / tabled_switch
                old = model.switch_scale.get(self.verifier, model.scale[self.verifier])
                model.switch_scale[self.verifier] = _ema(old, extra)
            rest = seconds - verify_s
            if drafted == 0:
                old = model.overhead.get(self.verifier, DEFAULT_OVERHEAD_S)
                model.overhead[self.verifier] = max(0.9 * old + 0.1 * rest, 0.0)
            elif costs.draft_per_token > 0:
                if accepted < drafted:
                    rest -= costs.rollback + costs.draft_rollback
                pair = (self.verifier, self.drafter)
                scale = model.draft_scale.get(pair, 1.0)
                # (tabled: the draft passes, and the catch-up's, which _catching_up had scaled)
                drafts = drafted * costs.draft_per_token / scale + self._extra / scale
                rest -= costs.overhead
                model.draft_scale[pair] = _ema(scale, rest / drafts)
        budget = self.cost_model.budget(self.verifier, self.drafter)
        budget[0] += seconds
        if choice.explore:
            self.explored += 1
            budget[1] += max(seconds - emitted / choice.base, 0.0)
        self._prev_full = drafted > 0 and accepted == drafted
        self._run += drafted > 0
        self._extra = 0.0


class HybridLength:
    """``draft_tokens="auto"`` for a level whose drafter is prompt lookup *or* a draft model
    (:class:`ov_spec.runtime.proposers.HybridProposer`): each pass, whichever of the two
    controllers predicts more tokens per second drafts, at the length it chose.

    Each controller keeps its own acceptance (prompt lookup per kind of match), so the two learn
    where each pays: prompt lookup where the text repeats, the draft model elsewhere, decoding
    alone where neither does. Both share the verifier's pass size, so neither pays re-planning
    for a size the other ran. Same interface as :class:`AutoDraftLength`.
    """

    adaptive = False

    def __init__(self, lookup: AutoDraftLength, draft: AutoDraftLength, proposer: Any) -> None:
        self.lookup = lookup
        self.draft = draft
        self.proposer = proposer  # its use_lookup is set for each pass
        self._active: AutoDraftLength = draft
        self.reset()

    def reset(self) -> None:
        self.lookup.reset()
        self.draft.reset()
        self._active = self.draft
        self.first: Choice | None = None
        self.lookup_passes = 0  # passes prompt lookup drafted
        self._draft_rate = float("inf")  # the draft model's predicted tokens/s when last asked
        self._skipped = 0  # passes since then

    @property
    def k(self) -> int:
        return self._active.k

    @property
    def width(self) -> int:
        return self._active.width

    @property
    def explored(self) -> int:
        return self.lookup.explored + self.draft.explored

    @property
    def guarded(self) -> int:
        return self.lookup.guarded + self.draft.guarded

    @property
    def passes(self) -> int:
        return self.lookup.passes + self.draft.passes

    @property
    def predicted_tokens(self) -> float:
        return self.lookup.predicted_tokens + self.draft.predicted_tokens

    @property
    def predicted_s(self) -> float:
        return self.lookup.predicted_s + self.draft.predicted_s

    def rate(self, context: int, optimistic: bool = False) -> float:
        return max(self.lookup.rate(context, optimistic), self.draft.rate(context, optimistic))

    def choose(self, sequence: Sequence[int]) -> int:
        k_lookup = self.lookup.choose(sequence)
        lookup = self.lookup._choice
        assert lookup is not None
        if k_lookup > 0 and lookup.rate > self._draft_rate and self._skipped < HYBRID_SKIP:
            # Prompt lookup drafts and expects more than the draft model did when last asked:
            # its choice is not needed (deciding it costs ~60 us, 5% of a 1 ms model's pass).
            self._skipped += 1
            use_lookup, k_draft = True, 0
        else:
            k_draft = self.draft.choose(sequence)
            draft = self.draft._choice
            assert draft is not None
            self._draft_rate, self._skipped = (draft.rate if k_draft else 0.0), 0
            # Prompt lookup only when it drafts and expects more: with k = 0 both are the verifier alone.
            use_lookup = k_lookup > 0 and (k_draft == 0 or lookup.rate > draft.rate)
        self._active, idle = (self.lookup, self.draft) if use_lookup else (self.draft, self.lookup)
        if idle._choice is not None and idle._choice.guarded:  # its guard sent the pass to the other
            idle.guarded += 1
        idle._choice = None  # it did not run this pass: nothing to learn from it
        self.proposer.use_lookup = use_lookup
        self.lookup_passes += use_lookup
        if self.first is None:
            self.first = self._active._choice
        return k_lookup if use_lookup else k_draft

    def update(self, outcome: PassOutcome) -> None:
        self._active.update(outcome)
        for controller in (self.lookup, self.draft):  # one verifier: the pass size is shared
            controller.saw(outcome.scored)
