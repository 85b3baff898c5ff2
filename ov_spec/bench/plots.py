"""PNG plots of a run (matplotlib, Agg backend, imported only here).

* ``tokens_per_s.png`` - median tokens/s per configuration with min-max bars;
* ``speedup_vs_k.png`` - measured speedup against draft length per chain, with the analytic curve
  from the measured alpha and c, genai at the same k, and the zero-overhead ideal;
* ``acceptance.png`` - acceptance rate per level of every speculative configuration;
* ``time_breakdown.png`` - milliseconds per generated token: draft / verify / rollback / other;
* ``rollback.png`` - trim vs mask: rollback cost and decode tokens/s against prompt length.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ov_spec.bench.speed import AnalyticFit, IdealRow, RollbackRow
from ov_spec.bench.stats import Summary

_ENGINE_COLORS = {"ov_spec": "tab:blue", "genai": "tab:orange"}
_PARTS = (("draft", "tab:green"), ("verify", "tab:blue"), ("rollback", "tab:red"), ("other", "tab:gray"))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(
    folder: Path,
    summaries: Sequence[Summary],
    fits: Sequence[AnalyticFit],
    ideal: Sequence[IdealRow],
    rollback: Sequence[RollbackRow],
) -> list[Path]:
    """Write every plot that has data; return the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    written = []
    measured = [s for s in summaries if s.runs]
    jobs = [
        ("tokens_per_s.png", measured, lambda: plot_throughput(plt, measured)),
        ("speedup_vs_k.png", fits, lambda: plot_speedup_vs_k(plt, fits, ideal)),
        (
            "acceptance.png",
            [s for s in measured if s.acceptance_rate is not None],
            lambda: plot_acceptance(plt, measured),
        ),
        ("time_breakdown.png", [s for s in measured if s.breakdown], lambda: plot_breakdown(plt, measured)),
        ("rollback.png", rollback, lambda: plot_rollback(plt, rollback)),
    ]
    for name, data, draw in jobs:
        if not data:
            continue
        fig = draw()
        path = folder / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def _name(s: Summary, many_variants: bool) -> str:
    return f"{s.case.variant}: {s.case.label}" if many_variants else s.case.label


def plot_throughput(plt, summaries: Sequence[Summary]):
    many = len({s.case.variant for s in summaries}) > 1
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(summaries) + 1.2))
    y = range(len(summaries))
    med = [s.tokens_per_s for s in summaries]
    err = [
        [m - s.tokens_per_s_min for m, s in zip(med, summaries)],
        [s.tokens_per_s_max - m for m, s in zip(med, summaries)],
    ]
    colors = [_ENGINE_COLORS.get(s.case.engine, "tab:gray") for s in summaries]
    ax.barh(list(y), med, xerr=err, color=colors, capsize=2)
    ax.set_yticks(list(y), [_name(s, many) for s in summaries], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("tokens/s (median over passes; bars: min-max)")
    ax.set_title("Throughput per configuration (blue: ov_spec, orange: openvino.genai)")
    ax.grid(axis="x", alpha=0.3)
    return fig


def plot_speedup_vs_k(plt, fits: Sequence[AnalyticFit], ideal: Sequence[IdealRow]):
    cols = min(len(fits), 3)
    rows = (len(fits) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False)
    for ax, fit in zip(axes.flat, fits):
        ks = sorted(fit.predicted)
        ax.plot(
            ks,
            [fit.predicted[k] for k in ks],
            "-",
            color="tab:gray",
            label=f"analytic (a={fit.alpha:.2f}, c={fit.c:.3f})",
        )
        if fit.measured:
            mk = sorted(fit.measured)
            ax.plot(mk, [fit.measured[k] for k in mk], "o-", color="tab:blue", label="ov_spec measured")
        if fit.genai:
            gk = sorted(fit.genai)
            ax.plot(gk, [fit.genai[k] for k in gk], "s--", color="tab:orange", label="genai measured")
        mine = [r for r in ideal if r.variant == fit.variant and r.chain == fit.chain]
        if mine:
            ax.plot(
                [r.k for r in mine],
                [r.ideal for r in mine],
                "^",
                color="tab:green",
                label="zero-overhead ideal",
            )
        ax.axhline(1.0, color="black", lw=0.6)
        ax.set_title(f"{fit.variant}: {fit.chain}", fontsize=9)
        ax.set_xlabel("draft length k")
        ax.set_ylabel("speedup vs ov_spec target-only")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(fits) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_acceptance(plt, summaries: Sequence[Summary]):
    spec = [s for s in summaries if s.acceptance_rate is not None]
    many = len({s.case.variant for s in spec}) > 1
    depth = max((len(s.levels) for s in spec), default=1) or 1
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(spec) * max(depth, 1) + 1.2))
    height = 0.8 / depth
    for i, s in enumerate(spec):
        rates = [lv.acceptance_rate for lv in s.levels] or [s.acceptance_rate or 0.0]
        for j, rate in enumerate(rates):
            ax.barh(
                i + j * height, rate, height=height, color=f"C{j}", label=f"level {j}" if i == 0 else None
            )
    ax.set_yticks(
        [i + height * (depth - 1) / 2 for i in range(len(spec))], [_name(s, many) for s in spec], fontsize=7
    )
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("acceptance rate (accepted / drafted) per verifying level (0 = target)")
    ax.legend(fontsize=7)
    ax.grid(axis="x", alpha=0.3)
    return fig


def plot_breakdown(plt, summaries: Sequence[Summary]):
    rows = [s for s in summaries if s.breakdown]
    many = len({s.case.variant for s in rows}) > 1
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(rows) + 1.2))
    left = [0.0] * len(rows)
    for part, color in _PARTS:
        values = [s.breakdown.get(part, 0.0) * 1e3 for s in rows]
        ax.barh(range(len(rows)), values, left=left, color=color, label=part)
        left = [a + b for a, b in zip(left, values)]
    ax.set_yticks(range(len(rows)), [_name(s, many) for s in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ms per generated token")
    ax.set_title("Where the time goes (ov_spec)")
    ax.legend(fontsize=7)
    ax.grid(axis="x", alpha=0.3)
    return fig


def plot_rollback(plt, rows: Sequence[RollbackRow]):
    ctx = [r.context for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(ctx, [r.rollback_trim_ms for r in rows], "o-", label="trim (copy state)")
    a.plot(ctx, [r.rollback_mask_ms for r in rows], "s-", label="mask (no copy)")
    a.set_xlabel("prompt tokens")
    a.set_ylabel("ms per rollback")
    a.set_title("Rollback cost")
    b.plot(ctx, [r.decode_tps_target for r in rows], "k--", label="target-only")
    b.plot(ctx, [r.decode_tps_trim for r in rows], "o-", label="speculative, trim")
    b.plot(ctx, [r.decode_tps_mask for r in rows], "s-", label="speculative, mask")
    b.set_xlabel("prompt tokens")
    b.set_ylabel("decode tokens/s")
    b.set_title("Decode speed vs context")
    for ax in (a, b):
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
