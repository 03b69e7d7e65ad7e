"""Highlights: where the query's terms occur in a passage and which sentence answers best.

All offsets are character offsets into the *original* passage text (``Chunk.text``), so a UI
can mark them without re-normalising anything.

Sentences are those of :func:`corpus.sentences.sentence_spans`, the splitter the chunker and the
answer views use too, so a card marks the same sentence an answer row would quote.

- :func:`term_spans` — the query's terms by fugashi lemma (``Tokenizer.tokenize_with_spans``).
- :func:`best_sentence_spans` — the sentence(s) sharing the most idf-weighted query terms.
- :func:`highlight` — both at once, tokenising the passage only once (what the engine uses).

The functions take any tokenizer with ``tokenize(text) -> list[str]`` and
``tokenize_with_spans(text) -> list[tuple[str, int, int]]`` (``index.tokenizer.Tokenizer``).
"""
from __future__ import annotations

import math
import sys
from array import array
from typing import Callable, Hashable, Mapping, Protocol, Sequence, Union

from corpus.memo import LockedCache
from corpus.sentences import sentence_spans
from search.records import Span


class TokenizerLike(Protocol):
    """What the highlight functions need of ``index.tokenizer.Tokenizer``."""

    def tokenize(self, text: str) -> list[str]:
        """The BM25 terms of ``text``."""
        ...

    def tokenize_with_spans(self, text: str) -> list[tuple[str, int, int]]:
        """``(term, start, end)`` per term, offsets into ``text``."""
        ...


#: idf source: a mapping term -> idf, a function term -> idf, or None (every term weighs 1).
IdfSource = Union[Mapping[str, float], Callable[[str], float], None]


def _idf_of(idf: IdfSource) -> Callable[[str], float]:
    if idf is None:
        return lambda _t: 1.0
    if callable(idf) and not isinstance(idf, Mapping):
        return idf
    m = idf

    def get(t: str) -> float:
        v = m.get(t)  # type: ignore[union-attr]
        return float(v) if v is not None else 1.0

    return get


def query_terms(tokenizer: TokenizerLike, query: str) -> set[str]:
    """The distinct BM25 terms of ``query`` (fugashi lemmas as the index's tokenizer makes them)."""
    if not query or not query.strip():
        return set()
    return set(tokenizer.tokenize(query))


def _merge(spans: list[tuple[int, int]], kind: str) -> list[Span]:
    out: list[Span] = []
    for s, e in sorted(spans):
        if out and s <= out[-1].end:
            if e > out[-1].end:
                out[-1] = Span(out[-1].start, e, kind)
        else:
            out.append(Span(s, e, kind))
    return out


def _term_spans_from(tokens: Sequence[tuple[str, int, int]], terms: set[str]) -> list[Span]:
    return _merge([(s, e) for t, s, e in tokens if t in terms and e > s], "term")


def term_spans(tokenizer: TokenizerLike, query: str, text: str, key: Hashable = None,
               terms: set[str] | None = None) -> list[Span]:
    """Spans of ``text`` whose token (by fugashi lemma) is one of the query's terms.

    Overlapping or touching spans are merged (「学校」「給食」「センター」 → one span), so the list is
    sorted, non-overlapping, and every span is a ``Span(kind="term")``. ``key`` names the passage
    for the tokenisation cache (:func:`passage_tokens`); ``terms`` are the query's terms when the
    caller already has them (:func:`query_terms`).
    """
    terms = query_terms(tokenizer, query) if terms is None else terms
    if not terms or not text:
        return []
    return _term_spans_from(passage_tokens(tokenizer, text, key), terms)


def _sentence_scores(
    tokens: Sequence[tuple[str, int, int]],
    sentences: list[tuple[int, int]],
    terms: set[str],
    idf: Callable[[str], float],
) -> list[float]:
    """BM25-style score of each sentence against the query terms (k1=1.2, b=0.5)."""
    if not sentences:
        return []
    tf: list[dict[str, int]] = [dict() for _ in sentences]
    starts = [s for s, _ in sentences]
    import bisect

    for t, s, _e in tokens:
        if t not in terms:
            continue
        k = bisect.bisect_right(starts, s) - 1
        if k >= 0 and s < sentences[k][1]:
            tf[k][t] = tf[k].get(t, 0) + 1
    lengths = [max(1, e - s) for s, e in sentences]
    avg = sum(lengths) / len(lengths)
    k1, b = 1.2, 0.5
    scores = []
    for counts, ln in zip(tf, lengths):
        sc = 0.0
        for t, f in counts.items():
            sc += idf(t) * f * (k1 + 1) / (f + k1 * (1 - b + b * ln / avg))
        scores.append(sc)
    return scores


def best_sentence_spans(
    tokenizer: TokenizerLike, query: str, text: str, n: int = 1, idf: IdfSource = None
) -> list[Span]:
    """The ``n`` sentences of ``text`` that best match ``query``, best first, as ``Span(kind="sentence")``.

    Lexical: a BM25-style sum over the query's lemmas present in the sentence, weighted by ``idf``
    (pass the index's idf, e.g. ``engine.idf``; without it every term weighs 1). Sentences sharing
    no query term are never returned, so the list may be shorter than ``n`` or empty.
    """
    terms = query_terms(tokenizer, query)
    if not terms or not text or n <= 0:
        return []
    return _best_from(tokenizer.tokenize_with_spans(text), sentence_spans(text), terms, _idf_of(idf), n)


def _best_from(
    tokens: Sequence[tuple[str, int, int]],
    sentences: list[tuple[int, int]],
    terms: set[str],
    idf: Callable[[str], float],
    n: int,
) -> list[Span]:
    scores = _sentence_scores(tokens, sentences, terms, idf)
    order = sorted(
        (i for i, sc in enumerate(scores) if sc > 0),
        key=lambda i: (-scores[i], i),
    )
    return [Span(sentences[i][0], sentences[i][1], "sentence") for i in order[:n]]


def highlight(
    tokenizer: TokenizerLike,
    query: str | set[str],
    text: str,
    n_sentences: int = 1,
    idf: IdfSource = None,
    cache_key: Hashable = None,
) -> list[Span]:
    """Term spans and the best ``n_sentences`` sentence spans of ``text`` in one pass.

    ``query`` may be the query string or its already-computed term set (see :func:`query_terms`).
    Returns the sentence span(s) first (best first), then the term spans in text order.
    ``cache_key`` (e.g. the chunk id) lets the passage's tokenisation be reused across queries
    (:func:`passage_tokens`); the spans are the same either way.
    """
    terms = query if isinstance(query, set) else query_terms(tokenizer, query)
    if not terms or not text:
        return []
    tokens = passage_tokens(tokenizer, text, cache_key)
    sent = _best_from(tokens, sentence_spans(text), terms, _idf_of(idf), n_sentences) if n_sentences > 0 else []
    return [*sent, *_term_spans_from(tokens, terms)]


#: Passages whose token spans :func:`passage_tokens` keeps (LRU). Stored compactly (interned
#: terms + an int32 offset array): ≈ 2–3 KiB for a 300-character chunk.
TOKEN_CACHE_SIZE = 4096

_Packed = tuple[tuple[str, ...], array]
_TOKENS: LockedCache[Hashable, _Packed] = LockedCache(TOKEN_CACHE_SIZE)


def _cache_version(tokenizer: TokenizerLike) -> str | None:
    """The tokeniser's rules version when its output depends on nothing else, else None."""
    v = getattr(tokenizer, "version", None)
    if not isinstance(v, str) or not v or "custom" in v:
        return None
    from index.tokenizer import Tokenizer

    return v if type(tokenizer) is Tokenizer else None


def passage_tokens(tokenizer: TokenizerLike, text: str, key: Hashable = None) -> Sequence[tuple[str, int, int]]:
    """``tokenizer.tokenize_with_spans(text)``, remembered per passage.

    ``key`` names the passage (the engine passes the chunk id); the cache key is
    ``(tokeniser version, key, text)``, so a different text under the same key is never served
    stale. Without ``key``, or for a tokeniser other than ``index.tokenizer.Tokenizer`` with its
    default fold, the text is tokenised every time.
    """
    version = _cache_version(tokenizer) if key is not None else None
    if version is None:
        return tokenizer.tokenize_with_spans(text)
    ck = (version, key, text)
    packed = _TOKENS.get(ck)
    if packed is None:
        toks = tokenizer.tokenize_with_spans(text)
        offs = array("i")
        for _t, s, e in toks:
            offs.append(s)
            offs.append(e)
        _TOKENS.put(ck, (tuple(sys.intern(t) for t, _s, _e in toks), offs))
        return toks
    terms, offs = packed
    return list(zip(terms, offs[0::2], offs[1::2]))


def clear_token_cache() -> None:
    """Forget every cached passage tokenisation (benchmarks' cold runs)."""
    _TOKENS.clear()


def bm25_idf(n_docs: int, df: int) -> float:
    """The Lucene BM25 idf, ``ln(1 + (N - df + 0.5) / (df + 0.5))`` (always positive)."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
