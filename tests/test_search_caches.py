"""The per-store precomputations of search.filters (FilterIndex, MunicipalityNames) and the
passage-token cache of search.highlight give exactly what the per-query computations give."""
from __future__ import annotations

import re
import threading

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.memo import LockedCache
from corpus.records import Chunk
from index.tokenizer import Tokenizer
from search import highlight as hl
from search.filters import FilterIndex, MunicipalityNames, allowed_mask, detect_municipalities, norm
from search.records import Filters

_MUNIS = ["会津若松市", "小平市", "秋田県・秋田市", "つくばみらい市", "", "ｺﾀﾞｲﾗ市"]
_PREFS = ["福島県", "東京都", "秋田県", "", "茨城県"]
_KINDS = ["行財政改革大綱", "取組状況", ""]
_YEARS = ["2017", "平成29年度", "令和6年度", "", "R6"]


class _Doc:
    def __init__(self, doc_id: str, municipality: str, prefecture: str, kind: str, year: str) -> None:
        self.doc_id, self.municipality, self.prefecture, self.kind, self.year = doc_id, municipality, prefecture, kind, year


def _chunk(i: int, doc_id: str, municipality: str, prefecture: str, kind: str, year: str) -> Chunk:
    return Chunk(
        chunk_id=f"c{i}", doc_id=doc_id, municipality=municipality, prefecture=prefecture, title="t",
        section_path=("s",), item="", department="", page_start=1, page_end=1, text="本文",
        embed_text="本文", kind=kind, year=year,
    )


def _store(seed: int, n: int = 400) -> tuple[list[Chunk], dict[str, _Doc]]:
    rng = np.random.default_rng(seed)
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    docs = {f"d{j}": _Doc(f"d{j}", pick(_MUNIS), pick(_PREFS), pick(_KINDS), pick(_YEARS)) for j in range(6)}
    chunks = []
    for i in range(n):
        d = f"d{int(rng.integers(7))}"  # d6 has no document record
        chunks.append(_chunk(i, d, pick(_MUNIS), pick(_PREFS), pick(_KINDS), pick(_YEARS)))
    return chunks, docs


_FILTERS = [
    Filters(),
    Filters(municipality=("会津若松市",)),
    Filters(municipality=("秋田市",)),
    Filters(municipality=("小平市", "ｺﾀﾞｲﾗ市")),
    Filters(prefecture=("東京",)),
    Filters(prefecture=("　秋田県 ",), kind=("取組状況",)),
    Filters(year=("2024",)),
    Filters(year=("平成29年度", "R6")),
    Filters(municipality=("つくばみらい市",), year=("2017",), kind=("行財政改革大綱",)),
    Filters(municipality=("どこにもない市",)),
]


def test_filter_index_equals_allowed_mask() -> None:
    for seed in range(5):
        chunks, docs = _store(seed)
        fi = FilterIndex(chunks, docs)
        assert len(fi.representatives) < len(chunks)
        for f in _FILTERS:
            want = allowed_mask(chunks, f, docs)
            for _ in range(2):  # computed, then cached
                got = fi.mask(f)
                ids = fi.allowed_ids(f)
                if want is None:
                    assert got is None and ids is None
                    continue
                assert got.dtype == bool and np.array_equal(got, want)
                assert np.array_equal(ids, np.flatnonzero(want))
                assert not got.flags.writeable and not ids.flags.writeable


def test_filter_index_empty_store_and_cache_bound() -> None:
    fi = FilterIndex([], {})
    assert fi.mask(Filters(municipality=("小平市",))).shape == (0,)
    chunks, docs = _store(1)
    fi = FilterIndex(chunks, docs)
    for y in range(FilterIndex.MASK_CACHE_SIZE + 10):
        fi.mask(Filters(year=(str(2000 + y),)))
    assert len(fi._cache) == FilterIndex.MASK_CACHE_SIZE


def test_filter_index_thread_safe() -> None:
    chunks, docs = _store(2, 2000)
    fi = FilterIndex(chunks, docs)
    want = {f: allowed_mask(chunks, f, docs) for f in _FILTERS[1:]}
    errors: list[str] = []

    def worker(k: int) -> None:
        for j in range(60):
            f = _FILTERS[1 + (j + k) % (len(_FILTERS) - 1)]
            if not np.array_equal(fi.mask(f), want[f]):
                errors.append(repr(f))

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []


# ------------------------------------------------------------------ municipality names


_MULTI_SEP = re.compile(r"[・、，,/／;；]| と |及び")
_SUFFIXES = "都道府県市町村区"


# A deliberate copy of search/filters.py's name matching (the `duplicates` tool lists it): the
# parity reference that the precomputed MunicipalityNames must keep agreeing with.
def _detect_reference(query: str, names: list[str]) -> list[str]:
    """detect_municipalities as it was before the names were precomputed."""
    q = norm(query)
    if not q:
        return []
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
    hits = []
    for n in known:
        for m in re.finditer(re.escape(n), q):
            hits.append((m.start(), m.end(), n))
    for stem, full in stems.items():
        if len(full) != 1 or len(stem) < 2:
            continue
        for m in re.finditer(re.escape(stem), q):
            nxt = q[m.end():m.end() + 1]
            if nxt and nxt in _SUFFIXES and nxt != full[0][-1]:
                continue
            hits.append((m.start(), m.end(), full[0]))
    hits.sort(key=lambda h: (-(h[1] - h[0]), h[0]))
    accepted: list[tuple[int, int, str]] = []
    for h in hits:
        if any(a[0] <= h[0] and h[1] <= a[1] for a in accepted):
            continue
        accepted.append(h)
    out: list[str] = []
    for _s, _e, n in sorted(accepted):
        if known[n] not in out:
            out.append(known[n])
    return out


_NAMES = ["会津若松市", "小平市", "つくばみらい市", "みらい市", "常総市", "三重県", "秋田県", "秋田県・秋田市",
          "広域連携事例集", "ｺﾀﾞｲﾗ町", "府中市", "府中町", "AA市"]
_PIECES = ["会津若松", "市", "県", "町", "の", "小平", "つくばみらい", "みらい", "秋田", "三重", "常総", "ｺﾀﾞｲﾗ",
           "府中", " ", "と", "aa", "ＡＡ", "学校給食", "区", "村"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=8))
def test_municipality_names_equal_reference(pieces: list[str]) -> None:
    q = "".join(pieces)
    table = MunicipalityNames(_NAMES)
    assert table.detect(q) == _detect_reference(q, _NAMES) == detect_municipalities(q, _NAMES)


# ------------------------------------------------------------------ passage-token cache

_TEXT = "学校給食センターの整備にＰＦＩ手法を導入する。\n施設の老朽化に対応し、民間活力を活用した整備を進める。"


def test_highlight_cache_gives_the_same_spans() -> None:
    tok = Tokenizer()
    hl.clear_token_cache()
    terms = set(tok.tokenize("給食センターをPFIで整備"))
    plain = hl.highlight(tok, terms, _TEXT, n_sentences=1)
    first = hl.highlight(tok, terms, _TEXT, n_sentences=1, cache_key="c1")
    again = hl.highlight(tok, terms, _TEXT, n_sentences=1, cache_key="c1")
    assert plain == first == again and plain
    assert hl._TOKENS.hits == 1 and hl._TOKENS.misses == 1
    assert list(hl.passage_tokens(tok, _TEXT, "c1")) == tok.tokenize_with_spans(_TEXT)
    # another text under the same key is tokenised, never served stale
    other = "斎場の建設について検討する。"
    assert hl.passage_tokens(tok, other, "c1") == tok.tokenize_with_spans(other)
    # a tokeniser with a custom fold is never cached
    custom = Tokenizer(fold=lambda s: s)
    n = len(hl._TOKENS)
    hl.highlight(custom, terms, _TEXT, cache_key="c1")
    assert len(hl._TOKENS) == n


def test_token_cache_is_bounded() -> None:
    assert hl._TOKENS.maxsize == hl.TOKEN_CACHE_SIZE
    cache = LockedCache(3)
    for i in range(10):
        cache.put(i, ((), hl.array("i")))
    assert len(cache) == 3 and cache.get(0) is None and cache.get(9) is not None


def test_locked_cache_evicts_the_least_recently_used() -> None:
    cache: LockedCache[str, int] = LockedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert cache.keys() == ["a", "c"] and "b" not in cache
    assert (cache.hits, cache.misses) == (1, 0)
    assert cache.get("b") is None and cache.misses == 1
    assert sorted(cache.clear()) == [1, 3] and len(cache) == 0 and cache.hits == 0


def test_locked_cache_makes_a_registry_entry_once_across_threads() -> None:
    """get_or_create runs ``make`` once per key however many threads ask at the same moment;
    a failing ``make`` stores nothing."""
    cache: LockedCache[str, object] = LockedCache()
    made: list[int] = []
    start = threading.Barrier(8)

    def make() -> object:
        made.append(1)
        return object()

    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(cache.get_or_create("model", make))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and len({id(g) for g in got}) == 1

    def boom() -> object:
        raise RuntimeError("load failed")

    try:
        cache.get_or_create("other", boom)
    except RuntimeError:
        pass
    assert "other" not in cache and cache.get_or_create("other", make) is not None and len(made) == 2


# ------------------------------------------------------------------ dense search selectors


def test_dense_search_bitmap_selector_equals_batch(monkeypatch) -> None:
    import faiss

    import index.store as store_mod

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[:3] + 0.1
    allowed = np.flatnonzero(rng.random(3000) < 0.3)
    for index in (faiss.IndexFlatIP(16), faiss.IndexHNSWFlat(16, 8, faiss.METRIC_INNER_PRODUCT)):
        index.add(x)
        chunks = [_chunk(i, "d", "", "", "", "") for i in range(3000)]
        store = store_mod.IndexStore("/nonexistent", {"dim": 16}, chunks, {}, index, None, None)
        monkeypatch.setattr(store_mod, "BITMAP_SELECTOR_MIN", 10**9)
        want1, want_b = store.dense_search(q[0], 50, allowed=allowed), store.dense_search(q, 50, allowed=allowed)
        monkeypatch.setattr(store_mod, "BITMAP_SELECTOR_MIN", 0)
        got1, got_b = store.dense_search(q[0], 50, allowed=allowed), store.dense_search(q, 50, allowed=allowed)
        for w, g in ((want1, got1), (want_b, got_b)):
            assert np.array_equal(w[1], g[1]) and np.allclose(w[0], g[0])
        assert set(got1[1].tolist()) <= set(allowed.tolist()) and len(got1[1]) == 50
        # out-of-range ids are ignored, as by the batch selector
        few = np.array([5, 7, 999999], dtype=np.int64)
        s, ids = store.dense_search(q[0], 10, allowed=few)
        monkeypatch.setattr(store_mod, "BITMAP_SELECTOR_MIN", 10**9)
        assert np.array_equal(store.dense_search(q[0], 10, allowed=few)[1], ids)
        assert set(ids.tolist()) <= {5, 7}
        if not hasattr(index, "hnsw"):
            assert sorted(ids.tolist()) == [5, 7]
