"""Nothing is lost: every normalised character of a document is in some chunk."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.chunker import chunk_document_detailed
from corpus.coverage import coverage_ratio, uncovered
from corpus.records import Chunk, DocumentMeta, Page, RawDocument
from tests.test_chunker import bundled_meta, bundled_raw

try:
    import corpus.tables  # noqa: F401

    HAVE_TABLES = True
except ImportError:  # pragma: no cover
    HAVE_TABLES = False

DOCS = [
    "000_981ffc30e8dd5eda.txt",
    "001_886de96060501226.txt",
    "002_5d4461abb80c93bd.txt",
    "003_66002c05080786b4.txt",
    pytest.param(
        "004_f79ffdf675a5d26a.txt",
        marks=pytest.mark.xfail(not HAVE_TABLES, reason="progress-table parser corpus.tables not present"),
    ),
]


@pytest.mark.parametrize("name", DOCS)
def test_bundled_document_loses_nothing(name):
    raw = bundled_raw(name)
    res = chunk_document_detailed(raw, bundled_meta(name))
    assert res.chunks
    missing = uncovered(raw.pages[0].text, res.chunks, res.removed)
    assert missing == []
    assert coverage_ratio(raw.pages[0].text, res.chunks, res.removed) == 1.0


@pytest.mark.parametrize("name", DOCS[:4])
def test_nothing_lost_with_small_budget(name):
    raw = bundled_raw(name)
    res = chunk_document_detailed(raw, bundled_meta(name), max_tokens=60)
    assert uncovered(raw.pages[0].text, res.chunks, res.removed) == []


def test_uncovered_reports_a_dropped_line():
    c = Chunk("x", "d", "m", "p", "t", ("節",), "項目", "", 1, 1, "残った文です。", "")
    assert uncovered("節\n項目\n残った文です。\n消えた文です。\n- 2 -", [c], ["- 2 -"]) == ["消えた文です。"]


_word = st.text(alphabet="市民協働行財政改革推進計画予算事業評価窓口施設", min_size=2, max_size=8)
_sentence = st.lists(_word, min_size=2, max_size=6).map(lambda ws: "、".join(ws) + "。")
_para = st.lists(_sentence, min_size=1, max_size=5).map("".join)


def _wrap(p: str, width: int) -> list[str]:
    return [p[i:i + width] for i in range(0, len(p), width)]


@st.composite
def generated_document(draw) -> str:
    lines: list[str] = []
    double = draw(st.booleans())
    width = draw(st.integers(min_value=12, max_value=40))
    for ch in range(1, draw(st.integers(1, 3)) + 1):
        lines.append(f"第{ch}章 {draw(_word)}")
        for sec in range(1, draw(st.integers(1, 3)) + 1):
            lines.append(f"（{sec}） {draw(_word)}")
            for _ in range(draw(st.integers(0, 3))):
                lines.extend(_wrap(draw(_para), width))
                lines.append("")
            if draw(st.booleans()):
                lines.append(f"○ {draw(_word)}")
    if double:
        lines = [x for ln in lines for x in (ln, "")]
    return "\n".join(lines)


@settings(max_examples=25, deadline=None)
@given(generated_document(), st.sampled_from([40, 120, 400]))
def test_generated_documents_lose_nothing(text, budget):
    raw = RawDocument("g.txt", [Page(1, text)])
    res = chunk_document_detailed(raw, DocumentMeta("g.txt", "生成市", "生成県", "生成文書"), max_tokens=budget)
    assert uncovered(text, res.chunks, res.removed) == []


@settings(max_examples=15, deadline=None)
@given(st.lists(_para, min_size=3, max_size=6))
def test_generated_multipage_with_furniture_loses_nothing(paras):
    pages = [Page(i + 1, f"生成市行財政改革プラン\n{p}\n- {i + 1} -") for i, p in enumerate(paras)]
    raw = RawDocument("g.pdf", pages)
    res = chunk_document_detailed(raw, DocumentMeta("g.pdf", "生成市", "生成県", "生成文書"))
    joined = "\n".join(p.text for p in pages)
    assert uncovered(joined, res.chunks, res.removed) == []
    assert not any("生成市行財政改革プラン" in c.text for c in res.chunks)
