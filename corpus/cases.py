"""Case collections (事例集): one item per case, attributed to the case's municipality.

A case begins with a title line that ends in ＜自治体名（人口…）＞ or ＜自治体名 46万人＞, e.g.
「ビジネスチャットで広域的に業務を効率化 ＜三重県（人口約17４万人）＞」. A document is a case
collection when it has at least two such title lines (the file name plays no part).

The case's sections (課題／取組／成果, often letter-spaced: 「課 題」) stay in its text; the title line
is the first line of the text. Text before the first case becomes an item titled by the document
title. The prefecture of a case: the name itself when it is a prefecture (…都/道/府/県); else a
「<都道府県><name>」 found in the document; else the manifest's ``prefectures`` column
(「福山市=広島県; 松山市=愛媛県」); else empty (the chunker then uses the document's).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from corpus.normalize import clean_display_text, compact, wrap_style
from corpus.records import Item
from corpus.structure import Line

PREFECTURES: tuple[str, ...] = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県", "群馬県",
    "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県",
    "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県",
    "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県", "香川県", "愛媛県", "高知県", "福岡県",
    "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)

_POP = r"(?:[（(][\s　]*人口[^）)＞>]*[）)]|[（(]?[\s　]*(?:人口)?[\s　]*約?[\s　]*[0-9０-９.,，．]+[\s　]*[万千]?[\s　]*人[）)]?)"
_CASE_TITLE_RE = re.compile(
    rf"^(?P<title>.*?)[\s　]*[＜<][\s　]*(?P<name>[^＜＞<>（()）\s　]+?)[\s　]*{_POP}[\s　]*[＞>][\s　]*$"
)


@dataclass(frozen=True)
class CaseTitle:
    """A parsed case title line: the case title and the municipality name."""

    title: str
    municipality: str


def parse_case_title(line: str) -> CaseTitle | None:
    """The :class:`CaseTitle` of a case title line, or None (needs a title before the ＜…＞)."""
    m = _CASE_TITLE_RE.match(line.strip())
    if not m or not m.group("title").strip():
        return None
    return CaseTitle(m.group("title").strip(), m.group("name").strip())


def is_case_collection(text: str) -> bool:
    """True when ``text`` has at least two case title lines (see the module doc)."""
    return sum(1 for ln in text.split("\n") if parse_case_title(ln)) >= 2


def parse_prefecture_map(value: str) -> dict[str, str]:
    """Parse the manifest ``prefectures`` column: 「福山市=広島県; 松山市=愛媛県」 (separators ; ； | 、 ,)."""
    out: dict[str, str] = {}
    for part in re.split(r"[;；|、,，\n]", value or ""):
        if "=" in part or "＝" in part:
            k, _, v = part.replace("＝", "=").partition("=")
            if k.strip() and v.strip():
                out[k.strip()] = v.strip()
    return out


def resolve_prefecture(name: str, document_text: str, prefecture_map: dict[str, str] | None = None) -> str:
    """The prefecture of municipality ``name`` (see the module doc for the order of evidence)."""
    if name in PREFECTURES or re.search(r"(都|道|府|県)$", name) and len(name) <= 4:
        return name
    doc = compact(document_text)
    for pref in PREFECTURES:
        if compact(pref + name) in doc:
            return pref
    return (prefecture_map or {}).get(name, "")


def case_items(lines: list[Line], doc_title: str, *, prefecture_map: dict[str, str] | None = None) -> list[Item]:
    """Items of a case collection: the preamble (if any) and one item per case."""
    texts = [ln.text for ln in lines]
    style = wrap_style(texts)
    document_text = "\n".join(texts)
    groups: list[tuple[CaseTitle | None, list[Line]]] = [(None, [])]
    for ln in lines:
        ct = parse_case_title(ln.text)
        if ct is not None:
            groups.append((ct, [ln]))
        else:
            groups[-1][1].append(ln)
    items: list[Item] = []
    for ct, body in groups:
        if not any(ln.text.strip() for ln in body):
            continue
        text = clean_display_text("\n".join(ln.text for ln in body), style)
        if not text:
            continue
        pages = [ln.page for ln in body if ln.text.strip()]
        if ct is None:
            items.append(Item((), doc_title, text, min(pages), max(pages)))
            continue
        items.append(
            Item(
                section_path=(),
                title=ct.title,
                text=text,
                page_start=min(pages),
                page_end=max(pages),
                municipality=ct.municipality,
                prefecture=resolve_prefecture(ct.municipality, document_text, prefecture_map),
            )
        )
    return items
