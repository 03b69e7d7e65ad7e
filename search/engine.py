"""The search engine: dense (FAISS) + BM25 (fugashi terms) candidates, weighted fusion, filters,
municipality names in the question, per-municipality diversity, highlight spans.

One :class:`Engine` serves many concurrent users. It holds a reference to an immutable snapshot
of the open index (:class:`_View`); :meth:`Engine.reload` opens the new index and swaps the
reference under a lock, so a query in flight finishes on the store it started with. A snapshot
reads nothing by path after it is opened (``index.store.IndexStore`` keeps its SQLite
connection), so a build swapping a new directory in changes nothing until ``reload()``;
:meth:`Engine.pinned` holds one snapshot across the several searches of an answer view. The
embedding model is loaded on the first dense query, once per process (shared between engines).

Fusion (measured on ../shared/eval/dev_queries.jsonl and 20 more questions, see docs/quality.md):
the union of the top :data:`CANDIDATES` dense and top :data:`CANDIDATES` BM25 chunks is scored
exactly in *both* retrievers, each score list is z-scored over that union, and the fused score is
``dense_weight · z(dense) + bm25_weight · z(bm25)`` (``Settings.fusion`` = "zscore",
``Settings.dense_weight`` = 0.45, ``Settings.bm25_weight`` = 0.55). BM25 runs on the question's
content terms: question-frame words (「…している自治体」「…という書き方」) are left out.
"""
from __future__ import annotations

import copy
import threading
import unicodedata
from dataclasses import dataclass, field
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corpus.memo import LockedCache
from corpus.records import Chunk
from index.config import Settings, load_settings
from index.errors import IndexMismatchError
from search.filters import NOTE_NO_CHUNK_PASSES, FilterIndex, MunicipalityNames
from search.fusion import METHODS, cap_per_group, demote_near_duplicates, fuse, sort_scores, spread_groups
from search.highlight import bm25_idf
from search.highlight import highlight as highlight_spans
from search.question import MAX_QUESTION_CHARS, QUESTION_FRAME_TERMS, clip_question
from search.qtype import question_type as classify_question
from search.records import Filters, Result
from search.sides import interleave, split_sides

#: Question types whose ranking spreads over municipalities (each one's best passage first).
SPREAD_TYPES = ("which", "compare")
#: Which/compare ranking demotes a passage that nearly repeats one of its municipality already
#: placed (search.fusion.demote_near_duplicates): cosine above DUP_SIM counts, a full duplicate
#: loses DUP_WEIGHT of the candidates' score range. Chosen on the tune half of
#: search/eval_data/questions_v2.jsonl (docs/quality.md, "round 2"); only the best
#: DEDUP_CANDIDATES candidates are re-ranked (the rest follow in score order).
DUP_SIM = 0.9
DUP_WEIGHT = 0.25
DEDUP_CANDIDATES = 100

MODES = ("hybrid", "dense", "bm25")
#: Candidates taken from each retriever before fusion.
CANDIDATES = 100
#: The fusion method chosen by measurement (docs/quality.md) when Settings has none.
DEFAULT_FUSION = "zscore"
#: Longer queries are cut to this many characters (search.question, one bound for every entry point).
MAX_QUERY_CHARS = MAX_QUESTION_CHARS
#: Terms found in more than this share of chunks are not highlighted (too common to help).
HIGHLIGHT_MAX_DF = 0.3


@dataclass
class QueryInfo:
    """What the engine made of one question (``Engine.last_query_info``, per thread)."""

    query: str
    mode: str
    #: Municipality names recognised in the question (empty when the caller passed filters).
    municipalities: tuple[str, ...] = ()
    #: The filters actually applied and where they came from: "caller", "query" or "none".
    filters: Filters = field(default_factory=Filters)
    filters_source: str = "none"
    #: The query's BM25 terms (fugashi lemmas and noun bigrams).
    terms: tuple[str, ...] = ()
    #: Chunks that passed the filters (None = no filter) and candidates fused.
    n_allowed: int | None = None
    n_candidates: int = 0
    truncated: bool = False
    #: The question's type from its form (search.qtype): "which", "compare", "wording" or "fact".
    question_type: str = ""
    #: Two-sided comparisons: the sub-queries retrieved separately and interleaved (search.sides).
    subqueries: tuple[str, ...] = ()
    #: Why nothing was returned, when nothing was ("empty query", "no chunk passes the filters", …).
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "query": self.query,
            "mode": self.mode,
            "municipalities": list(self.municipalities),
            "filters": {k: list(getattr(self.filters, k)) for k in ("municipality", "prefecture", "kind", "year")},
            "filters_source": self.filters_source,
            "terms": list(self.terms),
            "n_allowed": self.n_allowed,
            "n_candidates": self.n_candidates,
            "truncated": self.truncated,
            "question_type": self.question_type,
            "subqueries": list(self.subqueries),
            "note": self.note,
        }


# ---------------------------------------------------------------------------- shared embedder

#: Query vectors of recent queries (the answer views ask the same question several times).
QVEC_CACHE_SIZE = 512
_QVEC_CACHE: LockedCache[tuple[Any, ...], np.ndarray] = LockedCache(QVEC_CACHE_SIZE)


def _shared_embedder(settings: Settings) -> Any:
    """One embedder per (model, prompts, cache) per process: :func:`index.embedder.shared_embedder`."""
    from index.embedder import shared_embedder

    return shared_embedder(settings)


# ---------------------------------------------------------------------------- index snapshot


class _View:
    """An open store plus what the engine derives from it (names, idf). Never mutated. Chunks
    are not held here: the store reads the ones a result or a view shows (docs/serving.md)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        chunks = store.chunks
        docs = store.documents
        #: Filters precomputed once per snapshot (the store's chunk groups, cached masks).
        self.filter_index = FilterIndex.from_groups(*store.filter_groups(), docs)
        # every distinct chunk municipality occurs among the groups' representatives, in the
        # chunks' order of first appearance
        names: dict[str, None] = {}
        for c in self.filter_index.representatives:
            if c.municipality:
                names.setdefault(c.municipality)
        for d in docs.values():
            if d.municipality:
                names.setdefault(d.municipality)
        self.municipality_names = list(names)
        #: The names' normalised forms and stems, for recognising them in questions.
        self.name_table = MunicipalityNames(self.municipality_names)
        self.n_chunks = len(chunks)
        self._df: dict[str, int] = {}
        bm = store.bm25
        if bm is not None:
            try:
                indptr = np.asarray(bm.scores["indptr"])
                df = np.diff(indptr)
                self._df = {t: int(df[i]) for t, i in bm.vocab_dict.items() if 0 <= i < len(df)}
            except Exception:  # a bm25s layout we do not know: every term weighs 1
                self._df = {}

    def df(self, term: str) -> int:
        """Number of chunks containing ``term`` (0 when unknown)."""
        return self._df.get(term, 0)

    def idf(self, term: str) -> float:
        """BM25 idf of ``term`` over the index (unknown terms get the maximum)."""
        return bm25_idf(max(1, self.n_chunks), self._df.get(term, 0))


def _has_content(text: str) -> bool:
    """True when ``text`` has at least one letter or digit (kana/kanji/Latin/digits)."""
    for ch in unicodedata.normalize("NFKC", text):
        cat = unicodedata.category(ch)
        if cat[0] in ("L", "N"):
            return True
    return False


class Engine:
    """Hybrid search over one index directory (see the module docstring)."""

    def __init__(self, index_dir: str | Path, settings: Settings | None = None, *, fusion: str | None = None) -> None:
        """Open the index at ``index_dir`` and check it was built with ``settings.model``.

        ``settings`` defaults to :func:`index.config.load_settings` (config file, environment);
        ``fusion`` overrides ``Settings.fusion`` (one of ``search.fusion.METHODS``). The
        vocabulary files of ``settings.vocab_files`` are added (``search.vocab.use_vocab_files``).
        Raises ``IndexMissingError`` / ``IndexMismatchError`` with a message saying how to rebuild.
        """
        base = settings if settings is not None else load_settings()
        self.settings: Settings = base.with_overrides(index_dir=Path(index_dir))
        self.fusion: str = fusion or getattr(self.settings, "fusion", None) or DEFAULT_FUSION
        #: Leave question-frame words out of the BM25 query (see QUESTION_FRAME_TERMS).
        self.drop_frame_terms: bool = True
        if self.fusion not in METHODS:
            raise ValueError(f"unknown fusion {self.fusion!r}; use one of {', '.join(METHODS)}")
        if self.settings.vocab_files:  # the user's vocabulary files, for a library caller too
            from search.vocab import use_vocab_files

            use_vocab_files(self.settings.vocab_files)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._view = _View(self._open_store())

    @classmethod
    def from_settings(cls, settings: Settings) -> "Engine":
        """An engine over ``settings.index_dir``."""
        return cls(settings.index_dir, settings)

    # -- index ------------------------------------------------------------------------------
    def _open_store(self) -> Any:
        from index.store import IndexStore

        return IndexStore.open(self.settings.index_dir, expected_model_id=self.settings.model)

    def reload(self) -> None:
        """Re-open the index (after ``add``/``remove``/``build`` swapped it in).

        The new store is opened outside the lock; the reference swap is atomic, and searches
        already running keep the store object they started with.
        """
        view = _View(self._open_store())
        with self._lock:
            self._view = view

    def pinned(self) -> "Engine":
        """An engine fixed on the current snapshot: every search, lemma set and idf it gives
        comes from the index as it is now, whatever ``reload()`` does to this engine meanwhile.
        Cheap (it shares the snapshot, settings and per-thread query info); for an answer view
        that searches several times."""
        other = copy.copy(self)
        other._lock = threading.Lock()
        return other

    @property
    def store(self) -> Any:
        """The current ``index.store.IndexStore``."""
        return self._view.store

    @property
    def tokenizer(self) -> Any:
        """The BM25 tokeniser the index was built with (``index.tokenizer.Tokenizer``)."""
        return self._view.store.tokenizer

    @property
    def embedder(self) -> Any:
        """The query embedder, loaded on first use (once per process) and checked against the index."""
        emb = _shared_embedder(self.settings)
        store = self._view.store
        if store.model_id and emb.model_id not in (store.model_id, store.info.get("model")) and \
                self.settings.model not in (store.model_id, store.info.get("model")):
            raise IndexMismatchError(
                f"インデックス {self.settings.index_dir} はモデル {store.model_id} で作成されていますが、"
                f"検索のモデルは {emb.model_id} です: `seisaku build --index {self.settings.index_dir}` で作り直してください。"
            )
        return emb

    def query_vector(self, text: str) -> np.ndarray:
        """The L2-normalised query embedding of ``text`` (cached per process, bounded, read-only)."""
        key = (self.settings.model, self.settings.query_prompt, text)
        v = _QVEC_CACHE.get(key)
        if v is None:  # encoded outside the cache's lock: other threads' queries never wait for it
            v = np.asarray(self.embedder.encode_queries([text]), dtype=np.float32).reshape(-1)
            v.setflags(write=False)
            _QVEC_CACHE.put(key, v)
        return v

    def lemma_sets(self, chunks: Sequence[Chunk]) -> list[frozenset[str] | None]:
        """The stored lemma set of each chunk (None where the index has none): what the answer
        views test a question's concepts against, read from SQLite instead of re-tokenised.

        Only chunks of the current snapshot get one: a chunk a search returned before a
        ``reload()`` gets None (the caller tokenises its own text), never the lemmas of another
        chunk that has the same id or position in the new index."""
        store = self._view.store
        ids = [store.snapshot_id(c) for c in chunks]
        got = store.lemma_sets([i for i in ids if i is not None])
        return [got.get(i) if i is not None else None for i in ids]

    def passage_scores(self, query: str, chunks: Sequence[Chunk]) -> tuple[list[float | None], list[float | None]]:
        """``(cosines, bm25)`` of ``query`` against each of ``chunks`` (stored vectors, BM25 read
        for those chunks; None for a chunk not in the current snapshot): the answer views score a
        question's core (search.qtype.question_core) with it, beside the whole question the
        search ranked by."""
        store = self._view.store
        ids = [store.snapshot_id(c) for c in chunks]
        known = [i for i in ids if i is not None]
        terms = self.query_terms(query)
        cos: dict[int, float] = {}
        bm: dict[int, float] = {}
        if known:
            qvec = self.query_vector(query)
            cos = {i: float(v) for i, v in zip(known, store.dense_scores(qvec, known))}
            if terms:
                bm = {i: float(v) for i, v in zip(known, store.bm25_scores_of(terms, known))}
        return ([cos.get(i) if i is not None else None for i in ids],
                [bm.get(i, 0.0) if i is not None else None for i in ids])

    def idf(self, term: str) -> float:
        """BM25 idf of ``term`` in the current index (for highlight weighting)."""
        return self._view.idf(term)

    # -- facets for the UI ------------------------------------------------------------------
    def municipalities(self) -> list[str]:
        """Municipality names in the index (chunks' and documents'), sorted."""
        return sorted(self._view.municipality_names)

    def _doc_values(self, attr: str) -> list[str]:
        view = self._view
        vals = {getattr(d, attr) for d in view.store.documents.values()}
        vals |= {getattr(c, attr) for c in view.filter_index.representatives}
        return sorted(v for v in vals if v)

    def prefectures(self) -> list[str]:
        """Prefectures in the index, sorted."""
        return self._doc_values("prefecture")

    def kinds(self) -> list[str]:
        """Document kinds (manifest ``kind``) in the index, sorted."""
        return self._doc_values("kind")

    def years(self) -> list[str]:
        """Years (manifest ``year``) in the index, sorted."""
        return self._doc_values("year")

    def documents(self) -> list[dict[str, Any]]:
        """One row per indexed document: manifest fields, chunk count, ingestion messages."""
        rows = []
        for d in self._view.store.documents.values():
            rows.append({
                "doc_id": d.doc_id,
                "municipality": d.municipality,
                "prefecture": d.prefecture,
                "title": d.title,
                "year": d.year,
                "kind": d.kind,
                "url": d.url,
                "n_chunks": d.n_chunks,
                "ocr_pages": d.ocr_pages,
                "messages": [str(m) for m in d.messages],
            })
        return rows

    def document_chunks(self, doc_id: str) -> list[Chunk]:
        """The chunks of one document in reading order (empty for an unknown ``doc_id``), read
        from the current snapshot."""
        return self._view.store.doc_chunks(doc_id)

    # -- search -----------------------------------------------------------------------------
    @property
    def last_query_info(self) -> QueryInfo | None:
        """What the last :meth:`search` of *this thread* recognised and applied."""
        return getattr(self._local, "info", None)

    def query_terms(self, query: str) -> list[str]:
        """The BM25 terms of ``query``: the tokeniser's terms without the question-frame words
        (:data:`QUESTION_FRAME_TERMS`), unless those are all there is."""
        terms = self._view.store.tokenizer.tokenize(query)
        if not self.drop_frame_terms:
            return terms
        content = [t for t in terms if t not in QUESTION_FRAME_TERMS]
        return content or terms

    def resolve_filters(self, query: str, filters: Filters | None) -> tuple[Filters, str, tuple[str, ...]]:
        """The filters a search applies: the caller's when non-empty, else the municipality names
        the question names. Returns ``(filters, source, recognised names)``."""
        if filters is not None:  # blank values (an untouched UI dropdown) mean "any"
            filters = Filters(**{
                f: tuple(v for v in getattr(filters, f) if v and str(v).strip())
                for f in ("municipality", "prefecture", "kind", "year")
            })
        if filters is not None and not filters.is_empty():
            return filters, "caller", ()
        names = tuple(self._view.name_table.detect(query))
        if names:
            return Filters(municipality=names), "query", names
        return Filters(), "none", ()

    def search(
        self,
        query: str,
        k: int = 10,
        filters: Filters | None = None,
        mode: str = "hybrid",
        per_municipality_cap: int | None = None,
        highlight: bool | int = True,
        question_type: str | None = None,
    ) -> list[Result]:
        """Ranked passages for ``query``, best first (``Result.rank`` from 1).

        ``filters`` restrict candidates before the top-``k`` cut; without them, municipality
        names in the question restrict it (see ``last_query_info``). ``mode``: "hybrid", "dense"
        or "bm25". ``per_municipality_cap`` (default ``Settings.per_municipality_cap``; 0 = off)
        defers a municipality's results beyond that many until the others have been placed.
        ``highlight=False`` leaves ``Result.spans`` empty (the answer views pick and mark their own
        sentences, so they skip the per-result highlighting); an int ``n`` highlights only the
        first ``n`` results (the UI shows 10 cards of the 30 results its charts count).
        Empty, punctuation-only or emoji-only queries return ``[]``.

        ``question_type`` (default: classified from the question's form, search.qtype): for
        "which" and "compare" questions every municipality's best passage above the relevance
        floor (``Settings.spread_floor``) comes before any municipality's second one; a
        comparison naming two sides (two municipalities, or 「AとBとで」) is retrieved side by
        side and interleaved (search.sides). "fact" and "wording" rank as before.
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        text = clip_question(query)[0]
        qtype = question_type or classify_question(text)
        sides = []
        if qtype == "compare" and k > 0:
            named: Sequence[str] = ()
            if filters is None or filters.is_empty():
                named = tuple(self._view.name_table.detect(text))
            sides = split_sides(text, named, is_compare=True)
        if not sides:
            results = self._search_once(query, k, filters, mode, per_municipality_cap, highlight, qtype)
            self._local.info.question_type = qtype
            return results
        lists, infos = [], []
        for side in sides:
            f = Filters(municipality=(side.municipality,)) if side.municipality else filters
            lists.append(self._search_once(side.query, k, f, mode, per_municipality_cap, highlight, "which"))
            infos.append(self._local.info)
        merged = interleave(lists, key=lambda r: r.chunk.chunk_id)[:k]
        results = [copy.copy(r) for r in merged]
        for rank, r in enumerate(results, 1):
            r.rank = rank
        # The question's own record: what the sides did, under the question's name.
        info = copy.copy(infos[0])
        info.query, info.question_type = text, qtype
        info.subqueries = tuple(f"{s.municipality}: {s.query}" if s.municipality else s.query for s in sides)
        if any(s.municipality for s in sides):
            info.municipalities = tuple(s.municipality for s in sides)
            info.filters, info.filters_source = Filters(municipality=info.municipalities), "query"
        info.terms = tuple(dict.fromkeys(self.query_terms(text)))
        info.n_candidates = sum(i.n_candidates for i in infos)
        info.note = "" if results else infos[0].note
        self._local.info = info
        return results

    def _search_once(
        self,
        query: str,
        k: int,
        filters: Filters | None,
        mode: str,
        per_municipality_cap: int | None,
        highlight: bool | int,
        qtype: str,
    ) -> list[Result]:
        """One retrieval (see :meth:`search`); sets ``last_query_info``."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        view = self._view  # one snapshot for the whole query
        store = view.store
        text, truncated = clip_question(query)
        info = QueryInfo(query=text, mode=mode)
        info.truncated = truncated
        self._local.info = info
        if k <= 0 or not _has_content(text):
            info.note = "empty query"
            return []
        if not store.chunks:
            info.note = "empty index"
            return []
        eff, source, names = self.resolve_filters(text, filters)
        info.filters, info.filters_source, info.municipalities = eff, source, names
        allowed = view.filter_index.allowed_ids(eff)  # read-only; None = no filter
        if allowed is not None:
            info.n_allowed = int(len(allowed))
            if not len(allowed):
                info.note = NOTE_NO_CHUNK_PASSES
                return []
        terms = self.query_terms(text)
        info.terms = tuple(dict.fromkeys(terms))
        n_cand = max(CANDIDATES, 3 * k)

        dense: dict[int, float] = {}
        bm25: dict[int, float] = {}
        qvec = None
        if mode in ("dense", "hybrid"):
            qvec = self.query_vector(text)
            if store.dim and qvec.shape[0] != store.dim:
                raise IndexMismatchError(
                    f"埋め込みの次元 {qvec.shape[0]} がインデックスの次元 {store.dim} と合いません: "
                    f"`seisaku build --index {self.settings.index_dir}` で作り直してください。"
                )
            s, ids = store.dense_search(qvec, n_cand, allowed=allowed)
            dense = {int(i): float(v) for v, i in zip(s, ids) if i >= 0}
        if mode in ("bm25", "hybrid") and terms:
            s, ids = store.bm25_search(terms, n_cand, allowed=allowed)
            bm25 = {int(i): float(v) for v, i in zip(s, ids)}

        if mode == "hybrid":
            union = sorted(set(dense) | set(bm25))
            if qvec is not None:
                missing = [i for i in union if i not in dense]
                if missing:
                    for i, v in zip(missing, store.dense_scores(qvec, missing)):
                        dense[i] = float(v)
            missing = [i for i in union if i not in bm25]
            for i, v in zip(missing, store.bm25_scores_of(terms, missing)):
                bm25[i] = float(v)
            fused = fuse(dense, bm25, self.fusion, self.settings.dense_weight, self.settings.bm25_weight)
        else:
            fused = dict(dense if mode == "dense" else bm25)
        info.n_candidates = len(fused)
        if not fused:
            info.note = "no passage matches"
            return []

        ranked = sort_scores(fused)
        cap = self.settings.per_municipality_cap if per_municipality_cap is None else per_municipality_cap
        if qtype in SPREAD_TYPES and per_municipality_cap is None:
            head = ranked[:DEDUP_CANDIDATES]
            if DUP_WEIGHT > 0 and len(head) > 1:
                head = demote_near_duplicates(head, fused, store.municipality_of, store.vectors(head),
                                              DUP_SIM, DUP_WEIGHT)
            ranked = head + ranked[DEDUP_CANDIDATES:]
            ranked = spread_groups(ranked, fused, store.municipality_of, self.settings.spread_floor, cap,
                                   cap_group_of=store.doc_id_of)[:k]
        else:
            ranked = cap_per_group(ranked, store.municipality_of, cap)[:k]
        chunks = dict(zip(ranked, store.get_chunks(ranked)))  # the shown chunks, one read

        hl_terms = {t for t in info.terms if view.df(t) <= HIGHLIGHT_MAX_DF * view.n_chunks or view.n_chunks < 10} \
            if highlight else set()
        results: list[Result] = []
        n_highlight = len(ranked) if highlight is True else max(0, int(highlight))
        for r, i in enumerate(ranked, 1):
            c = chunks[i]
            results.append(
                Result(
                    rank=r,
                    score=float(fused[i]),
                    chunk=c,
                    dense_score=dense.get(i),
                    bm25_score=bm25.get(i),
                    spans=highlight_spans(store.tokenizer, hl_terms, c.text, n_sentences=1, idf=view.idf,
                                    cache_key=c.chunk_id) if hl_terms and r <= n_highlight else [],
                )
            )
        return results


def engine_for(settings: Settings | None = None) -> Engine:
    """Convenience: an engine over the configured index (``load_settings()`` by default)."""
    return Engine.from_settings(settings or load_settings())
