"""Items → chunks: shape dispatch, token-budget splitting, stable ids, embed text.

:func:`chunk_document` is what the loader calls. It

1. infers pages from lone page-number lines when the reader gave one page of running text, and
   strips page furniture (repeated headers/footers, page numbers);
2. picks the parser by the *shape of the text* (never the file name): records layout (one item per
   page, e.g. spreadsheet rows) → progress table (:mod:`corpus.tables`, when present) → case
   collection (:mod:`corpus.cases`) → evaluation sheet (:mod:`corpus.sheets`) → prose outline
   (:mod:`corpus.structure`);
3. merges prose items too small to stand alone into a neighbour, splits over-long items at
   sentence ends under the token budget — and items whose text spans more than two pages, so
   that every part cites the pages of its own text (:attr:`Item.page_marks`) — and builds
   :class:`~corpus.records.Chunk` s.

:func:`chunk_document_detailed` also returns the parser used and the removed boilerplate lines,
which the nothing-lost check (:mod:`corpus.coverage`) needs.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from corpus.budget import attach_leftovers, budget_items, duplicate_lines, is_budget_table, page_text
from corpus.cases import case_items, is_case_collection, parse_prefecture_map
from corpus.morph import count_tokens, morphemes
from corpus.normalize import (
    drop_private_use,
    page_marks,
    split_at_page_number_lines,
    strip_page_furniture,
)
from corpus.pdf_items import (  # table_row_item and table_section are re-exported for callers and tests
    _DEPT_KEYS,
    _NAME_KEYS,
    table_items,
    table_row_item,  # noqa: F401
    table_section,  # noqa: F401
    text_outside_tables,
)
from corpus.records import SECTION_SEP, Chunk, DocumentMeta, Item, Page, RawDocument
from corpus.sentences import sentence_spans
from corpus.shapes import PageShape, page_shapes
from corpus.sheets import is_evaluation_sheet, sheet_items
from corpus.structure import lines_of, prose_items

#: Parts and items below this many tokens are merged into a neighbour instead of standing alone.
MIN_TOKENS = 20

try:  # the progress-table parser (engineer C); optional so that a missing module never breaks chunking
    from corpus.tables import looks_like_progress_table, parse_progress_table
except ImportError:  # pragma: no cover - exercised only when corpus.tables is absent
    looks_like_progress_table = None  # type: ignore[assignment]
    parse_progress_table = None  # type: ignore[assignment]
try:
    from corpus.tables import parse_progress_table_detailed
except ImportError:  # pragma: no cover
    parse_progress_table_detailed = None  # type: ignore[assignment]


@dataclass
class ChunkResult:
    """Chunks of one document plus how they were made."""

    chunks: list[Chunk]
    #: "records", "progress_table", "cases", "sheet" or "prose"; "pdf_table" (PDF table rows
    #: only) or "pdf_table+<shape>" (table rows, the rest of the text by that shape)
    shape: str
    #: Lines removed as boilerplate (page furniture, lone page numbers), as they were.
    removed: list[str] = field(default_factory=list)
    #: The pages after page inference and furniture stripping.
    pages: list[Page] = field(default_factory=list)
    #: Which pages were cut how: runs of (first page, last page, "table" / "ocr" / text shape)
    #: (corpus.shapes.page_shapes; shown by ``seisaku chunks``).
    page_shapes: list[PageShape] = field(default_factory=list)


# --------------------------------------------------------------------------- pages


def prepare_pages(raw: RawDocument) -> tuple[list[Page], list[str]]:
    """Pages ready for parsing: page numbers inferred from lone number lines when the reader gave a
    single page of running text, then page furniture stripped. Returns pages and removed lines."""
    pages = [Page(p.number, p.text.replace("\r\n", "\n").replace("\r", "\n"), p.label, lines=p.lines) for p in raw.pages]
    removed: list[str] = []
    if len(pages) == 1 and raw.layout == "text":
        split, rm = split_at_page_number_lines(pages[0].text, pages[0].number)
        if rm:
            pages = [replace(p, label=pages[0].label) for p in split]
            removed.extend(rm)
    if raw.layout == "text":
        pages, rm = strip_page_furniture(pages)
        removed.extend(rm)
    return pages, removed


# --------------------------------------------------------------------------- records layout

_KV_RE = re.compile(r"^[\s　]*([^:：\t]{1,30}?)[\s　]*[:：\t][\s　]*(.*)$")


def record_items(pages: list[Page], doc_title: str) -> list[Item]:
    """Items of a records-layout document: one per page (a spreadsheet row rendered as
    「見出し：値」 lines). ``section_path`` = (the sheet part of ``Page.label``,); ``title`` = the
    value of the first name-like column (事務事業名, 事業名, 取組名, 項目 …), else the first value."""
    items: list[Item] = []
    for p in pages:
        lines = [drop_private_use(ln).rstrip() for ln in p.text.split("\n")]
        lines = [ln for ln in lines if ln.strip()]
        if not lines:
            continue
        kv: dict[str, str] = {}
        for ln in lines:
            m = _KV_RE.match(ln)
            if m and m.group(2).strip():
                kv.setdefault(m.group(1).strip(), m.group(2).strip())
        title = ""
        for key in _NAME_KEYS:
            hit = next((v for k, v in kv.items() if k == key), None) or next(
                (v for k, v in kv.items() if key in k), None
            )
            if hit:
                title = hit
                break
        if not title:
            title = next(iter(kv.values()), lines[0].strip())[:80]
        dept = next((v for k, v in kv.items() if any(d in k for d in _DEPT_KEYS)), "")
        sheet = re.sub(r"[\s　]*(?:行|row)[\s　]*\d+[\s　]*$", "", p.label or "").strip()
        items.append(
            Item(
                section_path=(sheet,) if sheet else (),
                title=title,
                text="\n".join(ln.strip() for ln in lines),
                page_start=p.number,
                page_end=p.number,
                department=dept,
                fields=kv,
            )
        )
    return items


# --------------------------------------------------------------------------- budget split

def _units(text: str) -> list[str]:
    """``text`` cut into its sentences (:func:`corpus.sentences.sentence_spans`) as units that
    concatenate back to ``text`` exactly: the whitespace between two sentences goes to the first
    up to and including its last line break (a line break stays with the line it ends), the rest
    (an indent) to the second. A 「見出し：」 label stays in one unit with its value, so that no part
    ends with a bare label."""
    spans = sentence_spans(text)
    bounds = [0]
    for (_a, b), (a2, _b2) in zip(spans, spans[1:]):
        if text[b - 1] in "：:":
            continue
        nl = text.rfind("\n", b, a2)
        bounds.append(nl + 1 if nl >= 0 else a2)
    bounds.append(len(text))
    return [text[x:y] for x, y in zip(bounds, bounds[1:]) if y > x]


#: A piece of a hard split never has more characters than this many per token of the budget (a
#: 64 kB line of digits or a URL is a handful of "tokens" but must not become one huge chunk).
HARD_SPLIT_CHARS_PER_TOKEN = 6


def _hard_split(unit: str, max_tokens: int) -> list[str]:
    """Split one over-long sentence into pieces of at most ``max_tokens`` tokens and
    ``max_tokens * HARD_SPLIT_CHARS_PER_TOKEN`` characters, after a 、/，/, in the second half of a
    piece where there is one, else at a token boundary (a single over-long token is cut by
    characters). One tagger pass and one walk over the tokens: linear in the length of ``unit``
    (it was cubic: a 64 kB line of digits took 366 s). The pieces concatenate back to ``unit``."""
    max_chars = max(1, max_tokens * HARD_SPLIT_CHARS_PER_TOKEN)
    toks = [(m.start, m.end, m.surface in ("、", "，", ",")) for m in morphemes(unit) if m.surface.strip()]
    out: list[str] = []
    start = 0  # where the current piece starts in ``unit``
    i = 0  # first token not yet in a finished piece
    n = len(toks)
    while i < n:
        j = i
        while j < n and j - i < max_tokens and toks[j][1] - start <= max_chars:
            j += 1
        if j == n:
            break
        if j == i:  # one token longer than max_chars (a run of digits, a URL): cut by characters
            cut = start + max_chars
            out.append(unit[start:cut])
            start = cut
            while i < n and toks[i][1] <= start:
                i += 1
            continue
        k = j - 1
        mid = i + (j - i) // 2
        while k > mid and not toks[k][2]:
            k -= 1
        if not toks[k][2]:
            k = j - 1
        cut = toks[k][1]
        out.append(unit[start:cut])
        start, i = cut, k + 1
    while len(unit) - start > max_chars:  # a tail of whitespace or an over-long last token
        out.append(unit[start:start + max_chars])
        start += max_chars
    if start < len(unit):
        out.append(unit[start:])
    return [p for p in out if p]


#: A part of a split item spans at most this many pages (a paragraph or a table row that crosses a
#: page break may span two; a part never crosses two page breaks).
MAX_PART_PAGES = 2

PageOf = Callable[[int, int], tuple[int, int]]


def _unit_spans(text: str, max_tokens: int, page_of: PageOf | None, page_breaks: list[int]) -> list[tuple[int, int]]:
    """``text`` cut into units (sentences, lines, hard-split pieces) as [start, end) spans that
    tile it; a unit whose text would span more than :data:`MAX_PART_PAGES` page numbers (it
    crosses two page breaks, or one between pages 1 and 4 when 2 and 3 have no text) is cut at
    the page breaks where that happens."""
    max_chars = max_tokens * HARD_SPLIT_CHARS_PER_TOKEN
    spans: list[tuple[int, int]] = []
    pos = 0
    for u in _units(text):
        too_long = len(u) > max_chars or count_tokens(u) > max_tokens
        for piece in _hard_split(u, max_tokens) if too_long else [u]:
            start, end = pos, pos + len(piece)
            pos = end
            for b in (b for b in page_breaks if start < b < end):
                if not _fits_pages(page_of, start, b + 1):
                    spans.append((start, b))
                    start = b
            spans.append((start, end))
    return spans


def _fits_pages(page_of: PageOf | None, start: int, end: int) -> bool:
    """True when ``text[start:end]`` spans at most :data:`MAX_PART_PAGES` page numbers."""
    if page_of is None:
        return True
    first, last = page_of(start, end)
    return last - first < MAX_PART_PAGES


def split_spans(
    text: str,
    max_tokens: int,
    *,
    min_tokens: int = MIN_TOKENS,
    page_of: PageOf | None = None,
    page_breaks: tuple[int, ...] = (),
) -> list[tuple[int, int]]:
    """The parts of :func:`split_text` as [start, end) offsets into ``text``.

    With ``page_of`` (offsets → (first page, last page), e.g. :meth:`Item.pages_of`) and
    ``page_breaks`` (offsets where a new page begins), a part also spans at most
    :data:`MAX_PART_PAGES` page numbers: an item under the budget is still cut when its text
    spans more pages, the cut falls at a sentence or line end, and at a page break when a single
    sentence runs over three pages."""
    max_chars = max_tokens * HARD_SPLIT_CHARS_PER_TOKEN
    small = len(text) <= max_chars and count_tokens(text) <= max_tokens
    if small and _fits_pages(page_of, 0, len(text)):
        return [(0, len(text))]
    spans = _unit_spans(text, max_tokens, page_of, sorted(page_breaks) if page_of is not None else [])
    # balanced parts: aim at total / n tokens each, never above max_tokens
    counts = [count_tokens(text[a:b]) for a, b in spans]
    total = sum(counts)
    n = max(1, -(-total // max_tokens))
    target = min(max_tokens, int(total / n * 1.1) + 1)
    parts: list[list[int]] = []  # [start, end, tokens]
    cur: list[int] | None = None
    for (a, b), t in zip(spans, counts):
        if cur is not None and (
            cur[2] + t > max_tokens
            or (cur[2] + t > target and cur[2] >= target * 0.6)
            or not _fits_pages(page_of, cur[0], b)
        ):
            parts.append(cur)
            cur = None
        if cur is None:
            cur = [a, b, t]
        else:
            cur[1], cur[2] = b, cur[2] + t
    if cur is not None:
        if parts and count_tokens(text[cur[0]:cur[1]]) < min_tokens and _fits_pages(page_of, parts[-1][0], cur[1]):
            parts[-1][1] = cur[1]
        else:
            parts.append(cur)
    out: list[tuple[int, int]] = []
    for a, b, _ in parts:
        piece = text[a:b]
        if not piece.strip():
            continue
        a += len(piece) - len(piece.lstrip("\n"))
        b -= len(piece) - len(piece.rstrip("\n"))
        out.append((a, b))
    return out


def split_text(text: str, max_tokens: int, *, min_tokens: int = MIN_TOKENS) -> list[str]:
    """Split ``text`` into parts of at most ``max_tokens`` tokens (corpus.morph.count_tokens) at
    sentence ends and line ends, balanced (each near total / number of parts); a trailing part under ``min_tokens`` joins the previous part
    (which may then exceed the budget by less than ``min_tokens``). Parts concatenate back to
    ``text`` (then stripped)."""
    return [text[a:b] for a, b in split_spans(text, max_tokens, min_tokens=min_tokens)]


def item_spans(item: Item, max_tokens: int) -> list[tuple[int, int]]:
    """The [start, end) parts of an item's text: the budget split, and with page marks also at
    most :data:`MAX_PART_PAGES` pages per part (see :func:`split_spans`)."""
    if not item.page_marks:
        return split_spans(item.text, max_tokens)
    breaks = tuple(off for off, _ in item.page_marks[1:])
    return split_spans(item.text, max_tokens, page_of=item.pages_of, page_breaks=breaks)


# --------------------------------------------------------------------------- chunks


def chunk_id(doc_id: str, section_path: tuple[str, ...], item: str, text: str) -> str:
    """A short stable id: hash of doc id, section path, item and text (suffixes added by the
    caller for exact duplicates)."""
    key = "\x1f".join([doc_id, SECTION_SEP.join(section_path), item, text])
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]


def embed_header(municipality: str, prefecture: str, title: str, section_path: tuple[str, ...], item: str, department: str) -> str:
    """The header lines put before a chunk's text in ``embed_text``."""
    who = f"{prefecture}{municipality}" if prefecture and prefecture != municipality else municipality
    lines = [f"{who}『{title}』" if title else who]
    if section_path:
        lines.append(SECTION_SEP.join(section_path))
    if item and (not section_path or item != section_path[-1]):
        lines.append(item)
    if department:
        lines.append(f"所管課：{department}")
    return "\n".join(ln for ln in lines if ln.strip())


#: A text with its page marks and the page of a text without marks (see :func:`join_marked`).
_Piece = tuple[str, tuple[tuple[int, int], ...], int]


def join_marked(pieces: list[_Piece]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Join texts with ``\\n`` and their page marks: each piece is (text, its page marks, the page
    of a piece without marks). Empty texts are left out; neighbouring marks of the same page merge."""
    text = ""
    marks: list[tuple[int, int]] = []
    for piece, piece_marks, page in pieces:
        if not piece:
            continue
        if text:
            text += "\n"
        base = len(text)
        for off, pg in piece_marks or ((0, page),):
            if not marks or marks[-1][1] != pg:
                marks.append((base + off, pg))
        text += piece
    return text, tuple(marks)


def attach_page_marks(items: list[Item], pages: list[Page]) -> list[Item]:
    """Items with :attr:`Item.page_marks` filled where a parser left them out and the item spans
    several pages: its text aligned (:func:`corpus.normalize.page_marks`) with the lines of its
    pages ``page_start``–``page_end``. Items of one page need none."""
    by_number = {p.number: p for p in pages}
    out: list[Item] = []
    for it in items:
        if it.page_marks or it.page_end <= it.page_start:
            out.append(it)
            continue
        lines = [
            (p.number, ln)
            for n in range(it.page_start, it.page_end + 1)
            if (p := by_number.get(n)) is not None
            for ln in p.text.split("\n")
        ]
        out.append(replace(it, page_marks=page_marks(it.text, lines)))
    return out


def merge_small_items(items: list[Item], min_tokens: int = MIN_TOKENS, *, doc_title: str = "") -> list[Item]:
    """Merge prose items whose text is under ``min_tokens`` into a neighbour: the next item when it
    is a sibling or a descendant (the small item's heading and text are prepended), else the
    previous item (appended). Items of another municipality are never merged. The heading of a
    merged item (and any ancestor heading the receiving item does not share) goes into the text,
    except for the preamble's title (``doc_title``, not a heading)."""
    out = list(items)
    i = 0
    while i < len(out) and len(out) > 1:
        it = out[i]
        if count_tokens(it.text) >= min_tokens:
            i += 1
            continue
        own = it.section_path + (it.title,)
        nxt = out[i + 1] if i + 1 < len(out) else None
        prv = out[i - 1] if i > 0 else None
        heading = "" if (not it.section_path and it.title == doc_title) else it.title
        if nxt is not None and nxt.municipality == it.municipality and (
            nxt.section_path[: len(own)] == own or nxt.section_path == it.section_path or prv is None
        ):
            lost = [h for h in it.section_path if h not in nxt.section_path]
            out[i + 1] = _absorb(nxt, it, [*_headings(it, lost, heading), _piece(it), _piece(nxt)])
            del out[i]
            continue
        if prv is not None and prv.municipality == it.municipality:
            lost = [h for h in it.section_path if h not in prv.section_path and h != prv.title]
            out[i - 1] = _absorb(prv, it, [_piece(prv), *_headings(it, lost, heading), _piece(it)])
            del out[i]
            continue
        i += 1
    return out


def _piece(item: Item) -> _Piece:
    """An item's text as a :func:`join_marked` piece (with its page marks)."""
    return item.text, item.page_marks, item.page_start


def _headings(item: Item, lost: list[str], heading: str) -> list[_Piece]:
    """Headings of a merged ``item`` that go into the text, as pieces on its first page."""
    return [(x, (), item.page_start) for x in (*lost, heading) if x]


def _absorb(into: Item, small: Item, pieces: list[_Piece]) -> Item:
    """``into`` with the ``pieces`` joined as its text and the pages of both items."""
    text, marks = join_marked(pieces)
    return replace(into, text=text, page_start=min(into.page_start, small.page_start),
                   page_end=max(into.page_end, small.page_end), page_marks=marks)


def items_to_chunks(items: list[Item], meta: DocumentMeta, *, max_tokens: int = 400) -> list[Chunk]:
    """Turn items into chunks: budget split (each part repeats the item header in ``embed_text``),
    municipality/prefecture (the item's own where set, else the document's), stable ids."""
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for it in items:
        muni = it.municipality or meta.municipality
        pref = it.prefecture or meta.prefecture
        header = embed_header(muni, pref, meta.title, it.section_path, it.title, it.department)
        spans = item_spans(it, max_tokens)
        parts = [it.text[a:b] for a, b in spans]
        for k, ((a, b), part) in enumerate(zip(spans, parts)):
            page_start, page_end = it.pages_of(a, b)
            if k == 0 and it.page_start < page_start and page_end - it.page_start < MAX_PART_PAGES:
                page_start = it.page_start  # the heading's page, just before the text
            cid = chunk_id(meta.doc_id, it.section_path, it.title, part)
            n = seen.get(cid, 0)
            seen[cid] = n + 1
            if n:
                cid = f"{cid}-{n + 1}"
            label = f"（{k + 1}/{len(parts)}）" if len(parts) > 1 else ""
            chunks.append(
                Chunk(
                    chunk_id=cid,
                    doc_id=meta.doc_id,
                    municipality=muni,
                    prefecture=pref,
                    title=meta.title,
                    section_path=tuple(it.section_path),
                    item=it.title,
                    department=it.department,
                    page_start=page_start,
                    page_end=page_end,
                    text=part,
                    embed_text=f"{header}{label}\n{part}",
                    kind=meta.kind,
                    year=meta.year,
                    url=meta.url,
                    part=k,
                    parts=len(parts),
                    fields=dict(it.fields),
                )
            )
    return chunks


def document_items(raw: RawDocument, meta: DocumentMeta) -> tuple[list[Item], str, list[str], list[Page]]:
    """Parse ``raw`` into items by its shape. Returns (items, shape, removed lines, pages).

    Pages with tables (:attr:`Page.tables`, PDF) give one item per table row
    (:func:`table_row_item`); the text of those pages outside the tables, and the other pages,
    go through the shape logic; the shape is then 「pdf_table」 or 「pdf_table+<shape>」."""
    pages, removed = prepare_pages(raw)
    tables = {p.number: p.tables for p in raw.pages if p.tables}
    if not tables or raw.layout != "text":
        items, shape, furniture = _shape_items(pages, raw.layout, meta)
        return items, shape, removed + furniture, pages
    pages = [replace(p, tables=tables.get(p.number, ())) for p in pages]
    budget = [(p.number, t) for p in pages for t in p.tables if is_budget_table(t)]
    pages_budget = {n for n, _ in budget}
    moku = budget_items(budget) if budget else []
    pages = [replace(p, tables=tuple(t for t in p.tables if not is_budget_table(t))) for p in pages]
    rows = table_items(pages)
    for it in moku:  # 目 items (corpus.budget) hold the text of their pages like table rows
        for n in range(it.page_start, it.page_end + 1):
            rows.setdefault(n, [])
    leftovers: dict[int, str] = {}
    rest: list[Page] = []
    for p in pages:
        if p.number in rows:
            mine = rows[p.number] + [replace(it, text=page_text(it, p.number))
                                     for it in moku if it.page_start <= p.number <= it.page_end]
            names = [h for t in p.tables for h in t.header]
            names += [h for n, t in budget if n == p.number for h in (*t.header, *t.caption)]
            kept, header_lines = text_outside_tables(p.text, mine, names)
            removed = removed + header_lines
            p = replace(p, text=kept)
            if p.number in pages_budget:
                kept, repeated = duplicate_lines(kept, [it for it in moku if it.page_start <= p.number <= it.page_end], p.number)
                removed = removed + repeated
                leftovers[p.number] = kept
                continue
        if p.text.strip():
            rest.append(p)
    if moku:
        moku, left = attach_leftovers(moku, leftovers)
        rest = sorted(rest + [Page(n, t) for n, t in left.items()], key=lambda p: p.number)
        for it in moku:
            rows.setdefault(it.page_start, []).append(it)
        rows = {n: its for n, its in rows.items() if its}
    items, shape, furniture = _shape_items(rest, raw.layout, meta) if rest else ([], "", [])
    by_page = sorted(
        [(it.page_start, 0, k, it) for k, it in enumerate(items)]
        + [(n, 1, k, it) for n, its in rows.items() for k, it in enumerate(its)],
        key=lambda t: t[:3],
    )
    shape = "pdf_table+" + shape if items else "pdf_table"
    return [it for *_, it in by_page], shape, removed + furniture, pages


def _shape_items(pages: list[Page], layout: str, meta: DocumentMeta) -> tuple[list[Item], str, list[str]]:
    """Items of prepared ``pages`` by the shape of their text, the shape's name and the lines
    the parser removed as furniture."""
    doc_title = meta.title or meta.path
    if layout == "records":
        return record_items(pages, doc_title), "records", []
    text = "\n".join(p.text for p in pages)
    if looks_like_progress_table is not None and looks_like_progress_table(text):
        if parse_progress_table_detailed is not None:
            parsed = parse_progress_table_detailed(pages)
            items = attach_page_marks(list(parsed.items), pages)
            return items, "progress_table", list(getattr(parsed, "furniture", []))
        return attach_page_marks(list(parse_progress_table(pages)), pages), "progress_table", []
    lines = lines_of(pages)
    if is_case_collection(text):
        pmap = parse_prefecture_map(meta.extra.get("prefectures", "") if meta.extra else "")
        cases = attach_page_marks(case_items(lines, doc_title, prefecture_map=pmap), pages)
        return merge_small_items(cases, doc_title=doc_title), "cases", []
    if is_evaluation_sheet(text):
        return attach_page_marks(sheet_items(lines, doc_title), pages), "sheet", []
    return merge_small_items(prose_items(pages, doc_title), doc_title=doc_title), "prose", []


def chunk_document_detailed(raw: RawDocument, meta: DocumentMeta, *, max_tokens: int = 400) -> ChunkResult:
    """:func:`chunk_document` plus the shape used, the removed boilerplate and the prepared pages."""
    items, shape, removed, pages = document_items(raw, meta)
    chunks = items_to_chunks(items, meta, max_tokens=max_tokens)
    return ChunkResult(chunks, shape, removed, pages, page_shapes(pages, shape, raw.pages))


def chunk_document(raw: RawDocument, meta: DocumentMeta, *, max_tokens: int = 400) -> list[Chunk]:
    """The chunks of one document (see the module doc)."""
    return chunk_document_detailed(raw, meta, max_tokens=max_tokens).chunks
