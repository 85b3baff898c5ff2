"""The load-time LM-head slice must not change a single logit bit."""

from __future__ import annotations

import numpy as np
import openvino as ov

from ov_spec.manifest import Manifest
from ov_spec.runtime.graph import LOGITS_TO_KEEP, keep_last_logits
from ov_spec.runtime.stateful import StatefulLM, kv_sequence_axis


def test_sliced_head_gives_identical_logits(random_pipeline):
    manifest = Manifest.read(random_pipeline)
    xml = random_pipeline / manifest.target.path / "openvino_model.xml"
    core = ov.Core()
    plain_model, sliced_model = core.read_model(xml), core.read_model(xml)
    assert keep_last_logits(sliced_model)
    assert LOGITS_TO_KEEP in {n for i in sliced_model.inputs for n in i.get_names()}
    axis = kv_sequence_axis(plain_model)
    plain = StatefulLM(core.compile_model(plain_model, "CPU"), axis)
    sliced = StatefulLM(core.compile_model(sliced_model, "CPU"), axis)
    rng = np.random.default_rng(0)
    prompt = rng.integers(3, plain.vocab_size, 37).tolist()
    # Prefill (last row only), then verification-shaped chunks of 1..6 tokens with all rows.
    np.testing.assert_array_equal(sliced.forward(prompt, 1), plain.forward(prompt, 1))
    for t in [1, 5, 3, 6, 2]:
        chunk = rng.integers(3, plain.vocab_size, t).tolist()
        a, b = sliced.forward(chunk, t), plain.forward(chunk, t)
        assert a.shape == (t, plain.vocab_size)
        np.testing.assert_array_equal(a, b)
