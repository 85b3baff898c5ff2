"""Bounds and choices shared by the runtime, the CLIs and the benchmark: one definition each.

Draft length rules (``draft_tokens`` in ``generate``, ``--draft-tokens`` in ``ov_spec.generate``,
``--k`` / ``draft_tokens`` in ``ov_spec.bench``):

* ``"auto"`` (the default): the measured cost model picks the draft length of every level on
  every iteration, from 0 (no speculation at that level: the verifier decodes alone) up to
  :data:`MAX_DRAFT_TOKENS`, and which levels of a cascade to use;
* a whole number in ``1..MAX_DRAFT_TOKENS``: that fixed length (the starting length with
  ``adaptive``).

An explicit 0 is rejected everywhere: target-only decoding is ``use_draft=False`` /
``--no-draft`` (the benchmark's ``target`` chain), and "maybe 0" is what ``"auto"`` means.
"""

from __future__ import annotations

from collections.abc import Sequence

from ov_spec.errors import UserError

# Models on NPU are compiled for at most MAX_DRAFT_TOKENS + 1 tokens per verification pass
# (NPUW_LLM_MAX_GENERATION_TOKEN_LEN), so no level may draft more than this.
MAX_DRAFT_TOKENS = 16
AUTO = "auto"
# KV-cache rollback strategies: trim and mask over the stateful IR (ov_spec.runtime.stateful, where
# the default lives: DEFAULT_ROLLBACK), paged over the paged-attention graph (ov_spec.runtime.paged).
PAGED = "paged"
STATEFUL_ROLLBACKS = ("trim", "mask")
ROLLBACK_MODES = (*STATEFUL_ROLLBACKS, PAGED)
# What load() and the CLIs accept: "auto" picks one of ROLLBACK_MODES per model at load
# (ov_spec.runtime.stateful.choose_rollback).
ROLLBACK_CHOICES = (AUTO, *ROLLBACK_MODES)
DraftTokens = int | str | Sequence[int | str]


def check_draft_length(k: int | str, allow_auto: bool = True) -> int | str:
    """Validate one draft length; return it (an int, or ``"auto"``). Raises :class:`UserError`."""
    if isinstance(k, str):
        if allow_auto and k.strip().lower() == AUTO:
            return AUTO
        if k.strip().lstrip("-").isdigit():
            k = int(k)
        else:
            raise UserError(
                f"draft_tokens must be 'auto' or a whole number in 1..{MAX_DRAFT_TOKENS}, got {k!r}"
            )
    if isinstance(k, bool) or not isinstance(k, (int, float)) or int(k) != k:
        raise UserError(f"draft_tokens must be a whole number in 1..{MAX_DRAFT_TOKENS}, got {k!r}")
    k = int(k)
    if k == 0:
        raise UserError(
            "draft_tokens 0 is not a draft length: for target-only decoding pass use_draft=False "
            "(--no-draft; the bench's 'target' chain), or 'auto' to let the cost model choose, 0 included"
        )
    if not 1 <= k <= MAX_DRAFT_TOKENS:
        raise UserError(
            f"draft_tokens must be in 1..{MAX_DRAFT_TOKENS} (models on NPU are compiled for "
            f"{MAX_DRAFT_TOKENS + 1} tokens per pass), got {k}"
        )
    return k


def check_draft_tokens(value: DraftTokens) -> list[int | str] | int | str:
    """Validate ``draft_tokens``: ``"auto"``, one length, or one per verifying level."""
    if isinstance(value, (str, int, float)) or not isinstance(value, Sequence):
        return check_draft_length(value)  # type: ignore[arg-type]
    items = list(value)
    if not items:
        raise UserError("draft_tokens lists no lengths; pass 'auto', one length, or one per verifying level")
    return [check_draft_length(k) for k in items]
