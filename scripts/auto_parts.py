"""The default ("auto") against its parts, interleaved in one process.

    python scripts/auto_parts.py PIPELINE [--rounds 4] [--prompts FILE | --chat] [--max-new-tokens 48]

Modes: target-only; prompt lookup alone; each draft model alone; each draft model or prompt
lookup per pass (the hybrid pair); and the default, which also chooses the chain (which draft
models to use) per request. All run under ``draft_tokens="auto"`` on one loaded pipeline, so
they share its cost model as the default would. Each mode is warmed up on the prompts twice;
then, per round and prompt, every mode generates once, in alternating order, so a slow spell of
a shared machine hits all of them alike. Prints per mode the median tokens/s, the median over
rounds of its ratio to target-only, and what it did: target passes, passes drafted by prompt
lookup and by any drafter, passes its guard sent to decoding alone, and the chains it chose.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _interleave import add_prompt_arguments, interleaved_rates, prompts_of  # scripts/ is on sys.path

import ov_spec


def modes_of(names: list[str]) -> dict[str, dict[str, Any]]:
    """The modes to compare for a pipeline whose models are ``names`` (target first)."""
    target, drafts = names[0], names[1:]
    modes: dict[str, dict[str, Any]] = {
        "target-only": {"use_draft": False},
        "lookup": {"models": [target], "ngram": True},
    }
    for d in drafts:
        modes[d] = {"models": [target, d], "ngram": False}
        modes[f"{d}|lookup"] = {"models": [target, d]}
    modes["default"] = {}
    return modes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pipeline", type=Path)
    add_prompt_arguments(p, rounds=4)
    args = p.parse_args()
    prompts = prompts_of(args)
    pipe = ov_spec.load(args.pipeline)
    modes = modes_of(pipe.manifest.names())
    counts = {m: Counter() for m in modes}
    chains: dict[str, Counter] = {m: Counter() for m in modes}

    def run(mode: str, prompt: str, record: bool) -> tuple[int, float]:
        start = time.perf_counter()
        result = pipe.generate(prompt, max_new_tokens=args.max_new_tokens, chat=args.chat, **modes[mode])
        seconds = time.perf_counter() - start
        m = result.metrics
        if record:
            c = counts[mode]
            c["passes"] += m.target_passes
            if m.levels:
                c["drafting"] += sum(n for k, n in m.levels[0].draft_lengths.items() if k > 0)
            if m.auto is not None:
                c["lookup"] += m.auto.lookup_passes
                c["guarded"] += m.auto.guarded
                chains[mode]["+".join(m.auto.chain)] += 1
        return m.generated_tokens, seconds

    rates = interleaved_rates(list(modes), prompts, run, args.rounds)
    base = rates["target-only"]
    print(
        "| mode | tok/s (median) | / target-only (median, min-max of rounds) | passes | lookup | drafting | guarded | chains |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for mode in modes:
        ratios = [a / b for a, b in zip(rates[mode], base)]
        c = counts[mode]
        chain = ", ".join(f"{k} x{n}" for k, n in chains[mode].most_common())
        print(
            f"| {mode} | {statistics.median(rates[mode]):.1f} | {statistics.median(ratios):.2f}x "
            f"({min(ratios):.2f}-{max(ratios):.2f}) | {c['passes']} | {c['lookup']} | {c['drafting']} "
            f"| {c['guarded']} | {chain} |"
        )


if __name__ == "__main__":
    main()
