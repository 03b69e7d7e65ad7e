"""The answer views' embeddings: the question vector through ``Engine.query_vector`` and a
bounded, thread-safe cache of passage (sentence) embeddings keyed by model and sentence hash."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from corpus.memo import LockedCache
from search.sentences import text_hash


# ------------------------------------------------------------------------------------------
# Embedding cache (query-time sentence embeddings, keyed by sentence hash)
# ------------------------------------------------------------------------------------------

_VEC_CACHE_MAX = 50_000
#: (model key, sentence hash) → passage embedding; shared by the UI's users (thread-safe LRU).
_VEC_CACHE: LockedCache[tuple[str, str], np.ndarray] = LockedCache(_VEC_CACHE_MAX)


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
        if _VEC_CACHE.get(k) is None and k not in missing:
            missing[k] = t
    if missing:
        vecs = np.asarray(emb.encode_passages(list(missing.values())), dtype=np.float32)
        for k, v in zip(missing, vecs):
            _VEC_CACHE.put(k, v)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    out = []
    for k, t in zip(keys, texts):
        v = _VEC_CACHE.get(k)
        if v is None:  # evicted meanwhile by another thread
            v = np.asarray(emb.encode_passages([t]), dtype=np.float32)[0]
            _VEC_CACHE.put(k, v)
        out.append(v)
    return np.stack(out)
