"""The on-disk format of an index directory: file names, the format version, the SQLite schema.

Shared by the writer (:mod:`index.store_write`) and the reader (:mod:`index.store`): the
:class:`DocumentRecord` record, the passage keys (:func:`embed_key`, :func:`bm25_text`), the
``chunks``/``documents``/``meta`` tables (:func:`_create_schema`) and their decoding
(:func:`_read_sqlite`). Layout: docs/index-format.md.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corpus.records import Chunk, DocumentMeta, IngestMessage
from index.errors import IndexMismatchError

#: Bump when the layout or the meaning of a file changes. 2: the ``chunk_groups``/``chunk_runs``
#: tables (the filter columns, read at open instead of every chunk) and ``vectors.f16.npy`` (the
#: stored vectors of the compressed FAISS kinds, re-scored from it).
FORMAT_VERSION = 2
#: Versions this program reads: a format-1 index opens (its filter groups computed from the chunk
#: columns at open, slower at scale); anything else must be rebuilt.
READABLE_FORMATS = (1, 2)

INDEX_JSON = "index.json"
DB_FILE = "index.sqlite"
FAISS_FILE = "dense.faiss"
BM25_DIR = "bm25"
CACHE_DIR = "cache"
CACHE_DB = "embeddings.sqlite"
#: float16 ``(n_chunks, dim)`` array (``numpy.save``), memory-mapped at open; written for the
#: FAISS kinds that hold compressed codes (``index.faiss_index.RESCORE_KINDS``).
VECTORS_FILE = "vectors.f16.npy"
#: The chunk columns a filter reads (``search.filters.chunk_matches``), in this order.
GROUP_COLUMNS = ("municipality", "prefecture", "kind", "year", "doc_id")

#: Extra columns of the chunks table besides the Chunk fields.
_EXTRA_CHUNK_COLUMNS = ("tokens", "embed_key", "bm25_key", "lemmas")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class DocumentRecord(DocumentMeta):
    """One indexed document: its manifest row (the :class:`~corpus.records.DocumentMeta` fields;
    ``doc_id`` is its ``path``; ``extra`` is not stored) plus what the build learned about it."""

    sha256: str = ""
    n_chunks: int = 0
    messages: list[IngestMessage] = field(default_factory=list, hash=False)

    @classmethod
    def of(cls, meta: DocumentMeta, *, sha256: str, n_chunks: int, messages: list[IngestMessage]) -> "DocumentRecord":
        """The record of the document of manifest row ``meta``."""
        return cls(**{f.name: getattr(meta, f.name) for f in dataclasses.fields(DocumentMeta)},
                   sha256=sha256, n_chunks=n_chunks, messages=messages)

    @property
    def ocr_pages(self) -> int:
        """How many pages of the document were read with OCR (the reader's per-page info
        messages; 0 in indexes built before OCR)."""
        return ocr_page_count(self.messages)


def ocr_page_count(messages: Iterable[IngestMessage]) -> int:
    """The number of distinct pages that ``messages`` say were read with OCR."""
    from corpus.readers.ocr import OCR_READ

    return len({m.page for m in messages if m.severity == "info" and m.message == OCR_READ})


def sha256_text(text: str) -> str:
    """Hex sha256 of a UTF-8 string."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embed_key(passage_prompt: str, embed_text: str) -> str:
    """The embedding-cache key of a passage: sha256 of the passage prompt + its embed text."""
    return sha256_text((passage_prompt or "") + "\x1f" + embed_text)


def bm25_text(chunk: Chunk) -> str:
    """The text BM25 indexes for a chunk: its ``embed_text`` (headings + text), else ``text``."""
    return chunk.embed_text or chunk.text


# --------------------------------------------------------------------------- SQLite schema


def _chunk_columns() -> list[tuple[str, str]]:
    """``(name, sqlite type)`` for every Chunk field; non-scalar fields are stored as JSON text."""
    cols = []
    for f in dataclasses.fields(Chunk):
        t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        cols.append((f.name, "INTEGER" if t == "int" else "TEXT"))
    return cols


@functools.lru_cache(maxsize=None)
def _is_json_field(name: str) -> bool:
    """True for Chunk fields stored as JSON text (not str or int); cached: called per row and field."""
    f = {f.name: f for f in dataclasses.fields(Chunk)}[name]
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return t not in ("str", "int")


def _create_schema(con: sqlite3.Connection) -> None:
    cols = ",\n  ".join(f"{n} {t}" for n, t in _chunk_columns() if n != "chunk_id")
    con.executescript(
        f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE documents (
  doc_id TEXT PRIMARY KEY, municipality TEXT, prefecture TEXT, title TEXT, year TEXT, kind TEXT,
  url TEXT, sha256 TEXT, n_chunks INTEGER, messages TEXT
);
CREATE TABLE chunks (
  id INTEGER PRIMARY KEY,
  chunk_id TEXT UNIQUE NOT NULL,
  {cols},
  tokens TEXT NOT NULL,
  embed_key TEXT NOT NULL,
  bm25_key TEXT NOT NULL,
  lemmas TEXT
);
CREATE INDEX chunks_doc ON chunks(doc_id);
CREATE TABLE chunk_groups (
  gid INTEGER PRIMARY KEY, municipality TEXT, prefecture TEXT, kind TEXT, year TEXT, doc_id TEXT
);
CREATE TABLE chunk_runs (first_id INTEGER PRIMARY KEY, gid INTEGER NOT NULL);
"""
    )


@dataclass(frozen=True)
class ChunkGroup:
    """The filter columns shared by a run of chunks (:data:`GROUP_COLUMNS`): what
    ``search.filters.chunk_matches`` reads of a chunk, kept in memory for every chunk through
    its group id."""

    municipality: str
    prefecture: str
    kind: str
    year: str
    doc_id: str


class GroupRuns:
    """Collects the ``chunk_groups`` and ``chunk_runs`` rows while chunks are written in id order:
    ``add(chunk)`` for each, then :attr:`groups` (gid order) and :attr:`runs` (``(first_id, gid)``
    where the group changes)."""

    def __init__(self) -> None:
        self._gid: dict[ChunkGroup, int] = {}
        self.groups: list[ChunkGroup] = []
        self.runs: list[tuple[int, int]] = []
        self._n = 0

    def add(self, chunk: Any) -> None:
        """Record the next chunk (id = the number added before it)."""
        self.add_values([getattr(chunk, c) for c in GROUP_COLUMNS])

    def add_values(self, values: Sequence[Any]) -> None:
        """Record the next chunk by its :data:`GROUP_COLUMNS` values."""
        self.add_run(self._n, values)
        self._n += 1

    def add_run(self, first_id: int, values: Sequence[Any]) -> None:
        """Record that chunks from ``first_id`` on (until the next run) have the
        :data:`GROUP_COLUMNS` ``values`` (for writers that merge runs of several parts)."""
        key = ChunkGroup(*(v or "" for v in values))
        g = self._gid.get(key)
        if g is None:
            g = self._gid[key] = len(self.groups)
            self.groups.append(key)
        if not self.runs or self.runs[-1][1] != g:
            self.runs.append((int(first_id), g))

    def group_of(self) -> np.ndarray:
        """The read-only int32 group id of every chunk added so far (:func:`runs_to_group_of`)."""
        return runs_to_group_of(np.array(self.runs, dtype=np.int64).reshape(-1, 2), self._n)

    def write(self, con: sqlite3.Connection) -> None:
        """Insert the collected rows into ``con`` (tables of :func:`_create_schema`)."""
        con.executemany("INSERT INTO chunk_groups VALUES (?,?,?,?,?,?)",
                        [(g, *dataclasses.astuple(k)) for g, k in enumerate(self.groups)])
        con.executemany("INSERT INTO chunk_runs VALUES (?,?)", self.runs)


def _has_table(con: sqlite3.Connection, name: str) -> bool:
    return con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None


def runs_to_group_of(runs: np.ndarray, n: int) -> np.ndarray:
    """The read-only int32 group id of each of ``n`` chunks from ``(first_id, gid)`` rows
    (first ids ascending, the first 0): each run lasts until the next one starts."""
    group_of = np.repeat(runs[:, 1].astype(np.int32), np.diff(np.append(runs[:, 0], n)))
    group_of.setflags(write=False)
    return group_of


def chunk_groups(chunks: Iterable[Any]) -> tuple[list[ChunkGroup], np.ndarray]:
    """``(groups, group_of)`` of chunks (or anything with the :data:`GROUP_COLUMNS` attributes)
    given in id order: what :func:`_read_groups` reads from a format-2 file."""
    acc = GroupRuns()
    for c in chunks:
        acc.add(c)
    return acc.groups, acc.group_of()


def _read_groups(con: sqlite3.Connection, n: int) -> tuple[list[ChunkGroup], np.ndarray]:
    """``(groups, group_of)``: the filter-column groups and the int32 group id of each of the
    ``n`` chunks (read-only array). From ``chunk_groups``/``chunk_runs`` (format 2), else from a
    scan of the chunk columns (format 1)."""
    if _has_table(con, "chunk_runs"):
        groups = [ChunkGroup(*(v or "" for v in r)) for r in con.execute(
            f"SELECT {', '.join(GROUP_COLUMNS)} FROM chunk_groups ORDER BY gid")]
        runs = np.array(con.execute("SELECT first_id, gid FROM chunk_runs ORDER BY first_id").fetchall(),
                        dtype=np.int64).reshape(-1, 2)
        if n and (len(runs) == 0 or runs[0, 0] != 0 or runs[-1, 0] >= n):
            raise IndexMismatchError("chunk_runs does not cover the chunks; rebuild with `seisaku build`")
        group_of = runs_to_group_of(runs, n)
    else:
        groups, group_of = chunk_groups(ChunkGroup(*(v or "" for v in row)) for row in con.execute(
            f"SELECT {', '.join(GROUP_COLUMNS)} FROM chunks ORDER BY id"))
    if len(group_of) != n:
        raise IndexMismatchError(f"{len(group_of)} chunk groups for {n} chunks; rebuild with `seisaku build`")
    return groups, group_of


# --------------------------------------------------------------------------- reading


def chunk_fields_in(con: sqlite3.Connection) -> list[str]:
    """The :class:`Chunk` fields stored in this file's ``chunks`` table (an older file may lack
    some: they get their defaults)."""
    have = [r[1] for r in con.execute("PRAGMA table_info(chunks)")]
    known = {f.name for f in dataclasses.fields(Chunk)}
    return [c for c in have if c in known]


def row_to_chunk(cols: list[str], values: Iterable[Any]) -> Chunk:
    """The :class:`Chunk` of one ``chunks`` row: ``values`` of the columns ``cols``."""
    d: dict[str, Any] = {}
    for name, v in zip(cols, values):
        if _is_json_field(name):
            v = json.loads(v) if v else None
            if name == "section_path":
                v = tuple(v or ())
            elif v is None:
                v = {}
        d[name] = v
    return Chunk(**d)


def _read_sqlite(con: sqlite3.Connection, db: Path) -> tuple[list[Chunk], dict[str, DocumentRecord]]:
    """Every chunk (ordered by FAISS id) and the documents through ``con``, the open
    ``index.sqlite`` at ``db`` (named in messages); ``con`` stays open. (An open
    ``IndexStore`` reads chunks lazily instead: ``index.chunk_rows``.)"""
    cols = chunk_fields_in(con)
    chunks: list[Chunk] = []
    expected_id = 0
    for row in con.execute(f"SELECT id, {', '.join(cols)} FROM chunks ORDER BY id"):
        if row[0] != expected_id:
            raise IndexMismatchError(f"{db}: chunk ids are not contiguous; rebuild with `seisaku build`")
        expected_id += 1
        chunks.append(row_to_chunk(cols, row[1:]))
    return chunks, read_documents(con)


def read_documents(con: sqlite3.Connection) -> dict[str, DocumentRecord]:
    """``doc_id`` → :class:`DocumentRecord` of the ``documents`` table, manifest order."""
    documents: dict[str, DocumentRecord] = {}
    for row in con.execute(
        "SELECT doc_id, municipality, prefecture, title, year, kind, url, sha256, n_chunks, messages "
        "FROM documents ORDER BY rowid"
    ):
        msgs = [IngestMessage(**m) for m in json.loads(row[9] or "[]")]
        documents[row[0]] = DocumentRecord(*row[:7], sha256=row[7], n_chunks=row[8], messages=msgs)
    return documents
