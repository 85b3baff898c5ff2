"""What one target pass costs: the stateful IR ov_spec runs against the same IR transformed for
paged attention, as openvino.genai's continuous-batching pipeline runs it.

    python scripts/paged_vs_stateful.py PIPELINE [--tokens 1,5] [--context 200] [--repeats 6]

Both models are compiled on CPU with the same properties and fed random tokens after a prompt of
``--context`` tokens; passes of each engine alternate in blocks of 30, and the median per pass is
printed per token count. The paged model gets its own block table (one sequence, blocks in
order), so this times the model alone, without either engine's loop around it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openvino as ov
from openvino._offline_transformations import paged_attention_transformation

Run = Callable[[list[int], int], None]


def stateful(core: ov.Core, xml: Path, props: dict) -> Run:
    request = core.compile_model(xml, "CPU", props).create_infer_request()

    def run(ids: list[int], past: int) -> None:
        if past == 0:
            request.reset_state()
        n = len(ids)
        request.infer(
            {
                "input_ids": np.array([ids], dtype=np.int64),
                "attention_mask": np.ones((1, past + n), dtype=np.int64),
                "position_ids": np.arange(past, past + n, dtype=np.int64)[None],
                "beam_idx": np.zeros(1, dtype=np.int32),
            }
        )

    return run


def paged(core: ov.Core, xml: Path, props: dict, blocks: int) -> Run:
    model = core.read_model(xml)
    paged_attention_transformation(model)
    compiled = core.compile_model(model, "CPU", props)
    request = compiled.create_infer_request()
    for port in compiled.inputs:
        if "cache" in port.any_name:  # [blocks, kv heads, block size (+ scales), head size]
            shape = port.get_partial_shape()
            dims = [blocks] + [shape[i].get_length() for i in range(1, 4)]
            request.set_tensor(port.any_name, ov.Tensor(port.get_element_type(), dims))
    # The value cache's third axis is the block size (the key cache's may carry u8 scales).
    block = compiled.input("value_cache.0").get_partial_shape()[2].get_length()

    def run(ids: list[int], past: int) -> None:
        n = len(ids)
        total = past + n
        used = -(-total // block)
        request.infer(
            {
                "input_ids": np.array(ids, dtype=np.int64),
                "position_ids": np.arange(past, total, dtype=np.int64),
                "past_lens": np.array([past], dtype=np.int32),
                "subsequence_begins": np.array([0, n], dtype=np.int32),
                "block_indices": np.arange(used, dtype=np.int32),
                "block_indices_begins": np.array([0, used], dtype=np.int32),
                "max_context_len": np.array(total, dtype=np.int32),
            }
        )

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline", type=Path)
    parser.add_argument("--model", default="target", help="sub-folder of the pipeline")
    parser.add_argument("--tokens", default="1,5", help="tokens per pass, comma-separated")
    parser.add_argument("--context", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()
    xml = args.pipeline / args.model / "openvino_model.xml"
    core = ov.Core()
    props = {"PERFORMANCE_HINT": "LATENCY"}
    passes = 30
    counts = [int(t) for t in args.tokens.split(",")]
    blocks = -(-(args.context + passes * max(counts)) // 16) + 1
    engines = {"stateful": stateful(core, xml, props), "paged": paged(core, xml, props, blocks)}
    rng = np.random.default_rng(0)
    prompt = rng.integers(0, 1000, args.context).tolist()
    for n in counts:
        times: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(args.repeats):
            for name, run in engines.items():
                run(prompt, 0)
                for i in range(passes):
                    ids = rng.integers(0, 1000, n).tolist()
                    start = time.perf_counter()
                    run(ids, args.context + i * n)
                    times[name].append(time.perf_counter() - start)
        cells = ", ".join(f"{name} {1e3 * float(np.median(t)):.2f} ms" for name, t in times.items())
        print(f"{n}-token pass after {args.context} tokens: {cells}")


if __name__ == "__main__":
    main()
