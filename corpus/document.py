"""Read and chunk one document: manifest row → reader → chunker → :class:`LoadedDocument`.

:func:`load_document` never raises for bad input or a chunker failure: both become error
messages on the document. It is what the document worker (:mod:`corpus.worker`) runs in its child
process, and what :func:`corpus.loader.load_corpus` runs in-process when it does not isolate.
Besides the chunks, the result carries the shape that cut the document and which pages went
which way (:func:`corpus.shapes.page_shapes`), so ``seisaku chunks`` can say so without reading
the document a second time.

Imports go one way: corpus.loader → corpus.worker → corpus.document → corpus.chunker.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from corpus import chunker
from corpus.limits import DocumentLimits, limit_message
from corpus.readers import read_document
from corpus.readers.ocr import mark_ocr_chunks
from corpus.records import Chunk, DocumentMeta, IngestMessage, RawDocument
from corpus.shapes import PageShape


@dataclass
class LoadedDocument:
    """What loading one document gave: its chunks, the messages about it, its page count, and how
    it was cut (the chunker's shape and the page runs; empty when it was not chunked)."""

    meta: DocumentMeta
    chunks: list[Chunk] = field(default_factory=list)
    messages: list[IngestMessage] = field(default_factory=list)
    #: Pages with text as read (0 when the file could not be read).
    n_pages: int = 0
    #: :attr:`corpus.chunker.ChunkResult.shape`, e.g. 「prose」 or 「pdf_table+prose」.
    shape: str = ""
    #: :attr:`corpus.chunker.ChunkResult.page_shapes`: runs of pages and the shape that cut them.
    page_shapes: list[PageShape] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when an error message says the document could not be used."""
        return any(m.severity == "error" for m in self.messages)


def read_entry(corpus_dir: Path, meta: DocumentMeta, *, limits: DocumentLimits | None = None) -> RawDocument:
    """Read the file of one manifest row within ``limits`` (default: ``DocumentLimits()``); never
    raises (errors are messages in the result)."""
    try:
        return read_document(Path(corpus_dir) / meta.path, meta.path, limits=limits or DocumentLimits())
    except Exception as e:  # read_document should not raise; belt and braces
        return RawDocument(
            path=meta.path,
            pages=[],
            messages=[IngestMessage("error", meta.path, f"読み込みに失敗しました / read failed: {type(e).__name__}: {e}")],
        )


def load_document(
    corpus_dir: Path,
    meta: DocumentMeta,
    *,
    max_tokens: int = 400,
    limits: DocumentLimits | None = None,
) -> LoadedDocument:
    """Read and chunk one document; return its chunks, the messages about it and how it was cut.

    Never raises for bad input or a chunker failure: both become error messages. A document that
    yields no chunks without an error gets a warning; one with more chunks than
    ``limits.max_doc_chunks`` (default: ``DocumentLimits()``) is refused with an error naming the
    limit (no chunks, no shape).
    """
    lim = limits or DocumentLimits()
    raw = read_entry(corpus_dir, meta, limits=lim)
    out = LoadedDocument(meta, messages=list(raw.messages), n_pages=len(raw.pages))
    if not raw.pages:
        if not out.messages:  # else the reader already said why (an error, or every page is a scan)
            out.messages.append(
                IngestMessage("warning", meta.path, "文字情報がないためチャンクを作れませんでした / no text, no chunks")
            )
        return out
    try:
        # looked up on the module at call time, so a test can put a failing chunker in its place
        res = chunker.chunk_document_detailed(raw, meta, max_tokens=max_tokens)
        chunks = list(res.chunks)
        mark_ocr_chunks(chunks, raw.pages)  # a chunk with a page read by OCR says so in its citation
    except Exception as e:
        out.messages.append(IngestMessage(
            "error", meta.path, f"チャンク分割に失敗しました / chunking failed: {type(e).__name__}: {e}",
        ))
        return out
    if not chunks:
        out.messages.append(
            IngestMessage("warning", meta.path, "チャンクが 1 つもできませんでした / the document yielded no chunks")
        )
        return out
    if len(chunks) > lim.max_doc_chunks:
        out.messages.append(IngestMessage("error", meta.path, limit_message(
            f"{len(chunks):,} 件の項目に分かれたため索引しませんでした（埋め込みに何時間もかかります）"
            f" / {len(chunks):,} chunks; document not indexed",
            lim.max_doc_chunks, "max_doc_chunks",
        )))
        return out
    out.chunks, out.shape, out.page_shapes = chunks, res.shape, list(res.page_shapes)
    return out
