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
span lines only when that reads as one clean record, so a stray ``"`` never swallows later rows
(both live in :mod:`corpus.manifest_csv` and are re-exported here).
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
from corpus.manifest_csv import (  # re-exported: the CSV-reading half lives in corpus.manifest_csv
    MAX_CELL_CHARS,
    MAX_CELL_LINES,
    ManifestLines,
    ManifestRecord,
    ManifestTable,
    Problem,
    decode_manifest,
    parse_manifest,
)
from corpus.readers import check_file
from corpus.records import DocumentMeta, IngestMessage

#: Names other modules import from here (the CSV-reading names are re-exported from corpus.manifest_csv).
__all__ = [
    "MANIFEST_NAME", "STANDARD_COLUMNS", "REQUIRED_COLUMNS", "HEADER_ALIASES", "ManifestResult",
    "manifest_path", "normalize_rel_path", "path_problem", "field_count_message", "read_manifest",
    "unlisted_files", "append_entry", "remove_entry",
    "MAX_CELL_CHARS", "MAX_CELL_LINES", "ManifestLines", "ManifestRecord", "ManifestTable", "Problem",
    "decode_manifest", "parse_manifest",
]

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
