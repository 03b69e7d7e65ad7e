"""PDF layout (issue 10, point 1): each text line of a PDF page keeps its font size, weight and
position (``Page.lines``); lines printed large or bold become headings, and running headers,
footers and printed page numbers are dropped by their place in the margin band. The real-PDF
tests use ../shared/pdfs and skip when it is absent."""
from __future__ import annotations

from pathlib import Path

import pytest

from corpus.document import load_document
from corpus.normalize import compact, strip_page_furniture
from corpus.readers.pdf import PdfReader
from corpus.records import Chunk, DocumentMeta, LineInfo, Page
from corpus.structure import Line, parse_outline


def _load(folder: Path, name: str) -> list[Chunk]:
    chunks = load_document(folder, DocumentMeta(name, "音威子府村", "北海道", name)).chunks
    return chunks


def _info(text: str, size: float, top: float, bold: bool = False) -> LineInfo:
    return LineInfo(text, size, bold, 60.0, top, top + size, 842.0)


# --------------------------------------------------------------------------- pure functions


def test_margin_lines_repeating_across_pages_are_furniture_but_body_lines_are_not():
    pages = []
    for n in range(1, 5):
        texts = [f"広報テスト 2023年{n}月号", f"本文の{n}ページ目です。", f"{n}"]
        infos = (_info(texts[0], 9, 20), _info(texts[1], 11, 400), _info(texts[2], 9, 810))
        pages.append(Page(n, "\n".join(texts), lines=infos))
    out, removed = strip_page_furniture(pages)
    assert [p.text for p in out] == [f"本文の{n}ページ目です。" for n in range(1, 5)]
    assert "広報テスト 2023年3月号" in removed and "3" in removed
    assert [ln.text for ln in out[0].lines] == ["本文の1ページ目です。"]  # layout follows the text


def test_a_large_unnumbered_line_opens_a_section_only_with_its_layout():
    body = "本文です。" * 12
    lines = [Line(1, "人件費の状況"), Line(1, body), Line(1, body)]
    without = parse_outline(lines, "文書")
    assert all(sec.title != "人件費の状況" for sec in without)
    with_layout = parse_outline(lines, "文書", {0: True})
    assert [sec.title for sec in with_layout if sec.lines] == ["人件費の状況"]


def test_an_emphasized_numbered_heading_may_hold_a_comma():
    lines = [Line(1, "１ 趣旨"), Line(1, "本文です。"), Line(1, "２ 根拠となる法律、条例等"), Line(1, "本文です。")]
    assert [s.title for s in parse_outline(lines, "文書") if s.heading_line] == ["１ 趣旨"]
    titles = [s.title for s in parse_outline(lines, "文書", {2: False}) if s.heading_line]
    assert titles == ["１ 趣旨", "２ 根拠となる法律、条例等"]


# --------------------------------------------------------------------------- real PDFs

KYUYO = "otoineppu_kyuyo_teiin_kanri_r7.pdf"
TEBIKI = "nankoku_seimu_katsudouhi_tebiki_h28.pdf"


def test_line_info_gives_sizes_and_positions(shared_pdfs):
    raw = PdfReader().read(shared_pdfs / KYUYO, KYUYO)
    p1 = raw.pages[0]
    assert len(p1.lines) == len(p1.text.split("\n"))
    by_text = {compact(ln.text): ln for ln in p1.lines}
    title = by_text[compact("音威子府村の給与・定員管理等について")]
    heading = by_text[compact("１ 総括")]
    number = by_text["-1-"]
    assert title.size == 14.0 and heading.size == 12.0 and number.size == 9.0
    assert title.top < heading.top < number.top  # measured down from the top edge
    assert number.top > 0.92 * number.page_height  # the printed page number sits in the bottom band


def test_kyuyo_letter_spaced_heading_is_the_section_of_its_table(shared_pdfs):
    chunks = _load(shared_pdfs, KYUYO)
    under = [c for c in chunks if any(compact("人件費の状況") in compact(s) for s in c.section_path)]
    assert under, "「人件費の状況」 の下のチャンクがありません / no chunk under 「人件費の状況」"
    assert any("令和5年度" in c.item or "令和5年度" in c.text for c in under)


def test_tebiki_large_heading_with_a_comma_is_a_top_level_section(shared_pdfs):
    chunks = _load(shared_pdfs, TEBIKI)
    c = next(c for c in chunks if "第１００条" in c.section or "第１００条" in c.item)
    assert c.section_path[0] == "２ 政務活動費交付の根拠となる法律、条例等"
    assert all(c.page_end - c.page_start + 1 <= 2 for c in chunks)


@pytest.mark.parametrize("name", [KYUYO, TEBIKI, "otoineppu_kouhou_2023_02.pdf"])
def test_printed_page_numbers_are_not_chunk_text(shared_pdfs, name):
    chunks = _load(shared_pdfs, name)
    for c in chunks:
        lines = [ln.strip() for ln in c.text.split("\n")]
        assert not any(ln in ("- 1 -", "- 2 -", "- 3 -") for ln in lines), (c.page_start, c.text[:80])
    if name == KYUYO:
        assert not any(compact("- 3 -") in compact(c.text) for c in chunks)
