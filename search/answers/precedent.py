"""「他の自治体はどう書いたか」: :func:`wording`, verbatim precedent sentences ranked by lemma
overlap and dense similarity, near-duplicates merged with all their citations."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from search.answers.embed import _embed_passages, _pinned
from search.answers.pick import _is_label, _term_spans, not_found_message
from search.answers.records import Evidence, OtherCitation, WordingHit, WordingResult
from search.answers.signals import WORDING_CANDIDATE_CHUNKS, WORDING_MAX_DENSE, _dense01, _Query, _term_weight
from search.question import FRAME_SUFFIXES, clip_question
from search.records import Filters, Result, Span
from search.sentences import compact, coverage, merge_near_duplicates, one_line, split_sentences, term_set


def strip_frame(text: str) -> str:
    """``text`` without a trailing request frame (「〜という書き方」「〜の文言」), for matching."""
    t = text.strip().rstrip("。．")
    for suf in FRAME_SUFFIXES:
        if t.endswith(suf) and len(t) > len(suf) + 4:
            return t[: -len(suf)].rstrip("をのにとでがは")
    return t


@dataclass
class _Cand:
    result: Result
    start: int
    end: int
    text: str
    lexical: float = 0.0
    dense: float = 0.0
    score: float = 0.0


def wording(engine: Any, text: str, k: int = 10, filters: Filters | None = None) -> WordingResult:
    """Precedent sentences for a draft sentence or theme ``text``, verbatim and cited.

    Candidate chunks: the top :data:`WORDING_CANDIDATE_CHUNKS` of ``engine.search``. Each is
    split into sentences (offsets into ``Chunk.text``, so every sentence is a verbatim
    substring). Sentences are scored by idf-weighted coverage of the text's content lemmas;
    the best :data:`WORDING_MAX_DENSE` are embedded (cached by sentence hash) and re-scored
    with the dense cosine. Near-duplicates (same NFKC-compact text or character 3-gram
    Jaccard ≥ 0.8) are merged into one hit that lists the other citations in ``also``.
    """
    text = clip_question(text)[0]  # no view tokenises more than MAX_QUESTION_CHARS
    engine = _pinned(engine)
    core = strip_frame(text)
    q = _Query(engine, core, dense_text=core)
    results = engine.search(text, k=WORDING_CANDIDATE_CHUNKS, filters=filters, highlight=False,
                            per_municipality_cap=WORDING_CANDIDATE_CHUNKS)
    cands: list[_Cand] = []
    for r in results:
        t = r.chunk.text
        for a, b in split_sentences(t):
            s = t[a:b]
            if len(compact(s)) < 12 or _is_label(s) or "\t" in s:
                continue  # labels, fragments and table rows (tab-separated cells) are not wording
            cands.append(_Cand(r, a, b, one_line(s)))
    if not cands:
        return WordingResult(text, [], not_found_message(engine, "該当する文例は見つかりませんでした。"))
    # idf over the candidate sentences: rare query lemmas weigh more
    sets = [term_set(c.text) for c in cands]
    n_sent = len(cands)
    weights = {}
    for t in q.terms:
        df = sum(1 for s in sets if t in s)
        weights[t] = _term_weight(t) * math.log(1.0 + n_sent / (1.0 + df))
    for c, s in zip(cands, sets):
        c.lexical = coverage(q.terms, s, weights)
    # bounded dense re-scoring: best lexical first, ties by chunk rank
    order = sorted(range(n_sent), key=lambda i: (-cands[i].lexical, cands[i].result.rank, cands[i].start))
    chosen = order[:WORDING_MAX_DENSE]
    vecs = _embed_passages(engine, [cands[i].text for i in chosen])
    for i, cos in zip(chosen, vecs @ q.vec):
        c = cands[i]
        c.dense = float(cos)
        c.score = 0.45 * c.lexical + 0.55 * _dense01(c.dense)
    pool = sorted((cands[i] for i in chosen), key=lambda c: (-c.score, c.result.rank, c.start))
    groups = merge_near_duplicates(pool, text=lambda c: c.text)
    hits: list[WordingHit] = []
    for kept, merged in groups[:k]:
        r = kept.result
        sent = r.chunk.text[kept.start : kept.end]
        spans = [Span(kept.start, kept.end, "sentence")] + [
            s for s in _term_spans(engine, q, r.chunk.text) if s.start >= kept.start and s.end <= kept.end
        ]
        hits.append(
            WordingHit(
                sentence=sent,
                start=kept.start,
                end=kept.end,
                score=kept.score,
                lexical=kept.lexical,
                dense=kept.dense,
                evidence=Evidence.of(r),
                passage=r.chunk.text,
                spans=spans,
                also=[OtherCitation(m.result.chunk.text[m.start : m.end], Evidence.of(m.result)) for m in merged
                      if m.result.chunk.chunk_id != r.chunk.chunk_id or m.start != kept.start],
            )
        )
    return WordingResult(text, hits, "" if hits else "該当する文例は見つかりませんでした。")
