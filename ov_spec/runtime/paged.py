"""``rollback="paged"``: the model as OpenVINO's paged-attention graph, with ov_spec's own block table.

openvino.genai runs its models through ``paged_attention_transformation``: the KV cache leaves the
infer request and becomes plain input tensors (``key_cache.i``, ``value_cache.i``: blocks of
``block`` token positions), and each pass names the blocks it reads and writes (``block_indices``)
and how many positions are already cached (``past_lens``). ov_spec runs the same graph for one
sequence, with the blocks in order, so:

* **Rollback is free and exact.** Dropping the last ``n`` tokens is lowering ``past_lens``: the
  next pass overwrites their slots. Nothing is copied (trim copies the cache twice per rejection)
  and no holes are left (mask's attention then reduces over another cache layout, so its logits
  drift from target-only decoding's).
* **Multi-token passes are cheaper.** Measured on this project's 2-core CPU with the same IR,
  SmolLM2-135M int8 after 100 tokens: 13.8 vs 17.7 ms per 5-token pass, 12.9 vs 14.1 ms per
  1-token pass (``scripts/paged_vs_stateful.py``). The multi-token pass is what speculation pays
  per verification.

* **1-token passes can run on their own compiled copy** (``decode``), sharing the cache tensors.
  The CPU plugin re-plans a graph whenever its input shape changes, so a pass after one of
  another size costs more. On SmolLM2-135M int8 after 100 tokens, alternating 1- and 5-token
  passes cost 14.4 and 15.1 ms on one compiled model, against 9.8-10.7 and 11.0-11.6 ms in runs
  of one size. With the 1-token passes on a copy of their own they cost 10.3 and 10.8 ms
  (``python scripts/decode_graph.py PIPELINE --rounds 30``). Decoding alone between two verification passes, when prompt
  lookup finds nothing or the cost model expects no gain, then re-plans nothing. The copy costs
  a second compile (about 2 s here) and about 50 MB of memory next to the 138 MB IR.

The cache precision is the plugin's choice, following ``KV_CACHE_PRECISION`` (measured here: u8
for the int8 targets, bf16 for the fp16 large target). Batch 1 only: MTAD's beam search needs
the stateful IR.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import openvino as ov
from openvino._offline_transformations import paged_attention_transformation

from ov_spec.errors import UserError
from ov_spec.runtime.graph import keep_last_logits
from ov_spec.runtime.limits import PAGED
from ov_spec.runtime.stateful import StatefulLM

FIRST_BLOCKS_TOKENS = 512  # cache allocated first (tokens); doubled when a request needs more
# The CPU plugin quantizes the paged key cache (u8) per channel over each block by default: then
# the tokens a rollback leaves in a block still move its scales, and the logits after a rollback
# depend on what was rejected (up to 0.06 on the tiny pair). Per token, rollback is exact.
KEY_QUANT = "KEY_CACHE_QUANT_MODE"


def cpu_properties(props: dict) -> dict:
    """``props`` with a per-token key cache when the cache is u8 (the default; a KEY_CACHE_QUANT_MODE
    given in ``props`` wins, and an f32 cache has no quantization to choose)."""
    precision = str(props.get("KEY_CACHE_PRECISION", props.get("KV_CACHE_PRECISION", "u8"))).lower()
    return {KEY_QUANT: "BY_TOKEN", **props} if precision in ("u8", "uint8") else dict(props)


def to_paged(model: ov.Model) -> None:
    """Rewrite a stateful LLM graph (in place) into the paged-attention graph :class:`PagedLM` runs,
    with ``logits_to_keep`` on its token axis (the head then scores only the rows asked for)."""
    paged_attention_transformation(model)
    keep_last_logits(model, axis=0)


class PagedLM(StatefulLM):
    """A batch-1 causal LM over the paged-attention graph (:func:`to_paged`); the interface of
    :class:`~ov_spec.runtime.stateful.StatefulLM` with ``rollback_mode == "paged"``."""

    def __init__(
        self,
        compiled: ov.CompiledModel,
        name: str = "model",
        clock: Callable[[], float] = time.perf_counter,
        token_map: np.ndarray | None = None,
        vocab_size: int | None = None,
        max_context: int = 0,
        decode: ov.CompiledModel | None = None,
    ) -> None:
        """``decode``: a second compiled copy of the same graph for the 1-token passes (see the
        module docstring); both requests read and write the same cache tensors."""
        super().__init__(compiled, 0, name, "trim", clock, token_map, vocab_size, max_context)
        self.rollback_mode = PAGED
        self._decode: tuple[ov.InferRequest, dict[str, Any], Any] | None = None
        if decode is not None:
            request = decode.create_infer_request()
            ports = {i.any_name: i for i in request.model_inputs}
            outputs = request.model_outputs
            logits = outputs[next(i for i, o in enumerate(outputs) if "logits" in o.get_names())]
            self._decode = (request, ports, logits)
        self._caches = [p for p in compiled.inputs if p.any_name.startswith(("key_cache.", "value_cache."))]
        if not self._caches:
            raise UserError(
                f"{name}: not a paged-attention graph; build it with ov_spec.runtime.paged.to_paged"
            )
        # [blocks, kv heads, block size, head size]; the key cache's block axis may carry u8 scales,
        # so the block size is read from the value cache.
        values = next(p for p in self._caches if p.any_name.startswith("value_cache."))
        self.block = int(values.get_partial_shape()[2].get_length())
        # (no context given: grow as far as the requests go)
        self._max_blocks = -(-max_context // self.block) + 1 if max_context else 1 << 20
        self._blocks = 0
        self._block_ids = np.zeros(0, dtype=np.int32)
        self._past = np.zeros(1, dtype=np.int32)
        self._begins = np.zeros(2, dtype=np.int32)
        self._block_begins = np.zeros(2, dtype=np.int32)
        self._context_len = np.zeros((), dtype=np.int32)
        self._grow(min(-(-FIRST_BLOCKS_TOKENS // self.block), self._max_blocks))

    def _grow(self, blocks: int) -> None:
        """Give every layer's cache room for ``blocks`` blocks, keeping what is cached."""
        for port in self._caches:
            shape = port.get_partial_shape()
            dims = [blocks] + [shape[i].get_length() for i in range(1, shape.rank.get_length())]
            tensor = ov.Tensor(port.get_element_type(), dims)
            if self._blocks:
                old = self.request.get_tensor(port.any_name)
                tensor.data[: self._blocks] = old.data  # u8 / f16 / f32 caches: plain numpy views
            self.request.set_tensor(port.any_name, tensor)
            if self._decode is not None:
                self._decode[0].set_tensor(port.any_name, tensor)
        self._blocks = blocks
        self._block_ids = np.arange(blocks, dtype=np.int32)  # one sequence: its blocks in order

    @property
    def separate_decode(self) -> bool:
        """Whether 1-token passes run on their own compiled copy of the graph."""
        return self._decode is not None

    def warm_up(self) -> None:
        """As :meth:`StatefulLM.warm_up`, on the verification graph and on the decode copy."""
        self.forward([0, 0], n_logits=1)  # (2 tokens: the main graph; 1 token goes to the copy)
        if self._decode is not None:
            self.forward([0], n_logits=1)
        self.reset()

    def _request_for(self, tokens: int) -> tuple[ov.InferRequest, dict[str, Any], Any]:
        if tokens == 1 and self._decode is not None:
            return self._decode
        return self.request, self._ports, self._logits

    def rollback(self, n: int) -> None:
        """Keep the first ``n`` cached tokens: the next pass overwrites the rest (no copy)."""
        if len(self.tokens) > n:
            del self.tokens[n:]
            self.stats.rollbacks += 1

    def forward_beams(self, tokens, parents):  # type: ignore[no-untyped-def]
        raise UserError(
            f"{self.name}: MTAD's beam search needs the stateful model; load the pipeline with "
            "draft_rollback='mask' (--draft-rollback mask) for the drafts"
        )

    def _infer(
        self, rows: list[list[int]], beam_idx: list[int], n_logits: int
    ) -> tuple[np.ndarray, list[int]]:
        assert len(rows) == 1, "the paged model runs one sequence"
        past, t = len(self.tokens), len(rows[0])
        total = past + t
        used = -(-total // self.block)
        if used > self._blocks:
            if used > self._max_blocks:
                raise UserError(
                    f"{self.name}: {total} tokens exceed the model's context; shorten the prompt or "
                    "lower max_new_tokens"
                )
            self._grow(min(max(used, 2 * self._blocks), self._max_blocks))
        self._reserve(total)
        self._past[0] = past
        self._begins[1] = t
        self._block_begins[1] = used
        self._context_len[...] = total
        feed = {
            "input_ids": np.asarray(rows[0], dtype=np.int64),
            "position_ids": self._positions[past:total],
            "past_lens": self._past,
            "subsequence_begins": self._begins,
            # Every allocated block, not only the ``used`` ones (``block_indices_begins`` says how
            # many this sequence reads): the input keeps its shape while the context grows, so the
            # CPU plugin does not re-plan the graph each time a block fills. Bit-identical logits.
            "block_indices": self._block_ids,
            "block_indices_begins": self._block_begins,
            "max_context_len": self._context_len,
        }
        return self._run(feed, n_logits, t), list(range(past, total))

    @staticmethod
    def _last_rows(logits: np.ndarray, n: int) -> np.ndarray:
        """The paged graph's logits are ``[tokens, 1, V]``: the last ``n`` rows as ``[1, n, V]``."""
        return np.array(logits[-n:, 0], dtype=np.float32)[None]
