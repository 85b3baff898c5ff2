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


# --- runtime ----------------------------------------------------------------------------------
# (owned by the runtime work; see tests/test_runtime_*.py)
