"""Shared fixtures. Models are built locally (no hub) and cached across test runs.

The cache lives in $OV_SPEC_CACHE (default ~/.cache/ov_spec), so a second test run is fast; the
builders are safe when several processes ask at once.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# --- offline model pair (ov_spec.tiny) ---------------------------------------------------------
@pytest.fixture(scope="session")
def random_pair():
    """Seconds-fast random-weight target/draft pair sharing a trained BPE tokenizer."""
    from ov_spec.tiny import build_pair

    return build_pair(preset="random", seed=0)


@pytest.fixture(scope="session")
def trained_pair():
    """The default trained pair (cached; the first build takes a few minutes)."""
    from ov_spec.tiny import build_pair

    return build_pair(preset="default", seed=0)


# --- exported pipelines (ov_spec.export) -------------------------------------------------------
# (owned by the export work; see tests/test_export.py)
def exported_pipeline(name: str, pair_root, **export_kwargs):
    """Export once per configuration into ``$OV_SPEC_CACHE/pipelines/<name>-<hash>`` and return the folder.

    The key hashes the export arguments, the tiny pair's cache folder (itself content-keyed), the
    export code and the library versions, so any change rebuilds. The export is written to a
    process-private folder and renamed into place; a concurrent builder that loses the race
    discards its copy.
    """
    import hashlib
    import json
    import shutil
    from importlib import metadata
    from pathlib import Path

    import ov_spec.export
    from ov_spec.export import export_pipeline
    from ov_spec.manifest import MANIFEST_NAME

    code = hashlib.sha256()
    for file in sorted(Path(ov_spec.export.__file__).parent.glob("*.py")):
        code.update(file.read_bytes())
    versions = {p: metadata.version(p) for p in ("openvino", "nncf", "optimum-intel", "transformers")}
    key = json.dumps(
        {"args": export_kwargs, "pair": Path(pair_root).name, "code": code.hexdigest(), "versions": versions},
        sort_keys=True,
        default=str,
    )
    cache = Path(os.environ.get("OV_SPEC_CACHE", "~/.cache/ov_spec")).expanduser() / "pipelines"
    final = cache / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"
    if (final / MANIFEST_NAME).is_file():
        return final
    cache.mkdir(parents=True, exist_ok=True)
    private = cache / f".{final.name}.build-{os.getpid()}"
    export_pipeline(output=private, force=True, quiet=True, **export_kwargs)
    try:
        private.rename(final)
    except OSError:  # another process finished first
        shutil.rmtree(private, ignore_errors=True)
    return final


@pytest.fixture(scope="session")
def random_pipeline(random_pair):
    """tiny:random target + draft in fp32 (exports in seconds; outputs match PyTorch bit for bit)."""
    return exported_pipeline(
        "random-fp32",
        random_pair.root,
        target="tiny:random/target",
        drafts=["tiny:random/draft"],
        formats={"target": "fp32", "draft": "fp32"},
    )


@pytest.fixture(scope="session")
def trained_pipeline(trained_pair):
    """tiny:default (trained) target int8_asym + draft int8_asym: the shape of a real deployment."""
    return exported_pipeline(
        "default-int8",
        trained_pair.root,
        target="tiny:default/target",
        drafts=["tiny:default/draft"],
        formats={"target": "int8_asym", "draft": "int8_asym"},
    )


# --- runtime ----------------------------------------------------------------------------------
# (owned by the runtime work; see tests/test_runtime_*.py)
