"""Compare questions that name two sides: 「小平市とつくばみらい市で比べたい」,
「直営を続ける市と民間委託に切り替えた市とで」.

Pure parsing (no model, no index). :func:`split_sides` finds the two sides of such a question
and returns one sub-query per side; the engine retrieves each separately and interleaves the
results (``Engine.search``), so that both sides appear in the top of the list instead of the
side whose wording happens to match the passages better taking every place.

A side is either a municipality named in the question (the sub-query is then the whole question,
restricted to that municipality) or a noun phrase ending in a word for "a municipality of some
kind" (…市, …自治体, …団体, …ところ) joined to the other by と (「AとBとで」「AとBの」「AとBを」);
the sub-query is that side followed by the rest of the question.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

#: Words that end a side: a municipality of some kind (「直営を続ける市」「委託した自治体」).
_SIDE_END = r"(?:市町村|市区町村|自治体|団体|ところ|都市|市|町|村|県|区)"
#: 「AとB(と)で / の間で / では / を / について / の / は」: the join after the second side.
_JOIN = r"(?:とで|との間で|の間で|とでは|では|で|を|について|の|は)"
_TWO_SIDES = re.compile(
    rf"(?P<a>[^、。，,「」()（）]+?{_SIDE_END})と(?P<b>[^、。，,「」()（）]+?{_SIDE_END}){_JOIN}"
)
#: Cues that the question compares (「比べ」「違い」…); a two-sided split needs one, or a
#: caller that already knows the question is a comparison.
COMPARE_CUES = ("比べ", "比較", "違い", "違う", "異なる", "差", "対比", "それぞれ", "両方", "双方")


@dataclass(frozen=True)
class Side:
    """One side of a two-sided comparison: the sub-query and, if the side is a named
    municipality, that municipality (the sub-query is then restricted to it)."""

    query: str
    municipality: str = ""


def _clean(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def split_sides(question: str, names: Sequence[str] = (), is_compare: bool | None = None) -> list[Side]:
    """The sides of a two-sided comparison question, or ``[]`` when it has no two sides.

    ``names``: municipalities recognised in the question (``NameTable.detect``); two or more of
    them make one side each. ``is_compare``: whether the question compares (None: look for a
    comparison cue such as 比べ / 違い in the question).
    """
    q = _clean(question)
    if not q:
        return []
    compare = any(c in q for c in COMPARE_CUES) if is_compare is None else is_compare
    if not compare:
        return []
    named = [n for n in dict.fromkeys(names) if n]
    if len(named) >= 2:
        return [Side(query=question, municipality=n) for n in named]
    m = _TWO_SIDES.search(q)
    if not m:
        return []
    a, b = m.group("a").strip(), m.group("b").strip()
    # A side that is only the municipality word (「市と町で」) says nothing: not two sides.
    if len(a) < 3 or len(b) < 3:
        return []
    rest = (q[: m.start()] + q[m.end():]).strip(" 、。,")
    # An elliptic second side (「ごみ収集を直営で行う町と委託している町」「導入した市としていない市」)
    # borrows the first side's object: A up to its last を.
    if "を" in a and not re.search("[をがにへ]", b):
        b = a[: a.rindex("を") + 1] + b
    return [Side(query=f"{a} {rest}".strip()), Side(query=f"{b} {rest}".strip())]


def interleave(lists: Sequence[Sequence[T]], key: Callable[[T], Hashable]) -> list[T]:
    """Round-robin merge of ``lists`` (first of each, then second of each …), dropping items
    whose ``key`` was already taken."""
    out: list[T] = []
    seen: set[Hashable] = set()
    for i in range(max((len(x) for x in lists), default=0)):
        for lst in lists:
            if i < len(lst):
                k = key(lst[i])
                if k not in seen:
                    seen.add(k)
                    out.append(lst[i])
    return out
