"""Speculative decoding against prompt length: ov_spec and openvino.genai, TTFT and TPOT apart.

    python scripts/long_prompts.py PIPELINE [--tokens 100,500,900] [--out out/long-prompts/NAME]

For each length N it writes prompts of N tokens (held-out code from the tiny pair's heldout.txt
when it exists, else the standard library's source; re-tokenized with the pipeline's own
tokenizer), runs ``python -m ov_spec.bench`` on them (target-only, the default ``auto``, fixed
k=4 and prompt lookup k=4 for both engines; genai's prefix cache off), and prints one table:
per length, time to first token, time per output token and tokens/s of ov_spec target-only,
ov_spec's default, genai target-only and genai's best speculative configuration. Extra
arguments go to the bench.
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import subprocess
import sys
from pathlib import Path

import readme_table  # the same choice of rows as the README table (scripts/ is on sys.path)

from ov_spec.bench.stats import paired_ratio


def source_text() -> str:
    from ov_spec.tiny import pair_folder

    heldout = pair_folder("default") / "heldout.txt"
    if heldout.is_file():
        return heldout.read_text(encoding="utf-8")
    import email.message
    import json as json_mod

    return inspect.getsource(json_mod.decoder) + inspect.getsource(email.message)


def prompts_of(tokenizer, text: str, n_tokens: int, count: int) -> list[str]:
    """``count`` slices of ``text`` that each encode to about ``n_tokens`` tokens."""
    ids = tokenizer.encode(text)
    step = max((len(ids) - n_tokens) // max(count, 1), 1)
    out = []
    for i in range(count):
        piece = ids[i * step : i * step + n_tokens]
        out.append(tokenizer.decode(piece))
    return out


def timings(results: dict, case_id: str) -> tuple[float, float]:
    """Median TTFT and TPOT (ms) over the timed records of one case."""
    recs = [r["metrics"] for r in results["records"] if r["case"] == case_id and r["repeat"] >= 0]
    return (
        statistics.median(m["ttft_s"] for m in recs) * 1e3,
        statistics.median(m["tpot_s"] for m in recs) * 1e3,
    )


def rows(n: int, results: dict) -> list[str]:
    picked = readme_table.choices([s for s in results["summaries"] if s["case"]["sampling"] == "greedy"])
    chosen = {
        "ov_spec target-only": picked["target"],
        "ov_spec default": picked["default"],
        "genai target-only": picked["genai_target"],
        "genai best": picked["genai_best"],
    }
    out = []
    for name, s in chosen.items():
        if s is None:
            continue
        ttft, tpot = timings(results, s["case"]["id"])
        out.append(
            f"| {n} | {name} ({s['case']['label']}) | {ttft:.0f} | {tpot:.1f} | {s['tokens_per_s']:.1f} |"
        )
    base, default, genai = (chosen[k] for k in ("ov_spec target-only", "ov_spec default", "genai best"))
    if base and default and genai:
        # medians of the per-repeat ratios (the bench runs them side by side)
        vs_base = paired_ratio(default["per_repeat"], base["per_repeat"]) or 0.0
        vs_genai = paired_ratio(default["per_repeat"], genai["per_repeat"]) or 0.0
        out.append(
            f"| {n} | default / target-only, default / genai best | | | {vs_base:.2f}x, {vs_genai:.2f}x |"
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pipeline")
    p.add_argument("--tokens", default="100,500,900")
    p.add_argument("--out", help="folder for prompts and results (default out/long-prompts/<pipeline name>)")
    p.add_argument("--num-prompts", type=int, default=3)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--repeats", type=int, default=1)
    args, extra = p.parse_known_args()
    import ov_spec

    out = Path(args.out or Path("out/long-prompts") / Path(args.pipeline).name)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = ov_spec.load(args.pipeline).tokenizer
    text = source_text()
    table = ["| prompt tokens | configuration | TTFT ms | TPOT ms | tok/s |", "|---:|---|---:|---:|---:|"]
    for n in (int(x) for x in args.tokens.split(",")):
        prompt_file = out / f"prompts-{n}.json"
        prompt_file.write_text(json.dumps(prompts_of(tokenizer, text, n, args.num_prompts), indent=1))
        cmd = [sys.executable, "-m", "ov_spec.bench", args.pipeline, "--prompts", str(prompt_file),
               "--output", str(out / str(n)), "--chains", "target", "pairs", "cascade", "--k", "4",
               "--num-prompts", str(args.num_prompts), "--max-new-tokens", str(args.max_new_tokens),
               "--repeats", str(args.repeats), "--no-adaptive", "--min-confidence", "none",
               "--genai-confidence", "none", "--genai-backends", "PA", "--no-speed-model",
               "--no-rollback-study", "--no-perplexity", "--no-plots", "--quiet", *extra]  # fmt: skip
        subprocess.run(cmd, check=True)
        table += rows(n, json.loads((out / str(n) / "results.json").read_text()))
        print("\n".join(table), flush=True)
    (out / "table.md").write_text("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
