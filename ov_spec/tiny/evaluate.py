"""Held-out quality numbers: perplexity, and how often the draft's greedy pick is the target's."""

from __future__ import annotations

import math
from typing import Any


def heldout_windows(tokens, seq_len: int, count: int):
    """Up to ``count`` consecutive non-overlapping ``[count, seq_len]`` windows of held-out tokens."""
    n = min(count, tokens.numel() // seq_len)
    assert n > 0, "held-out text is shorter than one evaluation window"
    return tokens[: n * seq_len].reshape(n, seq_len).long()


def _logits(model, windows, batch_size: int = 8):
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


def evaluate_pair(target, draft, windows) -> dict[str, Any]:
    """Perplexities, target top-1 accuracy and draft/target greedy agreement on ``windows``.

    Agreement is teacher-forced: at each held-out position, does the draft's argmax equal the
    target's argmax? That is the per-token acceptance rate of greedy speculative decoding.
    """
    t_logits = _logits(target, windows)
    d_logits = _logits(draft, windows)
    t_top = t_logits.argmax(-1)
    d_top = d_logits.argmax(-1)
    return {
        "tokens": int(windows.numel()),
        "ppl_target": round(perplexity_from_logits(t_logits, windows), 3),
        "ppl_draft": round(perplexity_from_logits(d_logits, windows), 3),
        "top1_acc_target": round(float((t_top[:, :-1] == windows[:, 1:]).float().mean()), 4),
        "top1_acc_draft": round(float((d_top[:, :-1] == windows[:, 1:]).float().mean()), 4),
        "agreement": round(float((t_top == d_top).float().mean()), 4),
    }


def compare_models(reference, candidate, windows) -> dict[str, Any]:
    """How close ``candidate``'s logits are to ``reference``'s (for the widened model)."""
    ref = _logits(reference, windows, batch_size=2)
    cand = _logits(candidate, windows, batch_size=2)
    return {
        "tokens": int(windows.numel()),
        "max_abs_logit_diff": float((ref - cand).abs().max()),
        "mean_abs_logit_diff": float((ref - cand).abs().mean()),
        "top1_agreement": round(float((ref.argmax(-1) == cand.argmax(-1)).float().mean()), 4),
        "ppl_reference": round(perplexity_from_logits(ref, windows), 3),
        "ppl_candidate": round(perplexity_from_logits(cand, windows), 3),
    }
