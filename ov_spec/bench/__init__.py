"""Benchmarks: ``python -m ov_spec.bench PIPELINE ...`` sweeps configurations, compares with
openvino.genai on the same files, checks outputs against target-only decoding, applies the speed
model and writes JSON/CSV/Markdown and plots.

Modules: :mod:`~ov_spec.bench.config` (settings, prompts), :mod:`~ov_spec.bench.sweep` (which
cases), :mod:`~ov_spec.bench.runners` (ov_spec and openvino.genai), :mod:`~ov_spec.bench.measure`
(the timed loop), :mod:`~ov_spec.bench.stats` (per-case summaries), :mod:`~ov_spec.bench.speed`
and :mod:`~ov_spec.bench.speed_model` (ideal, analytic fits, rollback study),
:mod:`~ov_spec.bench.perplexity`, :mod:`~ov_spec.bench.compare` (recommendation, findings),
:mod:`~ov_spec.bench.report` and :mod:`~ov_spec.bench.plots` (output), :mod:`~ov_spec.bench.run`.
openvino_genai and matplotlib are imported only when used; torch never.
"""
