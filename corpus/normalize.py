"""Text normalisation shared by every parser: comparison forms, display text, page furniture.

Two kinds of text leave this module:

- **comparison forms** (:func:`normalize_for_compare`, :func:`compact`): NFKC plus the mappings
  PDF extraction needs (CJK radicals that look like kanji, vertical presentation forms), private-use
  code points dropped. Used for matching, de-duplication and the nothing-lost check — never shown.
- **display text** (:func:`clean_display_text`): what a user reads and cites. It keeps the
  source's characters (no NFKC) but repairs extraction damage: hard wraps joined, letter-spaced
  headings collapsed, PUA bullets dropped.

:func:`strip_page_furniture` removes repeated page headers/footers and page-number lines;
:func:`split_at_page_number_lines` infers page breaks in text that only has lone page-number lines.
All functions are pure.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from corpus.records import LineInfo, Page

# --------------------------------------------------------------------------- comparison forms

#: CJK Radicals Supplement (U+2E80–U+2EFF) code points that PDF fonts emit instead of the
#: ordinary kanji. NFKC maps only ⺟ and ⻳; the rest are listed here.
RADICALS: dict[str, str] = {
    "\u2e85": "亻", "\u2e89": "刂", "\u2e8c": "小", "\u2e8d": "小", "\u2e8e": "兀",
    "\u2e96": "忄", "\u2e97": "心", "\u2e98": "扌", "\u2e99": "攵", "\u2e9b": "旡",
    "\u2e9c": "日", "\u2e9d": "月", "\u2e9e": "歹", "\u2e9f": "母", "\u2ea0": "民",
    "\u2ea1": "氵", "\u2ea2": "氺", "\u2ea3": "灬", "\u2ea4": "爫", "\u2ea6": "丬",
    "\u2ea7": "牛", "\u2ea8": "犭", "\u2ea9": "王", "\u2eaa": "疋", "\u2eab": "罒",
    "\u2eac": "示", "\u2ead": "礻", "\u2eae": "竹", "\u2eaf": "糸", "\u2eb0": "纟",
    "\u2eb2": "罒", "\u2eb3": "罓", "\u2eb6": "羊", "\u2eb7": "羊", "\u2eb9": "耂",
    "\u2ebb": "聿", "\u2ebc": "月", "\u2ebd": "臼", "\u2ebe": "艹", "\u2ebf": "艹",
    "\u2ec0": "艹", "\u2ec1": "虎", "\u2ec2": "衤", "\u2ec3": "西", "\u2ec4": "西",
    "\u2ec5": "见", "\u2ec6": "角", "\u2ec7": "角", "\u2ec8": "讠", "\u2ec9": "贝",
    "\u2eca": "足", "\u2ecb": "车", "\u2ecc": "辶", "\u2ecd": "辶", "\u2ece": "辶",
    "\u2ecf": "阝", "\u2ed0": "钅", "\u2ed1": "長", "\u2ed2": "镸", "\u2ed3": "长",
    "\u2ed4": "门", "\u2ed5": "阝", "\u2ed6": "阝", "\u2ed7": "雨", "\u2ed8": "青",
    "\u2ed9": "韦", "\u2eda": "页", "\u2edb": "风", "\u2edc": "飞", "\u2edd": "食",
    "\u2ede": "飠", "\u2edf": "飠", "\u2ee0": "饣", "\u2ee1": "首", "\u2ee2": "马",
    "\u2ee3": "骨", "\u2ee4": "鬼", "\u2ee5": "鱼", "\u2ee6": "鸟", "\u2ee7": "卤",
    "\u2ee8": "麦", "\u2ee9": "黄", "\u2eea": "黾", "\u2eeb": "斉", "\u2eec": "齐",
    "\u2eed": "歯", "\u2eee": "齿", "\u2eef": "竜", "\u2ef0": "龙", "\u2ef1": "龜",
    "\u2ef2": "亀", "\u2ef3": "龟",
}

#: Vertical presentation forms NFKC leaves alone (sesame dots) mapped to their horizontal kin.
_VERTICAL_EXTRA: dict[str, str] = {"\ufe45": "・", "\ufe46": "・"}

_TRANSLATE = str.maketrans({**RADICALS, **_VERTICAL_EXTRA})


def is_private_use(ch: str) -> bool:
    """True for code points of the private-use areas (BMP U+E000–U+F8FF, planes 15 and 16)."""
    cp = ord(ch)
    return 0xE000 <= cp <= 0xF8FF or cp >= 0xF0000


_PUA_RE = re.compile("[\ue000-\uf8ff\U000f0000-\U0010ffff]")


def drop_private_use(text: str) -> str:
    """``text`` without private-use code points (PDF fonts put bullets and icons there)."""
    return _PUA_RE.sub("", text)


def normalize_for_compare(text: str) -> str:
    """The comparison form of ``text``: NFKC, CJK radicals → kanji, vertical forms → horizontal,
    private-use code points dropped. Whitespace is kept (NFKC turns U+3000 into a space)."""
    text = drop_private_use(text).translate(_TRANSLATE)
    # NFKC covers Kangxi radicals (U+2F00–U+2FDF) and the vertical forms U+FE10–FE19/FE30–FE4F.
    return unicodedata.normalize("NFKC", text)


_WS_RE = re.compile(r"\s+")


def compact(text: str) -> str:
    """:func:`normalize_for_compare` with all whitespace removed (for containment checks)."""
    return _WS_RE.sub("", normalize_for_compare(text))


# --------------------------------------------------------------------------- line classes

#: Characters that begin a bullet line (bullets are not headings but start a new paragraph).
BULLET_CHARS = "○●◎◯・･■□◆◇▪▫▶►▷●★☆※➢➤✓✔〇-－‐*＊"

_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
_PAREN_NUM = "⑴⑵⑶⑷⑸⑹⑺⑻⑼⑽⑾⑿⒀⒁⒂⒃⒄⒅⒆⒇"
_DIGITS = "0-9０-９"
_KANJI_NUM = "一二三四五六七八九十"

#: A line that starts a heading or an enumerated entry (used to keep paragraph breaks).
_BLOCK_START_RE = re.compile(
    rf"^\s*(?:"
    rf"第[{_DIGITS}{_KANJI_NUM}]+[章節部編款項]"
    rf"|[（(][{_DIGITS}{_KANJI_NUM}]+[)）](?![、，,との])"
    rf"|[{_CIRCLED}{_PAREN_NUM}]"
    rf"|[{_DIGITS}]+[.．、)）]"
    rf"|[{_DIGITS}]{{1,2}}[\s　][^、，,。]{{1,38}}$"
    rf"|[ア-ン][\s　.．、]"
    rf"|[【＜<《〈≪\[［■◆]"
    rf"|方針[{_DIGITS}{_KANJI_NUM}]"
    rf"|[{re.escape(BULLET_CHARS)}]"
    rf")"
)


def starts_block(line: str) -> bool:
    """True when ``line`` begins a bullet, numbered entry or heading (a new paragraph)."""
    return bool(_BLOCK_START_RE.match(drop_private_use(line)))


_SENT_END = "。．！？!?」』）)"


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _is_ascii_word_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch in ",;:%&'\"")


# --------------------------------------------------------------------------- hard wraps


@dataclass(frozen=True)
class WrapStyle:
    """How a document was hard-wrapped, measured once on the whole document (see :func:`wrap_style`)
    so that parts of it are joined consistently.

    - ``full_width``: display width of a full line (90th percentile of the line widths);
    - ``double_spaced``: the extraction put a blank line after every line;
    - ``trailing_space_ends``: the extraction marks the end of a text block (paragraph, cell, label)
      with a trailing space while wrapped lines have none.
    """

    full_width: int = 0
    double_spaced: bool = False
    trailing_space_ends: bool = False


def wrap_style(lines: list[str]) -> WrapStyle:
    """Measure the :class:`WrapStyle` of a document's lines."""
    nonblank = [ln for ln in lines if ln.strip() and "\t" not in ln]
    trailing = sum(1 for ln in nonblank if ln.endswith((" ", "\u3000")))
    return WrapStyle(
        full_width=reference_width(nonblank),
        double_spaced=is_double_spaced(lines),
        trailing_space_ends=len(nonblank) >= 6 and 0.15 <= trailing / len(nonblank) <= 0.85,
    )


def join_wrapped_lines(lines: list[str], style: WrapStyle | None = None) -> str:
    """Join hard-wrapped lines into paragraphs separated by ``\\n``.

    Within a paragraph, lines are joined with nothing between Japanese characters and with a
    single space between Latin words (「財政運」+「営」→「財政運営」, 「public」+「private」→
    「public private」). A paragraph ends

    - at a blank line — unless the text is double-spaced (then single blank lines are ignored),
    - before a line that starts a bullet, numbered entry or heading, or an indented line,
    - after a line with a trailing space when the document marks block ends that way
      (``style.trailing_space_ends``); otherwise after a sentence-final 。！？ or after a line
      clearly shorter than a full line,
    - around table rows (lines with tabs), which are kept as they are.

    A line that begins with closing punctuation (「）」「、」「。」), or that closes a bracket the
    previous line left open, continues the previous one.
    ``style`` describes the whole document (default: measured on ``lines``).
    """
    style = style or wrap_style(lines)
    nonblank = [ln for ln in lines if ln.strip()]
    indented = [ln for ln in nonblank if ln[:1] in (" ", "\u3000")]
    use_indent = 0 < len(indented) < 0.5 * len(nonblank)
    paras: list[str] = []
    cur = ""
    prev_raw = ""
    blank_run = 0

    def flush() -> None:
        nonlocal cur
        if cur:
            paras.append(cur)
        cur = ""

    for raw in lines:
        if not raw.strip():
            blank_run += 1
            continue
        gap = blank_run
        blank_run = 0
        if "\t" in raw:
            flush()
            paras.append(raw.rstrip())
            prev_raw = ""
            continue
        line = raw.strip()
        if cur:
            if line[0] in _CONTINUES or (gap <= 1 and _closes_open_bracket(cur, line)):
                brk = False
            elif gap >= 2 or (gap == 1 and not style.double_spaced):
                brk = True
            else:
                if style.trailing_space_ends:
                    ends = prev_raw.endswith((" ", "\u3000"))
                else:
                    ends = _ends_paragraph(prev_raw.strip(), style.full_width)
                brk = ends or starts_block(line) or (use_indent and raw[:1] in (" ", "\u3000"))
            if brk:
                flush()
        if not cur:
            cur = line
        else:
            a, b = cur[-1], line[0]
            cur += (" " if _is_ascii_word_char(a) and _is_ascii_word_char(b) else "") + line
        prev_raw = raw
    flush()
    return "\n".join(paras)


_BRACKETS = {"(": ")", "（": "）", "「": "」", "『": "』", "【": "】", "［": "］", "[": "]"}


def _closes_open_bracket(cur: str, line: str) -> bool:
    """True when ``cur`` ends inside an open bracket that ``line`` closes (「(仕事と生活の調」+「和)」)."""
    tail = cur[-80:]
    for o, c in _BRACKETS.items():
        if tail.count(o) > tail.count(c) and tail.rfind(o) > tail.rfind(c):
            head = line[:40]
            ci = head.find(c)
            oi = head.find(o)
            if ci >= 0 and (oi < 0 or ci < oi):
                return True
    return False


_CONTINUES = "）)」』】〕］]、。，,．ー"


def reference_width(lines: list[str]) -> int:
    """Display width of a "full" line: the 90th percentile of the non-table lines' widths."""
    widths = sorted(_width(ln.strip()) for ln in lines if ln.strip() and "\t" not in ln)
    if not widths:
        return 0
    return widths[min(len(widths) - 1, int(len(widths) * 0.9))]


def is_double_spaced(lines: list[str]) -> bool:
    """True when most consecutive non-blank lines are separated by exactly one blank line
    (the extraction put a blank line after every wrapped line)."""
    gaps: list[int] = []
    run = -1
    for ln in lines:
        if ln.strip():
            if run >= 0:
                gaps.append(run)
            run = 0
        elif run >= 0:
            run += 1
    if len(gaps) < 4:
        return False
    return sum(1 for g in gaps if g == 1) >= 0.6 * len(gaps)


def _ends_paragraph(prev: str, full: int) -> bool:
    if not prev:
        return True
    if prev[-1] in "。！？!?":
        return True
    # a line clearly shorter than the block's full width ends its paragraph
    return full >= 16 and _width(prev) < full * 0.7


# --------------------------------------------------------------------------- display text

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ー"
_SPACED_RUN_RE = re.compile(rf"(?<![^\s])[{_CJK}](?:[ \u3000][{_CJK}]){{2,}}(?![^\s])")
_SPACED_PAIR_LINE_RE = re.compile(rf"^([ \u3000]*)([{_CJK}])[ \u3000]+([{_CJK}])([ \u3000]*)$")
_SINGLE_CJK_LINE_RE = re.compile(rf"^[ \u3000]*[{_CJK}][ \u3000]*$")


def collapse_letter_spacing(line: str) -> str:
    """Collapse letter-spaced runs in one line: 「本 年 度 予 算 額」→「本年度予算額」.

    A run is ≥3 single CJK characters separated by single (full-width) spaces; a line that is
    exactly two spaced CJK characters (「備 考」) is collapsed too.
    """
    m = _SPACED_PAIR_LINE_RE.match(line)
    if m:
        return m.group(1) + m.group(2) + m.group(3) + m.group(4)
    return _SPACED_RUN_RE.sub(lambda mm: re.sub(r"[ \u3000]", "", mm.group(0)), line)


def collapse_vertical_labels(lines: list[str], min_run: int = 3) -> list[str]:
    """Join runs of ≥ ``min_run`` lines that are each one CJK character (blank lines between
    them allowed): a vertical label set one character per line, 後/期/基/本/計/画 → 後期基本計画."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        chars: list[str] = []
        j = i
        last = i
        while j < len(lines) and (_SINGLE_CJK_LINE_RE.match(lines[j]) or (chars and not lines[j].strip())):
            if lines[j].strip():
                chars.append(lines[j].strip())
                last = j
            j += 1
        if len(chars) >= min_run:
            out.append("".join(chars) + " ")
            i = last + 1
        else:
            out.append(lines[i])
            i += 1
    return out


def clean_display_text(text: str, style: WrapStyle | None = None) -> str:
    """The faithful display text of ``text``.

    Private-use bullets dropped, letter-spaced headings and one-character-per-line labels
    collapsed, hard wraps joined (:func:`join_wrapped_lines`; pass the whole document's
    :func:`wrap_style` when cleaning a part of it), trailing spaces stripped.
    No NFKC: the source's characters are kept.
    """
    text = drop_private_use(text).replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    raw = text.split("\n")
    if style is None:
        style = wrap_style(raw)
    # letter-spacing collapse keeps a trailing space (a block-end mark) where there was one
    lines = [collapse_letter_spacing(ln) for ln in raw]
    lines = collapse_vertical_labels(lines)
    return "\n".join(ln.rstrip() for ln in join_wrapped_lines(lines, style).split("\n")).strip()


# --------------------------------------------------------------------------- pages of display text


def _significant(ch: str) -> bool:
    """True for a character that display cleaning never drops (not whitespace, not private use)."""
    return not ch.isspace() and not is_private_use(ch)


def page_marks(text: str, lines: list[tuple[int, str]], *, anchor: int = 8) -> tuple[tuple[int, int], ...]:
    """Where each page's text begins in ``text``, a display text made from ``lines`` ((page, line)
    pairs): (offset, page) pairs in text order, the first at offset 0.

    :func:`clean_display_text` only drops whitespace and private-use characters, so the other
    characters of ``text`` are those of ``lines`` in order; each takes the page of its source
    character. When ``text`` is not exactly such a copy (a parser reordered cells or added a
    heading), a character that does not match is looked up again with the next ``anchor``
    characters from the current source position (forward only); one found nowhere takes the page
    before it. Empty when no character of ``text`` is found in ``lines``.
    """
    src_chars: list[str] = []
    src_pages: list[int] = []
    for page, line in lines:
        for ch in line:
            if _significant(ch):
                src_chars.append(ch)
                src_pages.append(page)
    src = "".join(src_chars)
    sig = [(i, ch) for i, ch in enumerate(text) if _significant(ch)]
    probe_text = "".join(ch for _, ch in sig)
    marks: list[tuple[int, int]] = []
    j = 0
    for k, (i, ch) in enumerate(sig):
        if j < len(src) and src[j] == ch:
            page = src_pages[j]
            j += 1
        else:
            found = src.find(probe_text[k:k + anchor], j)
            if found < 0:
                continue
            page = src_pages[found]
            j = found + 1
        if not marks:
            marks.append((0, page))
        elif marks[-1][1] != page:
            marks.append((i, page))
    return tuple(marks)


# --------------------------------------------------------------------------- page furniture

_DASH = "-－‐―—–ー"
_PAGE_NUMBER_RES = [
    re.compile(rf"^[{_DASH}]?\s*[{_DIGITS}]{{1,4}}\s*[{_DASH}]?$"),  # 3, ３, - 3 -
    re.compile(rf"^[{_DIGITS}]{{1,4}}\s*[/／]\s*[{_DIGITS}]{{1,4}}$"),  # 3/12
    re.compile(rf"^(?:[PpＰｐ][.．]?|[pｐ][.．]?)\s*[{_DIGITS}]{{1,4}}$"),  # P.3
    re.compile(rf"^[{_DASH}]\s*[{_DIGITS}]{{1,4}}\s*[{_DASH}]$"),
]


def page_number_value(line: str) -> int | None:
    """The page number a lone page-number line shows (「- 3 -」「３」「3/12」「P.3」), else None."""
    s = line.strip()
    if not s or len(s) > 12:
        return None
    for rx in _PAGE_NUMBER_RES:
        if rx.match(s):
            digits = re.findall(rf"[{_DIGITS}]+", s)
            return int(unicodedata.normalize("NFKC", digits[0]))
    return None


def is_page_number_line(line: str) -> bool:
    """True for a line that is only a page number (see :func:`page_number_value`)."""
    return page_number_value(line) is not None


_EDGE_NUMBER_RE = re.compile(rf"^[{_DASH}]?\d+[{_DASH}]?|[{_DASH}]?\d+[{_DASH}]?$")


_DASHED_NUMBER_RE = re.compile(rf"^[{_DASH}][\s　]*[{_DIGITS}]{{1,4}}[\s　]*[{_DASH}]$")


def is_dashed_page_number(line: str) -> bool:
    """True for a printed page number between dashes on a line of its own: 「- 1 -」「― 162 ―」
    「－　1　－」 (a bare 「3」 could be a table cell; the dashes make it a page number)."""
    return bool(_DASHED_NUMBER_RE.match(line.strip()))


def _furniture_key(line: str) -> str:
    # page headers often carry the page number at one end, bare or in dashes (「― 162 ― 農業集落」):
    # compare with that number masked
    return _EDGE_NUMBER_RE.sub("#", compact(line))


#: A line printed within this share of the page height from the top or bottom edge is in the
#: margin band where running headers, footers and page numbers sit (PDF layout).
MARGIN_BAND = 0.08
_ANY_DIGITS_RE = re.compile(rf"[{_DIGITS}]+")


def aligned_lines(page: Page) -> tuple[LineInfo, ...]:
    """``page.lines`` when they still match the lines of ``page.text`` one to one (same count,
    same text without whitespace), else empty."""
    lines = page.text.split("\n")
    if not page.lines or len(page.lines) != len(lines):
        return ()
    if any(compact(a) != compact(b.text) for a, b in zip(lines, page.lines)):
        return ()
    return page.lines


def in_margin_band(info: LineInfo, band: float = MARGIN_BAND) -> bool:
    """True when the line is printed in the top or bottom margin band of its page."""
    if info.page_height <= 0 or info.size <= 0:
        return False
    return info.bottom <= band * info.page_height or info.top >= (1 - band) * info.page_height


def _margin_key(line: str) -> str:
    """A margin line compared across pages: whitespace removed, every number masked
    (「令和7年 2月号 - 3 -」 and 「令和7年 2月号 - 4 -」 are the same running footer)."""
    return _ANY_DIGITS_RE.sub("#", compact(line))


def margin_furniture(pages: list[Page]) -> dict[int, set[int]]:
    """Line indices (per page number) of running headers/footers found by position: lines in the
    margin band (:func:`in_margin_band`) that are a bare page number, or whose text with numbers
    masked is in the margin band of at least 3 pages and 40 % of the pages with layout. Pages
    without (aligned) layout get nothing."""
    layouts = {p.number: aligned_lines(p) for p in pages}
    with_layout = [n for n, ls in layouts.items() if ls]
    counts: Counter[str] = Counter()
    for n in with_layout:
        keys = {_margin_key(ln.text) for ln in layouts[n] if ln.text.strip() and in_margin_band(ln)}
        counts.update(k for k in keys if k.strip("#"))
    threshold = max(3, int(len(with_layout) * 0.4 + 0.999))
    out: dict[int, set[int]] = {}
    for n in with_layout:
        hits = {
            k for k, ln in enumerate(layouts[n])
            if ln.text.strip() and in_margin_band(ln)
            and (is_page_number_line(ln.text) or counts[_margin_key(ln.text)] >= threshold)
        }
        if hits:
            out[n] = hits
    return out


def strip_page_furniture(pages: list[Page], *, edge_lines: int = 3) -> tuple[list[Page], list[str]]:
    """Remove repeated page headers/footers and page-number lines.

    A header/footer is a line among the first/last ``edge_lines`` non-blank lines of a page whose
    text (a number at either end masked, also one in dashes: 「― 162 ― 農業集落」) appears at the
    edges of at least 3 pages and 40 % of all pages. Page-number lines are removed at page edges;
    a page number between dashes (:func:`is_dashed_page_number`) anywhere on a page when at least
    two pages have one. On PDF pages with layout (:attr:`Page.lines`), lines in the top/bottom
    margin band that repeat across pages or are a bare page number are removed too
    (:func:`margin_furniture`). Returns the cleaned pages (same numbers and labels, the layout of
    the kept lines) and the removed lines (as they were), for the nothing-lost check.
    """
    removed: list[str] = []

    def edges(text: str) -> list[int]:
        idx = [i for i, ln in enumerate(text.split("\n")) if ln.strip()]
        return sorted(set(idx[:edge_lines] + idx[-edge_lines:]))

    counts: Counter[str] = Counter()
    if len(pages) >= 3:
        for p in pages:
            lines = p.text.split("\n")
            keys = {_furniture_key(lines[i]) for i in edges(p.text)}
            counts.update(k for k in keys if k and k != "#")
    threshold = max(3, int(len(pages) * 0.4 + 0.999))
    repeated = {k for k, n in counts.items() if n >= threshold}

    # a printed page number in dashes (「- 165 -」「― 162 ―」「－　1　－」) may come out mid-page
    # (extraction order); when several pages have one, it is furniture wherever it is
    dashed = sum(1 for p in pages if any(is_dashed_page_number(ln) for ln in p.text.split("\n")))
    by_position = margin_furniture(pages)
    out: list[Page] = []
    for p in pages:
        lines = p.text.split("\n")
        drop: set[int] = set()
        for i in edges(p.text):
            if _furniture_key(lines[i]) in repeated or (len(pages) > 1 and is_page_number_line(lines[i])):
                drop.add(i)
        if dashed >= 2:
            drop.update(i for i, ln in enumerate(lines) if is_dashed_page_number(ln))
        drop.update(by_position.get(p.number, ()))
        removed.extend(lines[i] for i in sorted(drop))
        kept = "\n".join(ln for i, ln in enumerate(lines) if i not in drop)
        layout = aligned_lines(p)
        out.append(Page(
            number=p.number, text=kept, label=p.label,
            lines=tuple(ln for i, ln in enumerate(layout) if i not in drop),
        ))
    return out, removed


def split_at_page_number_lines(text: str, first_page: int = 1, *, max_step: int = 40) -> tuple[list[Page], list[str]]:
    """Split running text (no form feeds) into pages at lone page-number lines.

    Candidates are lines that are only a number (「3」「- 3 -」). The longest chain of candidates
    whose values increase in document order (by 1 to ``max_step``: excerpts skip pages; numeric
    table cells do not form such chains) and starts at a small value (≤ 3, or any value when the
    chain has ≥ 3 members) marks pages. If the first marker comes before any text, markers are page
    headers (the text after a marker is on that page); otherwise they are footers (the text before a
    marker is on that page). The marker lines are returned as removed. With fewer than two markers
    the text stays one page ``first_page``.
    """
    lines = text.split("\n")
    cands = [(i, page_number_value(ln)) for i, ln in enumerate(lines) if _lone_number(ln)]
    cands = [(i, v) for i, v in cands if v is not None and v > 0]
    best: list[tuple[int, int]] = []
    n = len(cands)
    # longest increasing chain (O(n^2) over a handful of candidates)
    chain_len = [1] * n
    back = [-1] * n
    for k in range(n):
        for m in range(k):
            if 0 < cands[k][1] - cands[m][1] <= max_step and chain_len[m] + 1 > chain_len[k]:
                chain_len[k] = chain_len[m] + 1
                back[k] = m
    for k in sorted(range(n), key=lambda x: -chain_len[x]):
        chain = []
        j = k
        while j >= 0:
            chain.append(cands[j])
            j = back[j]
        chain.reverse()
        if len(chain) >= 2 and (chain[0][1] <= 3 or len(chain) >= 3):
            best = chain
            break
    if len(best) < 2:
        return [Page(number=first_page, text=text)], []
    header_style = not any(ln.strip() for ln in lines[: best[0][0]])
    pages: list[Page] = []
    removed = [lines[i] for i, _ in best]
    if header_style:
        for k, (i, v) in enumerate(best):
            end = best[k + 1][0] if k + 1 < len(best) else len(lines)
            pages.append(Page(number=v, text="\n".join(lines[i + 1:end])))
    else:
        prev = 0
        for i, v in best:
            pages.append(Page(number=v, text="\n".join(lines[prev:i])))
            prev = i + 1
        tail = "\n".join(lines[prev:])
        if tail.strip():
            pages.append(Page(number=best[-1][1] + 1, text=tail))
    return pages, removed


def _lone_number(line: str) -> bool:
    # only plain numbers and 「- n -」 forms mark page ends in running text (not 「P.3」 references)
    s = line.strip()
    return bool(re.fullmatch(rf"[{_DASH}]?\s*[{_DIGITS}]{{1,4}}\s*[{_DASH}]?", s))
