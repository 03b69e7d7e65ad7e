"""Retrieval metrics of ../shared/eval/README.md, per question kind and overall.

A returned passage *answers* a relevant entry ``{"doc", "must_contain"}`` when it comes from that
document and contains the phrase after both are NFKC-normalised and stripped of all whitespace
(so a phrase may cross a hard line break), within the passage's first 1,200 normalised
characters. An entry counts once, however many passages match it.

An entry may also list other passages that show the same municipality (or compared side) as
well: ``"also": [{"doc", "must_contain"}, …]``. A passage answering any of them answers the
entry, so recall@k of a "which" question is the share of its municipalities found, whichever of
their good passages is returned (search/eval_data/README.md, "Alternative passages").
``strict=True`` (``seisaku eval --strict-labels``) ignores ``also``: one phrase per entry.

Per question (k = 10): hit@1 and hit@k (some entry answered at rank 1 / within k), MRR@k
(1 / rank of the first answering passage), recall@k (share of entries answered within k — for
"which" questions the share of the right municipalities found), nDCG@k with binary gains (a rank
gains 1 when it answers an entry no earlier rank answered; the ideal puts one entry on each of
the first min(#entries, k) ranks). Metrics are means over questions. The mean length (characters
of ``Chunk.text``) of the top-k passages is reported beside them.

Questions with ``relevant: []`` (the corpus holds no answer) measure nothing of retrieval; they
are reported separately with their top-1 scores, for calibrating a "no answer" threshold.
"""
from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

#: Only this many normalised characters of a passage count (a person reads the passage).
READ_LIMIT = 1200

_WS_RE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFKC, then every whitespace character removed (the README's comparison form)."""
    return _WS_RE.sub("", unicodedata.normalize("NFKC", text or ""))


@dataclass(frozen=True)
class Relevant:
    """One relevant entry of a question: a document and a phrase that must be in the passage."""

    doc: str
    must_contain: str
    #: Other ``(doc, phrase)`` passages that answer this entry as well (same municipality or side).
    also: tuple[tuple[str, str], ...] = ()

    def phrases(self) -> tuple[tuple[str, str], ...]:
        """Every ``(doc, phrase)`` that answers this entry: its own, then the ``also`` ones."""
        return ((self.doc, self.must_contain),) + self.also


def _relevant(r: dict[str, Any], strict: bool) -> Relevant:
    also = () if strict else tuple((a["doc"], a["must_contain"]) for a in r.get("also") or [])
    return Relevant(r["doc"], r["must_contain"], also)


@dataclass(frozen=True)
class Question:
    """One line of a questions file."""

    id: str
    kind: str
    query: str
    relevant: tuple[Relevant, ...]
    #: "tune" or "check" in question sets split before tuning (search/eval_data/README.md); "" otherwise.
    split: str = ""


def read_jsonl(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each line of a JSONL file; blank lines and ``#`` lines are
    skipped, and a line that is not JSON raises ``ValueError`` naming the file and line."""
    out: list[tuple[int, dict[str, Any]]] = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            out.append((n, json.loads(line)))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not JSON: {e}") from e
    return out


def load_questions(path: str | Path, split: str | None = None, strict: bool = False) -> list[Question]:
    """Read a questions JSONL file (blank lines and ``#`` lines are skipped); with ``split``
    only the questions of that half ("tune" / "check"); ``strict`` drops the entries' ``also``
    passages."""
    out: list[Question] = []
    for n, d in read_jsonl(path):
        rel = tuple(_relevant(r, strict) for r in d.get("relevant") or [])
        out.append(Question(str(d.get("id", n)), str(d.get("kind", "")), d["query"], rel, str(d.get("split", ""))))
    if split:
        out = [q for q in out if q.split == split]
    return out


def answers(doc_id: str, text: str, entry: Relevant) -> bool:
    """True when a passage (``doc_id``, ``text``) answers ``entry``, by its own phrase or one of
    its ``also`` passages (README rule, 1,200 chars)."""
    head: str | None = None
    for doc, must_contain in entry.phrases():
        phrase = normalize(must_contain)
        if doc != doc_id or not phrase:
            continue
        if head is None:
            head = normalize(text)[:READ_LIMIT]
        if phrase in head:
            return True
    return False


@dataclass
class QuestionScore:
    """The metrics of one question."""

    id: str
    kind: str
    query: str
    n_relevant: int
    hit1: float
    hitk: float
    mrr: float
    recall: float
    ndcg: float
    #: 1-based rank at which each relevant entry was first answered (None = not within k).
    entry_ranks: list[int | None] = field(default_factory=list)
    mean_len: float = 0.0
    top1_score: float | None = None


def score_ranking(
    passages: Sequence[tuple[str, str]], relevant: Sequence[Relevant], k: int = 10
) -> tuple[float, float, float, float, float, list[int | None]]:
    """Metrics of one ranking of ``(doc_id, text)`` passages against ``relevant`` entries.

    Returns ``(hit@1, hit@k, MRR@k, recall@k, nDCG@k, entry_ranks)``. ``relevant`` must not be
    empty (questions without answers are not scored).
    """
    if not relevant:
        raise ValueError("score_ranking needs at least one relevant entry")
    top = list(passages)[:k]
    entry_ranks: list[int | None] = [None] * len(relevant)
    gains = [0] * len(top)
    for r, (doc_id, text) in enumerate(top, 1):
        new = False
        for j, entry in enumerate(relevant):
            if entry_ranks[j] is None and answers(doc_id, text, entry):
                entry_ranks[j] = r
                new = True
        gains[r - 1] = 1 if new else 0
    found = [r for r in entry_ranks if r is not None]
    first = min(found) if found else None
    hit1 = 1.0 if first == 1 else 0.0
    hitk = 1.0 if first is not None else 0.0
    mrr = 1.0 / first if first else 0.0
    recall = len(found) / len(relevant)
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    ndcg = dcg / idcg if idcg else 0.0
    return hit1, hitk, mrr, recall, ndcg, entry_ranks


@dataclass
class Metrics:
    """Means over a group of questions."""

    n: int = 0
    hit1: float = 0.0
    hitk: float = 0.0
    mrr: float = 0.0
    recall: float = 0.0
    ndcg: float = 0.0
    mean_len: float = 0.0

    @classmethod
    def of(cls, scores: Sequence[QuestionScore]) -> "Metrics":
        """Means of ``scores`` (all zero for an empty group)."""
        n = len(scores)
        if not n:
            return cls()

        def mean(attr: str) -> float:
            return sum(getattr(s, attr) for s in scores) / n

        return cls(n, mean("hit1"), mean("hitk"), mean("mrr"), mean("recall"), mean("ndcg"), mean("mean_len"))


@dataclass
class NoAnswerStats:
    """Questions whose corpus holds no answer: what the engine returned for them."""

    n: int = 0
    ids: list[str] = field(default_factory=list)
    #: Mean top-1 fused score of these questions and of the answerable ones, for calibration.
    mean_top1_score: float | None = None
    mean_top1_score_answerable: float | None = None
    #: How many of them returned no passage at all.
    n_empty: int = 0


@dataclass
class EvalReport:
    """The result of :func:`evaluate`."""

    mode: str
    k: int
    questions_path: str
    overall: Metrics
    per_kind: dict[str, Metrics]
    no_answer: NoAnswerStats
    per_question: list[QuestionScore]
    #: True when the entries were scored by their own phrase only (``also`` ignored).
    strict_labels: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class _Searcher(Protocol):
    def search(self, query: str, k: int = 10, filters: Any = None, mode: str = "hybrid") -> list[Any]:
        """Ranked results with ``.score`` and ``.chunk`` (``doc_id``, ``text``)."""
        ...


def _mean(xs: Iterable[float]) -> float | None:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else None


def evaluate(engine: _Searcher, questions_path: str | Path, mode: str = "hybrid", k: int = 10,
             split: str | None = None, strict: bool = False) -> EvalReport:
    """Run every question of ``questions_path`` (of one ``split`` half if given) through
    ``engine.search(query, k=k, mode=mode)`` and compute the README's metrics per kind and overall
    (``strict``: each entry by its own phrase only, without its ``also`` passages)."""
    questions = load_questions(questions_path, split, strict)
    scored: list[QuestionScore] = []
    no_answer_top1: list[float] = []
    na = NoAnswerStats()
    for q in questions:
        results = engine.search(q.query, k=k, mode=mode)[:k]
        top1 = float(results[0].score) if results else None
        mean_len = (sum(len(r.chunk.text) for r in results) / len(results)) if results else 0.0
        if not q.relevant:
            na.n += 1
            na.ids.append(q.id)
            if top1 is None:
                na.n_empty += 1
            else:
                no_answer_top1.append(top1)
            continue
        passages = [(r.chunk.doc_id, r.chunk.text) for r in results]
        h1, hk, mrr, rec, ndcg, er = score_ranking(passages, q.relevant, k)
        scored.append(QuestionScore(q.id, q.kind, q.query, len(q.relevant), h1, hk, mrr, rec, ndcg, er, mean_len, top1))
    kinds = sorted({s.kind for s in scored})
    na.mean_top1_score = _mean(no_answer_top1)
    na.mean_top1_score_answerable = _mean(s.top1_score for s in scored if s.top1_score is not None)
    return EvalReport(
        mode=mode,
        k=k,
        questions_path=str(questions_path),
        overall=Metrics.of(scored),
        per_kind={kd: Metrics.of([s for s in scored if s.kind == kd]) for kd in kinds},
        no_answer=na,
        per_question=scored,
        strict_labels=strict,
    )


def format_report(report: EvalReport, title: str) -> str:
    """The report as a Markdown table: one row per kind, then the overall row."""
    k = report.k
    labels = " (strict labels: one phrase per entry)" if report.strict_labels else ""
    lines = [
        f"### {title}{labels}",
        "",
        f"| kind | n | hit@1 | hit@{k} | MRR@{k} | recall@{k} | nDCG@{k} | mean len (chars) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def row(name: str, m: Metrics) -> str:
        return (
            f"| {name} | {m.n} | {m.hit1:.3f} | {m.hitk:.3f} | {m.mrr:.3f} | {m.recall:.3f} "
            f"| {m.ndcg:.3f} | {m.mean_len:.0f} |"
        )

    for kind, m in report.per_kind.items():
        lines.append(row(kind, m))
    lines.append(row("**overall**", report.overall))
    na = report.no_answer
    if na.n:
        s = f"{na.mean_top1_score:.3f}" if na.mean_top1_score is not None else "—"
        a = f"{na.mean_top1_score_answerable:.3f}" if na.mean_top1_score_answerable is not None else "—"
        lines += [
            "",
            f"No-answer questions (relevant: []): {na.n} ({', '.join(na.ids)}), "
            f"{na.n_empty} returned nothing; mean top-1 score {s} (answerable questions: {a}).",
        ]
    missed = [s.id for s in report.per_question if not s.hitk]
    if missed:
        lines += ["", f"Not found within {k}: {', '.join(missed)}."]
    return "\n".join(lines) + "\n"


@dataclass
class GridRow:
    """One fusion setting of :func:`fusion_grid` and its overall metrics."""

    method: str
    dense_weight: float
    bm25_weight: float
    overall: Metrics
    per_kind: dict[str, Metrics]


def fusion_grid(
    engine: Any,
    questions_path: str | Path,
    methods: Sequence[str] = ("rrf", "minmax", "zscore"),
    dense_weights: Sequence[float] = (0.2, 0.3, 0.4, 0.5, 0.6),
    k: int = 10,
) -> list[GridRow]:
    """Evaluate hybrid search for every (fusion method, dense weight) pair; bm25 weight = 1 − dense.

    ``engine`` is a :class:`search.engine.Engine`; it is copied per setting (the copies share the
    open index and the cached query vectors), so the grid costs one embedding per question.
    """
    import copy

    rows: list[GridRow] = []
    for method in methods:
        for wd in dense_weights:
            e = copy.copy(engine)
            e.fusion = method
            e.settings = engine.settings.with_overrides(dense_weight=float(wd), bm25_weight=round(1.0 - float(wd), 6))
            rep = evaluate(e, questions_path, mode="hybrid", k=k)
            rows.append(GridRow(method, float(wd), round(1.0 - float(wd), 6), rep.overall, rep.per_kind))
    return rows


def format_grid(rows: Sequence[GridRow]) -> str:
    """The grid as a Markdown table (overall hit@1, MRR@10, recall@10, nDCG@10 per setting)."""
    lines = [
        "| fusion | w_dense | w_bm25 | hit@1 | MRR@10 | recall@10 | nDCG@10 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        m = r.overall
        lines.append(
            f"| {r.method} | {r.dense_weight:.2f} | {r.bm25_weight:.2f} | {m.hit1:.3f} | {m.mrr:.3f} "
            f"| {m.recall:.3f} | {m.ndcg:.3f} |"
        )
    return "\n".join(lines) + "\n"
