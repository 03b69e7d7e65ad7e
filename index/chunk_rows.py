"""The chunks of one open index, read from its SQLite snapshot by id when they are needed.

An :class:`index.store.IndexStore` keeps in memory only what a search needs for every chunk
(its filter group, the FAISS and BM25 structures); a chunk's text and metadata are read when a
result, an answer view or a document listing shows it (docs/serving.md). :class:`ChunkRows` is
that list: ``rows[i]``, ``rows.get_many(ids)`` (one query per 500 ids) and iteration (batches) read
through the store's one read-only connection, so every read comes from the snapshot the store
was opened on.

Identity: while a caller holds a chunk, asking for the same id again gives the *same* object
(a weak identity map), so "is this chunk of this snapshot" stays an ``is`` test; a bounded LRU
keeps the most recently read chunks alive as well.
"""
from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

from corpus.memo import LockedCache
from corpus.records import Chunk
from index.store_format import row_to_chunk

#: Chunks kept alive after they were read (most recent first out last); a few MiB.
LRU_SIZE = 2048
#: Ids per ``IN (…)`` query and rows per batch of an iteration.
IDS_PER_QUERY = 500
ITER_BATCH = 5000

Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


class ChunkRows(Sequence[Chunk]):
    """A read-only sequence of the ``n`` chunks of one snapshot (position = FAISS id), read on
    demand through ``query`` (the store's locked query function) from the columns ``cols``."""

    def __init__(self, query: Query, n: int, cols: list[str], lru_size: int = LRU_SIZE) -> None:
        self._query = query
        self._n = int(n)
        self._cols = list(cols)
        self._select = f"SELECT id, {', '.join(self._cols)} FROM chunks"
        self._alive: weakref.WeakValueDictionary[int, Chunk] = weakref.WeakValueDictionary()
        #: ``id(object)`` → FAISS id of every chunk object alive that this snapshot handed out.
        self._id_of_object: dict[int, int] = {}
        #: The last ``lru_size`` chunks read, kept alive (the project's one LRU, corpus.memo).
        self._lru: LockedCache[int, Chunk] = LockedCache(int(lru_size))
        self._lock = threading.Lock()  # guards the identity map

    def __len__(self) -> int:
        return self._n

    def _remember(self, i: int, row: tuple[Any, ...]) -> Chunk:
        """The chunk of row ``row`` (id ``i``): the object already handed out for ``i`` if any."""
        with self._lock:
            c = self._alive.get(i)
            if c is None:
                c = row_to_chunk(self._cols, row)
                self._alive[i] = c
                self._id_of_object[id(c)] = i
                weakref.finalize(c, self._id_of_object.pop, id(c), None)
        self._lru.put(i, c)
        return c

    def _known(self, i: int) -> Chunk | None:
        with self._lock:
            c = self._alive.get(i)
        if c is not None:
            self._lru.get(i)  # now the most recently used, when it is still kept
        return c

    def get_many(self, ids: Sequence[int]) -> list[Chunk]:
        """The chunks ``ids`` (in that order; repeats allowed), reading the unknown ones with one
        query per :data:`IDS_PER_QUERY` ids. Raises IndexError for an id out of range."""
        ids = [int(i) for i in ids]
        for i in ids:
            if not 0 <= i < self._n:
                raise IndexError(f"chunk id {i} out of range (0..{self._n - 1})")
        got: dict[int, Chunk] = {}
        missing = []
        for i in dict.fromkeys(ids):
            c = self._known(i)
            if c is None:
                missing.append(i)
            else:
                got[i] = c
        for a in range(0, len(missing), IDS_PER_QUERY):
            part = missing[a : a + IDS_PER_QUERY]
            for row in self._query(f"{self._select} WHERE id IN ({','.join('?' * len(part))})", part):
                got[int(row[0])] = self._remember(int(row[0]), row[1:])
        return [got[i] for i in ids]

    @overload
    def __getitem__(self, i: int) -> Chunk: ...

    @overload
    def __getitem__(self, i: slice) -> list[Chunk]: ...

    def __getitem__(self, i: int | slice) -> Chunk | list[Chunk]:
        if isinstance(i, slice):
            return self.get_many(range(*i.indices(self._n)))
        i = int(i)
        if i < 0:
            i += self._n
        return self.get_many([i])[0]

    def __iter__(self) -> Iterator[Chunk]:
        """Every chunk in id order, read in batches of :data:`ITER_BATCH` rows (each one query)."""
        for a in range(0, self._n, ITER_BATCH):
            for row in self._query(f"{self._select} WHERE id >= ? AND id < ? ORDER BY id", (a, a + ITER_BATCH)):
                yield self._remember(int(row[0]), row[1:])

    def of_doc(self, doc_id: str) -> list[Chunk]:
        """The chunks of document ``doc_id`` in reading order (the ``chunks_doc`` index)."""
        return [self._remember(int(row[0]), row[1:])
                for row in self._query(f"{self._select} WHERE doc_id = ? ORDER BY id", (doc_id,))]

    def id_of_object(self, chunk: Chunk) -> int | None:
        """The FAISS id of ``chunk`` when it is an object this snapshot handed out (and so still
        alive), else None: a chunk of another snapshot never matches, whatever its id."""
        i = self._id_of_object.get(id(chunk))
        return i if i is not None and self._alive.get(i) is chunk else None

    def id_of(self, chunk_id: str) -> int | None:
        """The FAISS id of ``chunk_id`` (the UNIQUE index on ``chunks.chunk_id``), or None."""
        rows = self._query("SELECT id FROM chunks WHERE chunk_id = ?", (chunk_id,))
        return int(rows[0][0]) if rows else None

    def cached(self) -> int:
        """How many chunks are held in memory now (alive anywhere or in the LRU)."""
        return len(self._alive)

    def __repr__(self) -> str:
        return f"ChunkRows(n={self._n}, cached={self.cached()})"
