"""``python -m ov_spec.bench PIPELINE [PIPELINE ...]``: sweep, compare with openvino.genai, report.

Examples::

    python -m ov_spec.bench out/tiny --quick -o out/bench-quick
    python -m ov_spec.bench out/large-mxfp4 out/large-int4 --k 2,4,8 --mtad -o out/bench
    python -m ov_spec.bench out/qwen --devices CPU,GPU --no-genai -o out/bench-gpu
    python -m ov_spec.bench --config bench.toml

Several folders are variants (e.g. weight formats) measured in one run on the same prompts.
Writes results.json, results.csv, results.md and PNG plots into --output.
"""

from __future__ import annotations

import argparse
import sys

from ov_spec.cli import run_cli

_BOOL = argparse.BooleanOptionalAction


def build_parser() -> argparse.ArgumentParser:
    s = argparse.SUPPRESS  # flags not given leave the config file's (or default) value alone
    p = argparse.ArgumentParser(
        prog="python -m ov_spec.bench",
        description="Sweep speculative-decoding configurations on pipeline folders, compare with "
        "openvino.genai on the same files, check outputs against target-only decoding, write a report. "
        "Give the pipeline folders first: --chains and --placement take several values.",
        epilog="Lists are comma-separated. Defaults: see ov_spec/bench/config.py (BenchConfig).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=s,
    )
    p.add_argument(
        "pipelines", nargs="*", metavar="PIPELINE", help="pipeline folder(s); LABEL=PATH names one"
    )
    p.add_argument("--config", default=None, metavar="FILE", help="TOML or JSON settings (flags override)")
    p.add_argument("--output", "-o", metavar="DIR", help="where results and plots go (default out/bench)")
    p.add_argument("--quick", action="store_true", default=False, help="fast settings for a first look")
    p.add_argument("--quiet", action=_BOOL, help="no progress bar")

    w = p.add_argument_group("workload")
    w.add_argument(
        "--prompts", metavar="FILE", help="one prompt per line, or a JSON list (default: shipped set)"
    )
    w.add_argument("--num-prompts", type=int, metavar="N", help="use the first N prompts (0 = all)")
    w.add_argument("--max-new-tokens", type=int, metavar="N")
    w.add_argument("--warmup", type=int, metavar="N", help="untimed runs per configuration")
    w.add_argument("--repeats", type=int, metavar="N", help="timed passes over the prompts")
    w.add_argument("--sampling", metavar="MODES", help="greedy,sample")
    w.add_argument("--temperature", type=float)
    w.add_argument("--top-p", type=float)
    w.add_argument("--top-k", type=int)
    w.add_argument("--seed", type=int)

    sw = p.add_argument_group("sweep")
    sw.add_argument("--k", dest="draft_tokens", metavar="K,K", help="fixed draft lengths, e.g. 2,4,8")
    sw.add_argument("--adaptive", action=_BOOL, help="one adaptive (+2/-1) run per chain")
    sw.add_argument("--adaptive-start", type=int, metavar="K")
    sw.add_argument(
        "--chains",
        nargs="+",
        metavar="CHAIN",
        help="target, pairs, cascade, all, or explicit chains like target,draft1",
    )
    sw.add_argument("--devices", metavar="DEV,DEV", help="devices to place models on (default: all present)")
    sw.add_argument(
        "--placement",
        dest="placements",
        nargs="+",
        metavar="NAME=DEV,...",
        help="explicit placements instead of every combination",
    )
    sw.add_argument("--ngram", action=_BOOL, help="prompt lookup runs")
    sw.add_argument("--mtad", action=_BOOL, help="MTAD runs (lossy, opt-in)")
    sw.add_argument("--mtad-width", type=int)
    sw.add_argument("--mtad-threshold", type=float)
    sw.add_argument("--min-confidence", metavar="P,P", help="ov_spec confidence-stop runs ('none' = off)")
    sw.add_argument(
        "--rollback", metavar="MODES", help="ov_spec KV rollback(s) of speculative runs: trim,mask,paged"
    )
    sw.add_argument(
        "--property",
        dest="properties",
        action="append",
        metavar="[NAME.]KEY=VALUE",
        help="OpenVINO property for both engines, every model or one (repeatable)",
    )

    b = p.add_argument_group("baselines (openvino.genai)")
    b.add_argument("--genai", action=_BOOL, help="run openvino.genai on the same files")
    b.add_argument(
        "--genai-confidence", metavar="P,P", help="assistant_confidence_threshold runs ('none' = off)"
    )
    b.add_argument("--genai-backends", metavar="PA,SDPA", help="attention backends for genai target-only")

    a = p.add_argument_group("analyses")
    a.add_argument("--speed-model", action=_BOOL, help="zero-overhead ideal from timed step costs")
    a.add_argument("--cost-repeats", type=int, metavar="N")
    a.add_argument("--rollback-study", action=_BOOL, help="trim vs mask against context length")
    a.add_argument("--rollback-contexts", metavar="N,N", help="prompt lengths of the rollback study")
    a.add_argument("--perplexity", action=_BOOL, help="perplexity of ov_spec outputs under the target")
    a.add_argument("--plots", action=_BOOL, help="write PNG plots")
    return p


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    config_file, quick = args.pop("config"), args.pop("quick")
    if not args.get("pipelines"):
        args.pop("pipelines", None)  # may come from the config file
    from ov_spec.bench.config import BenchConfig
    from ov_spec.bench.report import markdown_table
    from ov_spec.bench.run import benchmark, plan

    config = BenchConfig.load(config_file, args, quick=quick)
    checked = plan(config)
    report, paths = benchmark(checked)
    print(markdown_table(report.summaries))
    rec = report.recommendation.get("fastest") if report.recommendation else None
    if rec:
        print(f"\nfastest: {rec['id']} at {rec['tokens_per_s']:.1f} tok/s")
    print(
        f"\nwrote {', '.join(str(p) for p in paths.values())} (+{len(report.plots)} plots)", file=sys.stderr
    )
    if report.run.interrupted or any("Interrupted" in n for n in report.notes):
        print("interrupted: partial results written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
