"""corpus.structure, corpus.cases, corpus.sheets: headings, outline, shapes."""
from __future__ import annotations

import pytest

from corpus.cases import is_case_collection, parse_case_title, parse_prefecture_map, resolve_prefecture
from corpus.records import Page
from corpus.sheets import is_evaluation_sheet
from corpus.structure import Line, classify_heading, is_toc_line, parse_outline, prose_items


HEADING_KINDS = [
    ("第１章 基本的考え方", "章"),
    ("第2節 財政", "節"),
    ("1. はじめに", "N."),
    ("２ これまでの取組状況 ", "N"),
    ("（１） 第３次行財政再構築プランの位置付け", "(N)"),
    ("(7) コスト意識", "(N)"),
    ("⑴ 持続可能な財政運営", "⑴"),
    ("①コミュニケーションのある組織の風土づくり", "①"),
    ("ア 窓口サービスの改善", "ア"),
    ("【重点取組】", "【】"),
    ("＜基本的考え方＞", "＜＞"),
    ("《推進手段(7)コスト意識》 × 《基本姿勢(1)人・組織》", "《》"),
    ("方針１：地域協働の推進", "方針"),
]

NOT_HEADINGS = [
    "10 年の市政の基本目標「高品質なまち」の創造の実現に向けて、効果的かつ効率",
    "（２）、（３）の３つ視点を踏まえて、行財政の仕組みを再構築していきます。",
    "○ 窓口の改善",
    "・ 電子申請の拡大",
    "(1)市民満足度の向上\t①コミュニケーション\t②未来",
    "1. 改革を進めます。",
]


@pytest.mark.parametrize("line,kind", HEADING_KINDS)
def test_heading_kinds(line: str, kind: str):
    assert classify_heading(line).kind == kind


@pytest.mark.parametrize("line", NOT_HEADINGS)
def test_sentences_bullets_tables_are_not_headings(line: str):
    assert classify_heading(line) is None


def test_toc_lines_are_not_headings():
    assert is_toc_line("(1) 市民満足度の向上\t6")
    assert is_toc_line("第1章 総論…………3")
    assert classify_heading("(1) 市民満足度の向上\t6") is None
    assert not is_toc_line("(1) 市民満足度の向上")


def test_outline_paths_and_toc_section():
    text = "\n".join([
        "表紙の言葉",
        "目次",
        "1. はじめに\t1",
        "2. 推進手段\t2",
        "1. はじめに",
        "本文です。",
        "2. 推進手段",
        "(1) 市民満足度の向上",
        "《推進手段(1)》 × 《基本姿勢(1)》",
        "①風土づくり",
        "議論の場づくりを進めます。",
        "《推進手段(1)》 × 《基本姿勢(2)》",
        "②積極投資",
        "未来への投資を行います。",
        "(2) 協働・連携",
        "連携を進めます。",
    ])
    secs = parse_outline([Line(1, t) for t in text.split("\n")], "文書名")
    by_title = {s.title: s for s in secs}
    assert [ln.text for ln in by_title["文書名"].lines] == ["表紙の言葉"]
    assert "1. はじめに\t1" in [ln.text for ln in by_title["目次"].lines]
    assert by_title["1. はじめに"].section_path == ()
    assert by_title["②積極投資"].section_path == ("2. 推進手段", "(1) 市民満足度の向上", "《推進手段(1)》 × 《基本姿勢(2)》")
    assert by_title["(2) 協働・連携"].section_path == ("2. 推進手段",)


def test_empty_caption_becomes_text_of_previous_item():
    pages = [Page(1, "（１） 位置付け\n本文です。\n＜図の題名＞\n第１章 基本的考え方\n１ 実現に向けて\n本文2。")]
    items = prose_items(pages, "文書")
    first = next(i for i in items if i.title == "（１） 位置付け")
    assert "＜図の題名＞" in first.text
    assert not any(i.title == "＜図の題名＞" for i in items)
    assert next(i for i in items if i.title == "１ 実現に向けて").section_path == ("第１章 基本的考え方",)


def test_case_titles_and_prefectures():
    t = parse_case_title("ビジネスチャットで広域的に業務を効率化 ＜三重県（人口約17４万人）＞")
    assert t.title == "ビジネスチャットで広域的に業務を効率化" and t.municipality == "三重県"
    assert parse_case_title("備後圏域連携中枢都市圏の連携強化＜福山市 46万人＞").municipality == "福山市"
    assert parse_case_title("＜ 広域化・共同化、市町村との協働 ＞") is None
    assert resolve_prefecture("秋田県", "") == "秋田県"
    assert resolve_prefecture("松山市", "愛媛県松山市の事例") == "愛媛県"
    assert resolve_prefecture("福山市", "本文", parse_prefecture_map("福山市=広島県; 倉敷市=岡山県")) == "広島県"
    assert resolve_prefecture("福山市", "本文") == ""


def test_shape_detection_by_content_not_name():
    two_cases = "事例A＜秋田県（人口約91万人）＞\n本文\n事例B＜三重県（人口約174万人）＞\n本文"
    assert is_case_collection(two_cases)
    assert not is_case_collection("事例A＜秋田県（人口約91万人）＞\n本文")
    sheet = "① 位置付け\n事務事業名\n広域行政\n② 活動\n本文"
    assert is_evaluation_sheet(sheet)
    assert not is_evaluation_sheet("① 位置付け\n② 活動\n本文")
