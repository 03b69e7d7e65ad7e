"""Sentence-level helpers of the answer views: splitting, lemma sets, near-duplicate merging.

Pure logic (no model, no index), so it is tested on hand-made text.

- ``split_sentences`` is :func:`corpus.sentences.sentence_spans` (the one splitter, shared with
  the chunker and the highlighter), re-exported under the name the answer views use: character
  offsets into the passage, so a sentence is always a verbatim substring of ``Chunk.text``.
- :func:`content_terms` gives the content lemmas of a text (fugashi via
  :class:`index.tokenizer.Tokenizer`, unigrams only) minus the question-frame words users wrap
  their questions in (「〜している市」「〜という文言」).
- :func:`compact`, :func:`dup_key`, :func:`char_ngrams`, :func:`jaccard`, :func:`is_near_duplicate` and
  :func:`merge_near_duplicates` merge sentences that are the same text (NFKC, whitespace-free)
  or nearly so (character 3-gram Jaccard ≥ 0.8), punctuation ignored.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import TypeVar

# The key of "the same sentence" is the corpus stage's comparison form (NFKC, PDF radicals
# mapped, whitespace removed); re-exported here for the answer views and their callers.
from corpus.normalize import compact
from search import vocab
from search.question import ANSWER_FRAME_TERMS
from search.vocab import VOCAB

# The answer views' sentences are the corpus stage's (one splitter for chunker, cards and views).
from corpus.sentences import sentence_spans as split_sentences  # noqa: F401  (re-export)

T = TypeVar("T")


def one_line(sentence: str) -> str:
    """The sentence for display/copying: hard line breaks removed (Japanese has no spaces
    between words, so a wrapped line joins without one), runs of spaces collapsed, leading
    full-width indentation dropped. Between two ASCII letters/digits a line break becomes a space."""
    parts = [p.strip(" \t\r\u3000") for p in sentence.split("\n")]
    out = ""
    for p in parts:
        if not p:
            continue
        if out and out[-1].isascii() and out[-1].isalnum() and p[0].isascii() and p[0].isalnum():
            out += " "
        out += p
    return re.sub(r"[ \t]{2,}", " ", out).strip()


# -- lemmas -----------------------------------------------------------------------------------

#: Administrative paraphrases (行政用語の言い換え): a question concept counts as present in a passage
#: when the passage has a member of a group the concept stands for. The groups are data
#: (search/vocab/paraphrases.tsv plus the user's vocab_files, :mod:`search.vocab`): general
#: equivalences of municipal documents by area (行革, 財政, 公共施設, DX, …), not answers to particular
#: questions; see docs/answers.md. This is the loaded list itself (read-only for callers).
EQUIVALENTS: list[tuple[str, ...]] = VOCAB.groups


@lru_cache(maxsize=1)
def _member_lemmas() -> tuple[tuple[frozenset[str], int], ...]:
    """``(lemma set, group index)`` of every member of every :data:`EQUIVALENTS` group (frame
    words and numbers left out, as in :func:`concepts`)."""
    out = []
    for gi, group in enumerate(EQUIVALENTS):
        for member in group:
            lemmas = frozenset(t for t in _terms_cached(member) if t not in ANSWER_FRAME_TERMS and not t.isdigit())
            if lemmas:
                out.append((lemmas, gi))
    return tuple(out)


@lru_cache(maxsize=20000)
def _groups_of(lemmas: tuple[str, ...]) -> frozenset[int]:
    """The groups a concept (its lemmas) stands for: those with a member all of whose lemmas are in
    the concept — so a generic part of a member (指定 of 指定管理, 学校 of 学校給食) does not stand for
    its group alone. When one matched member's lemmas are a strict subset of another's (給食 ⊂
    給食+センター), only the larger match counts: the concept is the more specific thing."""
    have = set(lemmas)
    hits = [(m, gi) for m, gi in _member_lemmas() if m <= have]
    return frozenset(gi for m, gi in hits if not any(m < other for other, _ in hits))


@lru_cache(maxsize=None)
def _group_spellings(gi: int) -> tuple[str, ...]:
    return tuple(sorted({compact(m).lower() for m in EQUIVALENTS[gi]}))


@lru_cache(maxsize=20000)
def _concept_spellings(concept: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted({sp for gi in _groups_of(concept) for sp in _group_spellings(gi)}))


def equivalents(term: str) -> tuple[str, ...]:
    """Spellings (compact, lower-cased) that count as the one-lemma concept ``term`` being present
    (may be empty)."""
    return _concept_spellings((term,))


#: One-character suffixes that only qualify the noun before them (競輪「場」, 民営「化」).
_SUFFIX_LEMMAS = frozenset({"場", "化", "内", "的", "性", "費", "所", "館", "者", "別", "率", "外"})


@lru_cache(maxsize=20000)
def _nounish(lemma: str) -> bool:
    """True when ``lemma`` is a noun (or noun prefix/suffix, or an ASCII term) for fugashi."""
    if lemma.isascii():
        return True
    from corpus.morph import morphemes

    ms = [m for m in morphemes(lemma) if m.surface.strip()]
    return bool(ms) and all(m.pos1 in ("名詞", "接尾辞", "接頭辞") for m in ms)


@lru_cache(maxsize=2000)
def concepts(text: str) -> tuple[tuple[str, ...], ...]:
    """The content of a question as concepts: tuples of lemmas.

    A compound noun (noun lemmas that touch in ``text``: 火葬+場, 電子+マネー) is one
    concept; concepts that stand for the same :data:`EQUIVALENTS` group (:func:`_groups_of`:
    電子マネー, キャッシュレス決済) are merged; question-frame words are left out.
    """
    runs: list[list[str]] = []
    spans: list[list[int]] = []  # [start, end] of each run in text
    last_end = -1
    for t, a, b in _unigram_tokenizer().tokenize_with_spans(text):
        if t in ANSWER_FRAME_TERMS or t.isdigit():
            last_end = -1
            continue
        if runs and last_end >= 0 and a <= last_end and _nounish(t) and _nounish(runs[-1][-1]):
            # touching or overlapping nouns form a compound (火葬+場, ppp/pfi + ppp)
            if t not in runs[-1]:
                runs[-1].append(t)
            spans[-1][1] = max(spans[-1][1], b)
        else:
            runs.append([t])
            spans.append([a, b])
        last_end = max(b, last_end)
    runs = _join_no_phrases(text, runs, spans)
    merged: list[list[str]] = []
    owner: dict[int, int] = {}
    for run in runs:
        gids = _groups_of(tuple(run))
        hit = next((owner[g] for g in gids if g in owner), None)
        if hit is None:
            merged.append(list(run))
            hit = len(merged) - 1
        else:
            merged[hit].extend(t for t in run if t not in merged[hit])
        for g in gids:
            owner.setdefault(g, hit)
    seen: set[tuple[str, ...]] = set()
    out = []
    for c in merged:
        key = tuple(c)
        if key not in seen:
            seen.add(key)
            out.append(key)
    return tuple(out)


def _join_no_phrases(text: str, runs: list[list[str]], spans: list[list[int]]) -> list[list[str]]:
    """Runs joined across a plain 「の」 when together they hold every lemma of a group member that
    neither holds alone: 「民間の資金」 is the member 民間資金, as 「AのB」 is the compound AB."""
    out: list[list[str]] = []
    prev_end = -1
    for run, (a, b) in zip(runs, spans):
        if out and compact(text[prev_end:a]) == "の":
            left, right, both = set(out[-1]), set(run), set(out[-1]) | set(run)
            if any(m <= both and not m <= left and not m <= right for m, _ in _member_lemmas()):
                out[-1].extend(t for t in run if t not in out[-1])
                prev_end = b
                continue
        out.append(list(run))
        prev_end = b
    return out


def _concept_weight(concept: Sequence[str]) -> float:
    return 1.0 if any(len(t) >= 2 for t in concept) else 0.5


def concept_coverage(question: str, text: str, have: frozenset[str] | None = None) -> float:
    """Weighted share (0–1) of the question's concepts (:func:`concepts`) present in ``text``.

    A concept scores 1 when a spelling of a :data:`EQUIVALENTS` group it stands for occurs in
    ``text`` (火葬場 ↔ 斎場, 残業 ↔ 時間外勤務); otherwise the share of its lemmas that occur
    (one-character suffixes such as 場・化 not counted when the concept has other lemmas). A
    concept weighs 1 (0.5 when it is a single character), so a question that names one idea in
    several words (「電子マネーやキャッシュレス決済」) does not count it several times.
    ``have``: the lemma set of ``text`` when already known (a chunk's, from the index).
    """
    cs = concepts(question)
    if not cs:
        return 0.0
    if have is None:
        have = term_set(text)
    flat = compact(text).lower()
    total = got = 0.0
    for c in cs:
        w = _concept_weight(c)
        total += w
        if any(e in flat for e in _concept_spellings(c)):
            got += w
            continue
        core = [t for t in c if t not in _SUFFIX_LEMMAS] or list(c)
        got += w * sum(1 for t in core if t in have) / len(core)
    return got / total


def _vocab_changed() -> None:
    """Drop every cache built on the vocabulary (a user file was added: search.vocab.use_vocab_files)."""
    for f in (_member_lemmas, _groups_of, _group_spellings, _concept_spellings, concepts):
        f.cache_clear()


vocab.on_change(_vocab_changed)


def _unigram_tokenizer():
    from index.tokenizer import unigram_tokenizer

    return unigram_tokenizer()


@lru_cache(maxsize=20000)
def _terms_cached(text: str) -> tuple[str, ...]:
    return tuple(_unigram_tokenizer().tokenize(text))


def content_terms(text: str, drop_frame: bool = True) -> list[str]:
    """Content lemmas of ``text`` (unique, in order of first appearance).

    Lemmas come from :class:`index.tokenizer.Tokenizer` without noun bigrams (so PDF line
    breaks inside words are joined and 取組/取り組み fold to one lemma); numbers-only terms and,
    with ``drop_frame``, the question-frame words of :data:`search.question.ANSWER_FRAME_TERMS` are dropped.
    """
    seen: dict[str, None] = {}
    for t in _terms_cached(text):
        if drop_frame and t in ANSWER_FRAME_TERMS:
            continue
        if t.isdigit():
            continue
        seen.setdefault(t, None)
    return list(seen)


def term_set(text: str) -> frozenset[str]:
    """All lemmas of ``text`` (frame words kept) as a set, for coverage tests."""
    return frozenset(_terms_cached(text))


def coverage(query_terms: Sequence[str], text_terms: Iterable[str], weights: dict[str, float] | None = None) -> float:
    """Share (0–1) of ``query_terms`` present in ``text_terms``, optionally weighted per term."""
    if not query_terms:
        return 0.0
    have = text_terms if isinstance(text_terms, (set, frozenset)) else set(text_terms)
    w = weights or {}
    total = sum(w.get(t, 1.0) for t in query_terms)
    if total <= 0:
        return 0.0
    return sum(w.get(t, 1.0) for t in query_terms if t in have) / total


# -- near duplicates --------------------------------------------------------------------------


def text_hash(text: str) -> str:
    """A stable hash of the compact form of ``text`` (the embedding-cache key)."""
    return hashlib.sha1(compact(text).encode("utf-8")).hexdigest()


_PUNCT = re.compile(r"[、。，．,.・･「」『』（）()\[\]【】〈〉《》“”\"'!！?？:：;；\-－‐―ー~〜～…]")


def dup_key(text: str) -> str:
    """The compact form without punctuation: 「化し、共有」 and 「化し共有」 are the same sentence."""
    return _PUNCT.sub("", compact(text))


def char_ngrams(text: str, n: int = 3) -> frozenset[str]:
    """Character ``n``-grams of :func:`dup_key` of ``text`` (the whole key if shorter)."""
    s = dup_key(text)
    if len(s) <= n:
        return frozenset({s}) if s else frozenset()
    return frozenset(s[i : i + n] for i in range(len(s) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two sets (0 when both are empty)."""
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


#: Sentences whose character 3-gram Jaccard similarity is at least this are merged.
NEAR_DUPLICATE_JACCARD = 0.8


def is_near_duplicate(a: str, b: str, threshold: float = NEAR_DUPLICATE_JACCARD) -> bool:
    """True when ``a`` and ``b`` are the same compact text (punctuation aside) or their
    character 3-gram Jaccard similarity is ≥ ``threshold``."""
    ca, cb = dup_key(a), dup_key(b)
    if ca == cb:
        return True
    return jaccard(char_ngrams(ca), char_ngrams(cb)) >= threshold


def merge_near_duplicates(
    items: Sequence[T], text: Callable[[T], str], threshold: float = NEAR_DUPLICATE_JACCARD
) -> list[tuple[T, list[T]]]:
    """Greedy merge in the given (ranked) order: each item either starts a group or joins the
    first kept group whose representative is a near duplicate. Returns ``[(kept, merged), …]``
    in order, ``merged`` being the later items folded into ``kept``."""
    groups: list[tuple[T, list[T], str, frozenset[str]]] = []
    for it in items:
        c = dup_key(text(it))
        grams = char_ngrams(c)
        for kept, merged, kc, kg in groups:
            if c == kc or jaccard(grams, kg) >= threshold:
                merged.append(it)
                break
        else:
            groups.append((it, [], c, grams))
    return [(k, m) for k, m, _, _ in groups]
