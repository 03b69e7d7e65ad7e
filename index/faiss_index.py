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
``auto``  — ``ivf`` when the number of chunks exceeds ``ann_threshold``, else ``flat``.
"""
from __future__ import annotations

import math

import numpy as np

KINDS = ("flat", "ivf", "hnsw", "auto")

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


def choose_kind(requested: str, n_vectors: int, ann_threshold: int) -> str:
    """Resolve ``"flat" | "ivf" | "hnsw" | "auto"`` to the concrete kind for ``n_vectors`` vectors."""
    r = (requested or "auto").lower()
    if r not in KINDS:
        raise ValueError(f"faiss_index must be 'flat', 'ivf', 'hnsw' or 'auto', not {requested!r}")
    if r == "auto":
        return "ivf" if n_vectors > ann_threshold else "flat"
    return r


def ivf_nlist(n_vectors: int) -> int:
    """Number of IVF lists for ``n_vectors``: 4·√n within 256…16384, never above n/39 (≥ 1)."""
    nlist = min(max(int(round(4 * math.sqrt(max(n_vectors, 0)))), IVF_NLIST_MIN), IVF_NLIST_MAX)
    return max(1, min(nlist, n_vectors // IVF_MIN_POINTS_PER_CENTROID))


def build_ivf(vectors: np.ndarray, dim: int, nlist: int | None = None):
    """A trained ``IndexIVFFlat`` (inner product, flat quantiser) holding ``vectors`` (ids 0..n-1),
    with a direct map so stored vectors can be reconstructed."""
    import faiss

    n = len(vectors)
    nlist = int(nlist or ivf_nlist(n))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True  # the index keeps (and frees) its quantiser
    quantizer.this.disown()
    index.cp.seed = IVF_SEED
    index.cp.max_points_per_centroid = IVF_TRAIN_POINTS_PER_CENTROID
    index.nprobe = DEFAULT_NPROBE
    if n:
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        n_train = min(n, IVF_TRAIN_POINTS_PER_CENTROID * nlist)
        if n_train < n:
            rng = np.random.default_rng(IVF_SEED)
            sample = x[np.sort(rng.choice(n, size=n_train, replace=False))]
        else:
            sample = x
        index.train(sample)
        del sample
        index.add(x)
    index.make_direct_map()
    return index


def build_faiss(vectors: np.ndarray, kind: str, dim: int):
    """A FAISS index of ``kind`` (``flat``/``ivf``/``hnsw``) holding ``vectors`` with ids 0..n-1."""
    import faiss

    if kind == "ivf":
        return build_ivf(vectors, dim)
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
    """``"hnsw"``, ``"ivf"`` or ``"flat"`` for a loaded FAISS index."""
    import faiss

    if isinstance(index, faiss.IndexHNSW) or hasattr(index, "hnsw"):
        return "hnsw"
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
