"""The embedding cache: float32 passage vectors in SQLite, keyed by ``(model_id, embed_key)``.

Lives in ``<index_dir>/cache/embeddings.sqlite`` (docs/index-format.md); the build
(:mod:`index.build`) reads and fills it so unchanged passages are never embedded twice.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np


class EmbeddingCache:
    """A SQLite table of float32 vectors keyed by ``(model_id, key)``.

    ``key`` is :func:`embed_key` of the passage. The build copies the entries it uses from the
    previous index (and from stale temporary build directories) into the new one, so unchanged
    passages are never embedded twice.
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """Open (or create, unless ``readonly``) the cache database at ``path``."""
        self.path = Path(path)
        if readonly:
            self._con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = sqlite3.connect(self.path)
            self._con.execute(
                "CREATE TABLE IF NOT EXISTS embeddings (model_id TEXT NOT NULL, key TEXT NOT NULL, "
                "dim INTEGER NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model_id, key))"
            )
            self._con.commit()

    def get_many(self, model_id: str, keys: Iterable[str], dim: int | None = None) -> dict[str, np.ndarray]:
        """The cached vectors among ``keys`` (missing keys are absent from the result)."""
        out: dict[str, np.ndarray] = {}
        keys = list(dict.fromkeys(keys))
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            q = ",".join("?" * len(part))
            for k, d, blob in self._con.execute(
                f"SELECT key, dim, vector FROM embeddings WHERE model_id = ? AND key IN ({q})", [model_id, *part]
            ):
                if dim is not None and d != dim:
                    continue
                out[k] = np.frombuffer(blob, dtype=np.float32).copy()
        return out

    def put_many(self, model_id: str, items: Iterable[tuple[str, np.ndarray]]) -> int:
        """Store ``(key, vector)`` pairs; returns how many were written."""
        n = 0

        def rows() -> Iterator[tuple[str, str, int, bytes]]:  # streamed, never all in memory
            nonlocal n
            for k, v in items:
                n += 1
                yield model_id, k, int(v.shape[-1]), np.ascontiguousarray(v, dtype=np.float32).tobytes()

        self._con.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows())
        self._con.commit()
        return n

    def __len__(self) -> int:
        return int(self._con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        self._con.close()

    def __enter__(self) -> "EmbeddingCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
