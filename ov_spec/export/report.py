"""Progress lines on stderr while exporting, and the summary table at the end."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

# Set when Ctrl-C was pressed; every stage boundary checks it (see Progress.stage).
INTERRUPTED = threading.Event()


def install_interrupt_handler(quiet: bool = False) -> None:
    """First Ctrl-C: stop at the end of the current step; a second one: stop at once.

    Raising KeyboardInterrupt from the handler at an arbitrary point is not safe here: when the
    signal lands while OpenVINO's converter is calling back into Python, the exception crosses
    native code and the process aborts (``terminate called after throwing ...``), leaving its
    temp folder behind. So the first Ctrl-C only sets :data:`INTERRUPTED`; the export stops at the
    next stage boundary and cleans up. Impatient users can press Ctrl-C again.
    """

    def handler(signum: int, frame: object) -> None:
        if INTERRUPTED.is_set():
            raise KeyboardInterrupt
        INTERRUPTED.set()
        if not quiet:
            print(
                "\n[export] interrupting after the current step (Ctrl-C again to stop at once)",
                file=sys.stderr,
                flush=True,
            )

    signal.signal(signal.SIGINT, handler)


def check_interrupted() -> None:
    if INTERRUPTED.is_set():
        raise KeyboardInterrupt


class Progress:
    """Concise ``[export] ...`` lines on stderr; silent when ``quiet``.

    The stream is captured at creation so library output redirected later does not swallow it.
    """

    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr

    def log(self, message: str) -> None:
        if not self.quiet:
            print(f"[export] {message}", file=self.stream, flush=True)

    @contextmanager
    def stage(self, message: str) -> Iterator[dict[str, float]]:
        """Log ``message ...``, run the block, then log ``message: done in Ns``; yields {"seconds": N}."""
        timing = {"seconds": 0.0}
        check_interrupted()
        self.log(f"{message} ...")
        start = time.perf_counter()
        yield timing
        check_interrupted()
        timing["seconds"] = time.perf_counter() - start
        self.log(f"{message}: {timing['seconds']:.1f}s")


@dataclass
class SummaryRow:
    """One line of the summary table."""

    name: str
    role: str
    level: int
    format: str
    size_bytes: int
    num_parameters: int
    seconds: float  # conversion (if this model triggered it) + compression + writing
    note: str = ""  # printed under the table (e.g. why --draft-format auto chose this format)

    @property
    def vs_fp16(self) -> float:
        """Size on disk relative to the same weights in fp16 (2 bytes per parameter)."""
        return self.size_bytes / max(1, 2 * self.num_parameters)


def summary_table(rows: list[SummaryRow]) -> str:
    """A fixed-width table: model, role, level, format, MB, size vs fp16, seconds."""
    header = ("model", "role", "level", "format", "MB", "vs fp16", "seconds")
    body = [
        (
            r.name,
            r.role,
            str(r.level),
            r.format,
            f"{r.size_bytes / 1e6:.2f}",
            f"{r.vs_fp16:.2f}x",
            f"{r.seconds:.1f}",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i < 4 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [r.note for r in rows if r.note]
    return "\n".join(lines)
