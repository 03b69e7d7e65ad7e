"""Value records that flow through the corpus stage.

reader  -> :class:`RawDocument` (pages of text, page numbers, warnings)
parser  -> :class:`Item`        (one reform item: a table row, a heading with its text, a case)
chunker -> :class:`Chunk`       (what is indexed, displayed and cited)

Every message about bad input is an :class:`IngestMessage` naming the file (and page or line
where known), so one broken file never stops a build and the user is told precisely why.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SECTION_SEP = " › "


def page_label(page_start: Any, page_end: Any = None) -> str:
    """The one page label of the project: 「p.3」, 「pp.3–5」 (en dash), or "" when the page is unknown.

    ``page_end`` may be omitted, None, "" or equal to ``page_start`` for a single page."""
    if page_start in (None, "", 0):
        return ""
    if page_end in (None, "", 0, page_start):
        return f"p.{page_start}"
    return f"pp.{page_start}–{page_end}"

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class IngestMessage:
    """A specific message about one input file: an error (file skipped) or a warning."""

    severity: Severity
    path: str
    message: str
    page: int | None = None
    line: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
        if self.column:
            where += f" (列 {self.column})"
        if self.page is not None:
            where += f" p.{self.page}"
        return f"{self.severity}: {where}: {self.message}"


@dataclass(frozen=True)
class PdfTable:
    """A table found on a PDF page (:mod:`corpus.pdf_tables`): one field name per column and
    one tuple of cell texts per data row (wrapped cell lines joined), plus the lines printed
    above it (title, heading, unit) that give its section path."""

    #: Field names, one per column (「番号」「主管課」「財源内訳・国」 …); a multi-row header is joined.
    header: tuple[str, ...]
    #: Data rows: one cell text per column ("" for an empty cell).
    rows: tuple[tuple[str, ...], ...]
    #: The lines printed above the table, top to bottom (「R4年度当初予算に計上した主な新規事業」,
    #: 「（単位：千円）」); a continuation page repeats those of the previous page's table.
    caption: tuple[str, ...] = ()
    #: "lines" (ruling lines) or "text" (columns found from word positions).
    strategy: str = "lines"
    #: Per data row (tables on ruling lines only, else empty): its printed lines top to bottom,
    #: each a tuple of words ``(column, x0, x1, text)`` left to right (a word ends at a gap or a
    #: column edge). Used where a label and its amount must stay together (:mod:`corpus.budget`).
    row_lines: tuple[tuple[tuple[tuple[int, float, float, str], ...], ...], ...] = ()


@dataclass(frozen=True)
class LineInfo:
    """Layout of one text line of a PDF page (the same line of :attr:`Page.text`): its dominant
    font size and font, whether it is bold, and where it is printed (PDF points, ``top``/``bottom``
    measured from the top edge of a page ``page_height`` high)."""

    text: str
    #: The font size most of its visible characters have (points).
    size: float
    #: True when most of its visible characters are set in a bold weight or a bold/black font.
    bold: bool
    x0: float
    top: float
    bottom: float
    page_height: float
    #: The font name most of its visible characters have (subset prefix removed: 「MS-Gothic」).
    font: str = ""


@dataclass
class Page:
    """One page of a document as read: 1-based page number and its raw text."""

    number: int
    text: str
    #: A label for citations where "page" is not a page, e.g. 「シート1 行5」 for a spreadsheet row.
    label: str = ""
    #: True when the text was read with OCR (a scan or outlined text; corpus.readers.ocr).
    ocr: bool = False
    #: Tables found on a PDF page (its ``text`` still holds their text as read).
    tables: tuple[PdfTable, ...] = ()
    #: Layout of each line of ``text`` (a PDF page read by pypdfium2): line k of
    #: ``text.split("\n")`` (CR/LF as \n) is ``lines[k]``. Empty when unknown (other readers,
    #: OCR, pages re-read by pdfplumber).
    lines: tuple[LineInfo, ...] = ()


@dataclass
class RawDocument:
    """A document as a reader returns it: pages of text plus what went wrong on the way."""

    path: str
    pages: list[Page]
    messages: list[IngestMessage] = field(default_factory=list)
    #: "text" for running prose/PDF text, "records" when the reader already produced one item
    #: per page-like unit (e.g. a spreadsheet row rendered as 「見出し：値」 lines).
    layout: Literal["text", "records"] = "text"


@dataclass(frozen=True)
class DocumentMeta:
    """One manifest row. ``path`` (relative to the corpus root) is the document id."""

    path: str
    municipality: str
    prefecture: str = ""
    title: str = ""
    year: str = ""
    kind: str = ""
    url: str = ""
    extra: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def doc_id(self) -> str:
        """The document id: its manifest path."""
        return self.path


@dataclass
class Item:
    """One reform item found by a structure parser, before budget splitting.

    ``municipality``/``prefecture`` are set only when the item belongs to another municipality
    than its document (e.g. a case in a case collection).
    """

    section_path: tuple[str, ...]
    title: str
    text: str
    page_start: int
    page_end: int
    department: str = ""
    municipality: str = ""
    prefecture: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    #: Where each page's text begins in ``text``: (character offset, page number) pairs in text
    #: order, the first at offset 0. A part ``text[start:end]`` is cited with the pages of the
    #: marks it overlaps (:meth:`pages_of`). Empty when unknown: every part gets
    #: ``page_start``–``page_end``.
    page_marks: tuple[tuple[int, int], ...] = ()

    def pages_of(self, start: int, end: int) -> tuple[int, int]:
        """The (first, last) page of ``text[start:end]``: the pages of the :attr:`page_marks`
        segments it overlaps; the item's ``page_start``/``page_end`` when there are no marks."""
        if not self.page_marks:
            return self.page_start, self.page_end
        hit: list[int] = []
        for k, (off, page) in enumerate(self.page_marks):
            nxt = self.page_marks[k + 1][0] if k + 1 < len(self.page_marks) else len(self.text) + 1
            if off < max(end, start + 1) and nxt > start:
                hit.append(page)
        if not hit:  # an empty span: the page it sits on
            before = [page for off, page in self.page_marks if off <= start] or [self.page_marks[0][1]]
            hit = [before[-1]]
        return min(hit), max(hit)


@dataclass
class Chunk:
    """The unit that is embedded, searched, displayed and cited."""

    chunk_id: str
    doc_id: str
    municipality: str
    prefecture: str
    title: str
    section_path: tuple[str, ...]
    item: str
    department: str
    page_start: int
    page_end: int
    text: str
    embed_text: str
    kind: str = ""
    year: str = ""
    url: str = ""
    part: int = 0
    parts: int = 1
    fields: dict[str, str] = field(default_factory=dict)
    #: True when a page of the chunk was read with OCR: its text may hold misread characters,
    #: and the citation says 「OCR」.
    ocr: bool = False

    @property
    def section(self) -> str:
        """The section path joined for display (「改革項目 › 具体的取組」)."""
        return SECTION_SEP.join(self.section_path)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the record (section path as a list and as a joined string)."""
        d = asdict(self)
        d["section_path"] = list(self.section_path)
        d["section"] = self.section
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Chunk":
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d.pop("section", None)
        d["section_path"] = tuple(d.get("section_path") or ())
        return cls(**d)
