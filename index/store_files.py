"""Reading an index directory's files by path, before or beside an open store: the read-only
SQLite connection, the stored terms, which directory to read (a crashed swap), and its identity.
Re-exported by :mod:`index.store`."""
from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from index.store_format import DB_FILE, INDEX_JSON
from index.tokenizer import share_terms


# --------------------------------------------------------------------------- reading


#: Rows read per locked query when a whole column is read through an open store's connection, so
#: that a build reading all terms does not hold up concurrent searches' lemma-set reads for long.
READ_BATCH_ROWS = 20000


def connect_readonly(db: Path) -> sqlite3.Connection:
    """A read-only connection to the SQLite file ``db``, usable from any thread (callers serialise
    their use of it). The file is opened now: the connection keeps reading this file even after
    a build renames its directory away and deletes it."""
    uri = "file:" + quote(str(Path(db).absolute()), safe="/") + "?mode=ro"
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def _has_lemmas_column(con: sqlite3.Connection) -> bool:
    """Whether ``chunks.lemmas`` exists (indexes written before lemmas were stored lack it)."""
    return "lemmas" in {r[1] for r in con.execute("PRAGMA table_info(chunks)")}


def _terms_sql(has_lemmas: bool) -> str:
    """The query of :func:`read_terms` for one id range ``[?, ?)``."""
    return (f"SELECT bm25_key, tokens, {'lemmas' if has_lemmas else 'NULL'} FROM chunks "
            "WHERE id >= ? AND id < ? ORDER BY id")


def _parse_terms(rows: Iterable[tuple[str, str, str | None]], pool: dict[str, str],
                 ) -> list[tuple[str, list[str], list[str] | None]]:
    """Decoded :func:`read_terms` rows, every distinct string shared through ``pool``."""
    return [(k, share_terms(json.loads(t), pool), share_terms(json.loads(lm), pool) if lm else None)
            for k, t, lm in rows]


def read_terms(index_path: Path) -> list[tuple[str, list[str], list[str] | None]]:
    """``(bm25_key, BM25 terms, lemma list or None)`` of every chunk of the index at
    ``index_path``, in FAISS-id order, each distinct string shared (:func:`share_terms`); the
    lemma list is None for an index written before ``chunks.lemmas`` existed.

    Reads the directory as it is now; an open :class:`IndexStore` reads its own snapshot with
    :meth:`IndexStore.chunk_terms` instead."""
    con = connect_readonly(Path(index_path) / DB_FILE)
    try:
        pool: dict[str, str] = {}
        every_id = (0, 1 << 62)
        return _parse_terms(con.execute(_terms_sql(_has_lemmas_column(con)), every_id), pool)
    finally:
        con.close()


def _rebuild_hint(index_dir: Path) -> str:
    return f"`seisaku build --index {index_dir}`"


def resolve_index_dir(index_dir: Path) -> Path:
    """The directory to read: ``index_dir``, or — if a build crashed between its two renames —
    the previous index it had moved aside (``<index_dir>.old-<pid>``)."""
    index_dir = Path(index_dir)
    if (index_dir / INDEX_JSON).is_file():
        return index_dir
    if not index_dir.exists() and index_dir.parent.is_dir():
        olds = sorted(
            (p for p in index_dir.parent.glob(index_dir.name + ".old-*") if (p / INDEX_JSON).is_file()),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        if olds:
            return olds[0]
    return index_dir


#: :meth:`IndexStore.open` opens the files again when a build swapped the directory meanwhile;
#: a build takes seconds between swaps, so a second attempt normally suffices.
OPEN_ATTEMPTS = 3


def _dir_identity(path: Path) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the directory ``path`` (None when absent): a build swaps a new
    directory in by rename, which changes it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


#: Bytes read per call when warming the page cache (:func:`read_through`).
WARM_BLOCK = 8 << 20


def read_through(paths: Iterable[Path], block: int = WARM_BLOCK) -> int:
    """Read each existing file of ``paths`` once, start to end, into one reused buffer; return
    the bytes read. Afterwards the files' pages are in the OS page cache, so the memory-mapped
    reads of the first searches after a cold start (posting lists, IVF lists, stored vectors) do
    not wait on the disk. Nothing stays in this process's memory; a missing file is skipped."""
    buf = bytearray(block)
    total = 0
    for p in paths:
        try:
            with open(p, "rb", buffering=0) as f:
                while n := f.readinto(buf):
                    total += n
        except OSError:
            continue
    return total

