"""One speculative level: a verifying model, the proposer below it, and its draft length.

:meth:`Speculator.step` is the whole speculative decoding iteration (propose -> score -> verify);
the cache rollback it implies happens in ``StatefulLM.sync`` on the next call. A Speculator is
itself a proposer (:meth:`Speculator.propose`), so a cascade is a chain: the target's proposer is
the self-draft's Speculator, whose proposer is the small draft model (ML-SpecQD).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ov_spec.errors import UserError
from ov_spec.runtime.limits import MAX_DRAFT_TOKENS, check_draft_length
from ov_spec.runtime.proposers import Proposal, Proposer
from ov_spec.runtime.sampling import SamplingParams
from ov_spec.runtime.stateful import StatefulLM
from ov_spec.runtime.verify import Verdict, verify_lossless


@dataclass(frozen=True)
class PassOutcome:
    """What one verification pass did: what a draft-length controller learns from."""

    drafted: int  # tokens the proposer drafted
    accepted: int  # of them, accepted
    seconds: float = 0.0  # the whole iteration: drafting, the pass, verification, bookkeeping
    emitted: int = 0  # tokens the iteration produced (accepted + one)
    verify_s: float = 0.0  # the verifier's own forward pass in it
    width: int | None = None  # draft positions the pass scored (drafted + padding); None: drafted

    @property
    def scored(self) -> int:
        """Draft positions the pass scored."""
        return self.drafted if self.width is None else self.width


@dataclass
class DraftLength:
    """A fixed draft length (or the +2/-1 heuristic); ``"auto"`` is :class:`AutoDraftLength`.

    ``adaptive``: after an iteration where every drafted token was accepted draft two more next
    time, otherwise one fewer (within ``k_min..k_max``). Lengths follow
    :func:`ov_spec.runtime.limits.check_draft_length`: 1..MAX_DRAFT_TOKENS.
    """

    k: int = 4  # tokens drafted per target pass
    adaptive: bool = False
    k_min: int = 1
    k_max: int = MAX_DRAFT_TOKENS

    def __post_init__(self) -> None:
        self.k = int(check_draft_length(self.k, allow_auto=False))
        if not (1 <= self.k_min <= self.k_max <= MAX_DRAFT_TOKENS):
            raise UserError(
                f"draft length bounds must satisfy 1 <= k_min <= k_max <= {MAX_DRAFT_TOKENS}, "
                f"got {self.k_min}, {self.k_max}"
            )
        self._start = self.k

    @property
    def start(self) -> int:
        """The length asked for (``k`` itself moves with ``adaptive``)."""
        return self._start

    def choose(self, sequence: Sequence[int]) -> int:
        """The draft length of the next pass."""
        return self.k

    @property
    def width(self) -> int:
        """Draft positions the next pass scores: a shorter proposal is padded up to it."""
        return self.k

    def update(self, outcome: PassOutcome) -> None:
        if not self.adaptive or outcome.drafted == 0:
            return
        full = outcome.accepted == outcome.drafted
        self.k = min(self.k + 2, self.k_max) if full else max(self.k - 1, self.k_min)

    def reset(self) -> None:
        self.k = self._start


@dataclass
class LevelStats:
    """Counters of one level over a generation (see :mod:`ov_spec.runtime.metrics`)."""

    prefill_passes: int = 0  # passes that only read the prompt (one per request)
    passes: int = 0  # decoding (verification) passes of this level's model
    drafted: int = 0  # tokens its proposer drafted
    accepted: int = 0  # drafted tokens it accepted
    emitted: int = 0  # tokens it produced (accepted + one correction/bonus per pass)
    draft_lengths: dict[int, int] = field(default_factory=dict)  # tokens drafted -> passes


@dataclass
class Step:
    """Tokens one iteration emitted, with their target distributions when sampling."""

    tokens: list[int]
    probs: np.ndarray | None


class Speculator:
    """A verifying model with an optional proposer below it."""

    def __init__(
        self,
        model: StatefulLM,
        proposer: Proposer | None = None,
        draft: DraftLength | Any | None = None,
        rule: Callable[..., Verdict] = verify_lossless,
    ):
        self.model = model
        self.proposer = proposer
        self.draft = draft or DraftLength()  # DraftLength or cost_model.AutoDraftLength
        self.rule = rule  # verify_lossless, or an opt-in lossy rule such as MTAD's
        self.name = model.name
        self.stats = LevelStats()

    def reset(self) -> None:
        """New request: empty caches, counters and draft length, on every level below too."""
        self.model.reset()
        self.draft.reset()
        self.stats = LevelStats()
        if self.proposer is not None:
            self.proposer.reset()

    def step(
        self, sequence: Sequence[int], params: SamplingParams, rng: np.random.Generator, limit: int
    ) -> Step:
        """One iteration: draft, score all drafted positions in one pass, accept, correct.

        Emits between 1 and ``limit`` tokens (the drafted ones that survive, then one from the
        target). The first call of a request only prefills: drafting then would delay the first
        token by the draft's own prefill.
        """
        start = time.perf_counter()
        prefill = not self.model.tokens
        # The verifier catches up on the committed tokens it has not seen (rolling back the ones
        # it rejected last time): one token at the top, sometimes two on a middle level.
        catch_up = self.model.sync(sequence)
        k = width = 0  # tokens to draft; draft positions the pass scores (>= k, see below)
        if self.proposer is not None and not prefill and limit > 1:
            k = min(self.draft.choose(sequence), limit - 1)
            width = min(max(k, self.draft.width), limit - 1)
            if width and len(catch_up) > 1:
                # Draft fewer so the pass keeps its size: a pass of a new size makes the CPU
                # plugin re-plan, which costs more than the drafted token would bring.
                width = max(width + 1 - len(catch_up), 1)
                k = min(k, width)
        proposal = self.proposer.propose(sequence, k, params, rng) if k > 0 else Proposal([])
        drafted = proposal.tokens
        # A short proposal (prompt lookup found nothing, a draft stopped at low confidence, or the
        # controller drafts nothing but keeps the pass size) is padded to the width, as
        # openvino.genai pads prompt lookup: the pass keeps its size and the CPU plugin does not
        # re-plan. The filler is never verified (its rows are cut off) and the next sync() drops
        # it from the cache like a rejected token; under trim that would be a cache copy per
        # pass, so only mask and paged pad.
        pad = max(width - len(drafted), 0) if not self.model.rollback_copies else 0
        filler = [sequence[-1]] * pad

        # Score every drafted position plus one in one pass.
        feed = catch_up + drafted + filler
        verify_s = self.model.stats.infer_s
        logits = self.model.forward(feed, n_logits=len(drafted) + pad + 1)[: len(drafted) + 1]
        verify_s = self.model.stats.infer_s - verify_s

        verdict = self.rule(proposal, logits, params, rng)
        tokens = drafted[: verdict.accepted] + [verdict.next_token]

        if prefill:  # not a decoding pass: kept out of tokens-per-pass
            self.stats.prefill_passes += 1
            return Step(tokens, verdict.probs)
        self.stats.passes += 1
        self.stats.drafted += len(drafted)
        self.stats.accepted += verdict.accepted
        self.stats.emitted += len(tokens)
        lengths = self.stats.draft_lengths
        lengths[len(drafted)] = lengths.get(len(drafted), 0) + 1
        self.draft.update(
            PassOutcome(
                len(drafted),
                verdict.accepted,
                time.perf_counter() - start,
                len(tokens),
                verify_s,
                len(drafted) + pad,
            )
        )
        return Step(tokens, verdict.probs)

    def propose(
        self, sequence: Sequence[int], k: int, params: SamplingParams, rng: np.random.Generator
    ) -> Proposal:
        """Act as the proposer of the level above: generate exactly ``k`` tokens speculatively.

        Each token follows this level's processed distribution exactly (lossless), so the rows
        the verifier returns are the ``q`` the level above needs.
        """
        seq = list(sequence)
        tokens: list[int] = []
        rows: list[np.ndarray] = []
        while len(tokens) < k:
            # The last step may emit more than is still needed rather than run a shorter pass: a
            # pass of a new size makes the CPU plugin re-plan, which costs more than scoring a few
            # extra tokens. Any prefix of this level's output follows its distribution, so
            # cutting the surplus keeps the proposal exact; the next sync() rolls it back.
            step = self.step(seq, params, rng, limit=k - len(tokens) + getattr(self.draft, "k", 0))
            tokens += step.tokens
            seq += step.tokens
            if step.probs is not None:
                rows.append(step.probs)
        probs = np.concatenate(rows)[:k] if rows else None
        return Proposal(tokens[:k], probs)

    def levels(self) -> list[Speculator]:
        """This level and every speculative level below it, top first."""
        below = self.proposer.levels() if isinstance(self.proposer, Speculator) else []
        return [self, *below]
