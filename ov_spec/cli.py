"""Shared command-line plumbing: user errors become one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ov_spec.errors import UserError

EXIT_USER_ERROR = 2


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run ``main(argv)``; turn :class:`UserError` and Ctrl-C into a one-line message.

    Returns the process exit code (0 on success, 2 for user errors, 130 on Ctrl-C).
    """
    prog = sys.argv[0].rsplit("/", 1)[-1] if sys.argv else "ov_spec"
    try:
        code = main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


def add_placement_arguments(p: argparse.ArgumentParser) -> None:
    """``--devices``, ``--device``, ``--property``, ``--rollback``, ``--one-graph``: where and how a pipeline's
    models run, the same for every command that loads one (generate, serve)."""
    from ov_spec.runtime.limits import ROLLBACK_CHOICES
    from ov_spec.runtime.stateful import DEFAULT_ROLLBACK

    p.add_argument("--devices", help="device placement config (TOML or JSON; see examples/)")
    p.add_argument(
        "--device", action="append", default=[], metavar="NAME=DEVICE", help="override a placement"
    )
    p.add_argument(
        "--property", action="append", default=[], metavar="NAME.KEY=VALUE", help="override a property"
    )
    p.add_argument(
        "--rollback",
        choices=ROLLBACK_CHOICES,
        default=DEFAULT_ROLLBACK,
        help=f"the target's KV-cache rollback (default {DEFAULT_ROLLBACK}: paged on CPU, OpenVINO's "
        "paged-attention graph, whose rollback is free and exact; trim elsewhere; mask: the stateful "
        "IR without cache copies; trim with an f16/f32 KV cache is strict: equal to target-only "
        "output even at near-ties)",
    )
    p.add_argument(
        "--one-graph",
        action="store_true",
        help="compile a paged CPU target once: its 1-token passes then share the verification "
        "graph, which the CPU plugin re-plans at every change of pass size (default: a second "
        "copy for them when the target has 32 MB of weights or more; about 2 s and 50 MB more "
        "for a 135M model)",
    )
