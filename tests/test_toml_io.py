"""One TOML reader (tomllib, or tomli before Python 3.11) and one writer (tomli-w)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import ov_spec
from ov_spec import toml_io

PACKAGE = Path(ov_spec.__file__).parent


def test_only_toml_io_imports_a_toml_library():
    offenders = []
    for file in PACKAGE.rglob("*.py"):
        if file.name == "toml_io.py":
            continue
        if re.search(r"^\s*(import|from)\s+(tomllib|tomli|tomli_w)\b", file.read_text(), re.M):
            offenders.append(str(file.relative_to(PACKAGE)))
    assert offenders == []


def test_every_reader_works_without_tomllib(tmp_path):
    """Python 3.10 has no tomllib: block it and read a bench config, a device config and a recipe."""
    (tmp_path / "bench.toml").write_text('max_new_tokens = 7\nchains = ["target"]\n')
    (tmp_path / "devices.toml").write_text('[defaults]\ndevice = "CPU"\n')
    (tmp_path / "recipe.toml").write_text('[target]\nsource = "tiny:random/target"\nformat = "fp32"\n')
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        sys.modules["tomllib"] = None  # what Python 3.10 looks like: import tomllib fails
        from ov_spec.bench.config import read_config_file
        from ov_spec.runtime.devices import load_placements
        from ov_spec.export.recipe import Recipe
        root = Path({str(tmp_path)!r})
        assert read_config_file(root / "bench.toml")["max_new_tokens"] == 7
        assert load_placements(root / "devices.toml", ["target"])["target"].device == "CPU"
        assert Recipe.load(root / "recipe.toml").target == "tiny:random/target"
        import ov_spec.toml_io
        assert ov_spec.toml_io._reader.__name__ == "tomli"
        print("ok")
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"


def test_dumps_round_trips_and_drops_none():
    data = {
        "convert_dtype": "auto",
        "note": 'quotes " and \\ backslashes',
        "target": {"source": "tiny:default/target", "format": "int8_asym", "group_size": None},
        "draft": [{"source": "a", "ratio": 0.8}, {"source": "b", "awq": True}],
    }
    text = toml_io.dumps(data)
    back = toml_io.loads(text)
    assert back["target"] == {"source": "tiny:default/target", "format": "int8_asym"}
    assert back["draft"] == data["draft"] and back["note"] == data["note"]
