"""Scoring helpers of :class:`index.store.IndexStore` that hold at five million chunks.

- :func:`rescore`: the exact inner products of a compressed FAISS index's candidates, read from
  the memory-mapped float16 vectors, and the best ``k`` of them.
- :func:`bm25_all_scores`: every chunk's BM25 score for a set of term ids, summed from the bm25s
  CSC arrays (memory-mapped) column by column (:meth:`BM25Postings.sums`).
- :class:`BM25Postings`: the same scores for given chunks only (:meth:`~BM25Postings.scores_of`)
  and the top ``k`` (:meth:`~BM25Postings.top_k`), exact for short posting lists and from the
  rarest terms' candidates for long ones: what keeps BM25 fast at five million chunks, where one
  common term has millions of postings.
- :func:`_faiss_search`: a FAISS search with one OpenMP thread for a few queries.

Every BM25 path adds a chunk's term scores in the query's term order, so a chunk's score is the
same float32 number whichever path computed it.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Batches of at most this many query vectors are searched with one OpenMP thread: a single query
#: gains nothing from FAISS's threads and, on a busy 2-core machine, waiting for them cost 0.25 ms ->
#: 61 ms (flat, 10k) and 34 -> 94 ms (flat, 100k) in bench/faiss_scale (docs/benchmarks.md).
SINGLE_THREAD_MAX_QUERIES = 4


def _faiss_search(index: Any, q: np.ndarray, k: int, params: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """``index.search``, with one OpenMP thread for small query batches (restored afterwards)."""
    import faiss

    if len(q) > SINGLE_THREAD_MAX_QUERIES:
        return index.search(q, k, params=params) if params is not None else index.search(q, k)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(q, k, params=params) if params is not None else index.search(q, k)
    finally:
        faiss.omp_set_num_threads(before)


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
    ``bm25.get_scores_from_ids`` for the Lucene variant (no non-occurrence term)."""
    if getattr(bm25, "nonoccurrence_array", None) is not None:
        return np.asarray(bm25.get_scores_from_ids(list(term_ids)), dtype=np.float32)
    return BM25Postings(bm25, n).sums(term_ids)


#: ``top_k`` with ``allowed`` scores the allowed chunks directly when the query's postings
#: outnumber them this many times.
SEARCHSORTED_RATIO = 32
#: A query whose terms have at most this many postings together is scored exactly (every
#: posting added); above, the candidates come from its rarest terms (:class:`BM25Postings`).
EXACT_POSTINGS = 2_000_000
#: The rarest terms' postings read for candidates above :data:`EXACT_POSTINGS` (at least the
#: rarest term's).
CANDIDATE_POSTINGS = 1_000_000
#: Candidates re-scored exactly above :data:`EXACT_POSTINGS`: ``max(CANDIDATE_FACTOR·k, CANDIDATE_MIN)``.
CANDIDATE_FACTOR = 30
CANDIDATE_MIN = 3000


class BM25Postings:
    """The posting lists of a loaded ``bm25s.BM25`` (Lucene variant: CSC arrays whose columns
    hold each term's chunk ids ascending and their score contributions), read without
    materialising a score per chunk where that is avoidable.

    :meth:`top_k` is exact while the query's postings are few (≤ :data:`EXACT_POSTINGS`: at
    five million chunks a common term alone has millions). Above, it works like an IVF probe:
    the rarest terms (up to :data:`CANDIDATE_POSTINGS` postings) rank the chunks that contain
    them, the best ``max(30·k, 3000)`` of those are scored exactly with every term, and the best
    ``k`` of them are returned: a chunk that has none of the rarest terms is missed. Its recall
    against exact BM25 is measured in bench/serve_scale.py (docs/serving.md).
    """

    def __init__(self, bm25: Any, n: int) -> None:
        self.n = int(n)
        self.data = bm25.scores["data"]
        self.indices = bm25.scores["indices"]
        self.indptr = np.asarray(bm25.scores["indptr"], dtype=np.int64)
        self._matrix: Any = None  # scipy CSC view of the arrays (no copy), made at first use

    def sums(self, term_ids: Sequence[int]) -> np.ndarray:
        """Every chunk's float32 score for ``term_ids``: the chosen columns of the CSC matrix
        summed by scipy (in C, column by column, so in the terms' order)."""
        if self._matrix is None:
            import scipy.sparse

            self._matrix = scipy.sparse.csc_matrix((self.data, self.indices, self.indptr),
                                                   shape=(self.n, len(self.indptr) - 1), copy=False)
        terms = [int(t) for t in term_ids]
        if not terms:
            return np.zeros(self.n, dtype=np.float32)
        return np.asarray(self._matrix[:, terms] @ np.ones(len(terms), dtype=np.float32), dtype=np.float32)

    def df(self, t: int) -> int:
        """How many chunks term ``t`` occurs in."""
        return int(self.indptr[t + 1] - self.indptr[t])

    def postings(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """``(chunk ids ascending, float32 contributions)`` of term ``t``."""
        a, b = int(self.indptr[t]), int(self.indptr[t + 1])
        return np.asarray(self.indices[a:b]), np.asarray(self.data[a:b], dtype=np.float32)

    def scores_of(self, term_ids: Sequence[int], ids: np.ndarray) -> np.ndarray:
        """float32 BM25 scores of the chunks ``ids`` (sorted, distinct) for ``term_ids``: each
        term's posting list and ``ids`` are matched by binary search of the shorter in the
        longer (both are sorted), so nothing of the size of the index is allocated."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros(len(ids), dtype=np.float32)
        if len(ids) == 0:
            return out
        for t in term_ids:
            if self.df(t) == 0:
                continue
            p_ids, p_data = self.postings(t)
            if len(p_ids) > len(ids):
                pos = np.minimum(np.searchsorted(p_ids, ids), len(p_ids) - 1)
                hit = p_ids[pos] == ids
                out[hit] += p_data[pos[hit]]
            else:
                pos = np.minimum(np.searchsorted(ids, p_ids), len(ids) - 1)
                hit = ids[pos] == p_ids
                out[pos[hit]] += p_data[hit]
        return out

    def top_k(self, term_ids: Sequence[int], k: int, allowed: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """The best ``k`` chunks with a positive score (among ``allowed`` sorted ids when given):
        ``(scores, ids)`` best first, ties by lower id; the scores are exact, the choice is exact
        up to :data:`EXACT_POSTINGS` postings (see the class)."""
        terms = [t for t in dict.fromkeys(int(t) for t in term_ids) if self.df(t) > 0]
        if not terms or k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        total = sum(self.df(t) for t in terms)
        if allowed is not None and len(allowed) * SEARCHSORTED_RATIO < total:
            ids = np.asarray(allowed, dtype=np.int64)
            return best_k(self.scores_of(terms, ids), ids, k)
        if total <= EXACT_POSTINGS:
            scores = self.sums(terms)
            ids = np.flatnonzero(scores > 0)
            if allowed is not None:
                ids = np.intersect1d(ids, allowed, assume_unique=True)
            return best_k(scores[ids], ids, k)
        cand = self._candidates(terms, max(CANDIDATE_FACTOR * k, CANDIDATE_MIN), allowed)
        return best_k(self.scores_of(terms, cand), cand, k)

    def _candidates(self, terms: list[int], m: int, allowed: np.ndarray | None) -> np.ndarray:
        """Sorted ids of the ``m`` chunks scoring best on the query's rarest terms."""
        by_df = sorted(terms, key=self.df)
        j, read = 1, self.df(by_df[0])
        while j < len(by_df) and read + self.df(by_df[j]) <= CANDIDATE_POSTINGS:
            read += self.df(by_df[j])
            j += 1
        acc = self.sums(by_df[:j])
        seen = np.concatenate([self.postings(t)[0] for t in by_df[:j]]).astype(np.int64)
        if allowed is not None:
            seen = seen[np.isin(seen, allowed)]
        part = acc[seen]
        take = min(len(seen), m * j)  # a chunk occurs up to j times in ``seen``
        if take < len(seen):
            keep = np.argpartition(-part, take - 1)[:take]
            seen, part = seen[keep], part[keep]
        cand, first = np.unique(seen, return_index=True)
        if len(cand) > m:
            cand = np.sort(cand[np.argpartition(-part[first], m - 1)[:m]])
        return cand


def best_k(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best positive ``scores`` with their ``ids``, best first, ties by lower id (also
    at the ``k``-th place: every score equal to the ``k``-th is considered)."""
    pos = np.flatnonzero(scores > 0)
    if len(pos) > k:
        kth = scores[pos][np.argpartition(-scores[pos], k - 1)[k - 1]]
        pos = pos[scores[pos] >= kth]
    order = np.lexsort((ids[pos], -scores[pos]))[:k]
    pos = pos[order]
    return scores[pos].astype(np.float32), ids[pos].astype(np.int64)
