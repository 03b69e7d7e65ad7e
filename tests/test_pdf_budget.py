"""Budget books: one chunk per 目 with 款 › 項 › 目 as section path (issue 10, point 4).

The 節 and 説明 lines keep their amounts on the same line, a wrapped label is joined, the 目's
amounts (本年度 / 前年度 / 比較) are in its chunk. The tests on real PDFs read ../shared/pdfs and
skip without it; the expected texts were read on the pages rendered with pypdfium2 (Fuji's text
layer maps 運 to 遀 and 報酬's 酬 to 郸: the tests use the text as extracted).
"""
from __future__ import annotations

from pathlib import Path

from corpus.budget import add_setsumei, budget_items, duplicate_lines, kan_kou, roles
from corpus.chunker import chunk_document_detailed
from corpus.coverage import uncovered
from corpus.normalize import compact
from corpus.readers.pdf import PdfReader
from corpus.records import Chunk, DocumentMeta, PdfTable

# --------------------------------------------------------------------------- pure parts

HEADER = ("目", "本年度", "前年度", "比較", "本年度予算額の財源内訳・特定財源・その他", "本年度予算額の財源内訳・一般財源",
          "節・区分", "節・金額", "説明")


def _w(col: int, x0: float, text: str) -> tuple[int, float, float, str]:
    return (col, x0, x0 + 10.0 * len(text), text)


def _table() -> PdfTable:
    """A 明細書 page: one 目 whose 目 cell, 節 and 説明 labels wrap, then the 項's 計."""
    lines = (
        (_w(0, 0, "1.農業集落排"), _w(1, 130, "24,204"), _w(2, 200, "18,197"), _w(3, 270, "6,007"),
         _w(4, 340, "16,196"), _w(5, 410, "8,008"), _w(6, 480, "2.給料"), _w(7, 600, "4,479"),
         _w(8, 660, "○農業集落排水職員人件"), _w(8, 900, "8,008")),
        (_w(0, 0, "水総務費"), _w(8, 670, "費")),
        (_w(6, 480, "18.負担金、補"), _w(7, 620, "31"), _w(8, 670, "議会だより発行")),
        (_w(6, 490, "助及び交付金"),),
    )
    total = ((_w(0, 0, "計"), _w(1, 130, "24,204"), _w(2, 200, "18,197"), _w(3, 270, "6,007")),)
    rows = (("1.農業集落排水総務費", "24,204", "18,197", "6,007", "16,196", "8,008", "", "", ""),
            ("計", "24,204", "18,197", "6,007", "", "", "", "", ""))
    return PdfTable(HEADER, rows, ("款 1. 農業集落排水事業費 項 1. 農業集落排水管理費 （単位：千円）",), "lines", (lines, total))


def test_budget_header_is_recognised_and_other_tables_are_not():
    r = roles(HEADER)
    assert r is not None and (r.moku, r.name, r.amount, r.setsumei) == (0, 6, 7, 8) and r.money == (1, 2, 3, 4, 5)
    assert roles(("列1", "節・区分", "節・金額", "説明")) is not None  # the 節 half of a spread
    assert roles(("番号", "主管課", "事業名", "事業費（千円）")) is None
    assert roles(("款", "項", "金額")) is None  # 第1表: stays row by row


def test_caption_gives_kan_and_kou():
    assert kan_kou(("款 1. 農業集落排水事業費 項 2. 農業集落排水施設費 （単位：千円）",)) == (
        "1.農業集落排水事業費", "2.農業集落排水施設費")
    assert kan_kou(("３ 歳 出", "１款 議会費 488,451千円", "１項 議会費 488,451千円")) == ("1款 議会費", "1項 議会費")


def test_one_item_per_moku_with_amounts_beside_their_labels():
    items = budget_items([(13, _table())])
    moku, total = items
    assert moku.section_path == ("1.農業集落排水事業費", "1.農業集落排水管理費", "1.農業集落排水総務費")
    lines = moku.text.splitlines()
    assert "本年度：24,204　前年度：18,197　比較：6,007" in lines
    assert "財源内訳　その他：16,196　一般財源：8,008" in lines
    assert "2.給料 4,479" in lines and "18.負担金、補助及び交付金 31" in lines
    assert "○農業集落排水職員人件費 8,008" in lines
    assert "議会だより発行" in lines  # a 説明 line without an amount is not glued to the one before
    assert total.section_path == ("1.農業集落排水事業費", "1.農業集落排水管理費") and total.title.endswith("計")


def test_wrapped_setsumei_joins_only_after_an_amount():
    entries = []
    add_setsumei(entries, [_w(3, 0, "ペーパーレス会議等対応")], widest=110)
    add_setsumei(entries, [_w(3, 0, "タブレット端末運用管理")], widest=110)  # full width, but no amount
    add_setsumei(entries, [_w(3, 0, "全国自治体病院協議会負担"), _w(3, 200, "18")], widest=120)
    add_setsumei(entries, [_w(3, 0, "金")], widest=120)
    assert [e.line() for e in entries] == ["ペーパーレス会議等対応", "タブレット端末運用管理", "全国自治体病院協議会負担金 18"]


def test_jumbled_page_lines_that_repeat_the_rows_are_dropped_and_new_ones_kept():
    [moku, _] = budget_items([(1, _table())])
    kept, removed = duplicate_lines("給料2 4,479\n計 6,00724,204\n食糧費 80\n交付金 12,288", [moku], 1)
    assert removed == ["給料2 4,479", "計 6,00724,204"] and kept == "食糧費 80\n交付金 12,288"
    assert duplicate_lines("給料2 4,479", [moku], 2) == ("給料2 4,479", [])  # another page's rows do not count


# --------------------------------------------------------------------------- the real municipal PDFs


def _read(folder: Path, name: str) -> list[Chunk]:
    raw = PdfReader().read(folder / name, name)
    res = chunk_document_detailed(raw, DocumentMeta(name, "市", "県", name))
    lost = uncovered("\n".join(p.text for p in raw.pages), res.chunks, res.removed)
    assert lost == [], f"チャンクにない行 / lines in no chunk: {lost[:5]}"
    assert all(c.page_end - c.page_start < 2 for c in res.chunks)
    return res.chunks


def _moku(chunks: list[Chunk], path: tuple[str, str, str]) -> list[Chunk]:
    """The chunk(s) of one 目: its parts, all with the same section path and the 目 as item."""
    hits = [c for c in chunks if c.section_path and c.section_path[-1] == path[-1]]
    assert hits and all(c.section_path == path and c.item == path[-1] for c in hits), [c.section_path for c in hits]
    assert [c.part for c in hits] == list(range(hits[0].parts)), f"{path[-1]}: 目が複数のチャンクに / several items"
    return hits


def _line_in(chunks: list[Chunk], line: str) -> Chunk:
    hits = [c for c in chunks if line in c.text.splitlines()]
    assert len(hits) == 1, f"{line!r}: {len(hits)} 個のチャンク / chunks"
    return hits[0]


def test_fuji_gikaihi_is_one_moku_with_its_setsu_and_setsumei(shared_pdfs):
    chunks = _read(shared_pdfs, "fuji_r8_saishutsu01_gikaihi_gs_split.pdf")
    parts = _moku(chunks, ("1款 議会費", "1項 議会費", "1 議会費"))
    assert "本年度：488,451　前年度：499,446　比較：△10,995" in parts[0].text.splitlines()
    assert "財源内訳　その他：1,013　一般財源：487,438" in parts[0].text.splitlines()
    assert _line_in(parts, "市議会議員共済会事務負担金 416").page_start == 1
    assert _line_in(parts, "時間外勤務手当 2,000") in parts  # 「時間外勤務手 / 当」 joined
    assert _line_in(parts, "全国自治体病院経営邴市議会協議会負担金 18") in parts  # wrapped 説明 label
    assert _line_in(parts, "政務活動費交付金 12,288") in parts
    # p.2's 節 half (not a ruled table for pdfplumber) goes to the same 目, cited p.2
    assert _line_in(chunks, "印刷製本費 5,452") in parts and _line_in(chunks, "交付金 12,288").page_end == 2
    total = [c for c in chunks if c.item == "1項 議会費 計"]
    assert len(total) == 1 and total[0].page_start == 2 and total[0].section_path == ("1款 議会費", "1項 議会費")


NANKOKU_MOKU = [
    ("1.分担金及び負担金", "1.分担金", "1.農業集落排水事業受益者分担金"),
    ("2.使用料及び手数料", "1.使用料", "1.農業集落排水施設使用料"),
    ("2.使用料及び手数料", "2.手数料", "1.農業集落排水施設手数料"),
    ("3.繰入金", "1.他会計繰入金", "1.一般会計繰入金"),
    ("4.諸収入", "1.延滞金加算金及び過料", "1.延滞金"),
    ("5.市債", "1.市債", "1.農業集落排水事業債"),
    ("1.農業集落排水事業費", "1.農業集落排水管理費", "1.農業集落排水総務費"),
    ("1.農業集落排水事業費", "2.農業集落排水施設費", "1.農業集落排水維持管理費"),
    ("2.災害復旧費", "1.農業集落排水施設災害復旧費", "1.農業集落排水施設災害復旧費"),
    ("3.公債費", "1.公債費", "1.元金"),
    ("3.公債費", "1.公債費", "2.利子"),
    ("4.予備費", "1.予備費", "1.予備費"),
]


def test_nankoku_nousyuu_meisaisho_gives_one_chunk_per_moku(shared_pdfs):
    chunks = _read(shared_pdfs, "nankoku_r4_nousyuu_haisui_yosan.pdf")
    moku = [c for c in chunks if c.text.startswith("目：")]
    assert [c.section_path for c in moku] == NANKOKU_MOKU
    for path in NANKOKU_MOKU:
        _moku([c for c in moku if c.section_path[:2] == path[:2]], path)
    soumu = _moku(chunks, NANKOKU_MOKU[6])[0]
    assert soumu.page_start == soumu.page_end == 13
    lines = soumu.text.splitlines()
    assert "本年度：24,204　前年度：18,197　比較：6,007" in lines
    assert {"3.職員手当等 2,163", "18.負担金、補助及び交付金 31", "22.償還金、利子及び割引料 60"} <= set(lines)
    assert {"○農業集落排水職員人件費 8,008", "○農業集落排水一般管理費 16,196", "排水設備資金利子補給補助金 1"} <= set(lines)
    ijikanri = _moku(chunks, NANKOKU_MOKU[7])[0]
    assert "国府処理場・中継ポンプ場クラウド化工事費 10,280" in ijikanri.text.splitlines()
    assert "財源内訳　地方債：10,200　その他：15,804　一般財源：14,621" in ijikanri.text.splitlines()
    risi = _moku(chunks, NANKOKU_MOKU[10])[0]
    assert "比較：△1,941" in risi.text and "○公債費利子 14,792" in risi.text.splitlines()
    # the caption lines became the section path; they are not glued to the 目 before them
    assert not any(compact("款 1. 農業集落排水事業費") in compact(c.text) for c in moku)
    # 第1表 (款・項 only) stays row by row
    assert any(c.page_start == 4 and c.item == "1.分担金及び負担金" for c in chunks)
