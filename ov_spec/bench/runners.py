"""Runners: run one case on one prompt and time it, with ov_spec or openvino.genai.

Both engines load the very same files (each model sub-folder of a pipeline folder is a complete
optimum export that openvino.genai can load) and are timed the same way: wall time around one
``generate`` call, prompt text in, text out (tokenization and detokenization included). Loaded
pipelines are cached, so a case costs one compile per distinct placement.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ov_spec.bench.config import BenchConfig
from ov_spec.bench.sweep import Case, Variant
from ov_spec.errors import UserError


@dataclass
class Outcome:
    """One timed generation."""

    seconds: float  # wall time of the generate call
    generated: int  # new tokens
    text: str
    token_ids: list[int] | None = None  # ov_spec only (genai returns text)
    prompt_tokens: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)  # the engine's own counters

    @property
    def tokens_per_s(self) -> float:
        return self.generated / self.seconds if self.seconds > 0 else 0.0


class OvSpecRunner:
    """Runs ov_spec cases; keeps one loaded pipeline per (variant, placement, rollback)."""

    def __init__(self, config: BenchConfig, variants: dict[str, Variant]) -> None:
        self.config = config
        self.variants = variants
        self._pipes: dict[tuple, Any] = {}

    def pipeline(self, variant: str, placement: dict[str, str], rollback: str | None = None) -> Any:
        """The loaded pipeline with models placed as ``placement`` says (others on the target's device)."""
        v = self.variants[variant]
        names = v.manifest.names()
        full = {name: placement.get(name, placement.get(names[0], "CPU")) for name in names}
        key = (variant, tuple(sorted(full.items())), rollback or self.config.rollback[0])
        if key not in self._pipes:
            import ov_spec

            props = [f"{n}.{k}={val}" for n in names for k, val in self.config.properties_for(n).items()]
            self._pipes[key] = ov_spec.load(
                v.folder,
                device_overrides=[f"{n}={d}" for n, d in full.items()],
                property_overrides=props,
                rollback=key[2],
            )
        return self._pipes[key]

    def pipeline_for(self, case: Case) -> Any:
        return self.pipeline(case.variant, dict(zip(case.chain, case.devices)), case.rollback or None)

    def options(self, case: Case, seed: int) -> dict[str, Any]:
        """``generate`` keyword arguments for a case."""
        opts: dict[str, Any] = {
            "max_new_tokens": self.config.max_new_tokens,
            "seed": seed,
            **self.config.sampling_options(case.sampling),
        }
        if not case.speculative:
            return {**opts, "use_draft": False}
        opts.update(
            models=list(case.chain),
            draft_tokens="auto" if case.auto else case.k,
            adaptive=case.adaptive,
            ngram=True if case.ngram else None,  # unset: under "auto", the default (hybrid) drafter
            min_confidence=case.confidence,
        )
        if case.mtad:
            opts["mtad"] = {"width": self.config.mtad_width, "threshold": self.config.mtad_threshold}
        return opts

    def run(self, case: Case, prompt: str | list[int], seed: int) -> Outcome:
        pipe = self.pipeline_for(case)
        start = time.perf_counter()
        result = pipe.generate(prompt, **self.options(case, seed))
        seconds = time.perf_counter() - start
        return Outcome(
            seconds=seconds,
            generated=len(result.token_ids),
            text=result.text,
            token_ids=list(result.token_ids),
            prompt_tokens=len(result.prompt_token_ids),
            metrics=result.metrics.to_dict(),
        )


class GenaiRunner:
    """Runs openvino.genai baselines on the pipeline folder's model sub-folders."""

    def __init__(self, config: BenchConfig, variants: dict[str, Variant]) -> None:
        self.config = config
        self.variants = variants
        self._pipes: dict[tuple, Any] = {}
        try:
            import openvino_genai
        except ImportError:
            raise UserError(
                "openvino.genai baselines need openvino-genai: pip install 'ov_spec[bench]' (or pass --no-genai)"
            ) from None
        self._genai = openvino_genai

    def pipeline(self, case: Case) -> Any:
        v = self.variants[case.variant]
        target = v.folder / v.manifest.model(case.chain[0]).path
        draft = v.folder / v.manifest.model(case.chain[1]).path if len(case.chain) > 1 else None
        key = (case.variant, case.chain, case.devices, case.ngram, case.backend)
        if key not in self._pipes:
            g = self._genai
            kwargs: dict[str, Any] = dict(self.config.properties_for(case.chain[0]))
            if draft is not None:
                draft_props = self.config.properties_for(case.chain[1])
                kwargs["draft_model"] = g.draft_model(str(draft), case.devices[1], **draft_props)
            if case.ngram:
                kwargs["prompt_lookup"] = True
            if case.backend:
                kwargs["ATTENTION_BACKEND"] = case.backend
            if case.backend != "SDPA":
                # The paged-attention pipeline caches prompt prefixes across calls, so repeats of a
                # prompt skip their prefill (measured: 8.9 s -> 0.19 s TTFT for 800 tokens on
                # SmolLM2-135M). ov_spec has no such cache; time both engines without one.
                scheduler = g.SchedulerConfig()
                scheduler.enable_prefix_caching = False
                kwargs["scheduler_config"] = scheduler
            self._pipes[key] = g.LLMPipeline(str(target), case.devices[0], **kwargs)
        return self._pipes[key]

    def generation_config(self, case: Case, seed: int) -> Any:
        g = self._genai
        cfg = g.GenerationConfig(max_new_tokens=self.config.max_new_tokens, apply_chat_template=False)
        if case.sampling != "greedy":
            cfg.do_sample = True
            cfg.temperature = self.config.temperature
            cfg.top_p = self.config.top_p
            if self.config.top_k:
                cfg.top_k = self.config.top_k
            cfg.rng_seed = seed
        if case.confidence:
            cfg.assistant_confidence_threshold = case.confidence
        elif case.k:
            cfg.num_assistant_tokens = case.k
        if case.ngram:
            cfg.max_ngram_size = 3
        return cfg

    def run(self, case: Case, prompt: str | list[int], seed: int) -> Outcome:
        if not isinstance(prompt, str):
            raise UserError("openvino.genai baselines take text prompts")
        pipe = self.pipeline(case)
        cfg = self.generation_config(case, seed)
        start = time.perf_counter()
        result = pipe.generate([prompt], cfg)
        seconds = time.perf_counter() - start
        perf = result.perf_metrics
        metrics: dict[str, Any] = {
            "prompt_tokens": perf.get_num_input_tokens(),
            "generated_tokens": perf.get_num_generated_tokens(),
            "ttft_s": perf.get_ttft().mean / 1e3,
            "tpot_s": perf.get_tpot().mean / 1e3,
            "tokens_per_s": perf.get_throughput().mean,
        }
        extended = result.extended_perf_metrics
        if extended is not None and hasattr(extended, "get_num_draft_tokens"):
            metrics.update(genai_speculative_counters(extended))
        return Outcome(
            seconds=seconds,
            generated=metrics["generated_tokens"],
            text=result.texts[0],
            prompt_tokens=metrics["prompt_tokens"],
            metrics=metrics,
        )


class Runners:
    """Dispatch a case to its engine's runner; engines load lazily."""

    def __init__(self, config: BenchConfig, variants: list[Variant]) -> None:
        self.config = config
        self.variants = {v.label: v for v in variants}
        self.ov_spec = OvSpecRunner(config, self.variants)
        self._genai: GenaiRunner | None = None

    @property
    def genai(self) -> GenaiRunner:
        if self._genai is None:
            self._genai = GenaiRunner(self.config, self.variants)
        return self._genai

    def run(self, case: Case, prompt: str, seed: int) -> Outcome:
        runner = self.genai if case.engine == "genai" else self.ov_spec
        return runner.run(case, prompt, seed)


def genai_speculative_counters(extended: Any) -> dict[str, Any]:
    """What openvino.genai's speculative counters mean, checked on a run (2026.4):

    - ``get_num_draft_tokens()``: draft candidates offered to the main model for validation;
    - ``get_num_accepted_tokens()``: of those, the ones the main model accepted;
    - ``raw_metrics.m_batch_sizes``: tokens emitted per main-model iteration, the first being the
      prefill. Its length minus one is the number of verification passes, counted, not inferred.

    A self-draft greedy run of 40 tokens at k=4 gave 28 drafted, 28 accepted and batches
    ``[1, 5, 5, 5, 5, 5, 5, 5, 4]``: 8 passes and 4.88 tokens per pass, where the old estimate
    ``passes = (generated - 1) - accepted`` gave 11 passes and 3.55 tokens per pass.
    """
    drafted, accepted = extended.get_num_draft_tokens(), extended.get_num_accepted_tokens()
    out: dict[str, Any] = {
        "drafted": drafted,
        "accepted": accepted,
        "acceptance_rate": accepted / drafted if drafted else 0.0,
    }
    batches = list(getattr(extended.raw_metrics, "m_batch_sizes", []) or [])
    if len(batches) > 1:
        out["passes"] = len(batches) - 1
        out["emitted"] = int(sum(batches[1:]))
    return out
