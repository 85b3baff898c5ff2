"""What a separate compiled copy for 1-token passes saves a paged CPU target (``separate_decode``).

    python scripts/decode_graph.py PIPELINE [--tokens 5] [--context 100] [--rounds 40]

Loads the pipeline twice in one process (``ov_spec.load(..., separate_decode=False / True)``): its
target on one compiled model, and with its 1-token passes on a second compiled copy. After a ``--context``-token
prefill it runs, interleaved, passes in the patterns decoding produces: 1-token passes alone,
``--tokens``-token passes alone, and the two alternating (a verification pass, then decoding
alone, as when prompt lookup finds nothing every other pass). Each pass is rolled back, so the
context stays put. Prints the median milliseconds per pass of each size, pattern and setup.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import ov_spec

PATTERNS = {"alone": "1111", "verify": "tttt", "alternating": "1t1t", "pairs": "11tt"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pipeline", type=Path)
    p.add_argument("--tokens", type=int, default=5, help="tokens of a verification pass (k + 1)")
    p.add_argument("--context", type=int, default=100)
    p.add_argument("--rounds", type=int, default=40)
    args = p.parse_args()
    pipes = {
        setup: ov_spec.load(args.pipeline, separate_decode=separate)
        for setup, separate in (("one graph", False), ("separate decode", True))
    }
    name = pipes["one graph"].manifest.by_level()[0].name
    setups = {setup: pipe.models[name] for setup, pipe in pipes.items()}
    if not setups["separate decode"].separate_decode:
        raise SystemExit(f"{name} is not on the paged graph (a CPU target with rollback 'auto' or 'paged')")
    prompt = list(range(100, 100 + args.context))
    for lm in setups.values():
        lm.reset()
        lm.forward(prompt)
        lm.forward([5] * args.tokens, n_logits=args.tokens)  # each graph sees both sizes once
        lm.forward([5])
        lm.rollback(args.context)
    times = {(s, pat, t): [] for s in setups for pat in PATTERNS for t in (1, args.tokens)}
    for r in range(args.rounds):
        for setup in list(setups)[:: 1 if r % 2 else -1]:
            lm = setups[setup]
            for pat, spelled in PATTERNS.items():
                for ch in spelled:
                    t = 1 if ch == "1" else args.tokens
                    start = time.perf_counter()
                    lm.forward([5] * t, n_logits=t)
                    times[(setup, pat, t)].append(time.perf_counter() - start)
                    lm.rollback(args.context)
    print(f"{name}: ms per pass after {args.context} tokens, median of {args.rounds} rounds")
    print(f"{'setup':18s} {'pattern':12s} {'1-token':>8s} {f'{args.tokens}-token':>8s}")
    for setup in setups:
        for pat in PATTERNS:
            cells = [times[(setup, pat, t)] for t in (1, args.tokens)]
            shown = [f"{statistics.median(c) * 1e3:8.2f}" if c else f"{'':8s}" for c in cells]
            print(f"{setup:18s} {pat:12s} {shown[0]} {shown[1]}")


if __name__ == "__main__":
    main()
