"""One stateful OpenVINO LLM and its KV cache: feed tokens, read logits, roll back.

The exported IR keeps the KV cache inside the infer request (``ReadValue``/``Assign`` pairs),
so the runtime only feeds new tokens. Speculative decoding also needs to *undo* tokens the target
rejected. Two strategies, chosen per model:

``trim``
    Copy each cache tensor out, keep the first ``n`` positions, copy it back (what openvino.genai
    does on CPU/GPU). Costs two cache copies per rollback. With an f16/f32 cache the trimmed
    cache holds exactly what target-only decoding wrote, and on the CPU plugin the logits were
    then identical to target-only decoding (README, *Numerics*). A u8 cache (the CPU plugin's
    default for int8/int4 models) is not: reading it back dequantizes it and setting it
    re-quantizes it, which moved logits by up to ~1 on real shapes.
``mask``
    Leave rejected entries in the cache, zero them in ``attention_mask`` and pass explicit
    ``position_ids``; compact (one gather per layer) when holes pile up. No copy per rollback,
    but the attention kernel then reduces over a differently laid-out cache, so logits differ
    from target-only decoding (up to ~1 on real shapes) and a near-tie can flip a greedy token.

``auto`` (the default) runs the target on CPU as the paged-attention graph instead
(:mod:`ov_spec.runtime.paged`, rollback free and exact); for a stateful model it is
:func:`choose_rollback`: mask where the device reports its KV-cache precision (CPU: mask is what
made speculation pay there, the 103M fp16 target: 155 vs 111 tok/s at k=4, because reading an f16
cache back costs 6-55 ms at 64-800 tokens), trim elsewhere. Strict equality with target-only
decoding is ``rollback="trim"`` with an f16/f32 cache (``examples/devices-strict.toml``). Models
below the target use mask: their rollback cannot change the output.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import openvino as ov

from ov_spec.errors import UserError
from ov_spec.runtime.graph import LOGITS_TO_KEEP
from ov_spec.runtime.limits import AUTO, STATEFUL_ROLLBACKS

DEFAULT_ROLLBACK = AUTO  # the one default of load(), SpeculativePipeline and the CLIs
# Models below the target only propose: their rollback cannot change the output (the target
# verifies), so it is chosen for speed alone. "auto" is the paged graph on CPU (mask elsewhere): a
# 1-token pass there has fixed input shapes, where mask's attention_mask grows every pass and the
# CPU plugin re-plans the graph each time. Per 1-token draft pass after 100 tokens, a rollback
# every second pass (2-core Xeon, interleaved): 0.66M draft 257 vs 356 us, SmolLM2-135M int4 7.1
# vs 8.5 ms (compare with scripts/step_profile.py --draft-rollback mask). trim's cache copies
# cost more than either (+44% tok/s for mask at k=4 on the random pair).
DEFAULT_DRAFT_ROLLBACK = AUTO
# mask mode compacts the cache once holes exceed this many entries and this share of the cache.
_COMPACT_MIN_HOLES = 256
_COMPACT_MIN_SHARE = 0.25


@dataclass
class ModelStats:
    """Wall time and call counts of one model, accumulated over a generation."""

    calls: int = 0  # forward passes
    tokens_fed: int = 0  # tokens pushed through the model (prefill included)
    infer_s: float = 0.0  # time inside forward passes
    rollbacks: int = 0
    rollback_s: float = 0.0  # time spent undoing rejected tokens (trim copies, compaction)
    prefill_s: float = 0.0  # the first forward pass of the generation


def kv_sequence_axis(model: ov.Model) -> int:
    """The sequence axis of the KV-cache variables (dynamic and not the batch axis 0)."""
    for op in model.get_ops():
        if op.get_type_name() == "ReadValue":
            shape = op.get_output_partial_shape(0)
            dynamic = [i for i in range(1, shape.rank.get_length()) if shape[i].is_dynamic]
            if len(dynamic) == 1:
                return dynamic[0]
            break
    return 2  # [batch, kv_heads, seq, head_dim]: every optimum-exported decoder


def choose_rollback(compiled: ov.CompiledModel) -> str:
    """``rollback="auto"``: ``mask`` on a device that reports its KV-cache precision (the CPU
    plugin), ``trim`` on one that does not (GPU, NPU: the copy openvino.genai makes too).

    On CPU a trim costs two cache copies per rejection, and reading an f16/f32 cache back is slow
    (6-55 ms at 64-800 tokens on a 103M fp16 target whose pass costs 10-12 ms); a u8 cache is
    re-quantized by it, so there it is not even exact. Mask costs nothing per rejection; like a
    u8 trim it moves logits by rounding (up to ~1 on real shapes under bf16 inference), so a greedy
    near-tie may resolve differently. Strict equality: ``rollback="trim"`` with an f16/f32 cache.
    """
    try:
        compiled.get_property("KV_CACHE_PRECISION")
    except RuntimeError:
        return "trim"
    return "mask"


def is_stateful(model: ov.Model) -> bool:
    return any(op.get_type_name() == "ReadValue" for op in model.get_ops())


class StatefulLM:
    """A batch-1 stateful causal LM with a KV cache that can be rolled back.

    ``tokens`` lists the tokens whose keys/values are in the cache, in order. :meth:`forward`
    appends tokens and returns logits for the last positions; :meth:`rollback` keeps only the
    first ``n`` tokens; :meth:`sync` rolls back to the longest prefix shared with a sequence and
    returns what still has to be fed.
    """

    def __init__(
        self,
        compiled: ov.CompiledModel,
        seq_axis: int,
        name: str = "model",
        rollback: str = DEFAULT_ROLLBACK,
        clock: Callable[[], float] = time.perf_counter,
        token_map: np.ndarray | None = None,
        vocab_size: int | None = None,
        max_context: int = 0,
    ) -> None:
        """``token_map`` (a pruned-vocabulary head, ov_spec.export.prune): logits column ``i`` scores
        token ``token_map[i]``; :meth:`forward` then returns rows over ``vocab_size`` token ids,
        -inf outside the kept set (probability exactly 0, never an argmax)."""
        if rollback == AUTO:  # the default: resolved from the compiled model (choose_rollback)
            rollback = choose_rollback(compiled)
        if rollback not in STATEFUL_ROLLBACKS:
            raise UserError(f"rollback must be one of {', '.join(STATEFUL_ROLLBACKS)}, got {rollback!r}")
        self.name = name
        self.rollback_mode = rollback
        self.request = compiled.create_infer_request()
        self._inputs = {i.any_name for i in compiled.inputs}
        self._ports = {i.any_name: i for i in self.request.model_inputs}
        self._logits = self.request.model_outputs[
            next(i for i, o in enumerate(self.request.model_outputs) if "logits" in o.get_names())
        ]
        self._seq_axis = seq_axis
        self._clock = clock
        self.vocab_size = int(compiled.output("logits").partial_shape[-1].get_length())
        self.token_map = None if token_map is None else np.asarray(token_map, dtype=np.int64)
        if self.token_map is not None:
            assert self.token_map.size == self.vocab_size and vocab_size is not None, (self.token_map.size,)
            assert int(self.token_map.max()) < vocab_size
            self.vocab_size = int(vocab_size)
        # Inputs are views of buffers kept across calls (no allocation per pass; grown by doubling).
        self._ones = np.ones(max(max_context, 64) + 32, dtype=np.int64)  # attention_mask (trim)
        self._positions = np.arange(self._ones.size, dtype=np.int64)  # position_ids
        self._beam0 = np.zeros(1, dtype=np.int32)  # beam_idx of the batch-1 path
        self._keep: dict[int, np.ndarray] = {}  # logits_to_keep arrays by row count
        self._bound: dict[int, dict[str, np.ndarray]] = {}  # input buffers per request (_bind)
        self.stats = ModelStats()
        self.reset()

    def warm_up(self) -> None:
        """Run one throw-away pass on each infer request, then reset.

        A compiled model's first inference builds its kernels and re-packs its weights: measured
        here 0.4-2.0 s per request (SmolLM2-135M int8, the 481M smollm2-wide target) against
        15-35 ms for the passes after it. Paid at load, it stays out of the first request's time
        to first token and out of what ``draft_tokens="auto"`` learns from its first passes (one
        such 1.4 s pass had made decoding alone look 2.6x dearer for the rest of a run)."""
        self.forward([0], n_logits=1)
        self.reset()

    # -- state ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything: empty cache, fresh statistics."""
        self.request.reset_state()
        self.tokens: list[int] = []
        self._mask_buf = np.zeros(self._ones.size, dtype=np.int64)  # mask mode: 1 per valid cache slot
        self._mask_len = 0  # physical cache slots in use (valid tokens plus holes)
        self._slots: list[int] = []  # physical slot of each valid token (mask mode)
        self._beam_row = 0  # cache row the next batch-1 call continues (after a beam search)
        self._beam_slots: list[int] = []  # slots fed during a beam search, not yet settled
        self.stats = ModelStats()

    @property
    def _mask(self) -> np.ndarray:
        """attention_mask of mask mode: one entry per physical cache slot (a view)."""
        return self._mask_buf[: self._mask_len]

    @property
    def separate_decode(self) -> bool:
        """Whether 1-token passes run on a compiled copy of their own (only a PagedLM's can)."""
        return False

    @property
    def rollback_copies(self) -> bool:
        """Whether dropping tokens copies the cache (trim): then a padded pass costs a copy."""
        return self.rollback_mode == "trim"

    @property
    def cache_slots(self) -> int:
        """Physical length of the KV cache (valid tokens plus masked holes)."""
        return self._mask_len if self.rollback_mode == "mask" else len(self.tokens)

    def sync(self, sequence: Sequence[int]) -> list[int]:
        """Roll back to the longest cached prefix of ``sequence``; return the tokens to feed next.

        At least one token is always returned (re-fed if the cache already holds all of
        ``sequence``), because the caller needs the logits that follow the sequence.
        """
        n = len(self.tokens)
        if n > len(sequence) or self.tokens != list(sequence[:n]):
            n = _common_prefix(self.tokens, sequence)
        n = min(n, len(sequence) - 1)
        self.rollback(n)
        return list(sequence[n:])

    def rollback(self, n: int) -> None:
        """Keep the first ``n`` cached tokens and drop the rest."""
        assert not self._beam_slots, "settle_beam() must end a beam search"
        drop = len(self.tokens) - n
        if drop <= 0:
            return
        start = self._clock()
        if self.rollback_mode == "mask":
            self._mask[self._slots[n:]] = 0
            del self._slots[n:]
            holes = self._mask.size - len(self._slots)
            if holes >= _COMPACT_MIN_HOLES and holes >= _COMPACT_MIN_SHARE * self._mask.size:
                self._compact()
        else:
            self._trim_states(n)
        del self.tokens[n:]
        self.stats.rollbacks += 1
        self.stats.rollback_s += self._clock() - start

    def _trim_states(self, n: int) -> None:
        """Keep the first ``n`` positions of every cache tensor.

        The slice is made contiguous before it goes back: OpenVINO's ``set_state`` does not honour
        the strides of a region-of-interest tensor (with several KV heads it mixes them up).
        """
        for state in self.request.query_state():
            data = state.state.data
            index = [slice(None)] * data.ndim
            index[self._seq_axis] = slice(0, n)
            state.state = ov.Tensor(np.ascontiguousarray(data[tuple(index)]))

    def _compact(self) -> None:
        """Gather the valid cache entries to the front (mask mode); the holes disappear."""
        for state in self.request.query_state():
            kept = np.take(state.state.data, np.asarray(self._slots, dtype=np.int64), axis=self._seq_axis)
            state.state = ov.Tensor(np.ascontiguousarray(kept))
        self._slots = list(range(len(self._slots)))
        self._mask_len = len(self._slots)
        self._mask_buf[: self._mask_len] = 1

    # -- inference -----------------------------------------------------------------------------
    def forward(self, new_tokens: Sequence[int], n_logits: int = 1) -> np.ndarray:
        """Append ``new_tokens`` to the cache; return float32 logits ``[n_logits, V]``.

        Row ``i`` of the result scores the token that follows position ``T - n_logits + i`` of the
        fed tokens (so ``n_logits = T`` gives a row after every fed token).
        """
        assert not self._beam_slots, "settle_beam() must end a beam search"
        t = len(new_tokens)
        assert 0 < n_logits <= t, (n_logits, t)
        # After a beam search the cache holds one row per beam; beam_idx picks the row to go on with.
        logits, slots = self._infer([list(new_tokens)], [self._beam_row], n_logits)
        self._beam_row = 0
        if self.rollback_mode == "mask":
            self._slots.extend(slots)
        self.tokens.extend(int(x) for x in new_tokens)
        return logits[0]

    def forward_beams(self, tokens: Sequence[int], parents: Sequence[int]) -> np.ndarray:
        """One beam-search step: gather cache rows by ``parents`` (OpenVINO's ``beam_idx``), then
        feed ``tokens[i]`` to row ``i``. Returns logits ``[len(tokens), V]``.

        Beams diverge, so ``tokens`` is not extended until :meth:`settle_beam` picks one.
        """
        logits, slots = self._infer([[int(t)] for t in tokens], list(parents), 1)
        self._beam_slots.extend(slots)
        return logits[:, 0]

    def settle_beam(self, row: int, tokens: Sequence[int]) -> None:
        """End a beam search: continue with cache ``row``, whose beam was fed ``tokens``."""
        assert len(tokens) == len(self._beam_slots), (tokens, self._beam_slots)
        if self.rollback_mode == "mask":
            self._slots.extend(self._beam_slots)
        self._beam_slots = []
        self._beam_row = int(row)
        self.tokens.extend(int(x) for x in tokens)

    def _infer(
        self, rows: list[list[int]], beam_idx: list[int], n_logits: int
    ) -> tuple[np.ndarray, list[int]]:
        """Run one pass over ``rows`` (equal lengths); return logits ``[B, n_logits, V]`` and the
        physical cache slots the new tokens went to."""
        batch, t = len(rows), len(rows[0])
        position = len(self.tokens) + len(self._beam_slots)  # logical position of the first new token
        self._reserve(max(position, self._mask_len) + t)
        if self.rollback_mode == "mask":
            first = self._mask_len
            self._mask_len += t
            self._mask_buf[first : self._mask_len] = 1
            attention_mask = self._mask_buf[: self._mask_len]
        else:
            first = position
            attention_mask = self._ones[: position + t]
        feed = {"input_ids": np.asarray(rows, dtype=np.int64)}
        if batch == 1:  # the decoding path: contiguous views, nothing allocated per call
            if "attention_mask" in self._inputs:
                feed["attention_mask"] = attention_mask.reshape(1, -1)
            if "position_ids" in self._inputs:
                feed["position_ids"] = self._positions[position : position + t].reshape(1, t)
            if "beam_idx" in self._inputs:
                feed["beam_idx"] = self._beam0 if beam_idx[0] == 0 else np.asarray(beam_idx, dtype=np.int32)
        else:
            if "attention_mask" in self._inputs:
                feed["attention_mask"] = np.tile(attention_mask, (batch, 1))
            if "position_ids" in self._inputs:
                feed["position_ids"] = np.tile(self._positions[position : position + t], (batch, 1))
            if "beam_idx" in self._inputs:
                feed["beam_idx"] = np.asarray(beam_idx, dtype=np.int32)
        logits = self._run(feed, n_logits, batch * t)
        return logits, list(range(first, first + t))

    def _run(self, feed: dict[str, np.ndarray], n_logits: int, tokens: int) -> np.ndarray:
        """One forward pass over ``feed``; float32 logits ``[B, n_logits, V]`` over token ids."""
        if LOGITS_TO_KEEP in self._inputs:  # see graph.keep_last_logits: the head runs on n rows only
            keep = self._keep.get(n_logits)
            if keep is None:
                keep = self._keep[n_logits] = np.array([n_logits], dtype=np.int64)
            feed[LOGITS_TO_KEEP] = keep
        start = self._clock()
        # start_async + wait rather than infer(): measured 1.0 vs 6.4 ms per step on a 2-core CPU
        # (infer() copies inputs into its own tensors and blocks differently; without inputs it
        # measured no faster here: 1334 vs 1359 us per tiny-target pass). Inputs: see _bind.
        request, ports, logits_port = self._request_for(tokens)
        self._bind(request, ports, feed)
        request.start_async()
        request.wait()
        logits = self._last_rows(request.get_tensor(logits_port).data, n_logits)
        if self.token_map is not None:  # pruned head: back to token ids, -inf where no row was kept
            full = np.full((*logits.shape[:-1], self.vocab_size), -np.inf, dtype=np.float32)
            full[..., self.token_map] = logits
            logits = full
        elapsed = self._clock() - start
        if self.stats.calls == 0:
            self.stats.prefill_s = elapsed
        self.stats.calls += 1
        self.stats.tokens_fed += tokens
        self.stats.infer_s += elapsed
        return logits

    def _bind(self, request: ov.InferRequest, ports: dict[str, Any], feed: dict[str, np.ndarray]) -> None:
        """Put ``feed``'s values into the request's inputs.

        Each input is a tensor over a buffer of ours, bound when its shape changes and otherwise
        refilled in place: most inputs keep their shape from pass to pass (a draft's 1-token
        passes, a target's verification width, the paged graph's fixed-shape inputs). A refill
        costs ~0.4 us of Python where a new ``ov.Tensor`` and ``set_tensor`` cost ~4.7 us, yet a
        pass got 70-100 us cheaper in all, more than that Python (0.66M draft, 1-token pass after
        100 tokens: 439 -> 343 us; interleaved, 2-core Xeon): OpenVINO's side of binding a new
        tensor costs too. The plugin reads
        a bound tensor's memory at each inference, so a refill is seen (tests/test_paged.py).
        start_async(dict) would run OpenVINO's Python data dispatcher: ~45 us of a 0.4 ms call.
        """
        bound = self._bound.setdefault(id(request), {})
        for name, array in feed.items():
            buffer = bound.get(name)
            if buffer is None or buffer.shape != array.shape or buffer.dtype != array.dtype:
                # (one buffer per input: mask's attention_mask grows every pass, so buffers kept
                # per shape would pile up)
                buffer = bound[name] = np.empty(array.shape, array.dtype)
                request.set_tensor(ports[name], ov.Tensor(buffer, shared_memory=True))
            buffer[...] = array

    def _request_for(self, tokens: int) -> tuple[ov.InferRequest, dict[str, Any], Any]:
        """The infer request a pass over ``tokens`` tokens runs on, its input ports by name and
        its logits output (one request here; see PagedLM)."""
        return self.request, self._ports, self._logits

    @staticmethod
    def _last_rows(logits: np.ndarray, n: int) -> np.ndarray:
        """The last ``n`` rows of each batch row of the logits output ``[B, T, V]``, as float32."""
        return np.array(logits[:, -n:], dtype=np.float32)

    def _reserve(self, n: int) -> None:
        """Make the input buffers hold at least ``n`` positions (doubling, so rarely)."""
        if n <= self._ones.size:
            return
        size = max(n, 2 * self._ones.size)
        self._ones = np.ones(size, dtype=np.int64)
        self._positions = np.arange(size, dtype=np.int64)
        mask = np.zeros(size, dtype=np.int64)
        mask[: self._mask_len] = self._mask_buf[: self._mask_len]
        self._mask_buf = mask


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    # Rollbacks touch only the last few tokens: compare the long head as lists (C speed), then
    # look for the first difference in the tail.
    head = max(0, n - 64)
    if list(a[:head]) == list(b[:head]):
        for i in range(head, n):
            if a[i] != b[i]:
                return i
        return n
    diff = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(diff[0]) if diff.size else n
