"""The decode loop's own overhead per iteration, and auto vs fixed draft lengths, side by side.

    python scripts/loop_overhead.py PIPELINE [--rev GIT_REV] [--repeats 5] [--max-new-tokens 48]

Runs target-only, ``draft_tokens="auto"``, fixed k=4 and prompt lookup on held-out-like prompts
(slices of the standard library's source) and prints, per configuration, the median over
repeats of tokens/s and of ``other_s / target passes`` (the loop's own time per iteration:
everything but the models' passes and rollbacks). With ``--rev`` it first runs the same
measurement with the ov_spec of that git revision (exported with ``git archive`` into a temp
folder), in alternation, so "before" and "after" share the machine's conditions.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIGS = {
    "target-only": {"use_draft": False},
    "auto": {"draft_tokens": "auto"},
    "k=4": {"draft_tokens": 4},
    "ngram auto": {"models": ["target"], "ngram": True, "draft_tokens": "auto"},
    "ngram k=4": {"models": ["target"], "ngram": True, "draft_tokens": 4},
}


def measure(folder: str, repeats: int, max_new: int) -> dict:
    import email.message
    import json as json_mod

    import ov_spec

    pipe = ov_spec.load(folder)
    text = inspect.getsource(json_mod.decoder) + inspect.getsource(email.message)
    prompts = [text[i : i + 300] for i in range(0, 6 * 2000, 2000)]
    configs = CONFIGS
    for opts in configs.values():
        for p in prompts[:2]:
            pipe.generate(p, max_new_tokens=max_new, **opts)  # warm-up (and calibration)
    out: dict = {}
    for name, opts in configs.items():
        per_iter, tps = [], []
        for _ in range(repeats):
            other = passes = gen = total = 0.0
            for p in prompts:
                m = pipe.generate(p, max_new_tokens=max_new, **opts).metrics
                other, passes = other + m.other_s, passes + m.target_passes
                gen, total = gen + m.generated_tokens, total + m.total_s
            per_iter.append(other / max(passes, 1) * 1e6)
            tps.append(gen / total)
        out[name] = {
            "tok_s": round(statistics.median(tps), 1),
            "other_us_per_iter": round(statistics.median(per_iter), 1),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pipeline")
    p.add_argument("--rev", help="also measure the ov_spec of this git revision (before/after)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--worker", choices=["old", "new"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(measure(args.pipeline, args.repeats, args.max_new_tokens)))
        return
    root = Path(__file__).resolve().parents[1]
    runs = [("after", None)]
    if args.rev:
        old = Path(tempfile.mkdtemp(prefix="ov_spec_old_"))
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", args.rev, "ov_spec"], check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        runs = [("before", old), ("after", None), ("before", old), ("after", None)]
    for label, path in runs:
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(path) if path else str(root))
        cmd = [sys.executable, __file__, args.pipeline, "--repeats", str(args.repeats),
               "--max-new-tokens", str(args.max_new_tokens), "--worker", "old" if path else "new"]  # fmt: skip
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        print(label, result.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
