"""Proposers: where draft tokens come from.

A proposer turns the committed sequence into up to ``k`` candidate tokens, plus (when sampling)
the processed distribution ``q`` each was drawn from. These kinds share this interface:

* :class:`ModelProposer` - a small draft model, one token per forward pass;
* :class:`NgramProposer` - prompt lookup: copy what followed the last n-gram earlier on;
* :class:`HybridProposer` - prompt lookup or a draft model, chosen per pass;
* :class:`ov_spec.runtime.speculator.Speculator` - a whole speculative level, which makes
  cascades of any depth (ML-SpecQD) a chain of proposers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ov_spec.runtime.limits import MAX_DRAFT_TOKENS
from ov_spec.runtime.sampling import SamplingParams, choose, log_softmax
from ov_spec.runtime.stateful import StatefulLM

NGRAM_RECENT = 256  # a match whose copy starts within this many tokens of the end is "recent"
CATCH_UP_ONE_BY_ONE = 3  # a draft catches up on this few tokens in 1-token passes (see propose)


@dataclass
class Proposal:
    """Candidate tokens and, when sampling, the rows ``q[i]`` they were drawn from."""

    tokens: list[int]
    probs: np.ndarray | None = None  # [len(tokens), V]; None when greedy
    logq: np.ndarray | None = None  # draft log-probability of each token (MTAD's beam proposals)


class Proposer(Protocol):
    """Anything that drafts tokens for the level above it."""

    name: str

    def propose(
        self, sequence: Sequence[int], k: int, params: SamplingParams, rng: np.random.Generator
    ) -> Proposal: ...

    def reset(self) -> None: ...


class ModelProposer:
    """A draft model over its own stateful KV cache.

    ``min_confidence`` stops drafting early when the draft's top probability falls below it
    (0 = never): a doubtful token is likely rejected and would only cost a draft step.
    """

    def __init__(self, model: StatefulLM, min_confidence: float = 0.0) -> None:
        self.model = model
        self.name = model.name
        self.min_confidence = min_confidence

    def reset(self) -> None:
        self.model.reset()

    def behind(self, sequence: Sequence[int]) -> int:
        """How many tokens of ``sequence`` the next :meth:`propose` feeds before its first draft
        token: 1 when the draft kept up, 2 after a fully accepted draft, more when it missed
        passes (its prefill: the whole prompt). Cheap: the cache and the sequence differ only
        in their last few tokens (the rejected drafts), so the shared prefix is found from the end."""
        cached = self.model.tokens
        n = min(len(cached), len(sequence) - 1)
        while n and cached[n - 1] != sequence[n - 1]:
            n -= 1
        return len(sequence) - n

    def propose(
        self, sequence: Sequence[int], k: int, params: SamplingParams, rng: np.random.Generator
    ) -> Proposal:
        # sync() rolls the draft back past tokens the level above rejected, and returns what the
        # draft has not seen yet: usually the last emitted token, the whole prompt at first.
        feed = self.model.sync(sequence)
        if self.model.tokens and 1 < len(feed) <= CATCH_UP_ONE_BY_ONE:
            # After a fully accepted draft the catch-up is two tokens (the last draft and the
            # bonus). Fed one by one every draft pass has one size: a pass of a new size makes the
            # CPU plugin re-plan, which cost more than the extra pass (int4 SmolLM2-135M: 14.0 ms
            # for the 2-token pass and 12.3 ms for the next one, against 8.1 ms per 1-token pass).
            for token in feed[:-1]:
                self.model.forward([token])
            feed = feed[-1:]
        tokens: list[int] = []
        rows: list[np.ndarray] = []
        for _ in range(k):
            logits = self.model.forward(feed)[0]
            token, q = choose(logits, params, rng)
            tokens.append(token)
            if q is not None:
                rows.append(q)
            if self.min_confidence > 0 and _top_probability(logits, q) < self.min_confidence:
                break
            feed = [token]
        return Proposal(tokens, np.stack(rows) if rows else None)


class NgramProposer:
    """Prompt lookup decoding: find the latest earlier occurrence of the sequence's last n-gram
    (longest n first) and propose the tokens that followed it. Needs no model.

    When that occurrence overlaps the tail (the text is repeating with a period shorter than
    ``k``), the copy continues through its own output, as an LZ77 match does: ``a b a b`` proposes
    ``a b a b ...`` rather than stopping after two tokens.

    :meth:`bucket` describes the match the next proposal would copy (its n-gram length and
    whether it is recent), so the cost model can keep acceptance per kind of match and draft only
    where a kind pays (``draft_tokens="auto"``). ``lookup_s`` is the time spent looking.

    When sampling, its proposals are deterministic, i.e. ``q`` is one-hot; the lossless rule then
    accepts token x with probability ``p(x)``.
    """

    def __init__(
        self, max_ngram: int = 3, min_ngram: int = 1, name: str = "ngram", max_tokens: int = MAX_DRAFT_TOKENS
    ) -> None:
        self.max_ngram = max_ngram
        self.min_ngram = min_ngram
        self.name = name
        self.max_tokens = max_tokens  # the longest copy :meth:`bucket` prepares
        self.vocab_size = 0  # set by the pipeline: one-hot rows need it when sampling
        self.reset()

    def reset(self) -> None:
        self.lookup_s = 0.0
        # The last match: ((id, len) of the sequence, n, distance, copy); bucket() then propose()
        # in one pass see the same sequence object.
        self._cached: tuple[tuple[int, int], int, int, list[int]] | None = None
        # n-gram -> the ends of its occurrences, oldest first (one dict per n), over the tokens in
        # self._seq: built incrementally, so a search is a few dict lookups per pass instead of a
        # scan of the whole sequence (on a 1 ms model the scan cost ~4% of each pass).
        self._index: list[dict[tuple[int, ...], list[int]]] = [{} for _ in range(self.max_ngram + 1)]
        self._seq: list[int] = []

    def bucket(self, sequence: Sequence[int]) -> tuple[str, int, bool]:
        """``("ngram", n, recent)`` of the match for ``sequence`` (n = 0: nothing to copy)."""
        n, distance, _ = self._match(sequence, self.max_tokens)
        return ("ngram", n, distance <= NGRAM_RECENT)

    def propose(
        self, sequence: Sequence[int], k: int, params: SamplingParams, rng: np.random.Generator
    ) -> Proposal:
        tokens = self._match(sequence, k)[2][:k] if k > 0 else []
        if params.greedy or not tokens:
            return Proposal(tokens)
        probs = np.zeros((len(tokens), self.vocab_size))
        probs[np.arange(len(tokens)), tokens] = 1.0
        return Proposal(tokens, probs)

    def _match(self, sequence: Sequence[int], k: int) -> tuple[int, int, list[int]]:
        """(n-gram length, distance of the match from the end, up to ``k`` tokens to copy)."""
        cached = self._cached
        key = (id(sequence), len(sequence))
        if cached is not None and cached[0] == key and (len(cached[3]) >= k or not cached[1]):
            return cached[1], cached[2], cached[3]
        start = time.perf_counter()
        n, distance, tokens = self._lookup(sequence, k)
        self._cached = (key, n, distance, tokens)
        self.lookup_s += time.perf_counter() - start
        return n, distance, tokens

    def _update_index(self, seq: Sequence[int]) -> None:
        """Index every n-gram of ``seq`` that ends before its last token (the tail is what is
        looked up). Only what changed since the last call is indexed: a level below the target
        sees the same tokens again plus a few, or with its last speculative ones replaced."""
        old = self._seq
        common = min(len(old), len(seq))
        if old[:common] != list(seq[:common]):  # rejected tokens were replaced: find where
            lo, hi = 0, common  # old[:lo] matches, old[:hi] does not
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if old[:mid] == list(seq[:mid]) else (lo, mid)
            common = lo
        index = self._index
        for end in range(len(old) - 1, max(common - 1, 0), -1):  # drop ends past the common part
            for n in range(self.min_ngram, min(self.max_ngram, end) + 1):
                index[n][tuple(old[end - n : end])].pop()
        del old[common:]
        old.extend(seq[common:])
        for end in range(max(common, 1), len(old)):
            for n in range(self.min_ngram, min(self.max_ngram, end) + 1):
                index[n].setdefault(tuple(old[end - n : end]), []).append(end)

    def _lookup(self, seq: Sequence[int], k: int) -> tuple[int, int, list[int]]:
        self._update_index(seq)
        length = len(seq)
        for n in range(min(self.max_ngram, length - 1), self.min_ngram - 1, -1):
            ends = self._index[n].get(tuple(seq[length - n :]))
            if ends:
                start = ends[-1]  # the newest occurrence
                out = list(seq[start : start + k])
                period = length - start  # >= 1: the hit ends before the tail does
                while len(out) < k:
                    out.append(out[len(out) - period])
                return n, period, out
        return 0, length, []


class HybridProposer:
    """Prompt lookup or a draft model, one of them per pass, as the level's controller decides.

    :class:`ov_spec.runtime.cost_model.HybridLength` sets :attr:`use_lookup` before each proposal:
    prompt lookup where the text repeats (a match costs nothing to draft and, in code or quoted
    text, is often accepted in long runs), the draft model elsewhere. The draft model catches up on
    what prompt lookup proposed the next time it drafts (``sync``).
    """

    def __init__(self, lookup: NgramProposer, draft: ModelProposer) -> None:
        self.lookup = lookup
        self.draft = draft
        self.model = draft.model  # the model this drafter runs (metrics count its time)
        self.name = f"{draft.name}|{lookup.name}"
        self.use_lookup = False

    @property
    def lookup_s(self) -> float:
        return self.lookup.lookup_s

    def reset(self) -> None:
        self.lookup.reset()
        self.draft.reset()
        self.use_lookup = False

    def propose(
        self, sequence: Sequence[int], k: int, params: SamplingParams, rng: np.random.Generator
    ) -> Proposal:
        return (self.lookup if self.use_lookup else self.draft).propose(sequence, k, params, rng)


def _top_probability(logits: np.ndarray, probs: np.ndarray | None) -> float:
    if probs is not None:
        return float(probs.max())
    z = logits - logits.max()
    return float(1.0 / np.exp(z).sum())  # softmax value of the argmax


class BeamProposer:
    """MTAD's drafter (arXiv 2407.09722): a beam search of ``width`` beams over ``k`` tokens.

    The batch-1 stateful draft fans out to ``width`` cache rows through OpenVINO's ``beam_idx``
    input and collapses back to the winning row afterwards, so no cache is copied. Proposes the
    most likely beam with the draft's log-probability of each of its tokens (``logq``), which
    :func:`ov_spec.runtime.verify.verify_mtad` weighs against the target's.
    """

    def __init__(self, model: StatefulLM, width: int = 4) -> None:
        self.model = model
        self.name = model.name
        self.width = width

    def reset(self) -> None:
        self.model.reset()

    def propose(
        self, sequence: Sequence[int], k: int, params: SamplingParams, rng: np.random.Generator
    ) -> Proposal:
        feed = self.model.sync(sequence)
        logq = log_softmax(self.model.forward(feed)[0])
        first = np.argsort(-logq)[: self.width]
        beams = [[int(t)] for t in first]  # token paths
        scores = logq[first]  # joint log-probability of each path
        steps = [[float(s)] for s in scores]  # per-token log-probabilities along each path
        parents = [0] * len(beams)  # all beams grow from the single cache row
        for _ in range(k - 1):
            logits = self.model.forward_beams([b[-1] for b in beams], parents)
            cand = scores[:, None] + log_softmax(logits)
            flat = np.argsort(-cand, axis=None)[: self.width]
            rows, tokens = np.unravel_index(flat, cand.shape)
            beams = [beams[r] + [int(t)] for r, t in zip(rows, tokens)]
            steps = [steps[r] + [float(cand[r, t] - scores[r])] for r, t in zip(rows, tokens)]
            scores = cand[rows, tokens]
            parents = rows.tolist()  # cache row i now continues beam parents[i]
        best = int(np.argmax(scores))
        # Every token of the winner but its last was fed; its history sits in cache row parents[best].
        self.model.settle_beam(parents[best] if k > 1 else 0, beams[best][:-1])
        return Proposal(beams[best], logq=np.asarray(steps[best]))
