"""Pruned-vocabulary draft heads (FR-Spec, arXiv 2502.14856).

A draft's LM head scores every token of the vocabulary at every step. For a small draft with a
large vocabulary that is a big share of the step: SmolLM2-135M's head is a 49152 x 576 matrix, 28M
of its 135M weights. Most of those rows are for tokens that almost never appear. FR-Spec keeps the
rows of the ``N`` most frequent tokens only, so the draft proposes among them.

It stays lossless because the target verifies every proposal. Greedy: the draft proposes the argmax
among the kept tokens, and the target accepts it or replaces it. Sampling: the draft's ``q`` is zero
outside the kept set, and ``min(1, p/q)`` with residual ``normalize(max(0, p - q))`` stays exact for
any ``q``. What matters is that the runtime compares ``p`` and ``q`` over the same token ids. The
pruned IR's logits have ``N`` columns, and column ``i`` scores token ``kept[i]``. The kept ids are
stored next to the draft as :data:`KEPT_TOKENS_FILE`, and the manifest entry's ``pruned_head``
points at that file. At load, the runtime spreads each row back over the full vocabulary, with -inf
everywhere else (``ov_spec.runtime.stateful.StatefulLM``).

The head is edited in the uncompressed ``ov.Model`` before NNCF runs. The MatMul that makes the
logits gets a new constant holding only the kept rows. With tied embeddings, the input embedding
keeps its own full table: the draft still reads every token the target emits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ov_spec.errors import UserError
from ov_spec.runtime.graph import PASS_THROUGH_OPS

if TYPE_CHECKING:
    import openvino as ov

KEPT_TOKENS_FILE = "kept_tokens.npy"  # int64 token ids, column order of the pruned logits
# Element-wise ops allowed between the LM head's MatMul and the logits output (as in runtime/graph.py).
_COUNT_CHUNK = 200_000  # characters per tokenizer call: long texts in pieces, without length warnings


@dataclass(frozen=True)
class KeptTokens:
    """The token ids a pruned head keeps, and how they were chosen."""

    ids: np.ndarray  # int64, the order of the pruned logits' columns (most frequent first)
    vocab_size: int  # width of the full logits
    counted_on: str  # label of the text the frequencies were counted on
    counted_tokens: int  # tokens in that text
    coverage: float  # share of the counted tokens that are kept

    def manifest_entry(self, path: str) -> dict[str, Any]:
        """The manifest's ``pruned_head`` record; ``path`` is relative to the model's folder."""
        return {
            "token_ids": path,
            "kept": int(self.ids.size),
            "vocab_size": self.vocab_size,
            "counted_on": self.counted_on,
            "counted_tokens": self.counted_tokens,
            "coverage": round(self.coverage, 4),
        }


def count_tokens(text: str, tokenizer: Any, vocab_size: int) -> np.ndarray:
    """How often each token id occurs in ``text`` under ``tokenizer``: an int64 array ``[vocab_size]``."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for start in range(0, len(text), _COUNT_CHUNK):
        # Chunk borders split at most one token each: negligible for frequencies.
        ids = tokenizer(text[start : start + _COUNT_CHUNK], add_special_tokens=False, verbose=False)
        ids = np.asarray(ids["input_ids"], dtype=np.int64)
        counts += np.bincount(ids[ids < vocab_size], minlength=vocab_size)
    return counts


def most_frequent(counts: np.ndarray, n: int, always: Iterable[int] = ()) -> np.ndarray:
    """The ``n`` token ids to keep: ``always`` (special tokens such as EOS), then by count.

    Ties, including tokens the text never shows, are broken by lower id first. A BPE vocabulary
    numbers its merges in the order they were learned, which roughly follows corpus frequency.
    """
    vocab = counts.size
    if not 0 < n <= vocab:
        raise UserError(f"draft vocabulary must be in 1..{vocab} (the model's vocabulary), got {n}")
    forced = [int(t) for t in dict.fromkeys(always) if 0 <= int(t) < vocab]
    # Stable sort on -count keeps ids ascending within equal counts.
    order = np.argsort(-counts, kind="stable")
    rest = order[~np.isin(order, forced)]
    return np.concatenate([np.asarray(forced, dtype=np.int64), rest]).astype(np.int64)[:n]


def choose_kept_tokens(
    text: str,
    label: str,
    tokenizer: Any,
    vocab_size: int,
    n: int,
    always: Iterable[int] = (),
) -> KeptTokens:
    """Count token frequencies on ``text`` and keep the ``n`` most frequent (plus ``always``)."""
    counts = count_tokens(text, tokenizer, vocab_size)
    ids = most_frequent(counts, n, always)
    total = int(counts.sum())
    coverage = float(counts[ids].sum() / total) if total else 0.0
    return KeptTokens(ids, vocab_size, label, total, coverage)


def lm_head(model: ov.Model) -> Any:
    """The MatMul node that computes the ``logits`` output (through converts / soft-capping)."""
    node = model.output("logits").get_node().input_value(0).get_node()
    while node.get_type_name() in PASS_THROUGH_OPS:
        node = node.input_value(0).get_node()
    if node.get_type_name() != "MatMul":
        raise UserError(
            f"cannot prune this draft's vocabulary: its logits come from a {node.get_type_name()}, not the "
            "LM head's MatMul; export it without --draft-vocab"
        )
    return node


def prune_lm_head(model: ov.Model, keep: np.ndarray) -> None:
    """Keep only the rows of ``keep`` in the LM head of an uncompressed ``model`` (in place).

    Afterwards the ``logits`` output has ``len(keep)`` columns; column ``i`` scores token ``keep[i]``.
    The weight must be a float constant, possibly behind a Convert, as in a fresh fp32/fp16
    conversion. Compression (NNCF) runs afterwards, on the smaller head.
    """
    import openvino.opset13 as ops

    head = lm_head(model)
    transpose_b = bool(head.get_attributes().get("transpose_b", False))
    weight_input = head.input(1)
    node = weight_input.get_source_output().get_node()
    while node.get_type_name() == "Convert":  # an fp16 IR: Constant(f16) -> Convert(f32) -> MatMul
        node = node.input_value(0).get_node()
    if node.get_type_name() != "Constant":
        raise UserError(
            f"cannot prune this draft's vocabulary: its LM-head weight is a {node.get_type_name()}, "
            "not a plain constant (already compressed?); export it without --draft-vocab"
        )
    weight = node.get_data()
    axis = 0 if transpose_b else 1  # the vocabulary axis of [V, H] (transpose_b) or [H, V]
    if weight.ndim != 2 or int(np.max(keep)) >= weight.shape[axis]:
        raise UserError(
            f"cannot prune this draft's vocabulary: LM-head weight {list(weight.shape)} does not match "
            f"token ids up to {int(np.max(keep))}; export it without --draft-vocab"
        )
    rows = np.take(weight, np.asarray(keep, dtype=np.int64), axis=axis)
    # A new constant, never the original: with tied embeddings the input Gather shares it. It takes
    # the type the MatMul reads (f32): f16 values are exact in f32, so NNCF and save_model's fp16
    # compression see the very same numbers as before, without a hand-made decompression Convert.
    dtype = weight_input.get_element_type()
    out = ops.constant(np.ascontiguousarray(rows.astype(dtype.to_dtype())), dtype=dtype).output(0)
    out.get_node().set_friendly_name(f"{node.get_friendly_name()}.pruned_{len(keep)}")
    weight_input.replace_source_output(out)
    model.validate_nodes_and_infer_types()
    assert logits_width(model) == len(keep), logits_width(model)


def logits_width(model: ov.Model) -> int:
    """Columns of the ``logits`` output (the vocabulary the head scores)."""
    return int(model.output("logits").get_partial_shape()[-1].get_length())
