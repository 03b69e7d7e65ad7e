"""Readers on real files made here (reportlab, openpyxl, python-docx) and on ../shared/pdfs."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from corpus.readers import READERS, SUPPORTED_EXTENSIONS, read_document
from corpus.readers.pdf import better_text, garbage_ratio
from corpus.readers.encoding import decode_bytes

JA = "行財政改革大綱　第１章　基本方針\n事務事業の見直しを進め、持続可能な行財政運営を目指します。"


def errors(doc):
    return [m for m in doc.messages if m.severity == "error"]


def warnings(doc):
    return [m for m in doc.messages if m.severity == "warning"]


# ---------------------------------------------------------------- registry and guards


def test_registry_covers_formats():
    for ext in (".txt", ".md", ".pdf", ".xlsx", ".docx", ".html", ".htm"):
        assert ext in SUPPORTED_EXTENSIONS
        assert READERS[ext].extensions


def test_empty_file(tmp_path: Path):
    for ext in (".txt", ".pdf", ".xlsx", ".docx", ".html"):
        p = tmp_path / f"empty{ext}"
        p.write_bytes(b"")
        doc = read_document(p, p.name)
        assert doc.pages == []
        assert "empty file" in errors(doc)[0].message


def test_too_large_not_read(tmp_path: Path):
    p = tmp_path / "big.txt"
    p.write_text("あ" * 1000, encoding="utf-8")
    from corpus.limits import DocumentLimits

    doc = read_document(p, "big.txt", limits=DocumentLimits(max_file_bytes=100))
    assert doc.pages == [] and "too large" in errors(doc)[0].message


def test_missing_and_unsupported(tmp_path: Path):
    doc = read_document(tmp_path / "nope.txt", "nope.txt")
    assert "file not found" in errors(doc)[0].message
    p = tmp_path / "old.xls"
    p.write_bytes(b"\xd0\xcf\x11\xe0junk")
    doc = read_document(p, "old.xls")
    assert "unsupported" in errors(doc)[0].message and ".xlsx" in errors(doc)[0].message


# ---------------------------------------------------------------- text


@pytest.mark.parametrize("enc", ["utf-8", "utf-8-sig", "cp932", "euc_jp", "utf-16", "utf-16-le", "utf-16-be", "iso2022_jp"])
def test_text_encodings(tmp_path: Path, enc: str):
    p = tmp_path / "a.txt"
    p.write_bytes(JA.encode(enc))
    doc = read_document(p, "a.txt")
    assert not doc.messages
    assert doc.pages[0].text == JA


@pytest.mark.parametrize("enc", ["cp932", "euc_jp", "utf-16-le"])
def test_short_text_encodings(tmp_path: Path, enc: str):
    # charset-normalizer alone takes short EUC-JP for Big5; the scoring must not
    p = tmp_path / "short.txt"
    p.write_bytes("あいうえお".encode(enc))
    assert read_document(p, "short.txt").pages[0].text == "あいうえお"


def test_cp932_specific_characters(tmp_path: Path):
    text = "①事務事業の見直し　㈱委託　髙橋課長"
    p = tmp_path / "a.txt"
    p.write_bytes(text.encode("cp932"))
    assert read_document(p, "a.txt").pages[0].text == text


def test_form_feed_pages_and_crlf(tmp_path: Path):
    p = tmp_path / "a.md"
    p.write_bytes("一頁目\r\n本文\f二頁目\f\f四頁目".encode("utf-8"))
    doc = read_document(p, "a.md")
    assert [(pg.number, pg.text) for pg in doc.pages] == [(1, "一頁目\n本文"), (2, "二頁目"), (4, "四頁目")]


def test_nul_bytes_removed_with_warning(tmp_path: Path):
    p = tmp_path / "a.txt"
    p.write_bytes(JA.encode("utf-8").replace("第".encode(), b"\x00\x00" + "第".encode()))
    doc = read_document(p, "a.txt")
    assert doc.pages[0].text == JA
    assert any("NUL" in m.message for m in warnings(doc))


def test_binary_named_txt(tmp_path: Path):
    import random

    rnd = random.Random(1)
    p = tmp_path / "bin.txt"
    p.write_bytes(bytes(rnd.randrange(256) for _ in range(5000)))
    doc = read_document(p, "bin.txt")
    assert doc.pages == [] and "binary file, not text" in errors(doc)[0].message
    # a PNG-like header with zero padding
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" * 200)
    assert "binary" in errors(read_document(p, "bin.txt"))[0].message


from hypothesis import given, settings, strategies as st

_JA_CHARS = st.sampled_from(list("あいうえおかきくけこアイウエオ行財政改革大綱事務事業評価担当課、。「」（）１２３ABCabc 0123\n"))


@settings(max_examples=60, deadline=None)
@given(text=st.text(_JA_CHARS, min_size=12, max_size=200), enc=st.sampled_from(["utf-8", "cp932", "euc_jp", "utf-16"]))
def test_decode_roundtrip(text: str, enc: str):
    # Japanese text of a dozen characters or more decodes back from every supported encoding
    if sum(1 for c in text if ord(c) > 0x7F) < 6:
        return  # (nearly) ASCII: any ASCII-compatible reading is right
    assert decode_bytes(text.encode(enc)).text.lstrip("\ufeff") == text


def test_cp932_punctuation_is_not_read_as_bomless_utf16():
    # CP932 bytes of ASCII and 「、」 also decode as UTF-16-BE (into 〰ぁ腁…); found by hypothesis
    for text in ("000A、、、、、、、、", "00000A、、、、、、"):
        assert decode_bytes(text.encode("cp932")).text == text


def test_decode_bytes_hint():
    assert decode_bytes("事務事業".encode("cp932"), declared="Shift_JIS").encoding == "cp932"


# ---------------------------------------------------------------- PDF (made with reportlab)


def _pdf(pages: list[str | None], encrypt: str | None = None, table: bool = False) -> bytes:
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas
    from PIL import Image

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, encrypt=encrypt)
    for text in pages:
        if text is None:  # an image-only "scanned" page
            img = Image.new("RGB", (80, 60), (230, 230, 230))
            c.drawImage(ImageReader(img), 72, 500, 300, 220)
            c.rect(60, 480, 330, 260)
        else:
            c.setFont("HeiseiKakuGo-W5", 11)
            y = 780
            for line in text.splitlines():
                c.drawString(60, y, line)
                y -= 16
            if table:
                from reportlab.platypus import Table

                t = Table([["事務事業名", "担当課", "評価"], ["道路維持管理", "建設課", "継続"]])
                t.setStyle([("FONT", (0, 0), (-1, -1), "HeiseiKakuGo-W5", 10), ("GRID", (0, 0), (-1, -1), 0.5, "black")])
                t.wrapOn(c, 400, 200)
                t.drawOn(c, 60, y - 60)
        c.showPage()
    c.save()
    return buf.getvalue()


def test_pdf_japanese_pages_and_scanned_page(tmp_path: Path):
    p = tmp_path / "taikou.pdf"
    p.write_bytes(_pdf(["第１章　行財政改革の基本方針\n給与の適正化", None, "第３章　推進体制"], table=True))
    doc = read_document(p, "taikou.pdf")
    assert not errors(doc)
    assert [pg.number for pg in doc.pages] == [1, 3]
    assert "行財政改革の基本方針" in doc.pages[0].text and "給与の適正化" in doc.pages[0].text
    assert "事務事業名" in doc.pages[0].text and "建設課" in doc.pages[0].text
    assert "\r" not in doc.pages[0].text
    (w,) = warnings(doc)
    assert w.page == 2 and "OCR" in w.message and "スキャン" in w.message


def test_pdf_encrypted(tmp_path: Path):
    p = tmp_path / "locked.pdf"
    p.write_bytes(_pdf(["秘密の文書"], encrypt="pw"))
    doc = read_document(p, "locked.pdf")
    assert doc.pages == [] and "encrypted PDF" in errors(doc)[0].message


def test_pdf_truncated(tmp_path: Path):
    data = _pdf(["第１章　総論", "第２章　各論"])
    p = tmp_path / "cut.pdf"
    p.write_bytes(data[: len(data) // 2])
    doc = read_document(p, "cut.pdf")
    assert doc.pages == [] and "truncated" in errors(doc)[0].message


def test_pdf_corrupt_body(tmp_path: Path):
    p = tmp_path / "bad.pdf"
    p.write_bytes(b"%PDF-1.4\n" + b"garbage " * 200 + b"\n%%EOF\n")
    doc = read_document(p, "bad.pdf")
    assert doc.pages == [] and "corrupt PDF" in errors(doc)[0].message


def test_not_a_pdf(tmp_path: Path):
    p = tmp_path / "fake.pdf"
    p.write_text("<html>これは PDF ではない</html>", encoding="utf-8")
    doc = read_document(p, "fake.pdf")
    assert doc.pages == [] and "not a PDF" in errors(doc)[0].message


def test_pdf_garbled_page_retried_with_pdfplumber(tmp_path: Path):
    # private-use code points drawn with a CID font: pypdfium2 returns them as they are,
    # pdfplumber (pdfminer) maps them differently; the page is reported and the better text kept
    p = tmp_path / "pua.pdf"
    p.write_bytes(_pdf(["第１章　総論", "\ue000\ue001\ue002\ue003\ue004\ue005\ue006 あ"]))
    doc = read_document(p, "pua.pdf")
    assert not errors(doc) and [pg.number for pg in doc.pages] == [1, 2]
    (w,) = warnings(doc)
    assert w.page == 2 and "garbled" in w.message and "文字化け" in w.message
    assert "あ" in doc.pages[1].text
    assert garbage_ratio(doc.pages[1].text) < 0.3


def test_garbage_ratio_and_choice():
    assert garbage_ratio("行財政改革") == 0.0
    assert garbage_ratio("(cid:123)(cid:45)(cid:6)あ") == pytest.approx(0.75)
    assert garbage_ratio("\ue000\ue001\ufffdあ") == pytest.approx(0.75)
    assert better_text("\ue000\ue001\ue002", "事務事業") == "事務事業"
    assert better_text("事務事業", "(cid:1)(cid:2)") == "事務事業"
    assert better_text("\ue000", "") == "\ue000"


# ---------------------------------------------------------------- xlsx


def _workbook(path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "評価シート"
    ws.append(["令和5年度 事務事業評価一覧"])  # a title row: one text cell, not the header
    ws.append([])
    ws.append(["事務事業名", "担当課", "事業費\n（千円）", "評価", "備考"])
    ws.append(["道路維持管理事業", "建設課", 12500, "継続", None])
    ws.append([None, None, None, None, None])
    ws.append(["広報紙発行事業", "秘書広報課", 3400.0, "改善", "電子化を検討\n（令和7年度から）"])
    ws2 = wb.create_sheet("補助金")
    ws2.append(["補助金名", "所管課", "方向性"])
    ws2.append(["商店街活性化補助金", "商工観光課", "縮小"])
    wb.create_sheet("空")
    wb.save(path)


def test_xlsx_one_record_per_row(tmp_path: Path):
    p = tmp_path / "hyouka.xlsx"
    _workbook(p)
    doc = read_document(p, "hyouka.xlsx")
    assert not doc.messages
    assert doc.layout == "records"
    assert [(pg.number, pg.label) for pg in doc.pages] == [
        (4, "評価シート 行4"), (6, "評価シート 行6"), (2, "補助金 行2"),
    ]
    assert doc.pages[0].text.splitlines() == ["事務事業名：道路維持管理事業", "担当課：建設課", "事業費（千円）：12500", "評価：継続"]
    assert "事業費（千円）：3400" in doc.pages[1].text and "備考：電子化を検討 （令和7年度から）" in doc.pages[1].text
    assert doc.pages[2].text == "補助金名：商店街活性化補助金\n所管課：商工観光課\n方向性：縮小"


def test_xlsx_no_header_sheet_warned(tmp_path: Path):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append([1, 2, 3])
    wb.active.append(["ただ一つ"])
    p = tmp_path / "nums.xlsx"
    wb.save(p)
    doc = read_document(p, "nums.xlsx")
    assert doc.pages == []
    assert any("no header row" in m.message for m in doc.messages)
    assert errors(doc)


def test_xlsx_not_a_zip(tmp_path: Path):
    p = tmp_path / "fake.xlsx"
    p.write_text("事務事業名,担当課\n", encoding="utf-8")
    assert "not a zip" in errors(read_document(p, "fake.xlsx"))[0].message


@pytest.mark.parametrize("ext", [".xlsx", ".docx"])
def test_encrypted_office_file(tmp_path: Path, ext: str):
    # password-protected Office files are OLE compound files, not zips
    p = tmp_path / f"locked{ext}"
    p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1000)
    assert "encrypted" in errors(read_document(p, p.name))[0].message


@pytest.mark.parametrize("ext", [".xlsx", ".docx"])
def test_zip_bomb_refused(tmp_path: Path, ext: str):
    p = tmp_path / f"bomb{ext}"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", b"<x/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\x00" * (24 * 1024 * 1024))
    assert p.stat().st_size < 200_000
    doc = read_document(p, p.name)
    assert doc.pages == [] and "zip bomb" in errors(doc)[0].message


# ---------------------------------------------------------------- docx


def test_docx_reading_order_and_tables(tmp_path: Path):
    import docx
    from docx.enum.text import WD_BREAK

    d = docx.Document()
    d.add_heading("第１章　行財政改革の基本方針", level=1)
    d.add_paragraph("持続可能な行財政運営を目指します。")
    t = d.add_table(rows=3, cols=3)
    for r, row in enumerate([["取組項目", "担当課", "目標"], ["窓口の電子化", "市民課", "令和7年度"], ["公共施設の統廃合", "財政課", "10%削減"]]):
        for c, v in enumerate(row):
            t.cell(r, c).text = v
    d.add_paragraph("表の後の段落。")
    kv = d.add_table(rows=2, cols=2)
    kv.cell(0, 0).text, kv.cell(0, 1).text = "事務事業名", "広域行政事務事業"
    kv.cell(1, 0).text, kv.cell(1, 1).text = "担当課", "企画課"
    d.add_paragraph("改ページ前").add_run().add_break(WD_BREAK.PAGE)
    d.add_heading("第２章　推進体制", level=1)
    p = tmp_path / "taikou.docx"
    d.save(p)
    doc = read_document(p, "taikou.docx")
    assert not doc.messages
    assert [pg.number for pg in doc.pages] == [1, 2]
    lines = doc.pages[0].text.splitlines()
    assert lines == [
        "第１章　行財政改革の基本方針",
        "持続可能な行財政運営を目指します。",
        "取組項目 ／ 担当課 ／ 目標",
        "取組項目：窓口の電子化 ／ 担当課：市民課 ／ 目標：令和7年度",
        "取組項目：公共施設の統廃合 ／ 担当課：財政課 ／ 目標：10%削減",
        "表の後の段落。",
        "事務事業名：広域行政事務事業",
        "担当課：企画課",
        "改ページ前",
    ]
    assert doc.pages[1].text == "第２章　推進体制"


def test_docx_corrupt(tmp_path: Path):
    p = tmp_path / "broken.docx"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("hello.txt", "not a word document")
    doc = read_document(p, "broken.docx")
    assert doc.pages == [] and "cannot open document" in errors(doc)[0].message


# ---------------------------------------------------------------- html


def test_html_drops_script_and_keeps_order(tmp_path: Path):
    html = """<!DOCTYPE html><html><head><meta charset="Shift_JIS"><title>行財政改革の取組</title>
    <style>body{color:red}</style><script>var secret = "スクリプト";</script></head>
    <body><nav><a href="/">トップ</a></nav><h1>行財政改革の取組</h1><p>事務事業の<b>見直し</b>を進めます。</p>
    <ul><li>窓口の電子化</li><li>施設の統廃合</li></ul>
    <table><tr><th>項目</th><th>担当課</th></tr><tr><td>電子化</td><td>市民課</td></tr></table>
    <!-- コメント --><script>alert("x")</script><p>以上<br>終わり</p></body></html>"""
    p = tmp_path / "page.html"
    p.write_bytes(html.encode("cp932"))
    doc = read_document(p, "page.html")
    assert not doc.messages
    text = doc.pages[0].text
    assert "secret" not in text and "スクリプト" not in text and "alert" not in text and "color" not in text
    assert "コメント" not in text and "トップ" not in text
    assert text.splitlines() == [
        "行財政改革の取組", "事務事業の 見直し を進めます。".replace(" 見直し ", "見直し"),
        "窓口の電子化", "施設の統廃合", "項目 ／ 担当課", "項目：電子化 ／ 担当課：市民課", "以上", "終わり",
    ]


def test_html_utf8_without_meta(tmp_path: Path):
    p = tmp_path / "a.htm"
    p.write_text("<p>令和６年度の取組状況</p>", encoding="utf-8")
    assert read_document(p, "a.htm").pages[0].text == "令和６年度の取組状況"


# ---------------------------------------------------------------- real PDFs (../shared/pdfs)


def test_shared_scanned_needs_ocr(shared_pdfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SEISAKU_TESSERACT", str(tmp_path / "no-tesseract"))  # OCR: tests/test_ocr.py
    doc = read_document(shared_pdfs / "otoineppu_r4_rakuhyousetsu_scanned.pdf", "scanned.pdf")
    assert doc.pages == [] and not errors(doc)
    assert any(m.page == 1 and "OCR が必要です" in m.message for m in doc.messages)


def test_shared_nankoku_dx_pua(shared_pdfs: Path):
    doc = read_document(shared_pdfs / "nankoku_dx_suishin_houshin_r4.pdf", "nankoku.pdf")
    assert not errors(doc) and len(doc.pages) == 2
    text = "\n".join(pg.text for pg in doc.pages)
    assert "ＤＸ推進" in text
    # the Wingdings bullets are left for corpus.normalize to drop; they are too few to call the
    # page garbled
    pua = [c for c in text if 0xE000 <= ord(c) <= 0xF8FF]
    assert 0 < len(pua) < 0.1 * len(text)
    assert not warnings(doc)


def test_shared_otoineppu_eleven_pages(shared_pdfs: Path):
    doc = read_document(shared_pdfs / "otoineppu_kyuyo_teiin_kanri_r7.pdf", "otoineppu.pdf")
    assert not doc.messages
    assert [pg.number for pg in doc.pages] == list(range(1, 12))
    assert "給与" in doc.pages[0].text
    assert all(pg.text.strip() for pg in doc.pages)


def test_shared_surrogate_kanji(shared_pdfs: Path):
    doc = read_document(shared_pdfs / "fixture_pdfjs_issue5202_surrogate_kanji.pdf", "s.pdf")
    text = doc.pages[0].text
    assert "𠮟" in text and "𩸽" in text and "𠀋" in text


def test_shared_noembed_sjis(shared_pdfs: Path):
    # pypdfium2 maps the non-embedded 90ms-RKSJ-H font without ToUnicode correctly
    doc = read_document(shared_pdfs / "fixture_pdfjs_noembed_sjis.pdf", "n.pdf")
    assert not doc.messages and doc.pages[0].text == "あいうえお"


def test_shared_vertical_blank_pages(shared_pdfs: Path):
    doc = read_document(shared_pdfs / "fixture_pdfjs_vertical.pdf", "v.pdf")
    assert [pg.number for pg in doc.pages] == [1] and "あいうえお" in doc.pages[0].text
    assert sorted(m.page for m in warnings(doc)) == [2, 3]
