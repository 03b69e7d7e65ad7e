"""Add or remove one document without a full rebuild.

- :func:`add_document` copies one file under ``<corpus>/uploads/`` (named by
  :func:`sanitise_filename`), appends its manifest row and indexes only that document (everything
  else is carried over from the current index).
- :func:`remove_document` drops one document's manifest row and chunks; nothing is re-embedded.

Both hold the build lock and write through the same temporary-directory swap as the full build
(:mod:`index.transaction`, :mod:`index.build`); when the index write fails, the manifest is put
back byte for byte (``_ManifestSnapshot``) and a copied upload is deleted again.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

from corpus.records import Chunk, DocumentMeta, IngestMessage
from index.build import (
    BuildReport,
    _build_locked,
    _cache_sources,
    _doc_record,
    _embed,
    _rewrite_info,
    _use_ocr_cache,
    _write_and_swap,
    get_embedder,
)
from index.config import Settings
from index.errors import IndexMismatchError, IndexMissingError, IndexWriteError
from index.store import INDEX_JSON, EmbeddingCache, IndexRows, IndexStore, bm25_text, embed_key, resolve_index_dir
from index.tokenizer import text_lemmas
from index.transaction import _recover, build_lock, real_paths, write_failure_message


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
    _write_and_swap(settings, IndexRows(chunks, tokens, keys, documents, lemmas), vectors=fill, info=info,
                    progress=False)
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
                _write_and_swap(settings, IndexRows(chunks, tokens, keys, documents, lemmas), vectors=fill,
                                info=info, progress=False)
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
