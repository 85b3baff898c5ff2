"""Per-generation metrics, each defined next to its formula.

Times come from the models' own counters (wall time inside ``infer`` and rollback), so the
``other_s`` share is exactly the loop's own overhead: sampling, verification, bookkeeping,
detokenization and streaming.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class LevelMetrics:
    """One verifying level: a model that checks what the level below drafted (the target first).

    The lowest drafter (a draft model or prompt lookup) verifies nothing, so it has no entry of its
    own; it is named in the ``drafter`` field of the level it drafts for.
    """

    name: str
    device: str
    passes: int  # verification passes of this level's model
    drafted: int  # tokens proposed to this level
    accepted: int  # of which it accepted
    emitted: int  # tokens it produced: accepted + one correction/bonus per pass
    mean_draft_length: float  # see mean_draft_length(): drafted / passes
    acceptance_rate: float  # accepted / drafted
    tokens_per_pass: float  # emitted / passes ("+1 is the bonus token": 1.0 means no gain)
    infer_s: float  # time inside this model's forward passes
    rollback_s: float  # time undoing rejected tokens in its KV cache
    drafter: str = ""  # what drafted for it: the level below, a draft model, or "ngram"
    draft_lengths: dict[int, int] = field(default_factory=dict)  # tokens drafted in a pass -> passes


@dataclass
class AutoMetrics:
    """What ``draft_tokens="auto"`` chose, and how its prediction compared with the measurement."""

    chain: list[str]  # the models it used, target first (the last one only drafts)
    first_k: list[int]  # per verifying level: the draft length of its first decoding pass
    mean_k: list[float]  # per verifying level: mean_draft_length (0 = the level decoded alone)
    explored: int  # passes that tried a draft length the cost model doubted
    # decoding speed the cost model predicted for this request's passes after the first: the tokens
    # their choices expected over the seconds they expected (set next to measured_tokens_per_s)
    predicted_tokens_per_s: float
    measured_tokens_per_s: float  # decoding speed measured: (generated - 1) / (total - ttft)
    predicted_target_only_tokens_per_s: float  # what it expected from the target alone
    # what it expected before the first pass, at the prompt's length (the chain was chosen by it)
    predicted_at_start_tokens_per_s: float
    calibration_s: float  # time this call spent timing models (0 when their costs were cached)
    # passes of the lowest level whose draft came from prompt lookup (the default drafter chooses
    # per pass between it and the draft model)
    lookup_passes: int = 0
    # passes decoded alone because drafting had measured fewer tokens/s than decoding alone
    guarded: int = 0


@dataclass
class GenerationMetrics:
    """What one ``generate`` call did and how long it took."""

    prompt_tokens: int = 0
    generated_tokens: int = 0
    ttft_s: float = 0.0  # time to first token (prefill + first step)
    total_s: float = 0.0
    tpot_s: float = 0.0  # time per output token after the first: (total - ttft) / (generated - 1)
    tokens_per_s: float = 0.0  # generated / total
    target_passes: int = 0  # forward passes of the target after prefill
    acceptance_rate: float = 0.0  # level 0: accepted / drafted
    tokens_per_pass: float = 0.0  # level 0: emitted / passes
    draft_s: float = 0.0  # forward passes of every model below the target (incl. proposers' work)
    target_s: float = 0.0  # the target's forward passes
    rollback_s: float = 0.0  # all levels
    other_s: float = 0.0  # total - draft - target - rollback: the loop's own overhead
    levels: list[LevelMetrics] = field(default_factory=list)  # one per verifying level, target first
    draft_tokens: str | list[int] = ""  # "auto", or the fixed draft length per verifying level
    auto: AutoMetrics | None = None  # what "auto" chose (None with fixed draft lengths)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One human-readable line."""
        parts = [
            f"{self.generated_tokens} tokens in {self.total_s:.2f}s ({self.tokens_per_s:.1f} tok/s)",
            f"TTFT {self.ttft_s * 1e3:.0f} ms",
        ]
        if self.levels and self.levels[0].drafted:
            parts.append(f"acceptance {self.acceptance_rate:.0%}, {self.tokens_per_pass:.2f} tokens/pass")
        if self.auto is not None:
            ks = "/".join(f"{k:.1f}" for k in self.auto.mean_k)
            parts.append(
                f"auto: {'+'.join(self.auto.chain)} mean k {ks}, predicted "
                f"{self.auto.predicted_tokens_per_s:.1f} vs measured {self.auto.measured_tokens_per_s:.1f} tok/s"
            )
        return ", ".join(parts)


def ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def mean_draft_length(drafted: float, passes: float) -> float:
    """Drafted tokens per verification pass; a pass that drafted nothing counts as 0.

    The one definition for the runtime's metrics and the benchmark's pooled summaries.
    """
    return ratio(drafted, passes)
