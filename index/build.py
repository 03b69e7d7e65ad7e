"""Build and update the index: atomic build-aside-then-swap, embedding cache, add/remove.

- :func:`build_index` reads the whole corpus (``corpus.loader.load_corpus``), embeds only passages
  whose vectors are not in the embedding cache, tokenises for BM25 and writes a new index.
- :func:`add_document` copies one file under ``<corpus>/uploads/``, appends its manifest row and
  indexes only that document (everything else is carried over from the current index).
- :func:`remove_document` drops one document's manifest row and chunks; nothing is re-embedded.

Every writer builds into a sibling temporary directory ``<index_dir>.tmp-<pid>``, fsyncs it and
swaps it in (rename the old index aside to ``<index_dir>.old-<pid>``, rename the new one in, delete
the old one), so a crash at any moment leaves the previous index loadable (``IndexStore.open``
also reads an index left aside by a crash between the two renames). Stale temporary directories
are cleaned — after their embedding caches are salvaged — by the next build. A lock file
``<index_dir>.lock`` (an OS file lock, released if the process dies) stops concurrent builds.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import time
import unicodedata
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
    IndexStore,
    bm25_text,
    embed_key,
    read_terms,
    resolve_index_dir,
    sha256_text,
    write_store,
)
from index.tokenizer import Tokenizer, share_terms, text_lemmas

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


def write_failure_message(where: Path, e: BaseException) -> str:
    """A user message for a failed write of ``where`` (disk full, permission, other I/O error)."""
    import errno

    code = getattr(e, "errno", None)
    text = str(e)
    if code in (errno.ENOSPC, errno.EDQUOT) or "disk is full" in text or "No space" in text:
        why = "ディスクの空き容量が足りません / no space left on device"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS) or "readonly" in text or "read-only" in text:
        why = "書き込む権限がありません（読み取り専用） / permission denied or read-only file system"
    else:
        why = "書き込みに失敗しました / write failed"
    return (
        f"{where} に書き込めませんでした: {why}（{type(e).__name__}: {e}）。"
        f"以前のインデックスはそのまま使えます。空き容量と書き込み権限を確認してから、もう一度実行してください。"
        f" The previous index is unchanged."
    )


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


# --------------------------------------------------------------------------- lock, temp dirs, swap


def real_paths(settings: Settings) -> Settings:
    """``settings`` with ``index_dir`` and ``corpus_dir`` resolved (``~`` expanded, symbolic links
    followed: ``os.path.realpath``). Every writer resolves first, so an ``--index`` given as a
    link and its target are one index, with one lock file beside the real directory, and the swap
    replaces the real directory instead of the link."""
    return settings.with_overrides(
        index_dir=Path(os.path.realpath(Path(settings.index_dir).expanduser())),
        corpus_dir=Path(os.path.realpath(Path(settings.corpus_dir).expanduser())),
    )


def _use_ocr_cache(settings: Settings) -> None:
    """OCR results of this build go to ``<cache_dir>/ocr`` (corpus.readers.ocr; the document
    worker hands the setting to its child), so a rebuild never OCRs a page again."""
    from corpus.readers import ocr

    ocr.CACHE_DIR = Path(settings.cache_dir).expanduser() / "ocr"


def _sibling(index_dir: Path, suffix: str) -> Path:
    return index_dir.with_name(index_dir.name + suffix)


def lock_path(index_dir: Path) -> Path:
    """The lock file of an index directory: ``<index_dir>.lock`` (beside it, since it is swapped)."""
    return _sibling(Path(index_dir), ".lock")


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[Path]:
    """Hold the exclusive build lock of ``index_dir``; raise :class:`IndexBusyError` if taken.

    The lock is :class:`filelock.FileLock` on ``<index_dir>.lock`` (``flock`` on POSIX): the
    operating system releases it when the holding process exits or is killed, so it never goes
    stale. The holder writes its process id into the file, for the busy message of the next one.
    """
    from filelock import FileLock, Timeout

    index_dir = Path(index_dir)
    path = lock_path(index_dir)
    try:
        index_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise IndexWriteError(write_failure_message(path, e)) from e
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout as e:
        raise IndexBusyError(_busy_message(index_dir, path)) from e
    except OSError as e:
        raise IndexWriteError(write_failure_message(path, e)) from e
    try:
        _write_holder(path)
        yield path
    finally:
        lock.release()


def _write_holder(path: Path) -> None:
    """Write ``<pid> <UTC time>`` into the held lock file (it names the holder in the busy message)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {datetime.now(timezone.utc).isoformat()}\n".encode())
        finally:
            os.close(fd)


def _busy_message(index_dir: Path, path: Path) -> str:
    holder = ""
    with contextlib.suppress(OSError):
        holder = path.read_text(encoding="utf-8").split()[0]
    who = f"（プロセス {holder}）" if holder else ""
    return (
        f"インデックス {index_dir} は別の処理{who}が作成・更新中です。終わってからもう一度実行してください。"
        f" Another build is running on this index (lock file {path}); wait for it to finish."
    )


def _stale_tmp_dirs(index_dir: Path) -> list[Path]:
    return sorted(p for p in index_dir.parent.glob(index_dir.name + ".tmp-*") if p.is_dir())


def _recover(index_dir: Path) -> None:
    """Under the lock: put back an index a crash left aside and delete leftover ``.old-*`` dirs."""
    olds = sorted(index_dir.parent.glob(index_dir.name + ".old-*"), key=lambda p: p.stat().st_mtime)
    if not (index_dir / INDEX_JSON).is_file():
        good = [p for p in olds if (p / INDEX_JSON).is_file()]
        if good:
            if index_dir.exists():
                shutil.rmtree(index_dir, ignore_errors=True)
            os.rename(good[-1], index_dir)
            olds = [p for p in olds if p != good[-1]]
    for p in olds:
        shutil.rmtree(p, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _swap_in(tmp: Path, index_dir: Path) -> None:
    """Replace ``index_dir`` by the complete directory ``tmp``: rename aside, rename in, delete."""
    old = None
    if index_dir.exists():
        old = _sibling(index_dir, f".old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.rename(index_dir, old)
    try:
        os.rename(tmp, index_dir)
    except BaseException:
        if old is not None:  # put the previous index back at once
            with contextlib.suppress(OSError):
                os.rename(old, index_dir)
        raise
    _fsync_dir(index_dir.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _new_tmp(index_dir: Path) -> Path:
    tmp = _sibling(index_dir, f".tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


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
    return DocumentRecord(
        doc_id=meta.doc_id,
        municipality=meta.municipality,
        prefecture=meta.prefecture,
        title=meta.title,
        year=meta.year,
        kind=meta.kind,
        url=meta.url,
        sha256=file_sha256(Path(corpus_dir) / meta.path),
        n_chunks=n_chunks,
        messages=_messages_for(meta.doc_id, messages),
    )


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
) -> tuple[np.ndarray, int, int]:
    """Vectors for ``texts`` (one per key): from ``known``, the cache ``sources``, else embedded.

    Every vector used is written to ``new_cache``. Returns ``(vectors, n_embedded, n_cached)``
    counted over distinct keys.
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
        try:
            for i in range(0, len(todo), EMBED_BLOCK):
                block = todo[i : i + EMBED_BLOCK]
                vecs = np.asarray(
                    embedder.encode_passages([texts_u[r] for r in block], batch_size=batch_size, show_progress=False),
                    dtype=np.float32,
                )
                if vecs.shape != (len(block), dim):
                    raise RuntimeError(f"embedder returned shape {vecs.shape}, expected {(len(block), dim)}")
                mat[block] = vecs
                new_cache.put_many(model_id, ((ukeys[r], mat[r]) for r in block))
                bar.update(len(block))
                _notify(progress, "埋め込み", i + len(block), len(todo), cached_note)
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
    *,
    chunks: list[Chunk],
    tokens: list[list[str]],
    vectors: Callable[[EmbeddingCache], np.ndarray],
    keys: list[str],
    documents: list[DocumentRecord],
    info: dict[str, Any],
    progress: Progress,
    lemmas: list[list[str]] | None = None,
) -> dict[str, Any]:
    """Write a complete index to a temp sibling dir, fsync, swap it in.

    ``vectors(cache)`` fills the new embedding cache and returns the vectors of ``chunks``.
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
        kind = choose_kind(settings.faiss_index, len(chunks), settings.ann_threshold)
        info = write_store(
            tmp,
            chunks=chunks,
            tokens=tokens,
            vectors=vecs,
            embed_keys=keys,
            documents=documents,
            info=info,
            faiss_index_kind=kind,
            progress=progress is True,
            lemmas=lemmas,
        )
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
    _recover(index_dir)
    # temp dirs of builds that died (we hold the lock, so none is in use): their embedding caches
    # are read as extra sources, and they are deleted once the new index is in place
    own_tmp = _sibling(index_dir, f".tmp-{os.getpid()}")
    salvage = [p for p in _stale_tmp_dirs(index_dir) if p != own_tmp]

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
    _write_and_swap(
        settings,
        chunks=chunks,
        tokens=tokens,
        vectors=fill,
        keys=keys,
        documents=documents,
        info=info,
        progress=progress,
        lemmas=lemmas,
    )
    for p in salvage:
        shutil.rmtree(p, ignore_errors=True)
    ok = bool(documents) and not any(m.severity == "error" for m in messages)
    if not documents:
        messages.append(IngestMessage("error", str(settings.corpus_dir), "索引できる文書がありません / no documents to index"))
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


# --------------------------------------------------------------------------- add / remove


_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
#: Bidirectional controls (LRM, RLM, ALM, embeddings/overrides U+202A–E, isolates U+2066–9): a
#: right-to-left override makes 「report\u202Etxt.exe」 display as 「reportexe.txt」.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def sanitise_filename(name: str) -> str:
    """A safe file name for ``uploads/``: NFC, no path separators, control, bidirectional-control
    or reserved characters, no leading dots or spaces (a name that is only dots and an extension,
    such as ``..txt``, keeps its extension: ``_.txt``). Raises ValueError for names that are
    empty or only dots."""
    from corpus.readers import file_extension

    base = unicodedata.normalize("NFC", name).replace("\\", "/").split("/")[-1]
    base = _UNSAFE.sub("_", _BIDI.sub("", base)).strip()
    ext = file_extension(base)
    base = base.lstrip(".").strip()
    if ext and file_extension(base) != ext and base.strip("_"):
        base = "_" + ext  # '..txt' would become 'txt': keep it a .txt
    if not base or set(base) <= {".", "_"}:
        raise ValueError(f"ファイル名として使えません: {name!r}")
    if len(base.encode("utf-8")) > 200:
        stem, ext = os.path.splitext(base)
        base = stem.encode("utf-8")[: 200 - len(ext.encode())].decode("utf-8", "ignore") + ext
    return base


class _ManifestSnapshot:
    """The manifest's exact bytes, to put back (atomically) when an add/remove is rolled back."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.data = self.path.read_bytes() if self.path.exists() else None

    def restore(self) -> None:
        """Write the saved bytes back (or delete a manifest that did not exist before)."""
        with contextlib.suppress(OSError):
            if self.data is None:
                self.path.unlink(missing_ok=True)
                return
            if self.path.is_file() and self.path.read_bytes() == self.data:
                return  # unchanged (e.g. the write that failed never replaced it)
            tmp = self.path.with_name(self.path.name + f".rollback-{os.getpid()}")
            try:
                with open(tmp, "wb") as f:
                    f.write(self.data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            finally:
                tmp.unlink(missing_ok=True)


def _refused(doc_id: str, message: str, settings: Settings, action: str) -> BuildReport:
    n_docs = n_chunks = 0
    with contextlib.suppress(Exception):
        info = json.loads((resolve_index_dir(Path(settings.index_dir)) / INDEX_JSON).read_text(encoding="utf-8"))
        n_docs, n_chunks = int(info.get("n_documents", 0)), int(info.get("n_chunks", 0))
    return BuildReport(
        n_docs=n_docs,
        n_chunks=n_chunks,
        messages=[IngestMessage("error", doc_id, message)],
        ok=False,
        action=action,
        index_dir=str(settings.index_dir),
        doc_id=doc_id,
        changed=False,
    )


def _open_current(settings: Settings, expected_model_id: str | None) -> IndexStore | None:
    """The current index, or None when there is none or it cannot be updated incrementally."""
    try:
        return IndexStore.open(settings.index_dir, expected_model_id=expected_model_id, mmap=False)
    except (IndexMissingError, IndexMismatchError):
        return None


def add_document(
    settings: Settings,
    file: Path,
    *,
    municipality: str,
    prefecture: str = "",
    title: str = "",
    year: str = "",
    kind: str = "",
    url: str = "",
    progress: bool = False,
) -> BuildReport:
    """Add one file to the corpus and the index without a full rebuild.

    The document is read and chunked in a child process (:class:`corpus.worker.DocumentWorker`):
    when that crashes, runs past ``max_doc_seconds`` or breaks another per-document limit, the
    copied file and the manifest row are rolled back and the report says which. ``progress``
    prints each step (and an embedding bar) on stderr.

    The file is copied to ``<corpus_dir>/uploads/<sanitised name>`` and its manifest row appended;
    only this document is read, chunked, tokenised and embedded, and the index is rewritten
    atomically. Refused (``ok=False``, nothing changed): missing files, unsupported extensions,
    names that cannot be made safe, a document id already in the manifest. When the document
    cannot be read (an error message or no text), the manifest row and the copied file are
    removed again and the index is left as it was. Without a usable current index (none, or
    built with another model), a full build runs instead.
    """
    from corpus.manifest import append_entry, manifest_path, read_manifest
    from corpus.readers import SUPPORTED_EXTENSIONS, check_file, file_extension
    from corpus.worker import DocumentWorker

    def say(line: str) -> None:
        if progress:
            print(line, file=sys.stderr, flush=True)

    t0 = time.monotonic()
    settings = real_paths(settings)
    _use_ocr_cache(settings)
    src = Path(file).expanduser()
    corpus_dir = Path(settings.corpus_dir)
    try:
        name = sanitise_filename(src.name)
    except ValueError as e:
        return _refused(str(file), str(e), settings, "add")
    doc_id = f"uploads/{name}"
    problem = check_file(src)
    if problem:
        return _refused(doc_id, f"{problem}: {src}", settings, "add")
    ext = file_extension(name)
    if ext not in SUPPORTED_EXTENSIONS:
        allowed = " ".join(sorted(SUPPORTED_EXTENSIONS))
        return _refused(doc_id, f"対応していない形式です: {ext or '(拡張子なし)'}（対応: {allowed}）", settings, "add")
    if not municipality.strip():
        return _refused(doc_id, "自治体名（municipality）を指定してください", settings, "add")
    uploads = (corpus_dir / "uploads").resolve()
    dest = (uploads / name).resolve()
    if dest.parent != uploads:
        return _refused(doc_id, f"コーパスの外を指すファイル名は使えません: {name}", settings, "add")

    index_dir = Path(settings.index_dir)
    with build_lock(index_dir):
        _recover(index_dir)
        entries = read_manifest(corpus_dir).entries if manifest_path(corpus_dir).exists() else []
        if any(e.doc_id == doc_id for e in entries):
            return _refused(doc_id, f"同じ文書 ID が既に登録されています: {doc_id}", settings, "add")
        if dest.exists():
            return _refused(doc_id, f"同名のファイルが既にあります: {dest}", settings, "add")
        meta = DocumentMeta(
            path=doc_id, municipality=municipality.strip(), prefecture=prefecture, title=title or src.stem,
            year=str(year or ""), kind=kind, url=url,
        )
        snapshot = _ManifestSnapshot(manifest_path(corpus_dir))

        def rollback() -> None:
            snapshot.restore()
            with contextlib.suppress(OSError):
                dest.unlink()

        try:
            uploads.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
        except OSError as e:
            rollback()
            raise IndexWriteError(write_failure_message(dest, e)) from e
        try:
            append_entry(corpus_dir, meta)
            say(f"読み込みと分割: {doc_id}")
            with DocumentWorker(max_tokens=settings.max_item_tokens, limits=settings.limits) as worker:
                loaded = worker.load(corpus_dir, meta)  # a crash or a limit is a message, not our death
            new_chunks, messages = loaded.chunks, loaded.messages
            if any(m.severity == "error" for m in messages) or not new_chunks:
                rollback()
                if not any(m.severity == "error" for m in messages):
                    messages.append(IngestMessage("error", doc_id, "本文を取り出せませんでした / no text could be extracted"))
                rep = _refused(doc_id, "", settings, "add")
                rep.messages = messages
                return rep
            embedder = get_embedder(settings)
            current = _open_current(settings, str(embedder.model_id))
            if current is None:
                say("使える索引がないため、コーパス全体を索引します")
                rep = _build_locked(settings, progress=progress)
                rep.action, rep.doc_id = "add", doc_id
                rep.n_doc_chunks = len(new_chunks)
                rep.messages = [*messages, *[m for m in rep.messages if m not in messages]]
                return rep
            say(f"{len(new_chunks)} 件の項目を索引に追加します（埋め込み・BM25・索引の書き換え）")
            rep = _add_to_store(settings, current, embedder, meta, new_chunks, messages, progress=progress)
            rep.elapsed = time.monotonic() - t0
            return rep
        except OSError as e:  # e.g. the manifest could not be rewritten (disk full)
            rollback()
            raise IndexWriteError(write_failure_message(corpus_dir, e)) from e
        except BaseException:
            rollback()
            raise


def _add_to_store(
    settings: Settings,
    current: IndexStore,
    embedder: Any,
    meta: DocumentMeta,
    new_chunks: list[Chunk],
    messages: list[IngestMessage],
    *,
    progress: bool = False,
) -> BuildReport:
    tokenizer = current.tokenizer
    prompt = embedder.passage_prompt or ""
    if prompt != (current.info.get("passage_prompt") or ""):
        raise IndexMismatchError(
            f"パッセージのプロンプトが索引作成時と異なります: `seisaku build --index {settings.index_dir}` で作り直してください。"
        )
    old_keys = current.embed_keys()
    old_tokens, old_lemmas = current.chunk_terms()
    old_lemmas = old_lemmas or [text_lemmas(c.text) for c in current.chunks]
    old_vecs = current.vectors()
    new_keys = [embed_key(prompt, c.embed_text) for c in new_chunks]
    new_tokens = [tokenizer.tokenize(bm25_text(c)) for c in new_chunks]
    chunks = [*current.chunks, *new_chunks]
    keys = [*old_keys, *new_keys]
    tokens = [*old_tokens, *new_tokens]
    lemmas = [*old_lemmas, *(text_lemmas(c.text) for c in new_chunks)]
    documents = [*current.documents.values(), _doc_record(settings.corpus_dir, meta, len(new_chunks), messages)]
    known = dict(zip(old_keys, old_vecs))
    result: dict[str, Any] = {}

    def fill(cache: EmbeddingCache) -> np.ndarray:
        vecs, n_emb, n_cached = _embed(
            embedder, keys, [c.embed_text for c in chunks], _cache_sources(Path(settings.index_dir), []),
            cache, batch_size=settings.batch_size, progress=progress, known=known, dim=current.dim,
        )
        result.update(n_embedded=n_emb, n_cached=n_cached)
        return vecs

    info = _rewrite_info(current, settings.corpus_dir, documents, "add")
    _write_and_swap(
        settings, chunks=chunks, tokens=tokens, vectors=fill, keys=keys,
        documents=documents, info=info, progress=False, lemmas=lemmas,
    )
    return BuildReport(
        n_docs=len(documents), n_chunks=len(chunks), n_embedded=result["n_embedded"],
        n_cached=result["n_cached"],
        messages=messages, ok=True, action="add", index_dir=str(settings.index_dir), doc_id=meta.doc_id,
        n_doc_chunks=len(new_chunks),
    )


def remove_document(settings: Settings, doc_id: str, *, delete_file: bool = False) -> BuildReport:
    """Remove one document: its manifest row and its chunks (atomically); nothing is re-embedded.

    With ``delete_file`` the file under the corpus directory is deleted too (only a file inside the
    corpus directory). A document that is neither in the manifest nor in the index is refused.
    """
    from corpus.manifest import manifest_path, read_manifest, remove_entry

    t0 = time.monotonic()
    settings = real_paths(settings)
    corpus_dir = Path(settings.corpus_dir)
    index_dir = Path(settings.index_dir)
    with build_lock(index_dir):
        _recover(index_dir)
        entries = read_manifest(corpus_dir).entries
        meta = next((e for e in entries if e.doc_id == doc_id), None)
        stale_index = False
        try:
            current: IndexStore | None = IndexStore.open(index_dir, mmap=False)
        except IndexMissingError:
            current = None
        except IndexMismatchError:  # cannot be rewritten here; the next full build drops the document
            current, stale_index = None, True
        in_index = current is not None and doc_id in current.documents
        if meta is None and not in_index:
            return _refused(doc_id, f"その文書はコーパスにもインデックスにもありません: {doc_id}", settings, "remove")
        snapshot = _ManifestSnapshot(manifest_path(corpus_dir))
        if meta is not None:
            remove_entry(corpus_dir, doc_id)
        messages: list[IngestMessage] = []
        removed = 0
        try:
            if current is not None and in_index:
                keep = [i for i, c in enumerate(current.chunks) if c.doc_id != doc_id]
                removed = len(current.chunks) - len(keep)
                old_keys = current.embed_keys()
                old_tokens, old_lemmas = current.chunk_terms()
                vecs = current.vectors(keep)
                chunks = [current.chunks[i] for i in keep]
                keys = [old_keys[i] for i in keep]
                tokens = [old_tokens[i] for i in keep]
                lemmas = [old_lemmas[i] for i in keep] if old_lemmas is not None else None
                documents = [d for d in current.documents.values() if d.doc_id != doc_id]
                model_id = current.model_id

                def fill(cache: EmbeddingCache) -> np.ndarray:
                    cache.put_many(model_id, dict(zip(keys, vecs)).items())
                    return vecs

                info = _rewrite_info(current, corpus_dir, documents, "remove")
                _write_and_swap(
                    settings, chunks=chunks, tokens=tokens, vectors=fill, keys=keys, documents=documents,
                    info=info, progress=False, lemmas=lemmas,
                )
            elif current is None:
                why = "インデックスが古い形式か別のモデルで作られています" if stale_index else "インデックスがまだありません"
                messages.append(IngestMessage("warning", doc_id, f"{why}。`seisaku build` を実行してください"))
        except BaseException:
            snapshot.restore()
            raise
        if delete_file:
            target = (corpus_dir / doc_id).resolve()
            if corpus_dir.resolve() in target.parents and target.is_file():
                target.unlink()
            else:
                messages.append(IngestMessage("warning", doc_id, "ファイルはコーパスの外にあるか存在しないため削除しませんでした"))
        n_docs = len(current.documents) - (1 if in_index else 0) if current is not None else 0
        n_chunks = len(current.chunks) - removed if current is not None else 0
        return BuildReport(
            n_docs=n_docs, n_chunks=n_chunks, messages=messages, ok=True, action="remove",
            index_dir=str(index_dir), doc_id=doc_id, n_doc_chunks=removed, elapsed=time.monotonic() - t0,
            changed=in_index,
        )
