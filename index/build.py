"""Build the index: the full build, the embedding cache, the progress events and the report.

- :func:`build_index` reads the whole corpus (``corpus.loader.load_corpus``), embeds only passages
  whose vectors are not in the embedding cache, tokenises for BM25 and writes a new index.
- :mod:`index.update` adds (:func:`index.update.add_document`) or removes
  (:func:`index.update.remove_document`) one document without a full rebuild, with the helpers here.

Every writer builds into a sibling temporary directory ``<index_dir>.tmp-<pid>``, fsyncs it and
swaps it in (rename the old index aside to ``<index_dir>.old-<pid>``, rename the new one in, delete
the old one), so a crash at any moment leaves the previous index loadable (``IndexStore.open``
also reads an index left aside by a crash between the two renames). Stale temporary directories
are cleaned — after their embedding caches are salvaged — by the next build. A lock file
``<index_dir>.lock`` (an OS file lock, released if the process dies) stops concurrent builds. The
lock, the temporary directories, the swap and the recovery are in :mod:`index.transaction`
(re-exported here).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from corpus.records import Chunk, DocumentMeta, IngestMessage
from index.config import Settings
from index.errors import IndexBusyError, IndexMismatchError, IndexMissingError, IndexWriteError
from index.faiss_index import DEFAULT_EF_SEARCH, DEFAULT_NPROBE, choose_kind
from index.store import (
    CACHE_DB,
    CACHE_DIR,
    INDEX_JSON,
    DocumentRecord,
    EmbeddingCache,
    IndexRows,
    IndexStore,
    bm25_text,
    embed_key,
    read_terms,
    resolve_index_dir,
    sha256_text,
    write_store,
)
from index.tokenizer import Tokenizer, share_terms, text_lemmas
from index.transaction import (
    _new_tmp,
    _swap_in,
    begin_build,
    build_lock,
    lock_path,
    real_paths,
    write_failure_message,
)

#: Names other modules import from here (the errors and the transaction are re-exported).
__all__ = [
    "EMBED_BLOCK", "TOKENIZE_REPORT_EVERY", "STAGE_UNITS", "BuildProgress", "BuildReport", "Progress",
    "IndexBusyError", "IndexMismatchError", "IndexMissingError", "IndexWriteError",
    "build_index", "build_lock", "corpus_fingerprint", "embedder_dim", "file_sha256", "get_embedder",
    "lock_path", "real_paths", "release_embedders", "write_failure_message",
]

#: Passages embedded per block (each block is written to the new cache before the next starts).
EMBED_BLOCK = 256
#: A progress callback hears of the tokenising every this many chunks.
TOKENIZE_REPORT_EVERY = 500


#: Units of each build stage, for :meth:`BuildProgress.text`.
STAGE_UNITS = {"読み込み": "文書", "トークン化": "件", "埋め込み": "件", "書き込み": ""}


@dataclass(frozen=True)
class BuildProgress:
    """One progress event of a build: ``done`` of ``total`` units of ``stage`` (読み込み per
    document, トークン化 per chunk, 埋め込み per new passage, 書き込み once at start and end);
    ``message`` says what is being done (a document id, how many vectors came from the cache)."""

    stage: str
    done: int
    total: int
    message: str = ""

    def text(self) -> str:
        """The event for a status line, e.g. ``埋め込み 120/248 件``."""
        return f"{self.stage} {self.done}/{self.total} {STAGE_UNITS.get(self.stage, '')}".rstrip()


#: ``progress`` of :func:`build_index`: True shows tqdm bars on stderr, False nothing, a callable
#: receives every :class:`BuildProgress` (and no bar is shown).
Progress = bool | Callable[[BuildProgress], None]


def _notify(progress: Progress, stage: str, done: int, total: int, message: str = "") -> None:
    """Call the progress callback, when ``progress`` is one."""
    if callable(progress):
        progress(BuildProgress(stage, int(done), int(total), message))


# --------------------------------------------------------------------------- report


@dataclass
class BuildReport:
    """What a build, add or remove did. ``ok`` is False when something the user asked failed
    (a file could not be read, a document was refused) — the message list says why."""

    n_docs: int = 0
    n_chunks: int = 0
    n_embedded: int = 0
    n_cached: int = 0
    messages: list[IngestMessage] = field(default_factory=list)
    ok: bool = True
    action: str = "build"  # "build" | "add" | "remove"
    index_dir: str = ""
    doc_id: str = ""
    n_doc_chunks: int = 0  # chunks added (add) or removed (remove)
    elapsed: float = 0.0
    changed: bool = True  # False when the index on disk was left as it was

    @property
    def n_errors(self) -> int:
        """Number of error messages."""
        return sum(1 for m in self.messages if m.severity == "error")

    @property
    def n_warnings(self) -> int:
        """Number of warning messages."""
        return sum(1 for m in self.messages if m.severity == "warning")

    def summary(self) -> str:
        """A one-line Japanese summary for the CLI and the UI."""
        issues = ""
        if self.n_errors or self.n_warnings:
            issues = f"（エラー {self.n_errors} 件, 警告 {self.n_warnings} 件）"
        totals = f"{self.n_docs} 文書, {self.n_chunks} チャンク"
        emb = f"新たに埋め込み {self.n_embedded} 件, キャッシュ再利用 {self.n_cached} 件"
        first_error = next((m.message for m in self.messages if m.severity == "error"), "")
        reason = f" — {first_error}" if first_error else ""
        if self.action == "add":
            if not self.ok:
                return f"文書を追加できませんでした: {self.doc_id}{reason}。インデックスは変更していません。"
            return f"文書を追加しました: {self.doc_id}（{self.n_doc_chunks} チャンク, {emb}）。インデックス: {totals}{issues}"
        if self.action == "remove":
            if not self.ok:
                return f"文書を削除できませんでした: {self.doc_id}{reason}。"
            return f"文書を削除しました: {self.doc_id}（{self.n_doc_chunks} チャンク）。インデックス: {totals}"
        state = "インデックスを作成しました" if self.ok else "インデックスを作成しました（一部の文書を読めませんでした）"
        return f"{state}: {totals}（{emb}, {self.elapsed:.1f} 秒）{issues} → {self.index_dir}"


def _use_ocr_cache(settings: Settings) -> None:
    """OCR results of this build go to ``<cache_dir>/ocr`` (corpus.readers.ocr; the document
    worker hands the setting to its child), so a rebuild never OCRs a page again."""
    from corpus.readers import ocr

    ocr.CACHE_DIR = Path(settings.cache_dir).expanduser() / "ocr"

# --------------------------------------------------------------------------- helpers


def get_embedder(settings: Settings) -> Any:
    """The :class:`index.embedder.Embedder` for ``settings`` (the process-wide shared one)."""
    from index.embedder import shared_embedder

    return shared_embedder(settings)


def release_embedders() -> None:
    """Free the embedding models this process loaded (see ``build_index``); they reload on next use."""
    import gc

    from index.embedder import release_shared_embedders

    release_shared_embedders()
    gc.collect()


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes ("" when it cannot be read)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return ""
    return h.hexdigest()


def corpus_fingerprint(corpus_dir: Path, documents: Sequence[DocumentRecord]) -> str:
    """sha256 over the manifest bytes and every indexed document's (id, file sha256)."""
    h = hashlib.sha256()
    try:
        from corpus.manifest import manifest_path

        manifest = manifest_path(corpus_dir)
    except ImportError:  # pragma: no cover
        manifest = Path(corpus_dir) / "manifest.csv"
    with contextlib.suppress(OSError):
        h.update(manifest.read_bytes())
    for d in sorted(documents, key=lambda d: d.doc_id):
        h.update(f"\n{d.doc_id}\t{d.sha256}".encode())
    return h.hexdigest()


def _module_version(name: str) -> str | None:
    try:
        mod = __import__(name, fromlist=["VERSION"])
    except Exception:
        return None
    v = getattr(mod, "VERSION", None)
    return None if v is None else str(v)


def _meta_of(doc: Any) -> DocumentMeta:
    if isinstance(doc, DocumentMeta):
        return doc
    meta = getattr(doc, "meta", None)
    if isinstance(meta, DocumentMeta):
        return meta
    raise TypeError(f"cannot read a DocumentMeta from {doc!r}")


def _messages_for(doc_id: str, messages: Sequence[IngestMessage]) -> list[IngestMessage]:
    return [m for m in messages if m.path == doc_id or m.path.endswith("/" + doc_id)]


def _doc_record(corpus_dir: Path, meta: DocumentMeta, n_chunks: int, messages: Sequence[IngestMessage]) -> DocumentRecord:
    return DocumentRecord.of(meta, sha256=file_sha256(Path(corpus_dir) / meta.path), n_chunks=n_chunks,
                             messages=_messages_for(meta.doc_id, messages))


def embedder_dim(embedder: Any, index_dir: Path | None = None) -> int:
    """The embedder's dimension, taken from the current index when it was built with the same
    model, so that a build with nothing to embed never loads the model."""
    if index_dir is not None:
        with contextlib.suppress(Exception):
            info = json.loads((resolve_index_dir(Path(index_dir)) / INDEX_JSON).read_text(encoding="utf-8"))
            if info.get("model_id") == str(embedder.model_id) and int(info.get("dim", 0)) > 0:
                return int(info["dim"])
    return int(embedder.dim)


def _base_info(settings: Settings, embedder: Any, tokenizer: Tokenizer, dim: int) -> dict[str, Any]:
    return {
        "model": settings.model,
        "model_id": str(embedder.model_id),
        "dim": int(dim),
        "query_prompt": embedder.query_prompt or "",
        "passage_prompt": embedder.passage_prompt or "",
        "tokenizer_version": tokenizer.version,
        "normalizer_version": _module_version("corpus.normalize"),
        "chunker_version": _module_version("corpus.chunker"),
        "loader_version": _module_version("corpus.loader"),
        "max_item_tokens": settings.max_item_tokens,
        "ef_search": int(getattr(settings, "hnsw_ef_search", DEFAULT_EF_SEARCH) or DEFAULT_EF_SEARCH),
        "nprobe": int(getattr(settings, "ivf_nprobe", DEFAULT_NPROBE) or DEFAULT_NPROBE),
        "corpus_dir": str(settings.corpus_dir),
    }


def _finish_info(info: dict[str, Any], corpus_dir: Path, documents: Sequence[DocumentRecord], **extra: Any) -> dict[str, Any]:
    info = dict(info)
    info["corpus_fingerprint"] = corpus_fingerprint(corpus_dir, documents)
    info["built_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    info.update(extra)
    return info


#: Fields of index.json that ``write_store`` computes from what it writes.
_WRITTEN_INFO_KEYS = ("format_version", "n_chunks", "n_documents", "faiss_index", "bm25", "bm25_vocab_size")


def _rewrite_info(current: IndexStore, corpus_dir: Path, documents: Sequence[DocumentRecord], built_by: str) -> dict[str, Any]:
    """The info of an incremental rewrite of ``current``: its own, finished for ``documents``,
    without the fields ``write_store`` recomputes."""
    info = _finish_info(current.info, corpus_dir, documents, built_by=built_by)
    for k in _WRITTEN_INFO_KEYS:
        info.pop(k, None)
    return info


def _cache_sources(index_dir: Path, stale: Sequence[Path]) -> list[Path]:
    paths = [resolve_index_dir(index_dir) / CACHE_DIR / CACHE_DB]
    paths += [p / CACHE_DIR / CACHE_DB for p in stale]
    return [p for p in paths if p.is_file()]


#: ``encode(texts)`` of :func:`_embed`: yields ``(rows, vectors)`` — positions in ``texts`` and
#: their unit vectors — until every text has been embedded, in any order and grouping.
Encode = Callable[[list[str]], Iterator[tuple[np.ndarray, np.ndarray]]]


def _encode_here(embedder: Any, batch_size: int) -> Encode:
    """Embed in this process, :data:`EMBED_BLOCK` texts at a time (each block reaches the new
    cache before the next starts)."""

    def encode(texts: list[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(0, len(texts), EMBED_BLOCK):
            part = texts[i : i + EMBED_BLOCK]
            yield np.arange(i, i + len(part)), embedder.encode_passages(part, batch_size=batch_size, show_progress=False)

    return encode


def _embed(
    embedder: Any,
    keys: Sequence[str],
    texts: Sequence[str],
    sources: Sequence[Path],
    new_cache: EmbeddingCache,
    *,
    batch_size: int,
    progress: Progress,
    known: dict[str, np.ndarray] | None = None,
    dim: int | None = None,
    encode: Encode | None = None,
) -> tuple[np.ndarray, int, int]:
    """Vectors for ``texts`` (one per key): from ``known``, the cache ``sources``, else embedded.

    Every vector used is written to ``new_cache``. Returns ``(vectors, n_embedded, n_cached)``
    counted over distinct keys. ``encode`` embeds the texts not found (default: ``embedder`` in
    this process, :data:`EMBED_BLOCK` at a time; the Ray build passes its actors, index.ray_build).
    """
    model_id = str(embedder.model_id)
    dim = int(dim) if dim is not None else int(embedder.dim)
    # one row per distinct key in one matrix (100k chunks: 150 MB, no per-vector arrays)
    row_of: dict[str, int] = {}
    texts_u: list[str] = []
    for k, t in zip(keys, texts):
        if k not in row_of:
            row_of[k] = len(texts_u)
            texts_u.append(t)
    ukeys = list(row_of)
    mat = np.zeros((len(ukeys), dim), np.float32)
    have = np.zeros(len(ukeys), dtype=bool)
    for k, v in (known or {}).items():
        r = row_of.get(k)
        if r is not None and v.shape[-1] == dim:
            mat[r], have[r] = v, True
    for src in sources:
        missing = [ukeys[r] for r in np.flatnonzero(~have)]
        if not missing:
            break
        try:
            with EmbeddingCache(src, readonly=True) as c:
                for a in range(0, len(missing), 5000):
                    for k, v in c.get_many(model_id, missing[a : a + 5000], dim=dim).items():
                        mat[row_of[k]], have[row_of[k]] = v, True
        except Exception:  # a damaged cache only costs re-embedding
            continue
    n_cached = int(have.sum())
    new_cache.put_many(model_id, ((ukeys[r], mat[r]) for r in np.flatnonzero(have)))
    todo = np.flatnonzero(~have)
    cached_note = f"キャッシュ再利用 {n_cached} 件"
    _notify(progress, "埋め込み", 0, len(todo), cached_note)
    if len(todo):
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="埋め込み", unit="件", disable=progress is not True)
        encode = encode or _encode_here(embedder, batch_size)
        done = 0
        try:
            for rows, vecs in encode([texts_u[r] for r in todo]):
                block = todo[np.asarray(rows, dtype=np.int64)]
                vecs = np.asarray(vecs, dtype=np.float32)
                if vecs.shape != (len(block), dim):
                    raise RuntimeError(f"embedder returned shape {vecs.shape}, expected {(len(block), dim)}")
                mat[block] = vecs
                new_cache.put_many(model_id, ((ukeys[r], mat[r]) for r in block))
                done += len(block)
                bar.update(len(block))
                _notify(progress, "埋め込み", done, len(todo), cached_note)
        finally:
            bar.close()
    if len(ukeys) == len(keys):  # no repeated passage: the rows are already in order
        return mat, len(todo), n_cached
    return mat[[row_of[k] for k in keys]], len(todo), n_cached


def _tokenize_all(
    tokenizer: Tokenizer, chunks: Sequence[Chunk], reuse: dict[str, tuple[list[str], list[str] | None]],
    progress: Progress,
) -> tuple[list[list[str]], list[list[str]]]:
    """BM25 terms (of ``bm25_text``) and lemma lists (:func:`text_lemmas` of the text) of every
    chunk, taken from ``reuse`` (``bm25_key → (terms, lemmas)`` of the current index) when there."""
    from tqdm.auto import tqdm

    tokens, lemmas = [], []
    pool: dict[str, str] = {}
    _notify(progress, "トークン化", 0, len(chunks))
    for i, c in enumerate(tqdm(chunks, desc="BM25 語彙", unit="件", disable=progress is not True or not chunks), 1):
        if i % TOKENIZE_REPORT_EVERY == 0 or i == len(chunks):
            _notify(progress, "トークン化", i, len(chunks))
        text = bm25_text(c)
        toks, lem = reuse.get(sha256_text(text), (None, None))
        tokens.append(share_terms(toks if toks is not None else tokenizer.tokenize(text), pool))
        lemmas.append(share_terms(lem if lem is not None else text_lemmas(c.text), pool))
    return tokens, lemmas


def _reusable_tokens(index_dir: Path, tokenizer: Tokenizer) -> dict[str, tuple[list[str], list[str] | None]]:
    """``bm25_key → (terms, lemmas or None)`` from the current index when it used the same tokeniser."""
    path = resolve_index_dir(index_dir)
    try:
        info = json.loads((path / INDEX_JSON).read_text(encoding="utf-8"))
        if info.get("tokenizer_version") != tokenizer.version:
            return {}
        return {k: (t, lm) for k, t, lm in read_terms(path)}
    except Exception:
        return {}


def _write_and_swap(
    settings: Settings,
    rows: IndexRows,
    *,
    vectors: Callable[[EmbeddingCache], np.ndarray],
    info: dict[str, Any],
    progress: Progress,
) -> dict[str, Any]:
    """Write a complete index of ``rows`` to a temp sibling dir, fsync, swap it in.

    ``vectors(cache)`` fills the new embedding cache and returns the vectors of ``rows.chunks``.
    """
    import sqlite3

    index_dir = Path(settings.index_dir)
    try:
        tmp = _new_tmp(index_dir)
    except OSError as e:
        raise IndexWriteError(write_failure_message(index_dir.parent, e)) from e
    try:
        with EmbeddingCache(tmp / CACHE_DIR / CACHE_DB) as cache:
            vecs = vectors(cache)
        _notify(progress, "書き込み", 0, 1, str(index_dir))
        kind = choose_kind(settings.faiss_index, len(rows.chunks), settings.ann_threshold,
                           settings.pq_threshold)
        info = write_store(tmp, rows, vectors=vecs, info=info, faiss_index_kind=kind, progress=progress is True)
        _swap_in(tmp, index_dir)
        _notify(progress, "書き込み", 1, 1, str(index_dir))
        return info
    except (OSError, sqlite3.Error) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise IndexWriteError(write_failure_message(index_dir, e)) from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- build


def finish_build(salvage: Sequence[Path], documents: Sequence[Any], messages: list[IngestMessage],
                 corpus_dir: str | Path) -> bool:
    """The end of a full build once the new index is swapped in (local and Ray): remove the
    salvaged cache directories, add the "no documents" error when nothing was indexed, and return
    whether the build is ok (documents, and no error message)."""
    for p in salvage:
        shutil.rmtree(p, ignore_errors=True)
    if not documents:
        messages.append(IngestMessage("error", str(corpus_dir), "索引できる文書がありません / no documents to index"))
    return not any(m.severity == "error" for m in messages)


def _load_progress(progress: Progress) -> bool | Callable[[int, int, str], None]:
    """What ``load_corpus`` takes as ``progress``: the bar flag, or a callback per document."""
    if not callable(progress):
        return progress
    return lambda done, total, doc_id: _notify(progress, "読み込み", done, total, doc_id)


def build_index(settings: Settings, *, progress: Progress = True, release_model: bool = False) -> BuildReport:
    """Build the index of ``settings.corpus_dir`` into ``settings.index_dir`` (atomically).

    Unchanged passages take their vectors from the embedding cache of the current index (and of
    stale temporary build directories), so a rebuild re-embeds only new or changed text.
    ``release_model`` frees the embedding model as soon as the vectors are done (``seisaku
    build`` does: at 100k chunks the peak RSS falls from ≈ 2.6 to ≈ 1.9 GB; the app keeps it to
    answer questions). Raises :class:`IndexBusyError` when another build holds the lock.

    ``progress``: True shows tqdm bars on stderr; a callable receives a :class:`BuildProgress` at
    each step of each stage (読み込み, トークン化, 埋め込み, 書き込み) instead; False is silent.
    """
    settings = real_paths(settings)
    with build_lock(Path(settings.index_dir)):
        return _build_locked(settings, progress=progress, release_model=release_model)


def _build_locked(settings: Settings, *, progress: Progress, extra_messages: Sequence[IngestMessage] = (),
                  release_model: bool = False) -> BuildReport:
    from corpus.loader import load_corpus

    t0 = time.monotonic()
    _use_ocr_cache(settings)
    index_dir = Path(settings.index_dir)
    own_tmp, salvage = begin_build(index_dir)

    loaded = load_corpus(settings.corpus_dir, max_tokens=settings.max_item_tokens, limits=settings.limits,
                         isolate=True, progress=_load_progress(progress))
    messages = [*extra_messages, *loaded.messages]
    chunks: list[Chunk] = list(loaded.chunks)
    embedder = get_embedder(settings)
    dim = embedder_dim(embedder, index_dir)
    tokenizer = Tokenizer()
    prompt = embedder.passage_prompt or ""
    keys = [embed_key(prompt, c.embed_text) for c in chunks]

    counts: dict[str, int] = {}
    for c in chunks:
        counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
    documents = [
        _doc_record(settings.corpus_dir, m, counts.get(m.doc_id, 0), loaded.messages)
        for m in (_meta_of(d) for d in loaded.documents)
    ]
    tokens, lemmas = _tokenize_all(tokenizer, chunks, _reusable_tokens(index_dir, tokenizer), progress)
    result: dict[str, Any] = {}

    def fill(cache: EmbeddingCache) -> np.ndarray:
        vecs, n_emb, n_cached = _embed(
            embedder,
            keys,
            [c.embed_text for c in chunks],
            _cache_sources(index_dir, salvage),
            cache,
            batch_size=settings.batch_size,
            progress=progress,
            dim=dim,
        )
        result.update(n_embedded=n_emb, n_cached=n_cached)
        if release_model:
            release_embedders()
        return vecs

    info = _finish_info(_base_info(settings, embedder, tokenizer, dim), settings.corpus_dir, documents, built_by="build")
    _write_and_swap(settings, IndexRows(chunks, tokens, keys, documents, lemmas), vectors=fill, info=info,
                    progress=progress)
    ok = finish_build(salvage, documents, messages, settings.corpus_dir)
    return BuildReport(
        n_docs=len(documents),
        n_chunks=len(chunks),
        n_embedded=result["n_embedded"],
        n_cached=result["n_cached"],
        messages=messages,
        ok=ok,
        action="build",
        index_dir=str(index_dir),
        elapsed=time.monotonic() - t0,
    )
