"""Picking the answering sentence of a passage: candidate sentences (progress-table status
fields first), lemma coverage plus dense cosine on the few best, highlight spans, and the
key-sentence fields shared by answer rows and comparison entries."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from corpus.records import Chunk
from search.answers.embed import _embed_passages
from search.answers.records import Evidence
from search.answers.signals import _MIN_SENTENCE, STATUS_FIELDS, _dense01, _Query, _tokenizer
from search.filters import NOTE_NO_CHUNK_PASSES, no_match_message
from search.question import ANSWER_FRAME_TERMS
from search.records import Result, Span
from search.sentences import compact, one_line, split_sentences, term_set


# ------------------------------------------------------------------------------------------
# Sentences inside a chunk
# ------------------------------------------------------------------------------------------


def _locate(text: str, value: str) -> tuple[int, int] | None:
    """Where ``value`` occurs in ``text`` (compared in compact form), as offsets into ``text``."""
    v = value.strip()
    if not v:
        return None
    i = text.find(v)
    if i >= 0:
        return i, i + len(v)
    cv = compact(v)
    if not cv:
        return None
    chars: list[str] = []
    pos: list[int] = []
    for j, ch in enumerate(text):
        for c in compact(ch):
            chars.append(c)
            pos.append(j)
    i = "".join(chars).find(cv)
    if i < 0:
        return None
    return pos[i], pos[i + len(cv) - 1] + 1


def field_ranges(chunk: Chunk) -> list[tuple[str, int, int]]:
    """``(field name, start, end)`` of each of ``chunk.fields`` found in ``chunk.text``."""
    out = []
    for name, value in (chunk.fields or {}).items():
        if not isinstance(value, str):
            continue
        loc = _locate(chunk.text, value)
        if loc:
            out.append((name, loc[0], loc[1]))
    return out


def _is_label(piece: str) -> bool:
    """True for fragments that are not sentences: too short, or a 「見出し：」 label."""
    c = compact(piece)
    return len(c) < _MIN_SENTENCE or (len(c) <= 16 and c[-1] in "：:")


def _is_status_field(name: str) -> bool:
    return any(s in name for s in STATUS_FIELDS)


@dataclass
class _Sentence:
    start: int
    end: int
    field: str = ""


def chunk_sentences(chunk: Chunk, prefer_status: bool = True) -> list[tuple[int, int, str]]:
    """Candidate answer sentences of ``chunk``: ``(start, end, field name or "")``.

    With ``prefer_status`` and a progress-table chunk (fields such as 取組状況 /
    今後の課題・方向性), only the sentences of those fields are returned (when there are any).
    Label-like fragments shorter than a few characters are left out.
    """
    text = chunk.text
    ranges = field_ranges(chunk)
    out: list[tuple[int, int, str]] = []
    for a, b in split_sentences(text):
        if _is_label(text[a:b]):
            continue
        fname = ""
        for name, fa, fb in ranges:
            if max(a, fa) < min(b, fb) and (min(b, fb) - max(a, fa)) * 2 >= (b - a):
                fname = name
                break
        out.append((a, b, fname))
    if not out:  # a chunk of short lines only: take its longest piece
        spans = split_sentences(text)
        if spans:
            a, b = max(spans, key=lambda s: s[1] - s[0])
            out.append((a, b, ""))
    if prefer_status:
        status = [s for s in out if s[2] and _is_status_field(s[2])]
        if status:
            return status
    return out


#: Sentences of one chunk embedded when picking its key sentence (the best by lemma coverage).
PICK_MAX_DENSE = 4


@dataclass
class _Pick:
    start: int
    end: int
    field: str
    score: float


def _candidates(q: _Query, chunk: Chunk, n: int, prefer_status: bool
                ) -> tuple[list[tuple[int, int, str]], list[str], list[float], list[int]]:
    """``(sentences, their one-line texts, lemma coverage, the ones to embed)`` of ``chunk``:
    only the sentences with the most question concepts are embedded (PICK_MAX_DENSE of them, at
    least n): a sentence that shares none of the question's words rarely beats one that does,
    and each embedded sentence costs ≈ 2–5 ms on 2 cores."""
    key = (chunk.chunk_id, chunk.text, n, prefer_status)
    hit = q.sentence_candidates.get(key)
    if hit is None:
        cands = chunk_sentences(chunk, prefer_status=prefer_status)
        texts = [one_line(chunk.text[a:b]) for a, b, _ in cands]
        lex = [q.coverage(t) for t in texts]
        keep = sorted(range(len(cands)), key=lambda i: (-lex[i], i))[: max(n, PICK_MAX_DENSE)]
        hit = q.sentence_candidates[key] = (cands, texts, lex, keep)
    return hit


def prefetch_key_sentences(q: _Query, chunks: Sequence[Chunk], prefer_status: bool = True) -> None:
    """Embed the key-sentence candidates of all ``chunks`` in one batch (the answer views call
    this for the rows they will show, so that ``_pick_sentences`` finds every vector cached)."""
    texts = [t for c in chunks for cands, ts, _lex, keep in [_candidates(q, c, 1, prefer_status)]
             for t in (ts[i] for i in keep)]
    if texts:
        _embed_passages(q.engine, list(dict.fromkeys(texts)))


def _pick_sentences(q: _Query, chunk: Chunk, n: int = 1, prefer_status: bool = True,
                    dense: bool = True) -> list[_Pick]:
    """The ``n`` sentences of ``chunk`` that best answer ``q``: lemma coverage and dense cosine
    (``dense=False``: lemma coverage alone, nothing embedded)."""
    cands, texts, lex, keep = _candidates(q, chunk, n, prefer_status)
    if not cands:
        return []
    if dense:
        cos = _embed_passages(q.engine, [texts[i] for i in keep]) @ q.vec
        scored = [_Pick(cands[i][0], cands[i][1], cands[i][2], 0.5 * lex[i] + 0.5 * _dense01(float(c)))
                  for i, c in zip(keep, cos)]
    else:
        scored = [_Pick(cands[i][0], cands[i][1], cands[i][2], lex[i]) for i in keep]
    scored.sort(key=lambda p: (-p.score, p.start))
    return scored[:n]


def _term_spans(engine: Any, q: _Query, text: str, key: Any = None) -> list[Span]:
    """The question's content terms in ``text`` (by lemma), as ``Span(kind="term")``; ``key``
    names the passage for the tokenisation cache (the chunk id)."""
    try:
        from search.highlight import term_spans

        spans = term_spans(_tokenizer(engine), q.text, text, key=key, terms=q.highlight_terms)
    except ImportError:  # pragma: no cover - highlight.py is part of the package
        spans = []
    content = set(q.terms)
    out = []
    for s in spans:
        terms = term_set(text[s.start : s.end])
        if terms & content or (terms and not terms <= ANSWER_FRAME_TERMS and not content):
            out.append(s)
    return out


def not_found_message(engine: Any, default: str) -> str:
    """The message for an empty answer: when the last search of this thread found no chunk that
    passes its filters, the Japanese message naming those filters
    (:func:`search.filters.no_match_message`), else ``default``."""
    info = getattr(engine, "last_query_info", None)
    if info is not None and getattr(info, "note", "") == NOTE_NO_CHUNK_PASSES:
        return no_match_message(info.filters)
    return default


def _spans(engine: Any, q: _Query, chunk: Chunk, picks: Sequence[_Pick]) -> list[Span]:
    """The key sentences' spans and the question's terms inside them (offsets into the passage);
    without a key sentence, the terms of the whole passage. Only the key sentence is tokenised:
    an answer table at national scale has up to 50 rows (docs/serving.md)."""
    if not picks:
        return _term_spans(engine, q, chunk.text, key=chunk.chunk_id)
    out = [Span(p.start, p.end, "sentence") for p in picks]
    for p in picks:
        out += [Span(s.start + p.start, s.end + p.start, s.kind)
                for s in _term_spans(engine, q, chunk.text[p.start:p.end], key=(chunk.chunk_id, p.start, p.end))]
    return out


def _key_sentence_fields(engine: Any, q: _Query, result: Result, dense: bool = True) -> dict[str, Any]:
    """The evidence, key sentence and spans of ``result`` shared by :class:`AnswerRow` and
    :class:`ComparisonEntry` (the whole passage when no sentence can be picked; ``dense=False``:
    the key sentence by lemma coverage alone)."""
    chunk = result.chunk
    picks = _pick_sentences(q, chunk, n=1, prefer_status=True, dense=dense)
    p = picks[0] if picks else _Pick(0, len(chunk.text), "", 0.0)
    return dict(
        evidence=Evidence.of(result),
        sentence=chunk.text[p.start : p.end],
        sentence_start=p.start,
        sentence_end=p.end,
        field=p.field,
        passage=chunk.text,
        spans=_spans(engine, q, chunk, [p] if picks else []),
    )
