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

One concern per module: :mod:`~search.answers.signals` (calibration, :class:`Signals`, the
prepared question), :mod:`~search.answers.embed` (query vector, passage-embedding cache),
:mod:`~search.answers.pick` (the answering sentence of a passage), :mod:`~search.answers.records`
(the returned dataclasses), and one module per view: :mod:`~search.answers.which`,
:mod:`~search.answers.comparison`, :mod:`~search.answers.precedent`. This package re-exports
their names; a test that patches a setting patches the module that owns it (e.g.
``search.answers.pick.PICK_MAX_DENSE``).
"""
from __future__ import annotations

from search.answers.comparison import _entries_for, _search_in, compare
from search.answers.embed import (
    _VEC_CACHE,
    _VEC_CACHE_MAX,
    _embed_passages,
    _embed_query,
    _model_key,
    _pinned,
)
from search.answers.pick import (
    PICK_MAX_DENSE,
    _is_label,
    _is_status_field,
    _key_sentence_fields,
    _locate,
    _Pick,
    _pick_sentences,
    _Sentence,
    _spans,
    _term_spans,
    chunk_sentences,
    field_ranges,
    not_found_message,
)
from search.answers.precedent import _Cand, strip_frame, wording
from search.answers.records import (
    AnswerRow,
    ComparisonColumn,
    ComparisonEntry,
    ComparisonTable,
    Evidence,
    MunicipalityAnswer,
    OtherCitation,
    WordingHit,
    WordingResult,
    _key_sentence_dict,
    _pages,
    _span_dicts,
    item_label,
)
from search.answers.signals import (
    _MIN_SENTENCE,
    _PER_MUNI_SCORED,
    ANSWER_ALT_DENSE,
    ANSWER_ALT_SCORE,
    ANSWER_THRESHOLD,
    COMPARE_MIN_SCORE,
    DENSE_HI,
    DENSE_LO,
    NOT_FOUND,
    ROW_SCORE,
    ROW_THRESHOLD,
    ROW_WITHIN,
    SCORE_MID,
    STATUS_FIELDS,
    STEEPNESS,
    W_BM25,
    W_DENSE,
    WORDING_CANDIDATE_CHUNKS,
    WORDING_MAX_DENSE,
    Signals,
    _chunk_signals,
    _dense01,
    _Query,
    _sigmoid,
    _stored_lemmas,
    _term_weight,
    _tokenizer,
)
from search.answers.which import (
    _best_per_municipality,
    _group_by_municipality,
    _make_rows,
    is_answered,
    keeps_row,
    municipality_answer,
)
from search.question import ANSWER_FRAME_TERMS, FRAME_SUFFIXES  # re-exported: tests check they are the one home's

__all__ = [
    "ANSWER_ALT_DENSE", "ANSWER_ALT_SCORE", "ANSWER_THRESHOLD", "COMPARE_MIN_SCORE", "DENSE_HI", "DENSE_LO", "NOT_FOUND", "PICK_MAX_DENSE",
    "ROW_SCORE", "ROW_THRESHOLD", "ROW_WITHIN", "SCORE_MID", "STATUS_FIELDS", "STEEPNESS", "W_BM25", "W_DENSE",
    "WORDING_CANDIDATE_CHUNKS", "WORDING_MAX_DENSE",
    "AnswerRow", "ComparisonColumn", "ComparisonEntry", "ComparisonTable", "Evidence", "MunicipalityAnswer",
    "OtherCitation", "Signals", "WordingHit", "WordingResult",
    "chunk_sentences", "compare", "field_ranges", "item_label", "municipality_answer", "not_found_message",
    "strip_frame", "wording",
]
