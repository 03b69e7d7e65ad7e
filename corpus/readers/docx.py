"""Word documents (.docx): paragraphs and tables in reading order.

The body's children are walked in order (paragraphs, tables, content controls). A table row is
one line: cells joined with 「 ／ 」, or 「見出し：値 ／ 見出し：値」 when the table has a header row,
or 「項目：内容」 for two-column label/value tables. A .docx has no pages: it is one page unless it
contains explicit page breaks (``<w:br w:type="page"/>``, 「改ページ前」), which start new pages.

Tables nested more than :data:`MAX_TABLE_DEPTH` deep are read as plain text (a warning says so).
A document nested deeper than the XML parser's default depth limit (256 elements, about 80
nested tables), which python-docx refuses, is re-read from its main part with lxml's
``huge_tree`` (2,048 levels; entities still unresolved and libxml2's amplification check still
on, so no billion-laughs expansion); deeper still is an error saying so.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from corpus.limits import DocumentLimits
from corpus.readers.base import Reader, failed, page, warning, zip_library
from corpus.records import IngestMessage, RawDocument

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_PAGE_BREAK = "\f"
#: Header cells longer than this are taken for data, not a header.
MAX_HEADER_CELL = 30
#: Tables nested deeper than this are read as plain text (keeps the walk's recursion bounded).
MAX_TABLE_DEPTH = 30
_REL_OFFICE_DOCUMENT = "/officeDocument"
_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_SPACES = re.compile(r"\s+")
TOO_DEEP = (
    "Word ファイルの入れ子（表の中の表など）が深すぎて読めません"
    " / document nested too deeply (tables within tables) to read"
)


@dataclass
class _Walk:
    """State of one document walk: how many tables were read as plain text for being too deep."""

    flattened: int = 0


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


def flat_text(el: Any) -> str:
    """All text under ``el`` on one line, paragraphs separated by a space (iterative: any depth)."""
    parts: list[str] = []
    for node in el.iter(f"{_W}p", f"{_W}t"):
        parts.append(" " if node.tag == f"{_W}p" else (node.text or ""))
    return _SPACES.sub(" ", "".join(parts)).strip()


def _cell_text(tc: Any, walk: _Walk, depth: int) -> str:
    """Text of a table cell (its paragraphs and nested tables) on one line."""
    text = "\n".join(_block_lines(tc, walk, depth)).replace(_PAGE_BREAK, "\n")
    lines = [line.strip() for line in text.splitlines()]
    return " ".join(line for line in lines if line)


def _row_cells(tr: Any, walk: _Walk, depth: int) -> list[str]:
    """Cells of a w:tr, one entry per w:tc (a horizontally merged cell counts once)."""
    cells = []
    for child in tr:
        if child.tag == f"{_W}tc":
            cells.append(_cell_text(child, walk, depth))
        elif child.tag == f"{_W}sdt":
            content = child.find(f"{_W}sdtContent")
            if content is not None:
                cells += [_cell_text(tc, walk, depth) for tc in content.findall(f"{_W}tc")]
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


def _block_lines(container: Any, walk: _Walk, depth: int = 0) -> Iterator[str]:
    """Lines of the paragraphs and tables directly in ``container`` (body, cell, content control);
    ``depth`` is the number of tables around ``container``."""
    for child in container:
        tag = child.tag
        if tag == f"{_W}p":
            yield _para_text(child)
        elif tag == f"{_W}tbl":
            if depth >= MAX_TABLE_DEPTH:
                walk.flattened += 1
                yield flat_text(child)
                continue
            rows = [_row_cells(tr, walk, depth + 1) for tr in child.findall(f"{_W}tr")]
            first = child.find(f"{_W}tr")
            yield from table_lines(rows, marked_header=first is not None and _is_marked_header(first))
        elif tag == f"{_W}sdt":
            content = child.find(f"{_W}sdtContent")
            if content is not None:
                yield from _block_lines(content, walk, depth)
        elif tag in (f"{_W}customXml", f"{_W}ins", f"{_W}smartTag"):
            yield from _block_lines(child, walk, depth)


def main_part_name(zf: zipfile.ZipFile) -> str:
    """The zip member holding the main document (from ``_rels/.rels``; ``word/document.xml``
    when the relationships cannot be read)."""
    from lxml import etree

    try:
        rels = etree.fromstring(zf.read("_rels/.rels"), etree.XMLParser(resolve_entities=False, no_network=True))
        for rel in rels.iter(_RELS):
            if rel.get("Type", "").endswith(_REL_OFFICE_DOCUMENT) and rel.get("TargetMode") != "External":
                return rel.get("Target", "").lstrip("/")
    except Exception:
        pass
    return "word/document.xml"


def deep_body(path: Path) -> Any:
    """The w:body of ``path``'s main part parsed without the parser's depth limit (``huge_tree``);
    entities are not resolved and nothing is fetched. None when there is no body."""
    from lxml import etree

    with zipfile.ZipFile(path) as zf:
        data = zf.read(main_part_name(zf))
    parser = etree.XMLParser(huge_tree=True, resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(data, parser).find(f"{_W}body")


def _too_deep(e: Exception) -> bool:
    """True for lxml's refusal of a document nested beyond its default depth limit."""
    return "excessive depth" in str(e).lower()


def flattened_warning(rel: str, n: int) -> IngestMessage:
    """The warning for ``n`` tables nested too deep, read as plain text."""
    return warning(
        rel,
        f"表の入れ子が深すぎるため（{MAX_TABLE_DEPTH} 段を超える）、内側の表 {n} 個は文字だけを読みました"
        f" / {n} table(s) nested more than {MAX_TABLE_DEPTH} deep read as plain text",
    )


class DocxReader(Reader):
    """``.docx`` with python-docx."""

    extensions = (".docx",)
    name = "Word"

    def read(self, path: Path, rel: str, limits: DocumentLimits | None = None) -> RawDocument:
        """Read the body in order; explicit page breaks start new pages."""
        docx, failure = zip_library(path, rel, "Word (.docx)", "docx", "python-docx")
        if failure is not None:
            return failure
        try:
            body = docx.Document(str(path)).element.body
        except Exception as e:
            if not _too_deep(e):
                return failed(rel, f"Word ファイルを開けません（壊れているか暗号化されています） / cannot open document: {e}")
            try:
                body = deep_body(path)
            except Exception:
                return failed(rel, TOO_DEEP)
            if body is None:
                return failed(rel, "本文がありません / the document has no text")
        walk = _Walk()
        text = "\n".join(line for line in _block_lines(body, walk) if line.strip() or _PAGE_BREAK in line)
        messages = [flattened_warning(rel, walk.flattened)] if walk.flattened else []
        pages = []
        for i, chunk in enumerate(text.split(_PAGE_BREAK), start=1):
            chunk = "\n".join(line.rstrip() for line in chunk.splitlines() if line.strip())
            if chunk:
                pages.append(page(i, chunk))
        if not pages:
            return failed(rel, "本文がありません / the document has no text", messages)
        return RawDocument(path=rel, pages=pages, messages=messages)
