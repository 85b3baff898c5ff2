"""The runtime must run on an edge box with only OpenVINO, openvino-tokenizers and NumPy."""

from __future__ import annotations

import ast
import subprocess
import sys

RUNTIME_MODULES = [
    "ov_spec",
    "ov_spec.manifest",
    "ov_spec.generate",
    "ov_spec.runtime.pipeline",
    "ov_spec.runtime.stateful",
    "ov_spec.runtime.speculator",
    "ov_spec.runtime.proposers",
    "ov_spec.runtime.devices",
    "ov_spec.runtime.tokenizer",
]
HEAVY = ["torch", "transformers", "optimum", "nncf", "tokenizers", "openvino_genai"]


def heavy_modules_after(modules: list[str]) -> list[str]:
    """Import ``modules`` in a fresh interpreter; return which heavy packages got imported."""
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules)
    code += f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return ast.literal_eval(proc.stdout.strip())


def test_runtime_imports_no_torch_or_transformers():
    assert heavy_modules_after(RUNTIME_MODULES) == []


def test_the_check_sees_a_heavy_import():
    # The check above must be able to fail.
    assert "transformers" in heavy_modules_after([*RUNTIME_MODULES, "transformers"])
