"""Markdown tables from bench/results/*.json (what docs/benchmarks.md shows).

    python -m bench.report            # full-mode results
    python -m bench.report --quick    # the *_quick results
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, machine_line


def _load(name: str) -> dict[str, Any] | None:
    p = RESULTS_DIR / f"{name}.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None


def _json_block(d: dict[str, Any]) -> str:
    return "```json\n" + json.dumps({k: v for k, v in d.items() if k not in ("machine", "argv")},
                                     ensure_ascii=False, indent=1) + "\n```"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    sfx = "_quick" if args.quick else ""
    from bench import e2e_latency, embed_backends, faiss_scale, ray_build

    for name, render in (("embed_backends", lambda d: embed_backends.table(d["rows"])),
                         ("faiss_scale", lambda d: faiss_scale.table(d["rows"])),
                         ("e2e_latency", lambda d: e2e_latency.table(d["rows"])),
                         ("e2e_latency_1m", lambda d: e2e_latency.table(d["rows"])),
                         ("build_scale", _json_block),
                         ("build_corpus", _json_block),
                         ("ray_build", ray_build.table)):
        d = _load(name + sfx)
        if d is None:
            continue
        print(f"### {name}{sfx}\n")
        print(f"Machine: {machine_line(d['machine'])}; load average (1 min) at the end: {d['machine'].get('loadavg_1m')}. "
              f"Written {d.get('written')}; command: `python -m {' '.join(['bench.' + Path(d['argv'][0]).stem] + d['argv'][1:])}`\n")
        print(render(d))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
