"""Where one pass of a pipeline's model spends its time: ov_spec's Python, OpenVINO, and which ops.

    python scripts/step_profile.py PIPELINE [--tokens 1,5] [--context 100] [--rounds 7] [--passes 100]

For each model of the pipeline, loaded as the runtime loads it (``ov_spec.load``: the paged graph
for a CPU target, the stateful IR with ``mask`` below it), and each pass size in ``--tokens``:

* ``pass``: the wall time of ``model.forward(tokens)`` (what the decoding loop pays), with the
  rollback that keeps the context at ``--context`` tokens;
* ``infer``: of that, the time from ``start_async`` to ``wait`` returning (OpenVINO's own);
* ``op types``: the op types with the largest share of OpenVINO's per-op ``real_time``
  (``PERF_COUNT``), from a second copy of the pipeline loaded with ``PERF_COUNT=YES`` (counting
  is not free, so the first copy is timed without it). Only the shares are reported: the
  per-op times are not additive (on this 2-core CPU their sum exceeded a pass's wall time by up
  to 1.7x, ops of one pass running concurrently).

``pass - infer`` is what ov_spec adds around a pass (input tensors, logits read out and converted,
bookkeeping); ``infer`` is OpenVINO's, which a C++ loop such as openvino.genai's pays as well.
The passes of every model and size are interleaved in rounds; each figure is the median over
rounds of a round's mean, in microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from pathlib import Path

import openvino as ov

import ov_spec
from ov_spec.runtime.stateful import DEFAULT_DRAFT_ROLLBACK, StatefulLM

_inside = [0.0, 0.0]  # seconds from start_async to wait, summed; the last start


def _watch_requests() -> None:
    """Time every InferRequest from ``start_async`` to ``wait`` returning (into ``_inside``)."""
    start_async, wait = ov.InferRequest.start_async, ov.InferRequest.wait

    def timed_start(self, *a, **kw):  # type: ignore[no-untyped-def]
        _inside[1] = time.perf_counter()
        return start_async(self, *a, **kw)

    def timed_wait(self, *a, **kw):  # type: ignore[no-untyped-def]
        out = wait(self, *a, **kw)
        _inside[0] += time.perf_counter() - _inside[1]
        return out

    ov.InferRequest.start_async, ov.InferRequest.wait = timed_start, timed_wait


def timed_passes(model: StatefulLM, context: list[int], tokens: int, passes: int) -> tuple[float, float]:
    """Mean seconds per ``forward`` and per ``start_async``..``wait`` over ``passes`` passes."""
    model.reset()
    model.forward(context)
    feed = [7 + i for i in range(tokens)]
    inside = _inside[0]
    start = time.perf_counter()
    for _ in range(passes):
        model.forward(feed, n_logits=tokens)
        model.rollback(len(context))
    wall = time.perf_counter() - start
    return wall / passes, (_inside[0] - inside) / passes


def op_shares(model: StatefulLM, context: list[int], tokens: int, passes: int = 20) -> Counter:
    """On a PERF_COUNT copy: each op type's share of the summed per-op time of a pass."""
    model.reset()
    model.forward(context)
    feed = [7 + i for i in range(tokens)]
    by_type: Counter = Counter()
    for i in range(passes + 3):
        model.forward(feed, n_logits=tokens)
        request, _, _ = model._request_for(tokens)
        if i >= 3:  # after the first passes of this size (the plugin's re-planning)
            for op in request.get_profiling_info():
                by_type[op.node_type] += op.real_time.total_seconds()
        model.rollback(len(context))
    total = sum(by_type.values()) or 1.0
    return Counter({k: v / total for k, v in by_type.items()})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pipeline", type=Path)
    p.add_argument("--tokens", default="1,5", help="pass sizes, comma-separated")
    p.add_argument("--context", type=int, default=100, help="cached tokens before each pass")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--passes", type=int, default=100, help="passes per model, size and round")
    p.add_argument("--top", type=int, default=3, help="op types to list per model and size")
    p.add_argument(
        "--draft-rollback",
        default=DEFAULT_DRAFT_ROLLBACK,
        help="the drafts' rollback (mask: the stateful IR)",
    )
    args = p.parse_args()
    sizes = [int(t) for t in args.tokens.split(",")]
    _watch_requests()
    context = [5 + i % 1000 for i in range(args.context)]
    pipe = ov_spec.load(args.pipeline, draft_rollback=args.draft_rollback)
    names = pipe.manifest.names()
    counting = ov_spec.load(
        args.pipeline,
        draft_rollback=args.draft_rollback,
        property_overrides=[f"{n}.PERF_COUNT=YES" for n in names],
    )
    cases = [(n, t) for n in names for t in sizes]
    for name, t in cases:  # warm-up: compile caches, the first passes of each size
        timed_passes(pipe.models[name], context, t, 10)
    walls: dict = {c: [] for c in cases}
    infers: dict = {c: [] for c in cases}
    for r in range(args.rounds):
        for name, t in cases if r % 2 == 0 else cases[::-1]:
            wall, infer = timed_passes(pipe.models[name], context, t, args.passes)
            walls[(name, t)].append(wall)
            infers[(name, t)].append(infer)
    print(
        f"{args.pipeline.name}: us per pass after {args.context} cached tokens, median of {args.rounds} rounds"
    )
    print(
        "| model | kind | tokens | pass | infer | ov_spec (pass - infer) | largest op types (share of op time) |"
    )
    print("|---|---|---:|---:|---:|---:|---|")
    for name, t in cases:
        model = pipe.models[name]
        kind = "paged" if model.rollback_mode == "paged" else f"stateful, {model.rollback_mode}"
        wall, infer = statistics.median(walls[(name, t)]), statistics.median(infers[(name, t)])
        shares = op_shares(counting.models[name], context, t)
        top = ", ".join(f"{k} {v:.0%}" for k, v in shares.most_common(args.top))
        print(
            f"| {name} | {kind} | {t} | {wall * 1e6:.0f} | {infer * 1e6:.0f} | {(wall - infer) * 1e6:.0f} | {top} |"
        )


if __name__ == "__main__":
    main()
