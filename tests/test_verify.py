"""The verification rules against known distributions (no models involved).

Speculative sampling must emit tokens distributed exactly as the target's processed rows ``p``,
whatever the draft's ``q``. Checked with a chi-square goodness-of-fit over many trials on a small
vocabulary, and the same test must reject deliberately wrong rules (so it can fail).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

from ov_spec.errors import UserError
from ov_spec.runtime.sampling import SamplingParams, probabilities, sample
from ov_spec.runtime.verify import Verdict, verify_greedy, verify_sampling

V = 6
TRIALS = 40_000
P_MIN = 1e-3  # a correct rule fails this by chance 0.1% of the time (fixed seeds: never here)
P_WRONG = 1e-8  # a wrong rule must fall far below


def _rows(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Target logits for 2 positions (+bonus) and a draft distribution q that differs from p."""
    rng = np.random.default_rng(seed)
    target_logits = rng.normal(size=(3, V)) * 1.5
    q = rng.dirichlet(np.ones(V) * 0.7, size=2)
    return target_logits, q, rng


def _emit_two(rule, target_logits, q, rng, params) -> tuple[int, int]:
    """Draft 2 tokens from q, verify, return the first two emitted tokens."""
    drafted = [sample(q[0], rng), sample(q[1], rng)]
    verdict = rule(drafted, q, target_logits, params, rng)
    out = drafted[: verdict.accepted] + [verdict.next_token]
    if len(out) < 2:  # rejected at position 0: the next token would come from a fresh pass
        out.append(sample(probabilities(target_logits[1], params), rng))
    return out[0], out[1]


def _joint_pvalue(rule, seed: int) -> float:
    target_logits, q, rng = _rows(seed)
    params = SamplingParams(temperature=0.8)
    p = probabilities(target_logits, params)
    expected = np.outer(p[0], p[1]).ravel() * TRIALS  # rows do not depend on the prefix here
    counts = np.zeros(V * V)
    for _ in range(TRIALS):
        a, b = _emit_two(rule, target_logits, q, rng, params)
        counts[a * V + b] += 1
    return float(chisquare(counts, expected).pvalue)


@pytest.mark.parametrize("seed", [1, 2])
def test_speculative_sampling_matches_target_distribution(seed):
    assert _joint_pvalue(verify_sampling, seed) > P_MIN


def _accept_all(drafted, q, target_logits, params, rng):
    p = probabilities(target_logits, params)
    return Verdict(len(drafted), sample(p[len(drafted)], rng))


def _resample_from_p(drafted, q, target_logits, params, rng):
    """Wrong in a subtle way: on rejection draw from p instead of normalize(max(0, p - q))."""
    p = probabilities(target_logits, params)
    for i, x in enumerate(drafted):
        if rng.random() * q[i, x] < p[i, x]:
            continue
        return Verdict(i, sample(p[i], rng))
    return Verdict(len(drafted), sample(p[len(drafted)], rng))


@pytest.mark.parametrize("wrong_rule", [_accept_all, _resample_from_p])
def test_wrong_rules_fail_the_same_test(wrong_rule):
    assert _joint_pvalue(wrong_rule, 1) < P_WRONG


def test_greedy_rule_accepts_prefix_then_corrects():
    logits = np.full((4, V), -1.0)
    for row, best in enumerate([2, 3, 4, 5]):
        logits[row, best] = 1.0
    assert verify_greedy([2, 3, 0], logits) == Verdict(2, 4)  # third rejected, target says 4
    assert verify_greedy([2, 3, 4], logits) == Verdict(3, 5)  # all accepted, bonus 5
    assert verify_greedy([1], logits[:2]) == Verdict(0, 2)
    assert verify_greedy([], logits[:1]) == Verdict(0, 2)


def test_processing_top_k_top_p():
    logits = np.log(np.array([0.5, 0.2, 0.15, 0.1, 0.05]))
    p = probabilities(logits, SamplingParams(temperature=1.0, top_k=2))
    np.testing.assert_allclose(p, [0.5 / 0.7, 0.2 / 0.7, 0, 0, 0])
    p = probabilities(logits, SamplingParams(temperature=1.0, top_p=0.8))  # 0.5+0.2 < 0.8 -> 3 tokens
    np.testing.assert_allclose(p, np.array([0.5, 0.2, 0.15, 0, 0]) / 0.85)
    p = probabilities(logits, SamplingParams(temperature=1.0, top_p=0.7))  # exactly reached by 2
    np.testing.assert_allclose(p, np.array([0.5, 0.2, 0, 0, 0]) / 0.7)


def test_top_p_with_large_vocabulary_matches_full_sort():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=50_000) * 0.3  # flat: the 1024 candidates cannot reach the mass
    params = SamplingParams(temperature=1.0, top_p=0.9)
    p = probabilities(logits, params)
    full = np.exp(logits - logits.max())
    full /= full.sum()
    order = np.argsort(-full)
    keep = order[: int(np.searchsorted(np.cumsum(full[order]), 0.9)) + 1]
    expected = np.zeros_like(full)
    expected[keep] = full[keep] / full[keep].sum()
    np.testing.assert_allclose(p, expected)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": -1},
        {"temperature": float("nan")},
        {"top_k": -2},
        {"top_k": 1.5},
        {"top_p": 0},
        {"top_p": 1.2},
        {"seed": -1},
    ],
)
def test_bad_sampling_values_are_user_errors(kwargs):
    with pytest.raises(UserError):
        SamplingParams(**kwargs)
