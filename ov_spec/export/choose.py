"""``--draft-format auto``: pick a draft's weight format by measured speed rather than by role.

A 4-bit draft is cheaper per step than an 8-bit one, but it agrees less often with the model it
drafts for. Measured on SmolLM2-135M (``scripts/draft_costs.py``): int4 kept 0.69 top-1 agreement
with its fp16 self, int8 kept 0.96. Which one is faster depends on the machine. Only measuring
both tells. For each candidate this module:

1. builds it from the draft's uncompressed conversion, exactly as export does;
2. measures its teacher-forced greedy agreement with the level above on the preview chunks, and
   from the runs of agreement the expected tokens per verifier pass ``tau(k)``
   (:func:`ov_spec.export.preview.tau`);
3. times its decode step and the verifier's pass over ``k + 1`` tokens on this machine's CPU, all
   candidates and the verifier interleaved in one loop (:func:`pass_costs`);
4. predicts tokens per second, ``tau(k) / (k * T_draft + T_verify(k + 1))``, at the best ``k``.

The candidate with the highest prediction is kept. The manifest records every candidate's
figures and the reason for the choice, under ``compression.chosen_by``.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ov_spec.export.compress import CompressionConfig
from ov_spec.export.preview import tau

KS = (1, 2, 4, 8)  # draft lengths the prediction considers
PRUNE_MIN_VOCAB = 32768  # a pruned-head candidate only for vocabularies at least this large
PRUNED_ROWS = 8192  # its LM-head rows (FR-Spec)
_CONTEXT = 64  # tokens of context before the timed steps
_STEPS = 3  # timed passes per model, size and round
_ROUNDS = 6  # round-robin rounds (median over rounds x steps)


@dataclass(frozen=True)
class Candidate:
    """One draft format to try."""

    label: str  # e.g. "int8_asym", "int4_sym, head 8192"
    compression: CompressionConfig
    draft_vocab: int | None = None


def candidates(vocab_size: int) -> list[Candidate]:
    """The formats ``auto`` compares: int8, int4, and int8 with a pruned head on large vocabularies."""
    out = [
        Candidate("int8_asym", CompressionConfig("int8_asym")),
        Candidate("int4_sym", CompressionConfig("int4_sym")),
    ]
    if vocab_size >= PRUNE_MIN_VOCAB:
        out.append(Candidate(f"int8_asym, head {PRUNED_ROWS}", CompressionConfig("int8_asym"), PRUNED_ROWS))
    return out


@dataclass
class Measured:
    """What one candidate measured, and its predicted speed."""

    candidate: Candidate
    agreement: float  # top-1 agreement with the level above
    step_ms: float  # one decode step of the draft
    best_k: int
    tokens_per_s: float  # predicted, at best_k

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.candidate.label,
            "agreement": round(self.agreement, 4),
            "step_ms": round(self.step_ms, 3),
            "best_k": self.best_k,
            "predicted_tokens_per_s": round(self.tokens_per_s, 2),
        }


def predict(agree: np.ndarray, draft_ms: float, verify_ms: dict[int, float]) -> tuple[int, float]:
    """Best draft length and its predicted tokens/s from agreement runs and step costs.

    ``verify_ms[n]``: the verifier's pass over ``n`` tokens. Tokens per pass come from the runs of
    agreement (bursts included), not from the i.i.d. formula.
    """
    best = (KS[0], 0.0)
    for k in KS:
        speed = 1e3 * tau(agree, k) / (k * draft_ms + verify_ms[k + 1])
        if speed > best[1]:
            best = (k, speed)
    return best


def pass_costs(
    jobs: dict[str, tuple[Path, np.ndarray | None, int | None, list[int]]], rounds: int = _ROUNDS
) -> dict[str, dict[int, float]]:
    """Median wall time (ms) of each model's pass over each token count, all timed interleaved.

    ``jobs[key] = (xml, token_map, vocab_size, sizes)``. The models are compiled side by side and
    timed round-robin (order reversed every other round), so a load burst on a shared machine
    hits every figure alike instead of one model's. Each pass follows ``_CONTEXT`` tokens of
    context and is rolled back afterwards; a first untimed pass per shape absorbs re-planning.
    """
    import openvino as ov

    from ov_spec.runtime.graph import keep_last_logits
    from ov_spec.runtime.stateful import StatefulLM, kv_sequence_axis

    core = ov.Core()
    rng = np.random.default_rng(0)
    models, feeds = {}, {}
    for key, (xml, token_map, vocab_size, sizes) in jobs.items():
        model = core.read_model(xml)
        keep_last_logits(model)
        lm = StatefulLM(
            core.compile_model(model, "CPU"),
            kv_sequence_axis(model),
            key,
            rollback="trim",  # exact rollback; timing only rolls back to the context
            token_map=token_map,
            vocab_size=vocab_size if token_map is not None else None,
        )
        limit = lm.vocab_size if token_map is None else int(token_map.size)
        lm.forward(rng.integers(0, limit, size=_CONTEXT).tolist())
        models[key] = lm
        feeds[key] = {n: rng.integers(0, limit, size=n).tolist() for n in sizes}
        for n in sizes:  # warm-up: the first pass of each shape re-plans
            lm.forward(feeds[key][n], n_logits=n)
            lm.rollback(_CONTEXT)
    samples: dict[tuple[str, int], list[float]] = {(k, n): [] for k in jobs for n in feeds[k]}
    keys = list(jobs)
    for r in range(rounds):
        for key in keys if r % 2 == 0 else keys[::-1]:
            lm = models[key]
            for n, feed in feeds[key].items():
                for _ in range(_STEPS):
                    start = time.perf_counter()
                    lm.forward(feed, n_logits=n)
                    samples[(key, n)].append(time.perf_counter() - start)
                    lm.rollback(_CONTEXT)
    return {k: {n: 1e3 * statistics.median(samples[(k, n)]) for n in feeds[k]} for k in jobs}


def verifier_sizes() -> list[int]:
    """Token counts of the verifier passes the prediction needs (1 for target-only decoding)."""
    return sorted({1, *(k + 1 for k in KS)})


def reason(measured: list[Measured], target_only_tps: float) -> str:
    """One line: the winner's prediction against the others and against target-only decoding."""
    ranked = sorted(measured, key=lambda m: -m.tokens_per_s)
    best = ranked[0]

    def describe(m: Measured) -> str:
        return (
            f"{m.candidate.label} {m.tokens_per_s / target_only_tps:.2f}x "
            f"(agreement {m.agreement:.2f}, {m.step_ms:.1f} ms/step, k={m.best_k})"
        )

    others = "; ".join(describe(m) for m in ranked[1:])
    text = f"predicted {describe(best)} of target-only" + (f", vs {others}" if others else "")
    if best.tokens_per_s < target_only_tps:
        text += "; no candidate is predicted to beat target-only decoding here"
    return text
