"""Small helpers the walkthrough notebooks share (``notebooks/``).

Nothing here is needed by the runtime; IPython is imported only when a table is shown.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ov_spec.export.sources import TINY_SCHEME  # light: no torch until a model is converted


def show_table(
    rows: Sequence[Mapping[str, Any]], columns: Iterable[str] | None = None, floats: str = "{:.3g}"
) -> None:
    """Display a list of dicts as an HTML table in a notebook (no pandas needed)."""
    from IPython.display import HTML, display

    if not rows:
        display(HTML("<p><i>(no rows)</i></p>"))
        return
    columns = list(columns or rows[0])

    def cell(value: Any) -> str:
        text = floats.format(value) if isinstance(value, float) else str(value)
        return f"<td style='text-align:right'>{html.escape(text)}</td>"

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(cell(r.get(c, "")) for c in columns) + "</tr>" for r in rows)
    display(HTML(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"))


def pipeline_folder(work: str | Path, *parts: Any) -> Path:
    """One export folder per configuration under ``work``.

    The name joins the parts (sources, formats, ...), so changing a notebook's config cell never
    reuses a stale export. A ``tiny:PRESET/ROLE`` source is named by its build's cache key, so a
    rebuilt local pair (a changed recipe) gets a fresh folder too.
    """
    return Path(work) / "__".join(_slug(_tag(p)) for p in parts)


def _tag(part: Any) -> str:
    text = str(part)
    if text.startswith(TINY_SCHEME) and "/" in text:
        from ov_spec.tiny import pair_folder  # no torch: only the recipe's cache key

        preset, role = text[len(TINY_SCHEME) :].split("/", 1)
        return f"{pair_folder(preset).name}-{role}"
    return text


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-")
