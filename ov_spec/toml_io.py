"""The one TOML reader and writer of ov_spec.

Reading uses the standard library's ``tomllib`` (Python 3.11+) or its backport ``tomli`` (a
dependency on Python 3.10); writing uses ``tomli-w`` (an export dependency: only export writes
TOML).
"""

from __future__ import annotations

from typing import Any

try:
    import tomllib as _reader
except ModuleNotFoundError:  # Python 3.10
    import tomli as _reader

TOMLDecodeError = _reader.TOMLDecodeError


def loads(text: str) -> dict[str, Any]:
    """Parse TOML text; raises :data:`TOMLDecodeError` (a ValueError) on bad syntax."""
    return _reader.loads(text)


def dumps(data: dict[str, Any]) -> str:
    """TOML text for ``data``; keys whose value is None are left out (TOML has no null)."""
    import tomli_w

    return tomli_w.dumps(_drop_none(data))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value
