"""Recipes: every export choice in one TOML file, so a pipeline is re-made with one command.

A recipe holds the same choices as the command-line flags; flags given next to ``--recipe``
override its values. The exporter writes the resolved recipe into the pipeline folder
(``recipe.toml``) and into the manifest. Layout::

    convert_dtype = "auto"              # fp32 | fp16 | auto (fp32 if the checkpoint is fp32 or fp32 is asked for)
    calibration_text = "calib.txt"      # local text for AWQ / scale estimation / GPTQ (optional)

    [target]
    source = "Qwen/Qwen2.5-1.5B-Instruct"
    format = "int8_asym"

    [self_draft]                        # optional: the target's own weights, compressed (ML-SpecQD)
    format = "mxfp4"

    [[draft]]                           # one table per draft, largest first
    source = "Qwen/Qwen2.5-0.5B-Instruct"
    format = "int4_sym"
    group_size = 64
    draft_vocab = 8192                  # optional: FR-Spec pruned LM head of the 8192 most frequent tokens

    [preview]
    text = "sample.txt"                 # default: the tiny pair's held-out text, else a shipped sample
    chunks = 8
    tokens = 128

Relative paths (sources, text files) are taken relative to the recipe's folder when they exist
there, else relative to the current folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ov_spec import toml_io
from ov_spec.errors import UserError
from ov_spec.export.compress import CompressionConfig

# Per-role defaults (shown in --help). The target keeps 8-bit weights: lossless output is
# defined by the target, and int8 halves its memory traffic for little accuracy cost. Drafts
# only need to guess well and be cheap: 4-bit. The self-draft follows ML-SpecQD: MXFP4, no calibration.
DEFAULT_FORMATS = {"target": "int8_asym", "draft": "int4_sym", "self_draft": "mxfp4"}
CONVERT_DTYPES = ("auto", "fp32", "fp16")
_MODEL_KEYS = {"source"} | {f.name for f in dataclasses.fields(CompressionConfig)}
_DRAFT_KEYS = _MODEL_KEYS | {"draft_vocab"}  # draft_vocab: ov_spec.export.prune
AUTO_FORMAT = "auto"  # a draft format chosen at export by measured speed (ov_spec.export.choose)
_TOP_KEYS = {"convert_dtype", "calibration_text", "target", "self_draft", "draft", "preview"}
_PREVIEW_KEYS = {"enabled", "text", "chunks", "tokens"}


@dataclass(frozen=True)
class ModelSpec:
    """One model of the pipeline as it will be exported."""

    name: str  # sub-folder and manifest name: target, self_draft, draft1, draft2, ...
    role: str  # target | self_draft | draft
    level: int  # 0 = target; level i+1 drafts for level i
    source: str  # as the user wrote it
    compression: CompressionConfig
    draft_vocab: int | None = None  # keep the LM-head rows of this many frequent tokens (FR-Spec); None = all
    auto_format: bool = False  # --draft-format auto: compression is a placeholder until export measures


@dataclass
class PreviewSpec:
    """The acceptance preview run after export (teacher-forced greedy agreement)."""

    enabled: bool = True
    text: str | None = None  # local text file; None = tiny held-out text or the shipped sample
    chunks: int = 8  # number of token chunks
    tokens: int = 128  # tokens per chunk

    def validate(self) -> None:
        if self.chunks < 1 or self.tokens < 2:
            raise UserError(f"preview needs at least 1 chunk of 2 tokens, got {self.chunks} x {self.tokens}")


@dataclass
class Recipe:
    """The resolved export plan."""

    target: str | None = None
    target_compression: CompressionConfig = field(
        default_factory=lambda: CompressionConfig(DEFAULT_FORMATS["target"])
    )
    drafts: list[str] = field(default_factory=list)
    draft_compression: list[CompressionConfig] = field(default_factory=list)  # one per draft
    draft_vocab: list[int | None] = field(default_factory=list)  # one per draft; None = full LM head
    draft_auto: list[bool] = field(default_factory=list)  # one per draft: format chosen by measurement
    self_draft: CompressionConfig | None = None  # None = no self-draft
    calibration_text: str | None = None
    convert_dtype: str = "auto"
    preview: PreviewSpec = field(default_factory=PreviewSpec)

    # -- the models ------------------------------------------------------------------------
    def models(self) -> list[ModelSpec]:
        """Target, optional self-draft, then drafts, with names and levels.

        A target alone is a valid pipeline: target-only decoding, prompt lookup (``ngram=True``)
        and serving need no draft model.
        """
        if not self.target:
            raise UserError("no target model; pass --target SRC (or a --recipe with a [target] source)")
        assert len(self.draft_compression) == len(self.drafts)
        specs = [ModelSpec("target", "target", 0, self.target, self.target_compression)]
        if self.self_draft is not None:
            specs.append(ModelSpec("self_draft", "self_draft", 1, self.target, self.self_draft))
        first = len(specs)
        vocab = self.draft_vocab + [None] * (len(self.drafts) - len(self.draft_vocab))
        auto = self.draft_auto + [False] * (len(self.drafts) - len(self.draft_auto))
        for i, (src, comp) in enumerate(zip(self.drafts, self.draft_compression, strict=True)):
            specs.append(ModelSpec(f"draft{i + 1}", "draft", first + i, src, comp, vocab[i], auto[i]))
        return specs

    def validate(self) -> list[ModelSpec]:
        """Check every setting; return the model specs."""
        if self.convert_dtype not in CONVERT_DTYPES:
            raise UserError(
                f"unknown convert dtype {self.convert_dtype!r}; choose one of {', '.join(CONVERT_DTYPES)}"
            )
        specs = self.models()
        for spec in specs:
            spec.compression.validate(spec.name)
            if spec.compression.format == "fp32" and self.convert_dtype == "fp16":
                raise UserError(f"{spec.name}: fp32 weights need --convert-dtype fp32 or auto, not fp16")
            if spec.draft_vocab is not None and (
                int(spec.draft_vocab) != spec.draft_vocab or spec.draft_vocab < 1
            ):
                raise UserError(
                    f"{spec.name}: draft vocabulary must be a whole number >= 1, got {spec.draft_vocab}"
                )
            if spec.auto_format and spec.draft_vocab:
                raise UserError(
                    f"{spec.name}: --draft-format auto also chooses the LM head; remove --draft-vocab"
                )
            if spec.compression.needs_calibration and not self.calibration_text:
                raise UserError(
                    f"{spec.name}: AWQ / scale estimation / GPTQ need calibration text; "
                    "pass --calibration-text FILE (a local text file; no hub datasets)"
                )
        self.preview.validate()
        return specs

    # -- overrides (flags win over the recipe) ---------------------------------------------
    def override(
        self,
        *,
        target: str | None = None,
        drafts: list[str] | None = None,
        self_draft: str | CompressionConfig | bool | None = None,
        formats: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        calibration_text: str | None = None,
        convert_dtype: str | None = None,
        preview: dict[str, Any] | None = None,
        draft_vocab: int | list[int | None] | None = None,
    ) -> Recipe:
        """Apply command-line / API choices on top of this recipe (in place; returns self).

        ``self_draft``: None = keep the recipe's, False or "none" = no self-draft, True = the default
        format (mxfp4), else a format name or :class:`CompressionConfig`.
        ``formats``: {"target": F, "draft": F or [F, ...], "draft2": F, "self_draft": F}.
        ``settings``: global NNCF settings (group_size, ratio, awq, ...) applied to every model
        whose format accepts them; a setting no model accepts is an error.
        ``draft_vocab``: pruned LM-head size, one for all drafts or one per draft (0 = full head).
        """
        if target is not None:
            self.target = target
        if drafts is not None:
            old = self.draft_compression
            self.drafts = list(drafts)
            # Keep the recipe's per-draft settings by position when the sources are replaced.
            self.draft_compression = [
                old[i] if i < len(old) else CompressionConfig(DEFAULT_FORMATS["draft"])
                for i in range(len(self.drafts))
            ]
            self.draft_vocab = self.draft_vocab[: len(self.drafts)]
            self.draft_auto = self.draft_auto[: len(self.drafts)]
        if self_draft is None:
            pass  # keep the recipe's choice
        elif self_draft is True:
            self.self_draft = CompressionConfig(DEFAULT_FORMATS["self_draft"])
        elif self_draft is False or str(self_draft).lower() == "none":
            self.self_draft = None
        else:
            self.self_draft = _as_config(self_draft)
        for key, value in (formats or {}).items():
            self._set_format(key, value)
        if calibration_text is not None:
            self.calibration_text = calibration_text
        if convert_dtype is not None:
            self.convert_dtype = convert_dtype
        for key, value in (preview or {}).items():
            if value is not None:
                setattr(self.preview, key, value)
        if settings:
            self._apply_settings({k: v for k, v in settings.items() if v is not None})
        if draft_vocab is not None:
            values = draft_vocab if isinstance(draft_vocab, list | tuple) else [draft_vocab]
            if len(values) not in (1, len(self.drafts)):
                raise UserError(
                    f"got {len(values)} draft vocabularies for {len(self.drafts)} drafts; "
                    "give --draft-vocab once (all drafts) or once per --draft"
                )
            self.draft_vocab = [values[min(i, len(values) - 1)] or None for i in range(len(self.drafts))]
        return self

    def _set_format(self, key: str, value: Any) -> None:
        if value is None:
            return
        if key == "target":
            self.target_compression = _with_format(self.target_compression, value)
        elif key == "self_draft":
            self.self_draft = _with_format(self.self_draft or CompressionConfig(), value)
        elif key == "draft":
            values = value if isinstance(value, list | tuple) else [value]
            if len(values) not in (1, len(self.drafts)):
                raise UserError(
                    f"got {len(values)} draft formats for {len(self.drafts)} drafts; "
                    "give --draft-format once (all drafts) or once per --draft"
                )
            for i in range(len(self.drafts)):
                self._set_draft_format(i, values[min(i, len(values) - 1)])
        elif key.startswith("draft") and key[5:].isdigit() and 1 <= int(key[5:]) <= len(self.drafts):
            self._set_draft_format(int(key[5:]) - 1, value)
        else:
            raise UserError(
                f"unknown model {key!r} in formats; use target, self_draft, draft or draft1..draft{len(self.drafts)}"
            )

    def _set_draft_format(self, i: int, value: Any) -> None:
        """``auto`` (ov_spec.export.choose) measures candidates at export; anything else is a format."""
        self.draft_auto += [False] * (len(self.drafts) - len(self.draft_auto))
        self.draft_auto[i] = isinstance(value, str) and value.lower() == AUTO_FORMAT
        if not self.draft_auto[i]:
            self.draft_compression[i] = _with_format(self.draft_compression[i], value)

    def _apply_settings(self, settings: dict[str, Any]) -> None:
        slots = self._compression_slots()
        for key, value in settings.items():
            if key not in _MODEL_KEYS - {"source", "format"}:
                raise UserError(f"unknown compression setting {key!r}")
            hits = [name for name, comp in slots if comp.accepts(key)]
            if not hits:
                formats = ", ".join(sorted({comp.format for _, comp in slots}))
                flag = "--" + key.replace("_", "-")
                raise UserError(
                    f"{flag} does not apply to any model here (formats: {formats}); remove it or pick a format it applies to"
                )
            for name, comp in slots:
                if name in hits:
                    self._store(name, comp.replace(**{key: value}))
            slots = self._compression_slots()

    def _compression_slots(self) -> list[tuple[str, CompressionConfig]]:
        slots = [("target", self.target_compression)]
        if self.self_draft is not None:
            slots.append(("self_draft", self.self_draft))
        slots += [(f"draft{i + 1}", c) for i, c in enumerate(self.draft_compression)]
        return slots

    def _store(self, name: str, comp: CompressionConfig) -> None:
        if name == "target":
            self.target_compression = comp
        elif name == "self_draft":
            self.self_draft = comp
        else:
            self.draft_compression[int(name[5:]) - 1] = comp

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe (as stored in the manifest and written as recipe.toml)."""
        out: dict[str, Any] = {"convert_dtype": self.convert_dtype}
        if self.calibration_text:
            out["calibration_text"] = str(self.calibration_text)
        out["target"] = {"source": self.target, **self.target_compression.to_dict()}
        if self.self_draft is not None:
            out["self_draft"] = self.self_draft.to_dict()
        vocab = self.draft_vocab + [None] * (len(self.drafts) - len(self.draft_vocab))
        auto = self.draft_auto + [False] * (len(self.drafts) - len(self.draft_auto))
        out["draft"] = [
            {
                "source": s,
                **({"format": AUTO_FORMAT} if a else c.to_dict()),
                **({"draft_vocab": v} if v else {}),
            }
            for s, c, v, a in zip(self.drafts, self.draft_compression, vocab, auto, strict=True)
        ]
        out["preview"] = {k: v for k, v in dataclasses.asdict(self.preview).items() if v is not None}
        return out

    def to_toml(self) -> str:
        return dump_toml(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Path | None = None, where: str = "recipe") -> Recipe:
        """Build from a parsed recipe; ``base`` is the recipe's folder (for relative paths)."""
        _check_keys(data, _TOP_KEYS, where)
        recipe = cls()
        recipe.convert_dtype = str(data.get("convert_dtype", "auto"))
        if data.get("calibration_text"):
            recipe.calibration_text = _local_path(str(data["calibration_text"]), base)
        if "target" in data:
            table = _table(data["target"], f"{where} [target]")
            recipe.target = _source(table, base, f"{where} [target]")
            recipe.target_compression = _model_config(table, DEFAULT_FORMATS["target"], f"{where} [target]: ")
        if "self_draft" in data:
            table = _table(data["self_draft"], f"{where} [self_draft]")
            if "source" in table:
                raise UserError(
                    f"{where} [self_draft]: a self-draft is the target's own weights; remove its source"
                )
            recipe.self_draft = _model_config(table, DEFAULT_FORMATS["self_draft"], f"{where} [self_draft]: ")
        drafts = data.get("draft", [])
        if isinstance(drafts, dict):
            drafts = [drafts]
        for i, raw in enumerate(drafts):
            table = dict(_table(raw, f"{where} [[draft]] #{i + 1}"))
            _check_keys(table, _DRAFT_KEYS, f"{where} [[draft]] #{i + 1}")
            vocab = table.pop("draft_vocab", None)
            auto = str(table.get("format", "")).lower() == AUTO_FORMAT
            if auto:
                del table["format"]  # int4_sym stands in until export measures the candidates
            if vocab is not None and (isinstance(vocab, bool) or not isinstance(vocab, int)):
                raise UserError(
                    f"{where} [[draft]] #{i + 1}: draft_vocab must be a whole number, got {vocab!r}"
                )
            recipe.drafts.append(_source(table, base, f"{where} [[draft]] #{i + 1}"))
            recipe.draft_compression.append(
                _model_config(table, DEFAULT_FORMATS["draft"], f"{where} [[draft]] #{i + 1}: ")
            )
            recipe.draft_vocab.append(vocab or None)
            recipe.draft_auto.append(auto)
        if "preview" in data:
            table = _table(data["preview"], f"{where} [preview]")
            _check_keys(table, _PREVIEW_KEYS, f"{where} [preview]")
            text = table.get("text")
            recipe.preview = PreviewSpec(
                enabled=bool(table.get("enabled", True)),
                text=_local_path(str(text), base) if text else None,
                chunks=int(table.get("chunks", 8)),
                tokens=int(table.get("tokens", 128)),
            )
        return recipe

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        """Read a TOML recipe file."""
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise UserError(
                f"recipe {path} does not exist; pass a .toml file (see export/recipes/)"
            ) from None
        except OSError as err:
            raise UserError(f"cannot read recipe {path} ({err.strerror or err})") from None
        try:
            data = toml_io.loads(text)
        except toml_io.TOMLDecodeError as err:
            raise UserError(f"recipe {path} is not valid TOML ({err}); fix the file") from None
        return cls.from_dict(data, base=path.resolve().parent, where=str(path))


# --- helpers ------------------------------------------------------------------------------------
def _as_config(value: Any) -> CompressionConfig:
    if isinstance(value, CompressionConfig):
        return value
    if isinstance(value, dict):
        return CompressionConfig.from_dict(value)
    return CompressionConfig(format=str(value).lower())


def _with_format(current: CompressionConfig, value: Any) -> CompressionConfig:
    """A new format keeps the model's other settings only where they still apply."""
    new = _as_config(value)
    if isinstance(value, CompressionConfig | dict):
        return new
    kept = {
        k: getattr(current, k)
        for k in ("group_size", "ratio", "awq", "scale_estimation", "gptq", "all_layers", "backup_mode")
        if getattr(current, k) not in (None, False) and new.accepts(k) and current.accepts(k)
    }
    return new.replace(**kept)


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UserError(f"{where} must be a table")
    return value


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}")


def _model_config(table: dict[str, Any], default_format: str, where: str) -> CompressionConfig:
    _check_keys(table, _MODEL_KEYS, where.rstrip(": "))
    settings = {k: v for k, v in table.items() if k != "source"}
    settings.setdefault("format", default_format)
    return CompressionConfig.from_dict(settings, where=where)


def _source(table: dict[str, Any], base: Path | None, where: str) -> str:
    if not table.get("source"):
        raise UserError(f"{where}: missing source (a checkpoint folder, hub id or tiny:PRESET/ROLE)")
    return _local_path(str(table["source"]), base)


def _local_path(value: str, base: Path | None) -> str:
    """Relative paths are relative to the recipe's folder if they exist there (hub ids never do)."""
    if base is None or value.startswith("tiny:") or Path(value).expanduser().is_absolute():
        return value
    candidate = base / value
    return str(candidate) if candidate.exists() else value


def dump_toml(data: dict[str, Any]) -> str:
    """Write the recipe structure as TOML (with tomli-w; None values are left out)."""
    return toml_io.dumps(data)
