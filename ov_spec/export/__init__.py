"""Export: Hugging Face checkpoints -> one OpenVINO pipeline folder the runtime loads.

``python -m ov_spec.export --target SRC --draft SRC --output DIR`` converts each model to a stateful
IR through optimum-intel, compresses weights with NNCF, checks that the models share a tokenizer,
previews draft acceptance and writes the manifest (:mod:`ov_spec.manifest`).

This package imports torch, transformers, optimum-intel and NNCF (lazily, when used); the runtime
never imports it.
"""

from __future__ import annotations

from ov_spec.export.compress import FORMATS, CompressionConfig
from ov_spec.export.pipeline import export_pipeline
from ov_spec.export.recipe import DEFAULT_FORMATS, Recipe

__all__ = ["DEFAULT_FORMATS", "FORMATS", "CompressionConfig", "Recipe", "export_pipeline"]
