"""Metrics of search.evaluate on hand-made rankings with known values (no index needed)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from search.evaluate import (
    READ_LIMIT,
    Relevant,
    answers,
    evaluate,
    format_report,
    load_questions,
    normalize,
    score_ranking,
)

A = "a.txt"
B = "b.txt"


def test_normalize_nfkc_and_all_whitespace() -> None:
    assert normalize("ＰＰＰ／ＰＦＩ　を\n 検討\t") == "PPP/PFIを検討"
    assert normalize("約 8 億 8千 4 百万円") == "約8億8千4百万円"


def test_answers_needs_same_document() -> None:
    e = Relevant(A, "給食センター")
    assert answers(A, "新たな給食センターの整備", e)
    assert not answers(B, "新たな給食センターの整備", e)


def test_answers_phrase_crossing_line_break_and_widths() -> None:
    e = Relevant(A, "新たな学校給食セン")
    assert answers(A, "効率的な学校給食の実施のため、新たな学校\n給食センターの整備", e)
    assert answers(A, "新たな　学校 給食\r\nセンター", e)
    # full-width digits and percent against half-width phrase (NFKC both ways)
    assert answers(A, "実質公債費比率は\n４．９％であり", Relevant(A, "4.9%であり"))
    assert answers(A, "約 8 億 8千 4 百万円の財政効果", Relevant(A, "約8億8千4百万円の財政効果"))


def test_answers_1200_character_rule() -> None:
    phrase = "サンセット方式"
    e = Relevant(A, phrase)
    # whitespace does not count toward the 1,200 normalised characters
    pad = "あ" * (READ_LIMIT - len(phrase))
    assert answers(A, pad + phrase, e)
    assert answers(A, " \n".join(pad) + phrase, e)  # lots of whitespace, same normalised text
    assert not answers(A, pad + "あ" + phrase, e)  # ends at 1,201
    # a phrase straddling the limit does not count
    assert not answers(A, "あ" * (READ_LIMIT - 3) + phrase, e)


def test_single_entry_known_values() -> None:
    rel = [Relevant(A, "X")]
    ranking = [(B, "X"), (A, "no"), (A, "..X..")]
    h1, hk, mrr, rec, ndcg, ranks = score_ranking(ranking, rel, k=10)
    assert (h1, hk, rec, ranks) == (0.0, 1.0, 1.0, [3])
    assert mrr == pytest.approx(1 / 3)
    assert ndcg == pytest.approx((1 / math.log2(4)) / 1.0)


def test_hit_at_rank_one() -> None:
    h1, hk, mrr, rec, ndcg, _ = score_ranking([(A, "X")], [Relevant(A, "X")])
    assert (h1, hk, mrr, rec, ndcg) == (1.0, 1.0, 1.0, 1.0, 1.0)


def test_nothing_found() -> None:
    h1, hk, mrr, rec, ndcg, ranks = score_ranking([(A, "Y")] * 12, [Relevant(A, "X")])
    assert (h1, hk, mrr, rec, ndcg, ranks) == (0.0, 0.0, 0.0, 0.0, 0.0, [None])


def test_beyond_k_does_not_count() -> None:
    ranking = [(A, "Y")] * 10 + [(A, "X")]
    assert score_ranking(ranking, [Relevant(A, "X")], k=10)[1] == 0.0
    assert score_ranking(ranking, [Relevant(A, "X")], k=11)[1] == 1.0


def test_two_entries_and_entry_counts_once() -> None:
    rel = [Relevant(A, "X"), Relevant(B, "Z")]
    # the A passage matches twice: entry counted once, the second match gains nothing
    ranking = [(A, "X"), (A, "X again"), (B, "no"), (B, "Z")]
    h1, hk, mrr, rec, ndcg, ranks = score_ranking(ranking, rel)
    assert ranks == [1, 4]
    assert (h1, hk, mrr, rec) == (1.0, 1.0, 1.0, 1.0)
    dcg = 1 / math.log2(2) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg == pytest.approx(dcg / idcg)


def test_recall_half() -> None:
    rel = [Relevant(A, "X"), Relevant(B, "Z")]
    h1, hk, mrr, rec, ndcg, _ = score_ranking([(B, "..."), (A, "X")], rel)
    assert (h1, hk, rec) == (0.0, 1.0, 0.5)
    assert mrr == 0.5
    assert ndcg == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))


def test_one_passage_answering_two_entries_gains_once() -> None:
    rel = [Relevant(A, "X"), Relevant(A, "Z")]
    h1, hk, mrr, rec, ndcg, ranks = score_ranking([(A, "X and Z")], rel)
    assert ranks == [1, 1] and rec == 1.0
    assert ndcg == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_empty_relevant_rejected() -> None:
    with pytest.raises(ValueError):
        score_ranking([(A, "X")], [])


# ---------------------------------------------------------------- evaluate() end to end on a stub


@dataclass
class _C:
    doc_id: str
    text: str


@dataclass
class _R:
    score: float
    chunk: _C


@dataclass
class _StubEngine:
    """A hand-made ranking per query (the metrics, not retrieval, are under test)."""

    rankings: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def search(self, query: str, k: int = 10, filters=None, mode: str = "hybrid") -> list[_R]:
        return [_R(1.0 / (i + 1), _C(d, t)) for i, (d, t) in enumerate(self.rankings.get(query, []))][:k]


def _write(tmp_path: Path, rows: list[dict]) -> Path:
    p = tmp_path / "q.jsonl"
    p.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return p


def test_evaluate_per_kind_overall_and_no_answer(tmp_path: Path) -> None:
    rows = [
        {"id": "q1", "kind": "which", "query": "q1", "relevant": [{"doc": A, "must_contain": "X"}]},
        {"id": "q2", "kind": "which", "query": "q2", "relevant": [{"doc": A, "must_contain": "X"}]},
        {"id": "q3", "kind": "fact", "query": "q3", "relevant": [{"doc": B, "must_contain": "Z"}]},
        {"id": "q4", "kind": "which", "query": "q4", "relevant": []},
    ]
    eng = _StubEngine({
        "q1": [(A, "X"), (B, "1234")],           # rank 1
        "q2": [(B, "no"), (A, "X")],             # rank 2
        "q3": [(A, "Z")],                        # wrong doc: miss
        "q4": [(A, "whatever")],
    })
    rep = evaluate(eng, _write(tmp_path, rows))
    assert rep.overall.n == 3
    assert rep.overall.hit1 == pytest.approx(1 / 3)
    assert rep.overall.hitk == pytest.approx(2 / 3)
    assert rep.overall.mrr == pytest.approx((1 + 0.5 + 0) / 3)
    assert rep.per_kind["which"].n == 2 and rep.per_kind["which"].mrr == pytest.approx(0.75)
    assert rep.per_kind["fact"].recall == 0.0
    assert rep.per_kind["which"].mean_len == pytest.approx(((1 + 4) / 2 + (2 + 1) / 2) / 2)
    assert rep.no_answer.n == 1 and rep.no_answer.ids == ["q4"]
    assert rep.no_answer.mean_top1_score == pytest.approx(1.0)
    d = rep.to_dict()
    json.dumps(d, ensure_ascii=False)
    assert d["overall"]["n"] == 3
    md = format_report(rep, "stub")
    assert "| **overall** | 3 |" in md and "| which | 2 |" in md and "q4" in md


def test_load_questions_reports_bad_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"id": "a", "kind": "x", "query": "q", "relevant": []}\n{oops\n', encoding="utf-8")
    with pytest.raises(ValueError, match=":2:"):
        load_questions(p)


def test_dev_queries_file_loads(dev_queries: Path) -> None:
    qs = load_questions(dev_queries)
    assert len(qs) >= 30
    assert {q.kind for q in qs} >= {"which", "compare", "wording", "fact"}


# ---------------------------------------------------------------- the answer table's metrics


@dataclass
class _MC:
    doc_id: str
    text: str
    municipality: str


@dataclass
class _Row:
    municipality: str


@dataclass
class _Ans:
    answered: bool
    rows: list


@dataclass
class _DocEngine:
    """Chunks per document (the municipality of a relevant entry is looked up in them)."""

    docs: dict[str, list[_MC]]

    def document_chunks(self, doc_id: str) -> list[_MC]:
        return self.docs.get(doc_id, [])


def test_table_precision_recall_and_case_collection_municipality() -> None:
    from search.evaluate import Question, Relevant
    from search.evaluate_answers import score_table

    eng = _DocEngine({
        "cases.txt": [_MC("cases.txt", "＜秋田県＞ 生活排水の共同処理", "秋田県"),
                      _MC("cases.txt", "＜三重県＞ ビジネスチャット", "三重県")],
        "plan.txt": [_MC("plan.txt", "窓口業務を委託", "小平市")],
    })
    q = Question("q", "which", "?", (Relevant("cases.txt", "ビジネス チャット"), Relevant("plan.txt", "窓口業務")))
    s = score_table(eng, q, _Ans(True, [_Row("三重県"), _Row("会津若松市")]))
    assert s.gold == ["三重県", "小平市"]  # the case's municipality, not the collection's first
    assert s.precision == 0.5 and s.recall == 0.5
    declined = score_table(eng, q, _Ans(False, []))
    assert declined.recall == 0.0 and declined.precision is None and not declined.answered


def test_load_questions_split(tmp_path: Path) -> None:
    rows = [{"id": "a", "kind": "which", "query": "x", "split": "tune", "relevant": []},
            {"id": "b", "kind": "which", "query": "y", "split": "check", "relevant": []}]
    p = _write(tmp_path, rows)
    assert [q.id for q in load_questions(p, "check")] == ["b"]
    assert [q.split for q in load_questions(p)] == ["tune", "check"]


@pytest.mark.slow
def test_cli_eval_reports_the_answer_table(built_index, dev_queries: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "search.cli", "eval", str(dev_queries), "--index", str(built_index.index_dir),
         "--json"], capture_output=True, text=True, timeout=900,
        env={**__import__("os").environ, "SEISAKU_CACHE": str(built_index.cache_dir)})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    table = data["answer_table"]
    assert table["n_answerable"] == 16 and table["n_unanswerable"] == 2
    assert 0.5 <= table["answered_rate"] <= 1.0 and table["precision"] >= 0.5 and table["recall"] >= 0.5
    d01 = next(s for s in table["per_question"] if s["id"] == "d01")
    assert d01["gold"] == ["会津若松市"] and "会津若松市" in d01["rows"]


@pytest.mark.slow
def test_cli_eval_counts_also_passages_unless_strict(built_index, dev_queries: Path, tmp_path: Path) -> None:
    """`seisaku eval` on the real index: an entry whose own phrase is nowhere but whose ``also``
    passage is the answer is found; with ``--strict-labels`` it is not."""
    import subprocess
    import sys

    d01 = json.loads(dev_queries.read_text(encoding="utf-8").splitlines()[0])
    real = d01["relevant"][0]
    d01["relevant"] = [{"doc": real["doc"], "must_contain": "どの資料にもない一句", "also": [real]}]
    qfile = _write(tmp_path, [d01])

    def run(*flags: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-m", "search.cli", "eval", str(qfile), "--index", str(built_index.index_dir),
             "--no-table", "--json", *flags], capture_output=True, text=True, timeout=900,
            env={**__import__("os").environ, "SEISAKU_CACHE": str(built_index.cache_dir)})
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["hybrid"]

    assert run()["overall"]["hitk"] == 1.0
    strict = run("--strict-labels")
    assert strict["overall"]["hitk"] == 0.0 and strict["strict_labels"] is True


# ---------------------------------------------------------------- alternative passages ("also")


def test_an_also_passage_answers_its_entry_once() -> None:
    """An entry with ``also`` passages is answered by any of them (in their own documents), and
    counts once: recall is the share of entries (municipalities) found, whichever passage."""
    e = Relevant(A, "給食センター", also=((B, "調理場の民間委託"), (A, "PFI方式")))
    assert answers(B, "学校給食の調理場の民間委託を進める", e)
    assert answers(A, "ＰＦＩ方式で整備", e)
    assert not answers(A, "調理場の民間委託", e)  # the also phrase is of document B
    ranking = [(A, "PFI方式"), (A, "給食センター"), (B, "調理場の民間委託")]
    h1, hk, mrr, rec, ndcg, ranks = score_ranking(ranking, [e, Relevant(B, "別の市")])
    assert (h1, rec, ranks) == (1.0, 0.5, [1, None])
    assert ndcg == pytest.approx(1.0 / (1.0 + 1.0 / math.log2(3)))


def test_strict_labels_ignore_also(tmp_path: Path) -> None:
    """``load_questions(strict=True)`` and ``evaluate(strict=True)`` score each entry by its own
    phrase only; the default counts the ``also`` passages."""
    rows = [{"id": "q1", "kind": "which", "query": "q1", "relevant": [
        {"doc": A, "must_contain": "X", "also": [{"doc": A, "must_contain": "Y", "why": "same row"}]}]}]
    p = _write(tmp_path, rows)
    assert load_questions(p)[0].relevant[0].also == ((A, "Y"),)
    assert load_questions(p, strict=True)[0].relevant[0].also == ()
    eng = _StubEngine({"q1": [(A, "Y"), (A, "X")]})
    assert evaluate(eng, p).overall.hit1 == 1.0
    strict = evaluate(eng, p, strict=True)
    assert strict.overall.hit1 == 0.0 and strict.overall.mrr == 0.5 and strict.strict_labels
    assert "strict labels" in format_report(strict, "hybrid")


def test_label_check_flags_an_also_passage_of_another_municipality() -> None:
    """The label checker rejects an ``also`` phrase found in no chunk head, or only in a chunk of
    another municipality than the entry's own phrase (the case collection holds three)."""
    from search.eval_data.questions import DocChunks, phrase_problems

    chunks = {"cases.txt": DocChunks("cases.txt", [("秋田県", normalize("生活排水の共同処理を進める")),
                                                   ("三重県", normalize("ビジネスチャットの共同利用"))])}
    ok = {"id": "v", "relevant": [{"doc": "cases.txt", "must_contain": "生活排水",
                                   "also": [{"doc": "cases.txt", "must_contain": "共同処理を"}]}]}
    assert phrase_problems([ok], chunks) == []
    bad = {"id": "v", "relevant": [{"doc": "cases.txt", "must_contain": "生活排水",
                                    "also": [{"doc": "cases.txt", "must_contain": "ビジネスチャット"},
                                             {"doc": "cases.txt", "must_contain": "どこにもない"}]}]}
    problems = [str(p) for p in phrase_problems([bad], chunks)]
    assert len(problems) == 2
    assert "三重県, not of 秋田県" in problems[0] and "no chunk's first" in problems[1]
