"""The progress-table parser: one :class:`~corpus.records.Item` per row of a 取組状況 table.

Shape handled (会津若松市「行財政改革…」令和6年度の取組状況, text extracted from a PDF):

- every page repeats a section heading (「⑴　持続可能な財政運営」) and the header line
  「改革項目 具体的取組 内容 所管課 今後の課題・方向性」 (sometimes with 「R6取組状況」 glued on,
  or on a line of its own a few lines further down); the document title line repeats too, glued
  under the last line of the previous page;
- department (所管課) cells of some rows *float* to the top of the page, in row order, before the
  first 改革項目 cell (「財政課」「財政課」…); a floated cell may carry a status glued on the same
  line (「総務課 　財務事務の電子決裁導入検討を行った。」);
- the page body is a sequence of blank-line separated cells. Cells of one column have one line
  width: 改革項目/具体的取組 ≈ 5 full-width characters, 内容 ≈ 9, 所管課 ≈ 4, R6取組状況 and
  今後の課題・方向性 ≈ 20. Cells of a merged (row-spanning) 改革項目 or 具体的取組 appear once;
- status and direction paragraphs begin with 「　」 (or 【部署名】 when several departments report).

The parser classifies each cell by width and first character, runs a small state machine
(改革項目 → 具体的取組 → 内容 → [所管課] → status/direction cells), then hands the floated
departments to the rows of the page that have none, in order. See docs/tables.md.

All functions are pure.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from corpus.records import Item, Page

from corpus.normalize import compact as _compact, starts_block as _starts_block


__all__ = [
    "TableParse",
    "looks_like_progress_table",
    "parse_progress_table",
    "parse_progress_table_detailed",
    "split_table_pages",
]

# --------------------------------------------------------------------------- vocabulary

#: Column labels that can appear in the header line of a progress table.
_HEADER_WORDS = ("改革項目", "具体的取組", "取組項目", "内容", "所管課", "担当課", "取組状況",
                 "今後の課題", "方向性", "実施状況")
_ITEM_COLS = ("改革項目", "具体的取組", "取組項目", "実施項目")
_OWNER_COLS = ("所管課", "担当課", "取組状況", "実施状況")
_STATUS_LABEL_RE = re.compile(r"(?:R|Ｒ|令和|H|Ｈ|平成)?[0-9０-９元]*(?:年度)?(?:取組|実施)状況")

_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
_PAREN_NUM = "⑴⑵⑶⑷⑸⑹⑺⑻⑼⑽⑾⑿⒀⒁⒂⒃⒄⒅⒆⒇"
#: A section heading printed above the table on every page: 「⑴　持続可能な財政運営」.
_SECTION_RE = re.compile(rf"^\s*(?:[{_PAREN_NUM}]|[（(][0-9０-９]+[)）])[\s　]*\S.{{0,40}}$")
#: A department name (used only where position alone cannot tell, e.g. floated cells).
_DEPT_RE = re.compile(r"(?:課|室|局|所|部|センター|係|館|院|班|委員会|事務局)(?:[（(][^）)]*[）)])?$")
_DEPT_GLUED_RE = re.compile(r"^(\S{2,14}?(?:課|室|局|所|センター|係)) +(\u3000?\S.*)$")
#: Status and direction paragraphs start like this (a new cell when it opens a block).
_CELL_START_CHARS = "\u3000 "
_LABEL_RE = re.compile(r"^【([^】]{1,20})】")
#: Lines of a list (「R4.4.1　941名」「R3：…」) each keep their own line.
_LIST_HEAD_RE = re.compile(r"^[A-Za-zＡ-Ｚａ-ｚ]?[0-9０-９]+[.．:：]")

#: Column widths in display units (full-width = 2). 改革項目/具体的取組 cells are ≤ 10 wide,
#: 所管課 ≤ 8, 内容 16–19, status/direction ≈ 40. Limits sit between the clusters.
NARROW_MAX = 12
MEDIUM_MAX = 26


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WFA" else 1 for c in s)


def _is_blank(line: str) -> bool:
    # a line holding only U+3000 is NOT blank: it opens a paragraph (「　」 then the text)
    return not line.strip(" \t\r\f\v")


# --------------------------------------------------------------------------- detection


def _is_header_line(line: str) -> bool:
    s = line.strip()
    if not s or _width(s) > 120:
        return False
    words = [w for w in _HEADER_WORDS if w in s]
    return (len(words) >= 3 and any(w in s for w in _ITEM_COLS)
            and any(w in s for w in _OWNER_COLS))


def looks_like_progress_table(text: str) -> bool:
    """True when ``text`` holds a progress table of the 会津若松市 shape.

    Decided from the header line alone (a short line naming ≥ 3 column labels, one of
    改革項目/具体的取組/取組項目 and one of 所管課/担当課/取組状況), not from the file name.
    """
    return any(_is_header_line(ln) for ln in text.splitlines())


# --------------------------------------------------------------------------- pages


@dataclass
class _Line:
    text: str
    page: int  # source page number (Page.number)


@dataclass
class _TablePage:
    number: int
    section: str  # section heading, display form 「⑴ 持続可能な財政運営」
    body: list[str]  # lines after the header, furniture removed
    header: str


@dataclass
class TableParse:
    """What :func:`parse_progress_table_detailed` found, for tests and ingest messages."""

    items: list[Item]
    #: rows (Items with a department column) per table page, keyed by page number
    rows_per_page: dict[int, int] = field(default_factory=dict)
    #: department cells (inline and floated) per table page
    departments_per_page: dict[int, int] = field(default_factory=dict)
    #: lines removed as page furniture (repeated header, section heading, title line)
    furniture: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _section_display(line: str) -> str:
    return re.sub(r"[\s\u3000]+", " ", line.strip())


def split_table_pages(pages: list[Page]) -> tuple[list[str], list[_TablePage], list[str]]:
    """Split the document at its repeated header lines.

    Returns (preamble lines before the first header, table pages, furniture lines removed).
    A table page's number is the ordinal of its header when the input is a single page (a .txt
    without form feeds), else the number of the input page holding its header.
    """
    lines: list[_Line] = []
    for p in pages:
        for ln in p.text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").split("\n"):
            lines.append(_Line(ln, p.number))
    headers = [i for i, ln in enumerate(lines) if _is_header_line(ln.text)]
    if not headers:
        return [ln.text for ln in lines], [], []
    counts = Counter(ln.text.strip() for ln in lines if ln.text.strip())

    # furniture above each header: its section heading and the repeated title line
    furniture_idx: set[int] = set()
    section_at: dict[int, str] = {}
    for k, h in enumerate(headers):
        j = h - 1
        seen = 0
        while j >= 0 and seen < 4:
            s = lines[j].text.strip()
            if not s:
                j -= 1
                continue
            if _SECTION_RE.match(s) and _width(s) <= 70:
                section_at.setdefault(h, _section_display(s))
                furniture_idx.add(j)
            elif counts[s] >= 2 and _width(s) > 24 and not _is_header_line(s):
                furniture_idx.add(j)  # the repeated title line
            else:
                break
            seen += 1
            j -= 1
    # keep the first occurrence of the title line: it is the document's title, not furniture
    first = headers[0]
    preamble_idx = [i for i in range(first) if lines[i].text.strip()]
    for i in preamble_idx:
        s = lines[i].text.strip()
        if not _SECTION_RE.match(s):
            furniture_idx.discard(i)

    furniture = [lines[i].text for i in sorted(furniture_idx)] + [lines[h].text for h in headers]
    preamble = [lines[i].text for i in range(first) if i not in furniture_idx]
    single = len(pages) <= 1
    out: list[_TablePage] = []
    section = ""
    for k, h in enumerate(headers):
        end = headers[k + 1] if k + 1 < len(headers) else len(lines)
        section = section_at.get(h, section)
        body = [lines[i].text for i in range(h + 1, end) if i not in furniture_idx]
        number = k + 1 if single else lines[h].page
        out.append(_TablePage(number, section, body, lines[h].text.strip()))
    return preamble, out, furniture


# --------------------------------------------------------------------------- blocks and cells


@dataclass
class _Block:
    lines: list[str]

    @property
    def width(self) -> int:
        return max(_width(ln.strip(" ")) for ln in self.lines)

    @property
    def first(self) -> str:
        return self.lines[0]

    @property
    def text(self) -> str:
        return "".join(ln.strip() for ln in self.lines)


def _blocks(lines: list[str]) -> list[_Block]:
    out: list[_Block] = []
    cur: list[str] = []
    for ln in lines:
        if _is_blank(ln):
            if cur:
                out.append(_Block(cur))
                cur = []
        else:
            cur.append(ln.rstrip(" \t\r"))
    if cur:
        out.append(_Block(cur))
    return out


def _kana(ch: str) -> bool:
    return "\u3041" <= ch <= "\u30ff" and ch not in "・ー"


def _ascii_word(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch in ",;:%&'\"")


def _para_start(line: str) -> bool:
    # a bullet/label/numbered entry opens a paragraph, but 「4.9％であり」 is a wrapped decimal
    return _starts_block(line) and not re.match(r"^[0-9０-９]+[.．][0-9０-９]", line)


def _join_cell(lines: list[str], *, wide: bool, full: int = 0) -> str:
    """Join the hard-wrapped lines of one cell; paragraphs are separated by ``\\n``.

    Between two lines nothing is inserted (a space only between two Latin word characters).
    A new paragraph starts before a line opening with 「　」 or a bullet/label (【…】 ※ ・ …),
    after a sentence end on a line shorter than the cell's full lines, between list lines
    (「R4.4.1　941名」), and — in wide cells — after a clearly short line unless a word was cut
    (kana on both sides). Leading 「　」 is kept; other leading/trailing spaces are dropped.
    """
    # a line holding only 「　」 opens the next line's paragraph
    merged: list[str] = []
    pending = ""
    for ln in lines:
        if _is_blank(ln):
            continue
        if not ln.strip():
            pending += "\u3000"
            continue
        merged.append(pending + ln.rstrip(" \t").lstrip(" \t") if pending else ln.strip(" \t"))
        pending = ""
    if pending and not merged:
        return pending
    full = max([full, *(_width(ln) for ln in merged)])
    paras: list[str] = []
    cur = ""
    prev = ""
    for ln in merged:
        if cur:
            brk = (
                ln[0] in _CELL_START_CHARS
                or _para_start(ln)
                or (prev[-1] in "。！？．" and _width(prev) < full - 2)
                or (_LIST_HEAD_RE.match(prev) is not None and _LIST_HEAD_RE.match(ln) is not None)
                or (wide and full >= 30 and _width(prev) < full * 0.6
                    and not (_kana(prev[-1]) and _kana(ln[0])))
            )
            if brk:
                paras.append(cur)
                cur = ln
            else:
                cur += (" " if _ascii_word(cur[-1]) and _ascii_word(ln[0]) else "") + ln
        else:
            cur = ln
        prev = ln
    if cur:
        paras.append(cur)
    return "\n".join(paras)


@dataclass
class _Row:
    page: int
    section: str
    kaikaku: str
    torikumi: str
    content: list[str] = field(default_factory=list)
    dept: list[str] = field(default_factory=list)
    cells: list[_Block] = field(default_factory=list)
    glued_status: str = ""
    page_end: int = 0


def _label(block: _Block) -> str | None:
    m = _LABEL_RE.match(block.first.strip())
    return m.group(1) if m else None


def _group_cells(blocks: list[_Block]) -> list[list[_Block]]:
    """Group the wide blocks of one row into cells (status first, then direction).

    A block opening with 「　」 starts a new cell; a block opening otherwise (「R4.4.1…」
    「（時間外勤務の状況）」) continues the previous one. Blocks labelled 【部署】 stay in one cell
    until a label repeats (【人事課】【情報戦略課】 | 【人事課】【情報統計課】).
    """
    cells: list[list[_Block]] = []
    labels: list[set[str]] = []
    for b in blocks:
        lab = _label(b)
        first = b.first
        if not cells:
            cells.append([b])
            labels.append({lab} if lab else set())
        elif lab is not None:
            if labels[-1] and lab not in labels[-1]:
                cells[-1].append(b)
                labels[-1].add(lab)
            else:
                cells.append([b])
                labels.append({lab})
        elif first[:1] in _CELL_START_CHARS:
            cells.append([b])
            labels.append(set())
        else:
            cells[-1].append(b)
    return cells


def _split_glued_line(block: _Block) -> list[list[_Block]] | None:
    """「　令和6年10月に導入完了 　令和6年10月に導入完了。」: status and direction on one line."""
    if len(block.lines) != 1:
        return None
    m = re.match(r"^(\u3000?\S.*?\S) (\u3000\S.*)$", block.first.strip(" "))
    if not m:
        return None
    return [[_Block([m.group(1)])], [_Block([m.group(2)])]]


def _cell_text(blocks: list[_Block]) -> str:
    # paragraphs of separate blocks stay separate: join each block (short-line rule against the
    # cell's full width), then the blocks by \n
    full = max(b.width for b in blocks)
    return "\n".join(_join_cell(b.lines, wide=True, full=full) for b in blocks)


# --------------------------------------------------------------------------- the parser


def _is_cell_block(b: _Block) -> bool:
    return b.first[:1] in _CELL_START_CHARS or _label(b) is not None or b.width > MEDIUM_MAX


def _is_kaikaku(b: _Block) -> bool:
    return b.first.strip()[:1] in _CIRCLED and b.width <= NARROW_MAX


def _floated(body: list[_Block]) -> tuple[list[tuple[str, str]], int, list[str]]:
    """The floated department cells at the top of a page: [(department, glued status)], the
    index of the first body block after them, and the lines dropped as header pieces."""
    depts: list[tuple[str, str]] = []
    dropped: list[str] = []
    has_kaikaku = any(_is_kaikaku(b) for b in body)
    i = 0
    while i < len(body):
        b = body[i]
        t = b.text
        if _STATUS_LABEL_RE.fullmatch(t) and len(b.lines) == 1:
            dropped.append(b.first)  # 「R6取組状況」: the header's last label on a line of its own
            i += 1
            continue
        if _is_kaikaku(b):
            break
        m = _DEPT_GLUED_RE.match(b.first.strip()) if len(b.lines) == 1 else None
        if m and b.width > NARROW_MAX:
            depts.append((m.group(1), m.group(2)))
            i += 1
            continue
        if b.width <= NARROW_MAX and (has_kaikaku or _DEPT_RE.search(t)):
            depts.append((_join_cell(b.lines, wide=False), ""))
            i += 1
            continue
        break
    return depts, i, dropped


def parse_progress_table_detailed(pages: list[Page]) -> TableParse:
    """Parse a progress table; like :func:`parse_progress_table` plus counts and warnings."""
    preamble, tpages, furniture = split_table_pages(pages)
    items: list[Item] = []
    warnings: list[str] = []
    result = TableParse(items=items, furniture=furniture, warnings=warnings)

    first_page = tpages[0].number if tpages else (pages[0].number if pages else 1)
    pre = _join_cell([ln for ln in preamble if not _is_blank(ln)], wide=True).strip()
    if pre:
        items.append(Item(section_path=(), title=pre.split("\n")[0], text=pre,
                          page_start=first_page, page_end=first_page))

    status_label = "取組状況"
    for tp in tpages:
        m = _STATUS_LABEL_RE.search(tp.header)
        if m:
            status_label = m.group(0)
            break

    rows: list[_Row] = []
    kaikaku = ""
    torikumi = ""
    section = ""
    for tp in tpages:
        if tp.section != section:
            section, kaikaku, torikumi = tp.section, "", ""
        body = _blocks(tp.body)
        floated, start, dropped = _floated(body)
        for d in dropped:
            m2 = _STATUS_LABEL_RE.fullmatch(d.strip())
            if m2:
                status_label = m2.group(0)
        result.furniture.extend(dropped)
        page_rows: list[_Row] = []
        inline = 0
        state = "start"  # start | kaikaku | torikumi | content | dept | cells
        orphans: list[_Block] = []
        pending_cells: list[_Block] = []
        blocks = body[start:]
        for k, b in enumerate(blocks):
            nxt = blocks[k + 1] if k + 1 < len(blocks) else None
            row = page_rows[-1] if page_rows else None
            if _is_cell_block(b):
                if row is None:
                    pending_cells.append(b)  # continues the last row of the previous page
                else:
                    row.cells.append(b)
                state = "cells"
            elif _is_kaikaku(b):
                kaikaku, torikumi = _join_cell(b.lines, wide=False), ""
                state = "kaikaku"
            elif b.width <= NARROW_MAX:
                if state == "content" and row is not None:
                    row.dept = b.lines
                    inline += 1
                    state = "dept"
                elif state == "torikumi":
                    torikumi = _join_cell([torikumi, *b.lines], wide=False)
                elif state == "cells" and row is not None and (nxt is None or _is_cell_block(nxt)):
                    row.cells.append(b)  # a short line of a status list
                else:
                    torikumi = _join_cell(b.lines, wide=False)
                    state = "torikumi"
            else:  # medium: a 内容 cell (or a note under one, or a short status list)
                if state == "content" and row is not None:
                    row.content.extend(["", *b.lines])
                elif state in ("cells", "dept") and row is not None and not b.text.endswith("。"):
                    row.cells.append(b)
                else:
                    if not torikumi and not kaikaku:
                        warnings.append(f"p.{tp.number}: 内容 without 改革項目/具体的取組: {b.text[:20]}")
                    page_rows.append(_Row(tp.number, section, kaikaku, torikumi, list(b.lines)))
                    state = "content"
        if pending_cells:
            if rows:
                rows[-1].cells.extend(pending_cells)
                rows[-1].page_end = tp.number
            else:
                orphans.extend(pending_cells)

        # floated departments go to the rows without an inline one, in order
        need = [r for r in page_rows if not r.dept]
        if len(floated) != len(need):
            warnings.append(
                f"p.{tp.number}: {len(floated)} floated 所管課 cells for {len(need)} rows without one"
            )
        for r, (d, glued) in zip(need, floated):
            r.dept = [d]
            r.glued_status = glued
        for r in need[len(floated):]:
            prev = [x for x in page_rows if x.dept and x is not r]
            r.dept = prev[-1].dept if prev else ["（所管課不明）"]
        for d, glued in floated[len(need):]:
            orphans.append(_Block([d] + ([glued] if glued else [])))
        if orphans:
            items.append(Item(section_path=(section,) if section else (),
                              title="（表の行に属さない記述）",
                              text="\n".join(_join_cell(o.lines, wide=True) for o in orphans),
                              page_start=tp.number, page_end=tp.number))
            warnings.append(f"p.{tp.number}: {len(orphans)} cells not attributed to a row")
        result.rows_per_page[tp.number] = len(page_rows)
        result.departments_per_page[tp.number] = inline + len(floated)
        rows.extend(page_rows)

    for r in rows:
        items.append(_row_item(r, status_label, warnings))
    return result


def _row_title(content: str, limit: int = 80) -> str:
    """A row's own name: its 内容 (first sentence when long), since one 具体的取組 spans many rows."""
    text = content.replace("\n", "")
    if len(text) <= limit:
        return text
    end = text.find("。")
    if 0 <= end < limit:
        return text[: end + 1]
    return text[:limit].rstrip() + "…"


def _row_item(r: _Row, status_label: str, warnings: list[str]) -> Item:
    cells = _group_cells(r.cells)
    if len(cells) == 1:
        split = _split_glued_line(cells[0][0]) if len(cells[0]) == 1 else None
        if split:
            cells = split
    if r.glued_status:
        status_blocks: list[list[_Block]] = [[_Block([r.glued_status])]]
        cells = status_blocks + cells
    status = _cell_text(cells[0]) if cells else ""
    direction = "\n".join(_cell_text(c) for c in cells[1:])
    if len(cells) == 1:
        warnings.append(f"p.{r.page}: row 「{r.torikumi}」 has one status/direction cell")
    content = _join_cell(r.content, wide=False)
    dept = _join_cell(r.dept, wide=False).replace("\n", "")
    title = _row_title(content) or r.torikumi
    parts = []
    if r.torikumi:
        parts.append(f"具体的取組：{r.torikumi}")
    parts.append(f"内容：{content}")
    parts.append(f"所管課：{dept}")
    if status:
        parts.append(f"{status_label}：{status}")
    if direction:
        parts.append(f"今後の課題・方向性：{direction}")
    path = tuple(p for p in (r.section, r.kaikaku, r.torikumi) if p)
    return Item(
        section_path=path,
        title=title,
        text="\n".join(parts),
        page_start=r.page,
        page_end=max(r.page, r.page_end),
        department=dept,
        fields={"内容": content, "取組状況": status, "今後の課題・方向性": direction},
    )


def parse_progress_table(pages: list[Page]) -> list[Item]:
    """Parse a progress table into one :class:`Item` per table row.

    ``pages`` may be real pages or a single :class:`Page` with the whole text (split here at the
    repeated header line; page number = ordinal of the header). Each row's Item has
    ``section_path`` = (section heading, 改革項目, 具体的取組) (row-spanning cells are repeated on
    each of their rows), ``title`` = the row's own 内容 (its first sentence when long), ``department`` = 所管課, ``text`` = labelled lines
    (具体的取組/内容/所管課/R6取組状況/今後の課題・方向性) with hard wraps joined and
    ``fields`` = 内容 / 取組状況 / 今後の課題・方向性. Text before the first header (the title line)
    and cells that belong to no row become Items too, so nothing is lost; only the repeated
    header line, section heading and title line are dropped as page furniture.
    """
    return parse_progress_table_detailed(pages).items
