"""BM25 top-k (index.store_search.BM25Postings) against the reference: every chunk's score from
bm25s summed and sorted. At five million chunks a common term has millions of postings
(docs/serving.md): short queries stay exact, long ones take their candidates from the rarest
terms and must still find nearly all of the exact top k, with exact scores."""
from __future__ import annotations

import bm25s
import numpy as np
import pytest
from bm25s.tokenization import Tokenized

import index.store_search as store_search
from index.store_search import BM25Postings, best_k, bm25_all_scores

N_DOCS = 6000
VOCAB = 400


@pytest.fixture(scope="module")
def bm25() -> bm25s.BM25:
    """A bm25s index (the product's Lucene variant) over Zipf-distributed terms: a few terms
    occur in most chunks, most in a handful, like administrative text."""
    rng = np.random.default_rng(7)
    docs = [np.unique(rng.zipf(1.3, size=rng.integers(5, 60)) % VOCAB).tolist() for _ in range(N_DOCS)]
    vocab = {f"t{i}": i for i in range(VOCAB)}
    model = bm25s.BM25()
    model.index(Tokenized(ids=docs, vocab=vocab), show_progress=False)
    return model


def _reference(model: bm25s.BM25, terms: list[int], k: int, allowed: np.ndarray | None = None):
    ref = np.asarray(model.get_scores_from_ids(terms), dtype=np.float32)
    ids = np.arange(N_DOCS) if allowed is None else allowed
    ids = ids[ref[ids] > 0]
    order = np.lexsort((ids, -ref[ids]))[:k]
    return ref[ids[order]], ids[order]


def _queries(n: int) -> list[list[int]]:
    rng = np.random.default_rng(11)
    qs = []
    for _ in range(n):
        common = rng.integers(0, 5, size=rng.integers(0, 4))  # terms in most chunks
        rare = rng.integers(5, VOCAB, size=rng.integers(0, 8))
        qs.append(list(dict.fromkeys(np.concatenate([rare, common]).tolist())) or [1])
    return qs


@pytest.mark.parametrize("k", [1, 10, 100, 300])
def test_top_k_equals_sorting_every_score(bm25, k: int) -> None:
    post = BM25Postings(bm25, N_DOCS)
    for terms in _queries(60):
        got_s, got_i = post.top_k(terms, k)
        ref_s, ref_i = _reference(bm25, terms, k)
        assert got_i.tolist() == ref_i.tolist(), terms
        assert np.allclose(got_s, ref_s, rtol=1e-6)


def test_top_k_with_allowed_chunks(bm25) -> None:
    """A filter (one municipality's few chunks, or half of them): the best allowed chunks."""
    post = BM25Postings(bm25, N_DOCS)
    rng = np.random.default_rng(3)
    for size in (20, 3000):
        allowed = np.sort(rng.choice(N_DOCS, size=size, replace=False))
        for terms in _queries(20):
            got_s, got_i = post.top_k(terms, 10, allowed)
            ref_s, ref_i = _reference(bm25, terms, 10, allowed)
            assert got_i.tolist() == ref_i.tolist()


def test_scores_of_equal_the_full_array(bm25) -> None:
    """The score of given chunks is the same float32 number as in the full array (the fusion of
    a hybrid search reads BM25 scores of the dense candidates this way)."""
    post = BM25Postings(bm25, N_DOCS)
    rng = np.random.default_rng(5)
    for terms in _queries(20):
        full = bm25_all_scores(bm25, terms, N_DOCS)
        assert np.allclose(full, np.asarray(bm25.get_scores_from_ids(terms)), rtol=1e-6)
        for size in (3, 200, 5000):  # binary search and mask paths
            ids = np.sort(rng.choice(N_DOCS, size=size, replace=False))
            assert np.array_equal(post.scores_of(terms, ids), full[ids])


def test_best_k_breaks_ties_by_lower_id() -> None:
    scores = np.array([1.0, 2.0, 2.0, 2.0, 0.0, 2.0], np.float32)
    ids = np.arange(6) + 100
    s, i = best_k(scores, ids, 2)
    assert i.tolist() == [101, 102] and s.tolist() == [2.0, 2.0]


def test_long_queries_take_candidates_from_the_rarest_terms(bm25, monkeypatch) -> None:
    """Above EXACT_POSTINGS (lowered here to this small index's scale): every returned score is
    the chunk's exact score, every returned chunk is allowed, and recall@10 against exact BM25
    stays high; a query of common terms only still returns k chunks."""
    monkeypatch.setattr(store_search, "EXACT_POSTINGS", 500)
    monkeypatch.setattr(store_search, "CANDIDATE_POSTINGS", 600)
    monkeypatch.setattr(store_search, "CANDIDATE_MIN", 50)
    post = BM25Postings(bm25, N_DOCS)
    recalls = []
    allowed = np.arange(0, N_DOCS, 3)
    for terms in _queries(60):
        got_s, got_i = post.top_k(terms, 10)
        full = bm25_all_scores(bm25, terms, N_DOCS)
        assert np.array_equal(got_s, full[got_i])
        _ref_s, ref_i = _reference(bm25, terms, 10)
        recalls.append(len(set(got_i.tolist()) & set(ref_i.tolist())) / max(1, len(ref_i)))
        _s, ids = post.top_k(terms, 10, allowed)
        assert set(ids.tolist()) <= set(allowed.tolist())
    assert np.mean(recalls) >= 0.9
    assert len(post.top_k([0, 1, 2], 10)[1]) == 10
