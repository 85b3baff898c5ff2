"""The pipeline folder's manifest (``ov_spec.json``): written by export, read by the runtime.

A pipeline folder holds one sub-folder per model (each a complete optimum-intel export that
openvino.genai can also load) and this manifest. The runtime reads only the folder.

Levels: level 0 is the target; level ``i + 1`` drafts for level ``i``. Several models at one level
are not supported; a cascade is a chain. Example (ML-SpecQD): level 0 = fp16 target, level 1 = the
target's own weights in mxfp4 (role ``self_draft``), level 2 = a small model (role ``draft``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ov_spec.errors import UserError

MANIFEST_NAME = "ov_spec.json"
FORMAT_NAME = "ov_spec.pipeline"
# Bump the major version when the runtime can no longer read older folders.
FORMAT_VERSION = 1
ROLES = ("target", "self_draft", "draft")


@dataclass
class ModelEntry:
    """One model in the pipeline folder."""

    name: str  # sub-folder name, also the key used by device configs ("target", "draft1", ...)
    role: str  # "target" | "self_draft" | "draft"
    level: int  # 0 = target; level i+1 drafts for level i
    path: str  # relative to the pipeline folder
    source: str  # hub id or local folder it was exported from
    weight_format: str  # "fp16", "int8_sym", "int4_asym", "mxfp4", ...
    compression: dict[str, Any] = field(default_factory=dict)  # the NNCF settings used
    size_bytes: int = 0  # openvino_model.bin on disk
    num_parameters: int = 0
    max_context: int = 0
    architecture: str = ""
    # Where the weights came from when the source was a GGUF file (ov_spec.export.gguf):
    # {"file": path, "quantization": "Q4_1", "sha256": ...}; empty for checkpoint sources.
    gguf: dict[str, Any] = field(default_factory=dict)
    # FR-Spec pruned vocabulary (ov_spec.export.prune); empty = the head scores the whole vocabulary.
    # {"token_ids": "kept_tokens.npy" (in the model's folder), "kept": N, "vocab_size": V, "counted_on": ...}:
    # logits column i scores token token_ids[i]; the runtime spreads rows back over V columns.
    pruned_head: dict[str, Any] = field(default_factory=dict)


@dataclass
class Manifest:
    """Everything the runtime needs to know about a pipeline folder."""

    models: list[ModelEntry]
    tokenizer: dict[str, Any]  # path, fingerprint, eos_token_ids, bos/pad ids, chat_template
    max_context: int
    versions: dict[str, str] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    preview: dict[str, Any] = field(default_factory=dict)  # acceptance preview per model
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION
    created: str = ""

    # -- queries ---------------------------------------------------------------------------
    def by_level(self) -> list[ModelEntry]:
        """Models ordered target first, then each draft level."""
        return sorted(self.models, key=lambda m: m.level)

    def model(self, name: str) -> ModelEntry:
        for m in self.models:
            if m.name == name:
                return m
        raise UserError(f"no model named {name!r} in this pipeline; it has: {', '.join(self.names())}")

    def names(self) -> list[str]:
        return [m.name for m in self.by_level()]

    @property
    def target(self) -> ModelEntry:
        return self.by_level()[0]

    # -- I/O -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # Stable, readable key order: format first.
        return {"format": d.pop("format"), "format_version": d.pop("format_version"), **d}

    def write(self, folder: Path) -> Path:
        path = Path(folder) / MANIFEST_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, folder: str | Path) -> Manifest:
        """Read and validate ``folder/ov_spec.json``; raise :class:`UserError` with the fix."""
        folder = Path(folder)
        if not folder.exists():
            raise UserError(
                f"pipeline folder {folder} does not exist; create it with `python -m ov_spec.export`"
            )
        if not folder.is_dir():
            raise UserError(
                f"{folder} is a file, not a pipeline folder; pass the folder `ov_spec.export` wrote"
            )
        path = folder / MANIFEST_NAME
        if not path.is_file():
            raise UserError(
                f"{folder} is not an ov_spec pipeline (no {MANIFEST_NAME}); "
                "create one with `python -m ov_spec.export --target ... --draft ... --output DIR`"
            )
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"cannot read {path}: {err}; re-run `python -m ov_spec.export`") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
            raise UserError(f"{path} is not an ov_spec manifest; re-run `python -m ov_spec.export`")
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise UserError(
                f"{path} has manifest format version {version}, this ov_spec reads version {FORMAT_VERSION}; "
                "re-export the pipeline with this ov_spec version (or install the ov_spec that wrote it)"
            )
        try:
            # Keys this version does not know are ignored: a newer ov_spec may add fields within
            # the same format version (a breaking change bumps FORMAT_VERSION instead).
            models = [ModelEntry(**_known(ModelEntry, m)) for m in raw.pop("models")]
            manifest = cls(models=models, **_known(cls, raw))
        except (TypeError, KeyError, AttributeError) as err:
            raise UserError(f"{path} is malformed ({err}); re-run `python -m ov_spec.export`") from None
        manifest._check(folder)
        return manifest

    def _check(self, folder: Path) -> None:
        levels = sorted(m.level for m in self.models)
        if not levels or levels != list(range(len(levels))):
            raise UserError(f"{folder / MANIFEST_NAME}: model levels must be 0..n-1, got {levels}; re-export")
        for m in self.models:
            if m.role not in ROLES:
                raise UserError(f"{folder / MANIFEST_NAME}: unknown role {m.role!r}; re-export")
            xml = folder / m.path / "openvino_model.xml"
            if not xml.is_file():
                raise UserError(f"{xml} is missing; the pipeline folder is incomplete, re-export it")
        tok = folder / self.tokenizer.get("path", "")
        for name in ("openvino_tokenizer.xml", "openvino_detokenizer.xml"):
            if not (tok / name).is_file():
                raise UserError(f"{tok / name} is missing; re-export the pipeline")


def _known(kind: type, raw: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``raw`` that are fields of the dataclass ``kind``."""
    names = {f.name for f in fields(kind)}
    return {key: value for key, value in raw.items() if key in names}
