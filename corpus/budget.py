"""Budget books (予算書・予算に関する説明書): one item per 目 (issue 10, point 4).

A 歳入歳出予算事項別明細書 prints, under a caption 「款 1.農業集落排水事業費 項 1.農業集落排水管理費」
(or 「1款 議会費」「1項 議会費」 on two lines), a table with the columns 目 / 本年度 / 前年度 / 比較 /
財源内訳 (国県支出金・地方債・その他・一般財源) / 節 (区分・金額) / 説明. One 目 holds many 節 and 説明
lines; cut row by row (:func:`corpus.chunker.table_row_item`) it would give many tiny chunks, and
on pages without ruling lines between the 節 a row holds all of them in one cell, their amounts
cut away from their labels.

This module groups the rows of such tables (found by :mod:`corpus.pdf_tables`, with
:attr:`corpus.records.PdfTable.row_lines`, the printed words and their x positions) into **one
item per 目**:

- ``section_path`` = (款, 項, 目) from the caption and the 目 cell (「1.農業集落排 / 水総務費」 joined);
- the first lines give the 目's amounts: 「本年度：24,204 前年度：18,197 比較：6,007」 and the
  財源内訳 with its column names; then one line per 節 and per 説明 entry, each with its amount on
  the same line (「3.職員手当等 2,163」「○農業集落排水職員人件費 8,008」): a label wrapped onto
  the next printed line is joined to it;
- a 目 split over two tables (the 目 half and the 節・説明 half of a spread, as in Fuji's book) or
  over two pages stays one item; the 計 row of a 項 is an item of its own;
- the text of a budget page outside the tables (a 節 half that pdfplumber did not take as a table)
  goes to the 目 open on that page (:func:`attach_leftovers`).

A 目 whose item is over the token budget is cut into parts by the usual split
(:func:`corpus.chunker.items_to_chunks`); the 説明 entries are separate lines, so a part ends at an
entry. The 第1表 (款・項 only) and the 給与費明細書 have no 目 column and stay row by row.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace

from corpus.pdf_tables import _SPACE_IN_CJK, _UNIT, unit_lines
from corpus.records import Item, PdfTable

#: Sub-headers of the 財源内訳 columns, printed under 特定財源.
FUNDING_NAMES = ("国県支出金", "地方債", "その他", "一般財源")
#: Canonical names of the first three amount columns of a 目.
AMOUNT_NAMES = ("本年度", "前年度", "比較")
#: A 説明 line whose label ends within this many character sizes of the column's widest label
#: was wrapped: the next line without an amount continues it.
WRAP_SLACK = 2.5

_UNIT_WORD = re.compile(r"^[（(]?(?:千円|円)[）)]?$")
_NUMBER = re.compile(r"^[△▲\-－]?[0-9０-９][0-9０-９,，]*$")
_KAN = re.compile(r"(?:款\s*([0-9０-９]+)\s*[.．]\s*(\S+))|(?:([0-9０-９]+)\s*款\s+(\S+))")
_KOU = re.compile(r"(?:項\s*([0-9０-９]+)\s*[.．]\s*(\S+))|(?:([0-9０-９]+)\s*項\s+(\S+))")

Word = tuple[int, float, float, str]


@dataclass(frozen=True)
class Roles:
    """Which columns of a budget table hold what (indices into the header, -1 when absent)."""

    moku: int
    name: int
    amount: int
    setsumei: int
    #: the columns between 目 and 節 (本年度, 前年度, 比較, 財源内訳 …)
    money: tuple[int, ...]


@dataclass
class Entry:
    """One 節 or 説明 line: its label, its amount ("" if none) and the right edge of the label."""

    label: str
    amount: str = ""
    right: float = 0.0
    size: float = 8.0
    page: int = 0

    def line(self) -> str:
        """「label amount」."""
        return f"{self.label} {self.amount}".strip()


@dataclass
class Moku:
    """A 目 being read: its path, amounts and 節/説明 entries, and the pages it spans."""

    kan: str
    kou: str
    name: str
    page_start: int
    page_end: int
    amounts: dict[str, str] = field(default_factory=dict)
    setsu: list[Entry] = field(default_factory=list)
    setsumei: list[Entry] = field(default_factory=list)
    units: list[str] = field(default_factory=list)
    total: bool = False


def is_number(text: str) -> bool:
    """True for an amount: 「2,163」「△1,941」「１，００１」."""
    return bool(_NUMBER.match(text.replace(" ", "")))


def clean(text: str) -> str:
    """A name as printed, NFKC, spaces inside Japanese removed (「1.元 金」 → 「1.元金」)."""
    return _SPACE_IN_CJK.sub("", unicodedata.normalize("NFKC", text)).strip()


def roles(header: tuple[str, ...]) -> Roles | None:
    """The column roles of a budget-book table, or None when ``header`` is not one: a 目 column
    with 本年度 (予算額) columns, or 節 and 説明 columns (the 節 half of a spread)."""
    def find(pred) -> int:
        return next((k for k, h in enumerate(header) if pred(h)), -1)

    moku = find(lambda h: h == "目" or h.startswith("目・"))
    name = find(lambda h: "節" in h and ("区分" in h or "区" in h))
    amount = find(lambda h: "節" in h and "金" in h)
    setsumei = find(lambda h: "説明" in h)
    yearly = any("本年度" in h or "予算額" in h for h in header)
    if not ((moku >= 0 and yearly) or (name >= 0 and setsumei >= 0)):
        return None
    end = min([k for k in (name, amount, setsumei) if k >= 0] or [len(header)])
    money = tuple(range(moku + 1, end)) if moku >= 0 else ()
    return Roles(moku, name, amount, setsumei, money)


def is_budget_table(table: PdfTable) -> bool:
    """True for a table of a budget book's 事項別明細書 (see :func:`roles`) with printed lines."""
    return bool(table.row_lines) and roles(table.header) is not None


def kan_kou(caption: tuple[str, ...]) -> tuple[str, str]:
    """The 款 and 項 named in a table's caption (「款 1.分担金及び負担金 項 1.分担金」 →
    「1.分担金及び負担金」「1.分担金」; 「１款 議会費」 → 「1款 議会費」), "" when absent."""
    kan = kou = ""
    for line in caption:
        line = unicodedata.normalize("NFKC", _UNIT.sub(" ", line))
        if m := _KAN.search(line):
            kan = f"{m.group(1)}.{m.group(2)}" if m.group(1) else f"{m.group(3)}款 {m.group(4)}"
        if m := _KOU.search(line):
            kou = f"{m.group(1)}.{m.group(2)}" if m.group(1) else f"{m.group(3)}項 {m.group(4)}"
    return kan, kou


def money_names(table: PdfTable, r: Roles, sub: dict[int, str]) -> dict[int, str]:
    """The name of each amount column of a 目: 本年度, 前年度, 比較 for the first three, then the
    財源内訳 column's own name (the last part of its header, or a sub-header row ``sub``)."""
    out: dict[int, str] = {}
    for k, col in enumerate(r.money):
        if k < len(AMOUNT_NAMES):
            out[col] = AMOUNT_NAMES[k]
        else:
            last = table.header[col].split("・")[-1]
            out[col] = sub.get(col) or (last if last in FUNDING_NAMES else f"財源内訳{k - 2}")
    return out


def sub_header(row: tuple[str, ...]) -> dict[int, str]:
    """The 財源内訳 sub-headers of a row that repeats them (「国県支出金」「地方債」…), else {}."""
    filled = {k: clean(v) for k, v in enumerate(row) if v.strip()}
    if filled and all(v in FUNDING_NAMES for v in filled.values()):
        return filled
    return {}


def add_setsu(entries: list[Entry], words: list[Word], amounts: list[Word], page: int = 0) -> None:
    """A printed line of the 節 column: with an amount a new 節, without one the wrapped rest of
    the 節 before (「18.負担金、補 / 助及び交付 / 金」)."""
    label = " ".join(w[3] for w in words)
    amount = " ".join(w[3] for w in amounts)
    if amount or not entries:
        entries.append(Entry(label, amount, page=page))
    else:
        entries[-1].label += label


def add_setsumei(entries: list[Entry], words: list[Word], widest: float, page: int = 0) -> None:
    """A printed line of the 説明 column: a line ending in an amount is a new entry; a line
    without one continues the entry before when that entry has an amount and its label ran to
    the column's widest label (「○農業集落排水職員人件 8,008 / 費」), else it is an entry of its
    own (「議会だより発行」「ペーパーレス会議等対応 / タブレット端末運用管理」)."""
    if not words:
        return
    amount = words[-1][3] if len(words) > 1 and is_number(words[-1][3]) else ""
    text_words = words[:-1] if amount else words
    label = " ".join(w[3] for w in text_words)
    size = max(1.0, (text_words[-1][2] - text_words[-1][1]) / max(1, len(text_words[-1][3]))) if text_words else 8.0
    right = text_words[-1][2] if text_words else 0.0
    prev = entries[-1] if entries else None
    if not amount and prev is not None and prev.amount and prev.right >= widest - WRAP_SLACK * prev.size:
        prev.label += label
        prev.right = right
        return
    entries.append(Entry(label, amount, right, size, page))


def widest_label(table: PdfTable, col: int) -> float:
    """The right edge of the widest label (not an amount) in column ``col`` of ``table``."""
    edges = [w[2] for lines in table.row_lines for ln in lines for w in ln
             if w[0] == col and not is_number(w[3]) and not _UNIT_WORD.match(w[3])]
    return max(edges or [0.0])


def moku_item(m: Moku) -> Item:
    """The :class:`Item` of one 目 (or of a 項's 計 row)."""
    amounts = "　".join(f"{k}：{v}" for k, v in m.amounts.items() if k in AMOUNT_NAMES)
    funding = "　".join(f"{k}：{v}" for k, v in m.amounts.items() if k not in AMOUNT_NAMES)
    head = f"{m.kou} 計" if m.total else f"目：{m.name}"
    first = m.page_start
    lines: list[tuple[str, int]] = [(head, first), (amounts, first)]
    if funding:
        lines.append((f"財源内訳　{funding}", first))
    for label, entries in (("節", m.setsu), ("説明", m.setsumei)):
        if entries:
            lines += [(label, entries[0].page or first)] + [(e.line(), e.page or first) for e in entries]
    lines += [(u, first) for u in m.units]
    text = ""
    marks: list[tuple[int, int]] = []
    for line, page in lines:
        if not line:
            continue
        if text:
            text += "\n"
        if not marks or marks[-1][1] != page:
            marks.append((len(text), page))
        text += line
    path = tuple(x for x in (m.kan, m.kou) if x) + (() if m.total else (m.name,))
    title = f"{m.kou or m.kan} 計" if m.total else m.name
    fields = {k: v for k, v in m.amounts.items()}
    return Item(section_path=path, title=title, text=text, page_start=m.page_start, page_end=m.page_end,
                fields=fields, page_marks=tuple(marks))


def budget_mokus(tables: list[tuple[int, PdfTable]]) -> list[Moku]:
    """The 目 of a budget book's tables (page number, table) in reading order. A row with a 目
    cell starts a 目 (the same 目 repeated on its 節 rows goes on); a row without one continues
    the 目 before it; 「計」 is the 項's total."""
    out: list[Moku] = []
    kan = kou = ""
    cur: Moku | None = None
    for page, table in tables:
        r = roles(table.header)
        if r is None:
            continue
        k2, p2 = kan_kou(table.caption)
        kan, kou = k2 or kan, p2 or kou
        units = unit_lines(table.caption)[:1]
        sub: dict[int, str] = {}
        widest = widest_label(table, r.setsumei)
        for row, lines in zip(table.rows, table.row_lines):
            sub = sub_header(row) or sub
            if sub_header(row):
                continue
            name = clean(row[r.moku]) if r.moku >= 0 else ""
            if name:
                total = name == "計"
                if cur is None or total or cur.total or (cur.name, cur.kan, cur.kou) != (name, kan, kou):
                    cur = Moku(kan, kou, name, page, page, total=total, units=list(units))
                    out.append(cur)
            if cur is None:
                cur = Moku(kan, kou, "", page, page, units=list(units))
                out.append(cur)
            cur.page_end = max(cur.page_end, page)
            names = money_names(table, r, sub)
            for ln in lines:
                ln = tuple(w for w in ln if not _UNIT_WORD.match(w[3]))
                setsu = [w for w in ln if w[0] == r.name]
                setsu_amt = [w for w in ln if w[0] == r.amount and is_number(w[3])]
                if setsu or setsu_amt:
                    add_setsu(cur.setsu, setsu, setsu_amt, page)
                add_setsumei(cur.setsumei, [w for w in ln if w[0] == r.setsumei and r.setsumei >= 0], widest, page)
                for w in ln:
                    if w[0] in names and is_number(w[3]) and names[w[0]] not in cur.amounts:
                        cur.amounts[names[w[0]]] = w[3]
    return out


def budget_items(tables: list[tuple[int, PdfTable]]) -> list[Item]:
    """One :class:`Item` per 目 of the budget-book ``tables`` (page number, table), see the
    module doc."""
    return [moku_item(m) for m in budget_mokus(tables) if m.name or m.setsu or m.setsumei]


def attach_leftovers(items: list[Item], leftovers: dict[int, str]) -> tuple[list[Item], dict[int, str]]:
    """Give the text of a budget page outside its tables (``leftovers``, by page) to the 目 item
    open on that page: the last 目 (not a 計) that starts on it or on the page before. Returns the
    items and the leftovers that found no 目."""
    out = list(items)
    rest: dict[int, str] = {}
    for page, text in leftovers.items():
        if not text.strip():
            continue
        k = next((k for k in range(len(out) - 1, -1, -1)
                  if out[k].page_start <= page and page - out[k].page_start < 2
                  and out[k].title != "" and not out[k].title.endswith(" 計")), None)
        if k is None:
            rest[page] = text
            continue
        it = out[k]
        marks = it.page_marks or ((0, it.page_start),)
        new_text = it.text + "\n" + text.strip("\n")
        out[k] = replace(it, text=new_text, page_end=max(it.page_end, page),
                         page_marks=marks + ((len(it.text) + 1, page),) if page != marks[-1][1] else marks)
    return out, rest


#: Words of a budget table's header, printed letter-spaced or glued together in the page text.
HEADER_WORDS = ("目", "本年度予算額", "前年度予算額", "本年度", "前年度", "比較", "本年度予算額の財源内訳",
                "特定財源", *FUNDING_NAMES, "節", "区分", "金額", "説明", "千円", "計")
_PIECE = re.compile(r"[△▲]?[0-9,]+|[^0-9,\s△▲]+")


def _splits_into(blob: str, known: set[str]) -> bool:
    """True when ``blob`` is a concatenation of strings of ``known`` (「△10,995488,451」 →
    「△10,995」「488,451」)."""
    ok = [True] + [False] * len(blob)
    for i in range(len(blob)):
        if ok[i]:
            for k in known:
                if k and blob.startswith(k, i):
                    ok[i + len(k)] = True
    return ok[-1]


def page_text(item: Item, page: int) -> str:
    """The part of ``item``'s text that lies on ``page`` (all of it without page marks)."""
    if not item.page_marks:
        return item.text if item.page_start <= page <= item.page_end else ""
    out = []
    for k, (off, pg) in enumerate(item.page_marks):
        end = item.page_marks[k + 1][0] if k + 1 < len(item.page_marks) else len(item.text)
        if pg == page:
            out.append(item.text[off:end])
    return "\n".join(out)


def duplicate_lines(text: str, items: list[Item], page: int) -> tuple[str, list[str]]:
    """The lines of a budget page's leftover ``text`` that repeat, in the page text's jumbled
    reading order, what its 目 items hold (「報郸1 001 給与費 205,920 448,879」 beside the rows
    「1 報郸 205,920」 and 「001給与費 448,879」), and the lines to keep. A line repeats them when
    each of its pieces (split at spaces and between digits and letters) is a part of the items'
    text or a header word, and each number is one of their amounts or several glued together.
    Only the items' text printed on ``page`` counts."""
    own = [page_text(it, page) for it in items]
    body = unicodedata.normalize("NFKC", "".join(own) + "".join(x for it in items for x in it.section_path)).replace(" ", "")
    amounts = {a for t in own for a in re.findall(r"[△▲]?[0-9][0-9,]*", unicodedata.normalize("NFKC", t))}
    amounts |= {"0"}
    kept: list[str] = []
    removed: list[str] = []
    for line in text.split("\n"):
        norm = unicodedata.normalize("NFKC", line)
        flat = re.sub(r"\s", "", norm)
        if not flat:
            kept.append(line)
            continue
        pieces = _PIECE.findall(norm)

        def held(piece: str) -> bool:
            if re.fullmatch(r"[△▲]?[0-9,]+", piece):
                return piece in amounts or _splits_into(piece, amounts)
            return piece in body or _splits_into(piece, set(HEADER_WORDS))

        if _splits_into(flat, set(HEADER_WORDS)) or all(held(p) for p in pieces):
            removed.append(line)
        else:
            kept.append(line)
    return "\n".join(kept), removed
