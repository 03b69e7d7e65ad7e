"""Scoring helpers of :class:`index.store.IndexStore` that hold at five million chunks.

- :func:`rescore`: the exact inner products of a compressed FAISS index's candidates, read from
  the memory-mapped float16 vectors, and the best ``k`` of them.
- :func:`bm25_all_scores`: every chunk's BM25 score for a set of term ids, summed from the bm25s
  CSC arrays (memory-mapped) one posting list at a time.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def rescore(vectors: np.ndarray, q: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each query row ``q[r]`` and its candidate ids ``ids[r]`` (``-1`` = none), the exact
    scores against ``vectors`` (``(n, dim)``, any float dtype, typically a float16 memmap) and the
    best ``k``: ``(scores, ids)`` of shape ``(len(q), k)``, best first (ties: lower id first),
    padded with id ``-1`` and score ``-inf``."""
    out_s = np.full((len(q), k), -np.inf, dtype=np.float32)
    out_i = np.full((len(q), k), -1, dtype=np.int64)
    for r in range(len(q)):
        cand = np.unique(ids[r][ids[r] >= 0])  # sorted: the file is read in order
        if len(cand) == 0:
            continue
        s = np.asarray(vectors[cand], dtype=np.float32) @ q[r]
        order = np.lexsort((cand, -s))[:k]
        out_s[r, : len(order)] = s[order]
        out_i[r, : len(order)] = cand[order]
    return out_s, out_i


def bm25_all_scores(bm25: Any, term_ids: Sequence[int], n: int) -> np.ndarray:
    """BM25 score of each of the ``n`` chunks for ``term_ids`` (a loaded ``bm25s.BM25``; its
    ``scores`` arrays may be memory-mapped): the sum of each term's posting list. Equal to
    ``bm25.get_scores_from_ids`` for the Lucene variant (no non-occurrence term); a column's doc
    indices are distinct, so one fancy-index add per term replaces ``np.add.at``."""
    if getattr(bm25, "nonoccurrence_array", None) is not None:
        return np.asarray(bm25.get_scores_from_ids(list(term_ids)), dtype=np.float32)
    data, indices, indptr = bm25.scores["data"], bm25.scores["indices"], bm25.scores["indptr"]
    scores = np.zeros(n, dtype=np.float32)
    for t in term_ids:
        a, b = int(indptr[t]), int(indptr[t + 1])
        if b > a:
            scores[np.asarray(indices[a:b])] += np.asarray(data[a:b], dtype=np.float32)
    return scores
