"""Edge deployment: package a pipeline, install only the runtime in a fresh venv, get the same answers.

The edge venv holds exactly ``requirements-edge.txt`` (openvino, openvino-tokenizers, numpy, jinja2)
plus the packaged ov_spec wheel installed with ``--no-deps``. Building it downloads ~100 MB, so the
requirements-only venv is cached under ``$OV_SPEC_CACHE/edge-venv/<hash of the requirements>``;
each test session works on a hard-linked copy, installs the wheel there and deletes it afterwards,
so the cache is never modified and concurrent test runs cannot disturb each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import ov_spec

REPO = Path(__file__).resolve().parent.parent
PACKAGER = REPO / "scripts" / "package_edge.py"
RUNNER = REPO / "scripts" / "edge_run.py"
MAX_NEW_TOKENS = 12
# Blank-line separated, so the second prompt keeps its two lines.
PROMPTS = "def fibonacci(n):\n\nimport os\nclass Config:\n\nfor i in range(10):\n"


def run(python: str | Path, *args: str | Path, stdin: str | None = None, cwd: Path | None = None):
    """Run a Python script in a clean environment (nothing leaks in from the test's own venv)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run(
        [str(python), *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def assert_user_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit code 2, exactly one line on stderr, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def answers(proc: subprocess.CompletedProcess) -> list[dict]:
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


# --- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def edge_package(random_pipeline, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("edge") / "package"
    proc = run(sys.executable, PACKAGER, random_pipeline, "--output", out)
    assert proc.returncode == 0, proc.stderr
    return out


def _cached_venv(requirements: Path) -> Path:
    """A venv with only the runtime requirements, built once per requirements text and Python."""
    key = hashlib.sha256(
        "\n".join([requirements.read_text(), sys.version, platform.machine()]).encode()
    ).hexdigest()[:12]
    root = Path(os.environ.get("OV_SPEC_CACHE", "~/.cache/ov_spec")).expanduser() / "edge-venv"
    final = root / key
    if (final / "bin" / "python").exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    private = root / f".{key}.build-{os.getpid()}"
    shutil.rmtree(private, ignore_errors=True)
    # sys.executable is this test venv's python; venv bases the new one on the base interpreter,
    # so nothing installed here is visible there.
    subprocess.run([sys.executable, "-m", "venv", private], check=True)
    proc = run(private / "bin" / "python", "-m", "pip", "install", "-q", "-r", requirements)
    assert proc.returncode == 0, proc.stderr
    # Always call `<venv>/bin/python -m pip`: pip's script shebangs would still name `private`.
    try:
        private.rename(final)
    except OSError:  # another test run finished first
        shutil.rmtree(private, ignore_errors=True)
    return final


def _copy_venv(src: Path, dest: Path) -> None:
    """Hard-link copy (instant; falls back to copying across file systems).

    Installing into the copy only adds files, and Python replaces .pyc files by rename, so the
    cached originals behind the links are never written to.
    """
    try:
        shutil.copytree(src, dest, symlinks=True, copy_function=os.link)
    except OSError:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest, symlinks=True)


@pytest.fixture(scope="module")
def edge_python(edge_package) -> Iterator[Path]:
    """The python of a fresh venv with the runtime requirements and the packaged wheel only."""
    cached = _cached_venv(edge_package / "requirements-edge.txt")
    venv = cached.parent / f".run-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    _copy_venv(cached, venv)
    try:
        python = venv / "bin" / "python"
        (wheel,) = edge_package.glob("ov_spec-*.whl")
        proc = run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel)
        assert proc.returncode == 0, proc.stderr
        yield python
    finally:
        shutil.rmtree(venv, ignore_errors=True)


# --- the package ------------------------------------------------------------------------------
def test_package_contents(edge_package, random_pipeline):
    names = {p.name for p in edge_package.iterdir()}
    assert {
        "pipeline",
        "requirements-edge.txt",
        "edge_run.py",
        "devices.toml",
        "devices.json",
        "README.txt",
    } <= names
    assert len(list(edge_package.glob("ov_spec-*-py3-none-any.whl"))) == 1
    assert (edge_package / "pipeline" / "ov_spec.json").read_text() == (
        random_pipeline / "ov_spec.json"
    ).read_text()
    from importlib import metadata

    pins = [
        line for line in (edge_package / "requirements-edge.txt").read_text().splitlines() if "==" in line
    ]
    names = {pin.split("==")[0] for pin in pins}
    assert {"openvino", "openvino-tokenizers", "numpy"} <= names
    assert not names & {"torch", "transformers", "optimum-intel", "nncf"}
    for pin in pins:
        name, version = pin.split("==")
        assert metadata.version(name) == version, pin
    readme = (edge_package / "README.txt").read_text()
    for needle in (
        "rsync",
        "python3 -m venv",
        "pip install -r requirements-edge.txt",
        "--no-deps",
        "edge_run.py",
    ):
        assert needle in readme


# --- the edge venv: runtime only, same answers ------------------------------------------------
@pytest.mark.slow
def test_edge_venv_has_no_torch_or_transformers(edge_python, edge_package):
    for module in ("torch", "transformers", "optimum", "nncf"):
        proc = run(edge_python, "-c", f"import {module}", cwd=edge_package)
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr, module
    # ov_spec comes from the installed wheel, not from this checkout.
    proc = run(edge_python, "-c", "import ov_spec, openvino; print(ov_spec.__file__)", cwd=edge_package)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).is_relative_to(edge_python.parent.parent)


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--chat", "--draft-tokens", "3"]], ids=["plain", "chat"])
def test_edge_answers_equal_full_install(edge_python, edge_package, random_pipeline, tmp_path, extra):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(PROMPTS)
    # trim: the strict rollback, so the target-only reference below must match exactly (the
    # default, paged, matches it but at near-ties, which the random pair's flat logits hit)
    common = [
        "--prompt-file",
        prompts,
        "--max-new-tokens",
        str(MAX_NEW_TOKENS),
        "--json",
        "--rollback",
        "trim",
        *extra,
    ]
    edge = answers(
        run(
            edge_python,
            edge_package / "edge_run.py",
            edge_package / "pipeline",
            "--devices",
            edge_package / "devices.toml",
            *common,
            cwd=edge_package,
        )
    )
    full = answers(run(sys.executable, RUNNER, random_pipeline, *common))
    assert [a["prompt"] for a in edge] == [
        "def fibonacci(n):",
        "import os\nclass Config:",
        "for i in range(10):",
    ]
    assert [(a["text"], a["token_ids"], a["finish_reason"]) for a in edge] == [
        (a["text"], a["token_ids"], a["finish_reason"]) for a in full
    ]
    # Independent reference: greedy speculative output is the target-only greedy output.
    pipe = ov_spec.load(random_pipeline, rollback="trim")
    for a in edge:
        ref = pipe.generate(
            a["prompt"], max_new_tokens=MAX_NEW_TOKENS, use_draft=False, chat="--chat" in extra
        )
        assert a["token_ids"] == ref.token_ids


@pytest.mark.slow
def test_edge_runner_reads_stdin_and_streams_text(edge_python, edge_package):
    proc = run(
        edge_python,
        edge_package / "edge_run.py",
        edge_package / "pipeline",
        "--max-new-tokens",
        "4",
        stdin="def f(x):\nimport sys\n",
        cwd=edge_package,
    )
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("[")][-1].startswith("[2/2 ")


# --- bad input: one line, exit code 2 ---------------------------------------------------------
@pytest.fixture
def not_a_pipeline(tmp_path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def _absent_device() -> str:
    import openvino as ov

    present = ov.Core().available_devices
    return next(d for d in ("NPU", "GPU", "GPU.3") if d not in present and d.split(".")[0] not in present)


def test_runner_bad_input(random_pipeline, not_a_pipeline, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("def f():\n")
    devices = tmp_path / "devices.toml"
    devices.write_text(f'[models.target]\ndevice = "{_absent_device()}"\n')
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    cases = [
        ([tmp_path / "missing", "--prompt-file", prompts], "does not exist"),
        ([not_a_pipeline, "--prompt-file", prompts], "not an ov_spec pipeline"),
        ([random_pipeline, "--prompt-file", prompts, "--devices", devices], "is not available here"),
        ([random_pipeline, "--prompt-file", prompts, "--devices", tmp_path / "nope.toml"], "device config"),
        ([random_pipeline, "--prompt-file", tmp_path / "nope.txt"], "cannot read prompt file"),
        ([random_pipeline, "--prompt-file", tmp_path], "cannot read prompt file"),
        ([random_pipeline, "--prompt-file", empty], "no prompts"),
        ([random_pipeline, "--prompt-file", prompts, "--max-new-tokens", "0"], "--max-new-tokens"),
        ([random_pipeline, "--no-such-flag"], "unrecognized arguments"),
    ]
    for args, needle in cases:
        assert_user_error(run(sys.executable, RUNNER, *args), needle)


def test_packager_bad_input(random_pipeline, not_a_pipeline, tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("not a package")
    cases = [
        ([tmp_path / "missing", "--output", tmp_path / "out"], "does not exist"),
        ([not_a_pipeline, "--output", tmp_path / "out"], "not an ov_spec pipeline"),
        ([random_pipeline, "--output", existing], "already exists"),
        ([random_pipeline, "--output", existing, "--force"], "not an edge package"),
        ([random_pipeline, "--output", tmp_path / "no" / "parent"], "parent folder"),
        (
            [random_pipeline, "--output", tmp_path / "out", "--wheel", tmp_path / "x.whl"],
            "not an ov_spec wheel",
        ),
    ]
    for args, needle in cases:
        assert_user_error(run(sys.executable, PACKAGER, *args), needle)
    assert (existing / "keep.txt").is_file()  # --force never deletes a folder it did not write
    assert not (tmp_path / "out").exists()
