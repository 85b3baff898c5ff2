"""MTAD: the draft's beam search over the stateful cache, and the joint-likelihood rule.

The reference beam search recomputes every candidate from scratch (a fresh full-sequence pass,
no cache, no beam_idx), so it checks the fan-out/collapse through OpenVINO's ``beam_idx``.
"""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest

import ov_spec
from ov_spec.errors import UserError
from ov_spec.runtime.proposers import BeamProposer
from ov_spec.runtime.sampling import SamplingParams
from ov_spec.runtime.verify import verify_mtad

GREEDY = SamplingParams()


def log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max()
    return z - np.log(np.exp(z).sum())


@pytest.fixture(scope="module")
def pipe(random_pipeline):
    # stateful drafts: the beam search under test (the default's paged drafts get such a copy,
    # tests/test_paged.py)
    return ov_spec.load(random_pipeline, draft_rollback="mask")


@pytest.fixture(scope="module")
def fresh_logits(pipe):
    """Next-token logits of a full sequence, computed from scratch every time."""
    entry = pipe.manifest.model("draft1")
    request = (
        ov.Core().compile_model(pipe.folder / entry.path / "openvino_model.xml", "CPU").create_infer_request()
    )

    def run(seq: list[int]) -> np.ndarray:
        request.reset_state()
        n = len(seq)
        request.infer(
            {
                "input_ids": np.array([seq]),
                "attention_mask": np.ones((1, n), dtype=np.int64),
                "position_ids": np.arange(n)[None],
                "beam_idx": np.zeros(1, dtype=np.int32),
            }
        )
        return request.get_tensor("logits").data[0, -1].copy()

    return run


def reference_beam_search(run, prefix: list[int], width: int, length: int) -> tuple[list[int], float]:
    beams = [([], 0.0)]
    for _ in range(length):
        cands = []
        for path, score in beams:
            lp = log_softmax(run(prefix + path))
            for t in np.argsort(-lp)[:width]:
                cands.append((path + [int(t)], score + float(lp[t])))
        beams = sorted(cands, key=lambda c: -c[1])[:width]
    return beams[0]


@pytest.mark.parametrize(("width", "length"), [(1, 4), (3, 4), (4, 2), (2, 1)])
def test_beam_search_matches_reference(pipe, fresh_logits, width, length):
    draft = pipe.models["draft1"]
    draft.reset()
    proposer = BeamProposer(draft, width=width)
    prefix = [5, 17, 33, 8, 2]
    proposal = proposer.propose(prefix, length, GREEDY, np.random.default_rng(0))
    want, score = reference_beam_search(fresh_logits, prefix, width, length)
    assert proposal.tokens == want
    assert abs(float(proposal.logq.sum()) - score) < 5e-2  # bf16: full-sequence vs incremental passes
    # The cache collapsed onto the winning beam: continuing gives that beam's next logits.
    nxt = draft.forward(draft.sync(prefix + proposal.tokens))[0]
    assert int(np.argmax(nxt)) == int(np.argmax(fresh_logits(prefix + proposal.tokens)))
    np.testing.assert_allclose(nxt, fresh_logits(prefix + proposal.tokens), atol=0.05)


def test_mtad_rule_accepts_longest_prefix_over_threshold():
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.2, 0.2, 0.6]]))
    # Draft was sure of 0, 1, 0 (q = 0.9 each): ratios 0.78, 0.69, 0.26 -> cumulative > 0.5 up to i=2.
    logq = np.log([0.9, 0.9, 0.9])
    v = verify_mtad([0, 1, 0], logq, logits, GREEDY, np.random.default_rng(0), threshold=0.5)
    assert (v.accepted, v.next_token) == (2, 2)
    # Ratios 1.0, 0.89, 2.0: the prefix of 2 dips under 0.9, the full 3 (1.78) clears it again.
    v = verify_mtad(
        [2, 1, 2], np.log([0.1, 0.9, 0.2]), logits, GREEDY, np.random.default_rng(0), threshold=0.9
    )
    assert v.accepted == 3 and v.next_token == 2
    v = verify_mtad([2], np.log([0.9]), logits[:2], GREEDY, np.random.default_rng(0), threshold=0.5)
    assert (v.accepted, v.next_token) == (0, 0)


def test_mtad_generation_runs_and_is_opt_in(pipe):
    plain = pipe.generate([5, 6, 7, 8], max_new_tokens=24, draft_tokens=4)
    mtad = pipe.generate([5, 6, 7, 8], max_new_tokens=24, draft_tokens=4, mtad={"width": 3, "threshold": 0.5})
    assert len(mtad.token_ids) == 24 and mtad.metrics.levels[0].drafted > 0
    assert plain.token_ids == pipe.generate([5, 6, 7, 8], max_new_tokens=24, use_draft=False).token_ids


@pytest.mark.parametrize(
    ("mtad", "models"),
    [
        ({"width": 0}, None),
        ({"threshold": 2}, None),
        ({"beams": 2}, None),
        (True, ["target", "draft1", "draft1"]),
    ],
)
def test_bad_mtad_settings(pipe, mtad, models):
    with pytest.raises(UserError, match="mtad|MTAD|no model"):
        pipe.generate([5, 6], mtad=mtad, models=models)
