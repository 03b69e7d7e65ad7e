"""The BM25 tokeniser: real fugashi + unidic-lite, real bm25s."""
from __future__ import annotations

import bm25s
import numpy as np
from bm25s.tokenization import Tokenized
from hypothesis import given, settings
from hypothesis import strategies as st

from index.tokenizer import Tokenizer

TOK = Tokenizer()


def _bm25(passages: list[str]) -> tuple[bm25s.BM25, dict[str, int]]:
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in TOK.tokenize(p)] for p in passages]
    r = bm25s.BM25()
    r.index(Tokenized(ids=ids, vocab=vocab), show_progress=False)
    return r, vocab


def _top(passages: list[str], query: str) -> int:
    r, vocab = _bm25(passages)
    q = [vocab[t] for t in dict.fromkeys(TOK.tokenize(query)) if t in vocab]
    scores = r.get_scores_from_ids(q)
    return int(np.argmax(scores))


def test_fullwidth_and_halfwidth_ascii_terms_match() -> None:
    full = TOK.tokenize("ＰＰＰ／ＰＦＩ手法の導入")
    half = TOK.tokenize("PPP/PFI手法の導入")
    assert full == half
    assert {"ppp/pfi", "ppp", "pfi"} <= set(full)


def test_ascii_terms_whole_and_lowercased() -> None:
    terms = TOK.tokenize("DX・RPAとICTを活用")
    assert {"dx", "rpa", "ict"} <= set(terms)
    assert "DX" not in terms


def test_either_form_of_a_slashed_term_matches() -> None:
    passages = ["PFIによる庁舎整備を行う。", "公園の維持管理を見直す。", "職員の定員を適正化する。"]
    assert _top(passages, "PPP/PFI") == 0
    assert _top(["PPP/PFIの導入を検討", "公園の維持管理", "定員の適正化"], "PFI") == 0


def test_compound_noun_query_finds_shorter_compound() -> None:
    passages = [
        "学校の教室に空調設備を整備します。",
        "給食センターの運営を民間事業者に委託する。",
        "市役所の窓口業務を見直します。",
        "センター試験の会場を確保する。",
    ]
    assert _top(passages, "学校給食センター") == 1


def test_shorter_compound_query_finds_longer_compound() -> None:
    passages = ["学校給食センターの統合を進める。", "図書館の開館時間を延長する。", "下水道の整備を行う。"]
    assert _top(passages, "給食センター") == 0


def test_bigrams_are_emitted() -> None:
    terms = TOK.tokenize("学校給食センター")
    assert {"学校", "給食", "センター", "学校給食", "給食センター"} <= set(terms)


def test_particles_and_auxiliaries_dropped() -> None:
    terms = TOK.tokenize("市役所の窓口業務を民間へ委託しました。")
    for particle in ("の", "を", "へ", "ます", "た", "。"):
        assert particle not in terms
    assert "委託" in terms and "窓口" in terms


def test_no_whitespace_split_of_japanese() -> None:
    sentence = "公共施設等総合管理計画に基づき施設の統廃合と長寿命化を計画的に推進する"
    terms = TOK.tokenize(sentence)
    assert sentence not in terms
    assert len(terms) >= 8
    assert {"公共", "施設", "管理", "計画", "統廃合", "推進"} <= set(terms)


def test_lemmas_and_original_offsets() -> None:
    text = "窓口業務を見直し、ＲＰＡを導入しました"
    spans = TOK.tokenize_with_spans(text)
    found = {t: text[s:e] for t, s, e in spans}
    assert found["見直す"] == "見直し"  # lemma, highlighted where the inflected form stands
    assert found["rpa"] == "ＲＰＡ"  # offsets in the original (full-width) text
    assert found["窓口業務"] == "窓口業務"


def test_pdf_line_breaks_inside_words_are_joined() -> None:
    text = "住民サービ\n\nスの向上"
    spans = TOK.tokenize_with_spans(text)
    assert ("サービス", 2, 8) in spans


def test_version_string() -> None:
    assert TOK.version.startswith("ja-lemma-bigram-")


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("学校給食センターのをはPFI/ＰＤＣＡ 、。\n１2ｶﾞ") + ["\u3000"]), max_size=40))
def test_spans_always_inside_the_text(text: str) -> None:
    for term, s, e in TOK.tokenize_with_spans(text):
        assert term
        assert 0 <= s < e <= len(text)
