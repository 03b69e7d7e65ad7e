"""The question-type classifier (search.qtype) on 40 phrasings written for this test.

Ten per type, phrased the way staff ask: polite endings, parenthetical asides, long questions,
and questions that carry cues of two types (the precedence of search/qtype.py decides).
None is taken from the evaluation question sets.
"""
from __future__ import annotations

import pytest

from search.qtype import QUESTION_TYPE_LABELS, QUESTION_TYPES, question_type

WHICH = [
    "公民館の統廃合を進めている自治体はどこですか",
    "電子申請（オンライン申請）の対象手続を大幅に増やした市はありますか",
    "指定管理者制度を図書館に導入した例を教えてください",
    "職員の定員適正化計画で技能労務職を削減している自治体を探しています",
    "ごみ収集を民間委託に切り替えた事例はありますでしょうか",
    "防災行政無線のデジタル化を近隣の市町と共同で行った団体",
    "どの市町村が公共施設の包括管理委託を導入していますか",
    # a fact cue (いつ) early, the municipality at the head
    "家庭ごみの有料化をいつ始めたかは問わないので、有料化を実施済みの市を知りたい",
    "給食費の公会計化に取り組んでいる市町村（政令指定都市を除く）",
    "当市では本庁舎の建替えを検討中ですが、PFIを活用して庁舎を建て替えた他市の例があれば参考にしたいので教えていただけますか",
]

COMPARE = [
    "小平市とつくばみらい市で、事務事業評価の進め方を比べたい",
    "直営を続ける市と民間委託に切り替えた市とで、学校給食の運営にどんな違いがありますか",
    "各市の公共施設の総量削減についての考え方",
    "職員の時間外勤務を減らすための方針を自治体ごとに比較したいです",
    "行政改革大綱の推進体制（外部委員会の有無など）は自治体によってどう異なりますか",
    "人口減少に合わせて公共施設の保有量を見直す方針",
    "市税の収納率を上げるための対策を、それぞれの自治体について整理したい",
    "広域連携による事務の共同処理について、県と市町村とで役割の分け方を知りたい",
    "窓口業務のアウトソーシングを進めるうえでの手法",
    "デジタル化の進め方について、規模の大きい市と小さい町ではどのような相違点があるでしょうか",
]

WORDING = [
    # 例 (which) and 文言: wording wins
    "職員一人ひとりがコスト意識を持つことを求める文言の例",
    "『選択と集中』という言い回しを使っている計画",
    "指定管理者の評価結果を公表するという書き方をしている自治体はありますか",
    "補助金の見直しについて、計画にどう書けばよいか参考になる文例を探しています",
    "受益者負担の適正化を掲げる表現（使用料・手数料の見直し）",
    "DXによって職員を企画立案業務へシフトさせる、という趣旨の記述がほしい",
    # いくつ (fact) and 市 (which) too: wording wins
    "公共施設マネジメントの基本方針の書きぶりを、いくつかの市で見てみたいです",
    "行革プランの冒頭に置く、財政の厳しさを市民に説明する文章の記載例",
    "PPP/PFIの優先的検討規程を策定したことを示す書き方はどのようなものでしょうか",
    "市民サービスの質を落とさずに経費を削減する、といった趣旨の文面",
]

FACT = [
    "第3次行革プランによる5年間の効果額はいくらですか",
    "ごみ処理手数料の改定はいつから実施されますか",
    "令和5年度の経常収支比率",
    "窓口のオンライン申請は年間何件ありましたか",
    "定員適正化計画で削減する職員数（再任用を除く）",
    "財政調整基金の残高は、令和6年度末の時点でどれくらいの見込みでしょうか",
    "公共施設等総合管理計画の計画期間は何年ですか",
    # 各市 (which) early, a measure noun at the head
    "各市の下水道使用料の改定率",
    "包括外部監査の委託料は毎年いくらかかっているのか教えてください",
    "この改革プランの推進期間について、開始と終了の年度を知りたいのですが",
]

CASES = ([(q, "which") for q in WHICH] + [(q, "compare") for q in COMPARE]
         + [(q, "wording") for q in WORDING] + [(q, "fact") for q in FACT])


@pytest.mark.parametrize(("question", "expected"), CASES)
def test_question_type(question: str, expected: str):
    """Each phrasing gets the type its form asks for."""
    assert question_type(question) == expected


def test_forty_phrasings_ten_per_type():
    """The set is what it says: 40 distinct questions, 10 per type."""
    assert len({q for q, _ in CASES}) == 40
    assert all(sum(1 for _, t in CASES if t == k) == 10 for k in QUESTION_TYPES)


def test_form_not_width_or_aside():
    """Full-width/half-width forms and a parenthetical aside do not change the type; quoted text
    is not read for cues (「いつでも」 inside quotes, 比較的 as an adverb)."""
    assert question_type("公共施設の総量を減らす方針") == question_type("公共施設の総量を減らす方針（延床面積ベース）") == "compare"
    assert question_type("給食費はいくら？") == question_type("給食費はいくら?") == "fact"
    assert question_type("「いつでも相談できる窓口」を掲げた市") == "which"
    assert question_type("比較的小規模な町で窓口を一本化した例") == "which"


def test_default_and_labels():
    """A bare topic is a which question; every type has a Japanese label."""
    assert question_type("学校給食センターの民間委託") == "which"
    assert question_type("") == "which"
    assert set(QUESTION_TYPE_LABELS) == set(QUESTION_TYPES)
    assert QUESTION_TYPE_LABELS["which"] == "どの自治体か"
