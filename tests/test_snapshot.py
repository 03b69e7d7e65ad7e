"""One snapshot per search (issue 14, point 4): an open index keeps answering from the files it was
opened on after ``seisaku remove`` (the real command, in a subprocess) swaps a new index in, until
``Engine.reload()``. Real model, real build, real SQLite/FAISS/bm25s; no mocks."""
from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from index.config import Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
#: The document removed by the tests (A市's only document) and questions that find it and others.
REMOVED = "a市_計画.txt"
QUESTIONS = (
    "学校給食センターをPFIで建て替える自治体",
    "窓口業務にRPAとAIを導入した自治体",
    "書かない窓口で住民の負担を軽減",
    "集会所の統廃合と長寿命化",
    "職員の定員適正化",
    "ごみ処理を広域で共同運営している自治体",
)


def seisaku_remove(s: Settings, doc: str) -> None:
    """``seisaku remove <doc>`` on ``s``'s corpus and index, the real command in a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "search.cli", "remove", doc, "--corpus", str(s.corpus_dir), "--index", str(s.index_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def answer_views(engine: Any) -> list[dict[str, Any]]:
    """The municipality answer and the wording view of every question in :data:`QUESTIONS`."""
    from search.answers import municipality_answer, wording

    out = []
    for q in QUESTIONS:
        out.append(municipality_answer(engine, q).to_dict())
        out.append(wording(engine, q, k=5).to_dict())
    return out


def answered_municipalities(views: list[dict[str, Any]]) -> set[str]:
    """Every municipality named anywhere in the views (their JSON text)."""
    import json

    text = json.dumps(views, ensure_ascii=False)
    return {m for m in ("A市", "B町", "C村") if m in text}


def test_old_engine_answers_do_not_change_until_reload(work: Settings) -> None:
    """The issue's case: after one ``remove`` every answer of the running engine changed (lemma
    sets were read by path from the new index with the old ids). Now they stay exactly the same
    until ``reload()``, after which the removed document is gone."""
    from search.engine import Engine

    engine = Engine.from_settings(work)
    before = answer_views(engine)
    assert "A市" in answered_municipalities(before)  # the removed document answers some question
    seisaku_remove(work, REMOVED)

    assert answer_views(engine) == before
    assert REMOVED in {d["doc_id"] for d in engine.documents()}

    engine.reload()
    after = answer_views(engine)
    assert REMOVED not in {d["doc_id"] for d in engine.documents()}
    assert "A市" not in answered_municipalities(after)
    assert answered_municipalities(after) == answered_municipalities(before) - {"A市"}


def test_pinned_engine_keeps_its_snapshot_across_reload(work: Settings) -> None:
    """``Engine.pinned()`` (for a view that searches several times) keeps the snapshot it was
    made on even when the engine it came from reloads; the engine itself moves on."""
    from search.engine import Engine

    engine = Engine.from_settings(work)
    pinned = engine.pinned()
    before = answer_views(pinned)
    seisaku_remove(work, REMOVED)
    engine.reload()
    assert answer_views(pinned) == before
    assert "A市" not in answered_municipalities(answer_views(engine))


def test_chunks_of_an_old_snapshot_get_no_lemmas_of_the_new_one(work: Settings) -> None:
    """Chunks a search returned before ``reload()`` are not looked up in the new index (whose
    ids and rows are different): they get None, so the answer views tokenise their own text."""
    from search.engine import Engine

    engine = Engine.from_settings(work)
    chunks = [r.chunk for r in engine.search("学校給食 窓口 集会所 ごみ処理", k=10, mode="bm25")]
    assert chunks and all(x is not None for x in engine.lemma_sets(chunks))
    seisaku_remove(work, REMOVED)
    engine.reload()
    assert engine.lemma_sets(chunks) == [None] * len(chunks)
    fresh = [r.chunk for r in engine.search("集会所 ごみ処理", k=10, mode="bm25")]
    assert fresh and all(x is not None for x in engine.lemma_sets(fresh))


def test_open_store_reads_its_own_files_after_the_swap(work: Settings) -> None:
    """Everything an open ``IndexStore`` reads later — lemma sets, stored terms, embedding keys —
    comes from the directory it was opened on, after a build renamed it away and deleted it."""
    from index.store import IndexStore

    store = IndexStore.open(work.index_dir)
    ids = list(range(len(store.chunks)))
    before = (store.lemma_sets(ids), store.chunk_terms(), store.embed_keys())
    assert len(before[0]) == len(ids) and len(before[2]) == len(ids)
    seisaku_remove(work, REMOVED)
    assert not [p for p in work.index_dir.parent.iterdir() if ".old-" in p.name]  # the old files are deleted
    assert (store.lemma_sets(ids), store.chunk_terms(), store.embed_keys()) == before
    new = IndexStore.open(work.index_dir)
    assert len(new.chunks) < len(store.chunks) and REMOVED not in new.documents


def test_lemma_sets_from_many_threads(work: Settings) -> None:
    """The snapshot's one SQLite connection serves concurrent requests (the app runs 4 at once)."""
    from index.store import IndexStore

    store = IndexStore.open(work.index_dir)
    ids = list(range(len(store.chunks)))
    expected = store.lemma_sets(ids)
    errors: list[BaseException] = []
    results: list[dict[int, frozenset[str]]] = []

    def worker() -> None:
        try:
            for _ in range(50):
                results.append(store.lemma_sets(ids))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 200 and all(r == expected for r in results)


def test_open_during_a_swap_reads_one_directory(work: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When a build swaps the directory while ``IndexStore.open`` reads it, the store is opened
    again from the new directory instead of mixing files of the two."""
    from index.store import IndexStore

    old_copy = tmp_path / "old-index"
    shutil.copytree(work.index_dir, old_copy)
    seisaku_remove(work, REMOVED)
    new_copy = tmp_path / "new-index"
    shutil.copytree(work.index_dir, new_copy)
    shutil.rmtree(work.index_dir)
    shutil.copytree(old_copy, work.index_dir)

    real = IndexStore._open_dir.__func__
    calls = []

    def swapping(cls: type, asked: Path, path: Path, **kw: Any) -> IndexStore:
        store = real(cls, asked, path, **kw)
        calls.append(len(store.chunks))
        if len(calls) == 1:  # a build swaps the new index in right after this attempt read the old one
            aside = work.index_dir.with_name("index.old-1")
            work.index_dir.rename(aside)
            shutil.copytree(new_copy, work.index_dir)
            shutil.rmtree(aside)
        return store

    monkeypatch.setattr(IndexStore, "_open_dir", classmethod(swapping))
    store = IndexStore.open(work.index_dir)
    assert len(calls) == 2 and calls[0] > calls[1]
    assert REMOVED not in store.documents and len(store.chunks) == calls[1]
