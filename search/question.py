"""What a question is made of: its length bound and the words that frame it rather than name its topic.

One bound on the length of a question, applied at every entry point (CLI, API, UI, Engine).

A question is cut to :data:`MAX_QUESTION_CHARS` characters *before* any view, tokeniser or
embedder sees it: the embedder reads about 512 tokens anyway, and an unbounded question would
otherwise cost every view a fugashi pass over all of it (a 100,000-character question took 31 s on
``/answer``; docs/reliability.md).

The question-frame words live here, the one home for all of them (the engine, the highlighter and
the answer views import them from this module).
"""
from __future__ import annotations

#: Longer questions are cut to this many characters (documented in docs/cli.md and docs/ui.md).
MAX_QUESTION_CHARS = 1000


def clip_question(text: str | None) -> tuple[str, bool]:
    """``(question, truncated)``: ``text`` stripped and cut to :data:`MAX_QUESTION_CHARS`."""
    q = (text or "").strip()
    if len(q) > MAX_QUESTION_CHARS:
        return q[:MAX_QUESTION_CHARS].rstrip(), True
    return q, False


#: Lemmas that frame a question rather than name its topic (「…している自治体」「…した例」
#: 「…という書き方」): left out of the engine's BM25 query and the highlights unless nothing else
#: is left. The dense query keeps the whole question. Smaller than :data:`ANSWER_FRAME_TERMS` on
#: purpose: words such as 取り組み, 方針 or 仕組み still rank passages in BM25.
QUESTION_FRAME_TERMS = frozenset({
    "自治体", "自治", "体", "市", "町", "村", "県", "区", "都道府県", "市町村", "市区町村", "各市", "各",
    "何の", "どう", "何", "例", "事例", "文言", "記述", "表現", "書く", "振り", "方", "言い方",
})

#: The answer views' frame words (unidic lemma forms as :class:`index.tokenizer.Tokenizer` emits
#: them, lower-cased NFKC): everything users wrap a question in, including light verbs and the
#: frames of comparison topics, so that only the topic's concepts remain to be matched in sentences.
ANSWER_FRAME_TERMS = frozenset(
    {
        "市", "町", "村", "県", "区", "都", "府", "自治", "自治体", "団体", "市町村", "例", "事例",
        "文言", "表現", "書き方", "書く", "書きぶり", "書き振り", "振り", "記述", "言い回し", "触れる",
        "取り組み", "取組", "取り組む", "時", "体", "方", "ところ", "場合", "他", "ほか", "いる", "居る",
        "為る", "ため", "よう", "様", "こと", "事", "もの", "物", "など", "等",
        # light verbs: 「〜を使う／行う／用いる／図る」 say nothing about the topic
        "使う", "行う", "用いる", "図る",
        # frames of comparison topics: 「〜する方針」「〜の考え方」「〜の仕組み」
        "方針", "考え方", "仕組み",
    }
)

#: Trailing request frames of a wording question (「〜という書き方」「〜の文言」), longest first.
FRAME_SUFFIXES = ("という書き方", "という書きぶり", "という表現", "という記述", "という文言",
                  "を求める文言", "の文言", "の書き方", "の表現", "の記述", "に触れた記述",
                  "文言", "書き方", "書きぶり", "表現", "記述", "言い回し")
