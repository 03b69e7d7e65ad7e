"""Chunks per second of the build: local, and on Ray with 1 and 2 worker nodes (docs/scale.md).

    python -m bench.ray_build                       # 4 copies of the bundled corpus: 32 documents, 992 chunks
    python -m bench.ray_build --quick               # 2 copies: 16 documents, 496 chunks
    python -m bench.ray_build --modes local ray2    # some of: local, ray1, ray2

The corpus is ``--copies`` copies of the bundled corpus (:func:`bench.build_corpus.make_corpus`:
each copy has its own municipality and title, which are in every chunk's embedding text, so no
two chunks share a vector). Every run builds a fresh index — no embedding cache, nothing reused
— in its own child process:

- ``local``: :func:`index.build.build_index` as ``seisaku build`` runs it (ONNX int8, one
  process, ONNX Runtime on every core);
- ``rayN``: :func:`index.ray_build.build_index_ray` as ``seisaku build --ray ADDRESS`` runs it,
  on a cluster of N nodes of one CPU each on this machine (bench/ray_cluster.py; the cluster's
  start is not timed, the driver's connection is).

Per run, from the build's progress events: the reading pass (documents read and chunked, plus
the BM25 terms: the local build's 読み込み + トークン化 stages, the Ray build's first pass) in
documents/s and chunks/s; the embedding pass (first to last 埋め込み event, the model's load
included) in chunks/s; the write; and the whole build in chunks/s of wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import log, machine, machine_line, peak_rss_mb, run_step, write_result

MODES = ("local", "ray1", "ray2")


def _phases(events: list[tuple[float, Any]], t0: float) -> dict[str, float]:
    """Seconds of each pass from ``(time, BuildProgress)`` events."""
    def span(*stages: str) -> float:
        ts = [t for t, e in events if e.stage in stages]
        return round(max(ts) - min(ts), 2) if ts else 0.0

    first = min((t for t, _ in events), default=t0)
    return {"start_s": round(first - t0, 2), "read_s": span("読み込み", "トークン化"),
            "embed_s": span("埋め込み"), "write_s": span("書き込み")}


def step_build(mode: str, corpus_dir: str, index_dir: str) -> dict[str, Any]:
    """One build of ``corpus_dir`` into ``index_dir`` in this process; its rates."""
    from index.config import load_settings

    settings = load_settings().with_overrides(corpus_dir=Path(corpus_dir), index_dir=Path(index_dir))
    events: list[tuple[float, Any]] = []

    def progress(e: Any) -> None:
        events.append((time.perf_counter(), e))

    extra: dict[str, Any] = {}
    if mode == "local":
        from index.build import build_index

        t0 = time.perf_counter()
        rep = build_index(settings, progress=progress, release_model=True)
        wall = time.perf_counter() - t0
    else:
        from bench.ray_cluster import local_cluster

        nodes = int(mode.removeprefix("ray"))
        with local_cluster(nodes=nodes, cpus_per_node=1) as address:
            from index.ray_build import build_index_ray

            t0 = time.perf_counter()
            rep = build_index_ray(settings, address=address, progress=progress, release_model=True)
            wall = time.perf_counter() - t0
        extra = {"nodes": rep.n_nodes, "actors": rep.n_actors}
    ph = _phases(events, t0)
    out = {"mode": mode, "wall_s": round(wall, 1), "n_docs": rep.n_docs, "n_chunks": rep.n_chunks,
           "n_embedded": rep.n_embedded, "ok": rep.ok, **extra, **ph}
    if ph["read_s"]:
        out["read_docs_per_s"] = round(rep.n_docs / ph["read_s"], 2)
        out["read_chunks_per_s"] = round(rep.n_chunks / ph["read_s"], 1)
    if ph["embed_s"]:
        out["embed_chunks_per_s"] = round(rep.n_embedded / ph["embed_s"], 2)
    out["chunks_per_s"] = round(rep.n_chunks / wall, 2)
    return out


def table(res: dict[str, Any]) -> str:
    """The runs as a Markdown table (bench.report, docs/scale.md)."""
    rows = ["| build | nodes × CPUs | documents | chunks | reading: documents/s | reading: chunks/s | "
            "embedding: chunks/s | write s | wall s | chunks/s overall |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["runs"]:
        where = "1 process × all cores" if r["mode"] == "local" else f"{r['mode'].removeprefix('ray')} × 1 (Ray)"
        rows.append(f"| {r['mode']} | {where} | {r['n_docs']} | {r['n_chunks']} | {r.get('read_docs_per_s', '')} | "
                    f"{r.get('read_chunks_per_s', '')} | {r.get('embed_chunks_per_s', '')} | {r['write_s']} | "
                    f"{r['wall_s']} | {r['chunks_per_s']} |")
    return "\n".join(rows)


def child(step: list[str]) -> dict[str, Any]:
    """Run one ``--step`` in a fresh interpreter and return its JSON line."""
    return run_step("bench.ray_build", ["--step", *step])


def main(argv: list[str] | None = None) -> int:
    """Run the chosen modes and write bench/results/ray_build[_quick].json."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 copies (496 chunks)")
    ap.add_argument("--copies", type=int, default=None, help="copies of the bundled corpus (default 4)")
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("--out", default=None)
    ap.add_argument("--step", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.step:
        out = step_build(*args.step)
        out["peak_rss_mb"] = round(peak_rss_mb())
        print(json.dumps(out, ensure_ascii=False))
        return 0
    import importlib.util

    if any(m.startswith("ray") for m in args.modes) and importlib.util.find_spec("ray") is None:
        log("[ray_build] Ray is not installed (pip install -e '.[ray]'): nothing measured")
        return 0
    from bench.build_corpus import make_corpus

    copies = args.copies or (2 if args.quick else 4)
    log(machine_line())
    res: dict[str, Any] = {"machine": machine(), "copies": copies, "runs": []}
    with tempfile.TemporaryDirectory(prefix="seisaku-raybench-") as tmp:
        corpus_dir = Path(tmp) / "corpus"
        res["n_files"] = make_corpus(corpus_dir, copies)
        for mode in args.modes:
            r = child([mode, str(corpus_dir), str(Path(tmp) / f"index-{mode}")])
            r["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
            res["runs"].append(r)
            log(f"[ray_build] {json.dumps(r, ensure_ascii=False)}")
    name = args.out or ("ray_build_quick" if args.quick else "ray_build")
    write_result(name, res)
    print(json.dumps(res, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
