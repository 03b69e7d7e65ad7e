"""Reading real PDFs: pages/s for text pages and for OCR pages (cold and warm OCR cache), peak RSS.

``python -m bench.pdf_read [--pdfs ../shared/pdfs]`` reads every real municipal PDF (not the
``fixture_*`` files) with ``corpus.readers.read_document`` and chunks it, each file in a fresh child
process (so ``ru_maxrss`` is that file's peak; the largest tesseract process is reported apart), twice: with an empty OCR cache and again with the
cache the first pass left. Writes ``bench/results/pdf_read.json``; docs/benchmarks.md quotes it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ROOT, log, machine, machine_line, write_result

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from corpus.readers import ocr, read_document
from corpus.chunker import chunk_document
from corpus.records import DocumentMeta
ocr.CACHE_DIR = Path(sys.argv[2])
path = Path(sys.argv[1])
t0 = time.perf_counter()
raw = read_document(path, path.name)
t1 = time.perf_counter()
chunks = chunk_document(raw, DocumentMeta(path=path.name, municipality="x"))
t2 = time.perf_counter()
print(json.dumps({"file": path.name, "pages": len(raw.pages), "ocr_pages": sum(1 for p in raw.pages if p.ocr),
                  "read_s": t1 - t0, "chunk_s": t2 - t1, "chunks": len(chunks),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "tesseract_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def run(pdfs: Path, quick: bool = False) -> dict[str, Any]:
    """Read and chunk every real PDF twice (cold, then warm OCR cache); per-file rows and totals.
    ``quick`` reads only the files under 1 MB."""
    files = sorted(p for p in pdfs.glob("*.pdf") if not p.name.startswith("fixture_")
                   and (not quick or p.stat().st_size < 1_000_000))
    rows: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory(prefix="seisaku-ocr-bench-") as cache:
        for phase in ("cold", "warm"):
            for f in files:
                out = subprocess.run([sys.executable, "-c", CHILD, str(f), cache], cwd=ROOT,
                                     capture_output=True, text=True, check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                rows[phase].append(row)
                log(phase, row)

    def totals(rs: list[dict[str, Any]], ocr: bool) -> dict[str, float]:
        sel = [r for r in rs if (r["ocr_pages"] > 0) == ocr]
        pages = sum(r["ocr_pages"] if ocr else r["pages"] for r in sel)
        secs = sum(r["read_s"] for r in sel)
        return {"files": len(sel), "pages": pages, "read_s": round(secs, 2),
                "pages_per_s": round(pages / secs, 2) if secs else 0.0,
                "peak_rss_mb": round(max((r["peak_rss_mb"] for r in sel), default=0.0), 1),
                "tesseract_peak_rss_mb": round(max((r["tesseract_peak_rss_mb"] for r in sel), default=0.0), 1)}

    return {
        "machine": machine(),
        "rows": rows,
        "text_pdfs": totals(rows["cold"], False),
        "ocr_pdfs_cold": totals(rows["cold"], True),
        "ocr_pdfs_warm": totals(rows["warm"], True),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m bench.pdf_read [--pdfs DIR]``."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pdfs", default=str(ROOT.parent / "shared" / "pdfs"))
    ap.add_argument("--quick", action="store_true", help="only the PDFs under 1 MB")
    args = ap.parse_args(argv)
    if not Path(args.pdfs).is_dir():
        log(f"skipped: {args.pdfs} is not present")
        return 0
    res = run(Path(args.pdfs), quick=args.quick)
    path = write_result("pdf_read_quick" if args.quick else "pdf_read", res)
    print(machine_line(res["machine"]))
    for k in ("text_pdfs", "ocr_pdfs_cold", "ocr_pdfs_warm"):
        print(k, res[k])
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
