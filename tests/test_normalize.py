"""corpus.normalize: comparison forms, display text, page furniture, page inference."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.normalize import (
    clean_display_text,
    compact,
    join_wrapped_lines,
    normalize_for_compare,
    page_number_value,
    split_at_page_number_lines,
    strip_page_furniture,
)
from corpus.records import Page


def test_radicals_and_vertical_forms_map_to_ordinary_characters():
    assert normalize_for_compare("⻑期計画") == "長期計画"
    assert normalize_for_compare("⻄部⺠間") == "西部民間"
    assert normalize_for_compare("⼀部") == "一部"  # Kangxi radical via NFKC
    assert normalize_for_compare("︵案︶") == "(案)"
    assert normalize_for_compare("\ue000行政") == "行政"  # private use dropped


def test_compact_removes_whitespace_after_normalising():
    assert compact("財政 運\n営　計画") == "財政運営計画"
    assert compact("ＡＢＣ １２") == "ABC12"


def test_join_wrapped_lines_japanese_and_latin():
    assert join_wrapped_lines(["財政運", "営"]) == "財政運営"
    assert join_wrapped_lines(["public", "private"]) == "public private"


def test_join_keeps_paragraph_breaks_and_bullets():
    text = join_wrapped_lines(["市民の声を聞きます。", "", "○ 窓口の改善", "○ 電子申請の拡大"])
    assert text.split("\n") == ["市民の声を聞きます。", "○ 窓口の改善", "○ 電子申請の拡大"]


def test_closing_bracket_continues_across_blank_line():
    # 001: 「ワーク・ライフ・バランス(仕事と生活の調\n\n和)」
    lines = ["そのため、職場意識の改革によるワーク・ライフ・バランス(仕事と生活の調", "", "和)の確保を進めます。"]
    assert "調和)" in join_wrapped_lines(lines)


def test_letter_spaced_headings_collapse_but_display_keeps_characters():
    assert clean_display_text("本 年 度 予 算 額") == "本年度予算額"
    assert clean_display_text("課 題") == "課題"
    assert clean_display_text("後\n\n期\n\n基\n\n本\n\n計\n\n画") == "後期基本計画"
    # no NFKC in display text: full-width digits stay
    assert clean_display_text("第３次　プラン") == "第３次　プラン"
    assert clean_display_text("\ue000 市民協働") == "市民協働"


def test_page_number_forms():
    assert page_number_value("- 3 -") == 3
    assert page_number_value("３") == 3
    assert page_number_value("3/12") == 3
    assert page_number_value("P.3") == 3
    assert page_number_value("3 年度") is None


def test_strip_page_furniture_removes_repeated_header_and_numbers():
    bodies = ["市民協働を進めます。", "窓口を改善します。", "施設を統合します。", "予算を見直します。", "職員を育成します。"]
    pages = [
        Page(i, f"小平市行財政再構築プラン\n\n第{i}節\n{bodies[i - 1]}\n続きの文{i}です。\n詳細は別紙{i}を参照。\n- {i} -")
        for i in range(1, 6)
    ]
    cleaned, removed = strip_page_furniture(pages)
    assert all("再構築プラン" not in p.text for p in cleaned)
    assert all(bodies[p.number - 1] in p.text for p in cleaned)
    assert "- 3 -" in removed and len(removed) == 10


def test_split_at_lone_page_numbers_with_gaps():
    text = "\n1 \n\n序文です。\n\n11 \n\n第二部の本文。\n\n19 \n\n最後の本文。\n\n321 \n"
    pages, removed = split_at_page_number_lines(text)
    assert [p.number for p in pages] == [1, 11, 19]
    assert "最後の本文。" in pages[-1].text and "321" in pages[-1].text  # a table value stays
    assert [r.strip() for r in removed] == ["1", "11", "19"]


def test_no_markers_means_one_page():
    pages, removed = split_at_page_number_lines("本文だけ。\n\n続き。")
    assert [p.number for p in pages] == [1] and removed == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="行財政改革の推進を図ります。、 abcXYZ", min_size=0, max_size=30), max_size=12))
def test_join_never_loses_characters(lines):
    assert compact(join_wrapped_lines(lines)) == compact("".join(lines))
    assert compact(clean_display_text("\n".join(lines))) == compact("".join(lines))
