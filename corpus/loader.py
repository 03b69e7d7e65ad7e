"""Load the corpus: manifest rows → readers → chunker → chunks, with every problem reported.

Each document is read and chunked by :func:`corpus.document.load_document`. One broken file never
stops the load: any exception while reading or chunking one document becomes an error
:class:`IngestMessage` for that document and the loop goes on. With
``isolate=True`` (what ``seisaku build`` uses) every document is read and chunked in a child process
(:class:`corpus.worker.DocumentWorker`), so a document that crashes the interpreter or runs past
``max_doc_seconds`` is named, skipped and the loop still goes on. Per-document limits
(:class:`corpus.limits.DocumentLimits`) bound pages, sheet rows, characters and chunks. Every manifest
row is listed in :attr:`CorpusLoad.documents`, also when its file failed; the messages say why.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from corpus.document import load_document
from corpus.limits import DocumentLimits
from corpus.manifest import normalize_rel_path, read_manifest
from corpus.records import Chunk, DocumentMeta, IngestMessage
from corpus.shapes import PageShape
from corpus.worker import DocumentWorker

#: Version of what readers + loader produce; recorded in the index (index.build) so that an index
#: built from older reader output is rebuilt. Bump it when a reader's text output changes.
VERSION = "6"


@dataclass
class CorpusLoad:
    """Result of :func:`load_corpus`."""

    documents: list[DocumentMeta] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    messages: list[IngestMessage] = field(default_factory=list)
    #: Pages with text per document id (0 for a document that could not be read).
    page_counts: dict[str, int] = field(default_factory=dict)
    #: The chunker's shape per document id that gave chunks (「prose」, 「pdf_table+prose」, …).
    shapes: dict[str, str] = field(default_factory=dict)
    #: Which pages were cut how, per document id that gave chunks (:mod:`corpus.shapes`).
    page_shapes: dict[str, list[PageShape]] = field(default_factory=dict)

    @property
    def errors(self) -> list[IngestMessage]:
        """The error messages only."""
        return [m for m in self.messages if m.severity == "error"]

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """The chunks of one document, in order."""
        return [c for c in self.chunks if c.doc_id == doc_id]


def load_corpus(
    corpus_dir: Path,
    *,
    only: str | None = None,
    max_tokens: int = 400,
    limits: DocumentLimits | None = None,
    isolate: bool = False,
    progress: bool | Callable[[int, int, str], None] = False,
) -> CorpusLoad:
    """Read the manifest of ``corpus_dir`` and load every document (or only the one whose
    manifest path is ``only``) into chunks, collecting all messages.

    ``limits`` (default: ``DocumentLimits()``) bounds every document.
    ``isolate`` loads each document in a child process (:class:`corpus.worker.DocumentWorker`):
    a document that crashes it or exceeds ``limits.max_doc_seconds`` gets an error and is skipped.
    ``progress``: True shows a bar per document on stderr; a callable is called as
    ``progress(done, total, doc_id)`` after each document instead.
    Raises :class:`~corpus.errors.ManifestError` only when the manifest itself is unusable.
    """
    lim = limits or DocumentLimits()
    corpus_dir = Path(corpus_dir)
    manifest = read_manifest(corpus_dir, check_unlisted=only is None)
    out = CorpusLoad(messages=list(manifest.messages))
    entries = manifest.entries
    if only is not None:
        target = normalize_rel_path(only)
        entries = [e for e in entries if e.path == target]
        if not entries:
            out.messages = [m for m in out.messages if m.path == target or m.line is not None]
            out.messages.append(
                IngestMessage("error", target, "manifest.csv に載っていない（または読み飛ばされた）文書です / not in the manifest")
            )
            return out
    from tqdm.auto import tqdm

    worker = DocumentWorker(max_tokens=max_tokens, limits=lim) if isolate else None
    try:
        bar = progress is True and len(entries) >= 2
        if callable(progress):
            progress(0, len(entries), "")
        for i, meta in enumerate(tqdm(entries, desc="読み込み", unit="文書", disable=not bar), 1):
            out.documents.append(meta)
            if worker is not None:
                loaded = worker.load(corpus_dir, meta)
            else:
                loaded = load_document(corpus_dir, meta, max_tokens=max_tokens, limits=lim)
            out.page_counts[meta.path] = loaded.n_pages
            if loaded.chunks:
                out.shapes[meta.path] = loaded.shape
                out.page_shapes[meta.path] = loaded.page_shapes
            out.chunks.extend(loaded.chunks)
            out.messages.extend(loaded.messages)
            if callable(progress):
                progress(i, len(entries), meta.doc_id)
    finally:
        if worker is not None:
            worker.close()
    return out
