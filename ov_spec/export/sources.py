"""Where a model comes from: a local checkpoint folder, a Hugging Face hub id, a GGUF file, or ``tiny:PRESET/ROLE``.

Everything is resolved to a local folder before any conversion starts, so a bad source fails in
seconds with a message that says what to do, not after minutes of converting the other models.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ov_spec.errors import UserError
from ov_spec.export.gguf import is_gguf

TINY_SCHEME = "tiny:"
TINY_ROLES = ("target", "draft")
# "org/name" or "name" with the characters the hub allows; anything else is treated as a path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# Files export needs from a hub snapshot (weights in safetensors; no *.bin/*.pt duplicates).
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.tiktoken", "*.txt", "*.jinja", "tokenizer*"]


@dataclass(frozen=True)
class ResolvedSource:
    """A source as the user wrote it and the local checkpoint folder it resolved to."""

    spec: str  # as written: "Qwen/Qwen2.5-0.5B-Instruct", "./ckpt", "tiny:default/draft"
    path: Path  # local Hugging Face checkpoint folder (config.json, tokenizer, weights)
    kind: str  # "local" | "hub" | "tiny" | "gguf"
    heldout: Path | None = None  # tiny pairs come with a held-out text file (default preview text)
    gguf: dict[str, Any] | None = None  # GGUF sources: file, quantization, sha256, tokenizer repairs


def resolve_source(spec: str, who: str, log: Callable[[str], None] | None = None) -> ResolvedSource:
    """Resolve ``spec`` to a readable local checkpoint folder, or raise :class:`UserError`.

    ``log`` hears about slow steps (building a tiny pair, downloading from the hub).
    """
    spec = str(spec).strip()
    if not spec:
        raise UserError(f"{who}: empty source; pass a checkpoint folder, a hub id or tiny:PRESET/ROLE")
    if spec.startswith(TINY_SCHEME):
        return _resolve_tiny(spec, who, log)
    path = Path(spec).expanduser()
    if is_gguf(spec):
        return _resolve_gguf(spec, path, who, log)
    if path.exists():
        return ResolvedSource(spec, _check_checkpoint(path, who), "local")
    if _looks_like_hub_id(spec):
        return ResolvedSource(spec, _hub_snapshot(spec, who, log), "hub")
    raise UserError(
        f"{who}: source {spec} does not exist; pass a Hugging Face checkpoint folder, a .gguf file or a hub id"
    )


def _resolve_gguf(spec: str, path: Path, who: str, log: Callable[[str], None] | None) -> ResolvedSource:
    """A GGUF file: converted once to a checkpoint folder in the model cache (see ov_spec.export.gguf)."""
    from ov_spec.export.gguf import gguf_checkpoint

    folder, report = gguf_checkpoint(path, who, log=log)
    return ResolvedSource(spec, _check_checkpoint(folder, who), "gguf", gguf=report)


def _looks_like_hub_id(spec: str) -> bool:
    return bool(_HUB_ID.match(spec)) and not spec.startswith((".", "~"))


def _check_checkpoint(path: Path, who: str) -> Path:
    """A checkpoint folder must be a readable folder with a parseable config.json."""
    if not path.is_dir():
        raise UserError(f"{who}: {path} is a file; pass the checkpoint folder that holds config.json")
    config = path / "config.json"
    if not config.is_file():
        raise UserError(
            f"{who}: {path} has no config.json; pass a Hugging Face checkpoint folder "
            "(config.json, tokenizer files, *.safetensors)"
        )
    try:
        json.loads(config.read_text())
    except PermissionError:
        raise UserError(
            f"{who}: cannot read {config} (permission denied); fix the file permissions"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(
            f"{who}: cannot read {config} ({err}); re-download or re-save the checkpoint"
        ) from None
    return path.resolve()


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _hub_snapshot(repo_id: str, who: str, log: Callable[[str], None] | None) -> Path:
    """The local snapshot of a hub model: from the HF cache if present, else downloaded."""
    fix = (
        f"{who}: {repo_id} is not a local folder and the Hugging Face hub is unreachable; "
        f"download it first with `hf download {repo_id} --local-dir DIR` and pass DIR"
    )
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise UserError(fix) from None
    try:  # already in the local HF cache: works offline too
        return _check_checkpoint(
            Path(snapshot_download(repo_id, local_files_only=True, allow_patterns=_HUB_PATTERNS)), who
        )
    except UserError:
        raise
    except Exception:  # any cache miss means "not available locally"
        pass
    if _hub_offline():
        raise UserError(fix + " (HF_HUB_OFFLINE is set)")
    if log is not None:
        log(f"downloading {repo_id} from the Hugging Face hub")
    try:
        folder = snapshot_download(repo_id, allow_patterns=_HUB_PATTERNS)
    except KeyboardInterrupt:
        raise
    except Exception:  # network, auth, or unknown repo: all mean "cannot get it"
        raise UserError(fix) from None
    return _check_checkpoint(Path(folder), who)


# --- tiny:PRESET/ROLE -------------------------------------------------------------------------
def _resolve_tiny(spec: str, who: str, log: Callable[[str], None] | None) -> ResolvedSource:
    body = spec[len(TINY_SCHEME) :]
    preset, _, role = body.partition("/")
    if not preset or role not in TINY_ROLES:
        raise UserError(
            f"{who}: {spec!r} is not a tiny source; write tiny:PRESET/ROLE with ROLE target or draft"
        )
    if log is not None and not _tiny_is_built(preset):
        log(f"building the tiny {preset!r} pair (once; cached for later exports)")
    pair = _tiny_pair(preset)
    path = Path(getattr(pair, role))
    heldout = getattr(pair, "heldout", None)
    return ResolvedSource(spec, _check_checkpoint(path, who), "tiny", Path(heldout) if heldout else None)


def _tiny_is_built(preset: str) -> bool:
    try:
        from ov_spec.tiny import pair_folder
        from ov_spec.tiny.cache import is_complete

        return bool(is_complete(pair_folder(preset)))
    except Exception:  # unknown preset etc.: build_pair reports it properly below
        return True


@functools.cache
def _tiny_pair(preset: str) -> Any:
    """Build (or load from its cache) the local tiny pair; once per preset per process."""
    try:
        from ov_spec.tiny import build_pair
    except ImportError as err:
        raise UserError(
            f"tiny: sources need ov_spec.tiny and its export extras ({err}); pip install -e '.[export]'"
        ) from None
    try:
        return build_pair(preset=preset)
    except UserError:
        raise
    except (ValueError, KeyError) as err:
        raise UserError(f"cannot build tiny preset {preset!r}: {err}") from None
