"""``python -m ov_spec.demo``: the quick start's main job, end to end on a machine with no hub.

Builds the local model pair (cached), exports it with weight compression into a pipeline folder
(cached), then generates the same prompt target-only and speculatively on the same compiled
models, and prints the text, the acceptance rate and the measured speedup.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from ov_spec.cli import run_cli

PROMPT = '''def read_config(path):
    """Read a JSON configuration file and return it as a dict."""
'''


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ov_spec.demo", description=__doc__.splitlines()[0])
    p.add_argument(
        "--preset", default="default", help="local pair: default (trained, ~5 min once) or random/large"
    )
    p.add_argument("--output", type=Path, help="pipeline folder (default: the cache)")
    p.add_argument("--target-format", default="int8_asym")
    p.add_argument("--draft-format", default="int8_asym")
    p.add_argument("--prompt", default=PROMPT)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--draft-tokens", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per mode (median reported)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import ov_spec
    from ov_spec.export import export_pipeline
    from ov_spec.manifest import MANIFEST_NAME
    from ov_spec.tiny import build_pair, default_cache_dir

    print(f"[1/3] local model pair '{args.preset}' (built once, then cached)", file=sys.stderr)
    pair = build_pair(args.preset, progress=True)
    report = pair.report
    print(
        f"      target {report.get('params', {}).get('target', '?'):,} params, "
        f"draft {report.get('params', {}).get('draft', '?'):,} params",
        file=sys.stderr,
    )
    out = (
        args.output
        or default_cache_dir()
        / "pipelines"
        / f"demo-{pair.root.name}-{args.target_format}-{args.draft_format}"
    )
    print(f"[2/3] export + compress -> {out}", file=sys.stderr)
    if not (out / MANIFEST_NAME).is_file():
        export_pipeline(
            target=str(pair.target),
            drafts=[str(pair.draft)],
            output=out,
            formats={"target": args.target_format, "draft": args.draft_format},
            preview_text=pair.heldout,
        )
    print("[3/3] generate: target-only vs speculative, same compiled models", file=sys.stderr)
    pipe = ov_spec.load(out)
    opts = {"max_new_tokens": args.max_new_tokens, "draft_tokens": args.draft_tokens}
    pipe.generate(args.prompt, use_draft=False, **opts)  # warm-up: first inference allocates buffers
    pipe.generate(args.prompt, **opts)
    base = [pipe.generate(args.prompt, use_draft=False, **opts) for _ in range(args.repeats)]
    spec = [pipe.generate(args.prompt, **opts) for _ in range(args.repeats)]
    base_tps = statistics.median(r.metrics.tokens_per_s for r in base)
    spec_tps = statistics.median(r.metrics.tokens_per_s for r in spec)
    m = spec[-1].metrics
    print("\n" + "-" * 72)
    print(args.prompt + spec[-1].text)
    print("-" * 72)
    print(f"identical to target-only greedy output: {spec[-1].token_ids == base[-1].token_ids}")
    print(
        f"acceptance rate: {m.acceptance_rate:.1%}   tokens per target pass: {m.tokens_per_pass:.2f}  (k={args.draft_tokens})"
    )
    print(
        f"target-only: {base_tps:.1f} tok/s   speculative: {spec_tps:.1f} tok/s   speedup: {spec_tps / base_tps:.2f}x"
    )
    if spec_tps < base_tps:
        print(
            "(the local target is so small that a forward pass costs little more than the loop around it; "
            "try --preset large, a ~100M target, to see the speedup speculative decoding gives real models)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
