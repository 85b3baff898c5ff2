"""How exact is speculative decoding on real shapes? Three measurements, each printed as Markdown.

``passes``: how far the logits of one k-token pass are from k single-token passes, per
KV-cache precision and inference precision. Verification scores k + 1 tokens in one pass while
target-only decoding feeds them one by one, so this difference is the noise floor under which a
near-tie can resolve differently::

    python scripts/numerics.py passes PIPELINE [PIPELINE ...] [--models target,draft1]

``exactness``: greedy speculative output vs target-only output on chat prompts, per
configuration (a devices file and a rollback strategy), side by side in one process: how many
outputs are equal, the top-2 logit gap of the target where each one first diverged, the
acceptance rate and tokens/s::

    python scripts/numerics.py exactness PIPELINE --config default: \\
        --config strict:examples/devices-strict.toml [--rollback trim,mask] [--long]

``rollback-cost``: the time of one rollback (2 of 5 tokens) and of the pass after it, per
KV-cache precision, context length and strategy::

    python scripts/numerics.py rollback-cost PIPELINE [--kv u8,f16] [--contexts 64,1400]

``memory``: peak resident memory of loading the pipeline with a devices file and generating
from a long prompt, one fresh process per configuration::

    python scripts/numerics.py memory PIPELINE --config default: --config strict:examples/devices-strict.toml
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ov_spec.errors import UserError
from ov_spec.runtime.limits import check_draft_length

KV_PRECISIONS = ("u8", "f16", "f32")


def _draft_length(text: str) -> int | str:
    try:
        return check_draft_length(text)
    except UserError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


INFERENCE_PRECISIONS = ("bf16", "f32")  # bf16 is the CPU plugin's default on AVX512-BF16 CPUs
# Chat prompts for the exactness runs: questions, instructions, rewriting, code.
CHAT_PROMPTS = (
    "What is the difference between a list and a tuple in Python?",
    "Give me three tips for sleeping better.",
    "Write a short poem about the sea at night.",
    "Explain what a hash table is to a beginner.",
    "Rewrite this sentence in the past tense: The keeper writes down the wind and counts the ships.",
    "What are the main causes of the seasons on Earth?",
    "Write a Python function that checks whether a string is a palindrome.",
    "Summarize the plot of a detective story in three sentences.",
    "How do I make a simple loaf of bread?",
    "What is photosynthesis?",
    "List five countries in South America and their capitals.",
    "Why is the sky blue?",
    "Correct the spelling: Yesterday we whent to the libary to borow books.",
    "Give an example of a SQL query that counts rows per group.",
    "What should I pack for a weekend hiking trip?",
    "Explain recursion with a small example.",
)
LONG_PROMPT_CHARS = 6000  # about 1500 tokens of English documentation


# -- passes --------------------------------------------------------------------------------------
def single_steps(lm: Any, prefix: list[int], tokens: list[int]) -> np.ndarray:
    """Target-only decoding's logits: the prefix in one prefill, then one token per pass."""
    lm.reset()
    lm.forward(prefix)
    return np.stack([lm.forward([t])[0] for t in tokens])


def one_pass(lm: Any, prefix: list[int], tokens: list[int]) -> np.ndarray:
    """The logits of one pass over ``tokens`` after the prefix (a verification pass)."""
    lm.reset()
    lm.forward(prefix)
    return lm.forward(tokens, n_logits=len(tokens))


def speculative_pattern(
    lm: Any, prefix: list[int], tokens: list[int], k: int, keep: int, mode: str
) -> np.ndarray:
    """The logits speculative decoding computes for ``tokens``: passes of ``k`` tokens, each
    followed by a rollback of the ``k - keep`` rejected ones with rollback ``mode``.

    Row ``i`` scores the token after ``tokens[i]``, taken from the pass in which ``tokens[i]``
    was kept, so it compares with :func:`single_steps` row for row.
    """
    lm.rollback_mode = mode  # a measurement of the strategy itself, on one compiled model
    lm.reset()
    lm.forward(prefix)
    rows = []
    pos = 0
    while pos < len(tokens):
        chunk = tokens[pos : pos + k]
        logits = lm.forward(chunk, n_logits=len(chunk))
        kept = min(keep, len(chunk))
        rows.extend(logits[:kept])
        lm.rollback(len(prefix) + pos + kept)
        pos += kept
    return np.stack(rows)


def sample_token_windows(
    tokenizer: Any, count: int, prefix_len: int, length: int
) -> list[tuple[list[int], list[int]]]:
    """``count`` (prefix, next ``length`` tokens) windows spread over the sample text."""
    from ov_spec.export.sample_text import SAMPLE_TEXT

    ids = tokenizer.encode(SAMPLE_TEXT)
    span = prefix_len + length
    step = max((len(ids) - span) // max(count - 1, 1), 1)
    starts = range(0, step * count, step)
    return [(ids[s : s + prefix_len], ids[s + prefix_len : s + span]) for s in starts][:count]


def run_passes(args: argparse.Namespace) -> None:
    import ov_spec

    rows = []
    grid = (
        [tuple(item.split(":")) for item in args.grid.split(",")]
        if args.grid
        else list(itertools.product(INFERENCE_PRECISIONS, KV_PRECISIONS, args.dq.split(",")))
    )
    for folder in args.pipelines:
        for name in args.models.split(","):
            for inference, kv, dq in grid:
                props = [f"{name}.KV_CACHE_PRECISION={kv}", f"{name}.INFERENCE_PRECISION_HINT={inference}"]
                if dq != "default":
                    props.append(f"{name}.DYNAMIC_QUANTIZATION_GROUP_SIZE={dq}")
                pipe = ov_spec.load(folder, property_overrides=props)
                lm = pipe.models[name]
                windows = sample_token_windows(pipe.tokenizer, args.windows, args.prefix_tokens, args.length)
                worst = {"pass": 0.0, "trim": 0.0, "mask": 0.0}
                for prefix, tokens in windows:
                    ref = single_steps(lm, prefix, tokens)
                    got = one_pass(lm, prefix, tokens[: args.k])
                    worst["pass"] = max(worst["pass"], float(np.abs(got - ref[: args.k]).max()))
                    for mode in ("trim", "mask"):
                        got = speculative_pattern(lm, prefix, tokens, args.k, args.keep, mode)
                        worst[mode] = max(worst[mode], float(np.abs(got - ref).max()))
                label = _model_label(pipe, name)
                rows.append((label, inference, kv, dq, worst))
                print(f"{label} {inference} {kv} dq={dq}: {worst}", file=sys.stderr, flush=True)
                del pipe, lm
    print(
        f"\nMax |logit difference| from target-only decoding (prefill, then one token per pass), "
        f"{args.windows} windows of the sample text, {args.prefix_tokens}-token prefix: one {args.k}-token "
        f"pass; and the speculative pattern over {args.length} tokens ({args.k}-token passes, "
        f"{args.k - args.keep} rejected and rolled back each time)\n"
    )
    print(
        f"| model | inference | KV cache | dynamic quantization | one {args.k}-token pass | "
        "speculative, trim | speculative, mask |"
    )
    print("|---|---|---|---|---:|---:|---:|")
    for label, inference, kv, dq, worst in rows:
        dq_text = "default" if dq == "default" else f"group size {dq}"
        print(
            f"| {label} | {inference} | {kv} | {dq_text} | {worst['pass']:.2g} | {worst['trim']:.2g} | "
            f"{worst['mask']:.2g} |"
        )


def _model_label(pipe: Any, name: str) -> str:
    entry = pipe.manifest.model(name)
    return f"{pipe.folder.name}/{name} ({entry.num_parameters / 1e6:.0f}M, {entry.weight_format})"


# -- exactness -----------------------------------------------------------------------------------
def long_prompts(count: int) -> list[str]:
    """Requests to summarize ~1500 tokens of the Python docs (``pydoc_data``, on every Python)."""
    from pydoc_data.topics import topics

    texts = sorted((t for t in topics.values() if len(t) > LONG_PROMPT_CHARS), key=len)
    chosen = texts[:: max(len(texts) // count, 1)][:count]
    prompts = []
    for text in chosen:
        cut = text[:LONG_PROMPT_CHARS]
        cut = cut[: cut.rfind("\n\n")] if "\n\n" in cut[1000:] else cut
        prompts.append("Summarize the following documentation in a few sentences.\n\n" + cut.strip())
    return prompts


def first_divergence(a: list[int], b: list[int]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def top2_gap(pipe: Any, sequence: list[int]) -> float:
    """The target's top-1 minus top-2 logit after ``sequence`` (one plain pass, no speculation)."""
    lm = pipe.models[pipe.manifest.names()[0]]
    lm.reset()
    row = lm.forward(sequence)[0]
    top = np.sort(row)[-2:]
    return float(top[1] - top[0])


def _parse_configs(items: list[str]) -> list[tuple[str, str | None]]:
    configs = []
    for item in items:
        label, _, path = item.partition(":")
        configs.append((label, path or None))
    return configs


def run_exactness(args: argparse.Namespace) -> None:
    import ov_spec

    prompts = long_prompts(args.num_prompts) if args.long else list(CHAT_PROMPTS[: args.num_prompts])
    setups = []
    for label, devices in _parse_configs(args.config):
        for rollback in args.rollback.split(","):
            pipe = ov_spec.load(args.pipeline, devices=devices, rollback=rollback)
            setups.append({"label": f"{label} / {rollback}", "pipe": pipe, "rows": []})
    opts = {"max_new_tokens": args.max_new_tokens, "chat": True}
    spec_opts = {**opts, "draft_tokens": args.k}
    if args.draft:
        spec_opts["models"] = [setups[0]["pipe"].manifest.names()[0], args.draft]
    for setup in setups:  # warm-up
        setup["pipe"].generate(prompts[0], use_draft=False, **opts)
        setup["pipe"].generate(prompts[0], **spec_opts)
    for i, prompt in enumerate(prompts):
        for setup in setups:
            pipe = setup["pipe"]
            base = pipe.generate(prompt, use_draft=False, **opts)
            spec = pipe.generate(prompt, **spec_opts)
            at = first_divergence(spec.token_ids, base.token_ids)
            gap = None if at is None else top2_gap(pipe, base.prompt_token_ids + base.token_ids[:at])
            top = spec.metrics.levels[0]
            setup["rows"].append(
                {
                    "same": at is None,
                    "gap": gap,
                    "at": at,
                    # Decoding speed after the first token: a long prompt's prefill is the same work
                    # in both modes and would hide the difference.
                    "base_tps": 1.0 / max(base.metrics.tpot_s, 1e-9),
                    "spec_tps": 1.0 / max(spec.metrics.tpot_s, 1e-9),
                    "drafted": top.drafted,
                    "accepted": top.accepted,
                    "prompt_tokens": len(base.prompt_token_ids),
                }
            )
            print(f"[{i + 1}/{len(prompts)}] {setup['label']}: same={at is None} gap={gap}", file=sys.stderr)
    n_tokens = statistics.median(r["prompt_tokens"] for r in setups[0]["rows"])
    print(
        f"\n{len(prompts)} {'long' if args.long else 'chat'} prompts (median {n_tokens:.0f} prompt tokens), "
        f"greedy, {args.max_new_tokens} new tokens, k={args.k}\n"
    )
    print(
        "| configuration | = target-only | top-2 gap at divergences | acceptance | target-only tok/s* | "
        "speculative tok/s* | ratio |"
    )
    print("|---|---:|---|---:|---:|---:|---:|")
    for setup in setups:
        rows = setup["rows"]
        same = sum(r["same"] for r in rows)
        gaps = sorted(r["gap"] for r in rows if r["gap"] is not None)
        gap_text = ", ".join(f"{g:.3f}" for g in gaps) or "-"
        acc = sum(r["accepted"] for r in rows) / max(sum(r["drafted"] for r in rows), 1)
        base_tps = statistics.median(r["base_tps"] for r in rows)
        spec_tps = statistics.median(r["spec_tps"] for r in rows)
        print(
            f"| {setup['label']} | {same}/{len(rows)} | {gap_text} | {acc:.1%} | {base_tps:.1f} | "
            f"{spec_tps:.1f} | {spec_tps / base_tps:.2f}x |"
        )
    print("\n*decoding speed after the first token (1 / time per output token), median over prompts")
    if args.json:
        Path(args.json).write_text(
            json.dumps([{"label": s["label"], "rows": s["rows"]} for s in setups], indent=2) + "\n"
        )


# -- rollback cost -------------------------------------------------------------------------------
def run_rollback_cost(args: argparse.Namespace) -> None:
    """Median time of one rollback (2 of 5 tokens) and of the 5-token pass after it, per KV-cache
    precision, context length and rollback strategy, on the target."""
    import ov_spec
    from ov_spec.export.sample_text import SAMPLE_TEXT

    print("| KV cache | context | rollback | one rollback (ms) | 5-token pass after it (ms) |")
    print("|---|---:|---|---:|---:|")
    for kv in args.kv.split(","):
        pipe = ov_spec.load(args.pipeline, property_overrides=[f"target.KV_CACHE_PRECISION={kv}"])
        lm = pipe.models[pipe.manifest.names()[0]]
        ids = pipe.tokenizer.encode(SAMPLE_TEXT * 8)
        for ctx in (int(c) for c in args.contexts.split(",")):
            for mode in ("trim", "mask"):
                lm.rollback_mode = mode  # the strategy itself, on one compiled model
                lm.reset()
                lm.forward(ids[:ctx])
                pos, rollbacks, passes = ctx, [], []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    lm.forward(ids[pos : pos + 5], n_logits=5)
                    passes.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    lm.rollback(pos + 3)
                    rollbacks.append(time.perf_counter() - start)
                    pos += 3
                print(
                    f"| {kv} | {ctx} | {mode} | {statistics.median(rollbacks) * 1e3:.2f} | "
                    f"{statistics.median(passes[1:]) * 1e3:.1f} |",
                    flush=True,
                )


# -- memory --------------------------------------------------------------------------------------
def run_memory_one(args: argparse.Namespace) -> None:
    """In this process: load, generate once from a long prompt, print peak RSS in MiB as JSON."""
    import ov_spec

    start = time.perf_counter()
    pipe = ov_spec.load(args.pipeline, devices=args.devices or None)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pipe.generate(long_prompts(1)[0], max_new_tokens=args.max_new_tokens, chat=True, draft_tokens=4)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"loaded_mib": loaded, "peak_mib": peak, "seconds": time.perf_counter() - start}))


def run_memory(args: argparse.Namespace) -> None:
    print("| configuration | peak RSS after load (MiB) | peak RSS after a ~1500-token request (MiB) |")
    print("|---|---:|---:|")
    for label, devices in _parse_configs(args.config):
        cmd = [
            sys.executable,
            __file__,
            "memory-one",
            str(args.pipeline),
            "--max-new-tokens",
            str(args.max_new_tokens),
        ]
        if devices:
            cmd += ["--devices", devices]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        data = json.loads(out)
        print(f"| {label} | {data['loaded_mib']:.0f} | {data['peak_mib']:.0f} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("passes", help="one k-token pass vs k single-token passes")
    p.add_argument("pipelines", nargs="+", type=Path)
    p.add_argument("--models", default="target", help="comma-separated model names (default: target)")
    p.add_argument("--k", type=int, default=5, help="tokens per pass (default 5: k=4 plus the bonus)")
    p.add_argument("--keep", type=int, default=3, help="tokens kept per pass in the speculative pattern")
    p.add_argument("--length", type=int, default=30, help="tokens decoded in the speculative pattern")
    p.add_argument("--prefix-tokens", type=int, default=60)
    p.add_argument("--windows", type=int, default=4)
    p.add_argument(
        "--dq",
        default="default,0",
        help="DYNAMIC_QUANTIZATION_GROUP_SIZE values, comma-separated ('default': the plugin's choice)",
    )
    p.add_argument(
        "--grid",
        help="only these INFERENCE:KV:DQ triples, comma-separated (e.g. bf16:u8:default,f32:f32:0)",
    )
    p.set_defaults(run=run_passes)
    e = sub.add_parser("exactness", help="greedy speculative vs target-only, per configuration")
    e.add_argument("pipeline", type=Path)
    e.add_argument("--config", action="append", default=[], help="LABEL:DEVICES_FILE (empty file: defaults)")
    e.add_argument("--rollback", default="trim", help="comma-separated: trim,mask")
    e.add_argument("--draft", help="the draft model to use (default: the whole chain)")
    e.add_argument("--num-prompts", type=int, default=16)
    e.add_argument("--max-new-tokens", type=int, default=64)
    e.add_argument("--k", type=_draft_length, default=4, help="draft length, or auto (the default drafter)")
    e.add_argument("--long", action="store_true", help="~1500-token summarization prompts")
    e.add_argument("--json", help="also write the per-prompt rows to this file")
    e.set_defaults(run=run_exactness)
    m = sub.add_parser("memory", help="peak RSS per configuration, one process each")
    m.add_argument("pipeline", type=Path)
    m.add_argument("--config", action="append", default=[])
    m.add_argument("--max-new-tokens", type=int, default=32)
    m.set_defaults(run=run_memory)
    r = sub.add_parser("rollback-cost", help="time of one rollback per KV cache, context and strategy")
    r.add_argument("pipeline", type=Path)
    r.add_argument("--kv", default="u8,f16")
    r.add_argument("--contexts", default="64,1400")
    r.add_argument("--repeats", type=int, default=12)
    r.set_defaults(run=run_rollback_cost)
    one = sub.add_parser("memory-one")
    one.add_argument("pipeline", type=Path)
    one.add_argument("--devices")
    one.add_argument("--max-new-tokens", type=int, default=32)
    one.set_defaults(run=run_memory_one)
    args = parser.parse_args(argv)
    if args.command in ("exactness", "memory") and not args.config:
        args.config = ["default:"]
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
