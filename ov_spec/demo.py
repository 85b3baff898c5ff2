"""``python -m ov_spec.demo``: the quick start's main job, end to end on a machine with no hub.

Builds the local model pair (cached), exports it with weight compression into a pipeline folder
(cached), then generates the same prompt target-only and speculatively on the same compiled
models, and prints the text, the acceptance rate and the measured speedup.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from ov_spec.cli import run_cli
from ov_spec.errors import UserError

NUM_PROMPTS = 4  # held-out snippets: acceptance and speed are averaged over them
PROMPT_CHARS = 240
_FUNCTION = re.compile(r"^def \w+\(", re.M)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ov_spec.demo", description=__doc__.splitlines()[0])
    p.add_argument(
        "--preset", default="default", help="local pair: default (trained, ~5 min once) or random/large"
    )
    p.add_argument("--output", type=Path, help="pipeline folder (default: the cache)")
    p.add_argument("--target-format", default="int8_asym")
    p.add_argument("--draft-format", default="int8_asym")
    p.add_argument(
        "--prompt", help="one prompt (default: the start of 4 functions from the pair's held-out code)"
    )
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--draft-tokens", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per mode (median reported)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeats < 1:
        raise UserError(f"--repeats must be at least 1, got {args.repeats}")
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
    prompts = [args.prompt] if args.prompt is not None else heldout_prompts(pair.heldout)
    pipe = ov_spec.load(out)
    opts = {"max_new_tokens": args.max_new_tokens, "draft_tokens": args.draft_tokens}
    pipe.generate(prompts[0], use_draft=False, **opts)  # warm-up: first inference allocates buffers
    pipe.generate(prompts[0], **opts)
    base_tps, base = _timed(pipe, prompts, args.repeats, use_draft=False, **opts)
    spec_tps, spec = _timed(pipe, prompts, args.repeats, **opts)
    top = [r.metrics.levels[0] for r in spec if r.metrics.levels]  # level 0: the target verifying
    drafted, accepted = sum(m.drafted for m in top), sum(m.accepted for m in top)
    emitted, passes = sum(m.emitted for m in top), sum(r.metrics.target_passes for r in spec)
    print("\n" + "-" * 72)
    print(prompts[0] + shown(spec[0].text))
    print("-" * 72)
    same = sum(s.token_ids == b.token_ids for s, b in zip(spec, base))
    print(f"identical to target-only greedy output: {same}/{len(prompts)} prompts")
    print(
        f"acceptance rate: {accepted / max(drafted, 1):.1%}   tokens per target pass: "
        f"{emitted / max(passes, 1):.2f}  (k={args.draft_tokens}, {len(prompts)} prompt(s))"
    )
    print(
        f"target-only: {base_tps:.1f} tok/s   speculative: {spec_tps:.1f} tok/s   "
        f"speedup: {spec_tps / base_tps:.2f}x"
    )
    if spec_tps < base_tps:
        print(
            "(the local target is so small that a forward pass costs little more than the loop around it; "
            "try --preset large, a ~100M target, to see the speedup speculative decoding gives real models)"
        )
    return 0


def heldout_prompts(heldout: Path, count: int = NUM_PROMPTS) -> list[str]:
    """The openings (up to ``PROMPT_CHARS``) of ``count`` functions spread over the held-out code.

    The models never trained on this text, so the acceptance rate is an honest one. Each opening
    stops a line before the function's body does (or at the size limit), after that line's
    indentation, so there is code left to write.
    """
    text = heldout.read_text(encoding="utf-8")
    prompts: list[str] = []
    for i in range(count):
        match = _FUNCTION.search(text, i * len(text) // count)
        if match is None:
            break
        lines = text[match.start() :].split("\n")
        body = [lines[0]]  # the def line, then the body while it stays indented
        for line in lines[1:]:
            if (line and not line.startswith(" ")) or sum(map(len, body)) + len(line) > PROMPT_CHARS:
                break
            body.append(line)
        body = _without_trailing_blanks(body)
        indent = ""
        if len(body) > 2:
            # Keep the dropped line's indentation: after a bare newline these small models
            # predict more newlines; after indentation they have to write code.
            dropped = body[-1]
            indent = dropped[: len(dropped) - len(dropped.lstrip(" "))]
            body = _without_trailing_blanks(body[:-1])
        prompts.append("\n".join(body) + "\n" + indent)
    if not prompts:
        raise UserError(f"{heldout} has no function to prompt with; pass --prompt TEXT")
    return prompts


def _without_trailing_blanks(lines: list[str]) -> list[str]:
    while len(lines) > 1 and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _timed(pipe: Any, prompts: list[str], repeats: int, **opts: Any) -> tuple[float, list[Any]]:
    """Median tokens/s over ``repeats`` passes over the prompts, and the last pass's results."""
    import statistics
    import time

    rates, results = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        results = [pipe.generate(p, **opts) for p in prompts]
        rates.append(sum(len(r.token_ids) for r in results) / (time.perf_counter() - start))
    return statistics.median(rates), results


def shown(text: str) -> str:
    """The text with long runs of blank lines folded (tiny models love to emit them)."""
    return re.sub(r"\n{4,}", lambda m: f"\n\n[... {len(m.group()) - 2} more newlines]\n", text)


if __name__ == "__main__":
    sys.exit(run_cli(main))
