"""How well the municipality answer table (:func:`search.answers.municipality_answer`) answers.

For every question of a questions file (format of ../shared/eval/README.md):

- an *answerable* "which" or "compare" question should be answered (``answered=True``) with rows
  naming the municipalities of its relevant entries: **precision** = right rows / rows,
  **recall** = right municipalities in the rows / municipalities of the relevant entries
  (0 when the table declines);
- a question with ``relevant: []`` (of any kind) should be declined.

The municipality of a relevant entry is the municipality of the chunk of that document holding
its phrase (a case collection holds several municipalities), else of the document's first chunk.

Reported by ``seisaku eval`` beside the retrieval metrics (docs/answers.md, docs/quality.md).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from search.evaluate import Question, Relevant, load_questions, normalize

#: Question kinds the municipality table answers.
TABLE_KINDS = ("which", "compare")


@dataclass
class TableScore:
    """The answer table's result for one question."""

    id: str
    kind: str
    answerable: bool
    answered: bool
    gold: list[str]
    rows: list[str]
    precision: float | None = None
    recall: float | None = None


@dataclass
class TableReport:
    """Answered rate, declined rate, municipality precision and recall over a questions file."""

    questions_path: str
    n_answerable: int = 0
    answered_rate: float | None = None
    n_unanswerable: int = 0
    declined_rate: float | None = None
    precision: float | None = None
    recall: float | None = None
    per_question: list[TableScore] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def gold_municipalities(engine: Any, relevant: Sequence[Relevant]) -> list[str]:
    """The municipalities of ``relevant`` entries, in order, without repeats."""
    out: list[str] = []
    for entry in relevant:
        chunks = engine.document_chunks(entry.doc)
        phrase = normalize(entry.must_contain)
        muni = next((c.municipality for c in chunks if phrase and phrase in normalize(c.text)), None)
        if muni is None and chunks:
            muni = chunks[0].municipality
        if muni and muni not in out:
            out.append(muni)
    return out


def score_table(engine: Any, q: Question, answer: Any) -> TableScore:
    """Score one :class:`MunicipalityAnswer` against the question's relevant entries."""
    rows = [r.municipality for r in answer.rows] if answer.answered else []
    gold = gold_municipalities(engine, q.relevant)
    s = TableScore(q.id, q.kind, bool(q.relevant), bool(answer.answered), gold, rows)
    if q.relevant:
        right = len(set(rows) & set(gold))
        s.recall = right / len(gold) if gold else 0.0
        s.precision = right / len(rows) if rows else None
    return s


def evaluate_table(engine: Any, questions_path: str | Path, split: str | None = None,
                   kinds: Sequence[str] = TABLE_KINDS) -> TableReport:
    """Run :func:`municipality_answer` on the "which"/"compare" questions and the unanswerable ones."""
    from search.answers import municipality_answer

    rep = TableReport(str(questions_path))
    for q in load_questions(questions_path, split):
        if q.relevant and q.kind not in kinds:
            continue
        rep.per_question.append(score_table(engine, q, municipality_answer(engine, q.query)))
    ans = [s for s in rep.per_question if s.answerable]
    una = [s for s in rep.per_question if not s.answerable]
    rep.n_answerable, rep.n_unanswerable = len(ans), len(una)
    if ans:
        rep.answered_rate = sum(s.answered for s in ans) / len(ans)
        rep.recall = sum(s.recall or 0.0 for s in ans) / len(ans)
        precs = [s.precision for s in ans if s.precision is not None]
        rep.precision = sum(precs) / len(precs) if precs else None
    if una:
        rep.declined_rate = sum(not s.answered for s in una) / len(una)
    return rep


def _f(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def format_table_report(rep: TableReport) -> str:
    """The report as a Markdown table plus the questions the table got wrong."""
    lines = [
        "### answer table (municipality_answer)",
        "",
        "| answerable | answered | municipality precision | municipality recall | unanswerable | declined |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {rep.n_answerable} | {_f(rep.answered_rate)} | {_f(rep.precision)} | {_f(rep.recall)} "
        f"| {rep.n_unanswerable} | {_f(rep.declined_rate)} |",
    ]
    declined = [s.id for s in rep.per_question if s.answerable and not s.answered]
    wrong = [s.id for s in rep.per_question if not s.answerable and s.answered]
    missing = [f"{s.id}({','.join(sorted(set(s.gold) - set(s.rows)))})" for s in rep.per_question
               if s.answerable and s.answered and set(s.gold) - set(s.rows)]
    if declined:
        lines += ["", f"Declined though answerable: {', '.join(declined)}."]
    if wrong:
        lines += ["", f"Answered though unanswerable: {', '.join(wrong)}."]
    if missing:
        lines += ["", f"Rows missing municipalities: {', '.join(missing)}."]
    return "\n".join(lines) + "\n"
