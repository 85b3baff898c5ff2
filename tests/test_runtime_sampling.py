"""Speculative sampling through real models reproduces the target's distribution.

The reference is the exact distribution of the first three generated tokens, computed directly
from the target's logits (plain forward passes over every candidate sequence, no speculative
code). Many seeded generations are compared with it by chi-square; a deliberately wrong
acceptance rule must fail the same test.
"""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
from scipy.stats import chisquare
from test_runtime_greedy import with_models

import ov_spec
from ov_spec.runtime import verify as verify_mod
from ov_spec.runtime.sampling import SamplingParams, probabilities, sample
from ov_spec.runtime.verify import Verdict

PROMPT = [11, 42, 7, 99]
PARAMS = SamplingParams(temperature=1.0, top_k=3)
SAMPLES = 1500


def exact_distribution(pipe, props: dict | None = None) -> dict[tuple[int, ...], float]:
    """P(x1, x2, x3 | prompt) under the target's processed rows, by brute force."""
    # An absolute entry path (see with_models) survives the join unchanged.
    xml = pipe.folder / pipe.manifest.target.path / "openvino_model.xml"
    compiled = ov.Core().compile_model(xml, "CPU", props or {})
    request = compiled.create_infer_request()

    def next_probs(seq: list[int]) -> np.ndarray:
        # Prompt in one pass, then one token per pass: the cache path of target-only decoding
        # (a single full-sequence pass differs in the last bits under bf16 and can flip a top-k tie).
        request.reset_state()
        n = len(PROMPT)
        for start, stop in [(0, n)] + [(i, i + 1) for i in range(n, len(seq))]:
            request.infer(
                {
                    "input_ids": np.array([seq[start:stop]]),
                    "attention_mask": np.ones((1, stop), dtype=np.int64),
                    "position_ids": np.arange(start, stop)[None],
                    "beam_idx": np.zeros(1, dtype=np.int32),
                }
            )
        return probabilities(request.get_tensor("logits").data[0, -1].copy(), PARAMS)

    dist: dict[tuple[int, ...], float] = {}
    p1 = next_probs(PROMPT)
    for a in np.flatnonzero(p1):
        p2 = next_probs(PROMPT + [int(a)])
        for b in np.flatnonzero(p2):
            p3 = next_probs(PROMPT + [int(a), int(b)])
            for c in np.flatnonzero(p3):
                dist[(int(a), int(b), int(c))] = p1[a] * p2[b] * p3[c]
    return dist


def sample_pvalue(pipe, dist, **options) -> float:
    counts = dict.fromkeys(dist, 0)
    for seed in range(SAMPLES):
        ids = pipe.generate(
            PROMPT, max_new_tokens=4, temperature=PARAMS.temperature, top_k=PARAMS.top_k, seed=seed, **options
        ).token_ids
        if tuple(ids[:3]) not in counts:
            return 0.0  # a sequence the target can never produce: certainly the wrong distribution
        counts[tuple(ids[:3])] += 1
    cells = sorted(dist, key=dist.get)
    # Pool the rarest cells so every expected count is >= 5 (chi-square's validity rule).
    observed, expected, acc_o, acc_e = [], [], 0, 0.0
    for cell in cells:
        acc_o += counts[cell]
        acc_e += dist[cell] * SAMPLES
        if acc_e >= 5:
            observed.append(acc_o)
            expected.append(acc_e)
            acc_o, acc_e = 0, 0.0
    observed[-1] += acc_o
    expected[-1] += acc_e
    return float(chisquare(observed, expected).pvalue)


# trim: a k-token pass then gives the logits of k single-token passes, so the samples follow the
# reference's distribution exactly. (The default, paged, differs by ~0.04 logits between the two,
# enough to move a top-k boundary on the random pair; what it samples follows its own logits.)
STRICT = "trim"


@pytest.fixture(scope="module")
def pipe(random_pipeline):
    return ov_spec.load(random_pipeline, rollback=STRICT)


@pytest.fixture(scope="module")
def dist(pipe):
    d = exact_distribution(pipe)
    assert abs(sum(d.values()) - 1) < 1e-6
    return d


def test_target_only_sampling_matches_exact_distribution(pipe, dist):
    assert sample_pvalue(pipe, dist, use_draft=False) > 1e-3


def test_speculative_sampling_matches_exact_distribution(pipe, dist):
    assert sample_pvalue(pipe, dist, draft_tokens=3) > 1e-3


def test_paged_sampling_matches_exact_distribution(random_pipeline):
    """The default on CPU, the paged graph, in f32 arithmetic: its k-token pass then agrees with
    single-token passes to ~1e-6, so the samples must follow the stateful model's exact
    distribution, computed in f32 too."""
    f32 = "INFERENCE_PRECISION_HINT=f32"
    pipe = ov_spec.load(random_pipeline, property_overrides=[f"target.{f32}"])
    assert pipe.models["target"].rollback_mode == "paged"
    dist = exact_distribution(pipe, {"INFERENCE_PRECISION_HINT": "f32"})
    assert sample_pvalue(pipe, dist, draft_tokens=3) > 1e-3


def test_default_drafter_sampling_matches_exact_distribution(random_pipeline, dist):
    """The default under "auto": prompt lookup (one-hot q) or the draft model, chosen per pass,
    with cost tables that make drafting pay so both kinds of proposal are verified."""
    from test_runtime_greedy import _fake_costs

    pipe = _fake_costs(ov_spec.load(random_pipeline, rollback=STRICT))
    assert sample_pvalue(pipe, dist) > 1e-3
    auto = pipe.generate(PROMPT * 3, max_new_tokens=24, temperature=1.0, top_k=3, seed=0).metrics.auto
    assert auto.chain[-1] == "draft1|ngram"


def test_depth_three_cascade_sampling_matches(random_pipeline, tmp_path_factory, dist):
    folder = with_models(random_pipeline, tmp_path_factory.mktemp("c") / "c3", ["target", "draft1", "target"])
    assert sample_pvalue(ov_spec.load(folder, rollback=STRICT), dist, draft_tokens=[3, 2]) > 1e-3


def test_wrong_rule_fails(pipe, dist, monkeypatch):
    def residual_without_clipping(drafted, q, logits, params, rng):
        # Wrong: on rejection resamples from normalize(|p - q|) instead of normalize(max(0, p - q)).
        p = probabilities(logits, params)
        for i, x in enumerate(drafted):
            if rng.random() * q[i, x] < p[i, x]:
                continue
            r = np.abs(p[i] - q[i])
            return Verdict(i, sample(r / r.sum(), rng), p[: i + 1])
        return Verdict(len(drafted), sample(p[len(drafted)], rng), p)

    monkeypatch.setattr(verify_mod, "verify_sampling", residual_without_clipping)
    assert sample_pvalue(pipe, dist, draft_tokens=3) < 1e-6


def test_seeded_sampling_is_reproducible(pipe):
    runs = [
        pipe.generate(PROMPT, max_new_tokens=16, temperature=0.9, top_p=0.9, seed=s).token_ids
        for s in (1, 1, 2)
    ]
    assert runs[0] == runs[1] and runs[0] != runs[2]


# --- a pruned-vocabulary draft (FR-Spec, ov_spec.export.prune) ----------------------------------
@pytest.fixture(scope="module")
def pruned_pipe(random_pipeline, tmp_path_factory, dist):
    """The target drafting for itself through a head that lacks the target's likeliest first token.

    q is then zero where p has its largest mass, and positive on kept tokens outside p's top-k:
    both directions of mismatched support, which the residual max(0, p - q) must absorb exactly.
    """
    from test_prune import pruned_self_draft

    first = np.zeros(512)
    for (a, _, _), mass in dist.items():
        first[a] += mass
    ranked = np.argsort(-first)
    rest = np.random.default_rng(0).permutation(np.setdiff1d(np.arange(512), ranked[:3]))[:253]
    keep = np.concatenate([ranked[1:3], rest]).astype(np.int64)  # drops ranked[0]
    assert first[np.setdiff1d(np.arange(512), keep)].sum() > 0.3  # the target's mass outside the set
    folder = pruned_self_draft(random_pipeline, tmp_path_factory.mktemp("pruned") / "p", keep)
    return ov_spec.load(folder, rollback=STRICT), keep


def test_pruned_draft_sampling_matches_exact_distribution(pruned_pipe, dist):
    pipe, _ = pruned_pipe
    assert sample_pvalue(pipe, dist, draft_tokens=3) > 1e-3
    result = pipe.generate(PROMPT, max_new_tokens=32, temperature=1.0, top_k=3, seed=0, draft_tokens=3)
    assert 0 < result.metrics.levels[0].accepted < result.metrics.levels[0].drafted  # both branches ran


def test_pruned_draft_q_left_in_column_space_fails(pruned_pipe, dist, monkeypatch):
    """Negative control: q not spread back to token ids (column i read as token i) is caught."""
    from ov_spec.runtime import proposers as proposers_mod

    pipe, keep = pruned_pipe
    original = proposers_mod.ModelProposer.propose

    def propose(self, *args, **kwargs):
        proposal = original(self, *args, **kwargs)
        if proposal.probs is not None:
            wrong = np.zeros_like(proposal.probs)
            wrong[:, : keep.size] = proposal.probs[:, keep]
            proposal.probs = wrong
        return proposal

    monkeypatch.setattr(proposers_mod.ModelProposer, "propose", propose)
    assert sample_pvalue(pipe, dist, draft_tokens=3) < 1e-6
