"""The verifier: which drafted tokens the target accepts, and the token it adds.

Both rules are lossless given the logits they are shown (docs/method.md): greedy output equals
target-only greedy output, and sampled output follows the target's processed distribution, except
where numerical differences between the speculative path and single steps flip a near-tie
(README, *Numerics*).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ov_spec.runtime.sampling import SamplingParams, log_softmax, probabilities, sample


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


def verify_lossless(
    proposal, target_logits: np.ndarray, params: SamplingParams, rng: np.random.Generator
) -> Verdict:
    """The default rule: greedy matching, or speculative sampling, by ``params``."""
    if params.greedy:
        return verify_greedy(proposal.tokens, target_logits)
    return verify_sampling(proposal.tokens, proposal.probs, target_logits, params, rng)


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


class MtadRule:
    """MTAD verification as a Speculator rule (proposals from :class:`BeamProposer`)."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold  # accept while p(x_1..i) / q(x_1..i) > threshold

    def __call__(
        self, proposal, target_logits: np.ndarray, params: SamplingParams, rng: np.random.Generator
    ) -> Verdict:
        if not proposal.tokens:
            return verify_lossless(proposal, target_logits, params, rng)
        return verify_mtad(proposal.tokens, proposal.logq, target_logits, params, rng, self.threshold)


def verify_mtad(
    draft_tokens: list[int],
    draft_logq: np.ndarray,
    target_logits: np.ndarray,
    params: SamplingParams,
    rng: np.random.Generator,
    threshold: float = 0.5,
) -> Verdict:
    """MTAD's joint-likelihood rule (arXiv 2407.09722). NOT lossless, by design.

    Accept the longest prefix ``i`` whose joint log-likelihood ratio
    ``sum_j<=i log p_j(x_j) - log q_j(x_j)`` exceeds ``log(threshold)``, then take the next token
    from the target (argmax when greedy, a draw from the processed row when sampling). Ratios use
    the unprocessed softmax of both models: MTAD targets the joint likelihood itself.
    """
    logp = log_softmax(target_logits)
    k = len(draft_tokens)
    ratio = np.cumsum(logp[np.arange(k), draft_tokens] - draft_logq[:k])
    passing = np.flatnonzero(ratio > np.log(threshold))
    n = int(passing[-1]) + 1 if passing.size else 0
    if params.greedy:
        return Verdict(accepted=n, next_token=int(np.argmax(target_logits[n])))
    p = probabilities(target_logits[n], params)
    return Verdict(accepted=n, next_token=sample(p, rng))
