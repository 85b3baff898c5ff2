"""The example device configs shipped in examples/ are valid, and the CPU one loads a pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

import ov_spec
from ov_spec.errors import UserError
from ov_spec.runtime.devices import load_placements

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("config", sorted(EXAMPLES.glob("devices*.toml")), ids=lambda p: p.name)
def test_example_device_configs_parse(config):
    placements = load_placements(config, ["target", "self_draft", "draft1"])
    assert set(placements) == {"target", "self_draft", "draft1"}


def test_cpu_example_loads_and_generates(random_pipeline):
    pipe = ov_spec.load(random_pipeline, devices=EXAMPLES / "devices-cpu.toml")
    assert pipe.generate("def f(x):", max_new_tokens=4).token_ids


def test_gpu_example_names_the_missing_device(random_pipeline):
    import openvino as ov

    if "GPU" in ov.Core().available_devices:
        pytest.skip("this machine has a GPU")
    with pytest.raises(UserError, match="GPU"):
        ov_spec.load(random_pipeline, devices=EXAMPLES / "devices-gpu-npu.toml")
