"""Execute every notebook in notebooks/ top to bottom; any cell error fails the test.

Notebooks run in this interpreter's environment: a private kernelspec points at ``sys.executable``
(a kernelspec named "python3" may resolve to another Python through PATH or a user-level
kernelspec), and a first injected cell asserts the kernel's ``sys.prefix``. Each notebook's cell
tagged ``parameters`` (its config cell) is followed by an injected cell with smaller settings, the
way papermill does it, so CI stays fast; the notebook code itself runs unchanged.

All notebooks share one working folder and run in order, so notebooks 2-4 reuse the pipelines
exported by notebooks 1 and 3, as they do for a user who runs them in order.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT_S = 600  # per cell; the longest are exports and the benchmark
KERNEL_NAME = "ov_spec_test"
# Overrides injected after each notebook's parameters cell (fewer tokens, samples, repeats).
FAST: dict[str, dict[str, object]] = {
    "01_export_and_compress.ipynb": {"MAX_NEW_TOKENS": 24},
    "02_speculative_step_by_step.ipynb": {"MAX_NEW_TOKENS": 32, "ITERATIONS_SHOWN": 4, "SAMPLES": 40},
    # The default pair instead of the ~100M "large" one: the same code, minutes less export.
    "03_cascade_ml_specqd.ipynb": {
        "TARGET": "tiny:default/target",
        "DRAFT": "tiny:default/draft",
        "MAX_NEW_TOKENS": 32,
        "REPEATS": 1,
        "CASCADE_GRID": [[2, 2], [4, 4]],
    },
    "04_device_comparison.ipynb": {
        "MAX_NEW_TOKENS": 16,
        "BENCH_ARGS": ["--quick", "--num-prompts", "2", "--no-rollback-study"],
    },
}


@pytest.fixture(scope="module")
def kernel_manager_factory(tmp_path_factory):
    """Kernel managers whose kernelspec runs this exact interpreter."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    kernels = tmp_path_factory.mktemp("kernels")
    spec = kernels / KERNEL_NAME
    spec.mkdir()
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "ov_spec tests",
                "language": "python",
            }
        )
    )

    def make() -> KernelManager:
        specs = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
        return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)

    return make


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, trained_pair):
    """Shared working folder; the local pair is built (or found cached) before any cell timer starts."""
    return tmp_path_factory.mktemp("notebooks")


def _prepare(path: Path):
    nb = nbformat.read(path, as_version=4)
    check = nbformat.v4.new_code_cell(
        f"import sys\nassert sys.prefix == {sys.prefix!r}, sys.prefix  # the kernel runs the test's Python"
    )
    cells = [check]
    found = False
    for cell in nb.cells:
        cells.append(cell)
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            found = True
            overrides = FAST.get(path.name, {})
            source = "\n".join(f"{name} = {value!r}" for name, value in overrides.items())
            cells.append(nbformat.v4.new_code_cell("# injected by tests/test_notebooks.py\n" + source))
    assert found, f"{path.name} has no cell tagged 'parameters' (its config cell)"
    nb.cells = cells
    return nb


def test_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == list(FAST), "update FAST when adding or renaming notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, workdir, kernel_manager_factory):
    nb = _prepare(path)
    km = kernel_manager_factory()
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(workdir)}},  # the kernel's working folder
    )
    start = time.perf_counter()
    try:
        client.execute()  # raises CellExecutionError on the first failing cell
    finally:
        print(f"{path.name}: {time.perf_counter() - start:.1f} s")
        if km.has_kernel:  # nbclient leaves a kernel it did not create running
            km.shutdown_kernel(now=True)
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"
    ]
    assert not errors, errors
    # Export runs with the libraries' chatter silenced; in Jupyter that must include their widgets.
    widgets = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert not widgets, f"{len(widgets)} progress widget(s) leaked into the notebook"


def test_pipeline_folder_names_the_configuration(tmp_path):
    from ov_spec.notebook import pipeline_folder
    from ov_spec.tiny import pair_folder

    folder = pipeline_folder(tmp_path, "tiny:default/target", "Qwen/Qwen2.5-0.5B", "int4_sym")
    key = pair_folder("default").name  # the cache key: a changed tiny recipe gets a new export folder
    assert folder == tmp_path / f"{key}-target__Qwen-Qwen2.5-0.5B__int4_sym"


def test_notebooks_are_stored_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name}: strip outputs"
