"""Assemble the evaluation corpus of ``questions_v2.jsonl`` in a directory.

    python -m search.eval_data.make_corpus OUTDIR [--shared DIR] [--copy]

OUTDIR gets ``manifest.csv`` (a copy of ``corpus_v2.csv``) and every file it lists, as a symlink
(or, with ``--copy``, a copy) of the file in the shared data directory: the seed texts from
``<shared>/seeds``, the PDFs from ``<shared>/pdfs``. The shared directory defaults to ``shared``
beside the repository root (``../shared`` seen from the repo). Then::

    seisaku build --corpus OUTDIR --index IDX
    seisaku eval search/eval_data/questions_v2.jsonl --index IDX
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The manifest of the evaluation corpus (same columns as corpus/manifest.csv).
MANIFEST = HERE / "corpus_v2.csv"
#: The questions asked over it.
QUESTIONS = HERE / "questions_v2.jsonl"
#: ``../shared`` seen from the repository root.
DEFAULT_SHARED = HERE.parent.parent.parent / "shared"


def manifest_paths(manifest: Path = MANIFEST) -> list[str]:
    """The document paths listed in ``manifest``, in order."""
    with manifest.open(encoding="utf-8", newline="") as fh:
        return [row["path"] for row in csv.DictReader(fh)]


def source_file(shared: Path, rel: str) -> Path:
    """Where the shared data directory keeps document ``rel``: seed texts under ``seeds/``,
    everything else under ``pdfs/``."""
    return shared / ("seeds" if rel.endswith(".txt") else "pdfs") / rel


def missing_sources(shared: Path, manifest: Path = MANIFEST) -> list[Path]:
    """The source files of ``manifest`` that are absent from ``shared`` (empty when all exist)."""
    return [p for p in (source_file(shared, r) for r in manifest_paths(manifest)) if not p.is_file()]


def make_corpus(outdir: Path, shared: Path = DEFAULT_SHARED, *, copy: bool = False) -> list[Path]:
    """Fill ``outdir`` with ``manifest.csv`` and the listed documents (symlinks unless ``copy``).

    Existing links or files of the same names are replaced. Returns the document paths written.
    Raises ``FileNotFoundError`` naming the shared directory when a source file is missing.
    """
    shared = Path(shared).resolve()
    missing = missing_sources(shared)
    if missing:
        names = ", ".join(str(p) for p in missing[:3]) + (" …" if len(missing) > 3 else "")
        raise FileNotFoundError(
            f"共有データ {shared} に評価用の文書がありません / shared data missing under {shared}: {names}"
        )
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for rel in manifest_paths():
        src, dst = source_file(shared, rel), outdir / rel
        if dst.is_symlink() or dst.exists():
            dst.unlink()
        if copy:
            shutil.copy2(src, dst)
        else:
            dst.symlink_to(src)
        written.append(dst)
    shutil.copyfile(MANIFEST, outdir / "manifest.csv")
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m search.eval_data.make_corpus OUTDIR [--shared DIR] [--copy]``."""
    ap = argparse.ArgumentParser(prog="python -m search.eval_data.make_corpus", description=__doc__.splitlines()[0])
    ap.add_argument("outdir", type=Path, help="corpus directory to fill")
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help=f"shared data directory (default {DEFAULT_SHARED})")
    ap.add_argument("--copy", action="store_true", help="copy the files instead of symlinking them")
    args = ap.parse_args(argv)
    try:
        written = make_corpus(args.outdir, args.shared, copy=args.copy)
    except FileNotFoundError as e:
        print(f"エラー: {e}", file=sys.stderr)
        return 2
    print(f"{len(written)} 文書と manifest.csv を {args.outdir} に用意しました / wrote {len(written)} documents + manifest.csv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
