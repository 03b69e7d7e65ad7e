"""The answer views' embeddings: the question vector through ``Engine.query_vector`` and a
bounded, thread-safe cache of passage (sentence) embeddings keyed by model and sentence hash."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from search.sentences import text_hash


# ------------------------------------------------------------------------------------------
# Embedding cache (query-time sentence embeddings, keyed by sentence hash)
# ------------------------------------------------------------------------------------------

_VEC_CACHE: "OrderedDict[tuple[str, str], np.ndarray]" = OrderedDict()
_VEC_CACHE_MAX = 50_000
_VEC_LOCK = threading.Lock()  # the UI serves several users from one process


def _pinned(engine: Any) -> Any:
    """The engine fixed on its current snapshot (``Engine.pinned``), so that a view that searches
    several times never mixes two index versions when the app reloads meanwhile."""
    pin = getattr(engine, "pinned", None)
    return pin() if callable(pin) else engine


def _model_key(embedder: Any) -> str:
    for attr in ("model_name", "name", "model_id"):
        v = getattr(embedder, attr, None)
        if isinstance(v, str) and v:
            return v
    return f"id{id(embedder)}"


def _cache_get(key: tuple[str, str]) -> np.ndarray | None:
    with _VEC_LOCK:
        v = _VEC_CACHE.get(key)
        if v is not None:
            _VEC_CACHE.move_to_end(key)
        return v


def _cache_put(key: tuple[str, str], v: np.ndarray) -> None:
    with _VEC_LOCK:
        _VEC_CACHE[key] = v
        if len(_VEC_CACHE) > _VEC_CACHE_MAX:
            _VEC_CACHE.popitem(last=False)


def _embed_query(engine: Any, text: str) -> np.ndarray:
    """The query vector of ``text``: ``Engine.query_vector``, the one query-vector cache, so the
    answer view and the search it runs encode the question once."""
    return np.asarray(engine.query_vector(text), dtype=np.float32)


def _embed_passages(engine: Any, texts: Sequence[str]) -> np.ndarray:
    """Passage embeddings of ``texts`` (L2-normalised), computed once per distinct text."""
    emb = engine.embedder
    mk = _model_key(emb) + "|p"
    keys = [(mk, text_hash(t)) for t in texts]
    missing: dict[tuple[str, str], str] = {}
    for k, t in zip(keys, texts):
        if _cache_get(k) is None and k not in missing:
            missing[k] = t
    if missing:
        vecs = np.asarray(emb.encode_passages(list(missing.values())), dtype=np.float32)
        for k, v in zip(missing, vecs):
            _cache_put(k, v)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    out = []
    for k, t in zip(keys, texts):
        v = _cache_get(k)
        if v is None:  # evicted meanwhile by another thread
            v = np.asarray(emb.encode_passages([t]), dtype=np.float32)[0]
            _cache_put(k, v)
        out.append(v)
    return np.stack(out)
