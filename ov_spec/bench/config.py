"""What a benchmark run measures: settings from defaults, a TOML/JSON file and command-line flags.

Precedence: built-in defaults < ``--config FILE`` < flags given on the command line. Every field of
:class:`BenchConfig` can be set in the file under its own name (``draft_tokens = [2, 4, 8]``); the
flags spell lists with commas (``--k 2,4,8``). Prompts come from a file (one per line, or a JSON
list of strings or of ``{"text": ..., "name": ..., "kind": ...}`` objects); the default set of code
and prose prompts ships in ``ov_spec/data/prompts.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from ov_spec import toml_io
from ov_spec.errors import UserError
from ov_spec.runtime.limits import AUTO, ROLLBACK_CHOICES, check_draft_length

SAMPLING_MODES = ("greedy", "sample")
CHAIN_KINDS = ("target", "pairs", "cascade")  # target-only, each [target, X], the full cascade
GENAI_BACKENDS = ("PA", "SDPA")  # openvino.genai attention backends (paged / stateful SDPA)


@dataclass
class Prompt:
    """One benchmark prompt."""

    text: str
    name: str = ""
    kind: str = ""  # "code" | "prose" | "" (free label, used to group results)


@dataclass
class BenchConfig:
    """All settings of one benchmark run (see ``python -m ov_spec.bench --help``)."""

    pipelines: list[str] = field(default_factory=list)  # folders; "LABEL=PATH" names a variant
    output: str = "out/bench"  # folder for results.json/csv, results.md and plots
    prompts: str = ""  # prompt file; "" = the shipped set (ov_spec/data/prompts.json)
    num_prompts: int = 0  # use only the first N prompts; 0 = all
    max_new_tokens: int = 64  # tokens generated per prompt
    warmup: int = 1  # untimed generations per configuration before the first timed one
    repeats: int = 3  # timed passes over the prompt set; median and min/max across them
    draft_tokens: list[int] = field(default_factory=lambda: [2, 4, 8])  # fixed k values swept
    adaptive: bool = True  # add one adaptive (+2/-1) run per speculative chain
    adaptive_start: int = 4  # its starting k
    chains: list[str] = field(default_factory=lambda: list(CHAIN_KINDS))  # kinds or "target,draft1"
    devices: list[str] = field(default_factory=list)  # devices to place models on; [] = all present
    placements: list[str] = field(default_factory=list)  # explicit "target=GPU,draft1=CPU" (no product)
    ngram: bool = True  # prompt lookup (pure: models=[target]), one run per k
    mtad: bool = False  # MTAD (lossy, opt-in): beam drafting + joint-likelihood acceptance
    mtad_width: int = 4  # beams
    mtad_threshold: float = 0.5  # accept while p(x_1..i) / q(x_1..i) > threshold
    min_confidence: list[float] = field(default_factory=lambda: [0.4])  # ov_spec confidence-stop runs
    sampling: list[str] = field(default_factory=lambda: ["greedy"])  # "greedy" and/or "sample"
    temperature: float = 0.8  # sampling settings ("sample" mode)
    top_p: float = 0.95  # 1.0 = off
    top_k: int = 0  # 0 = off
    seed: int = 0  # sampling seed of prompt i in repeat r: seed + 1000 * r + i
    # ov_spec KV rollback(s) swept: auto (the runtime's default, resolved per model at load), trim, mask
    rollback: list[str] = field(default_factory=lambda: [AUTO])
    properties: list[str] = field(default_factory=list)  # OpenVINO properties for both engines:
    # "KEY=VALUE" for every model, "NAME.KEY=VALUE" for one (e.g. "ENABLE_CPU_PINNING=NO")
    genai: bool = True  # openvino.genai baselines on the same files
    genai_confidence: list[float] = field(default_factory=lambda: [0.4])  # assistant_confidence_threshold
    genai_backends: list[str] = field(default_factory=lambda: list(GENAI_BACKENDS))  # for target-only
    speed_model: bool = True  # step costs, zero-overhead ideal, analytic predictions
    cost_repeats: int = 10  # timed repeats of each primitive in step_costs
    rollback_study: bool = True  # trim vs mask cost and tokens/s against context length
    rollback_contexts: list[int] = field(default_factory=lambda: [64, 256, 1024])  # prompt tokens
    perplexity: bool = True  # perplexity of each ov_spec output under its target
    plots: bool = True  # write PNG plots (matplotlib)
    quiet: bool = False  # no progress bar

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def load(
        cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None, quick: bool = False
    ) -> BenchConfig:
        """Defaults, then the file at ``path`` (TOML or JSON), then :data:`QUICK` if ``quick``, then
        ``overrides``; validated."""
        values: dict[str, Any] = {}
        if path:
            values.update(read_config_file(Path(path)))
        if quick:
            values.update(QUICK)
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(
                f"unknown benchmark setting(s) {', '.join(unknown)}; see `python -m ov_spec.bench --help`"
            )
        config = cls(**{k: _coerce(k, v) for k, v in values.items()})
        config.validate()
        return config

    def validate(self) -> None:
        """Raise :class:`UserError` (one line, names the fix) for a setting that cannot work."""
        if not self.pipelines:
            raise UserError("no pipeline folder given; pass one or more folders written by ov_spec.export")
        for name in ("max_new_tokens", "repeats", "cost_repeats", "adaptive_start"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup", "num_prompts", "seed", "top_k"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must be >= 0, got {getattr(self, name)}")
        for k in self.draft_tokens:  # fixed lengths: the rules of generate(draft_tokens=...)
            check_draft_length(k, allow_auto=False)
        bad = [s for s in self.sampling if s not in SAMPLING_MODES]
        if bad or not self.sampling:
            raise UserError(f"sampling must list {' and/or '.join(SAMPLING_MODES)}, got {self.sampling}")
        if not self.rollback or any(r not in ROLLBACK_CHOICES for r in self.rollback):
            raise UserError(f"rollback must list some of {', '.join(ROLLBACK_CHOICES)}, got {self.rollback}")
        bad = [b for b in self.genai_backends if b not in GENAI_BACKENDS]
        if bad:
            raise UserError(f"genai_backends must be among {', '.join(GENAI_BACKENDS)}, got {bad}")
        if not self.temperature > 0:
            raise UserError(f"temperature must be > 0 for sampling runs, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UserError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 < self.mtad_threshold <= 1 or self.mtad_width < 1:
            raise UserError("mtad_threshold must be in (0, 1] and mtad_width >= 1")
        for name in ("min_confidence", "genai_confidence"):
            if any(not 0 < c < 1 for c in getattr(self, name)):
                raise UserError(f"{name} values must be in (0, 1), got {getattr(self, name)}")
        for prop in self.properties:
            key, sep, value = prop.partition("=")
            if not sep or not key.strip(".") or not value:
                raise UserError(f"cannot read property {prop!r}; expected KEY=VALUE or NAME.KEY=VALUE")
        if any(c < 2 for c in self.rollback_contexts):
            raise UserError(f"rollback_contexts must be >= 2 tokens, got {self.rollback_contexts}")
        if not self.chains or any(not c.strip() for c in self.chains):
            raise UserError(
                f"chains must list {', '.join(CHAIN_KINDS)}, 'all' or explicit chains, got {self.chains}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def properties_for(self, model: str) -> dict[str, str]:
        """The OpenVINO properties that apply to ``model`` (global ones, then its own)."""
        out: dict[str, str] = {}
        for prop in self.properties:
            key, _, value = prop.partition("=")
            name, dot, own = key.partition(".")
            if not dot:
                out[key] = value
            elif name == model:
                out[own] = value
        return out

    def sampling_options(self, mode: str) -> dict[str, Any]:
        """Keyword arguments of ``pipe.generate`` for a sampling mode."""
        if mode == "greedy":
            return {"temperature": 0.0}
        return {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k}


# Fast settings for a first look (`--quick`); flags given explicitly still win.
QUICK = {
    "num_prompts": 4,
    "max_new_tokens": 32,
    "warmup": 1,
    "repeats": 1,
    "draft_tokens": [4],
    "min_confidence": [],
    "cost_repeats": 5,
    "rollback_contexts": [64, 256],
}


# -- files ---------------------------------------------------------------------------------------
def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML or JSON benchmark config into a dict."""
    if not path.is_file():
        raise UserError(f"benchmark config {path} does not exist; pass a .toml or .json file")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            data = json.loads(text)
        elif path.suffix == ".toml":
            data = toml_io.loads(text)
        else:
            raise UserError(f"benchmark config {path} must end in .toml or .json")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UserError(f"cannot read benchmark config {path}: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"benchmark config {path} must hold a table/object of settings")
    return data


def load_prompts(path: str | Path | None = None, limit: int = 0) -> list[Prompt]:
    """Prompts from ``path`` (JSON list, or one prompt per line), or the shipped default set."""
    if path:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            reason = getattr(err, "strerror", None) or str(err)
            raise UserError(
                f"cannot read prompt file {path}: {reason}; pass a readable text or JSON file"
            ) from None
        source = str(path)
    else:
        text = resources.files("ov_spec.data").joinpath("prompts.json").read_text(encoding="utf-8")
        source, path = "ov_spec/data/prompts.json", Path("prompts.json")
    if path.suffix == ".json":
        try:
            raw = json.loads(text)
        except ValueError as err:
            raise UserError(f"prompt file {source} is not valid JSON: {err}") from None
        if not isinstance(raw, list):
            raise UserError(f"prompt file {source} must hold a JSON list of strings or objects")
        prompts = [_prompt(item, i, source) for i, item in enumerate(raw)]
    else:
        prompts = [Prompt(line, f"p{i}") for i, line in enumerate(text.splitlines()) if line.strip()]
    prompts = [p for p in prompts if p.text.strip()]
    if not prompts:
        raise UserError(f"prompt file {source} holds no prompts; put one prompt per line or a JSON list")
    return prompts[:limit] if limit else prompts


def _prompt(item: Any, index: int, source: str) -> Prompt:
    if isinstance(item, str):
        return Prompt(item, f"p{index}")
    if isinstance(item, dict) and isinstance(item.get("text"), str):
        return Prompt(item["text"], str(item.get("name") or f"p{index}"), str(item.get("kind", "")))
    raise UserError(f"prompt {index} in {source} must be a string or an object with a 'text' string")


# -- value coercion (flags arrive as strings, files as their own types) ------------------------------
_LISTS = {f.name: f for f in fields(BenchConfig) if f.type.startswith("list")}
_WHOLE_ITEMS = {"pipelines", "chains", "placements", "properties"}  # "target,draft1" is one chain, not two


def _coerce(name: str, value: Any) -> Any:
    """Turn ``"2,4,8"`` into ``[2, 4, 8]`` for list settings; check scalar types."""
    default = BenchConfig.__dataclass_fields__[name]
    kind = default.type
    if name in _LISTS:
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            items = []
        elif isinstance(value, str):  # entries of these lists contain commas themselves
            items = [value] if name in _WHOLE_ITEMS else [v.strip() for v in value.split(",") if v.strip()]
        else:
            items = value
        if not isinstance(items, (list, tuple)):
            raise UserError(f"{name} must be a list, got {value!r}")
        elem = kind[len("list[") : -1]
        return [_scalar(name, elem, v) for v in items]
    return _scalar(name, kind, value)


def _scalar(name: str, kind: str, value: Any) -> Any:
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            raise ValueError
        if kind == "int":
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "str":
            if not isinstance(value, (str, Path)):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        raise UserError(f"{name}: expected {kind}, got {value!r}") from None
    raise AssertionError(f"unhandled setting type {kind}")
