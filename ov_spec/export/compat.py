"""Can these models work together? Checked from config and tokenizer files, before any conversion.

Speculative decoding compares token ids between models, so every model must share the tokenizer:
the same vocabulary (token -> id), the same special tokens and the same added tokens. A
fingerprint (sha256 over exactly those) is stored in the manifest so the runtime and later tools
can check it again. The context limit must be known because the runtime sizes its caches from it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ov_spec.errors import IncompatibleModelsError, UserError, first_line
from ov_spec.export.sources import ResolvedSource

# Decoder-only transformers whose stateful IR has the layout the runtime relies on: input_ids,
# attention_mask (zeros honoured anywhere), position_ids, beam_idx, and a KV cache as ReadValue/Assign
# pairs. Recurrent or hybrid models (mamba, lfm2, zamba2) and encoder-decoders keep other state.
SUPPORTED_ARCHITECTURES = (
    "gemma", "gpt2", "gpt_neox", "granite", "internlm2", "llama", "mistral", "mixtral", "olmo", "olmo2",
    "phi", "phi3", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "smollm3", "stablelm", "starcoder2",
)  # fmt: skip
# config.json fields that give the context limit, in order of preference.
_CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


@dataclass
class TokenizerInfo:
    """What the runtime needs to know about the shared tokenizer."""

    vocab: dict[str, int]  # token -> id, including added tokens
    special: dict[str, Any]  # special_tokens_map: {"eos_token": "...", ...}
    added: list[tuple[int, str, bool]]  # (id, content, special) of added tokens
    eos_token_ids: list[int]
    bos_token_id: int | None
    pad_token_id: int | None
    chat_template: str | None
    fingerprint: str = ""

    def __post_init__(self) -> None:
        payload = json.dumps(
            {
                "vocab": sorted(self.vocab.items()),
                "special": sorted(self.special.items()),
                "added": self.added,
            },
            ensure_ascii=False,
            default=str,
        )
        self.fingerprint = "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class ModelInfo:
    """A source checked for export: architecture, context limit, tokenizer."""

    who: str  # "target", "draft1", ...
    source: ResolvedSource
    model_type: str  # config.model_type ("llama", "qwen2", ...)
    architecture: str  # config.architectures[0]
    max_context: int
    vocab_size: int  # width of the logits (config.vocab_size); may exceed the tokenizer's length
    torch_dtype: str  # dtype the checkpoint was saved in ("float32", "bfloat16", ...)
    widths: dict[str, int] = field(default_factory=dict)  # layer input widths, for the group-size check
    tokenizer: TokenizerInfo | None = None
    hf_tokenizer: Any = None  # the transformers tokenizer (calibration and preview text)


def inspect_source(source: ResolvedSource, who: str) -> ModelInfo:
    """Read config and tokenizer of one source; raise :class:`UserError` on anything unusable."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    try:
        config = AutoConfig.from_pretrained(source.path, local_files_only=True)
    except Exception as err:  # transformers raises ValueError/KeyError/OSError for odd configs
        raise UserError(f"{who}: cannot load config.json of {source.spec} ({first_line(err)})") from None
    model_type = getattr(config, "model_type", "") or "?"
    if model_type not in SUPPORTED_ARCHITECTURES:
        raise UserError(
            f"{who}: architecture {model_type!r} ({source.spec}) is not supported; "
            f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    max_context = next((int(v) for f in _CONTEXT_FIELDS if (v := getattr(config, f, None))), 0)
    if max_context <= 0:
        raise UserError(
            f"{who}: the context limit of {source.spec} is unknown (config.json has none of "
            f"{', '.join(_CONTEXT_FIELDS)}); add max_position_embeddings to its config.json"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.path, local_files_only=True)
    except Exception as err:
        raise UserError(
            f"{who}: cannot load the tokenizer of {source.spec} ({first_line(err)}); "
            "the checkpoint folder needs its tokenizer files (tokenizer.json, tokenizer_config.json)"
        ) from None
    try:
        generation = GenerationConfig.from_pretrained(source.path, local_files_only=True).to_dict()
    except Exception:  # generation_config.json is optional
        generation = {}
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "float32"
    return ModelInfo(
        who=who,
        source=source,
        model_type=model_type,
        architecture=(getattr(config, "architectures", None) or [model_type])[0],
        max_context=max_context,
        vocab_size=int(getattr(config, "vocab_size", 0) or len(tokenizer)),
        torch_dtype=str(dtype).replace("torch.", ""),
        widths=_layer_widths(config),
        tokenizer=_tokenizer_info(tokenizer, config, generation),
        hf_tokenizer=tokenizer,
    )


def check_compatible(models: list[ModelInfo]) -> None:
    """Every model must share the target's tokenizer; raise :class:`IncompatibleModelsError` naming the difference."""
    target = models[0]
    for other in models[1:]:
        a, b = target.tokenizer, other.tokenizer
        assert a is not None and b is not None
        if a.fingerprint == b.fingerprint:
            continue
        raise IncompatibleModelsError(
            f"{other.who}{_gguf_name(other)} {_describe_difference(a, b, 'target' + _gguf_name(target))}; "
            "speculative decoding needs a shared tokenizer: use a draft of the target's model family"
        )


def _gguf_name(info: ModelInfo) -> str:
    """`` (NAME.gguf)`` for a GGUF source, so a mismatch names the files (their folders are cache ids)."""
    gguf = info.source.gguf if info.source.kind == "gguf" else None
    return f" ({Path(gguf['file']).name})" if gguf else ""


def _describe_difference(target: TokenizerInfo, other: TokenizerInfo, name: str = "target") -> str:
    """One clause: what differs first (vocabulary, then special tokens, then added tokens)."""
    if target.vocab != other.vocab:
        differing = sorted(set(target.vocab.items()) ^ set(other.vocab.items()), key=lambda kv: kv[1])
        tokens = sorted({tok for tok, _ in differing})
        example = tokens[0] if tokens else "?"
        return (
            f"vocabulary differs from {name}: {len(other.vocab)} vs {len(target.vocab)} tokens, "
            f"{len(tokens)} tokens differ (e.g. {example!r})"
        )
    for key in sorted(set(target.special) | set(other.special)):
        if target.special.get(key) != other.special.get(key):
            return f"special token {key} differs from {name}: {other.special.get(key)!r} vs {target.special.get(key)!r}"
    return f"added tokens differ from {name}"


def _tokenizer_info(tokenizer: Any, config: Any, generation: dict[str, Any]) -> TokenizerInfo:
    eos: list[int] = []
    for value in (
        generation.get("eos_token_id"),
        tokenizer.eos_token_id,
        getattr(config, "eos_token_id", None),
    ):
        for v in value if isinstance(value, list) else [value]:
            if v is not None and int(v) not in eos:
                eos.append(int(v))
    added = sorted(
        (int(i), str(t.content), bool(t.special)) for i, t in tokenizer.added_tokens_decoder.items()
    )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else generation.get("pad_token_id")
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else generation.get("bos_token_id")
    return TokenizerInfo(
        vocab=dict(tokenizer.get_vocab()),
        special={k: v for k, v in tokenizer.special_tokens_map.items()},
        added=added,
        eos_token_ids=eos,
        bos_token_id=bos,
        pad_token_id=pad,
        chat_template=tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None,
    )


def _layer_widths(config: Any) -> dict[str, int]:
    """Input widths of the weight matrices (what a group size must divide), from config fields."""
    widths: dict[str, int] = {}
    for name in ("hidden_size", "n_embd", "intermediate_size", "n_inner", "moe_intermediate_size"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            widths[name] = value
    heads, head_dim = getattr(config, "num_attention_heads", None), getattr(config, "head_dim", None)
    if isinstance(heads, int) and isinstance(head_dim, int) and heads * head_dim not in widths.values():
        widths["num_attention_heads*head_dim"] = heads * head_dim
    return widths


def checkpoint_parameters(folder: Path) -> int:
    """Parameters in a checkpoint's safetensors files (header only; 0 if there are none).

    Exact like ``model.num_parameters()``: tied embeddings are stored once.
    """
    total = 0
    for file in sorted(Path(folder).glob("*.safetensors")):
        with file.open("rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size))
        for name, tensor in header.items():
            if name != "__metadata__":
                n = 1
                for d in tensor["shape"]:
                    n *= int(d)
                total += n
    return total


def read_text(path: Path, what: str) -> str:
    """Read a user-supplied text file, or raise :class:`UserError` naming it."""
    try:
        return Path(path).read_text(errors="replace")
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist; pass a local text file") from None
    except (IsADirectoryError, PermissionError, OSError) as err:
        raise UserError(
            f"cannot read {what} {path} ({err.strerror or err}); pass a readable text file"
        ) from None
