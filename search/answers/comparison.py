"""「各自治体は〜にどう取り組んでいるか」: :func:`compare`, a column per municipality with its
matching items and key sentences, 「該当なし」 when it has nothing relevant."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from search.answers.embed import _pinned
from search.answers.pick import _key_sentence_fields
from search.answers.records import ComparisonColumn, ComparisonEntry, ComparisonTable, item_label
from search.answers.signals import COMPARE_MIN_SCORE, _chunk_signals, _Query
from search.answers.which import _best_per_municipality
from search.question import clip_question
from search.records import Filters, Result


def _entries_for(engine: Any, q: _Query, results: Sequence[Result], per_municipality: int) -> list[ComparisonEntry]:
    sigs = _chunk_signals(q, results)
    ranked = sorted(zip(results, sigs), key=lambda rs: -rs[1].confidence())
    out: list[ComparisonEntry] = []
    seen_items: set[tuple[str, str]] = set()
    for r, s in ranked:
        if s.score() < COMPARE_MIN_SCORE or len(out) >= per_municipality:
            break
        key = (r.chunk.doc_id, item_label(r.chunk))
        if key in seen_items and r.chunk.parts > 1:
            continue  # another part of the same item: one entry per item
        seen_items.add(key)
        out.append(ComparisonEntry(**_key_sentence_fields(engine, q, r), confidence=s.confidence()))
    return out


def _search_in(engine: Any, topic: str, municipality: str, k: int) -> list[Result]:
    return engine.search(topic, k=k, filters=Filters(municipality=(municipality,)), per_municipality_cap=k,
                         highlight=False)


def compare(
    engine: Any,
    topic: str,
    municipalities: Sequence[str] | None = None,
    top_n: int = 4,
    per_municipality: int = 3,
) -> ComparisonTable:
    """Compare how municipalities approach ``topic``: a column per municipality.

    With ``municipalities``, exactly those columns in that order; otherwise the ``top_n``
    municipalities whose best passage for ``topic`` scores highest (and reaches
    :data:`COMPARE_MIN_SCORE`). Each column lists up to ``per_municipality`` matching items
    (item, key sentence, citation); a column with nothing reaching the threshold is 「該当なし」.
    """
    topic = clip_question(topic)[0]  # no view tokenises more than MAX_QUESTION_CHARS
    engine = _pinned(engine)
    q = _Query(engine, topic)
    k_each = max(per_municipality * 3, 8)
    message = ""
    if municipalities:
        names = [m for m in dict.fromkeys(m.strip() for m in municipalities) if m]
    else:
        results = engine.search(topic, k=50, highlight=False, question_type="compare")
        ranked = _best_per_municipality(q, results)
        names = [r.chunk.municipality for r, s in ranked if s.score() >= COMPARE_MIN_SCORE]
        info = getattr(engine, "last_query_info", None)
        if getattr(info, "subqueries", ()):
            # Two sides retrieved separately and interleaved: keep that order, so that the
            # columns alternate between the sides instead of the better-worded side taking all.
            ok = set(names)
            names = [m for m in dict.fromkeys(r.chunk.municipality for r in results) if m in ok]
        names = names[:top_n]
        if not names:
            message = "該当する取組は見つかりませんでした。"
    columns = []
    for name in names:
        results = _search_in(engine, topic, name, k_each)
        entries = _entries_for(engine, q, results, per_municipality)
        pref = results[0].chunk.prefecture if results else ""
        columns.append(ComparisonColumn(municipality=name, prefecture=pref, entries=entries))
    return ComparisonTable(topic=topic, columns=columns, message=message)
