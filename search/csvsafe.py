"""CSV cells that a spreadsheet cannot run as formulas (OWASP "CSV injection").

A municipality, title or sentence comes from whoever added the document; a cell such as
``=HYPERLINK("http://…","市")`` would be run by Excel when the exported CSV is opened. Every text cell
that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``, which
Excel shows as plain text and does not display. The rule is applied to every text cell, so a text
``-5`` comes out as ``'-5`` too (shown as the text -5); numbers the program computes itself (ranks,
pages) are ``int``/``float`` and are written as they are: they cannot carry a formula.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

#: A text cell starting with one of these is prefixed with :data:`ESCAPE` (OWASP).
FORMULA_STARTS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"


def safe_csv_cell(value: Any) -> Any:
    """``value`` made safe for a spreadsheet: a ``str`` starting with a formula character gets a
    leading ``'``; other strings and non-strings (numbers, None) are returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return ESCAPE + value
    return value


def safe_csv_row(values: Iterable[Any]) -> list[Any]:
    """Every cell of a row through :func:`safe_csv_cell` (for ``csv.writer.writerow``)."""
    return [safe_csv_cell(v) for v in values]


class SafeCsvWriter:
    """A ``csv.writer`` whose :meth:`writerow` passes every cell through :func:`safe_csv_cell`."""

    def __init__(self, f: Any, **kw: Any) -> None:
        """Wrap ``csv.writer(f, **kw)``."""
        self._w = csv.writer(f, **kw)

    def writerow(self, row: Iterable[Any]) -> Any:
        """Write one row with its cells made safe."""
        return self._w.writerow(safe_csv_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write several rows with their cells made safe."""
        for row in rows:
            self.writerow(row)
