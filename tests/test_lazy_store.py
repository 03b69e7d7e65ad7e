"""The lazy store (issue 13, point 3): an opened index reads chunk text and metadata from SQLite
when a result or a view shows it, and keeps in memory only what a search needs. Real index of
the bundled corpus (real model, FAISS, fugashi, bm25s); no mocks."""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.chunk_rows import ChunkRows
from index.config import Settings
from index.store import IndexStore, _read_sqlite
from index.store_format import GROUP_COLUMNS, ChunkGroup
from search.records import Filters

pytestmark = pytest.mark.slow


def _questions(dev_queries: Path) -> list[str]:
    return [json.loads(line)["query"] for line in dev_queries.read_text(encoding="utf-8").splitlines() if line.strip()]


def _materialised(store: IndexStore) -> IndexStore:
    """The same snapshot as the store used to hold it: every chunk read into a list up front."""
    assert store._db is not None
    chunks, documents = _read_sqlite(store._db, store.path / "index.sqlite")
    return IndexStore(store.path, store.info, chunks, documents, store.faiss, store.bm25, store.tokenizer, store._db)


def _engine_on(settings: Settings, store: IndexStore) -> Any:
    from search.engine import Engine

    class _Fixed(Engine):
        def _open_store(self) -> Any:
            return store

    return _Fixed(settings.index_dir, settings)


def _ranked(results: list[Any]) -> list[tuple[str, float, str]]:
    return [(r.chunk.chunk_id, round(r.score, 6), r.chunk.text) for r in results]


def test_lazy_search_equals_materialised_search(built_index: Settings, dev_queries: Path) -> None:
    """Every dev question, with and without a filter, and the answer view: the same results from
    the lazy store as from the store with every chunk in memory."""
    from search.answers import municipality_answer
    from search.engine import Engine

    lazy = Engine.from_settings(built_index)
    assert isinstance(lazy.store.chunks, ChunkRows)
    eager = _engine_on(built_index, _materialised(lazy.store))
    assert isinstance(eager.store.chunks, list)
    some_muni = lazy.municipalities()[0]
    for q in _questions(dev_queries)[::2]:
        assert _ranked(lazy.search(q, k=10)) == _ranked(eager.search(q, k=10)), q
        f = Filters(municipality=(some_muni,))
        assert _ranked(lazy.search(q, k=10, filters=f)) == _ranked(eager.search(q, k=10, filters=f)), q
    for q in _questions(dev_queries)[:4]:
        assert municipality_answer(lazy, q).to_dict() == municipality_answer(eager, q).to_dict(), q
    assert lazy.municipalities() == eager.municipalities()
    assert lazy.prefectures() == eager.prefectures() and lazy.years() == eager.years()
    doc = next(iter(lazy.store.documents))
    assert [c.to_dict() for c in lazy.document_chunks(doc)] == [c.to_dict() for c in eager.document_chunks(doc)]
    assert lazy.document_chunks("no/such/doc") == []


def test_only_search_fields_stay_in_memory(built_index: Settings) -> None:
    """After opening, no chunk is held; a search holds only the chunks it returns; what is kept
    for every chunk is its filter group (the listed columns), not its text."""
    from search.engine import Engine

    engine = Engine.from_settings(built_index)
    store = engine.store
    rows = store.chunks
    assert isinstance(rows, ChunkRows) and rows.cached() == 0
    n = len(store.chunks)
    groups, group_of = store.filter_groups()
    assert group_of.dtype == np.int32 and len(group_of) == n and not group_of.flags.writeable
    assert all(isinstance(g, ChunkGroup) for g in groups) and len(groups) < n
    assert [f for f in ChunkGroup.__dataclass_fields__] == list(GROUP_COLUMNS)
    # nothing of per-chunk size besides the group ids: no list of chunks, texts or chunk ids
    for name, value in vars(store).items():
        if isinstance(value, (list, dict, tuple)) and name != "documents":
            assert len(value) < n, name
    results = engine.search("学校給食センターの建替え", k=3)
    assert len(results) == 3
    assert rows.cached() == 3  # the three shown, nothing else
    # the same chunk object while it is held (the snapshot identity test of the engine)
    i = store.id_of(results[0].chunk.chunk_id)
    assert store.chunks[i] is results[0].chunk
    assert store.snapshot_id(results[0].chunk) == i
    other = IndexStore.open(built_index.index_dir)  # another snapshot of the same files
    assert other.snapshot_id(results[0].chunk) is None and other.snapshot_id(other.chunks[i]) == i
    assert engine.lemma_sets([results[0].chunk])[0] == store.lemma_sets([i])[i]
    assert store.municipality_of(i) == results[0].chunk.municipality
    assert store.get_chunks([i, i]) == [results[0].chunk, results[0].chunk]
    with pytest.raises(IndexError):
        store.chunks[n]
    assert [c.chunk_id for c in store.chunks[:2]] == [c.chunk_id for c in list(store.chunks)[:2]]


def test_format_1_index_still_opens(built_index: Settings, tmp_path: Path) -> None:
    """An index written before the filter-group tables (format 1) opens and searches the same;
    its groups are computed from the chunk columns."""
    from search.engine import Engine

    old = tmp_path / "index"
    shutil.copytree(built_index.index_dir, old)
    con = sqlite3.connect(old / "index.sqlite")
    con.executescript("DROP TABLE chunk_groups; DROP TABLE chunk_runs;")
    con.close()
    info = json.loads((old / "index.json").read_text(encoding="utf-8"))
    info["format_version"] = 1
    (old / "index.json").write_text(json.dumps(info), encoding="utf-8")
    new_engine = Engine.from_settings(built_index)
    old_engine = Engine.from_settings(built_index.with_overrides(index_dir=old))
    g_new, of_new = new_engine.store.filter_groups()
    g_old, of_old = old_engine.store.filter_groups()
    assert g_new == g_old and of_new.tolist() == of_old.tolist()
    q = "窓口業務のデジタル化"
    assert _ranked(new_engine.search(q, k=10)) == _ranked(old_engine.search(q, k=10))


def test_warm_page_cache_reads_every_mapped_file(built_index: Settings) -> None:
    """The app's warm-up reads the files searches memory-map (FAISS, the bm25s arrays, and the
    stored vectors where the index has them) once, whole, and nothing else (not the SQLite rows)."""
    from index.store_format import BM25_DIR, FAISS_FILE, VECTORS_FILE

    store = IndexStore.open(built_index.index_dir)
    path = Path(built_index.index_dir)
    mapped = [path / FAISS_FILE, path / VECTORS_FILE, *sorted((path / BM25_DIR).glob("*.npy"))]
    expected = sum(p.stat().st_size for p in mapped if p.is_file())
    assert expected > (path / FAISS_FILE).stat().st_size  # the bm25s arrays are there too
    assert store.warm_page_cache() == expected
