"""``--draft-format auto``: the draft format is chosen by predicted speed from measured agreement and cost.

The prediction itself is checked on synthetic agreement runs and step costs with known answers;
the export path on the random tiny pair (seconds; its timings are too small to mean anything, so
only the bookkeeping is checked there: every candidate measured, the best kept and recorded).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import exported_pipeline

from ov_spec.errors import UserError
from ov_spec.export.choose import KS, predict
from ov_spec.export.preview import tau
from ov_spec.export.recipe import Recipe
from ov_spec.manifest import MANIFEST_NAME

VERIFY_FLAT = {n: 10.0 for n in range(1, max(KS) + 2)}  # a pass costs the same for any token count


def runs(rate: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((8, 256)) < rate


def test_prediction_matches_the_formula_on_known_costs():
    agree = runs(0.8)
    k, speed = predict(agree, draft_ms=1.0, verify_ms=VERIFY_FLAT)
    expected = {kk: 1e3 * tau(agree, kk) / (kk * 1.0 + 10.0) for kk in KS}
    assert k == max(expected, key=expected.get) and speed == pytest.approx(expected[k])
    assert k == 8  # cheap draft, high agreement: draft long


def test_agreement_beats_a_cheaper_step_when_the_verifier_dominates():
    # int8-like: agrees 0.95 at 3 ms; int4-like: agrees 0.7 at 2 ms; a 30 ms verifier.
    verify = {n: 30.0 for n in VERIFY_FLAT}
    _, int8 = predict(runs(0.95), 3.0, verify)
    _, int4 = predict(runs(0.7), 2.0, verify)
    assert int8 > int4
    # When the draft step is as dear as the verifier, the cheaper one wins instead.
    _, int8 = predict(runs(0.95), 30.0, verify)
    _, int4 = predict(runs(0.9), 10.0, verify)
    assert int4 > int8


def test_explicit_format_wins_over_auto_and_auto_excludes_draft_vocab():
    table = {"target": {"source": "tiny:random/target"}, "draft": [{"source": "d", "format": "auto"}]}
    recipe = Recipe.from_dict(table)
    assert recipe.draft_auto == [True]
    assert recipe.to_dict()["draft"][0]["format"] == "auto"
    recipe.override(formats={"draft": "int8_asym"})
    assert recipe.draft_auto == [False] and recipe.draft_compression[0].format == "int8_asym"
    with pytest.raises(UserError, match="remove --draft-vocab"):
        Recipe.from_dict(table).override(draft_vocab=64).validate()


def test_auto_export_measures_every_candidate_and_keeps_the_fastest(random_pair):
    folder = exported_pipeline(
        "random-auto",
        random_pair.root,
        target="tiny:random/target",
        drafts=["tiny:random/draft"],
        formats={"target": "fp32", "draft": "auto"},
    )
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    draft = next(m for m in manifest["models"] if m["name"] == "draft1")
    chosen = draft["compression"]["chosen_by"]
    cands = chosen["candidates"]
    assert [c["format"] for c in cands] == ["int8_asym", "int4_sym"]  # no pruned head on 512 tokens
    best = max(cands, key=lambda c: c["predicted_tokens_per_s"])
    assert chosen["chosen"] == best["format"] == draft["weight_format"]
    assert all(c["step_ms"] > 0 and 0 <= c["agreement"] <= 1 and c["best_k"] in KS for c in cands)
    assert chosen["reason"].startswith(f"predicted {best['format']}")
    # recipe.toml records the choice, so re-running it makes the same pipeline without measuring.
    assert f'format = "{best["format"]}"' in (folder / "recipe.toml").read_text()
    assert not (folder / "_choose").exists()
