"""One bound on the length of a question, applied at every entry point (CLI, API, UI, Engine).

A question is cut to :data:`MAX_QUESTION_CHARS` characters *before* any view, tokeniser or
embedder sees it: the embedder reads about 512 tokens anyway, and an unbounded question would
otherwise cost every view a fugashi pass over all of it (a 100,000-character question took 31 s on
``/answer``; docs/reliability.md).
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
