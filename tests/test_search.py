"""The search engine on a real index built with the real model (``built_index`` fixture), and the
highlight helpers with the real tokeniser. No mocks."""
from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from index.errors import IndexMismatchError
from corpus.normalize import compact
from index.config import Settings
from index.tokenizer import Tokenizer
from corpus.sentences import sentence_spans
from search.highlight import best_sentence_spans, highlight, term_spans
from search.records import Filters, Result

# ---------------------------------------------------------------- highlight (tokeniser only)


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer()


def test_term_spans_by_lemma(tok: Tokenizer) -> None:
    text = "効率的な学校給食の実施のため、新たな学校\n給食センターの整備や既存施設の再編、及びＰＦＩ手法の導入を検討した。"
    spans = term_spans(tok, "給食センターをPFIで整備", text)
    marked = [text[s.start:s.end] for s in spans]
    assert "給食センター" in [m.replace("\n", "") for m in marked] or any("給食センター" in m for m in marked)
    assert "ＰＦＩ" in marked  # full-width in the text, half-width in the query
    assert "整備" in marked
    assert all(s.kind == "term" for s in spans)
    # sorted, non-overlapping
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))


def test_term_spans_inflected_forms(tok: Tokenizer) -> None:
    text = "業務を委託し、経費を削減しました。"
    spans = term_spans(tok, "委託する", text)
    assert [text[s.start:s.end] for s in spans] == ["委託"]
    spans = term_spans(tok, "行う", "検討を行いました")
    assert [("検討を行いました")[s.start:s.end] for s in spans] == ["行い"]


def test_best_sentence(tok: Tokenizer) -> None:
    text = "予算編成を行った。\n新たな学校給食センターの整備についてPFIの導入を検討する。\n職員研修を実施した。"
    spans = best_sentence_spans(tok, "給食センターをPFIで整備", text, n=1)
    assert len(spans) == 1 and spans[0].kind == "sentence"
    assert text[spans[0].start:spans[0].end] == "新たな学校給食センターの整備についてPFIの導入を検討する。"
    assert best_sentence_spans(tok, "火葬場", text) == []
    assert best_sentence_spans(tok, "", text) == []


def test_best_sentence_idf_weighting(tok: Tokenizer) -> None:
    text = "市の計画を検討する。\nサンセット方式を導入する。"
    idf = {"サンセット": 5.0, "方式": 2.0, "検討": 0.1, "計画": 0.1}
    spans = best_sentence_spans(tok, "計画の検討とサンセット方式", text, n=2, idf=idf)
    assert [text[s.start:s.end] for s in spans][0] == "サンセット方式を導入する。"


def test_highlight_one_pass(tok: Tokenizer) -> None:
    text = "斎場を建設する際は民間活力の導入を検討する。"
    spans = highlight(tok, "斎場の建設", text)
    assert spans[0].kind == "sentence"
    assert {text[s.start:s.end] for s in spans[1:]} >= {"斎場", "建設"}
    assert highlight(tok, "", text) == []


# ---------------------------------------------------------------- engine on the real index


@pytest.fixture(scope="module")
def engine(built_index):
    """An Engine over the session's real index (built with the real model)."""
    from search.engine import Engine

    if isinstance(built_index, Settings):
        return Engine.from_settings(built_index)
    settings = getattr(built_index, "settings", None)
    if isinstance(settings, Settings):
        return Engine.from_settings(settings)
    return Engine(Path(built_index))


def _has(r: Result, phrase: str) -> bool:
    return compact(phrase) in compact(r.chunk.text)


@pytest.mark.slow
def test_school_lunch_centre_pfi(engine) -> None:
    res = engine.search("給食センターをPFIで整備", k=10)
    top = res[:3]
    hits = [r for r in top if r.chunk.municipality == "会津若松市" and _has(r, "新たな学校給食セン")]
    assert hits, [r.citation() for r in res]
    c = hits[0].chunk
    assert c.municipality and c.title and c.section and c.department and c.page_start >= 1
    assert hits[0].citation().startswith("会津若松市『")
    assert [r.rank for r in res] == list(range(1, len(res) + 1))
    assert all(a.score >= b.score for a, b in zip(res, res[1:]) if a.chunk.municipality == b.chunk.municipality)


@pytest.mark.slow
def test_crematorium_private_finance(engine) -> None:
    res = engine.search("火葬場の建て替えに民間資金を使うか検討している自治体", k=10)
    assert any(_has(r, "斎場") for r in res[:3]), [r.citation() for r in res]


@pytest.mark.slow
def test_prefecture_filter(engine) -> None:
    res = engine.search("公共施設の見直し", k=10, filters=Filters(prefecture=("東京都",)))
    assert res and {r.chunk.municipality for r in res} == {"小平市"}


@pytest.mark.slow
def test_municipality_kind_year_filters(engine) -> None:
    res = engine.search("事務の効率化", k=10, filters=Filters(municipality=("つくばみらい市",)))
    assert res and {r.chunk.municipality for r in res} == {"つくばみらい市"}
    res = engine.search("負担金", k=10, filters=Filters(kind=("事務事業評価",)))
    assert res and {r.chunk.doc_id for r in res} == {"000_981ffc30e8dd5eda.txt"}
    res = engine.search("行財政改革", k=20, filters=Filters(year=("令和6年度",)))
    assert res and {r.chunk.doc_id for r in res} <= {"000_981ffc30e8dd5eda.txt", "004_f79ffdf675a5d26a.txt"}
    res = engine.search("行財政改革", k=10, filters=Filters(prefecture=("沖縄県",)))
    assert res == []
    assert engine.last_query_info.note
    # blank values (an untouched UI dropdown) restrict nothing
    res = engine.search("負担金", k=10, filters=Filters(municipality=("",), prefecture=("  ",)))
    assert res and engine.last_query_info.filters_source == "none"


@pytest.mark.slow
def test_municipality_named_in_question(engine) -> None:
    res = engine.search("会津若松市の実質公債費比率", k=10)
    assert res and {r.chunk.municipality for r in res} == {"会津若松市"}
    info = engine.last_query_info
    assert info.municipalities == ("会津若松市",) and info.filters_source == "query"
    res = engine.search("会津若松の実質公債費比率", k=10)
    assert res and {r.chunk.municipality for r in res} == {"会津若松市"}
    # explicit filters win over names in the question
    res = engine.search("会津若松市の行財政改革", k=10, filters=Filters(municipality=("小平市",)))
    assert res and {r.chunk.municipality for r in res} == {"小平市"}
    assert engine.last_query_info.filters_source == "caller"
    # no name: no restriction
    engine.search("実質公債費比率", k=10)
    assert engine.last_query_info.municipalities == ()


@pytest.mark.slow
def test_per_municipality_cap(engine) -> None:
    q = "民間委託や指定管理者制度を導入している自治体"
    res = engine.search(q, k=10)
    counts = Counter(r.chunk.municipality for r in res)
    assert len(counts) >= 2, counts
    cap = engine.settings.per_municipality_cap
    assert cap > 0
    # the first `cap` slots of each municipality come before any deferred one
    assert max(counts.values()) <= cap or len(res) == 10
    res_off = engine.search(q, k=10, per_municipality_cap=0)
    assert len(res_off) == len(res)
    res1 = engine.search(q, k=10, per_municipality_cap=1)
    first = [r.chunk.municipality for r in res1][: len({r.chunk.municipality for r in res1})]
    assert len(set(first)) == len(first)  # one per municipality before any repeats


@pytest.mark.slow
def test_spans_point_at_query_terms(engine) -> None:
    q = "ネーミングライツで収入を確保"
    res = engine.search(q, k=5)
    assert res
    terms = set(engine.tokenizer.tokenize(q))
    r = next(r for r in res if _has(r, "ネーミングライツ"))
    term_spans_ = [s for s in r.spans if s.kind == "term"]
    sent = [s for s in r.spans if s.kind == "sentence"]
    assert term_spans_ and sent
    for s in term_spans_:
        piece = r.chunk.text[s.start:s.end]
        assert 0 <= s.start < s.end <= len(r.chunk.text)
        assert set(engine.tokenizer.tokenize(piece)) & terms, piece
    assert any(compact(r.chunk.text[s.start:s.end]) == "ネーミングライツ" for s in term_spans_)
    s0 = sent[0]
    assert any(s0.start <= t.start and t.end <= s0.end for t in term_spans_)
    assert (s0.start, s0.end) in sentence_spans(r.chunk.text)
    j = r.to_json()
    assert j["spans"] and j["citation"]
    plain = engine.search(q, k=5, highlight=False)  # the answer views' call: same ranking, no spans
    assert [(p.chunk.chunk_id, p.score) for p in plain] == [(r.chunk.chunk_id, r.score) for r in res]
    assert all(not p.spans for p in plain)
    first = engine.search(q, k=5, highlight=1)  # the UI: highlight only the cards it shows
    assert [p.spans for p in first] == [res[0].spans] + [[]] * (len(res) - 1)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
@pytest.mark.parametrize(
    "query",
    ["", "   \n\t　", "。、！？…「」", "😀🎉🙏", "給食" * 5000, "x" * 10000, "<script>alert(1)</script>", "%s%d{0}\\x00\x00"],
)
def test_odd_queries_are_clean(engine, query: str, mode: str) -> None:
    res = engine.search(query, k=10, mode=mode)
    assert isinstance(res, list)
    assert all(isinstance(r, Result) for r in res)
    assert len(res) <= 10


@pytest.mark.slow
def test_modes_and_bad_mode(engine) -> None:
    for mode in ("hybrid", "dense", "bm25"):
        res = engine.search("ふるさと納税", k=5, mode=mode)
        assert res and len(res) <= 5
    r = engine.search("ふるさと納税", k=5, mode="hybrid")[0]
    assert r.dense_score is not None and r.bm25_score is not None
    with pytest.raises(ValueError):
        engine.search("ふるさと納税", mode="semantic")
    assert engine.search("ふるさと納税", k=0) == []


@pytest.mark.slow
def test_facets_and_documents(engine) -> None:
    assert {"会津若松市", "小平市", "常総市", "つくばみらい市"} <= set(engine.municipalities())
    assert "東京都" in engine.prefectures()
    assert "取組状況" in engine.kinds()
    assert "2024" in engine.years()
    docs = engine.documents()
    assert len(docs) >= 5 and all(d["n_chunks"] >= 0 and isinstance(d["messages"], list) for d in docs)


@pytest.mark.slow
def test_reload_and_concurrent_queries(engine) -> None:
    old = engine.store
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for q in ("給食センター", "斎場", "会津若松市の公債費"):
                assert engine.search(q, k=5)
        except BaseException as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    engine.reload()
    for t in threads:
        t.join()
    assert not errors, errors
    assert engine.store is not old
    assert len(old.chunks) == len(engine.store.chunks)  # the old object still usable


@pytest.mark.slow
def test_model_mismatch_says_how_to_rebuild(engine) -> None:
    from search.engine import Engine

    other = engine.settings.with_overrides(model="intfloat/some-other-model")
    with pytest.raises(IndexMismatchError, match="seisaku build"):
        Engine(engine.settings.index_dir, other)


@pytest.mark.slow
def test_hybrid_beats_single_modes_on_dev_queries(engine, dev_queries: Path) -> None:
    from search.evaluate import evaluate

    reps = {m: evaluate(engine, dev_queries, mode=m) for m in ("dense", "bm25", "hybrid")}
    h = reps["hybrid"].overall
    for m in ("dense", "bm25"):
        assert h.mrr > reps[m].overall.mrr, (m, reps[m].overall, h)
        assert h.recall > reps[m].overall.recall, (m, reps[m].overall, h)
