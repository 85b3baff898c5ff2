"""Weight formats: one self-validating settings object per model, mapped onto NNCF.

Every model is converted once without compression (an fp32 or fp16 IR); the weight format is then
applied to that ``ov.Model`` with ``nncf.compress_weights``. That keeps one code path for all
formats, lets the self-draft reuse the target's conversion, and lets the preview compare each
compressed model with its uncompressed source.

NNCF is imported only inside the functions that need it, so ``--help`` and the recipe checks stay
fast and this module can be imported without NNCF installed.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ov_spec.errors import UserError

if TYPE_CHECKING:
    import openvino as ov


@dataclass(frozen=True)
class FormatInfo:
    """What a weight format is and which settings it accepts."""

    name: str
    summary: str  # one line for --help and the README
    bits: float  # bits per weight of the primary precision, scales included (display only)
    group: str = "none"  # "none": per-channel only; "free": --group-size applies; "fixed": set by the format
    default_group_size: int = -1  # -1 = per-channel
    data_aware: bool = False  # accepts AWQ / scale estimation / GPTQ (needs --calibration-text)
    element_types: tuple[str, ...] = ()  # IR constant types that prove the format was applied
    nncf: bool = True  # False: a plain float IR, no NNCF


# The formats ov_spec exposes. NNCF offers a few more (int3/int2, codebook with a user codebook); they
# need extra parameters or have no fast CPU kernels, so they are left out on purpose.
# fmt: off
FORMATS: dict[str, FormatInfo] = {f.name: f for f in (
    FormatInfo("fp32", "32-bit float weights, no compression (reference accuracy)", 32, nncf=False),
    FormatInfo("fp16", "16-bit float weights, no compression", 16, nncf=False),
    FormatInfo("int8_sym", "8-bit integer, per-channel scale", 8, element_types=("i8",)),
    FormatInfo("int8_asym", "8-bit integer, per-channel scale + zero point", 8, element_types=("u8",)),
    FormatInfo("int4_sym", "4-bit integer, group scale", 4, "free", 64, True, ("i4",)),
    FormatInfo("int4_asym", "4-bit integer, group scale + zero point", 4, "free", 64, True, ("u4",)),
    FormatInfo("nf4", "4-bit NormalFloat, group scale", 4, "free", 64, True, ("nf4",)),
    FormatInfo("cb4", "4-bit codebook of 16 fp8 (e4m3) values", 4, "free", -1, True, ("u4", "f8e4m3")),
    FormatInfo("mxfp4", "OCP MX fp4 (e2m1), e8m0 scale per 32 weights (ML-SpecQD self-draft)", 4.25, "fixed", 32,
               element_types=("f4e2m1", "f8e8m0")),
    FormatInfo("mxfp8_e4m3", "OCP MX fp8 (e4m3), e8m0 scale per 32 weights", 8.25, "fixed", 32,
               element_types=("f8e4m3", "f8e8m0")),
    FormatInfo("fp8_e4m3", "fp8 (e4m3) with fp16 group scale", 8, "free", 64, element_types=("f8e4m3",)),
    FormatInfo("fp4", "fp4 (e2m1) with fp16 group scale", 4, "free", 64, element_types=("f4e2m1",)),
    FormatInfo("nvfp4", "NVIDIA fp4 (e2m1), e4m3 scale per 16 weights", 4.5, "fixed", 16,
               element_types=("f4e2m1", "f8e4m3")),
)}
# fmt: on
INT8_FORMATS = ("int8_sym", "int8_asym")
BACKUP_MODES = ("none", "int8_sym", "int8_asym", "mxfp8_e4m3", "fp8_e4m3")
GROUP_FALLBACKS = ("error", "adjust", "ignore")


def format_info(name: str) -> FormatInfo:
    """The :class:`FormatInfo` for ``name``; a :class:`UserError` listing the choices otherwise."""
    info = FORMATS.get(str(name).lower())
    if info is None:
        raise UserError(f"unknown weight format {name!r}; choose one of: {', '.join(FORMATS)}")
    return info


@dataclass(frozen=True)
class CompressionConfig:
    """The weight format of one model and the NNCF settings that go with it.

    ``None`` means "the format's default"; :meth:`resolved` fills the defaults in so the manifest
    records what was really used. :meth:`validate` raises :class:`UserError` naming the fix.
    """

    format: str = "fp16"  # a key of FORMATS
    group_size: int | None = None  # weights sharing one scale; -1 = per-channel; None = format default
    ratio: float | None = None  # share of layers in the primary format, rest in backup_mode; 1.0 = all
    awq: bool = False  # activation-aware weight scaling (needs calibration text)
    scale_estimation: bool = False  # fit scales to minimise output error (needs calibration text)
    gptq: bool = False  # GPTQ weight update (needs calibration text; slow)
    all_layers: bool = False  # also put embeddings and lm_head in the primary format (else backup)
    backup_mode: str | None = None  # precision of layers left out of the primary format; None = NNCF default
    # A layer width the group size does not divide: "error", "adjust" (NNCF picks a smaller power-of-two
    # group, else the backup precision) or "ignore" (layer stays uncompressed). None = "adjust" when the
    # group size is the format's default, "error" when the user chose it (or the format fixes it).
    group_size_fallback: str | None = None

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "") -> CompressionConfig:
        """Build from a recipe table; unknown keys are an error (typos must not pass silently)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise UserError(
                f"{where}unknown compression setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
            )
        return cls(**data)

    def replace(self, **changes: Any) -> CompressionConfig:
        return dataclasses.replace(self, **changes)

    # -- properties ------------------------------------------------------------------------
    @property
    def info(self) -> FormatInfo:
        return format_info(self.format)

    @property
    def is_float(self) -> bool:
        return not self.info.nncf

    @property
    def needs_calibration(self) -> bool:
        return self.awq or self.scale_estimation or self.gptq

    def accepts(self, setting: str) -> bool:
        """Whether a global flag (``group_size``, ``ratio``, ``awq``, ...) applies to this format."""
        info = self.info
        if setting == "group_size":
            return info.group == "free"
        if setting in ("ratio", "all_layers", "backup_mode", "group_size_fallback"):
            return info.nncf and info.name not in INT8_FORMATS
        if setting in ("awq", "scale_estimation", "gptq"):
            return info.data_aware
        raise AssertionError(setting)

    # -- checks ----------------------------------------------------------------------------
    def validate(self, who: str = "model") -> CompressionConfig:
        """Check the settings against the format; return ``self`` so calls can be chained."""
        info = format_info(self.format)
        fmt = info.name
        if self.group_size is not None:
            if info.group == "none":
                raise UserError(
                    f"{who}: {fmt} is per-channel, a group size does not apply; remove --group-size"
                )
            if info.group == "fixed" and self.group_size != info.default_group_size:
                raise UserError(
                    f"{who}: {fmt} always uses groups of {info.default_group_size} weights; "
                    f"remove the group size (got {self.group_size})"
                )
            if self.group_size != -1 and self.group_size <= 0:
                raise UserError(
                    f"{who}: group size must be a positive number or -1 (per-channel), got {self.group_size}"
                )
        if self.ratio is not None:
            if not self.accepts("ratio") and self.ratio != 1.0:
                raise UserError(f"{who}: --ratio applies to 4-bit and fp8 formats, not {fmt}; remove it")
            if not 0.0 < self.ratio <= 1.0:
                raise UserError(f"{who}: ratio must be in (0, 1], got {self.ratio}")
        for flag in ("awq", "scale_estimation", "gptq"):
            if getattr(self, flag) and not info.data_aware:
                usable = ", ".join(n for n, f in FORMATS.items() if f.data_aware)
                raise UserError(
                    f"{who}: --{flag.replace('_', '-')} works with {usable}, not {fmt}; remove it"
                )
        if self.all_layers and not self.accepts("all_layers"):
            raise UserError(f"{who}: --all-layers applies to 4-bit and fp8 formats, not {fmt}; remove it")
        if self.backup_mode is not None:
            if not self.accepts("backup_mode"):
                raise UserError(
                    f"{who}: --backup-mode applies to 4-bit and fp8 formats, not {fmt}; remove it"
                )
            if self.backup_mode not in BACKUP_MODES:
                raise UserError(
                    f"{who}: unknown backup mode {self.backup_mode!r}; choose one of {', '.join(BACKUP_MODES)}"
                )
        if self.group_size_fallback is not None and self.group_size_fallback not in GROUP_FALLBACKS:
            raise UserError(
                f"{who}: unknown group-size fallback {self.group_size_fallback!r}; choose one of {', '.join(GROUP_FALLBACKS)}"
            )
        if info.group == "fixed" and self.group_size_fallback == "adjust":
            # NNCF refuses this: MX/NV formats define their block size.
            raise UserError(f"{who}: {fmt} has a fixed group size; use --group-size-fallback error or ignore")
        return self

    def check_widths(self, widths: dict[str, int], who: str) -> None:
        """Fail early (before conversion) if the group size does not divide a layer's input width.

        ``widths`` maps a config field (``hidden_size``, ``intermediate_size``, ...) to its value.
        NNCF would fail after the conversion; this says the same thing minutes earlier.
        """
        group = self.resolved().group_size
        if not self.info.nncf or group in (None, -1) or self.resolved().group_size_fallback != "error":
            return
        bad = {k: v for k, v in widths.items() if v % group}
        if not bad:
            return
        what = ", ".join(f"{k}={v}" for k, v in bad.items())
        if self.info.group == "fixed":
            raise UserError(
                f"{who}: {self.format} needs layer widths divisible by {group}, but {what}; pick another format "
                "or pass --group-size-fallback ignore (leaves those layers uncompressed)"
            )
        fits = [g for g in (128, 64, 32, 16, 8) if all(v % g == 0 for v in widths.values())]
        hint = f"--group-size {fits[0]}, " if fits else ""
        raise UserError(
            f"{who}: group size {group} of {self.format} does not divide {what}; "
            f"use {hint}--group-size -1 (per-channel) or --group-size-fallback adjust"
        )

    # -- mapping ---------------------------------------------------------------------------
    def resolved(self) -> CompressionConfig:
        """Fill in format defaults so the record says exactly what NNCF was asked to do."""
        info = self.info
        if not info.nncf:
            return CompressionConfig(format=info.name)
        if info.name in INT8_FORMATS:
            # NNCF's int8 modes are per-channel over all layers and take no other settings.
            return CompressionConfig(format=info.name)
        group = info.default_group_size if self.group_size is None else self.group_size
        fallback = self.group_size_fallback
        if fallback is None:
            fallback = "adjust" if self.group_size is None and info.group == "free" else "error"
        return self.replace(
            format=info.name,
            group_size=group,
            ratio=1.0 if self.ratio is None else self.ratio,
            group_size_fallback=fallback,
        )

    def to_dict(self) -> dict[str, Any]:
        """The settings for the manifest and recipes (resolved, without fields that do not apply)."""
        r = self.resolved()
        out: dict[str, Any] = {"format": r.format}
        if not r.info.nncf or r.format in INT8_FORMATS:
            return out
        out.update(group_size=r.group_size, ratio=r.ratio)
        for flag in ("awq", "scale_estimation", "gptq", "all_layers"):
            if getattr(r, flag):
                out[flag] = True
        if r.backup_mode is not None:
            out["backup_mode"] = r.backup_mode
        if r.group_size_fallback != "error":
            out["group_size_fallback"] = r.group_size_fallback
        return out

    def nncf_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``nncf.compress_weights`` (without model and dataset)."""
        import nncf
        from nncf.quantization.advanced_parameters import AdvancedCompressionParameters, GroupSizeFallbackMode

        r = self.validate().resolved()
        kwargs: dict[str, Any] = {"mode": nncf.CompressWeightsMode(r.format)}
        if r.format in INT8_FORMATS:
            return kwargs  # NNCF rejects every other setting for int8
        kwargs.update(group_size=r.group_size, ratio=r.ratio)
        # NNCF distinguishes "not set" (None) from False for these; pass only what the user asked for.
        for flag in ("awq", "scale_estimation", "gptq", "all_layers"):
            if getattr(r, flag):
                kwargs[flag] = True
        if r.backup_mode is not None:
            kwargs["backup_mode"] = nncf.BackupMode(r.backup_mode)
        if r.group_size_fallback != "error":
            kwargs["advanced_parameters"] = AdvancedCompressionParameters(
                group_size_fallback_mode=GroupSizeFallbackMode(r.group_size_fallback)
            )
        return kwargs


# --- applying a format to an ov.Model ---------------------------------------------------------
def compress_model(
    model: ov.Model, config: CompressionConfig, dataset: Any = None, who: str = "model"
) -> ov.Model:
    """Apply ``config`` to an uncompressed stateful ``ov.Model`` and return the compressed model.

    ``dataset`` is an ``nncf.Dataset`` of model inputs; it is used only for data-aware settings.
    """
    import nncf

    kwargs = config.nncf_kwargs()
    if config.needs_calibration:
        assert dataset is not None, "data-aware compression needs a calibration dataset"
        kwargs["dataset"] = dataset
    try:
        compressed = nncf.compress_weights(model, **kwargs)
    except nncf.InvalidGroupSizeError as err:
        # NNCF lists every failing node; keep the distinct widths for a one-line message.
        widths = sorted({int(w) for w in _channel_sizes(str(err))})
        raise UserError(
            f"{who}: group size {config.resolved().group_size} of {config.format} does not divide layer width(s) "
            f"{', '.join(map(str, widths)) or '?'}; use --group-size -1, a divisor of them, or --group-size-fallback adjust"
        ) from None
    # Mirror optimum-intel: its fp16 KV-cache hint is meant for uncompressed models only, and it records
    # the NNCF version in rt_info.
    if compressed.has_rt_info(["runtime_options", "KV_CACHE_PRECISION"]):
        options = compressed.get_rt_info("runtime_options").value
        if str(options.get("KV_CACHE_PRECISION")) == "f16":
            options.pop("KV_CACHE_PRECISION")
            compressed.set_rt_info(options, "runtime_options")
    compressed.set_rt_info(nncf.__version__, ["optimum", "nncf_version"])
    return compressed


def _channel_sizes(message: str) -> list[str]:
    import re

    return re.findall(r"channel size: (\d+)", message)


def calibration_dataset(text_file: Path, tokenizer: Any, samples: int = 32, tokens: int = 256) -> Any:
    """An ``nncf.Dataset`` of stateful-model inputs cut from a local text file.

    Each item is one prefill of ``tokens`` tokens; NNCF resets the model state between items.
    """
    import nncf
    import numpy as np

    ids = tokenizer(Path(text_file).read_text(errors="replace"), add_special_tokens=False, verbose=False)[
        "input_ids"
    ]
    if len(ids) < 16:
        raise UserError(f"calibration text {text_file} has only {len(ids)} tokens; pass a longer text file")
    n = max(1, min(samples, len(ids) // tokens))
    chunks = [ids[i * tokens : (i + 1) * tokens] for i in range(n)]
    items = [
        {
            "input_ids": np.array([c], dtype=np.int64),
            "attention_mask": np.ones((1, len(c)), dtype=np.int64),
            "position_ids": np.arange(len(c), dtype=np.int64)[None],
            "beam_idx": np.zeros(1, dtype=np.int32),
        }
        for c in chunks
    ]
    return nncf.Dataset(items)


# --- inspecting an IR -------------------------------------------------------------------------
def weight_types(model: ov.Model) -> Counter[str]:
    """Count the model's Constant nodes per element type (``u8``, ``i4``, ``f4e2m1``, ...).

    This is how tests (and the curious) check that a format really landed in the IR.
    """
    counts: Counter[str] = Counter()
    for op in model.get_ops():
        if op.get_type_name() == "Constant":
            name = op.get_element_type().get_type_name()
            counts[name] += 1
    return counts


def count_parameters(model: ov.Model) -> int:
    """Number of weights in an uncompressed IR: elements of float constants with more than one value.

    Scalars and shape constants are not parameters; tied embeddings are one shared constant.
    """
    import openvino as ov

    float_types = {ov.Type.f32, ov.Type.f16, ov.Type.bf16}
    total = 0
    for op in model.get_ops():
        if op.get_type_name() == "Constant" and op.get_element_type() in float_types:
            n = 1
            for d in op.get_output_shape(0):
                n *= int(d)
            if n > 1:
                total += n
    return total
