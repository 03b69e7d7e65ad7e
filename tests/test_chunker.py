"""corpus.chunker on the bundled documents: what a municipal user cares about."""
from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from corpus.chunker import chunk_document, chunk_document_detailed, split_text
from corpus.morph import count_tokens
from corpus.records import DocumentMeta, Page, RawDocument

BUNDLED = Path(__file__).resolve().parent.parent / "corpus"
STANDARD = ("path", "municipality", "prefecture", "title", "year", "kind", "url")


def bundled_meta(name: str) -> DocumentMeta:
    """The manifest row of a bundled document (extra columns into ``extra``)."""
    with (BUNDLED / "manifest.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["path"] == name:
                extra = {k: v for k, v in row.items() if k not in STANDARD and v}
                return DocumentMeta(*(row.get(k) or "" for k in STANDARD), extra=extra)
    raise KeyError(name)


def bundled_raw(name: str) -> RawDocument:
    """A RawDocument of a bundled .txt file (one page of running text, as the text reader gives)."""
    return RawDocument(str(BUNDLED / name), [Page(1, (BUNDLED / name).read_text(encoding="utf-8"))])


@pytest.fixture(scope="module")
def chunks_of():
    cache: dict[str, list] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = chunk_document(bundled_raw(name), bundled_meta(name))
        return cache[name]

    return get


def test_001_cost_awareness_chunk(chunks_of):
    hits = [c for c in chunks_of("001_886de96060501226.txt") if "日給・時給・分給・秒給という時間" in c.text]
    assert len(hits) == 1
    c = hits[0]
    assert "(7) コスト意識" in c.section_path
    assert c.section_path[0] == "4. 改革のための推進手段"
    assert c.item == "①職員及び組織全体におけるコスト意識の醸成"
    assert c.municipality == "つくばみらい市" and c.prefecture == "茨城県"
    assert "(7) コスト意識" in c.embed_text and c.text in c.embed_text


def test_001_toc_is_one_chunk_not_headings(chunks_of):
    chunks = chunks_of("001_886de96060501226.txt")
    toc = [c for c in chunks if c.item == "目次"]
    assert len(toc) == 1 and "(7) コスト意識\t11" in toc[0].text
    assert not any(c.item.endswith("\t11") for c in chunks)


def test_002_park_adoption_has_chapter_and_page(chunks_of):
    hits = [c for c in chunks_of("002_5d4461abb80c93bd.txt") if "公園アダプト制度を活用し" in c.text]
    assert len(hits) == 1
    c = hits[0]
    assert c.section_path[0].startswith("第２章")
    assert c.page_start > 1
    assert c.item == "（１） 協働事業の更なる推進"
    # lone page-number lines do not stay in the text
    assert not any(line.strip() in {"1", "11", "19"} for ch in chunks_of("002_5d4461abb80c93bd.txt") for line in ch.text.split("\n"))


def test_003_cases_are_attributed_to_their_municipality(chunks_of):
    chunks = chunks_of("003_66002c05080786b4.txt")

    def one(needle: str):
        hits = [c for c in chunks if needle in c.text]
        assert len(hits) == 1, needle
        return hits[0]

    akita = one("ＯＮＥ・ＡＱＩＴＡ")
    assert (akita.municipality, akita.prefecture) == ("秋田県", "秋田県")
    assert akita.item == "生活排水処理事業における県・市町村連携の推進"
    mie = one("ビジネスチャットを用いたコミュニケーションを開始")
    assert (mie.municipality, mie.prefecture) == ("三重県", "三重県")
    bingo = one("備後圏域連携推進室を設置。\n")
    assert (bingo.municipality, bingo.prefecture) == ("福山市", "広島県")
    # the 課題/取組/成果 sections stay in the case, letter spacing collapsed
    assert any("成果" in c.text.split("\n") for c in chunks if c.municipality == "三重県")
    # every part of a split case names the case in its embed text
    assert all(c.item in c.embed_text and c.municipality in c.embed_text for c in chunks)


def test_000_sheet_item_is_the_jimu_jigyo_name(chunks_of):
    chunks = chunks_of("000_981ffc30e8dd5eda.txt")
    assert {c.item for c in chunks} == {"広域行政（一部事務組合）事務事業"}
    assert any("負担金を支出しているため" in c.text for c in chunks)
    assert any(c.section_path[-1].startswith("① 総合計画上の位置付け") for c in chunks)
    assert any(c.section_path[-1].startswith("④ アウトカム") for c in chunks)
    assert any("後期基本計画" in c.text for c in chunks)  # vertical label collapsed


@pytest.mark.parametrize("name", ["000_981ffc30e8dd5eda.txt", "001_886de96060501226.txt", "002_5d4461abb80c93bd.txt", "003_66002c05080786b4.txt"])
def test_budget_is_respected(chunks_of, name):
    for c in chunks_of(name):
        assert count_tokens(c.text) <= 400 + 20, (c.item, count_tokens(c.text))
        assert c.parts >= 1 and 0 <= c.part < c.parts


def test_small_budget_splits_with_part_numbers_and_headers():
    name = "001_886de96060501226.txt"
    chunks = chunk_document(bundled_raw(name), bundled_meta(name), max_tokens=80)
    split = [c for c in chunks if c.parts > 1]
    assert split
    for c in chunks:
        assert count_tokens(c.text) <= 80 + 20
    for c in split:
        assert c.item in c.embed_text
    # the parts of an item concatenate back to its text in order
    first = [c for c in chunks if c.item == "1. はじめに"]
    assert [c.part for c in first] == list(range(first[0].parts))


def test_split_text_merges_small_tail_and_keeps_text():
    text = "市民協働を推進します。" * 30 + "以上。"
    parts = split_text(text, 50)
    assert "".join(parts) == text
    assert all(count_tokens(p) <= 50 + 20 for p in parts)
    assert count_tokens(parts[-1]) >= 3


def test_chunk_ids_stable_and_change_with_text():
    name = "001_886de96060501226.txt"
    a = chunk_document(bundled_raw(name), bundled_meta(name))
    b = chunk_document(bundled_raw(name), bundled_meta(name))
    assert [c.chunk_id for c in a] == [c.chunk_id for c in b]
    assert len({c.chunk_id for c in a}) == len(a)
    raw = bundled_raw(name)
    changed = RawDocument(raw.path, [Page(1, raw.pages[0].text.replace("日給・時給・分給・秒給という", "日給・時給という"))])
    c2 = chunk_document(changed, bundled_meta(name))
    old = {c.chunk_id for c in a}
    new = {c.chunk_id for c in c2}
    assert len(old - new) == 1 and len(new - old) == 1


def test_exact_duplicates_get_suffixes():
    text = "1. はじめに\n同じ文です。同じ文です。\n\n" * 1
    meta = DocumentMeta("x.txt", "テスト市", "テスト県", "テスト文書")
    raw = RawDocument("x.txt", [Page(1, "（１） 取組\n同じ本文がここにあります。十分な長さの文章にしておきます。\n（２） 取組\n別の本文がここにあります。十分な長さの文章にしておきます。")])
    chunks = chunk_document(raw, meta)
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    from corpus.chunker import items_to_chunks
    from corpus.records import Item

    it = Item((), "同じ項目", "同じ本文がここにあります。十分な長さの文章にしておきます。", 1, 1)
    ids = [c.chunk_id for c in items_to_chunks([it, replace(it)], meta)]
    assert ids[1] == ids[0] + "-2"


def test_records_layout_one_item_per_row():
    raw = RawDocument(
        "a.xlsx",
        [
            Page(1, "事業名：窓口業務の委託\n所管課：市民課\n内容：窓口業務を民間に委託する。", label="シート1 行2"),
            Page(2, "事業名：公共施設の統廃合\n所管課：財政課\n内容：施設の統廃合を進める。", label="シート1 行3"),
        ],
        layout="records",
    )
    res = chunk_document_detailed(raw, DocumentMeta("a.xlsx", "テスト市", "テスト県", "一覧"))
    assert res.shape == "records"
    assert [c.item for c in res.chunks] == ["窓口業務の委託", "公共施設の統廃合"]
    assert [c.department for c in res.chunks] == ["市民課", "財政課"]
    assert res.chunks[0].section_path == ("シート1",)
    assert res.chunks[1].page_start == 2


def test_shapes_of_bundled_documents():
    shapes = {n: chunk_document_detailed(bundled_raw(n), bundled_meta(n)).shape for n in
              ["000_981ffc30e8dd5eda.txt", "001_886de96060501226.txt", "002_5d4461abb80c93bd.txt", "003_66002c05080786b4.txt"]}
    assert shapes == {
        "000_981ffc30e8dd5eda.txt": "sheet",
        "001_886de96060501226.txt": "prose",
        "002_5d4461abb80c93bd.txt": "prose",
        "003_66002c05080786b4.txt": "cases",
    }
