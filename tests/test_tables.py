"""corpus.tables on the bundled 004 document (会津若松市 令和6年度の取組状況) and small synthetic tables."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from corpus.normalize import compact
from corpus.records import Item, Page
from corpus.tables import (
    looks_like_progress_table,
    parse_progress_table,
    parse_progress_table_detailed,
)

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
DOC = CORPUS / "004_f79ffdf675a5d26a.txt"
OTHERS = ["000_981ffc30e8dd5eda.txt", "001_886de96060501226.txt", "002_5d4461abb80c93bd.txt",
          "003_66002c05080786b4.txt"]

#: department cells per table page, counted by hand in the file (inline + floated)
DEPTS_PER_PAGE = [4, 5, 5, 4, 4, 3, 5, 5, 4, 5, 5, 5, 5, 5, 3, 5, 3, 3]


@pytest.fixture(scope="module")
def text() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def parsed(text):
    return parse_progress_table_detailed([Page(number=1, text=text)])


@pytest.fixture(scope="module")
def rows(parsed) -> list[Item]:
    return [it for it in parsed.items if it.department]


def c(s: str) -> str:
    return compact(s)


def find_row(rows: list[Item], needle: str) -> Item:
    """The one row whose 内容 (or title) contains ``needle`` (compared in compact form)."""
    hits = [r for r in rows
            if c(needle) in c(r.fields["内容"]) or c(needle) in c(r.title) or c(needle) == c(r.section_path[-1])]
    assert len(hits) == 1, f"{needle!r}: {len(hits)} rows {[h.title for h in hits]}"
    return hits[0]


def check_row(row: Item, *, title: str, dept: str, status: list[str], direction: list[str],
              absent: list[str], section: list[str] = ()) -> None:
    assert c(row.section_path[-1]) == c(title)  # the 具体的取組 closes the section path
    assert c(row.title) and c(row.title.rstrip("…")) in c(row.fields["内容"])  # named by its 内容
    assert row.department == dept
    for s in status:
        assert c(s) in c(row.fields["取組状況"]), s
        assert c(s) in c(row.text)
    for d in direction:
        assert c(d) in c(row.fields["今後の課題・方向性"]), d
        assert c(d) in c(row.text)
    whole = c(row.text + row.title + "".join(row.section_path))
    for a in absent:
        assert c(a) not in whole, f"neighbour text {a!r} leaked into {row.title}"
    path = c("".join(row.section_path))
    for s in section:
        assert c(s) in path


# --------------------------------------------------------------------------- detection


def test_detects_004_only(text):
    assert looks_like_progress_table(text)
    for name in OTHERS:
        assert not looks_like_progress_table((CORPUS / name).read_text(encoding="utf-8")), name


def test_detection_uses_header_not_prose():
    assert looks_like_progress_table("表\n取組項目 内容 担当課 令和5年度取組状況\n…")
    assert not looks_like_progress_table("3つの改革項目を掲げ、具体的取組を所管課が進めます。" * 3)


# --------------------------------------------------------------------------- rows of 004


def test_saijo_row_is_one_item(rows):
    row = find_row(rows, "斎場を建設する際は、PPP/PFI導入を検討する。")
    check_row(
        row,
        title="PPP／PFI手法導入の優先的な検討と推進",
        dept="市民課",  # floated to the top of page 12
        status=["新斎場整備基本計画（案）の策定を通じ、PPP/PFI手法導入に向けた方向性を整理した。"],
        direction=["新斎場整備基本方針の策定を受け", "PPP/PFI手法導入の有無を決定する。"],
        absent=["新庁舎", "新たな学校給食センター", "県立病院", "官民連携手法の導入推進"],
        section=["公共施設の管理・運営の最適化"],
    )
    # section path = (section heading, 改革項目, 具体的取組); the row is named by its own 内容
    assert row.section_path == ("⑵ 公共施設の管理・運営の最適化", "①公共施設の管理・運営の最適化",
                                "PPP／PFI手法導入の優先的な検討と推進")
    assert row.title == "斎場を建設する際は、PPP/PFI導入を検討する。"
    assert (row.page_start, row.page_end) == (12, 12)
    assert row.text.startswith("具体的取組：PPP／PFI手法導入の優先的な検討と推進\n内容：斎場を建設する際は、")


def test_chuki_zaisei_mitoshi(rows):
    row = find_row(rows, "中期財政見通しの策定")
    check_row(row, title="中期財政見通しの策定", dept="財政課",
              status=["これを基本に令和7年度当初予算編成を行った。"],
              direction=["3ヵ年の財政見通しとして策定している。", "見通しの精度を高められるよう"],
              absent=["総枠配分方式", "年間総額予算主義"],
              section=["持続可能な財政運営", "①安定的・効率的な財政運営の推進"])
    assert row.page_start == 1
    assert row.fields["内容"] == "毎年度、中期財政見通しを作成・公表し、当初予算編成をはじめとした財政運営の目安として活用します。"


def test_new_school_lunch_centre_row(rows):
    row = find_row(rows, "新たな学校給食センターを建設する際")
    check_row(row, title="PPP／PFI手法導入の優先的な検討と推進", dept="学校施設給食課",
              status=["整備する新たな学校給食センターの整備方針（案）の検討を行った。"],
              direction=["新たな学校給食センターの整備運営の実施を念頭に"],
              absent=["斎場", "新庁舎"])


def test_floated_departments(rows):
    check_row(find_row(rows, "新庁舎における維持管理"), title="PPP／PFI手法導入の優先的な検討と推進",
              dept="総務課", status=["管理業務の受託で実績のある事業者と意見交換"],
              direction=["庁舎管理について包括的な手法を含めて検討する。"],
              absent=["斎場", "県立病院", "アドバイザリー"])
    check_row(find_row(rows, "観光施設事業経営戦略"), title="財務状況の見える化の推進", dept="観光課",
              status=["公営企業法の適用について、調査に取り組んでいる。"],
              direction=["導入にあたっては慎重に検討する必要がある。"],
              absent=["卸売市場", "課内で共有", "統一的な基準"])
    check_row(find_row(rows, "農業水利施設、林道"), title="公共施設等の長寿命化", dept="農林課",
              status=["取水に影響する機能障害はなかった。"], direction=["農村公園"],
              absent=["公園施設長寿命化計画", "遊具更新"])
    check_row(find_row(rows, "道路や橋りょうの長寿命化"), title="公共施設等の長寿命化", dept="道路課",
              status=["新柳原橋の修繕工事を1件発注"],
              direction=["22橋のうち10橋が完了", "※10橋完了（会津大橋、東3号橋"],
              absent=["市営住宅", "遊具"])
    # a floated cell that carries a status glued on its line: 「総務課 　財務事務の電子決裁導入検討を行った。」
    check_row(find_row(rows, "内部手続における押印見直し"), title="庁内事務のデジタル化の推進",
              dept="総務課", status=["財務事務の電子決裁導入検討を行った。"],
              direction=["押印の見直しを行い、業務の電子化に向けた環境整備を行う。"],
              absent=["一般起案の電子決裁", "会計事務"])


def test_gomi_yuryoka_row(rows):
    row = find_row(rows, "生活系一般廃棄物")
    check_row(row, title="循環型社会に適応した負担の適正化", dept="環境共生課",
              status=["「ごみ緊急事態宣言」を発令", "令和８年４月からの制度導入を決定した。"],
              direction=["令和８年４月から家庭ごみ処理有料化を導入することとする。", "事業系ごみの適正排出"],
              absent=["徴収率", "現年度分の滞納", "公共工事"])
    assert row.section_path[1:] == ("①安定的・効率的な財政運営の推進", "循環型社会に適応した負担の適正化")
    assert row.page_start == 3


def test_ginou_roumu_row(rows):
    row = find_row(rows, "アウトソーシングが可能な業務を精査")
    check_row(row, title="現業部門のアウトソーシングの推進", dept="人事課・財政課",
              status=["検討状況（道路課案件）を確認した。"],
              direction=["技能労務職を退職者不補充とし、業務の民間委託を推進してきた。"],
              absent=["粗大ごみ", "建築住宅課案件", "行政組織"])


def test_naming_rights_row(rows):
    row = find_row(rows, "ネーミングライツ事業の検討")
    check_row(row, title="ネーミングライツ事業の検討", dept="財政課",
              status=["市内の複数の企業を訪問し、意見交換を行った。"],
              direction=["本市の実情にあった取組について検討していく。"],
              absent=["広告看板", "市有財産", "未利用財産"],
              section=["②歳入の増加に向けた取組"])


def test_kousaihi_ratio_row(rows):
    row = find_row(rows, "公債費負担の適正化")
    check_row(row, title="公債費負担の適正化", dept="財政課",
              status=["実質公債費比率は4.9％であり、目標の実質公債費比率に抑制できた。"],
              direction=["実質公債費比率6％程度を維持する", "進行管理を継続する。"],
              absent=["財政調整基金", "総枠配分", "年間総額予算主義"])
    assert "実質公債費比率は4.9％であり" in row.text  # the wrapped decimal is joined


def test_status_list_and_labelled_paragraphs(rows):
    row = find_row(rows, "時間外勤務の適正管理に努めながら")
    check_row(row, title="時間外勤務の適正管理", dept="人事課",
              status=["過労死レベル", "（時間外勤務の状況）", "R6：1人当たり月平均15.68時間"],
              direction=["依然として時間外勤務の大幅な縮減が厳しい状況"],
              absent=["行政機構", "給与制度"])
    assert "R3：1人当たり月平均14.71時間\nR4：" in row.fields["取組状況"]
    row = find_row(rows, "定年引上げを踏まえ")
    assert "R4.4.1　941名\nR5.4.1　929名" in row.fields["取組状況"]
    assert c("抑制基調の定員管理") in c(row.fields["今後の課題・方向性"])
    # 【部署】 labelled paragraphs: status = until a label repeats
    row = find_row(rows, "定型的業務等へのAI/RPA活用")
    assert row.department == "人事課・情報戦略課・財政課"
    assert row.fields["取組状況"].startswith("【人事課】") and "【情報戦略課】" in row.fields["取組状況"]
    assert row.fields["今後の課題・方向性"].startswith("【人事課】")
    assert "【情報統計課】" in row.fields["今後の課題・方向性"]


def test_status_and_direction_on_one_line(rows):
    row = find_row(rows, "税証明等手数料の収納")
    assert row.department == "税務課"
    assert row.fields["取組状況"] == "　令和6年10月に導入完了"
    assert row.fields["今後の課題・方向性"] == "　令和6年10月に導入完了。"


def test_row_continued_on_next_page_with_repeated_cells(rows):
    water = [r for r in rows if r.fields["内容"].startswith("上下水道料金について")]
    assert [(r.page_start, r.department) for r in water] == [(4, "上下水道局経営企画課"),
                                                             (5, "上下水道局経営企画課")]
    assert "【水道事業】" in water[0].fields["取組状況"] and "【下水道事業】" not in water[0].text
    assert "【下水道事業】" in water[1].fields["取組状況"]


# --------------------------------------------------------------------------- whole-document checks


def test_every_row_has_title_and_department_and_rows_match_department_cells(parsed, rows):
    assert len(rows) == sum(DEPTS_PER_PAGE) == 78
    for r in rows:
        assert r.title and r.department and r.fields["内容"], r
        assert r.fields["取組状況"] and r.fields["今後の課題・方向性"], r.title
        assert len(r.section_path) == 3 and r.section_path[1][0] in "①②③④"
        assert "改革項目" not in r.text and "「行財政改革" not in r.text
    per_page = Counter(r.page_start for r in rows)
    assert [per_page[p] for p in range(1, 19)] == DEPTS_PER_PAGE
    assert parsed.rows_per_page == parsed.departments_per_page
    assert list(parsed.departments_per_page.values()) == DEPTS_PER_PAGE
    assert parsed.warnings == []


def test_title_line_is_kept(parsed):
    first = parsed.items[0]
    assert first.section_path == () and not first.department
    assert first.text == "「行財政改革～未来へつなぐ自治体経営に向けて～」における令和6年度の取組状況"


def _furniture(lines: list[str]) -> set[int]:
    """Indexes of repeated page furniture, defined independently of the parser."""
    title = lines[1].strip()
    drop = set()
    seen_title = False
    for i, ln in enumerate(lines):
        s = ln.strip()
        if "改革項目" in s and "具体的取組" in s and "所管課" in s:
            drop.add(i)
        elif s == "R6取組状況" or re.match(r"^[⑴⑵⑶⑷⑸]　", s):
            drop.add(i)
        elif s == title:
            if seen_title:
                drop.add(i)
            seen_title = True
    return drop


def test_nothing_lost(text, parsed):
    lines = text.split("\n")
    drop = _furniture(lines)
    # two cells glued on one line (「総務課 　財務事務…」) are split where the next cell's 「　」 begins
    expected = [seg for i, ln in enumerate(lines) if i not in drop and ln.strip()
                for seg in re.split(r" (?=\u3000)", ln)]
    items = parsed.items
    try:  # engineer B's general check, when present
        from corpus.coverage import uncovered  # type: ignore[import-not-found]
    except ImportError:
        uncovered = None
    covered = c("\n".join(
        it.text + it.title + "".join(it.section_path) + it.department for it in items))
    # every source line lies, hard wraps joined, inside an item …
    missing = [ln for ln in expected if c(ln) not in covered]
    assert missing == []
    # … and no character was used fewer times than the source has it
    need = Counter(c("".join(expected)))
    have = Counter(c("".join(it.text + "".join(it.section_path) for it in items)))
    short = {ch: n - have[ch] for ch, n in need.items() if have[ch] < n}
    assert short == {}
    if uncovered is not None:
        try:
            gaps = uncovered(text, items, furniture=[lines[i] for i in sorted(drop)])
        except TypeError:
            gaps = None  # a different signature: the private check above stands
        if gaps is not None:
            assert not gaps


def test_real_pages_keep_their_numbers(text, parsed):
    """Given one Page per PDF page (the header starts each), page numbers come from the input."""
    lines = text.split("\n")
    starts = [i for i, ln in enumerate(lines) if "改革項目 具体的取組" in ln]
    # cut just before each page's title/section lines so every Page begins with its furniture
    cuts = [0] + [max(j for j in range(s - 4, s) if lines[j].strip() and j > 0) - 1 for s in starts[1:]]
    pages = [Page(number=n + 10, text="\n".join(lines[a:b]))
             for n, (a, b) in enumerate(zip(cuts, cuts[1:] + [len(lines)]))]
    items = [it for it in parse_progress_table(pages) if it.department]
    assert [(r.title, r.department, r.fields) for r in items] == \
        [(r.title, r.department, r.fields) for r in parsed.items if r.department]
    assert items[0].page_start == 10 and items[-1].page_start == 27


# --------------------------------------------------------------------------- synthetic shapes

SYNTH = """表題の行「テスト」の取組状況について

⑴　テストの節

改革項目 具体的取組 内容 所管課 今後の課題・方向性R6取組状況

総務課

①テスト項
目

取組その
一

一つ目の内容を検
討します。

　一つ目の状況を報告
する文章である。

　一つ目の方向を述べ
る文章である。

二つ目の内容を検
討します。

企画課

　二つ目の状況を報告
する文章である。
 表題の行「テスト」の取組状況について
⑴　テストの節

改革項目 具体的取組 内容 所管課 今後の課題・方向性R6取組状況

①テスト項
目

　二つ目の方向は次の
頁に続いている。

取組その
二

三つ目の内容を検
討します。

財政課

　三つ目の状況を報告
する文章である。

　三つ目の方向を述べ
る文章である。
"""


def test_synthetic_page_break_inside_a_row():
    result = parse_progress_table_detailed([Page(1, SYNTH)])
    rows = [it for it in result.items if it.department]
    assert [(r.section_path[-1], r.department, r.page_start, r.page_end) for r in rows] == [
        ("取組その一", "総務課", 1, 1),
        ("取組その一", "企画課", 1, 2),
        ("取組その二", "財政課", 2, 2),
    ]
    assert rows[1].fields["取組状況"] == "　二つ目の状況を報告する文章である。"
    assert rows[1].fields["今後の課題・方向性"] == "　二つ目の方向は次の頁に続いている。"
    assert rows[0].section_path == ("⑴ テストの節", "①テスト項目", "取組その一")
    assert result.items[0].text == "表題の行「テスト」の取組状況について"
    assert result.warnings == []


def test_unattributed_cells_are_kept():
    # two floated departments for one row: the extra one is kept in an item, with a warning
    text = SYNTH.replace("総務課\n", "総務課\n\n人事課\n", 1)
    result = parse_progress_table_detailed([Page(1, text)])
    assert any("人事課" in it.text for it in result.items if not it.department)
    assert result.warnings


def test_no_header_gives_no_rows():
    items = parse_progress_table([Page(1, "ただの文章です。\n表はありません。")])
    assert all(not it.department for it in items)
    assert "ただの文章です。" in items[0].text
