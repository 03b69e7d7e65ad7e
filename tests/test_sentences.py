"""The one sentence splitter (corpus.sentences.sentence_spans), pinned once.

The chunker, the search cards' highlighted sentence and the answer views all cut text with it;
these tests run it on hand-made text, on the bundled seeds (corpus/*.txt) and on the display text
of real municipal PDFs (../shared/pdfs, skipped when absent).
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corpus.chunker import _units, split_spans
from corpus.document import load_document
from corpus.records import DocumentMeta
from corpus.sentences import CLOSERS, CUT_CHARS, SHORT_LINE, sentence_spans
from search.highlight import best_sentence_spans
from tests.conftest import BUNDLED, SHARED

SEEDS = sorted(BUNDLED.glob("*.txt"))
PDFS = ("nankoku_r4_shisei_houshin.pdf", "nankoku_seimu_katsudouhi_tebiki_h28.pdf", "otoineppu_kouhou_2023_02.pdf")


def pieces(text: str) -> list[str]:
    """The sentences of ``text`` as strings."""
    return [text[a:b] for a, b in sentence_spans(text)]


def assert_well_formed(text: str) -> None:
    """Spans are ordered, disjoint, trimmed, at most CUT_CHARS long, and hold every non-space character."""
    spans = sentence_spans(text)
    prev = 0
    covered = 0
    for a, b in spans:
        assert prev <= a < b <= len(text)
        s = text[a:b]
        assert s == s.strip(), f"空白が残っています / untrimmed: {s!r}"
        assert b - a <= CUT_CHARS, f"{b - a} 文字の文 / a sentence of {b - a} characters"
        covered += sum(1 for ch in s if not ch.isspace())
        prev = b
    assert covered == sum(1 for ch in text if not ch.isspace()), "文に入らない文字があります / characters left out"


def assert_ends_after_terminators(text: str) -> None:
    """Every 。！？ (with the closers after it) ends a sentence."""
    ends = {b for _a, b in sentence_spans(text)}
    for i, ch in enumerate(text):
        if ch in "。！？" and (i + 1 == len(text) or text[i + 1] not in "。！？" + CLOSERS):
            assert i + 1 in ends, f"「{text[max(0, i - 20):i + 1]}」で文が終わりません / no sentence end"


# --------------------------------------------------------------------------- hand-made rules


def test_terminators_and_closing_brackets() -> None:
    text = "実施した。「完了。」次は？対応する！（再掲）"
    assert pieces(text) == ["実施した。", "「完了。」", "次は？", "対応する！", "（再掲）"]
    assert pieces("目標を定める。！？そして") == ["目標を定める。！？", "そして"]


def test_full_width_period_ends_a_sentence_unless_a_digit_touches_it() -> None:
    text = "目標は４．９％とする．次に進む．\n１．総則"
    assert pieces(text) == ["目標は４．９％とする．", "次に進む．", "１．総則"]
    assert pieces("幅員 ２ ． ５ｍの橋．次") == ["幅員 ２ ． ５ｍの橋．", "次"]  # letter-spaced budget books
    assert pieces("4.9％の目標. 次") == ["4.9％の目標. 次"]  # ASCII "." never ends a sentence


def test_hard_wrap_inside_a_sentence_is_kept() -> None:
    text = "予算編成方針とともに令和７年度の中期財政見通しを作\n成・公表した。\n　今後も継続する。"
    assert pieces(text) == ["予算編成方針とともに令和７年度の中期財政見通しを作\n成・公表した。", "今後も継続する。"]


def test_short_line_ends_a_sentence_at_the_short_line_length() -> None:
    short = "あ" * (SHORT_LINE - 1)
    long = "い" * SHORT_LINE
    assert pieces(short + "\n続きの文。") == [short, "続きの文。"]
    assert pieces(long + "\n続きの文。") == [long + "\n続きの文。"]  # a full line: a hard wrap


def test_blank_lines_bullets_labels_tabs_and_indents_end_sentences() -> None:
    long = "う" * 30
    text = f"見出しの行\n\n・一つ目の項目\n{long}\n※注記\n取組状況：実施した。\n{long}\n　字下げの段落"
    assert pieces(text) == ["見出しの行", "・一つ目の項目", long, "※注記", "取組状況：", "実施した。", long, "字下げの段落"]
    rows = f"{long}\t事業費\n{long}\t補助金"
    assert pieces(rows) == [f"{long}\t事業費", f"{long}\t補助金"]


def test_long_sentences_are_cut_at_the_cut_length() -> None:
    run = "え" * 200 + "、" + "お" * 200 + "。"
    got = sentence_spans(run)
    assert [b - a for a, b in got] == [201, 201]  # after the 、
    no_comma = "か" * (2 * CUT_CHARS + 10)
    assert [b - a for a, b in sentence_spans(no_comma)] == [CUT_CHARS, CUT_CHARS, 10]
    lines = "\n".join(["き" * 100 + "、"] * 5)  # full lines without a full stop: one wrapped sentence
    got = pieces(lines)
    assert [s.count("\n") for s in got] == [1, 1, 0]  # cut at the last line break within the limit
    assert all(s.endswith("、") for s in got)


@given(st.text(alphabet="あい。．！」\n\t 　・①x：4", max_size=400))
def test_any_text_is_well_formed(text: str) -> None:
    assert_well_formed(text)


# --------------------------------------------------------------------------- the seeds


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_seeds(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert_well_formed(text)
    assert_ends_after_terminators(text)


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_chunker_units_tile_the_text_and_parts_end_at_sentence_ends(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    units = _units(text)
    assert "".join(units) == text
    assert not any(u.rstrip().endswith("：") for u in units[:-1])  # a label stays with its value
    ends = {b for _a, b in sentence_spans(text)}
    for a, b in split_spans(text, 120)[:-1]:
        b = a + len(text[a:b].rstrip())
        assert b in ends, f"文の途中で分割: 「{text[b - 15:b + 15]}」 / a part ends inside a sentence"


def test_highlighted_sentence_is_one_of_the_sentences() -> None:
    class Chars:
        """A tokenizer whose terms are characters (enough to score sentences)."""

        def tokenize(self, text: str) -> list[str]:
            return [c for c in text if not c.isspace()]

        def tokenize_with_spans(self, text: str) -> list[tuple[str, int, int]]:
            return [(c, i, i + 1) for i, c in enumerate(text) if not c.isspace()]

    text = "所管課：財政課\n学校給食センターを整備する。斎場の建替えを検討する。"
    best = best_sentence_spans(Chars(), "斎場", text)
    assert text[best[0].start:best[0].end] == "斎場の建替えを検討する。"
    assert (best[0].start, best[0].end) in sentence_spans(text)


# --------------------------------------------------------------------------- real PDFs


@pytest.fixture(scope="module")
def pdf_texts() -> dict[str, list[str]]:
    """Chunk texts (display text) of a few real PDFs."""
    folder = SHARED / "pdfs"
    if not all((folder / n).is_file() for n in PDFS):
        pytest.skip("../shared/pdfs is not present")
    out = {}
    for name in PDFS:
        chunks = load_document(folder, DocumentMeta(name, "市", "県", name)).chunks
        out[name] = [c.text for c in chunks]
    return out


def test_real_pdf_text(pdf_texts: dict[str, list[str]]) -> None:
    n = 0
    for name, texts in pdf_texts.items():
        assert texts, name
        for t in texts:
            assert_well_formed(t)
            assert_ends_after_terminators(t)
            n += len(sentence_spans(t))
    assert n > 100


def test_real_speech_sentences(pdf_texts: dict[str, list[str]]) -> None:
    """The 施政方針 (running prose): its sentences end at 。, and none is a fragment cut at a wrap."""
    sents = [t[a:b] for t in pdf_texts["nankoku_r4_shisei_houshin.pdf"] for a, b in sentence_spans(t)]
    ended = [s for s in sents if s.endswith("。")]
    assert len(ended) >= 0.8 * len(sents)
    assert any(s.startswith("次に、財政関係につきまして") for s in sents)
