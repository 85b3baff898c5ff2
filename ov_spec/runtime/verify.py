"""The verifier: which drafted tokens the target accepts, and the token it adds.

Both rules are lossless (background.md): greedy output equals target-only greedy output, and
sampled output follows the target's processed distribution exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ov_spec.runtime.sampling import SamplingParams, probabilities, sample


@dataclass(frozen=True)
class Verdict:
    """Outcome of one verification: ``accepted`` draft tokens, then ``next_token``.

    ``next_token`` is the correction (at the first rejection) or the bonus token (all accepted).
    ``probs`` (sampling only) holds the target's processed distribution at each of the
    ``accepted + 1`` emitted positions. Because the rule is lossless, each emitted token is
    distributed exactly as that row, so a cascade level passes these rows up as ``q``.
    """

    accepted: int
    next_token: int
    probs: np.ndarray | None = None


def verify_greedy(draft_tokens: list[int], target_logits: np.ndarray) -> Verdict:
    """Accept drafted tokens while each equals the target's argmax at its position.

    ``target_logits`` has ``len(draft_tokens) + 1`` rows: row i scores the token after draft
    position i-1 (row 0 follows the last committed token).
    """
    best = np.argmax(target_logits, axis=-1)
    n = 0
    while n < len(draft_tokens) and draft_tokens[n] == best[n]:
        n += 1
    # At the first mismatch the target's own choice replaces it; if all match, it is the bonus.
    return Verdict(accepted=n, next_token=int(best[n]))


def verify_sampling(
    draft_tokens: list[int],
    draft_probs: np.ndarray,
    target_logits: np.ndarray,
    params: SamplingParams,
    rng: np.random.Generator,
) -> Verdict:
    """Speculative sampling (Leviathan et al. 2023; Chen et al. 2023).

    ``draft_probs[i]`` is the processed distribution the draft sampled ``draft_tokens[i]`` from.
    Accept token x with probability ``min(1, p(x)/q(x))``; at the first rejection draw from
    ``normalize(max(0, p - q))`` and stop; if all are accepted draw the bonus from ``p[k]``.
    """
    p = probabilities(target_logits, params)
    for i, x in enumerate(draft_tokens):
        px, qx = p[i, x], draft_probs[i, x]
        # qx > 0 always (x was drawn from q); rng.random() < px / qx accepts with min(1, px/qx).
        if rng.random() * qx < px:
            continue
        residual = np.maximum(p[i] - draft_probs[i], 0.0)
        total = residual.sum()
        # total == 0 only if p == q, where a rejection has probability 0; guard float noise.
        residual = residual / total if total > 0 else p[i]
        return Verdict(accepted=i, next_token=sample(residual, rng), probs=p[: i + 1])
    k = len(draft_tokens)
    return Verdict(accepted=k, next_token=sample(p[k], rng), probs=p[: k + 1])
