"""Print the signals behind :func:`search.answers.municipality_answer` on the development questions.

    python3 -m search.calibrate_answers [--index DIR] [--questions ../shared/eval/dev_queries.jsonl]

For every "which"/"compare" question (and the unanswerable ``relevant: []`` ones) it lists each
municipality's best passage with its signals (dense cosine, BM25 per query term, lemma
coverage), the resulting confidence, and whether the passage is relevant (contains a
``must_contain`` phrase of the question, as in shared/eval/README.md). docs/answers.md records
the numbers this printed when the thresholds were chosen. With ``--fit`` it also fits a
logistic regression on the rows (a sanity check for the hand-set weights, not used directly).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from search.answers import _best_per_municipality, _dense01, _Query, is_answered
from search.answers.signals import ANSWER_ALT_DENSE, W_BM25, W_DENSE

DEFAULT_QUESTIONS = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "dev_queries.jsonl"


def collect(engine: Any, questions: Path, kinds: tuple[str, ...] = ("which", "compare"),
            split: str | None = None) -> list[dict[str, Any]]:
    """One dict per (question, municipality): signals, confidence, relevance label (the
    municipality is one of the question's answering municipalities)."""
    from search.evaluate import answers, load_questions
    from search.evaluate_answers import gold_municipalities

    rows: list[dict[str, Any]] = []
    for question in load_questions(questions, split):
        if question.kind not in kinds and question.relevant:
            continue
        gold = set(gold_municipalities(engine, question.relevant))
        q = _Query(engine, question.query)
        results = engine.search(question.query, k=50)
        fused = [float(x.score) for x in results]
        top_f, lo_f = (max(fused), min(fused)) if fused else (0.0, 0.0)
        first_pos: dict[str, int] = {}
        for pos, x in enumerate(results, 1):
            first_pos.setdefault(x.chunk.municipality, pos)
        for rank, (r, s) in enumerate(_best_per_municipality(q, results), 1):
            rows.append({
                "id": question.id, "kind": question.kind, "answerable": bool(question.relevant), "rank": rank,
                "municipality": r.chunk.municipality, "relevant": any(answers(r.chunk.doc_id, r.chunk.text, e) for e in question.relevant),
                "gold": r.chunk.municipality in gold, "n_gold": len(gold),
                "fused": float(r.score), "fused_rel": (float(r.score) - lo_f) / (top_f - lo_f) if top_f > lo_f else 1.0,
                "first_pos": first_pos.get(r.chunk.municipality, 0),
                "dense": s.dense, "dense01": _dense01(s.dense), "bm25_norm": s.bm25_norm,
                "coverage": s.coverage, "cov_idf": s.coverage_idf, "score": s.score(), "confidence": s.confidence(),
                "answers": is_answered(s), "item": r.chunk.item[:30],
            })
    return rows


def table_metrics(rows: list[dict[str, Any]], answer_at: float, row_at: float, w_dense: float = W_DENSE,
                  w_bm25: float = W_BM25, within: float | None = None, alt_at: float | None = None,
                  alt_dense: float = ANSWER_ALT_DENSE) -> dict[str, float]:
    """The answer table's answered/declined rates and municipality precision/recall if the
    answer threshold were ``answer_at`` and the row threshold ``row_at`` (on the evidence score
    coverage + w_dense·dense01 + w_bm25·min(bm25n, 1)); ``within``: a row below ``answer_at`` must
    also score at least the top row's score minus this. ``alt_at``: a question is also answered
    when its best row scores this with dense01 ≥ ``alt_dense``. ``table_metrics(rows, SCORE_MID,
    ROW_SCORE, within=ROW_WITHIN, alt_at=ANSWER_ALT_SCORE)`` is what
    search.answers.municipality_answer does."""
    by_q: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_q.setdefault(r["id"], []).append(r)
    ans_n = ans_ok = una_n = una_ok = 0
    precs: list[float] = []
    recs: list[float] = []
    for qrows in by_q.values():
        scores = [r["coverage"] + w_dense * r["dense01"] + w_bm25 * min(r["bm25_norm"], 1.0) for r in qrows]
        top = max(scores) if scores else -1.0
        best = qrows[scores.index(top)] if scores else None
        answered = top >= answer_at or (alt_at is not None and best is not None and top >= alt_at
                                        and best["dense01"] >= alt_dense)
        floor = row_at if within is None else min(answer_at, max(row_at, top - within))
        listed = [r for r, sc in zip(qrows, scores) if answered and (r is best or sc >= floor)]
        if qrows[0]["answerable"]:
            ans_n += 1
            ans_ok += answered
            right = sum(r["gold"] for r in listed)
            recs.append(right / max(1, qrows[0]["n_gold"]))
            if listed:
                precs.append(right / len(listed))
        else:
            una_n += 1
            una_ok += not answered
    return {"answered": ans_ok / ans_n if ans_n else float("nan"), "declined": una_ok / una_n if una_n else float("nan"),
            "precision": sum(precs) / len(precs) if precs else float("nan"), "recall": sum(recs) / len(recs) if recs else 0.0}


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 0.1, steps: int = 5000) -> np.ndarray:
    """Plain L2-regularised logistic regression by gradient descent; returns [bias, w...]."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-xb @ w))
        g = xb.T @ (p - y) / len(y) + l2 * np.r_[0, w[1:]]
        w -= 0.5 * g
    return w


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    from index.config import load_settings
    from search.engine import Engine

    ap = argparse.ArgumentParser()
    ap.add_argument("--index")
    ap.add_argument("--questions", default=str(DEFAULT_QUESTIONS))
    ap.add_argument("--fit", action="store_true")
    ap.add_argument("--split", choices=["tune", "check"])
    ap.add_argument("--dump", help="write the collected rows as JSON here (for table_metrics grids)")
    args = ap.parse_args(argv)
    engine = Engine.from_settings(load_settings(index_dir=args.index))
    rows = collect(engine, Path(args.questions), split=args.split)
    if args.dump:
        Path(args.dump).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    print("id   kind     rk municipality   rel  cos    d01   bm25n  cov  covI  score conf")
    for r in rows:
        print(f"{r['id']}  {r['kind']:<8} {r['rank']:>2} {r['municipality']:<12} {'Y' if r['relevant'] else '.':<3} "
              f"{r['dense']:.3f}  {r['dense01']:.2f}  {r['bm25_norm']:.2f}  {r['coverage']:.2f}  {r['cov_idf']:.2f}  {r['score']:.2f}  {r['confidence']:.2f}"
              f"  {r['item']}")
    top = [r for r in rows if r["rank"] == 1]
    print()
    for r in top:
        verdict = "answered" if r["answers"] else "NOT answered"
        print(f"{r['id']} answerable={r['answerable']} top={r['municipality']} rel={r['relevant']} "
              f"conf={r['confidence']:.2f} -> {verdict}")
    if args.fit:
        x = np.array([[r["coverage"], r["dense01"], min(r["bm25_norm"], 1.0)] for r in rows])
        y = np.array([1.0 if r["relevant"] else 0.0 for r in rows])
        w = fit_logistic(x, y)
        print("logistic fit [bias, coverage, dense01, bm25n]:", np.round(w, 2))
        p = 1 / (1 + np.exp(-(np.hstack([np.ones((len(x), 1)), x]) @ w)))
        ll = -np.mean(y * np.log(p + 1e-9) + (1 - y) * np.log(1 - p + 1e-9))
        print(f"log-loss {ll:.3f}  (n={len(y)}, positives={int(y.sum())}; base rate {y.mean():.2f}, "
              f"base log-loss {-(y.mean()*math.log(y.mean())+(1-y.mean())*math.log(1-y.mean())):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
