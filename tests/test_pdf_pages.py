"""Every chunk cites the pages of its own text (issue 10, point 2).

A long item cut into parts gives each part the pages of its own text, a part never crosses two
page breaks, stand-alone headings of a speech (「総　務」) build its sections, and printed page
numbers (「- 1 -」「― 162 ―」) are dropped. The last tests run on the real municipal PDFs of
../shared/pdfs and skip when it is absent.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.chunker import chunk_document, chunk_document_detailed, split_spans
from corpus.coverage import uncovered
from corpus.document import load_document
from corpus.normalize import clean_display_text, compact, page_marks, strip_page_furniture
from corpus.records import Chunk, DocumentMeta, Item, Page, RawDocument
from corpus.structure import Line, parse_outline, standalone_heading_lines
from tests.conftest import SHARED

META = DocumentMeta("g.pdf", "生成市", "生成県", "生成文書")


def _span(c: Chunk) -> int:
    return c.page_end - c.page_start + 1


def _chunk_with(chunks: list[Chunk], sentence: str) -> Chunk:
    """The one chunk whose text holds ``sentence`` (compared without whitespace, NFKC)."""
    hits = [c for c in chunks if compact(sentence) in compact(c.text)]
    assert len(hits) == 1, f"{sentence!r} は {len(hits)} 個のチャンクにあります / in {len(hits)} chunks"
    return hits[0]


# --------------------------------------------------------------------------- pages of a text


def test_item_pages_of_maps_part_offsets_to_pages():
    text = "一頁目の文です。\n二頁目の文です。三頁目の文です。"
    it = Item((), "t", text, 1, 3, page_marks=((0, 1), (9, 2), (17, 3)))
    assert it.pages_of(0, 8) == (1, 1)
    assert it.pages_of(0, 12) == (1, 2)
    assert it.pages_of(9, 17) == (2, 2)
    assert it.pages_of(17, len(text)) == (3, 3)
    assert Item((), "t", text, 1, 3).pages_of(0, 5) == (1, 3)  # no marks: the item's pages


def test_page_marks_follow_wrapped_lines_across_a_page_break():
    lines = [(4, "令和４年度の予算は、前年度比で"), (4, "増えております。財政の健"), (5, "全化に取り組みます。"), (5, "次の段落です。")]
    text = clean_display_text("\n".join(t for _, t in lines))
    marks = page_marks(text, lines)
    assert marks[0] == (0, 4)
    assert [p for _, p in marks] == [4, 5]
    # the page-5 text begins at 「全化」, inside the joined sentence 「財政の健全化」
    assert text[marks[1][0]:].startswith("全化に取り組みます。")


def test_split_never_crosses_two_page_breaks_even_under_the_budget():
    pages = [Page(n, f"第{n}頁の短い文です。") for n in range(1, 6)]
    chunks = chunk_document(RawDocument("g.pdf", pages), META)
    assert chunks and all(_span(c) <= 2 for c in chunks)
    assert {p for c in chunks for p in range(c.page_start, c.page_end + 1)} == {1, 2, 3, 4, 5}


def test_a_part_does_not_jump_over_pages_without_text():
    # pages 2 and 3 are scans without text: one paragraph on p.1 and p.4 is not cited pp.1–4
    pages = [Page(1, "南国市農業集落排水事業特別会計予算"), Page(4, "第1表 歳入歳出予算\n歳入合計 180,834")]
    chunks = chunk_document(RawDocument("g.pdf", pages), META)
    assert [(c.page_start, c.page_end) for c in chunks] == [(1, 1), (4, 4)]


def test_split_spans_without_pages_keeps_the_budget_split():
    text = "。".join(["市民協働の推進を図ります"] * 40) + "。"
    spans = split_spans(text, 60)
    assert len(spans) > 1 and "".join(text[a:b] for a, b in spans) == text


_word = st.text(alphabet="市民協働行財政改革推進計画予算事業評価窓口施設", min_size=2, max_size=6)


@st.composite
def paged_document(draw) -> tuple[list[Page], list[tuple[str, set[int]]]]:
    """Pages of wrapped running prose without headings; each sentence is tagged with the pages it
    is printed on (a sentence may continue on the next page)."""
    width = draw(st.integers(min_value=14, max_value=40))
    n_pages = draw(st.integers(min_value=3, max_value=9))
    sentences: list[tuple[str, set[int]]] = []
    page_texts: list[str] = []
    carry = ""
    for n in range(1, n_pages + 1):
        body = carry
        carry = ""
        if body:
            sentences[-1][1].add(n)
        for k in range(draw(st.integers(min_value=1, max_value=6))):
            s = f"第{n}頁{k}号の{draw(_word)}を{draw(_word)}します。"
            sentences.append((s, {n}))
            body += s
        if n < n_pages and draw(st.booleans()):  # a sentence that runs over the page break
            s = f"第{n}頁続きの{draw(_word)}と{draw(_word)}を進めます。"
            sentences.append((s, {n}))
            cut = len(s) // 2
            body += s[:cut]
            carry = s[cut:]
        wrapped = [body[i:i + width] for i in range(0, len(body), width)]
        page_texts.append("\n".join(["生成市行財政改革プラン", *wrapped, f"- {n} -"]))
    return [Page(n + 1, t) for n, t in enumerate(page_texts)], sentences


@settings(max_examples=25, deadline=None)
@given(paged_document(), st.sampled_from([30, 80, 400]))
def test_every_sentence_is_cited_with_its_own_pages(doc, budget):
    pages, sentences = doc
    res = chunk_document_detailed(RawDocument("g.pdf", pages), META, max_tokens=budget)
    assert all(_span(c) <= 2 for c in res.chunks)
    assert uncovered("\n".join(p.text for p in pages), res.chunks, res.removed) == []
    for sentence, on in sentences:
        hits = [c for c in res.chunks if sentence in c.text]
        if not hits:  # cut by the budget: each piece is on a page of the sentence
            continue
        c = hits[0]
        assert c.page_start <= min(on) and max(on) <= c.page_end, (sentence, on, c.page_start, c.page_end)


def test_case_collection_parts_cite_their_own_pages():
    case = "ごみ処理の広域化＜秋田県（人口約91万人）＞"
    pages = [Page(1, case + "\n" + "".join(f"課題{k}の文です。" for k in range(30)))]
    pages += [Page(n, "".join(f"取組{n}の{k}の文です。" for k in range(30))) for n in range(2, 6)]
    pages += [Page(6, "窓口の改善＜三重県（人口約174万人）＞\n" + "".join(f"成果{k}の文です。" for k in range(10)))]
    res = chunk_document_detailed(RawDocument("g.pdf", pages), META, max_tokens=60)
    assert res.shape == "cases"
    akita = [c for c in res.chunks if c.municipality == "秋田県"]
    assert len(akita) > 2 and all(_span(c) <= 2 for c in akita)
    assert akita[0].page_start == 1 and akita[-1].page_end == 5
    assert _chunk_with(res.chunks, "取組3の7の文です。").page_start >= 2


# --------------------------------------------------------------------------- furniture and headings


def test_dashed_page_numbers_and_running_labels_are_dropped():
    pages = [
        Page(1, "― 162 ― 農業集落\n第1表 歳入歳出予算\n歳入合計 180,834"),
        Page(2, "款 項 金額\n1.使用料 32,050\n― 　163　 ― 農業集落"),
        Page(3, "― 164 ― 農業集落\n2.手数料 10"),
        Page(4, "本文の途中\n－　1　－\n続きの本文"),
        Page(5, "本文\n- 165 -\n表の続き"),
    ]
    out, removed = strip_page_furniture(pages)
    text = "\n".join(p.text for p in out)
    assert "農業集落" not in text and "162" not in text and "165" not in text and "－" not in text
    assert "歳入合計 180,834" in text and "続きの本文" in text
    assert len(removed) == 5


SPEECH = [
    "おはようございます。本日は第４２５回定例会の開会に当たり、市政運営について申し上げます。",
    "新型コロナウイルス感染症につきましては、市民の皆様の御協力に深く感謝申し上げます。",
    "総　務",
    "まず、総務関係につきまして、申し上げます。厳しい財政状況の中で人材育成に努めます。",
    "職員研修の強化・充実を図り、コンプライアンスの徹底と人材育成に努めてまいります。",
    "危機管理",
    "次に、危機管理関係につきまして、申し上げます。防災士養成講座を開催いたします。",
    "訓練関係につきましては、南海トラフ地震を想定した震災訓練を計画しております。",
    "財 政",
    "次に、財政関係につきまして、申し上げます。経常経費の節減を図ってまいります。",
    "健全な財務体質の確立に向け、さらに行財政改革に取り組んでまいります。引き続き",
    "市民の皆様の御理解と御協力をお願い申し上げます。",
]


def test_short_standalone_lines_of_a_speech_are_headings():
    lines = [Line(1 + k // 6, t) for k, t in enumerate(SPEECH)]
    assert sorted(standalone_heading_lines(lines)) == [2, 5, 8]
    titles = [s.title for s in parse_outline(lines, "施政方針")]
    assert titles == ["施政方針", "総務", "危機管理", "財政"]
    items = chunk_document(RawDocument("g.pdf", [Page(1, "\n".join(SPEECH[:6])), Page(2, "\n".join(SPEECH[6:]))]), META)
    assert {c.section_path for c in items} >= {("総務",), ("財政",)}
    # 「危機管理」 ends page 1, its text is on page 2: the part cites the heading's page too
    crisis = _chunk_with(items, "防災士養成講座を開催いたします。")
    assert crisis.section_path == ("危機管理",) and (crisis.page_start, crisis.page_end) == (1, 2)
    assert (_chunk_with(items, "経常経費の節減を図ってまいります。").page_start) == 2


def test_standalone_lines_are_not_headings_in_tables_or_numbered_plans():
    table = ["款 項 金額", "総　務", "1,001", "財　政", "32,050"] * 4
    assert standalone_heading_lines([Line(1, t) for t in table]) == set()
    plan = ["第1章 総論", *SPEECH[:3], "第2章 各論", *SPEECH[3:6], "第3章 推進", *SPEECH[6:]]
    titles = [s.title for s in parse_outline([Line(1, t) for t in plan], "計画")]
    assert "総務" not in titles and "第3章 推進" in titles


# --------------------------------------------------------------------------- the real municipal PDFs

_PDFS = SHARED / "pdfs"
REAL_PDFS = sorted(p.name for p in _PDFS.glob("*.pdf") if not p.name.startswith("fixture_")) if _PDFS.is_dir() else []


def _load(folder: Path, name: str) -> list[Chunk]:
    chunks = load_document(folder, DocumentMeta(name, "南国市", "高知県", name)).chunks
    return chunks


@pytest.mark.parametrize("name", REAL_PDFS or ["(no shared pdfs)"])
def test_every_chunk_of_a_real_pdf_spans_at_most_two_pages(shared_pdfs, name):
    chunks = _load(shared_pdfs, name)
    wide = [(c.page_start, c.page_end, c.text[:30]) for c in chunks if _span(c) > 2]
    assert wide == [], f"3 ページ以上にまたがるチャンク / chunks over 3+ pages: {wide[:5]}"


@pytest.fixture(scope="module")
def shisei(shared_pdfs) -> list[Chunk]:
    return _load(shared_pdfs, "nankoku_r4_shisei_houshin.pdf")


def test_shisei_houshin_sections_are_the_department_headings(shisei):
    sections = {c.section for c in shisei}
    for dept in ("総務", "危機管理", "財政", "企画", "税務", "民生", "環境", "建設", "福祉", "消防", "教育"):
        assert dept in sections, dept
    assert _chunk_with(shisei, "まず、総務関係につきまして、申し上げます。").section_path == ("総務",)
    assert _chunk_with(shisei, "次に、財政関係につきまして、申し上げます。").section_path == ("財政",)


def test_shisei_houshin_sentences_are_cited_with_their_printed_page(shisei):
    # read on the rendered pages (pypdfium2): p.1 opens the speech, p.9 has the 環境 section
    # with the refuse-sack prices, p.14 the 雨水幹線 of 上下水道 and the 手話言語条例 of 福祉
    first = _chunk_with(shisei, "おはようございます。")
    assert (first.page_start, first.page_end) == (1, 1)
    sacks = _chunk_with(shisei, "家庭用可燃ごみ袋の価格につきましては")
    assert (sacks.page_start, sacks.page_end) == (9, 9) and sacks.section_path == ("環境",)
    for sentence in ("浸水対策として整備してまいりました新川雨水幹線", "市手話言語条例制定議案を上程しております"):
        c = _chunk_with(shisei, sentence)
        assert c.page_start <= 14 <= c.page_end and _span(c) <= 2
    assert not any("- 3 -" in c.text or "- 17 -" in c.text for c in shisei)


def test_budget_book_page_numbers_and_running_label_are_not_text(shared_pdfs):
    chunks = _load(shared_pdfs, "nankoku_r4_nousyuu_haisui_yosan.pdf")
    assert chunks
    printed = re.compile(r"―[\s　]*\d+[\s　]*―")  # 「― 162 ― 農業集落」 on every page
    assert not [c.text[:40] for c in chunks if printed.search(c.text)]
    cover = [c for c in chunks if compact(c.text) == compact("令和４年度南国市農業集落排水事業特別会計予算")]
    assert [(c.page_start, c.page_end) for c in cover] == [(1, 1)]
