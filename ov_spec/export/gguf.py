"""GGUF files (llama.cpp, Ollama, LM Studio) as export sources.

A ``.gguf`` is turned into an ordinary Hugging Face checkpoint folder once, then exported like any
other source:

1. **Check** the file cheaply first: the GGUF magic, metadata and tensor extents (a truncated or
   corrupt file fails here), the architecture (transformers must be able to load it and the
   runtime must support its cache layout) and the tokenizer type.
2. **Load** the weights through transformers' GGUF support (dequantized to fp32) and save them
   with ``save_pretrained``.
3. **Rebuild the tokenizer.** transformers picks its tokenizer converter by *model* architecture,
   not by tokenizer type, so a Llama-architecture GGUF with a GPT-2 style byte-level BPE
   (SmolLM2) comes out as a CodeLlama tokenizer: a SentencePiece decoder on a byte-level
   vocabulary, added tokens beyond the vocabulary, eos = ``<|im_start|>`` and a post-processor
   that prepends it to every encoding. The tokenizer is repaired from the GGUF's own metadata
   (``tokenizer.ggml.model`` / ``pre`` / special ids / chat template), every repair is recorded,
   and the result must pass round trips (decode(encode(text)) == text on a mixed sample; each
   special token encodes to its id). What cannot be repaired is refused.

The folder lives in the model cache (``$OV_SPEC_CACHE`` or ``~/.cache/ov_spec``) under
``gguf/<sha256>``, built atomically, so a second export of the same file starts at once.

Public entry points: :func:`gguf_checkpoint` (cached folder + provenance), :func:`read_gguf`
(metadata only), :func:`convert_gguf` (write a checkpoint folder), :func:`repaired_tokenizer`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ov_spec.errors import UserError, first_line

GGUF_SUFFIX = ".gguf"
GGUF_MAGIC = b"GGUF"
# Bump when the conversion or the tokenizer repair changes: cached folders of older builds are rebuilt.
CONVERTER_VERSION = 1
GGUF_REPORT = "gguf.json"  # provenance and repairs, inside the converted checkpoint folder
_CACHE_SUBDIR = "gguf"
_FIX = "export from the original Hugging Face checkpoint instead"

# llama.cpp's token types (gguf.TokenType): which vocabulary entries are special.
_TOKEN_CONTROL, _TOKEN_USER_DEFINED = 3, 4

# GPT-2's split: the ByteLevel pre-tokenizer's built-in regex.
_GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _byte_level(use_regex: bool) -> dict[str, Any]:
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": use_regex}


def _split(regex: str) -> dict[str, Any]:
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


# tokenizer.ggml.pre -> the Hugging Face pre-tokenizer that splits text the same way (llama.cpp's
# llama-vocab.cpp lists the regexes per pre-tokenizer type).
_PRE_TOKENIZERS: dict[str, dict[str, Any]] = {}
for _names, _pre in (
    (("gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jais"), _byte_level(True)),
    (
        ("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"),
        {
            "type": "Sequence",
            "pretokenizers": [{"type": "Digits", "individual_digits": True}, _byte_level(True)],
        },
    ),
    (
        ("llama3", "llama-v3", "llama-bpe", "falcon3", "smaug-bpe"),
        {"type": "Sequence", "pretokenizers": [_split(_LLAMA3_REGEX), _byte_level(False)]},
    ),
    (
        ("qwen2", "stablelm2", "deepseek-r1-qwen"),
        {"type": "Sequence", "pretokenizers": [_split(_QWEN2_REGEX), _byte_level(False)]},
    ),
):
    for _name in _names:
        _PRE_TOKENIZERS[_name] = _pre

# Text the repaired tokenizer must round-trip: prose, unicode (accents, CJK, emoji), digits, code
# with indentation, tabs and blank lines, and markup.
ROUND_TRIP_TEXT = (
    "Hello, world! It's a naïve café — déjà vu. 東京タワー 🚀 Ωμέγα 2024-12-01 3.14159\n"
    "def fib(n: int) -> int:\n    if n < 2:\n        return n\n\treturn fib(n - 1) + fib(n - 2)\n\n\n"
    '  <div class="x">{"a": [1, 2]}</div>  \n'
)


@dataclass
class GGUFInfo:
    """What the GGUF's metadata says (no tensor data is read)."""

    path: Path
    sha256: str
    architecture: str  # general.architecture ("llama", "qwen2", ...)
    model_type: str  # the transformers model type it loads as
    quantization: str  # file type: "Q4_1", "Q8_0", "F16", ... (or the dominant tensor type)
    tensor_types: dict[str, int]  # tensor count per quantization type
    context_length: int
    tokenizer_model: str  # tokenizer.ggml.model: "gpt2" (byte-level BPE), "llama" (SentencePiece), ...
    tokenizer_pre: str  # tokenizer.ggml.pre: "smollm", "llama-bpe", "qwen2", ...
    tokens: list[str] = field(repr=False)
    token_types: list[int] = field(repr=False)
    special_ids: dict[str, int | None] = field(default_factory=dict)  # bos, eos, pad, unk
    add_bos: bool = False
    add_eos: bool = False
    chat_template: str | None = None

    def provenance(self) -> dict[str, Any]:
        """What the manifest records about the file."""
        return {"file": str(self.path), "quantization": self.quantization, "sha256": self.sha256}


def is_gguf(spec: str | Path) -> bool:
    """Whether a source string names a GGUF file (by its suffix)."""
    return str(spec).strip().lower().endswith(GGUF_SUFFIX)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def read_gguf(path: str | Path, who: str = "model", sha256: str | None = None) -> GGUFInfo:
    """Read and check a GGUF's metadata; raise :class:`UserError` for anything export cannot use.

    Checks, in this order: readable file, GGUF magic, parseable metadata, tensor data inside the
    file (truncation), an architecture transformers can load and ov_spec can run, a tokenizer
    type that can be rebuilt.
    """
    path = check_file(path, who)
    reader = _reader(path, who)
    _check_extents(reader, path, who)
    architecture = str(_field(reader, "general.architecture", ""))
    model_type = _model_type(reader, path, architecture, who)
    tokens = [str(t) for t in _field(reader, "tokenizer.ggml.tokens", [])]
    types = [int(t) for t in _field(reader, "tokenizer.ggml.token_type", [])]
    if not tokens:
        raise UserError(f"{who}: {path.name} has no tokenizer (tokenizer.ggml.tokens); {_FIX}")
    special = {
        name: _optional_int(_field(reader, f"tokenizer.ggml.{key}_token_id", None))
        for name, key in (("bos", "bos"), ("eos", "eos"), ("pad", "padding"), ("unk", "unknown"))
    }
    tensor_types: dict[str, int] = {}
    for tensor in reader.tensors:
        name = tensor.tensor_type.name
        tensor_types[name] = tensor_types.get(name, 0) + 1
    template = _field(reader, "tokenizer.chat_template", None)
    info = GGUFInfo(
        path=path.resolve(),
        sha256=sha256 or file_sha256(path),
        architecture=architecture,
        model_type=model_type,
        quantization=_quantization(reader, tensor_types),
        tensor_types=tensor_types,
        context_length=int(_field(reader, f"{architecture}.context_length", 0) or 0),
        tokenizer_model=str(_field(reader, "tokenizer.ggml.model", "")),
        tokenizer_pre=str(_field(reader, "tokenizer.ggml.pre", "") or "default"),
        tokens=tokens,
        token_types=types if len(types) == len(tokens) else [1] * len(tokens),
        special_ids=special,
        add_bos=bool(_field(reader, "tokenizer.ggml.add_bos_token", False)),
        add_eos=bool(_field(reader, "tokenizer.ggml.add_eos_token", False)),
        chat_template=str(template) if template else None,
    )
    _check_tokenizer_kind(info, who)
    return info


def _check_tokenizer_kind(info: GGUFInfo, who: str) -> None:
    """Refuse, before any weights are read, a tokenizer type :func:`repaired_tokenizer` cannot rebuild."""
    kind = info.tokenizer_model
    if kind not in (
        "gpt2",
        "llama",
    ):  # SentencePiece ("llama") is what transformers' converter is written for
        raise UserError(
            f"{who}: {info.path.name} has a {kind or 'missing'!r} tokenizer, which ov_spec cannot rebuild "
            f"(supported: gpt2 byte-level BPE, llama SentencePiece); {_FIX}"
        )
    if kind == "gpt2" and info.tokenizer_pre not in _PRE_TOKENIZERS:
        raise UserError(
            f"{who}: {info.path.name}'s pre-tokenizer {info.tokenizer_pre!r} is not one ov_spec can rebuild "
            f"(known: {', '.join(sorted(_PRE_TOKENIZERS))}); {_FIX}"
        )


def check_file(path: str | Path, who: str = "model") -> Path:
    """``path`` as a readable file that starts with the GGUF magic, or :class:`UserError`."""
    path = Path(path).expanduser()
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "missing"
        raise UserError(f"{who}: GGUF file {path} is {kind}; pass the path of a .gguf file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as err:
        raise UserError(f"{who}: cannot read {path} ({err.strerror or err}); fix its permissions") from None
    if magic != GGUF_MAGIC:
        raise UserError(f"{who}: {path} is not a GGUF file (no GGUF header); re-download it")
    return path


def _reader(path: Path, who: str) -> Any:
    try:
        from gguf import GGUFReader
    except ImportError:
        raise UserError(
            "GGUF sources need the gguf package (part of the export extra); pip install -e '.[export]'"
        ) from None
    try:
        return GGUFReader(path)
    except Exception as err:  # truncated headers surface as ValueError/IndexError/struct errors
        raise UserError(
            f"{who}: {path.name} is truncated or corrupt ({first_line(err)}); re-download the GGUF file"
        ) from None


def _check_extents(reader: Any, path: Path, who: str) -> None:
    """Every tensor's data must lie inside the file (a cut-off download ends mid-tensor)."""
    size = path.stat().st_size
    for tensor in reader.tensors:
        end = int(tensor.data_offset) + int(tensor.n_bytes)
        if end > size:
            raise UserError(
                f"{who}: {path.name} is truncated (tensor {tensor.name} ends at byte {end}, the file "
                f"has {size}); re-download the GGUF file"
            )


def _field(reader: Any, key: str, default: Any) -> Any:
    entry = reader.fields.get(key)
    if entry is None:
        return default
    try:
        return entry.contents()
    except Exception:  # a malformed field reads like a missing one; the checks below report it
        return default


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _quantization(reader: Any, tensor_types: dict[str, int]) -> str:
    """The file type llama.cpp recorded (``MOSTLY_Q4_1`` -> ``Q4_1``), else the commonest tensor type."""
    file_type = _field(reader, "general.file_type", None)
    if file_type is not None:
        try:
            from gguf import LlamaFileType

            return LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except (ImportError, ValueError):
            pass
    return max(tensor_types, key=tensor_types.__getitem__) if tensor_types else "?"


def _model_type(reader: Any, path: Path, architecture: str, who: str) -> str:
    """The transformers model type of a GGUF architecture, if both transformers and ov_spec support it.

    The renames are transformers' own (``load_gguf_checkpoint``): llama.cpp files Mistral under
    ``llama`` and writes MoE architectures without the underscore.
    """
    from ov_spec.export.compat import SUPPORTED_ARCHITECTURES

    try:
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES
    except ImportError as err:
        raise UserError(
            f"GGUF sources need transformers with GGUF support ({err}); pip install -e '.[export]'"
        ) from None
    name = str(_field(reader, "general.name", "")).lower()
    model_type = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "minimax-m2": "minimax_m2"}.get(
        architecture, architecture
    )
    if architecture == "llama" and "mistral" in name:
        model_type = "mistral"
    if model_type not in GGUF_SUPPORTED_ARCHITECTURES or model_type not in SUPPORTED_ARCHITECTURES:
        supported = sorted(set(GGUF_SUPPORTED_ARCHITECTURES) & set(SUPPORTED_ARCHITECTURES))
        raise UserError(
            f"{who}: GGUF architecture {architecture or '(none)'!r} of {path.name} is not supported; "
            f"supported: {', '.join(supported)}"
        )
    return model_type


# --- the tokenizer ---------------------------------------------------------------------------
def repaired_tokenizer(info: GGUFInfo, converted: Any, who: str = "model") -> tuple[Any, list[str]]:
    """A ``PreTrainedTokenizerFast`` fixed from the GGUF metadata, and the repairs made.

    ``converted`` is what ``AutoTokenizer.from_pretrained(dir, gguf_file=...)`` built. The
    result has the vocabulary's own pre-tokenizer and decoder, adds only the special tokens the
    GGUF asks for (``add_bos_token`` / ``add_eos_token``), has no added tokens beyond
    the vocabulary, the GGUF's special ids and chat template. Raises :class:`UserError` if the
    tokenizer type cannot be rebuilt or the result fails :func:`check_round_trip`.
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    repairs: list[str] = []
    data = json.loads(converted.backend_tokenizer.to_str())
    vocab_size = len(info.tokens)
    _check_tokenizer_kind(info, who)
    if info.tokenizer_model == "gpt2":
        _repair_byte_level(data, info, repairs, who)
    # Added tokens past the vocabulary (CodeLlama's infill tokens) have no embedding row.
    extra = [t for t in data.get("added_tokens", []) if int(t["id"]) >= vocab_size]
    if extra:
        data["added_tokens"] = [t for t in data["added_tokens"] if int(t["id"]) < vocab_size]
        repairs.append(f"dropped {len(extra)} added tokens beyond the vocabulary of {vocab_size}")
    _mark_special_tokens(data, info, repairs)
    _set_post_processor(data, info, repairs)

    names = {}
    for name, token_id in info.special_ids.items():
        if token_id is None:
            continue
        if not 0 <= token_id < vocab_size:
            raise UserError(
                f"{who}: {info.path.name}'s {name} token id {token_id} is outside the vocabulary; {_FIX}"
            )
        names[f"{name}_token"] = info.tokens[token_id]
    for name, value in names.items():
        old = getattr(converted, name, None)
        if old is not None and str(old) != value:
            repairs.append(f"{name} {old} -> {value}")
    cls = type(converted).__name__
    if cls not in ("PreTrainedTokenizerFast", "TokenizersBackend"):
        repairs.append(f"tokenizer class {cls} -> PreTrainedTokenizerFast")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(data)),
        model_max_length=info.context_length or None,
        clean_up_tokenization_spaces=False,
        chat_template=info.chat_template,
        add_bos_token=info.add_bos,
        add_eos_token=info.add_eos,
        **names,
    )
    check_round_trip(tokenizer, info, who)
    return tokenizer, repairs


def _repair_byte_level(data: dict[str, Any], info: GGUFInfo, repairs: list[str], who: str) -> None:
    """A GPT-2 style byte-level BPE: the pre-tokenizer of its ``pre`` type, a ByteLevel decoder."""
    pre = _PRE_TOKENIZERS[info.tokenizer_pre]
    if data.get("pre_tokenizer") != pre:
        data["pre_tokenizer"] = pre
        repairs.append(f"pre-tokenizer -> {info.tokenizer_pre} byte-level split")
    decoder = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    if (data.get("decoder") or {}).get("type") != "ByteLevel":
        repairs.append("decoder -> ByteLevel (was a SentencePiece-style decoder)")
    data["decoder"] = decoder
    if data.get("normalizer") not in (None, {"type": "Sequence", "normalizers": []}):
        repairs.append("removed the normalizer")
    data["normalizer"] = None
    model = data["model"]
    if model.get("type") != "BPE":
        raise UserError(f"{who}: {info.path.name}'s gpt2 tokenizer did not convert to BPE; {_FIX}")
    # A byte-level vocabulary covers every byte: no byte fallback, no unknown token.
    if model.get("byte_fallback") or model.get("unk_token") is not None:
        repairs.append("BPE model: no byte fallback or unknown token (byte-level vocabulary)")
    model.update({"byte_fallback": False, "unk_token": None, "fuse_unk": False})


def _mark_special_tokens(data: dict[str, Any], info: GGUFInfo, repairs: list[str]) -> None:
    """Control and user-defined tokens of the GGUF are added tokens (never split by BPE)."""
    present = {int(t["id"]) for t in data.get("added_tokens", [])}
    wanted = {i: info.token_types[i] for i in range(len(info.tokens))}
    special_ids = {i for i in info.special_ids.values() if i is not None}
    missing = [
        i
        for i, kind in wanted.items()
        if (kind in (_TOKEN_CONTROL, _TOKEN_USER_DEFINED) or i in special_ids) and i not in present
    ]
    for i in missing:
        data.setdefault("added_tokens", []).append(
            {
                "id": i,
                "content": info.tokens[i],
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": wanted[i] != _TOKEN_USER_DEFINED,
            }
        )
    if missing:
        data["added_tokens"].sort(key=lambda t: int(t["id"]))
        repairs.append(f"added {len(missing)} control/user tokens as added tokens")


def _set_post_processor(data: dict[str, Any], info: GGUFInfo, repairs: list[str]) -> None:
    """No post-processor of the converter's: transformers builds one from ``add_bos_token`` /
    ``add_eos_token``, which are passed as the GGUF says (see :func:`repaired_tokenizer`)."""
    old = data.get("post_processor")
    if _adds_tokens(old) and not (info.add_bos or info.add_eos):
        repairs.append("removed a post-processor that added special tokens to every encoding")
    data["post_processor"] = None


def _adds_tokens(processor: dict[str, Any] | None) -> bool:
    if not processor:
        return False
    if processor.get("type") == "TemplateProcessing":
        return any("SpecialToken" in item for item in processor.get("single", []))
    if processor.get("type") == "Sequence":
        return any(_adds_tokens(p) for p in processor.get("processors", []))
    return processor.get("type") in ("BertProcessing", "RobertaProcessing")


def check_round_trip(tokenizer: Any, info: GGUFInfo, who: str = "model") -> None:
    """decode(encode(text)) == text on :data:`ROUND_TRIP_TEXT`; each special token encodes to its id."""
    ids = tokenizer.encode(ROUND_TRIP_TEXT, add_special_tokens=False)
    back = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    if info.tokenizer_model == "llama" and back.startswith(" ") and not ROUND_TRIP_TEXT.startswith(" "):
        back = back[1:]  # SentencePiece's dummy prefix
    if back != ROUND_TRIP_TEXT:
        at = next(
            (i for i, (a, b) in enumerate(zip(back, ROUND_TRIP_TEXT)) if a != b),
            min(len(back), len(ROUND_TRIP_TEXT)),
        )
        raise UserError(
            f"{who}: {info.path.name}'s tokenizer does not round-trip text after repair "
            f"(differs at {ROUND_TRIP_TEXT[at : at + 12]!r} -> {back[at : at + 12]!r}); {_FIX}"
        )
    plain = tokenizer.encode("Hello", add_special_tokens=False)
    bos, eos = info.special_ids.get("bos"), info.special_ids.get("eos")
    expected = [bos] * (info.add_bos and bos is not None) + plain + [eos] * (info.add_eos and eos is not None)
    got = tokenizer.encode("Hello")
    if got != expected:
        raise UserError(
            f"{who}: {info.path.name}'s tokenizer adds {got} around {plain}, the GGUF asks for {expected}; {_FIX}"
        )
    for name, token_id in info.special_ids.items():
        if token_id is None:
            continue
        got = tokenizer.encode(info.tokens[token_id], add_special_tokens=False)
        if got != [token_id]:
            raise UserError(
                f"{who}: {info.path.name}'s {name} token {info.tokens[token_id]!r} encodes to {got[:4]}, "
                f"not [{token_id}], after repair; {_FIX}"
            )


# --- conversion ------------------------------------------------------------------------------
def convert_gguf(
    info: GGUFInfo, dest: Path, who: str = "model", log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Write a Hugging Face checkpoint folder for the GGUF into ``dest``; return its report.

    The weights are dequantized to fp32 (what the GGUF's quantization left of them); the
    tokenizer is :func:`repaired_tokenizer`'s. ``dest/gguf.json`` records file, sha256,
    quantization and repairs.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ov_spec.export.convert import quiet_libraries

    folder, name = str(info.path.parent), info.path.name
    with quiet_libraries():
        try:
            converted = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
        except Exception as err:
            raise UserError(
                f"{who}: transformers cannot read the tokenizer of {name} ({first_line(err)}); {_FIX}"
            ) from None
        tokenizer, repairs = repaired_tokenizer(info, converted, who)
        try:
            model = AutoModelForCausalLM.from_pretrained(
                folder, gguf_file=name, dtype=torch.float32, local_files_only=True
            )
        except (ValueError, KeyError, RuntimeError, TypeError) as err:
            raise UserError(
                f"{who}: transformers cannot load the weights of {name} ({first_line(err)}); "
                "check the file, or export from the original Hugging Face checkpoint"
            ) from None
        ids = {k: v for k, v in info.special_ids.items() if k in ("bos", "eos", "pad") and v is not None}
        for key, value in ids.items():
            setattr(model.config, f"{key}_token_id", value)
            setattr(model.generation_config, f"{key}_token_id", value)
        model.config.name_or_path = str(info.path)
        model.save_pretrained(dest)
        tokenizer.save_pretrained(dest)
    _name_tokenizer_class(dest / "tokenizer_config.json")
    report = {
        **info.provenance(),
        "architecture": info.architecture,
        "model_type": info.model_type,
        "tensor_types": info.tensor_types,
        "tokenizer": {"model": info.tokenizer_model, "pre": info.tokenizer_pre, "repairs": repairs},
        "converter_version": CONVERTER_VERSION,
    }
    (dest / GGUF_REPORT).write_text(json.dumps(report, indent=2) + "\n")
    if log is not None and repairs:
        log(f"{who}: repaired the GGUF tokenizer: {'; '.join(repairs)}")
    return report


def _name_tokenizer_class(config: Path) -> None:
    """Record the class every transformers version knows (5.x saves its alias TokenizersBackend)."""
    data = json.loads(config.read_text())
    data["tokenizer_class"] = "PreTrainedTokenizerFast"
    config.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def gguf_checkpoint(
    path: str | Path,
    who: str = "model",
    log: Callable[[str], None] | None = None,
    cache_dir: str | Path | None = None,
) -> tuple[Path, dict[str, Any]]:
    """The Hugging Face checkpoint folder of a GGUF file, converted once and cached; and its report.

    The folder is ``<cache>/gguf/<sha256[:16]>-v<CONVERTER_VERSION>`` (``cache_dir``,
    ``$OV_SPEC_CACHE`` or ``~/.cache/ov_spec``), built in a temp folder and renamed into place, so
    an interrupted conversion leaves nothing behind and concurrent callers convert once. The
    report holds ``file``, ``sha256``, ``quantization``, ``architecture``, ``tensor_types`` and the
    tokenizer ``repairs``. Raises :class:`UserError` for a file export cannot use.
    """
    from ov_spec.tiny.cache import (
        REPORT_NAME,
        build_atomically,
        default_cache_dir,
        ensure_writable,
        is_complete,
    )

    path = check_file(path, who)
    sha256 = file_sha256(path)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    root = cache / _CACHE_SUBDIR
    ensure_writable(root)
    final = root / f"{sha256[:16]}-v{CONVERTER_VERSION}"

    def build(tmp: Path) -> None:
        info = read_gguf(path, who, sha256)
        if log is not None:
            log(
                f"{who}: converting {info.path.name} ({info.quantization}) to a checkpoint (dequantized, once)"
            )
        report = convert_gguf(info, tmp, who, log)
        (tmp / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")  # written last: complete

    if not is_complete(final):  # the same bytes were checked and converted before: skip the checks
        build_atomically(final, build, reuse=lambda folder: True)
    report = json.loads((final / GGUF_REPORT).read_text())
    # The same bytes may sit at another path than when the cache was built.
    report["file"] = str(path.resolve())
    return final, report


__all__ = [
    "GGUFInfo",
    "ROUND_TRIP_TEXT",
    "check_round_trip",
    "convert_gguf",
    "file_sha256",
    "gguf_checkpoint",
    "is_gguf",
    "read_gguf",
    "repaired_tokenizer",
]
