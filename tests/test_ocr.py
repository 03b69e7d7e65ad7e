"""OCR of PDF pages without a text layer (corpus/readers/ocr.py and its hook in the PDF reader).

Tests that run Tesseract skip when it (or its Japanese data) is not installed; tests on the real
municipal PDFs skip when ../shared/pdfs is absent and are marked slow. The words asserted were read
by eye on the pages rendered with pypdfium2, and are words Tesseract reads right.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from corpus.limits import DocumentLimits
from corpus.readers import ocr
from corpus.readers.pdf import NO_TEXT_SCANNED, PdfReader
from corpus.records import Chunk, DocumentMeta, IngestMessage, Page

FONTS = [
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"),
    Path("/usr/share/fonts/opentype/ipafont-mincho/ipam.ttf"),
]
SCAN_LINES = ["学校給食センターの整備", "公共施設の再編について", "令和4年度の取組状況"]


def _tesseract_or_skip() -> ocr.TesseractInfo:
    info = ocr.tesseract_info()
    if info is None or ocr.missing_languages(info):
        pytest.skip("tesseract with jpn is not installed (apt-get install tesseract-ocr tesseract-ocr-jpn)")
    return info


@pytest.fixture(autouse=True)
def ocr_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test OCRs into its own cache dir and with the default command."""
    d = tmp_path / "ocr-cache"
    monkeypatch.setattr(ocr, "CACHE_DIR", d)
    monkeypatch.setattr(ocr, "TESSERACT_CMD", None)
    monkeypatch.delenv(ocr.TESSERACT_ENV, raising=False)
    return d


def scanned_pdf(path: Path, lines: list[str] = SCAN_LINES) -> Path:
    """A one-page PDF holding only an image of Japanese text (what a scanner makes)."""
    from PIL import Image, ImageDraw, ImageFont

    font_file = next((f for f in FONTS if f.is_file()), None)
    if font_file is None:
        pytest.skip("no Japanese font installed (fonts-noto-cjk or fonts-ipafont)")
    im = Image.new("L", (1240, 600), 255)  # 105 x 51 mm at 300 dpi
    draw = ImageDraw.Draw(im)
    font = ImageFont.truetype(str(font_file), 56)
    for i, line in enumerate(lines):
        draw.text((80, 80 + i * 140), line, font=font, fill=0)
    im.save(path, "PDF", resolution=300.0)
    return path


def read(path: Path, limits: DocumentLimits | None = None):
    """The PDF reader's RawDocument of ``path``."""
    return PdfReader().read(path, path.name, limits=limits or DocumentLimits())


def ocr_notes(messages: list[IngestMessage]) -> list[int | None]:
    """The pages the reader says it read with OCR."""
    return [m.page for m in messages if m.severity == "info" and m.message == ocr.OCR_READ]


# --------------------------------------------------------------------------- pure functions


def test_clean_ocr_text_joins_japanese_and_keeps_column_gaps() -> None:
    text = "定 時 株 主 総 会\n第 27 期 (令和 3 年度)\n\n\n\n当期首残高      10,000,000     850,000 \f"
    assert ocr.clean_ocr_text(text) == "定時株主総会\n第27期 (令和3年度)\n\n当期首残高  10,000,000  850,000"


def test_cache_key_changes_with_every_input() -> None:
    base = dict(dpi=300, version="tesseract 5.3.0", languages="jpn", psm=3)
    k = ocr.cache_key(b"image", **base)
    assert k == ocr.cache_key(b"image", **base)
    for change in ({"dpi": 400}, {"version": "tesseract 5.4.0"}, {"languages": "jpn+jpn_vert"}, {"psm": 6}):
        assert ocr.cache_key(b"image", **{**base, **change}) != k
    assert ocr.cache_key(b"image2", **base) != k


def test_mark_ocr_chunks_by_page_range() -> None:
    def chunk(i: int, a: int, b: int) -> Chunk:
        return Chunk(f"c{i}", "d.pdf", "町", "", "題", (), "", "", a, b, "t", "t")

    chunks = [chunk(1, 1, 1), chunk(2, 2, 3), chunk(3, 4, 4)]
    ocr.mark_ocr_chunks(chunks, [Page(1, "a"), Page(3, "b", ocr=True), Page(4, "c")])
    assert [c.ocr for c in chunks] == [False, True, False]


def test_citation_says_ocr() -> None:
    from search.records import Result

    c = Chunk("c1", "d.pdf", "南国市", "高知県", "議案書", ("事業報告",), "", "", 3, 3, "本文", "本文")
    assert "OCR" not in Result(1, 1.0, c).citation()
    c.ocr = True
    r = Result(1, 1.0, c)
    assert r.citation() == "南国市『議案書』事業報告 p.3（OCR）"
    assert r.to_json()["ocr"] is True


def test_document_record_counts_ocr_pages_and_ui_shows_them() -> None:
    import ui
    from index.store import DocumentRecord
    from search import views_html as V

    msgs = [
        IngestMessage("info", "d.pdf", ocr.OCR_READ, page=1),
        IngestMessage("info", "d.pdf", ocr.OCR_READ, page=2),
        IngestMessage("warning", "d.pdf", NO_TEXT_SCANNED, page=3),
    ]
    rec = DocumentRecord("d.pdf", "南国市", messages=msgs, n_chunks=4)
    assert rec.ocr_pages == 2
    assert DocumentRecord("old.pdf", "南国市").ocr_pages == 0

    class Engine:
        def documents(self) -> list[dict]:
            return [{"doc_id": "d.pdf", "municipality": "南国市", "title": "議案書", "n_chunks": 4,
                     "ocr_pages": rec.ocr_pages, "messages": [str(m) for m in msgs]}]

    rows = ui.documents_of(Engine())
    assert rows[0]["ocr_pages"] == 2
    assert len(rows[0]["warnings"]) == 1 and "OCR が必要" in rows[0]["warnings"][0]  # notes not listed
    html = V.render_documents(rows)
    assert "<th>OCR ページ</th>" in html and '<td class="sk-num">2</td>' in html


def test_chunk_ocr_flag_round_trips_through_the_store_and_old_indexes_load(tmp_path: Path) -> None:
    from index.store import DocumentRecord, IndexRows, _read_sqlite, write_store

    chunks = [
        Chunk("a", "d.pdf", "町", "", "題", ("節",), "", "", 1, 1, "本文です", "本文です", ocr=True),
        Chunk("b", "d.pdf", "町", "", "題", ("節",), "", "", 2, 2, "別の本文", "別の本文"),
    ]
    msgs = [IngestMessage("info", "d.pdf", ocr.OCR_READ, page=1)]
    rows = IndexRows(chunks, tokens=[["本文"], ["別"]], embed_keys=["k1", "k2"],
                     documents=[DocumentRecord("d.pdf", "町", n_chunks=2, messages=msgs)], lemmas=[["本文"], ["別"]])
    write_store(tmp_path / "ix", rows, vectors=np.eye(2, 4, dtype=np.float32), info={"dim": 4}, faiss_index_kind="flat")
    db = tmp_path / "ix" / "index.sqlite"
    con = sqlite3.connect(db)
    got, docs = _read_sqlite(con, db)
    assert [c.ocr for c in got] == [True, False] and docs["d.pdf"].ocr_pages == 1
    con.execute("ALTER TABLE chunks DROP COLUMN ocr")  # an index written before OCR
    got, _ = _read_sqlite(con, db)
    assert [c.ocr for c in got] == [False, False]
    con.close()


# --------------------------------------------------------------------------- without Tesseract


def test_without_tesseract_the_needs_ocr_warning_stays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pdf = scanned_pdf(tmp_path / "scan.pdf")
    monkeypatch.setenv(ocr.TESSERACT_ENV, str(tmp_path / "no-such-tesseract"))
    assert ocr.tesseract_info() is None
    raw = read(pdf)
    assert raw.pages == []
    assert [(m.severity, m.page, m.message) for m in raw.messages if m.page] == [("warning", 1, NO_TEXT_SCANNED)]
    assert not ocr_notes(raw.messages) and not any(m.severity == "error" for m in raw.messages)


def test_without_japanese_data_ocr_is_skipped_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pdf = scanned_pdf(tmp_path / "scan.pdf")
    monkeypatch.setattr(ocr, "tesseract_info", lambda: ocr.TesseractInfo("tesseract", "tesseract 5", ("eng", "osd")))
    raw = read(pdf)
    assert raw.pages == []
    assert any("jpn" in m.message and m.severity == "warning" for m in raw.messages)
    assert any(m.message == NO_TEXT_SCANNED and m.page == 1 for m in raw.messages)


# --------------------------------------------------------------------------- with Tesseract


def test_scanned_page_is_read_marked_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ocr_cache: Path) -> None:
    _tesseract_or_skip()
    pdf = scanned_pdf(tmp_path / "scan.pdf")
    calls: list[int] = []
    real = ocr.run_tesseract

    def counting(*a, **kw) -> str:
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(ocr, "run_tesseract", counting)
    first = read(pdf)
    assert len(calls) == 1
    assert [p.number for p in first.pages] == [1] and first.pages[0].ocr
    for line in SCAN_LINES:
        assert line in first.pages[0].text
    assert ocr_notes(first.messages) == [1]
    assert not any(m.message == NO_TEXT_SCANNED for m in first.messages)
    assert list(ocr_cache.rglob("*.txt"))

    second = read(pdf)  # a rebuild: the page comes from the cache, tesseract is not run again
    assert len(calls) == 1
    assert [(p.number, p.text, p.ocr) for p in second.pages] == [(p.number, p.text, p.ocr) for p in first.pages]


def test_scanned_document_gives_chunks_cited_as_ocr(tmp_path: Path) -> None:
    _tesseract_or_skip()
    from corpus.document import load_document
    from search.records import Result

    scanned_pdf(tmp_path / "scan.pdf")
    loaded = load_document(tmp_path, DocumentMeta("scan.pdf", "南国市", title="議案書"), limits=DocumentLimits())
    chunks, messages = loaded.chunks, loaded.messages
    assert chunks and all(c.ocr for c in chunks), messages
    assert any("学校給食センター" in c.text for c in chunks)
    assert Result(1, 1.0, chunks[0]).citation().endswith("p.1（OCR）")


def test_build_worker_ocrs_into_the_parents_cache_dir(tmp_path: Path, ocr_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Documents are read in a child process (corpus.worker): it uses the parent's OCR settings."""
    _tesseract_or_skip()
    from corpus.worker import DocumentWorker

    scanned_pdf(tmp_path / "scan.pdf")
    meta = DocumentMeta("scan.pdf", "南国市", title="議案書")
    with DocumentWorker(limits=DocumentLimits()) as worker:
        loaded = worker.load(tmp_path, meta)
        assert loaded.chunks and all(c.ocr for c in loaded.chunks), loaded.messages
        assert len(list(ocr_cache.rglob("*.txt"))) == 1
        # the parent now points at a missing tesseract and another cache: the child follows
        monkeypatch.setattr(ocr, "TESSERACT_CMD", str(tmp_path / "no-tesseract"))
        monkeypatch.setattr(ocr, "CACHE_DIR", tmp_path / "other-cache")
        again = worker.load(tmp_path, meta)
    assert again.chunks == [] and any(m.message == NO_TEXT_SCANNED for m in again.messages)
    assert not (tmp_path / "other-cache").exists()


def test_ocr_stops_at_the_time_limit_and_nothing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tesseract_or_skip()
    pdf = scanned_pdf(tmp_path / "scan.pdf")
    calls: list[int] = []
    monkeypatch.setattr(ocr, "run_tesseract", lambda *a, **kw: calls.append(1) or "")
    raw = read(pdf, DocumentLimits(max_doc_seconds=1e-9))
    assert calls == [] and raw.pages == []
    assert any(m.message == NO_TEXT_SCANNED and m.page == 1 for m in raw.messages)
    assert any("max_doc_seconds" in m.message and "OCR" in m.message for m in raw.messages)
    assert not any(m.severity == "error" for m in raw.messages)


def test_a_failing_tesseract_leaves_the_page_unread_not_the_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tesseract_or_skip()
    pdf = scanned_pdf(tmp_path / "scan.pdf")

    def broken(*a, **kw) -> str:
        raise RuntimeError("tesseract crashed")

    monkeypatch.setattr(ocr, "run_tesseract", broken)
    raw = read(pdf)
    assert raw.pages == []
    assert any(m.page == 1 and "OCR に失敗しました" in m.message and "tesseract crashed" in m.message for m in raw.messages)
    assert any(m.message == NO_TEXT_SCANNED and m.page == 1 for m in raw.messages)


# --------------------------------------------------------------------------- real municipal PDFs


@pytest.fixture(scope="module")
def michinoeki(shared_pdfs: Path, tmp_path_factory: pytest.TempPathFactory):
    """nankoku_michinoeki_kabunushi_soukai_r4_scanned.pdf read once (23 scanned pages)."""
    _tesseract_or_skip()
    mp = pytest.MonkeyPatch()
    mp.setattr(ocr, "CACHE_DIR", tmp_path_factory.mktemp("ocr-michinoeki"))
    try:
        yield read(shared_pdfs / "nankoku_michinoeki_kabunushi_soukai_r4_scanned.pdf")
    finally:
        mp.undo()


@pytest.mark.slow
def test_michinoeki_scan_gives_japanese_text_on_every_page(michinoeki) -> None:
    raw = michinoeki
    assert [p.number for p in raw.pages] == list(range(1, 24)) and all(p.ocr for p in raw.pages)
    assert ocr_notes(raw.messages) == list(range(1, 24))
    assert not any(m.severity in ("warning", "error") for m in raw.messages), raw.messages
    text = {p.number: p.text for p in raw.pages}
    assert "株式会社道の駅南国" in text[1] and "定時株主総会" in text[1]
    assert "事業報告書" in text[3] and "まん延防止等重点措置" in text[3]
    assert "監査報告書" in text[13]


@pytest.mark.slow
def test_michinoeki_rotated_pages_come_out_readable(michinoeki) -> None:
    """pp.12 and 23 are landscape pages stored with /Rotate 90."""
    text = {p.number: p.text for p in michinoeki.pages}
    assert "株主資本等変動計算書" in text[12] and "利益準備金" in text[12]
    assert "年度別経常利益" in text[23]


@pytest.mark.slow
def test_rakuhyousetsu_scan_gives_japanese_text(shared_pdfs: Path) -> None:
    _tesseract_or_skip()
    raw = read(shared_pdfs / "otoineppu_r4_rakuhyousetsu_scanned.pdf")
    assert len(raw.pages) == 1 and raw.pages[0].ocr
    text = raw.pages[0].text
    for word in ("丈夫な雪止めの設置", "除雪は必ず複数人で行い", "旭川開発建設部公物管理課", "音威子府村"):
        assert word in text


@pytest.mark.slow
def test_outlined_text_without_images_is_ocrd(shared_pdfs: Path) -> None:
    """Text converted to vector outlines: no text layer and no image on pp.1 and 3, yet OCR'd."""
    _tesseract_or_skip()
    raw = read(shared_pdfs / "otoineppu_r3_hinan_point_outlined.pdf")
    assert [p.number for p in raw.pages if p.ocr] == [1, 2, 3, 4]
    text = {p.number: p.text for p in raw.pages}
    assert "避難行動判定フロー" in text[1] and "ハザードマップ" in text[1]
    assert "避難情報のポイント" in text[3]
