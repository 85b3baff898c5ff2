"""``python -m ov_spec.export``: convert, compress, check and package a speculative-decoding pipeline.

Examples::

    python -m ov_spec.export --target tiny:default/target --draft tiny:default/draft --output out/tiny
    python -m ov_spec.export --target ./Qwen2.5-1.5B-Instruct --draft ./Qwen2.5-0.5B-Instruct \\
        --target-format int8_asym --draft-format int4_sym --group-size 64 --output out/qwen
    python -m ov_spec.export --recipe export/recipes/qwen2.5-1.5b-0.5b.toml --output out/qwen
    python -m ov_spec.export --target ./Qwen2.5-7B-Instruct --target-format fp16 --self-draft mxfp4 \\
        --draft ./Qwen2.5-0.5B-Instruct --output out/specqd
"""

from __future__ import annotations

import argparse
import sys

from ov_spec.cli import run_cli
from ov_spec.errors import UserError
from ov_spec.export.compress import BACKUP_MODES, FORMATS, GROUP_FALLBACKS
from ov_spec.export.recipe import CONVERT_DTYPES, DEFAULT_FORMATS
from ov_spec.export.report import INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    formats = "\n".join(f"  {name:<11} {info.summary}" for name, info in FORMATS.items())
    parser = argparse.ArgumentParser(
        prog="python -m ov_spec.export",
        description=(
            "Turn a target and its drafts into one OpenVINO pipeline folder for speculative decoding:\n"
            "stateful IRs, tokenizer IRs and the manifest ov_spec.json. A source is a Hugging Face\n"
            "checkpoint folder, a .gguf file, a hub id (needs network) or tiny:PRESET/ROLE (a locally\n"
            "built pair, e.g. tiny:default/target). Without --draft and --self-draft the pipeline is\n"
            "target-only (target-only decoding and prompt lookup)."
        ),
        epilog=f"weight formats:\n{formats}\n\nrecipes: export/recipes/*.toml (flags override recipe values)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = parser.add_argument_group("models")
    src.add_argument("--target", metavar="SRC", help="the target model (level 0)")
    src.add_argument(
        "--draft",
        metavar="SRC",
        action="append",
        help="a draft model; repeat for a cascade, largest first (levels 1, 2, ...); none: target-only",
    )
    src.add_argument(
        "--self-draft",
        metavar="FORMAT",
        nargs="?",
        const=DEFAULT_FORMATS["self_draft"],
        help=f"add the target's own weights in FORMAT at level 1, above the drafts (ML-SpecQD; "
        f"default format {DEFAULT_FORMATS['self_draft']}; 'none' removes a recipe's self-draft)",
    )
    src.add_argument("--output", "-o", metavar="DIR", required=True, help="the pipeline folder to create")
    src.add_argument("--recipe", metavar="FILE", help="a TOML recipe with the same choices as these flags")
    src.add_argument("--force", action="store_true", help="replace DIR if it holds an earlier pipeline")

    fmt = parser.add_argument_group("weight formats (NNCF)")
    fmt.add_argument(
        "--target-format",
        metavar="F",
        type=str.lower,
        help=f"target weight format (default {DEFAULT_FORMATS['target']})",
    )
    fmt.add_argument(
        "--draft-format",
        metavar="F",
        type=str.lower,
        action="append",
        help=f"draft weight format, once for all drafts or once per --draft (default {DEFAULT_FORMATS['draft']}); "
        "auto: build int8/int4/pruned-head candidates and keep the one predicted fastest on this machine",
    )
    fmt.add_argument(
        "--draft-vocab",
        metavar="N",
        type=int,
        action="append",
        help="prune the draft's LM head to its N most frequent tokens (FR-Spec; counted on the calibration "
        "text, else the preview text); once for all drafts or once per --draft; 0 = full head (default)",
    )
    fmt.add_argument(
        "--group-size",
        type=int,
        metavar="N",
        help="weights per scale for 4-bit formats; -1 = per-channel (default 64)",
    )
    fmt.add_argument(
        "--ratio",
        type=float,
        metavar="R",
        help="share of layers in the 4-bit format, rest in backup (default 1.0)",
    )
    fmt.add_argument(
        "--awq", action=argparse.BooleanOptionalAction, default=None, help="AWQ (needs --calibration-text)"
    )
    fmt.add_argument(
        "--scale-estimation",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="scale estimation (needs --calibration-text)",
    )
    fmt.add_argument(
        "--gptq",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="GPTQ (needs --calibration-text; slow)",
    )
    fmt.add_argument(
        "--all-layers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="embeddings and lm_head in the 4-bit format too",
    )
    fmt.add_argument(
        "--backup-mode", choices=BACKUP_MODES, help="precision of layers kept out of the 4-bit format"
    )
    fmt.add_argument(
        "--group-size-fallback",
        choices=GROUP_FALLBACKS,
        help="a layer width the group size does not divide: error, adjust (smaller group, else backup precision) "
        "or ignore (layer stays uncompressed); default adjust for the format's default group size, error for --group-size",
    )
    fmt.add_argument(
        "--calibration-text", metavar="FILE", help="local text file for AWQ / scale estimation / GPTQ"
    )
    fmt.add_argument(
        "--convert-dtype",
        choices=CONVERT_DTYPES,
        help="precision of the uncompressed conversion (default auto: fp32 for fp32 checkpoints or fp32 outputs, else fp16)",
    )

    pre = parser.add_argument_group("acceptance preview")
    pre.add_argument(
        "--preview-text",
        metavar="FILE",
        help="text for the preview (default: tiny held-out text or a shipped sample)",
    )
    pre.add_argument("--preview-chunks", type=int, metavar="N", help="number of token chunks (default 8)")
    pre.add_argument("--preview-tokens", type=int, metavar="N", help="tokens per chunk (default 128)")
    pre.add_argument(
        "--no-preview", dest="preview", action="store_false", default=None, help="skip the preview"
    )

    out = parser.add_argument_group("output")
    out.add_argument("--quiet", "-q", action="store_true", help="no progress lines or summary")
    out.add_argument("--verbose", "-v", action="store_true", help="show optimum-intel / NNCF logs")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ov_spec.export.pipeline import export_pipeline
    from ov_spec.export.report import install_interrupt_handler

    if argv is None:  # the real command line (not a test calling main() in-process)
        install_interrupt_handler(quiet=args.quiet)

    settings = {
        "group_size": args.group_size,
        "ratio": args.ratio,
        "awq": args.awq,
        "scale_estimation": args.scale_estimation,
        "gptq": args.gptq,
        "all_layers": args.all_layers,
        "backup_mode": args.backup_mode,
        "group_size_fallback": args.group_size_fallback,
    }
    try:
        export_pipeline(
            target=args.target,
            drafts=args.draft,
            output=args.output,
            self_draft=args.self_draft,
            formats={"target": args.target_format, "draft": args.draft_format},
            force=args.force,
            recipe=args.recipe,
            settings=settings,
            calibration_text=args.calibration_text,
            convert_dtype=args.convert_dtype,
            preview=args.preview,
            preview_text=args.preview_text,
            preview_chunks=args.preview_chunks,
            preview_tokens=args.preview_tokens,
            draft_vocab=args.draft_vocab,
            quiet=args.quiet,
            verbose=args.verbose,
        )
    except Exception:
        # Ctrl-C inside a native library (OpenVINO's frontend, torch tracing) can surface as a
        # RuntimeError instead of KeyboardInterrupt; the handler's flag tells them apart.
        if not INTERRUPTED.is_set():
            raise
        raise UserError(
            f"interrupted; nothing was written to {args.output}; run the same command again to export"
        ) from None
    except KeyboardInterrupt:
        # The temp folder is already gone (export_pipeline cleans up on any exception).
        raise UserError(
            f"interrupted; nothing was written to {args.output}; run the same command again to export"
        ) from None
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
