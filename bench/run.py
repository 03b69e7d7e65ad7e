"""Run every benchmark, then print the Markdown tables (bench.report) for docs/benchmarks.md.

    python -m bench.run --quick     # small sizes, a few minutes in all
    python -m bench.run --full      # 1k .. 1M; an hour or more on 2 cores

Each script is run in its own process (so memory and thread pools do not carry over) and writes
bench/results/<name>.json with the machine it ran on.
"""
from __future__ import annotations

import argparse
import subprocess
import sys

from bench.common import ROOT, log, machine_line

SCRIPTS = ("bench.faiss_scale", "bench.embed_backends", "bench.e2e_latency", "bench.build_scale", "bench.build_corpus",
           "bench.pdf_read", "bench.ray_build")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--quick", action="store_true")
    g.add_argument("--full", action="store_true")
    ap.add_argument("--only", nargs="*", choices=[s.split(".")[1] for s in SCRIPTS])
    args = ap.parse_args(argv)
    log(machine_line())
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
