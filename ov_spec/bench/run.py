"""One benchmark run end to end: check the settings, measure the sweep, analyse, write the report.

Everything that can be checked without loading a model (settings, prompt file, pipeline folders,
devices, an empty sweep) is checked first, so a bad setting fails in a second with one line.
Ctrl-C during the sweep or the analyses stops cleanly: what was measured is still written.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ov_spec.bench import compare, speed
from ov_spec.bench.config import BenchConfig, Prompt, load_prompts
from ov_spec.bench.measure import run_sweep
from ov_spec.bench.perplexity import continuation_perplexity
from ov_spec.bench.report import Report, environment
from ov_spec.bench.runners import Runners
from ov_spec.bench.stats import Summary, summarize
from ov_spec.bench.sweep import Case, Variant, expand, parse_variants, resolve_devices


@dataclass
class Plan:
    """A checked run: what will be measured, before anything is loaded."""

    config: BenchConfig
    prompts: list[Prompt]
    variants: list[Variant]
    devices: list[str]
    cases: list[Case]


def plan(config: BenchConfig) -> Plan:
    """Validate the settings against the files and devices; expand the sweep (raises UserError)."""
    import openvino as ov

    prompts = load_prompts(config.prompts or None, config.num_prompts)
    variants = parse_variants(config.pipelines)
    available = ov.Core().available_devices
    devices = resolve_devices(config.devices, available)
    cases = expand(config, variants, devices)
    resolve_devices(sorted({d for case in cases for d in case.devices}), available)  # explicit placements
    return Plan(config, prompts, variants, devices, cases)


def benchmark(p: Plan, log=lambda msg: print(msg, file=sys.stderr)) -> tuple[Report, dict[str, Path]]:
    """Measure, analyse and write the report of a :class:`Plan`; returns it and the files written."""
    config = p.config
    runners = Runners(config, p.variants)
    if any(c.engine == "genai" for c in p.cases):
        runners.genai  # noqa: B018  (fails now, with the install hint, if openvino_genai is missing)
    log(
        f"[bench] {len(p.cases)} configurations x {len(p.prompts)} prompts x {config.repeats} passes "
        f"(+{config.warmup} warm-up each), {config.max_new_tokens} new tokens"
    )
    run = run_sweep(
        p.cases,
        p.prompts,
        runners.run,
        warmup=config.warmup,
        repeats=config.repeats,
        seed=config.seed,
        quiet=config.quiet,
    )
    summaries = summarize(p.cases, run)
    report = Report(config, p.prompts, summaries, run, environment(p.devices))
    if run.interrupted:
        report.notes.append("Interrupted (Ctrl-C) during the sweep; analyses skipped.")
    else:
        _analyse(report, p, runners, log)
    out = Path(config.output)
    if config.plots and summaries:
        try:
            from ov_spec.bench.plots import write_plots

            report.plots = [
                str(path) for path in write_plots(out, summaries, report.fits, report.ideal, report.rollback)
            ]
        except ImportError:
            report.notes.append("plots skipped: matplotlib is not installed (pip install 'ov_spec[bench]')")
    return report, report.write(out)


def _analyse(report: Report, p: Plan, runners: Runners, log) -> None:
    """Perplexity, speed model, rollback study, recommendation, findings; Ctrl-C skips the rest."""
    config, summaries = p.config, report.summaries
    steps = []
    if config.perplexity:
        steps.append(
            ("perplexity", lambda: add_perplexity(summaries, report.run.outputs, p.prompts, runners))
        )
    costs = speed.CostCache(runners.ov_spec, config.cost_repeats) if config.speed_model else None
    if costs is not None:
        steps.append(("speed model", lambda: report.ideal.extend(speed.ideal_report(summaries, costs))))
    steps.append(("analytic fits", lambda: report.fits.extend(speed.analytic_fits(summaries, costs))))
    if config.rollback_study:

        def study() -> None:
            chain, rows = speed.rollback_study(
                runners.ov_spec,
                p.variants,
                [q.text for q in p.prompts],
                config.rollback_contexts,
                k=config.adaptive_start,
                max_new_tokens=config.max_new_tokens,
                repeats=1,  # one pass over every prompt at each length
                cost_repeats=config.cost_repeats,
                device=p.devices[0],
            )
            report.rollback_chain, report.rollback[:] = chain, rows

        steps.append(("rollback study", study))
    for name, step in steps:
        log(f"[bench] {name}")
        try:
            step()
        except KeyboardInterrupt:
            report.notes.append(f"Interrupted (Ctrl-C) during the {name}; later analyses skipped.")
            break
    report.recommendation = compare.recommend(summaries, report.fits)
    report.findings = compare.findings(summaries, report.ideal, p.variants, report.run.outputs)


def add_perplexity(
    summaries: list[Summary],
    outputs: dict[str, dict[int, dict[str, Any]]],
    prompts: list[Prompt],
    runners: Runners,
) -> None:
    """Mean perplexity of each ov_spec case's outputs under its own target (same device)."""
    cache: dict[tuple, float] = {}
    for s in summaries:
        if s.case.engine != "ov_spec" or not s.runs:
            continue
        pipe = runners.ov_spec.pipeline_for(s.case)
        target = pipe.models[s.case.chain[0]]
        values = []
        for i, out in sorted(outputs.get(s.case.id, {}).items()):
            ids = out.get("token_ids")
            if not ids:
                continue
            prompt_ids = pipe.tokenizer.encode(prompts[i].text)
            key = (s.case.target_key, s.case.devices[0], tuple(prompt_ids), tuple(ids))
            if key not in cache:
                cache[key] = continuation_perplexity(target, prompt_ids, ids)
            values.append(cache[key])
        values = [v for v in values if not math.isnan(v)]
        s.perplexity = sum(values) / len(values) if values else None
