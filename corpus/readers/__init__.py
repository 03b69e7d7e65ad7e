"""Format readers: one file → :class:`~corpus.records.RawDocument` (pages of text + messages).

``read_document(path, rel)`` picks the reader by extension from :data:`READERS`. It never raises
for bad input: missing, empty, oversized, unsupported or unreadable files give a RawDocument with
no pages and an error message; problems on single pages are warnings naming the page.
"""
from __future__ import annotations

from pathlib import Path

from corpus.readers.base import DEFAULT_MAX_BYTES, Reader, failed
from corpus.readers.docx import DocxReader
from corpus.readers.html import HtmlReader
from corpus.readers.pdf import PdfReader
from corpus.readers.text import TextReader
from corpus.readers.xlsx import XlsxReader
from corpus.records import RawDocument

#: Extension (lower case, with the dot) → reader instance.
READERS: dict[str, Reader] = {
    ext: reader
    for reader in (TextReader(), PdfReader(), XlsxReader(), DocxReader(), HtmlReader())
    for ext in reader.extensions
}

#: The extensions :func:`read_document` can read.
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(READERS)

#: Common formats that are not supported, with what to do instead.
_ADVICE = {
    ".doc": "Word で .docx として保存し直してください / save as .docx",
    ".xls": "Excel で .xlsx として保存し直してください / save as .xlsx",
    ".ppt": "PDF に書き出してください / export to PDF",
    ".pptx": "PDF に書き出してください / export to PDF",
    ".rtf": "Word で .docx として保存し直してください / save as .docx",
    ".jtd": "一太郎から PDF か .docx に書き出してください / export to PDF or .docx",
    ".csv": "Excel で .xlsx として保存してください / save as .xlsx",
}


def _size(n: int) -> str:
    """A byte count for messages: MB from 1 MB up, else kB (a small configured limit stays legible)."""
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{max(1, round(n / 1024))} kB"


def reader_for(path: str | Path) -> Reader | None:
    """The reader for ``path``'s extension (case-insensitive), or None when unsupported."""
    return READERS.get(Path(path).suffix.lower())


def read_document(path: Path, rel: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> RawDocument:
    """Read ``path`` (reported as ``rel``, its manifest path) into pages of text.

    Never raises for bad input. Files larger than ``max_bytes`` are refused without being read.
    """
    path = Path(path)
    ext = path.suffix.lower()
    reader = READERS.get(ext)
    if reader is None:
        supported = " ".join(sorted(SUPPORTED_EXTENSIONS))
        advice = _ADVICE.get(ext, f"対応形式 / supported: {supported}")
        return failed(rel, f"対応していない形式です（{ext or '拡張子なし'}） / unsupported file type. {advice}")
    try:
        if not path.exists():
            return failed(rel, "ファイルがありません / file not found")
        if not path.is_file():
            return failed(rel, "通常のファイルではありません / not a regular file")
        size = path.stat().st_size
    except OSError as e:
        return failed(rel, f"ファイルを読めません / cannot access file: {e}")
    if size == 0:
        return failed(rel, "空のファイルです（0 バイト） / empty file")
    if size > max_bytes:
        return failed(
            rel,
            f"ファイルが大きすぎます（{_size(size)} > {_size(max_bytes)}）。読みませんでした"
            f" / file too large, not read",
        )
    try:
        return reader.read(path, rel)
    except PermissionError as e:
        return failed(rel, f"ファイルを読む権限がありません / permission denied: {e}")
    except MemoryError:
        return failed(rel, "メモリが足りず読めませんでした / out of memory while reading")
    except Exception as e:  # a reader bug or an exotic file must not stop the corpus
        return failed(rel, f"{reader.name} ファイルを読めませんでした / could not read {reader.name} file: {type(e).__name__}: {e}")


__all__ = ["READERS", "SUPPORTED_EXTENSIONS", "DEFAULT_MAX_BYTES", "Reader", "read_document", "reader_for"]
