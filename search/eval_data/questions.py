"""The second question set (``questions_v2.jsonl``): reading, the tune/check split, label checks.

A line is one question in the format of ``../shared/eval/README.md`` plus ``split``::

    {"id": "v001", "kind": "which|compare|wording|fact", "query": "...", "split": "tune|check",
     "relevant": [{"doc": "<path in corpus_v2.csv>", "must_contain": "<exact phrase>",
                   "also": [{"doc": "...", "must_contain": "..."}]}]}

``also`` (optional) lists other passages of the same municipality (or compared side) that answer
the entry as well (README.md, "Alternative passages"); ``seisaku eval --strict-labels`` ignores it.

The split is fixed by :func:`assign_splits` before anything is tuned (README.md of this folder):
within each kind the questions are ordered answerable first, then by id, and alternate
tune, check, tune, … so that both halves hold every kind (and the no-answer questions) in equal
shares, within one question.

:func:`phrase_problems` checks every label the way :mod:`search.evaluate` scores it: the phrase,
NFKC-normalised and stripped of whitespace, must occur within the first 1,200 normalised
characters of at least one chunk of its document, chunked by :mod:`corpus.loader` exactly as
``seisaku build`` chunks it (no embedding model is needed).

    python -m search.eval_data.questions assign FILE   # rewrite the split fields of FILE
    python -m search.eval_data.questions check CORPUS_DIR [FILE]   # list labels not in a chunk
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.evaluate import READ_LIMIT, normalize, read_jsonl

KINDS = ("which", "compare", "wording", "fact")
SPLITS = ("tune", "check")
HERE = Path(__file__).resolve().parent
QUESTIONS = HERE / "questions_v2.jsonl"


def read_rows(path: str | Path = QUESTIONS) -> list[dict[str, Any]]:
    """The questions of a JSONL file as dicts, in file order (blank and ``#`` lines skipped)."""
    return [row for _, row in read_jsonl(path)]


def write_rows(rows: Iterable[dict[str, Any]], path: str | Path = QUESTIONS) -> None:
    """Write questions one JSON object a line, keys in the order id, kind, split, query, relevant."""
    order = ("id", "kind", "split", "query", "relevant")
    lines = []
    for row in rows:
        ordered = {k: row[k] for k in order if k in row}
        ordered.update({k: v for k, v in row.items() if k not in ordered})
        lines.append(json.dumps(ordered, ensure_ascii=False))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def assign_splits(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """``id -> "tune" | "check"``: within each kind, answerable questions before unanswerable
    ones, each group by id, alternating tune, check, tune, … (the rule of README.md)."""
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_kind[row["kind"]].append(row)
    out: dict[str, str] = {}
    for kind_rows in by_kind.values():
        ordered = sorted(kind_rows, key=lambda r: (not r.get("relevant"), r["id"]))
        for i, row in enumerate(ordered):
            out[row["id"]] = SPLITS[i % 2]
    return out


@dataclass
class DocChunks:
    """The chunks of one document as the checker needs them: each chunk's municipality and the
    first :data:`~search.evaluate.READ_LIMIT` characters of its normalised text."""

    doc: str
    heads: list[tuple[str, str]] = field(default_factory=list)
    #: The loader's messages about the document (e.g. that a page needs OCR).
    messages: list[str] = field(default_factory=list)

    def municipalities_with(self, phrase: str) -> list[str]:
        """The municipalities of the chunks whose readable head holds ``phrase`` (normalised)."""
        p = normalize(phrase)
        return [muni for muni, head in self.heads if p and p in head]


def chunk_documents(corpus_dir: str | Path, docs: Iterable[str]) -> dict[str, DocChunks]:
    """Read and chunk only the documents ``docs`` of the corpus at ``corpus_dir`` (in process,
    with the default chunk budget and limits, as ``seisaku build`` does)."""
    from corpus.limits import DocumentLimits
    from corpus.document import load_document
    from corpus.manifest import read_manifest
    from index.config import Settings

    wanted = set(docs)
    manifest = read_manifest(Path(corpus_dir), check_unlisted=False)
    out: dict[str, DocChunks] = {}
    for meta in manifest.entries:
        if meta.path not in wanted:
            continue
        loaded = load_document(Path(corpus_dir), meta, max_tokens=Settings().max_item_tokens, limits=DocumentLimits())
        out[meta.path] = DocChunks(
            meta.path,
            [(c.municipality, normalize(c.text)[:READ_LIMIT]) for c in loaded.chunks],
            [m.message for m in loaded.messages],
        )
    return out


@dataclass(frozen=True)
class LabelProblem:
    """A relevant entry whose phrase is in no chunk head of its document."""

    question: str
    doc: str
    phrase: str
    #: What is wrong; empty for the usual case (the phrase is in no chunk head).
    reason: str = ""

    def __str__(self) -> str:
        why = self.reason or f"is in no chunk's first {READ_LIMIT} characters"
        return f"{self.question}: {self.doc}: 「{self.phrase}」 {why}"


def phrase_problems(rows: Sequence[dict[str, Any]], chunks: dict[str, DocChunks]) -> list[LabelProblem]:
    """Every relevant entry of ``rows`` whose phrase is not within the first 1,200 normalised
    characters of some chunk of its document (a document missing from ``chunks`` fails all), and
    every ``also`` passage that is not, or whose chunk belongs to another municipality than the
    entry's own phrase."""
    problems = []
    for row in rows:
        for rel in row.get("relevant") or []:
            doc = chunks.get(rel["doc"])
            own = doc.municipalities_with(rel["must_contain"]) if doc else []
            if not own:
                problems.append(LabelProblem(row["id"], rel["doc"], rel["must_contain"]))
            for alt in rel.get("also") or []:
                alt_doc = chunks.get(alt["doc"])
                found = alt_doc.municipalities_with(alt["must_contain"]) if alt_doc else []
                if not found:
                    problems.append(LabelProblem(row["id"], alt["doc"], alt["must_contain"]))
                elif own and own[0] not in found:
                    problems.append(LabelProblem(row["id"], alt["doc"], alt["must_contain"],
                                                 f"is in a chunk of {found[0]}, not of {own[0]}"))
    return problems


def entry_municipalities(row: dict[str, Any], chunks: dict[str, DocChunks]) -> list[str]:
    """The municipality each relevant entry of ``row`` stands for: that of the first chunk whose
    head holds the phrase (so the three cases of the 広域連携 collection count apart)."""
    out = []
    for rel in row.get("relevant") or []:
        doc = chunks.get(rel["doc"])
        found = doc.municipalities_with(rel["must_contain"]) if doc else []
        out.append(found[0] if found else "")
    return out


def label_docs(row: dict[str, Any]) -> set[str]:
    """The documents the labels of ``row`` name (entries and their ``also`` passages)."""
    return {a["doc"] for r in row.get("relevant") or [] for a in [r, *(r.get("also") or [])]}


def main(argv: Sequence[str] | None = None) -> int:
    """``assign FILE`` rewrites the split fields; ``check CORPUS_DIR [FILE]`` lists label problems."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) >= 2 and args[0] == "assign":
        rows = read_rows(args[1])
        splits = assign_splits(rows)
        for row in rows:
            row["split"] = splits[row["id"]]
        write_rows(rows, args[1])
        print(f"{len(rows)} questions: " + ", ".join(
            f"{s} {sum(1 for r in rows if r['split'] == s)}" for s in SPLITS))
        return 0
    if len(args) >= 2 and args[0] == "check":
        rows = read_rows(args[2] if len(args) > 2 else QUESTIONS)
        chunks = chunk_documents(args[1], {d for row in rows for d in label_docs(row)})
        problems = phrase_problems(rows, chunks)
        for p in problems:
            print(p)
        print(f"{len(problems)} problems in {len(rows)} questions", file=sys.stderr)
        return 1 if problems else 0
    print(__doc__.strip().splitlines()[-2].strip(), file=sys.stderr)
    print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
