"""Question type: which / compare / wording / fact, from the form of the question.

- **which** — which municipalities (or examples) do something: 「…している市」「どの自治体が…」
  「…した例はありますか」. Also the default: a bare topic (「給食センターの民間委託」) is most often
  asked to find who does it.
- **compare** — how municipalities differ or approach a topic: 「比べたい」「違い」「各市の考え方」
  「AとBとで」, or an approach noun at the head (「…を減らす方針」「…を防ぐ対策」).
- **wording** — text to reuse: 「文例」「書き方」「書きぶり」「文言」「表現」「言い回し」.
- **fact** — a value, date, count or period: 「いくら」「いつ」「何件」, or a measure noun at the head
  (「…の効果額」「…の推進期間」「…の職員数」).

The cues are data (``search/vocab/question_types.tsv``, plus the user's files; :mod:`search.vocab`).
How a question is read:

1. NFKC, whitespace removed (:func:`corpus.normalize.compact`); parenthetical asides 「（…）」「【…】」
   and quoted text 「「…」」『…』 are removed (an aside or a quoted phrase does not change what is
   asked: 「『いつでも相談できる』という表現」 is a wording question); ``not-cue`` text is blanked.
2. The head is the text left after polite/request endings are stripped from the end, repeatedly
   (「…はありますか」「…を教えてください」「…を知りたいのですが」). A cue ending in ``$`` counts only
   at the end of the head.
3. Precedence: any **wording** cue → wording (a question about wording is one whatever frames it:
   「…という書き方をしている市」); else any **compare** cue → compare; else, among **which** and
   **fact** cues, the one that ends nearest the end wins (Japanese puts what is asked last:
   「いつ有料化したか…市を知りたい」 is which, 「各市の…改定率」 is fact), a longer cue winning a tie;
   else which.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from corpus.normalize import compact
from search import vocab

#: The question types, in the order the UI lists them.
QUESTION_TYPES = ("which", "compare", "wording", "fact")

#: Japanese labels of the question types (shown in the app: 「質問の種類: どの自治体か」).
QUESTION_TYPE_LABELS = {
    "which": "どの自治体か",
    "compare": "比較",
    "wording": "文例・書き方",
    "fact": "数値・事実",
}

#: Longest text a ``…`` gap of a cue spans (a cue is read within one clause, not across a question).
CUE_GAP_CHARS = 24

_ASIDES = (
    re.compile(r"\([^()]*\)"),  # （…） after NFKC
    re.compile(r"【[^【】]*】"),
    re.compile(r"〔[^〔〕]*〕"),
    re.compile(r"「[^「」]*」"),
    re.compile(r"『[^『』]*』"),
)


def _cue_regex(cue: str) -> tuple[re.Pattern[str], bool]:
    """``(pattern, at_end)`` of one cue text (NFKC: ``…`` is ``...``)."""
    at_end = cue.endswith("$")
    body = cue[:-1] if at_end else cue
    parts = [compact(p) for p in body.split("...") if p]
    pattern = f"[^。?!]{{0,{CUE_GAP_CHARS}}}?".join(re.escape(p) for p in parts)
    return re.compile(pattern + ("$" if at_end else "")), at_end


@lru_cache(maxsize=1)
def _compiled() -> tuple[dict[str, list[tuple[re.Pattern[str], bool]]], re.Pattern[str] | None, tuple[str, ...]]:
    cues = {k: [_cue_regex(c) for c in vocab.VOCAB.cues[k]] for k in QUESTION_TYPES}
    masks = sorted({compact(m) for m in vocab.VOCAB.not_cues if compact(m)}, key=len, reverse=True)
    mask_re = re.compile("|".join(re.escape(m) for m in masks)) if masks else None
    endings = tuple(sorted({compact(e) for e in vocab.VOCAB.endings if compact(e)}, key=len, reverse=True))
    return cues, mask_re, endings


vocab.on_change(_compiled.cache_clear)
vocab.on_change(lambda: question_type.cache_clear())


def question_form(text: str) -> tuple[str, str]:
    """``(body, head)`` of a question: the comparison form without asides, quoted text and
    not-cue text, and that body with its polite/request endings stripped (step 1–2 above)."""
    _, mask_re, endings = _compiled()
    body = compact(text or "").lower()
    for _ in range(3):  # nested asides
        for rx in _ASIDES:
            body = rx.sub(lambda m: m.group(0)[0] + m.group(0)[-1] if m.group(0)[0] in "「『" else "", body)
    if mask_re is not None:
        body = mask_re.sub(lambda m: "・" * len(m.group(0)), body)
    head = body
    changed = True
    while changed and head:
        changed = False
        for e in endings:
            if head.endswith(e) and len(head) > len(e):
                head = head[: -len(e)]
                changed = True
                break
    return body, head


def _matches(kind: str, body: str, head: str) -> list[tuple[int, int]]:
    """``(end, length)`` of every match of a ``kind`` cue: anywhere in ``body``, or, for a
    ``$`` cue, at the end of ``head``."""
    cues, _, _ = _compiled()
    out = []
    for rx, at_end in cues[kind]:
        if at_end:
            m = rx.search(head)
            if m:
                out.append((m.end(), m.end() - m.start()))
        else:
            out.extend((m.end(), m.end() - m.start()) for m in rx.finditer(body))
    return out


@lru_cache(maxsize=4096)
def question_type(text: str) -> str:
    """The type of a question: one of :data:`QUESTION_TYPES` (see the module docstring for the
    cues and their precedence). An empty question is ``"which"``."""
    body, head = question_form(text)
    if _matches("wording", body, head):
        return "wording"
    if _matches("compare", body, head):
        return "compare"
    best = ("which", (-1, 0))
    for kind in ("which", "fact"):
        for pos in _matches(kind, body, head):
            if pos > best[1]:
                best = (kind, pos)
    return best[0]


def question_type_label(qtype: str) -> str:
    """The Japanese label of a question type (「どの自治体か」), for display."""
    return QUESTION_TYPE_LABELS.get(qtype, qtype)


_SENTENCE_END = re.compile(r"(?<=[。?!])")
#: A leading clause that says why the person asks (「計画に使いたいので、…」), not what.
_REASON_CLAUSE = re.compile(r"^[^、。]{2,40}?ので、")


def question_core(text: str) -> str:
    """The part of a question that names what is asked, for matching it against passages.

    Dropped, when something with content is left: asides in brackets （…） 【…】 〔…〕; sentences
    without a question-type cue when another sentence has one (「…自治体はどこですか。来年度の見直しで
    参考にしたいと考えています。」 keeps the first); a leading reason clause ending in 「ので、」; the
    polite/request endings of the question-type vocabulary (「…はありますか」「…を教えてください」).
    NFKC; the rest is the question's own text (quotes 「…」 are kept: they often name the topic).
    """
    t = unicodedata.normalize("NFKC", text or "").strip()
    stripped = t
    for _ in range(3):  # nested asides
        for rx in _ASIDES[:3]:
            stripped = rx.sub("", stripped)
    if len(compact(stripped)) >= 4:
        t = stripped.strip()
    sentences = [s.strip() for s in _SENTENCE_END.split(t) if s.strip()]
    if len(sentences) > 1:
        asked = [s for s in sentences if any(_matches(k, *question_form(s)) for k in QUESTION_TYPES)]
        if asked and len(asked) < len(sentences):
            t = "".join(asked)
    m = _REASON_CLAUSE.match(t)
    if m and len(compact(t[m.end():])) >= 4:
        t = t[m.end():]
    # The polite/request ending (「…はありますか」「…を教えてください」「…を探しています」) says how
    # the question is asked, not what: the endings of search/vocab/question_types.tsv.
    endings = _compiled()[2]
    changed = True
    while changed:
        changed = False
        t = t.rstrip(" 　")
        for e in endings:
            if t.endswith(e) and len(compact(t)) - len(e) >= 4:
                t = t[: -len(e)]
                changed = True
                break
    return t
