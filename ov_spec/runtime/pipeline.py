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

from ov_spec.errors import UserError
from ov_spec.manifest import Manifest, ModelEntry
from ov_spec.runtime import devices as placement
from ov_spec.runtime.graph import keep_last_logits
from ov_spec.runtime.metrics import GenerationMetrics, LevelMetrics, ratio
from ov_spec.runtime.proposers import BeamProposer, ModelProposer, NgramProposer, Proposer
from ov_spec.runtime.sampling import SamplingParams
from ov_spec.runtime.speculator import DraftLength, Speculator
from ov_spec.runtime.stateful import StatefulLM, is_stateful, kv_sequence_axis
from ov_spec.runtime.tokenizer import IncrementalDecoder, Tokenizer
from ov_spec.runtime.verify import MtadRule, verify_lossless

Streamer = Callable[[str], Any]  # receives text chunks; returning True stops the generation
DEFAULT_DRAFT_TOKENS = 4
MAX_DRAFT_TOKENS = 16  # NPU compiles for at most this many tokens per verification pass (+1)


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
    rollback: str = "trim",
) -> SpeculativePipeline:
    """Load an exported pipeline folder (``ov_spec.json`` + one sub-folder per model).

    ``devices`` is a placement config (TOML/JSON path or dict; see :mod:`ov_spec.runtime.devices`);
    ``rollback`` picks the KV-cache rollback strategy (``"trim"``: bit-exact, default; ``"mask"``:
    no cache copies, see :mod:`ov_spec.runtime.stateful`).
    """
    return SpeculativePipeline(Path(folder), devices, device_overrides, property_overrides, rollback)


class SpeculativePipeline:
    """A target and its draft levels, compiled on their devices, ready to generate."""

    def __init__(
        self,
        folder: Path,
        devices: str | Path | Mapping[str, Any] | None = None,
        device_overrides: Sequence[str] = (),
        property_overrides: Sequence[str] = (),
        rollback: str = "trim",
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
        self.models: dict[str, StatefulLM] = {}
        for entry in self.manifest.by_level():
            model = self.core.read_model(folder / entry.path / "openvino_model.xml")
            if not is_stateful(model):
                raise UserError(
                    f"{entry.name} is not a stateful IR; re-export it with `python -m ov_spec.export`"
                )
            where = self.placements[entry.name]
            if not where.device.startswith("NPU"):  # NPUW builds its own static prefill/decode graphs
                keep_last_logits(model)
            props = placement.compile_properties(where, MAX_DRAFT_TOKENS + 1)
            compiled = placement.compile_model(self.core, model, entry.name, where, props)
            token_map, width = _token_map(folder, entry)  # a pruned-vocabulary draft head, else None
            self.models[entry.name] = StatefulLM(
                compiled, kv_sequence_axis(model), entry.name, rollback, token_map=token_map, vocab_size=width
            )
        self.vocab_size = self.models[names[0]].vocab_size

    @property
    def max_context(self) -> int:
        return self.manifest.max_context

    # -- building the chain of levels ---------------------------------------------------------
    def _chain(
        self,
        models: Sequence[str],
        k: int | Sequence[int],
        adaptive: bool,
        ngram: bool,
        min_conf: float,
        mtad: Mapping[str, Any] | None,
    ) -> Speculator:
        """Target first: each model verifies for the one above; ``ngram`` adds prompt lookup last."""
        proposer: Proposer | None = None
        rule = verify_lossless
        if ngram:
            proposer = NgramProposer()
            proposer.vocab_size = self.vocab_size
        chain = list(models)
        if mtad is not None:
            if len(chain) != 2 or ngram:
                raise UserError("MTAD needs exactly one draft model (models=[target, draft]) and no ngram")
            proposer = BeamProposer(self.models[chain.pop()], width=int(mtad.get("width", 4)))
            rule = MtadRule(threshold=float(mtad.get("threshold", 0.5)))
        # The smallest model drafts by plain forward passes unless prompt lookup drafts for it.
        if len(chain) > 1 and proposer is None:
            proposer = ModelProposer(self.models[chain.pop()], min_confidence=min_conf)
        ks = [k] * len(chain) if isinstance(k, int) else list(k)
        if len(ks) != len(chain):
            raise UserError(
                f"draft_tokens lists {len(ks)} lengths; this chain has {len(chain)} verifying levels"
            )
        for depth in range(len(chain) - 1, -1, -1):
            draft = DraftLength(k=ks[depth], adaptive=adaptive, k_max=MAX_DRAFT_TOKENS)
            proposer = Speculator(self.models[chain[depth]], proposer, draft, rule)
            rule = verify_lossless  # a lossy rule only where its proposals come in
        assert isinstance(proposer, Speculator)
        return proposer

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
        target first), ``ngram`` (prompt lookup as the lowest drafter), ``mtad`` (True or
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
        draft_tokens: int | Sequence[int] = DEFAULT_DRAFT_TOKENS,
        adaptive: bool = False,
        min_confidence: float = 0.0,
        use_draft: bool = True,
        models: Sequence[str] | None = None,
        ngram: bool = False,
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
        names = self._resolve_models(models, use_draft)
        if mtad is True:
            mtad = {}
        if isinstance(mtad, Mapping):
            _check_mtad(mtad)
        top = self._chain(
            names,
            draft_tokens,
            adaptive,
            ngram and use_draft,
            min_confidence,
            mtad if use_draft and mtad is not False else None,
        )
        prompt_ids = self._encode(prompt, chat)
        if len(prompt_ids) + max_new_tokens > self.max_context:
            raise UserError(
                f"prompt ({len(prompt_ids)} tokens) + max_new_tokens ({max_new_tokens}) exceeds the model's "
                f"context of {self.max_context} tokens; shorten the prompt or lower max_new_tokens"
            )
        top.reset()
        rng = params.rng()
        eos = self.tokenizer.eos_token_ids
        # Text is decoded step by step only for someone who reads it (a streamer, a stream()
        # consumer, stop strings); otherwise once at the end: a detokenizer call costs about as
        # much as a small model's forward pass.
        live = incremental or streamer is not None or bool(stops)
        decoder = IncrementalDecoder(self.tokenizer)
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
                before = len(decoder.text)
                decoder.push([t for t in new if t not in eos])
                hit = _find_stop(decoder.text, stops, before)
                if hit is not None:
                    decoder.text, finish = decoder.text[:hit], "stop"
                chunk = decoder.text[before:]
                if chunk:
                    if streamer is not None and streamer(chunk) is True:
                        finish = "cancelled"
                    yield chunk
            if finish != "length":
                break
        text = decoder.text if live else self.tokenizer.decode([t for t in generated if t not in eos])
        metrics = self._metrics(top, len(prompt_ids), len(generated), ttft, clock() - start)
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
                    mean_draft_length=ratio(sum(s.draft_lengths), len(s.draft_lengths)),
                    acceptance_rate=ratio(s.accepted, s.drafted),
                    tokens_per_pass=ratio(s.emitted, s.passes),
                    infer_s=m.infer_s,
                    rollback_s=m.rollback_s,
                )
            )
        used = [lv.model for lv in top.levels()]
        # The lowest drafter may own a model too (a ModelProposer); prompt lookup has none.
        bottom_model = getattr(top.levels()[-1].proposer, "model", None)
        if isinstance(bottom_model, StatefulLM):
            used.append(bottom_model)
        target_s = top.model.stats.infer_s
        draft_s = sum(m.stats.infer_s for m in used[1:])
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


def _find_stop(text: str, stops: list[str], new_from: int) -> int | None:
    """Earliest index where a stop string starts, looking only where new text could complete one."""
    best = None
    for s in stops:
        i = text.find(s, max(0, new_from - len(s) + 1))
        if i >= 0 and (best is None or i < best):
            best = i
    return best


__all__ = ["GenerationResult", "SpeculativePipeline", "load"]
