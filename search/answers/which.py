"""「どの自治体が〜したか」: :func:`municipality_answer`, one row per municipality with a calibrated
confidence, or a plain "not found"."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from search.answers.embed import _pinned
from search.answers.pick import _key_sentence_fields, not_found_message, prefetch_key_sentences
from search.answers.records import AnswerRow, MunicipalityAnswer
from search.answers.signals import (
    ANSWER_ALT_DENSE,
    ANSWER_ALT_SCORE,
    ANSWER_THRESHOLD,
    NEAR_ROWS,
    ROW_SCORE,
    ROW_WITHIN,
    SCORE_MID,
    _PER_MUNI_SCORED,
    Signals,
    _chunk_signals,
    _dense01,
    _Query,
)
from search.question import clip_question
from search.records import Filters, Result


#: Rows whose key sentence is chosen with embeddings (the most confident first); the rest by
#: lemma coverage alone. A national index lists up to 50 municipalities per question, and each
#: embedded row costs ≈ 10 ms on 2 cores (docs/serving.md).
DENSE_ROWS = 12


def _make_rows(engine: Any, q: _Query, scored: Sequence[tuple[Result, Signals]]) -> list[AnswerRow]:
    """One :class:`AnswerRow` per ``(result, signals)``, in that order; the key-sentence
    candidates of the first :data:`DENSE_ROWS` are embedded in one batch."""
    prefetch_key_sentences(q, [r.chunk for r, _s in scored[:DENSE_ROWS]])
    return [AnswerRow(**_key_sentence_fields(engine, q, r, dense=i < DENSE_ROWS), confidence=s.confidence(), signals=s)
            for i, (r, s) in enumerate(scored)]


def _group_by_municipality(results: Sequence[Result], per: int) -> "OrderedDict[str, list[Result]]":
    groups: OrderedDict[str, list[Result]] = OrderedDict()
    for r in results:
        g = groups.setdefault(r.chunk.municipality, [])
        if len(g) < per:
            g.append(r)
    return groups


def _best_per_municipality(q: _Query, results: Sequence[Result]) -> list[tuple[Result, Signals]]:
    """Each municipality's best-scoring result among its top few, sorted by confidence."""
    groups = _group_by_municipality(results, _PER_MUNI_SCORED)
    flat = [r for g in groups.values() for r in g]
    sigs = _chunk_signals(q, flat)
    best: dict[str, tuple[Result, Signals]] = {}
    for r, s in zip(flat, sigs):
        m = r.chunk.municipality
        if m not in best or s.confidence() > best[m][1].confidence():
            best[m] = (r, s)
    return sorted(best.values(), key=lambda rs: -rs[1].confidence())


def is_answered(top: Signals) -> bool:
    """Whether the best row answers the question: confidence ≥ :data:`ANSWER_THRESHOLD`, or score
    ≥ :data:`ANSWER_ALT_SCORE` with dense01 ≥ :data:`ANSWER_ALT_DENSE` (docs/answers.md)."""
    return top.confidence() >= ANSWER_THRESHOLD or (
        top.score() >= ANSWER_ALT_SCORE and _dense01(top.dense) >= ANSWER_ALT_DENSE)


def keeps_row(sig: Signals, top_score: float) -> bool:
    """Whether a row other than the best is listed: score ≥ :data:`SCORE_MID`, or score ≥
    :data:`ROW_SCORE` and within :data:`ROW_WITHIN` of ``top_score``."""
    s = sig.score()
    return s >= SCORE_MID or (s >= ROW_SCORE and s >= top_score - ROW_WITHIN)


def municipality_answer(engine: Any, query: str, filters: Filters | None = None, k: int = 50) -> MunicipalityAnswer:
    """Answer 「どの自治体が〜したか」: one row per municipality with evidence, or "not found".

    Takes the top ``k`` passages of ``engine.search`` (hybrid; a "which"/"compare" question
    ranks every municipality's best passage first), scores each municipality's best few with
    :class:`Signals` (dense cosine, BM25 per query term, coverage of the question's content
    lemmas) into a calibrated confidence, and keeps the municipalities whose best passage's
    score reaches :data:`SCORE_MID` (confidence 0.5), or reaches :data:`ROW_SCORE` and lies
    within :data:`ROW_WITHIN` of the best row's (:func:`keeps_row`). If the best one does not answer (:func:`is_answered`: confidence below
    :data:`ANSWER_THRESHOLD` and not the close-in-meaning route) the answer is ``answered=False`` with the message 「確かな該当は見つかりませんでした。近い箇所: …」
    and the :data:`NEAR_ROWS` nearest rows in ``near`` (shown as 低, never as an answer).
    """
    query = clip_question(query)[0]  # no view tokenises more than MAX_QUESTION_CHARS
    engine = _pinned(engine)
    q = _Query(engine, query)
    results = engine.search(query, k=k, filters=filters, highlight=False)
    info = getattr(engine, "last_query_info", None)
    qtype = getattr(info, "question_type", "") or ""
    scored = _best_per_municipality(q, results)
    if not scored:
        return MunicipalityAnswer(query, False, [], not_found_message(engine, "該当する取組は見つかりませんでした。"),
                                  None, question_type=qtype)
    top_r, top_s = scored[0]
    if not is_answered(top_s):
        near = _make_rows(engine, q, scored[:NEAR_ROWS])
        cites = "、".join(r.evidence.citation for r in near)
        msg = f"確かな該当は見つかりませんでした。近い箇所: {cites}"
        return MunicipalityAnswer(query, False, [], msg, near[0], near=near, question_type=qtype)
    # The best row and a municipality that would answer the question on its own (score ≥
    # SCORE_MID) are always listed; a weaker one only when it reaches ROW_SCORE and lies within
    # ROW_WITHIN of the best (keeps_row).
    rows = _make_rows(engine, q, [rs for i, rs in enumerate(scored) if i == 0 or keeps_row(rs[1], top_s.score())])
    rows.sort(key=lambda r: -r.confidence)
    msg = f"{len(rows)} 自治体が該当します。"
    return MunicipalityAnswer(query, True, rows, msg, None, question_type=qtype)
