"""Serving a large index on one machine: open time, `Engine.search` and answer-view latency,
peak RSS, dense recall@10 against exact search, and bm25s's memory with and without mmap.

    python -m bench.serve_scale --index /work/data/scale5m/index            # the 5M store
    python -m bench.run --scale 5m                                         # the same

The index is one written by ``bench.scale_store`` (or any built index). Each step runs in its own
child process (``--step``) so that one step's memory never counts against another:

- ``truth``: the query vectors and their exact top-10 by inner product over the stored vectors
  (float16 file, read in blocks; this touches every page of it, hence its own process), cached
  beside the index. Queries: the 30 dev questions, the same questions prefixed with 20 of the
  index's municipality names (「<市町村>の…」: the filtered path), and 150 "more like this" vectors
  (stored chunks plus noise of norm 0.3, seeded) for recall only.
- ``serve``: ``Engine`` opened on the directory (open time, RSS after open), recall@10 of
  ``IndexStore.dense_search`` (the product's path, with its re-scoring), then every text query
  cold (query-vector, sentence-vector and tokenisation caches emptied before each, as in
  bench.e2e_latency) through ``Engine.search(q, k=10)`` and ``municipality_answer(engine, q)``;
  peak RSS of the process (``ru_maxrss``: it includes the memory-mapped pages it touched).
- ``recall``: recall@10 and latency of other FAISS files over the same vectors (``--extra``), with
  and without re-scoring, at several nprobe.
- ``bm25``: RSS growth of ``bm25s.BM25.load`` with ``mmap=False`` and with ``mmap=True``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (clear_query_caches, load_dev_questions, log, machine_line, peak_rss_mb, rss_mb,
                          rss_parts_mb, run_step, summary_ms, time_search_and_answer, write_result)

K = 10
N_MUNI_QUERIES = 20
N_MLT = 150


def _vectors_file(index_dir: Path) -> Path:
    from index.store_format import VECTORS_FILE

    p = index_dir / VECTORS_FILE
    return p if p.is_file() else index_dir.parent / f"{index_dir.name}.vectors.f16.npy"


def _queries(index_dir: Path) -> list[str]:
    from index.store_format import read_documents
    from index.store import connect_readonly

    dev = [q.query for q in load_dev_questions()]
    con = connect_readonly(index_dir / "index.sqlite")
    munis = list(dict.fromkeys(d.municipality for d in read_documents(con).values()))
    con.close()
    step = max(1, len(munis) // N_MUNI_QUERIES)
    return dev + [f"{munis[(i * step) % len(munis)]}の{dev[i % len(dev)]}" for i in range(N_MUNI_QUERIES)]


def step_truth(index_dir: Path) -> dict[str, Any]:
    from index.config import load_settings
    from index.embedder import Embedder

    vec = np.load(_vectors_file(index_dir), mmap_mode="r")
    n = len(vec)
    texts = _queries(index_dir)
    emb = Embedder.from_settings(load_settings())
    Qt = np.asarray(emb.encode_queries(texts), dtype=np.float32)
    rng = np.random.default_rng(7)
    ids = np.sort(rng.choice(n, N_MLT, replace=False))
    Qm = np.asarray(vec[ids], dtype=np.float32) + rng.standard_normal((N_MLT, vec.shape[1])).astype(np.float32) * (
        0.3 / np.sqrt(vec.shape[1]))
    Qm /= np.linalg.norm(Qm, axis=1, keepdims=True)
    Q = np.vstack([Qt, Qm])
    best_s = np.full((len(Q), K), -np.inf, np.float32)
    best_i = np.full((len(Q), K), -1, np.int64)
    t0 = time.perf_counter()
    for a in range(0, n, 200_000):
        s = Q @ np.asarray(vec[a : a + 200_000], dtype=np.float32).T
        top = np.argpartition(-s, K - 1, axis=1)[:, :K]
        cs = np.concatenate([best_s, np.take_along_axis(s, top, 1)], axis=1)
        ci = np.concatenate([best_i, top + a], axis=1)
        o = np.argsort(-cs, axis=1, kind="stable")[:, :K]
        best_s, best_i = np.take_along_axis(cs, o, 1), np.take_along_axis(ci, o, 1)
    np.savez(_truth_file(index_dir), Q=Q, truth=best_i, n_text=len(texts))
    return {"queries": len(Q), "text_queries": len(texts), "exact_s": round(time.perf_counter() - t0, 1)}


def _truth_file(index_dir: Path) -> Path:
    return index_dir.parent / f"{index_dir.name}.truth.npz"


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[:K].tolist()) & set(t[:K].tolist())) / K for f, t in zip(found, truth)]))


def _bm25_recall(engine: Any, queries: list[str], k: int = 100) -> dict[str, Any]:
    """Recall@k of ``IndexStore.bm25_search`` (candidates from the rarest terms above
    ``EXACT_POSTINGS``) against sorting every chunk's exact BM25 score, over ``queries``."""
    from index import store_search

    store = engine.store
    post = store._postings
    recalls, exact = [], 0
    for q in queries:
        terms = [t for t in store._query_ids(engine.query_terms(q)) if post.df(t) > 0]
        if not terms:
            continue
        exact += sum(post.df(t) for t in terms) <= store_search.EXACT_POSTINGS
        _s, got = store.bm25_search(engine.query_terms(q), k)
        full = post.sums(terms)
        ids = np.flatnonzero(full > 0)
        _s, ref = store_search.best_k(full[ids], ids, k)
        recalls.append(len(set(got.tolist()) & set(ref.tolist())) / max(1, len(ref)))
    return {"bm25_recall_at_100": round(float(np.mean(recalls)), 4) if recalls else None,
            "bm25_recall_at_100_min": round(float(np.min(recalls)), 4) if recalls else None,
            "bm25_exact_queries": int(exact)}


def step_serve(index_dir: Path, passes: int, warm: bool = False) -> dict[str, Any]:
    from index.config import load_settings
    from search.answers import municipality_answer
    from search.engine import Engine

    rss0 = rss_mb()
    t0 = time.perf_counter()
    engine = Engine.from_settings(load_settings().with_overrides(index_dir=index_dir))
    out: dict[str, Any] = {"open_s": round(time.perf_counter() - t0, 2), "rss_before_open_mb": round(rss0),
                           "rss_after_open_mb": round(rss_mb())}
    store = engine.store
    log(f"[serve] open {out['open_s']} s, RSS {out['rss_after_open_mb']} MiB: {store!r}")
    if warm:  # what the app does after opening (ui_state.AppState.warm_up)
        t0 = time.perf_counter()
        out["warm_gb"] = round(store.warm_page_cache() / 1e9, 2)
        out["warm_s"] = round(time.perf_counter() - t0, 1)
        log(f"[serve] page cache warmed: {out['warm_gb']} GB in {out['warm_s']} s")
    def cold() -> None:
        clear_query_caches(store)

    queries = _queries(index_dir)
    for q in queries[:3]:  # warm-up: model load, first calls
        cold()
        municipality_answer(engine, q)
    t_search, t_answer, t_dense, t_bm25 = [], [], [], []
    for _ in range(passes):
        for q in queries:
            s, a = time_search_and_answer(engine, q, cold)
            t_search.append(s)
            t_answer.append(a)
            qv = engine.query_vector(q)
            t0 = time.perf_counter()
            store.dense_search(qv, 100)
            t_dense.append(time.perf_counter() - t0)
            terms = engine.query_terms(q)
            store._bm25_cache.clear()
            t0 = time.perf_counter()
            store.bm25_search(terms, 100)
            t_bm25.append(time.perf_counter() - t0)
    # recall last: its exact searches page in lists the timed queries would otherwise find cold
    z = np.load(_truth_file(index_dir))
    Q, truth = z["Q"], z["truth"]
    t0 = time.perf_counter()
    found = np.vstack([store.dense_search(q, K)[1][None, :K] for q in Q])
    out["recall_at_10"] = round(_recall(found, truth), 4)
    out["recall_at_10_text_queries"] = round(_recall(found[: int(z["n_text"])], truth[: int(z["n_text"])]), 4)
    out["dense_k10_mean_ms"] = round((time.perf_counter() - t0) / len(Q) * 1000, 2)
    log(f"[serve] recall@10 {out['recall_at_10']} (text queries {out['recall_at_10_text_queries']})")

    out.update(_bm25_recall(engine, queries))
    log(f"[serve] BM25 top-100 against exact: recall {out['bm25_recall_at_100']}, "
        f"{out['bm25_exact_queries']} of {len(queries)} queries on the exact path")
    out.update(search=summary_ms(t_search), answer=summary_ms(t_answer), dense_k100=summary_ms(t_dense),
               bm25_k100=summary_ms(t_bm25), queries=len(queries), passes=passes,
               # the first pass alone: after a cold start every list and page is read from disk
               search_pass1=summary_ms(t_search[: len(queries)]), answer_pass1=summary_ms(t_answer[: len(queries)]),
               rss_end_mb=round(rss_mb()), rss_end_parts_mb=rss_parts_mb(), chunks_cached=store.chunks.cached() if hasattr(store.chunks, "cached") else None,
               search_ms_by_query={q: round(t * 1000, 1) for q, t in zip(queries, t_search)},
               answer_ms_by_query={q: round(t * 1000, 1) for q, t in zip(queries, t_answer)})
    log(f"[serve] first pass: search p50/p95 {out['search_pass1']['p50_ms']}/{out['search_pass1']['p95_ms']} ms, "
        f"answer {out['answer_pass1']['p50_ms']}/{out['answer_pass1']['p95_ms']} ms")
    log(f"[serve] search p50/p95 {out['search']['p50_ms']}/{out['search']['p95_ms']} ms, answer "
        f"{out['answer']['p50_ms']}/{out['answer']['p95_ms']} ms, dense {out['dense_k100']['p50_ms']} ms, "
        f"bm25 {out['bm25_k100']['p50_ms']}/{out['bm25_k100']['p95_ms']} ms")
    return out


def _nprobe_rows(index_dir: Path, index: Any, kind: str, vec: np.ndarray, Q: np.ndarray,
                 truth: np.ndarray) -> dict[str, Any]:
    """Recall@10 against ``truth`` and single-query latency of ``index`` searched as the product
    does (``IndexStore.dense_search``), at nprobe 16…128, with and without re-scoring from ``vec``."""
    from index.faiss_index import needs_rescoring
    from index.store import IndexStore

    rows: dict[str, Any] = {}
    for nprobe in (16, 32, 64, 128):
        index.nprobe = nprobe
        for rescore in ((False, True) if needs_rescoring(kind) else (False,)):
            store = IndexStore(index_dir, {"dim": vec.shape[1]}, [], {}, index, None, None,
                               groups=([], np.zeros(0, np.int32)), stored_vectors=vec if rescore else None)
            ts, found = [], []
            for q in Q:
                t0 = time.perf_counter()
                found.append(np.pad(store.dense_search(q, K)[1][:K], (0, K), constant_values=-1)[:K])
                ts.append(time.perf_counter() - t0)
            rows[f"nprobe{nprobe}{'_rescored' if rescore else ''}"] = {
                "recall_at_10": round(_recall(np.vstack(found), truth), 4), **summary_ms(ts)}
    return rows


def step_recall(index_dir: Path, extra: list[str]) -> dict[str, Any]:
    import faiss

    from index.faiss_index import faiss_kind

    z = np.load(_truth_file(index_dir))
    Q, truth = z["Q"], z["truth"]
    vec = np.load(_vectors_file(index_dir), mmap_mode="r")
    res: dict[str, Any] = {}
    for path in extra:
        t0 = time.perf_counter()
        index = faiss.read_index(path)
        kind = faiss_kind(index)
        row: dict[str, Any] = {"kind": kind, "load_s": round(time.perf_counter() - t0, 1),
                               "file_mib": round(Path(path).stat().st_size / 2**20, 1)}
        row.update(_nprobe_rows(index_dir, index, kind, vec, Q, truth))
        log(f"[recall] {path}: {row}")
        res[Path(path).name] = row
        del index
    return res


def step_kinds(index_dir: Path, prefix: int, kinds: list[str]) -> dict[str, Any]:
    """The FAISS kinds built by the product (``index.faiss_index.build_faiss``) over the first
    ``prefix`` stored vectors: build time, size, recall@10 against exact search over the same
    prefix with and without re-scoring, single-query latency, at nprobe 16…128."""
    import faiss

    from index.faiss_index import build_faiss, ivf_nlist

    vec = np.load(_vectors_file(index_dir), mmap_mode="r")[:prefix]
    if _truth_file(index_dir).is_file():
        Q = np.load(_truth_file(index_dir))["Q"]
    else:  # the index is still being written: the dev questions and "more like this" vectors
        from index.config import load_settings
        from index.embedder import Embedder

        Qt = np.asarray(Embedder.from_settings(load_settings()).encode_queries(
            [q.query for q in load_dev_questions()]), dtype=np.float32)
        rng = np.random.default_rng(7)
        ids = np.sort(rng.choice(prefix, N_MLT, replace=False))
        Qm = np.asarray(vec[ids], dtype=np.float32) + rng.standard_normal((N_MLT, vec.shape[1])).astype(
            np.float32) * (0.3 / np.sqrt(vec.shape[1]))
        Q = np.vstack([Qt, Qm / np.linalg.norm(Qm, axis=1, keepdims=True)])
    t0 = time.perf_counter()
    best = []
    for q0 in range(0, len(Q), 50):
        s = np.zeros((min(50, len(Q) - q0), 0), np.float32)
        ids = np.zeros((len(s), 0), np.int64)
        for a in range(0, prefix, 200_000):
            blk = np.asarray(vec[a : a + 200_000], dtype=np.float32)
            sc = Q[q0 : q0 + 50] @ blk.T
            top = np.argpartition(-sc, K - 1, axis=1)[:, :K]
            s = np.concatenate([s, np.take_along_axis(sc, top, 1)], 1)
            ids = np.concatenate([ids, top + a], 1)
            o = np.argsort(-s, axis=1, kind="stable")[:, :K]
            s, ids = np.take_along_axis(s, o, 1), np.take_along_axis(ids, o, 1)
        best.append(ids)
    truth = np.vstack(best)
    res: dict[str, Any] = {"prefix": prefix, "nlist": ivf_nlist(prefix), "exact_s": round(time.perf_counter() - t0, 1)}
    for kind in kinds:
        t0 = time.perf_counter()
        index = build_faiss(vec, kind, vec.shape[1])
        row: dict[str, Any] = {"build_s": round(time.perf_counter() - t0, 1),
                               "index_mib": round(faiss.serialize_index(index).nbytes / 2**20, 1)}
        row.update(_nprobe_rows(index_dir, index, kind, vec, Q, truth))
        log(f"[kinds] {prefix:,} {kind}: {row}")
        res[kind] = row
        del index
    return res


def step_bm25(index_dir: Path) -> dict[str, Any]:
    import bm25s

    out = {}
    for mmap in (True, False):
        r0 = rss_mb()
        t0 = time.perf_counter()
        bm = bm25s.BM25.load(str(index_dir / "bm25"), mmap=mmap, load_corpus=False, show_progress=False)
        out[f"mmap_{mmap}"] = {"load_s": round(time.perf_counter() - t0, 2), "rss_growth_mb": round(rss_mb() - r0),
                               "arrays_mib": round(sum(np.asarray(bm.scores[k]).nbytes for k in ("data", "indices", "indptr"))
                                                   / 2**20), "vocab": len(bm.vocab_dict)}
        del bm
    return out


def child(argv: list[str]) -> dict[str, Any]:
    """Run one step in a fresh interpreter (its log shown as it runs); its JSON result."""
    return run_step("bench.serve_scale", argv, stream_stderr=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--extra", nargs="*", default=[], help="other FAISS files over the same vectors (recall step)")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--warm", action="store_true",
                    help="read the index's mapped files into the page cache after opening, as the app does")
    ap.add_argument("--kinds-prefix", type=int, default=0,
                    help="also compare FAISS kinds built over the first N stored vectors (the thresholds)")
    ap.add_argument("--kinds", nargs="*", default=["ivf", "ivfsq8", "ivfpq"])
    ap.add_argument("--skip-serve", action="store_true", help="only the truth / kinds steps")
    ap.add_argument("--out", default=None, help="result name (default serve_scale_<n>)")
    ap.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.step:
        kind, *rest = args.step
        d = args.index
        out = (step_truth(d) if kind == "truth" else step_serve(d, args.passes, args.warm) if kind == "serve"
               else step_recall(d, rest) if kind == "recall"
               else step_kinds(d, int(rest[0]), rest[1:]) if kind == "kinds" else step_bm25(d))
        out["peak_rss_mb"] = round(peak_rss_mb())
        print(json.dumps(out, ensure_ascii=False))
        return 0
    log(machine_line())
    info_file = args.index / "index.json"  # absent while the index is still being written (kinds only)
    info = (json.loads(info_file.read_text(encoding="utf-8")) if info_file.is_file() else
            {"n_chunks": len(np.load(_vectors_file(args.index), mmap_mode="r")), "faiss_index": None})
    res: dict[str, Any] = {"index": str(args.index), "n_chunks": info["n_chunks"], "faiss": info["faiss_index"],
                           "nprobe": info.get("nprobe")}
    base = ["--index", str(args.index), "--passes", str(args.passes), *(["--warm"] if args.warm else []), "--step"]
    if not _truth_file(args.index).is_file() and not args.skip_serve:
        res["truth"] = child(base + ["truth"])
        log(f"[serve] truth: {res['truth']}")
    if args.kinds_prefix:
        res["kinds"] = child(base + ["kinds", str(args.kinds_prefix), *args.kinds])
        write_result(f"serve_scale_kinds_{args.kinds_prefix}", res)
    if args.skip_serve:
        return 0
    res["serve"] = child(base + ["serve"])
    res["bm25_memory"] = child(base + ["bm25"])
    log(f"[serve] bm25 memory: {res['bm25_memory']}")
    if args.extra:
        res["recall"] = child(base + ["recall", *args.extra])
    write_result(args.out or f"serve_scale_{info['n_chunks']}", res)
    print(json.dumps({k: v for k, v in res.items() if k != "serve"} | {"serve": {
        k: v for k, v in res["serve"].items() if not k.endswith("_by_query")}}, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
