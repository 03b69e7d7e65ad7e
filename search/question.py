"""What a question is made of: its length bound and the words that frame it rather than name its topic.

One bound on the length of a question, applied at every entry point (CLI, API, UI, Engine).

A question is cut to :data:`MAX_QUESTION_CHARS` characters *before* any view, tokeniser or
embedder sees it: the embedder reads about 512 tokens anyway, and an unbounded question would
otherwise cost every view a fugashi pass over all of it (a 100,000-character question took 31 s on
``/answer``; docs/reliability.md).

The question-frame words are reached here, the one home for all of them (the engine, the
highlighter and the answer views import them from this module); their entries are data in
search/vocab/frames.tsv (:mod:`search.vocab`).
"""
from __future__ import annotations

from search.vocab import VOCAB

#: Longer questions are cut to this many characters (documented in docs/cli.md and docs/ui.md).
MAX_QUESTION_CHARS = 1000


def clip_question(text: str | None) -> tuple[str, bool]:
    """``(question, truncated)``: ``text`` stripped and cut to :data:`MAX_QUESTION_CHARS`."""
    q = (text or "").strip()
    if len(q) > MAX_QUESTION_CHARS:
        return q[:MAX_QUESTION_CHARS].rstrip(), True
    return q, False


# The frame words are data: search/vocab/frames.tsv (plus the user's vocab_files), read by
# search.vocab. These names are the loaded sets/lists themselves, so a user file added later
# (search.vocab.use_vocab_files) is seen by every module that imported them. Treat them as read-only.

#: Lemmas that frame a question rather than name its topic (「…している自治体」「…した例」
#: 「…という書き方」): left out of the engine's BM25 query and the highlights unless nothing else
#: is left. The dense query keeps the whole question. Smaller than :data:`ANSWER_FRAME_TERMS` on
#: purpose: words such as 取り組み, 方針 or 仕組み still rank passages in BM25.
QUESTION_FRAME_TERMS: set[str] = VOCAB.question_frame

#: The answer views' frame words (unidic lemma forms as :class:`index.tokenizer.Tokenizer` emits
#: them, lower-cased NFKC): everything users wrap a question in, including light verbs and the
#: frames of comparison topics, so that only the topic's concepts remain to be matched in sentences.
ANSWER_FRAME_TERMS: set[str] = VOCAB.answer_frame

#: Trailing request frames of a wording question (「〜という書き方」「〜の文言」), longest first.
FRAME_SUFFIXES: list[str] = VOCAB.frame_suffixes
