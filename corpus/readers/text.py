"""Plain text and Markdown: encoding detection, pages split on form feed (\\f)."""
from __future__ import annotations

from pathlib import Path

from corpus.limits import DocumentLimits
from corpus.readers.base import Reader, failed, page, warning
from corpus.readers.encoding import MIXED, decode_bytes, looks_binary, text_score, utf16_like
from corpus.records import RawDocument

#: Below this mean character score (see encoding.text_score) decoded bytes are taken for binary.
MIN_TEXT_SCORE = 0.3
#: A run of at least this many NUL bytes at the end of a file is zero-fill padding, not content.
MIN_NUL_PADDING = 16

BINARY_MESSAGE = "テキストではありません（バイナリファイル） / binary file, not text"


class TextReader(Reader):
    """``.txt`` / ``.md``: UTF-8, CP932 (Shift_JIS), EUC-JP, ISO-2022-JP, UTF-16 with or without BOM."""

    extensions = (".txt", ".md")
    name = "テキスト"

    def read(self, path: Path, rel: str, limits: DocumentLimits | None = None) -> RawDocument:
        """Read the file; pages are separated by form feeds, NUL bytes are dropped with a warning."""
        data = path.read_bytes()
        messages = []
        stripped = data.rstrip(b"\x00")
        pad = len(data) - len(stripped)
        if pad >= MIN_NUL_PADDING and stripped and not utf16_like(stripped):
            # a zero-filled tail (a copy or save cut short): the text before it is kept
            data = stripped
            messages.append(
                warning(rel, f"末尾のゼロ埋め（NUL 文字 {pad} 個）を削除しました / removed {pad} trailing NUL byte(s) (zero-filled tail)")
            )
        if looks_binary(data):
            return failed(rel, BINARY_MESSAGE)
        if b"\x00" in data and not utf16_like(data):
            n = data.count(b"\x00")
            data = data.replace(b"\x00", b"")
            messages.append(warning(rel, f"NUL 文字 {n} 個を削除しました / removed {n} NUL byte(s)"))
        dec = decode_bytes(data)
        text = dec.text.lstrip("\ufeff")
        if text.strip() and text_score(text) < MIN_TEXT_SCORE:
            return failed(rel, BINARY_MESSAGE, messages)
        if dec.encoding == MIXED:
            messages.append(
                warning(
                    rel,
                    "複数の文字コード（UTF-8 と Shift_JIS など）が混在しているため、行ごとに判定しました"
                    " / mixed encodings in one file; decoded line by line",
                )
            )
        if dec.replaced:
            messages.append(
                warning(
                    rel,
                    "文字コードを判定できず、読めない文字を � に置き換えました"
                    " / encoding not detected; undecodable bytes replaced with U+FFFD",
                )
            )
        pages = [page(i, t) for i, t in enumerate(text.split("\f"), start=1) if t.strip()]
        if not pages:
            return failed(rel, "本文がありません（空白のみ） / no text (whitespace only)", messages)
        return RawDocument(path=rel, pages=pages, messages=messages)
