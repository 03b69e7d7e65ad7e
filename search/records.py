"""Value records of the search stage: filters in, results out."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from corpus.records import Chunk, page_label


@dataclass(frozen=True)
class Filters:
    """Restrict a search. Each field is a set of accepted values; empty means "any"."""

    municipality: tuple[str, ...] = ()
    prefecture: tuple[str, ...] = ()
    kind: tuple[str, ...] = ()
    year: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """True when no field restricts anything."""
        return not (self.municipality or self.prefecture or self.kind or self.year)


@dataclass(frozen=True)
class Span:
    """A highlighted span of ``Result.chunk.text``: [start, end) character offsets."""

    start: int
    end: int
    kind: str = "term"  # "term" (a query term, by lemma) or "sentence" (best-matching sentence)


@dataclass
class Result:
    """One ranked passage with its citation fields (via ``chunk``) and scores."""

    rank: int
    score: float
    chunk: Chunk
    dense_score: float | None = None
    bm25_score: float | None = None
    spans: list[Span] = field(default_factory=list)

    def citation(self) -> str:
        """A one-line human citation: 自治体『文書』section › item（所管課）p.N, with 「（OCR）」 after
        the pages when the text was read with OCR (it may hold misread characters)."""
        c = self.chunk
        where = " › ".join([*c.section_path, c.item] if c.item and (not c.section_path or c.section_path[-1] != c.item) else c.section_path)
        pages = page_label(c.page_start, c.page_end)
        dept = f"（{c.department}）" if c.department else ""
        ocr = "（OCR）" if getattr(c, "ocr", False) else ""
        return f"{c.municipality}『{c.title}』{where}{dept} {pages}{ocr}"

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``seisaku search --json``."""
        c = self.chunk
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "chunk_id": c.chunk_id,
            "doc_id": c.doc_id,
            "municipality": c.municipality,
            "prefecture": c.prefecture,
            "title": c.title,
            "section": c.section,
            "item": c.item,
            "department": c.department,
            "page_start": c.page_start,
            "page_end": c.page_end,
            "text": c.text,
            "url": c.url,
            "ocr": bool(c.ocr),
            "citation": self.citation(),
            "spans": [asdict(s) for s in self.spans],
        }
