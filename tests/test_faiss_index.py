"""index.faiss_index: the kind rule, IVF recall against exact search, filtered IVF search through
``IndexStore.dense_search`` and the IVF round trip through faiss.write_index / read_index."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from index import faiss_index as fi  # noqa: E402
from index.config import Settings  # noqa: E402

DIM = 384


def _unit(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """5,000 random unit vectors around 64 random centres (noise of norm ≈ 1, about the centre's
    own norm) and 100 queries drawn the same way. Isotropic noise alone has no neighbourhood
    structure for any index to exploit (exact neighbours are barely closer than random points);
    embeddings of real text are clustered."""
    rng = np.random.default_rng(7)
    centres = _unit(rng.standard_normal((64, DIM)))

    def draw(n: int) -> np.ndarray:
        return _unit(centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, DIM)) / np.sqrt(DIM))

    return draw(5000), draw(100)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth)]))


def _store(index, stored: np.ndarray | None = None):
    from index.store import IndexStore

    return IndexStore(Path("."), {"faiss_index": fi.faiss_kind(index)}, [], {}, index, None, None,
                      stored_vectors=stored)


@pytest.mark.parametrize("kind", ["ivfsq8", "ivfpq"])
def test_compressed_kinds_rescored_reach_exact_recall(data, kind: str) -> None:
    """A compressed kind forced on a few thousand clustered vectors: its candidates re-scored
    from the stored float16 vectors give recall@10 >= 0.95 against exact search, and the scores
    it returns are the exact inner products."""
    X, Q = data
    index = fi.build_faiss(X, kind, DIM)
    assert fi.faiss_kind(index) == kind and fi.needs_rescoring(kind)
    stored = X.astype(np.float16)
    flat = faiss.IndexFlatIP(DIM)
    flat.add(stored.astype(np.float32))
    _, truth = flat.search(Q, 10)
    scores, found = _store(index, stored).dense_search(Q, 10)
    assert _recall(found, truth) >= 0.95
    assert np.allclose(scores, np.einsum("qd,qkd->qk", Q, stored[found].astype(np.float32)), atol=1e-5)
    one_s, one_i = _store(index, stored).dense_search(Q[0], 10)
    assert one_i.tolist() == found[0].tolist()
    # without re-scoring, PQ codes alone rank worse than exact
    if kind == "ivfpq":
        _, raw = index.search(Q, 10)
        assert _recall(raw, truth) < _recall(found, truth)


def test_compressed_kind_narrow_filter_is_exact(data) -> None:
    """A municipality-sized filter on a compressed index (stored vectors) returns exactly the
    best allowed chunks with their exact scores, for one vector and for a batch; a filter above
    ``EXACT_SUBSET_MAX`` still returns only allowed ids."""
    import index.store as store_mod

    X, Q = data
    index = fi.build_faiss(X, "ivfsq8", DIM)
    stored = X.astype(np.float16)
    store = _store(index, stored)
    allowed = np.sort(np.random.default_rng(2).choice(len(X), size=300, replace=False))
    exact_all = stored[allowed].astype(np.float32) @ Q[:5].T
    for r, q in enumerate(Q[:5]):
        scores, ids = store.dense_search(q, 10, allowed=allowed)
        order = np.argsort(-exact_all[:, r], kind="stable")[:10]
        assert ids.tolist() == allowed[order].tolist()
        assert np.allclose(scores, exact_all[order, r], atol=1e-5)
    _, batch = store.dense_search(Q[:5], 10, allowed=allowed)
    assert batch[0].tolist() == store.dense_search(Q[0], 10, allowed=allowed)[1].tolist()
    small = allowed[:4]  # fewer allowed chunks than k: all of them, no padding ids
    assert sorted(store.dense_search(Q[0], 10, allowed=small)[1].tolist()) == small.tolist()
    wide = np.arange(0, len(X), 2)
    assert len(wide) > 0
    old = store_mod.EXACT_SUBSET_MAX
    store_mod.EXACT_SUBSET_MAX = 10  # force the selector path
    try:
        _, ids = store.dense_search(Q[:3], 10, allowed=wide)
    finally:
        store_mod.EXACT_SUBSET_MAX = old
    assert set(ids[ids >= 0].tolist()) <= set(wide.tolist())


def test_pq_sub_quantisers_divide_the_dimension() -> None:
    assert fi.pq_m(384) == 48 and fi.pq_m(768) == 96
    assert all(d % fi.pq_m(d) == 0 for d in (8, 100, 384, 1000))


def test_choose_kind() -> None:
    assert fi.choose_kind("auto", 10, 5) == "ivfsq8"
    assert fi.choose_kind("auto", 5, 5) == "flat"
    assert fi.choose_kind("auto", 185, Settings().ann_threshold) == "flat"
    assert fi.choose_kind("auto", 200_001, Settings().ann_threshold, Settings().pq_threshold) == "ivfsq8"
    assert fi.choose_kind("auto", 10**9, Settings().ann_threshold, Settings().pq_threshold) == "ivfpq"
    assert fi.choose_kind("auto", 11, 5, 10) == "ivfpq"
    assert fi.choose_kind("IVFPQ", 1, 5) == "ivfpq"
    assert fi.choose_kind("flat", 10**9, 5) == "flat"
    assert fi.choose_kind("HNSW", 1, 5) == "hnsw"
    assert fi.choose_kind("ivf", 1, 5) == "ivf"
    with pytest.raises(ValueError):
        fi.choose_kind("pq", 1, 5)
    assert Settings().ivf_nprobe == fi.DEFAULT_NPROBE == 64


def test_ivf_nlist_bounds() -> None:
    assert fi.ivf_nlist(1_000_000) == 4000
    assert fi.ivf_nlist(300_000) == round(4 * 300_000**0.5)
    assert fi.ivf_nlist(10**10) == fi.IVF_NLIST_MAX
    assert fi.ivf_nlist(40_000) == 800
    assert fi.ivf_nlist(20_000) == 20_000 // 39  # 4·√n = 566, but ≥ 39 training points per centroid
    assert fi.ivf_nlist(5000) == 5000 // 39  # ≥ 39 training points per centroid
    assert fi.ivf_nlist(10) == fi.ivf_nlist(0) == 1


def test_ivf_recall_against_flat(data) -> None:
    X, Q = data
    ivf = fi.build_faiss(X, "ivf", DIM)
    assert fi.faiss_kind(ivf) == "ivf"
    assert isinstance(ivf, faiss.IndexIVFFlat)
    assert ivf.metric_type == faiss.METRIC_INNER_PRODUCT
    assert ivf.ntotal == len(X) and ivf.nlist == fi.ivf_nlist(len(X))
    flat = fi.build_faiss(X, "flat", DIM)
    _, truth = flat.search(Q, 10)
    store = _store(ivf)
    fi.set_nprobe(ivf, Settings().ivf_nprobe)
    _, found = store.dense_search(Q, 10)
    assert _recall(found, truth) >= 0.9
    # stored vectors come back (direct map), so dense_scores / vectors() work on IVF
    assert np.allclose(store.vectors([0, 17, 4999]), X[[0, 17, 4999]])


@pytest.mark.parametrize("n_allowed", [50, 3000])
def test_ivf_allowed_filter(data, n_allowed: int) -> None:
    X, Q = data
    ivf = fi.build_faiss(X, "ivf", DIM)
    store = _store(ivf)
    rng = np.random.default_rng(1)
    allowed = np.sort(rng.choice(len(X), size=n_allowed, replace=False))
    for q in Q[:10]:
        scores, ids = store.dense_search(q, 10, allowed=allowed)
        assert len(ids) > 0 and set(ids.tolist()) <= set(allowed.tolist())
        assert np.all(np.diff(scores) <= 1e-6)
    # a narrow filter probes every list: exactly the best allowed chunks
    if n_allowed <= 4096:
        for q in Q[:10]:
            _, ids = store.dense_search(q, 10, allowed=allowed)
            exact = allowed[np.argsort(-(X[allowed] @ q), kind="stable")[:10]]
            assert set(ids.tolist()) == set(exact.tolist())
    # a bitmap-sized filter (> BITMAP_SELECTOR_MIN ids) also returns only allowed ids
    big = np.sort(rng.choice(len(X), size=4500, replace=False))
    _, ids = store.dense_search(Q[:3], 10, allowed=big)
    assert set(ids[ids >= 0].tolist()) <= set(big.tolist())


def test_ivf_round_trip_with_nprobe(data, tmp_path: Path) -> None:
    X, Q = data
    ivf = fi.build_faiss(X[:2000], "ivf", DIM)
    fi.set_nprobe(ivf, 7)
    path = tmp_path / "dense.faiss"
    faiss.write_index(ivf, str(path))
    back = faiss.read_index(str(path))
    assert fi.faiss_kind(back) == "ivf" and back.nlist == ivf.nlist and back.ntotal == 2000
    fi.set_nprobe(back, 5)
    assert back.nprobe == 5
    fi.set_nprobe(ivf, 5)
    assert np.array_equal(back.search(Q, 10)[1], ivf.search(Q, 10)[1])
    assert np.allclose(back.reconstruct_batch(np.array([0, 1999])), X[[0, 1999]])


def test_empty_ivf() -> None:
    ivf = fi.build_faiss(np.zeros((0, DIM), np.float32), "ivf", DIM)
    assert ivf.ntotal == 0
    scores, ids = _store(ivf).dense_search(np.ones(DIM, np.float32) / np.sqrt(DIM), 5)
    assert len(ids) == 0
