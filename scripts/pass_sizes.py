"""What a pass of a new size costs: steady pass times and the CPU plugin's re-planning, per model.

    python scripts/pass_sizes.py PIPELINE [--sizes 1,2,5] [--context 100] [--runs 6] [--repeats 8]

For each model of the pipeline and each size t, it runs passes of one size in a row after a run
of another size and prints the median time of the first pass of the run (it follows a pass of
another size) and of the rest (steady), so the difference is what changing the pass size costs.
Raw OpenVINO infer requests, the decode loop's feeding (zero-copy inputs, start_async + wait).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import openvino as ov


class Model:
    def __init__(self, core: ov.Core, path: Path) -> None:
        compiled = core.compile_model(path / "openvino_model.xml", "CPU")
        self.request = compiled.create_infer_request()
        self.names = {i.any_name for i in compiled.inputs}
        self.position = 0

    def feed(self, t: int) -> float:
        p = self.position
        inputs = {
            "input_ids": np.full((1, t), 5, np.int64),
            "attention_mask": np.ones((1, p + t), np.int64),
            "position_ids": np.arange(p, p + t, dtype=np.int64).reshape(1, t),
            "beam_idx": np.zeros(1, np.int32),
        }
        for name, array in inputs.items():
            if name in self.names:
                self.request.set_tensor(name, ov.Tensor(array, shared_memory=True))
        start = time.perf_counter()
        self.request.start_async()
        self.request.wait()
        self.position += t
        return time.perf_counter() - start

    def reset(self, context: int) -> None:
        self.request.reset_state()
        self.position = 0
        self.feed(context)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pipeline", type=Path)
    p.add_argument("--sizes", default="1,2,5")
    p.add_argument("--context", type=int, default=100)
    p.add_argument("--runs", type=int, default=6, help="passes of one size in a row")
    p.add_argument("--repeats", type=int, default=8)
    args = p.parse_args()
    manifest = json.loads((args.pipeline / "ov_spec.json").read_text())
    sizes = [int(x) for x in args.sizes.split(",")]
    core = ov.Core()
    print("| model | pass tokens | after another size (ms) | steady (ms) | re-planning (ms) |")
    print("|---|---:|---:|---:|---:|")
    for entry in manifest["models"]:
        model = Model(core, args.pipeline / entry["path"])
        model.reset(args.context)
        first: dict[int, list[float]] = {t: [] for t in sizes}
        rest: dict[int, list[float]] = {t: [] for t in sizes}
        for _ in range(args.repeats):
            for i, t in enumerate(sizes):
                model.feed(sizes[i - 1])  # the pass before is of another size
                run = [model.feed(t) for _ in range(args.runs)]
                first[t].append(run[0])
                rest[t] += run[1:]
            model.reset(args.context)  # keep the context near --context
        for t in sizes:
            a, b = statistics.median(first[t]) * 1e3, statistics.median(rest[t]) * 1e3
            print(f"| {entry['name']} | {t} | {a:.2f} | {b:.2f} | {a - b:+.2f} |", flush=True)


if __name__ == "__main__":
    main()
