"""Sampling settings and the logits -> probabilities processing shared by draft and target.

Lossless speculative sampling needs the draft's ``q`` and the target's ``p`` to be the *same*
processed distributions the user asked for (temperature, then top-k, then top-p), so both sides
go through :func:`probabilities` with one :class:`SamplingParams`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ov_spec.errors import UserError

# top-p first tries the largest few candidates (argpartition, O(V)) and sorts the whole vocabulary
# only when they do not reach the mass; exact either way.
_TOP_P_CANDIDATES = 1024


@dataclass(frozen=True)
class SamplingParams:
    """How the next token is chosen. ``temperature == 0`` means greedy."""

    temperature: float = 0.0  # 0 = greedy; <1 sharper, >1 flatter
    top_k: int = 0  # keep the k most likely tokens; 0 = off
    top_p: float = 1.0  # keep the smallest set whose mass reaches p; 1.0 = off
    seed: int | None = None  # seeds the sampler; None = fresh entropy each call

    def __post_init__(self) -> None:
        if not np.isfinite(self.temperature) or self.temperature < 0:
            raise UserError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if int(self.top_k) != self.top_k or self.top_k < 0:
            raise UserError(f"top_k must be a whole number >= 0 (0 = off), got {self.top_k}")
        if not (0.0 < self.top_p <= 1.0):
            raise UserError(f"top_p must be in (0, 1] (1 = off), got {self.top_p}")
        if self.seed is not None and (int(self.seed) != self.seed or self.seed < 0):
            raise UserError(f"seed must be a whole number >= 0, got {self.seed}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


def probabilities(logits: np.ndarray, params: SamplingParams) -> np.ndarray:
    """Processed next-token distribution(s) for ``logits`` of shape ``[V]`` or ``[N, V]``.

    Temperature scales the logits; top-k and top-p then zero out the tail and the rest is
    renormalised. Returns float64 rows summing to 1.
    """
    assert not params.greedy, "greedy decoding uses argmax, not probabilities"
    x = np.asarray(logits, dtype=np.float64) / params.temperature
    squeeze = x.ndim == 1
    x = np.atleast_2d(x)
    if params.top_k and params.top_k < x.shape[-1]:
        kth = np.partition(x, -params.top_k, axis=-1)[:, -params.top_k][:, None]
        x = np.where(x >= kth, x, -np.inf)
    x = x - x.max(axis=-1, keepdims=True)
    p = np.exp(x)
    p /= p.sum(axis=-1, keepdims=True)
    if params.top_p < 1.0:
        p = np.stack([_top_p_row(row, params.top_p) for row in p])
    return p[0] if squeeze else p


def _top_p_row(p: np.ndarray, top_p: float) -> np.ndarray:
    """Keep the smallest most-likely set with mass >= top_p (ties at the edge kept)."""
    n = min(_TOP_P_CANDIDATES, p.size)
    cand = np.argpartition(p, -n)[-n:] if n < p.size else np.arange(p.size)
    order = cand[np.argsort(-p[cand], kind="stable")]
    cum = np.cumsum(p[order])
    if cum[-1] < top_p and n < p.size:  # the candidates were not enough: sort everything
        order = np.argsort(-p, kind="stable")
        cum = np.cumsum(p[order])
    cut = int(np.searchsorted(cum, top_p)) + 1  # number of tokens needed to reach top_p
    threshold = p[order[min(cut, order.size) - 1]]
    out = np.where(p >= threshold, p, 0.0)
    return out / out.sum()


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities of the raw logits along the last axis (no temperature/top-k/top-p)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def sample(probs: np.ndarray, rng: np.random.Generator) -> int:
    """Draw one token id from a probability row."""
    # Inverse-CDF draw: one uniform per token, so a seeded run is reproducible.
    cdf = np.cumsum(probs)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), probs.size - 1))


def choose(
    logits: np.ndarray, params: SamplingParams, rng: np.random.Generator
) -> tuple[int, np.ndarray | None]:
    """Next token from one logits row: argmax when greedy, else a draw from the processed row.

    Returns the token and the processed distribution it was drawn from (``None`` when greedy).
    """
    if params.greedy:
        return int(np.argmax(logits)), None
    p = probabilities(logits, params)
    return sample(p, rng), p
