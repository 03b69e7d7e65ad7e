"""The BM25 tokeniser: fugashi + unidic-lite lemmas, ASCII terms kept whole, noun bigrams.

One explicit object (in the spirit of ``bm25s.tokenization.Tokenizer``) turns text into the terms
that BM25 indexes and queries are matched with. It is used identically for passages (at build
time) and for queries (at search time), and for highlighting (:meth:`Tokenizer.tokenize_with_spans`
gives each term's character span in the *original* text, so a query term can be highlighted by
lemma wherever it occurs in a passage).

Rules (see :attr:`Tokenizer.version`, stored in ``index.json``):

1. Normalisation: each character cluster of the text is folded with
   ``corpus.normalize.normalize_for_compare`` when that module is present, else NFKC; ASCII is
   lower-cased; whitespace *between two Japanese characters* (PDF line breaks inside words) is
   dropped, other whitespace becomes one space. An offset map keeps every normalised character's
   position in the original text.
2. ASCII terms (``[a-z0-9]`` runs joined by ``/ - & + ・ .``), e.g. PPP/PFI, DX, RPA, ICT, are
   kept whole and lower-cased (``ppp/pfi``); when they contain separators each part is emitted as
   well (``ppp``, ``pfi``) so that either form matches.
3. Everything else goes through :func:`corpus.morph.morphemes` (the one fugashi tagger). Content
   words are emitted by lemma (``行い`` → ``行う``, ``取組`` → ``取り組み``); particles 助詞,
   auxiliaries 助動詞, symbols 補助記号/記号, whitespace 空白, conjunctions 接続詞, pronouns 代名詞
   and a handful of light words (する, ある, いる, なる, できる, こと, もの, …) are dropped.
4. Compound nouns: every noun is emitted and, in addition, each pair of *adjacent* nouns (or noun
   + noun-like suffix such as 化/費/性) as one bigram term (学校+給食 → ``学校給食``,
   給食+センター → ``給食センター``), so that 学校給食センター and 給食センター share terms.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from corpus.memo import LockedCache
from corpus.morph import morphemes
from corpus.normalize import normalize_for_compare

#: Bump when the rules above change: an index built with another version is re-tokenised.
TOKENIZER_VERSION = "ja-lemma-bigram-1"

DROP_POS1 = frozenset({"助詞", "助動詞", "補助記号", "記号", "空白", "接続詞", "代名詞"})
#: Light words whose lemma carries no topic (unidic lemma forms).
STOP_LEMMAS = frozenset(
    {
        "為る", "有る", "居る", "成る", "出来る", "在る", "無い", "言う", "思う", "行く", "来る",
        "事", "物", "者", "為", "様", "所", "等", "際", "上", "中", "的",
        "此の", "其の", "彼の", "何",
    }
)
#: Morphemes that can be part of a compound noun bigram.
_NOUNISH_POS1 = frozenset({"名詞", "接尾辞", "接頭辞"})

_ASCII_TERM = re.compile(r"[a-z0-9]+(?:[/\-&+・.][a-z0-9]+)*")
_ASCII_SPLIT = re.compile(r"[/\-&+・.]")


def _is_cjk(ch: str) -> bool:
    """True for Japanese script characters (kana, kanji, CJK punctuation, full-width forms)."""
    o = ord(ch)
    return (
        0x3000 <= o <= 0x30FF  # CJK punctuation, hiragana, katakana
        or 0x3400 <= o <= 0x4DBF
        or 0x4E00 <= o <= 0x9FFF
        or 0xF900 <= o <= 0xFAFF
        or 0xFF00 <= o <= 0xFFEF
        or 0x20000 <= o <= 0x2FFFF
    )


#: The fold's label in the tokenizer version string. Indexes record that string, so it must not
#: change while the fold does not (it read "normalize_for_compare-0" when the fold was imported
#: behind a fallback; the fallback is gone, the label stays).
FOLD_LABEL = "normalize_for_compare-0"


def _default_fold() -> tuple[Callable[[str], str], str]:
    """The per-cluster fold function (corpus.normalize.normalize_for_compare) and its label."""
    return normalize_for_compare, FOLD_LABEL


@functools.lru_cache(maxsize=16384)
def _fold_chars(fold: Callable[[str], str], cluster: str) -> tuple[str, ...]:
    """The folded, lower-cased characters of one cluster without whitespace (cached: passages
    repeat few distinct characters)."""
    return tuple(c for c in fold(cluster).lower() if not c.isspace())


@dataclass(frozen=True)
class Normalised:
    """Normalised text plus, for each of its characters, the original span it came from."""

    text: str
    starts: list[int]
    ends: list[int]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a [start, end) span of the normalised text to the original text."""
        if end <= start:
            o = self.starts[start] if start < len(self.starts) else (self.ends[-1] if self.ends else 0)
            return o, o
        return self.starts[start], self.ends[end - 1]


class Tokenizer:
    """Japanese-aware BM25 tokeniser (see the module docstring for the rules).

    ``tokenize(text)`` gives the terms; ``tokenize_with_spans(text)`` gives ``(term, start, end)``
    with offsets in the original text; ``version`` identifies the rules and the normaliser.
    """

    def __init__(self, *, bigrams: bool = True, fold: Callable[[str], str] | None = None) -> None:
        """Create a tokeniser; ``fold`` overrides the per-character normaliser (tests only)."""
        if fold is None:
            self._fold, fold_label = _default_fold()
        else:
            self._fold, fold_label = fold, "custom"
        self.bigrams = bigrams
        self.version = f"{TOKENIZER_VERSION}+{fold_label}" + ("" if bigrams else "-nobigram")

    # -- normalisation ------------------------------------------------------------------------
    def normalise(self, text: str) -> Normalised:
        """Fold ``text`` cluster by cluster, keeping an offset map back to ``text``."""
        out: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        fold, fold_fn = _fold_chars, self._fold
        combining = unicodedata.combining
        n = len(text)
        i = 0
        while i < n:
            ch = text[i]
            if ch.isspace():  # what ``\s`` matches in a str pattern
                j = i
                while j < n and text[j].isspace():
                    j += 1
                prev = out[-1] if out else ""
                nxt = text[j] if j < n else ""
                if prev and nxt and _is_cjk(prev) and _is_cjk(unicodedata.normalize("NFKC", nxt)[:1] or nxt):
                    pass  # a line break inside Japanese text: join
                elif prev and prev != " " and j < n:
                    out.append(" ")
                    starts.append(i)
                    ends.append(j)
                i = j
                continue
            # a cluster: one character plus following combining marks / half-width (semi)voiced marks
            j = i + 1
            while j < n and (combining(text[j]) or text[j] in "\uff9e\uff9f"):
                j += 1
            chars = fold(fold_fn, text[i:j])
            out.extend(chars)
            starts.extend([i] * len(chars))
            ends.extend([j] * len(chars))
            i = j
        return Normalised("".join(out), starts, ends)

    # -- tokenisation -------------------------------------------------------------------------
    def _terms(self, text: str) -> list[tuple[str, int, int]]:
        norm = self.normalise(text)
        s = norm.text
        out: list[tuple[str, int, int]] = []
        ascii_spans: list[tuple[int, int]] = []
        for m in _ASCII_TERM.finditer(s):
            a, b = m.span()
            ascii_spans.append((a, b))
            term = m.group()
            oa, ob = norm.span(a, b)
            out.append((term, oa, ob))
            if _ASCII_SPLIT.search(term):
                pos = a
                for part in _ASCII_SPLIT.split(term):
                    if part:
                        pa, pb = norm.span(pos, pos + len(part))
                        out.append((part, pa, pb))
                    pos += len(part) + 1

        def in_ascii(a: int, b: int) -> bool:
            return any(a < y and x < b for x, y in ascii_spans)

        prev: tuple[str, int, int] | None = None  # last noun-ish lemma (normalised offsets)
        for mo in morphemes(s):
            if not mo.surface.strip() or in_ascii(mo.start, mo.end):
                prev = None
                continue
            if mo.pos1 in DROP_POS1:
                prev = None
                continue
            lemma = unicodedata.normalize("NFKC", mo.lemma).lower()
            nounish = mo.pos1 in _NOUNISH_POS1 and mo.pos2 != "数詞"
            if lemma in STOP_LEMMAS or not lemma.strip():
                prev = None
                continue
            oa, ob = norm.span(mo.start, mo.end)
            out.append((lemma, oa, ob))
            if nounish:
                if self.bigrams and prev is not None and prev[2] == mo.start:
                    pa, _ = norm.span(prev[1], prev[2])
                    out.append((prev[0] + lemma, pa, ob))
                prev = (lemma, mo.start, mo.end)
            else:
                prev = None
        out.sort(key=lambda t: (t[1], -(t[2] - t[1])))
        return out

    def tokenize(self, text: str) -> list[str]:
        """The BM25 terms of ``text`` (in order of appearance; repeats kept)."""
        return [t for t, _, _ in self._terms(text)]

    def tokenize_with_spans(self, text: str) -> list[tuple[str, int, int]]:
        """``(term, start, end)`` for each term, offsets into the original ``text``."""
        return self._terms(text)

    def __call__(self, text: str) -> list[str]:
        """Alias of :meth:`tokenize`."""
        return self.tokenize(text)

    def __repr__(self) -> str:
        return f"Tokenizer(version={self.version!r})"


def share_terms(terms: Sequence[str], pool: dict[str, str]) -> list[str]:
    """``terms`` with every string shared with its earlier occurrences in ``pool`` (which grows).

    A 100k-chunk build keeps ~17M term occurrences over a vocabulary of ~10^5 terms; one string
    object per distinct term instead of per occurrence saves about 1 GB of RSS.
    """
    return [pool.setdefault(t, t) for t in terms]


#: The process-wide tokenisers by their ``bigrams`` flag (a registry; only False is used).
_SHARED: "LockedCache[bool, Tokenizer]" = LockedCache()


def unigram_tokenizer() -> "Tokenizer":
    """The process-wide :class:`Tokenizer` without noun bigrams (content lemmas only)."""
    return _SHARED.get_or_create(False, lambda: Tokenizer(bigrams=False))


def text_lemmas(text: str) -> list[str]:
    """The distinct content lemmas of ``text`` (no bigrams), sorted: what the answer views test a
    question's concepts against. Stored per chunk at build time (``chunks.lemmas``) so a question
    never runs fugashi over the passages it scores."""
    return sorted(set(unigram_tokenizer().tokenize(text)))
