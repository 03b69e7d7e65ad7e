"""The answer views' records: the citation block :class:`Evidence` and the dataclasses each view
returns, with ``to_dict()`` (JSON), ``to_text()`` (CLI) and ``to_csv()`` (Excel, formula-safe)."""
from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from corpus.records import SECTION_SEP, Chunk, page_label
from search.answers.signals import ANSWER_THRESHOLD, NOT_FOUND, Signals
from search.csvsafe import SafeCsvWriter
from search.records import Result, Span
from search.sentences import one_line


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


def _sentence_dict(hit: "AnswerRow | ComparisonEntry | WordingHit", **middle: Any) -> dict[str, Any]:
    """JSON-ready dict of a sentence with its evidence: evidence fields flattened, page, sentence,
    sentence_text, then ``middle`` (in order), then passage and spans."""
    return {
        **asdict(hit.evidence), "page": hit.evidence.page, "sentence": hit.sentence,
        "sentence_text": hit.sentence_text, **middle, "passage": hit.passage, "spans": _span_dicts(hit.spans),
    }


def _key_sentence_dict(entry: "AnswerRow | ComparisonEntry", **extra: Any) -> dict[str, Any]:
    """JSON-ready dict of an answer row / comparison entry: :func:`_sentence_dict` with the
    sentence's place, field and confidence, then ``extra`` (in order)."""
    return _sentence_dict(entry, sentence_start=entry.sentence_start, sentence_end=entry.sentence_end,
                          field=entry.field, confidence=round(entry.confidence, 4), **extra)


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
    #: When not answered: the nearest municipalities' rows (shown as 低, never as an answer).
    near: list[AnswerRow] = field(default_factory=list)
    #: The question's type from its form (search.qtype).
    question_type: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``rows`` empty when not answered; ``near`` holds the nearest rows then,
        ``nearest`` the closest one)."""
        return {
            "query": self.query,
            "question_type": self.question_type,
            "answered": self.answered,
            "message": self.message,
            "threshold": self.threshold,
            "rows": [r.to_dict() for r in self.rows],
            "nearest": self.nearest.to_dict() if self.nearest else None,
            "near": [r.to_dict() for r in self.near],
        }

    def to_text(self) -> str:
        """Readable Japanese for the CLI."""
        lines = [f"質問: {self.query}", self.message]
        shown = self.rows if self.answered else self.near
        for i, r in enumerate(shown, 1):
            e = r.evidence
            pref = f"（{e.prefecture}）" if e.prefecture and e.prefecture != e.municipality else ""
            level = "" if self.answered else "（確度 低: 回答ではなく近い箇所）"
            lines.append("")
            lines.append(f"{i}. {e.municipality}{pref}  確信度 {r.confidence:.2f}{level}")
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
        d = _sentence_dict(self, start=self.start, end=self.end, score=round(self.score, 4),
                           lexical=round(self.lexical, 4), dense=round(self.dense, 4))
        d["also"] = [o.to_dict() for o in self.also]
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
