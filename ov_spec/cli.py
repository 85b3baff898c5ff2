"""Shared command-line plumbing: user errors become one line on stderr and exit code 2."""

from __future__ import annotations

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
