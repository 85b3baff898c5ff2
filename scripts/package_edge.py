#!/usr/bin/env python3
"""Package an exported ov_spec pipeline for an edge box that has only OpenVINO (no torch).

    python scripts/package_edge.py PIPELINE_FOLDER --output DIR [--force] [--wheel FILE] [--serve]

DIR then holds everything the box needs, and nothing it does not:

    pipeline/               the pipeline folder (models, tokenizer IRs, ov_spec.json)
    ov_spec-*.whl           ov_spec itself, built from this checkout (``pip wheel --no-deps``)
    requirements-edge.txt   openvino, openvino-tokenizers, numpy (+ jinja2 for chat templates),
                            pinned to the versions installed here, where the pipeline was tested;
                            with --serve also the `serve` extra (FastAPI, uvicorn) for the
                            OpenAI-compatible server `python -m ov_spec.serve`
    edge_run.py             the runner (answers prompts from a file or stdin)
    devices.toml            example device placement, one entry per model (devices.json: same,
                            for Python 3.10, whose standard library cannot read TOML)
    README.txt              copy-to-the-box and run instructions

The package is assembled in a private folder next to DIR and renamed into place at the end, so an
interrupted run never leaves a half-written package. Bad input is one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any, NoReturn

from ov_spec.cli import run_cli
from ov_spec.errors import UserError
from ov_spec.manifest import Manifest

RUNNER = Path(__file__).resolve().with_name("edge_run.py")
# What the runtime imports (see pyproject.toml [project].dependencies); nothing from [export].
RUNTIME_REQUIREMENTS = ("openvino", "openvino-tokenizers", "numpy")
# The `serve` extra (pyproject.toml) and the web libraries ov_spec.serve imports directly.
SERVE_REQUIREMENTS = ("fastapi", "starlette", "pydantic", "uvicorn")
# Files that mark a folder as a package this script wrote (so --force never deletes anything else).
MARKERS = ("requirements-edge.txt", "README.txt")
PIPELINE_DIR = "pipeline"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as a UserError: one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="package_edge.py", description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="pipeline folder written by `python -m ov_spec.export`")
    p.add_argument("--output", "-o", type=Path, required=True, metavar="DIR", help="package folder to create")
    p.add_argument("--force", action="store_true", help="replace DIR if it holds an earlier edge package")
    p.add_argument(
        "--wheel",
        type=Path,
        metavar="FILE",
        help="use this ov_spec wheel instead of building one from the checkout",
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="also install the OpenAI-compatible server (`python -m ov_spec.serve`: FastAPI, uvicorn)",
    )
    return p


# --- pieces of the package --------------------------------------------------------------------
def check_output(out: Path, force: bool) -> None:
    """Refuse an existing output unless --force and it is an earlier package (never rm -rf a random folder)."""
    if not out.exists():
        if not out.parent.is_dir():
            raise UserError(f"the parent folder of {out} does not exist; create it first")
        return
    if not force:
        raise UserError(f"{out} already exists; pass --force to replace it or choose another --output")
    if not out.is_dir() or not all((out / m).is_file() for m in MARKERS):
        raise UserError(f"{out} exists and is not an edge package; refusing to replace it with --force")


def pinned_requirements(manifest: Manifest, serve: bool = False) -> list[str]:
    """``name==version`` for each runtime dependency, as installed here (the tested combination)."""
    names = list(RUNTIME_REQUIREMENTS)
    if manifest.tokenizer.get("chat_template"):
        names.append("jinja2")  # the runtime renders chat templates with it (edge_run.py --chat)
    if serve:
        names += SERVE_REQUIREMENTS
    lines = []
    for name in names:
        try:
            lines.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            extra = (
                " with the serve extra (pip install 'ov_spec[serve]')" if name in SERVE_REQUIREMENTS else ""
            )
            raise UserError(f"{name} is not installed here; install ov_spec's runtime{extra} first") from None
    return lines


def build_wheel(dest: Path) -> Path:
    """Build the ov_spec wheel from the source checkout this script belongs to into ``dest``.

    The sources are copied to a temporary folder first, so the build neither writes ``build/`` or
    ``*.egg-info`` into the checkout nor picks up stale files from them.
    """
    import ov_spec

    root = Path(ov_spec.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise UserError(
            f"ov_spec at {root} is not a source checkout (no pyproject.toml); pass a built wheel with --wheel"
        )
    with tempfile.TemporaryDirectory(prefix="ov_spec-wheel-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(
            root / "ov_spec", src / "ov_spec", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (root / name).is_file():
                shutil.copy2(root / name, src / name)
        if not (src / "README.md").exists():
            (src / "README.md").write_text("ov_spec\n")  # pyproject names it as the long description
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(dest),
            str(src),
        ]
        # Build with the setuptools installed here when there is one: no index access, seconds faster.
        if find_spec("setuptools") is not None:
            cmd.insert(4, "--no-build-isolation")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise UserError(f"building the ov_spec wheel failed: {last}")
    wheels = sorted(dest.glob("ov_spec-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def check_wheel(wheel: Path) -> None:
    if not wheel.is_file() or not wheel.name.startswith("ov_spec-") or wheel.suffix != ".whl":
        raise UserError(f"--wheel {wheel} is not an ov_spec wheel file (ov_spec-*.whl)")


def device_config(manifest: Manifest) -> dict[str, Any]:
    """Every model on CPU: works on any box; the README says how to move models to GPU/NPU."""
    return {
        "defaults": {"device": "CPU", "properties": {"PERFORMANCE_HINT": "LATENCY"}},
        "models": {name: {"device": "CPU"} for name in manifest.names()},
    }


def device_toml(manifest: Manifest) -> str:
    lines = [
        "# Device placement for edge_run.py --devices devices.toml (see ov_spec/runtime/devices.py).",
        "# Keys under [models] are the model names in pipeline/ov_spec.json. Devices: CPU, GPU, GPU.1,",
        "# NPU, AUTO, HETERO:GPU,CPU ... `python -c 'import openvino as ov; print(ov.Core().available_devices)'`",
        "# lists the ones present. A device that is not present is a one-line error at load.",
        "",
        "[defaults]",
        'device = "CPU"',
        'properties = { PERFORMANCE_HINT = "LATENCY" }',
    ]
    for entry in manifest.by_level():
        lines += ["", f"[models.{entry.name}]  # {entry.role}, level {entry.level}, {entry.weight_format}"]
        lines.append('device = "CPU"')
        if entry.level == 0:
            lines.append('# device = "GPU"  # the target gains most from a GPU')
            lines.append('# properties = { INFERENCE_PRECISION_HINT = "f16", KV_CACHE_PRECISION = "u8" }')
        else:
            lines.append('# device = "NPU"  # a small draft fits an NPU (static shapes; see the README)')
    return "\n".join(lines) + "\n"


def serve_section(manifest: Manifest) -> str:
    """README.txt's serving step (only for packages made with --serve)."""
    return f"""
5. Serve over the OpenAI HTTP API (this package includes the server):

     .venv/bin/python -m ov_spec.serve pipeline --devices devices.toml --port 8000
     curl http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' \\
          -d '{{"model": "pipeline", "prompt": "def fibonacci(n):", "max_tokens": 32}}'

   It listens on 127.0.0.1 only; to serve the network add --host 0.0.0.0 and an API key
   (--api-key KEY or OV_SPEC_API_KEY=KEY; clients send `Authorization: Bearer KEY`).
   --workers N loads N copies of the pipeline ({len(manifest.models)} model(s)) for N requests at a time;
   GET /health is 200 once they are compiled, GET /metrics has Prometheus metrics.
"""


def readme(manifest: Manifest, wheel: Path, requirements: list[str], serve: bool = False) -> str:
    """Instructions for the person at the edge box, with this package's own names filled in."""
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    models = "\n".join(
        f"  - {e.name}: {e.role}, level {e.level}, {e.weight_format}, {e.size_bytes / 2**20:.1f} MiB"
        for e in manifest.by_level()
    )
    reqs = "\n".join(f"  {r}" for r in requirements)
    return f"""ov_spec edge package
====================

Speculative decoding with OpenVINO only: no torch, no transformers on the box.

Models ({len(manifest.models)}):
{models}

Runtime requirements (pinned to what this package was tested with, on Python {py}, {platform.machine()}):
{reqs}
  + {wheel.name} (installed with --no-deps; its own requirements are the lines above)

1. Copy this folder to the box (PACKAGE = this folder, BOX = user@edge-box):

     rsync -a PACKAGE/ BOX:ov_spec_edge/          # or: scp -r PACKAGE BOX:ov_spec_edge
     # or as one file:  tar czf ov_spec_edge.tgz -C PACKAGE .  and unpack on the box

2. On the box, make a virtual environment and install the runtime
   (Python {py} recommended: the pinned wheels must exist for the box's Python and CPU):

     cd ov_spec_edge
     python3 -m venv .venv
     .venv/bin/pip install -r requirements-edge.txt
     .venv/bin/pip install --no-deps ./{wheel.name}

   (no internet on the box? on a machine with the same OS/Python run
    `pip download -r requirements-edge.txt -d wheels`, copy wheels/ over and add
    `--no-index --find-links wheels` to the first pip command)

3. Run. Prompts come from a file or stdin, one per line; if the input contains a blank line,
   prompts are separated by blank lines instead (a prompt may then span several lines):

     echo "def fibonacci(n):" | .venv/bin/python edge_run.py pipeline --devices devices.toml
     .venv/bin/python edge_run.py pipeline --devices devices.toml --prompt-file prompts.txt --json

   --json prints one JSON object per prompt (text, token_ids, finish_reason, metrics);
   --max-new-tokens N, --temperature T --seed S (sampling), --no-draft (target-only baseline),
   --chat (chat template), --split line|blank|auto. `edge_run.py --help` lists them all.

4. Devices: devices.toml puts every model on CPU. Edit it to move a model to GPU or NPU
   (the names under [models] are the model names above). Python 3.10 cannot read TOML: use
   devices.json, the same placement in JSON. A device the box does not have is a one-line
   error naming the devices it has. NPU compiles static shapes through NPUW; its limits are set
   with NPUW_LLM_* properties (see ov_spec's README).

{serve_section(manifest) if serve else ""}
Errors (missing folder, unknown device, unreadable prompt file) print one line to stderr
and exit with code 2.
"""


# --- the command ------------------------------------------------------------------------------
def package(
    folder: Path, out: Path, force: bool = False, wheel: Path | None = None, serve: bool = False
) -> Path:
    """Write the edge package for ``folder`` to ``out``; return ``out``. ``serve`` adds the HTTP server."""
    manifest = Manifest.read(folder)  # a missing or invalid pipeline fails here, before any copying
    out = out.expanduser().absolute()
    check_output(out, force)
    if out == folder.resolve() or folder.resolve() in out.parents:
        raise UserError(f"--output {out} is inside the pipeline folder; choose a folder outside it")
    if wheel is not None:
        check_wheel(wheel)
    requirements = pinned_requirements(manifest, serve)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        shutil.copytree(folder, staging / PIPELINE_DIR)
        built = Path(shutil.copy2(wheel, staging / wheel.name)) if wheel else build_wheel(staging)
        header = [
            "# Runtime-only requirements of ov_spec"
            + (" and its serve extra" if serve else "")
            + ", pinned to the versions this package was tested with.",
            f"# Then: pip install --no-deps ./{built.name}",
        ]
        (staging / "requirements-edge.txt").write_text("\n".join(header + requirements) + "\n")
        shutil.copy2(RUNNER, staging / RUNNER.name)
        (staging / "devices.toml").write_text(device_toml(manifest))
        (staging / "devices.json").write_text(json.dumps(device_config(manifest), indent=2) + "\n")
        (staging / "README.txt").write_text(readme(manifest, built, requirements, serve))
        if out.exists():  # --force, checked above to be an earlier package
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:  # includes Ctrl-C: never leave a half-written package behind
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = package(args.folder, args.output, args.force, args.wheel, args.serve)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"edge package written to {out} ({size / 2**20:.1f} MiB); see {out / 'README.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
