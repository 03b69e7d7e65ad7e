"""Answer views: pure sentence logic on hand-made text, then the real index and model."""
from __future__ import annotations

import csv
import io
import json

import pytest

from corpus.records import Chunk
from search.answers import (
    NOT_FOUND,
    ComparisonColumn,
    ComparisonEntry,
    ComparisonTable,
    Evidence,
    MunicipalityAnswer,
    chunk_sentences,
    field_ranges,
    item_label,
    strip_frame,
)
from search.sentences import (
    char_ngrams,
    compact,
    content_terms,
    is_near_duplicate,
    jaccard,
    merge_near_duplicates,
    one_line,
    split_sentences,
)

BOM = b"\xef\xbb\xbf"


def _chunk(text: str, **kw) -> Chunk:
    base = dict(
        chunk_id="c1", doc_id="d.txt", municipality="架空市", prefecture="架空県", title="架空計画",
        section_path=("改革項目",), item="具体的取組", department="企画課", page_start=3, page_end=3,
        text=text, embed_text=text,
    )
    base.update(kw)
    return Chunk(**base)


# ------------------------------------------------------------------ sentences (pure)


def test_split_keeps_hard_wraps_inside_a_sentence() -> None:
    text = "　予算編成方針とともに中期財政見通しを作\n成・公表した。\n　今後も継続する。"
    spans = split_sentences(text)
    got = [text[a:b] for a, b in spans]
    assert got == ["予算編成方針とともに中期財政見通しを作\n成・公表した。", "今後も継続する。"]
    assert one_line(got[0]) == "予算編成方針とともに中期財政見通しを作成・公表した。"


def test_split_at_blank_lines_bullets_labels_and_brackets() -> None:
    text = "見出しの行\n\n・一つ目の項目\n・二つ目の項目\n取組状況：実施した。「完了。」次へ"
    got = [text[a:b] for a, b in split_sentences(text)]
    assert got == ["見出しの行", "・一つ目の項目", "・二つ目の項目", "取組状況：", "実施した。", "「完了。」", "次へ"]


def test_split_offsets_are_verbatim_and_trimmed() -> None:
    text = "  第1章　総則\n本計画は、4.9％の目標を定める。！？\n\n（1）目的\n目的を書く。 "
    for a, b in split_sentences(text):
        s = text[a:b]
        assert s == s.strip() and s
        assert text.find(s) >= 0
    # the decimal point does not end a sentence
    assert any("4.9％の目標を定める。！？" in text[a:b] for a, b in split_sentences(text))


def test_split_cuts_overlong_runs_at_line_breaks() -> None:
    line = "あ" * 100
    text = "\n".join([line] * 5)
    spans = split_sentences(text, max_chars=250)
    assert len(spans) >= 2
    assert all(b - a <= 250 for a, b in spans)


def test_compact_and_near_duplicates() -> None:
    a = "職員一人ひとりが、コスト意識を持つ。"
    b = "職員一人ひとりが、 コスト意識を\n持つ。"
    assert compact(a) == compact(b)
    assert is_near_duplicate(a, b)
    c = "職員一人ひとりが、コスト意識を常に持つ。"
    assert 0.5 < jaccard(char_ngrams(a), char_ngrams(c)) < 0.8  # a word added: similar, not the same
    long_a = "公共施設等総合管理計画に基づき、施設の複合化や長寿命化を進め、将来の更新費用を平準化する。"
    long_b = "公共施設等総合管理計画に基づき、施設の複合化や長寿命化を進め、将来の更新費用を平準化します。"
    assert is_near_duplicate(long_a, long_b)
    assert not is_near_duplicate(a, "公共施設の総量を削減する。")
    # full-width / half-width variants are the same sentence after NFKC
    assert is_near_duplicate("ＰＦＩを導入する。", "PFIを導入する。")


def test_merge_near_duplicates_keeps_first_and_lists_others() -> None:
    items = ["市民の声をデータベース化し共有する。", "公園を管理する。", "市民の声をデータベース化し、共有する。", "公園を管理する。"]
    groups = merge_near_duplicates(items, text=lambda s: s)
    assert [k for k, _ in groups] == ["市民の声をデータベース化し共有する。", "公園を管理する。"]
    assert groups[0][1] == ["市民の声をデータベース化し、共有する。"]
    assert groups[1][1] == ["公園を管理する。"]


def test_content_terms_drop_question_frame() -> None:
    terms = content_terms("学校給食センターを新しく作るときにPPP/PFIを検討している市")
    assert {"学校", "給食", "センター", "pfi"} <= set(terms)
    assert "市" not in terms and "居る" not in terms
    assert "文言" not in content_terms("コストを意識するよう求める文言")


def test_strip_frame() -> None:
    assert strip_frame("定型的な内部事務を委託や集約で効率化するという表現") == "定型的な内部事務を委託や集約で効率化する"
    assert strip_frame("行革の体制") == "行革の体制"


# ------------------------------------------------------------------ fields of progress tables (pure)


def test_status_field_sentences_are_preferred() -> None:
    content = "新たな施設の整備に\nあたり、手法を検討します。"
    status = "基本計画を策定\nした。民間活力の導入を検討した。"
    direction = "引き続き、PFIの導入可能性を検討する。"
    text = f"具体的取組：新施設の整備\n内容：{content}\n所管課：給食課\nR6取組状況：{status}\n今後の課題・方向性：{direction}"
    ch = _chunk(text, fields={"内容": content, "取組状況": status, "今後の課題・方向性": direction})
    names = {n for n, _, _ in field_ranges(ch)}
    assert names == {"内容", "取組状況", "今後の課題・方向性"}
    sents = chunk_sentences(ch)
    assert sents and all(f in ("取組状況", "今後の課題・方向性") for _, _, f in sents)
    assert [text[a:b] for a, b, _ in sents] == ["基本計画を策定\nした。", "民間活力の導入を検討した。", direction]
    # without preference every sentence of the passage is a candidate
    every = [text[a:b] for a, b, _ in chunk_sentences(ch, prefer_status=False)]
    assert "新たな施設の整備に\nあたり、手法を検討します。" in every and "基本計画を策定\nした。" in every
    assert not any(s.endswith("：") for s in every)  # labels are not sentences


def test_field_located_across_whitespace_differences() -> None:
    text = "取組状況\n　計画を 策定した。"
    ch = _chunk(text, fields={"取組状況": "計画を策定した。"})
    (name, a, b), = field_ranges(ch)
    assert name == "取組状況" and compact(text[a:b]) == "計画を策定した。"


def test_item_label_does_not_repeat_the_item() -> None:
    assert item_label(_chunk("x", section_path=("A", "B"), item="B")) == "A › B"
    assert item_label(_chunk("x", section_path=("A",), item="B")) == "A › B"


# ------------------------------------------------------------------ tables (pure)


def _evidence(muni: str) -> Evidence:
    return Evidence(muni, "架空県", "架空計画", "改革項目 › 取組", "企画課", 5, 5,
                    f"{muni}『架空計画』改革項目 › 取組（企画課） p.5", "c1", "d.txt", "")


def test_comparison_csv_has_bom_and_round_trips() -> None:
    e = ComparisonEntry(_evidence("甲市"), "公共施設の総量を、\n削減する。", 0, 10, "", 0.8, "…")
    table = ComparisonTable("公共施設", [ComparisonColumn("甲市", "架空県", [e]), ComparisonColumn("乙町", "", [])])
    for layout in ("long", "wide"):
        data = table.to_csv(layout=layout)
        assert data.startswith(BOM)
        rows = list(csv.reader(io.StringIO(data[len(BOM):].decode("utf-8"), newline="")))
        flat = [cell for row in rows for cell in row]
        assert any("公共施設の総量を、削減する。" in cell for cell in flat)
        assert NOT_FOUND in flat
    long_rows = list(csv.reader(io.StringIO(table.to_csv().decode("utf-8-sig"), newline="")))
    assert long_rows[0][0] == "自治体"
    assert long_rows[1][:3] == ["甲市", "1", "改革項目 › 取組"]
    assert long_rows[2][:3] == ["乙町", "", NOT_FOUND]
    d = table.to_dict()
    json.dumps(d, ensure_ascii=False)
    assert d["columns"][1]["cell"] == NOT_FOUND
    assert NOT_FOUND in table.to_text()


def test_unanswered_text_is_plain() -> None:
    ans = MunicipalityAnswer("競輪場", False, [], "該当する取組は見つかりませんでした（最も近いもの: X）")
    assert "該当する取組は見つかりませんでした" in ans.to_text()
    assert json.loads(json.dumps(ans.to_dict(), ensure_ascii=False))["answered"] is False
