"""Shared by the side-by-side scripts (``rollback_ab.py``, ``auto_parts.py``, ``ab_checkouts.py``):
their prompt options, and warm-up plus interleaved rounds in one process.

Each configuration is warmed up on the prompts, twice by default (compile caches, the cost
tables, auto's first choices); then, per round and prompt, every configuration generates once,
in alternating order, so a slow spell of a shared machine hits all of them alike.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Hashable, Sequence

from ov_spec.bench.config import load_prompts
from ov_spec.demo import CHAT_PROMPTS

# (configuration, prompt, timed) -> (generated tokens, seconds)
RunFn = Callable[[Hashable, str, bool], tuple[int, float]]


def add_prompt_arguments(p: argparse.ArgumentParser, rounds: int) -> None:
    """``--rounds``, ``--prompts FILE | --chat`` and ``--max-new-tokens``."""
    p.add_argument("--rounds", type=int, default=rounds)
    p.add_argument("--prompts", help="prompt file (default: the first 4 of the shipped set)")
    p.add_argument("--chat", action="store_true", help="the demo's chat prompts, chat template on")
    p.add_argument("--max-new-tokens", type=int, default=48)


def prompts_of(args: argparse.Namespace) -> list[str]:
    """The prompts the options ask for: the demo's chat prompts, or 4 from a file or the shipped set."""
    return list(CHAT_PROMPTS) if args.chat else [x.text for x in load_prompts(args.prompts, 4)]


def interleaved_rates(
    configs: Sequence[Hashable], prompts: Sequence[str], run: RunFn, rounds: int, warmups: int = 2
) -> dict[Hashable, list[float]]:
    """Tokens/s of each configuration per round (tokens / seconds over the prompts), after
    ``warmups`` untimed runs of each configuration on each prompt."""
    for config in configs:  # warm-up
        for prompt in list(prompts) * warmups:
            run(config, prompt, False)
    rates: dict[Hashable, list[float]] = {c: [] for c in configs}
    for r in range(rounds):
        totals = {c: [0, 0.0] for c in configs}
        for i, prompt in enumerate(prompts):
            for config in configs if (r + i) % 2 == 0 else configs[::-1]:
                tokens, seconds = run(config, prompt, True)
                totals[config][0] += tokens
                totals[config][1] += seconds
        for config in configs:
            rates[config].append(totals[config][0] / totals[config][1])
    return rates
