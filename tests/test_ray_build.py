"""The Ray build (``seisaku build --ray``, index/ray_build.py) against a real Ray cluster.

A module fixture starts a two-node cluster on loopback (bench/ray_cluster.py): ``ray start
--head`` and a second ``ray start --address …`` node on the same machine, one CPU each, explicit
free ports, its own temporary directory, no dashboard; both run with ``--block`` as children of
this process and are stopped by their process groups afterwards (never ``ray stop``, which would
stop any Ray on the machine). Each Ray build is compared with a local build of the same corpus, file by file: the
SQLite rows (chunk ids, texts, BM25 terms, lemmas, documents), the vectors within 1e-4, the BM25
files, and the top-10 of every dev query.

The Ray tests skip, saying why, when Ray is not installed (``pip install -e '.[ray]'``;
``scripts/install --test`` installs it). The first test needs no Ray: a local build never
imports it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BUNDLED, REPO

pytestmark = pytest.mark.slow

#: A small corpus for the builds that are done twice (local and Ray): two texts and a PDF.
SUBSET = ("000_981ffc30e8dd5eda.txt", "003_66002c05080786b4.txt", "nankoku_henchi_seibi_keikaku_henkou_r8.pdf")
#: Title of the embedding actors' processes (Ray names a process after the class it runs).
ACTOR = "EmbedPassages"


def _need_ray() -> None:
    """Skip, saying why, without Ray; Ray itself is imported later (its token is set first)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("pyarrow") is None:
        pytest.skip("Ray is not installed: pip install -e '.[ray]' (scripts/install --test installs it)")


def _subset_corpus(dest: Path) -> Path:
    dest.mkdir(parents=True)
    lines = (BUNDLED / "manifest.csv").read_text(encoding="utf-8").splitlines()
    rows = [lines[0]] + [ln for ln in lines[1:] if ln.split(",", 1)[0] in SUBSET]
    assert len(rows) == len(SUBSET) + 1
    (dest / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    for name in SUBSET:
        shutil.copy2(BUNDLED / name, dest / name)
    return dest


def _cache_dir() -> Path:
    from index.config import default_cache_dir

    return Path(os.environ.get("SEISAKU_CACHE") or default_cache_dir())


def snapshot(index_dir: Path) -> dict:
    """What an index holds, read from its files (docs/index-format.md), for comparison."""
    import faiss

    d = Path(index_dir)
    con = sqlite3.connect(d / "index.sqlite")
    try:
        docs = con.execute("SELECT * FROM documents ORDER BY doc_id").fetchall()
        chunks = con.execute("SELECT * FROM chunks ORDER BY id").fetchall()
        columns = [r[1] for r in con.execute("PRAGMA table_info(chunks)")]
    finally:
        con.close()
    dense = faiss.read_index(str(d / "dense.faiss"))
    info = json.loads((d / "index.json").read_text(encoding="utf-8"))
    info.pop("built_at")
    cache = sqlite3.connect(d / "cache" / "embeddings.sqlite")
    try:
        cached = cache.execute("SELECT model_id, key FROM embeddings ORDER BY model_id, key").fetchall()
    finally:
        cache.close()
    return {
        "documents": docs, "columns": columns, "chunks": chunks, "info": info, "cached": cached,
        "vectors": dense.reconstruct_n(0, dense.ntotal),
        "bm25": {p.name: p.read_bytes() for p in sorted((d / "bm25").iterdir())},
    }


def assert_same_index(ray_dir: Path, local_dir: Path) -> None:
    """The Ray-built index equals the local one: every row, every BM25 file, vectors within 1e-4."""
    a, b = snapshot(ray_dir), snapshot(local_dir)
    assert len(a["chunks"]) == len(b["chunks"]) > 0
    assert a["columns"] == b["columns"]
    col = a["columns"].index
    assert [r[col("chunk_id")] for r in a["chunks"]] == [r[col("chunk_id")] for r in b["chunks"]]
    assert [r[col("text")] for r in a["chunks"]] == [r[col("text")] for r in b["chunks"]]
    assert a["chunks"] == b["chunks"]  # terms, lemmas, keys, pages, every column
    assert a["documents"] == b["documents"]
    assert a["info"] == b["info"]
    assert a["bm25"] == b["bm25"]
    assert a["cached"] == b["cached"]
    assert a["vectors"].shape == b["vectors"].shape
    assert float(np.abs(a["vectors"] - b["vectors"]).max()) <= 1e-4


# --------------------------------------------------------------------------- without Ray


@pytest.fixture(scope="module")
def local_subset(tmp_path_factory) -> dict:
    """The subset corpus built locally by ``seisaku build`` in a fresh interpreter, which then
    reports whether anything imported ``ray``."""
    root = tmp_path_factory.mktemp("subset")
    corpus = _subset_corpus(root / "corpus")
    index = root / "index"
    code = (
        "import sys\n"
        "from search.cli import main\n"
        f"rc = main(['build', '--corpus', {str(corpus)!r}, '--index', {str(index)!r}, '--quiet'])\n"
        "print('RC', rc, 'RAY', 'ray' in sys.modules)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1].split()
    return {"corpus": corpus, "index": index, "rc": int(last[1]), "ray_imported": last[3] == "True"}


def test_a_local_build_never_imports_ray(local_subset):
    """`seisaku build` without --ray builds the index and leaves ``ray`` out of sys.modules."""
    assert local_subset["rc"] == 0
    assert (local_subset["index"] / "index.json").is_file()
    assert local_subset["ray_imported"] is False


def test_the_ray_flag_parses():
    """``--ray`` alone means a local Ray instance; ``--ray ADDRESS`` a cluster; off by default."""
    from search.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["build"]).ray is None
    assert parse(["build", "--ray"]).ray == "local"
    assert parse(["build", "--ray", "127.0.0.1:6379", "--quiet"]).ray == "127.0.0.1:6379"
    assert parse(["build", "--ray", "--ray-actor-cpus", "4"]).ray_actor_cpus == 4


def test_a_local_build_then_a_ray_rebuild_reuses_the_cache(local_subset, tmp_path):
    """`seisaku build --ray` (no address: a Ray instance of its own on this machine) over a
    locally built index embeds nothing, changes nothing, and shows its rates."""
    _need_ray()
    index = tmp_path / "index"
    shutil.copytree(local_subset["index"], index)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    for k in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        env.pop(k, None)
    out = subprocess.run(
        [sys.executable, "-m", "search.cli", "build", "--ray", "--corpus", str(local_subset["corpus"]),
         "--index", str(index)], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"新たに埋め込み 0 件, キャッシュ再利用 {len(snapshot(index)['chunks'])} 件" in out.stdout, out.stdout
    assert "Ray local（1 ノード" in out.stdout and "文書/秒" in out.stdout
    assert "チャンク/秒" in out.stderr  # the reading bar
    assert_same_index(index, local_subset["index"])


# --------------------------------------------------------------------------- the cluster


@pytest.fixture(scope="module")
def ray_cluster():
    """A two-node Ray cluster on loopback (head + one worker node, one CPU each): its address."""
    _need_ray()
    from bench.ray_cluster import local_cluster

    with local_cluster(nodes=2, cpus_per_node=1) as address:
        yield address


@pytest.fixture(scope="module")
def ray_bundled(ray_cluster, tmp_path_factory) -> dict:
    """The bundled corpus built on the cluster by ``seisaku build --ray ADDRESS``."""
    import contextlib
    import io

    from search.cli import main

    index = tmp_path_factory.mktemp("ray-bundled") / "index"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["build", "--ray", ray_cluster, "--corpus", str(BUNDLED), "--index", str(index), "--quiet"])
    return {"rc": rc, "index": index, "stdout": out.getvalue(), "stderr": err.getvalue()}


def test_ray_build_equals_the_local_build(ray_bundled, built_index):
    """The bundled corpus built on the two-node cluster is the index a local build writes."""
    assert ray_bundled["rc"] == 0, ray_bundled["stderr"][-2000:]
    summary = ray_bundled["stdout"]
    assert "8 文書, 248 チャンク" in summary and "2 ノード" in summary, summary
    assert "文書/秒" in summary and "チャンク/秒" in summary
    assert_same_index(ray_bundled["index"], Path(built_index.index_dir))


def test_ray_build_gives_the_local_top_10(ray_bundled, built_index, dev_queries):
    """Every dev query's top 10 (hybrid search) is the same on both indexes."""
    from search.engine import Engine

    queries = [json.loads(line)["query"] for line in dev_queries.read_text(encoding="utf-8").splitlines() if line.strip()]
    local, ray_built = Engine(Path(built_index.index_dir)), Engine(ray_bundled["index"])
    for q in queries:
        assert [r.chunk.chunk_id for r in ray_built.search(q, k=10)] == [r.chunk.chunk_id for r in local.search(q, k=10)], q


def _actor_processes() -> dict[int, str]:
    """Process id → title of every embedding actor process on this machine."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("ray::") and ACTOR in title:
            found[int(pid)] = title.strip()
    return found


def _running(title: str) -> bool:
    """Whether an actor's title says it runs a call: ``ray::MapWorker(MapBatches(EmbedPassages)).submit``
    (``….__init__`` while it loads the model, no method when idle)."""
    method = title.rsplit(").", 1)[1] if ")." in title else ""
    return bool(method) and method != "__init__"


def test_a_killed_embedding_actor_is_retried(ray_cluster, local_subset, tmp_path):
    """kill -9 of the embedding actor's process while it embeds: Ray restarts it, sends the block
    again, and the index is complete and equal to the local build."""
    from index.config import Settings
    from index.ray_build import build_index_ray

    settings = Settings(corpus_dir=local_subset["corpus"], index_dir=tmp_path / "index", cache_dir=_cache_dir())
    killed: list[tuple[int, str]] = []
    stop = threading.Event()

    def kill_when_embedding() -> None:
        while not stop.wait(0.05):
            busy = {pid: t for pid, t in _actor_processes().items() if _running(t)}
            if busy:
                pid, title = sorted(busy.items())[0]
                time.sleep(1.0)  # well inside the block's embedding, which takes seconds
                os.kill(pid, signal.SIGKILL)
                killed.append((pid, title))
                return

    blocks: list[int] = []
    watcher = threading.Thread(target=kill_when_embedding, daemon=True)
    watcher.start()
    try:
        report = build_index_ray(settings, address=ray_cluster, progress=False,
                                 on_block=lambda pid, n: blocks.append(pid))
    finally:
        stop.set()
        watcher.join(5)
    assert killed, f"no embedding actor was seen at work: {_actor_processes()}"
    assert blocks and killed[0][0] not in blocks  # the block came back from the restarted actor
    assert report.ok and report.n_embedded == report.n_chunks > 0
    assert_same_index(settings.index_dir, local_subset["index"])


def test_a_ray_build_then_a_local_add(ray_bundled, tmp_path):
    """`seisaku add` on a Ray-built index embeds only the new document and keeps the rest."""
    from index.config import Settings
    from index.update import add_document

    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(BUNDLED, corpus, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    shutil.copytree(ray_bundled["index"], index)
    before = snapshot(index)
    doc = tmp_path / "memo.txt"
    doc.write_text("第1 公共施設の再編\n老朽化した公民館を統合し、跡地を売却して維持管理費を削減する。\n", encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=index, cache_dir=_cache_dir())
    report = add_document(settings, doc, municipality="南国市", prefecture="高知県", title="施設再編メモ")
    assert report.ok, report.summary()
    after = snapshot(index)
    n = len(before["chunks"])
    assert len(after["chunks"]) == n + report.n_doc_chunks and report.n_doc_chunks > 0
    assert report.n_embedded == report.n_doc_chunks
    assert after["chunks"][:n] == before["chunks"]
    assert float(np.abs(after["vectors"][:n] - before["vectors"]).max()) == 0.0
