"""Writing one complete index directory (:func:`write_store`): SQLite, FAISS, bm25s, index.json.

The build module writes into a temporary sibling directory and swaps it in atomically; the
format is :mod:`index.store_format`, read back by :class:`index.store.IndexStore`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corpus.records import Chunk
from index.store_format import (
    _EXTRA_CHUNK_COLUMNS,
    BM25_DIR,
    DB_FILE,
    FAISS_FILE,
    FORMAT_VERSION,
    INDEX_JSON,
    VECTORS_FILE,
    DocumentRecord,
    GroupRuns,
    _chunk_columns,
    _create_schema,
    _is_json_field,
    bm25_text,
    sha256_text,
)
from index.tokenizer import text_lemmas


def _fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (best effort on platforms without dir fsync)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for fn in filenames:
            fd = os.open(os.path.join(dirpath, fn), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        try:
            fd = os.open(dirpath, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


@dataclass
class IndexRows:
    """What a new index holds besides its vectors, as the build, add and remove pass it to
    :func:`write_store`: row ``i`` (FAISS id ``i``) is ``chunks[i]`` with its BM25 terms
    ``tokens[i]``, its embedding-cache key ``embed_keys[i]`` and its lemmas ``lemmas[i]`` (the chunk
    text's :func:`index.tokenizer.text_lemmas`; computed on writing when ``None``)."""

    chunks: Sequence[Chunk]
    tokens: Sequence[list[str]]
    embed_keys: Sequence[str]
    documents: Sequence[DocumentRecord]
    lemmas: Sequence[Sequence[str]] | None = None


def write_store(
    target: Path,
    rows: IndexRows,
    *,
    vectors: np.ndarray,
    info: dict[str, Any],
    faiss_index_kind: str,
    progress: bool = False,
) -> dict[str, Any]:
    """Write a complete index of ``rows`` into the (new, empty) directory ``target`` and fsync it.

    ``vectors[i]`` is the vector of row ``i`` (FAISS id ``i``). The compressed FAISS kinds
    (``index.faiss_index.RESCORE_KINDS``) also get the vectors as float16 in ``vectors.f16.npy``,
    which searches re-score their candidates from. ``info`` is completed with counts and the FAISS
    kind and written last as ``index.json``; the completed dict is returned. The embedding cache
    (``cache/``) is written by the caller.
    """
    import bm25s
    from bm25s.tokenization import Tokenized

    from index.faiss_index import build_faiss, needs_rescoring

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    chunks, tokens, embed_keys, documents, lemmas = rows.chunks, rows.tokens, rows.embed_keys, rows.documents, rows.lemmas
    n = len(chunks)
    if lemmas is None:
        lemmas = [text_lemmas(c.text) for c in chunks]
    if not (len(tokens) == len(embed_keys) == n == len(vectors) == len(lemmas)):
        raise ValueError("chunks, tokens, embed_keys, lemmas and vectors must have the same length")
    dim = int(info["dim"])

    # SQLite
    con = sqlite3.connect(target / DB_FILE)
    try:
        _create_schema(con)
        names = [c for c, _ in _chunk_columns()]
        placeholders = ",".join("?" * (len(names) + 1 + len(_EXTRA_CHUNK_COLUMNS)))
        sql = f"INSERT INTO chunks (id, {', '.join(names)}, {', '.join(_EXTRA_CHUNK_COLUMNS)}) VALUES ({placeholders})"

        groups = GroupRuns()

        def chunk_rows() -> Iterator[list[Any]]:  # streamed: 100k rows never sit in memory at once
            for i, (c, toks, key, lem) in enumerate(zip(chunks, tokens, embed_keys, lemmas)):
                groups.add(c)
                vals: list[Any] = [i]
                for name in names:
                    v = getattr(c, name)
                    if _is_json_field(name):
                        v = json.dumps(list(v) if isinstance(v, tuple) else v, ensure_ascii=False)
                    vals.append(v)
                vals += [json.dumps(toks, ensure_ascii=False), key, sha256_text(bm25_text(c)),
                         json.dumps(list(lem), ensure_ascii=False)]
                yield vals

        con.executemany(sql, chunk_rows())
        groups.write(con)
        con.executemany(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    d.doc_id, d.municipality, d.prefecture, d.title, d.year, d.kind, d.url, d.sha256, d.n_chunks,
                    json.dumps([dataclasses.asdict(m) for m in d.messages], ensure_ascii=False),
                )
                for d in documents
            ],
        )
        con.executemany("INSERT INTO meta VALUES (?, ?)", [("format_version", str(FORMAT_VERSION))])
        con.commit()
    finally:
        con.close()

    # FAISS
    import faiss

    vecs = np.ascontiguousarray(vectors, dtype=np.float32).reshape(n, dim) if n else np.zeros((0, dim), np.float32)
    if needs_rescoring(faiss_index_kind):
        np.save(target / VECTORS_FILE, vecs.astype(np.float16))
    index = build_faiss(vecs, faiss_index_kind, dim)
    try:
        faiss.write_index(index, str(target / FAISS_FILE))
    except RuntimeError as e:  # FAISS reports a failed write (disk full, read-only) as RuntimeError
        raise OSError(f"FAISS could not write {target / FAISS_FILE}: {e}") from e
    del index  # its copy of the vectors is not needed while BM25 is built

    # BM25 over the stored terms (never bm25s's own splitter)
    has_bm25 = n > 0
    if has_bm25:
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(t, len(vocab)) for t in toks] for toks in tokens]
        retriever = bm25s.BM25()
        retriever.index(Tokenized(ids=ids, vocab=vocab), show_progress=progress)
        retriever.save(str(target / BM25_DIR), show_progress=False)

    info = dict(info)
    info.update(
        format_version=FORMAT_VERSION,
        n_chunks=n,
        n_documents=len(documents),
        faiss_index=faiss_index_kind,
        bm25=has_bm25,
        bm25_vocab_size=len(vocab) if has_bm25 else 0,
    )
    (target / INDEX_JSON).write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
    _fsync_tree(target)
    return info
