"""Two-sided comparison questions split into sub-queries (search.sides), and the municipality
spread of "which"/"compare" rankings (search.fusion.spread_groups). Pure logic: no model."""
from __future__ import annotations

import pytest

from search.fusion import spread_groups
from search.sides import Side, interleave, split_sides


@pytest.mark.parametrize("question, sides", [
    ("直営を続ける市と民間委託に切り替えた市とで、給食センターの運営の考え方はどう違いますか",
     ["直営を続ける市 給食センターの運営の考え方はどう違いますか",
      "民間委託に切り替えた市 給食センターの運営の考え方はどう違いますか"]),
    # the elliptic second side borrows the first side's object
    ("指定管理を導入した市としていない市の違いを知りたい",
     ["指定管理を導入した市 違いを知りたい", "指定管理をしていない市 違いを知りたい"]),
    ("ごみ収集を直営で続ける町と委託している町で、費用の考え方を比べたいです（来年度の参考に）",
     ["ごみ収集を直営で続ける町 費用の考え方を比べたいです(来年度の参考に)",
      "ごみ収集を委託している町 費用の考え方を比べたいです(来年度の参考に)"]),
])
def test_two_unnamed_sides_become_two_subqueries(question: str, sides: list[str]) -> None:
    assert [s.query for s in split_sides(question)] == sides


def test_two_named_municipalities_are_one_side_each() -> None:
    q = "小平市とつくばみらい市で、公共施設の総量の減らし方を比べたい"
    got = split_sides(q, names=["小平市", "つくばみらい市"])
    assert [s.municipality for s in got] == ["小平市", "つくばみらい市"]
    assert all(s.query == q for s in got)


@pytest.mark.parametrize("question", [
    "学校給食センターの運営を民間に任せている市はどこですか",   # which, not a comparison
    "市と町で比べたい",                                           # sides that say nothing
    "窓口業務の委託について各市の考え方を比べたい",               # one side only
])
def test_no_two_sides(question: str) -> None:
    assert split_sides(question) == []


def test_interleave_alternates_and_drops_repeats() -> None:
    assert interleave([[1, 2, 3], [2, 4]], key=lambda x: x) == [1, 2, 4, 3]


def test_spread_puts_each_municipality_best_above_floor_first() -> None:
    scores = {1: 10.0, 2: 9.0, 3: 8.0, 4: 6.0, 5: 1.0, 6: 0.0}
    muni = {1: "A", 2: "A", 3: "A", 4: "B", 5: "C", 6: "A"}
    ranked = sorted(scores, key=lambda i: -scores[i])
    # B (0.6 of the range) is above the floor, C (0.1) is not: B's best moves up, C's does not
    assert spread_groups(ranked, scores, muni.__getitem__, floor=0.5) == [1, 4, 2, 3, 5, 6]
    # floor 0: every municipality's best first
    assert spread_groups(ranked, scores, muni.__getitem__, floor=0.0) == [1, 4, 5, 2, 3, 6]
    # above 1: nothing moves
    assert spread_groups(ranked, scores, muni.__getitem__, floor=1.1) == ranked


def test_spread_caps_the_rest_per_document_counting_the_first() -> None:
    # municipality A has two documents (a1, a2); the rest is capped per document, and A's first
    # item counts towards its document's cap
    scores = {1: 10.0, 2: 9.5, 3: 9.0, 4: 8.5, 5: 8.0, 6: 0.0}
    muni = {1: "A", 2: "A", 3: "A", 4: "A", 5: "B", 6: "A"}
    doc = {1: "a1", 2: "a1", 3: "a1", 4: "a2", 5: "b", 6: "a1"}
    ranked = sorted(scores, key=lambda i: -scores[i])
    got = spread_groups(ranked, scores, muni.__getitem__, floor=0.5, cap=2, cap_group_of=doc.__getitem__)
    # 1 and 5 first (each municipality's best above the floor); then a1 may have one more (2),
    # a2 its first (4); a1's 3 and 6 are deferred to the next round
    assert got == [1, 5, 2, 4, 3, 6]
