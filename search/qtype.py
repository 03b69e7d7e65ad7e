"""PLACEHOLDER (replaced by the h-vocab branch): question type from the question's form."""
from __future__ import annotations

QUESTION_TYPES = ("which", "compare", "wording", "fact")


def question_type(text: str) -> str:
    """"which", "compare", "wording" or "fact" from cue words."""
    t = text or ""
    if any(c in t for c in ("文例", "書き方", "書きぶり", "文言", "表現", "言い回し", "記述")):
        return "wording"
    if any(c in t for c in ("比べ", "比較", "違い", "それぞれ", "各市", "各自治体")):
        return "compare"
    if any(c in t for c in ("いくら", "いつ", "何件", "何人", "金額", "何年")):
        return "fact"
    return "which"
