"""ov_spec: speculative decoding and lossless speculative sampling on OpenVINO.

The runtime needs only OpenVINO, openvino-tokenizers and NumPy. ``import ov_spec`` must not import
torch or transformers (tests check it); export-time code lives in :mod:`ov_spec.export` and
:mod:`ov_spec.tiny` and is imported only when used.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ov_spec.errors import UserError  # noqa: E402


def load(folder, devices=None, **kwargs):
    """Load an exported pipeline folder; see :func:`ov_spec.runtime.pipeline.load`."""
    from ov_spec.runtime.pipeline import load as _load

    return _load(folder, devices=devices, **kwargs)


__all__ = ["UserError", "__version__", "load"]
