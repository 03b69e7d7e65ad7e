"""HTML pages (.html / .htm): visible text in reading order, one page.

The encoding comes from a byte-order mark, a ``<meta charset>`` / ``http-equiv`` declaration, or
detection. ``script``, ``style``, ``noscript``, ``template``, ``svg``, ``iframe`` and ``nav`` are
dropped. Headings, paragraphs, list items and other block elements become lines; a table row
becomes one line (「見出し：値 ／ …」 under a ``<th>`` header row, cells joined with 「 ／ 」 otherwise).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from corpus.limits import DocumentLimits
from corpus.readers.base import Reader, failed, missing_package, page, warning
from corpus.readers.encoding import decode_bytes, looks_binary
from corpus.records import IngestMessage, RawDocument

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
DROP = {"script", "style", "noscript", "template", "svg", "iframe", "nav", "object", "embed", "canvas", "head"}
BLOCK = {
    "p", "div", "section", "article", "main", "aside", "header", "footer", "h1", "h2", "h3", "h4",
    "h5", "h6", "li", "dt", "dd", "dl", "ul", "ol", "blockquote", "pre", "figure", "figcaption",
    "caption", "address", "hr", "form", "fieldset", "legend", "details", "summary", "body", "center",
}
_WS = re.compile(r"[ \t\r\n\f\v]+")


def declared_charset(data: bytes) -> str | None:
    """The charset named by a meta tag in the first 8 kB, if any."""
    m = _META_CHARSET.search(data[:8192])
    return m.group(1).decode("ascii", "ignore") if m else None


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.buf: list[str] = []

    def add(self, s: str) -> None:
        self.buf.append(s)

    def flush(self) -> None:
        line = _WS.sub(" ", "".join(self.buf)).strip()
        if line:
            self.lines.append(line)
        self.buf = []


def _text(node: Any) -> str:
    return _WS.sub(" ", node.get_text(" ", strip=True)).strip()


def _table(table: Any, out: _Lines) -> None:
    rows = []
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue
        cells = [c for c in tr.find_all(["th", "td"]) if c.find_parent("tr") is tr]
        rows.append(([_text(c) for c in cells], [c.name for c in cells]))
    header: list[str] | None = None
    for i, (texts, names) in enumerate(rows):
        if not any(texts):
            continue
        if header is None and i == 0 and len(texts) >= 2 and all(n == "th" for n in names):
            header = texts
            out.lines.append(" ／ ".join(t for t in texts if t))
            continue
        if header is not None:
            parts = [f"{header[j]}：{t}" if j < len(header) and header[j] else t for j, t in enumerate(texts) if t]
        elif len(texts) == 2 and names[0] == "th" and texts[0] and texts[1]:
            parts = [f"{texts[0]}：{texts[1]}"]
        else:
            parts = [t for t in texts if t]
        out.lines.append(" ／ ".join(parts))


def _skipped_string_types() -> tuple[type, ...]:
    import bs4

    names = ("Comment", "Declaration", "Doctype", "ProcessingInstruction", "Script", "Stylesheet", "TemplateString")
    return tuple(getattr(bs4.element, n) for n in names if hasattr(bs4.element, n))


def _walk(node: Any, out: _Lines, skip: tuple[type, ...]) -> None:
    from bs4 import NavigableString, Tag

    for child in node.children:
        if isinstance(child, Tag):
            name = child.name
            if name in DROP:
                continue
            if name == "br":
                out.flush()
            elif name == "table":
                out.flush()
                _table(child, out)
            elif name in BLOCK or name == "title":
                out.flush()
                _walk(child, out, skip)
                out.flush()
            else:
                _walk(child, out, skip)
        elif isinstance(child, NavigableString) and not isinstance(child, skip):
            out.add(str(child))


def html_to_lines(html: str) -> list[str]:
    """The visible text of an HTML document as lines in reading order (title first)."""
    from bs4 import BeautifulSoup

    try:
        soup = BeautifulSoup(html, "lxml")
    except Exception:  # lxml missing
        soup = BeautifulSoup(html, "html.parser")
    out = _Lines()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    if title:
        out.lines.append(title)
    body = soup.body or soup
    _walk(body, out, _skipped_string_types())
    out.flush()
    if title and len(out.lines) > 1 and out.lines[1] == title:
        out.lines.pop(0)
    return out.lines


class HtmlReader(Reader):
    """``.html`` / ``.htm`` with beautifulsoup4."""

    extensions = (".html", ".htm")
    name = "HTML"

    def read(self, path: Path, rel: str, limits: DocumentLimits | None = None) -> RawDocument:
        """Read the page's visible text as one page."""
        try:
            import bs4  # noqa: F401
        except ImportError:
            return failed(rel, missing_package("beautifulsoup4", "HTML"))
        data = path.read_bytes()
        if looks_binary(data):
            return failed(rel, "HTML ではありません（バイナリファイル） / binary file, not HTML")
        messages: list[IngestMessage] = []
        dec = decode_bytes(data, declared=declared_charset(data))
        if dec.replaced:
            messages.append(
                warning(rel, "文字コードを判定できず、読めない文字を置き換えました / encoding not detected; bytes replaced")
            )
        lines = html_to_lines(dec.text)
        if not lines:
            return failed(rel, "本文がありません / the page has no visible text", messages)
        return RawDocument(path=rel, pages=[page(1, "\n".join(lines))], messages=messages)
