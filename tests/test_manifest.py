"""Manifest reading, validation and atomic rewrites."""
from __future__ import annotations

from pathlib import Path

import pytest

from corpus.errors import ManifestError
from corpus.manifest import append_entry, read_manifest, remove_entry, unlisted_files
from corpus.records import DocumentMeta

HEADER = "path,municipality,prefecture,title,year,kind,url"


def _corpus(tmp_path: Path, manifest: str, files: dict[str, str] | None = None, encoding: str = "utf-8") -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for rel, text in (files or {}).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    (root / "manifest.csv").write_bytes(manifest.encode(encoding))
    return root


def test_bundled_manifest(bundled_corpus: Path):
    res = read_manifest(bundled_corpus)
    assert len(res.entries) == 8 and not res.messages  # 5 text documents + 3 real PDFs of 南国市
    assert [e.path for e in res.entries if e.path.endswith(".pdf")] == [
        "nankoku_r4_omona_shinki_jigyou.pdf", "nankoku_r4_shisei_houshin.pdf", "nankoku_henchi_seibi_keikaku_henkou_r8.pdf",
    ]
    m = res.entries[0]
    assert m.municipality == "常総市" and m.prefecture == "茨城県" and m.year == "2024"
    assert res.entries[3].prefecture == ""


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_encodings(tmp_path: Path, encoding: str):
    root = _corpus(
        tmp_path,
        f"{HEADER},担当\r\na.txt,会津若松市,福島県,行財政改革大綱,2024,行財政改革大綱,,企画政策課\r\n",
        {"a.txt": "本文"},
        encoding,
    )
    res = read_manifest(root)
    assert not res.messages
    (m,) = res.entries
    assert (m.path, m.municipality, m.title) == ("a.txt", "会津若松市", "行財政改革大綱")
    assert m.extra == {"担当": "企画政策課"}


def test_bad_rows_named_and_skipped(tmp_path: Path):
    manifest = "\n".join(
        [
            HEADER,
            "a.txt,小平市,東京都,,,,",  # line 2: good
            "a.txt,小平市,東京都,,,,",  # line 3: duplicate
            "b.txt,,東京都,,,,",  # line 4: empty municipality
            "../secret.txt,小平市,,,,,",  # line 5: escapes
            "/etc/passwd,小平市,,,,,",  # line 6: absolute
            "missing.txt,小平市,,,,,",  # line 7: missing file
            'sub/c.txt,"常総市",茨城県,"題名, カンマ入り",,,',  # line 8: good, in a subfolder
        ]
    )
    root = _corpus(tmp_path, manifest, {"a.txt": "x", "b.txt": "x", "sub/c.txt": "x"})
    res = read_manifest(root)
    assert [e.path for e in res.entries] == ["a.txt", "sub/c.txt"]
    assert res.entries[1].title == "題名, カンマ入り"
    by_line = {m.line: m for m in res.messages}
    assert set(by_line) == {3, 4, 5, 6, 7}
    assert all(m.severity == "error" and m.path == "manifest.csv" for m in res.messages)
    assert "duplicate" in by_line[3].message and by_line[3].column == "A:path" and "2 行目" in by_line[3].message
    assert "empty municipality" in by_line[4].message and by_line[4].column == "B:municipality"
    assert "escapes" in by_line[5].message and by_line[5].column == "A:path"
    assert "absolute" in by_line[6].message
    assert "file not found" in by_line[7].message
    assert "manifest.csv:3 (列 A:path)" in str(by_line[3])


def test_line_numbers_count_multiline_cells(tmp_path: Path):
    manifest = f'{HEADER}\na.txt,小平市,,"二行の\n題名",,,\nnope.txt,小平市,,,,,\n'
    root = _corpus(tmp_path, manifest, {"a.txt": "x"})
    res = read_manifest(root)
    assert [m.line for m in res.messages] == [4]


def test_missing_required_column(tmp_path: Path):
    root = _corpus(tmp_path, "path,title\na.txt,題\n", {"a.txt": "x"})
    with pytest.raises(ManifestError, match="municipality"):
        read_manifest(root)


def test_missing_manifest(tmp_path: Path):
    with pytest.raises(ManifestError, match="manifest"):
        read_manifest(tmp_path)


def test_japanese_headers_and_windows_paths(tmp_path: Path):
    root = _corpus(tmp_path, "パス,自治体,都道府県\nsub\\c.txt,常総市,茨城県\n", {"sub/c.txt": "x"})
    res = read_manifest(root)
    assert not res.messages and res.entries[0].path == "sub/c.txt" and res.entries[0].prefecture == "茨城県"


def test_unlisted_files_reported(tmp_path: Path):
    files = {
        "a.txt": "x", "new.pdf": "x", "sub/new.docx": "x", "notes.csv": "x",
        ".hidden/x.txt": "x", "_drafts/y.txt": "x", "__pycache__/z.txt": "x", "~$lock.docx": "x",
    }
    root = _corpus(tmp_path, f"{HEADER}\na.txt,小平市,,,,,\n", files)
    res = read_manifest(root)
    assert unlisted_files(root, res.entries) == ["new.pdf", "sub/new.docx"]
    warned = [(m.path, m.severity) for m in res.messages]
    assert warned == [("new.pdf", "warning"), ("sub/new.docx", "warning")]
    assert "not in manifest, not indexed" in res.messages[0].message


def test_append_and_remove_keep_columns(tmp_path: Path):
    root = _corpus(tmp_path, f"{HEADER},担当\r\na.txt,小平市,東京都,,,,,行革課\r\n", {"a.txt": "x", "b.pdf": "x"}, "cp932")
    assert append_entry(root, DocumentMeta("b.pdf", "常総市", "茨城県", "評価シート", "2024", "事務事業評価")) is False
    raw = (root / "manifest.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    res = read_manifest(root)
    assert [e.path for e in res.entries] == ["a.txt", "b.pdf"]
    assert res.entries[0].extra == {"担当": "行革課"} and res.entries[1].kind == "事務事業評価"
    # updating in place
    assert append_entry(root, DocumentMeta("b.pdf", "常総市", title="新しい題", extra={"担当": "企画課"})) is True
    res = read_manifest(root)
    assert [e.path for e in res.entries] == ["a.txt", "b.pdf"]
    assert res.entries[1].title == "新しい題" and res.entries[1].extra == {"担当": "企画課"}
    assert remove_entry(root, "a.txt") is True
    assert remove_entry(root, "a.txt") is False
    res = read_manifest(root)
    assert [e.path for e in res.entries] == ["b.pdf"]
    assert any(m.path == "a.txt" and "not in manifest" in m.message for m in res.messages)
    assert not list(root.glob(".manifest-*"))


def test_append_creates_manifest_and_refuses_escape(tmp_path: Path):
    (tmp_path / "a.txt").write_text("x", encoding="utf-8")
    append_entry(tmp_path, DocumentMeta("a.txt", "南国市", url="https://example.jp/a"))
    res = read_manifest(tmp_path)
    assert res.entries[0].url == "https://example.jp/a"
    with pytest.raises(ManifestError):
        append_entry(tmp_path, DocumentMeta("../x.txt", "南国市"))
    with pytest.raises(ManifestError):
        append_entry(tmp_path, DocumentMeta("a.txt", " "))


def test_symlink_inside_corpus_is_followed(tmp_path: Path):
    outside = tmp_path / "shared.txt"
    outside.write_text("本文", encoding="utf-8")
    root = _corpus(tmp_path, f"{HEADER}\nlink.txt,小平市,,,,,\n")
    (root / "link.txt").symlink_to(outside)
    res = read_manifest(root)
    assert [e.path for e in res.entries] == ["link.txt"] and not res.messages


# --- broken quotes, field counts, mixed encodings, huge cells (issue 14) ---------------------------

FILES = {f"{c}.txt": "本文" for c in "abcdef"}


def _errors(res) -> dict[int, str]:
    return {m.line: m.message for m in res.messages if m.severity == "error"}


def test_stray_quote_is_named_and_later_rows_load(tmp_path: Path):
    manifest = "\n".join(
        [
            HEADER,
            "a.txt,小平市,東京都,大綱,2024,計画,",  # line 2
            'b.txt,常総市,茨城県,"閉じない題名,2024,計画,',  # line 3: stray quote
            "c.txt,南国市,高知県,題名,2024,計画,",  # line 4
            'd.txt,南国市,高知県,"題名, カンマ入り",2024,計画,',  # line 5: a real quoted comma
            'e.txt,南国市,高知県,"二行の',  # line 6-7: a real multi-line cell
            '題名",2024,計画,',
            "f.txt,南国市,高知県,最後,2024,計画,",  # line 8
        ]
    )
    res = read_manifest(_corpus(tmp_path, manifest, FILES))
    assert [e.path for e in res.entries] == ["a.txt", "c.txt", "d.txt", "e.txt", "f.txt"]
    assert [e.title for e in res.entries[2:4]] == ["題名, カンマ入り", "二行の\n題名"]
    errors = _errors(res)
    assert list(errors) == [3] and "unterminated quote" in errors[3] and "row skipped" in errors[3]


def test_stray_quote_in_short_rows_does_not_swallow_them(tmp_path: Path):
    # two columns only: every swallowed line would read as a row of its own, and a later stray
    # closing quote must not close the first one
    manifest = 'path,municipality\na.txt,"小平市\nb.txt,常総市\nc.txt,南国市"\nd.txt,音威子府村\n'
    res = read_manifest(_corpus(tmp_path, manifest, FILES))
    assert [e.path for e in res.entries] == ["b.txt", "c.txt", "d.txt"]
    assert list(_errors(res)) == [2]


def test_stray_quote_at_the_end_of_the_file(tmp_path: Path):
    res = read_manifest(_corpus(tmp_path, f'{HEADER}\na.txt,小平市,,,,,\nb.txt,"常総市,,,,,\n', FILES))
    assert [e.path for e in res.entries] == ["a.txt"] and list(_errors(res)) == [3]


def test_text_after_closing_quote_is_a_warning(tmp_path: Path):
    res = read_manifest(_corpus(tmp_path, f'{HEADER}\na.txt,小平市,,"題名"副題,,,\n', FILES))
    assert res.entries[0].title == "題名副題"
    (m,) = [m for m in res.messages if m.path == "manifest.csv"]
    assert (m.severity, m.line) == ("warning", 2) and "text after a closing quote" in m.message


def test_wrong_field_counts_named_by_line(tmp_path: Path):
    manifest = "\n".join(
        [
            HEADER,
            "a.txt,小平市,東京都,題名, 副題,2024,計画,",  # line 2: unquoted comma, 8 cells
            "b.txt,常総市,茨城県,題名,2024,計画,,余分",  # line 3: 8 cells
            "c.txt,南国市",  # line 4: 2 cells, the rest read as empty
            "d.txt,南国市,高知県,題名,2024,計画,",  # line 5: good
        ]
    )
    res = read_manifest(_corpus(tmp_path, manifest, FILES))
    assert [e.path for e in res.entries] == ["c.txt", "d.txt"]
    errors = _errors(res)
    assert set(errors) == {2, 3} and all("more cells than header columns (8 > 7)" in m for m in errors.values())
    (short,) = [m for m in res.messages if m.severity == "warning" and m.path == "manifest.csv"]
    assert short.line == 4 and "fewer cells than header columns (2 < 7)" in short.message


def test_trailing_empty_header_cells_do_not_count_as_missing(tmp_path: Path):
    res = read_manifest(_corpus(tmp_path, "path,municipality,,\na.txt,小平市\nb.txt,常総市,,\n", FILES))
    assert [e.path for e in res.entries] == ["a.txt", "b.txt"]
    assert not [m for m in res.messages if m.path == "manifest.csv"]


def test_cp932_manifest_with_one_utf8_line(tmp_path: Path):
    root = _corpus(tmp_path, "", FILES)
    (root / "manifest.csv").write_bytes(
        f"{HEADER}\na.txt,小平市,東京都,行財政再構築プラン,,,\nb.txt,常総市,茨城県,事務事業評価,,,\n".encode("cp932")
        + "c.txt,会津若松市,福島県,行財政改革大綱,,,\n".encode("utf-8")
        + "d.txt,南国市,高知県,取組状況,,,\n".encode("cp932")
    )
    res = read_manifest(root)
    assert [(e.path, e.municipality, e.title) for e in res.entries] == [
        ("a.txt", "小平市", "行財政再構築プラン"), ("b.txt", "常総市", "事務事業評価"), ("d.txt", "南国市", "取組状況"),
    ]
    errors = _errors(res)
    assert list(errors) == [4]
    assert "different encoding (UTF-8; the rest of the file is Shift_JIS (CP932))" in errors[4]


def test_utf8_manifest_with_one_cp932_line(tmp_path: Path):
    root = _corpus(tmp_path, "", FILES)
    (root / "manifest.csv").write_bytes(
        f"\ufeff{HEADER}\na.txt,小平市,東京都,大綱,,,\n".encode("utf-8")
        + "b.txt,常総市,茨城県,評価シート,,,\n".encode("cp932")
        + b"c.txt,\x85 \x85,,,,,\n"  # no encoding reads this
        + "d.txt,南国市,高知県,取組状況,,,\n".encode("utf-8")
    )
    res = read_manifest(root)
    assert [(e.path, e.municipality) for e in res.entries] == [("a.txt", "小平市"), ("d.txt", "南国市")]
    errors = _errors(res)
    assert set(errors) == {3, 4}
    assert "different encoding (Shift_JIS (CP932); the rest of the file is UTF-8)" in errors[3]
    assert "cannot decode this line" in errors[4]


def test_utf16_tab_separated_manifest_still_reads(tmp_path: Path):
    manifest = "path\tmunicipality\ttitle\r\na.txt\t小平市\t行財政再構築プラン\r\nb.txt\t常総市\t\"閉じない\r\n"
    res = read_manifest(_corpus(tmp_path, manifest, FILES, "utf-16"))
    assert [(e.municipality, e.title) for e in res.entries] == [("小平市", "行財政再構築プラン")]
    assert "unterminated quote" in _errors(res)[3]


def test_euc_jp_manifest_still_reads(tmp_path: Path):
    root = _corpus(tmp_path, f"{HEADER}\na.txt,小平市,東京都,行財政改革大綱,,,\n", FILES, "euc_jp")
    res = read_manifest(root)
    assert [(e.municipality, e.title) for e in res.entries] == [("小平市", "行財政改革大綱")]
    assert not [m for m in res.messages if m.path == "manifest.csv"]


@pytest.mark.parametrize("quoted", [False, True])
def test_huge_cell_is_one_row_error(tmp_path: Path, quoted: bool):
    huge = "長" * 200_000
    cell = f'"{huge}"' if quoted else huge
    res = read_manifest(_corpus(tmp_path, f"{HEADER}\na.txt,小平市,,{cell},,,\nb.txt,常総市,,,,,\n", FILES))
    assert [e.path for e in res.entries] == ["b.txt"]
    assert "cell too long (200000 > 131072 characters)" in _errors(res)[2]


def test_stray_quote_before_many_rows_loads_them(tmp_path: Path):
    """The reported failure: a stray quote with ~150,000 characters of rows after it ended in
    ``_csv.Error: field larger than field limit``."""
    files = {f"d{i}.txt": "x" for i in range(3000)}
    rows = [f"d{i}.txt,小平市,東京都,行財政改革大綱 第{i}次,2024,行財政改革大綱," for i in range(3000)]
    rows[0] = 'd0.txt,小平市,東京都,"行財政改革大綱,2024,行財政改革大綱,'
    res = read_manifest(_corpus(tmp_path, "\n".join([HEADER, *rows]), files))
    assert len(res.entries) == 2999 and list(_errors(res)) == [2]


def test_unusable_header_is_a_manifest_error(tmp_path: Path):
    root = _corpus(tmp_path, 'path,"municipality\na.txt,小平市\n', FILES)
    with pytest.raises(ManifestError, match=r"manifest.csv:1: .*unterminated quote"):
        read_manifest(root)
    (root / "manifest.csv").write_bytes("パス,自治体\n".encode("utf-8") + "a.txt,小平市\nb.txt,常総市\n".encode("cp932"))
    with pytest.raises(ManifestError, match=r"manifest.csv:1: .*different encoding \(UTF-8"):
        read_manifest(root)


def test_rewrite_keeps_unreadable_rows_as_written(tmp_path: Path):
    stray = 'b.txt,常総市,茨城県,"閉じない題名,2024,計画,'.encode("utf-8")
    sjis = "c.txt,南国市,高知県,題名,2024,計画,".encode("cp932")
    root = _corpus(tmp_path, "", FILES)
    (root / "manifest.csv").write_bytes(
        f"{HEADER}\na.txt,小平市,,,,,\n".encode("utf-8") + stray + b"\n" + sjis + b"\nd.txt,X,,,,,\n"
    )
    assert append_entry(root, DocumentMeta("e.txt", "音威子府村")) is False
    assert remove_entry(root, "d.txt") is True
    raw = (root / "manifest.csv").read_bytes()
    assert b"\r\n" + stray + b"\r\n" in raw and b"\r\n" + sjis + b"\r\n" in raw
    res = read_manifest(root)
    assert [e.path for e in res.entries] == ["a.txt", "e.txt"]
    errors = _errors(res)
    assert "unterminated quote" in errors[3] and "different encoding" in errors[4]


def test_unusable_manifest_cli_is_one_line_exit_2(tmp_path: Path):
    """``seisaku build`` on a manifest whose header cannot be read: one ``エラー:`` line, exit 2, no
    traceback, no index (the manifest is read before the model loads)."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    root = _corpus(tmp_path, 'path,"municipality\na.txt,小平市\n', FILES)
    env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run(
        [sys.executable, "-m", "search.cli", "build", "--corpus", str(root), "--index", str(tmp_path / "index")],
        cwd=repo, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("エラー: ") and "manifest.csv:1" in lines[0]
    assert "unterminated quote" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "index").exists()


def test_a_fifo_in_the_manifest_is_named_not_a_regular_file(tmp_path: Path) -> None:
    """A named pipe listed in the manifest was reported as "file not found"; opening it would block."""
    import os

    (tmp_path / "ok.txt").write_text("本文", encoding="utf-8")
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "manifest.csv").write_text("path,municipality\nok.txt,甲市\npipe.txt,乙市\n", encoding="utf-8")
    res = read_manifest(tmp_path, check_unlisted=False)
    assert [e.path for e in res.entries] == ["ok.txt"]
    msg = next(m for m in res.messages if m.line == 3)
    assert "FIFO" in msg.message and "not found" not in msg.message


def test_a_quoted_path_with_a_line_break_is_one_row(tmp_path: Path) -> None:
    """Excel or the csv module quote a cell holding a line break; its second line (``break.txt",…``)
    has a full row's cells but an odd number of quotes, so it ends the cell instead of starting a row."""
    import csv

    (tmp_path / "line\nbreak.txt").write_text("本文", encoding="utf-8")
    (tmp_path / "after.txt").write_text("本文", encoding="utf-8")
    with open(tmp_path / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "municipality", "prefecture", "title", "year", "kind", "url"])
        w.writerow(["line\nbreak.txt", "改行市", "高知県", "題", "2025", "計画", ""])
        w.writerow(["after.txt", "甲市", "高知県", "題", "2025", "計画", ""])
    res = read_manifest(tmp_path)
    assert [e.path for e in res.entries] == ["line\nbreak.txt", "after.txt"]
    assert not [m for m in res.messages if m.severity == "error"]
