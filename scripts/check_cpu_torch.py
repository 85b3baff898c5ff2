"""Fail the install if a CUDA build of torch or any nvidia-* package ended up in the venv."""

from __future__ import annotations

import sys
from importlib import metadata


def main() -> int:
    """Exit 2 with a one-line message when the venv holds CUDA torch or nvidia-* wheels."""
    nvidia = sorted(
        d.metadata["Name"]
        for d in metadata.distributions()
        if d.metadata["Name"].lower().startswith("nvidia-")
    )
    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        version = None
    if nvidia or (version is not None and "+cpu" not in version):
        print(
            f"error: expected the CPU build of torch, found torch {version} and {len(nvidia)} nvidia-* "
            "packages; remove .venv and re-run make (constraints.txt pins torch==...+cpu)",
            file=sys.stderr,
        )
        return 2
    print(f"torch {version} (CPU build), no nvidia-* packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
