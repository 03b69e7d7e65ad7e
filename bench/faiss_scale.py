"""Exact vs approximate FAISS at 1k / 10k / 100k / 1M chunks: build time, memory, single-query
latency and recall@10 against exact search.

    python -m bench.faiss_scale --quick          # 1k, 10k; < 1 minute
    python -m bench.faiss_scale                  # 1k .. 1M (tens of minutes on 2 cores)
    python -m bench.faiss_scale --sizes 100000 --hnsw-budget 300

Vectors: the bundled corpus' real chunk embeddings (default model) replicated with Gaussian noise
and re-normalised (bench.common.synthetic_vectors); queries: the 30 dev questions' real embeddings
plus noise (``--queries`` of them). Ground truth: IndexFlatIP on the same vectors.

Indexes (inner product on unit vectors):

- ``flat``            IndexFlatIP (exact).
- ``hnsw32_efc200``   IndexHNSWFlat M=32, efConstruction=200 (index.faiss_index's HNSW).
- ``hnsw16_efc40``    IndexHNSWFlat M=16, efConstruction=40 (cheap build).
- ``ivf<nlist>``      the product's IVF (index.faiss_index.build_ivf): IndexIVFFlat over a flat
                      quantiser, nlist ~ 4*sqrt(N) (256..16384, <= N/39), k-means on a fixed-seed
                      sample of min(N, 64*nlist) points. (Before: nlist a power of two and, at 1M,
                      an HNSW32 coarse quantiser, which cost recall: 0.70 at nprobe 32.)

``--kinds`` picks the families (default all; exact search always runs for the ground truth, its
latency only with ``flat``); ``--nprobes`` the IVF sweep.

HNSW builds add vectors in blocks and stop when ``--hnsw-budget`` seconds are spent; a stopped
build is reported with its measured rate (vectors/s) and an extrapolated total, not searched.
Latency: one query per ``search`` call (as the engine does), ``faiss.omp_get_max_threads()``
threads, after 10 warm-up queries; p50/p95 over the queries.
"""
from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from bench.common import (
    NOISE,
    SIZES_FULL,
    SIZES_QUICK,
    free,
    log,
    machine_line,
    noisy_queries,
    real_vectors,
    rss_mb,
    summary_ms,
    synthetic_vectors,
    write_result,
)

K = 10
EF_SWEEP = (16, 32, 64, 128, 256)
NPROBE_SWEEP = (4, 8, 16, 32, 64)


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = K) -> float:
    """Mean share of the exact top-k ids found in the approximate top-k."""
    hits = [len(set(f[:k].tolist()) & set(t[:k].tolist())) / k for f, t in zip(found, truth)]
    return float(np.mean(hits))


def copy_recall_at_k(found: np.ndarray, truth: np.ndarray, n_real: int, k: int = K) -> float:
    """Mean share of the real chunks (id % n_real) behind the exact top-k that the approximate
    top-k also returns (some copy of). Synthetic copies of one chunk are near-equidistant from a
    query, so plain recall@k punishes swapping one copy for another; this does not."""
    hits = []
    for f, t in zip(found, truth):
        want = {int(x) % n_real for x in t[:k] if x >= 0}
        got = {int(x) % n_real for x in f[:k] if x >= 0}
        hits.append(len(want & got) / max(1, len(want)))
    return float(np.mean(hits))


def index_bytes(index: Any) -> int:
    import faiss

    return int(faiss.serialize_index(index).nbytes)


def single_query_latency(index: Any, Q: np.ndarray, warmup: int = 10) -> tuple[dict[str, float], np.ndarray]:
    """Per-query latency stats and the (n, K) id matrix, one query per call."""
    ids = np.empty((len(Q), K), dtype=np.int64)
    for q in Q[:warmup]:
        index.search(q[None, :], K)
    times = []
    for i, q in enumerate(Q):
        t0 = time.perf_counter()
        _, I = index.search(q[None, :], K)
        times.append(time.perf_counter() - t0)
        ids[i] = I[0]
    return summary_ms(times), ids


def build_hnsw(X: np.ndarray, M: int, efc: int, budget_s: float, block: int = 20_000) -> dict[str, Any]:
    import faiss

    index = faiss.IndexHNSWFlat(X.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = efc
    t0 = time.perf_counter()
    done = 0
    while done < len(X):
        b = min(len(X), done + block)
        index.add(X[done:b])
        done = b
        el = time.perf_counter() - t0
        if el > budget_s and done < len(X):
            rate = done / el
            return {
                "finished": False, "added": done, "build_s": round(el, 2), "rate_per_s": round(rate, 1),
                "extrapolated_build_s": round(len(X) / rate * 1.1, 0),
                "note": f"stopped after {el:.0f}s budget at {done}/{len(X)} vectors; extrapolated "
                f"(x1.1 for the growing graph) {len(X) / rate * 1.1 / 60:.0f} min",
            }
    return {"finished": True, "index": index, "build_s": round(time.perf_counter() - t0, 2)}


def nlist_for(n: int) -> int:
    from index.faiss_index import ivf_nlist

    return ivf_nlist(n)


def build_ivf(X: np.ndarray, nlist: int) -> tuple[Any, float, float]:
    """The product's IVF (index.faiss_index.build_ivf), timed as train (incl. sampling) and add."""
    import faiss

    from index import faiss_index as fi

    d = X.shape[1]
    t0 = time.perf_counter()
    # train exactly as build_ivf does, on an empty copy, to time train and add separately
    trained = fi.build_ivf(X[:0], d, nlist)
    n_train = min(len(X), fi.IVF_TRAIN_POINTS_PER_CENTROID * nlist)
    rng = np.random.default_rng(fi.IVF_SEED)
    sample = X[np.sort(rng.choice(len(X), size=n_train, replace=False))] if n_train < len(X) else X
    trained.train(sample)
    del sample
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    trained.add(X)
    trained.make_direct_map()
    t_add = time.perf_counter() - t0
    return trained, t_train, t_add


def run_size(n: int, P: np.ndarray, Qr: np.ndarray, args: argparse.Namespace) -> list[dict[str, Any]]:
    import faiss

    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    X = synthetic_vectors(P, n, noise=args.noise)
    log(f"[faiss n={n}] synthetic vectors in {time.perf_counter() - t0:.1f}s")
    Q = noisy_queries(Qr, args.queries, noise=args.noise)
    d = X.shape[1]

    # exact (one query per call: with 1 OpenMP thread and with all of them)
    rss0 = rss_mb()
    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(d)
    flat.add(X)
    build = time.perf_counter() - t0
    _, truth = flat.search(Q, K)
    mem = round(index_bytes(flat) / 2**20, 1)
    nthreads = faiss.omp_get_max_threads()
    for th in (sorted({1, nthreads}) if "flat" in args.kinds else ()):
        faiss.omp_set_num_threads(th)
        lat, _ = single_query_latency(flat, Q)
        rows.append({"n": n, "index": "flat", "param": f"threads={th}", "build_s": round(build, 3),
                     "mem_mb": mem, "rss_delta_mb": round(rss_mb() - rss0, 1), "recall@10": 1.0, "copy_recall@10": 1.0, **lat})
        log(f"[faiss n={n}] flat threads={th} p50={lat['p50_ms']}ms p95={lat['p95_ms']}ms")
    faiss.omp_set_num_threads(nthreads)
    del flat
    free()

    # HNSW
    for name, M, efc in ((("hnsw32_efc200", 32, 200), ("hnsw16_efc40", 16, 40)) if "hnsw" in args.kinds else ()):
        if args.only_cheap_hnsw and M == 32 and n > 100_000:
            rows.append({"n": n, "index": name, "param": "-", "skipped": "--only-cheap-hnsw"})
            continue
        rss0 = rss_mb()
        b = build_hnsw(X, M, efc, args.hnsw_budget)
        if not b["finished"]:
            rows.append({"n": n, "index": name, "param": "-", **b})
            log(f"[faiss n={n}] {name}: {b['note']}")
            free()
            continue
        idx = b.pop("index")
        mem = round(index_bytes(idx) / 2**20, 1)
        rss_d = round(rss_mb() - rss0, 1)
        for ef in EF_SWEEP:
            idx.hnsw.efSearch = ef
            lat, found = single_query_latency(idx, Q)
            rows.append({"n": n, "index": name, "param": f"efSearch={ef}", "build_s": b["build_s"], "mem_mb": mem,
                         "rss_delta_mb": rss_d, "recall@10": round(recall_at_k(found, truth), 4),
                         "copy_recall@10": round(copy_recall_at_k(found, truth, len(P)), 4), **lat})
            log(f"[faiss n={n}] {name} ef={ef} recall={rows[-1]['recall@10']} p95={lat['p95_ms']}ms build={b['build_s']}s")
        del idx
        free()

    # IVF
    if n >= 10_000 and "ivf" in args.kinds:
        nlist = nlist_for(n)
        rss0 = rss_mb()
        idx, t_train, t_add = build_ivf(X, nlist)
        mem = round(index_bytes(idx) / 2**20, 1)
        rss_d = round(rss_mb() - rss0, 1)
        for nprobe in args.nprobes:
            idx.nprobe = nprobe
            lat, found = single_query_latency(idx, Q)
            rows.append({"n": n, "index": f"ivf{nlist}", "param": f"nprobe={nprobe}",
                         "build_s": round(t_train + t_add, 2), "train_s": round(t_train, 2), "mem_mb": mem,
                         "rss_delta_mb": rss_d, "recall@10": round(recall_at_k(found, truth), 4),
                         "copy_recall@10": round(copy_recall_at_k(found, truth, len(P)), 4), **lat})
            log(f"[faiss n={n}] ivf{nlist} nprobe={nprobe} recall={rows[-1]['recall@10']} p95={lat['p95_ms']}ms "
                f"build={t_train + t_add:.1f}s")
        del idx
        free()
    del X
    free()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = "| chunks | index | search param | build s | index MiB | recall@10 | copy recall@10 | p50 ms | p95 ms |\n|---:|---|---|---:|---:|---:|---:|---:|---:|"
    out = [head]
    for r in rows:
        if "p50_ms" not in r:
            note = r.get("note") or r.get("skipped", "")
            out.append(f"| {r['n']:,} | {r['index']} | - | {r.get('build_s', '-')} (partial) | - | - | - | - | - |  \n"
                       f"|  | ↳ {note} | | | | | | | |")
            continue
        out.append(f"| {r['n']:,} | {r['index']} | {r['param']} | {r['build_s']} | {r['mem_mb']} | "
                   f"{r['recall@10']:.3f} | {(format(r['copy_recall@10'], '.3f') if 'copy_recall@10' in r else '–')} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    import faiss

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1k and 10k only")
    ap.add_argument("--sizes", type=int, nargs="*", help="chunk counts (default: 1k 10k 100k 1M)")
    ap.add_argument("--queries", type=int, default=300, help="query vectors (dev questions + noise)")
    ap.add_argument("--noise", type=float, default=NOISE)
    ap.add_argument("--hnsw-budget", type=float, default=900.0, help="seconds per HNSW build before stopping")
    ap.add_argument("--only-cheap-hnsw", action="store_true", help="skip M=32/efC=200 above 100k")
    ap.add_argument("--kinds", nargs="*", default=["flat", "hnsw", "ivf"], choices=("flat", "hnsw", "ivf"),
                    help="index families to measure (default all)")
    ap.add_argument("--nprobes", type=int, nargs="*", default=list(NPROBE_SWEEP), help="IVF nprobe sweep")
    ap.add_argument("--out", default=None, help="result name under bench/results (default faiss_scale[_quick])")
    args = ap.parse_args(argv)
    sizes = args.sizes or (SIZES_QUICK if args.quick else SIZES_FULL)
    if args.quick:
        args.queries = min(args.queries, 200)
    log(machine_line())
    log(f"faiss threads: {faiss.omp_get_max_threads()}")
    P, Qr = real_vectors()
    rows: list[dict[str, Any]] = []
    for n in sizes:
        rows.extend(run_size(n, P, Qr, args))
        write_result(args.out or ("faiss_scale_quick" if args.quick else "faiss_scale"),
                     {"noise": args.noise, "queries": args.queries, "kinds": args.kinds, "faiss_threads": faiss.omp_get_max_threads(),
                      "rows": rows})
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
