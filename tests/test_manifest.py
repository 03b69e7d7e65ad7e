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
    assert len(res.entries) == 5 and not res.messages
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
