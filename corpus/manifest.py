"""The corpus manifest: ``<corpus_dir>/manifest.csv``, one row per document.

Columns: ``path`` (relative to the corpus root; the document id), ``municipality`` (both
required), ``prefecture``, ``title``, ``year``, ``kind``, ``url``; other columns are kept in
:attr:`DocumentMeta.extra`. Japanese header names (パス, 自治体, 都道府県, 題名, 年度, 種類) are
accepted too. The file may be UTF-8 (with or without BOM), CP932 (Excel's "CSV" in Japan) or
UTF-16 (Excel's "Unicode text", tab-separated); rewrites are UTF-8 with BOM so Excel opens them.

A bad row (missing file, duplicate path, empty municipality, a path escaping the corpus root, more
cells than the header, an unterminated quote, a cell over :data:`MAX_CELL_CHARS`, a line in another
encoding than the rest of the file) is skipped with an :class:`IngestMessage` naming the physical
line (and column where it applies); the other rows load. The file is decoded line by line
(:func:`decode_manifest`) and split into records by :func:`parse_manifest`, which lets a quoted cell
span lines only when that reads as one clean record, so a stray ``"`` never swallows later rows.
A missing file, an unreadable header or missing required columns make the whole manifest unusable
(:class:`ManifestError`).
"""
from __future__ import annotations

import codecs
import csv
import io
import os
import re
import tempfile
from dataclasses import dataclass, field
from itertools import takewhile
from pathlib import Path, PurePosixPath

from corpus.errors import ManifestError
from corpus.readers import check_file
from corpus.records import DocumentMeta, IngestMessage

MANIFEST_NAME = "manifest.csv"
STANDARD_COLUMNS = ("path", "municipality", "prefecture", "title", "year", "kind", "url")
REQUIRED_COLUMNS = ("path", "municipality")

#: Accepted header spellings → canonical column name.
HEADER_ALIASES = {
    "file": "path", "filename": "path", "パス": "path", "ファイル": "path", "ファイル名": "path",
    "自治体": "municipality", "自治体名": "municipality", "市町村": "municipality", "団体名": "municipality",
    "都道府県": "prefecture", "題名": "title", "タイトル": "title", "文書名": "title", "表題": "title",
    "年度": "year", "年": "year", "種類": "kind", "種別": "kind", "文書の種類": "kind", "出典": "url",
}

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass
class ManifestResult:
    """The usable manifest rows and the messages about the rows that were skipped or odd."""

    entries: list[DocumentMeta] = field(default_factory=list)
    messages: list[IngestMessage] = field(default_factory=list)


def manifest_path(corpus_dir: str | Path) -> Path:
    """``<corpus_dir>/manifest.csv``."""
    return Path(corpus_dir) / MANIFEST_NAME


def _canonical(header: str) -> str:
    h = header.strip().lstrip("\ufeff").strip()
    low = h.lower()
    if low in STANDARD_COLUMNS:
        return low
    return HEADER_ALIASES.get(h, HEADER_ALIASES.get(low, h))


def normalize_rel_path(raw: str) -> str:
    """A manifest path in canonical form: ``/`` separators, no ``./`` and no surrounding spaces."""
    p = raw.strip().replace("\\", "/")
    parts = [x for x in p.split("/") if x not in ("", ".")]
    return "/".join(parts) if not p.startswith("/") else "/" + "/".join(parts)


def path_problem(corpus_dir: str | Path, rel: str) -> str | None:
    """Why ``rel`` is not an acceptable document path inside ``corpus_dir`` (None when it is).

    Refuses empty paths, absolute paths (``/x``, ``C:\\x``, ``\\\\server``) and ``..`` components.
    The check is on the path as written: a symbolic link placed inside the corpus folder (by
    whoever controls that folder) is followed.
    """
    if not rel:
        return "path が空です / empty path"
    if rel.startswith("/") or _DRIVE.match(rel) or rel.startswith("\\"):
        return "絶対パスは使えません。コーパスのフォルダからの相対パスにしてください / absolute path not allowed"
    if ".." in PurePosixPath(rel).parts:
        return "「..」でコーパスのフォルダの外を指しています / path escapes the corpus root (..)"
    return None


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


def _read_table(corpus_dir: str | Path) -> ManifestTable:
    """The manifest of ``corpus_dir`` as written (see :func:`parse_manifest`)."""
    mp = manifest_path(corpus_dir)
    try:
        data = mp.read_bytes()
    except FileNotFoundError:
        raise ManifestError(
            f"{mp}: manifest.csv がありません。path,municipality,... の列を持つ CSV を作ってください"
            f" / manifest not found"
        ) from None
    except OSError as e:
        raise ManifestError(f"{mp}: manifest.csv を読めません / cannot read manifest: {e}") from None
    return parse_manifest(decode_manifest(data, str(mp)), str(mp))


def field_count_message(count: int, header: list[str]) -> tuple[str, None, str] | None:
    """(message, column, severity) for a row of ``count`` cells that does not fit ``header``.

    More cells than the header is an error (row skipped): its values have shifted, typically by an
    unquoted comma in a title, even when the last cell is empty. Fewer cells than the header's
    named columns (trailing empty header cells do not count) is a warning: the missing cells are
    read as empty. Otherwise None.
    """
    width = len(header)
    named = len(header) - len(list(takewhile(lambda h: not h.strip(), reversed(header))))
    if count > width:
        return (
            f"見出し（{width} 列）より列が多い行です（{count} 列）。カンマを含む値は \"…\" で囲み、行末の余分なカンマは"
            f"消してください。この行は読み飛ばしました / more cells than header columns ({count} > {width}); row skipped",
            None, "error",
        )
    if count < named:
        return (
            f"見出し（{named} 列）より列が少ない行です（{count} 列）。足りない列は空として読みました"
            f" / fewer cells than header columns ({count} < {named}); missing cells read as empty",
            None, "warning",
        )
    return None


def read_manifest(corpus_dir: str | Path, *, check_unlisted: bool = True) -> ManifestResult:
    """Read and validate ``<corpus_dir>/manifest.csv``.

    Returns the good rows as :class:`DocumentMeta` and a message for every skipped row (with line
    and column); with ``check_unlisted`` also a warning for every supported file on disk that the
    manifest does not list. Raises :class:`ManifestError` when the file is missing, undecodable or
    lacks a required column.
    """
    corpus_dir = Path(corpus_dir)
    mp = manifest_path(corpus_dir)
    table = _read_table(corpus_dir)
    header = table.header
    names = [_canonical(h) for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise ManifestError(
            f"{mp}: 必須の列がありません: {', '.join(missing)}（1 行目は path,municipality,prefecture,title,"
            f"year,kind,url のような見出しにしてください） / missing required column(s): {', '.join(missing)}"
        )
    index: dict[str, int] = {}
    for i, n in enumerate(names):
        index.setdefault(n, i)
    name = MANIFEST_NAME
    from corpus.readers.xlsx import column_letter

    def col(c: str) -> str:
        return f"{column_letter(index[c])}:{c}"

    result = ManifestResult()
    seen: dict[str, int] = {}
    for rec in table.records:
        line, cells = rec.line, rec.cells

        def skip(msg: str, column: str | None = None, severity: str = "error") -> None:
            result.messages.append(IngestMessage(severity, name, msg, line=line, column=column))  # type: ignore[arg-type]

        if rec.error:
            skip(rec.error.row_skipped())
            continue
        if rec.warning:
            skip(rec.warning, None, "warning")
        count = field_count_message(len(cells), header)
        if count:
            skip(*count)
            if count[2] == "error":
                continue
        values = {n: (cells[i].strip() if i < len(cells) else "") for n, i in index.items()}
        raw_path = values.get("path", "")
        rel = normalize_rel_path(raw_path)
        problem = path_problem(corpus_dir, rel)
        if problem:
            skip(f"{problem}: {raw_path!r}。この行は読み飛ばしました / row skipped", col("path"))
            continue
        if rel in seen:
            skip(
                f"path {rel!r} が {seen[rel]} 行目と重複しています。この行は読み飛ばしました"
                f" / duplicate path (first on line {seen[rel]}); row skipped",
                col("path"),
            )
            continue
        seen[rel] = line
        if not values.get("municipality"):
            skip("municipality（自治体名）が空です。この行は読み飛ばしました / empty municipality; row skipped",
                 col("municipality"))
            continue
        target = corpus_dir / rel
        problem = check_file(target)  # stat only: a FIFO is named, never opened
        if problem:
            ja, _, en = problem.partition(" / ")
            skip(f"{ja}: {rel} / {en}; row skipped", col("path"))
            continue
        extra = {
            header[i].strip().lstrip("\ufeff"): (cells[i].strip() if i < len(cells) else "")
            for i, n in enumerate(names)
            if n not in STANDARD_COLUMNS and header[i].strip()
        }
        result.entries.append(
            DocumentMeta(
                path=rel,
                municipality=values["municipality"],
                prefecture=values.get("prefecture", ""),
                title=values.get("title", ""),
                year=values.get("year", ""),
                kind=values.get("kind", ""),
                url=values.get("url", ""),
                extra=extra,
            )
        )
    if check_unlisted:
        listed = [DocumentMeta(path=p, municipality="") for p in seen]
        for rel in unlisted_files(corpus_dir, listed):
            result.messages.append(
                IngestMessage(
                    "warning", rel,
                    "manifest.csv に載っていないため索引に入れません（seisaku add で追加できます）"
                    " / not in manifest, not indexed",
                )
            )
    return result


def _walk_documents(corpus_dir: Path) -> list[str]:
    from corpus.readers import SUPPORTED_EXTENSIONS

    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(corpus_dir):
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith((".", "_")) and d != "__pycache__"
        )
        for f in sorted(filenames):
            if f.startswith((".", "~$")) or f == MANIFEST_NAME:
                continue
            if Path(f).suffix.lower() in SUPPORTED_EXTENSIONS:
                full = Path(dirpath) / f
                found.append(full.relative_to(corpus_dir).as_posix())
    return found


def unlisted_files(corpus_dir: str | Path, entries: list[DocumentMeta]) -> list[str]:
    """Supported documents under ``corpus_dir`` (recursively; dot/underscore directories and
    ``__pycache__`` ignored) that no entry lists, as corpus-relative posix paths."""
    listed = {normalize_rel_path(e.path) for e in entries}
    return [p for p in _walk_documents(Path(corpus_dir)) if p not in listed]


def _csv_bytes(header: list[str], rows: list[list[str] | bytes]) -> bytes:
    """UTF-8 (with BOM) CSV of the header and rows, CRLF line ends; a ``bytes`` row is a line kept
    verbatim."""
    out = [codecs.BOM_UTF8]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for row in [header, *rows]:
        if isinstance(row, bytes):
            out.append(row + b"\r\n")
            continue
        buf.seek(0)
        buf.truncate()
        w.writerow(row)
        out.append(buf.getvalue().encode("utf-8"))
    return b"".join(out)


def _write_atomic(path: Path, header: list[str], rows: list[list[str] | bytes]) -> None:
    """Write the manifest as UTF-8 with BOM through a temp file and os.replace."""
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".csv.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_csv_bytes(header, rows))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        except OSError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _meta_values(meta: DocumentMeta) -> dict[str, str]:
    vals = {c: str(getattr(meta, c) or "") for c in STANDARD_COLUMNS}
    vals["path"] = normalize_rel_path(meta.path)
    vals.update({k: str(v) for k, v in (meta.extra or {}).items()})
    return vals


def append_entry(corpus_dir: str | Path, meta: DocumentMeta) -> bool:
    """Add ``meta`` as a manifest row, or update the row with the same path in place.

    Creates the manifest (standard columns) when absent; keeps existing columns and rows (extra
    columns included), adding a column when ``meta`` has a non-empty value the header lacks.
    Returns True when an existing row was replaced. Raises :class:`ManifestError` for a path that
    escapes the corpus root or an empty municipality.
    """
    corpus_dir = Path(corpus_dir)
    mp = manifest_path(corpus_dir)
    vals = _meta_values(meta)
    problem = path_problem(corpus_dir, vals["path"])
    if problem:
        raise ManifestError(f"{vals['path']!r}: {problem}")
    if not vals["municipality"].strip():
        raise ManifestError("municipality（自治体名）が空です / empty municipality")
    if mp.exists():
        existing = _read_table(corpus_dir)
        header, table = existing.header, existing.rows()
    else:
        header, table = list(STANDARD_COLUMNS), []
    names = [_canonical(h) for h in header]
    for key, v in vals.items():
        if v and key not in names and key not in header:
            header.append(key)
            names.append(key)
    width = len(header)
    new_row = []
    for h, n in zip(header, names):
        key = n if n in STANDARD_COLUMNS else h.strip().lstrip("\ufeff")
        new_row.append(vals.get(key, ""))
    pi = names.index("path")
    replaced = False
    out: list[list[str] | bytes] = []
    for cells in table:
        if isinstance(cells, bytes):  # a row that could not be read: kept as written
            out.append(cells)
            continue
        cells = cells + [""] * (width - len(cells))
        if normalize_rel_path(cells[pi]) == vals["path"]:
            if not replaced:
                out.append(new_row)
                replaced = True
            continue
        out.append(cells)
    if not replaced:
        out.append(new_row)
    _write_atomic(mp, header, out)
    return replaced


def remove_entry(corpus_dir: str | Path, path: str) -> bool:
    """Remove every manifest row whose path is ``path``; return False when there was none.

    Other rows, the header and extra columns are kept (rows the parser could not read, as written);
    the file is rewritten atomically.
    """
    corpus_dir = Path(corpus_dir)
    table = _read_table(corpus_dir)
    header, rows = table.header, table.rows()
    names = [_canonical(h) for h in header]
    if "path" not in names:
        raise ManifestError(f"{manifest_path(corpus_dir)}: path の列がありません / missing column: path")
    pi = names.index("path")
    target = normalize_rel_path(path)
    kept = [
        cells for cells in rows
        if isinstance(cells, bytes) or normalize_rel_path(cells[pi] if pi < len(cells) else "") != target
    ]
    if len(kept) == len(rows):
        return False
    _write_atomic(manifest_path(corpus_dir), header, kept)
    return True
