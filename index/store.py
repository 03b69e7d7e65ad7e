"""One index directory: SQLite (documents, chunks, BM25 terms) + FAISS + bm25s + index.json.

Layout (see docs/index-format.md)::

    <index_dir>/
      index.json              format version, model, dimension, prompts, tokeniser, fingerprint…
      index.sqlite            tables ``documents``, ``chunks`` (row id = FAISS id), ``chunk_groups``,
                              ``chunk_runs`` (filter columns), ``meta``
      dense.faiss             faiss.write_index: IndexFlatIP, IndexIVFFlat, IndexIVFScalarQuantizer,
                              IndexIVFPQ or IndexHNSWFlat (inner product)
      vectors.f16.npy         float16 vectors (compressed FAISS kinds only; memory-mapped, re-scoring)
      bm25/                   bm25s.BM25.save() files (loaded with mmap)
      cache/embeddings.sqlite embedding cache keyed by (model_id, sha256(passage prompt + text))

:class:`IndexStore` opens and checks a directory; :func:`write_store` (:mod:`index.store_write`)
writes one (the build module writes into a temporary sibling directory and swaps it in
atomically); file names, records and the SQLite schema are :mod:`index.store_format`.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corpus.memo import LockedCache
from corpus.records import Chunk
from index.embedding_cache import EmbeddingCache  # re-exported
from index.errors import IndexMismatchError, IndexMissingError
from index.chunk_rows import ChunkRows
from index.faiss_index import (
    DEFAULT_EF_SEARCH,
    DEFAULT_NPROBE,
    RESCORE_FACTOR,
    RESCORE_MIN,
    faiss_kind,
    needs_rescoring,
    set_ef_search,
    set_nprobe,
)
from index.store_format import (  # re-exported: the format's names are imported from here
    BM25_DIR,
    CACHE_DB,
    CACHE_DIR,
    DB_FILE,
    FAISS_FILE,
    FORMAT_VERSION,
    INDEX_JSON,
    READABLE_FORMATS,
    VECTORS_FILE,
    ChunkGroup,
    DocumentRecord,
    _read_groups,
    chunk_groups,
    _read_sqlite,
    chunk_fields_in,
    read_documents,
    bm25_text,
    embed_key,
    ocr_page_count,
    sha256_text,
)
from index.store_search import BM25Postings, _faiss_search, best_k, bm25_all_scores, rescore
from index.store_write import IndexRows, write_store  # re-exported
from index.tokenizer import Tokenizer

__all__ = [
    "BM25_DIR", "CACHE_DB", "CACHE_DIR", "DB_FILE", "FAISS_FILE", "FORMAT_VERSION", "INDEX_JSON",
    "DocumentRecord", "EmbeddingCache", "IndexStore", "bm25_text", "connect_readonly", "embed_key",
    "IndexRows", "ocr_page_count", "read_terms", "resolve_index_dir", "sha256_text", "write_store", "_read_sqlite",
]


#: ``dense_search(allowed=…)`` with more allowed ids than this uses a bitmap selector, else a batch.
BITMAP_SELECTOR_MIN = 4096
#: ``dense_search(allowed=…)`` on a compressed index (stored float16 vectors) with at most this
#: many allowed ids scores them all exactly from the vectors (≤ 15 MiB read) instead of probing
#: every IVF list through a selector (at 5M chunks ≈ 170 ms for one municipality's ≈ 3k chunks).
EXACT_SUBSET_MAX = 20_000
#: BM25 score arrays kept per store (by query term ids): 4 bytes per chunk each.
BM25_CACHE_SIZE = 4


from index.store_files import (  # noqa: E402 - re-exported: index.store is the reading API
    OPEN_ATTEMPTS,
    READ_BATCH_ROWS,
    _dir_identity,
    _has_lemmas_column,
    _parse_terms,
    _rebuild_hint,
    _terms_sql,
    connect_readonly,
    read_terms,
    read_through,
    resolve_index_dir,
)


class IndexStore:
    """A loaded, checked index directory: one immutable snapshot of it.

    Attributes: ``path``, ``info`` (the index.json dict), ``chunks`` (a sequence of :class:`Chunk`;
    position = FAISS id = SQLite ``chunks.id``: an opened store's is a :class:`ChunkRows`, which
    reads each chunk from SQLite when it is asked for), ``documents`` (``doc_id`` →
    :class:`DocumentRecord`, manifest order), ``faiss`` (the FAISS index), ``bm25`` (a
    ``bm25s.BM25`` with memory-mapped arrays, or None when the index has no chunks),
    ``tokenizer`` (:class:`Tokenizer` matching the one the index was built with).

    In memory for every chunk (what a search needs, docs/serving.md): its filter group
    (:meth:`filter_groups`: an int32 per chunk and one :class:`ChunkGroup` per distinct
    municipality/prefecture/kind/year/document) and the BM25 vocabulary; the FAISS index, the
    bm25s score arrays and the float16 vectors of the compressed FAISS kinds are memory-mapped.

    Everything read later (lemma sets, stored terms, embedding keys) is read through the SQLite
    connection opened with the store, never by path: a build swaps a new directory in by rename,
    and an open store must keep answering from the files it was opened on (issue 14, point 4).
    The connection is shared by the threads of a server and used under a lock.
    """

    def __init__(
        self,
        path: Path,
        info: dict[str, Any],
        chunks: Sequence[Chunk],
        documents: dict[str, DocumentRecord],
        faiss_index: Any,
        bm25: Any,
        tokenizer: Tokenizer,
        db: sqlite3.Connection | None = None,
        *,
        groups: tuple[list[ChunkGroup], np.ndarray] | None = None,
        stored_vectors: np.ndarray | None = None,
    ) -> None:
        """Use :meth:`open`; the constructor only assembles already loaded parts. ``db`` is the
        open read-only connection to this snapshot's index.sqlite (None: no stored terms or
        lemmas are available, as for a store assembled in memory). ``chunks`` is a list (a store
        assembled in memory) or the :class:`ChunkRows` of ``db``; ``groups`` the filter groups
        (computed from a list of chunks when None); ``stored_vectors`` the ``(n, dim)`` vectors
        candidates are re-scored from (the compressed FAISS kinds)."""
        self.path = Path(path)
        self.info = info
        self.chunks = chunks
        self.documents = documents
        self.faiss = faiss_index
        self.bm25 = bm25
        #: The Lucene variant's posting lists, for top-k and per-chunk BM25 (None for variants
        #: with a non-occurrence score, which sum every chunk).
        self._postings = (BM25Postings(bm25, int(bm25.scores.get("num_docs") or len(chunks))) if bm25 is not None
                          and getattr(bm25, "nonoccurrence_array", None) is None else None)
        self.tokenizer = tokenizer
        self._rows = chunks if isinstance(chunks, ChunkRows) else None
        self._by_chunk_id = None if self._rows is not None else {c.chunk_id: i for i, c in enumerate(chunks)}
        self._groups, self._group_of = groups if groups is not None else chunk_groups(chunks)
        self._vectors = stored_vectors
        self._db = db
        self._db_lock = threading.Lock()
        self._has_lemmas = db is not None and _has_lemmas_column(db)
        #: The last BM25_CACHE_SIZE score arrays of :meth:`bm25_scores` (the project's one LRU).
        self._bm25_cache: LockedCache[tuple[int, ...], np.ndarray] = LockedCache(BM25_CACHE_SIZE)

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        index_dir: Path | str,
        *,
        expected_model_id: str | None = None,
        expected_dim: int | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
        mmap: bool = True,
    ) -> "IndexStore":
        """Load and check the index at ``index_dir``.

        Raises :class:`IndexMissingError` when there is no index, :class:`IndexMismatchError` when it
        was built with another format version, tokeniser, model (``expected_model_id``, compared with
        the embedder's ``model_id`` and the configured model name) or dimension (``expected_dim``).
        ``ef_search`` sets HNSW ``efSearch`` (default: the value in index.json, else 128);
        ``nprobe`` sets IVF ``nprobe`` (default: the value in index.json, else 64);
        ``mmap`` memory-maps the BM25 arrays and the FAISS index (``faiss.IO_FLAG_MMAP``).

        All files are read from one directory: when a build swaps another directory in while
        they are being opened (the directory's identity changed), they are opened again.
        """
        asked = Path(index_dir).expanduser()
        store: IndexStore | None = None
        for attempt in range(1, OPEN_ATTEMPTS + 1):
            last = attempt == OPEN_ATTEMPTS
            path = resolve_index_dir(asked)
            before = _dir_identity(path)
            try:
                store = cls._open_dir(asked, path, expected_model_id=expected_model_id,
                                      expected_dim=expected_dim, ef_search=ef_search, nprobe=nprobe, mmap=mmap)
            except (IndexMissingError, IndexMismatchError):
                if last or _dir_identity(path) == before:
                    raise
                continue  # swapped while opening: what failed was half of two directories
            if last or _dir_identity(path) == before:
                break
            store.close()
        assert store is not None
        return store

    @classmethod
    def _open_dir(
        cls,
        asked: Path,
        path: Path,
        *,
        expected_model_id: str | None,
        expected_dim: int | None,
        ef_search: int | None,
        nprobe: int | None,
        mmap: bool,
    ) -> "IndexStore":
        """One attempt of :meth:`open` on the resolved directory ``path`` (``asked``: for messages)."""
        import bm25s
        import faiss

        info_file = path / INDEX_JSON
        if not info_file.is_file():
            raise IndexMissingError(
                f"インデックスがありません: {asked}。`seisaku build` を実行してください"
                f"（別の場所なら `seisaku build --index {asked}`）。No index: run `seisaku build`."
            )
        try:
            info = json.loads(info_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise IndexMismatchError(
                f"インデックス {asked} の index.json を読めません ({e}): {_rebuild_hint(asked)} で作り直してください。"
            ) from e
        fmt = info.get("format_version")
        if fmt not in READABLE_FORMATS:
            raise IndexMismatchError(
                f"インデックス {asked} は形式バージョン {fmt} で作成されています（このプログラムは {FORMAT_VERSION}）: "
                f"{_rebuild_hint(asked)} で作り直してください。"
                f" Built with format version {fmt}, expected {FORMAT_VERSION}: run {_rebuild_hint(asked)}."
            )
        built_model = info.get("model_id", "?")
        built_setting = info.get("model") or built_model
        if expected_model_id is not None and expected_model_id not in (built_model, info.get("model")):
            raise IndexMismatchError(
                f"インデックス {asked} はモデル {built_setting} で作成されていますが、設定は {expected_model_id} です: "
                f"{_rebuild_hint(asked)} で作り直すか、SEISAKU_MODEL={built_setting} を設定してください。"
                f" Built with model {built_setting}, configured {expected_model_id}: run {_rebuild_hint(asked)}"
                f" (or set SEISAKU_MODEL={built_setting})."
            )
        dim = int(info.get("dim", -1))
        if expected_dim is not None and expected_dim != dim:
            raise IndexMismatchError(
                f"インデックス {asked} の次元 {dim} が埋め込みモデルの次元 {expected_dim} と合いません: "
                f"{_rebuild_hint(asked)} で作り直してください (or set SEISAKU_MODEL={built_setting})."
            )
        tokenizer = Tokenizer()
        if info.get("tokenizer_version") != tokenizer.version:
            raise IndexMismatchError(
                f"インデックス {asked} はトークナイザ {info.get('tokenizer_version')} で作成されています"
                f"（現在 {tokenizer.version}）: {_rebuild_hint(asked)} で作り直してください。"
            )

        db: sqlite3.Connection | None = None
        n = int(info.get("n_chunks", -1))
        try:
            db = connect_readonly(path / DB_FILE)  # opened once: the snapshot's later reads use it
            # SQLite answers a lone min() or max() from the b-tree; both in one SELECT scan the table
            lo, hi = db.execute("SELECT (SELECT min(id) FROM chunks), (SELECT max(id) FROM chunks)").fetchone()
            if n < 0 or (n and (lo, hi) != (0, n - 1)) or (not n and hi is not None):
                raise IndexMismatchError(f"{path / DB_FILE}: chunk ids {lo}..{hi} do not match n_chunks {n}; "
                                         "rebuild with `seisaku build`")
            documents = read_documents(db)
            groups = _read_groups(db, n)
            # memory-mapped: a large IVF's lists are paged in as queries probe them instead of
            # read whole at open (1.9 GB at 5M: 7 s warm, ~30 s cold); the mapping, like the
            # bm25s arrays', keeps this snapshot's file readable after a build replaces it
            index = faiss.read_index(str(path / FAISS_FILE), faiss.IO_FLAG_MMAP if mmap else 0)
            stored_vectors = None
            if needs_rescoring(faiss_kind(index)):
                stored_vectors = np.load(path / VECTORS_FILE, mmap_mode="r")
                if stored_vectors.shape != (n, dim):
                    raise ValueError(f"{VECTORS_FILE} has shape {stored_vectors.shape}, expected {(n, dim)}")
        except IndexMismatchError:
            if db is not None:
                db.close()
            raise
        except (sqlite3.Error, RuntimeError, OSError, ValueError, TypeError, KeyError) as e:
            if db is not None:
                db.close()
            raise IndexMismatchError(
                f"インデックス {asked} が壊れています（{type(e).__name__}: {str(e)[:200]}）: "
                f"{_rebuild_hint(asked)} で作り直してください。The index is damaged: run {_rebuild_hint(asked)}."
            ) from e
        if index.d != dim or index.ntotal != n:
            db.close()
            raise IndexMismatchError(
                f"インデックス {asked} が壊れています（次元 {index.d}/{dim}、ベクトル {index.ntotal}、"
                f"チャンク {n}）: {_rebuild_hint(asked)} で作り直してください。"
            )
        set_ef_search(index, ef_search or int(info.get("ef_search") or DEFAULT_EF_SEARCH))
        set_nprobe(index, nprobe or int(info.get("nprobe") or DEFAULT_NPROBE))
        bm25 = None
        if info.get("bm25") and (path / BM25_DIR).is_dir():
            try:
                bm25 = bm25s.BM25.load(str(path / BM25_DIR), mmap=mmap, load_corpus=False, show_progress=False)
            except (OSError, ValueError, KeyError, EOFError) as e:
                db.close()
                raise IndexMismatchError(
                    f"インデックス {asked} の BM25 が壊れています（{type(e).__name__}: {str(e)[:200]}）: "
                    f"{_rebuild_hint(asked)} で作り直してください。The index is damaged: run {_rebuild_hint(asked)}."
                ) from e
        store = cls(path, info, [], documents, index, bm25, tokenizer, db, groups=groups,
                    stored_vectors=stored_vectors)
        store._rows = store.chunks = ChunkRows(store._query, n, chunk_fields_in(db))
        store._by_chunk_id = None  # chunk ids are looked up in SQLite (its UNIQUE index)
        return store

    def close(self) -> None:
        """Close the snapshot's SQLite connection (also closed when the store is garbage
        collected; a server never closes a store a search may still be using)."""
        with self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- lookups ------------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        """The embedder model id the index was built with."""
        return str(self.info.get("model_id", ""))

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.info.get("dim", 0))

    def __len__(self) -> int:
        return len(self.chunks)

    def id_of(self, chunk_id: str) -> int | None:
        """The FAISS id (list position) of a chunk id, or None."""
        if self._by_chunk_id is not None:
            return self._by_chunk_id.get(chunk_id)
        assert self._rows is not None
        return self._rows.id_of(chunk_id)

    def snapshot_id(self, chunk: Chunk) -> int | None:
        """The FAISS id of ``chunk`` when it is this snapshot's own chunk object (one a search or
        a listing of this store returned), else None; no SQLite read."""
        if self._rows is not None:
            return self._rows.id_of_object(chunk)
        i = self.id_of(chunk.chunk_id)
        return i if i is not None and self.chunks[i] is chunk else None

    def doc_chunk_ids(self, doc_id: str) -> list[int]:
        """FAISS ids of one document's chunks, in reading order."""
        gs = [g for g, k in enumerate(self._groups) if k.doc_id == doc_id]
        return np.flatnonzero(np.isin(self._group_of, gs)).tolist() if gs else []

    def doc_chunks(self, doc_id: str) -> list[Chunk]:
        """One document's chunks in reading order (read from SQLite by an opened store)."""
        if self._rows is not None:
            return self._rows.of_doc(doc_id)
        return [self.chunks[i] for i in self.doc_chunk_ids(doc_id)]

    def get_chunks(self, ids: Sequence[int] | np.ndarray) -> list[Chunk]:
        """The chunks ``ids`` in that order, read with one query per 500 ids (an opened store)."""
        if self._rows is not None:
            return self._rows.get_many([int(i) for i in ids])
        return [self.chunks[int(i)] for i in ids]

    def filter_groups(self) -> tuple[list[ChunkGroup], np.ndarray]:
        """``(groups, group_of)``: the distinct filter-column values (:class:`ChunkGroup`) and the
        read-only int32 group id of every chunk: what filters and per-municipality caps read."""
        return self._groups, self._group_of

    def warm_page_cache(self) -> int:
        """Read this snapshot's memory-mapped files once into the OS page cache; the bytes read
        (:func:`index.store_files.read_through`; the app does it after opening, docs/serving.md)."""
        bm25 = sorted((self.path / BM25_DIR).glob("*.npy")) if (self.path / BM25_DIR).is_dir() else []
        return read_through([self.path / FAISS_FILE, self.path / VECTORS_FILE, *bm25])

    def municipality_of(self, i: int) -> str:
        """The municipality of chunk ``i`` (from its filter group: no SQLite read)."""
        return self._groups[int(self._group_of[int(i)])].municipality

    def doc_id_of(self, i: int) -> str:
        """The document id of chunk ``i`` (from its filter group: no SQLite read)."""
        return self._groups[int(self._group_of[int(i)])].doc_id

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of one query on this snapshot's connection, under its lock."""
        with self._db_lock:
            if self._db is None:
                raise IndexMismatchError(f"インデックス {self.path} のデータベースが開かれていません。"
                                         " The index database is not open.")
            return self._db.execute(sql, tuple(params)).fetchall()

    def _read_by_id(self, sql: str) -> Iterator[tuple[Any, ...]]:
        """Rows of ``sql`` (with ``id >= ? AND id < ?``) for every chunk, in batches of
        :data:`READ_BATCH_ROWS`, each batch one locked query."""
        for a in range(0, len(self.chunks), READ_BATCH_ROWS):
            yield from self._query(sql, (a, a + READ_BATCH_ROWS))

    def chunk_terms(self) -> tuple[list[list[str]], list[list[str]] | None]:
        """``(BM25 terms, lemma lists)`` of every chunk (position = FAISS id) in one read of this
        snapshot; the lemma lists are None for an index written before they were stored."""
        rows = _parse_terms(self._read_by_id(_terms_sql(self._has_lemmas)), {})
        lemmas = [lem for _k, _t, lem in rows]
        return [t for _k, t, _l in rows], (None if any(x is None for x in lemmas) else lemmas)  # type: ignore[misc]

    def chunk_tokens(self) -> list[list[str]]:
        """The stored BM25 terms of every chunk (position = FAISS id)."""
        return self.chunk_terms()[0]

    def chunk_lemmas(self) -> list[list[str]] | None:
        """The stored lemma list of every chunk (position = FAISS id); None for an index written
        before lemmas were stored."""
        return self.chunk_terms()[1]

    def lemma_sets(self, ids: Sequence[int]) -> dict[int, frozenset[str]]:
        """``id → lemma set`` of the chunks ``ids`` from ``chunks.lemmas`` of this snapshot (ids
        without stored lemmas are absent). Safe from any thread."""
        ids = [int(i) for i in dict.fromkeys(ids) if 0 <= int(i) < len(self.chunks)]
        if not ids or not self._has_lemmas or self._db is None:
            return {}
        out: dict[int, frozenset[str]] = {}
        for a in range(0, len(ids), 500):
            part = ids[a : a + 500]
            q = ",".join("?" * len(part))
            for i, t in self._query(f"SELECT id, lemmas FROM chunks WHERE id IN ({q})", part):
                if t:
                    out[int(i)] = frozenset(json.loads(t))
        return out

    def embed_keys(self) -> list[str]:
        """The embedding-cache key of every chunk (position = FAISS id), from this snapshot."""
        return [k for (k,) in self._read_by_id("SELECT embed_key FROM chunks WHERE id >= ? AND id < ? ORDER BY id")]

    def vectors(self, ids: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Stored (normalised) vectors of ``ids`` (all when None), shape ``(len(ids), dim)``,
        float32: from ``vectors.f16.npy`` for the compressed FAISS kinds, else from FAISS."""
        if ids is None:
            ids = np.arange(self.faiss.ntotal)
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.zeros((0, self.dim), np.float32)
        if self._vectors is not None:
            return np.asarray(self._vectors[ids], dtype=np.float32)
        return self.faiss.reconstruct_batch(ids)

    # -- search -------------------------------------------------------------------------------
    def dense_search(
        self, qvecs: np.ndarray, k: int, *, allowed: Sequence[int] | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest chunks by inner product (cosine on normalised vectors).

        ``qvecs``: one vector ``(dim,)`` or a batch ``(n, dim)``. For one vector, returns 1-D
        ``(scores, ids)`` best first, missing results removed. For a batch, returns FAISS-style
        ``(n, k')`` arrays (``k' = min(k, n_chunks)``) where id ``-1`` pads rows with fewer hits
        (HNSW, or a restrictive ``allowed``). ``allowed`` restricts the search to those FAISS ids;
        with IVF and at most ``BITMAP_SELECTOR_MIN`` allowed ids every list is probed (the selector
        rejects the other ids before any distance is computed), so a narrow filter is searched
        exactly instead of only in the ``nprobe`` lists nearest the query.
        """
        import faiss

        q = np.asarray(qvecs, dtype=np.float32)
        single = q.ndim == 1
        q = np.ascontiguousarray(q.reshape(1, -1) if single else q)
        kk = min(int(k), self.faiss.ntotal)
        if kk <= 0 or len(q) == 0:
            empty_s, empty_i = np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
            return (empty_s[0], empty_i[0]) if single else (empty_s, empty_i)
        params = None
        if allowed is not None:
            allowed_arr = np.asarray(allowed, dtype=np.int64)
            if len(allowed_arr) == 0:
                empty_s, empty_i = np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
                return (empty_s[0], empty_i[0]) if single else (empty_s, empty_i)
            if self._vectors is not None and len(allowed_arr) <= EXACT_SUBSET_MAX:
                cand = np.unique(allowed_arr[(allowed_arr >= 0) & (allowed_arr < self.faiss.ntotal)])
                scores, ids = rescore(self._vectors, q, np.broadcast_to(cand, (len(q), len(cand))),
                                      min(kk, len(cand)))
                if single:
                    keep = ids[0] >= 0
                    return scores[0][keep], ids[0][keep]
                return scores, ids
            ntotal = self.faiss.ntotal
            bits = None
            if len(allowed_arr) > BITMAP_SELECTOR_MIN:
                # a bitmap tests an id in O(1) and builds in O(ntotal/8): much cheaper than a hash
                # set of many ids (1M chunks, 200k allowed: 38 vs 67 ms per flat search)
                mask = np.zeros(ntotal, dtype=bool)
                mask[allowed_arr[(allowed_arr >= 0) & (allowed_arr < ntotal)]] = True
                bits = np.packbits(mask, bitorder="little")
                sel = faiss.IDSelectorBitmap(ntotal, faiss.swig_ptr(bits))
            else:
                sel = faiss.IDSelectorBatch(allowed_arr)
            if hasattr(self.faiss, "hnsw"):
                params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(self.faiss.hnsw.efSearch, kk))
            elif hasattr(self.faiss, "nprobe"):
                nprobe = self.faiss.nprobe if bits is not None else self.faiss.nlist
                params = faiss.SearchParametersIVF(sel=sel, nprobe=int(nprobe))
            else:
                params = faiss.SearchParameters(sel=sel)
        # the compressed kinds: more candidates from the codes, re-scored from the stored vectors
        kf = min(max(kk * RESCORE_FACTOR, RESCORE_MIN), self.faiss.ntotal) if self._vectors is not None else kk
        if allowed is not None:
            scores, ids = _faiss_search(self.faiss, q, kf, params)
            del sel, bits  # the selector reads ``bits`` until the search returns
        else:
            scores, ids = _faiss_search(self.faiss, q, kf)
        ids = ids.astype(np.int64)
        if self._vectors is not None:
            scores, ids = rescore(self._vectors, q, ids, kk)
        if single:
            keep = ids[0] >= 0
            return scores[0][keep], ids[0][keep]
        return scores, ids

    def dense_scores(self, qvec: np.ndarray, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Exact inner products of one query vector with the chunks ``ids`` (for fusion)."""
        v = self.vectors(ids)
        return v @ np.asarray(qvec, dtype=np.float32).reshape(-1)

    def _query_ids(self, query_tokens: Sequence[str]) -> list[int]:
        if self.bm25 is None:
            return []
        vocab = self.bm25.vocab_dict
        return [vocab[t] for t in dict.fromkeys(query_tokens) if t and t in vocab]

    def bm25_scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every chunk for the query terms (zeros when no term is known), read-only.
        Searches read BM25 from the posting lists (:meth:`bm25_search`, :meth:`bm25_scores_of`);
        only a BM25 variant without them sums every chunk, twice per hybrid search, so the last
        few term sets' arrays are kept."""
        ids = tuple(self._query_ids(query_tokens))
        if not ids:
            return np.zeros(len(self.chunks), np.float32)
        hit = self._bm25_cache.get(ids)
        if hit is not None:
            return hit
        scores = self._postings.sums(ids) if self._postings is not None else bm25_all_scores(
            self.bm25, ids, len(self.chunks))
        scores.setflags(write=False)
        self._bm25_cache.put(ids, scores)
        return scores

    def bm25_scores_of(self, query_tokens: Sequence[str], ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """float32 BM25 scores of the chunks ``ids`` for the query terms, equal to
        ``bm25_scores(query_tokens)[ids]`` but read from the posting lists for those chunks only."""
        ids = np.asarray(ids, dtype=np.int64)
        term_ids = self._query_ids(query_tokens)
        if not term_ids or len(ids) == 0:
            return np.zeros(len(ids), np.float32)
        if self._postings is None:
            return self.bm25_scores(query_tokens)[ids]
        uniq, inverse = np.unique(ids, return_inverse=True)
        return self._postings.scores_of(term_ids, uniq)[inverse]

    def bm25_search(
        self, query_tokens: Sequence[str], k: int, *, allowed: Sequence[int] | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` chunks by BM25 for one query's terms (repeated terms count once).

        Returns 1-D ``(scores, ids)`` best first (ties: lower id first), only chunks with a
        positive score; empty arrays when no query term occurs in the index. ``allowed``
        restricts the result to those ids. Read from the posting lists
        (``index.store_search.BM25Postings.top_k``): exact while the query's postings are few,
        from its rarest terms' candidates above (the scores are always exact).
        """
        term_ids = self._query_ids(query_tokens)
        if not term_ids or k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        a = None
        if allowed is not None:
            a = np.unique(np.asarray(allowed, dtype=np.int64))
            a = a[(a >= 0) & (a < len(self.chunks))]
        if self._postings is not None:
            return self._postings.top_k(term_ids, k, a)
        scores = self.bm25_scores(query_tokens)
        pos = np.flatnonzero(scores > 0) if a is None else a[scores[a] > 0]
        return best_k(scores[pos], pos, k)

    def __repr__(self) -> str:
        return (
            f"IndexStore({str(self.path)!r}, model={self.model_id!r}, docs={len(self.documents)}, "
            f"chunks={len(self.chunks)}, faiss={self.info.get('faiss_index')})"
        )
