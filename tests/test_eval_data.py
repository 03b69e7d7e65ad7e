"""The second question set (search/eval_data, issue 11): its shape, its split and its labels.

The labels are checked the way ``seisaku eval`` scores them: every phrase must be in the first
1,200 normalised characters of some chunk of its document, chunked by corpus.loader exactly as the
build chunks it (no embedding model). Only the referenced documents are chunked; entries on pages
that need OCR are skipped when Tesseract (with ``jpn``) is not installed. Tests that read
../shared skip when it is absent.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from search.eval_data import make_corpus
from search.eval_data.questions import (
    KINDS,
    QUESTIONS,
    SPLITS,
    assign_splits,
    chunk_documents,
    entry_municipalities,
    label_docs,
    phrase_problems,
    read_rows,
)
from search.evaluate import load_questions, normalize

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
needs_shared = pytest.mark.skipif(not (SHARED / "pdfs").is_dir(), reason="../shared is not present")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    """The questions of questions_v2.jsonl as dicts."""
    return read_rows(QUESTIONS)


def test_schema(rows):
    """Every line has an id, a kind, a query, a split and relevant entries naming a corpus document;
    ids are unique, and seisaku's own reader reads the file."""
    docs = set(make_corpus.manifest_paths())
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert set(r) == {"id", "kind", "split", "query", "relevant"}, r["id"]
        assert r["kind"] in KINDS and r["split"] in SPLITS, r["id"]
        assert isinstance(r["query"], str) and r["query"].strip(), r["id"]
        for rel in r["relevant"]:
            assert set(rel) in ({"doc", "must_contain"}, {"doc", "must_contain", "also"}), r["id"]
            for alt in [rel, *rel.get("also", [])]:
                assert set(alt) - {"why", "also"} == {"doc", "must_contain"}, r["id"]
                assert alt is rel or set(alt) == {"doc", "must_contain", "why"}, r["id"]
                assert alt["doc"] in docs, (r["id"], alt["doc"])
                assert normalize(alt["must_contain"]), r["id"]
    assert len(load_questions(QUESTIONS)) == len(rows)


def test_size_and_mix(rows):
    """At least 84 questions, at least half which/compare, about 10 % without an answer, and every
    kind present."""
    kinds = Counter(r["kind"] for r in rows)
    assert len(rows) >= 84
    assert kinds["which"] + kinds["compare"] >= len(rows) / 2
    assert all(kinds[k] >= 10 for k in KINDS), kinds
    unanswerable = sum(1 for r in rows if not r["relevant"])
    assert 0.07 <= unanswerable / len(rows) <= 0.14, unanswerable


def test_split_follows_the_recorded_rule(rows):
    """The split is the one README.md records (per kind, answerable first, by id, alternating), so
    the halves differ by at most one question in every kind and among the unanswerable ones."""
    assert {r["id"]: r["split"] for r in rows} == assign_splits(rows)
    for kind in KINDS:
        c = Counter(r["split"] for r in rows if r["kind"] == kind)
        assert abs(c["tune"] - c["check"]) <= 1, (kind, c)
    c = Counter(r["split"] for r in rows if not r["relevant"])
    assert abs(c["tune"] - c["check"]) <= 1, c


def test_queries_do_not_copy_the_labelled_phrase(rows):
    """Questions are paraphrased: no labelled phrase of eight or more characters appears verbatim in
    its question."""
    copied = [
        (r["id"], rel["must_contain"])
        for r in rows
        for entry in r["relevant"]
        for rel in [entry, *entry.get("also", [])]
        if len(normalize(rel["must_contain"])) >= 8 and normalize(rel["must_contain"]) in normalize(r["query"])
    ]
    assert copied == []


def test_make_corpus_without_shared_says_so(tmp_path, capsys):
    """Without the shared data the script stops with exit status 2 and names the missing place."""
    assert make_corpus.main([str(tmp_path / "out"), "--shared", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert not (tmp_path / "out" / "manifest.csv").exists()


@needs_shared
def test_corpus_lists_the_seeds_and_every_real_pdf():
    """corpus_v2.csv lists the five seeds and all real municipal PDFs of ../shared/pdfs (every
    PDF there but the fixture_* files; 16 of them), each with a municipality and a prefecture (the
    広域連携 collection aside)."""
    with (SHARED / "pdfs" / "manifest.csv").open(encoding="utf-8", newline="") as fh:
        described = {r["file"] for r in csv.DictReader(fh) if not r["file"].startswith("fixture_")}
    pdfs = {p.name for p in (SHARED / "pdfs").glob("*.pdf") if not p.name.startswith("fixture_")}
    seeds = {p.name for p in (SHARED / "seeds").glob("*.txt")}
    with make_corpus.MANIFEST.open(encoding="utf-8", newline="") as fh:
        listed = list(csv.DictReader(fh))
    assert pdfs == described
    assert {r["path"] for r in listed} == pdfs | seeds
    assert len(seeds) == 5
    for r in listed:
        if r["path"] != "003_66002c05080786b4.txt":
            assert r["municipality"] and r["prefecture"], r["path"]


@pytest.fixture(scope="module")
def labelled_chunks(tmp_path_factory, rows):
    """The referenced documents, assembled by make_corpus (symlinks) and chunked."""
    if not (SHARED / "pdfs").is_dir():
        pytest.skip("../shared is not present")
    corpus = tmp_path_factory.mktemp("eval_v2") / "corpus"
    make_corpus.make_corpus(corpus, SHARED)
    return chunk_documents(corpus, {d for r in rows for d in label_docs(r)})


def _ocr_unavailable() -> bool:
    from corpus.readers import ocr

    info = ocr.tesseract_info()
    return info is None or bool(ocr.missing_languages(info))


@needs_shared
def test_every_phrase_is_in_a_chunk_head(rows, labelled_chunks):
    """Each relevant phrase, and each of its ``also`` passages, is within the first 1,200
    normalised characters of a chunk of its document, and an ``also`` passage is of the entry's
    own municipality (entries in documents read by OCR are skipped when Tesseract is missing)."""
    problems = phrase_problems(rows, labelled_chunks)
    if _ocr_unavailable():
        problems = [p for p in problems if not any("OCR" in m for m in labelled_chunks[p.doc].messages)]
    assert [str(p) for p in problems] == []


@needs_shared
def test_which_and_compare_span_several_municipalities(rows, labelled_chunks):
    """At least half of all questions are which/compare questions answered by two or more
    municipalities, and a which question has one entry per municipality."""
    if _ocr_unavailable():
        pytest.skip("Tesseract is not installed: OCR'd entries cannot be attributed")
    several = 0
    for r in rows:
        munis = entry_municipalities(r, labelled_chunks)
        if r["kind"] == "which":
            assert len(set(munis)) == len(munis), (r["id"], munis)
        if r["kind"] in ("which", "compare") and len(set(munis)) >= 2:
            several += 1
    assert several >= len(rows) / 2, several
