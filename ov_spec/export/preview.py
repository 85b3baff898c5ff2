"""Acceptance preview: how often would each draft's guess be accepted? Measured right after export.

Teacher-forced greedy agreement: every model reads the same token chunks in one pass each
(``reset_state`` between chunks) and we compare the argmax at every position. Under greedy
verification a draft token is accepted exactly when it equals the verifier's argmax, so the
agreement rate is a cheap estimate of the acceptance rate ``alpha`` (real decoding feeds the
models their own outputs, so it differs somewhat).

Reported per model:
- ``vs_level_above``: agreement with the model it drafts for (the acceptance-rate estimate);
- ``vs_target``: agreement with the target (level 0);
- ``vs_uncompressed``: agreement with its own uncompressed IR (what compression cost);
- ``text_top1``: how often the argmax is the next token of the text (plain quality);
- ``tau_k4`` / ``tau_k8``: expected tokens per verifier pass with k drafted tokens, from the
  runs of consecutive agreements (bursts count, unlike the independent-acceptance formula).

Plain OpenVINO only (no runtime package, no torch): what this measures is the IR itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ov_spec.errors import UserError

TAU_K = (4, 8)


@dataclass(frozen=True)
class PreviewModel:
    """One exported model to preview."""

    name: str
    level: int
    xml: Path  # the exported (possibly compressed) IR
    uncompressed_xml: Path | None  # its source IR before compression; None if it is uncompressed
    token_map: np.ndarray | None = None  # a pruned head (ov_spec.export.prune): column -> token id


def token_chunks(text: str, tokenizer: Any, chunks: int, tokens: int, max_context: int) -> list[np.ndarray]:
    """Up to ``chunks`` windows of ``tokens`` token ids, spread evenly over the text."""
    # verbose=False: the text is split into chunks below, so its length is no model-limit warning.
    ids = np.asarray(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"], dtype=np.int64)
    tokens = min(tokens, max_context)
    if len(ids) < min(tokens, 16):
        raise UserError(f"preview text has only {len(ids)} tokens; pass a longer --preview-text file")
    tokens = min(tokens, len(ids))
    n = max(1, min(chunks, len(ids) // tokens))
    starts = np.linspace(0, len(ids) - tokens, n).astype(int)
    return [ids[s : s + tokens] for s in starts]


def greedy_tokens(
    xml: Path, chunks: list[np.ndarray], core: Any, config: dict[str, Any]
) -> tuple[np.ndarray, str]:
    """Argmax token at every position of every chunk, ``[chunks, tokens]``; and the precision used."""
    compiled = core.compile_model(str(xml), "CPU", config)
    request = compiled.create_infer_request()
    out = []
    for ids in chunks:
        request.reset_state()  # each chunk starts from an empty KV cache
        n = len(ids)
        request.infer(
            {
                "input_ids": ids[None],
                "attention_mask": np.ones((1, n), dtype=np.int64),
                "position_ids": np.arange(n, dtype=np.int64)[None],
                "beam_idx": np.zeros(1, dtype=np.int32),
            }
        )
        out.append(request.get_tensor("logits").data[0].argmax(-1))
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    precision = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)  # "bf16", "f32", ...
    return np.stack(out), precision


def tau(agree: np.ndarray, k: int) -> float:
    """Mean tokens per verifier pass with draft length k: accepted prefix (<= k) + 1 bonus/correction."""
    rows = []
    for row in agree:
        # run[i] = number of consecutive agreements starting at position i
        run = np.zeros(len(row) + 1, dtype=np.int64)
        for i in range(len(row) - 1, -1, -1):
            run[i] = run[i + 1] + 1 if row[i] else 0
        starts = max(1, len(row) - k)
        rows.append(np.minimum(run[:starts], k) + 1)
    return float(np.concatenate(rows).mean())


def run_preview(
    models: list[PreviewModel],
    chunks: list[np.ndarray],
    text_label: str,
    config: dict[str, Any] | None = None,
    log: Any = None,
) -> dict[str, Any]:
    """Measure the agreements; return the manifest's ``preview`` section."""
    import openvino as ov

    start = time.perf_counter()
    core = ov.Core()
    config = dict(config or {})
    cache: dict[Path, np.ndarray] = {}
    precision = "?"

    def argmax(xml: Path) -> np.ndarray:
        nonlocal precision
        if xml not in cache:
            cache[xml], precision = greedy_tokens(xml, chunks, core, config)
        return cache[xml]

    def tokens_of(m: PreviewModel) -> np.ndarray:
        # A pruned head's argmax is a column of its kept tokens: map it back to token ids.
        found = argmax(m.xml)
        return found if m.token_map is None else m.token_map[found]

    # Position t predicts token t+1 of the text; the last position has no reference.
    text_next = np.stack([c[1:] for c in chunks])
    by_level = sorted(models, key=lambda m: m.level)
    results: dict[str, Any] = {}
    for m in by_level:
        t0 = time.perf_counter()
        mine = tokens_of(m)
        entry: dict[str, Any] = {"text_top1": _rate(mine[:, :-1] == text_next)}
        if m.uncompressed_xml is not None:
            entry["vs_uncompressed"] = _rate(mine == argmax(m.uncompressed_xml))
        if m.level > 0:
            above = tokens_of(by_level[m.level - 1])
            agree = mine == above
            entry["vs_level_above"] = _rate(agree)
            entry["vs_target"] = _rate(mine == tokens_of(by_level[0]))
            for k in TAU_K:
                entry[f"tau_k{k}"] = round(tau(agree, k), 3)
        results[m.name] = entry
        if log is not None:
            log(
                f"preview {m.name}: "
                + ", ".join(f"{k} {v}" for k, v in entry.items())
                + f" ({time.perf_counter() - t0:.1f}s)"
            )
    return {
        "method": "teacher-forced greedy top-1 agreement",
        "text": text_label,
        "chunks": len(chunks),
        "tokens_per_chunk": int(len(chunks[0])),
        "device": "CPU",
        "inference_precision": precision,
        "models": results,
        "seconds": round(time.perf_counter() - start, 1),
    }


def _rate(mask: np.ndarray) -> float:
    return round(float(np.mean(mask)), 4)
