"""Create, seed and save the Llama-architecture models of a pair."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from ov_spec.tiny.presets import ModelSpec
from ov_spec.tiny.tokenizer import EOS_ID

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-file progress bars ("Writing model shards") for a moment."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def derive_seed(seed: int, tag: str) -> int:
    """A seed for one purpose ("target", "draft", "data", ...) derived from the build seed.

    Target and draft get unrelated streams, so a random target and draft disagree.
    """
    digest = hashlib.sha256(f"ov_spec.tiny:{seed}:{tag}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**63)


def llama_config(spec: ModelSpec, vocab_size: int, max_positions: int):
    """The ``transformers.LlamaConfig`` for ``spec``."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        head_dim=spec.head_dim,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=max_positions,
        initializer_range=spec.initializer_range,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=EOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=EOS_ID,
    )


def new_model(spec: ModelSpec, vocab_size: int, max_positions: int, seed: int):
    """A randomly initialised LlamaForCausalLM in float32; same seed => same weights."""
    import torch
    from transformers import LlamaForCausalLM

    config = llama_config(spec, vocab_size, max_positions)
    # transformers initialises from torch's global generator; fork it so the caller's RNG
    # state is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model.float().eval()


def copy_matching(dst, src) -> None:
    """Copy into ``dst`` every tensor of ``src`` with the same name (shapes must match).

    Used to start the draft from the narrow target: same widths, fewer layers, so it gets the
    trained embedding, the first layers and the final norm.
    """
    import torch

    source = src.state_dict()
    with torch.no_grad():
        for name, tensor in dst.state_dict().items():
            assert source[name].shape == tensor.shape, (name, source[name].shape, tensor.shape)
            tensor.copy_(source[name])


def save_model(model, folder: Path, tokenizer_folder: Path) -> None:
    """Write an ordinary Hugging Face folder: config, safetensors, generation config, tokenizer."""
    from transformers import GenerationConfig

    folder.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(folder)
    GenerationConfig(bos_token_id=EOS_ID, eos_token_id=EOS_ID, pad_token_id=EOS_ID).save_pretrained(folder)
    for name in TOKENIZER_FILES:
        src = tokenizer_folder / name
        if src.exists():
            shutil.copyfile(src, folder / name)


def load_model(folder: Path):
    """Load a saved model folder in float32, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    with quiet_transformers():
        return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
