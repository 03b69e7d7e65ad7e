"""Index build time and peak RSS (bundled corpus, and 100k synthetic chunks), index open time and
serving RSS, and UI cold start (``python ui.py --index DIR`` until HTTP 200).

    python -m bench.build_scale --quick        # bundled build + 10k synthetic + UI cold start
    python -m bench.build_scale                # bundled build + 100k synthetic + UI cold start

Every measured step runs in its own child process (``python -m bench.build_scale --step ...``),
which reports its own wall time and peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), so
one step's memory never counts against another:

- ``build``: ``index.build.build_index`` of the bundled corpus into a fresh directory with a fresh
  embedding cache (model load + chunking + tokenising + embedding + SQLite/FAISS/BM25 writes).
- ``write N``: the bundled index scaled to N chunks (bench.common's synthetic copies: real token
  lists, noisy real vectors) written by ``index.store.write_store`` with the FAISS kind the auto
  rule picks — everything a build does at N except embedding, whose time at N is reported as
  N / (the measured chunks/s of the bundled build's embedding), an extrapolation.
- ``serve N``: ``Engine`` opened on that directory (``IndexStore.open``) and 30 dev questions
  answered (``municipality_answer``): open time and the serving process's peak RSS.
- UI: ``python ui.py --index DIR --port P`` started; the time until ``GET /`` returns 200, and
  polled every 0.1 s; then the process is terminated.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import ROOT, log, machine_line, peak_rss_mb, run_step, write_result


# ----------------------------------------------------------------------------- child steps
def step_build(index_dir: str, backend: str | None) -> dict[str, Any]:
    from index.build import build_index
    from index.config import load_settings

    s = load_settings().with_overrides(index_dir=Path(index_dir), backend=backend)
    t0 = time.perf_counter()
    rep = build_index(s, progress=False)
    wall = time.perf_counter() - t0
    info = json.loads((Path(index_dir) / "index.json").read_text(encoding="utf-8"))
    return {"wall_s": round(wall, 2), "n_chunks": info.get("n_chunks"), "faiss": info.get("faiss_index"),
            "report": getattr(rep, "summary", lambda: "")()}


def step_write(base_dir: str, out_dir: str, n: int) -> dict[str, Any]:
    from bench.common import synthetic_vectors
    from index.config import load_settings
    from index.faiss_index import choose_kind
    from index.store import IndexRows, IndexStore, write_store

    import dataclasses

    t_all = time.perf_counter()
    base = IndexStore.open(base_dir)
    nb = len(base.chunks)
    toks = base.chunk_tokens()
    keys = base.embed_keys()
    vecs = base.vectors()
    chunks = [c if i < nb else dataclasses.replace(c, chunk_id=f"{c.chunk_id}~{i // nb}")
              for i, c in ((i, base.chunks[i % nb]) for i in range(n))]
    V = synthetic_vectors(vecs, n)
    s = load_settings()
    kind = choose_kind(s.faiss_index, n, s.ann_threshold)
    t_prep = time.perf_counter() - t_all
    t0 = time.perf_counter()
    lem = base.chunk_lemmas()
    rows = IndexRows(chunks, tokens=[toks[i % nb] for i in range(n)],
                     embed_keys=[f"{keys[i % nb]}~{i // nb}" for i in range(n)], documents=list(base.documents.values()),
                     lemmas=[lem[i % nb] for i in range(n)] if lem is not None else None)
    write_store(Path(out_dir), rows, vectors=V, info=dict(base.info), faiss_index_kind=kind)
    t_write = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in Path(out_dir).rglob("*") if f.is_file())
    del V
    return {"prep_s": round(t_prep, 2), "write_s": round(t_write, 2), "faiss": kind, "disk_mb": round(size / 2**20, 1),
            "n_chunks": n, "vector_mb": round(n * vecs.shape[1] * 4 / 2**20, 1)}


def step_serve(index_dir: str) -> dict[str, Any]:
    from bench.common import load_dev_questions
    from index.config import load_settings
    from search.answers import municipality_answer
    from search.engine import Engine

    s = load_settings().with_overrides(index_dir=Path(index_dir))
    t0 = time.perf_counter()
    engine = Engine.from_settings(s)
    t_open = time.perf_counter() - t0
    rss_open = peak_rss_mb()
    t0 = time.perf_counter()
    qs = load_dev_questions()
    for q in qs:
        municipality_answer(engine, q.query)
    return {"open_s": round(t_open, 2), "peak_rss_after_open_mb": round(rss_open),
            "answer_30_s": round(time.perf_counter() - t0, 2)}


def child(argv: list[str]) -> dict[str, Any]:
    """Run one step in a fresh interpreter; its JSON result plus the process's wall time."""
    t0 = time.perf_counter()
    out = run_step("bench.build_scale", ["--step", *argv])
    out["process_wall_s"] = round(time.perf_counter() - t0, 2)
    return out


def ui_cold_start(index_dir: str, port: int, timeout: float = 300.0) -> dict[str, Any]:
    """Seconds from spawning ``python ui.py --index DIR`` to HTTP 200 on /."""
    env = dict(os.environ)
    cmd = [sys.executable, "ui.py", "--index", index_dir, "--port", str(port)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    res: dict[str, Any] = {"command": " ".join(cmd[1:])}
    try:
        url = f"http://127.0.0.1:{port}/"
        while time.perf_counter() - t0 < timeout:
            if proc.poll() is not None:
                res["error"] = f"ui.py exited with {proc.returncode}"
                return res
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        res["http_200_s"] = round(time.perf_counter() - t0, 2)
                        break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            res["error"] = f"no HTTP 200 within {timeout}s"
            return res
        return res
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None, help="synthetic size (default 100k; quick 10k)")
    ap.add_argument("--backend", default=None)
    ap.add_argument("--port", type=int, default=7931)
    ap.add_argument("--ui-runs", type=int, default=None, help="UI cold starts (default 3; quick 1)")
    ap.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.step:
        kind, *rest = args.step
        if kind == "build":
            out = step_build(rest[0], rest[1] if len(rest) > 1 and rest[1] != "-" else None)
        elif kind == "write":
            out = step_write(rest[0], rest[1], int(rest[2]))
        elif kind == "serve":
            out = step_serve(rest[0])
        else:
            raise SystemExit(f"unknown step {kind}")
        out["peak_rss_mb"] = round(peak_rss_mb())
        print(json.dumps(out, ensure_ascii=False))
        return 0

    n = args.n or (10_000 if args.quick else 100_000)
    ui_runs = args.ui_runs or (1 if args.quick else 3)
    log(machine_line())
    res: dict[str, Any] = {"backend": args.backend, "n_synthetic": n}
    with tempfile.TemporaryDirectory(prefix="seisaku-build-") as tmp:
        bundled = str(Path(tmp) / "bundled")
        res["bundled_build"] = child(["build", bundled, args.backend or "-"])
        log(f"[build] bundled: {res['bundled_build']}")
        big = str(Path(tmp) / f"synthetic{n}")
        res["synthetic_write"] = child(["write", bundled, big, str(n)])
        log(f"[build] write {n}: {res['synthetic_write']}")
        res["bundled_serve"] = child(["serve", bundled])
        log(f"[build] serve bundled: {res['bundled_serve']}")
        res["synthetic_serve"] = child(["serve", big])
        log(f"[build] serve {n}: {res['synthetic_serve']}")
        res["ui"] = []
        for i in range(ui_runs):
            res["ui"].append(ui_cold_start(bundled, args.port + i))
            log(f"[build] ui cold start (bundled): {res['ui'][-1]}")
        res["ui_synthetic"] = ui_cold_start(big, args.port + 50)
        log(f"[build] ui cold start ({n}): {res['ui_synthetic']}")
    write_result("build_scale_quick" if args.quick else "build_scale", res)
    print(json.dumps(res, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
