"""Heading detection and the prose outline (plans such as 行財政改革大綱).

Everything here is a pure function over lines. The outline rules:

- **Numbered headings** have a fixed rank: 第N部/編 (-1) > 第N章 (0) > 第N節 (1) > 「N.」「N 」 (3)
  > （N）/⑴/（一） (4) > ① (5) > ア/イ (6). A heading of rank r closes every open heading of rank ≥ r.
- **Label headings** — a whole line in ＜…＞, 【…】, 《…》, 〈…〉, ≪…≫ (also 「《…》 × 《…》」), or
  方針N — nest one level below the innermost open numbered heading; a label of the same kind that
  is still open (anywhere up the stack) is its sibling.
- A heading is short (≤ 60 characters), does not end with 。, has no tab, and its number continues
  the sequence of its kind (1, or the previous number + 1; + 2 tolerated for bracketed kinds, whose
  documents are often excerpts). A bare 「N 」 heading must not contain 、 (sentences start with
  numbers too: 「10 年の市政の…、」).
- ○/・ bullets are not headings; they stay in the text.
- Table-of-contents lines (a heading followed by a tab/leaders and a page number) are not headings:
  they belong to the text of the 目次 heading, which any following heading closes.
- A heading with no text and no sub-heading (a figure caption whose figure was lost, a heading
  at the end of a page) is kept as a text line of the previous item.
- **Stand-alone headings**: when these rules find fewer than three headings in running prose (a
  speech such as a 施政方針), a short line alone between paragraphs — ≤ 10 kanji/kana once letter
  spacing is collapsed (「総　務」「危機管理」), after a finished sentence, before a body line — is a
  heading; it is both the section and the item of its text.

:func:`prose_items` turns the outline into :class:`~corpus.records.Item` s: one per heading that
carries text (``section_path`` = its ancestors, ``title`` = the heading), plus one for the text
before the first heading, titled by the document title. Each item records the page where each
piece of its text is printed (:attr:`Item.page_marks`), so that the parts of a long item cite
their own pages.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from corpus.normalize import (
    clean_display_text,
    collapse_letter_spacing,
    compact,
    is_page_number_line,
    drop_private_use,
    page_marks,
    reference_width,
    WrapStyle,
    wrap_style,
)
from corpus.records import Item, LineInfo, Page

_D = "0-9０-９"
_KN = "一二三四五六七八九十"
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
_PAREN = "⑴⑵⑶⑷⑸⑹⑺⑻⑼⑽⑾⑿⒀⒁⒂⒃⒄⒅⒆⒇"
_KATA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワ"

MAX_HEADING_CHARS = 60
#: Label lines combining several bracket groups (「《推進手段(1)…》 × 《基本姿勢(1)…》」) may be longer.
MAX_LABEL_CHARS = 90


@dataclass(frozen=True)
class Line:
    """One source line with the page it is on."""

    page: int
    text: str


@dataclass(frozen=True)
class Heading:
    """A detected heading: ``kind`` (marker family), ``rank`` (smaller = higher; None for labels),
    ``number`` (its value within the kind's sequence, 0 when unnumbered) and the display ``title``."""

    kind: str
    rank: float | None
    number: int
    title: str


def lines_of(pages: list[Page]) -> list[Line]:
    """The lines of ``pages`` in order, each with its page number."""
    return [Line(p.number, ln) for p in pages for ln in p.text.split("\n")]


def _num(s: str) -> int:
    s = unicodedata.normalize("NFKC", s)
    if s.isdigit():
        return int(s)
    # kanji numerals up to 99
    vals = {c: i + 1 for i, c in enumerate(_KN[:9])}
    if s == "十":
        return 10
    if "十" in s:
        a, _, b = s.partition("十")
        return (vals.get(a, 1) if a else 1) * 10 + (vals.get(b, 0) if b else 0)
    return vals.get(s, 0)


_NUMBERED: list[tuple[str, float, re.Pattern[str]]] = [
    ("部", -1, re.compile(rf"^第([{_D}{_KN}]+)[部編](?:[\s　:：.．]*(.*))?$")),
    ("章", 0, re.compile(rf"^第([{_D}{_KN}]+)章(?:[\s　:：.．]*(.*))?$")),
    ("節", 1, re.compile(rf"^第([{_D}{_KN}]+)節(?:[\s　:：.．]*(.*))?$")),
    ("N.", 3, re.compile(rf"^([{_D}]{{1,2}})[.．](?![{_D}])[\s　]*(\S.*)$")),
    ("N", 3, re.compile(rf"^([{_D}]{{1,2}})[\s　]+(\S.*)$")),
    ("(N)", 4, re.compile(rf"^[（(]([{_D}]{{1,2}})[)）][\s　]*(\S.*)$")),
    ("⑴", 4, re.compile(rf"^([{_PAREN}])[\s　]*(\S.*)$")),
    ("(一)", 4, re.compile(rf"^[（(]([{_KN}]{{1,3}})[)）][\s　]*(\S.*)$")),
    ("①", 5, re.compile(rf"^([{_CIRCLED}])[\s　]*(\S.*)$")),
    ("ア", 6, re.compile(rf"^([{_KATA}])[\s　.．、)）][\s　]*(\S.*)$")),
]

_LABELS: list[tuple[str, re.Pattern[str]]] = [
    ("方針", re.compile(rf"^方針[\s　]*([{_D}{_KN}]+)(?:[\s　:：.．、]+(.*))?$")),
    ("【】", re.compile(r"^【[^】]+】$")),
    ("＜＞", re.compile(r"^[＜<〈][^＞>〉＜<]+[＞>〉]$")),
    ("《》", re.compile(r"^[《≪][^》≫]+[》≫](?:[\s　]*[×＋+・][\s　]*[《≪][^》≫]+[》≫])*$")),
]

#: Headings whose marker makes them unambiguous enough to tolerate a skipped number.
_TOLERANT = {"部", "章", "節", "N.", "(N)", "⑴", "(一)", "①", "方針"}

_TOC_RE = re.compile(rf"^(?P<head>.*?\S)(?:\t+|[\s　]*[.．・…‥─―-]{{3,}}[\s　]*|[\s　]{{2,}})(?P<page>[{_D}]{{1,3}})$")
_TOC_TITLE_RE = re.compile(r"^(目[\s　]*次|もくじ|CONTENTS|Contents)$")


def heading_text(line: str) -> str:
    """The display form of a heading line: PUA dropped, letter spacing collapsed, trimmed."""
    return collapse_letter_spacing(drop_private_use(line)).strip()


def is_toc_title(line: str) -> bool:
    """True for the 目次 line that opens a table of contents."""
    return bool(_TOC_TITLE_RE.match(heading_text(line)))


def is_toc_line(line: str) -> bool:
    """True for a table-of-contents entry: a heading-like line ending in a tab, leaders or a wide
    gap and a page number (「(1) 市民満足度の向上\\t6」「第1章 総論……3」)."""
    s = drop_private_use(line).strip()
    m = _TOC_RE.match(s)
    if not m:
        return False
    head = m.group("head").strip()
    if "\t" in head:
        return False
    return classify_heading(head, check_sequence=False) is not None or len(head) <= 30


def classify_heading(
    line: str, *, check_sequence: bool = False, last: dict[str, int] | None = None, emphasized: bool = False,
) -> Heading | None:
    """The :class:`Heading` ``line`` is, or None for text (sentences, bullets, table rows, TOC lines).

    With ``check_sequence``, a numbered heading must continue ``last[kind]`` (see module doc).
    ``emphasized`` (the PDF prints the line large or bold, :func:`layout_heading_keys`) lifts the
    rule that a bare 「N 」 heading has no 、 and is ≤ 40 characters
    (「２ 政務活動費交付の根拠となる法律、条例等」).
    """
    if "\t" in line:
        return None
    s = heading_text(line)
    if not s or len(s) > MAX_LABEL_CHARS or s.endswith(("。", "．")):
        return None
    if is_toc_line(line):
        return None
    last = last if last is not None else {}
    for kind, rank, rx in _NUMBERED if len(s) <= MAX_HEADING_CHARS else []:
        m = rx.match(s)
        if not m:
            continue
        raw = m.group(1)
        if kind in ("①", "⑴"):
            n = (_CIRCLED if kind == "①" else _PAREN).index(raw) + 1
        elif kind == "ア":
            n = _KATA.index(raw) + 1
        else:
            n = _num(raw)
        rest = (m.group(2) or "").strip() if m.lastindex and m.lastindex >= 2 else ""
        if kind == "N" and (
            (not emphasized and (re.search(r"[、，,。]", rest) or len(s) > 40)) or rest[:1] in "年月日円人件%％倍か"
        ):
            return None
        if kind == "ア" and (len(s) > 40 or "。" in s):
            return None
        if kind not in ("部", "章", "節") and not rest:
            return None
        if check_sequence and not _in_sequence(kind, n, last):
            return None
        return Heading(kind, rank, n, s)
    for kind, rx in _LABELS:
        m = rx.match(s)
        if not m:
            continue
        n = _num(m.group(1)) if kind == "方針" else 0
        if check_sequence and kind == "方針" and not _in_sequence(kind, n, last):
            return None
        return Heading(kind, None, n, s)
    return None


def _in_sequence(kind: str, n: int, last: dict[str, int]) -> bool:
    if n <= 0:
        return False
    if n == 1:
        return True
    prev = last.get(kind)
    if prev is None:
        return kind in _TOLERANT and n <= 3
    step = 2 if kind in _TOLERANT else 1
    return prev < n <= prev + step


#: The kind of a stand-alone heading (a short line alone between paragraphs, see
#: :func:`standalone_heading_lines`).
STANDALONE = "独立"
#: A stand-alone heading has at most this many characters (after letter spacing is collapsed).
MAX_STANDALONE_CHARS = 10
#: Stand-alone headings are looked for only when the numbered/label rules find fewer headings.
MIN_RULE_HEADINGS = 3
_STANDALONE_RE = re.compile(r"^[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ー・]+$")
_SENTENCE_END_RE = re.compile(r"[。！？!?][」』）)]*$")


def _display_width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def is_running_prose(texts: list[str]) -> bool:
    """True when most non-blank lines are full lines of wrapped prose (a speech, a report):
    at least 60 % of them are at least 80 % as wide as a full line of 40+ columns."""
    body = _prose_lines(texts)
    full = reference_width(body)
    if full < 40 or len(body) < 10:
        return False
    wide = sum(1 for t in body if _display_width(t) >= 0.8 * full)
    return wide >= 0.6 * len(body)


def _prose_lines(texts: list[str]) -> list[str]:
    """Non-blank, non-table lines without whitespace (justified lines often come out with a space
    after every character, which would double their measured width)."""
    return [re.sub(r"\s+", "", t) for t in texts if t.strip() and "\t" not in t]


def standalone_heading_lines(lines: list[Line]) -> set[int]:
    """Indices of stand-alone headings in running prose: a short line (≤ 10 characters once letter
    spacing is collapsed, only kanji/kana, no punctuation: 「総　務」「危機管理」) that follows a
    finished sentence (or starts the text) and is followed by a line at least half a full line
    wide. Only in documents of running prose (:func:`is_running_prose`); empty otherwise."""
    texts = [ln.text for ln in lines]
    if not is_running_prose(texts):
        return set()
    full = reference_width(_prose_lines(texts))
    nonblank = [k for k, t in enumerate(texts) if t.strip()]
    out: set[int] = set()
    for pos, k in enumerate(nonblank):
        s = heading_text(texts[k])
        if not (2 <= len(s) <= MAX_STANDALONE_CHARS and _STANDALONE_RE.match(s)):
            continue
        prev = texts[nonblank[pos - 1]].strip() if pos > 0 else ""
        nxt = texts[nonblank[pos + 1]].strip() if pos + 1 < len(nonblank) else ""
        if prev and not _SENTENCE_END_RE.search(prev):
            continue
        if _display_width(re.sub(r"\s+", "", nxt)) < 0.5 * full:
            continue
        out.add(k)
    return out


#: The kind of a heading found from the PDF layout alone (a line printed larger than the body
#: text, or bold, with no numbering): see :func:`layout_heading_keys`.
LAYOUT = "字形"
#: A layout heading is printed at least this many times the body text size (12 pt over 11 pt)…
LAYOUT_SIZE_RATIO = 1.08
#: …or bold, and has at most this many characters (whitespace removed).
MAX_LAYOUT_HEADING_CHARS = 40
_HAS_WORD_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fffA-Za-z]")
_BULLET_START = tuple("○●◎・※＊*■□◆◇▲△▼▽→⇒-－ー")


def body_size(pages: list[Page]) -> float:
    """The font size of the body text of ``pages`` (the size most visible characters of their
    :attr:`Page.lines` have); 0.0 without layout."""
    weights: dict[float, int] = {}
    for p in pages:
        for ln in p.lines:
            if ln.size > 0:
                weights[ln.size] = weights.get(ln.size, 0) + len(compact(ln.text))
    return max(weights, key=lambda k: (weights[k], -k)) if weights else 0.0


def is_layout_heading_line(text: str, size: float, bold: bool, body: float) -> bool:
    """True for a line the layout marks as a heading: printed at least
    :data:`LAYOUT_SIZE_RATIO` × the body size ``body``, or bold and not smaller than the body; and
    short (≤ :data:`MAX_LAYOUT_HEADING_CHARS`), with words, not a sentence (。), a bullet, a table
    row (tab), a table-of-contents entry or a page number."""
    if body <= 0 or size <= 0 or "\t" in text:
        return False
    if not (size >= LAYOUT_SIZE_RATIO * body or (bold and size >= body)):
        return False
    s = heading_text(text)
    c = compact(s)
    if not (2 <= len(c) <= MAX_LAYOUT_HEADING_CHARS) or not _HAS_WORD_RE.search(c):
        return False
    return not (s.endswith(("。", "．")) or s.startswith(_BULLET_START) or is_page_number_line(s) or is_toc_line(text))


def _same_style(a: LineInfo, b: LineInfo) -> bool:
    return abs(a.size - b.size) < 0.5 and a.bold == b.bold


def layout_heading_keys(pages: list[Page]) -> dict[tuple[int, str], bool]:
    """(page number, :func:`~corpus.normalize.compact` text) of the lines of ``pages`` that their
    PDF layout marks as headings (:func:`is_layout_heading_line`), each with whether it may be a
    heading without a number: it is set apart (the lines printed just before and after it on its
    page have another size or weight: not a line of a large-type paragraph), body-size text
    follows it on its page (not a cover page or a title over a numbered heading), has at most one
    number (not a table row of amounts), does not start with punctuation (reversed extraction)
    and its page has no table (:attr:`Page.tables`: bold header cells). Empty without layout."""
    body = body_size(pages)
    out: dict[tuple[int, str], bool] = {}
    for p in pages:
        shown = [ln for ln in p.lines if ln.text.strip() and ln.size > 0]
        for k, ln in enumerate(shown):
            if not is_layout_heading_line(ln.text, ln.size, ln.bold, body):
                continue
            near = shown[max(0, k - 1):k] + shown[k + 1:k + 2]
            c = compact(ln.text)
            after = shown[k + 1] if k + 1 < len(shown) else None
            alone = (
                not p.tables and not any(_same_style(ln, o) for o in near)
                and after is not None and after.size < LAYOUT_SIZE_RATIO * body
                and len(re.findall(r"\d+", c)) <= 1 and not c.startswith(tuple("。、，,．.！!？?）)」』"))
            )
            key = (p.number, c)
            out[key] = out.get(key, False) or alone
    return out


def emphasized_lines(lines: list[Line], keys: dict[tuple[int, str], bool]) -> dict[int, bool]:
    """Indices of ``lines`` whose (page, compact text) is in ``keys`` (:func:`layout_heading_keys`),
    each with whether it may be a heading without a number."""
    if not keys:
        return {}
    out: dict[int, bool] = {}
    for k, ln in enumerate(lines):
        if ln.text.strip():
            hit = keys.get((ln.page, compact(ln.text)))
            if hit is not None:
                out[k] = hit
    return out


def layout_heading(line: str, last: dict[str, int], *, unnumbered: bool = True) -> Heading | None:
    """The heading an emphasized line (printed large or bold) is: a numbered heading when it
    reads as one (the 、/length rule of a bare 「N 」 lifted), None when it reads as a numbered
    heading out of sequence, else (when ``unnumbered``) an unnumbered :data:`LAYOUT` heading (a
    label: it nests under the innermost numbered heading, and an open one is its sibling)."""
    h = classify_heading(line, check_sequence=True, last=last, emphasized=True)
    if h is not None:
        return h
    if not unnumbered or classify_heading(line, check_sequence=False, emphasized=True) is not None or is_toc_title(line):
        return None
    return Heading(LAYOUT, None, 0, heading_text(line))


@dataclass
class _Node:
    heading: Heading
    rank: float
    path: tuple[str, ...]
    lines: list[Line] = field(default_factory=list)
    has_children: bool = False


@dataclass
class OutlineSection:
    """One heading (or the preamble) with the lines of its own text (children excluded)."""

    section_path: tuple[str, ...]
    title: str
    lines: list[Line]
    heading_line: Line | None = None
    #: True for a stand-alone heading (see :func:`standalone_heading_lines`).
    standalone: bool = False


def parse_outline(lines: list[Line], doc_title: str, emphasized: dict[int, bool] | None = None) -> list[OutlineSection]:
    """Split ``lines`` into :class:`OutlineSection` s by the heading rules of the module doc.

    The first section is the preamble (text before any heading, titled ``doc_title``). A heading
    without text and without sub-headings is turned back into a text line of the preceding section.
    When the rules find fewer than ``MIN_RULE_HEADINGS`` headings, stand-alone short lines of
    running prose (:func:`standalone_heading_lines`) are headings too. ``emphasized`` are the
    indices of lines the PDF prints large or bold (:func:`emphasized_lines`; the flag: may be a
    heading without a number): they are headings by :func:`layout_heading` when the text rules
    do not make them one.
    """
    emphasized = emphasized or {}
    out = _parse_outline(lines, doc_title, set(), emphasized)
    if sum(1 for sec in out if sec.heading_line is not None) < MIN_RULE_HEADINGS:
        standalone = standalone_heading_lines(lines)
        if standalone:
            out = _parse_outline(lines, doc_title, standalone, emphasized)
    return out


def _parse_outline(lines: list[Line], doc_title: str, standalone: set[int], emphasized: dict[int, bool]) -> list[OutlineSection]:
    out: list[OutlineSection] = [OutlineSection((), doc_title, [])]
    stack: list[_Node] = []
    last: dict[str, int] = {}
    current: OutlineSection = out[0]

    def open_heading(h: Heading, ln: Line) -> None:
        nonlocal current
        # the open node that is closed without text or children becomes text
        if stack and not stack[-1].has_children and not any(x.text.strip() for x in stack[-1].lines):
            node = stack[-1]
            rank = _rank_for(h, stack)
            if rank <= node.rank:
                sec = out.pop()
                assert sec.heading_line is not None
                prev = out[-1]
                prev.lines.append(sec.heading_line)
        rank = _rank_for(h, stack)
        if h.rank is None:
            # a label: pop to an open sibling of the same kind, else nest under the top
            # an open label of the same kind is an ancestor: the new label is its sibling
            for k in range(len(stack) - 1, -1, -1):
                if stack[k].heading.kind == h.kind:
                    del stack[k:]
                    break
        else:
            while stack and stack[-1].rank >= rank:
                stack.pop()
        while stack and stack[-1].heading.kind == "目次":
            stack.pop()
        if stack:
            stack[-1].has_children = True
        path = tuple(n.heading.title for n in stack)
        node = _Node(h, rank, path)
        stack.append(node)
        current = OutlineSection(path, h.title, node.lines, heading_line=ln, standalone=h.kind == STANDALONE)
        out.append(current)
        if h.number:
            last[h.kind] = h.number

    for idx, ln in enumerate(lines):
        if is_toc_title(ln.text):
            stack.clear()
            node = _Node(Heading("目次", -10, 0, heading_text(ln.text)), -10, ())
            stack.append(node)
            current = OutlineSection((), node.heading.title, node.lines, heading_line=ln)
            out.append(current)
            continue
        h = classify_heading(ln.text, check_sequence=True, last=last)
        if h is None and idx in standalone:
            h = Heading(STANDALONE, None, 0, heading_text(ln.text))
        if h is None and idx in emphasized:
            h = layout_heading(ln.text, last, unnumbered=emphasized[idx])
        if h is not None and not (stack and stack[-1].heading.kind == "目次" and is_toc_line(ln.text)):
            open_heading(h, ln)
        else:
            current.lines.append(ln)
    # a trailing empty heading: keep as text of the previous section
    if len(out) > 1 and out[-1].heading_line is not None and not any(x.text.strip() for x in out[-1].lines):
        sec = out.pop()
        out[-1].lines.append(sec.heading_line)  # type: ignore[arg-type]
    return out


def _rank_for(h: Heading, stack: list[_Node]) -> float:
    if h.rank is not None:
        return h.rank
    for k in range(len(stack) - 1, -1, -1):
        if stack[k].heading.kind == h.kind:
            return stack[k].rank
    for k in range(len(stack) - 1, -1, -1):
        if stack[k].heading.rank is not None:
            return stack[k].rank + 0.5
    return stack[-1].rank + 0.5 if stack else -0.5


def section_item(sec: OutlineSection, style: WrapStyle | None = None) -> Item | None:
    """The :class:`Item` of one outline section (None when it has no text)."""
    body = [ln for ln in sec.lines]
    if not any(ln.text.strip() for ln in body):
        return None
    text = clean_display_text(
        "\n".join(ln.text for ln in body), style
    )
    if not text:
        return None
    pages = [ln.page for ln in body if ln.text.strip()]
    if sec.heading_line is not None:
        pages.append(sec.heading_line.page)
    # a stand-alone heading (「総務」 in a speech) is the only level there is: it is the section too
    path = sec.section_path + (sec.title,) if sec.standalone else sec.section_path
    return Item(
        section_path=path,
        title=sec.title,
        text=text,
        page_start=min(pages),
        page_end=max(pages),
        page_marks=page_marks(text, [(ln.page, ln.text) for ln in body]),
    )


def prose_items(pages: list[Page], doc_title: str) -> list[Item]:
    """Items of a prose document: one per heading that carries text (see module doc); on PDF
    pages with layout, lines printed large or bold are headings too (:func:`layout_heading`)."""
    lines = lines_of(pages)
    texts = [ln.text for ln in lines]
    style = wrap_style(texts)
    items: list[Item] = []
    emphasized = emphasized_lines(lines, layout_heading_keys(pages))
    for sec in parse_outline(lines, doc_title, emphasized):
        it = section_item(sec, style)
        if it is not None:
            items.append(it)
    return items
