"""One README row per benchmarked pipeline, from ``python -m ov_spec.bench`` result folders.

    python scripts/readme_table.py out/bench-readme/*/results.json

Per pipeline: ov_spec's default (``draft_tokens="auto"`` over the whole chain, what a user gets with
no options), the best fixed configuration of the sweep, target-only, openvino.genai's best
speculative configuration and its target-only, the ratios between them, what auto chose, and the
cost model's predicted vs measured decoding speed (medians over the auto runs' records).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from ov_spec.bench.stats import paired_ratio


def _best(summaries: list[dict], keep) -> dict | None:
    ok = [s for s in summaries if s["runs"] and s["tokens_per_s"] > 0 and keep(s["case"])]
    return max(ok, key=lambda s: s["tokens_per_s"]) if ok else None


def _ov(case: dict) -> bool:
    return case["engine"] == "ov_spec"


def choices(greedy: list[dict]) -> dict[str, dict | None]:
    """The summaries each row compares, from one variant's greedy summaries: ov_spec target-only,
    its default (auto over the whole chain), its best fixed configuration, genai target-only and
    genai's best speculative configuration (None where the bench did not run one)."""
    full = max(len(s["case"]["chain"]) for s in greedy)
    return {
        "target": _best(
            greedy, lambda c: _ov(c) and len(c["chain"]) == 1 and not c["ngram"] and not c["auto"]
        ),
        "default": _best(
            greedy,
            lambda c: _ov(c) and c["auto"] and len(c["chain"]) == full and not c["ngram"] and not c["mtad"],
        ),
        "fixed": _best(greedy, lambda c: _ov(c) and c["k"] > 0 and not c["auto"] and not c["mtad"]),
        "genai_target": _best(
            greedy, lambda c: c["engine"] == "genai" and len(c["chain"]) == 1 and not c["ngram"]
        ),
        "genai_best": _best(greedy, lambda c: c["engine"] == "genai" and (len(c["chain"]) > 1 or c["ngram"])),
    }


def rows(results: dict[str, Any], label: str = "") -> list[str]:
    """Markdown rows for every variant in one results.json (``label``: its folder's name, shown
    where it differs from the variant's, e.g. one pipeline on a second prompt set)."""
    out = []
    by_variant: dict[str, list[dict]] = {}
    for s in results["summaries"]:
        by_variant.setdefault(s["case"]["variant"], []).append(s)
    for variant, summaries in by_variant.items():
        greedy = [s for s in summaries if s["case"]["sampling"] == "greedy"]
        picked = choices(greedy)
        target, default, fixed = picked["target"], picked["default"], picked["fixed"]
        g_target, g_best = picked["genai_target"], picked["genai_best"]
        if not (target and default):
            continue
        records = [
            r for r in results["records"] if r["case"] == default["case"]["id"] and r["metrics"].get("auto")
        ]
        autos = [r["metrics"]["auto"] for r in records]
        mean_k = statistics.mean(a["mean_k"][0] for a in autos) if autos else float("nan")
        chains = sorted({"+".join(a["chain"]) for a in autos})
        pred = statistics.median(a["predicted_tokens_per_s"] for a in autos) if autos else 0.0
        meas = statistics.median(a["measured_tokens_per_s"] for a in autos) if autos else 0.0

        def tps(s: dict | None) -> str:
            return (
                f"{s['tokens_per_s']:.1f} ({s['case']['label'].replace('ov_spec ', '').replace('genai ', '')})"
                if s
                else "-"
            )

        def r(a: dict | None, b: dict | None) -> str:
            ratio = paired_ratio(a["per_repeat"], b["per_repeat"]) if a and b else None
            return f"{ratio:.2f}x" if ratio else "-"

        out.append(
            f"| {variant if label in ('', variant) else f'{label} ({variant})'} | {target['tokens_per_s']:.1f} | {default['tokens_per_s']:.1f} | {tps(fixed)} | "
            f"{tps(g_target)} | {tps(g_best)} | {r(default, target)} | {r(default, fixed)} | {r(default, g_best)} | "
            f"{', '.join(chains)}, mean k {mean_k:.2f} | {pred:.1f} / {meas:.1f} |"
        )
    return out


HEADER = (
    "| pipeline | target-only tok/s | default (auto) tok/s | best fixed tok/s | genai target-only | "
    "genai best | default / target-only | default / best fixed | default / genai best | auto chose | "
    "auto predicted / measured decode tok/s |\n|---|---:|---:|---|---|---|---:|---:|---:|---|---:|"
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", type=Path, help="results.json files of ov_spec.bench")
    args = p.parse_args(argv)
    lines = [HEADER]
    for path in args.results:
        lines += rows(json.loads(path.read_text()), path.parent.name)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
