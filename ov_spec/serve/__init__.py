"""An OpenAI-compatible HTTP server for exported pipelines, and its Ray Serve deployment.

    python -m ov_spec.serve PIPELINE [--workers N] [--port 8000] [--api-key KEY]
    python -m ov_spec.serve PIPELINE --ray [--replicas N] [--ray-address ADDR]

Needs the ``serve`` extra (FastAPI, uvicorn); Ray Serve needs the ``ray`` extra. Modules:
:mod:`~ov_spec.serve.app` (routes), :mod:`~ov_spec.serve.workers` (pipelines and the fair queue),
:mod:`~ov_spec.serve.schemas` (request bodies), :mod:`~ov_spec.serve.errors` (OpenAI error JSON),
:mod:`~ov_spec.serve.metrics` (Prometheus), :mod:`~ov_spec.serve.ray` (scale-out).
"""

from __future__ import annotations
