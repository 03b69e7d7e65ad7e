"""Calibration constants, the evidence signals of a passage and their calibrated confidence
(docs/answers.md explains how the numbers were chosen), and the prepared question :class:`_Query`."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from corpus.records import Chunk
from search.answers.embed import _embed_passages, _embed_query
from search.qtype import question_core
from search.records import Result
from search.sentences import concept_coverage, content_terms, coverage, term_set

# ------------------------------------------------------------------------------------------
# Calibration (docs/answers.md explains how these numbers were chosen)
# ------------------------------------------------------------------------------------------

#: Dense cosine rescaling: cos ≤ DENSE_LO counts 0, cos ≥ DENSE_HI counts 1 (e5-small cosines of
#: unrelated Japanese policy text sit around 0.80–0.84, good matches at 0.87–0.91).
DENSE_LO = 0.75
DENSE_HI = 0.90
#: Evidence score = coverage + W_DENSE·dense01 + W_BM25·min(bm25 per query term, 1)  (0 … 2.75),
#: all three measured against the question's core (search.qtype.question_core). Chosen on the
#: tune half of search/eval_data/questions_v2.jsonl with the development questions (docs/answers.md,
#: "Calibration"): dense and BM25 count two and three times what they did when the weights were
#: set on 12 development questions, so that a question worded unlike its passage (lower concept
#: coverage) is still answered.
W_DENSE = 1.0
W_BM25 = 0.75
#: Confidence = sigmoid(STEEPNESS·(score − SCORE_MID)): 0.5 at SCORE_MID, ≈0.9 at SCORE_MID + 0.27.
SCORE_MID = 1.7
STEEPNESS = 8.0
#: The best row must reach this for the question to count as answered (score ≥ SCORE_MID) …
ANSWER_THRESHOLD = 0.5
#: … or reach ANSWER_ALT_SCORE with a passage close in meaning (dense01 ≥ ANSWER_ALT_DENSE, cosine
#: ≥ 0.87): word coverage alone lifts unanswerable questions' best rows to the same scores, the
#: dense similarity does not (tune half, docs/answers.md "Round 2").
ANSWER_ALT_SCORE = 1.45
ANSWER_ALT_DENSE = 0.8
#: Further rows are listed when their score reaches ROW_SCORE and lies within ROW_WITHIN of the
#: best row's score (precision/recall trade-off in docs/answers.md, round 2 on the tune half); a
#: row reaching SCORE_MID is always listed. ROW_THRESHOLD is ROW_SCORE as a confidence (≈ 0.04):
#: listed rows below 0.6 show as 低.
ROW_SCORE = 1.3
ROW_WITHIN = 0.9
ROW_THRESHOLD = 1.0 / (1.0 + math.exp(-STEEPNESS * (ROW_SCORE - SCORE_MID)))
#: A comparison cell lists items whose evidence score reaches this (confidence ≈ 0.01; 0.75 on
#: the earlier 0–1.75 scale, scaled with the weights): a
#: comparison shows how others approach a topic, so partial matches belong in it; below it the
#: municipality shows 「該当なし」.
COMPARE_MIN_SCORE = 1.1

#: A declined answer shows this many nearest municipalities' rows as 低 (never as an answer).
NEAR_ROWS = 3

NOT_FOUND = "該当なし"
#: How many top results per municipality are scored for the answer row (all of the top k).
_PER_MUNI_SCORED = 50
#: Sentences shorter than this (compact characters) are labels, not answers.
_MIN_SENTENCE = 8
#: Wording: the candidate chunks taken from the engine and the sentences embedded at most.
WORDING_CANDIDATE_CHUNKS = 30
WORDING_MAX_DENSE = 64
#: Field names (substrings) of progress tables that hold the status / direction of an item.
STATUS_FIELDS = ("取組状況", "方向性", "課題・方向", "進捗", "実績", "成果", "取組内容")


# ------------------------------------------------------------------------------------------
# Signals and confidence
# ------------------------------------------------------------------------------------------


def _dense01(cos: float) -> float:
    return min(1.0, max(0.0, (cos - DENSE_LO) / (DENSE_HI - DENSE_LO)))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass
class Signals:
    """The evidence behind a confidence: dense cosine, BM25 per query term, lemma coverage."""

    dense: float
    bm25: float
    bm25_norm: float
    coverage: float
    coverage_idf: float = 0.0

    def score(self) -> float:
        """The evidence score: coverage + W_DENSE·dense01 + W_BM25·min(bm25 per term, 1)."""
        return self.coverage + W_DENSE * _dense01(self.dense) + W_BM25 * min(self.bm25_norm, 1.0)

    def confidence(self) -> float:
        """The calibrated confidence (0–1) of these signals (see docs/answers.md)."""
        return _sigmoid(STEEPNESS * (self.score() - SCORE_MID))

    def to_dict(self) -> dict[str, float]:
        """Rounded values for JSON (the evidence score included)."""
        d = {k: round(float(v), 4) for k, v in asdict(self).items()}
        d["score"] = round(self.score(), 4)
        return d


def _term_weight(t: str) -> float:
    """Weight of a query lemma in coverage: single characters (場, 化) count half."""
    return 0.5 if len(t) <= 1 else 1.0


class _Query:
    """A question prepared once: content lemmas, their weights, the dense vector."""

    def __init__(self, engine: Any, text: str, dense_text: str | None = None) -> None:
        self.text = text
        self.core = question_core(text)
        self.dense_text = dense_text or text
        self.terms = content_terms(text)
        self.weights = {t: _term_weight(t) for t in self.terms}
        idf = getattr(engine, "idf", None)
        self.idf_weights = {t: float(idf(t)) * _term_weight(t) for t in self.terms} if callable(idf) else dict(self.weights)
        self.n_bm25_terms = _n_bm25_terms(engine, text, len(self.terms))
        #: The core's BM25 terms, normalised as for the whole question (see _core_scores).
        self.n_core_terms = self.n_bm25_terms if self.core == text else _n_bm25_terms(engine, self.core, len(self.terms))
        self._vec: np.ndarray | None = None
        self._highlight_terms: set[str] | None = None
        #: Key-sentence candidates per chunk (search.answers.pick._candidates): an answer view
        #: prefetches them for its rows, then picks from them, computing each once.
        self.sentence_candidates: dict[tuple[Any, ...], Any] = {}
        self.engine = engine

    @property
    def vec(self) -> np.ndarray:
        """The question's query embedding (computed once)."""
        if self._vec is None:
            self._vec = _embed_query(self.engine, self.dense_text)
        return self._vec

    @property
    def highlight_terms(self) -> set[str]:
        """The question's BM25 terms as highlighting matches them (search.highlight.query_terms;
        computed once)."""
        if self._highlight_terms is None:
            from search.highlight import query_terms

            self._highlight_terms = query_terms(_tokenizer(self.engine), self.text)
        return self._highlight_terms

    def coverage(self, text: str, have: frozenset[str] | None = None) -> float:
        """Share of the question's core concepts present in ``text`` (search.sentences.concept_coverage
        of search.qtype.question_core: asides in brackets, context sentences, a leading 「…ので、」
        and the polite/request ending left out), so that the way a question is asked does not
        change its answer. ``have``: the text's lemma set when known."""
        return concept_coverage(self.core, text, have)


def _chunk_signals(q: _Query, results: Sequence[Result]) -> list[Signals]:
    """Signals of each result's chunk for the question ``q``."""
    need = [i for i, r in enumerate(results) if r.dense_score is None]
    cos: dict[int, float] = {i: float(r.dense_score) for i, r in enumerate(results) if r.dense_score is not None}
    if need:
        m = _embed_passages(q.engine, [results[i].chunk.embed_text or results[i].chunk.text for i in need])
        for i, v in zip(need, m @ q.vec):
            cos[i] = float(v)
    stored = _stored_lemmas(q.engine, [r.chunk for r in results])
    core_cos, core_bm = _core_scores(q, results)
    out = []
    for i, r in enumerate(results):
        bm = float(r.bm25_score or 0.0)
        bm_norm = bm / q.n_bm25_terms
        if core_cos[i] is not None:  # scored against the core, like coverage
            cos[i] = float(core_cos[i])
        if core_bm[i] is not None:
            bm_norm = float(core_bm[i]) / q.n_core_terms
        terms = stored[i] if stored[i] is not None else term_set(r.chunk.text)
        out.append(Signals(dense=cos[i], bm25=bm, bm25_norm=bm_norm,
                           coverage=q.coverage(r.chunk.text, terms),
                           coverage_idf=coverage(q.terms, terms, q.idf_weights)))
    return out


def _core_scores(q: _Query, results: Sequence[Result]) -> tuple[list[float | None], list[float | None]]:
    """Dense cosine and BM25 of the question's core (search.qtype.question_core) against each
    result, when the core differs from the question and the engine can score stored passages."""
    none: list[float | None] = [None] * len(results)
    get = getattr(q.engine, "passage_scores", None)
    if q.core == q.text or not callable(get) or not results:
        return none, none
    try:
        return get(q.core, [r.chunk for r in results])
    except Exception:  # pragma: no cover - an index that cannot be read: the whole question's scores only
        return none, none


def _n_bm25_terms(engine: Any, text: str, fallback: int) -> int:
    """How many distinct BM25 terms ``text`` has (what per-term BM25 is divided by)."""
    try:
        return max(1, len(set(_tokenizer(engine).tokenize(text))))
    except Exception:  # pragma: no cover - a tokenizer that cannot read the text
        return max(1, fallback)


def _stored_lemmas(engine: Any, chunks: Sequence[Chunk]) -> list[frozenset[str] | None]:
    """The chunks' lemma sets from the index (``Engine.lemma_sets``), None where unavailable."""
    get = getattr(engine, "lemma_sets", None)
    if callable(get):
        try:
            return list(get(chunks))
        except Exception:  # pragma: no cover - an index that cannot be read: tokenise instead
            pass
    return [None] * len(chunks)


def _tokenizer(engine: Any) -> Any:
    tok = getattr(engine, "tokenizer", None)
    if tok is None:
        from index.tokenizer import Tokenizer

        tok = Tokenizer()
    return tok
