"""search.fusion and search.filters: pure functions, known values (sentences: tests/test_sentences.py)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from corpus.records import Chunk
from search.filters import chunk_matches, detect_municipalities, norm, year_key
from search.fusion import (
    cap_per_group,
    demote_near_duplicates,
    fuse,
    minmax,
    ranks,
    rrf,
    sort_scores,
    weighted_sum,
    zscore,
)
from search.records import Filters


def test_ranks_and_rrf_known_values() -> None:
    d = {1: 0.9, 2: 0.8, 3: 0.1}
    b = {3: 12.0, 1: 5.0}
    assert ranks(d) == {1: 1, 2: 2, 3: 3}
    f = rrf([d, b], [1.0, 1.0], k=60)
    assert f[1] == pytest.approx(1 / 61 + 1 / 62)
    assert f[2] == pytest.approx(1 / 62)
    assert f[3] == pytest.approx(1 / 63 + 1 / 61)
    w = rrf([d, b], [0.25, 0.75], k=60)
    assert w[3] == pytest.approx(0.25 / 63 + 0.75 / 61)


def test_minmax_and_zscore() -> None:
    assert minmax({1: 2.0, 2: 4.0, 3: 3.0}) == {1: 0.0, 2: 1.0, 3: 0.5}
    assert minmax({1: 5.0, 2: 5.0}) == {1: 1.0, 2: 1.0}
    assert minmax({}) == {}
    z = zscore({1: 1.0, 2: 3.0})
    assert z == {1: -1.0, 2: 1.0}
    assert zscore({1: 7.0}) == {1: 0.0}


def test_weighted_sum_minmax_missing_is_zero() -> None:
    f = weighted_sum([{1: 1.0, 2: 0.0}, {2: 10.0, 3: 0.0}], [0.4, 0.6], norm="minmax")
    assert f == pytest.approx({1: 0.4, 2: 0.6, 3: 0.0})


def test_fuse_dispatch_and_weights_change_winner() -> None:
    dense = {1: 0.90, 2: 0.85}
    bm25 = {1: 1.0, 2: 20.0}
    assert sort_scores(fuse(dense, bm25, "minmax", 0.8, 0.2))[0] == 1
    assert sort_scores(fuse(dense, bm25, "minmax", 0.2, 0.8))[0] == 2
    assert set(fuse(dense, bm25, "zscore")) == {1, 2}
    with pytest.raises(ValueError):
        fuse(dense, bm25, "max")


def test_sort_scores_ties_by_id() -> None:
    assert sort_scores({5: 1.0, 2: 1.0, 9: 2.0}) == [9, 2, 5]


def test_cap_defers_not_drops() -> None:
    group = {1: "A", 2: "A", 3: "A", 4: "A", 5: "B", 6: "A", 7: "C"}
    out = cap_per_group([1, 2, 3, 4, 5, 6, 7], group.__getitem__, cap=2)
    assert out == [1, 2, 5, 7, 3, 4, 6]
    assert cap_per_group([1, 2, 3], group.__getitem__, cap=0) == [1, 2, 3]
    # one municipality only: order kept, nothing dropped
    assert cap_per_group([1, 2, 3, 4, 6], group.__getitem__, cap=2) == [1, 2, 3, 4, 6]


@given(st.lists(st.integers(0, 30), unique=True), st.integers(0, 4))
def test_cap_is_a_permutation(ids: list[int], cap: int) -> None:
    out = cap_per_group(ids, lambda i: str(i % 3), cap)
    assert sorted(out) == sorted(ids)
    if cap > 0:
        counts: dict[str, int] = {}
        for i in ids:
            counts[str(i % 3)] = counts.get(str(i % 3), 0) + 1
        first_round = sum(min(n, cap) for n in counts.values())
        head = out[:first_round]
        for g in counts:
            assert sum(1 for i in head if str(i % 3) == g) == min(counts[g], cap)

# ---------------------------------------------------------------- filters


def _chunk(**kw) -> Chunk:
    base = dict(
        chunk_id="c", doc_id="d.txt", municipality="小平市", prefecture="東京都", title="t",
        section_path=("s",), item="", department="", page_start=1, page_end=1, text="x",
        embed_text="x", kind="行財政改革大綱", year="2017",
    )
    base.update(kw)
    return Chunk(**base)


def _unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_near_duplicates_of_one_municipality_are_demoted() -> None:
    # A's second passage nearly repeats its first (two budget rows of one table); A's third says
    # something else. B's passage is a near copy of A's first but belongs to another municipality.
    ranked = ["a1", "a1copy", "a_other", "b1"]
    scores = {"a1": 10.0, "a1copy": 9.5, "a_other": 9.0, "b1": 7.0}
    vecs = np.stack([_unit(1, 0, 0), _unit(1, 0.05, 0), _unit(0, 1, 0), _unit(1, 0.01, 0)])
    group = {"a1": "A", "a1copy": "A", "a_other": "A", "b1": "B"}.__getitem__
    out = demote_near_duplicates(ranked, scores, group, vecs, sim_from=0.9, weight=0.25)
    assert out[:2] == ["a1", "a_other"]  # the distinct passage overtakes the near copy
    # another municipality's copy of A's first passage is not penalised
    scores_b = {"a1": 10.0, "a1copy": 9.5, "a_other": 9.0, "b1": 9.2}
    out_b = demote_near_duplicates(ranked, scores_b, group, vecs, sim_from=0.9, weight=1.0)
    assert out_b == ["a1", "b1", "a_other", "a1copy"]
    assert sorted(out) == sorted(ranked)
    # weight 0, or nothing similar: the order is kept
    assert demote_near_duplicates(ranked, scores, group, vecs, 0.9, 0.0) == ranked
    far = np.stack([_unit(1, 0, 0), _unit(0, 1, 0), _unit(0, 0, 1), _unit(1, 1, 1)])
    assert demote_near_duplicates(ranked, scores, group, far, 0.9, 0.25) == ranked


def test_chunk_matches_each_field() -> None:
    c = _chunk()
    assert chunk_matches(c, None) and chunk_matches(c, Filters())
    assert chunk_matches(c, Filters(prefecture=("東京都",)))
    assert chunk_matches(c, Filters(prefecture=("東京",)))
    assert chunk_matches(c, Filters(prefecture=("　東京都 ",)))
    assert not chunk_matches(c, Filters(prefecture=("福島県",)))
    assert chunk_matches(c, Filters(municipality=("会津若松市", "小平市")))
    assert not chunk_matches(c, Filters(municipality=("会津若松市",)))
    assert chunk_matches(c, Filters(kind=("行財政改革大綱",)))
    assert not chunk_matches(c, Filters(kind=("取組状況",)))
    assert chunk_matches(c, Filters(year=("2017",)))
    assert chunk_matches(c, Filters(year=("平成29年度",)))
    assert chunk_matches(c, Filters(year=("２０１７",)))
    assert not chunk_matches(c, Filters(year=("2024",)))
    assert chunk_matches(_chunk(year="2024"), Filters(year=("令和6年度",)))
    assert chunk_matches(_chunk(year="2024"), Filters(year=("R6",)))
    assert chunk_matches(_chunk(municipality="秋田県・秋田市"), Filters(municipality=("秋田市",)))


def test_year_key() -> None:
    assert year_key("令和元年度") == "2019"
    assert year_key("平成29年") == "2017"
    assert year_key("2024年度") == "2024"


def test_detect_municipalities() -> None:
    names = ["会津若松市", "小平市", "つくばみらい市", "常総市", "三重県", "秋田県", "広域連携事例集"]
    assert detect_municipalities("会津若松市の実質公債費比率", names) == ["会津若松市"]
    assert detect_municipalities("会津若松の実質公債費比率", names) == ["会津若松市"]
    assert detect_municipalities("つくばみらい市の推進期間", names) == ["つくばみらい市"]
    assert detect_municipalities("小平市と常総市を比べる", names) == ["小平市", "常総市"]
    assert detect_municipalities("秋田市との施設統合", names) == []
    assert detect_municipalities("学校給食センターをPFIで整備", names) == []
    assert detect_municipalities("", names) == []
    assert detect_municipalities("ｺﾀﾞｲﾗ 小平市", names) == ["小平市"]


def test_norm() -> None:
    assert norm(" 東京都　") == "東京都"
    assert norm("ＡＢＣ") == "abc"
