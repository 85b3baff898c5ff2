"""Held-out quality numbers: perplexity, and how often the draft's greedy pick is the target's."""

from __future__ import annotations

import math
from typing import Any


def heldout_windows(tokens, seq_len: int, count: int):
    """Up to ``count`` consecutive non-overlapping ``[count, seq_len]`` windows of held-out tokens."""
    n = min(count, tokens.numel() // seq_len)
    assert n > 0, "held-out text is shorter than one evaluation window"
    return tokens[: n * seq_len].reshape(n, seq_len).long()


def model_logits(model, windows, batch_size: int = 4):
    """float32 logits ``[N, T, V]`` (full precision: these numbers go in the report)."""
    import torch

    with torch.no_grad():
        return torch.cat([model(input_ids=w).logits.float() for w in windows.split(batch_size)])


def perplexity_from_logits(logits, windows) -> float:
    """exp(mean next-token NLL) over every position that has a next token."""
    import torch.nn.functional as F

    vocab = logits.shape[-1]
    nll = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), windows[:, 1:].reshape(-1))
    return math.exp(float(nll))


def _top1_accuracy(logits, windows) -> float:
    return round(float((logits[:, :-1].argmax(-1) == windows[:, 1:]).float().mean()), 4)


def pair_stats(target_logits, draft_logits, windows) -> dict[str, Any]:
    """Perplexities, top-1 accuracies and draft/target greedy agreement on ``windows``.

    Agreement is teacher-forced: at each held-out position, does the draft's argmax equal the
    target's argmax? That is the per-token acceptance rate of greedy speculative decoding.
    """
    agreement = (target_logits.argmax(-1) == draft_logits.argmax(-1)).float().mean()
    return {
        "tokens": int(windows.numel()),
        "ppl_target": round(perplexity_from_logits(target_logits, windows), 3),
        "ppl_draft": round(perplexity_from_logits(draft_logits, windows), 3),
        "top1_acc_target": _top1_accuracy(target_logits, windows),
        "top1_acc_draft": _top1_accuracy(draft_logits, windows),
        "agreement": round(float(agreement), 4),
    }


def closeness(reference_logits, candidate_logits) -> dict[str, Any]:
    """How close a candidate's logits are to a reference's (for the widened model)."""
    diff = (reference_logits - candidate_logits).abs()
    same_top1 = reference_logits.argmax(-1) == candidate_logits.argmax(-1)
    return {
        "max_abs_logit_diff": float(diff.max()),
        "mean_abs_logit_diff": float(diff.mean()),
        "top1_agreement": round(float(same_top1.float().mean()), 4),
    }


def evaluate_pair(target, draft, windows) -> dict[str, Any]:
    """:func:`pair_stats` of two models on ``windows``."""
    return pair_stats(model_logits(target, windows), model_logits(draft, windows), windows)
