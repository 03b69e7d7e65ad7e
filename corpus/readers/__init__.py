"""Format readers: one file → :class:`~corpus.records.RawDocument` (pages of text + messages).

``read_document(path, rel)`` picks the reader by extension (:func:`file_extension`) from
:data:`READERS`. It never raises for bad input: missing, empty, oversized, unsupported, unreadable
and non-regular files (a FIFO is never opened) give a RawDocument with no pages and an error
message; problems on single pages are warnings naming the page. ``limits``
(:class:`~corpus.limits.DocumentLimits`) is the one place the bounds come from: a file over
``max_file_bytes`` is refused unread, the readers stop after ``max_pages`` PDF pages and
``max_sheet_rows`` rows per sheet, and text beyond ``max_doc_chars`` is cut, each with a warning
naming the limit. Without ``limits`` only the default file size bound applies.
"""
from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

from corpus.limits import DEFAULT_MAX_FILE_BYTES, DocumentLimits, limit_message
from corpus.readers.base import Reader, failed, warning
from corpus.readers.docx import DocxReader
from corpus.readers.html import HtmlReader
from corpus.readers.pdf import PdfReader
from corpus.readers.text import TextReader
from corpus.readers.xlsx import XlsxReader
from corpus.records import Page, RawDocument

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


def file_extension(name: str | Path) -> str:
    """The lower-case extension, with its dot, of the last component of ``name`` ('' for none).

    Unlike ``os.path.splitext`` (and ``PurePath.suffix`` in some Python versions), leading dots
    do not hide the extension: ``..txt`` and ``.txt`` are ``.txt``. Names ending in a dot or made
    of dots only have none."""
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    i = base.rfind(".")
    if i < 0 or i == len(base) - 1:
        return ""
    return base[i:].lower()


def reader_for(path: str | Path) -> Reader | None:
    """The reader for ``path``'s extension (case-insensitive), or None when unsupported."""
    return READERS.get(file_extension(path))


#: ``stat`` file types that are not regular files, for messages.
_FILE_KINDS = (
    (stat.S_ISDIR, "フォルダ / directory"),
    (stat.S_ISFIFO, "名前付きパイプ / FIFO"),
    (stat.S_ISSOCK, "ソケット / socket"),
    (stat.S_ISCHR, "デバイス / character device"),
    (stat.S_ISBLK, "デバイス / block device"),
)


def not_regular_message(mode: int) -> str | None:
    """The error message for a file whose ``st_mode`` is not a regular file (None when it is),
    e.g. 「通常のファイルではありません（名前付きパイプ） / not a regular file (FIFO)」."""
    if stat.S_ISREG(mode):
        return None
    kind = next((k for test, k in _FILE_KINDS if test(mode)), "")
    ja, _, en = kind.partition(" / ")
    return (
        f"通常のファイルではありません（{ja}） / not a regular file ({en})"
        if kind
        else "通常のファイルではありません / not a regular file"
    )


def _stat(path: str | Path) -> os.stat_result | str:
    """``os.stat(path)`` (follows links, opens nothing), or the message saying why it failed."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return "ファイルがありません / file not found"
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        return f"ファイルを読めません / cannot access file: {e}"


def check_file(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a document (not found, not a regular file, inaccessible),
    or None. Uses ``stat`` only: a FIFO or device is never opened, so nothing blocks."""
    st = _stat(path)
    return st if isinstance(st, str) else not_regular_message(st.st_mode)


def cut_text(doc: RawDocument, max_chars: int) -> RawDocument:
    """``doc`` with at most ``max_chars`` characters of page text (summed over pages), plus a
    warning naming the limit when text was cut. Pages after the boundary are dropped; the page
    at the boundary is cut at its last line end within the limit, or at the limit when that page
    has no line end before it. ``doc`` itself is returned when it is within the limit."""
    total = sum(len(p.text) for p in doc.pages)
    if total <= max_chars:
        return doc
    kept: list[Page] = []
    where = ""
    room = max_chars
    for p in doc.pages:
        if len(p.text) <= room:
            kept.append(p)
            room -= len(p.text)
            continue
        head = p.text[:room]
        nl = head.rfind("\n")
        head = head[:nl] if nl > 0 else head
        if head.strip():
            kept.append(replace(p, text=head))
        where = p.label or f"p.{p.number}"
        break
    what = (
        f"{where} の途中以降（全 {total:,} 文字）は読みませんでした"
        f" / text from {where} on not read ({total:,} characters in all)"
    )
    cut = warning(doc.path, limit_message(what, max_chars, "max_doc_chars"))
    return replace(doc, pages=kept, messages=[*doc.messages, cut])


def read_document(path: Path, rel: str, *, limits: DocumentLimits | None = None) -> RawDocument:
    """Read ``path`` (reported as ``rel``, its manifest path) into pages of text.

    Never raises for bad input. Files larger than ``limits.max_file_bytes`` (without ``limits``:
    :data:`~corpus.limits.DEFAULT_MAX_FILE_BYTES`) are refused without being read; non-regular
    files (FIFO, directory, device) are refused without being opened. ``limits`` also bounds
    pages, sheet rows and characters (see the module docstring); without it they are unbounded.
    """
    path = Path(path)
    max_bytes = limits.max_file_bytes if limits is not None else DEFAULT_MAX_FILE_BYTES
    ext = file_extension(path.name)
    reader = READERS.get(ext)
    if reader is None:
        supported = " ".join(sorted(SUPPORTED_EXTENSIONS))
        advice = _ADVICE.get(ext, f"対応形式 / supported: {supported}")
        return failed(rel, f"対応していない形式です（{ext or '拡張子なし'}） / unsupported file type. {advice}")
    st = _stat(path)
    if isinstance(st, str):
        return failed(rel, st)
    problem = not_regular_message(st.st_mode)
    if problem:
        return failed(rel, problem)
    size = st.st_size
    if size == 0:
        return failed(rel, "空のファイルです（0 バイト） / empty file")
    if size > max_bytes:
        return failed(
            rel,
            f"ファイルが大きすぎます（{_size(size)} > {_size(max_bytes)}）。読みませんでした"
            f" / file too large, not read",
        )
    try:
        doc = reader.read(path, rel, limits)
        return cut_text(doc, limits.max_doc_chars) if limits is not None else doc
    except PermissionError as e:
        return failed(rel, f"ファイルを読む権限がありません / permission denied: {e}")
    except MemoryError:
        return failed(rel, "メモリが足りず読めませんでした / out of memory while reading")
    except Exception as e:  # a reader bug or an exotic file must not stop the corpus
        return failed(rel, f"{reader.name} ファイルを読めませんでした / could not read {reader.name} file: {type(e).__name__}: {e}")


__all__ = [
    "READERS", "SUPPORTED_EXTENSIONS", "Reader", "check_file", "cut_text",
    "file_extension", "not_regular_message", "read_document", "reader_for",
]
