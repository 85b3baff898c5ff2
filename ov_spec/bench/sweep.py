"""The sweep: which configurations a benchmark run measures (pure logic, no inference).

A :class:`Case` is one configuration: an engine (``ov_spec`` or ``genai``), a chain of models
(target first), a device per model, a draft length and a decoding mode. :func:`expand` derives the
cases from the pipeline folders' manifests and the settings:

* chains: target-only, each two-level ``[target, X]``, and the full cascade when a folder has 3+
  levels (or explicit chains);
* placements: every combination of the requested devices over the chain's models (or explicit
  placements);
* fixed draft lengths, one adaptive run, confidence-stop runs, prompt lookup, MTAD (opt-in);
* openvino.genai baselines on the same files: target-only (per attention backend), draft model at
  each k, confidence-threshold mode, prompt lookup.

Several folders are *variants* (e.g. weight formats). A case whose models are the very same files
as an earlier variant's (same source, format and compression) is measured once.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ov_spec.bench.config import CHAIN_KINDS, BenchConfig
from ov_spec.errors import UserError
from ov_spec.manifest import Manifest, ModelEntry
from ov_spec.runtime.devices import is_present
from ov_spec.runtime.limits import ROLLBACK_MODES


def rollback_suffix(rollback: str) -> str:
    """`` trim``/`` mask`` for a rollback asked for by name; nothing for "auto" (the runtime's default)."""
    return f" {rollback}" if rollback in ROLLBACK_MODES else ""


@dataclass(frozen=True)
class Variant:
    """One pipeline folder under a short label."""

    label: str
    folder: Path
    manifest: Manifest

    def identity(self, name: str) -> str:
        """What makes a model's files what they are (two variants may share a model)."""
        return model_identity(self.manifest.model(name))


@dataclass(frozen=True)
class Case:
    """One measured configuration."""

    variant: str  # label of the pipeline folder
    engine: str  # "ov_spec" | "genai"
    chain: tuple[str, ...]  # models, target first; ("target",) alone = no draft model
    devices: tuple[str, ...]  # one device per model in chain
    k: int = 0  # draft tokens per pass (every verifying level); 0 = target-only
    auto: bool = False  # ov_spec draft_tokens="auto" (the default): the cost model picks k, 0 included
    adaptive: bool = False  # +2/-1 draft length, starting at k
    ngram: bool = False  # prompt lookup drafts (for the last model of the chain)
    mtad: bool = False  # MTAD beam drafting + joint-likelihood acceptance (lossy)
    confidence: float = 0.0  # ov_spec min_confidence / genai assistant_confidence_threshold
    sampling: str = "greedy"  # "greedy" | "sample"
    backend: str = ""  # genai attention backend for target-only ("PA" | "SDPA")
    rollback: str = ""  # ov_spec KV-cache rollback of speculative runs ("auto" | "trim" | "mask")
    target_key: str = ""  # identity of the target's files: cases with equal keys share a baseline

    @property
    def speculative(self) -> bool:
        return self.k > 0 or self.confidence > 0 or self.auto

    @property
    def lossless(self) -> bool:
        return not self.mtad

    @property
    def method(self) -> str:
        """Short family name: target-only, prompt lookup, MTAD, speculative, cascade."""
        if not self.speculative:
            return "target-only"
        if self.ngram and len(self.chain) == 1:
            return "prompt lookup"
        if self.mtad:
            return "MTAD"
        return "cascade" if len(self.chain) > 2 else "speculative"

    @property
    def mode(self) -> str:
        """How the draft length is chosen: 'k=4', 'adaptive k0=4', 'conf=0.4', '' (target-only)."""
        if self.confidence and self.engine == "genai":
            return f"conf={self.confidence:g}"
        if self.confidence:
            return f"k<={self.k} conf={self.confidence:g}"
        if self.adaptive:
            return f"adaptive k0={self.k}"
        if self.auto:
            return "auto"
        return f"k={self.k}" if self.k else ""

    @property
    def label(self) -> str:
        """Human-readable name (unique within a run together with the variant)."""
        parts = [self.engine, "+".join(self.chain)]
        if self.ngram:
            parts.append("ngram")
        if self.mtad:
            parts.append("MTAD")
        if self.backend:
            parts.append(self.backend)
        if self.rollback in ROLLBACK_MODES:
            parts.append(self.rollback)
        if self.mode:
            parts.append(self.mode)
        if self.sampling != "greedy":
            parts.append(self.sampling)
        if any(d != "CPU" for d in self.devices):
            parts.append("@" + ",".join(self.devices))
        return " ".join(parts)

    @property
    def id(self) -> str:
        return f"{self.variant}: {self.label}"

    def to_dict(self) -> dict:
        return {**asdict(self), "id": self.id, "label": self.label, "method": self.method}


def model_identity(entry: ModelEntry) -> str:
    """Source, format and compression settings: equal strings mean the same exported weights."""
    return json.dumps(
        [entry.source, entry.weight_format, entry.compression, entry.size_bytes], sort_keys=True, default=str
    )


def parse_variants(pipelines: Sequence[str]) -> list[Variant]:
    """``["out/a", "int4=out/b"]`` -> variants labelled by folder name or the given label."""
    variants: list[Variant] = []
    for item in pipelines:
        label, sep, path = str(item).partition("=")
        if not sep or "/" in label:
            label, path = "", str(item)
        folder = Path(path).expanduser()
        manifest = Manifest.read(folder)  # UserError if it is not a pipeline folder
        label = label or folder.resolve().name
        base, n = label, 2
        while any(v.label == label for v in variants):
            label, n = f"{base}#{n}", n + 1
        variants.append(Variant(label, folder, manifest))
    return variants


def resolve_devices(requested: Sequence[str], available: Sequence[str]) -> list[str]:
    """The devices to sweep: the requested ones (checked) or every device OpenVINO reports."""
    if not requested:
        return [d for d in available if d.split(".")[0] in ("CPU", "GPU", "NPU")] or list(available)
    for device in requested:
        if not is_present(device, available):
            raise UserError(
                f"device {device!r} is not available here; present: {', '.join(available)} (fix --devices)"
            )
    return list(dict.fromkeys(requested))


def model_chains(manifest: Manifest, wanted: Iterable[str]) -> list[tuple[str, ...]]:
    """Chains from the manifest: kinds ('target', 'pairs', 'cascade', 'all') or explicit 'a,b,c'."""
    names = manifest.names()
    chains: list[tuple[str, ...]] = []
    for item in wanted:
        if item == "all":
            kinds: Iterable[str] = CHAIN_KINDS
        elif item in CHAIN_KINDS:
            kinds = [item]
        else:
            chain = tuple(part.strip() for part in item.split(",") if part.strip())
            for name in chain:
                manifest.model(name)  # UserError listing the names
            if chain[0] != names[0]:
                raise UserError(f"chain {item!r} must start with the target {names[0]!r}")
            chains.append(chain)
            continue
        for kind in kinds:
            if kind == "target":
                chains.append((names[0],))
            elif kind == "pairs":
                chains.extend((names[0], other) for other in names[1:])
            elif len(names) > 2:  # cascade
                chains.append(tuple(names))
    return list(dict.fromkeys(chains))


def placements_for(chain: Sequence[str], devices: Sequence[str], explicit: Sequence[str]) -> list[tuple]:
    """Device tuples for a chain: the product of ``devices``, or the explicit placements."""
    if not explicit:
        return list(itertools.product(devices, repeat=len(chain)))
    out = []
    for spec in explicit:
        mapping = {}
        for part in spec.split(","):
            name, sep, device = part.partition("=")
            if not sep or not name.strip() or not device.strip():
                raise UserError(f"cannot read placement {spec!r}; expected NAME=DEVICE,NAME=DEVICE")
            mapping[name.strip()] = device.strip()
        default = mapping.get("*", devices[0] if devices else "CPU")
        out.append(tuple(mapping.get(name, default) for name in chain))
    return list(dict.fromkeys(out))


def expand(config: BenchConfig, variants: Sequence[Variant], devices: Sequence[str]) -> list[Case]:
    """Every case the settings ask for, deduplicated across variants that share model files."""
    cases: list[Case] = []
    seen: set[tuple] = set()
    for variant in variants:
        for case in _variant_cases(config, variant, devices):
            key = (
                case.engine,
                tuple(variant.identity(m) for m in case.chain),
                *(getattr(case, f) for f in _CASE_SETTINGS),
            )
            if key not in seen:
                seen.add(key)
                cases.append(case)
    if not cases:
        raise UserError(
            "the sweep is empty: no configuration matches --chains/--k/--devices for these pipelines "
            f"(chains {config.chains}, k {config.draft_tokens}); widen the settings"
        )
    return cases


_CASE_SETTINGS = (
    "devices",
    "k",
    "adaptive",
    "ngram",
    "mtad",
    "confidence",
    "sampling",
    "backend",
    "rollback",
)


def _variant_cases(config: BenchConfig, variant: Variant, devices: Sequence[str]) -> Iterable[Case]:
    """The variant's cases; ov_spec speculative ones once per rollback listed (in its order)."""
    for case in _base_cases(config, variant, devices):
        if case.engine == "ov_spec" and case.speculative:
            for mode in config.rollback:
                yield replace(case, rollback=mode)
        else:
            yield case


def _base_cases(config: BenchConfig, variant: Variant, devices: Sequence[str]) -> Iterable[Case]:
    manifest = variant.manifest
    target = manifest.names()[0]
    ks = sorted(set(config.draft_tokens))
    k_max = max(ks) if ks else 4
    chains = model_chains(manifest, config.chains)
    for sampling in config.sampling:
        base = {"variant": variant.label, "sampling": sampling, "target_key": variant.identity(target)}
        for chain in chains:
            for where in placements_for(chain, devices, config.placements):
                common = {**base, "chain": chain, "devices": where}
                if len(chain) == 1:
                    yield Case(engine="ov_spec", **common)
                    if config.genai:
                        for backend in config.genai_backends:
                            yield Case(engine="genai", backend=backend, **common)
                    if config.ngram:
                        yield Case(engine="ov_spec", auto=True, ngram=True, **common)
                        for k in ks:
                            yield Case(engine="ov_spec", k=k, ngram=True, **common)
                            if config.genai:
                                yield Case(engine="genai", k=k, ngram=True, **common)
                    continue
                yield Case(engine="ov_spec", auto=True, **common)  # what a user gets with no options
                for k in ks:
                    yield Case(engine="ov_spec", k=k, **common)
                if config.adaptive:
                    yield Case(engine="ov_spec", k=config.adaptive_start, adaptive=True, **common)
                for conf in config.min_confidence:
                    yield Case(engine="ov_spec", k=k_max, confidence=conf, **common)
                if len(chain) == 2 and config.mtad:
                    for k in ks:
                        yield Case(engine="ov_spec", k=k, mtad=True, **common)
                if len(chain) == 2 and config.genai:  # genai has no cascades
                    for k in ks:
                        yield Case(engine="genai", k=k, **common)
                    for conf in config.genai_confidence:
                        yield Case(engine="genai", confidence=conf, **common)


def baseline_of(case: Case, cases: Sequence[Case], engine: str | None = None) -> Case | None:
    """The target-only case ``case`` is compared with: same target files, target device, sampling.

    ``engine`` picks the baseline's engine (default: the case's own). For genai the paged-attention
    backend is preferred: it is the one its speculative pipelines run on.
    """
    engine = engine or case.engine
    matches = [
        other
        for other in cases
        if other.engine == engine
        and not other.speculative
        and other.target_key == case.target_key
        and other.devices[0] == case.devices[0]
        and other.sampling == case.sampling
    ]
    matches.sort(key=lambda c: c.backend not in ("", "PA"))
    return matches[0] if matches else None
