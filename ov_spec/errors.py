"""User-facing errors.

A :class:`UserError` is a mistake the user can fix (a missing file, a bad value, a device that is
not there). Its message is one line that names the fix. CLIs print it and exit with code 2; they
never show a traceback for it. Internal invariants use ``assert``.
"""

from __future__ import annotations


class UserError(Exception):
    """A bad input the user can fix; the message says how."""


class IncompatibleModelsError(UserError):
    """Target and drafts cannot work together (tokenizer, vocabulary, context)."""


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message (a library's error, for a one-line
    message of ours), or its type's name when it has none."""
    line = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), "")
    return (line or type(err).__name__)[:limit]
