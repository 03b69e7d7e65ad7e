"""Build, incremental update, add/remove, atomic swap and the build lock (real model, real store).

Only targeted fault injection is used: an embedder method that raises or sleeps.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from index.config import Settings
from tests.test_store import index_leftovers

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent

NEW_DOC = (
    "下水道事業の経営改善\n\n"
    "下水道使用料の改定と包括的民間委託により、下水道事業の経営基盤を強化する。"
    "処理場の維持管理にはウォーターPPPを導入する。\n"
)


class Spy:
    """Counts the passages the (real) embedder is asked to encode."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, settings: Settings, fail_after: int | None = None) -> None:
        from index.build import get_embedder

        self.texts: list[str] = []
        emb = get_embedder(settings)
        real = emb.encode_passages

        def encode(texts, batch_size=None, show_progress=False):
            if fail_after is not None and len(self.texts) >= fail_after:
                raise RuntimeError("injected failure")
            self.texts.extend(texts)
            return real(texts, batch_size=batch_size, show_progress=show_progress)

        monkeypatch.setattr(emb, "encode_passages", encode)


def _open(s: Settings):
    from index.store import IndexStore

    return IndexStore.open(s.index_dir)


# --------------------------------------------------------------------------- incremental


def test_second_build_embeds_nothing(work: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from index.build import build_index

    before = _open(work)
    spy = Spy(monkeypatch, work)
    rep = build_index(work, progress=False)
    assert rep.ok
    assert rep.n_embedded == 0 and spy.texts == []
    assert rep.n_cached == len({c.embed_text for c in before.chunks})
    after = _open(work)
    assert [c.chunk_id for c in after.chunks] == [c.chunk_id for c in before.chunks]
    assert after.info["corpus_fingerprint"] == before.info["corpus_fingerprint"]


def test_command_line_build_frees_the_model_and_the_index_still_answers(work: Settings) -> None:
    """`seisaku build` (release_model=True) drops the embedding model once the vectors are done
    (≈ 0.7 GB at the peak of a 100k build); the index it wrote answers with a freshly loaded one."""
    import index.build as build_mod
    import index.embedder as embedder_mod
    import index.onnx_backend as onnx_mod
    from search.engine import Engine

    p = work.corpus_dir / "c村_事例.txt"
    p.write_text(p.read_text(encoding="utf-8") + "\n\n資源回収\n\n資源ごみの回収を地域団体に委託した。\n", encoding="utf-8")
    rep = build_mod.build_index(work, progress=False, release_model=True)
    assert rep.ok and rep.n_embedded > 0
    assert len(embedder_mod._EMBEDDERS) == len(onnx_mod._ENCODERS) == len(embedder_mod._MODELS) == 0
    res = Engine.from_settings(work).search("資源ごみの回収を地域団体に委託", k=3)
    assert res and "資源ごみの回収" in res[0].chunk.text


def test_changed_document_reembeds_only_its_chunks(work: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from index.build import build_index

    p = work.corpus_dir / "c村_事例.txt"
    p.write_text(p.read_text(encoding="utf-8") + "\n\n資源回収\n\n資源ごみの回収を地域団体に委託した。\n", encoding="utf-8")
    before = _open(work)
    spy = Spy(monkeypatch, work)
    rep = build_index(work, progress=False)
    after = _open(work)
    old_texts = {c.embed_text for c in before.chunks}
    new_texts = {c.embed_text for c in after.chunks} - old_texts
    assert rep.n_embedded == len(new_texts) == len(set(spy.texts)) > 0
    assert all(t.startswith("長野県C村") or "C村" in t for t in spy.texts)
    assert after.info["corpus_fingerprint"] != before.info["corpus_fingerprint"]


def test_add_document_embeds_only_new_chunks(work: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from index.build import build_index
    from index.update import add_document

    before = _open(work)
    src = tmp_path / "d市 下水道.txt"
    src.write_text(NEW_DOC, encoding="utf-8")
    spy = Spy(monkeypatch, work)
    rep = add_document(work, src, municipality="D市", prefecture="千葉県", title="D市下水道経営戦略", year="2023", kind="経営戦略")
    assert rep.ok, rep.messages
    assert rep.doc_id == "uploads/d市 下水道.txt"
    assert (work.corpus_dir / "uploads" / "d市 下水道.txt").read_text(encoding="utf-8") == NEW_DOC
    assert "uploads/d市 下水道.txt,D市,千葉県" in (work.corpus_dir / "manifest.csv").read_text(encoding="utf-8")
    after = _open(work)
    new = [c for c in after.chunks if c.doc_id == rep.doc_id]
    assert new and rep.n_doc_chunks == len(new)
    assert rep.n_embedded == len({c.embed_text for c in new}) == len(spy.texts)
    assert all("D市" in t for t in spy.texts)
    assert len(after.chunks) == len(before.chunks) + len(new)
    assert [c.chunk_id for c in after.chunks[: len(before.chunks)]] == [c.chunk_id for c in before.chunks]
    assert after.documents[rep.doc_id].municipality == "D市"
    _, ids = after.bm25_search(after.tokenizer.tokenize("下水道 包括的民間委託"), 3)
    assert after.chunks[ids[0]].doc_id == rep.doc_id
    assert "文書を追加しました" in rep.summary()
    # the carried-over cache covers the new document too: a full rebuild embeds nothing
    spy.texts.clear()
    rep2 = build_index(work, progress=False)
    assert rep2.n_embedded == 0 and spy.texts == [] and rep2.n_docs == 4
    assert index_leftovers(work) == []


def test_remove_document(work: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from index.update import remove_document

    before = _open(work)
    spy = Spy(monkeypatch, work)
    rep = remove_document(work, "b町_取組.txt")
    assert rep.ok and rep.n_embedded == 0 and spy.texts == []
    after = _open(work)
    assert "b町_取組.txt" not in after.documents
    assert all(c.doc_id != "b町_取組.txt" for c in after.chunks)
    assert len(after.chunks) == len(before.chunks) - rep.n_doc_chunks
    assert rep.n_doc_chunks == before.documents["b町_取組.txt"].n_chunks > 0
    assert "b町_取組.txt" not in (work.corpus_dir / "manifest.csv").read_text(encoding="utf-8")
    assert (work.corpus_dir / "b町_取組.txt").exists()  # kept without delete_file
    # the vectors of the remaining chunks are the old ones
    import numpy as np

    old = {c.chunk_id: before.vectors([i])[0] for i, c in enumerate(before.chunks)}
    for i, c in enumerate(after.chunks):
        assert np.allclose(after.vectors([i])[0], old[c.chunk_id])
    _, ids = after.bm25_search(after.tokenizer.tokenize("定員適正化"), 5)
    assert all(after.chunks[i].doc_id != "b町_取組.txt" for i in ids)

    rep = remove_document(work, "c村_事例.txt", delete_file=True)
    assert rep.ok and not (work.corpus_dir / "c村_事例.txt").exists()
    rep = remove_document(work, "no-such.txt")
    assert not rep.ok and "no-such.txt" in rep.summary()


def test_add_refusals(work: Settings, tmp_path: Path) -> None:
    from index.update import add_document, sanitise_filename

    manifest = (work.corpus_dir / "manifest.csv").read_bytes()
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ")
    rep = add_document(work, exe, municipality="X市")
    assert not rep.ok and "対応していない形式" in rep.summary()

    dup = tmp_path / "dup.txt"
    dup.write_text(NEW_DOC, encoding="utf-8")
    assert add_document(work, dup, municipality="X市").ok
    again = add_document(work, dup, municipality="X市")
    assert not again.ok and "既に登録" in again.summary()

    assert not add_document(work, tmp_path / "missing.txt", municipality="X市").ok
    assert sanitise_filename("../../etc/passwd.txt") == "passwd.txt"
    assert sanitise_filename("..\\..\\x:y?.pdf") == "x_y_.pdf"
    assert sanitise_filename(".hidden.txt") == "hidden.txt"
    with pytest.raises(ValueError):
        sanitise_filename("..")
    assert manifest != (work.corpus_dir / "manifest.csv").read_bytes()  # only the good add changed it


def test_add_corrupt_pdf_rolls_back(work: Settings, tmp_path: Path) -> None:
    from index.update import add_document

    manifest = (work.corpus_dir / "manifest.csv").read_bytes()
    info = (work.index_dir / "index.json").read_bytes()
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4\n this is not really a pdf \n%%EOF")
    rep = add_document(work, bad, municipality="E市")
    assert not rep.ok
    assert any(m.severity == "error" for m in rep.messages)
    assert "インデックスは変更していません" in rep.summary()
    assert (work.corpus_dir / "manifest.csv").read_bytes() == manifest
    assert not (work.corpus_dir / "uploads" / "broken.pdf").exists()
    assert (work.index_dir / "index.json").read_bytes() == info
    assert index_leftovers(work) == []


# --------------------------------------------------------------------------- atomicity


def _add_docs_to_manifest(s: Settings, n: int) -> None:
    lines = []
    for i in range(n):
        name = f"extra_{i}.txt"
        (s.corpus_dir / name).write_text(f"追加文書{i}\n\n" + NEW_DOC.replace("下水道", f"第{i}下水道"), encoding="utf-8")
        lines.append(f"{name},F{i}市,静岡県,追加{i},2022,計画,")
    with open(s.corpus_dir / "manifest.csv", "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def test_fault_mid_build_keeps_previous_index(work: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from index.build import build_index

    before = _open(work)
    _add_docs_to_manifest(work, 2)
    Spy(monkeypatch, work, fail_after=0)
    with pytest.raises(RuntimeError, match="injected"):
        build_index(work, progress=False)
    after = _open(work)  # still loadable, still the old index
    assert after.info["built_at"] == before.info["built_at"]
    assert len(after.chunks) == len(before.chunks)
    _, ids = after.bm25_search(after.tokenizer.tokenize("給食センター"), 3)
    assert len(ids) > 0
    assert index_leftovers(work) == []
    monkeypatch.undo()
    rep = build_index(work, progress=False)  # the lock was released
    assert rep.n_docs == 5


def test_killed_build_leaves_previous_index(work: Settings) -> None:
    """SIGKILL a build subprocess while its temp dir exists; the old index still answers, and the
    next build cleans the temp dir up."""
    from index.build import build_index

    before = _open(work)
    _add_docs_to_manifest(work, 3)
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from index.build import build_index, get_embedder
        from index.config import Settings
        s = Settings(corpus_dir=Path({str(work.corpus_dir)!r}), index_dir=Path({str(work.index_dir)!r}),
                     cache_dir=Path({str(work.cache_dir)!r}))
        emb = get_embedder(s)
        real = emb.encode_passages
        def slow(texts, batch_size=None, show_progress=False):
            time.sleep(120)  # injected delay: the test kills us here
            return real(texts, batch_size=batch_size, show_progress=show_progress)
        emb.encode_passages = slow
        build_index(s, progress=False)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env)
    tmp = work.index_dir.with_name(f"{work.index_dir.name}.tmp-{proc.pid}")
    try:
        deadline = time.monotonic() + 240
        while not tmp.exists():
            assert proc.poll() is None, "the build subprocess ended early"
            assert time.monotonic() < deadline, "the build never started"
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert tmp.exists()
    after = _open(work)
    assert after.info["built_at"] == before.info["built_at"]
    _, ids = after.bm25_search(after.tokenizer.tokenize("窓口 RPA"), 3)
    assert after.chunks[ids[0]].doc_id == "a市_計画.txt"
    rep = build_index(work, progress=False)
    assert rep.n_docs == 6
    assert not tmp.exists() and index_leftovers(work) == []


def test_crash_between_renames_is_recovered(work: Settings) -> None:
    from index.build import build_index

    before = _open(work)
    aside = work.index_dir.with_name(work.index_dir.name + ".old-424242")
    os.rename(work.index_dir, aside)  # what a crash between the two renames leaves
    store = _open(work)
    assert len(store.chunks) == len(before.chunks)
    rep = build_index(work, progress=False)
    assert rep.ok and rep.n_embedded == 0
    assert (work.index_dir / "index.json").is_file() and not aside.exists()


# --------------------------------------------------------------------------- progress


def test_progress_callback_follows_every_stage(work: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """``build_index(progress=callback)``: one event per document read, tokenising, one per block
    of new passages embedded (the cached ones named in the message), and the write — in order."""
    import index.build as build_mod

    _add_docs_to_manifest(work, 2)  # 5 documents; only the 2 new ones have passages to embed
    monkeypatch.setattr(build_mod, "EMBED_BLOCK", 1)
    events: list[build_mod.BuildProgress] = []
    rep = build_mod.build_index(work, progress=events.append)
    assert rep.ok and rep.n_docs == 5 and rep.n_embedded > 0
    stages = list(dict.fromkeys(e.stage for e in events))
    assert stages == ["読み込み", "トークン化", "埋め込み", "書き込み"]
    reads = [e for e in events if e.stage == "読み込み"]
    assert [(e.done, e.total) for e in reads] == [(i, 5) for i in range(6)]
    assert reads[-1].message == "extra_1.txt" and reads[-1].text() == "読み込み 5/5 文書"
    embeds = [e for e in events if e.stage == "埋め込み"]
    assert [e.done for e in embeds] == list(range(rep.n_embedded + 1))  # one passage per block
    assert all(e.total == rep.n_embedded for e in embeds)
    assert embeds[-1].message == f"キャッシュ再利用 {rep.n_cached} 件"
    assert embeds[-1].text() == f"埋め込み {rep.n_embedded}/{rep.n_embedded} 件"
    tokenised = [e for e in events if e.stage == "トークン化"]
    assert tokenised[-1].done == tokenised[-1].total == rep.n_chunks
    assert [(e.done, e.total) for e in events if e.stage == "書き込み"] == [(0, 1), (1, 1)]


# --------------------------------------------------------------------------- lock


def test_concurrent_build_is_refused(work: Settings) -> None:
    from index.build import IndexBusyError, build_index, build_lock
    from index.update import add_document, remove_document

    with build_lock(work.index_dir):
        with pytest.raises(IndexBusyError) as ei:
            build_index(work, progress=False)
        assert "作成・更新中" in str(ei.value) and "Another build" in str(ei.value)
        assert str(os.getpid()) in str(ei.value)
        with pytest.raises(IndexBusyError):
            remove_document(work, "a市_計画.txt")
    # a lock held by another process; released when it dies
    code = (
        "import sys,time; from pathlib import Path; from index.build import build_lock\n"
        f"with build_lock(Path({str(work.index_dir)!r})):\n    print('locked', flush=True); time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(IndexBusyError, match=str(proc.pid)):
            build_index(work, progress=False)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert build_index(work, progress=False).ok


def test_report_summary_is_japanese(work: Settings) -> None:
    from index.build import build_index

    rep = build_index(work, progress=False)
    text = rep.summary()
    assert "インデックスを作成しました" in text and "3 文書" in text and "新たに埋め込み 0 件" in text
    assert json.loads((work.index_dir / "index.json").read_text(encoding="utf-8"))["built_by"] == "build"


def test_an_index_given_as_a_link_is_one_index_with_one_lock(work: Settings, tmp_path: Path) -> None:
    """`--index` given as a symbolic link: the build swaps the real directory (the link stays a
    link to the new index) and takes the same lock as a build through the real path."""
    import json as _json

    from index.build import IndexBusyError, build_index, build_lock, lock_path, real_paths

    link = tmp_path / "index-link"
    link.symlink_to(work.index_dir, target_is_directory=True)
    via_link = work.with_overrides(index_dir=link)
    assert lock_path(real_paths(via_link).index_dir) == lock_path(real_paths(work).index_dir)
    with build_lock(real_paths(work).index_dir):
        with pytest.raises(IndexBusyError):
            build_index(via_link, progress=False)
    before = _json.loads((work.index_dir / "index.json").read_text(encoding="utf-8"))["built_at"]
    build_index(via_link, progress=False)
    assert link.is_symlink() and link.resolve() == Path(work.index_dir).resolve()
    after = _json.loads((work.index_dir / "index.json").read_text(encoding="utf-8"))["built_at"]
    assert after != before  # the real directory holds the new index
    assert not lock_path(link).exists()  # no second lock file beside the link
