"""Run every benchmark, then print the Markdown tables (bench.report) for docs/benchmarks.md.

    python -m bench.run --quick     # small sizes, a few minutes in all
    python -m bench.run --full      # 1k .. 1M; an hour or more on 2 cores
    python -m bench.run --scale 5m  # serving a synthetic 5M-chunk index (docs/serving.md): writes it
                                    # first if absent (about 30 GB, an hour or more on 2 cores)

Each script is run in its own process (so memory and thread pools do not carry over) and writes
bench/results/<name>.json with the machine it ran on.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from bench.common import ROOT, bench_cache_dir, log, machine_line

SCRIPTS = ("bench.faiss_scale", "bench.embed_backends", "bench.e2e_latency", "bench.build_scale", "bench.build_corpus",
           "bench.pdf_read", "bench.ray_build")


SCALES = {"1m": 1_000_000, "5m": 5_000_000}


def run_scale(size: str, scale_dir: Path | None) -> int:
    """Write the synthetic store of ``size`` (bench.scale_store) unless it exists, then run
    bench.serve_scale on it (nice 10: the machine is shared)."""
    root = scale_dir or Path(os.environ.get("SEISAKU_SCALE_DIR") or bench_cache_dir())
    index = root / f"scale{size}" / "index"
    nice = ["nice", "-n", "10"] if os.name == "posix" else []
    if not (index / "index.json").is_file():
        cmd = nice + [sys.executable, "-m", "bench.scale_store", "--n", str(SCALES[size]), "--out", str(index)]
        log("$ " + " ".join(cmd))
        if subprocess.run(cmd, cwd=ROOT).returncode != 0:
            return 1
    cmd = nice + [sys.executable, "-m", "bench.serve_scale", "--index", str(index), "--warm"]
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, cwd=ROOT).returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--quick", action="store_true")
    g.add_argument("--full", action="store_true")
    g.add_argument("--scale", choices=sorted(SCALES), help="the serving benchmark on a synthetic store of this size")
    ap.add_argument("--scale-dir", type=Path, default=None,
                    help="where the synthetic stores live (default $SEISAKU_SCALE_DIR, else the bench cache)")
    ap.add_argument("--only", nargs="*", choices=[s.split(".")[1] for s in SCRIPTS])
    args = ap.parse_args(argv)
    log(machine_line())
    if args.scale:
        return run_scale(args.scale, args.scale_dir)
    failed = []
    for mod in SCRIPTS:
        if args.only and mod.split(".")[1] not in args.only:
            continue
        cmd = [sys.executable, "-m", mod] + (["--quick"] if args.quick else [])
        log("$ " + " ".join(cmd[1:]))
        if subprocess.run(cmd, cwd=ROOT).returncode != 0:
            failed.append(mod)
    subprocess.run([sys.executable, "-m", "bench.report"] + (["--quick"] if args.quick else []), cwd=ROOT)
    if failed:
        log("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
