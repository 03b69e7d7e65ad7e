"""The on-disk format of an index directory: file names, the format version, the SQLite schema.

Shared by the writer (:mod:`index.store_write`) and the reader (:mod:`index.store`): the
:class:`DocumentRecord` record, the passage keys (:func:`embed_key`, :func:`bm25_text`), the
``chunks``/``documents``/``meta`` tables (:func:`_create_schema`) and their decoding
(:func:`_read_sqlite`). Layout: docs/index-format.md.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpus.records import Chunk, DocumentMeta, IngestMessage
from index.errors import IndexMismatchError

#: Bump when the layout or the meaning of a file changes; older indexes must be rebuilt.
FORMAT_VERSION = 1

INDEX_JSON = "index.json"
DB_FILE = "index.sqlite"
FAISS_FILE = "dense.faiss"
BM25_DIR = "bm25"
CACHE_DIR = "cache"
CACHE_DB = "embeddings.sqlite"

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


def _is_json_field(name: str) -> bool:
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
"""
    )


# --------------------------------------------------------------------------- reading


def _read_sqlite(con: sqlite3.Connection, db: Path) -> tuple[list[Chunk], dict[str, DocumentRecord]]:
    """Chunks (ordered by FAISS id) and documents through ``con``, the open ``index.sqlite`` at
    ``db`` (named in messages); ``con`` stays open."""
    have = [r[1] for r in con.execute("PRAGMA table_info(chunks)")]
    known = {f.name for f in dataclasses.fields(Chunk)}
    cols = [c for c in have if c in known]
    chunks: list[Chunk] = []
    expected_id = 0
    for row in con.execute(f"SELECT id, {', '.join(cols)} FROM chunks ORDER BY id"):
        if row[0] != expected_id:
            raise IndexMismatchError(f"{db}: chunk ids are not contiguous; rebuild with `seisaku build`")
        expected_id += 1
        d: dict[str, Any] = {}
        for name, v in zip(cols, row[1:]):
            if _is_json_field(name):
                v = json.loads(v) if v else None
                if name == "section_path":
                    v = tuple(v or ())
                elif v is None:
                    v = {}
            d[name] = v
        chunks.append(Chunk(**d))
    documents: dict[str, DocumentRecord] = {}
    for row in con.execute(
        "SELECT doc_id, municipality, prefecture, title, year, kind, url, sha256, n_chunks, messages "
        "FROM documents ORDER BY rowid"
    ):
        msgs = [IngestMessage(**m) for m in json.loads(row[9] or "[]")]
        documents[row[0]] = DocumentRecord(*row[:7], sha256=row[7], n_chunks=row[8], messages=msgs)
    return chunks, documents
