"""Per-document limits: what one file may cost a build before it is refused or cut.

One record, :class:`DocumentLimits`, travels from the settings (``index.config.Settings``, config
file keys of the same names) to the readers, the chunker and the build's document worker. Every
limit that bites says so in an :class:`~corpus.records.IngestMessage` naming the limit, its value
and the config key that raises it (:func:`limit_message`).

| limit | what happens when a document is over it |
|---|---|
| ``max_file_bytes`` | the file is refused unread |
| ``max_pages`` | pages after the limit are not read (warning) |
| ``max_sheet_rows`` | rows of a sheet after the limit are not read (warning) |
| ``max_doc_chars`` | text after the limit is cut (warning) |
| ``max_doc_chunks`` | the document is refused (error): indexing it would take hours |
| ``max_doc_seconds`` | reading and chunking are stopped and the document is refused (error) |
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

#: Defaults sized for real municipal documents: a 1,000-page budget book has about 2M characters
#: and 5,000 items; a 取組状況 workbook a few thousand rows.
DEFAULT_MAX_FILE_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class DocumentLimits:
    """The bounds on one document (see the module docstring)."""

    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_pages: int = 3_000
    max_sheet_rows: int = 10_000
    max_doc_chars: int = 5_000_000
    max_doc_chunks: int = 10_000
    max_doc_seconds: float = 600.0

    @classmethod
    def from_settings(cls, settings: Any) -> "DocumentLimits":
        """The limits held by a Settings-like object (attributes of the same names)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls) if hasattr(settings, f.name)})


def limit_message(what: str, value: int | float, key: str) -> str:
    """A message saying which limit was hit, e.g.
    ``上限（max_pages = 3000）を超えました: 3001 ページ目以降は読みませんでした …``.
    ``what`` is the Japanese / English description of what was done."""
    v = f"{value:g}" if isinstance(value, float) else f"{value}"
    return f"上限 {key} = {v} を超えました: {what}（設定ファイルの {key} で変更できます）"
