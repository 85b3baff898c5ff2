"""Device placement: which model runs on which OpenVINO device, with which properties.

A placement config is a TOML or JSON file (or a dict)::

    [defaults]                       # applies to every model unless overridden
    device = "CPU"
    properties = { PERFORMANCE_HINT = "LATENCY" }

    [models.target]                  # keys are the model names in ov_spec.json
    device = "GPU"
    properties = { INFERENCE_PRECISION_HINT = "f16", KV_CACHE_PRECISION = "u8" }

    [models.draft1]
    device = "NPU"
    properties = { NPUW_LLM_MAX_PROMPT_LEN = 1024 }

CLI overrides: ``--device target=GPU --property target.NUM_STREAMS=1``. Everything is validated at
load against the devices OpenVINO reports, so a missing device is one line listing the present ones.

NPU needs static shapes. Following OpenVINO's NPU LLM guidance, a model placed on ``NPU`` is
compiled through NPUW's LLM pipeline (``NPU_USE_NPUW``/``NPUW_LLM``), which keeps the KV cache in
fixed-size buffers; ``NPUW_LLM_MAX_GENERATION_TOKEN_LEN`` must cover the ``k + 1`` tokens a
verification pass feeds. (No NPU was present where this was written; see README.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openvino as ov

from ov_spec import toml_io
from ov_spec.errors import UserError
from ov_spec.runtime.limits import MAX_DRAFT_TOKENS

# Composite devices name the real devices after a colon: "AUTO:GPU,CPU", "HETERO:GPU,CPU".
_VIRTUAL_DEVICES = ("AUTO", "HETERO", "MULTI", "BATCH")
# Properties ov_spec itself understands, on top of what each device reports as supported.
_NPU_LLM_DEFAULTS = {
    "NPU_USE_NPUW": "YES",
    "NPUW_LLM": "YES",
    "NPUW_LLM_BATCH_DIM": 0,
    "NPUW_LLM_SEQ_LEN_DIM": 2,
    "NPUW_LLM_MAX_PROMPT_LEN": 1024,
    "NPUW_LLM_MIN_RESPONSE_LEN": 256,
}


@dataclass
class Placement:
    """Where one model runs."""

    device: str = "CPU"  # CPU, GPU, GPU.1, NPU, AUTO, AUTO:GPU,CPU, HETERO:GPU,CPU, ...
    properties: dict[str, Any] = field(default_factory=dict)  # OpenVINO compile properties


def load_placements(
    config: str | Path | Mapping[str, Any] | None,
    model_names: Iterable[str],
    overrides: Iterable[str] = (),
    property_overrides: Iterable[str] = (),
) -> dict[str, Placement]:
    """Resolve a placement for every model from a file/dict plus ``name=DEVICE`` overrides."""
    names = list(model_names)
    raw = _read_config(config) if isinstance(config, (str, Path)) else dict(config or {})
    unknown = set(raw) - {"defaults", "models"}
    if unknown:
        raise UserError(
            f"device config has unknown sections {sorted(unknown)}; use [defaults] and [models.NAME]"
        )
    defaults = _placement(raw.get("defaults", {}), "defaults")
    models_raw = raw.get("models", {})
    if not isinstance(models_raw, Mapping):
        raise UserError("device config: [models] must map model names to {device, properties}")
    for name in models_raw:
        if name not in names:
            raise UserError(f"device config names model {name!r}, but the pipeline has {', '.join(names)}")
    placements = {}
    for name in names:
        own = _placement(models_raw.get(name, {}), f"models.{name}")
        placements[name] = Placement(
            device=models_raw.get(name, {}).get("device", defaults.device),
            properties={**defaults.properties, **own.properties},
        )
    for item in overrides:
        name, device = _split(item, "=", "--device NAME=DEVICE (e.g. target=GPU)")
        if name not in placements:
            raise UserError(f"--device {item}: no model {name!r}; the pipeline has {', '.join(names)}")
        placements[name].device = device
    for item in property_overrides:
        key, value = _split(item, "=", "--property NAME.KEY=VALUE (e.g. target.NUM_STREAMS=1)")
        name, prop = _split(key, ".", "--property NAME.KEY=VALUE (e.g. target.NUM_STREAMS=1)")
        if name not in placements:
            raise UserError(f"--property {item}: no model {name!r}; the pipeline has {', '.join(names)}")
        placements[name].properties[prop] = value
    return placements


def validate(core: ov.Core, placements: Mapping[str, Placement]) -> None:
    """Check every device exists and every property is one the device supports."""
    available = core.available_devices
    for name, placement in placements.items():
        for device in _real_devices(placement.device):
            if not is_present(device, available):
                raise UserError(
                    f"{name}: device {device!r} is not available here; present: {', '.join(available)} "
                    "(fix the device config or --device)"
                )
        if placement.device.split(":")[0] in _VIRTUAL_DEVICES:
            continue  # AUTO/HETERO pass properties through to the devices they pick
        supported = set(core.get_property(placement.device, "SUPPORTED_PROPERTIES"))
        if placement.device.startswith("NPU"):
            supported |= set(_NPU_LLM_DEFAULTS) | {"NPUW_LLM_MAX_GENERATION_TOKEN_LEN"}
        for prop in placement.properties:
            if prop not in supported:
                close = sorted(p for p in supported if prop.split("_")[0] in p)[:5]
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise UserError(f"{name}: {placement.device} has no property {prop!r}{hint}")


def compile_properties(
    placement: Placement, max_tokens_per_pass: int = MAX_DRAFT_TOKENS + 1
) -> dict[str, Any]:
    """The properties to compile with, NPU's static-shape LLM settings added when needed."""
    props: dict[str, Any] = {}
    if placement.device.startswith("NPU"):
        props.update(_NPU_LLM_DEFAULTS)
        props["NPUW_LLM_MAX_GENERATION_TOKEN_LEN"] = max(1, max_tokens_per_pass)
    props.update(placement.properties)
    return props


def compile_model(
    core: ov.Core, model: ov.Model, name: str, placement: Placement, props: dict
) -> ov.CompiledModel:
    """Compile with a one-line error when OpenVINO refuses a property value."""
    try:
        return core.compile_model(model, placement.device, {k: _value(v) for k, v in props.items()})
    except RuntimeError as err:
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), str(err))
        raise UserError(
            f"{name}: OpenVINO could not compile for {placement.device} with {props}: {first[:300]} "
            "(check the property values in the device config)"
        ) from None


# -- helpers -----------------------------------------------------------------------------------
def _read_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"device config {path} does not exist; pass a TOML or JSON file")
    text = path.read_text()
    try:
        if path.suffix == ".json":
            return json.loads(text)
        if path.suffix == ".toml":
            return toml_io.loads(text)
    except (ValueError, TypeError) as err:
        raise UserError(f"cannot parse device config {path}: {err}") from None
    raise UserError(f"device config {path} must be .toml or .json")


def _placement(raw: Any, where: str) -> Placement:
    if not isinstance(raw, Mapping):
        raise UserError(f"device config [{where}] must be a table with 'device' and 'properties'")
    extra = set(raw) - {"device", "properties"}
    if extra:
        raise UserError(
            f"device config [{where}] has unknown keys {sorted(extra)}; allowed: device, properties"
        )
    device = raw.get("device", "CPU")
    props = raw.get("properties", {})
    if not isinstance(device, str) or not device:
        raise UserError(f"device config [{where}].device must be a device name such as CPU or GPU")
    if not isinstance(props, Mapping):
        raise UserError(f"device config [{where}].properties must be a table of OpenVINO properties")
    return Placement(device=device, properties=dict(props))


def _real_devices(device: str) -> list[str]:
    head, _, rest = device.partition(":")
    if head in _VIRTUAL_DEVICES:
        return [d for d in rest.split(",") if d]  # "AUTO" alone picks among what is present
    return [device]


def is_present(device: str, available: Sequence[str]) -> bool:
    """Whether ``device`` is among OpenVINO's ``available_devices``.

    "GPU" matches "GPU" or "GPU.0"; "GPU.1" must be listed as is.
    """
    return device in available or ("." not in device and any(a.split(".")[0] == device for a in available))


def _split(item: str, sep: str, usage: str) -> tuple[str, str]:
    left, found, right = item.partition(sep)
    if not found or not left or not right:
        raise UserError(f"cannot read {item!r}; expected {usage}")
    return left, right


def _value(value: Any) -> Any:
    # OpenVINO accepts strings for every property; bools become YES/NO as its docs spell them.
    if isinstance(value, bool):
        return "YES" if value else "NO"
    return value if isinstance(value, str) else str(value)
