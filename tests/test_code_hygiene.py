"""Checks on the code itself: no dead definitions, no references to documents outside the repo."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Called by a framework by name, never by our code.
FRAMEWORK_HOOKS = {"check_health"}  # Ray Serve's replica health check


def _corpus() -> str:
    parts = []
    for pattern in ("ov_spec/**/*.py", "tests/*.py", "scripts/*", "notebooks/*.ipynb"):
        parts += [f.read_text(errors="replace") for f in ROOT.glob(pattern) if f.is_file()]
    return "\n".join(parts)


def test_every_definition_is_used():
    """A module-level function or class, or a method, that nothing references is dead code."""
    names: dict[str, str] = {}
    for file in (ROOT / "ov_spec").rglob("*.py"):
        tree = ast.parse(file.read_text())
        nodes = list(tree.body)
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                nodes += [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        for node in nodes:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            if node.decorator_list or node.name.startswith("__") or node.name in FRAMEWORK_HOOKS:
                continue  # routes, properties, fixtures; dunders are called by Python
            names.setdefault(node.name, str(file.relative_to(ROOT)))
    uses = Counter(re.findall(r"\w+", _corpus()))
    unused = sorted(f"{where}: {name}" for name, where in names.items() if uses[name] < 2)
    assert unused == []


def test_no_identity_lookup_tables():
    """A dict literal mapping every key to itself is a no-op lookup (compress._TYPE_NAMES was one)."""
    found = []
    for file in (ROOT / "ov_spec").rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Dict) and len(node.keys) > 1:
                pairs = [(k, v) for k, v in zip(node.keys, node.values) if isinstance(k, ast.Constant)]
                if len(pairs) == len(node.keys) and all(
                    isinstance(v, ast.Constant) and v.value == k.value for k, v in pairs
                ):
                    found.append(f"{file.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_log_softmax_has_one_definition():
    """Log-probabilities are computed by ov_spec.runtime.sampling.log_softmax only."""
    pattern = re.compile(r"np\.log\(np\.exp\([^)]*\)\.sum\(")
    hits = [
        str(f.relative_to(ROOT))
        for f in (ROOT / "ov_spec").rglob("*.py")
        if f.name != "sampling.py" and pattern.search(f.read_text())
    ]
    assert hits == []


def test_no_references_to_documents_outside_the_repo():
    """Code and tests cite the repo's own docs (docs/), never the team's private notes."""
    private = re.compile(r"\b(background|openvino-notes|style)\.md\b")
    hits = []
    for pattern in ("ov_spec/**/*.py", "tests/*.py", "scripts/*", "notebooks/*.ipynb", "README.md"):
        for f in ROOT.glob(pattern):
            if (
                f.is_file()
                and f.name != Path(__file__).name
                and private.search(f.read_text(errors="replace"))
            ):
                hits.append(str(f.relative_to(ROOT)))
    assert hits == []


def test_each_constant_has_one_definition():
    """An upper-case module constant (ROLLBACK_MODES, the draft-length bound, ...) is defined in one
    module and imported elsewhere; two modules defining the same name drift apart."""
    where: dict[str, list[str]] = {}
    for file in (ROOT / "ov_spec").rglob("*.py"):
        for node in ast.parse(file.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and t.id.lstrip("_").isupper() and t.id != "__all__":
                    where.setdefault(t.id.lstrip("_"), []).append(str(file.relative_to(ROOT)))
    assert {name: files for name, files in where.items() if len(files) > 1} == {}
