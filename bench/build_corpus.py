"""A real build of a large corpus: time and peak RSS of ``index.build.build_index`` at ~100k chunks.

    python -m bench.build_corpus                                   # 541 × 185 = 100,085 chunks, 2 % embedded
    python -m bench.build_corpus --real-fraction 1                 # the same, every chunk embedded (≈ 1 h)
    python -m bench.build_corpus --copies 54 --real-fraction 1     # ≈ 10k chunks, all embedded
    python -m bench.build_corpus --quick                           # ≈ 10k chunks, 10 % embedded

The corpus: ``--copies`` copies of the five bundled documents (hard links, else copies), each copy
its own manifest row with its own municipality (``常総市0007``) and title (``…（複製0007）``). The
title and the municipality are in every chunk's ``embed_text`` header, so every chunk is a distinct
text for the embedding cache and the model; the documents go through the product's readers,
structure parsers, chunker, fugashi tokeniser, embedder, SQLite, bm25s and FAISS unchanged.

``--real-fraction f < 1``: before the build, the vectors of all but a fraction ``f`` of the chunks
(every ``1/f``-th chunk is left out) are written into an embedding cache where the product looks
for the vectors of a build that died (``<index>.tmp-<pid>/cache/embeddings.sqlite``), so the build
embeds only the rest. Those vectors are the real vector of the same chunk text in the bundled index
plus the bench's usual noise (bench.common). The build's peak RSS is then measured for real with
the model loaded and running; its time is reported as measured and, for the whole corpus, as
measured + (chunks taken from the cache) / (the chunks/s the same build measured while embedding).

Every step (base index, prefill, build) runs in its own child process and this parent stays
small, because a child's ``ru_maxrss`` starts from its parent's RSS at the fork. The build child
reports its wall time, its peak RSS, the peak at the end of each phase (corpus loaded and chunked,
BM25 terms, vectors, index written) and the embedding rate.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, log, machine, machine_line, peak_rss_mb, run_step, write_result

#: A pid no live build has: the prefilled cache looks like the temp dir of a build that died.
FAKE_DEAD_PID = 999_999_999


def make_corpus(dst: Path, copies: int) -> int:
    """``copies`` copies of the bundled corpus in ``dst`` with a manifest; returns the file count."""
    src = ROOT / "corpus"
    with open(src / "manifest.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    dst.mkdir(parents=True, exist_ok=True)
    fields = list(rows[0].keys())
    out_rows = []
    for k in range(copies):
        for r in rows:
            name = f"c{k:04d}_{r['path']}"
            try:
                os.link(src / r["path"], dst / name)
            except OSError:
                shutil.copyfile(src / r["path"], dst / name)
            out_rows.append(dict(r, path=name, municipality=f"{r['municipality']}{k:04d}",
                                 title=f"{r['title']}（複製{k:04d}）"))
    with open(dst / "manifest.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(out_rows)
    return len(out_rows)


def prefill(corpus_dir: Path, index_dir: Path, base_index: Path, real_fraction: float) -> dict[str, Any]:
    """Write the vectors of all but ``real_fraction`` of the chunks into a dead build's cache."""
    import numpy as np

    from bench.common import NOISE
    from corpus.loader import load_corpus
    from index.config import load_settings
    from index.embedder import Embedder
    from index.store import CACHE_DB, CACHE_DIR, EmbeddingCache, IndexStore, embed_key

    s = load_settings().with_overrides(corpus_dir=corpus_dir, index_dir=index_dir)
    emb = Embedder.from_settings(s)
    base = IndexStore.open(base_index)
    by_text = dict(zip((c.text for c in base.chunks), base.vectors()))
    loaded = load_corpus(corpus_dir, max_tokens=s.max_item_tokens, limits=s.limits)
    prompt = emb.passage_prompt or ""
    step = max(1, round(1 / real_fraction)) if real_fraction > 0 else 0
    rng = np.random.default_rng(0)
    sigma = NOISE / np.sqrt(base.dim)
    pairs = []
    keys = set()
    for i, c in enumerate(loaded.chunks):
        k = embed_key(prompt, c.embed_text)
        if k in keys or (step and i % step == 0):
            continue
        keys.add(k)
        v = by_text[c.text] + rng.standard_normal(base.dim).astype(np.float32) * sigma
        pairs.append((k, (v / np.linalg.norm(v)).astype(np.float32)))
    cache_path = index_dir.parent / f"{index_dir.name}.tmp-{FAKE_DEAD_PID}" / CACHE_DIR / CACHE_DB
    cache_path.parent.mkdir(parents=True)
    with EmbeddingCache(cache_path) as cache:
        cache.put_many(emb.model_id, pairs)
    return {"n_chunks": len(loaded.chunks), "n_prefilled": len(pairs)}


# ----------------------------------------------------------------------------- child step
def step_build(corpus_dir: str, index_dir: str) -> dict[str, Any]:
    """``build_index`` of ``corpus_dir`` into ``index_dir``, timing the phases from outside."""
    import index.build as build_mod
    import index.store as store_mod
    from index.config import load_settings

    phases: dict[str, dict[str, float]] = {}
    t_start = time.perf_counter()

    def timed(mod: Any, name: str, label: str) -> None:
        real = getattr(mod, name)

        def wrapper(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return real(*a, **kw)
            finally:
                phases[label] = {"s": round(time.perf_counter() - t0, 2),
                                 "ended_at_s": round(time.perf_counter() - t_start, 1),
                                 "peak_rss_mb": round(peak_rss_mb())}

        setattr(mod, name, wrapper)

    import corpus.loader as loader_mod

    timed(loader_mod, "load_corpus", "load_and_chunk")
    timed(build_mod, "_tokenize_all", "tokenize")
    timed(build_mod, "_embed", "vectors")
    timed(build_mod, "write_store", "write")
    s = load_settings().with_overrides(corpus_dir=Path(corpus_dir), index_dir=Path(index_dir))
    t0 = time.perf_counter()
    rep = build_mod.build_index(s, progress=False, release_model=True)  # as `seisaku build`
    wall = time.perf_counter() - t0
    info = json.loads((Path(index_dir) / store_mod.INDEX_JSON).read_text(encoding="utf-8"))
    return {"wall_s": round(wall, 1), "n_docs": rep.n_docs, "n_chunks": rep.n_chunks,
            "n_embedded": rep.n_embedded, "n_cached": rep.n_cached, "faiss": info.get("faiss_index"),
            "backend": s.backend, "phases": phases, "ok": rep.ok,
            "n_messages": len(rep.messages)}


def child(step: list[str]) -> dict[str, Any]:
    """Run one ``--step`` in a fresh interpreter and return its JSON line."""
    return run_step("bench.build_corpus", ["--step", *step])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="54 copies (≈ 10k chunks), 10 %% embedded")
    ap.add_argument("--copies", type=int, default=None, help="copies of the bundled corpus (default 541 → 100,085 chunks)")
    ap.add_argument("--real-fraction", type=float, default=None,
                    help="share of chunks embedded by the model (default 0.02; 1 = a fully real build)")
    ap.add_argument("--base-index", help="a built index of the bundled corpus (for the prefilled vectors; "
                    "default: built in a child)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.step:
        kind, *rest = args.step
        if kind == "build":
            out = step_build(rest[0], rest[1])
        elif kind == "prefill":
            out = prefill(Path(rest[0]), Path(rest[1]), Path(rest[2]), float(rest[3]))
        elif kind == "base":
            from index.build import build_index
            from index.config import load_settings

            build_index(load_settings().with_overrides(index_dir=Path(rest[0])), progress=False)
            out = {}
        else:
            raise SystemExit(f"unknown step {kind}")
        out["peak_rss_mb"] = round(peak_rss_mb())
        print(json.dumps(out, ensure_ascii=False))
        return 0

    args.copies = args.copies or (54 if args.quick else 541)
    args.real_fraction = args.real_fraction if args.real_fraction is not None else (0.1 if args.quick else 0.02)
    log(machine_line())
    res: dict[str, Any] = {"machine": machine(), "copies": args.copies, "real_fraction": args.real_fraction}
    with tempfile.TemporaryDirectory(prefix="seisaku-bigbuild-") as tmp:
        corpus_dir = Path(tmp) / "corpus"
        index_dir = Path(tmp) / "index"
        res["n_files"] = make_corpus(corpus_dir, args.copies)
        # every step runs in its own child, and this parent stays small: a child's ru_maxrss
        # starts at its parent's RSS at the fork
        if args.real_fraction < 1:
            base = args.base_index
            if base is None:
                base = str(Path(tmp) / "base")
                child(["base", base])
            t0 = time.perf_counter()
            res["prefill"] = child(["prefill", str(corpus_dir), str(index_dir), base, str(args.real_fraction)])
            res["prefill"]["s"] = round(time.perf_counter() - t0, 1)
            log(f"[bigbuild] prefilled {res['prefill']}")
        t0 = time.perf_counter()
        b = child(["build", str(corpus_dir), str(index_dir)])
        b["process_wall_s"] = round(time.perf_counter() - t0, 1)
        res["build"] = b
        vec = b["phases"].get("vectors", {})
        if b["n_embedded"] and vec.get("s"):
            rate = b["n_embedded"] / vec["s"]  # the vectors phase also reads the cache; a lower bound
            res["embed_chunks_per_s"] = round(rate, 2)
            res["full_build_estimate_s"] = round(b["wall_s"] + b["n_cached"] / rate, 0)
        res["index_disk_mb"] = round(sum(f.stat().st_size for f in index_dir.rglob("*") if f.is_file()) / 2**20, 1)
        log(f"[bigbuild] {json.dumps(res['build'], ensure_ascii=False)}")
    name = args.out or ("build_corpus_quick" if args.quick else "build_corpus")
    write_result(name, res)
    print(json.dumps(res, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
