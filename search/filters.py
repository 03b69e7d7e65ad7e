"""Filters on chunks (municipality, prefecture, kind, year) and municipality names in questions.

Values are compared in the comparison form of ``corpus.normalize`` (NFKC, whitespace removed,
case-folded), so 「東京都」「東京都 」「ｺﾀﾞｲﾗ」 style variants match. Years also match across eras and
fiscal-year spellings: ``2024`` = 「令和6年度」 = 「R6」 = 「２０２４年度」.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from corpus.memo import LockedCache
from corpus.normalize import compact as _compact
from corpus.records import Chunk, DocumentMeta
from index.store_format import chunk_groups
from search.records import Filters


#: Separators between several municipalities in one field (「秋田県・秋田市」).
_MULTI_SEP = re.compile(r"[・、，,/／;；]| と |及び")
_SUFFIXES = "都道府県市町村区"
_ERAS = {"令和": 2018, "R": 2018, "平成": 1988, "H": 1988, "昭和": 1925, "S": 1925}
_YEAR_RE = re.compile(r"(令和|平成|昭和|R|H|S)?(元|\d{1,4})")


def norm(value: str) -> str:
    """The comparison form of a filter value: NFKC, no whitespace, case-folded."""
    return _compact(value or "").casefold()


def _strip_suffix(name: str) -> str:
    return name[:-1] if len(name) > 2 and name[-1] in "都府県" else name


def year_key(value: str) -> str:
    """A Western year for ``value`` when one can be read (「令和6年度」→ ``"2024"``), else its norm."""
    v = norm(value)
    m = _YEAR_RE.search(v.upper() if v[:1].isascii() else v)
    if not m:
        return v
    era, num = m.group(1), m.group(2)
    n = 1 if num == "元" else int(num)
    if era:
        return str(_ERAS[era] + n)
    if n >= 1000:
        return str(n)
    return v


@functools.lru_cache(maxsize=65536)
def _municipality_parts(name: str) -> frozenset[str]:
    n = norm(name)
    parts = {n}
    parts.update(p for p in (norm(x) for x in _MULTI_SEP.split(name or "")) if p)
    return frozenset(parts)


@functools.lru_cache(maxsize=65536)
def _prefecture_parts(pref: str) -> frozenset[str]:
    return frozenset(_strip_suffix(norm(p)) for p in _MULTI_SEP.split(pref or "") if p.strip())


#: ``QueryInfo.note`` of ``Engine.search`` when no chunk passes the filters (search/engine.py).
NOTE_NO_CHUNK_PASSES = "no chunk passes the filters"
#: The filter fields in the order they are named, with their Japanese and English labels.
FILTER_LABELS: tuple[tuple[str, str, str], ...] = (
    ("municipality", "自治体", "municipality"),
    ("prefecture", "都道府県", "prefecture"),
    ("kind", "文書の種類", "kind"),
    ("year", "年度", "year"),
)


def describe_filters(filters: Filters | None, english: bool = False) -> str:
    """The non-empty filters named for a message: 「自治体「A」、都道府県「B」」
    (``english``: ``municipality "A", prefecture "B"``); several values of one field are joined with 「・」."""
    parts = []
    for name, ja, en in FILTER_LABELS:
        values = [str(v).strip() for v in (getattr(filters, name, ()) or ()) if str(v).strip()]
        if not values:
            continue
        if english:
            parts.append(f'{en} ' + " or ".join(f'"{v}"' for v in values))
        else:
            parts.append(f"{ja}「{'・'.join(values)}」")
    return ", ".join(parts) if english else "、".join(parts)


def no_match_message(filters: Filters | None) -> str:
    """Why a search with ``filters`` found nothing: no document passes all of them together, naming them."""
    return (f"絞り込み条件（{describe_filters(filters)}）をすべて満たす文書はありません。条件を見直してください。"
            f" / No document matches all of these filters together: {describe_filters(filters, english=True)}.")


@dataclass(frozen=True)
class FilterKeys:
    """The comparison forms of what filters read of one chunk (with its document's fallbacks):
    computed once per chunk group by :class:`FilterIndex`, so that a filter over millions of
    chunks normalises each distinct value once."""

    municipalities: frozenset[str]
    prefectures: frozenset[str]
    kind: str
    year: str


def filter_keys(chunk: Any, doc: DocumentMeta | None = None) -> FilterKeys:
    """:class:`FilterKeys` of ``chunk`` (a chunk or a chunk group): its municipality parts plus its
    document's, its prefecture parts without 都/府/県 (else the document's), its kind and year key
    (else the document's)."""
    munis = _municipality_parts(chunk.municipality or "")
    if doc is not None and doc.municipality:
        munis |= _municipality_parts(doc.municipality)
    return FilterKeys(
        municipalities=munis,
        prefectures=_prefecture_parts(chunk.prefecture or (doc.prefecture if doc else "") or ""),
        kind=_norm_cached(chunk.kind or (doc.kind if doc else "") or ""),
        year=_year_key_cached(chunk.year or (doc.year if doc else "") or ""),
    )


_norm_cached = functools.lru_cache(maxsize=65536)(norm)
_year_key_cached = functools.lru_cache(maxsize=65536)(year_key)


@dataclass(frozen=True)
class _Wanted:
    """A ``Filters`` value in comparison form (empty set = the field is not filtered)."""

    municipalities: frozenset[str]
    prefectures: frozenset[str]
    kinds: frozenset[str]
    years: frozenset[str]

    @classmethod
    def of(cls, filters: Filters) -> "_Wanted":
        return cls(
            frozenset(norm(m) for m in filters.municipality or ()),
            frozenset(_strip_suffix(norm(p)) for p in filters.prefecture or ()),
            frozenset(norm(k) for k in filters.kind or ()),
            frozenset(year_key(y) for y in filters.year or ()),
        )

    def admits(self, keys: FilterKeys) -> bool:
        return ((not self.municipalities or not self.municipalities.isdisjoint(keys.municipalities))
                and (not self.prefectures or not self.prefectures.isdisjoint(keys.prefectures))
                and (not self.kinds or keys.kind in self.kinds)
                and (not self.years or keys.year in self.years))


def chunk_matches(chunk: Chunk, filters: Filters | None, doc: DocumentMeta | None = None) -> bool:
    """True when ``chunk`` passes every non-empty field of ``filters``.

    municipality: the chunk's municipality (or one of several 「A・B」), or its document's
    manifest municipality; prefecture: with or without 都/府/県; kind and year: the chunk's, else
    its document's.
    """
    if filters is None or filters.is_empty():
        return True
    return _Wanted.of(filters).admits(filter_keys(chunk, doc))


def allowed_mask(
    chunks: Sequence[Chunk],
    filters: Filters | None,
    documents: Mapping[str, DocumentMeta] | None = None,
) -> np.ndarray | None:
    """A boolean mask over ``chunks`` (position = index id) of those passing ``filters``.

    None when ``filters`` is empty (everything passes), so callers can skip masking.
    Evaluates every chunk; to filter the same store repeatedly use :class:`FilterIndex`.
    """
    if filters is None or filters.is_empty():
        return None
    docs = documents or {}
    return np.fromiter(
        (chunk_matches(c, filters, docs.get(c.doc_id)) for c in chunks), dtype=bool, count=len(chunks)
    )


#: The chunk fields (besides the document) that :func:`chunk_matches` reads.
_FILTER_FIELDS = ("municipality", "prefecture", "kind", "year", "doc_id")


class FilterIndex:
    """Filters over one immutable store, precomputed once.

    Chunks are grouped by the values :func:`chunk_matches` depends on (municipality,
    prefecture, kind, year, doc_id — in practice a handful of groups per document;
    ``index.store_format.chunk_groups``). A filter is evaluated once per group on its
    :class:`FilterKeys`, computed when the index opens (the same test as :func:`chunk_matches`,
    so the result is exactly that of :func:`allowed_mask`), and expanded to the chunks of the
    groups' runs; the last :data:`MASK_CACHE_SIZE` id arrays are cached per ``Filters`` value
    (thread-safe, read-only arrays). Build it again when the store changes.
    """

    MASK_CACHE_SIZE = 32

    def __init__(self, chunks: Sequence[Chunk], documents: Mapping[str, DocumentMeta] | None = None) -> None:
        self._setup(*chunk_groups(chunks), documents)

    @classmethod
    def from_groups(cls, representatives: Sequence[Any], group_of: np.ndarray,
                    documents: Mapping[str, DocumentMeta] | None = None) -> "FilterIndex":
        """A filter index from precomputed groups (``IndexStore.filter_groups()``): one object
        per group with the chunk fields a filter reads (municipality, prefecture, kind, year,
        doc_id) and the group id of every chunk. Equal to ``FilterIndex(chunks, documents)``."""
        self = cls.__new__(cls)
        self._setup(list(representatives), group_of, documents)
        return self

    def _setup(self, reps: list[Any], gid: np.ndarray, documents: Mapping[str, DocumentMeta] | None) -> None:
        docs = documents or {}
        self.n_chunks = len(gid)
        #: One ``index.store_format.ChunkGroup`` (or an object with its fields) per group, in
        #: order of first appearance.
        self.representatives: list[Any] = reps
        self._docs = [docs.get(c.doc_id) for c in reps]
        self.group_of: np.ndarray = gid
        # chunks of one group come in runs (a document's chunks are contiguous): a filter's ids
        # are expanded from the runs of the groups it admits
        starts = np.flatnonzero(np.diff(gid)) + 1 if len(gid) else np.zeros(0, np.int64)
        self._run_start = np.concatenate([[0], starts]).astype(np.int64) if len(gid) else starts
        self._run_end = np.append(self._run_start[1:], len(gid)).astype(np.int64)
        self._run_gid = gid[self._run_start] if len(gid) else np.zeros(0, np.int32)
        self._cache: LockedCache[Filters, np.ndarray] = LockedCache(self.MASK_CACHE_SIZE)
        # every group's comparison forms and the groups of each municipality form, computed once
        # per snapshot (≈ 0.2 s for 17k groups at 5M chunks)
        self._keys = [filter_keys(c, d) for c, d in zip(reps, self._docs)]
        self._by_municipality: dict[str, list[int]] = {}
        for g, k in enumerate(self._keys):
            for m in k.municipalities:
                self._by_municipality.setdefault(m, []).append(g)

    def _lookup(self, filters: Filters) -> np.ndarray:
        hit = self._cache.get(filters)
        if hit is not None:
            return hit
        wanted = _Wanted.of(filters)
        keys = self._keys
        ok = np.zeros(len(keys), dtype=bool)
        if wanted.municipalities:  # only the named municipalities' groups can pass
            cand = sorted({g for m in wanted.municipalities for g in self._by_municipality.get(m, ())})
            ok[[g for g in cand if wanted.admits(keys[g])]] = True
        else:
            ok[:] = np.fromiter((wanted.admits(g) for g in keys), dtype=bool, count=len(keys))
        run_ok = ok[self._run_gid]
        starts, ends = self._run_start[run_ok], self._run_end[run_ok]
        lengths = ends - starts
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        ids = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - offsets, lengths)
        ids.setflags(write=False)
        self._cache.put(filters, ids)
        return ids

    def mask(self, filters: Filters | None) -> np.ndarray | None:
        """Read-only boolean mask of the chunks passing ``filters`` (None when ``filters`` is empty);
        equal to ``allowed_mask(chunks, filters, documents)``."""
        if filters is None or filters.is_empty():
            return None
        mask = np.zeros(self.n_chunks, dtype=bool)
        mask[self._lookup(filters)] = True
        mask.setflags(write=False)
        return mask

    def allowed_ids(self, filters: Filters | None) -> np.ndarray | None:
        """Read-only sorted ids (``np.flatnonzero`` of :meth:`mask`), or None when ``filters`` is empty."""
        if filters is None or filters.is_empty():
            return None
        return self._lookup(filters)


def detect_municipalities(query: str, names: "Iterable[str] | MunicipalityNames") -> list[str]:
    """The municipality names known to the index that ``query`` names, in order of appearance.

    A full name matches anywhere (「会津若松市の…」). A name without its 市/町/村/区/県/都/府 suffix
    also matches (「会津若松の…」) when that stem is at least two characters, belongs to only one
    known name, and is not followed in the query by a different suffix (「秋田市」 does not name
    「秋田県」). A match inside a longer matched name is dropped (「みらい市」 inside 「つくばみらい市」).
    Names that are not municipalities (e.g. 「広域連携事例集」) never appear in questions by accident,
    so they are harmless.
    """
    table = names if isinstance(names, MunicipalityNames) else MunicipalityNames(names)
    return table.detect(query)


class MunicipalityNames:
    """The normalised forms and unique stems of a set of municipality names, computed once
    (an index snapshot's names); :meth:`detect` is :func:`detect_municipalities` on them."""

    def __init__(self, names: Iterable[str]) -> None:
        known: dict[str, str] = {}
        for name in names:
            for part in _MULTI_SEP.split(name or ""):
                n = norm(part)
                if len(n) >= 2:
                    known.setdefault(n, part.strip())
        stems: dict[str, list[str]] = {}
        for n in known:
            if n[-1] in _SUFFIXES and len(n) >= 3:
                stems.setdefault(n[:-1], []).append(n)
        self.known = known
        #: (stem, its one full normalised name) for stems of at least two characters
        self.unique_stems = [(st, full[0]) for st, full in stems.items() if len(full) == 1 and len(st) >= 2]

    def detect(self, query: str) -> list[str]:
        """See :func:`detect_municipalities`."""
        q = norm(query)
        if not q:
            return []
        known = self.known
        hits: list[tuple[int, int, str]] = []  # (start, end, normalised name)
        for n in known:
            start = q.find(n)
            while start >= 0:
                hits.append((start, start + len(n), n))
                start = q.find(n, start + len(n))
        for stem, full in self.unique_stems:
            start = q.find(stem)
            while start >= 0:
                end = start + len(stem)
                nxt = q[end:end + 1]
                if not (nxt and nxt in _SUFFIXES and nxt != full[-1]):
                    hits.append((start, end, full))
                start = q.find(stem, end)
        # longest first; drop hits inside an already accepted longer one
        hits.sort(key=lambda h: (-(h[1] - h[0]), h[0]))
        accepted: list[tuple[int, int, str]] = []
        for h in hits:
            if any(a[0] <= h[0] and h[1] <= a[1] for a in accepted):
                continue
            accepted.append(h)
        out: list[str] = []
        for _s, _e, n in sorted(accepted):
            name = known[n]
            if name not in out:
                out.append(name)
        return out
