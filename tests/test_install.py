"""The install gets the CPU build of torch or stops with a clear message: never a CUDA download."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "install_torch_cpu.sh"


def _pin() -> str:
    return next(
        line for line in (ROOT / "constraints.txt").read_text().splitlines() if line.startswith("torch==")
    )


def test_constraints_pin_the_cpu_build_by_its_label():
    # PyPI's plain "torch==X" is a CUDA build on Linux; "+cpu" exists only on PyTorch's CPU index.
    assert re.fullmatch(r"torch==\d+\.\d+\.\d+\+cpu", _pin())


def _stub_pip(tmp_path: Path, code: int) -> Path:
    stub = tmp_path / "pip"
    stub.write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/args"\nexit {code}\n')
    stub.chmod(0o755)
    return stub


def test_script_asks_pytorchs_cpu_index_for_the_pinned_build(tmp_path):
    env = {**os.environ, "PIP": str(_stub_pip(tmp_path, 0))}
    run = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    args = (tmp_path / "args").read_text().split()
    assert _pin() in args
    assert args[args.index("--extra-index-url") + 1] == "https://download.pytorch.org/whl/cpu"


def test_script_stops_with_one_clear_line_when_no_cpu_build_is_found(tmp_path):
    env = {**os.environ, "PIP": str(_stub_pip(tmp_path, 1))}
    run = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "CPU build of torch" in lines[0] and "CUDA" in lines[0]


def test_without_a_local_wheel_folder_nothing_is_installed(tmp_path):
    """A fresh venv that sees only the public registries (no local wheel folder, no pip config):
    PyPI has no +cpu build and PyTorch's index is out of reach here, so the script stops; where the
    index is reachable it installs the CPU build. Either way no CUDA torch and no nvidia-* wheel."""
    venv.create(tmp_path / "venv", with_pip=True)
    pip = tmp_path / "venv" / "bin" / "pip"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP=str(pip), PIP_CONFIG_FILE=os.devnull)
    run = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    listed = subprocess.run([str(pip), "list"], capture_output=True, text=True, env=env).stdout
    assert "nvidia" not in listed.lower()
    if run.returncode == 0:
        assert "+cpu" in listed
    else:
        assert run.returncode == 2 and "CPU build of torch" in run.stderr
        assert "torch " not in listed


def test_check_script_accepts_this_venv():
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_cpu_torch.py")], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
