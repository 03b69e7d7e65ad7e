"""The reader contract, message helpers and guards shared by all format readers.

A reader turns one file into a :class:`~corpus.records.RawDocument`: pages of text with 1-based
page numbers, plus :class:`~corpus.records.IngestMessage` warnings and errors. Readers never raise
for bad input; a file that cannot be read gives ``RawDocument(pages=[], messages=[error])``.
"""
from __future__ import annotations

import importlib
import zipfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from corpus.limits import DocumentLimits
from corpus.records import IngestMessage, Page, RawDocument

#: Zip containers (.xlsx, .docx): refuse when the members would expand beyond this (bytes) ...
MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
#: ... or when they expand more than this many times their compressed size ...
MAX_COMPRESSION_RATIO = 100.0
#: ... the ratio check applies once the expanded size exceeds this (small XML parts compress
#: very well; a ratio alone says nothing about a 40 kB part).
RATIO_CHECK_MIN_BYTES = 10 * 1024 * 1024


def error(rel: str, message: str, *, page: int | None = None) -> IngestMessage:
    """An error message about ``rel`` (the file is skipped)."""
    return IngestMessage("error", rel, message, page=page)


def warning(rel: str, message: str, *, page: int | None = None) -> IngestMessage:
    """A warning about ``rel`` (the file, or the rest of it, is still read)."""
    return IngestMessage("warning", rel, message, page=page)


def failed(rel: str, message: str, messages: list[IngestMessage] | None = None) -> RawDocument:
    """A RawDocument for a file that could not be read: no pages, one error (after ``messages``)."""
    return RawDocument(path=rel, pages=[], messages=[*(messages or []), error(rel, message)])


def missing_package(package: str, fmt: str) -> str:
    """The message for an optional dependency that is not installed."""
    return (
        f"{fmt} を読むためのパッケージ {package} がインストールされていません（pip install {package}）"
        f" / the package '{package}' needed to read {fmt} files is not installed"
    )


def check_zip_container(
    path: Path,
    fmt: str,
    *,
    max_uncompressed: int = MAX_UNCOMPRESSED_BYTES,
    max_ratio: float = MAX_COMPRESSION_RATIO,
    ratio_min_bytes: int = RATIO_CHECK_MIN_BYTES,
) -> str | None:
    """Check an Office (zip) file before opening it; return an error message or None when safe.

    Refuses files that are not zip archives and zip bombs: a declared uncompressed total above
    ``max_uncompressed`` or, for totals above ``ratio_min_bytes``, an overall compression ratio
    above ``max_ratio``. Python's zipfile never inflates a member past its declared size, so the
    declared sizes bound what the Office libraries can read.
    """
    try:
        with path.open("rb") as f:
            magic = f.read(8)
    except OSError as e:
        return f"ファイルを読めません / cannot read file: {e}"
    if magic.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return (
            f"パスワード付き（暗号化）か旧形式（.xls/.doc）の Office ファイルです。保護を解除して {fmt} で"
            f"保存し直してください / encrypted (password-protected) or legacy binary Office file, not {fmt}"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        return (
            f"{fmt} ファイルとして開けません（zip 形式ではないか、壊れています）"
            f" / not a valid {fmt} file (not a zip archive or corrupt): {e}"
        )
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if total > max_uncompressed:
        return (
            f"展開後のサイズが大きすぎます（{total / 2**20:.0f} MB > {max_uncompressed / 2**20:.0f} MB）。"
            f"zip 爆弾の可能性があるため読みません / uncompressed size too large (possible zip bomb)"
        )
    if total > ratio_min_bytes and total > max_ratio * max(packed, 1):
        return (
            f"圧縮率が異常です（{total / max(packed, 1):.0f} 倍 > {max_ratio:.0f} 倍）。"
            f"zip 爆弾の可能性があるため読みません / compression ratio too high (possible zip bomb)"
        )
    return None


def zip_library(path: Path, rel: str, fmt: str, module: str, package: str) -> tuple[Any, RawDocument | None]:
    """``(library module, None)`` for reading the zip container ``path`` (``.xlsx``, ``.docx``),
    or ``(None, failed document)`` when the file fails :func:`check_zip_container` or the library
    (``package``, imported as ``module``) is not installed."""
    problem = check_zip_container(path, fmt)
    if problem:
        return None, failed(rel, problem)
    try:
        return importlib.import_module(module), None
    except ImportError:
        return None, failed(rel, missing_package(package, fmt))


class Reader(ABC):
    """One file format. Subclasses set ``extensions`` and implement :meth:`read`."""

    #: Lower-case extensions with the dot, e.g. ``(".txt", ".md")``.
    extensions: ClassVar[tuple[str, ...]] = ()
    #: A short human name for messages, e.g. "PDF".
    name: ClassVar[str] = ""

    @abstractmethod
    def read(self, path: Path, rel: str, limits: DocumentLimits | None = None) -> RawDocument:
        """Read ``path`` (reported as ``rel``); must not raise for bad input. Readers of paged
        formats honour ``limits`` (``max_pages``, ``max_sheet_rows``) with a warning when cut;
        ``max_doc_chars`` is applied by :func:`corpus.readers.read_document`."""


def page(number: int, text: str, label: str = "") -> Page:
    """A Page with line endings normalised to ``\\n``."""
    return Page(number=number, text=text.replace("\r\n", "\n").replace("\r", "\n"), label=label)
