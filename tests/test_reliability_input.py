"""Bad input: whatever is on a shared drive, and whatever staff type into the question box.

What a user cares about: every bad file gets a specific message naming it, the build (and the
app) survives, and the good documents are still found. Markup in documents and questions is
shown as text, never run.

- fuzzing (hypothesis, no model): no reader raises on random or damaged bytes; a file that
  yields no text always says why;
- one temp corpus mixing ALL the bad files with two good ones, built with the real
  ``seisaku build`` command (subprocess): exit 0, one specific message per bad file, good
  documents searchable, bad ones listed with their message in the documents table;
- odd questions (empty, 10,000 characters, punctuation, whitespace, emoji, markup) through
  the answer views (``engine.search`` itself: tests/test_search.py::test_odd_queries_are_clean),
  through the app's API (gradio_client) and in the browser (no dialog fires).

Single-reader cases already covered in tests/test_readers.py (encrypted / truncated / scanned
PDFs, encrypted Office files, ratio zip bombs, NUL bytes, encodings) are used here only as
members of the mixed corpus.
"""
from __future__ import annotations

import io
import os
import random
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from corpus.readers import SUPPORTED_EXTENSIONS, read_document

REPO = Path(__file__).resolve().parent.parent

GOOD_TXT_PHRASE = "下水道事業のウォーターPPP導入"
GOOD_PDF_PHRASE = "公共施設の長寿命化と複合化"
HTML_PHRASE = "窓口のキャッシュレス決済導入"
MD_PHRASE = "ふるさと納税の返礼品見直し"
NUL_PHRASE = "学校給食費の公会計化"
MIXED_SJIS_PHRASE = "公民館の指定管理者制度導入"
MARKUP = "<script>alert(1)</script> <img src=x onerror=alert(2)> **太字** [link](javascript:alert(3))"
#: the size limit given to the mixed-corpus build (config file), instead of writing GBs
SMALL_LIMIT = 64 * 1024


# ══ file factories ═════════════════════════════════════════════════════════════════════════════


def pdf_bytes(pages: list[str | None], encrypt: str | None = None) -> bytes:
    """A real PDF (reportlab, Japanese CID font); ``None`` is an image-only ("scanned") page."""
    from PIL import Image
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, encrypt=encrypt)
    for text in pages:
        if text is None:
            c.drawImage(ImageReader(Image.new("RGB", (80, 60), (200, 200, 200))), 72, 500, 300, 220)
        else:
            c.setFont("HeiseiKakuGo-W5", 11)
            y = 780
            for line in text.splitlines():
                c.drawString(60, y, line)
                y -= 16
        c.showPage()
    c.save()
    return buf.getvalue()


def declared_zip_bomb(path: Path, members: dict[str, bytes]) -> None:
    """A zip (named .xlsx/.docx) of a few hundred bytes whose members *declare* ~3.75 GB each.

    The sizes are patched into the local and central headers, so the file is tiny on disk but
    anything trusting the declared sizes would try to allocate gigabytes.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    raw = bytearray(buf.getvalue())
    huge = 0xF0000000
    i = 0
    while (i := raw.find(b"PK\x01\x02", i)) != -1:  # central directory: uncompressed size at +24
        struct.pack_into("<I", raw, i + 24, huge)
        i += 4
    i = 0
    while (i := raw.find(b"PK\x03\x04", i)) != -1:  # local header: uncompressed size at +22
        struct.pack_into("<I", raw, i + 22, huge)
        i += 4
    path.write_bytes(bytes(raw))


def ratio_zip_bomb(path: Path) -> None:
    """A zip whose one member really inflates 1000× (24 MB of zeros in ~25 kB)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", b"<Types/>")
        zf.writestr("word/document.xml", b"\x00" * (24 * 1024 * 1024))


def good_docx(path: Path, text: str) -> None:
    import docx

    d = docx.Document()
    for line in text.splitlines():
        d.add_paragraph(line)
    d.save(path)


def good_xlsx(path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["事務事業名", "担当課", "評価"])
    ws.append(["道路維持管理事業", "建設課", "継続"])
    wb.save(path)


#: file name → (severity, fragment of the specific message). Files that are read despite a
#: problem (warnings) are also expected to be searchable; see SEARCHABLE.
EXPECTED: dict[str, tuple[str, str]] = {
    "empty.txt": ("error", "empty file"),
    "empty.pdf": ("error", "empty file"),
    "whitespace.txt": ("error", "whitespace only"),
    "binary.txt": ("error", "binary file, not text"),
    "binary.pdf": ("error", "not a PDF file"),
    "binary.xlsx": ("error", "not a zip archive"),
    "truncated.pdf": ("error", "truncated"),
    "encrypted.pdf": ("error", "encrypted PDF"),
    "scanned.pdf": ("warning", "no text layer (scanned im"),  # "…), needs OCR" without Tesseract; with it, "OCR found no text"
    "large.txt": ("error", "file too large"),
    "bomb.xlsx": ("error", "uncompressed size too large (possible zip bomb)"),
    "bomb.docx": ("error", "compression ratio too high (possible zip bomb)"),
    "encrypted.docx": ("error", "encrypted (password-protected)"),
    "legacy.doc": ("error", "unsupported file type"),
    "zero_tail.txt": ("warning", "zero-filled tail"),
    "mixed_encoding.txt": ("warning", "mixed encodings"),
    "not_there.txt": ("error", "file not found"),
    "../outside.txt": ("error", "escapes the corpus root"),
    "/etc/passwd": ("error", "absolute path not allowed"),
    "unlisted.txt": ("warning", "not in manifest"),
}
#: manifest rows that are bad themselves (line-numbered messages)
DUPLICATE_ROW = "good.txt"
EMPTY_MUNICIPALITY = "no_municipality.txt"

#: phrase → the document it must be found in (good files and files read with a warning)
SEARCHABLE = {
    GOOD_TXT_PHRASE: "good.txt",
    GOOD_PDF_PHRASE: "good.pdf",
    HTML_PHRASE: "markup.html",
    MD_PHRASE: "markup.md",
    NUL_PHRASE: "zero_tail.txt",
    MIXED_SJIS_PHRASE: "mixed_encoding.txt",
}


def write_bad_corpus(root: Path) -> Path:
    """A corpus mixing every kind of bad file and bad manifest row with good documents."""
    root.mkdir(parents=True)
    rnd = random.Random(7)
    (root / "good.txt").write_text(
        f"第1章 下水道事業\n\n1 経営基盤の強化\n{GOOD_TXT_PHRASE}により維持管理費を削減する。所管課：上下水道課\n",
        encoding="utf-8",
    )
    (root / "good.pdf").write_bytes(pdf_bytes([f"第2章 公共施設マネジメント\n{GOOD_PDF_PHRASE}を進める。"]))
    (root / "markup.html").write_text(
        f"<html><head><title>条例案</title><script>alert('doc')</script></head><body>"
        f"<h1>窓口改革</h1><p>{HTML_PHRASE}を進める。表示例: &lt;img src=x onerror=alert(4)&gt;</p>"
        f"<style>p{{color:red}}</style></body></html>",
        encoding="utf-8",
    )
    (root / "markup.md").write_text(f"# 財源確保\n\n{MD_PHRASE}を行う。{MARKUP}\n", encoding="utf-8")
    (root / "empty.txt").write_bytes(b"")
    (root / "empty.pdf").write_bytes(b"")
    (root / "whitespace.txt").write_text(" \n\t\u3000\n\n", encoding="utf-8")
    (root / "binary.txt").write_bytes(bytes(rnd.randrange(256) for _ in range(4000)))
    (root / "binary.pdf").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(rnd.randrange(256) for _ in range(4000)))
    (root / "binary.xlsx").write_bytes(bytes(rnd.randrange(256) for _ in range(4000)))
    full = pdf_bytes(["第1章 総論", "第2章 各論"])
    (root / "truncated.pdf").write_bytes(full[: len(full) // 2])
    (root / "encrypted.pdf").write_bytes(pdf_bytes(["秘密の文書"], encrypt="pw"))
    (root / "scanned.pdf").write_bytes(pdf_bytes([None, None]))
    (root / "large.txt").write_text(("大きな文書の本文です。" * 20 + "\n") * 400, encoding="utf-8")
    declared_zip_bomb(root / "bomb.xlsx", {"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"})
    ratio_zip_bomb(root / "bomb.docx")
    (root / "encrypted.docx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 2000)
    (root / "legacy.doc").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 2000)
    (root / "zero_tail.txt").write_bytes(
        f"第3章 教育\n\n{NUL_PHRASE}を実施する。\n".encode("utf-8") + b"\x00" * 4096
    )
    (root / "mixed_encoding.txt").write_bytes(
        "第4章 生涯学習\n\n公民館の運営を見直す。\n".encode("utf-8") + f"{MIXED_SJIS_PHRASE}を検討する。\n".encode("cp932")
    )
    (root / EMPTY_MUNICIPALITY).write_text("自治体名のない行の文書。\n", encoding="utf-8")
    (root / "unlisted.txt").write_text("manifest に載っていない文書。\n", encoding="utf-8")
    (root.parent / "outside.txt").write_text("コーパスの外の文書。\n", encoding="utf-8")

    listed = [p for p in EXPECTED if p != "unlisted.txt"]
    rows = ["path,municipality,prefecture,title,year,kind,url"]
    rows.append(f"good.txt,良品市,静岡県,良品市行革大綱,2024,行財政改革大綱,")
    rows.append(f"good.pdf,良品町,静岡県,良品町公共施設計画,2024,公共施設等総合管理計画,")
    rows.append(f'markup.html,表示村,長野県,"<b>表示村</b> <script>alert(5)</script>",2024,事例集,javascript:alert(6)')
    rows.append(f"markup.md,表示村,長野県,財源確保の方針,2024,事例集,")
    for p in listed:
        rows.append(f"{p},不良市,静岡県,{Path(p).name},2024,計画,")
    rows.append(f"{DUPLICATE_ROW},重複市,静岡県,重複,2024,計画,")
    rows.append(f"{EMPTY_MUNICIPALITY},,静岡県,自治体なし,2024,計画,")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "PYTHONIOENCODING": "utf-8"}


def seisaku(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the real ``seisaku`` command line (``python -m search.cli``) in a subprocess."""
    return subprocess.run([sys.executable, "-m", "search.cli", *args], cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=timeout)


# ══ fuzzing the readers (fast, no model) ════════════════════════════════════════════════════════

_EXTS = sorted(SUPPORTED_EXTENSIONS | {".doc", ".xls", ".csv", ""})


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=3000), ext=st.sampled_from(_EXTS))
def test_random_bytes_never_crash_a_reader(tmp_path: Path, data: bytes, ext: str) -> None:
    p = tmp_path / f"f{ext}"
    p.write_bytes(data)
    doc = read_document(p, p.name)  # never raises
    assert all(m.path == p.name and m.message for m in doc.messages)
    if not doc.pages:  # nothing read: the user is told why
        assert doc.messages, (ext, data[:40])


def _valid_samples(tmp: Path) -> dict[str, bytes]:
    good_docx(tmp / "s.docx", "第1章 総論\n行財政改革を進める。")
    good_xlsx(tmp / "s.xlsx")
    return {
        ".pdf": pdf_bytes(["第1章 総論\n行財政改革を進める。", "第2章 各論"]),
        ".docx": (tmp / "s.docx").read_bytes(),
        ".xlsx": (tmp / "s.xlsx").read_bytes(),
        ".html": "<html><body><h1>改革</h1><p>事務事業の見直し</p></body></html>".encode("cp932"),
        ".txt": "行財政改革大綱\n事務事業の見直しを進める。".encode("euc_jp"),
    }


@pytest.fixture(scope="module")
def valid_samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return _valid_samples(tmp_path_factory.mktemp("samples"))


@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ext=st.sampled_from([".pdf", ".docx", ".xlsx", ".html", ".txt"]), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=8))
def test_damaged_valid_files_never_crash(tmp_path: Path, valid_samples: dict[str, bytes], ext: str, cut: float,
                                         flips: list[tuple[float, int]]) -> None:
    """Valid files truncated at a random point and with random bytes overwritten."""
    data = bytearray(valid_samples[ext])
    data = data[: max(1, int(len(data) * cut))] if cut < 0.98 else data
    for where, value in flips:
        data[min(len(data) - 1, int(len(data) * where))] = value
    p = tmp_path / f"damaged{ext}"
    p.write_bytes(bytes(data))
    doc = read_document(p, p.name)
    if not doc.pages:
        assert doc.messages


def test_mixed_encodings_are_decoded_line_by_line(tmp_path: Path) -> None:
    p = tmp_path / "mixed.txt"
    parts = [("第1章 総論\n", "utf-8"), ("公共施設の統廃合を進める。\n", "cp932"), ("指定管理者制度を導入する。\n", "euc_jp"),
             ("窓口のDXを進める。\n", "utf-8")]
    p.write_bytes(b"".join(t.encode(e) for t, e in parts))
    doc = read_document(p, "mixed.txt")
    assert doc.pages and doc.pages[0].text.strip() == "".join(t for t, _ in parts).strip()
    (w,) = doc.messages
    assert w.severity == "warning" and "mixed encodings" in w.message


def test_zero_filled_tail_keeps_the_text(tmp_path: Path) -> None:
    p = tmp_path / "cut.txt"
    text = "事務事業評価\n\n学校給食費の公会計化を実施する。\n"
    p.write_bytes(text.encode("cp932") + b"\x00" * 8192)
    doc = read_document(p, "cut.txt")
    assert doc.pages and doc.pages[0].text.strip() == text.strip()
    assert any("zero-filled tail" in m.message and "8192" in m.message for m in doc.messages)
    p.write_bytes(b"\x00" * 8192)  # nothing but zeros: still refused
    assert not read_document(p, "cut.txt").pages


def test_declared_zip_bomb_is_tiny_on_disk_and_refused(tmp_path: Path) -> None:
    for ext in (".xlsx", ".docx"):
        p = tmp_path / f"bomb{ext}"
        declared_zip_bomb(p, {"[Content_Types].xml": b"<Types/>", "x.xml": b"<x/>"})
        assert p.stat().st_size < 1000
        assert sum(i.file_size for i in zipfile.ZipFile(p).infolist()) > 7 * 2**30
        doc = read_document(p, p.name)
        assert not doc.pages and "possible zip bomb" in doc.messages[-1].message


# ══ the mixed corpus, built with the real command ════════════════════════════════════════════


@pytest.fixture(scope="module")
def bad_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``seisaku build`` on the mixed corpus (subprocess): its result, settings and stderr lines."""
    from index.config import Settings, default_cache_dir

    tmp = tmp_path_factory.mktemp("badcorpus")
    corpus = write_bad_corpus(tmp / "corpus")
    config = tmp / "config.toml"
    config.write_text(f"max_file_bytes = {SMALL_LIMIT}\n", encoding="utf-8")
    index = tmp / "index"
    proc = seisaku("build", "--corpus", str(corpus), "--index", str(index), "--config", str(config), "--quiet")
    cache = Path(os.environ.get("SEISAKU_CACHE") or default_cache_dir())
    settings = Settings(corpus_dir=corpus, index_dir=index, cache_dir=cache)
    return {"proc": proc, "settings": settings, "lines": proc.stderr.splitlines()}


@pytest.fixture(scope="module")
def bad_engine(bad_build: dict[str, Any]) -> Any:
    from search.engine import Engine

    return Engine.from_settings(bad_build["settings"])


@pytest.mark.slow
def test_bad_corpus_build_exits_0(bad_build: dict[str, Any]) -> None:
    proc = bad_build["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "インデックスを作成しました" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_every_bad_file_has_its_specific_message(bad_build: dict[str, Any], path: str) -> None:
    """One line per bad file: its severity, its name (or its manifest line) and the specific reason."""
    severity, fragment = EXPECTED[path]
    manifest = bad_build["settings"].corpus_dir / "manifest.csv"
    row = next((i for i, ln in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1)
                if ln.startswith(f"{path},")), None)
    names = [f"{severity}: {path}:", f"{severity}: {path} "] + ([f"{severity}: manifest.csv:{row} "] if row else [])
    lines = [ln for ln in bad_build["lines"] if fragment in ln and ln.startswith(tuple(names))]
    assert lines, (path, names, bad_build["lines"])


@pytest.mark.slow
def test_bad_manifest_rows_are_named_by_line(bad_build: dict[str, Any]) -> None:
    manifest = bad_build["settings"].corpus_dir / "manifest.csv"
    lines = manifest.read_text(encoding="utf-8").splitlines()
    dup_line = max(i for i, ln in enumerate(lines, 1) if ln.startswith(f"{DUPLICATE_ROW},"))
    empty_line = next(i for i, ln in enumerate(lines, 1) if ln.startswith(f"{EMPTY_MUNICIPALITY},"))
    out = bad_build["lines"]
    assert any(f"manifest.csv:{dup_line}" in ln and "duplicate path" in ln for ln in out), out
    assert any(f"manifest.csv:{empty_line}" in ln and "empty municipality" in ln for ln in out), out


@pytest.mark.slow
def test_file_outside_corpus_is_not_indexed(bad_engine: Any) -> None:
    docs = {d["doc_id"] for d in bad_engine.documents()}
    assert "../outside.txt" not in docs and "/etc/passwd" not in docs
    assert not any("コーパスの外の文書" in c.text for c in bad_engine.store.chunks)
    assert not any("root:" in c.text for c in bad_engine.store.chunks)


@pytest.mark.slow
@pytest.mark.parametrize("phrase", sorted(SEARCHABLE))
def test_good_documents_are_searchable(bad_engine: Any, phrase: str) -> None:
    results = bad_engine.search(phrase, k=3)
    assert results and results[0].chunk.doc_id == SEARCHABLE[phrase], [(r.chunk.doc_id, r.chunk.text[:40]) for r in results]
    assert phrase in results[0].chunk.text


@pytest.mark.slow
def test_bad_files_are_listed_with_their_message(bad_engine: Any) -> None:
    """The documents tab lists every usable manifest row, a failed file with its reason.
    (Rows the manifest check skipped — missing file, bad path — are reported by the build only.)"""
    docs = {d["doc_id"]: d for d in bad_engine.documents()}
    for path, (severity, fragment) in EXPECTED.items():
        if path in ("unlisted.txt", "../outside.txt", "/etc/passwd", "not_there.txt"):
            continue
        assert path in docs, path
        assert any(fragment in m for m in docs[path]["messages"]), (path, docs[path]["messages"])
        if severity == "error":
            assert docs[path]["n_chunks"] == 0
    assert docs["good.txt"]["n_chunks"] > 0 and docs["good.pdf"]["n_chunks"] > 0


@pytest.mark.slow
def test_markup_in_documents_is_rendered_as_text(bad_engine: Any) -> None:
    """Search results, answers and the document page escape markup from documents and the manifest."""
    import ui
    from search import views_html as V

    state = ui.AppState(bad_engine.settings, engine=bad_engine)
    for phrase, doc in ((MD_PHRASE, "markup.md"), (HTML_PHRASE, "markup.html")):
        results = ui.run_search(state, phrase)
        assert results[0]["doc_id"] == doc
        html = V.render_results(results, phrase) + V.render_answer(ui.run_answer(state, phrase))
        found = ui.document_chunks(bad_engine, doc)
        assert found is not None
        html += V.render_document_page(*found)
        low = html.lower()
        assert "<script" not in low and "<img" not in low and "<b>" not in low and "javascript:" not in low.replace(
            "javascript:alert", "")
        assert "href=\"javascript" not in low
        if doc == "markup.md":
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "**太字**" in html
        else:
            assert "&lt;img src=x onerror=alert(4)&gt;" in html  # the document's own text, shown
            assert "alert(&#x27;doc&#x27;)" not in html and "alert('doc')" not in html  # its <script> dropped


@pytest.mark.slow
def test_unusable_manifest_is_one_clear_error(tmp_path: Path) -> None:
    """A manifest without the required columns stops the build with one line saying why (exit 2)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("本文\n", encoding="utf-8")
    (corpus / "manifest.csv").write_text("file_name,city\na.txt,A市\n", encoding="utf-8")
    proc = seisaku("build", "--corpus", str(corpus), "--index", str(tmp_path / "index"), "--quiet")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert line.startswith("エラー: ") and "missing required column" in line and "municipality" in line
    assert not (tmp_path / "index").exists()


# ══ odd questions ══════════════════════════════════════════════════════════════════════════════

ODD_QUESTIONS = [
    "",
    "   \n\t　",
    "。、！？…「」（）・!?.,;:",
    "😀🎉🙏🏯",
    "給食センター" * 1700,  # 10,200 characters
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "**給食** [x](javascript:alert(1)) `code` $x$ {{7*7}}",
    "\x00\x01\x1b[31m",
]


@pytest.fixture(scope="module")
def engine(built_index: Any) -> Any:
    from search.engine import Engine

    return Engine.from_settings(built_index)


def _check_answer_shapes(engine: Any, q: str) -> None:
    import json

    from search.answers import compare, municipality_answer, wording

    a = municipality_answer(engine, q)
    c = compare(engine, q)
    w = wording(engine, q)
    for x in (a, c, w):
        json.dumps(x.to_dict(), ensure_ascii=False)
        assert isinstance(x.to_text(), str)
    if not any(ch.isalnum() for ch in q):
        assert not a.answered and a.rows == [] and a.message  # says "nothing found"/"type a question"


@pytest.mark.slow
@pytest.mark.parametrize("q", ODD_QUESTIONS, ids=lambda q: repr(q[:12]) + f"[{len(q)}]")
def test_odd_questions_through_the_answer_views(engine: Any, q: str) -> None:
    _check_answer_shapes(engine, q)


@pytest.mark.slow
@hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=st.text(min_size=0, max_size=60))
def test_any_text_is_a_valid_question(engine: Any, q: str) -> None:
    results = engine.search(q, k=5)
    assert len(results) <= 5
    _check_answer_shapes(engine, q)


@pytest.mark.slow
def test_markup_question_is_rendered_as_text(engine: Any) -> None:
    import ui
    from search import views_html as V

    state = ui.AppState(engine.settings, engine=engine)
    for q in ODD_QUESTIONS[5:8] + ["<b>給食センター</b>をPFIで整備<script>alert(1)</script>"]:
        html = V.render_results(ui.run_search(state, q), q) + V.render_answer(ui.run_answer(state, q))
        html += V.render_comparison(ui.run_compare(state, q)[0]) + V.render_wording(ui.run_wording(state, q))
        low = html.lower()
        assert "<script" not in low and "<img" not in low and "<b>" not in low, html[:500]


@pytest.fixture(scope="module")
def app_url(built_index: Any) -> Iterator[str]:
    from tests.ui_support import launched

    with launched(built_index) as url:
        yield url


@pytest.mark.slow
def test_odd_questions_through_the_app_api(app_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from gradio_client import Client

    from search.question import MAX_QUESTION_CHARS, clip_question

    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")  # the *client's* telemetry, not the app's
    client = Client(app_url + "/", verbose=False)
    for q in ODD_QUESTIONS:
        s = client.predict(q, api_name="/search")
        assert s["query"] == (clip_question(q)[0] if s["truncated"] else q) and isinstance(s["results"], list)
        assert s["truncated"] == (len(q.strip()) > MAX_QUESTION_CHARS)
        a = client.predict(q, api_name="/answer")
        assert "rows" in a
        c = client.predict(q, None, 4, api_name="/compare")
        assert "columns" in c
        w = client.predict(q, api_name="/wording")
        assert "hits" in w
    # the server is still fine after all that
    assert client.predict("学校給食センターをPFIで整備した自治体", k=3, api_name="/search")["results"]


@pytest.mark.slow
@pytest.mark.browser
def test_markup_questions_in_the_browser_fire_no_dialog(app_url: str, artifacts_dir: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.ui_support import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    q = '"><img src=x onerror=alert(1)><script>alert(2)</script>給食センター **太字**'
    dialogs: list[str] = []
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = b.new_page(viewport={"width": 1280, "height": 1000}, locale="ja-JP")
            page.set_default_timeout(180_000)
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(app_url + "/")
            for tab, box, button, out in (("検索", "sk-query", "sk-search-btn", "sk-cards"),
                                          ("比較", "sk-topic", "sk-compare-btn", "sk-compare"),
                                          ("文例", "sk-wording-text", "sk-wording-btn", "sk-wording")):
                page.get_by_role("tab", name=tab).click()
                page.locator(f"#{box} textarea, #{box} input").first.fill(q)
                page.click(f"#{button}")
                page.wait_for_selector(f"#{out} .sk-card, #{out} .sk-msg, #{out} table, #{out} .sk-wording, #{out} li")
                page.wait_for_timeout(300)
                assert page.locator(f"#{out} img, #{out} script, #{out} strong").count() == 0
            page.get_by_role("tab", name="検索").click()
            shown = page.locator("#sk-answer").inner_text() + page.locator("#sk-cards").inner_text()
            assert "給食センター" in shown
            page.screenshot(path=str(artifacts_dir / "reliability-markup-question.png"), full_page=True)
        finally:
            b.close()
    assert dialogs == []


def test_size_limit_message_is_legible_for_small_limits(tmp_path: Path) -> None:
    p = tmp_path / "big.txt"
    p.write_text("あ" * 3000, encoding="utf-8")  # 9000 bytes
    from corpus.limits import DocumentLimits

    doc = read_document(p, "big.txt", limits=DocumentLimits(max_file_bytes=4096))
    assert not doc.pages and "file too large" in doc.messages[0].message and "（9 kB > 4 kB）" in doc.messages[0].message
