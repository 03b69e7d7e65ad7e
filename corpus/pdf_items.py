"""PDF table rows as items (split out of :mod:`corpus.chunker`).

The reader (:mod:`corpus.pdf_tables`) puts the tables it finds on a page into :attr:`Page.tables`;
:func:`table_items` turns every row into an :class:`~corpus.records.Item` of 「見出し：値」 lines
(:func:`table_row_item`) under the section path printed above the table (:func:`table_section`),
and :func:`text_outside_tables` keeps the page text the rows do not hold, so nothing is lost.
"""
from __future__ import annotations

import re

from corpus.normalize import collapse_letter_spacing, compact
from corpus.pdf_tables import unit_lines
from corpus.records import Item, Page

#: Field names that hold an item's name / its department (also read by :func:`corpus.chunker.record_items`).
_NAME_KEYS = ("事務事業名", "事業名", "取組名", "取組項目", "具体的取組", "改革項目", "項目名", "項目", "名称", "件名")
_DEPT_KEYS = ("所管課", "担当課", "所管部署", "担当部署", "所管部課", "担当部局", "課名")

_DEPT_BRACKET_RE = re.compile(r"【([^【】]{1,20}?(?:課|室|局|所|センター|係|館|院|班|委員会|事務局))】")
_UNIT_PART_RE = re.compile(r"[\s　]*[（(]\s*単位[^）)]*[）)][\s　]*")


def table_section(caption: tuple[str, ...]) -> tuple[str, ...]:
    """The section path of a table from the lines printed above it: unit notes 「（単位：千円）」
    left out, letter spacing collapsed."""
    out: list[str] = []
    for line in caption:
        line = collapse_letter_spacing(_UNIT_PART_RE.sub(" ", line)).strip()
        if line:
            out.append(line)
    return tuple(out)


def _is_number_cell(value: str) -> bool:
    """True for a cell that is a number or a code (「1」「２．１．６」「13,171」)."""
    return bool(re.fullmatch(r"[\s\d０-９,，.．。△▲\-－()（）%％]+", value))


def table_row_item(header: tuple[str, ...], row: tuple[str, ...], page: int, section: tuple[str, ...], units: list[str]) -> Item:
    """One PDF table row as an :class:`Item` of 「見出し：値」 lines (like a spreadsheet record,
    :func:`corpus.readers.xlsx.render_record`; empty cells left out, the table's unit note last).
    A 課 column (主管課, 担当課 …), else a 【…課】 in a cell, is the ``department``; the 事業名 (or
    the first name-like column, or the first text cell) the title, without its 【…課】."""
    fields: dict[str, str] = {}
    for name, value in zip(header, row):
        value = value.strip()
        if value:
            fields[name] = f"{fields[name]} {value}" if name in fields else value
    dept = next((v for k, v in fields.items() if any(d in k for d in _DEPT_KEYS) or k.endswith("課")), "")
    if not dept:
        m = next((m for v in fields.values() if (m := _DEPT_BRACKET_RE.search(v))), None)
        dept = m.group(1) if m else ""
    title = ""
    for key in (*_NAME_KEYS, "事項"):
        title = next((v for k, v in fields.items() if key in k), "")
        if title:
            break
    if not title:
        title = next((v for v in fields.values() if v != dept and not _is_number_cell(v)), "")
    title = _DEPT_BRACKET_RE.sub("", title).strip()[:80] or next(iter(fields.values()), "")[:80]
    lines = [f"{k}：{v}" for k, v in fields.items()] + units
    return Item(section_path=section, title=title, text="\n".join(lines), page_start=page, page_end=page,
                department=dept, fields=fields)


def table_items(pages: list[Page]) -> dict[int, list[Item]]:
    """The row items of the pages' :attr:`Page.tables`, by page number; a table without a caption
    takes the section path of the table before it."""
    out: dict[int, list[Item]] = {}
    section: tuple[str, ...] = ()
    for p in pages:
        for table in p.tables:
            section = table_section(table.caption) or section
            units = unit_lines(table.caption)
            for row in table.rows:
                out.setdefault(p.number, []).append(table_row_item(table.header, row, p.number, section, units))
    return out


def text_outside_tables(text: str, rows: list[Item], names: list[str]) -> tuple[str, list[str]]:
    """The lines of a page's ``text`` that its table rows do not hold (compared like
    :func:`corpus.coverage.uncovered`: compact forms, a line also held when each of its
    whitespace-separated pieces is), and the lines held only by the tables' field names
    ``names`` (a header row whose columns are empty in every row: removed as furniture)."""
    body = compact("".join(it.text for it in rows))
    heads = "\x00".join(compact(x) for it in rows for x in (it.title, *it.section_path))
    header = "\x00".join(compact(x) for x in names)

    def held(key: str, where: tuple[str, ...]) -> bool:
        return any(key in w for w in where)

    kept: list[str] = []
    removed: list[str] = []
    for line in text.split("\n"):
        key = compact(line)
        pieces = [x for x in (compact(x) for x in line.split()) if x]
        if key and (held(key, (body, heads)) or all(held(x, (body, heads)) for x in pieces)):
            continue
        if key and (held(key, (body, heads, header)) or all(held(x, (body, heads, header)) for x in pieces)):
            removed.append(line)
            continue
        kept.append(line)
    return "\n".join(kept), removed
