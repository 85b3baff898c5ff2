"""``export_pipeline``: sources -> checks -> conversion -> compression -> preview -> pipeline folder.

The order matters for the user: everything that can be checked cheaply (flags, recipe, output
folder, sources, tokenizers, group sizes, text files) is checked before the first minute of
conversion, and nothing is written to the output until the whole pipeline is ready.
"""

from __future__ import annotations

import errno
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ov_spec.errors import UserError
from ov_spec.export import package
from ov_spec.export.compat import (
    ModelInfo,
    check_compatible,
    checkpoint_parameters,
    inspect_source,
    read_text,
)
from ov_spec.export.compress import (
    CompressionConfig,
    calibration_dataset,
    compress_model,
    count_parameters,
    weight_types,
)
from ov_spec.export.convert import MODEL_XML, convert_checkpoint, quiet_libraries
from ov_spec.export.preview import PreviewModel, run_preview, token_chunks
from ov_spec.export.prune import KEPT_TOKENS_FILE, KeptTokens, choose_kept_tokens, prune_lm_head
from ov_spec.export.recipe import ModelSpec, Recipe
from ov_spec.export.report import Progress, SummaryRow, check_interrupted, summary_table
from ov_spec.export.sources import ResolvedSource, resolve_source
from ov_spec.manifest import Manifest, ModelEntry

_VERSIONED = (
    "openvino",
    "openvino-tokenizers",
    "nncf",
    "optimum-intel",
    "optimum",
    "transformers",
    "torch",
    "ov_spec",
)


@dataclass
class _Base:
    """One conversion of one source, shared by every model made from it."""

    source: ResolvedSource
    dtype: str  # fp32 | fp16
    folder: Path
    seconds: float = 0.0
    num_parameters: int = 0
    charged: bool = False  # conversion time already shown in a model's row


def export_pipeline(
    target: str | None = None,
    drafts: list[str] | None = None,
    output: str | Path | None = None,
    self_draft: str | CompressionConfig | bool | None = None,
    formats: dict[str, Any] | None = None,
    force: bool = False,
    *,
    recipe: str | Path | Recipe | None = None,
    settings: dict[str, Any] | None = None,
    calibration_text: str | Path | None = None,
    convert_dtype: str | None = None,
    preview: bool | None = None,
    preview_text: str | Path | None = None,
    preview_chunks: int | None = None,
    preview_tokens: int | None = None,
    draft_vocab: int | list[int | None] | None = None,
    quiet: bool = False,
    verbose: bool = False,
) -> Manifest:
    """Export a target and its drafts into one pipeline folder; return its manifest.

    Args:
        target: checkpoint folder, hub id or ``tiny:PRESET/ROLE`` of the target (level 0).
        drafts: sources of the drafts, largest first (levels 1, 2, ... below any self-draft).
        output: the pipeline folder to create.
        self_draft: a weight format (e.g. ``"mxfp4"``) to add the target's own compressed weights
            at level 1 (ML-SpecQD); None keeps the recipe's choice, ``"none"`` removes it.
        formats: per-model weight formats: ``{"target": "int8_asym", "draft": "int4_sym"}``
            (``"draft"`` may be a list, one per draft; ``"draft2"`` addresses one draft); values
            may also be :class:`CompressionConfig` or dicts of its fields.
        force: replace ``output`` if it holds an earlier pipeline.
        recipe: a TOML recipe file (or :class:`Recipe`); the arguments above override it.
        settings: NNCF settings for every model whose format accepts them
            (``group_size``, ``ratio``, ``awq``, ``scale_estimation``, ``gptq``, ``all_layers``,
            ``backup_mode``, ``group_size_fallback``).
        calibration_text: local text file for AWQ / scale estimation / GPTQ.
        convert_dtype: ``auto`` (default), ``fp32`` or ``fp16``: precision of the uncompressed conversion.
        preview: run the acceptance preview (default True).
        preview_text, preview_chunks, preview_tokens: preview text file and its chunking.
        draft_vocab: prune each draft's LM head to its N most frequent tokens (FR-Spec), one N for all
            drafts or one per draft; 0 / None keeps the full head (see :mod:`ov_spec.export.prune`).
        quiet: no progress lines. verbose: let optimum/NNCF print their own logs.
    """
    progress = Progress(quiet=quiet)
    plan = recipe if isinstance(recipe, Recipe) else Recipe.load(recipe) if recipe else Recipe()
    plan.override(
        target=target,
        drafts=list(drafts) if drafts is not None else None,
        self_draft=self_draft,
        formats=formats,
        settings=settings,
        calibration_text=str(calibration_text) if calibration_text else None,
        convert_dtype=convert_dtype,
        preview={
            "enabled": preview,
            "text": str(preview_text) if preview_text else None,
            "chunks": preview_chunks,
            "tokens": preview_tokens,
        },
        draft_vocab=draft_vocab,
    )
    specs = plan.validate()
    if output is None:
        raise UserError("no output folder; pass --output DIR")
    out = Path(output).expanduser().absolute()
    package.check_output(out, force)
    checked = _check_inputs(plan, specs, progress, verbose)

    staging = package.Staging(out)
    try:
        manifest, rows = _export_into(staging.path, plan, specs, checked, progress, verbose)
        check_interrupted()  # last chance: never publish an export the user asked to stop
        staging.publish()
    except BaseException as err:  # includes KeyboardInterrupt: never leave a half-written folder
        disk_full = _is_disk_full(err, out.parent)  # decide before the cleanup frees the space again
        staging.discard()
        if disk_full:
            raise UserError(
                f"no space left on the disk of {out.parent}; free some space or pass --output on another disk"
            ) from None
        raise
    progress.log(f"pipeline written to {out}")
    if not quiet:
        print(summary_table(rows), flush=True)
    return manifest


@dataclass
class _Checked:
    """What the checks found out, keyed by source string as written."""

    sources: dict[str, ResolvedSource]
    infos: dict[str, ModelInfo]
    calibration: Path | None
    preview_text: str
    preview_label: str
    kept: dict[str, KeptTokens]  # per pruned draft (by model name): the LM-head rows it keeps


def _check_inputs(plan: Recipe, specs: list[ModelSpec], progress: Progress, verbose: bool) -> _Checked:
    """Everything that can fail cheaply, before the first conversion: files, sources, tokenizers, widths."""
    calib = Path(plan.calibration_text).expanduser() if plan.calibration_text else None
    if calib is not None and any(s.compression.needs_calibration for s in specs):
        read_text(calib, "calibration text")
    if plan.preview.enabled and plan.preview.text:
        read_text(Path(plan.preview.text).expanduser(), "preview text")
    sources: dict[str, ResolvedSource] = {}
    for spec in specs:
        if spec.source not in sources:
            sources[spec.source] = resolve_source(spec.source, spec.name, log=progress.log)
    infos: dict[str, ModelInfo] = {}
    with quiet_libraries(verbose):
        for spec in specs:
            if spec.source not in infos:
                infos[spec.source] = inspect_source(sources[spec.source], spec.name)
    # The self-draft is the target's own checkpoint: nothing to compare.
    check_compatible([_renamed(infos[s.source], s.name) for s in specs if s.role != "self_draft"])
    for spec in specs:
        spec.compression.check_widths(infos[spec.source].widths, spec.name)
    _record_local_paths(plan, sources)
    # --draft-format auto measures agreement on the preview chunks even when the preview is off.
    wants_text = plan.preview.enabled or any(s.auto_format for s in specs)
    text, label = _preview_text(plan, sources[specs[0].source]) if wants_text else ("", "")
    return _Checked(sources, infos, calib, text, label, _kept_tokens(plan, specs, sources, infos))


def _export_into(
    root: Path, plan: Recipe, specs: list[ModelSpec], checked: _Checked, progress: Progress, verbose: bool
) -> tuple[Manifest, list[SummaryRow]]:
    """Convert, compress, preview and write the manifest into the staging folder ``root``."""
    bases = _convert_sources(specs, checked, plan.convert_dtype, root / "_base", progress, verbose)
    entries, rows = [], []
    for i, spec in enumerate(specs):
        if spec.auto_format:
            specs[i], entry, row = _choose_format(
                spec, bases[spec.source], checked, plan, root, entries, progress, verbose
            )
        else:
            entry, row = _write_model(spec, bases[spec.source], checked, root, progress, verbose)
        entries.append(entry)
        rows.append(row)
    preview: dict[str, Any] = {"skipped": "disabled"}
    if plan.preview.enabled:
        preview = _run_preview(specs, entries, bases, checked, plan, root, progress)
    package.write_tokenizer_folder(bases[specs[0].source].folder, root / package.TOKENIZER_DIR)
    manifest = _manifest(entries, checked.infos, specs, plan, preview)
    manifest.write(root)
    (root / package.RECIPE_NAME).write_text(
        "# Re-make this pipeline: python -m ov_spec.export --recipe recipe.toml --output DIR\n"
        + plan.to_toml()
    )
    shutil.rmtree(root / "_base")  # the uncompressed conversions were only needed for compression and preview
    return manifest, rows


# --- steps ------------------------------------------------------------------------------------
def _convert_sources(
    specs: list[ModelSpec],
    checked: _Checked,
    convert_dtype: str,
    folder: Path,
    progress: Progress,
    verbose: bool,
) -> dict[str, _Base]:
    """Convert each distinct source once (the self-draft shares the target's conversion)."""
    import openvino as ov

    bases: dict[str, _Base] = {}
    for i, src in enumerate(dict.fromkeys(s.source for s in specs)):
        users = [s for s in specs if s.source == src]
        dtype = _base_dtype(convert_dtype, checked.infos[src], users)
        base = _Base(checked.sources[src], dtype, folder / str(i))
        with progress.stage(f"converting {users[0].name} ({src}) to a stateful {dtype} IR") as timing:
            convert_checkpoint(base.source.path, base.folder, dtype, users[0].name, verbose=verbose)
        base.seconds = timing["seconds"]
        # Exact count from the checkpoint; the IR count (float constants) is the fallback for .bin checkpoints.
        base.num_parameters = checkpoint_parameters(base.source.path) or count_parameters(
            ov.Core().read_model(base.folder / MODEL_XML)
        )
        bases[src] = base
    return bases


def _write_model(
    spec: ModelSpec, base: _Base, checked: _Checked, root: Path, progress: Progress, verbose: bool
) -> tuple[ModelEntry, SummaryRow]:
    """Apply the model's weight format to its base conversion and write its folder."""
    import openvino as ov

    comp, dest, info = spec.compression, root / spec.name, checked.infos[spec.source]
    kept = checked.kept.get(spec.name)
    head = f", LM head of {kept.ids.size} tokens" if kept is not None else ""
    with progress.stage(f"writing {spec.name} as {_describe(comp)}{head}") as timing:
        if comp.is_float and comp.format == base.dtype and kept is None:
            package.write_model_folder(base.folder, dest, None)
        elif comp.is_float:  # fp16 weights from an fp32 conversion, or a pruned head
            model = ov.Core().read_model(base.folder / MODEL_XML)
            if kept is not None:
                prune_lm_head(model, kept.ids)
            package.write_model_folder(base.folder, dest, model, compress_to_fp16=comp.format == "fp16")
        else:
            dataset = None
            if comp.needs_calibration:
                assert checked.calibration is not None
                dataset = calibration_dataset(checked.calibration, info.hf_tokenizer)
            model = ov.Core().read_model(base.folder / MODEL_XML)
            if kept is not None:  # before NNCF: it then compresses the smaller head
                prune_lm_head(model, kept.ids)
            with quiet_libraries(verbose):
                model = compress_model(model, comp, dataset, spec.name)
            missing = set(comp.info.element_types) - set(weight_types(model))
            if missing:  # e.g. every layer fell back to the backup precision (group size, ratio)
                progress.log(
                    f"warning: {spec.name} has no {'/'.join(sorted(missing))} weights; check widths and --ratio"
                )
            package.write_model_folder(base.folder, dest, model)
        if kept is not None:
            np.save(dest / KEPT_TOKENS_FILE, kept.ids)
    seconds = timing["seconds"] + (0.0 if base.charged else base.seconds)
    base.charged = True
    size = (dest / package.MODEL_BIN).stat().st_size
    entry = ModelEntry(
        name=spec.name,
        role=spec.role,
        level=spec.level,
        path=spec.name,
        source=_source_label(base.source, spec.source),
        weight_format=comp.format,
        compression={**comp.to_dict(), "converted_from": base.dtype},
        size_bytes=size,
        num_parameters=base.num_parameters,
        max_context=info.max_context,
        architecture=info.architecture,
        gguf=_gguf_provenance(base.source),
        pruned_head=kept.manifest_entry(KEPT_TOKENS_FILE) if kept is not None else {},
    )
    shown = comp.format if kept is None else f"{comp.format}, head {kept.ids.size}"
    row = SummaryRow(spec.name, spec.role, spec.level, shown, size, base.num_parameters, seconds)
    return entry, row


def _choose_format(
    spec: ModelSpec,
    base: _Base,
    checked: _Checked,
    plan: Recipe,
    root: Path,
    above: list[ModelEntry],
    progress: Progress,
    verbose: bool,
) -> tuple[ModelSpec, ModelEntry, SummaryRow]:
    """``--draft-format auto``: build each candidate, measure agreement and step cost, keep the fastest.

    See :mod:`ov_spec.export.choose`. The winner's folder becomes the draft's; the others are removed.
    """
    from dataclasses import replace

    import openvino as ov

    from ov_spec.export import choose
    from ov_spec.export.preview import greedy_tokens

    info = checked.infos[spec.source]
    verifier = root / above[spec.level - 1].path / MODEL_XML
    max_context = min([info.max_context, *(e.max_context for e in above)])
    chunks = token_chunks(
        checked.preview_text, info.hf_tokenizer, plan.preview.chunks, plan.preview.tokens, max_context
    )
    core = ov.Core()
    reference, _ = greedy_tokens(verifier, chunks, core, {})
    work = root / "_choose"
    built: list[tuple[choose.Candidate, ModelSpec, ModelEntry, SummaryRow, Path, KeptTokens | None, Any]] = []
    for j, cand in enumerate(choose.candidates(info.vocab_size)):
        trial = replace(spec, compression=cand.compression, draft_vocab=cand.draft_vocab, auto_format=False)
        if cand.draft_vocab:
            checked.kept[spec.name] = _kept_for(trial, info, checked.preview_text, checked.preview_label)
        else:
            checked.kept.pop(spec.name, None)
        folder = work / str(j)
        folder.mkdir(parents=True)
        entry, row = _write_model(trial, base, checked, folder, progress, verbose)
        kept = checked.kept.get(spec.name)
        found, _ = greedy_tokens(folder / spec.name / MODEL_XML, chunks, core, {})
        agree = (found if kept is None else kept.ids[found]) == reference  # [chunks, tokens] booleans
        built.append((cand, trial, entry, row, folder, kept, agree))
    jobs = {"verifier": (verifier, None, None, choose.verifier_sizes())}
    for j, (_, _, _, _, folder, kept, _) in enumerate(built):
        token_map = kept.ids if kept is not None else None
        jobs[str(j)] = (folder / spec.name / MODEL_XML, token_map, info.vocab_size, [1])
    with progress.stage(
        f"{spec.name}: timing {len(built)} candidates and the verifier ({above[spec.level - 1].name})"
    ):
        costs_ms = choose.pass_costs(jobs)
    verify_ms = costs_ms["verifier"]
    results = []
    for j, (cand, trial, entry, row, folder, kept, agree) in enumerate(built):
        draft_ms = costs_ms[str(j)][1]
        best_k, speed = choose.predict(agree, draft_ms, verify_ms)
        measured = choose.Measured(cand, float(agree.mean()), draft_ms, best_k, speed)
        results.append((measured, trial, entry, row, folder, kept))
    measured, trial, entry, row, folder, kept = max(results, key=lambda r: r[0].tokens_per_s)
    target_only = 1e3 / verify_ms[1]
    why = choose.reason([r[0] for r in results], target_only)
    progress.log(f"{spec.name}: --draft-format auto chose {measured.candidate.label}: {why}")
    (folder / spec.name).rename(root / spec.name)
    shutil.rmtree(work)
    if kept is not None:  # the preview maps the winner's columns back to token ids
        checked.kept[spec.name] = kept
    else:
        checked.kept.pop(spec.name, None)
    entry.compression["chosen_by"] = {
        "method": "predicted tokens/s = tau(k) / (k * draft step + verifier pass over k+1 tokens), CPU",
        "chosen": measured.candidate.label,
        "reason": why,
        "target_only_tokens_per_s": round(target_only, 2),
        "verifier_ms": {str(n): round(ms, 3) for n, ms in verify_ms.items()},
        "candidates": [r[0].to_dict() for r in results],
    }
    i = int(spec.name[5:]) - 1  # record the choice, so recipe.toml re-makes this very pipeline
    plan.draft_vocab += [None] * (len(plan.drafts) - len(plan.draft_vocab))
    plan.draft_compression[i], plan.draft_vocab[i], plan.draft_auto[i] = (
        trial.compression,
        trial.draft_vocab,
        False,
    )
    row.format = f"{row.format} (auto)"
    row.note = f"{spec.name}: auto chose {measured.candidate.label}: {why}"
    return trial, entry, row


def _run_preview(
    specs: list[ModelSpec],
    entries: list[ModelEntry],
    bases: dict[str, _Base],
    checked: _Checked,
    plan: Recipe,
    root: Path,
    progress: Progress,
) -> dict[str, Any]:
    tokenizer = checked.infos[specs[0].source].hf_tokenizer
    max_context = min(e.max_context for e in entries)
    chunks = token_chunks(
        checked.preview_text, tokenizer, plan.preview.chunks, plan.preview.tokens, max_context
    )
    same_as_base = {
        spec.name: spec.compression.is_float
        and spec.compression.format == bases[spec.source].dtype
        and not entry.pruned_head
        for spec, entry in zip(specs, entries, strict=True)
    }
    # The uncompressed reference of each source: a model exported unchanged if there is one (its results
    # are computed anyway), else the base conversion.
    reference = {src: base.folder / MODEL_XML for src, base in bases.items()}
    for spec, entry in zip(specs, entries, strict=True):
        if same_as_base[spec.name]:
            reference[spec.source] = root / entry.path / MODEL_XML
    models = [
        PreviewModel(
            name=spec.name,
            level=spec.level,
            xml=root / entry.path / MODEL_XML,
            uncompressed_xml=None if same_as_base[spec.name] else reference[spec.source],
            token_map=checked.kept[spec.name].ids if spec.name in checked.kept else None,
        )
        for spec, entry in zip(specs, entries, strict=True)
    ]
    label = checked.preview_label
    with progress.stage(f"acceptance preview on {len(chunks)} x {len(chunks[0])} tokens of {label}"):
        return run_preview(models, chunks, label, log=progress.log)


def _manifest(
    entries: list[ModelEntry],
    infos: dict[str, ModelInfo],
    specs: list[ModelSpec],
    plan: Recipe,
    preview: dict[str, Any],
) -> Manifest:
    tok = infos[specs[0].source].tokenizer
    assert tok is not None
    tokenizer = {
        "path": package.TOKENIZER_DIR,
        "fingerprint": tok.fingerprint,
        "vocab_size": len(tok.vocab),
        # Logits width per model (config.vocab_size): may exceed the tokenizer (Qwen2.5-7B: 152064 vs 151665).
        "model_vocab_sizes": {s.name: infos[s.source].vocab_size for s in specs},
        "eos_token_ids": tok.eos_token_ids,
        "bos_token_id": tok.bos_token_id,
        "pad_token_id": tok.pad_token_id,
        "special_tokens": tok.special,
        "chat_template": tok.chat_template,
    }
    return Manifest(
        models=entries,
        tokenizer=tokenizer,
        max_context=min(e.max_context for e in entries),
        versions=_versions(),
        recipe=plan.to_dict(),
        preview=preview,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


# --- small helpers ----------------------------------------------------------------------------
def _base_dtype(convert_dtype: str, info: ModelInfo, specs: list[ModelSpec]) -> str:
    """fp32 when asked, when any model wants fp32 weights, or when the checkpoint is fp32; else fp16.

    Converting a bf16/fp16 checkpoint at fp32 would double memory and disk for nothing (and a 7B
    model would not fit in RAM); converting an fp32 checkpoint at fp16 would make the "uncompressed"
    reference already lossy.
    """
    if convert_dtype != "auto":
        return convert_dtype
    if any(s.compression.format == "fp32" for s in specs) or info.torch_dtype == "float32":
        return "fp32"
    return "fp16"


def _kept_tokens(
    plan: Recipe, specs: list[ModelSpec], sources: dict[str, ResolvedSource], infos: dict[str, ModelInfo]
) -> dict[str, KeptTokens]:
    """Choose each pruned draft's LM-head rows: its most frequent tokens on local text.

    Counted on the calibration text if there is one, else on the preview text (for a tiny pair its
    held-out text). EOS and the other special tokens are always kept.
    """
    kept: dict[str, KeptTokens] = {}
    pruned = [s for s in specs if s.draft_vocab]
    if not pruned:
        return kept
    if plan.calibration_text:
        path = Path(plan.calibration_text).expanduser()
        text, label = read_text(path, "calibration text"), f"calibration text {path}"
    else:
        text, label = _preview_text(plan, sources[specs[0].source])
    for spec in pruned:
        info = infos[spec.source]
        assert spec.draft_vocab is not None and info.tokenizer is not None
        if spec.draft_vocab > info.vocab_size:
            raise UserError(
                f"{spec.name}: --draft-vocab {spec.draft_vocab} exceeds its vocabulary of {info.vocab_size}; "
                "pass a smaller number (or 0 for the full head)"
            )
        kept[spec.name] = _kept_for(spec, info, text, label)
    return kept


def _kept_for(spec: ModelSpec, info: ModelInfo, text: str, label: str) -> KeptTokens:
    """The ``spec.draft_vocab`` most frequent tokens of ``text``, special tokens always kept."""
    tok = info.tokenizer
    assert tok is not None and spec.draft_vocab is not None
    special = [*tok.eos_token_ids, *(i for i, _, is_special in tok.added if is_special)]
    return choose_kept_tokens(text, label, info.hf_tokenizer, info.vocab_size, spec.draft_vocab, special)


def _preview_text(plan: Recipe, target: ResolvedSource) -> tuple[str, str]:
    """The preview text and a label for it: --preview-text, the tiny held-out text, or the shipped sample."""
    if plan.preview.text:
        return read_text(Path(plan.preview.text), "preview text"), str(plan.preview.text)
    if target.heldout is not None and target.heldout.is_file():
        return read_text(target.heldout, "held-out text"), f"{target.spec} held-out text"
    from ov_spec.export.sample_text import SAMPLE_TEXT

    return SAMPLE_TEXT, "ov_spec sample text"


def _is_disk_full(err: BaseException, folder: Path) -> bool:
    """ENOSPC, however the library reports it (OpenVINO and torch wrap write errors in RuntimeError)."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    if not isinstance(err, OSError | RuntimeError):
        return False
    if "No space left on device" in str(err):
        return True
    try:
        return shutil.disk_usage(folder).free < 16 * 2**20
    except OSError:
        return False


def _record_local_paths(plan: Recipe, sources: dict[str, ResolvedSource]) -> None:
    """Make local paths absolute in the recorded recipe, so recipe.toml works from any folder."""

    def absolute(spec: str | None) -> str | None:
        src = sources.get(spec) if spec else None
        return _source_label(src, spec) if src is not None and spec else spec

    plan.target = absolute(plan.target)
    plan.drafts = [absolute(d) or d for d in plan.drafts]
    if plan.calibration_text:
        plan.calibration_text = str(Path(plan.calibration_text).expanduser().absolute())
    if plan.preview.text:
        plan.preview.text = str(Path(plan.preview.text).expanduser().absolute())


def _source_label(source: ResolvedSource, spec: str) -> str:
    """How a source is recorded: local folders and GGUF files as absolute paths, others as written."""
    if source.kind == "local":
        return str(source.path)
    if source.kind == "gguf" and source.gguf:
        return str(source.gguf["file"])
    return spec


def _gguf_provenance(source: ResolvedSource) -> dict[str, Any]:
    """File, quantization type and sha256 of a GGUF source (the manifest's record of it)."""
    if source.kind != "gguf" or not source.gguf:
        return {}
    return {key: source.gguf[key] for key in ("file", "quantization", "sha256")}


def _renamed(info: ModelInfo, who: str) -> ModelInfo:
    from dataclasses import replace

    return replace(info, who=who)


def _describe(comp: CompressionConfig) -> str:
    d = comp.to_dict()
    extra = ", ".join(f"{k}={v}" for k, v in d.items() if k != "format")
    return f"{d['format']} ({extra})" if extra else d["format"]


def _versions() -> dict[str, str]:
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
