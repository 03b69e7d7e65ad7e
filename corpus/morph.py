"""fugashi + unidic-lite: the one place that owns the MeCab tagger.

The corpus stage counts tokens with it (chunk budgets); the index stage builds its BM25 terms on
top of :func:`morphemes`. A tagger is created lazily, once per process and thread.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

_local = threading.local()


@dataclass(frozen=True)
class Morpheme:
    """One token: surface form, coarse and fine part of speech, and lemma (surface when unknown)."""

    surface: str
    pos1: str
    pos2: str
    lemma: str
    start: int
    end: int


def tagger():
    """The thread's fugashi Tagger (unidic-lite), created on first use."""
    t = getattr(_local, "tagger", None)
    if t is None:
        import fugashi

        t = fugashi.Tagger()
        _local.tagger = t
    return t


def morphemes(text: str) -> list[Morpheme]:
    """Tokenise ``text`` with fugashi; offsets are character offsets into ``text``."""
    out: list[Morpheme] = []
    pos = 0
    for w in tagger()(text):
        surface = w.surface
        start = text.find(surface, pos) if surface else pos
        if start < 0:
            start = pos
        end = start + len(surface)
        pos = end
        f = w.feature
        lemma = getattr(f, "lemma", None) or surface
        # unidic lemmas of loanwords carry the source word: センター-center -> センター
        if "-" in lemma and not lemma.startswith("-"):
            lemma = lemma.split("-", 1)[0] or surface
        out.append(Morpheme(surface, f.pos1 or "", f.pos2 or "", lemma, start, end))
    return out


def count_tokens(text: str) -> int:
    """Number of fugashi tokens in ``text`` (whitespace not counted)."""
    return sum(1 for w in tagger()(text) if w.surface.strip())
