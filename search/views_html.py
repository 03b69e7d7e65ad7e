"""Pure HTML rendering for the app (no gradio import, unit-testable).

Every piece of document text and every user input is DATA: it passes through :func:`esc`
(``html.escape`` plus the template characters ``$ { } ` ``), so a document containing
``<script>alert(1)</script>``, markdown ``**bold**`` or ``[x](javascript:…)`` shows as literal
text. Only markup built here is trusted. Links are built from ids with :func:`doc_href`, never
from document text (a manifest URL is shown only when it is ``http(s)://``).
"""
from __future__ import annotations

import html
import re
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote

from corpus.records import page_label

_EXTRA = str.maketrans({"$": "&#36;", "{": "&#123;", "}": "&#125;", "`": "&#96;"})


def esc(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute (``None`` → empty string).

    Besides ``& < > " '`` the template characters ``$ { } ` `` are encoded too, so no
    front-end template engine can ever interpret document text.
    """
    if value is None:
        return ""
    return html.escape(str(value), quote=True).translate(_EXTRA)


def doc_href(doc_id: str, chunk_id: str | None = None) -> str:
    """The app route that shows a document, optionally at one chunk: ``/doc/<id>#chunk-<id>``."""
    href = "/doc/" + quote(str(doc_id), safe="/")
    if chunk_id:
        href += "#chunk-" + quote(str(chunk_id), safe="")
    return href


def chunk_anchor(chunk_id: str) -> str:
    """The element id of a chunk on the document page (matches :func:`doc_href`)."""
    return "chunk-" + quote(str(chunk_id), safe="")


def safe_url(url: str | None) -> str:
    """``url`` when it is an http(s) URL, else an empty string (no ``javascript:`` links)."""
    u = (url or "").strip()
    return u if re.match(r"^https?://", u, re.I) else ""


# ── highlighting ──────────────────────────────────────────────────────────────────────────────

def highlight(text: str, spans: Iterable[Mapping[str, Any] | Any]) -> str:
    """Escaped ``text`` with spans wrapped in ``<mark>``.

    ``spans`` are dicts or objects with ``start``, ``end`` and ``kind`` ("term" or "sentence");
    overlapping spans are fine: each stretch gets ``<mark class="…">`` with the kinds covering it
    (``sent`` for the best sentence, ``term`` for a query term). Out-of-range spans are clipped.
    """
    n = len(text)
    marks: list[tuple[int, int, str]] = []
    for s in spans or ():
        get = s.get if isinstance(s, Mapping) else (lambda k, d=None, _s=s: getattr(_s, k, d))
        try:
            a, b = max(0, int(get("start"))), min(n, int(get("end")))
        except (TypeError, ValueError):
            continue
        if a < b:
            marks.append((a, b, "sent" if get("kind", "term") == "sentence" else "term"))
    if not marks:
        return esc(text)
    bounds = sorted({0, n, *(a for a, _, _ in marks), *(b for _, b, _ in marks)})
    out: list[str] = []
    for a, b in zip(bounds, bounds[1:]):
        kinds = sorted({k for s, e, k in marks if s <= a and b <= e})
        piece = esc(text[a:b])
        out.append(f'<mark class="{" ".join(kinds)}">{piece}</mark>' if kinds else piece)
    return "".join(out)


# ── small pieces ──────────────────────────────────────────────────────────────────────────────

def copy_widget(text: str, label: str = "出典をコピー") -> str:
    """A copy button (JS ``navigator.clipboard`` via the page script) with a visible fallback field.

    The page script (:data:`COPY_SCRIPT`) handles clicks on ``.sk-copy`` by event delegation; when
    the clipboard API is unavailable it selects the read-only field so the user can press Ctrl+C.
    """
    t = esc(text)
    return (
        f'<span class="sk-copywrap"><button type="button" class="sk-copy" data-copy="{t}" '
        f'title="クリップボードにコピー">{esc(label)}</button>'
        f'<input class="sk-cite" type="text" readonly value="{t}" aria-label="出典"></span>'
    )


def pages_label(page_start: Any, page_end: Any) -> str:
    """「p.3」 or 「pp.3–5」 (empty when unknown): :func:`corpus.records.page_label`."""
    return page_label(page_start, page_end)


def confidence_html(conf: Any) -> str:
    """確度 as a label and number: 高 (≥ 0.75), 中 (≥ 0.6), 低 — or the value as given when not a number."""
    try:
        x = float(conf)
    except (TypeError, ValueError):
        return esc(conf)
    level, cls = ("高", "hi") if x >= 0.75 else (("中", "mid") if x >= 0.6 else ("低", "lo"))
    return f'<span class="sk-lv sk-lv-{cls}" title="確度 {x:.2f}">{level}</span> <span class="sk-sub">{x:.2f}</span>'


def heading(text: str) -> str:
    """A small section heading (escaped)."""
    return f'<h3 class="sk-h">{esc(text)}</h3>'


def message_html(text: str, kind: str = "info") -> str:
    """A one-paragraph notice (``kind``: info, warn, error, empty)."""
    return f'<div class="sk-msg sk-{esc(kind)}">{esc(text)}</div>'


def notice_html(text: str) -> str:
    """A warning notice for ``text`` (e.g. the question was cut), or ``""`` when there is none."""
    return message_html(text, "empty") if text else ""


def question_type_html(label: str) -> str:
    """The small 「質問の種類: …」 line above the results (escaped), or ``""`` without a label."""
    return f'<div class="sk-sub sk-qtype">質問の種類: {esc(label)}</div>' if label else ""


# ── 検索 tab ──────────────────────────────────────────────────────────────────────────────────

def _first(d: Mapping[str, Any], *keys: str, default: Any = "") -> Any:
    for k in keys:
        v = d.get(k)
        if v not in (None, ""):
            return v
    return default


def _answer_table(rows: Sequence[Mapping[str, Any]], low: bool = False) -> str:
    """The rows of a municipality answer as a table; ``low`` labels every row 低 (nearest rows of
    a declined answer, not answers)."""
    head = "".join(f"<th>{h}</th>" for h in ("自治体", "該当項目", "回答となる文", "所管課", "ページ", "確度", "出典"))
    body = []
    for r in rows:
        muni = _first(r, "municipality")
        pref = _first(r, "prefecture")
        item = _first(r, "item", "section")
        section = _first(r, "section") if item != _first(r, "section") else ""
        sentence = _first(r, "sentence_text", "sentence", "text")
        page = _first(r, "page")
        if not page:
            page = pages_label(r.get("page_start"), r.get("page_end"))
        elif isinstance(page, int) or str(page).isdigit():
            page = page_label(page)
        conf = _first(r, "confidence", "confidence_label")
        conf_html = low_confidence_html(conf) if low else confidence_html(conf)
        citation = _first(r, "citation")
        link = ""
        if r.get("doc_id"):
            link = f' <a class="sk-open" href="{esc(doc_href(r["doc_id"], r.get("chunk_id")))}" target="_blank" rel="noopener">開く</a>'
        sec_html = f'<div class="sk-sub">{esc(section)}</div>' if section else ""
        pref_html = f'<div class="sk-sub">{esc(pref)}</div>' if pref else ""
        body.append(
            "<tr>"
            f'<td class="sk-muni">{esc(muni)}{pref_html}</td>'
            f"<td>{esc(item)}{sec_html}</td>"
            f'<td class="sk-sentence">{esc(sentence)}</td>'
            f"<td>{esc(_first(r, 'department'))}</td>"
            f'<td class="sk-nowrap">{esc(page)}</td>'
            f'<td class="sk-conf">{conf_html}</td>'
            f'<td class="sk-citecell">{copy_widget(citation) if citation else ""}{link}</td>'
            "</tr>"
        )
    cls = "sk-table sk-near" if low else "sk-table"
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def low_confidence_html(conf: Any) -> str:
    """確度 shown as 低 whatever its number (the nearest rows of a declined answer)."""
    try:
        num = f' <span class="sk-sub">{float(conf):.2f}</span>'
    except (TypeError, ValueError):
        num = ""
    return f'<span class="sk-lv sk-lv-lo" title="確度が低いため回答にはしていません">低</span>{num}'


def render_answer(answer: Mapping[str, Any] | None) -> str:
    """The municipality answer table (自治体 / 該当項目 / 回答となる文 / 所管課 / ページ / 確度 / 出典).

    ``answer`` is ``MunicipalityAnswer.to_dict()``. When it is not answered its message
    (「確かな該当は見つかりませんでした。近い箇所: …」, or 「見つかりませんでした」) is shown, and
    the nearest rows (``near``) under it, each labelled 低.
    """
    if not answer:
        return ""
    rows = list(answer.get("rows") or [])
    if not answer.get("answered", bool(rows)) or not rows:
        msg = answer.get("message") or "見つかりませんでした"
        out = message_html(msg, "empty")
        near = [r for r in (answer.get("near") or []) if isinstance(r, Mapping)]
        if not near and isinstance(answer.get("nearest"), Mapping):
            near = [answer["nearest"]]
        if near:
            out += (
                '<div class="sk-answer"><div class="sk-note">近い箇所（確度が低いため回答にはしていません）</div>'
                f"{_answer_table(near, low=True)}</div>"
            )
        return out
    note = answer.get("message") if answer.get("message") not in (None, "") else ""
    note_html = f'<div class="sk-note">{esc(note)}</div>' if note else ""
    return f'<div class="sk-answer">{_answer_table(rows)}{note_html}</div>'


def render_result_card(r: Mapping[str, Any]) -> str:
    """One passage card from ``Result.to_json()``: where it is, the highlighted text, citation, link."""
    where = " › ".join(x for x in (r.get("section") or "", r.get("item") or "") if x)
    if r.get("item") and (r.get("section") or "").endswith(r.get("item") or ""):
        where = r.get("section") or ""
    pages = pages_label(r.get("page_start"), r.get("page_end"))
    meta = [
        f'<span class="sk-muni">{esc(r.get("municipality"))}</span>',
        f'<span class="sk-pref">{esc(r.get("prefecture"))}</span>' if r.get("prefecture") else "",
        f'<span class="sk-title">『{esc(r.get("title"))}』</span>' if r.get("title") else "",
    ]
    details = [
        f'<span class="sk-where">{esc(where)}</span>' if where else "",
        f'<span class="sk-dept">所管課: {esc(r.get("department"))}</span>' if r.get("department") else "",
        f'<span class="sk-page">{esc(pages)}</span>' if pages else "",
    ]
    href = doc_href(r.get("doc_id", ""), r.get("chunk_id"))
    ext = safe_url(r.get("url"))
    ext_html = f' <a href="{esc(ext)}" target="_blank" rel="noopener noreferrer">原本</a>' if ext else ""
    return (
        f'<article class="sk-card" data-chunk="{esc(r.get("chunk_id"))}">'
        f'<header><span class="sk-rank">{esc(r.get("rank"))}</span>{"".join(meta)}</header>'
        f'<div class="sk-details">{"".join(details)}</div>'
        f'<div class="sk-text">{highlight(r.get("text") or "", r.get("spans") or [])}</div>'
        f'<footer>{copy_widget(r.get("citation") or "")}'
        f'<a class="sk-open" href="{esc(href)}" target="_blank" rel="noopener">文書のこの箇所を開く</a>{ext_html}</footer>'
        "</article>"
    )


def render_results(results: Sequence[Mapping[str, Any]], query: str = "", message: str = "") -> str:
    """The passage cards; with none, ``message`` (why, e.g. filters that nothing passes) or a
    not-found message naming the query."""
    if not results:
        if message:
            return message_html(message, "empty")
        return message_html(f"「{query}」に該当する箇所は見つかりませんでした。" if query else "見つかりませんでした", "empty")
    return '<div class="sk-cards">' + "".join(render_result_card(r) for r in results) + "</div>"


def bar_chart_svg(items: Sequence[tuple[str, float]], title: str = "", unit: str = "件", width: int = 520) -> str:
    """A small horizontal inline-SVG bar chart; labels are escaped. Empty string for no items."""
    items = [(str(k), float(v)) for k, v in items if v]
    if not items:
        return ""
    bar_h, gap, label_w, top = 22, 6, 170, 28 if title else 6
    vmax = max(v for _, v in items) or 1.0
    plot_w = width - label_w - 50
    h = top + len(items) * (bar_h + gap) + 4
    parts = [
        f'<svg class="sk-chart" xmlns="http://www.w3.org/2000/svg" width="100%" style="max-width:{width}px" '
        f'viewBox="0 0 {width} {h}" role="img" aria-label="{esc(title)}">'
    ]
    if title:
        parts.append(f'<text x="0" y="18" class="sk-chart-title" font-size="14" font-weight="bold">{esc(title)}</text>')
    for i, (label, v) in enumerate(items):
        y = top + i * (bar_h + gap)
        w = max(2.0, plot_w * v / vmax)
        shown = label if len(label) <= 12 else label[:11] + "…"
        num = f"{int(v)}" if v == int(v) else f"{v:.2f}"
        parts.append(
            f"<g><title>{esc(label)}: {esc(num)}{esc(unit)}</title>"
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="12">{esc(shown)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="3" fill="#3b82f6"></rect>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 15}" font-size="12">{esc(num)}{esc(unit)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def match_counts(results: Sequence[Mapping[str, Any]], by: str = "municipality") -> list[tuple[str, int]]:
    """Number of passages per municipality (or prefecture), most first, ties by name."""
    counts: dict[str, int] = {}
    for r in results:
        key = r.get(by) or "（不明）"
        counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


# ── 比較 tab ──────────────────────────────────────────────────────────────────────────────────

def render_comparison(table: Mapping[str, Any] | None) -> str:
    """A comparison table from ``ComparisonTable.to_dict()``: one column per municipality.

    Accepted shapes: ``{"municipalities": [...], "rows": [{"label"/"aspect": …, "cells": [...]}]}``
    or ``{"columns": [{"municipality": …, "entries"/"cells": [...]}]}`` where an entry is a dict with
    ``sentence``/``text``, ``item``, ``department``, ``page`` and ``citation``.
    """
    if not table:
        return ""
    columns = list(table.get("columns") or [])
    if not columns:
        return message_html(table.get("message") or "比較できる自治体が見つかりませんでした", "empty")
    head = "".join(
        f'<th>{esc(c.get("municipality"))}'
        + (f'<div class="sk-sub">{esc(c.get("prefecture"))}</div>' if c.get("prefecture") else "")
        + "</th>"
        for c in columns
    )
    cells = []
    for c in columns:
        entries = c.get("entries") or c.get("cells") or c.get("rows") or []
        if not entries or not isinstance(entries, list):
            cells.append(f'<td class="sk-emptycell">{esc(c.get("cell") or c.get("message") or "該当なし")}</td>')
            continue
        parts = []
        for e in entries:
            where = " › ".join(x for x in (e.get("section") or "", e.get("item") or "") if x)
            page = e.get("page") or pages_label(e.get("page_start"), e.get("page_end"))
            if isinstance(page, int) or str(page).isdigit():
                page = page_label(page)
            href = doc_href(e["doc_id"], e.get("chunk_id")) if e.get("doc_id") else ""
            link = f' <a class="sk-open" href="{esc(href)}" target="_blank" rel="noopener">開く</a>' if href else ""
            parts.append(
                '<div class="sk-entry">'
                + (f'<div class="sk-where">{esc(where)}</div>' if where else "")
                + f'<div class="sk-sentence">{esc(e.get("sentence_text") or e.get("sentence") or e.get("text") or "")}</div>'
                + '<div class="sk-sub">'
                + (f"所管課: {esc(e.get('department'))} " if e.get("department") else "")
                + esc(page)
                + "</div>"
                + (copy_widget(e["citation"]) if e.get("citation") else "")
                + link
                + "</div>"
            )
        cells.append("<td>" + "".join(parts) + "</td>")
    topic = table.get("topic")
    cap = f"<caption>比較: {esc(topic)}</caption>" if topic else ""
    return (
        f'<div class="sk-compare"><table class="sk-table">{cap}<thead><tr>{head}</tr></thead>'
        f'<tbody><tr>{"".join(cells)}</tr></tbody></table></div>'
    )


# ── 文例 tab ──────────────────────────────────────────────────────────────────────────────────

def render_wording(found: Mapping[str, Any] | None) -> str:
    """Verbatim sentences with copy buttons (sentence and citation) from ``WordingResult.to_dict()``."""
    if not found:
        return ""
    items = list(found.get("hits") or found.get("sentences") or found.get("items") or found.get("rows") or [])
    if not items:
        return message_html(found.get("message") or "文例は見つかりませんでした", "empty")
    out = [message_html(found["message"], "info")] if found.get("message") else []
    for i, s in enumerate(items, 1):
        sentence = s.get("sentence_text") or s.get("sentence") or s.get("text") or ""
        citation = s.get("citation") or ""
        also = [a.get("citation") for a in (s.get("also") or []) if isinstance(a, Mapping) and a.get("citation")]
        also_html = "".join(f'<div class="sk-sub">同じ文: {esc(a)}</div>' for a in also)
        href = doc_href(s["doc_id"], s.get("chunk_id")) if s.get("doc_id") else ""
        link = f'<a class="sk-open" href="{esc(href)}" target="_blank" rel="noopener">文書のこの箇所を開く</a>' if href else ""
        out.append(
            '<article class="sk-card sk-wording">'
            f'<div class="sk-quote"><span class="sk-rank">{i}</span>{esc(sentence)}</div>'
            f'<div class="sk-sub">{esc(citation)}</div>{also_html}'
            f'<footer>{copy_widget(sentence, "文をコピー")}{copy_widget(citation) if citation else ""}{link}</footer>'
            "</article>"
        )
    return '<div class="sk-cards">' + "".join(out) + "</div>"


# ── 文書 tab and the document page ───────────────────────────────────────────────────────────

def render_documents(docs: Sequence[Mapping[str, Any]]) -> str:
    """The corpus table: municipality, title, kind, year, chunks, pages read with OCR (blank when
    none), warnings, id (with a link)."""
    if not docs:
        return message_html("文書がありません", "empty")
    head = "".join(f"<th>{h}</th>" for h in ("自治体", "題名", "種類", "年度", "チャンク数", "OCR ページ", "取り込み時の警告", "文書 ID"))
    rows = []
    for d in docs:
        warnings = d.get("warnings") or d.get("messages") or []
        if isinstance(warnings, str):
            warnings = [warnings]
        warn_html = "".join(f'<div class="sk-warn">{esc(w)}</div>' for w in warnings)
        doc_id = d.get("doc_id") or d.get("path") or ""
        rows.append(
            "<tr>"
            f'<td>{esc(d.get("municipality"))}'
            + (f'<div class="sk-sub">{esc(d.get("prefecture"))}</div>' if d.get("prefecture") else "")
            + "</td>"
            f'<td><a href="{esc(doc_href(doc_id))}" target="_blank" rel="noopener">{esc(d.get("title") or doc_id)}</a></td>'
            f'<td>{esc(d.get("kind"))}</td><td>{esc(d.get("year"))}</td>'
            f'<td class="sk-num">{esc(d.get("chunks", d.get("n_chunks", "")))}</td>'
            f'<td class="sk-num">{esc(d.get("ocr_pages") or "")}</td>'
            f"<td>{warn_html}</td>"
            f'<td class="sk-id">{esc(doc_id)}</td>'
            "</tr>"
        )
    return f'<table class="sk-table sk-docs"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def render_document_page(meta: Mapping[str, Any], chunks: Sequence[Mapping[str, Any]]) -> str:
    """A standalone HTML page of one document: its chunks in order, each with an anchor.

    ``chunks`` are ``Chunk.to_dict()`` dicts; the target chunk (``#chunk-<id>``) is highlighted
    with CSS ``:target`` and scrolled to by the browser.
    """
    title = meta.get("title") or meta.get("doc_id") or meta.get("path") or "文書"
    ext = safe_url(meta.get("url"))
    info = " / ".join(esc(x) for x in (meta.get("municipality"), meta.get("prefecture"), meta.get("kind"), meta.get("year")) if x)
    secs = []
    for c in chunks:
        where = " › ".join(x for x in (*(c.get("section_path") or []), ) if x)
        item = c.get("item") or ""
        if item and not where.endswith(item):
            where = f"{where} › {item}" if where else item
        pages = pages_label(c.get("page_start"), c.get("page_end"))
        dept = f"所管課: {esc(c.get('department'))}" if c.get("department") else ""
        secs.append(
            f'<section id="{esc(chunk_anchor(c.get("chunk_id", "")))}">'
            f'<h2>{esc(where) or "（本文）"}</h2>'
            f'<div class="meta">{esc(pages)} {dept} <a href="#{esc(chunk_anchor(c.get("chunk_id", "")))}">#</a></div>'
            f'<div class="text">{esc(c.get("text") or "")}</div></section>'
        )
    body = "".join(secs) or '<p>この文書のチャンクはありません。</p>'
    return (
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{DOC_PAGE_CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><div class=\"info\">{info}</div>"
        f"<div class=\"info\">文書 ID: {esc(meta.get('doc_id') or meta.get('path'))}"
        + (f' ・ <a href="{esc(ext)}" target="_blank" rel="noopener noreferrer">原本</a>' if ext else "")
        + "</div></header>"
        f"<main>{body}</main></body></html>"
    )


DOC_PAGE_CSS = """
body{font-family:"IPAPGothic","IPAexGothic","Noto Sans CJK JP","IPAGothic",sans-serif;max-width:960px;margin:0 auto;padding:16px;color:#1f2937;line-height:1.7}
header{border-bottom:2px solid #3b82f6;margin-bottom:16px}
h1{font-size:1.3em;margin:.2em 0}.info{color:#4b5563;font-size:.9em}
section{border:1px solid #e5e7eb;border-radius:8px;padding:8px 14px;margin:12px 0}
section:target{border:2px solid #f59e0b;background:#fffbeb}
h2{font-size:1em;margin:.3em 0;color:#1e40af}.meta{font-size:.85em;color:#6b7280}
.text{white-space:pre-wrap;word-break:break-word}
"""

APP_CSS = """
.sk-table{border-collapse:collapse;width:100%;font-size:14px}
.sk-table th,.sk-table td{border:1px solid #d1d5db;padding:6px 8px;vertical-align:top;text-align:left}
.sk-table th{background:#eff6ff;white-space:nowrap}
.sk-table caption{text-align:left;font-weight:bold;padding:4px 0}
.sk-sub{color:#6b7280;font-size:12px}
.sk-nowrap{white-space:nowrap}.sk-num{text-align:right}
.sk-sentence{line-height:1.6}
.sk-answer th:nth-child(1){width:7em}.sk-answer th:nth-child(2){width:24%}.sk-answer th:nth-child(3){width:34%}
.sk-answer th:nth-child(7){width:14em}
.sk-conf{white-space:nowrap;font-weight:bold}
.sk-msg{padding:10px 14px;border-radius:8px;background:#f3f4f6;margin:6px 0}
.sk-empty{background:#fef3c7}.sk-error{background:#fee2e2;color:#991b1b}.sk-warn{color:#92400e;font-size:12px}
.sk-cards{display:flex;flex-direction:column;gap:10px}
.sk-card{border:1px solid #d1d5db;border-radius:10px;padding:10px 14px;background:#fff}
.sk-card header{display:flex;gap:8px;align-items:baseline;flex-wrap:wrap;font-size:15px}
.sk-card .sk-muni{font-weight:bold;color:#1e3a8a}
.sk-rank{display:inline-block;min-width:1.6em;text-align:center;background:#1e40af;color:#fff;border-radius:4px;font-size:12px;margin-right:6px}
.sk-details{display:flex;gap:12px;flex-wrap:wrap;color:#4b5563;font-size:13px;margin:2px 0 6px}
.sk-text{white-space:pre-wrap;word-break:break-word;max-height:14em;overflow:auto;font-size:14px;line-height:1.7;background:#f9fafb;padding:6px 8px;border-radius:6px}
.sk-text mark.term{background:#fde68a;padding:0 1px}
.sk-text mark.sent{background:#dbeafe}
.sk-text mark.sent.term{background:#fcd34d}
.sk-card footer{display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin-top:6px}
.sk-copywrap{display:inline-flex;gap:4px;align-items:center;flex:1 1 320px;min-width:0}
.sk-copy{border:1px solid #2563eb;color:#1d4ed8;background:#eff6ff;border-radius:6px;padding:2px 8px;cursor:pointer;white-space:nowrap;font-size:13px}
.sk-copy.sk-done{background:#dcfce7;border-color:#16a34a;color:#166534}
.sk-cite{flex:1;min-width:0;font-size:12px;border:1px solid #e5e7eb;border-radius:4px;padding:2px 4px;color:#374151;background:#fafafa}
.sk-citecell .sk-copywrap{display:flex;flex-direction:column;align-items:stretch}
.sk-open{white-space:nowrap;font-size:13px}
.sk-quote{font-size:15px;line-height:1.7}
.sk-entry{border-bottom:1px dashed #e5e7eb;padding:4px 0}
.sk-id{font-family:monospace;font-size:12px}
.sk-status{font-size:13px;color:#374151}
.sk-h{margin:6px 0 6px;font-size:1.1em}
.sk-compare table{table-layout:fixed}
.sk-status .sk-msg{padding:4px 10px;margin:0}
.sk-lv{display:inline-block;padding:0 6px;border-radius:4px;color:#fff}
.sk-lv-hi{background:#15803d}.sk-lv-mid{background:#ca8a04}.sk-lv-lo{background:#9ca3af}
.sk-note{font-size:13px;color:#4b5563;margin-top:4px}
"""

COPY_SCRIPT = """
<script>
document.addEventListener('click', function (ev) {
  var btn = ev.target && ev.target.closest ? ev.target.closest('.sk-copy') : null;
  if (!btn) return;
  var text = btn.getAttribute('data-copy') || '';
  var field = btn.parentElement ? btn.parentElement.querySelector('.sk-cite') : null;
  function done(ok) {
    var old = btn.getAttribute('data-label') || btn.textContent;
    btn.setAttribute('data-label', old);
    btn.textContent = ok ? 'コピーしました' : 'Ctrl+C でコピー';
    btn.classList.add('sk-done');
    setTimeout(function () { btn.textContent = old; btn.classList.remove('sk-done'); }, 1500);
  }
  function fallback() {
    if (field) { field.focus(); field.select(); }
    var ok = false;
    try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
    done(ok);
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
  } else { fallback(); }
});
</script>
"""
