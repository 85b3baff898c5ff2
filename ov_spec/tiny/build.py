"""The build stages of each preset, run inside a temp folder that the cache renames into place.

Folder layout (all presets)::

    target/          Hugging Face model folder (config, model.safetensors, tokenizer, generation_config)
    draft/           same tokenizer files as target/
    heldout.txt      held-out standard-library code, never used for training
    report.json      numbers and timings (written last: its presence marks a complete build)
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ov_spec.tiny.cache import REPORT_NAME
from ov_spec.tiny.presets import BUILDER_VERSION, ModelSpec, PresetSpec, TrainSpec, count_params

# Characters of held-out code written to heldout.txt (~60k tokens: enough to evaluate on).
HELDOUT_CHARS = 200_000

Log = Callable[[str], None]


class StageClock:
    """Wall seconds per stage, for the report."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self._last = self.start
        self.stages: dict[str, float] = {}

    def lap(self, stage: str) -> float:
        now = time.monotonic()
        self.stages[stage] = round(now - self._last, 2)
        self._last = now
        return self.stages[stage]

    def total(self) -> float:
        return round(time.monotonic() - self.start, 2)


def library_versions() -> dict[str, str]:
    import tokenizers
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


def write_report(folder: Path, report: dict[str, Any]) -> None:
    text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    (folder / REPORT_NAME).write_text(text, encoding="utf-8")


def _stage_costs(spec: PresetSpec) -> dict[str, float]:
    """Planned cost of each training stage, in run order (~ tokens x parameters touched).

    A training step touches a model's parameters ~3 times (forward + backward); distillation
    adds one forward of the teacher (the target).
    """
    v = spec.vocab_size

    def tokens(train: TrainSpec) -> int:
        return train.steps * train.batch_size * train.seq_len

    costs: dict[str, float] = {}
    if spec.growth is not None:
        costs["narrow"] = tokens(spec.growth.train) * 3 * count_params(spec.growth.narrow, v)
    if spec.target_train is not None:
        costs["target"] = tokens(spec.target_train) * 3 * count_params(spec.target, v)
    if spec.draft_train is not None:
        teacher = count_params(spec.target, v) if spec.draft_train.distill_weight > 0 else 0
        costs["draft"] = tokens(spec.draft_train) * (3 * count_params(spec.draft, v) + teacher)
    return costs


class _Deadlines:
    """Splits what is left of the budget across the remaining stages by planned cost.

    A stage that finishes early leaves its time to the later ones.
    """

    def __init__(self, deadline: float | None, costs: dict[str, float]):
        self.deadline = deadline
        self.costs = dict(costs)

    def next(self, stage: str) -> float | None:
        if self.deadline is None:
            return None
        share = self.costs[stage] / sum(self.costs.values())
        del self.costs[stage]
        now = time.monotonic()
        return now + max(0.0, self.deadline - now) * share


def train_pair(
    spec: PresetSpec,
    seed: int,
    tokens,
    deadline: float | None,
    progress: bool,
    log: Log,
    clock: StageClock,
    training: dict[str, Any],
):
    """Train the target (growing it if the recipe says so), then the draft; returns both.

    Fills ``training`` with one :class:`TrainResult` dict per stage.
    """
    from ov_spec.tiny.models import copy_matching, derive_seed, new_model
    from ov_spec.tiny.train import train_model
    from ov_spec.tiny.widen import widen_llama

    deadlines = _Deadlines(deadline, _stage_costs(spec))

    def run(stage: str, model, train: TrainSpec, teacher=None) -> None:
        result = train_model(
            model,
            tokens,
            train,
            derive_seed(seed, f"{stage}-train"),
            deadline=deadlines.next(stage),
            teacher=teacher,
            progress=progress,
            desc=stage,
        )
        training[stage] = result.to_dict()
        clock.lap(f"train_{stage}")
        log(
            f"{stage}: {result.steps_done}/{result.steps_planned} steps, "
            f"loss {result.first_loss} -> {result.last_loss}, {result.seconds:.0f} s"
        )

    def fresh(model_spec: ModelSpec, tag: str):
        return new_model(model_spec, spec.vocab_size, spec.max_position_embeddings, derive_seed(seed, tag))

    draft = fresh(spec.draft, "draft")
    growth = spec.growth
    if growth is None:
        target = fresh(spec.target, "target")
    else:
        narrow = fresh(growth.narrow, "narrow")
        run("narrow", narrow, growth.train)
        if growth.draft_from_narrow:
            copy_matching(draft, narrow)
        t = spec.target
        target = widen_llama(
            narrow,
            hidden_size=t.hidden_size,
            num_heads=t.num_heads,
            num_kv_heads=t.num_kv_heads,
            intermediate_size=t.intermediate_size,
            noise=growth.noise,
            seed=derive_seed(seed, "grow"),
        )
        del narrow
    if spec.target_train is not None:
        run("target", target, spec.target_train)
    if spec.draft_train is not None:
        run("draft", draft, spec.draft_train, teacher=target)
    return target, draft


def build_trained_or_random(
    out: Path,
    spec: PresetSpec,
    seed: int,
    key: str,
    budget_s: float | None,
    progress: bool,
    log: Log,
) -> dict[str, Any]:
    """Build the "default" (trained) or "random" preset into ``out``; returns the report."""
    import torch

    from ov_spec.tiny import corpus as corpus_mod
    from ov_spec.tiny.evaluate import evaluate_pair, heldout_windows
    from ov_spec.tiny.models import derive_seed, new_model, save_model
    from ov_spec.tiny.tokenizer import encode_texts, save_tokenizer, train_bpe

    clock = StageClock()
    deadline = clock.start + budget_s if budget_s is not None else None

    corpus = corpus_mod.load_corpus()
    heldout_text = corpus.heldout_sample(HELDOUT_CHARS)
    (out / "heldout.txt").write_text(heldout_text, encoding="utf-8")
    clock.lap("corpus")
    train_bytes = sum(len(t.encode("utf-8")) for t in corpus.train.values())
    log(
        f"corpus: {len(corpus.train)} training files ({train_bytes / 1e6:.1f} MB), {len(corpus.heldout)} held out"
    )

    tok_texts = corpus.train_slice(spec.tokenizer_train_bytes)
    tok = train_bpe(tok_texts, spec.vocab_size)
    tok_dir = out / "tokenizer"
    tok_dir.mkdir()
    save_tokenizer(tok, tok_dir, spec.max_position_embeddings)
    clock.lap("tokenizer")
    tok_bytes = sum(len(t.encode("utf-8")) for t in tok_texts)
    log(f"tokenizer: byte-level BPE, {tok.get_vocab_size()} tokens, trained on {tok_bytes / 1e6:.1f} MB")

    training: dict[str, Any] = {}
    data_tokens = 0
    if spec.target_train is None and spec.draft_train is None and spec.growth is None:
        target = new_model(
            spec.target, spec.vocab_size, spec.max_position_embeddings, derive_seed(seed, "target")
        )
        draft = new_model(
            spec.draft, spec.vocab_size, spec.max_position_embeddings, derive_seed(seed, "draft")
        )
        clock.lap("init_models")
    else:
        data_texts = corpus.shuffled_train(derive_seed(seed, "data-files"), spec.data_bytes)
        tokens = torch.tensor(encode_texts(tok, data_texts), dtype=torch.int32)
        data_tokens = int(tokens.numel())
        clock.lap("data")
        log(f"data: {data_tokens} training tokens from {len(data_texts)} files")
        target, draft = train_pair(spec, seed, tokens, deadline, progress, log, clock, training)

    save_model(target, out / "target", tok_dir)
    save_model(draft, out / "draft", tok_dir)
    shutil.rmtree(tok_dir)
    clock.lap("save")

    heldout_ids = torch.tensor(tok.encode(heldout_text).ids)
    windows = heldout_windows(heldout_ids, spec.eval_seq_len, spec.eval_windows)
    evaluation = evaluate_pair(target, draft, windows)
    clock.lap("eval")
    log(
        f"eval: ppl target {evaluation['ppl_target']}, draft {evaluation['ppl_draft']}, "
        f"agreement {evaluation['agreement']} on {evaluation['tokens']} held-out tokens"
    )

    return {
        "builder_version": BUILDER_VERSION,
        "preset": spec.name,
        "seed": seed,
        "key": key,
        "params": {
            "target": target.num_parameters(),
            "draft": draft.num_parameters(),
            "draft_over_target": round(draft.num_parameters() / target.num_parameters(), 4),
        },
        "spec": spec.to_dict(),
        "corpus": {
            "stdlib": str(corpus_mod.stdlib_root()),
            "fingerprint": corpus.fingerprint,
            "train_files": len(corpus.train),
            "train_bytes": train_bytes,
            "heldout_files": sorted(corpus.heldout),
            "dropped_duplicates": corpus.dropped_duplicates,
            "tokenizer_train_bytes": tok_bytes,
            "model_train_tokens_available": data_tokens,
        },
        "training": training,
        "budget_s": budget_s,
        "budget_hit": any(r["budget_hit"] for r in training.values()),
        "eval": evaluation,
        "seconds": {**clock.stages, "total": clock.total()},
        "versions": library_versions(),
    }


def build_large(
    out: Path,
    spec: PresetSpec,
    seed: int,
    key: str,
    base,  # TinyPair of the base ("default") preset
    progress: bool,
    log: Log,
) -> dict[str, Any]:
    """Widen the trained default target into ``out``; the draft is the default draft, copied."""
    import torch
    from tokenizers import Tokenizer

    from ov_spec.tiny.evaluate import (
        closeness,
        heldout_windows,
        model_logits,
        pair_stats,
        perplexity_from_logits,
    )
    from ov_spec.tiny.models import derive_seed, load_model, save_model
    from ov_spec.tiny.widen import widen_llama

    assert spec.widen is not None
    clock = StageClock()
    source = load_model(base.target)
    w = spec.widen
    wide = widen_llama(
        source,
        hidden_size=w.hidden_size,
        num_heads=w.num_heads,
        num_kv_heads=w.num_kv_heads,
        intermediate_size=w.intermediate_size,
        noise=w.noise,
        seed=derive_seed(seed, "widen"),
    )
    expected = count_params(spec.target, spec.vocab_size)
    assert wide.num_parameters() == expected, (wide.num_parameters(), expected)
    clock.lap("widen")
    log(f"widen: {source.num_parameters()} -> {wide.num_parameters()} parameters")

    save_model(wide, out / "target", base.target)
    shutil.copytree(base.draft, out / "draft")
    shutil.copyfile(base.heldout, out / "heldout.txt")
    clock.lap("save")

    tokenizer = Tokenizer.from_file(str(base.target / "tokenizer.json"))
    heldout_ids = torch.tensor(tokenizer.encode(base.heldout.read_text(encoding="utf-8")).ids)
    windows = heldout_windows(heldout_ids, spec.eval_seq_len, spec.eval_windows)
    # The real correctness check: does the wide model still predict like the trained one?
    wide_logits = model_logits(wide, windows)
    source_logits = model_logits(source, windows)
    fidelity = closeness(source_logits, wide_logits)
    fidelity["ppl_source"] = round(perplexity_from_logits(source_logits, windows), 3)
    del source_logits
    draft = load_model(base.draft)
    evaluation = pair_stats(wide_logits, model_logits(draft, windows), windows)
    clock.lap("eval")
    log(
        f"eval: max |logit diff| {fidelity['max_abs_logit_diff']:.2e}, top-1 agreement with the "
        f"default target {fidelity['top1_agreement']}, draft agreement {evaluation['agreement']}"
    )
    return {
        "builder_version": BUILDER_VERSION,
        "preset": spec.name,
        "seed": seed,
        "key": key,
        "base": {"preset": spec.base_preset, "root": str(base.root), "key": base.report.get("key")},
        "params": {
            "target": wide.num_parameters(),
            "draft": draft.num_parameters(),
            "source_target": source.num_parameters(),
            "draft_over_target": round(draft.num_parameters() / wide.num_parameters(), 4),
        },
        "spec": spec.to_dict(),
        "training": {},  # nothing trained here; see the base report
        "budget_s": base.report.get("budget_s"),
        "budget_hit": bool(base.report.get("budget_hit", False)),
        "widen_fidelity": fidelity,
        "eval": evaluation,
        "seconds": {**clock.stages, "total": clock.total()},
        "versions": library_versions(),
    }
