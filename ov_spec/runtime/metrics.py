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
    """One speculative level (the target is level 0)."""

    name: str
    device: str
    passes: int  # verification passes of this level's model
    drafted: int  # tokens proposed to this level
    accepted: int  # of which it accepted
    emitted: int  # tokens it produced: accepted + one correction/bonus per pass
    mean_draft_length: float  # drafted tokens per drafting pass
    acceptance_rate: float  # accepted / drafted
    tokens_per_pass: float  # emitted / passes ("+1 is the bonus token": 1.0 means no gain)
    infer_s: float  # time inside this model's forward passes
    rollback_s: float  # time undoing rejected tokens in its KV cache


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
    levels: list[LevelMetrics] = field(default_factory=list)

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
        return ", ".join(parts)


def ratio(num: float, den: float) -> float:
    return num / den if den else 0.0
