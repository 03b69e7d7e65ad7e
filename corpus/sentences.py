"""The one sentence splitter: where sentences begin and end in a chunk's display text.

:func:`sentence_spans` is used by every stage that needs sentences, so a search card, an answer
row and a budget split cut the same text the same way:

- the chunker (:mod:`corpus.chunker`) packs sentences into parts under the token budget; it
  turns the spans into units that tile the text (the gaps between spans go to a neighbour);
- the highlighter (:mod:`search.highlight`) marks the sentence that best matches the query;
- the answer views (:mod:`search.answers`, via :mod:`search.sentences`) pick evidence and
  wording sentences.

The rules and why each was chosen are in docs/chunking.md, section *Sentences*.
"""
from __future__ import annotations

import re

from corpus.normalize import starts_block

#: Sentence-final punctuation. ASCII "." is not one (4.9％, URLs, "No.3"); "．" is, unless a
#: digit touches it (４．９％, 「１．総則」), see :func:`_ends_at`.
TERMINATORS = "。！？!?．"
#: Closing brackets and quotes that stay with the sentence they close (「…完了。」).
CLOSERS = "」』）)】〕］]”’"
#: A line shorter than this (characters, whitespace stripped) that does not end a sentence is a
#: heading or a field, not a hard wrap: its line break ends the sentence.
SHORT_LINE = 24
#: A sentence longer than this (characters) is cut: at its last line break within the limit,
#: else after its last 、/，/, there, else at the limit.
CUT_CHARS = 300

_DIGITS = "0123456789０１２３４５６７８９"
#: Line starts the corpus's own block rule (``starts_block``) does not cover: notes (※＊*),
#: 第N条 and 「見出し：」 fields.
_LINE_START = re.compile(r"^[ \t\u3000]*(?:[※＊*]|第[0-9０-９一二三四五六七八九十]+[条項]|[^\s：:。、]{1,15}[：:])")
#: A 「見出し：」 label at the start of a line followed by its value; group 1 is the label.
_LABEL = re.compile(r"(?m)^[ \t\u3000]*([^\s：:。、「」（）()]{1,15}[：:])(?=[ \t\u3000]*\S)")
_INDENT = " \t\u3000"


def _ends_at(text: str, i: int) -> bool:
    """Whether ``text[i]`` (a character of :data:`TERMINATORS`) ends a sentence: ``．`` does not
    when the nearest character on either side, spaces skipped, is a digit (「２ ． ５ｍ」)."""
    if text[i] != "．":
        return True
    before = text[:i].rstrip(" \u3000")[-1:]
    after = text[i + 1:i + 8].lstrip(" \u3000")[:1]
    return not (before and before in _DIGITS) and not (after and after in _DIGITS)


def _line_end_cuts(prev: str, nxt: str) -> bool:
    """Whether the single line break between lines ``prev`` and ``nxt`` ends a sentence."""
    p = prev.strip()
    if not p or not nxt.strip():
        return True  # a blank line: paragraph break
    if len(p) < SHORT_LINE or p[-1] in "：:" or "\t" in prev or "\t" in nxt:
        return True  # a heading, a field or a label line; table rows (tab-separated cells)
    return starts_block(nxt) or nxt[:1] == "\u3000" or bool(_LINE_START.match(nxt))


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    """Shrink ``[a, b)`` so that it neither starts nor ends with whitespace."""
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _cut_long(text: str, a: int, b: int, limit: int) -> list[tuple[int, int]]:
    """``[a, b)`` cut into pieces of at most ``limit`` characters (line break, then 、, then hard)."""
    out: list[tuple[int, int]] = []
    while b - a > limit:
        window = text[a:a + limit]
        cut = window.rfind("\n")
        if cut < limit // 4:
            cut = max(window.rfind("、"), window.rfind("，"), window.rfind(","))
        if cut < limit // 4:
            cut = limit - 1
        out.append((a, a + cut + 1))
        a += cut + 1
    out.append((a, b))
    return out


def _cuts(text: str) -> list[int]:
    """Offsets where a sentence may end, before trimming and cutting long sentences."""
    n = len(text)
    cuts = [0, n]
    for m in _LABEL.finditer(text):
        cuts += [m.start(1), m.end(1)]
    i = 0
    while i < n:
        ch = text[i]
        if ch in TERMINATORS and _ends_at(text, i):
            j = i + 1
            while j < n and (text[j] in CLOSERS or (text[j] in TERMINATORS and _ends_at(text, j))):
                j += 1
            cuts.append(j)
            i = j
            continue
        if ch == "\n":
            ls = text.rfind("\n", 0, i) + 1
            le = text.find("\n", i + 1)
            if _line_end_cuts(text[ls:i], text[i + 1:n if le < 0 else le]):
                cuts.append(i + 1)
        i += 1
    return sorted(set(cuts))


def sentence_spans(text: str, cut_chars: int = CUT_CHARS) -> list[tuple[int, int]]:
    """Sentence spans ``[(start, end), …]`` of ``text``, in order, offsets into ``text``.

    A sentence ends after 。！？!? and after ． not touching a digit (with the closing brackets and
    further terminators that follow: 「完了。」」, 「！？」), at a blank line, after a line shorter than
    :data:`SHORT_LINE` characters, after a line ending in ：, at the ends of table rows (lines
    with a tab), and before a line that starts a bullet, numbered entry, heading, note, field or
    a full-width indent. Any other line break is a hard wrap inside the sentence. A 「見出し：」
    label at the start of a line is a piece of its own. A sentence longer than ``cut_chars`` is
    cut at a line break, else after 、/，, else at ``cut_chars``. Spans are whitespace-trimmed,
    never empty, never overlap, and every non-whitespace character of ``text`` is in one.
    """
    cuts = _cuts(text)
    spans: list[tuple[int, int]] = []
    for a, b in zip(cuts, cuts[1:]):
        a, b = _trim(text, a, b)
        for pa, pb in _cut_long(text, a, b, cut_chars) if b - a > cut_chars else [(a, b)]:
            pa, pb = _trim(text, pa, pb)
            if pb > pa:
                spans.append((pa, pb))
    return spans
