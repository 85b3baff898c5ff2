"""The training corpus: the Python standard library's own ``*.py`` source, split train / held-out.

Every Python install has it (~30 MB of code), so no download is needed. The split is decided
per file by a hash of its relative path, so it does not depend on the seed, the preset or the
order files are listed in: a held-out file is never seen by the tokenizer or any model.
A held-out file whose text occurs inside training text (the stdlib repeats some boilerplate
files) is dropped from the held-out set, so held-out text really is unseen.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# About 5% of files are held out.
HELDOUT_PER_MILLE = 50
# Larger files are data rather than code (pydoc_data/topics.py is 750 KB of English text).
MAX_FILE_BYTES = 512_000
# Never part of the standard library proper, and its content depends on what is installed.
SKIPPED_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__"})
# Separates files in heldout.txt (plain text, no special tokens).
HELDOUT_SEPARATOR = "\n\n"


def stdlib_root() -> Path:
    """The folder holding the standard library's source."""
    return Path(sysconfig.get_paths()["stdlib"])


def is_heldout(relpath: str) -> bool:
    """Whether the file at ``relpath`` (POSIX, relative to the stdlib root) is held out."""
    digest = hashlib.sha256(relpath.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 1000 < HELDOUT_PER_MILLE


@dataclass(frozen=True)
class SourceFile:
    """One ``*.py`` file of the standard library."""

    relpath: str  # POSIX path relative to the stdlib root
    path: Path
    size: int

    def read(self) -> str | None:
        """The file's text, or None if it is not UTF-8 (a few test files use other encodings)."""
        try:
            return self.path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            return None


def list_files(root: Path | None = None) -> list[SourceFile]:
    """All candidate source files, sorted by relative path (the order is part of determinism)."""
    root = root or stdlib_root()
    found: list[SourceFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        # Prune in place so os.walk never descends into site-packages (11k+ files on some hosts).
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]
        for name in filenames:
            if not name.endswith(".py"):
                continue
            path = Path(dirpath, name)
            size = path.stat().st_size
            if 0 < size <= MAX_FILE_BYTES:
                found.append(SourceFile(path.relative_to(root).as_posix(), path, size))
    found.sort(key=lambda f: f.relpath)
    return found


def fingerprint(files: list[SourceFile]) -> str:
    """A short hash of the file list and sizes: a new Python version means a new cache key."""
    h = hashlib.sha256(f"{sys.version_info[0]}.{sys.version_info[1]}".encode())
    for f in files:
        h.update(f"{f.relpath}\0{f.size}\n".encode())
    return h.hexdigest()[:16]


@dataclass
class Corpus:
    """Training and held-out texts, each in sorted relative-path order."""

    train: dict[str, str]  # relpath -> text
    heldout: dict[str, str]
    dropped_duplicates: list[str]  # held-out files dropped because training text contains them
    fingerprint: str

    def train_slice(self, max_bytes: int | None) -> list[str]:
        """Training texts in sorted order, up to about ``max_bytes`` UTF-8 bytes (None: all)."""
        return _take_bytes(self.train.values(), max_bytes)

    def shuffled_train(self, seed: int, max_bytes: int | None) -> list[str]:
        """Training texts in a seeded random file order, up to about ``max_bytes`` bytes."""
        names = list(self.train)
        random.Random(seed).shuffle(names)
        return _take_bytes((self.train[n] for n in names), max_bytes)

    def heldout_sample(self, max_chars: int) -> str:
        """Held-out text for heldout.txt: whole files, in a fixed pseudo-random order."""
        # Order by path hash so the sample is not all from one package (sorted order would be).
        names = sorted(self.heldout, key=lambda n: hashlib.sha256(n.encode()).hexdigest())
        parts: list[str] = []
        total = 0
        for name in names:
            if total >= max_chars:
                break
            text = self.heldout[name].strip("\n")
            parts.append(text)
            total += len(text) + len(HELDOUT_SEPARATOR)
        return HELDOUT_SEPARATOR.join(parts) + "\n"


def _take_bytes(texts: Iterator[str] | list[str], max_bytes: int | None) -> list[str]:
    out: list[str] = []
    total = 0
    for text in texts:
        if max_bytes is not None and total >= max_bytes:
            break
        out.append(text)
        total += len(text.encode("utf-8"))
    return out


def load_corpus(root: Path | None = None) -> Corpus:
    """Read the standard library and split it into training and held-out texts."""
    files = list_files(root)
    train: dict[str, str] = {}
    heldout: dict[str, str] = {}
    for f in files:
        text = f.read()
        if text is None or not text.strip():
            continue
        (heldout if is_heldout(f.relpath) else train)[f.relpath] = text
    dropped = _contained_in_training(heldout, train)
    for name in dropped:
        del heldout[name]
    return Corpus(train=train, heldout=heldout, dropped_duplicates=dropped, fingerprint=fingerprint(files))


def _contained_in_training(heldout: dict[str, str], train: dict[str, str]) -> list[str]:
    """Held-out files whose whole text also occurs inside training text.

    The stdlib repeats some files (boilerplate test-package ``__init__.py`` files, copies); such
    a file is not unseen text, so it leaves the held-out set (training keeps its copy).
    """
    # Cheap filter first: a contained file has every line among the training lines. Only the
    # few files that pass get the exact (slow, 30 MB) substring search.
    train_lines = {line for text in train.values() for line in text.splitlines()}
    joined: str | None = None
    dropped = []
    for name, text in heldout.items():
        if not all(line in train_lines for line in text.splitlines()):
            continue
        joined = joined if joined is not None else "\0".join(train.values())
        if text.strip() in joined:
            dropped.append(name)
    return dropped
