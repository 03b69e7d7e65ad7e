"""bm25s's index files written in streaming passes, for stores too large for
``bm25s.BM25().index`` (which holds every posting three times for scipy's COO → CSC conversion):
the Lucene BM25 scores (k1 1.5, b 0.75, float32) of every (chunk, term), placed column by column.
Used by bench/scale_store.py; checked against ``bm25s.BM25().index`` (:func:`check_bm25_csc`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

K1, B = 1.5, 0.75


def _block_counts(doc_terms: np.ndarray, doc_ptr: np.ndarray, a: int, e: int, n_vocab: int,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(docs, terms, tf)`` of documents ``a..e-1``: their distinct terms and counts, by doc then term."""
    lo, hi = int(doc_ptr[a]), int(doc_ptr[e])
    docs = np.repeat(np.arange(a, e, dtype=np.int64), np.diff(np.asarray(doc_ptr[a : e + 1])))
    key, tf = np.unique(docs * n_vocab + np.asarray(doc_terms[lo:hi], dtype=np.int64), return_counts=True)
    return (key // n_vocab).astype(np.int32), (key % n_vocab).astype(np.int64), tf.astype(np.float32)


def bm25_csc(doc_terms: np.ndarray, doc_ptr: np.ndarray, n_vocab: int, out_dir: Path,
             block: int = 200_000) -> dict[str, Any]:
    """Write bm25s's ``data``/``indices``/``indptr`` .npy files (Lucene BM25, k1 1.5, b 0.75,
    float32 scores, int32 doc indices) for documents given as their token ids in order
    (``doc_ptr`` delimits each document's tokens). Two passes over blocks of documents: the
    document frequencies, then the scores placed column by column (a counting sort by term)."""
    n = len(doc_ptr) - 1
    dl = np.diff(np.asarray(doc_ptr)).astype(np.float32)
    df = np.zeros(n_vocab, dtype=np.int64)
    for a in range(0, n, block):
        df += np.bincount(_block_counts(doc_terms, doc_ptr, a, min(n, a + block), n_vocab)[1], minlength=n_vocab)
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
    avgdl = float(np.mean(dl))
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    nnz = int(indptr[-1])
    out_dir.mkdir(parents=True, exist_ok=True)
    data = np.lib.format.open_memmap(out_dir / "data.csc.index.npy", mode="w+", dtype=np.float32, shape=(nnz,))
    indices = np.lib.format.open_memmap(out_dir / "indices.csc.index.npy", mode="w+", dtype=np.int32, shape=(nnz,))
    cursor = indptr[:-1].copy()
    for a in range(0, n, block):
        docs, terms, tf = _block_counts(doc_terms, doc_ptr, a, min(n, a + block), n_vocab)
        denom = K1 * ((1 - B) + B * dl[docs] / avgdl) + tf
        score = (idf[terms] * (tf / denom)).astype(np.float32)
        order = np.argsort(terms, kind="stable")  # by term, then doc (docs ascend within a block)
        st = terms[order]
        first = np.searchsorted(st, st, side="left")
        pos = cursor[st] + (np.arange(len(st)) - first)
        indices[pos] = docs[order]
        data[pos] = score[order]
        cursor += np.bincount(st, minlength=n_vocab)
    data.flush()
    indices.flush()
    np.save(out_dir / "indptr.csc.index.npy", indptr)
    return {"nnz": nnz, "avgdl": avgdl}


def check_bm25_csc(token_lists: list[list[str]], tmp: Path) -> float:
    """Max |score difference| between :func:`bm25_csc` and ``bm25s.BM25().index`` on ``token_lists``."""
    import bm25s
    from bm25s.tokenization import Tokenized

    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in toks] for toks in token_lists]
    ref = bm25s.BM25()
    ref.index(Tokenized(ids=ids, vocab=vocab), show_progress=False)
    ptr = np.cumsum([0] + [len(r) for r in ids])
    bm25_csc(np.concatenate([np.asarray(r, dtype=np.int32) for r in ids]), ptr, len(vocab), tmp, block=700)
    worst = 0.0
    for q in range(0, len(vocab), max(1, len(vocab) // 200)):
        mine = np.zeros(len(ids), np.float32)
        a, b = np.load(tmp / "indptr.csc.index.npy")[q : q + 2]
        mine[np.load(tmp / "indices.csc.index.npy")[a:b]] += np.load(tmp / "data.csc.index.npy")[a:b]
        worst = max(worst, float(np.abs(mine - ref.get_scores_from_ids([q])).max()))
    return worst
