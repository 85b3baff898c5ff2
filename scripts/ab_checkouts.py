"""Two or more checkouts of ov_spec on one pipeline, alternating, one process per run.

    git worktree add /tmp/old COMMIT
    python scripts/ab_checkouts.py PIPELINE old=/tmp/old,new=. [--procs 3]

Each run is a fresh process with ``PYTHONPATH`` set to its checkout, as a user's process would be:
it loads the pipeline, generates once per prompt with the default (``draft_tokens="auto"``) and
with target-only decoding (a warm-up, as the bench's), then times 2 rounds in which the two
alternate per prompt (the first 4 of the shipped prompts, 48 new tokens;
``_interleave.interleaved_rates``). Checkouts alternate in
order from one process to the next. Prints per run the tokens/s of both modes, the median of the
rounds' default / target-only ratios, and the default's target passes, drafted and accepted
tokens; then per checkout the median ratio over its processes. (What a commit changes in a
process's first passes, such as the warm-up at load, only an A/B across processes can show.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PROMPTS, NEW_TOKENS, ROUNDS = 4, 48, 2
MARK = "AB_RESULT "


def _child(pipeline: str) -> None:
    from _interleave import interleaved_rates  # scripts/ is on sys.path

    import ov_spec
    from ov_spec.bench.config import load_prompts

    prompts = [p.text for p in load_prompts(None, PROMPTS)]
    pipe = ov_spec.load(pipeline)
    modes = {"default": {}, "target": {"use_draft": False}}
    counted = [0, 0, 0]  # the default's target passes, drafted and accepted tokens (timed runs)

    def run(mode: str, prompt: str, timed: bool) -> tuple[int, float]:
        start = time.perf_counter()
        metrics = pipe.generate(prompt, max_new_tokens=NEW_TOKENS, **modes[mode]).metrics
        seconds = time.perf_counter() - start
        if timed and mode == "default":
            level = metrics.levels[0]
            counted[0] += metrics.target_passes
            counted[1] += level.drafted
            counted[2] += level.accepted
        return metrics.generated_tokens, seconds

    rates = interleaved_rates(list(modes), prompts, run, ROUNDS, warmups=1)  # one, as the bench's
    print(MARK + json.dumps({"module": ov_spec.__file__, "passes": counted, **rates}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pipeline")
    p.add_argument("checkouts", help="name=folder,name=folder,...")
    p.add_argument("--procs", type=int, default=3, help="processes per checkout")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(args.pipeline)
        return
    checkouts = [tuple(c.split("=", 1)) for c in args.checkouts.split(",")]
    ratios: dict[str, list[float]] = {name: [] for name, _ in checkouts}
    for i in range(args.procs):
        for name, folder in checkouts if i % 2 == 0 else checkouts[::-1]:
            env = dict(os.environ, PYTHONPATH=os.path.abspath(folder), HF_HUB_OFFLINE="1")
            cmd = [sys.executable, os.path.abspath(__file__), args.pipeline, args.checkouts, "--child"]
            run = subprocess.run(cmd, env=env, capture_output=True, text=True)
            lines = [line for line in run.stdout.splitlines() if line.startswith(MARK)]
            if not lines:
                print(f"{name}: failed\n{run.stderr[-2000:]}")
                continue
            result = json.loads(lines[0][len(MARK) :])
            ratio = statistics.median(a / b for a, b in zip(result["default"], result["target"]))
            ratios[name].append(ratio)
            print(
                f"{name} ({result['module']}): default {[round(x, 1) for x in result['default']]} tok/s, "
                f"target-only {[round(x, 1) for x in result['target']]}, ratio {ratio:.3f}, "
                f"passes/drafted/accepted {result['passes']}",
                flush=True,
            )
    for name, values in ratios.items():
        if values:
            print(
                f"{name}: default / target-only {statistics.median(values):.3f} over {len(values)} processes "
                f"({min(values):.3f}-{max(values):.3f})"
            )


if __name__ == "__main__":
    main()
