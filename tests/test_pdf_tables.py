"""PDF tables: one chunk per row (issue 10, point 3).

Rows are found with pdfplumber (ruling lines, else word positions), wrapped cells are joined,
header cells give the field names, a 課 column the department, and a table continued on the
next page keeps its header. The tests on real PDFs read ../shared/pdfs and skip without it;
the expected texts were read on the pages rendered with pypdfium2.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from corpus.chunker import chunk_document_detailed, table_row_item, table_section, text_outside_tables
from corpus.coverage import uncovered
from corpus.normalize import compact
from corpus.pdf_tables import grid_table, header_name, is_real_table, join_cell_lines, unit_lines
from corpus.readers.pdf import PdfReader, looks_tabular
from corpus.records import Chunk, DocumentMeta, Page, PdfTable, RawDocument

# --------------------------------------------------------------------------- pure parts


def _char(text: str, x0: float, top: float, size: float = 10.0) -> dict:
    return {"text": text, "x0": x0, "x1": x0 + size, "top": top, "bottom": top + size, "size": size,
            "non_stroking_color": (0.0,)}


def _line(text: str, x0: float, top: float) -> list[dict]:
    return [_char(ch, x0 + 10 * k, top) for k, ch in enumerate(text)]


def test_wrapped_cell_lines_join_without_a_space_and_new_entries_with_one():
    # the first line runs to the right edge (wrapped), the second ends early
    assert join_cell_lines([("ふるさと寄附記念品費及びふ", 198.0), ("るさと寄附業務委託料。", 150.0)], 200, 10) == (
        "ふるさと寄附記念品費及びふるさと寄附業務委託料。"
    )
    assert join_cell_lines([("事業の概要を示す。", 120.0), ("＜対象者＞ 市民", 100.0)], 200, 10) == "事業の概要を示す。 ＜対象者＞ 市民"
    assert join_cell_lines([("企画課", 60.0), ("生涯学習課", 80.0)], 200, 10) == "企画課 生涯学習課"


def test_header_names_lose_letter_spacing_and_join_levels():
    assert header_name(["財 源 内 訳（千円）", "国"]) == "財源内訳（千円）・国"
    assert header_name(["主 な 事 業 内 容"]) == "主な事業内容"
    assert unit_lines(["【一般会計】 (単位 千円)", "R4年度の事業"]) == ["(単位 千円)"]


def _grid() -> tuple[list[tuple[float, float, float, float]], list[dict]]:
    """A ruled table: 番号 | 主管課 | 事業名 | 主な事業内容, two programmes, the last cell wrapped."""
    xs = [0, 40, 120, 240, 400]
    ys = [0, 20, 60, 100]
    cells = [(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(3) for c in range(4)]
    chars = (_line("番号", 2, 5) + _line("主管課", 42, 5) + _line("事業名", 122, 5) + _line("主な事業内容", 242, 5)
             + _line("1", 2, 25) + _line("財政課", 42, 25) + _line("寄附金事業費", 122, 25)
             + _line("ふるさと寄附金の増額が見込ま", 242, 25) + _line("れるため増額計上。", 242, 40)
             + _line("2", 2, 65) + _line("企画課", 42, 65) + _line("交通関係事業費", 122, 65) + _line("支援補助金を計上。", 242, 65))
    return cells, chars


def test_grid_table_gives_header_and_rows_with_wrapped_cells_joined():
    cells, chars = _grid()
    table = grid_table(cells, chars, caption=("主な事業", "（単位：千円）"))
    assert table is not None and is_real_table(table)
    assert table.header == ("番号", "主管課", "事業名", "主な事業内容")
    assert table.rows[0] == ("1", "財政課", "寄附金事業費", "ふるさと寄附金の増額が見込まれるため増額計上。")
    assert len(table.rows) == 2


def test_a_table_continued_on_the_next_page_keeps_its_header():
    cells, chars = _grid()
    first = grid_table(cells, chars)
    body = [c for c in cells if c[1] >= 20]
    cont = grid_table(body, [c for c in chars if c["top"] >= 20], previous=first)
    assert cont is not None and cont.header == first.header and cont.rows[0][1] == "財政課"
    assert grid_table(body, [c for c in chars if c["top"] >= 20]) is None  # no header to take


def test_prose_in_one_column_and_a_lone_row_are_not_tables():
    assert not is_real_table(PdfTable(("本文",), (("一行目",), ("二行目",))))
    assert not is_real_table(PdfTable(("番号", "事業名"), (("1", "事業"),)))
    assert not looks_tabular("市政運営について申し上げます。\n令和４年度の予算は２月１２日に公表しました。")
    assert looks_tabular("市税 16,485,497 23.6\n地方譲与税 678,094 1.0\n利子割交付金 23,000 0.0")


def test_row_item_has_department_title_fields_and_unit():
    header = ("番号", "主管課", "事業名", "事業費（千円）", "主な事業内容")
    it = table_row_item(header, ("1", "財政課", "ふるさと寄附金事業費", "70,466", "記念品費を増額計上。"), 6,
                        table_section(("令和7年度 12月補正予算に計上した主な事業", "（単位：千円）")), ["（単位：千円）"])
    assert (it.department, it.title, it.page_start, it.page_end) == ("財政課", "ふるさと寄附金事業費", 6, 6)
    assert it.section_path == ("令和7年度 12月補正予算に計上した主な事業",)
    assert it.text.splitlines()[0] == "番号：1" and "主な事業内容：記念品費を増額計上。" in it.text
    assert it.text.endswith("（単位：千円）")
    named = table_row_item(("№", "事業名", "概要"), ("3", "指定ごみ袋等作製管理事業 【資源対策課】", "委託料を増額する。"), 5, (), [])
    assert (named.department, named.title) == ("資源対策課", "指定ごみ袋等作製管理事業")


def test_page_text_outside_the_table_stays_and_nothing_is_lost():
    cells, chars = _grid()
    table = grid_table(cells, chars, caption=("主な事業",))
    text = "主な事業\n番号 主管課 事業名 主な事業内容\n1 財政課 寄附金事業費 ふるさと寄附金の増額が見込ま\nれるため増額計上。\n2 企画課 交通関係事業費 支援補助金を計上。\n備考：金額は当初予算額です。"
    raw = RawDocument("t.pdf", [Page(1, text, tables=(table,))])
    res = chunk_document_detailed(raw, DocumentMeta("t.pdf", "生成市", title="主な事業"))
    rows = [c for c in res.chunks if c.department]
    assert [c.item for c in rows] == ["寄附金事業費", "交通関係事業費"] and res.shape == "pdf_table+prose"
    assert any("備考：金額は当初予算額です。" in c.text for c in res.chunks if not c.department)
    assert uncovered(text, res.chunks, res.removed) == []
    kept, removed = text_outside_tables(text, [], list(table.header))
    assert "番号 主管課 事業名 主な事業内容" in removed and "備考" in kept


# --------------------------------------------------------------------------- the real municipal PDFs


def _read(folder: Path, name: str) -> tuple[RawDocument, list[Chunk], str]:
    raw = PdfReader().read(folder / name, name)
    res = chunk_document_detailed(raw, DocumentMeta(name, "南国市", "高知県", name))
    lost = uncovered("\n".join(p.text for p in raw.pages), res.chunks, res.removed)
    assert lost == [], f"チャンクにない行 / lines in no chunk: {lost[:5]}"
    assert all(c.page_end - c.page_start < 2 for c in res.chunks)
    return raw, res.chunks, res.shape


def _row(chunks: list[Chunk], title: str) -> Chunk:
    hits = [c for c in chunks if compact(title) in compact(c.item)]
    assert len(hits) == 1, f"{title!r}: {len(hits)} 個のチャンク / chunks"
    return hits[0]


def test_omona_shinki_jigyou_gives_one_chunk_per_programme_row(shared_pdfs):
    _, chunks, shape = _read(shared_pdfs, "nankoku_r4_omona_shinki_jigyou.pdf")
    rows = [c for c in chunks if c.fields.get("番号")]
    assert shape == "pdf_table" and [c.fields["番号"] for c in rows] == [str(n) for n in range(1, 20)]
    assert all(c.section_path == ("Ｒ４年度当初予算に計上した主な新規事業",) for c in rows)  # p.2 too
    vaccine = _row(chunks, "保健衛生予防費（子宮頸がんワクチン自己負担助成金）")
    assert (vaccine.department, vaccine.page_start) == ("保健福祉センター", 1)
    assert compact(vaccine.fields["主な事業内容"]) == compact(
        "子宮頸がんワクチンについては、厚生労働省より平成２５年６月１４日付通知により積極的な勧奨を一時的に"
        "差し控えてることとしましたが、令和３年１１月２６日通知で積極的勧奨の差し控えを終了することとしました。"
        "この間に自己負担で接種された方に対し、接種費用の助成を行う。15000円×３回、２０名分を計上。"
    )
    assert vaccine.fields["事業費（千円）"] == "900" and vaccine.fields["財源内訳（千円）・一般財源"] == "900"
    parking = _row(chunks, "公立保育所費（あけぼの保育所駐車場整備工事費）")
    assert parking.department == "子育て支援課"
    assert compact(parking.fields["主な事業内容"]) == compact(
        "県道から直接進入できるよう、あけぼの保育所に進入路及び駐車場を整備。約1,000㎡、整備工事費46,624千円。"
    )
    tourism = _row(chunks, "観光費（四万十町との周遊企画委託料）")  # p.2: the header of p.1 goes on
    assert (tourism.department, tourism.page_start, tourism.fields["財源内訳（千円）・県"]) == ("商工観光課", 2, "2,000")


def test_hosei_benkyoukai_p6_gives_one_chunk_per_programme(shared_pdfs):
    _, chunks, _ = _read(shared_pdfs, "nankoku_r7_12gatsu_hosei_benkyoukai.pdf")
    p6 = [c for c in chunks if c.page_start == 6 and c.fields.get("番号")]
    assert len(p6) == 11  # 10 programmes of the 12月補正 and 1 of the 11月専決
    furusato = _row(p6, "ふるさと寄附金事業費")
    assert furusato.department == "財政課" and "ふるさと寄附業務委託料9,900千円" in furusato.text
    assert furusato.fields["財源内訳・その他"] == "200,000"
    assert furusato.section_path == ("令和７年度 12月補正予算に計上した主な事業",)
    assert _row(p6, "生活保護扶助費").department == "福祉事務所"
    assert _row(p6, "人事管理費").section_path == ("令和７年度 11月専決予算に計上した事業",)


def test_nobeoka_programme_tables_give_one_chunk_per_programme(shared_pdfs):
    _, chunks, _ = _read(shared_pdfs, "nobeoka_r8_6gatsu_hosei_gaiyou.pdf")
    programmes = [c for c in chunks if 5 <= c.page_start <= 9 and c.fields.get("№", "").isdigit()]
    assert len(programmes) == 5 + 1 + 16 + 1 + 2  # 物価高騰対策 5, 企業会計 1, その他 16, 企業会計 1, 債務負担 2
    gomi = _row(programmes, "指定ごみ袋等作製管理事業")
    assert (gomi.department, gomi.page_start) == ("資源対策課", 5)
    assert gomi.fields["款・項・目"] == "2)清掃費 (1)清掃総務費" and gomi.fields["補正額"] == "14,740"
    appearance = _row(programmes, "アピアランスケア支援事業")
    assert appearance.department == "健康長寿課" and appearance.section_path[1] == "〇その他事務事業"
    assert "②乳房補整具等購入費の１／２ 上限10千円" in appearance.text
    assert _row(programmes, "児童生徒むし歯予防事業").department == "学校教育課"


def test_the_speech_gives_no_table_rows(shared_pdfs):
    raw, chunks, shape = _read(shared_pdfs, "nankoku_r4_shisei_houshin.pdf")
    assert not any(p.tables for p in raw.pages) and shape == "prose"
