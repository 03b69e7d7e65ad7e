"""Excel workbooks (.xlsx), e.g. 事務事業評価 sheets: one record per data row.

The header row of a sheet is the first row with at least two non-empty text cells; every later
non-empty row becomes one page-like record of 「見出し：値」 lines (empty values skipped), with
``Page.number`` = the row number and ``Page.label`` = 「<シート名> 行<n>」.
"""
from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Any

from corpus.limits import DocumentLimits
from corpus.limits import limit_message
from corpus.readers.base import Reader, failed, page, warning, zip_library
from corpus.records import IngestMessage, Page, RawDocument

_ASCII_WORD = re.compile(r"[0-9A-Za-z]")


def _join_wrapped(text: str) -> str:
    """Join a header wrapped over lines: no space between Japanese, one between Latin words."""
    parts = [p.strip() for p in text.splitlines() if p.strip()]
    if not parts:
        return ""
    out = parts[0]
    for p in parts[1:]:
        sep = " " if _ASCII_WORD.match(out[-1]) and _ASCII_WORD.match(p[0]) else ""
        out += sep + p
    return out


def cell_text(value: Any) -> str:
    """A cell value as display text: integers without ``.0``, dates as ISO dates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, _dt.datetime):
        if value.time() == _dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    return str(value).replace("\r\n", "\n").replace("\r", "\n").strip()


def column_letter(idx: int) -> str:
    """The spreadsheet letter of the 0-based column ``idx`` (0 → A, 25 → Z, 26 → AA)."""
    s = ""
    idx += 1
    while idx:
        idx, r = divmod(idx - 1, 26)
        s = chr(65 + r) + s
    return s


def is_header_row(values: list[Any]) -> bool:
    """True when a row has at least two non-empty text (string) cells."""
    return sum(1 for v in values if isinstance(v, str) and v.strip()) >= 2


def render_record(headers: list[str], values: list[str]) -> str:
    """「見出し：値」 lines for the non-empty values of a row (headers missing → 「列X」).

    A value typed over several lines in its cell is put on one line (its lines joined with a
    space), so that every line of the record is one 「見出し：値」 pair."""
    lines = []
    for i, v in enumerate(values):
        v = " ".join(part.strip() for part in v.splitlines() if part.strip())
        if not v:
            continue
        h = headers[i] if i < len(headers) and headers[i] else f"列{column_letter(i)}"
        lines.append(f"{h}：{v}")
    return "\n".join(lines)


def rows_not_read(sheet: str, max_rows: int) -> str:
    """The warning for a sheet whose rows after ``max_rows`` were not read."""
    what = (
        f"シート「{sheet}」の {max_rows + 1} 行目以降は読みませんでした"
        f" / rows after {max_rows} of sheet {sheet!r} not read"
    )
    return limit_message(what, max_rows, "max_sheet_rows")


class XlsxReader(Reader):
    """``.xlsx`` / ``.xlsm`` with openpyxl (read-only, cached values of formulas)."""

    extensions = (".xlsx", ".xlsm")
    name = "Excel"

    def read(self, path: Path, rel: str, limits: DocumentLimits | None = None) -> RawDocument:
        """Read every sheet as records; sheets without a header row are reported and skipped.
        With ``limits``, rows after ``max_sheet_rows`` (by row number) are not read (a warning
        per sheet); rows are streamed, so a long sheet is never held in memory."""
        openpyxl, failure = zip_library(path, rel, "Excel (.xlsx)", "openpyxl", "openpyxl")
        if failure is not None:
            return failure
        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as e:
            return failed(rel, f"Excel ファイルを開けません（壊れているか暗号化されています） / cannot open workbook: {e}")
        messages: list[IngestMessage] = []
        pages: list[Page] = []
        try:
            for ws in wb.worksheets:
                try:
                    self._read_sheet(ws, rel, pages, messages, None if limits is None else limits.max_sheet_rows)
                except Exception as e:
                    messages.append(
                        warning(rel, f"シート「{ws.title}」を読めませんでした / could not read sheet {ws.title!r}: {e}")
                    )
        finally:
            wb.close()
        if not pages and not any(m.severity == "error" for m in messages):
            return failed(rel, "データ行がありません / no data rows in any sheet", messages)
        return RawDocument(path=rel, pages=pages, messages=messages, layout="records")

    @staticmethod
    def _read_sheet(
        ws: Any, rel: str, pages: list[Page], messages: list[IngestMessage], max_rows: int | None = None
    ) -> None:
        """Append the records of one sheet to ``pages`` (and its problems to ``messages``); stop
        at the first non-empty row after row ``max_rows``, with a warning."""
        headers: list[str] | None = None
        seen = False
        if not hasattr(ws, "iter_rows"):  # chart sheets
            return
        for index, row in enumerate(ws.iter_rows(), start=1):
            values = [getattr(c, "value", None) for c in row]
            if not any(v is not None and str(v).strip() for v in values):
                continue
            rownum = next((c.row for c in row if getattr(c, "row", None)), None) or index
            if max_rows is not None and rownum > max_rows:
                messages.append(warning(rel, rows_not_read(ws.title, max_rows)))
                break
            seen = True
            if headers is None:
                if is_header_row(values):
                    headers = [_join_wrapped(cell_text(v)) for v in values]
                continue
            text = render_record(headers, [cell_text(v) for v in values])
            if text:
                pages.append(page(rownum, text, label=f"{ws.title} 行{rownum}"))
        if headers is None and seen:
            messages.append(
                warning(
                    rel,
                    f"シート「{ws.title}」に見出し行（文字の入ったセルが 2 つ以上ある行）がないため読み飛ばしました"
                    f" / sheet {ws.title!r} skipped: no header row found",
                )
            )
