"""The nothing-lost check: every character of a document ends up in some chunk.

Compared on :func:`corpus.normalize.compact` forms (NFKC, radicals mapped, whitespace removed), so
hard-wrap joining, letter-spacing collapse and display cleaning do not count as losses. Each
non-blank source line, unless it is removed boilerplate (page furniture, lone page numbers), must
be a substring of the concatenated chunk texts (in chunk order) or of a chunk's item / section path
(headings live there); a line whose whitespace-separated pieces each are found also counts (parsers
split glued table cells). Pure functions.
"""
from __future__ import annotations

from collections import Counter

from corpus.normalize import compact, normalize_for_compare
from corpus.records import Chunk


def uncovered(raw_pages_text: str, chunks: list[Chunk], removed: list[str]) -> list[str]:
    """The source lines (as they were) whose compact form is found in no chunk.

    ``raw_pages_text``: the document's text as read (pages joined with newlines); ``removed``: the
    boilerplate lines the chunker dropped (each removal excuses one occurrence).
    """
    body = compact("".join(c.text for c in chunks))
    heads = "\x00".join(compact(x) for c in chunks for x in (c.item, *c.section_path))
    excused = Counter(compact(r) for r in removed if compact(r))
    missing: list[str] = []
    for line in raw_pages_text.split("\n"):
        key = compact(line)
        if not key:
            continue
        if excused[key] > 0:
            excused[key] -= 1
            continue
        if key in body or key in heads:
            continue
        # a line whose cells were separated by the parser (「総務課　財務事務の…」 → department +
        # status) is covered when each whitespace-separated piece is
        pieces = [compact(p) for p in normalize_for_compare(line).split()]
        if all(p in body or p in heads for p in pieces if p):
            continue
        missing.append(line)
    return missing


def coverage_ratio(raw_pages_text: str, chunks: list[Chunk], removed: list[str]) -> float:
    """Share of the document's compact characters (outside removed boilerplate) that are covered."""
    total = sum(len(compact(ln)) for ln in raw_pages_text.split("\n"))
    total -= sum(len(compact(r)) for r in removed)
    if total <= 0:
        return 1.0
    lost = sum(len(compact(ln)) for ln in uncovered(raw_pages_text, chunks, removed))
    return 1.0 - lost / total
