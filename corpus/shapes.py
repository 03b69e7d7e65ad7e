"""Which shape cut which pages of a document: a per-page summary for ``seisaku chunks``.

:func:`corpus.chunker.chunk_document_detailed` names one shape per document (``prose``,
``pdf_table+prose``, …). A PDF mixes them: table pages become one chunk per row, scanned pages are
read with OCR, the rest is cut by the document's text shape. :func:`page_shapes` says which pages
went which way as runs of consecutive pages, and :func:`describe_page_shapes` renders them as one
line, e.g. 「p.1 本文（prose）, pp.2–3 表（table）」. The runs travel with the chunks
(:attr:`corpus.document.LoadedDocument.page_shapes`, :attr:`corpus.loader.CorpusLoad.page_shapes`),
so nothing reads a document again to show them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from corpus.records import Page, page_label

#: Japanese names of the page shapes, shown before the English one.
SHAPE_NAMES = {
    "table": "表",
    "ocr": "OCR",
    "prose": "本文",
    "cases": "事例",
    "sheet": "評価シート",
    "progress_table": "進捗表",
    "records": "行単位",
    "budget": "予算書",
}


@dataclass(frozen=True)
class PageShape:
    """A run of consecutive pages cut the same way: pages ``first``–``last`` (1-based) by ``shape``."""

    first: int
    last: int
    #: "table" (PDF table rows), "ocr" (read from the image) or the document's text shape.
    shape: str

    def to_dict(self) -> dict[str, int | str]:
        """JSON form: ``{"first": 1, "last": 2, "shape": "table"}``."""
        return {"first": self.first, "last": self.last, "shape": self.shape}


def text_shape(shape: str) -> str:
    """The text shape inside a document shape: 「pdf_table+prose」 → 「prose」, 「pdf_table」 → ""."""
    if shape.startswith("pdf_table"):
        return shape.partition("+")[2]
    return shape


def page_shape(page: Page, doc_text_shape: str, *, ocr: bool = False, tables: bool = False) -> str:
    """The shape one page was cut by: 「ocr」 when read with OCR, 「table」 when it has PDF tables,
    else the document's text shape (「prose」 when there is none). ``ocr`` / ``tables`` say so when
    ``page`` itself no longer carries the flags."""
    if page.ocr or ocr:
        return "ocr"
    if page.tables or tables:
        return "table"
    return doc_text_shape or "prose"


def page_shapes(pages: Sequence[Page], shape: str, read: Sequence[Page] = ()) -> list[PageShape]:
    """Runs of pages with the same shape, in page order, for a document cut with ``shape`` (the
    :attr:`ChunkResult.shape`). ``pages`` are the pages cut (after page inference: a text file with
    printed page numbers has several); ``read`` the pages as read, whose ``ocr`` and ``tables`` count
    for the page of the same number. Pages without text and tables are left out; a run goes on
    over them."""
    ocr = {p.number for p in read if p.ocr}
    tables = {p.number for p in read if p.tables}
    runs: list[PageShape] = []
    doc_text = text_shape(shape)
    for p in sorted(pages, key=lambda p: p.number):
        if not p.text.strip() and not p.tables and p.number not in tables:
            continue
        s = page_shape(p, doc_text, ocr=p.number in ocr, tables=p.number in tables)
        if runs and runs[-1].shape == s:
            runs[-1] = PageShape(runs[-1].first, p.number, s)
        else:
            runs.append(PageShape(p.number, p.number, s))
    return runs


def describe_page_shapes(runs: Sequence[PageShape]) -> str:
    """One line for people: 「pp.1–2 表（table）, pp.3–17 本文（prose）」; "" for no runs."""
    parts = []
    for r in runs:
        pages = page_label(r.first, r.last)
        name = SHAPE_NAMES.get(r.shape)
        parts.append(f"{pages} {name}（{r.shape}）" if name else f"{pages} {r.shape}")
    return ", ".join(parts)

