"""FAISS helpers: choose and build the dense index (inner product on L2-normalised vectors).

``flat``  — ``IndexFlatIP``: exact search; the default up to ``Settings.ann_threshold`` chunks.
``ivf``   — ``IndexIVFFlat`` over an ``IndexFlatIP`` quantiser (inner product): approximate, for
            large corpora; ``nlist`` ≈ 4·√n (256…16384, at most n/39), k-means on a fixed-seed
            sample of ≤ 64·nlist vectors; ``nprobe`` is set at load time (``Settings.ivf_nprobe``,
            default 64). Recall@10 on the synthetic bench: 0.98 at 100k (nprobe 32); at 1M 0.93
            with nprobe 32 and 0.98 with nprobe 64; docs/benchmarks.md.
``hnsw``  — ``IndexHNSWFlat(d, 32, METRIC_INNER_PRODUCT)``: approximate, only when asked for
            (recall@10 0.41 at 100k on the synthetic bench); ``efSearch`` is set at load time
            (``Settings.hnsw_ef_search``, default 128).
``ivfsq8`` — ``IndexIVFScalarQuantizer`` (8 bits per dimension, a quarter of IVFFlat's memory)
            over the same quantiser; the top candidates are re-scored exactly from the stored
            vectors (``vectors.f16.npy``, memory-mapped; :data:`RESCORE_KINDS`).
``ivfpq``  — ``IndexIVFPQ`` (``pq_m(dim)`` sub-quantisers of 8 bits: 48 bytes per 384-d vector),
            re-scored the same way.
``auto``  — ``flat`` up to ``ann_threshold`` chunks, ``ivfsq8`` up to ``pq_threshold``, ``ivfpq``
            above (the thresholds and the recall they rest on: docs/benchmarks.md, docs/serving.md).
"""
from __future__ import annotations

import math

import numpy as np

KINDS = ("flat", "ivf", "ivfsq8", "ivfpq", "hnsw", "auto")
#: Kinds whose FAISS index holds compressed codes: their top candidates are re-scored exactly
#: from the stored vectors (``index.store_format.VECTORS_FILE``).
RESCORE_KINDS = ("ivfsq8", "ivfpq")
#: A compressed kind's search takes this many times the asked-for candidates (at least
#: :data:`RESCORE_MIN`) and re-scores them exactly (recall: docs/serving.md).
RESCORE_FACTOR = 4
RESCORE_MIN = 200
#: ``auto`` picks ``ivfpq`` above this many chunks (``Settings.pq_threshold``).
DEFAULT_PQ_THRESHOLD = 10_000_000
#: Dimensions per PQ sub-quantiser (``pq_m``): 8 → 48 sub-quantisers for 384 dimensions.
PQ_DIMS_PER_SUB = 8

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
DEFAULT_EF_SEARCH = 128

DEFAULT_NPROBE = 64
IVF_NLIST_MIN = 256
IVF_NLIST_MAX = 16384
#: FAISS k-means wants at least 39 training points per centroid.
IVF_MIN_POINTS_PER_CENTROID = 39
#: Training sample: at most this many vectors per centroid.
IVF_TRAIN_POINTS_PER_CENTROID = 64
IVF_SEED = 1234
#: Vectors added to an IVF index per ``add`` call (bounds the float32 copy of a float16 source).
ADD_BLOCK = 100_000


def choose_kind(requested: str, n_vectors: int, ann_threshold: int,
                pq_threshold: int = DEFAULT_PQ_THRESHOLD) -> str:
    """Resolve ``"flat" | "ivf" | "ivfsq8" | "ivfpq" | "hnsw" | "auto"`` to the concrete kind for
    ``n_vectors`` vectors: ``auto`` is flat up to ``ann_threshold``, IVF-SQ8 up to
    ``pq_threshold``, IVF-PQ above."""
    r = (requested or "auto").lower()
    if r not in KINDS:
        raise ValueError(f"faiss_index must be one of {', '.join(KINDS)}, not {requested!r}")
    if r == "auto":
        if n_vectors <= ann_threshold:
            return "flat"
        return "ivfpq" if n_vectors > pq_threshold else "ivfsq8"
    return r


def needs_rescoring(kind: str) -> bool:
    """True for kinds whose codes are approximate and whose candidates are re-scored exactly."""
    return kind in RESCORE_KINDS


def pq_m(dim: int) -> int:
    """Sub-quantisers of ``ivfpq`` for ``dim``: ``dim / 8`` when that divides, else the largest
    divisor of ``dim`` not above it (FAISS needs ``dim % m == 0``)."""
    m = max(1, dim // PQ_DIMS_PER_SUB)
    while dim % m:
        m -= 1
    return m


def ivf_nlist(n_vectors: int) -> int:
    """Number of IVF lists for ``n_vectors``: 4·√n within 256…16384, never above n/39 (≥ 1)."""
    nlist = min(max(int(round(4 * math.sqrt(max(n_vectors, 0)))), IVF_NLIST_MIN), IVF_NLIST_MAX)
    return max(1, min(nlist, n_vectors // IVF_MIN_POINTS_PER_CENTROID))


def new_ivf(kind: str, dim: int, nlist: int):
    """An untrained IVF index of ``kind`` (``ivf``, ``ivfsq8`` or ``ivfpq``; inner product, flat
    quantiser owned by the index, k-means seed :data:`IVF_SEED`)."""
    import faiss

    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivfsq8":
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
    elif kind == "ivfpq":
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m(dim), 8, faiss.METRIC_INNER_PRODUCT)
    elif kind == "ivf":
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        raise ValueError(f"not an IVF kind: {kind!r}")
    index.own_fields = True  # the index keeps (and frees) its quantiser
    quantizer.this.disown()
    index.cp.seed = IVF_SEED
    index.cp.max_points_per_centroid = IVF_TRAIN_POINTS_PER_CENTROID
    index.nprobe = DEFAULT_NPROBE
    return index


def train_sample_ids(n: int, nlist: int) -> np.ndarray:
    """The sorted ids of the k-means training sample of ``n`` vectors: all, or at most
    :data:`IVF_TRAIN_POINTS_PER_CENTROID` · ``nlist`` drawn with ``default_rng(IVF_SEED)``."""
    n_train = min(n, IVF_TRAIN_POINTS_PER_CENTROID * nlist)
    if n_train >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(IVF_SEED).choice(n, size=n_train, replace=False))


def build_ivf(vectors: np.ndarray, dim: int, nlist: int | None = None, kind: str = "ivf"):
    """A trained IVF index of ``kind`` holding ``vectors`` (ids 0..n-1). ``ivf`` (IVFFlat) gets a
    direct map so stored vectors can be reconstructed; the compressed kinds are re-scored from
    the stored vectors file instead, and are added in blocks (no float32 copy of all vectors)."""
    n = len(vectors)
    nlist = int(nlist or ivf_nlist(n))
    index = new_ivf(kind, dim, nlist)
    if n:
        sample = np.ascontiguousarray(vectors[train_sample_ids(n, nlist)], dtype=np.float32)
        index.train(sample)
        del sample
        for a in range(0, n, ADD_BLOCK):
            index.add(np.ascontiguousarray(vectors[a : a + ADD_BLOCK], dtype=np.float32))
    if kind == "ivf":
        index.make_direct_map()
    return index


def build_faiss(vectors: np.ndarray, kind: str, dim: int):
    """A FAISS index of ``kind`` (``flat``/``ivf``/``ivfsq8``/``ivfpq``/``hnsw``) holding
    ``vectors`` with ids 0..n-1."""
    import faiss

    if kind in ("ivf", "ivfsq8", "ivfpq"):
        return build_ivf(vectors, dim, kind=kind)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = DEFAULT_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def faiss_kind(index) -> str:
    """``"hnsw"``, ``"ivfpq"``, ``"ivfsq8"``, ``"ivf"`` or ``"flat"`` for a loaded FAISS index."""
    import faiss

    if isinstance(index, faiss.IndexHNSW) or hasattr(index, "hnsw"):
        return "hnsw"
    if isinstance(index, faiss.IndexIVFPQ):
        return "ivfpq"
    if isinstance(index, faiss.IndexIVFScalarQuantizer):
        return "ivfsq8"
    if hasattr(index, "nprobe"):
        return "ivf"
    return "flat"


def set_ef_search(index, ef_search: int) -> None:
    """Set HNSW ``efSearch`` (no-op for other indexes)."""
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = int(ef_search)


def set_nprobe(index, nprobe: int) -> None:
    """Set IVF ``nprobe`` (no-op for other indexes)."""
    if hasattr(index, "nprobe"):
        index.nprobe = max(1, int(nprobe))
