"""The corpus loader: one broken file never stops the load; every problem is a message."""
from __future__ import annotations

import importlib
import io
from pathlib import Path

import pytest

from corpus.document import load_document
from corpus.loader import load_corpus
from corpus.records import DocumentMeta, RawDocument


@pytest.fixture
def chunker():
    """The real corpus.chunker (the loader must call corpus.chunker.chunk_document_detailed)."""
    return importlib.import_module("corpus.chunker")


def _pdf(pages: list[str | None]) -> bytes:
    from PIL import Image
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    for text in pages:
        if text is None:
            c.drawImage(ImageReader(Image.new("L", (40, 40), 128)), 72, 500, 200, 200)
        else:
            c.setFont("HeiseiKakuGo-W5", 11)
            for i, line in enumerate(text.splitlines()):
                c.drawString(60, 780 - 16 * i, line)
        c.showPage()
    c.save()
    return buf.getvalue()


GOOD_TEXT = (
    "第１章　行財政改革の基本方針\n"
    "１　事務事業の見直し\n"
    "すべての事務事業について、必要性、有効性、効率性の観点から見直しを行い、廃止・縮小・統合を進めます。\n"
)


@pytest.fixture
def mixed_corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "good.txt").write_bytes(GOOD_TEXT.encode("cp932"))
    data = _pdf(["第１章　総論", "第２章　各論"])
    (root / "corrupt.pdf").write_bytes(data[: len(data) // 2])
    (root / "empty.txt").write_bytes(b"")
    (root / "scan.pdf").write_bytes(_pdf(["第１章　定員管理の適正化\n職員数を計画的に削減します。", None]))
    (root / "stray.docx").write_bytes(b"x")
    (root / "manifest.csv").write_text(
        "path,municipality,prefecture,title,year,kind,url\n"
        "good.txt,小平市,東京都,行財政再構築プラン,2017,行財政改革大綱,\n"
        "corrupt.pdf,常総市,茨城県,壊れたPDF,2024,事務事業評価,\n"
        "empty.txt,南国市,高知県,空,2022,その他,\n"
        "scan.pdf,音威子府村,北海道,定員管理,2025,取組状況,\n"
        "gone.txt,南国市,高知県,,,,\n",
        encoding="utf-8",
    )
    return root


def test_mixed_corpus(mixed_corpus: Path, chunker):
    res = load_corpus(mixed_corpus)
    assert [d.path for d in res.documents] == ["good.txt", "corrupt.pdf", "empty.txt", "scan.pdf"]
    docs_with_chunks = {c.doc_id for c in res.chunks}
    assert docs_with_chunks == {"good.txt", "scan.pdf"}
    good = res.chunks_of("good.txt")
    assert all(c.municipality == "小平市" for c in good)
    assert "事務事業" in "".join(c.section + c.item + c.text for c in good)
    assert "職員数を計画的に削減" in "".join(c.text for c in res.chunks_of("scan.pdf"))
    assert "定員管理" in "".join(c.section + c.item + c.text for c in res.chunks_of("scan.pdf"))
    assert all(c.page_start == 1 for c in res.chunks_of("scan.pdf"))
    assert res.page_counts == {"good.txt": 1, "corrupt.pdf": 0, "empty.txt": 0, "scan.pdf": 1}

    msgs = [(m.severity, m.path, m.page, m.line) for m in res.messages]
    by_path: dict[str, list] = {}
    for m in res.messages:
        by_path.setdefault(m.path, []).append(m)
    assert [m.severity for m in by_path["corrupt.pdf"]] == ["error"]
    assert "truncated" in by_path["corrupt.pdf"][0].message
    assert [m.severity for m in by_path["empty.txt"]] == ["error"]
    assert "empty file" in by_path["empty.txt"][0].message
    assert [(m.severity, m.page) for m in by_path["scan.pdf"]] == [("warning", 2)]
    assert "OCR" in by_path["scan.pdf"][0].message
    assert "good.txt" not in by_path
    assert ("error", "manifest.csv", None, 6) in msgs  # gone.txt: file not found
    assert "not in manifest" in by_path["stray.docx"][0].message


def test_only_one_document(mixed_corpus: Path, chunker):
    res = load_corpus(mixed_corpus, only="good.txt")
    assert [d.path for d in res.documents] == ["good.txt"]
    assert res.chunks and {c.doc_id for c in res.chunks} == {"good.txt"}
    assert not [m for m in res.messages if m.path == "stray.docx"]
    res = load_corpus(mixed_corpus, only="nope.txt")
    assert res.documents == [] and "not in the manifest" in res.messages[-1].message


def test_chunker_failure_is_a_message(mixed_corpus: Path, chunker, monkeypatch: pytest.MonkeyPatch):
    real = chunker.chunk_document_detailed

    def flaky(raw: RawDocument, meta: DocumentMeta, *, max_tokens: int):
        if meta.path == "good.txt":
            raise ValueError("boom")
        return real(raw, meta, max_tokens=max_tokens)

    monkeypatch.setattr(chunker, "chunk_document_detailed", flaky)
    res = load_corpus(mixed_corpus)
    (err,) = [m for m in res.messages if m.path == "good.txt"]
    assert err.severity == "error" and "chunking failed" in err.message and "boom" in err.message
    assert {c.doc_id for c in res.chunks} == {"scan.pdf"}


def test_no_chunks_is_a_warning(tmp_path: Path, chunker, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "a.txt").write_text("本文", encoding="utf-8")
    monkeypatch.setattr(chunker, "chunk_document_detailed", lambda raw, meta, *, max_tokens: chunker.ChunkResult([], "prose"))
    meta = DocumentMeta("a.txt", "小平市")
    loaded = load_document(tmp_path, meta)
    msgs = loaded.messages
    assert loaded.chunks == [] and [m.severity for m in msgs] == ["warning"] and "no chunks" in msgs[0].message
    assert loaded.n_pages == 1 and loaded.shape == "" and loaded.page_shapes == []


def test_bundled_corpus_loads(bundled_corpus: Path, chunker):
    res = load_corpus(bundled_corpus)
    assert len(res.documents) == 8  # 5 text documents + 3 PDFs
    assert not [m for m in res.messages if m.severity == "error"], [str(m) for m in res.messages]
    assert {c.doc_id for c in res.chunks} == {d.path for d in res.documents}
