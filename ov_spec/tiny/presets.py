"""Build recipes for the offline model pairs, and parameter counts derived from them.

Pure Python (no torch): tests and callers can check sizes and cache keys without building
anything. Changing a recipe changes the cache key, so stale folders are never reused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ov_spec.errors import UserError

# Bump when the build procedure changes in a way the recipes below do not capture
# (data pipeline, initialisation, file layout): it is part of every cache key.
BUILDER_VERSION = "2"


@dataclass(frozen=True)
class ModelSpec:
    """Shape of one Llama-architecture model (LlamaForCausalLM, tied embeddings)."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    # Std of the normal init. The random preset uses a larger value than the usual 0.02 so its
    # next-token distributions are peaked enough that greedy ties are rare.
    initializer_range: float = 0.02

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class TrainSpec:
    """A fixed-length training run (the time budget can only cut it short)."""

    steps: int
    batch_size: int
    seq_len: int
    lr: float
    warmup_steps: int
    weight_decay: float = 0.1
    # Share of the loss that is KL(teacher || student) on the target's logits; 0 = plain LM loss.
    distill_weight: float = 0.0


@dataclass(frozen=True)
class WidenSpec:
    """Function-preserving widening of the default target (see :mod:`ov_spec.tiny.widen`)."""

    hidden_size: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    noise: float  # std of the noise put on new (zero) entries, relative to each tensor's std


@dataclass(frozen=True)
class GrowthSpec:
    """Progressive growth: train the target narrow first, then widen it and keep training.

    A small model learns far more per CPU-second early in training than a big one; widening
    it with :func:`ov_spec.tiny.widen.widen_llama` keeps what it learned, and the full-width
    phase then builds on it (Net2Net). The narrow model's embedding and first layers also
    give the draft a trained starting point when their shapes match.
    """

    narrow: ModelSpec  # same depth as the target, narrower
    train: TrainSpec  # the narrow phase
    # Relative noise on the new (zero) entries at widening: it breaks the symmetry that would
    # otherwise keep the new dimensions at zero forever (their gradients would be zero).
    noise: float
    draft_from_narrow: bool  # start the draft from the narrow model's embedding + first layers


@dataclass(frozen=True)
class PresetSpec:
    """Everything that determines a build, except the seed."""

    name: str
    vocab_size: int
    max_position_embeddings: int
    target: ModelSpec
    draft: ModelSpec
    # Bytes of training text the tokenizer learns from (None: all of it).
    tokenizer_train_bytes: int | None
    # Bytes of training text tokenized for model training (None: all of it).
    data_bytes: int | None
    target_train: TrainSpec | None  # None: random weights (after growth: the full-width phase)
    draft_train: TrainSpec | None
    eval_windows: int  # held-out windows of eval_seq_len tokens used for perplexity/agreement
    eval_seq_len: int
    growth: GrowthSpec | None = None
    base_preset: str | None = None  # "large" is derived from "default"
    widen: WidenSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Recipe, tuned for ~4-5 minutes on 2 CPU cores: grow the target (train it at hidden 128, widen
# to 256, train on), then distil the draft from it. In that time a model sees only ~1M tokens,
# the regime where a small model learns far more per CPU-second than a big one; the growth
# trick lets the target profit from that. Held-out result: ppl ~117 (target) vs ~123 (draft),
# greedy agreement ~0.72 (see report.json).
_DEFAULT = PresetSpec(
    name="default",
    vocab_size=2048,
    max_position_embeddings=1024,
    # 6.8M parameters; head_dim 64 and GQA 2:1 like the big Llamas.
    target=ModelSpec(hidden_size=256, num_layers=8, num_heads=4, num_kv_heads=2, intermediate_size=768),
    # 0.66M parameters (< 1/10 of the target), most of it the embedding table. Same widths as
    # the narrow target, so it starts from that model's embedding and first two layers.
    draft=ModelSpec(hidden_size=128, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=384),
    tokenizer_train_bytes=None,
    # ~4M tokens to draw training windows from (training reads ~1.3M of them).
    data_bytes=12_000_000,
    # A narrow step costs ~0.4 of a full-width one, so the narrow phase gets most of the steps.
    growth=GrowthSpec(
        narrow=ModelSpec(hidden_size=128, num_layers=8, num_heads=2, num_kv_heads=1, intermediate_size=384),
        train=TrainSpec(steps=600, batch_size=4, seq_len=256, lr=4e-3, warmup_steps=30),
        noise=0.02,
        draft_from_narrow=True,
    ),
    target_train=TrainSpec(steps=250, batch_size=4, seq_len=256, lr=2e-3, warmup_steps=10),
    # The draft learns mostly from the target's distribution: that is what drafting needs
    # (agreement), and the soft targets carry more signal per token than the hard labels.
    draft_train=TrainSpec(steps=400, batch_size=4, seq_len=256, lr=3e-3, warmup_steps=10, distill_weight=0.8),
    eval_windows=16,
    eval_seq_len=512,
)

_RANDOM = PresetSpec(
    name="random",
    vocab_size=512,
    max_position_embeddings=1024,
    target=ModelSpec(
        hidden_size=64,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        intermediate_size=176,
        initializer_range=0.1,
    ),
    draft=ModelSpec(
        hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=88, initializer_range=0.1
    ),
    tokenizer_train_bytes=1_000_000,
    data_bytes=0,
    target_train=None,
    draft_train=None,
    eval_windows=8,
    eval_seq_len=128,
)

_LARGE = PresetSpec(
    name="large",
    vocab_size=_DEFAULT.vocab_size,
    max_position_embeddings=_DEFAULT.max_position_embeddings,
    # 8 layers of hidden 1024: ~103M parameters that predict exactly like the default target.
    target=ModelSpec(hidden_size=1024, num_layers=8, num_heads=16, num_kv_heads=8, intermediate_size=3072),
    draft=_DEFAULT.draft,
    tokenizer_train_bytes=_DEFAULT.tokenizer_train_bytes,
    data_bytes=None,
    target_train=None,
    draft_train=None,
    # The same held-out windows as "default", so the numbers compare directly.
    eval_windows=_DEFAULT.eval_windows,
    eval_seq_len=_DEFAULT.eval_seq_len,
    base_preset="default",
    widen=WidenSpec(hidden_size=1024, num_heads=16, num_kv_heads=8, intermediate_size=3072, noise=1e-3),
)

PRESETS: dict[str, PresetSpec] = {p.name: p for p in (_DEFAULT, _RANDOM, _LARGE)}


def preset_spec(name: str) -> PresetSpec:
    """The recipe for ``name``; :class:`UserError` for an unknown name."""
    try:
        return PRESETS[name]
    except KeyError:
        choices = ", ".join(PRESETS)
        raise UserError(f"unknown preset {name!r}; choose one of: {choices}") from None


def count_params(model: ModelSpec, vocab_size: int) -> int:
    """Parameters of a LlamaForCausalLM with this shape and tied embeddings (no biases).

    Matches ``model.num_parameters()`` of the built model (a test checks it).
    """
    h, hd = model.hidden_size, model.head_dim
    attn = h * model.num_heads * hd * 2 + h * model.num_kv_heads * hd * 2  # q, o + k, v
    mlp = 3 * h * model.intermediate_size  # gate, up, down
    norms = 2 * h
    return vocab_size * h + model.num_layers * (attn + mlp + norms) + h  # + final norm


def param_counts(name: str) -> dict[str, int]:
    """``{"target": n, "draft": n}`` for a preset, computed from its recipe (nothing is built)."""
    spec = preset_spec(name)
    return {
        "target": count_params(spec.target, spec.vocab_size),
        "draft": count_params(spec.draft, spec.vocab_size),
    }
