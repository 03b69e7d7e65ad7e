"""FAISS helpers: choose and build the dense index (inner product on L2-normalised vectors).

``flat``  — ``IndexFlatIP``: exact search; the default up to ``Settings.ann_threshold`` chunks.
``hnsw``  — ``IndexHNSWFlat(d, 32, METRIC_INNER_PRODUCT)``: approximate, for large corpora;
            ``efSearch`` is set at load time (``Settings.hnsw_ef_search``, default 128).
``auto``  — ``hnsw`` when the number of chunks exceeds ``ann_threshold``, else ``flat``.
"""
from __future__ import annotations

import numpy as np

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
DEFAULT_EF_SEARCH = 128


def choose_kind(requested: str, n_vectors: int, ann_threshold: int) -> str:
    """Resolve ``"flat" | "hnsw" | "auto"`` to the concrete kind for ``n_vectors`` vectors."""
    r = (requested or "auto").lower()
    if r not in ("flat", "hnsw", "auto"):
        raise ValueError(f"faiss_index must be 'flat', 'hnsw' or 'auto', not {requested!r}")
    if r == "auto":
        return "hnsw" if n_vectors > ann_threshold else "flat"
    return r


def build_faiss(vectors: np.ndarray, kind: str, dim: int):
    """A FAISS index of ``kind`` (``flat``/``hnsw``) holding ``vectors`` with ids 0..n-1."""
    import faiss

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
    """``"hnsw"`` or ``"flat"`` for a loaded FAISS index."""
    import faiss

    return "hnsw" if isinstance(index, faiss.IndexHNSW) or hasattr(index, "hnsw") else "flat"


def set_ef_search(index, ef_search: int) -> None:
    """Set HNSW ``efSearch`` (no-op for flat indexes)."""
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = int(ef_search)
