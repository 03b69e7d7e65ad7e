"""Faults: kill -9 in the middle of a build or an upload, a full disk or read-only index
directory, queries while a rebuild runs, and many users at once.

What a user cares about: after any of these, the previous index still opens and answers, nothing
that was in it is lost, the next build finishes the job, and a write failure says what to check.

Already covered elsewhere (not repeated): an exception in the embedder mid-build, a SIGKILL of
an in-process build with an injected delay, a crash between the two renames and the build lock
(tests/test_build.py); reload while queries run (tests/test_search.py). Here the real
``seisaku build`` / ``seisaku add`` commands are killed without any injected delay.
"""
from __future__ import annotations

import errno
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from index.config import Settings
from tests.test_store import index_leftovers

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
OLD_QUERY = "窓口 RPA"  # answered by a市_計画.txt of the base corpus
NEW_PHRASE = "第{i}地区の下水道包括委託"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "PYTHONIOENCODING": "utf-8"}


def seisaku_args(s: Settings) -> list[str]:
    return ["--corpus", str(s.corpus_dir), "--index", str(s.index_dir)]


def big_text(i: int, items: int) -> str:
    """A plan with ``items`` distinct reform items (so that embedding it takes a while)."""
    parts = [f"第{i}次行財政改革実施計画\n"]
    for j in range(items):
        parts.append(
            f"\n{j + 1} 取組{i}-{j}\n{NEW_PHRASE.format(i=i)}（項目{j}）として、施設{j}号の維持管理を見直し、"
            f"年間{j * 13 % 97 + 3}百万円の削減を目指す。所管課：第{j % 9}課\n"
        )
    return "".join(parts)


def add_big_docs(s: Settings, n_docs: int, items: int) -> None:
    rows = []
    for i in range(n_docs):
        name = f"big_{i}.txt"
        (s.corpus_dir / name).write_text(big_text(i, items), encoding="utf-8")
        rows.append(f"{name},G{i}市,静岡県,G{i}市実施計画,2024,実施計画,")
    with open(s.corpus_dir / "manifest.csv", "a", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")


def assert_old_index_answers(s: Settings, built_at: str, n_chunks: int) -> None:
    """The index on disk is the previous one, and a real search over it answers."""
    from index.store import IndexStore
    from search.engine import Engine

    store = IndexStore.open(s.index_dir)
    assert store.info["built_at"] == built_at and len(store.chunks) == n_chunks
    results = Engine.from_settings(s).search(OLD_QUERY, k=3)
    assert results and results[0].chunk.doc_id == "a市_計画.txt"


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], what: str, limit: float = 900) -> None:
    """SIGKILL ``proc`` as soon as ``ready()``; fail if it ended first (the kill must hit mid-work)."""
    deadline = time.monotonic() + limit
    try:
        while not ready():
            assert proc.poll() is None, f"the process ended before {what}: {proc.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, f"{what} never happened"
            time.sleep(0.02)
        assert proc.poll() is None, f"the process ended before it could be killed ({what})"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def _cache_rows(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
        try:
            return int(con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return -1


# ══ kill -9 ═══════════════════════════════════════════════════════════════════════════════════


@pytest.mark.parametrize("when,n_docs,items", [("temp-dir", 2, 40), ("first-block-embedded", 3, 100)])
def test_kill_9_during_seisaku_build(work: Settings, when: str, n_docs: int, items: int) -> None:
    """``seisaku build`` killed while writing the new index: the old one answers; the next build
    completes, reuses what the killed one embedded, and cleans up."""
    from index.build import EMBED_BLOCK
    from index.store import IndexStore

    before = IndexStore.open(work.index_dir)
    add_big_docs(work, n_docs=n_docs, items=items)  # 80 / 300 new passages (more than one block of 256)
    proc = subprocess.Popen([sys.executable, "-m", "search.cli", "build", *seisaku_args(work), "--quiet"],
                            cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tmp = work.index_dir.with_name(f"{work.index_dir.name}.tmp-{proc.pid}")
    db = tmp / "cache" / "embeddings.sqlite"
    base_rows = len({c.embed_text for c in before.chunks})
    if when == "temp-dir":
        kill_when(proc, tmp.exists, "the temporary build directory appeared")
    else:
        kill_when(proc, lambda: _cache_rows(db) >= base_rows + EMBED_BLOCK, "the first embedded block was saved")

    assert_old_index_answers(work, before.info["built_at"], len(before.chunks))
    proc2 = subprocess.run([sys.executable, "-m", "search.cli", "build", *seisaku_args(work), "--quiet"],
                           cwd=REPO, env=_env(), capture_output=True, text=True, timeout=1800)
    assert proc2.returncode == 0, proc2.stderr[-2000:]
    assert "作成・更新中" not in proc2.stderr  # the killed build's lock died with it
    after = IndexStore.open(work.index_dir)
    assert len(after.documents) == len(before.documents) + n_docs
    assert index_leftovers(work) == []
    if when == "first-block-embedded":  # the killed build's work was salvaged, not redone
        import re

        m = re.search(r"キャッシュ再利用 (\d+) 件", proc2.stdout)
        assert m and int(m.group(1)) >= base_rows + EMBED_BLOCK, proc2.stdout
    from search.engine import Engine

    r = Engine.from_settings(work).search(NEW_PHRASE.format(i=1), k=3)
    assert r and r[0].chunk.doc_id == "big_1.txt"


def test_kill_9_during_upload(work: Settings, tmp_path: Path) -> None:
    """``seisaku add`` killed while writing the new index: the old index answers and lacks the
    document; the manifest row that was already written makes the next build index it."""
    from index.store import IndexStore

    before = IndexStore.open(work.index_dir)
    src = tmp_path / "upload.txt"
    src.write_text(big_text(7, 120), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "search.cli", "add", str(src), "--municipality", "H市",
                             "--prefecture", "静岡県", *seisaku_args(work)],
                            cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tmp = work.index_dir.with_name(f"{work.index_dir.name}.tmp-{proc.pid}")
    kill_when(proc, tmp.exists, "the temporary index directory appeared")

    assert_old_index_answers(work, before.info["built_at"], len(before.chunks))
    assert "uploads/upload.txt" not in IndexStore.open(work.index_dir).documents
    # the manifest is whole (the old rows, plus at most the new row) and still readable
    from corpus.manifest import read_manifest

    paths = [e.path for e in read_manifest(work.corpus_dir).entries]
    assert set(before.documents) <= set(paths) <= set(before.documents) | {"uploads/upload.txt"}
    proc2 = subprocess.run([sys.executable, "-m", "search.cli", "build", *seisaku_args(work), "--quiet"],
                           cwd=REPO, env=_env(), capture_output=True, text=True, timeout=1800)
    assert proc2.returncode == 0, proc2.stderr[-2000:]
    assert index_leftovers(work) == []
    from search.engine import Engine

    # the kill came after the file was copied and its row written (both precede the index write),
    # so the next build indexes it: nothing the user uploaded is lost
    assert "uploads/upload.txt" in paths and (work.corpus_dir / "uploads" / "upload.txt").is_file()
    r = Engine.from_settings(work).search(NEW_PHRASE.format(i=7), k=3)
    assert r and r[0].chunk.doc_id == "uploads/upload.txt"


# ══ write failures (fault injection: root ignores chmod, so the OS calls are made to fail) ════

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _inject(monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    import pathlib

    import index.store as store
    import index.store_write as store_write

    if point == "disk full: swapping in the new index (rename)":
        real = os.rename

        def rename(src, dst, *a, **k):
            if ".tmp-" in str(src):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(src, dst, *a, **k)

        monkeypatch.setattr(os, "rename", rename)  # the swap (index.transaction) renames through os
    elif point == "disk full: writing index.json":
        real_wt = pathlib.Path.write_text

        def write_text(self, *a, **k):
            if self.name == "index.json":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_wt(self, *a, **k)

        monkeypatch.setattr(pathlib.Path, "write_text", write_text)
    elif point == "disk full: SQLite (database or disk is full)":
        def schema(con):
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(store_write, "_create_schema", schema)
    elif point == "disk full: embedding cache":
        def put_many(self, model_id, items):
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(store.EmbeddingCache, "put_many", put_many)
    elif point == "read-only index directory (mkdir)":
        real_mkdir = pathlib.Path.mkdir

        def mkdir(self, *a, **k):
            if ".tmp-" in self.name:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))
            return real_mkdir(self, *a, **k)

        monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    elif point == "disk full: FAISS index (RuntimeError)":
        import faiss

        def write_index(index, path):
            raise RuntimeError(f"Error in faiss::FileIOWriter: write error in {path}: No space left on device")

        monkeypatch.setattr(faiss, "write_index", write_index)
    elif point == "I/O error: fsync":
        def fsync(fd):
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        monkeypatch.setattr(store_write.os, "fsync", fsync)
    else:  # pragma: no cover
        raise AssertionError(point)


WRITE_FAULTS = {
    "disk full: swapping in the new index (rename)": "no space left on device",
    "disk full: writing index.json": "no space left on device",
    "disk full: SQLite (database or disk is full)": "no space left on device",
    "disk full: embedding cache": "no space left on device",
    "read-only index directory (mkdir)": "read-only",
    "disk full: FAISS index (RuntimeError)": "no space left on device",
    "I/O error: fsync": "write failed",
}


@pytest.mark.parametrize("point", list(WRITE_FAULTS))
def test_write_failure_is_a_clear_message_and_the_old_index_stays(work: Settings, monkeypatch: pytest.MonkeyPatch,
                                                                   point: str) -> None:
    from index.build import IndexWriteError, build_index
    from index.store import IndexStore

    before = IndexStore.open(work.index_dir)
    add_big_docs(work, n_docs=1, items=3)
    _inject(monkeypatch, point)
    with pytest.raises(IndexWriteError) as ei:
        build_index(work, progress=False)
    monkeypatch.undo()
    msg = str(ei.value)
    assert WRITE_FAULTS[point] in msg and "以前のインデックスはそのまま使えます" in msg and "previous index is unchanged" in msg
    assert_old_index_answers(work, before.info["built_at"], len(before.chunks))
    assert index_leftovers(work) == []
    rep = build_index(work, progress=False)  # with space again, the build goes through
    assert rep.ok and rep.n_docs == len(before.documents) + 1


def test_disk_full_in_the_cli_is_one_line_not_a_traceback(work: Settings) -> None:
    add_big_docs(work, n_docs=1, items=3)
    code = textwrap.dedent(
        f"""
        import errno, os, sys
        import index.build as b
        real = os.rename
        def rename(src, dst, *a, **k):
            if ".tmp-" in str(src):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(src, dst, *a, **k)
        os.rename = rename
        from search.cli import main
        sys.exit(main(["build", "--corpus", {str(work.corpus_dir)!r}, "--index", {str(work.index_dir)!r}, "--quiet"]))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("エラー: ") and "ディスクの空き容量が足りません" in last


def test_disk_full_during_upload_changes_nothing(work: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The manifest cannot be rewritten (os.replace fails): clear error, manifest and uploads/ as
    before, the index untouched."""
    import corpus.manifest as manifest_mod
    from index.build import IndexWriteError
    from index.update import add_document

    manifest = (work.corpus_dir / "manifest.csv").read_bytes()
    info = (work.index_dir / "index.json").read_bytes()
    src = tmp_path / "plan.txt"
    src.write_text(big_text(3, 2), encoding="utf-8")
    listing = sorted(p.name for p in work.corpus_dir.rglob("*"))

    def replace(a, b):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(manifest_mod.os, "replace", replace)
    with pytest.raises(IndexWriteError, match="no space left on device"):
        add_document(work, src, municipality="J市")
    monkeypatch.undo()
    assert (work.corpus_dir / "manifest.csv").read_bytes() == manifest
    assert (work.index_dir / "index.json").read_bytes() == info
    assert sorted(p.name for p in work.corpus_dir.rglob("*") if p.name != "uploads") == [
        n for n in listing if n != "uploads"]
    assert not (work.corpus_dir / "uploads" / "plan.txt").exists()
    assert add_document(work, src, municipality="J市").ok  # and it works once there is space


# ══ queries during a rebuild ═══════════════════════════════════════════════════════════════════


def test_queries_keep_answering_from_the_old_index_during_a_rebuild(work: Settings) -> None:
    from index.build import build_index
    from search.engine import Engine

    engine = Engine.from_settings(work)
    old_docs = set(engine.store.documents)
    add_big_docs(work, n_docs=2, items=60)
    errors: list[BaseException] = []
    answered: list[int] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            try:
                for q, mode in ((OLD_QUERY, "hybrid"), ("給食センター PFI", "bm25"), (NEW_PHRASE.format(i=1), "hybrid")):
                    res = engine.search(q, k=5, mode=mode)
                    assert res, q
                    assert {r.chunk.doc_id for r in res} <= old_docs  # the old index until reload
                answered.append(1)
            except BaseException as e:  # noqa: BLE001 - collected, asserted below
                errors.append(e)
                return

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        rep = build_index(work, progress=False)
        n_during = len(answered)
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    assert not errors, errors[:3]
    assert rep.ok and n_during > 0  # queries were answered while the build ran
    assert {r.chunk.doc_id for r in engine.search(NEW_PHRASE.format(i=1), k=3)} <= old_docs
    engine.reload()  # after the swap, reload picks up the new index
    r = engine.search(NEW_PHRASE.format(i=1), k=3)
    assert r and r[0].chunk.doc_id == "big_1.txt"


# ══ several users at once (the small version of bench/load.py) ════════════════════════════════


def test_concurrent_users_get_no_errors(built_index: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """4 gradio_client users × 5 questions at once against one launched app: every request answered."""
    from bench.load import load_questions, run_load, warm_up
    from tests.ui_support import launched

    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")  # client-side telemetry
    questions = load_questions()
    with launched(built_index) as url:
        warm_up(url)
        rep, calls = run_load(url, users=4, questions_per_user=5, questions=questions, timeout=1200)
    assert rep.errors == 0, rep.error_samples
    assert len(calls) == 20 and all(c.ok for c in calls)
    assert len({c.endpoint for c in calls}) >= 2  # the mix reaches several endpoints


# ══ a damaged index (a bad disk, a half-finished copy by hand) ═══════════════════════════════

DAMAGE = {
    "index.sqlite": lambda b: b[: len(b) // 3],
    "dense.faiss": lambda b: b[: len(b) // 2],
    "bm25/data.csc.index.npy": lambda b: b[:40],
    "index.json": lambda b: b"{ not json",
}


@pytest.mark.parametrize("name", list(DAMAGE))
def test_damaged_index_says_rebuild_and_build_repairs_it(work: Settings, name: str) -> None:
    from index.errors import IndexMismatchError
    from index.build import build_index
    from search.engine import Engine

    p = work.index_dir / name
    p.write_bytes(DAMAGE[name](p.read_bytes()))
    with pytest.raises(IndexMismatchError, match="seisaku build"):
        Engine.from_settings(work)
    proc = subprocess.run([sys.executable, "-m", "search.cli", "search", OLD_QUERY, *seisaku_args(work)],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("エラー: ") and "seisaku build" in proc.stderr
    rep = build_index(work, progress=False)
    assert rep.ok
    r = Engine.from_settings(work).search(OLD_QUERY, k=3)
    assert r and r[0].chunk.doc_id == "a市_計画.txt"


def test_embedder_is_safe_under_concurrent_requests(built_index: Any) -> None:
    """Regression (found by bench/load.py: 1 of 800 /compare requests failed with "Unable to create
    tensor"): the shared fast tokenizer's truncation/padding state was flipped by one thread's
    token counting while another thread's batch was being padded."""
    from index.build import get_embedder

    emb = get_embedder(built_index)
    emb.encode_queries(["準備"])
    errors: list[BaseException] = []

    def count(seed: int) -> None:
        for i in range(150):
            try:
                emb.token_lengths(["あ" * (1 + (seed * 7 + i) % 50) for _ in range(3)])
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

    def encode(seed: int) -> None:
        for i in range(25):
            try:
                texts = ["い" * (1 + (seed * 11 + i * j) % 40) for j in range(2 + i % 3)]
                vecs = emb.encode_passages(texts)
                assert vecs.shape == (len(texts), emb.dim)
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

    threads = [threading.Thread(target=count, args=(s,)) for s in range(3)]
    threads += [threading.Thread(target=encode, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, [repr(e)[:200] for e in errors[:3]]
