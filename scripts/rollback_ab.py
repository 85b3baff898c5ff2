"""Target-only and default decoding under each target rollback, interleaved in one process.

    python scripts/rollback_ab.py PIPELINE [--rollback mask,paged] [--rounds 8] [--prompts FILE | --chat]
    python scripts/rollback_ab.py PIPELINE --rollback paged/one-graph,paged --chat

One pipeline per rollback (``ov_spec.load(PIPELINE, rollback=...)``; ``paged/one-graph``: with
``separate_decode=False``), each warmed up on the
prompts twice; then, per round and prompt, every configuration generates once, in alternating
order, so a slow spell of a shared machine hits all of them alike. Prints each configuration's
median tokens/s and the median over rounds of its ratio to the first rollback's target-only
decoding. Prompts: a JSON list or one per line (default: the first 4 of the shipped set), or
``--chat``: the demo's 4 chat prompts with the chat template.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from _interleave import add_prompt_arguments, interleaved_rates, prompts_of  # scripts/ is on sys.path

import ov_spec
from ov_spec.bench.stats import paired_ratio


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pipeline", type=Path)
    p.add_argument("--rollback", default="mask,paged", help="comma-separated target rollbacks")
    add_prompt_arguments(p, rounds=8)
    args = p.parse_args()
    prompts = prompts_of(args)
    rollbacks = args.rollback.split(",")
    pipes = {
        r: ov_spec.load(
            args.pipeline,
            rollback=r.split("/")[0],
            separate_decode=not r.endswith("/one-graph"),
        )
        for r in rollbacks
    }
    configs = [(r, mode) for r in rollbacks for mode in ("target-only", "default")]

    def run(config: tuple[str, str], prompt: str, timed: bool) -> tuple[int, float]:
        rollback, mode = config
        start = time.perf_counter()
        result = pipes[rollback].generate(
            prompt, max_new_tokens=args.max_new_tokens, chat=args.chat, use_draft=mode == "default"
        )
        return result.metrics.generated_tokens, time.perf_counter() - start

    rates = interleaved_rates(configs, prompts, run, args.rounds)
    base = rates[configs[0]]
    print(
        f"| target rollback | decoding | tok/s (median) | / {configs[0][0]} target-only (median of rounds) |"
    )
    print("|---|---|---:|---:|")
    for config in configs:
        ratio = paired_ratio(rates[config], base)
        print(f"| {config[0]} | {config[1]} | {statistics.median(rates[config]):.1f} | {ratio:.3f}x |")


if __name__ == "__main__":
    main()
