"""Evaluation sheets (事務事業評価シート): the 事務事業名 as the item, sections ①–⑤ kept with it.

A document is an evaluation sheet when it has a 「事務事業名」 label (or 「評価シート」) and at least
two section lines that start with a circled number (「① 総合計画上の位置付け…」「④ アウトカム（成果）
⑤ 点検・改善」). One item per section: ``title`` = the 事務事業名 (its value may be wrapped over
several lines: 「広域行政（一部事務組合）事」「務事業」), ``section_path`` = (sheet title, section line).
A document with several sheets starts a new sheet whenever the section number falls back
(⑤ … ①); each sheet has its own 事務事業名. Text before the first section goes into an item whose
section path is the sheet title alone. Letter-spaced and one-character-per-line labels
(後/期/基/本/計/画) are collapsed by the display cleaning.
"""
from __future__ import annotations

import re

from corpus.normalize import (
    clean_display_text,
    collapse_letter_spacing,
    WrapStyle,
    join_wrapped_lines,
    wrap_style,
)
from corpus.records import Item
from corpus.structure import Line

_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩"
_SECTION_RE = re.compile(rf"^[\s　]*([{_CIRCLED}])[\s　]*(\S.*)$")
_NAME_LABEL_RE = re.compile(r"^[\s　]*(事務事業名|事業名)[\s　:：]*(.*)$")
_DEPT_LABEL_RE = re.compile(r"^[\s　]*(所管課|担当課|所管部署|担当部署|所属)[\s　:：]*(.*)$")
_SHEET_TITLE_RE = re.compile(r"^[\s　]*(\S*評価シート\S*)[\s　]*$")

DEFAULT_SHEET_TITLE = "事務事業評価シート"


def _section_line(line: str) -> tuple[int, str] | None:
    m = _SECTION_RE.match(line)
    if not m:
        return None
    rest = m.group(2).strip()
    if rest.endswith("。") or len(rest) > 70:
        return None
    return _CIRCLED.index(m.group(1)) + 1, collapse_letter_spacing(line).strip()


def is_evaluation_sheet(text: str) -> bool:
    """True for an evaluation sheet (see the module doc)."""
    lines = text.split("\n")
    has_label = any(_NAME_LABEL_RE.match(ln) and ln.strip().startswith(("事務事業名",)) for ln in lines) or (
        "評価シート" in text
    )
    sections = sum(1 for ln in lines if _section_line(ln))
    return has_label and sections >= 2


def _value_after_label(lines: list[Line], k: int, inline: str) -> str:
    """The value of a label at line ``k``: inline, or the next few wrapped lines."""
    if inline.strip():
        return collapse_letter_spacing(inline).strip()
    parts: list[str] = []
    for ln in lines[k + 1:k + 8]:
        s = ln.text.strip()
        if not s:
            continue
        if _section_line(ln.text) or _NAME_LABEL_RE.match(ln.text) or _DEPT_LABEL_RE.match(ln.text):
            break
        parts.append(s)
        if len(parts) == 3 or s.endswith(("。", "業", "事業")) and len("".join(parts)) >= 6:
            break
    joined = join_wrapped_lines(parts, WrapStyle(full_width=max((len(p) * 2 for p in parts), default=0)))
    return joined.split("\n")[0] if joined else ""


def sheet_items(lines: list[Line], doc_title: str) -> list[Item]:
    """Items of an evaluation-sheet document (see the module doc)."""
    texts = [ln.text for ln in lines]
    style = wrap_style(texts)
    sheet_title = DEFAULT_SHEET_TITLE
    for t in texts:
        m = _SHEET_TITLE_RE.match(t)
        if m:
            sheet_title = m.group(1)
            break

    # split into sheets, each into sections
    sheets: list[list[tuple[str | None, list[Line]]]] = [[(None, [])]]
    last_no = 0
    for ln in lines:
        sec = _section_line(ln.text)
        if sec is not None:
            no, label = sec
            if no == 1 and last_no >= 1:
                sheets.append([])
            last_no = no
            sheets[-1].append((label, [ln]))
        elif sheets[-1]:
            sheets[-1][-1][1].append(ln)
        else:
            sheets[-1].append((None, [ln]))

    items: list[Item] = []
    for sheet in sheets:
        flat = [ln for _, body in sheet for ln in body]
        name = ""
        dept = ""
        for k, ln in enumerate(flat):
            m = _NAME_LABEL_RE.match(ln.text)
            if m and not name:
                name = _value_after_label(flat, k, m.group(2))
            d = _DEPT_LABEL_RE.match(ln.text)
            if d and not dept:
                dept = _value_after_label(flat, k, d.group(2))
        title = name or doc_title
        for label, body in sheet:
            if not any(ln.text.strip() for ln in body):
                continue
            # the section line itself is in the section path
            text_lines = body[1:] if label else body
            text = clean_display_text("\n".join(ln.text for ln in text_lines), style)
            if not text:
                continue
            pages = [ln.page for ln in body if ln.text.strip()]
            path = (sheet_title, label) if label else (sheet_title,)
            items.append(
                Item(
                    section_path=path,
                    title=title,
                    text=text,
                    page_start=min(pages),
                    page_end=max(pages),
                    department=dept,
                    fields={"事務事業名": name} if name else {},
                )
            )
    return items
