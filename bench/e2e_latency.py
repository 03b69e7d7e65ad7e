"""End-to-end query latency at 1k / 10k / 100k / 1M chunks: query encoding + dense (FAISS) + BM25
+ fusion (``Engine.search``), and the answer view (``search.answers.municipality_answer``, which
runs its own top-50 search and scores evidence) — the two things a user waits for.

    python -m bench.e2e_latency --quick                 # 1k, 10k; 1 pass over the dev questions
    python -m bench.e2e_latency                         # 1k .. 1M; 3 passes
    python -m bench.e2e_latency --sizes 100000 --index DIR --backend onnx-int8

Index at size N (in memory; the search code is the product's): the bundled corpus' built index
(``--index DIR``, else built into a temporary directory) is scaled as in bench.common: chunk i is a
copy of real chunk i % n_real (``chunk_id`` suffixed ``~copy``), with the real chunk's BM25 token
list and its vector plus Gaussian noise, re-normalised. BM25 is a bm25s index over the N token
lists; FAISS is chosen as the product does (``index.faiss_index.choose_kind(Settings.faiss_index,
N, Settings.ann_threshold)``; HNSW is built with ``--hnsw-m``/``--hnsw-efc``, default the
product's M=32/efConstruction=200, ``efSearch`` = Settings.hnsw_ef_search; IVF is the product's
index.faiss_index.build_ivf with ``nprobe`` = ``--nprobe``, default Settings.ivf_nprobe) unless ``--faiss``
forces a kind. An ``IndexStore`` is assembled from these parts and an ``Engine`` opened on it; its
stored lemma sets (``IndexStore.lemma_sets``) are the real chunks', read from the bundled index.

Each query runs cold: the engine's query-vector cache, the answer view's sentence-vector cache and
the per-text caches (lemmas of chunks and sentences, highlight tokenisations) are emptied first, so
every query pays its encoding and the fugashi pass over every passage it looks at. The answer view is also timed with only the
query vectors forgotten ("sentence cache warm": the evidence sentences' vectors from the cold run
kept, as on a server that has answered similar questions). The stage breakdown (encode, dense, BM25)
is timed separately on the same queries.
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    NOISE,
    SIZES_FULL,
    SIZES_QUICK,
    clear_query_caches,
    free,
    load_dev_questions,
    log,
    machine_line,
    peak_rss_mb,
    rss_mb,
    summary_ms,
    synthetic_vectors,
    time_search_and_answer,
    write_result,
)


def built_index(index: str | None, backend: str, tmp: Path) -> Path:
    if index:
        return Path(index)
    from index.build import build_index
    from index.config import load_settings

    d = tmp / "index"
    build_index(load_settings().with_overrides(index_dir=d, backend=backend), progress=False)
    return d


def scaled_store(base: Any, base_tokens: list[list[str]], base_vecs: np.ndarray, n: int, kind: str,
                 args: argparse.Namespace) -> tuple[Any, dict[str, float]]:
    import bm25s
    import faiss
    from bm25s.tokenization import Tokenized

    from index.store import IndexStore

    t: dict[str, float] = {}
    nb = len(base.chunks)
    t0 = time.perf_counter()
    chunks = [c if i < nb else dataclasses.replace(c, chunk_id=f"{c.chunk_id}~{i // nb}")
              for i, c in ((i, base.chunks[i % nb]) for i in range(n))]
    t["chunks_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    vecs = synthetic_vectors(base_vecs, n, noise=args.noise)
    t["vectors_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    d = vecs.shape[1]
    if kind == "ivf":
        from index.faiss_index import build_ivf

        index = build_ivf(vecs, d)
        index.nprobe = args.nprobe
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, args.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = args.hnsw_efc
        index.add(vecs)
        index.hnsw.efSearch = args.ef_search
    else:
        index = faiss.IndexFlatIP(d)
        index.add(vecs)
    t["faiss_build_s"] = time.perf_counter() - t0
    del vecs
    t0 = time.perf_counter()
    vocab: dict[str, int] = {}
    base_ids = [[vocab.setdefault(tok, len(vocab)) for tok in toks] for toks in base_tokens]
    ids = [base_ids[i % nb] for i in range(n)]
    bm = bm25s.BM25()
    bm.index(Tokenized(ids=ids, vocab=vocab), show_progress=False)
    t["bm25_build_s"] = time.perf_counter() - t0
    info = dict(base.info, n_chunks=n, faiss_index=kind)
    store = IndexStore(base.path, info, chunks, base.documents, index, bm, base.tokenizer)

    def lemma_sets(ids: Any) -> dict[int, frozenset[str]]:  # chunk i is a copy of real chunk i % nb
        ids = [int(i) for i in ids]
        real = base.lemma_sets([i % nb for i in ids])
        return {i: real[i % nb] for i in ids if i % nb in real}

    store.lemma_sets = lemma_sets  # type: ignore[method-assign]
    return store, {k: round(v, 2) for k, v in t.items()}


def run_size(n: int, base: Any, base_tokens: list[list[str]], base_vecs: np.ndarray, settings: Any,
             questions: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    import search.engine as engine_mod
    from index.faiss_index import choose_kind
    from search.answers import municipality_answer
    from search.engine import Engine

    kind = args.faiss or choose_kind(settings.faiss_index, n, settings.ann_threshold)
    rss0 = rss_mb()
    store, build_t = scaled_store(base, base_tokens, base_vecs, n, kind, args)
    log(f"[e2e n={n}] store ready ({kind}) {build_t}, rss {rss_mb():.0f} MiB")

    class _Engine(Engine):
        def _open_store(self, _store: Any = store) -> Any:  # the scaled in-memory store, not a directory
            return _store

    engine = _Engine(base.path, settings)

    def cold() -> None:  # nothing of this question or of these passages seen before
        clear_query_caches()

    def new_query() -> None:  # a query never seen, sentence vectors of earlier answers kept
        engine_mod._QVEC_CACHE.clear()  # query vectors live here only (answers' cache holds passages)

    queries = [q.query for q in questions]
    for q in queries[:3]:  # warm-up: model load, first calls
        cold()
        municipality_answer(engine, q)
    t_search, t_answer, t_warm, t_enc, t_dense, t_bm25 = [], [], [], [], [], []
    for _ in range(args.passes):
        for q in queries:
            s, a = time_search_and_answer(engine, q, cold)
            t_search.append(s)
            t_answer.append(a)
            new_query()
            t0 = time.perf_counter()
            municipality_answer(engine, q)
            t_warm.append(time.perf_counter() - t0)
            cold()
            t0 = time.perf_counter()
            qv = engine.query_vector(q)
            t_enc.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            store.dense_search(qv, 50)
            t_dense.append(time.perf_counter() - t0)
            toks = engine.query_terms(q)
            t0 = time.perf_counter()
            store.bm25_search(toks, 50)
            t_bm25.append(time.perf_counter() - t0)
    row = {"n": n, "faiss": kind, "backend": settings.backend, "build": build_t,
           "search": summary_ms(t_search), "answer": summary_ms(t_answer), "answer_warm": summary_ms(t_warm), "encode": summary_ms(t_enc),
           "dense": summary_ms(t_dense), "bm25": summary_ms(t_bm25),
           "rss_mb": round(rss_mb(), 0), "rss_delta_mb": round(rss_mb() - rss0, 0),
           "search_ms_by_query": {q: round(t * 1000, 1) for q, t in zip(queries * args.passes, t_search)}}
    log(f"[e2e n={n}] search p50/p95 {row['search']['p50_ms']}/{row['search']['p95_ms']} ms; answer "
        f"{row['answer']['p50_ms']}/{row['answer']['p95_ms']} ms; encode {row['encode']['p50_ms']}, dense "
        f"{row['dense']['p50_ms']}, bm25 {row['bm25']['p50_ms']} ms")
    del engine, store
    free()
    return row


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| chunks | FAISS | backend | search p50 / p95 ms | answer view, cold p50 / p95 ms | answer view, sentence cache warm p50 / p95 ms | encode p50 | dense p50 / p95 | BM25 p50 / p95 | RSS MiB |",
           "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['n']:,} | {r['faiss']} | {r['backend']} | {r['search']['p50_ms']:.0f} / {r['search']['p95_ms']:.0f} | "
                   f"{r['answer']['p50_ms']:.0f} / {r['answer']['p95_ms']:.0f} | "
                   f"{r['answer_warm']['p50_ms']:.0f} / {r['answer_warm']['p95_ms']:.0f} | {r['encode']['p50_ms']:.0f} | "
                   f"{r['dense']['p50_ms']:.1f} / {r['dense']['p95_ms']:.1f} | {r['bm25']['p50_ms']:.1f} / {r['bm25']['p95_ms']:.1f} | "
                   f"{r['rss_mb']:.0f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from index.config import load_settings
    from index.store import IndexStore

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="*")
    ap.add_argument("--index", help="a built index of the bundled corpus (default: build one in a temp dir)")
    ap.add_argument("--backend", default=None, help="embedding backend (default Settings.backend)")
    ap.add_argument("--faiss", choices=("flat", "ivf", "hnsw"), help="force a FAISS kind (default: Settings' auto rule)")
    ap.add_argument("--ann-threshold", type=int, help="override Settings.ann_threshold")
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--hnsw-efc", type=int, default=200)
    ap.add_argument("--ef-search", type=int, default=None, help="default Settings.hnsw_ef_search")
    ap.add_argument("--nprobe", type=int, default=None, help="default Settings.ivf_nprobe")
    ap.add_argument("--passes", type=int, default=None, help="passes over the dev questions (3; quick 1)")
    ap.add_argument("--noise", type=float, default=NOISE)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    args.passes = args.passes or (1 if args.quick else 3)
    sizes = args.sizes or (SIZES_QUICK if args.quick else SIZES_FULL)
    settings = load_settings()
    settings = settings.with_overrides(backend=args.backend, ann_threshold=args.ann_threshold)
    args.ef_search = args.ef_search or int(getattr(settings, "hnsw_ef_search", 128))
    args.nprobe = args.nprobe or int(getattr(settings, "ivf_nprobe", 32))
    log(machine_line())
    questions = load_dev_questions()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="seisaku-e2e-") as tmp:
        idx = built_index(args.index, settings.backend, Path(tmp))
        base = IndexStore.open(idx)
        base_tokens = base.chunk_tokens()
        base_vecs = base.vectors()
        settings = settings.with_overrides(index_dir=idx)
        for n in sizes:
            rows.append(run_size(n, base, base_tokens, base_vecs, settings, questions, args))
            write_result(args.out or ("e2e_latency_quick" if args.quick else "e2e_latency"),
                         {"settings": {"backend": settings.backend, "faiss_index": settings.faiss_index,
                                       "ann_threshold": settings.ann_threshold, "hnsw_m": args.hnsw_m,
                                       "hnsw_efc": args.hnsw_efc, "ef_search": args.ef_search,
                                       "nprobe": args.nprobe},
                          "noise": args.noise, "passes": args.passes, "peak_rss_mb": round(peak_rss_mb()),
                          "rows": rows})
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
