"""The bundled sample corpus' real PDFs (南国市) and the per-page shape summary of ``seisaku chunks``."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from corpus.chunker import chunk_document_detailed
from corpus.manifest import read_manifest
from corpus.readers import read_document
from corpus.records import DocumentMeta, Page
from corpus.shapes import PageShape, describe_page_shapes, page_shapes

REPO = Path(__file__).resolve().parent.parent
OMONA = "nankoku_r4_omona_shinki_jigyou.pdf"
SPEECH = "nankoku_r4_shisei_houshin.pdf"
HENCHI = "nankoku_henchi_seibi_keikaku_henkou_r8.pdf"


def _bundled(corpus: Path, name: str):
    meta = next(m for m in read_manifest(corpus).entries if m.path == name)
    return chunk_document_detailed(read_document(corpus / name, name), meta)


# --------------------------------------------------------------------------- page shapes (pure)


def test_page_shapes_runs_of_tables_ocr_and_text():
    pages = [Page(1, "表紙"), Page(2, "本文"), Page(3, "", ocr=True), Page(4, "読めた文字", ocr=True), Page(5, "本文")]
    read = [Page(1, "表紙", tables=("t",))]  # type: ignore[arg-type]  # the flags of the pages as read
    runs = page_shapes(pages, "pdf_table+prose", read)
    assert runs == [PageShape(1, 1, "table"), PageShape(2, 2, "prose"), PageShape(4, 4, "ocr"), PageShape(5, 5, "prose")]
    assert describe_page_shapes(runs) == "p.1 表（table）, p.2 本文（prose）, p.4 OCR（ocr）, p.5 本文（prose）"


def test_page_shapes_of_a_whole_text_document_is_one_run():
    runs = page_shapes([Page(n, "本文") for n in range(1, 18)], "prose")
    assert runs == [PageShape(1, 17, "prose")] and describe_page_shapes(runs) == "pp.1–17 本文（prose）"


# --------------------------------------------------------------------------- chunker: shared PDF and seeds


def test_page_shapes_of_a_mixed_pdf(shared_pdfs: Path):
    """The 12月補正 study material: p.1 a table, p.2 a 基金 grid without ruling read as text, pp.3–6 tables."""
    name = "nankoku_r7_12gatsu_hosei_benkyoukai.pdf"
    res = chunk_document_detailed(read_document(shared_pdfs / name, name), DocumentMeta(name, "南国市", "高知県"))
    assert res.shape == "pdf_table+prose"
    assert res.page_shapes == [PageShape(1, 1, "table"), PageShape(2, 2, "prose"), PageShape(3, 6, "table")]


def test_page_shapes_of_bundled_seeds_and_pdfs(bundled_corpus: Path):
    """A seed text with printed page numbers is 19 pages of prose; the 進捗表 seed one page; the
    議案 PDF has its text page before two table pages."""
    assert _bundled(bundled_corpus, "002_5d4461abb80c93bd.txt").page_shapes == [PageShape(1, 19, "prose")]
    assert _bundled(bundled_corpus, "004_f79ffdf675a5d26a.txt").page_shapes == [PageShape(1, 1, "progress_table")]
    assert _bundled(bundled_corpus, HENCHI).page_shapes == [PageShape(1, 1, "prose"), PageShape(2, 3, "table")]
    assert _bundled(bundled_corpus, OMONA).page_shapes == [PageShape(1, 2, "table")]


# --------------------------------------------------------------------------- bundled PDFs: chunks cite pages


def test_bundled_programme_table_gives_one_chunk_per_row_with_page_and_department(bundled_corpus: Path):
    chunks = _bundled(bundled_corpus, OMONA).chunks
    assert len(chunks) == 19  # 19 numbered programmes on two pages
    helmet = [c for c in chunks if "ヘルメット購入補助金" in c.item]
    assert len(helmet) == 1
    c = helmet[0]
    assert (c.page_start, c.page_end, c.department) == (1, 1, "危機管理課")
    assert "事業費（千円）：100" in c.text and c.municipality == "南国市"
    assert {c.page_start for c in chunks} == {1, 2}


@pytest.mark.slow
def test_search_cites_pdf_pages_of_the_bundled_corpus(built_index):
    """A new user's first searches find the PDF rows and speech sections with their pages."""
    from search.engine import Engine

    engine = Engine.from_settings(built_index)
    res = engine.search("市民の自転車用ヘルメット購入の補助", k=5)
    top = [r for r in res if r.chunk.doc_id == OMONA]
    assert top and top[0].rank <= 2, [r.citation() for r in res]
    assert top[0].chunk.department == "危機管理課" and top[0].chunk.page_start == 1
    assert top[0].citation().endswith("（危機管理課） p.1")

    res = engine.search("国営ほ場整備事業の換地計画への地権者の同意", k=5)
    speech = [r for r in res if r.chunk.doc_id == SPEECH]
    assert speech and speech[0].rank <= 2, [r.citation() for r in res]
    assert speech[0].chunk.section == "農林水産" and (speech[0].chunk.page_start, speech[0].chunk.page_end) == (10, 11)


# --------------------------------------------------------------------------- seisaku chunks


def _chunks_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search.cli", "chunks", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def test_seisaku_chunks_prints_the_page_shapes_of_a_pdf(bundled_corpus: Path):
    p = _chunks_cli("--corpus", str(bundled_corpus), "--doc", HENCHI)
    assert p.returncode == 0, p.stderr
    head = p.stdout.splitlines()[0]
    assert head == f"■ {HENCHI}  21 チャンク  形: p.1 本文（prose）, pp.2–3 表（table）"

    p = _chunks_cli("--corpus", str(bundled_corpus), "--doc", HENCHI, "--json")
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    assert lines[0] == {
        "doc_id": HENCHI, "shape": "pdf_table+prose",
        "page_shapes": [{"first": 1, "last": 1, "shape": "prose"}, {"first": 2, "last": 3, "shape": "table"}],
    }
    assert all("chunk_id" in x for x in lines[1:]) and len(lines) == 1 + 21
