"""``python -m ov_spec.generate FOLDER --prompt TEXT``: speculative generation from the command line.

Text streams to stdout and a metrics line goes to stderr; ``--json`` prints one JSON object with
``text``, ``token_ids``, ``finish_reason`` and ``metrics`` instead (with ``draft_tokens="auto"``,
``metrics.auto`` holds what the cost model chose and its predicted vs measured speed).
"""

from __future__ import annotations

import argparse
import json
import sys

from ov_spec.cli import add_placement_arguments, run_cli
from ov_spec.errors import UserError
from ov_spec.runtime.limits import AUTO, MAX_DRAFT_TOKENS, ROLLBACK_CHOICES, check_draft_tokens
from ov_spec.runtime.stateful import DEFAULT_DRAFT_ROLLBACK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ov_spec.generate", description=__doc__.splitlines()[0])
    p.add_argument("folder", help="pipeline folder written by `python -m ov_spec.export`")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="prompt text")
    src.add_argument("--prompt-file", help="read the prompt from this file ('-' = stdin)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-k", type=int, default=0, help="0 = off")
    p.add_argument("--top-p", type=float, default=1.0, help="1.0 = off")
    p.add_argument("--seed", type=int, default=None, help="seed for sampling (reproducible runs)")
    p.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    p.add_argument(
        "--draft-tokens",
        action="append",
        default=None,
        metavar="K|auto",
        help=f"tokens drafted per pass, 1..{MAX_DRAFT_TOKENS}, or 'auto' (default: the measured cost model "
        "chooses per pass, 0 included); repeat once per verifying level of a cascade for fixed lengths",
    )
    p.add_argument(
        "--adaptive", action="store_true", help="adapt the draft length (+2 on full accept, -1 otherwise)"
    )
    p.add_argument(
        "--min-confidence", type=float, default=0.0, help="stop drafting below this draft probability"
    )
    p.add_argument("--models", help="comma-separated chain to use, target first (default: every level)")
    p.add_argument(
        "--ngram",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="--ngram: prompt lookup as the lowest drafting level; --no-ngram: never; default: with "
        "--draft-tokens auto the lowest level chooses prompt lookup or its draft model each pass",
    )
    p.add_argument("--no-draft", action="store_true", help="target-only decoding (the baseline)")
    add_placement_arguments(p)
    p.add_argument(
        "--draft-rollback",
        choices=ROLLBACK_CHOICES,
        default=DEFAULT_DRAFT_ROLLBACK,
        help=f"the rollback of every model below the target (default {DEFAULT_DRAFT_ROLLBACK}: paged on "
        "CPU, mask elsewhere; a draft only proposes, so its rollback never changes the output)",
    )
    p.add_argument("--chat", action="store_true", help="apply the model's chat template")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The same rules as generate(draft_tokens=...), checked before anything is loaded.
    draft_tokens = check_draft_tokens(args.draft_tokens or AUTO)
    if isinstance(draft_tokens, list) and len(draft_tokens) == 1:
        draft_tokens = draft_tokens[0]
    prompt = args.prompt if args.prompt is not None else _read_prompt(args.prompt_file)
    import ov_spec

    pipe = ov_spec.load(
        args.folder,
        devices=args.devices,
        device_overrides=args.device,
        property_overrides=args.property,
        rollback=args.rollback,
        draft_rollback=args.draft_rollback,
        separate_decode=False if args.one_graph else None,
    )
    options = dict(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        stop=args.stop,
        draft_tokens=draft_tokens,
        adaptive=args.adaptive,
        min_confidence=args.min_confidence,
        use_draft=not args.no_draft,
        ngram=args.ngram,
        chat=args.chat,
        models=args.models.split(",") if args.models else None,
    )
    if args.json:
        result = pipe.generate(prompt, **options)
        print(
            json.dumps(
                {
                    "text": result.text,
                    "token_ids": result.token_ids,
                    "finish_reason": result.finish_reason,
                    "metrics": result.metrics.to_dict(),
                }
            )
        )
        return 0

    def show(chunk: str) -> None:
        sys.stdout.write(chunk)
        sys.stdout.flush()

    result = pipe.generate(prompt, streamer=show, **options)
    sys.stdout.write("\n")
    print(f"[{result.finish_reason}] {result.metrics.summary()}", file=sys.stderr)
    return 0


def _read_prompt(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as err:
        raise UserError(f"cannot read prompt file {path}: {err.strerror}; pass a readable file") from None


if __name__ == "__main__":
    sys.exit(run_cli(main))
