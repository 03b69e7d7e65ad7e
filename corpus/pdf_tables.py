"""Tables on PDF pages, one record per row (issue 10, point 3).

pdfplumber finds the cells: its table finder on ruling lines (``page.find_tables()``), and on
pages without ruling lines its "text" strategy, which clusters word x positions into columns
and text lines into rows. From the cells this module builds a grid:

- **rows** are the horizontal cell edges that run across at least half of the table's width (an
  inner line of a few 財源 columns does not cut a programme row in two), **columns** the vertical
  edges that run along at least half of its height;
- each visible character goes to the cell that holds its centre (white text hidden behind a cell
  is left out) and, in a cell that spans several rows (a 款・項・目 cell over three programmes),
  to the row whose band holds it; such a cell's text is repeated in a row where it has none;
- the lines of a cell are joined: without a space where a line was wrapped (it runs to the cell's
  right edge), with one where a new entry begins (「＜対象者＞」, 「【総務課】」, a short line);
- the **header** is the first row plus the rows its tall cells reach down to; a column's field
  name joins the header cells above it (「財源内訳（千円）・国」), letter spacing removed;
- a table whose first row is data (a table continued from the previous page) takes the previous
  page's header and caption when the column count matches.

:func:`is_real_table` keeps only tables with a header, two columns and two data rows, so that
boxes, forms and prose laid out in one column do not become rows.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from corpus.normalize import collapse_letter_spacing, is_page_number_line, starts_block
from corpus.records import PdfTable

#: A row (column) boundary is a cell edge running along at least this share of the table's
#: width (height).
EDGE_SHARE = 0.5
#: Header cells longer than this (characters without spaces) are text, not field names.
MAX_HEADER_CHARS = 30
#: At most this many lines printed above a table are kept as its caption.
MAX_CAPTION_LINES = 4
#: A line of a cell that ends within this many character sizes of the cell's right edge was wrapped.
WRAP_SLACK = 2.5
#: Settings of pdfplumber's table finder without ruling lines (columns from word positions).
TEXT_SETTINGS: dict[str, Any] = {"vertical_strategy": "text", "horizontal_strategy": "text"}

_ASCII_WORD = re.compile(r"[0-9A-Za-z]")
_DIGIT = re.compile(r"[0-9０-９]")
_SPACE_IN_CJK = re.compile(r"(?<=[^\x00-\x7f])[ \u3000]+(?=[^\x00-\x7f])")
_NUMERIC = re.compile(r"^[\s\d,.\-－△▲▽+＋%％()（）円千]+$")
_UNIT = re.compile(r"[（(]\s*単位[^）)]{0,20}[）)]")

Box = tuple[float, float, float, float]


# --------------------------------------------------------------------------- characters and lines


def is_visible(char: dict[str, Any]) -> bool:
    """False for a character filled white (text hidden behind a cell), else True."""
    color = char.get("non_stroking_color")
    if color is None:
        return True
    if isinstance(color, (int, float)):
        color = (color,)
    try:
        vals = tuple(float(c) for c in color)
    except (TypeError, ValueError):
        return True
    if len(vals) in (1, 3):
        return not all(v >= 0.99 for v in vals)
    if len(vals) == 4:  # CMYK: white is no ink
        return not all(v <= 0.01 for v in vals)
    return True


def text_lines(chars: Sequence[dict[str, Any]]) -> list[tuple[str, float]]:
    """The characters as lines, top to bottom: (text, right edge) each. Characters whose centres
    are within half a character size vertically are one line; a gap wider than 0.6 character
    sizes becomes a space; letter-spaced runs (「財 源 内 訳」) are collapsed."""
    if not chars:
        return []
    out: list[tuple[str, float]] = []
    for g in _line_groups(chars):
        g.sort(key=lambda c: c["x0"])
        text = ""
        prev: dict[str, Any] | None = None
        for c in g:
            if prev is not None and c["x0"] - prev["x1"] > 0.6 * float(c.get("size") or 8):
                text += " "
            text += c["text"]
            prev = c
        text = collapse_letter_spacing(re.sub(r"[ \u3000]+", " ", text).strip())
        if text:
            out.append((text, max(c["x1"] for c in g)))
    return out


def _line_groups(chars: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The characters grouped into lines, top to bottom: centres within half a character size
    vertically are one line."""
    ordered = sorted(chars, key=lambda c: ((c["top"] + c["bottom"]) / 2, c["x0"]))
    groups: list[list[dict[str, Any]]] = []
    for c in ordered:
        mid = (c["top"] + c["bottom"]) / 2
        if groups:
            g = groups[-1]
            gmid = sum((x["top"] + x["bottom"]) / 2 for x in g) / len(g)
            if abs(mid - gmid) <= max(1.0, 0.5 * float(c.get("size") or 8)):
                g.append(c)
                continue
        groups.append([c])
    return groups


def join_cell_lines(lines: Sequence[tuple[str, float]], right: float, size: float) -> str:
    """The lines of one cell as one text: a line that runs to the cell's right edge (within
    :data:`WRAP_SLACK` character sizes) was wrapped and joins the next without a space (one
    between two Latin words or two digits: 「２．１．８」「１０．５．２」 are two codes), unless the next line begins a new entry (「＜」「【」「①」 …);
    other lines are joined with a space."""
    out = ""
    prev_right = 0.0
    for text, x1 in lines:
        if not out:
            out = text
        else:
            wrapped = prev_right >= right - WRAP_SLACK * size and not starts_block(text)
            if wrapped and not (_ASCII_WORD.match(out[-1]) and _ASCII_WORD.match(text[0])) and not (
                _DIGIT.match(out[-1]) and _DIGIT.match(text[0])
            ):
                out += text
            else:
                out += " " + text
        prev_right = x1
    return out


# --------------------------------------------------------------------------- grid


def _clusters(values: Iterable[float], tol: float = 2.0) -> list[float]:
    """Sorted values with neighbours closer than ``tol`` merged (their mean)."""
    out: list[list[float]] = []
    for v in sorted(values):
        if out and v - out[-1][-1] <= tol:
            out[-1].append(v)
        else:
            out.append([v])
    return [sum(g) / len(g) for g in out]


def _boundaries(cells: Sequence[Box], lo: float, hi: float, *, axis: int, share: float = EDGE_SHARE) -> list[float]:
    """Row (``axis`` 1: tops) or column (``axis`` 0: left edges) boundaries of a table spanning
    ``lo``–``hi``: the cell edges whose cells cover at least ``share`` of the other dimension."""
    other = 0 if axis == 1 else 1
    span_total = 0.0
    for c in cells:
        span_total = max(span_total, c[other + 2])
    first = min(c[other] for c in cells)
    extent = max(1e-6, span_total - first)
    cands = _clusters([c[axis] for c in cells])
    kept = [lo]
    for v in cands:
        if v <= lo + 2 or v >= hi - 2:
            continue
        covered = sum(c[other + 2] - c[other] for c in cells if abs(c[axis] - v) <= 2.0)
        if covered / extent >= share:
            kept.append(v)
    kept.append(hi)
    return kept


def _index(bounds: Sequence[float], v: float) -> int:
    """The band of ``bounds`` that holds ``v`` (clamped to the first and last band)."""
    for k in range(len(bounds) - 1):
        if v < bounds[k + 1]:
            return k
    return len(bounds) - 2


def _centre_in(c: dict[str, Any], box: Box) -> bool:
    """True when the centre of character ``c`` lies in ``box``."""
    x = (c["x0"] + c["x1"]) / 2
    y = (c["top"] + c["bottom"]) / 2
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def header_name(parts: Sequence[str]) -> str:
    """A field name from the header cells above a column (top first): spaces inside Japanese
    removed, distinct parts joined with 「・」."""
    names: list[str] = []
    for p in parts:
        p = _SPACE_IN_CJK.sub("", p).strip()
        if p and p not in names:
            names.append(p)
    return "・".join(names)


def _label_like(text: str) -> bool:
    """True for a header-like cell text: short and not a number."""
    t = re.sub(r"\s", "", text)
    return 0 < len(t) <= MAX_HEADER_CHARS and not _NUMERIC.match(t)


class _Grid:
    """Cell texts of one pdfplumber table on a grid of logical rows and columns."""

    def __init__(self, cells: Sequence[Box], chars: Sequence[dict[str, Any]]) -> None:
        self.cells = list(cells)
        x0 = min(c[0] for c in cells)
        top = min(c[1] for c in cells)
        x1 = max(c[2] for c in cells)
        bottom = max(c[3] for c in cells)
        self.bbox: Box = (x0, top, x1, bottom)
        self.rows = _boundaries(cells, top, bottom, axis=1)
        self.cols = _boundaries(cells, x0, x1, axis=0)
        n_rows, n_cols = len(self.rows) - 1, len(self.cols) - 1
        #: (row, column) -> list of (cell top, cell x0, text)
        self.slots: dict[tuple[int, int], list[tuple[float, float, str]]] = {}
        #: cell index -> (first row, last row, first column, last column)
        self.span: dict[int, tuple[int, int, int, int]] = {}
        #: cell index -> text of the whole cell, and its texts per row
        self.whole: dict[int, str] = {}
        self.per_row: dict[int, dict[int, str]] = {}
        inside = [c for c in chars if _centre_in(c, self.bbox)]
        #: the characters of the table and those overflowing its left or right edge by 6 pt
        self.near = [c for c in chars if _centre_in(c, (x0 - 6, top, x1 + 6, bottom))]
        for k, box in enumerate(self.cells):
            r0 = _index(self.rows, box[1] + 1)
            r1 = max(r0, _index(self.rows, box[3] - 1))
            c0 = _index(self.cols, box[0] + 1)
            c1 = max(c0, _index(self.cols, box[2] - 1))
            self.span[k] = (r0, r1, c0, c1)
            mine = [c for c in inside if _centre_in(c, box)]
            size = max([float(c.get("size") or 8) for c in mine] or [8.0])
            self.whole[k] = join_cell_lines(text_lines(mine), box[2], size)
            texts: dict[int, str] = {}
            for r in range(r0, r1 + 1):
                band = [c for c in mine if self.rows[r] <= (c["top"] + c["bottom"]) / 2 < self.rows[r + 1]]
                texts[r] = join_cell_lines(text_lines(band), box[2], size)
            self.per_row[k] = texts
        self.n_rows, self.n_cols = n_rows, n_cols

    def row_words(self, r: int) -> tuple[tuple[tuple[int, float, float, str], ...], ...]:
        """The printed lines of row ``r`` (characters whose centres lie in its band), each a
        tuple of words ``(column, x0, x1, text)``: a word ends where the gap to the next
        character exceeds 0.6 character sizes."""
        band = [c for c in self.near if self.rows[r] <= (c["top"] + c["bottom"]) / 2 < self.rows[r + 1]]
        out: list[tuple[tuple[int, float, float, str], ...]] = []
        for group in _line_groups(band):
            words: list[list[Any]] = []
            for c in sorted(group, key=lambda c: c["x0"]):
                size = float(c.get("size") or 8)
                if words and c["x0"] - words[-1][2] <= 0.6 * size and not c["text"].isspace():
                    words[-1][2] = max(words[-1][2], c["x1"])
                    words[-1][3] += c["text"]
                elif not c["text"].isspace():
                    col = _index(self.cols, (c["x0"] + c["x1"]) / 2)
                    words.append([col, c["x0"], c["x1"], c["text"]])
            if words:
                out.append(tuple((int(w[0]), float(w[1]), float(w[2]), str(w[3])) for w in words))
        return tuple(out)

    def header_rows(self) -> int:
        """How many rows from the top make the header: the first row and the rows its tall
        cells reach down to."""
        deepest = 0
        for k, (r0, r1, _, _) in self.span.items():
            if r0 == 0 and self.whole[k]:
                deepest = max(deepest, r1)
        return min(deepest + 1, self.n_rows)

    def header(self, n_header: int) -> list[str]:
        """Field names per column from the first ``n_header`` rows."""
        names: list[str] = []
        for col in range(self.n_cols):
            parts = [
                (self.cells[k][1], self.whole[k])
                for k, (r0, _, c0, c1) in self.span.items()
                if r0 < n_header and c0 <= col <= c1 and self.whole[k]
            ]
            names.append(header_name([t for _, t in sorted(parts)]))
        return names

    def header_cells(self, n_header: int) -> list[str]:
        """The texts of the header cells (to judge whether they are field names)."""
        return [self.whole[k] for k, (r0, _, _, _) in self.span.items() if r0 < n_header and self.whole[k]]

    def row(self, r: int) -> tuple[list[str], bool]:
        """The cell texts of row ``r`` and whether any of them is the row's own: a cell spanning
        several columns gives its text to the first; a cell spanning several rows gives each row
        its own lines, or all of them to a row where it has none (repeated, not own). The same
        text twice in one cell (overlapping cell boxes) is kept once."""
        out: list[list[tuple[float, float, str]]] = [[] for _ in range(self.n_cols)]
        own = False
        for k, (r0, r1, c0, _) in self.span.items():
            if not (r0 <= r <= r1):
                continue
            text = self.per_row[k].get(r, "")
            own = own or bool(text)
            if not text and r1 > r0:
                text = self.whole[k]
            if text:
                out[c0].append((self.cells[k][1], self.cells[k][0], text))
        cells: list[str] = []
        for parts in out:
            seen: list[str] = []
            for _, _, t in sorted(parts):
                if t not in seen:
                    seen.append(t)
            cells.append(" ".join(seen))
        return cells, own


# --------------------------------------------------------------------------- tables


def _caption(chars: Sequence[dict[str, Any]], top: float, bottom: float) -> tuple[str, ...]:
    """The lines printed between ``top`` and ``bottom`` (above a table), page numbers left out."""
    band = [c for c in chars if top <= (c["top"] + c["bottom"]) / 2 < bottom]
    lines = [t for t, _ in text_lines(band) if not is_page_number_line(t)]
    return tuple(lines[-MAX_CAPTION_LINES:])


def _merge_continuations(rows: list[list[str]]) -> list[list[str]]:
    """Rows of a table found from word positions, with a row whose first cell is empty joined to
    the row above (a wrapped cell gives one text line per row) when most rows have a first cell."""
    if not rows or sum(1 for r in rows if r[0]) < 0.6 * len(rows):
        return rows
    out: list[list[str]] = []
    for r in rows:
        if out and not r[0]:
            out[-1] = [(a + b if a and b and not starts_block(b) else (a + " " + b).strip()) for a, b in zip(out[-1], r)]
        else:
            out.append(list(r))
    return out


def grid_table(
    cells: Sequence[Box],
    chars: Sequence[dict[str, Any]],
    *,
    caption: tuple[str, ...] = (),
    previous: PdfTable | None = None,
    strategy: str = "lines",
) -> PdfTable | None:
    """The :class:`PdfTable` of one table found by pdfplumber (its cell boxes and the page's
    visible characters), or None when it has no header (neither its own nor ``previous``'s)."""
    if not cells:
        return None
    grid = _Grid(cells, chars)
    if grid.n_cols < 2 or grid.n_rows < 2:
        return None
    n_header = grid.header_rows()
    first, _ = grid.row(0)
    own = all(_label_like(t) for t in grid.header_cells(n_header)) and sum(1 for t in first if t) >= 2
    if own and strategy == "text":
        own = not any(_NUMERIC.match(t.replace(" ", "")) for t in first if t)
    kept = [(cells, r) for r, (cells, mine) in enumerate(map(grid.row, range(grid.n_rows))) if mine and r >= (n_header if own else 0)]
    rows = [cells for cells, _ in kept]
    lines = [grid.row_words(r) for _, r in kept] if strategy != "text" else []
    if own:
        header = grid.header(n_header)
    elif previous is not None and len(previous.header) == grid.n_cols:
        header = list(previous.header)
        caption = caption or previous.caption
    else:
        return None
    if strategy == "text":
        rows = _merge_continuations(rows)
    header = [h or f"列{k + 1}" for k, h in enumerate(header)]
    if lines:
        lines = [ln for r, ln in zip(rows, lines) if any(r)]
    rows = [r for r in rows if any(r)]
    return PdfTable(tuple(header), tuple(tuple(r) for r in rows), caption, strategy, tuple(lines))


def is_real_table(table: PdfTable, *, min_rows: int = 2) -> bool:
    """True for a table worth one record per row: at least two named columns and ``min_rows`` data
    rows (one row is enough under four named columns with three filled cells) with two filled
    cells on average; from word positions
    (no ruling lines) at least three columns, three rows and no column holding long prose in
    every row."""
    named = [h for h in table.header if not h.startswith("列")]
    if len(named) < 2 or not table.rows:
        return False
    filled = sum(sum(1 for v in r if v) for r in table.rows) / max(1, len(table.rows))
    if filled < 2:
        return False
    if len(table.rows) < min_rows and not (len(named) >= 4 and filled >= 3):
        return False
    if table.strategy == "text":
        if len(table.header) < 3 or len(table.rows) < 3 or filled < 3:
            return False
    return True


def page_tables(
    page: Any, previous: PdfTable | None = None, *, ruled: bool = True, text_strategy: bool = True,
) -> list[PdfTable]:
    """The tables of one pdfplumber page, top to bottom, with their captions: found on ruling
    lines (``ruled``), else (``text_strategy``) from word positions. ``previous`` is the last table of the
    previous page (its header serves a table continued on this page). Tables that are not
    :func:`is_real_table` are still returned; the caller decides."""
    chars = [c for c in page.chars if is_visible(c)]
    found = [(t, "lines") for t in page.find_tables()] if ruled else []
    if not found and text_strategy:
        found = [(t, "text") for t in page.find_tables(TEXT_SETTINGS)]
    found.sort(key=lambda ts: ts[0].bbox[1])
    out: list[PdfTable] = []
    above = 0.0
    first_caption: tuple[str, ...] = ()
    for t, strategy in found:
        cells = [tuple(c) for c in t.cells]
        cap = _caption(chars, above, t.bbox[1])
        above = t.bbox[3]
        if out and first_caption and cap and len(cap) < len(first_caption):
            cap = first_caption[: len(first_caption) - len(cap)] + cap  # 【企業会計】 under the page title
        table = grid_table(cells, chars, caption=cap, previous=out[-1] if out else previous, strategy=strategy)
        if table is None:
            continue
        if not out:
            first_caption = table.caption
        out.append(table)
    return out


def unit_lines(caption: Sequence[str]) -> list[str]:
    """The unit notes of a table's caption (「（単位：千円）」, also taken out of a line such as
    「【一般会計】 (単位 千円)」)."""
    return [m.group(0).strip() for ln in caption for m in _UNIT.finditer(ln)]
