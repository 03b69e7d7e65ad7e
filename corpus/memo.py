"""The one in-memory cache of the project: :class:`LockedCache`, a dict with its own lock.

The app serves several users from one process, so a process-wide cache is shared by threads.
Every such cache is a LockedCache (docs/architecture.md, *In-memory caches*):

- a **registry** (no ``maxsize``): one expensive object per key, made at most once
  (:meth:`LockedCache.get_or_create`) — loaded models, ONNX encoders, shared embedders;
- a **bounded LRU** (``maxsize``): values computed outside the lock, then stored
  (:meth:`LockedCache.get` / :meth:`LockedCache.put`) — query vectors, sentence embeddings,
  passage tokens, filter masks.

Pure functions of hashable arguments use :func:`functools.lru_cache` instead (it is thread-safe
and bounded); locks that serialise work rather than guard a cache (a conversion, a tokenizer, a
connection) stay beside that work. It lives in corpus/, the lowest layer, so every layer can use it.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING = object()


class LockedCache(Generic[K, V]):
    """A thread-safe dict: an LRU bounded to ``maxsize`` entries, or unbounded (a registry).

    ``hits`` and ``misses`` count :meth:`get` calls. Values should be read-only (a numpy array
    with ``setflags(write=False)``, a frozen record, a shared object): every caller gets the same one.
    """

    def __init__(self, maxsize: int | None = None) -> None:
        """An empty cache holding at most ``maxsize`` entries (None: no bound)."""
        if maxsize is not None and maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        """The value for ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._data.get(key, _MISSING)
            if value is _MISSING:
                self.misses += 1
                return None
            self.hits += 1
            self._data.move_to_end(key)
            return value  # type: ignore[return-value]

    def put(self, key: K, value: V) -> None:
        """Store ``value`` for ``key``; the least recently used entries go beyond ``maxsize``."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            if self.maxsize is not None:
                while len(self._data) > self.maxsize:
                    self._data.popitem(last=False)

    def get_or_create(self, key: K, make: Callable[[], V]) -> V:
        """The value for ``key``, made by ``make()`` under the lock when absent, so it is made at
        most once however many threads ask. A key already present never waits for another
        key's ``make()``. When ``make`` raises, nothing is stored."""
        value = self._data.get(key, _MISSING)  # one dict read: atomic, no lock needed
        if value is not _MISSING:
            return value  # type: ignore[return-value]
        with self._lock:
            value = self._data.get(key, _MISSING)
            if value is _MISSING:
                value = make()
                self._data[key] = value  # type: ignore[assignment]
                if self.maxsize is not None:
                    while len(self._data) > self.maxsize:
                        self._data.popitem(last=False)
            return value  # type: ignore[return-value]

    def clear(self) -> list[V]:
        """Forget every entry and reset the counters; returns the values that were held."""
        with self._lock:
            values = list(self._data.values())
            self._data.clear()
            self.hits = self.misses = 0
            return values

    def keys(self) -> list[K]:
        """The keys, least recently used first (a copy)."""
        with self._lock:
            return list(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())
