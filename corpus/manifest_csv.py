"""Reading the text of ``manifest.csv``: bytes → decoded lines → records (split out of :mod:`corpus.manifest`).

The file is decoded line by line (:func:`decode_manifest`: UTF-8 with or without BOM, CP932,
EUC-JP, UTF-16; a line in another encoding than the rest becomes a :class:`Problem`) and split into
records by :func:`parse_manifest`, which lets a quoted cell span lines only when that reads as one
clean record, so a stray ``"`` never swallows later rows. :mod:`corpus.manifest` turns the records
into :class:`~corpus.records.DocumentMeta` entries.
"""
from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from corpus.errors import ManifestError

#: Longest cell a manifest row may have (Python's csv default limit); a longer cell skips its row.
MAX_CELL_CHARS = 131_072
#: Most physical lines one quoted cell may span; a quote left open longer is a stray quote.
MAX_CELL_LINES = 200

_UNICODE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_LEGACY = ("cp932", "euc_jp")
_ENCODING_NAMES = {"utf-8": "UTF-8", "cp932": "Shift_JIS (CP932)", "euc_jp": "EUC-JP"}
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_RAW_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class Problem:
    """Why a manifest line or record cannot be used, in Japanese and English (no "row skipped")."""

    ja: str
    en: str

    def row_skipped(self) -> str:
        """The message for a skipped row: ``<ja>。この行は読み飛ばしました / <en>; row skipped``."""
        return f"{self.ja}。この行は読み飛ばしました / {self.en}; row skipped"


@dataclass
class ManifestLines:
    """The manifest's physical lines, decoded, with the lines that could not be decoded.

    ``texts[i]`` and ``raws[i]`` are line ``i + 1`` (raw bytes without the line break; for a
    UTF-16 file the UTF-8 bytes of the text). ``problems`` maps a line number to why the line is
    unusable (a different encoding from the rest of the file, or no encoding at all); its text is
    then empty. ``encoding`` is the file's encoding.
    """

    texts: list[str]
    raws: list[bytes]
    problems: dict[int, Problem] = field(default_factory=dict)
    encoding: str = "utf-8"


def _strict(raw: bytes, encoding: str) -> str | None:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        return None


def _legacy_encoding(raws: list[bytes]) -> str:
    """CP932 or EUC-JP for these non-UTF-8 lines: the one that decodes more of them strictly,
    then the one that reads more like Japanese, then CP932."""
    from corpus.readers.encoding import text_score

    def rank(enc: str) -> tuple[int, float, bool]:
        whole = _strict(b"\n".join(raws), enc)
        texts = [whole] if whole is not None else [t for r in raws if (t := _strict(r, enc)) is not None]
        return len(raws) if whole is not None else len(texts), text_score("".join(texts)), enc == "cp932"

    return max(_LEGACY, key=rank)


def _main_encoding(raws: list[bytes], bom: bool) -> str:
    """The encoding of most non-ASCII lines (UTF-8 when the file starts with a UTF-8 BOM; on a tie
    the encoding of the first non-ASCII line)."""
    non_ascii = [i for i, r in enumerate(raws) if not r.isascii()]
    utf8 = [i for i in non_ascii if _strict(raws[i], "utf-8") is not None]
    other = sorted(set(non_ascii) - set(utf8))
    if bom or not other:
        return "utf-8"
    if len(utf8) > len(other) or (utf8 and len(utf8) == len(other) and utf8[0] < other[0]):
        return "utf-8"
    return _legacy_encoding([raws[i] for i in other])


def _line_problem(raw: bytes, main: str) -> Problem:
    """Why a line that does not decode as ``main`` is unusable: it is in another encoding (named)
    or in none."""
    name = _ENCODING_NAMES.get(main, main)
    for enc in ("utf-8", *_LEGACY):
        if enc != main and _strict(raw, enc) is not None:
            other = _ENCODING_NAMES[enc]
            return Problem(
                f"この行だけ文字コードが違います（{other} のようです。ほかの行は {name}。"
                f"ファイル全体を同じ文字コードで保存し直してください）",
                f"this line is in a different encoding ({other}; the rest of the file is {name})",
            )
    return Problem(
        f"この行の文字コードを判定できません（ほかの行は {name}）",
        f"cannot decode this line (the rest of the file is {name})",
    )


def decode_manifest(data: bytes, where: str) -> ManifestLines:
    """Manifest bytes → physical lines, decoded line by line so that one line saved in another
    encoding is named instead of turning the file into mojibake.

    UTF-16/32 (BOM or NUL bytes) and ISO-2022-JP files are decoded whole (:func:`decode_bytes`);
    otherwise a UTF-8 BOM or a strict UTF-8 reading of the whole file wins, and else every line is
    decoded on its own in the encoding of most non-ASCII lines (UTF-8, CP932 or EUC-JP); a line
    in another encoding, or in none, gets a problem and no text. Raises :class:`ManifestError`
    when a UTF-16 file cannot be decoded.
    """
    from corpus.readers.encoding import decode_bytes

    if data.startswith(_UNICODE_BOMS) or b"\x00" in data or b"\x1b$" in data:
        dec = decode_bytes(data)
        if dec.replaced:
            raise ManifestError(
                f"{where}: 文字コードを判定できません。UTF-8 か Shift_JIS (CP932) で保存してください"
                f" / cannot detect the encoding; save as UTF-8 or CP932"
            )
        texts = _LINE_BREAK.split(dec.text.lstrip("\ufeff"))
        return ManifestLines(texts, [t.encode("utf-8") for t in texts], {}, dec.encoding)
    bom = data.startswith(codecs.BOM_UTF8)
    if bom:
        data = data[len(codecs.BOM_UTF8):]
    raws = _RAW_LINE_BREAK.split(data)
    if _strict(data, "utf-8") is not None:
        return ManifestLines([r.decode("utf-8") for r in raws], raws, {}, "utf-8")
    main = _main_encoding(raws, bom)
    texts: list[str] = []
    problems: dict[int, Problem] = {}
    for number, raw in enumerate(raws, 1):
        text = raw.decode("ascii") if raw.isascii() else _strict(raw, main)
        if text is not None and main != "utf-8" and not raw.isascii() and _strict(raw, "utf-8") is not None:
            text = None  # valid UTF-8 in a CP932/EUC-JP file: a pasted UTF-8 line, not legacy text
        if text is None:
            problems[number] = _line_problem(raw, main)
            text = ""
        texts.append(text)
    return ManifestLines(texts, raws, problems, main)


# states of the cell scanner (the csv module's dialect: "," or tab, '"' quotes, "" inside quotes)
_START, _FIELD, _QUOTED, _AFTER_QUOTE = range(4)


@dataclass
class _Scan:
    """Cells of a record scanned so far: the finished cells, the current cell, the scanner state
    and whether a closing quote was followed by text (``"a"b``)."""

    cells: list[str]
    current: str = ""
    state: int = _START
    malformed: bool = False

    def record(self) -> list[str]:
        """The cells, the current one included."""
        return [*self.cells, self.current]


def _scan(line: str, delimiter: str, prev: _Scan | None = None) -> _Scan:
    """Scan one physical line into cells; with ``prev`` (a scan ending inside a quoted cell)
    continue that cell after a line break. Reads like the csv module does (non-strict)."""
    if prev is None:
        if '"' not in line:
            parts = line.split(delimiter)
            return _Scan(parts[:-1], parts[-1])
        try:  # a well-formed line: the csv module is faster; anything else is scanned below
            (parts,) = csv.reader([line], delimiter=delimiter, strict=True)
            return _Scan(parts[:-1], parts[-1])
        except (csv.Error, ValueError):
            pass
    cells = list(prev.cells) if prev else []
    buf = [prev.current, "\n"] if prev else []
    state = prev.state if prev else _START
    malformed = prev.malformed if prev else False
    for ch in line:
        if state == _QUOTED:
            if ch == '"':
                state = _AFTER_QUOTE
            else:
                buf.append(ch)
        elif state == _AFTER_QUOTE and ch == '"':
            buf.append(ch)
            state = _QUOTED
        elif ch == delimiter:
            cells.append("".join(buf))
            buf, state = [], _START
        elif state == _START and ch == '"':
            state = _QUOTED
        else:
            malformed = malformed or state == _AFTER_QUOTE
            buf.append(ch)
            state = _FIELD
    return _Scan(cells, "".join(buf), state, malformed)


@dataclass
class ManifestRecord:
    """One manifest record as written: its physical lines (``line`` to ``end``), its cells, and
    the parse problem that makes it unusable (``error``) or odd (``warning``)."""

    line: int
    end: int
    cells: list[str]
    error: Problem | None = None
    warning: str | None = None

    @property
    def blank(self) -> bool:
        """True for an empty line or one of only delimiters and spaces."""
        return self.error is None and not any(c.strip() for c in self.cells)


_UNTERMINATED = Problem(
    "引用符（\"）が閉じていません（\"…\" で囲んだ値の中の \" は \"\" と書きます）",
    "unterminated quote (\")",
)
_AFTER_QUOTE_TEXT = (
    "閉じた引用符（\"）の後に文字が続いています。書かれたとおりにつなげて読みました（セルの中の \" は \"\" と書きます）"
    " / text after a closing quote; read as written (write \" inside a quoted cell as \"\")"
)


def _looks_like_row(text: str, delimiter: str, width: int) -> bool:
    """True when a line read on its own is a row of the table: as many cells as the header, or a
    first cell that is a document file name. Such a line cannot be the inside of a quoted cell.
    A line with an odd number of ``"`` is never a clean row of its own: it can be the end of a
    quoted cell opened above (a path or title holding a line break, written by Excel or csv)."""
    from corpus.readers import SUPPORTED_EXTENSIONS

    if text.count('"') % 2:
        return False
    cells = _scan(text, delimiter).record()
    if width > 1 and len(cells) == width:
        return True
    return len(cells) >= 2 and PurePosixPath(cells[0].strip()).suffix.lower() in SUPPORTED_EXTENSIONS


def _next_record(lines: ManifestLines, i: int, delimiter: str, width: int) -> ManifestRecord:
    """The record starting at 0-based line ``i``.

    A quoted cell left open at the end of the line continues on the next lines only when that
    reads as one clean record: the quote closes within :data:`MAX_CELL_LINES` lines and
    :data:`MAX_CELL_CHARS` characters, nothing follows a closing quote, no continued line is
    undecodable or reads as a row of its own (see :func:`_looks_like_row`), and the record has no
    more cells than the header (``width``, 0 for the header itself). Otherwise the opening line
    alone is an error (unterminated quote) and the next line starts a new record: a stray quote
    never swallows the rows after it.
    """
    number = i + 1
    if number in lines.problems:
        return ManifestRecord(number, number, [], error=lines.problems[number])
    scan = _scan(lines.texts[i], delimiter)
    j = i
    while scan.state == _QUOTED:
        j += 1
        if (
            j >= len(lines.texts)
            or j - i >= MAX_CELL_LINES
            or len(scan.current) > MAX_CELL_CHARS
            or (j + 1) in lines.problems
            or _looks_like_row(lines.texts[j], delimiter, width)
        ):
            return ManifestRecord(number, number, scan.record(), error=_UNTERMINATED)
        scan = _scan(lines.texts[j], delimiter, scan)
        if scan.state != _QUOTED and (scan.malformed or (width and len(scan.record()) > width)):
            return ManifestRecord(number, number, scan.record(), error=_UNTERMINATED)
    cells = scan.record()
    longest = max(map(len, cells)) if j > i or len(lines.texts[i]) > MAX_CELL_CHARS else 0
    if longest > MAX_CELL_CHARS:
        too_long = Problem(
            f"セルが長すぎます（{longest} 文字、上限 {MAX_CELL_CHARS} 文字）",
            f"cell too long ({longest} > {MAX_CELL_CHARS} characters)",
        )
        return ManifestRecord(number, j + 1, cells, error=too_long)
    return ManifestRecord(number, j + 1, cells, warning=_AFTER_QUOTE_TEXT if scan.malformed else None)


@dataclass
class ManifestTable:
    """The manifest as written: header cells, records in file order, and the decoded lines."""

    header: list[str]
    records: list[ManifestRecord]
    lines: ManifestLines
    header_line: int = 1

    def verbatim(self, record: ManifestRecord) -> bytes:
        """The record's physical lines for a UTF-8 rewrite, CRLF between them: the decoded text
        in UTF-8, and the bytes as they are for a line that could not be decoded."""
        return b"\r\n".join(
            self.lines.raws[n - 1] if n in self.lines.problems else self.lines.texts[n - 1].encode("utf-8")
            for n in range(record.line, record.end + 1)
        )

    def rows(self) -> list[list[str] | bytes]:
        """Every record for a rewrite: its cells, or its :meth:`verbatim` lines when it could not
        be read (so a rewrite neither drops nor "repairs" such a row)."""
        return [self.verbatim(r) if r.error else r.cells for r in self.records]


def parse_manifest(lines: ManifestLines, where: str) -> ManifestTable:
    """Split decoded manifest lines into the header and records (blank lines dropped).

    Raises :class:`ManifestError` when there is no header or the header line itself is broken.
    """
    first = next((t for n, t in enumerate(lines.texts, 1) if t.strip() and n not in lines.problems), "")
    delimiter = "\t" if "\t" in first and "," not in first else ","
    header: list[str] | None = None
    header_line = 1
    records: list[ManifestRecord] = []
    i = 0
    while i < len(lines.texts):
        rec = _next_record(lines, i, delimiter, len(header) if header is not None else 0)
        i = rec.end
        if rec.blank:
            continue
        if header is None:
            if rec.error:
                raise ManifestError(
                    f"{where}:{rec.line}: 見出し行を読めません: {rec.error.ja} / cannot read the header line: {rec.error.en}"
                )
            header, header_line = rec.cells, rec.line
            continue
        records.append(rec)
    if header is None:
        raise ManifestError(f"{where}: manifest.csv が空です（見出し行がありません） / empty manifest (no header row)")
    return ManifestTable(header, records, lines, header_line)
