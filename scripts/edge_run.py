#!/usr/bin/env python3
"""Answer prompts with an exported ov_spec pipeline on an edge box (OpenVINO only, no torch).

    python edge_run.py PIPELINE_FOLDER [--devices devices.toml] [--prompt-file FILE] [--json]

Prompts come from ``--prompt-file`` or, without it, from stdin (``-`` also means stdin):

* ``--split line``: every non-empty line is one prompt;
* ``--split blank``: prompts are separated by blank lines, so one prompt may span several
  lines (code, for example);
* ``--split auto`` (default): ``blank`` if the input contains a blank line, else ``line``.

Output: each answer is streamed to stdout as it is generated and followed by a blank line; a
metrics line per prompt goes to stderr (``--quiet`` drops it). ``--json`` prints one JSON object
per prompt and line instead: ``{"index", "prompt", "text", "finish_reason", "token_ids",
"metrics"}``.

Bad input (missing or invalid pipeline folder, unknown device, unreadable prompt file) is one
line on stderr and exit code 2. This file needs only the ``ov_spec`` runtime and the standard
library, so it runs unchanged inside a package made by ``scripts/package_edge.py``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

from ov_spec.cli import run_cli
from ov_spec.errors import UserError
from ov_spec.runtime.limits import AUTO, ROLLBACK_CHOICES

SPLIT_MODES = ("auto", "line", "blank")
# A blank line: a newline, optional spaces or tabs, another newline.
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as a UserError: one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="edge_run.py",
        description=__doc__.splitlines()[0],
        epilog="Prompts: --split line = one per line; blank = separated by blank lines; "
        "auto (default) = blank if the input has a blank line, else line.",
    )
    p.add_argument("folder", help="pipeline folder written by `python -m ov_spec.export`")
    p.add_argument(
        "--devices", metavar="FILE", help="device placement config (TOML or JSON), e.g. devices.toml"
    )
    p.add_argument(
        "--device", action="append", default=[], metavar="NAME=DEVICE", help="override one placement"
    )
    p.add_argument(
        "--rollback",
        choices=ROLLBACK_CHOICES,
        default=AUTO,
        help="the target's KV-cache rollback (default auto: paged on CPU; trim with an f16/f32 cache "
        "is strict, equal to target-only output even at near-ties)",
    )
    p.add_argument(
        "--prompt-file", default="-", metavar="FILE", help="file with the prompts (default: stdin, also '-')"
    )
    p.add_argument("--split", choices=SPLIT_MODES, default="auto", help="how prompts are separated")
    p.add_argument(
        "--max-new-tokens", type=int, default=128, metavar="N", help="tokens to generate per prompt"
    )
    p.add_argument("--temperature", type=float, default=0.0, metavar="T", help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=1.0, metavar="P", help="nucleus sampling mass; 1.0 = off")
    p.add_argument("--seed", type=int, default=None, metavar="N", help="sampling seed (reproducible answers)")
    p.add_argument("--draft-tokens", type=int, default=4, metavar="K", help="tokens drafted per target pass")
    p.add_argument("--no-draft", action="store_true", help="target-only decoding (the baseline)")
    p.add_argument("--chat", action="store_true", help="wrap each prompt in the model's chat template")
    p.add_argument("--json", action="store_true", help="one JSON object per prompt and line")
    p.add_argument("--quiet", "-q", action="store_true", help="no metrics lines on stderr")
    return p


def split_prompts(text: str, mode: str = "auto") -> list[str]:
    """Cut the input into prompts (see the module docstring for the three modes)."""
    text = text.replace("\r\n", "\n")
    if mode == "auto":
        mode = "blank" if _BLANK_LINE.search(text.strip("\n")) else "line"
    if mode == "line":
        return [line for line in text.split("\n") if line.strip()]
    # Surrounding newlines are separators, not content; indentation inside a prompt is kept.
    return [block.strip("\n") for block in _BLANK_LINE.split(text) if block.strip()]


def read_prompts(path: str, mode: str) -> list[str]:
    """Read and split the prompts; a missing, unreadable or empty input is a UserError."""
    where = "stdin" if path == "-" else path
    try:
        if path == "-":
            if sys.stdin.isatty():
                print("reading prompts from stdin; end with Ctrl-D", file=sys.stderr)
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except OSError as err:
        raise UserError(
            f"cannot read prompt file {path}: {err.strerror}; pass a readable text file"
        ) from None
    except UnicodeDecodeError:
        raise UserError(f"prompt file {path} is not UTF-8 text; save it as UTF-8") from None
    prompts = split_prompts(text, mode)
    if not prompts:
        raise UserError(f"no prompts in {where}; give one prompt per line or separate them by blank lines")
    return prompts


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "seed": args.seed,
        "draft_tokens": args.draft_tokens,
        "use_draft": not args.no_draft,
        "chat": args.chat,
    }


def answer_all(
    pipe: Any, prompts: list[str], options: dict[str, Any], args: argparse.Namespace
) -> Iterator[Any]:
    """Generate an answer per prompt, streaming text unless JSON is asked for; yield the results."""

    def show(chunk: str) -> None:
        sys.stdout.write(chunk)
        sys.stdout.flush()

    for i, prompt in enumerate(prompts, 1):
        try:
            result = pipe.generate(prompt, streamer=None if args.json else show, **options)
        except UserError as err:
            # Name the prompt: in a batch of hundreds, "the prompt is too long" alone is not enough.
            raise UserError(f"prompt {i} of {len(prompts)}: {err}") from None
        if args.json:
            record = {
                "index": i,
                "prompt": prompt,
                "text": result.text,
                "finish_reason": result.finish_reason,
                "token_ids": result.token_ids,
                "metrics": result.metrics.to_dict(),
            }
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            sys.stdout.write("\n\n")  # answers are separated by a blank line
            sys.stdout.flush()
        if not args.quiet and not args.json:
            print(f"[{i}/{len(prompts)} {result.finish_reason}] {result.metrics.summary()}", file=sys.stderr)
        yield result


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.max_new_tokens <= 0:
        raise UserError(f"--max-new-tokens must be > 0, got {args.max_new_tokens}")
    import ov_spec
    from ov_spec.manifest import Manifest

    # Cheap checks first: a wrong folder should not wait for stdin, a wrong prompt file should not
    # cost a model compile.
    Manifest.read(args.folder)
    prompts = read_prompts(args.prompt_file, args.split)

    pipe = ov_spec.load(
        args.folder, devices=args.devices, device_overrides=args.device, rollback=args.rollback
    )
    for _ in answer_all(pipe, prompts, _options(args), args):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
