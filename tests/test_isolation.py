"""Issue 14, points 1–3: no text can crash the tagger, no document can brick a build or an upload,
and every document is bounded (pages, rows, characters, chunks, time).

Anything that could crash the interpreter runs in a child process, so a segmentation fault fails
the test instead of killing pytest. Faults are injected with a ``sitecustomize.py`` put on the
child's ``PYTHONPATH`` (the technique of tests/test_offline.py): it wraps
``corpus.document.load_document`` so that a document whose path contains a marker kills its
process with a real SIGSEGV, or sleeps — in the build's worker process, exactly where a crashing
reader would.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from corpus.chunker import HARD_SPLIT_CHARS_PER_TOKEN, split_text
from corpus.limits import DocumentLimits
from corpus.document import load_document
from corpus.morph import MAX_TAGGER_CHARS, count_tokens, tagger_slices
from corpus.records import DocumentMeta

REPO = Path(__file__).resolve().parent.parent

GOOD_A = "公共施設の長寿命化\n市は学校給食センターの更新をPFI方式で進める。民間の技術を生かして費用を抑える。\n"
GOOD_B = "窓口のデジタル化\n住民票の写しをコンビニで交付する。書かない窓口を全庁で始める。\n"

FAULTS = textwrap.dedent(
    """
    import os, signal, time
    _crash = os.environ.get("SEISAKU_TEST_CRASH_MARKER")
    _slow = os.environ.get("SEISAKU_TEST_SLOW_MARKER")
    if _crash or _slow:
        import corpus.document as _document
        _orig = _document.load_document
        def _faulty(corpus_dir, meta, **kw):
            if _crash and _crash in meta.path:
                os.kill(os.getpid(), signal.SIGSEGV)
            if _slow and _slow in meta.path:
                time.sleep(3600)
            return _orig(corpus_dir, meta, **kw)
        _document.load_document = _faulty
    """
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    site = tmp_path / "faults"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(FAULTS, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def _seisaku(args: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "search.cli", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def _corpus(root: Path, docs: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = ["path,municipality,prefecture,title,year"]
    for i, (name, text) in enumerate(docs.items()):
        (root / name).write_text(text, encoding="utf-8")
        rows.append(f"{name},試験市{i},試験県,{name} の計画,2024")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


# --------------------------------------------------------------------------- 1. the tagger is bounded


def test_tagger_slices_cover_the_text_and_end_at_line_ends():
    text = ("一行目の文章です。" * 500 + "\n") * 40
    pieces = list(tagger_slices(text, limit=10_000))
    assert "".join(p for _, p in pieces) == text
    assert all(len(p) <= 10_000 for _, p in pieces)
    assert all(p.endswith("\n") for _, p in pieces[:-1])  # cut after a line end, not inside a word
    assert [o for o, _ in pieces] == [sum(len(p) for _, p in pieces[:i]) for i in range(len(pieces))]
    # no break at all: hard cuts at the limit, still the whole text
    flat = "あ" * 25_000
    assert [len(p) for _, p in tagger_slices(flat, limit=10_000)] == [10_000, 10_000, 5_000]


def test_a_3mb_text_and_a_1m_character_question_do_not_crash_in_a_child(tmp_path):
    """fugashi segfaulted on one input of ≈3 MB; every caller now tags in slices. The work runs in
    a child: a crash fails this test (non-zero exit) instead of killing pytest."""
    doc = "公共施設の再編を進める。学校給食センターの更新に民間資金を活用する。\n" * 30_000  # 20,000+ lines, 3.2 MB
    assert len(doc.encode("utf-8")) > 3_000_000
    _corpus(tmp_path / "c", {"big.txt": doc})
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from corpus.document import load_document
        from corpus.manifest import read_manifest
        from corpus.morph import count_tokens, morphemes
        from search.question import clip_question
        text = Path({str(tmp_path / 'c' / 'big.txt')!r}).read_text(encoding="utf-8")
        n = count_tokens(text)
        ms = morphemes(text[:1_100_000])
        assert ms and text[ms[-1].start:ms[-1].end] == ms[-1].surface
        meta = read_manifest(Path({str(tmp_path / 'c')!r})).entries[0]
        chunks = load_document(Path({str(tmp_path / 'c')!r}), meta, max_tokens=400).chunks
        q, cut = clip_question("給食センター" * 170_000)
        print(n, len(chunks), cut, len(q))
        """
    )
    p = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, f"child died (exit {p.returncode}): {p.stderr[-2000:]}"
    n_tokens, n_chunks, cut, qlen = p.stdout.split()
    assert int(n_tokens) > 500_000 and int(n_chunks) > 100
    assert cut == "True" and int(qlen) == 1000


@pytest.mark.slow
def test_a_1m_character_question_through_every_view_in_a_child(built_index):
    """The answer views used to tokenize the whole question: one 1M-character /answer killed the
    app. Run all views on a 1M-character question in a child process against the built index."""
    script = textwrap.dedent(
        f"""
        import json
        from index.config import Settings
        from search.engine import Engine
        from search import answers
        from pathlib import Path
        s = Settings(corpus_dir=Path({str(built_index.corpus_dir)!r}), index_dir=Path({str(built_index.index_dir)!r}),
                     cache_dir=Path({str(built_index.cache_dir)!r}))
        eng = Engine(s.index_dir, s)
        q = "学校給食センターをPFIで整備した自治体は" * 50_000
        res = eng.search(q, k=5)
        out = [len(res)]
        out.append(type(answers.municipality_answer(eng, q)).__name__)
        out.append(type(answers.compare(eng, q)).__name__)
        out.append(type(answers.wording(eng, q)).__name__)
        print(json.dumps(out))
        """
    )
    p = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, f"child died (exit {p.returncode}): {p.stderr[-2000:]}"
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out[0] > 0
    assert out[1:] == ["MunicipalityAnswer", "ComparisonTable", "WordingResult"]


# --------------------------------------------------------------------------- 3. linear split, chunk limit


def test_one_long_line_of_digits_is_cut_into_bounded_pieces():
    """A 64 kB line of digits took 366 s in the old (cubic) hard split and became huge pieces."""
    line = "1234567890" * 6_400
    parts = split_text(line, 400)
    assert "".join(parts) == line
    assert len(parts) > 100
    assert max(len(p) for p in parts) <= 400 * HARD_SPLIT_CHARS_PER_TOKEN + 50
    assert max(count_tokens(p) for p in parts) <= 400 + 50


def test_a_document_over_the_chunk_limit_is_refused_with_the_limit_named(bundled_corpus):
    from corpus.manifest import read_manifest

    meta = next(m for m in read_manifest(bundled_corpus).entries if m.path.startswith("004"))
    loaded = load_document(bundled_corpus, meta, limits=DocumentLimits(max_doc_chunks=5))
    chunks, messages = loaded.chunks, loaded.messages
    assert chunks == []
    err = [m for m in messages if m.severity == "error"]
    assert err and "max_doc_chunks = 5" in err[0].message and "not indexed" in err[0].message


# --------------------------------------------------------------------------- 2. isolation


def test_seisaku_chunks_skips_a_crashing_document_and_a_slow_one(tmp_path):
    corpus = _corpus(tmp_path / "c", {"a.txt": GOOD_A, "crash_me.txt": GOOD_A, "slow_me.txt": GOOD_B, "b.txt": GOOD_B})
    cfg = tmp_path / "limits.toml"
    cfg.write_text("max_doc_seconds = 5\n", encoding="utf-8")
    env = _env(tmp_path, SEISAKU_TEST_CRASH_MARKER="crash_me", SEISAKU_TEST_SLOW_MARKER="slow_me")
    p = _seisaku(["chunks", "--corpus", str(corpus), "--config", str(cfg), "--json"], env, timeout=300)
    assert p.returncode == 0, p.stderr
    docs = {json.loads(line)["doc_id"] for line in p.stdout.splitlines() if line.strip()}
    assert docs == {"a.txt", "b.txt"}
    crash = [line for line in p.stderr.splitlines() if "crash_me.txt" in line]
    assert crash and "異常終了" in crash[0] and "SIGSEGV" in crash[0]
    slow = [line for line in p.stderr.splitlines() if "slow_me.txt" in line]
    assert slow and "max_doc_seconds = 5" in slow[0]


@pytest.mark.slow
def test_build_and_add_survive_a_document_that_kills_its_worker(tmp_path):
    """seisaku build names the crashing document, skips it and indexes the rest; seisaku add of a
    crashing file rolls back the copied file and the manifest row and leaves the index as it was."""
    corpus = _corpus(tmp_path / "c", {"a.txt": GOOD_A, "crash_me.txt": GOOD_A, "b.txt": GOOD_B})
    index = tmp_path / "index"
    env = _env(tmp_path, SEISAKU_TEST_CRASH_MARKER="crash_me")
    p = _seisaku(["build", "--corpus", str(corpus), "--index", str(index), "--quiet"], env)
    assert p.returncode == 0, p.stderr
    named = [line for line in p.stderr.splitlines() + p.stdout.splitlines() if "crash_me.txt" in line]
    assert named and "SIGSEGV" in named[0]
    s = _seisaku(["search", "住民票の写しをコンビニで交付", "--index", str(index), "--corpus", str(corpus), "--json"], env)
    assert s.returncode == 0, s.stderr
    assert "b.txt" in s.stdout
    info_before = (index / "index.json").read_bytes()
    manifest_before = (corpus / "manifest.csv").read_bytes()

    upload = tmp_path / "crash_me_upload.txt"
    upload.write_text(GOOD_B, encoding="utf-8")
    a = _seisaku(["add", str(upload), "--municipality", "試験市", "--corpus", str(corpus), "--index", str(index)], env)
    assert a.returncode == 1, a.stdout + a.stderr
    assert "SIGSEGV" in a.stdout + a.stderr
    assert (corpus / "manifest.csv").read_bytes() == manifest_before
    assert not (corpus / "uploads" / upload.name).exists()
    assert (index / "index.json").read_bytes() == info_before
