"""Perplexity of a generated continuation under the target model (quality check for lossy modes).

``exp(-mean_i log p_target(x_i | prompt, x_<i))`` over the continuation's tokens, from one forward
pass of the target over prompt + continuation. Lossless speculative decoding gives the target's
own greedy text; MTAD (lossy) trades exactness for joint likelihood, and this is how to see the
trade. Uses the pipeline's compiled target, so call it between generations (it resets the cache).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ov_spec.runtime.sampling import log_softmax
from ov_spec.runtime.stateful import StatefulLM


def continuation_logprobs(
    lm: StatefulLM, prompt_ids: Sequence[int], continuation: Sequence[int]
) -> np.ndarray:
    """``log p(continuation[i] | prompt, continuation[:i])`` for every i, in one pass of ``lm``."""
    if not continuation:
        return np.zeros(0)
    if not prompt_ids:
        raise ValueError("scoring needs at least one prompt token before the continuation")
    lm.reset()
    try:
        # Row i of the last len(continuation) + 1 rows follows position len(prompt) - 1 + i, i.e. it
        # predicts continuation[i]; the final row (after the last token) is not needed.
        logits = lm.forward(list(prompt_ids) + list(continuation), n_logits=len(continuation) + 1)
    finally:
        lm.reset()
    logp = log_softmax(logits[:-1].astype(np.float64))
    return logp[np.arange(len(continuation)), np.asarray(continuation)]


def continuation_perplexity(lm: StatefulLM, prompt_ids: Sequence[int], continuation: Sequence[int]) -> float:
    """Perplexity of ``continuation`` after ``prompt_ids`` under ``lm`` (NaN for an empty one)."""
    logp = continuation_logprobs(lm, prompt_ids, continuation)
    return float(math.exp(-logp.mean())) if logp.size else math.nan
