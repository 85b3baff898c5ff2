"""The public runtime API: load a pipeline folder, generate speculatively, stream, measure.

    pipe = ov_spec.load("out/pipeline", devices="devices.toml")
    result = pipe.generate("def fib(n):", max_new_tokens=64)
    print(result.text, result.metrics.acceptance_rate)

Models are compiled once at load; each request starts from empty caches, so requests are
independent and several pipelines can live in one process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from ov_spec.errors import UserError, first_line
from ov_spec.manifest import Manifest, ModelEntry
from ov_spec.runtime import cost_model as costs
from ov_spec.runtime import devices as placement
from ov_spec.runtime import paged
from ov_spec.runtime.graph import keep_last_logits
from ov_spec.runtime.limits import (
    AUTO,
    MAX_DRAFT_TOKENS,
    PAGED,
    ROLLBACK_CHOICES,
    DraftTokens,
    check_draft_tokens,
)
from ov_spec.runtime.metrics import AutoMetrics, GenerationMetrics, LevelMetrics, mean_draft_length, ratio
from ov_spec.runtime.proposers import (
    CATCH_UP_ONE_BY_ONE,
    BeamProposer,
    HybridProposer,
    ModelProposer,
    NgramProposer,
    Proposer,
)
from ov_spec.runtime.sampling import SamplingParams
from ov_spec.runtime.speculator import DraftLength, Speculator
from ov_spec.runtime.stateful import (
    DEFAULT_DRAFT_ROLLBACK,
    DEFAULT_ROLLBACK,
    StatefulLM,
    choose_rollback,
    is_stateful,
    kv_sequence_axis,
)
from ov_spec.runtime.stops import StopText
from ov_spec.runtime.tokenizer import Tokenizer
from ov_spec.runtime.verify import MtadRule, verify_lossless

Streamer = Callable[[str], Any]  # receives text chunks; returning True stops the generation
SEPARATE_DECODE_MIN_BYTES = 32 << 20  # see _wants_separate_decode
DEFAULT_DRAFT_TOKENS = AUTO  # the cost model chooses (see ov_spec.runtime.cost_model)
FALLBACK_DRAFT_TOKENS = 4  # the start of adaptive length and MTAD's beam depth under "auto"
DRAFT_TOKEN_OVERHEAD_S = 3e-5  # Python work per drafted token besides the draft's pass (choose, append)


@dataclass
class GenerationResult:
    """Text, token ids, why generation ended, and how it went."""

    text: str
    token_ids: list[int]  # generated tokens only
    finish_reason: str  # "length" | "eos" | "stop" | "cancelled"
    metrics: GenerationMetrics
    prompt_token_ids: list[int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load(
    folder: str | Path,
    devices: str | Path | Mapping[str, Any] | None = None,
    device_overrides: Sequence[str] = (),
    property_overrides: Sequence[str] = (),
    rollback: str = DEFAULT_ROLLBACK,
    draft_rollback: str = DEFAULT_DRAFT_ROLLBACK,
    separate_decode: bool | None = None,
) -> SpeculativePipeline:
    """Load an exported pipeline folder (``ov_spec.json`` + one sub-folder per model).

    ``devices`` is a placement config (TOML/JSON path or dict; see :mod:`ov_spec.runtime.devices`);
    ``rollback`` picks the target's KV-cache rollback strategy (``"auto"``, the default: ``"paged"``
    on CPU, OpenVINO's paged-attention graph with a free and exact rollback and cheaper multi-token
    passes (:mod:`ov_spec.runtime.paged`), ``"trim"`` on other devices; ``"mask"`` keeps the stateful
    IR without copying the cache; ``"trim"`` with an f16/f32 cache is the strict choice, equal to
    target-only decoding even at near-ties; see :mod:`ov_spec.runtime.stateful`); ``draft_rollback`` that of
    every model below it (default ``"auto"``, as for the target: a draft only proposes, so its
    rollback never changes the output, and on CPU its 1-token passes cost least on the paged graph,
    whose input shapes stay put; MTAD's beam search runs on a stateful copy of a paged draft).
    ``separate_decode`` (paged CPU targets): compile the target a second time for its 1-token
    passes, so that decoding alone between verification passes makes the CPU plugin re-plan
    neither graph; it costs a second compile and a second set of the plugin's buffers (about
    2 s and 50 MB for SmolLM2-135M int8). Default (None): for targets of at least
    ``SEPARATE_DECODE_MIN_BYTES`` of weights. Every compiled model runs one throw-away pass before
    this returns (:meth:`StatefulLM.warm_up`): a first inference costs up to 2 s on CPU.
    """
    return SpeculativePipeline(
        Path(folder), devices, device_overrides, property_overrides, rollback, draft_rollback,
        separate_decode,
    )  # fmt: skip


def _check_rollback(choice: str) -> None:
    if choice not in ROLLBACK_CHOICES:
        raise UserError(f"rollback must be one of {', '.join(ROLLBACK_CHOICES)}, got {choice!r}")


def _rollback_mode(choice: str, compiled: ov.CompiledModel) -> str:
    """The strategy a stateful model uses: ``choice``, ``"auto"`` resolved from the compiled model."""
    _check_rollback(choice)
    return choose_rollback(compiled) if choice == AUTO else choice


def _wants_paged(choice: str, device: str, props: Mapping[str, Any], name: str) -> bool:
    """``"paged"``, or ``"auto"`` on the CPU plugin: against the stateful IR on the same files
    (2-core AMD EPYC, interleaved in one process: scripts/rollback_ab.py) target-only decoding
    ran 1.05-1.13x and the default speculative decoding 1.12-1.45x faster on the four README
    pairs; its rollback is exact (mask's is not) and free (trim's copies the cache). The paged
    graph keeps its cache in u8 or 16 bits: a model given an f32 cache stays stateful under
    ``"auto"``. NPUW builds its own static graphs: no paged graph on NPU."""
    f32 = str(props.get("KV_CACHE_PRECISION", "")).lower() in ("f32", "float32")
    if choice == PAGED and f32:
        raise UserError(
            f"{name}: rollback 'paged' keeps the KV cache in u8 or f16, not f32; drop "
            "KV_CACHE_PRECISION=f32 or use rollback 'trim'"
        )
    if choice == PAGED and device.startswith("NPU"):
        raise UserError(
            f"{name}: rollback 'paged' needs a device with paged attention (CPU, GPU); use 'auto' on NPU"
        )
    return choice == PAGED or (choice == AUTO and device == "CPU" and not f32)


def _wants_separate_decode(choice: bool | None, size_bytes: int) -> bool:
    """Whether a paged CPU target gets a second compiled copy for its 1-token passes (``None``:
    by its size). Measured on the 2-core AMD EPYC, interleaved (scripts/rollback_ab.py
    --rollback paged/one-graph,paged): the default on SmolLM2-135M int8 (138 MB) went from 0.83x
    to 1.00x of target-only on chat prompts and from 1.12x to 1.45x on the shipped prompts; on
    the 6.8M tiny pair (7 MB), whose passes take under a millisecond, it lost (1.31x to 1.15x)."""
    return size_bytes >= SEPARATE_DECODE_MIN_BYTES if choice is None else choice


class SpeculativePipeline:
    """A target and its draft levels, compiled on their devices, ready to generate."""

    def __init__(
        self,
        folder: Path,
        devices: str | Path | Mapping[str, Any] | None = None,
        device_overrides: Sequence[str] = (),
        property_overrides: Sequence[str] = (),
        rollback: str = DEFAULT_ROLLBACK,
        draft_rollback: str = DEFAULT_DRAFT_ROLLBACK,
        separate_decode: bool | None = None,
    ) -> None:
        self.folder = folder
        self.manifest = Manifest.read(folder)
        self.core = ov.Core()
        names = self.manifest.names()
        self.placements = placement.load_placements(devices, names, device_overrides, property_overrides)
        placement.validate(self.core, self.placements)
        self.tokenizer = Tokenizer(
            self.core, folder / self.manifest.tokenizer["path"], self.manifest.tokenizer
        )
        self.rollback = rollback
        for choice in (rollback, draft_rollback):  # before anything is compiled
            _check_rollback(choice)
        self.models: dict[str, StatefulLM] = {}
        self.compile_props: dict[str, dict[str, Any]] = {}
        for entry in self.manifest.by_level():
            choice = rollback if entry.level == 0 else draft_rollback
            self.models[entry.name] = self._load_model(entry, choice, separate_decode)
        for lm in self.models.values():  # first inferences are slow: pay them here (StatefulLM.warm_up)
            lm.warm_up()
        self.vocab_size = self.models[names[0]].vocab_size
        separate = {n for n, m in self.models.items() if m.separate_decode}
        self.costs = costs.CostModel(self._cost_table, costs.preview_priors(self.manifest), separate=separate)
        self._calibrating = 0.0  # seconds the current call spent timing models
        self._beam_models: dict[str, StatefulLM] = {}  # stateful copies of paged drafts, for MTAD

    def _load_model(self, entry: ModelEntry, choice: str, separate_decode: bool | None) -> StatefulLM:
        """Read, rewrite and compile one model of the pipeline as rollback ``choice`` asks: the
        paged-attention graph (:class:`~ov_spec.runtime.paged.PagedLM`, with a decode copy for
        a large CPU target) or the stateful IR (:class:`StatefulLM`). Records its compile
        properties in ``compile_props`` (the cost table's cache key)."""
        xml = self.folder / entry.path / "openvino_model.xml"
        _check_weights(xml.with_suffix(".bin"), entry.size_bytes)
        try:
            model = self.core.read_model(xml)
        except RuntimeError as err:
            raise UserError(
                f"cannot read {xml}: {first_line(err)}; the file is damaged, re-export the pipeline"
            ) from None
        if not is_stateful(model):
            raise UserError(
                f"{entry.name} is not a stateful IR; re-export it with `python -m ov_spec.export`"
            )
        where = self.placements[entry.name]
        seq_axis = kv_sequence_axis(model)  # (read before to_paged removes the cache variables)
        props = placement.compile_properties(where, MAX_DRAFT_TOKENS + 1)
        use_paged = _wants_paged(choice, where.device, props, entry.name)
        if use_paged:
            paged.to_paged(model)
        elif not where.device.startswith("NPU"):  # NPUW builds its own static prefill/decode graphs
            keep_last_logits(model)
        if use_paged and where.device.startswith("CPU"):
            props = paged.cpu_properties(props)
        compiled = placement.compile_model(self.core, model, entry.name, where, props)
        self.compile_props.setdefault(entry.name, props)  # (an MTAD copy keeps the model's key)
        token_map, width = _token_map(self.folder, entry)  # a pruned-vocabulary draft head, else None
        common = dict(max_context=self.manifest.max_context, token_map=token_map, vocab_size=width)
        if not use_paged:
            # (a draft under "auto" off the paged graph keeps mask: trim's copies cost it more)
            mode = "mask" if entry.level and choice == AUTO else _rollback_mode(choice, compiled)
            return StatefulLM(compiled, seq_axis, entry.name, mode, **common)
        # (the re-planning a second copy avoids is the CPU plugin's: see ov_spec.runtime.paged)
        decode = None
        if (
            entry.level == 0
            and where.device.startswith("CPU")
            and _wants_separate_decode(separate_decode, entry.size_bytes)
        ):
            decode = placement.compile_model(self.core, model, entry.name, where, props)
        return paged.PagedLM(compiled, entry.name, decode=decode, **common)

    def _beam_model(self, name: str) -> StatefulLM:
        """The draft ``name`` as the stateful IR, which MTAD's beam search needs (it gathers cache
        rows by ``beam_idx``): the model itself, or for a draft on the paged graph (the default
        on CPU) a stateful ``mask`` copy, compiled on the first MTAD request and kept."""
        model = self.models[name]
        if not isinstance(model, paged.PagedLM):
            return model
        if name not in self._beam_models:
            copy = self._load_model(self.manifest.model(name), "mask", separate_decode=False)
            copy.warm_up()
            self._beam_models[name] = copy
        return self._beam_models[name]

    def _cost_table(self, name: str) -> costs.CostTable:
        """The model's step costs on its device: from the disk cache, or timed now (and cached)."""
        where = self.placements[name]
        try:
            device_name = str(self.core.get_property(where.device.split(":")[0], "FULL_DEVICE_NAME"))
        except RuntimeError:
            device_name = where.device
        key = costs.cost_key(
            self.folder, self.manifest.model(name).path, where.device, device_name,
            self.compile_props[name], self._passes_mode(name),
        )  # fmt: skip
        table = costs.load_table(self.folder, name, key)
        if table is None:
            table = costs.calibrate(self.models[name], max_context=self.max_context)
            table.key = key
            costs.save_table(self.folder, name, table)
            self._calibrating += table.seconds
        return table

    def _passes_mode(self, name: str) -> str:
        """The rollback mode, and whether 1-token passes have their own graph (both change the costs)."""
        model = self.models[name]
        return model.rollback_mode + ("+decode" if model.separate_decode else "")

    def calibrate(self, models: Sequence[str] | None = None) -> dict[str, costs.CostTable]:
        """Time (or load from the disk cache) the step costs ``draft_tokens="auto"`` needs.

        Happens by itself on the first ``"auto"`` call; call it after :func:`load` to pay the few
        seconds up front. Returns the cost table of each model.
        """
        return {name: self.costs.table(name) for name in (models or self.manifest.names())}

    @property
    def max_context(self) -> int:
        return self.manifest.max_context

    # -- building the chain of levels ---------------------------------------------------------
    def _chain(
        self,
        models: Sequence[str],
        k: int | str | Sequence[int | str],
        adaptive: bool,
        ngram: bool,
        min_conf: float,
        mtad: Mapping[str, Any] | None,
        greedy: bool = True,
        hybrid: bool = False,
    ) -> Speculator:
        """Target first: each model verifies for the one above; ``ngram`` adds prompt lookup last.

        ``k == "auto"`` gives every level a :class:`~ov_spec.runtime.cost_model.AutoDraftLength`
        (with ``adaptive`` or MTAD, "auto" starts from :data:`FALLBACK_DRAFT_TOKENS` instead).
        ``hybrid`` (under "auto"): the lowest level drafts by prompt lookup or by its draft model,
        whichever pays more each pass (a chain of the target alone stays alone).
        """
        proposer: Proposer | None = None
        rule = verify_lossless
        if ngram:
            proposer = self._lookup()
        chain = list(models)
        if mtad is not None:
            if len(chain) != 2 or ngram:
                raise UserError("MTAD needs exactly one draft model (models=[target, draft]) and no ngram")
            proposer = BeamProposer(self._beam_model(chain.pop()), width=int(mtad.get("width", 4)))
            rule = MtadRule(threshold=float(mtad.get("threshold", 0.5)))
        # The smallest model drafts by plain forward passes unless prompt lookup drafts for it.
        if len(chain) > 1 and proposer is None:
            proposer = ModelProposer(self.models[chain.pop()], min_confidence=min_conf)
            if hybrid:
                proposer = HybridProposer(self._lookup(), proposer)
        auto = k == AUTO and not adaptive and mtad is None
        if k == AUTO and not auto:
            k = FALLBACK_DRAFT_TOKENS
        ks = [k] * len(chain) if isinstance(k, (int, str)) else list(k)
        if len(ks) != len(chain):
            raise UserError(
                f"draft_tokens lists {len(ks)} lengths, but this chain has {_levels(len(chain))} "
                f"({', '.join(chain)}); pass one length per verifying level, a single length, or 'auto'"
            )
        if AUTO in ks and not auto:
            raise UserError("draft_tokens: 'auto' applies to every level at once; pass 'auto' alone")
        for depth in range(len(chain) - 1, -1, -1):
            if proposer is None:  # target-only: nothing drafts, the length is never used
                draft: Any = DraftLength(k=FALLBACK_DRAFT_TOKENS)
            elif auto:
                draft = self._auto_length(chain[depth], proposer, greedy)
            else:
                draft = DraftLength(k=ks[depth], adaptive=adaptive)
            proposer = Speculator(self.models[chain[depth]], proposer, draft, rule)
            rule = verify_lossless  # a lossy rule only where its proposals come in
        assert isinstance(proposer, Speculator)
        return proposer

    def _lookup(self) -> NgramProposer:
        lookup = NgramProposer()
        lookup.vocab_size = self.vocab_size
        return lookup

    def _auto_length(
        self, verifier: str, proposer: Proposer, greedy: bool
    ) -> costs.AutoDraftLength | costs.HybridLength:
        """The cost-model draft length of one level, with the cost per token of what drafts for it."""
        if isinstance(proposer, HybridProposer):
            return costs.HybridLength(
                self._auto_length(verifier, proposer.lookup, greedy),
                self._auto_length(verifier, proposer.draft, greedy),
                proposer,
            )
        bucket = None
        if isinstance(proposer, Speculator):
            below = proposer

            def drafter_cost(context: int) -> tuple[float, float]:
                return 1.0 / max(below.draft.rate(context), 1e-9), 0.0  # its rollbacks are in its rate

        elif isinstance(proposer, NgramProposer):
            bucket = proposer.bucket

            def drafter_cost(context: int) -> tuple[float, float]:
                return 0.0, 0.0  # the lookup's time is the loop's own overhead

        else:
            table_of = self.costs.table
            name = proposer.name

            def drafter_cost(context: int) -> tuple[float, float]:
                table = table_of(name)
                return table.pass_cost(1, context) + DRAFT_TOKEN_OVERHEAD_S, table.rollback_cost(context)

            def behind(sequence: Sequence[int]) -> tuple[float, bool]:
                lag = proposer.behind(sequence)
                seconds = costs.catch_up_seconds(table_of(name), lag, len(sequence), CATCH_UP_ONE_BY_ONE)
                return seconds, lag > 2  # missed a pass: 1 behind in step, 2 after a full accept

        # What drafts, level by level: a self-draft that drafts alone and one that verifies draft1
        # share a name but not their costs, so their memoized choices must not mix.
        source = proposer.name
        if isinstance(proposer, Speculator):
            lowest = proposer.levels()[-1].proposer
            source = ">".join([lv.name for lv in proposer.levels()] + ([lowest.name] if lowest else []))
        return costs.AutoDraftLength(
            self.costs, verifier, proposer.name, drafter_cost, greedy, bucket, source=source,
            behind=behind if isinstance(proposer, ModelProposer) else None,
        )  # fmt: skip

    def _auto_chain(
        self, names: list[str], ngram: bool, min_conf: float, greedy: bool, context: int, hybrid: bool = False
    ) -> tuple[Speculator, float]:
        """Which levels to use under "auto": the sub-chain (target first) with the best predicted
        tokens/s at ``context`` (under ``hybrid``, the best of its draft models: see below).
        Chains within 0.1% of the best tie (typically: none is predicted to pay, so each would
        decode alone); among those the one whose optimistic rate is highest wins, so exploring
        tries the most promising drafter, then the one with fewer levels. Returns it and its
        predicted rate (prompt lookup included)."""
        lower = names[1:]
        subsets = [[]] if ngram else []
        subsets += [[m for i, m in enumerate(lower) if mask >> i & 1] for mask in range(1, 1 << len(lower))]
        scored = []
        for subset in subsets:
            top = self._chain([names[0], *subset], AUTO, False, ngram, min_conf, None, greedy, hybrid)
            # A chain whose lowest level drafts by lookup or its draft model (hybrid) is scored
            # by the draft model: prompt lookup is the same in every such chain, and when its
            # last match predicts more than any draft model, every chain tied on it. The tie
            # then went to the highest optimistic rate: on the large pair, the 103M target's
            # int4 self-draft, slower than decoding alone at every k, instead of the 3M draft
            # that pays where lookup finds nothing (scripts/auto_parts.py).
            score = top.draft.draft if isinstance(top.draft, costs.HybridLength) else top.draft
            scored.append((score.rate(context), score.rate(context, optimistic=True), len(subset), top))
        best_rate = max(rate for rate, *_ in scored)
        tied = [entry for entry in scored if entry[0] >= best_rate / 1.001]
        top = max(tied, key=lambda entry: (entry[1], -entry[2]))[3]
        return top, float(top.draft.rate(context))

    def _resolve_models(self, models: Sequence[str] | None, use_draft: bool) -> list[str]:
        names = self.manifest.names()
        if not use_draft:
            return names[:1]
        if models is None:
            return names
        for name in models:
            self.manifest.model(name)  # raises with the list of names
        if not models or models[0] != names[0]:
            raise UserError(f"models must start with the target {names[0]!r}, got {list(models)}")
        return list(models)

    # -- generation ---------------------------------------------------------------------------
    def generate(
        self, prompt: str | Sequence[int], streamer: Streamer | None = None, **options: Any
    ) -> GenerationResult:
        """Generate from a prompt (text or token ids). Options as in :meth:`stream`.

        ``streamer`` receives each new text chunk as it is decoded; return True from it to stop.
        """
        it = self._run(prompt, streamer=streamer, **options)
        while True:
            try:
                next(it)
            except StopIteration as done:
                return done.value

    def stream(self, prompt: str | Sequence[int], **options: Any) -> Iterator[str]:
        """Yield text chunks as they are generated; the full result is the generator's return value.

        Options: ``max_new_tokens``, ``temperature`` (0 = greedy), ``top_k``, ``top_p``, ``seed``,
        ``stop`` (strings), ``draft_tokens`` (int, or one per level), ``adaptive`` (+2/-1 draft
        length), ``min_confidence`` (stop drafting below this draft probability), ``use_draft``
        (False = target-only baseline on the same compiled target), ``models`` (the chain to use,
        target first), ``ngram`` (True: prompt lookup as the lowest drafter; False: none; unset, under
        ``draft_tokens="auto"``: the lowest level drafts each pass by prompt lookup or by its draft
        model, whichever the cost model expects to pay more, or not at all), ``mtad`` (True or
        ``{"width": 4, "threshold": 0.5}``: MTAD beam drafting and joint-likelihood acceptance;
        NOT lossless, opt-in), ``chat`` (apply the chat template).
        """
        return (yield from self._run(prompt, incremental=True, **options))

    def _run(
        self,
        prompt: str | Sequence[int],
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: Sequence[str] | str | None = None,
        draft_tokens: DraftTokens = DEFAULT_DRAFT_TOKENS,
        adaptive: bool = False,
        min_confidence: float = 0.0,
        use_draft: bool = True,
        models: Sequence[str] | None = None,
        ngram: bool | None = None,
        mtad: Mapping[str, Any] | bool | None = None,
        chat: bool = False,
        streamer: Streamer | None = None,
        incremental: bool = False,
    ) -> Iterator[str]:
        """The request: validate, tokenize, run the speculative loop, detokenize, measure."""
        clock = time.perf_counter
        start = clock()
        params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        if int(max_new_tokens) != max_new_tokens or max_new_tokens <= 0:
            raise UserError(f"max_new_tokens must be a whole number > 0, got {max_new_tokens}")
        if not 0.0 <= min_confidence < 1.0:
            raise UserError(f"min_confidence must be in [0, 1), got {min_confidence}")
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if any(not s for s in stops):
            raise UserError("stop strings must be non-empty")
        draft_tokens = check_draft_tokens(draft_tokens)
        names = self._resolve_models(models, use_draft)
        if mtad is True:
            mtad = {}
        if isinstance(mtad, Mapping):
            _check_mtad(mtad)
        mtad_opts = mtad if use_draft and mtad not in (False, None) else None
        use_ngram = bool(ngram) and use_draft
        # ngram left unset under "auto": the lowest level also considers prompt lookup, each pass.
        hybrid = ngram is None and use_draft and draft_tokens == AUTO and not adaptive and mtad_opts is None
        # Validate the chain (lengths per level, MTAD's shape) before any tokenizing or timing.
        top = self._chain(
            names, draft_tokens, adaptive, use_ngram, min_confidence, mtad_opts, params.greedy, hybrid
        )
        prompt_ids = self._encode(prompt, chat)
        if len(prompt_ids) + max_new_tokens > self.max_context:
            raise UserError(
                f"prompt ({len(prompt_ids)} tokens) + max_new_tokens ({max_new_tokens}) exceeds the model's "
                f"context of {self.max_context} tokens; shorten the prompt or lower max_new_tokens"
            )
        auto = isinstance(top.draft, (costs.AutoDraftLength, costs.HybridLength))
        self._calibrating = 0.0
        predicted = 0.0
        if auto and len(names) + use_ngram > 2:  # a cascade: also choose which levels to use
            top, predicted = self._auto_chain(
                names, use_ngram, min_confidence, params.greedy, len(prompt_ids), hybrid
            )
        elif auto:
            predicted = top.draft.rate(len(prompt_ids))
        top.reset()
        rng = params.rng()
        eos = self.tokenizer.eos_token_ids
        # Text is decoded step by step only for someone who reads it (a streamer, a stream()
        # consumer, stop strings); otherwise once at the end: a detokenizer call costs about as
        # much as a small model's forward pass.
        live = incremental or streamer is not None or bool(stops)
        text_state = StopText(self.tokenizer.decode, stops)
        sequence = list(prompt_ids)
        generated: list[int] = []
        finish = "length"
        ttft = 0.0
        while len(generated) < max_new_tokens:
            step = top.step(sequence, params, rng, limit=max_new_tokens - len(generated))
            new = step.tokens
            for i, token in enumerate(new):
                if token in eos:
                    new, finish = new[: i + 1], "eos"
                    break
            sequence += new
            generated += new
            if not ttft:
                ttft = clock() - start
            if live:
                chunk = text_state.push([t for t in new if t not in eos])
                if text_state.stopped:
                    # token_ids end with the last whole token before the stop string: they decode to text.
                    generated, finish = list(text_state.ids), "stop"
                if chunk:
                    if streamer is not None and streamer(chunk) is True and finish != "stop":
                        finish = "cancelled"
                    yield chunk
            if finish != "length":
                break
        if live:  # text held back (a character still incomplete, a possible stop prefix) ends here
            rest = text_state.finish()
            if rest:
                if streamer is not None:
                    streamer(rest)
                yield rest
        text = text_state.text if live else self.tokenizer.decode([t for t in generated if t not in eos])
        metrics = self._metrics(top, len(prompt_ids), len(generated), ttft, clock() - start)
        if auto:
            metrics.draft_tokens = AUTO
        elif top.proposer is not None:
            metrics.draft_tokens = [lv.draft.start for lv in top.levels()]
        if auto:
            metrics.auto = self._auto_metrics(top, metrics, predicted)
        return GenerationResult(text, generated, finish, metrics, prompt_ids)

    def _encode(self, prompt: str | Sequence[int], chat: bool) -> list[int]:
        if isinstance(prompt, str):
            if not prompt.strip():
                raise UserError("the prompt is empty; pass some text")
            text = (
                self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}]) if chat else prompt
            )
            ids = self.tokenizer.encode(text)
        else:
            ids = [int(t) for t in prompt]
            bad = [t for t in ids if not 0 <= t < self.vocab_size]
            if bad:
                raise UserError(f"token ids must be in [0, {self.vocab_size}); got {bad[:5]}")
        if not ids:
            raise UserError("the prompt is empty after tokenization; pass some text")
        return ids

    def _metrics(
        self, top: Speculator, n_prompt: int, n_gen: int, ttft: float, total: float
    ) -> GenerationMetrics:
        levels = []
        for level in top.levels():
            s, m = level.stats, level.model.stats
            levels.append(
                LevelMetrics(
                    name=level.name,
                    device=self.placements[level.name].device,
                    passes=s.passes,
                    drafted=s.drafted,
                    accepted=s.accepted,
                    emitted=s.emitted,
                    mean_draft_length=mean_draft_length(s.drafted, s.passes),
                    acceptance_rate=ratio(s.accepted, s.drafted),
                    tokens_per_pass=ratio(s.emitted, s.passes),
                    infer_s=m.infer_s,
                    rollback_s=m.rollback_s,
                    drafter=level.proposer.name if level.proposer is not None else "",
                    draft_lengths=dict(sorted(s.draft_lengths.items())),
                )
            )
        used = [lv.model for lv in top.levels()]
        # The lowest drafter may own a model too (a ModelProposer); prompt lookup has none, but
        # its search is drafting work all the same.
        bottom = top.levels()[-1].proposer
        bottom_model = getattr(bottom, "model", None)
        if isinstance(bottom_model, StatefulLM):
            used.append(bottom_model)
        lookup_s = getattr(bottom, "lookup_s", 0.0)  # prompt lookup (alone or in a HybridProposer)
        target_s = top.model.stats.infer_s
        draft_s = sum(m.stats.infer_s for m in used[1:]) + lookup_s
        rollback_s = sum(m.stats.rollback_s for m in used)
        return GenerationMetrics(
            prompt_tokens=n_prompt,
            generated_tokens=n_gen,
            ttft_s=ttft,
            total_s=total,
            tpot_s=ratio(total - ttft, n_gen - 1),
            tokens_per_s=ratio(n_gen, total),
            target_passes=top.stats.passes,
            acceptance_rate=levels[0].acceptance_rate,
            tokens_per_pass=levels[0].tokens_per_pass,
            draft_s=draft_s,
            target_s=target_s,
            rollback_s=rollback_s,
            other_s=max(total - draft_s - target_s - rollback_s, 0.0),
            levels=levels,
        )

    def _auto_metrics(self, top: Speculator, m: GenerationMetrics, predicted: float) -> AutoMetrics:
        """Called only under "auto": every level's draft is an AutoDraftLength or HybridLength."""
        levels = top.levels()
        chain = [lv.name for lv in levels] + [levels[-1].proposer.name]
        first = top.draft.first
        target_alone = first.base if first is not None else 0.0
        return AutoMetrics(
            chain=chain,
            first_k=[lv.draft.first.k if lv.draft.first is not None else 0 for lv in levels],
            mean_k=[lv.mean_draft_length for lv in m.levels],
            explored=sum(lv.draft.explored for lv in levels),
            guarded=sum(lv.draft.guarded for lv in levels),
            predicted_tokens_per_s=ratio(top.draft.predicted_tokens, top.draft.predicted_s),
            measured_tokens_per_s=ratio(m.generated_tokens - 1, m.total_s - m.ttft_s),
            predicted_target_only_tokens_per_s=target_alone,
            predicted_at_start_tokens_per_s=predicted,
            calibration_s=self._calibrating,
            lookup_passes=_lookup_passes(levels[-1]),
        )


def _lookup_passes(level: Speculator) -> int:
    """Passes of the lowest level whose draft came from prompt lookup."""
    if isinstance(level.proposer, NgramProposer):
        return sum(n for k, n in level.stats.draft_lengths.items() if k > 0)
    return int(getattr(level.draft, "lookup_passes", 0))


def _levels(n: int) -> str:
    return "1 verifying level" if n == 1 else f"{n} verifying levels"


def _check_weights(path: Path, size_bytes: int) -> None:
    """A weights file that is missing or not the size export recorded is damaged: say which."""
    if not path.is_file():
        raise UserError(f"{path} is missing; the pipeline folder is incomplete, re-export it")
    actual = path.stat().st_size
    if size_bytes and actual != size_bytes:
        raise UserError(
            f"{path} has {actual} bytes, the manifest records {size_bytes}: the file is damaged or "
            "incompletely copied; copy it again or re-export the pipeline"
        )


def _token_map(folder: Path, entry: ModelEntry) -> tuple[np.ndarray | None, int | None]:
    """A pruned-vocabulary head's kept token ids and full vocabulary width (None, None: a full head)."""
    pruned = entry.pruned_head
    if not pruned:
        return None, None
    path = folder / entry.path / pruned["token_ids"]
    try:
        ids = np.load(path)
    except (OSError, ValueError) as err:
        raise UserError(
            f"cannot read {path} ({err}); the pipeline folder is incomplete, re-export it"
        ) from None
    if ids.ndim != 1 or ids.size != pruned.get("kept", ids.size):
        raise UserError(f"{path} does not match the manifest's pruned_head; re-export the pipeline")
    return ids.astype(np.int64), int(pruned["vocab_size"])


def _check_mtad(mtad: Mapping[str, Any]) -> None:
    unknown = set(mtad) - {"width", "threshold"}
    if unknown:
        raise UserError(f"mtad accepts width and threshold, not {sorted(unknown)}")
    width, threshold = mtad.get("width", 4), mtad.get("threshold", 0.5)
    if int(width) != width or width < 1:
        raise UserError(f"mtad width must be a whole number >= 1, got {width}")
    if not 0.0 < threshold <= 1.0:
        raise UserError(f"mtad threshold must be in (0, 1], got {threshold}")


__all__ = ["GenerationResult", "SpeculativePipeline", "load"]
