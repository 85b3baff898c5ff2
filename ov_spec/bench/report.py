"""Write a run's results: ``results.json`` (everything), ``results.csv`` (one row per case) and
``results.md`` (the table, recommendation, findings, speed model, rollback study, plots)."""

from __future__ import annotations

import csv
import json
import os
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from ov_spec.bench.compare import Finding
from ov_spec.bench.config import BenchConfig, Prompt
from ov_spec.bench.measure import SweepRun
from ov_spec.bench.speed import AnalyticFit, IdealRow, RollbackRow
from ov_spec.bench.stats import Summary

CSV_COLUMNS = [
    "variant",
    "engine",
    "label",
    "method",
    "chain",
    "devices",
    "k",
    "adaptive",
    "ngram",
    "mtad",
    "confidence",
    "sampling",
    "backend",
    "runs",
    "errors",
    "tokens_per_s",
    "tokens_per_s_min",
    "tokens_per_s_max",
    "speedup",
    "speedup_own",
    "acceptance_rate",
    "tokens_per_pass",
    "mean_draft_length",
    "draft_ms_per_token",
    "verify_ms_per_token",
    "rollback_ms_per_token",
    "other_ms_per_token",
    "overhead_per_iter_ms",
    "matches_target_only",
    "match_rate",
    "perplexity",
    "error",
]


@dataclass
class Report:
    """Everything one run produced, ready to write."""

    config: BenchConfig
    prompts: list[Prompt]
    summaries: list[Summary]
    run: SweepRun
    environment: dict[str, Any] = field(default_factory=dict)
    ideal: list[IdealRow] = field(default_factory=list)
    fits: list[AnalyticFit] = field(default_factory=list)
    rollback_chain: str = ""
    rollback: list[RollbackRow] = field(default_factory=list)
    recommendation: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. "interrupted", skipped analyses

    def write(self, folder: Path) -> dict[str, Path]:
        """Write JSON, CSV and Markdown into ``folder``; return their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"json": folder / "results.json", "csv": folder / "results.csv", "md": folder / "results.md"}
        paths["json"].write_text(json.dumps(self.to_dict(), indent=1, default=str) + "\n")
        write_csv(paths["csv"], self.summaries)
        paths["md"].write_text(self.markdown())
        return paths

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "environment": self.environment,
            "config": self.config.to_dict(),
            "prompts": [p.__dict__ for p in self.prompts],
            "interrupted": self.run.interrupted,
            "sweep_seconds": self.run.seconds,
            "notes": self.notes,
            "summaries": [s.to_dict() for s in self.summaries],
            "recommendation": self.recommendation,
            "findings": [f.to_dict() for f in self.findings],
            "speed_model": [r.to_dict() for r in self.ideal],
            "analytic_fits": [f.to_dict() for f in self.fits],
            "rollback_study": {"chain": self.rollback_chain, "rows": [r.to_dict() for r in self.rollback]},
            "records": [r.to_dict() for r in self.run.records],
            "outputs": self.run.outputs,
            "plots": self.plots,
        }

    # -- Markdown -----------------------------------------------------------------------------------
    def markdown(self) -> str:
        env = self.environment
        c = self.config
        kinds = sorted({p.kind for p in self.prompts if p.kind})
        lines = [
            "# ov_spec benchmark",
            "",
            f"Machine: {env.get('machine', '?')}. OpenVINO {env.get('openvino', '?')}, "
            f"openvino.genai {env.get('openvino_genai', '?')}, devices {', '.join(env.get('devices', []))}.",
            f"{len(self.prompts)} prompts ({', '.join(kinds) or 'from file'}), {c.max_new_tokens} new tokens each, "
            f"{c.warmup} warm-up + {c.repeats} timed passes per configuration (interleaved per prompt); "
            "tok/s = median over passes of (tokens / seconds over all prompts), min-max beside it. "
            "Speedup is against ov_spec target-only on the same files, device and decoding mode: "
            "the median over passes of the ratio within each pass.",
            "",
        ]
        if self.run.interrupted:
            lines += ["**Interrupted: partial results.**", ""]
        lines += [f"> {n}" for n in self.notes] + ([""] if self.notes else [])
        lines += ["## Results", "", markdown_table(self.summaries), ""]
        lines += self._recommendation_md()
        if self.findings:
            lines += ["## Findings", ""]
            for f in self.findings:
                lines.append(f"- {f.topic}: {f.text}")
            lines.append("")
        if self.ideal:
            lines += [
                "## Speed model: measured vs zero-overhead ideal",
                "",
                "ideal = tau(k) * T1 / (Tv(k+1) + k * Td), step costs timed alone at the run's mean context; "
                "overhead = the loop's own time per target pass (other_s / passes).",
                "",
                "| variant | chain | k | context | tau | T1 ms | Tv ms | Td ms (source) | ideal | measured | measured/ideal | overhead ms/iter | rollback ms/iter |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for r in self.ideal:
                lines.append(
                    f"| {r.variant} | {r.chain} | {r.k} | {r.context} | {r.tau:.2f} | {r.t1_ms:.2f} | {r.tv_ms:.2f} | "
                    f"{r.td_ms:.2f} ({r.td_source}) | {r.ideal:.2f}x | {r.measured:.2f}x | {r.ratio:.0%} | "
                    f"{r.overhead_per_iter_ms:.2f} | {r.rollback_per_iter_ms:.2f} |"
                )
            lines.append("")
        if self.fits:
            lines += [
                "## Analytic model (Leviathan et al.) fitted per chain",
                "",
                "| variant | chain | alpha | c (source) | best k | predicted at best k | measured speedups (ov_spec) | genai |",
                "|---|---|---:|---:|---:|---:|---|---|",
            ]
            for f in self.fits:
                meas = ", ".join(f"k={k}: {v:.2f}x" for k, v in sorted(f.measured.items()))
                gen = ", ".join(f"k={k}: {v:.2f}x" for k, v in sorted(f.genai.items()))
                lines.append(
                    f"| {f.variant} | {f.chain} | {f.alpha:.2f} | {f.c:.3f} ({f.c_source}) | {f.best_k} | "
                    f"{f.best_predicted:.2f}x | {meas} | {gen} |"
                )
            lines.append("")
        if self.rollback:
            lines += [
                f"## Rollback study: trim vs mask ({self.rollback_chain})",
                "",
                "Rollback of k tokens timed alone (step_costs; mask: the mean over enough rollbacks to "
                "trigger compactions, which are also shown alone); each benchmark prompt at the end of a context filled "
                "with the others; decode tok/s = tokens after the first / time after it (prefill excluded); "
                "end-to-end = generated / total (prefill included). Prompt lengths are capped at the model's "
                "context minus the new tokens.",
                "",
                "| prompt tokens | rollback trim ms | rollback mask ms | compaction ms | decode tok/s target / trim / mask "
                "| end-to-end tok/s target / trim / mask | rollback share trim / mask | mask output == trim |",
                "|---:|---:|---:|---:|---:|---:|---:|---|",
            ]
            for r in self.rollback:
                lines.append(
                    f"| {r.context} | {r.rollback_trim_ms:.3f} | {r.rollback_mask_ms:.3f} | "
                    f"{r.compaction_ms:.3f} | "
                    f"{r.decode_tps_target:.1f} / {r.decode_tps_trim:.1f} / {r.decode_tps_mask:.1f} | "
                    f"{r.e2e_tps_target:.1f} / {r.e2e_tps_trim:.1f} / {r.e2e_tps_mask:.1f} | "
                    f"{r.rollback_share_trim:.1%} / {r.rollback_share_mask:.1%} | "
                    f"{'yes' if r.mask_equals_trim else 'no'} |"
                )
            lines.append("")
        if self.plots:
            lines += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in self.plots] + [""]
        return "\n".join(lines)

    def _recommendation_md(self) -> list[str]:
        rec = self.recommendation
        if not rec or not rec.get("fastest"):
            return []
        best, lossless = rec["fastest"], rec.get("fastest_lossless")
        lines = ["## Recommendation", ""]
        lines.append(
            f"- Fastest measured: **{best['id']}** at {best['tokens_per_s']:.1f} tok/s" + _x(best["speedup"])
        )
        if lossless and lossless["id"] != best["id"]:
            lines.append(
                f"- Fastest lossless (output distribution = target's): **{lossless['id']}** at "
                f"{lossless['tokens_per_s']:.1f} tok/s" + _x(lossless["speedup"])
            )
        for p in rec.get("predictions", [])[:6]:
            run = (
                f"measured {p['measured_at_best_k']:.2f}x there"
                if p["measured_at_best_k"] is not None
                else "not run: worth a try"
            )
            lines.append(
                f"- Analytic model, {p['variant']} {p['chain']} (alpha {p['alpha']:.2f}, c {p['c']:.3f}): best k = "
                f"{p['best_k']}, predicted {p['predicted_speedup']:.2f}x ({run})"
            )
        return [*lines, ""]


def _x(speedup: float | None) -> str:
    return f" ({speedup:.2f}x vs ov_spec target-only)" if speedup else ""


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "" if value is None else f"{value:{spec}}{suffix}"


def markdown_table(summaries: list[Summary]) -> str:
    """The main results table, one row per case."""
    rows = [
        "| variant | configuration | tok/s | min-max | speedup | acceptance | tok/pass | = target-only | ppl |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        if not s.runs:
            rows.append(f"| {s.case.variant} | {s.case.label} | failed | | | | | | {s.error[:80]} |")
            continue
        rows.append(
            f"| {s.case.variant} | {s.case.label} | {s.tokens_per_s:.1f} | "
            f"{s.tokens_per_s_min:.1f}-{s.tokens_per_s_max:.1f} | {_fmt(s.speedup, '.2f', 'x')} | "
            f"{_fmt(s.acceptance_rate, '.0%')} | {_fmt(s.tokens_per_pass, '.2f')} | {s.matches_text} | "
            f"{_fmt(s.perplexity, '.2f')} |"
        )
    return "\n".join(rows)


def csv_row(s: Summary) -> dict[str, Any]:
    c = s.case
    ms = {k: v * 1e3 for k, v in s.breakdown.items()}
    return {
        "variant": c.variant,
        "engine": c.engine,
        "label": c.label,
        "method": c.method,
        "chain": "+".join(c.chain),
        "devices": ",".join(c.devices),
        "k": c.k,
        "adaptive": c.adaptive,
        "ngram": c.ngram,
        "mtad": c.mtad,
        "confidence": c.confidence,
        "sampling": c.sampling,
        "backend": c.backend,
        "runs": s.runs,
        "errors": s.errors,
        "tokens_per_s": round(s.tokens_per_s, 3),
        "tokens_per_s_min": round(s.tokens_per_s_min, 3),
        "tokens_per_s_max": round(s.tokens_per_s_max, 3),
        "speedup": _round(s.speedup),
        "speedup_own": _round(s.speedup_own),
        "acceptance_rate": _round(s.acceptance_rate),
        "tokens_per_pass": _round(s.tokens_per_pass),
        "mean_draft_length": _round(s.mean_draft_length),
        "draft_ms_per_token": _round(ms.get("draft")),
        "verify_ms_per_token": _round(ms.get("verify")),
        "rollback_ms_per_token": _round(ms.get("rollback")),
        "other_ms_per_token": _round(ms.get("other")),
        "overhead_per_iter_ms": _round(
            s.overhead_per_iter_s * 1e3 if s.overhead_per_iter_s is not None else None
        ),
        "matches_target_only": s.matches_text,
        "match_rate": _round(s.match_rate),
        "perplexity": _round(s.perplexity),
        "error": s.error,
    }


def _round(value: float | None) -> float | str:
    return "" if value is None else round(value, 4)


def write_csv(path: Path, summaries: list[Summary]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for s in summaries:
            writer.writerow(csv_row(s))


def environment(devices: list[str]) -> dict[str, Any]:
    """The machine and library versions, for the report header."""
    info: dict[str, Any] = {"python": platform.python_version(), "devices": devices, "cores": os.cpu_count()}
    for package, key in (
        ("openvino", "openvino"),
        ("openvino-genai", "openvino_genai"),
        ("ov_spec", "ov_spec"),
    ):
        try:
            info[key] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[key] = "not installed"
    cpu, flags, mem_gib = platform.processor() or platform.machine(), "", 0.0
    try:
        text = Path("/proc/cpuinfo").read_text()
        cpu = next(
            (ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), cpu
        )
        flags = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
        mem = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        mem_gib = int(mem.split()[1]) / 2**20
    except (OSError, StopIteration):
        pass
    isa = [name for name in ("avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f" {name}" in flags]
    info["cpu"] = cpu
    info["memory_gib"] = round(mem_gib, 1)
    info["machine"] = (
        f"{cpu}, {info['cores']} cores"
        + (f" ({', '.join(isa)})" if isa else "")
        + (f", {mem_gib:.0f} GiB" if mem_gib else "")
    )
    return info
