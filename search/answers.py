"""Answer views over search results: which municipalities, side-by-side comparison, precedent wording.

Three questions municipal staff ask, each answered with a dataclass that has ``to_dict()``
(JSON-ready, used by the CLI ``--json`` and the UI) and ``to_text()`` (readable Japanese for the
CLI); the tables also have ``to_csv()`` (UTF-8 with BOM so that Excel opens it; text cells that
start with ``= + - @``, a tab or CR get a leading ``'`` so Excel never runs them, see
:mod:`search.csvsafe`). Each view cuts its question to ``search.question.MAX_QUESTION_CHARS`` first:

- :func:`municipality_answer` — 「〜した自治体は？」: one row per municipality, with its best item,
  the sentence that answers (for progress tables the 取組状況 / 今後の課題・方向性 sentence), the
  department, the page, a calibrated confidence and the citation. When nothing matches well
  enough the answer says so (``answered=False``) instead of listing weak matches.
- :func:`compare` — 「各自治体は〜にどう取り組んでいるか」: a column per municipality with its
  matching items and key sentences; 「該当なし」 when a municipality has nothing relevant.
- :func:`wording` — 「他の自治体はどう書いたか」: verbatim sentences (substrings of ``Chunk.text``)
  ranked by lemma overlap and dense similarity, near-duplicates merged with all their citations.

Every row/card carries highlight spans over its passage text (:class:`search.records.Span`): the
answering sentence (``kind="sentence"``) and the query's terms by lemma (``kind="term"``).

The confidence and thresholds are calibrated on the development questions; see
docs/answers.md for the rule and the numbers.
"""
from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from corpus.records import SECTION_SEP, Chunk, page_label
from search.csvsafe import SafeCsvWriter
from search.filters import NOTE_NO_CHUNK_PASSES, no_match_message
from search.question import ANSWER_FRAME_TERMS, FRAME_SUFFIXES, clip_question
from search.records import Filters, Result, Span
from search.sentences import (
    compact,
    content_terms,
    coverage,
    concept_coverage,
    merge_near_duplicates,
    one_line,
    split_sentences,
    term_set,
    text_hash,
)

# ------------------------------------------------------------------------------------------
# Calibration (docs/answers.md explains how these numbers were chosen)
# ------------------------------------------------------------------------------------------

#: Dense cosine rescaling: cos ≤ DENSE_LO counts 0, cos ≥ DENSE_HI counts 1 (e5-small cosines of
#: unrelated Japanese policy text sit around 0.80–0.84, good matches at 0.87–0.91).
DENSE_LO = 0.75
DENSE_HI = 0.90
#: Evidence score = coverage + W_DENSE·dense01 + W_BM25·min(bm25 per query term, 1)  (0 … 1.75).
W_DENSE = 0.5
W_BM25 = 0.25
#: Confidence = sigmoid(STEEPNESS·(score − SCORE_MID)): 0.5 at SCORE_MID, ≈0.9 at SCORE_MID + 0.27.
SCORE_MID = 1.2
STEEPNESS = 8.0
#: The best row must reach this for the question to count as answered (score ≥ SCORE_MID).
ANSWER_THRESHOLD = 0.5
#: Further rows are listed when they reach this (and the question is answered).
ROW_THRESHOLD = 0.5
#: A comparison cell lists items whose evidence score reaches this (confidence ≈ 0.03): a
#: comparison shows how others approach a topic, so partial matches belong in it; below it the
#: municipality shows 「該当なし」.
COMPARE_MIN_SCORE = 0.75

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
# Embedding cache (query-time sentence embeddings, keyed by sentence hash)
# ------------------------------------------------------------------------------------------

_VEC_CACHE: "OrderedDict[tuple[str, str], np.ndarray]" = OrderedDict()
_VEC_CACHE_MAX = 50_000
_VEC_LOCK = threading.Lock()  # the UI serves several users from one process


def _pinned(engine: Any) -> Any:
    """The engine fixed on its current snapshot (``Engine.pinned``), so that a view that searches
    several times never mixes two index versions when the app reloads meanwhile."""
    pin = getattr(engine, "pinned", None)
    return pin() if callable(pin) else engine


def _model_key(embedder: Any) -> str:
    for attr in ("model_name", "name", "model_id"):
        v = getattr(embedder, attr, None)
        if isinstance(v, str) and v:
            return v
    return f"id{id(embedder)}"


def _cache_get(key: tuple[str, str]) -> np.ndarray | None:
    with _VEC_LOCK:
        v = _VEC_CACHE.get(key)
        if v is not None:
            _VEC_CACHE.move_to_end(key)
        return v


def _cache_put(key: tuple[str, str], v: np.ndarray) -> None:
    with _VEC_LOCK:
        _VEC_CACHE[key] = v
        if len(_VEC_CACHE) > _VEC_CACHE_MAX:
            _VEC_CACHE.popitem(last=False)


def _embed_query(engine: Any, text: str) -> np.ndarray:
    """The query vector of ``text``: ``Engine.query_vector``, the one query-vector cache, so the
    answer view and the search it runs encode the question once."""
    return np.asarray(engine.query_vector(text), dtype=np.float32)


def _embed_passages(engine: Any, texts: Sequence[str]) -> np.ndarray:
    """Passage embeddings of ``texts`` (L2-normalised), computed once per distinct text."""
    emb = engine.embedder
    mk = _model_key(emb) + "|p"
    keys = [(mk, text_hash(t)) for t in texts]
    missing: dict[tuple[str, str], str] = {}
    for k, t in zip(keys, texts):
        if _cache_get(k) is None and k not in missing:
            missing[k] = t
    if missing:
        vecs = np.asarray(emb.encode_passages(list(missing.values())), dtype=np.float32)
        for k, v in zip(missing, vecs):
            _cache_put(k, v)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    out = []
    for k, t in zip(keys, texts):
        v = _cache_get(k)
        if v is None:  # evicted meanwhile by another thread
            v = np.asarray(emb.encode_passages([t]), dtype=np.float32)[0]
            _cache_put(k, v)
        out.append(v)
    return np.stack(out)


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
        """The evidence score: coverage + 0.5·dense01 + 0.25·min(bm25 per term, 1)."""
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
        self.dense_text = dense_text or text
        self.terms = content_terms(text)
        self.weights = {t: _term_weight(t) for t in self.terms}
        idf = getattr(engine, "idf", None)
        self.idf_weights = {t: float(idf(t)) * _term_weight(t) for t in self.terms} if callable(idf) else dict(self.weights)
        try:
            self.n_bm25_terms = max(1, len(set(_tokenizer(engine).tokenize(text))))
        except Exception:  # pragma: no cover - a tokenizer that cannot read the text
            self.n_bm25_terms = max(1, len(self.terms))
        self._vec: np.ndarray | None = None
        self.engine = engine

    @property
    def vec(self) -> np.ndarray:
        """The question's query embedding (computed once)."""
        if self._vec is None:
            self._vec = _embed_query(self.engine, self.dense_text)
        return self._vec

    def coverage(self, text: str, have: frozenset[str] | None = None) -> float:
        """Share of the question's concepts present in ``text`` (see search.sentences.concept_coverage);
        ``have``: the text's lemma set when known."""
        return concept_coverage(self.text, text, have)


def _chunk_signals(q: _Query, results: Sequence[Result]) -> list[Signals]:
    """Signals of each result's chunk for the question ``q``."""
    need = [i for i, r in enumerate(results) if r.dense_score is None]
    cos: dict[int, float] = {i: float(r.dense_score) for i, r in enumerate(results) if r.dense_score is not None}
    if need:
        m = _embed_passages(q.engine, [results[i].chunk.embed_text or results[i].chunk.text for i in need])
        for i, v in zip(need, m @ q.vec):
            cos[i] = float(v)
    stored = _stored_lemmas(q.engine, [r.chunk for r in results])
    out = []
    for i, r in enumerate(results):
        bm = float(r.bm25_score or 0.0)
        terms = stored[i] if stored[i] is not None else term_set(r.chunk.text)
        out.append(Signals(dense=cos[i], bm25=bm, bm25_norm=bm / q.n_bm25_terms,
                           coverage=q.coverage(r.chunk.text, terms),
                           coverage_idf=coverage(q.terms, terms, q.idf_weights)))
    return out


def _stored_lemmas(engine: Any, chunks: Sequence[Chunk]) -> list[frozenset[str] | None]:
    """The chunks' lemma sets from the index (``Engine.lemma_sets``), None where unavailable."""
    get = getattr(engine, "lemma_sets", None)
    if callable(get):
        try:
            return list(get(chunks))
        except Exception:  # pragma: no cover - an index that cannot be read: tokenise instead
            pass
    return [None] * len(chunks)


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


def _pick_sentences(q: _Query, chunk: Chunk, n: int = 1, prefer_status: bool = True) -> list[_Pick]:
    """The ``n`` sentences of ``chunk`` that best answer ``q``: lemma coverage and dense cosine."""
    cands = chunk_sentences(chunk, prefer_status=prefer_status)
    if not cands:
        return []
    texts = [one_line(chunk.text[a:b]) for a, b, _ in cands]
    lex = [q.coverage(t) for t in texts]
    # only the sentences with the most question concepts are embedded (PICK_MAX_DENSE of them, at
    # least n): a sentence that shares none of the question's words rarely beats one that does,
    # and each embedded sentence costs ≈ 3–5 ms on 2 cores
    keep = sorted(range(len(cands)), key=lambda i: (-lex[i], i))[: max(n, PICK_MAX_DENSE)]
    cos = _embed_passages(q.engine, [texts[i] for i in keep]) @ q.vec
    scored = [
        _Pick(cands[i][0], cands[i][1], cands[i][2], 0.5 * lex[i] + 0.5 * _dense01(float(c)))
        for i, c in zip(keep, cos)
    ]
    scored.sort(key=lambda p: (-p.score, p.start))
    return scored[:n]


def _term_spans(engine: Any, q: _Query, text: str) -> list[Span]:
    """The question's content terms in ``text`` (by lemma), as ``Span(kind="term")``."""
    try:
        from search.highlight import term_spans

        spans = term_spans(_tokenizer(engine), q.text, text)
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


def _tokenizer(engine: Any) -> Any:
    tok = getattr(engine, "tokenizer", None)
    if tok is None:
        from index.tokenizer import Tokenizer

        tok = Tokenizer()
    return tok


def _spans(engine: Any, q: _Query, chunk: Chunk, picks: Sequence[_Pick]) -> list[Span]:
    return [Span(p.start, p.end, "sentence") for p in picks] + _term_spans(engine, q, chunk.text)


# ------------------------------------------------------------------------------------------
# Shared citation block
# ------------------------------------------------------------------------------------------


def item_label(chunk: Chunk) -> str:
    """「節 › 項目」 of a chunk (the item once, even when it is also the last section)."""
    parts = list(chunk.section_path)
    if chunk.item and (not parts or parts[-1] != chunk.item):
        parts.append(chunk.item)
    return SECTION_SEP.join(parts)


def _pages(chunk: Chunk) -> str:
    return page_label(chunk.page_start, chunk.page_end)


@dataclass
class Evidence:
    """Where a statement comes from: the citation fields of one chunk."""

    municipality: str
    prefecture: str
    title: str
    item: str
    department: str
    page_start: int
    page_end: int
    citation: str
    chunk_id: str
    doc_id: str
    url: str

    @classmethod
    def of(cls, result: Result) -> "Evidence":
        """The evidence block of a search result."""
        c = result.chunk
        return cls(
            municipality=c.municipality,
            prefecture=c.prefecture,
            title=c.title,
            item=item_label(c),
            department=c.department,
            page_start=c.page_start,
            page_end=c.page_end,
            citation=result.citation(),
            chunk_id=c.chunk_id,
            doc_id=c.doc_id,
            url=c.url,
        )

    @property
    def page(self) -> int:
        """The first page (the one to open)."""
        return self.page_start


def _span_dicts(spans: Sequence[Span]) -> list[dict[str, Any]]:
    return [asdict(s) for s in spans]


def _key_sentence_fields(engine: Any, q: _Query, result: Result) -> dict[str, Any]:
    """The evidence, key sentence and spans of ``result`` shared by :class:`AnswerRow` and
    :class:`ComparisonEntry` (the whole passage when no sentence can be picked)."""
    chunk = result.chunk
    picks = _pick_sentences(q, chunk, n=1, prefer_status=True)
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


def _key_sentence_dict(entry: "AnswerRow | ComparisonEntry", **extra: Any) -> dict[str, Any]:
    """JSON-ready dict of an answer row / comparison entry: evidence fields flattened, page,
    sentence fields, confidence, then ``extra`` (in order), then passage and spans."""
    d = asdict(entry.evidence)
    d.update(
        page=entry.evidence.page,
        sentence=entry.sentence,
        sentence_text=entry.sentence_text,
        sentence_start=entry.sentence_start,
        sentence_end=entry.sentence_end,
        field=entry.field,
        confidence=round(entry.confidence, 4),
        **extra,
        passage=entry.passage,
        spans=_span_dicts(entry.spans),
    )
    return d


# ------------------------------------------------------------------------------------------
# 1. Which municipalities
# ------------------------------------------------------------------------------------------


@dataclass
class AnswerRow:
    """One municipality's answer: its best item, the answering sentence and the evidence."""

    evidence: Evidence
    sentence: str  # verbatim substring of passage[sentence_start:sentence_end]
    sentence_start: int
    sentence_end: int
    field: str  # the progress-table field the sentence comes from (「今後の課題・方向性」), or ""
    confidence: float
    signals: Signals
    passage: str  # Chunk.text, which spans index
    spans: list[Span] = field(default_factory=list)

    @property
    def municipality(self) -> str:
        """The municipality the item belongs to (the case's, for case collections)."""
        return self.evidence.municipality

    @property
    def sentence_text(self) -> str:
        """The sentence on one line (hard wraps joined) for display."""
        return one_line(self.sentence)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: evidence fields flattened, sentence, confidence, signals, spans."""
        return _key_sentence_dict(self, signals=self.signals.to_dict())


@dataclass
class MunicipalityAnswer:
    """「どの自治体が〜したか」の回答: rows sorted by confidence, or a plain "not found"."""

    query: str
    answered: bool
    rows: list[AnswerRow]
    message: str
    nearest: AnswerRow | None = None
    threshold: float = ANSWER_THRESHOLD

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``rows`` empty when not answered; ``nearest`` names the closest match)."""
        return {
            "query": self.query,
            "answered": self.answered,
            "message": self.message,
            "threshold": self.threshold,
            "rows": [r.to_dict() for r in self.rows],
            "nearest": self.nearest.to_dict() if self.nearest else None,
        }

    def to_text(self) -> str:
        """Readable Japanese for the CLI."""
        lines = [f"質問: {self.query}", self.message]
        for i, r in enumerate(self.rows, 1):
            e = r.evidence
            pref = f"（{e.prefecture}）" if e.prefecture and e.prefecture != e.municipality else ""
            lines.append("")
            lines.append(f"{i}. {e.municipality}{pref}  確信度 {r.confidence:.2f}")
            lines.append(f"   項目: {e.item}")
            label = f"（{r.field}）" if r.field else ""
            lines.append(f"   該当文{label}: {r.sentence_text}")
            if e.department:
                lines.append(f"   所管課: {e.department}")
            lines.append(f"   出典: {e.citation}")
        return "\n".join(lines)

    def to_csv(self) -> bytes:
        """The rows as CSV (UTF-8 with BOM, CRLF) for Excel."""
        buf = io.StringIO()
        w = SafeCsvWriter(buf)
        w.writerow(["自治体", "都道府県", "項目", "該当文", "欄", "所管課", "ページ", "確信度", "出典", "URL", "chunk_id"])
        for r in self.rows:
            e = r.evidence
            w.writerow([e.municipality, e.prefecture, e.item, r.sentence_text, r.field, e.department,
                        e.page, f"{r.confidence:.2f}", e.citation, e.url, e.chunk_id])
        return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _make_row(engine: Any, q: _Query, result: Result, sig: Signals) -> AnswerRow:
    return AnswerRow(**_key_sentence_fields(engine, q, result), confidence=sig.confidence(), signals=sig)


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


def municipality_answer(engine: Any, query: str, filters: Filters | None = None, k: int = 50) -> MunicipalityAnswer:
    """Answer 「どの自治体が〜したか」: one row per municipality with evidence, or "not found".

    Takes the top ``k`` passages of ``engine.search`` (hybrid), scores each municipality's
    best few with :class:`Signals` (dense cosine, BM25 per query term, coverage of the
    question's content lemmas) into a calibrated confidence, and keeps the municipalities whose
    best passage reaches :data:`ROW_THRESHOLD`. If even the best one is below
    :data:`ANSWER_THRESHOLD` the answer is ``answered=False`` with the message
    「該当する取組は見つかりませんでした（最も近いもの: …）」 and the nearest row in ``nearest``.
    """
    query = clip_question(query)[0]  # no view tokenises more than MAX_QUESTION_CHARS
    engine = _pinned(engine)
    q = _Query(engine, query)
    results = engine.search(query, k=k, filters=filters, highlight=False)
    scored = _best_per_municipality(q, results)
    if not scored:
        return MunicipalityAnswer(query, False, [], not_found_message(engine, "該当する取組は見つかりませんでした。"), None)
    top_r, top_s = scored[0]
    if top_s.confidence() < ANSWER_THRESHOLD:
        nearest = _make_row(engine, q, top_r, top_s)
        msg = f"該当する取組は見つかりませんでした（最も近いもの: {nearest.evidence.citation}）"
        return MunicipalityAnswer(query, False, [], msg, nearest)
    rows = [_make_row(engine, q, r, s) for r, s in scored if s.confidence() >= ROW_THRESHOLD]
    rows.sort(key=lambda r: -r.confidence)
    msg = f"{len(rows)} 自治体が該当します。"
    return MunicipalityAnswer(query, True, rows, msg, None)


# ------------------------------------------------------------------------------------------
# 2. Comparison
# ------------------------------------------------------------------------------------------


@dataclass
class ComparisonEntry:
    """One matching item of a municipality: the item, its key sentence, the citation."""

    evidence: Evidence
    sentence: str
    sentence_start: int
    sentence_end: int
    field: str
    confidence: float
    passage: str
    spans: list[Span] = field(default_factory=list)

    @property
    def sentence_text(self) -> str:
        """The key sentence on one line."""
        return one_line(self.sentence)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return _key_sentence_dict(self)


@dataclass
class ComparisonColumn:
    """A municipality's column: its entries, or 「該当なし」 when ``entries`` is empty."""

    municipality: str
    prefecture: str
    entries: list[ComparisonEntry]

    @property
    def found(self) -> bool:
        """False when the municipality has nothing relevant (the cell reads 「該当なし」)."""
        return bool(self.entries)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``cell`` is 「該当なし」 for an empty column)."""
        return {
            "municipality": self.municipality,
            "prefecture": self.prefecture,
            "found": self.found,
            "cell": None if self.found else NOT_FOUND,
            "entries": [e.to_dict() for e in self.entries],
        }


@dataclass
class ComparisonTable:
    """「各自治体は〜にどう取り組んでいるか」: one column per municipality."""

    topic: str
    columns: list[ComparisonColumn]
    message: str = ""

    @property
    def municipalities(self) -> list[str]:
        """Column headers in order."""
        return [c.municipality for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "topic": self.topic,
            "message": self.message,
            "municipalities": self.municipalities,
            "columns": [c.to_dict() for c in self.columns],
        }

    def to_text(self) -> str:
        """Readable Japanese for the CLI: a block per municipality."""
        lines = [f"比較: {self.topic}"]
        if self.message:
            lines.append(self.message)
        for col in self.columns:
            pref = f"（{col.prefecture}）" if col.prefecture and col.prefecture != col.municipality else ""
            lines.append("")
            lines.append(f"■ {col.municipality}{pref}")
            if not col.entries:
                lines.append(f"   {NOT_FOUND}")
            for i, e in enumerate(col.entries, 1):
                lines.append(f"  {i}. {e.evidence.item}")
                lines.append(f"     {e.sentence_text}")
                lines.append(f"     出典: {e.evidence.citation}")
        return "\n".join(lines)

    def to_csv(self, layout: str = "long") -> bytes:
        """CSV for Excel (UTF-8 with BOM, CRLF).

        ``layout="long"`` (default; filters and sorts well in Excel): one row per item —
        自治体, 順位, 項目, 該当文, 所管課, ページ, 出典, URL, chunk_id; a municipality with nothing
        relevant has one row whose 項目 is 「該当なし」. ``layout="wide"``: a column per
        municipality, a row per rank, each cell 「項目\\n該当文\\n出典」.
        """
        buf = io.StringIO()
        w = SafeCsvWriter(buf)
        if layout == "wide":
            w.writerow(["順位", *self.municipalities])
            depth = max([len(c.entries) for c in self.columns] + [1])
            for i in range(depth):
                row = [str(i + 1)]
                for c in self.columns:
                    if i < len(c.entries):
                        e = c.entries[i]
                        row.append(f"{e.evidence.item}\n{e.sentence_text}\n{e.evidence.citation}")
                    else:
                        row.append(NOT_FOUND if (i == 0 and not c.entries) else "")
                w.writerow(row)
        elif layout == "long":
            w.writerow(["自治体", "順位", "項目", "該当文", "所管課", "ページ", "出典", "URL", "chunk_id"])
            for c in self.columns:
                if not c.entries:
                    w.writerow([c.municipality, "", NOT_FOUND, "", "", "", "", "", ""])
                for i, e in enumerate(c.entries, 1):
                    ev = e.evidence
                    w.writerow([c.municipality, i, ev.item, e.sentence_text, ev.department, ev.page,
                                ev.citation, ev.url, ev.chunk_id])
        else:
            raise ValueError(f"layout must be 'long' or 'wide', not {layout!r}")
        return ("\ufeff" + buf.getvalue()).encode("utf-8")


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
        results = engine.search(topic, k=50, highlight=False)
        ranked = _best_per_municipality(q, results)
        names = [r.chunk.municipality for r, s in ranked if s.score() >= COMPARE_MIN_SCORE][:top_n]
        if not names:
            message = "該当する取組は見つかりませんでした。"
    columns = []
    for name in names:
        results = _search_in(engine, topic, name, k_each)
        entries = _entries_for(engine, q, results, per_municipality)
        pref = results[0].chunk.prefecture if results else ""
        columns.append(ComparisonColumn(municipality=name, prefecture=pref, entries=entries))
    return ComparisonTable(topic=topic, columns=columns, message=message)


# ------------------------------------------------------------------------------------------
# 3. Wording
# ------------------------------------------------------------------------------------------


@dataclass
class OtherCitation:
    """Another place where (nearly) the same sentence appears."""

    sentence: str
    evidence: Evidence

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self.evidence)
        d["sentence"] = self.sentence
        return d


@dataclass
class WordingHit:
    """One precedent sentence, verbatim, with its citation and any near-duplicates' citations."""

    sentence: str  # verbatim: passage[start:end] == sentence
    start: int
    end: int
    score: float
    lexical: float
    dense: float
    evidence: Evidence
    passage: str
    spans: list[Span] = field(default_factory=list)
    also: list[OtherCitation] = field(default_factory=list)

    @property
    def sentence_text(self) -> str:
        """The sentence on one line, ready to paste."""
        return one_line(self.sentence)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self.evidence)
        d.update(
            page=self.evidence.page,
            sentence=self.sentence,
            sentence_text=self.sentence_text,
            start=self.start,
            end=self.end,
            score=round(self.score, 4),
            lexical=round(self.lexical, 4),
            dense=round(self.dense, 4),
            passage=self.passage,
            spans=_span_dicts(self.spans),
            also=[o.to_dict() for o in self.also],
        )
        return d


@dataclass
class WordingResult:
    """「他の自治体はどう書いたか」: precedent sentences, best first."""

    text: str
    hits: list[WordingHit]
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"text": self.text, "message": self.message, "hits": [h.to_dict() for h in self.hits]}

    def to_text(self) -> str:
        """Readable Japanese for the CLI."""
        lines = [f"文例: {self.text}"]
        if self.message:
            lines.append(self.message)
        for i, h in enumerate(self.hits, 1):
            lines.append("")
            lines.append(f"{i}. 「{h.sentence_text}」")
            lines.append(f"   出典: {h.evidence.citation}")
            for o in h.also:
                lines.append(f"   同文: {o.evidence.citation}")
        return "\n".join(lines)

    def to_csv(self) -> bytes:
        """The hits as CSV (UTF-8 with BOM, CRLF) for Excel."""
        buf = io.StringIO()
        w = SafeCsvWriter(buf)
        w.writerow(["順位", "文例", "自治体", "項目", "ページ", "出典", "同文の出典", "URL", "chunk_id"])
        for i, h in enumerate(self.hits, 1):
            e = h.evidence
            w.writerow([i, h.sentence_text, e.municipality, e.item, e.page, e.citation,
                        " / ".join(o.evidence.citation for o in h.also), e.url, e.chunk_id])
        return ("\ufeff" + buf.getvalue()).encode("utf-8")


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
