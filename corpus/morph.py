"""fugashi + unidic-lite: the one place that owns the MeCab tagger.

The corpus stage counts tokens with it (chunk budgets); the index stage builds its BM25 terms on
top of :func:`morphemes`. A tagger is created lazily, once per process and thread.

MeCab (through fugashi) crashes the whole process with a segmentation fault on one input of about
3 MB (≈1M Japanese characters or ≈3M ASCII characters; measured with fugashi 1.x + unidic-lite,
docs/reliability.md). Every text therefore reaches the tagger in slices of at most
:data:`MAX_TAGGER_CHARS` characters, cut at a line or sentence end where one is near
(:func:`tagger_slices`): :func:`morphemes` and :func:`count_tokens` are the only callers of the
tagger, so every path — chunking, BM25 terms, lemmas, questions, highlights — is bounded here.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

_local = threading.local()

#: The longest text handed to MeCab at once: 50,000 characters is at most 200 kB of UTF-8 and
#: 50,000 tokens, more than ten times below the size that crashes it (tests/test_morph_bounds.py).
MAX_TAGGER_CHARS = 50_000
#: Characters after which a slice may end (line ends first, then sentence ends).
_BREAKS = ("\n", "。", "．", "！", "？", "!", "?", ". ", "、", " ", "\u3000")


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


def tagger_slices(text: str, limit: int = MAX_TAGGER_CHARS) -> Iterator[tuple[int, str]]:
    """``(offset, piece)`` pieces of ``text`` of at most ``limit`` characters that together are
    ``text``; each piece ends after a line end or, failing that, a sentence end (or other break)
    in its second half, and is cut hard at ``limit`` only when there is none. Pure; linear."""
    n = len(text)
    start = 0
    while n - start > limit:
        end = start + limit
        lo = start + limit // 2
        cut = -1
        for br in _BREAKS:
            i = text.rfind(br, lo, end)
            if i >= 0:
                cut = i + len(br)
                break
        if cut <= start:
            cut = end
            # do not split a combining mark or a surrogate-free cluster from its base
            while cut > lo and (text[cut] in "\uff9e\uff9f" or "\u0300" <= text[cut] <= "\u036f" or "\u3099" <= text[cut] <= "\u309a"):
                cut -= 1
        yield start, text[start:cut]
        start = cut
    if start < n or n == 0:
        yield start, text[start:]


def _features(word) -> tuple[str, str, str]:
    """``(pos1, pos2, lemma)`` of a fugashi word (unidic: fields 0, 1 and 7 of its CSV feature;
    "" when absent, as for unknown words). The raw string is split directly: building fugashi's
    named tuple of 29 fields costs three times as much; a quoted field falls back to it."""
    raw = word.feature_raw
    if '"' in raw:
        f = word.feature
        return f.pos1 or "", f.pos2 or "", getattr(f, "lemma", None) or ""
    parts = raw.split(",")
    return parts[0], parts[1] if len(parts) > 1 else "", parts[7] if len(parts) > 7 else ""


def morphemes(text: str) -> list[Morpheme]:
    """Tokenise ``text`` with fugashi; offsets are character offsets into ``text``.

    Long texts are tagged slice by slice (:func:`tagger_slices`), so no input can crash MeCab."""
    out: list[Morpheme] = []
    tag = tagger()
    for offset, piece in tagger_slices(text):
        pos = 0
        for w in tag(piece):
            surface = w.surface
            start = piece.find(surface, pos) if surface else pos
            if start < 0:
                start = pos
            end = start + len(surface)
            pos = end
            pos1, pos2, lemma = _features(w)
            lemma = lemma or surface
            # unidic lemmas of loanwords carry the source word: センター-center -> センター
            if "-" in lemma and not lemma.startswith("-"):
                lemma = lemma.split("-", 1)[0] or surface
            out.append(Morpheme(surface, pos1, pos2, lemma, offset + start, offset + end))
    return out


def count_tokens(text: str) -> int:
    """Number of fugashi tokens in ``text`` (whitespace not counted), tagged slice by slice."""
    tag = tagger()
    return sum(1 for _, piece in tagger_slices(text) for w in tag(piece) if w.surface.strip())
