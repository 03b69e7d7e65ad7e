"""Word documents (.docx): paragraphs and tables in reading order.

The body's children are walked in order (paragraphs, tables, content controls). A table row is
one line: cells joined with 「 ／ 」, or 「見出し：値 ／ 見出し：値」 when the table has a header row,
or 「項目：内容」 for two-column label/value tables. A .docx has no pages: it is one page unless it
contains explicit page breaks (``<w:br w:type="page"/>``, 「改ページ前」), which start new pages.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from corpus.readers.base import Reader, check_zip_container, failed, missing_package, page
from corpus.records import RawDocument

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_PAGE_BREAK = "\f"
#: Header cells longer than this are taken for data, not a header.
MAX_HEADER_CELL = 30


def _para_text(p: Any) -> str:
    """Text of a w:p element; page breaks become ``\\f``, line breaks ``\\n``, tabs ``\\t``."""
    out: list[str] = []
    ppr = p.find(f"{_W}pPr")
    if ppr is not None:
        pb = ppr.find(f"{_W}pageBreakBefore")
        if pb is not None and pb.get(f"{_W}val", "true") not in ("0", "false", "off"):
            out.append(_PAGE_BREAK)

    def walk(el: Any) -> None:
        for child in el:
            tag = child.tag
            if not isinstance(tag, str) or tag == _MC_FALLBACK:
                continue
            if tag == f"{_W}t":
                out.append(child.text or "")
            elif tag == f"{_W}tab":
                out.append("\t")
            elif tag in (f"{_W}br", f"{_W}cr"):
                out.append(_PAGE_BREAK if child.get(f"{_W}type") == "page" else "\n")
            elif tag == f"{_W}noBreakHyphen":
                out.append("-")
            elif tag in (f"{_W}pPr", f"{_W}rPr", f"{_W}delText", f"{_W}instrText"):
                continue
            elif tag == f"{_W}p":  # a paragraph in a text box inside this paragraph
                out.append("\n")
                walk(child)
                out.append("\n")
            else:
                walk(child)

    walk(p)
    return "".join(out)


def _cell_text(tc: Any) -> str:
    """Text of a table cell (its paragraphs and nested tables) on one line."""
    lines = [line.strip() for line in "\n".join(_block_lines(tc)).replace(_PAGE_BREAK, "\n").splitlines()]
    return " ".join(line for line in lines if line)


def _row_cells(tr: Any) -> list[str]:
    """Cells of a w:tr, one entry per w:tc (a horizontally merged cell counts once)."""
    cells = []
    for child in tr:
        if child.tag == f"{_W}tc":
            cells.append(_cell_text(child))
        elif child.tag == f"{_W}sdt":
            content = child.find(f"{_W}sdtContent")
            if content is not None:
                cells += [_cell_text(tc) for tc in content.findall(f"{_W}tc")]
    return cells


def _is_marked_header(tr: Any) -> bool:
    trpr = tr.find(f"{_W}trPr")
    return trpr is not None and trpr.find(f"{_W}tblHeader") is not None


def _looks_like_header(cells: list[str]) -> bool:
    if len(cells) < 2 or not all(cells):
        return False
    for c in cells:
        if len(c) > MAX_HEADER_CELL or c.replace(",", "").replace(".", "").replace("%", "").strip().isdigit():
            return False
    return True


def table_lines(rows: list[list[str]], marked_header: bool = False) -> list[str]:
    """Render table rows as lines (see the module docstring for the three forms)."""
    rows = [r for r in rows if any(r)]
    if not rows:
        return []
    width = max(len(r) for r in rows)
    if width == 1:
        return [r[0] for r in rows if r[0]]
    header = rows[0]
    has_header = len(rows) >= 2 and (marked_header or (width > 2 and _looks_like_header(header)))
    if has_header:
        lines = [" ／ ".join(c for c in header if c)]
        for r in rows[1:]:
            parts = []
            for i, v in enumerate(r):
                if not v:
                    continue
                h = header[i] if i < len(header) else ""
                parts.append(f"{h}：{v}" if h else v)
            if parts:
                lines.append(" ／ ".join(parts))
        return lines
    if width == 2:
        return [f"{r[0]}：{r[1]}" if len(r) == 2 and r[0] and r[1] else " ／ ".join(c for c in r if c) for r in rows]
    return [" ／ ".join(c for c in r if c) for r in rows]


def _block_lines(container: Any) -> Iterator[str]:
    """Lines of the paragraphs and tables directly in ``container`` (body, cell, content control)."""
    for child in container:
        tag = child.tag
        if tag == f"{_W}p":
            yield _para_text(child)
        elif tag == f"{_W}tbl":
            rows = [_row_cells(tr) for tr in child.findall(f"{_W}tr")]
            first = child.find(f"{_W}tr")
            yield from table_lines(rows, marked_header=first is not None and _is_marked_header(first))
        elif tag == f"{_W}sdt":
            content = child.find(f"{_W}sdtContent")
            if content is not None:
                yield from _block_lines(content)
        elif tag in (f"{_W}customXml", f"{_W}ins", f"{_W}smartTag"):
            yield from _block_lines(child)


class DocxReader(Reader):
    """``.docx`` with python-docx."""

    extensions = (".docx",)
    name = "Word"

    def read(self, path: Path, rel: str) -> RawDocument:
        """Read the body in order; explicit page breaks start new pages."""
        problem = check_zip_container(path, "Word (.docx)")
        if problem:
            return failed(rel, problem)
        try:
            import docx
        except ImportError:
            return failed(rel, missing_package("python-docx", "Word (.docx)"))
        try:
            document = docx.Document(str(path))
        except Exception as e:
            return failed(rel, f"Word ファイルを開けません（壊れているか暗号化されています） / cannot open document: {e}")
        body = document.element.body
        text = "\n".join(line for line in _block_lines(body) if line.strip() or _PAGE_BREAK in line)
        pages = []
        for i, chunk in enumerate(text.split(_PAGE_BREAK), start=1):
            chunk = "\n".join(line.rstrip() for line in chunk.splitlines() if line.strip())
            if chunk:
                pages.append(page(i, chunk))
        if not pages:
            return failed(rel, "本文がありません / the document has no text")
        return RawDocument(path=rel, pages=pages)
