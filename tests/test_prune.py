"""Pruned-vocabulary draft heads (FR-Spec): export, IR edit, and lossless decoding with them.

References: the unpruned IR's own logits (the pruned head must give exactly its kept columns) and
target-only greedy decoding (speculative output with a pruned draft must equal it). The sampling
side is in test_runtime_sampling.py. Everything here runs on the random tiny pair (seconds).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
from conftest import exported_pipeline
from test_runtime_greedy import KS, MAX_NEW, _prompts, with_models

import ov_spec
from ov_spec.errors import UserError
from ov_spec.export.prune import KEPT_TOKENS_FILE, logits_width, most_frequent, prune_lm_head
from ov_spec.manifest import MANIFEST_NAME
from ov_spec.runtime import proposers as proposers_mod

VOCAB_KEPT = 128


def pruned_self_draft(src: Path, dst: Path, keep: np.ndarray) -> Path:
    """A pipeline folder: the target, drafted for by a copy of itself whose head keeps ``keep``.

    The draft proposes the target's argmax among the kept tokens, so it is accepted exactly when
    the target's choice is kept: both branches of verification run often.
    """
    folder = with_models(src, dst, ["target", "target"])
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    model = ov.Core().read_model(src / "target" / "openvino_model.xml")
    prune_lm_head(model, keep)
    draft_dir = dst / "pruned_draft"
    draft_dir.mkdir()
    ov.save_model(model, draft_dir / "openvino_model.xml", compress_to_fp16=False)
    np.save(draft_dir / KEPT_TOKENS_FILE, keep)
    entry = manifest["models"][1]
    entry["path"] = str(draft_dir)
    entry["size_bytes"] = (draft_dir / "openvino_model.bin").stat().st_size
    entry["pruned_head"] = {
        "token_ids": KEPT_TOKENS_FILE,
        "kept": int(keep.size),
        "vocab_size": logits_width(ov.Core().read_model(src / "target" / "openvino_model.xml")),
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    return folder


def half_of_vocabulary(vocab: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(vocab)[: vocab // 2].astype(np.int64)


def recording_proposer(monkeypatch) -> list[int]:
    """Record every token a ModelProposer drafts."""
    seen: list[int] = []
    original = proposers_mod.ModelProposer.propose

    def propose(self, *args, **kwargs):
        proposal = original(self, *args, **kwargs)
        seen.extend(proposal.tokens)
        return proposal

    monkeypatch.setattr(proposers_mod.ModelProposer, "propose", propose)
    return seen


# --- choosing the kept tokens -----------------------------------------------------------------
def test_most_frequent_keeps_specials_then_counts_then_low_ids():
    counts = np.array([0, 5, 0, 9, 5, 1])
    assert most_frequent(counts, 4, always=[2]).tolist() == [2, 3, 1, 4]  # forced, 9, then 5s by id
    assert most_frequent(counts, 6).tolist() == [3, 1, 4, 5, 0, 2]  # unseen tokens last, by id
    with pytest.raises(UserError, match="1..6"):
        most_frequent(counts, 7)


# --- the IR edit --------------------------------------------------------------------------------
def test_pruned_head_gives_exactly_the_kept_columns(random_pipeline):
    xml = random_pipeline / "draft1" / "openvino_model.xml"
    full, pruned = ov.Core().read_model(xml), ov.Core().read_model(xml)
    keep = half_of_vocabulary(logits_width(full))
    prune_lm_head(pruned, keep)
    assert logits_width(pruned) == keep.size
    feed = {
        "input_ids": np.array([[5, 17, 300, 42]]),
        "attention_mask": np.ones((1, 4), dtype=np.int64),
        "position_ids": np.arange(4)[None],
        "beam_idx": np.zeros(1, dtype=np.int32),
    }
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    outs = [ov.Core().compile_model(m, "CPU", config)(feed)["logits"][0] for m in (full, pruned)]
    np.testing.assert_allclose(outs[1], outs[0][:, keep], rtol=0, atol=1e-5)


# --- export -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pruned_export(random_pair):
    """tiny:random exported with an int8 draft whose head keeps 128 of 512 tokens, from an fp16
    conversion (the weight then sits behind a Convert: the path real bf16/fp16 checkpoints take)."""
    return exported_pipeline(
        "random-pruned",
        random_pair.root,
        target="tiny:random/target",
        drafts=["tiny:random/draft"],
        formats={"target": "fp16", "draft": "int8_asym"},
        convert_dtype="fp16",
        draft_vocab=VOCAB_KEPT,
    )


def test_export_records_the_pruned_head(pruned_export):
    manifest = json.loads((pruned_export / MANIFEST_NAME).read_text())
    draft = next(m for m in manifest["models"] if m["name"] == "draft1")
    head = draft["pruned_head"]
    assert head["kept"] == VOCAB_KEPT and head["vocab_size"] == 512
    assert "held-out" in head["counted_on"] and 0 < head["coverage"] <= 1
    assert manifest["recipe"]["draft"][0]["draft_vocab"] == VOCAB_KEPT
    ids = np.load(pruned_export / "draft1" / head["token_ids"])
    assert ids.size == len(set(ids.tolist())) == VOCAB_KEPT
    assert set(manifest["tokenizer"]["eos_token_ids"]) <= set(ids.tolist())  # EOS always kept
    model = ov.Core().read_model(pruned_export / "draft1" / "openvino_model.xml")
    assert logits_width(model) == VOCAB_KEPT
    types = {
        op.get_output_element_type(0).get_type_name()
        for op in model.get_ops()
        if op.get_type_name() == "Constant"
    }
    assert "u8" in types  # NNCF compressed the model, the smaller head included
    assert "draft1" in manifest["preview"]["models"]
    # The recorded recipe re-makes the same choice.
    assert "draft_vocab = 128" in (pruned_export / "recipe.toml").read_text()


def test_exported_pruned_draft_is_lossless(pruned_export, monkeypatch):
    pipe = ov_spec.load(pruned_export, rollback="trim")  # strict: exact equality can fail on a bug
    kept = set(np.load(pruned_export / "draft1" / KEPT_TOKENS_FILE).tolist())
    drafted = recording_proposer(monkeypatch)
    for prompt in _prompts(pipe.vocab_size, 4):
        want = pipe.generate(prompt, max_new_tokens=24, use_draft=False).token_ids
        assert pipe.generate(prompt, max_new_tokens=24, draft_tokens=4).token_ids == want
    assert drafted and set(drafted) <= kept


def test_bad_draft_vocab_is_a_user_error(random_pair, tmp_path):
    from ov_spec.export import export_pipeline

    common = dict(
        target="tiny:random/target", drafts=["tiny:random/draft"], output=tmp_path / "o", quiet=True
    )
    with pytest.raises(UserError, match="exceeds its vocabulary of 512"):
        export_pipeline(**common, draft_vocab=4096)
    with pytest.raises(UserError, match="whole number >= 1"):
        export_pipeline(**common, draft_vocab=-3)
    with pytest.raises(UserError, match="once per --draft"):
        export_pipeline(**common, draft_vocab=[64, 64])
    assert not (tmp_path / "o").exists()


# --- greedy decoding with a pruned draft ---------------------------------------------------------
@pytest.fixture(scope="module")
def self_pruned(random_pipeline, tmp_path_factory):
    keep = half_of_vocabulary(512)
    return pruned_self_draft(random_pipeline, tmp_path_factory.mktemp("p") / "pipe", keep), keep


@pytest.mark.parametrize("k", KS)
def test_greedy_with_pruned_draft_equals_target_only(self_pruned, k, monkeypatch):
    folder, keep = self_pruned
    pipe = ov_spec.load(folder, rollback="trim")  # strict: exact equality can fail on a bug
    drafted = recording_proposer(monkeypatch)
    accepted = proposed = 0
    for prompt in _prompts(pipe.vocab_size, 6):
        want = pipe.generate(prompt, max_new_tokens=MAX_NEW, use_draft=False).token_ids
        result = pipe.generate(prompt, max_new_tokens=MAX_NEW, draft_tokens=k)
        assert result.token_ids == want
        accepted += result.metrics.levels[0].accepted
        proposed += result.metrics.levels[0].drafted
    # Only kept tokens are proposed; the draft is the target's argmax among them, accepted whenever
    # the target's choice is kept, so both verification branches ran.
    assert set(drafted) <= set(keep.tolist())
    assert 0 < accepted < proposed


def test_ignoring_the_token_map_is_caught(self_pruned, monkeypatch):
    """Negative control: a runtime that reads the pruned logits as token ids proposes other tokens."""
    folder, keep = self_pruned
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["models"][1]["pruned_head"] = {}
    broken = folder.parent / "broken"
    broken.mkdir()
    (broken / MANIFEST_NAME).write_text(json.dumps(manifest))
    pipe = ov_spec.load(broken)
    drafted = recording_proposer(monkeypatch)
    for prompt in _prompts(512, 3):
        pipe.generate(prompt, max_new_tokens=MAX_NEW, draft_tokens=4)
    assert not set(drafted) <= set(keep.tolist())


def test_recipe_draft_vocab_round_trips_and_rejects_bad_values():
    from ov_spec.export.recipe import Recipe

    table = {"target": {"source": "t"}, "draft": [{"source": "d", "format": "int8_asym", "draft_vocab": 64}]}
    recipe = Recipe.from_dict(table)
    assert [s.draft_vocab for s in recipe.validate()] == [None, 64]
    assert recipe.to_dict()["draft"][0]["draft_vocab"] == 64
    assert Recipe.from_dict(recipe.to_dict()).draft_vocab == [64]
    for bad in (True, "many", 1.5):
        table["draft"][0]["draft_vocab"] = bad
        with pytest.raises(UserError, match="draft_vocab must be a whole number"):
            Recipe.from_dict(table)
