"""The on-disk cache of built pairs: where folders go, and building them safely.

A folder is built in a temporary sibling and renamed into place, so its final path either
does not exist or is complete (``report.json`` is written last). An ``fcntl.flock`` lock per
folder makes concurrent builders wait for the first one instead of building twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ov_spec.errors import UserError

REPORT_NAME = "report.json"
ENV_CACHE = "OV_SPEC_CACHE"
_TMP_INFIX = ".tmp-"


def default_cache_dir() -> Path:
    """``$OV_SPEC_CACHE`` or ``~/.cache/ov_spec``."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ov_spec"


def config_hash(payload: dict[str, Any]) -> str:
    """Short stable hash of a JSON-able build description."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` if needed and check a file can be written in it, or raise UserError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise UserError(
            f"cache folder {folder} is not writable ({reason}); pass a writable folder "
            f"with --cache DIR (cache_dir=...) or set {ENV_CACHE}"
        ) from None


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` is a finished build (the report is written last)."""
    return (folder / REPORT_NAME).is_file()


def read_report(folder: Path) -> dict[str, Any]:
    return json.loads((folder / REPORT_NAME).read_text(encoding="utf-8"))


@contextlib.contextmanager
def folder_lock(final: Path) -> Iterator[None]:
    """Hold an exclusive lock for building ``final`` (blocks while another process holds it)."""
    lock_path = final.parent / f".{final.name}.lock"
    # The lock file stays: deleting it would let a third process lock a fresh inode while a
    # second one still waits on the old one.
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_stale_temps(final: Path) -> None:
    """Delete temp folders left by builders of ``final`` that died (call with the lock held)."""
    for stale in final.parent.glob(f".{final.name}{_TMP_INFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def build_atomically(final: Path, build: Callable[[Path], None], reuse: Callable[[Path], bool]) -> bool:
    """Make ``final`` by running ``build(tmp_folder)`` and renaming the result into place.

    With the lock held, a complete ``final`` for which ``reuse(final)`` is true is kept (for
    example one another process built while this one waited). Returns True if this call built.
    On any exception, including KeyboardInterrupt, the temp folder is deleted and ``final`` is
    left as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(final):
        if is_complete(final) and reuse(final):
            return False
        remove_stale_temps(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}{_TMP_INFIX}", dir=final.parent))
        try:
            build(tmp)
            if not is_complete(tmp):
                raise RuntimeError(f"builder did not write {REPORT_NAME} in {tmp}")
            # mkdtemp makes the folder private (0700); a cache is meant to be shared like any
            # other folder the user makes.
            os.chmod(tmp, 0o777 & ~_current_umask())
            if final.exists():
                # A forced rebuild, or a build cut short by its budget: swap the old one out.
                trash = Path(tempfile.mkdtemp(prefix=f".{final.name}{_TMP_INFIX}old-", dir=final.parent))
                os.rename(final, trash / "old")
                os.rename(tmp, final)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return True
