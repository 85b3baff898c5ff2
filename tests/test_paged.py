"""rollback="paged": the paged-attention graph with ov_spec's own block table (ov_spec.runtime.paged).

Its rollback only lowers ``past_lens``, so what a rejected token left in the cache must never reach
a later pass: checked bit for bit, with a negative control that keeps the rejected tokens. Greedy
output under paged equals paged target-only decoding on the trained pair, and the cache grows by
copying without changing a token.
"""

from __future__ import annotations

import numpy as np
import pytest

import ov_spec
from ov_spec.errors import UserError
from ov_spec.runtime import paged, pipeline

CODE_PROMPTS = [
    "def read_config(path):\n",
    "class Parser:\n    def __init__(self, text):\n",
    "import os\nimport sys\n\n",
]


@pytest.fixture(scope="module")
def pipe(trained_pipeline):
    """f32 arithmetic (in bf16 the pass-vs-steps noise is ~0.1 logits, more than many of this
    small model's top-2 gaps) over the default u8 KV cache; 1-token passes on their own graph
    (the default for targets of 32 MB and more, forced for this 7 MB one)."""
    return ov_spec.load(
        trained_pipeline, rollback="paged", property_overrides=["target.INFERENCE_PRECISION_HINT=f32"],
        separate_decode=True,
    )  # fmt: skip


def test_the_target_runs_the_paged_graph(pipe):
    target = pipe.models["target"]
    assert isinstance(target, paged.PagedLM) and target.rollback_mode == "paged"
    # drafts: paged too under the default draft_rollback ("auto" on CPU), mask when asked
    assert all(isinstance(m, paged.PagedLM) for m in pipe.models.values())
    assert not pipe.models["draft1"].separate_decode  # the 1-token copy is the target's alone
    assert target.block > 0 and not target.rollback_copies


def _after_rejection(lm, prompt: list[int], rejected: list[int], accepted: int, fed: list[int], roll: bool):
    lm.reset()
    lm.forward(prompt)
    lm.forward(rejected, n_logits=len(rejected))
    if roll:
        lm.rollback(len(prompt) + accepted)
    return lm.forward(fed, n_logits=len(fed))


def test_rollback_leaves_nothing_behind(pipe):
    """Two different rejected drafts, rolled back to the same prefix: the next pass is bit-identical.
    Negative control: without the rollback the rejected tokens change the logits."""
    lm = pipe.models["target"]
    prompt = pipe.tokenizer.encode(CODE_PROMPTS[0])
    first = _after_rejection(lm, prompt, [40, 41, 42, 43], 1, [50, 51], roll=True)
    second = _after_rejection(lm, prompt, [40, 97, 98, 99], 1, [50, 51], roll=True)
    assert np.array_equal(first, second)
    kept = _after_rejection(lm, prompt, [40, 97, 98, 99], 1, [50, 51], roll=False)
    assert not np.allclose(kept, second, atol=1e-3)
    lm.reset()


def _divergence_gaps(pipe, k) -> list[float]:
    """Per prompt whose speculative output differs from paged target-only decoding: in the
    target-only run's logits at the first difference, its choice minus the speculative choice."""
    gaps = []
    for prompt in CODE_PROMPTS:
        ids = pipe.tokenizer.encode(prompt)
        want = pipe.generate(ids, max_new_tokens=48, use_draft=False).token_ids
        got = pipe.generate(ids, max_new_tokens=48, draft_tokens=k).token_ids
        j = next((i for i, (x, y) in enumerate(zip(want, got)) if x != y), None)
        if j is None:
            continue
        lm = pipe.models["target"]  # the target-only run's logits at j: one token per pass
        lm.reset()
        row = lm.forward(ids)[0]
        for token in want[:j]:
            row = lm.forward([token])[0]
        lm.reset()
        gaps.append(float(row[want[j]] - row[got[j]]))
    return gaps


@pytest.fixture(scope="module")
def tie_bound(pipe) -> float:
    """What rounding alone can move a logit: one 5-token pass against 5 single-token passes on
    the same prefixes (measured, never assumed), x2 for two noisy logits, x2 for safety."""
    from test_gguf import pass_vs_steps_noise

    prefixes = []
    for prompt in CODE_PROMPTS:
        ids = pipe.tokenizer.encode(prompt)
        prefixes.append(ids + pipe.generate(ids, max_new_tokens=12, use_draft=False).token_ids)
    return 4 * pass_vs_steps_noise(pipe, prefixes)


@pytest.mark.parametrize("k", [2, 5, "auto"])
def test_greedy_speculative_equals_paged_target_only_but_at_ties(pipe, tie_bound, k):
    """Exact but at near-ties: the paged graph's k-token pass is not bit-identical to k single
    passes (in bf16 the tiny int8 pair even ties exactly, gap 0.0, and the choice then flips)."""
    gaps = _divergence_gaps(pipe, k)
    assert all(g <= tie_bound for g in gaps), (gaps, tie_bound)
    assert len(gaps) <= 1, gaps  # most prompts are equal outright


def test_a_broken_verifier_diverges_at_a_clear_margin(pipe, tie_bound, monkeypatch):
    """Negative control: accepting the target's second choice too breaks the check above."""
    from test_gguf import second_choice_too

    from ov_spec.runtime import verify

    monkeypatch.setattr(verify, "verify_greedy", second_choice_too)
    gaps = _divergence_gaps(pipe, 4)
    assert gaps and max(gaps) > tie_bound, (gaps, tie_bound)


def test_the_cache_grows_without_changing_a_token(trained_pipeline, pipe, monkeypatch):
    """A cache allocated for one block at first is doubled (copied) as the request goes on, for
    both of the target's graphs. (In f32, as ``pipe``: on AMX CPUs the default is bf16.)"""
    want = pipe.generate(CODE_PROMPTS[1], max_new_tokens=64, draft_tokens=4).token_ids
    monkeypatch.setattr(paged, "FIRST_BLOCKS_TOKENS", 1)
    small = ov_spec.load(
        trained_pipeline, rollback="paged", separate_decode=True,
        property_overrides=["target.INFERENCE_PRECISION_HINT=f32"],
    )  # fmt: skip
    target = small.models["target"]
    assert target._blocks == 1
    assert small.generate(CODE_PROMPTS[1], max_new_tokens=64, draft_tokens=4).token_ids == want
    assert target._blocks > 2


def _mixed_passes(lm, prompt: list[int]) -> list[np.ndarray]:
    """Prefill, 1-token passes, a 4-token pass, a rollback into it, 1-token passes again."""
    lm.reset()
    out = [lm.forward(prompt), lm.forward([50])]
    out.append(lm.forward([51, 52, 53, 54], n_logits=4))
    lm.rollback(len(prompt) + 2)
    out += [lm.forward([60]), lm.forward([61])]
    lm.reset()
    return out


def test_one_token_passes_on_their_own_graph_share_the_cache(trained_pipeline, pipe):
    """separate_decode (the default for paged CPU targets of 32 MB and more): the 1-token passes
    run on a second compiled copy and read what the other wrote, bit for bit as on one graph.
    Negative control: a decode copy with a cache of its own sees none of the prompt."""
    import openvino as ov

    target = pipe.models["target"]
    assert target.separate_decode and pipe._passes_mode("target") == "paged+decode"
    single = ov_spec.load(
        trained_pipeline, rollback="paged", separate_decode=False,
        property_overrides=["target.INFERENCE_PRECISION_HINT=f32"],
    )  # fmt: skip
    assert not single.models["target"].separate_decode and single._passes_mode("target") == "paged"
    by_size = ov_spec.load(trained_pipeline, rollback="paged").models["target"]
    assert not by_size.separate_decode  # the default: only for targets of 32 MB and more
    assert pipeline._wants_separate_decode(None, pipeline.SEPARATE_DECODE_MIN_BYTES)
    prompt = pipe.tokenizer.encode(CODE_PROMPTS[2])
    want = _mixed_passes(single.models["target"], prompt)
    got = _mixed_passes(target, prompt)
    assert all(np.array_equal(a, b) for a, b in zip(want, got))
    decode = target._decode[0]
    for port in target._caches:
        decode.set_tensor(
            port.any_name, ov.Tensor(port.get_element_type(), decode.get_tensor(port.any_name).shape)
        )
    try:
        broken = _mixed_passes(target, prompt)
        assert not np.allclose(broken[1], want[1], atol=1e-3)
    finally:
        target._grow(target._blocks)  # both requests on one set of cache tensors again


def test_mtad_beams_run_on_a_stateful_copy_of_a_paged_draft(trained_pipeline):
    """Drafts run on the paged graph by default on CPU; MTAD's beam search gathers cache rows by
    beam_idx, which only the stateful IR has, so it gets a stateful copy of the draft: the same
    output as a pipeline whose drafts are stateful, and the paged draft itself refuses beams."""
    both = ov_spec.load(trained_pipeline, rollback="paged", draft_rollback="paged")
    stateful = ov_spec.load(trained_pipeline, rollback="paged", draft_rollback="mask")
    assert isinstance(both.models["draft1"], paged.PagedLM)
    opts = dict(models=["target", "draft1"], max_new_tokens=16, draft_tokens=4, mtad=True)
    got = both.generate(CODE_PROMPTS[0], **opts)
    assert got.token_ids == stateful.generate(CODE_PROMPTS[0], **opts).token_ids
    assert got.metrics.levels[0].drafted > 0
    with pytest.raises(UserError, match="MTAD's beam search needs the stateful model"):
        both.models["draft1"].forward_beams([1, 2], [0, 0])


def test_block_indices_keep_their_shape_as_blocks_fill(pipe, monkeypatch):
    """The paged graph's inputs keep their shape while the context crosses block boundaries (a
    new shape makes the CPU plugin re-plan): ``block_indices`` lists every allocated block and
    ``block_indices_begins`` how many the sequence reads."""
    lm = pipe.models["target"]
    seen: list[tuple[tuple[int, ...], int]] = []
    run = lm._run

    def spy(feed, n_logits, tokens):
        seen.append((feed["block_indices"].shape, int(feed["block_indices_begins"][1])))
        return run(feed, n_logits, tokens)

    monkeypatch.setattr(lm, "_run", spy)
    lm.reset()
    lm.forward(list(range(5, 35)))  # 30 tokens: one block
    for token in range(10):  # into the second block
        lm.forward([40 + token])
    lm.reset()
    assert {shape for shape, _ in seen} == {(lm._blocks,)} and lm._blocks > 2
    assert [used for _, used in seen] == [1, 1, 1] + [2] * 8


def test_loading_warms_up_every_request_and_leaves_nothing_behind(trained_pipeline, monkeypatch):
    """Each infer request runs once at load (a first inference costs up to 2 s on real shapes);
    afterwards every model is as if it had never run."""
    runs: list[int] = []
    run = paged.PagedLM._run

    def spy(self, feed, n_logits, tokens):
        runs.append(tokens)
        return run(self, feed, n_logits, tokens)

    monkeypatch.setattr(paged.PagedLM, "_run", spy)
    loaded = ov_spec.load(trained_pipeline, rollback="paged", separate_decode=True)
    # the target's verification graph, then its decode copy; then the (paged) draft's one graph
    assert runs == [2, 1, 2]
    for lm in loaded.models.values():
        assert lm.tokens == [] and lm.stats.calls == 0


def _one_by_one(lm, tokens: list[int], rebind: bool) -> list[np.ndarray]:
    """Logits after each token, fed in 1-token passes (a rejected 3-token pass in between);
    ``rebind``: every input bound afresh before each pass instead of refilled in place."""
    lm.reset()
    out = []
    for i, token in enumerate(tokens):
        if rebind:
            lm._bound.clear()
        out.append(lm.forward([token]))
        if i == 2:
            lm.forward([9, 10, 11], n_logits=3)
            lm.rollback(i + 1)
    lm.reset()
    return out


@pytest.mark.parametrize("name, rollback", [("target", "paged"), ("draft1", "paged"), ("draft1", "mask")])
def test_inputs_refilled_in_place_reach_the_plugin(trained_pipeline, pipe, name, rollback, monkeypatch):
    """Inputs are bound once per shape and refilled in place (StatefulLM._bind): every pass gives
    the logits of a pass whose inputs were bound afresh, bit for bit. Negative control: buffers
    bound once and never refilled give other logits."""
    lm = (
        pipe.models[name]
        if rollback == "paged"
        else ov_spec.load(trained_pipeline, draft_rollback="mask").models[name]
    )
    assert lm.rollback_mode == rollback
    tokens = pipe.tokenizer.encode(CODE_PROMPTS[1])[:8]
    want = _one_by_one(lm, tokens, rebind=True)
    got = _one_by_one(lm, tokens, rebind=False)
    assert all(np.array_equal(a, b) for a, b in zip(want, got))
    bind = type(lm)._bind

    def bind_without_refill(self, request, ports, feed):
        stale = self._bound.get(id(request), {})
        fresh = {k: v for k, v in feed.items() if k not in stale or stale[k].shape != v.shape}
        bind(self, request, ports, fresh)

    monkeypatch.setattr(type(lm), "_bind", bind_without_refill)
    stale = _one_by_one(lm, tokens, rebind=False)
    assert not all(np.allclose(a, b, atol=1e-3) for a, b in zip(want, stale))
