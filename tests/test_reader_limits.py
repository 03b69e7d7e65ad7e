"""Per-document limits in the readers (issue 14, point 3) and the small reader messages of point 8:
a line pypdfium2 cuts, 200 nested Word tables, a FIFO, ``..txt``, bidi controls in file names.

Every file is generated here (reportlab, openpyxl, python-docx) and kept small: the limits are
configured low instead of writing huge files.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from corpus.limits import DocumentLimits
from corpus.readers import check_file, cut_text, file_extension, read_document, reader_for
from corpus.readers.docx import MAX_TABLE_DEPTH
from corpus.readers.pdf import PDFIUM_LINE_CAP
from corpus.readers.xlsx import XlsxReader
from corpus.records import Page, RawDocument
from index.update import sanitise_filename

REPO = Path(__file__).resolve().parents[1]
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def errors(doc: RawDocument) -> list:
    return [m for m in doc.messages if m.severity == "error"]


def warnings(doc: RawDocument) -> list:
    return [m for m in doc.messages if m.severity == "warning"]


def _cid_font() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiMin-W3"))
    return "HeiseiMin-W3"


def _pdf(pages: list[list[str]], size: float = 11) -> bytes:
    """A PDF with one page per list of lines, in a Japanese CID font (lines 16 pt apart)."""
    from reportlab.pdfgen import canvas

    font = _cid_font()
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    for lines in pages:
        t = c.beginText(20, 800)
        t.setFont(font, size, leading=16)
        for line in lines:
            t.textLine(line)
        c.drawText(t)
        c.showPage()
    c.save()
    return buf.getvalue()


# ---------------------------------------------------------------- max_pages


def test_pdf_pages_after_max_pages_are_not_read_with_one_warning(tmp_path: Path):
    p = tmp_path / "budget.pdf"
    p.write_bytes(_pdf([[f"第{i}章　予算の概要 {i} ページ目"] for i in range(1, 6)]))
    doc = read_document(p, "budget.pdf", limits=DocumentLimits(max_pages=2))
    assert not errors(doc)
    assert [pg.number for pg in doc.pages] == [1, 2]
    (w,) = warnings(doc)
    assert "max_pages = 2" in w.message and "3 ページ目以降" in w.message and "全 5 ページ" in w.message
    assert "pages 3–5 of 5 not read" in w.message
    # without limits, or within them, every page is read and nothing is said
    assert [pg.number for pg in read_document(p, "budget.pdf").pages] == [1, 2, 3, 4, 5]
    full = read_document(p, "budget.pdf", limits=DocumentLimits(max_pages=5))
    assert len(full.pages) == 5 and not full.messages


# ---------------------------------------------------------------- max_sheet_rows


def _xlsx(path: Path, sheets: dict[str, int]) -> None:
    """A workbook with a header row and ``n`` data rows per sheet (write-only: nothing is kept)."""
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    for title, n in sheets.items():
        ws = wb.create_sheet(title)
        ws.append(["事業名", "担当課", "評価"])
        for i in range(2, n + 2):
            ws.append([f"事業{i}", "企画課", "継続"])
    wb.save(path)


def test_xlsx_rows_after_max_sheet_rows_are_not_read_with_a_warning_per_sheet(tmp_path: Path):
    p = tmp_path / "jigyou.xlsx"
    _xlsx(p, {"令和5年度": 150, "令和6年度": 149, "小さい表": 20})  # rows 2..151, 2..150, 2..21
    doc = read_document(p, "jigyou.xlsx", limits=DocumentLimits(max_sheet_rows=100))
    assert not errors(doc)
    by_sheet: dict[str, list[int]] = {}
    for pg in doc.pages:
        by_sheet.setdefault(pg.label.split(" 行")[0], []).append(pg.number)
    assert by_sheet["令和5年度"] == list(range(2, 101))
    assert by_sheet["令和6年度"] == list(range(2, 101))
    assert by_sheet["小さい表"] == list(range(2, 22))
    ws = warnings(doc)
    assert len(ws) == 2
    assert "シート「令和5年度」の 101 行目以降" in ws[0].message and "max_sheet_rows = 100" in ws[0].message
    assert "シート「令和6年度」" in ws[1].message
    assert not any("小さい表" in w.message for w in ws)
    # without limits every row is read
    assert len(read_document(p, "jigyou.xlsx").pages) == 150 + 149 + 20


class _Cell:
    def __init__(self, row: int, value: str) -> None:
        self.row, self.value = row, value


class _EndlessSheet:
    """A worksheet of endless rows that fails the test when read past ``fail_after``: a reader that
    collects a sheet before applying the limit (a 1,000,000-row sheet in memory) cannot pass."""

    title = "100万行"

    def __init__(self, fail_after: int) -> None:
        self.fail_after = fail_after

    def iter_rows(self):
        yield (_Cell(1, "事業名"), _Cell(1, "評価"))
        row = 2
        while True:
            assert row <= self.fail_after, f"row {row} was read, past the limit"
            yield (_Cell(row, f"事業{row}"), _Cell(row, "継続"))
            row += 1


def test_xlsx_sheet_rows_are_streamed_and_reading_stops_at_the_limit():
    pages: list[Page] = []
    messages: list = []
    XlsxReader._read_sheet(_EndlessSheet(fail_after=51), "big.xlsx", pages, messages, 50)
    assert [pg.number for pg in pages] == list(range(2, 51))
    (w,) = messages
    assert "100万行" in w.message and "max_sheet_rows = 50" in w.message


# ---------------------------------------------------------------- max_doc_chars and max_file_bytes


def test_text_beyond_max_doc_chars_is_cut_at_a_line_end_and_later_pages_dropped(tmp_path: Path):
    line = "事務事業の見直しを進めます。"  # 14 characters
    page1 = "\n".join(f"{i:03d}{line}" for i in range(10))  # 10 lines of 17 characters
    p = tmp_path / "long.txt"
    p.write_text(page1 + "\f第２ページ\f第３ページ", encoding="utf-8")
    doc = read_document(p, "long.txt", limits=DocumentLimits(max_doc_chars=60))
    assert [pg.number for pg in doc.pages] == [1]
    assert doc.pages[0].text == "\n".join(f"{i:03d}{line}" for i in range(3))  # 53 chars: line end
    (w,) = warnings(doc)
    assert "max_doc_chars = 60" in w.message and "p.1 の途中以降" in w.message
    assert read_document(p, "long.txt", limits=DocumentLimits(max_doc_chars=10_000)).messages == []


def test_cut_text_without_a_line_end_cuts_at_the_limit_and_names_the_row():
    doc = RawDocument(
        path="a.xlsx",
        pages=[Page(2, "あ" * 30, label="表 行2"), Page(3, "い" * 30, label="表 行3"), Page(4, "う", label="表 行4")],
    )
    cut = cut_text(doc, 45)
    assert [pg.text for pg in cut.pages] == ["あ" * 30, "い" * 15]
    assert "表 行3" in cut.messages[0].message and doc.messages == []  # the input is not changed
    assert cut_text(doc, 61) is doc


def test_limits_are_the_one_file_size_bound(tmp_path: Path):
    """``limits.max_file_bytes`` is the only size bound: the reader and the loader take no
    separate ``max_bytes``; without limits the default bound applies."""
    import inspect

    from corpus import document, loader

    p = tmp_path / "a.txt"
    p.write_text("あ" * 2000, encoding="utf-8")  # 6 kB
    refused = read_document(p, "a.txt", limits=DocumentLimits(max_file_bytes=4096))
    assert not refused.pages and "file too large" in errors(refused)[0].message
    assert read_document(p, "a.txt", limits=DocumentLimits()).pages
    assert read_document(p, "a.txt").pages
    for f in (read_document, document.read_entry, document.load_document, loader.load_corpus):
        assert "max_bytes" not in inspect.signature(f).parameters, f.__name__


# ---------------------------------------------------------------- a line pypdfium2 cuts


def test_pdf_line_longer_than_16384_characters_is_read_whole(tmp_path: Path):
    p = tmp_path / "longline.pdf"
    word = "行財政改革"
    p.write_bytes(_pdf([[word * 4000 + "終", "次の行"]], size=2))  # one line of 20,001 characters
    doc = read_document(p, "longline.pdf")
    assert not errors(doc)
    text = doc.pages[0].text.replace("\n", "")
    assert text.count(word) == 4000 and "終" in text and "次の行" in text
    (w,) = warnings(doc)
    assert w.page == 1 and "pdfplumber" in w.message and f"{PDFIUM_LINE_CAP:,}" in w.message


# ---------------------------------------------------------------- nested Word tables


def _nested_docx(path: Path, depth: int) -> None:
    import docx

    d = docx.Document()
    d.add_paragraph("入れ子の表の前")
    cell = d.add_table(rows=1, cols=1).cell(0, 0)
    cell.text = "第0層"
    for i in range(1, depth):
        cell = cell.add_table(rows=1, cols=1).cell(0, 0)
        cell.text = f"第{i}層"
    d.add_paragraph("入れ子の表の後")
    d.save(str(path))


def test_docx_with_200_nested_tables_is_read_with_a_warning(tmp_path: Path):
    p = tmp_path / "nested.docx"
    _nested_docx(p, 200)
    doc = read_document(p, "nested.docx")
    assert not errors(doc)
    text = "\n".join(pg.text for pg in doc.pages)
    assert "入れ子の表の前" in text and "入れ子の表の後" in text
    assert all(f"第{i}層" in text for i in (0, 1, MAX_TABLE_DEPTH, 100, 199))
    (w,) = warnings(doc)
    assert f"nested more than {MAX_TABLE_DEPTH} deep read as plain text" in w.message


def test_docx_nested_beyond_the_parser_limit_says_so(tmp_path: Path):
    p = tmp_path / "abyss.docx"
    _nested_docx(p, 800)  # ~2,400 XML levels: more than lxml reads even with huge_tree
    doc = read_document(p, "abyss.docx")
    (e,) = errors(doc)
    assert "nested too deeply" in e.message and "暗号化" not in e.message


# ---------------------------------------------------------------- FIFO, ..txt, bidi controls


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_as_not_a_regular_file_without_blocking(tmp_path: Path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from corpus.limits import DocumentLimits
        from corpus.readers import check_file, read_document
        p = Path({str(fifo)!r})
        print(check_file(p))
        for limits in (None, DocumentLimits()):
            print(read_document(p, "pipe.txt", limits=limits).messages[0])
        """
    )
    # in a child process: a reader that opens the FIFO blocks forever, which fails on the timeout
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "通常のファイルではありません（名前付きパイプ） / not a regular file (FIFO)"
    assert all(line.startswith("error: pipe.txt: 通常のファイルではありません") and "(FIFO)" in line for line in lines[1:])
    assert len(lines) == 3 and "not found" not in out.stdout


def test_check_file_names_missing_files_and_directories(tmp_path: Path):
    assert check_file(tmp_path / "gone.txt") == "ファイルがありません / file not found"
    assert "(directory)" in check_file(tmp_path)
    (tmp_path / "ok.txt").write_text("本文", encoding="utf-8")
    assert check_file(tmp_path / "ok.txt") is None


@pytest.mark.parametrize(
    ("name", "ext"),
    [("..txt", ".txt"), (".txt", ".txt"), ("a..TXT", ".txt"), ("dir/..pdf", ".pdf"), ("計画.Docx", ".docx"),
     ("README", ""), ("a.", ""), ("...", ""), ("..", "")],
)
def test_file_extension(name: str, ext: str):
    assert file_extension(name) == ext


def test_dot_dot_txt_is_read_as_text(tmp_path: Path):
    p = tmp_path / "..txt"
    p.write_text("行財政改革の本文", encoding="utf-8")
    assert reader_for(p) is not None
    doc = read_document(p, "..txt")
    assert not doc.messages and doc.pages[0].text == "行財政改革の本文"
    # an upload named ..txt keeps its extension (it used to be stored as 「txt」 and refused)
    assert file_extension(sanitise_filename("..txt")) == ".txt"


def test_sanitise_filename_drops_bidirectional_controls():
    name = sanitise_filename("report\u202Etxt.exe")
    assert name == "reporttxt.exe"
    assert not set(sanitise_filename(f"計{BIDI}画.pdf")) & set(BIDI)
    assert sanitise_filename(f"計{BIDI}画.pdf") == "計画.pdf"
    with pytest.raises(ValueError):
        sanitise_filename("\u202e\u2066")


@pytest.mark.slow
def test_add_dot_dot_txt_is_indexed_under_a_name_that_keeps_its_extension(tmp_path: Path):
    """`seisaku add ..txt` (real model, real index): stored as uploads/_.txt and searchable."""
    from index.update import add_document
    from search.engine import Engine
    from tests.test_store import build_small_index, copy_small_index

    work = copy_small_index(build_small_index(tmp_path / "base"), tmp_path / "work")
    src = tmp_path / "..txt"
    src.write_text("下水道事業の経営改善\n\n包括的民間委託により下水道事業の経営基盤を強化する。\n", encoding="utf-8")
    rep = add_document(work, src, municipality="D市")
    assert rep.ok, rep.messages
    assert rep.doc_id == "uploads/_.txt"
    hits = Engine.from_settings(work).search("包括的民間委託により下水道事業の経営基盤を強化", k=3)
    assert hits and hits[0].chunk.doc_id == "uploads/_.txt"
