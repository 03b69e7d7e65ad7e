"""Write a synthetic N-chunk index (1M, 5M) in the product's format, streaming, for the serving
benchmark (bench/serve_scale.py, docs/serving.md).

    nice -n 10 python -m bench.scale_store --n 5000000 --out /work/data/scale5m/index

What a chunk is (realistic enough that recall and latency mean something, cheap enough to make
5 million on a shared 2-core machine in about an hour):

- **Material**: the bundled corpus built by the product (``index.build.build_index``), its 185
  chunks cut into sentences; each sentence tokenised by the product's tokeniser (BM25 terms,
  lemmas) and embedded by the product's embedder (passage prompt) once, cached under the bench
  cache.
- **Documents and municipalities**: 1,741 municipalities (the 8 bundled ones plus generated
  two-kanji names with 市/町/村 in the national proportions) in 47 prefectures; 287 chunks per
  document (5M / 17,422 documents ≈ ten per municipality); document ``d`` follows bundled document
  ``d mod 6`` (its headings, kind, pages) with its own municipality (``611·d mod 1741``) and year.
- **Chunk text**: the sentences of the corresponding bundled chunk, each kept with probability
  0.6 (at least one), plus with probability 0.3 one sentence of another chunk of the same bundled
  document; ``embed_text`` = the bundled chunk's heading lines with the municipality replaced,
  then the text. BM25 terms = the municipality's and the headings' terms + the sentences' terms;
  lemmas = the union of the sentences' lemmas (what the product stores, per sentence).
- **Vectors** (clustered, not uniform noise): unit(0.45·v(chunk) + 0.45·unit(Σ v(sentence)) +
  0.15·u(municipality) + noise of norm 0.08), with v the real embeddings and u a fixed random unit
  vector per municipality: clusters per topic, sub-clusters per sentence subset and municipality.
  Stored as float16 (``vectors.f16.npy``, as the product stores them for the compressed kinds).
- **Distinct rows and copies**: the first ``--distinct`` rows (250k, whole cycles of the bundled
  documents) are generated in Python by ``--shards`` processes over document ranges; the rest
  are copies made in SQLite's C code: copy ``c`` of document ``d`` is document ``d + c·D`` with
  that document's municipality, prefecture, year, title and ids, the source rows' text and BM25
  terms, and a vector drawn again (same sentences, the new municipality's direction, new noise).
  Python per row is what a shared 2-core machine cannot afford 5 million times (≈ 400 rows/s per
  process under the load of the other sessions).

Files are the product's (index/store_format.py, format 2): SQLite rows with the filter groups, the
FAISS kind the ``auto`` rule picks (or ``--kind``) trained on the product's sample and added in
blocks from the float16 file, and the bm25s arrays written directly as CSC (two passes over blocks
of per-chunk term ids kept in a temporary memmap): the same scores as ``bm25s.BM25().index``
(checked on 3,000 chunks before every run, max difference ≈ 5e-7), without its in-memory matrix of
every posting, which at 5M would not fit beside anything else.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.bm25_csc import B, K1, bm25_csc, check_bm25_csc
from bench.common import ROOT, log, machine_line, peak_rss_mb, write_result
from bench.scale_material import (
    N_MUNICIPALITIES, SEED, _header, bundled_index, material, municipality_names,
)

CHUNKS_PER_DOC = 287
#: Rows generated in Python (rounded down to whole cycles of the bundled documents ×
#: CHUNKS_PER_DOC); the rest of an N-chunk store are copies with other municipalities (:func:`_copies`).
DISTINCT = 250_000
#: Room for distinct terms per chunk in the temporary (sparse) term-count files.
MAX_TERMS = 400
PREFECTURES = (
    "北海道 青森県 岩手県 宮城県 秋田県 山形県 福島県 茨城県 栃木県 群馬県 埼玉県 千葉県 東京都 神奈川県 新潟県 富山県 "
    "石川県 福井県 山梨県 長野県 岐阜県 静岡県 愛知県 三重県 滋賀県 京都府 大阪府 兵庫県 奈良県 和歌山県 鳥取県 島根県 "
    "岡山県 広島県 山口県 徳島県 香川県 愛媛県 高知県 福岡県 佐賀県 長崎県 熊本県 大分県 宮崎県 鹿児島県 沖縄県"
).split()
YEARS = ("令和元年度", "令和2年度", "令和3年度", "令和4年度", "令和5年度", "令和6年度")


# ----------------------------------------------------------------------------- chunks
@dataclass
class Row:
    """One synthetic chunk: its SQLite row values, BM25 term ids, picked sentences (flat
    indices), bundled chunk and municipality index."""

    values: list[Any]
    term_ids: list[int]
    sentences: list[int]
    base: int
    muni: int


def synth(mat: dict[str, Any], n: int, vocab: dict[str, int] | None = None,
          docs: tuple[int, int] | None = None) -> Iterator[Row]:
    """The rows of chunk ids 0..n-1, or of documents ``docs = (first, end)`` only (a shard; each
    document draws from its own seeded generator, so shards equal one sequential run). ``vocab``
    is filled in a fixed order before the first row (every term any chunk can have), so shards
    agree on term ids. Column values are built from per-bundled-chunk templates: no Chunk object
    per row (5M of them is the difference between minutes and hours here)."""
    from index.store_format import _EXTRA_CHUNK_COLUMNS, _chunk_columns, _is_json_field, sha256_text
    from index.tokenizer import Tokenizer

    vocab = {} if vocab is None else vocab

    def enc(tokens: list[str]) -> tuple[str, list[int]]:
        return json.dumps(tokens, ensure_ascii=False)[1:-1], [vocab.setdefault(t, len(vocab)) for t in tokens]

    rng = np.random.default_rng(SEED)
    chunks = mat["chunks"]
    base_docs = [d for d in mat["base"].documents.values() if d.n_chunks]
    by_doc = {d.doc_id: [i for i, c in enumerate(chunks) if c.doc_id == d.doc_id] for d in base_docs}
    munis = municipality_names([c.municipality for c in chunks], N_MUNICIPALITIES, rng)
    tok = Tokenizer()
    names = [c for c, _ in _chunk_columns()] + list(_EXTRA_CHUNK_COLUMNS)
    col = {c: k + 1 for k, c in enumerate(names)}  # value index (0 = id)
    templates, headers, htoks = [], [], []
    for b0, bc in enumerate(chunks):
        vals: list[Any] = [0]
        for c in names[: len(names) - len(_EXTRA_CHUNK_COLUMNS)]:
            v = getattr(bc, c)
            vals.append(json.dumps(list(v) if isinstance(v, tuple) else v, ensure_ascii=False)
                        if _is_json_field(c) else v)
        vals += [None] * len(_EXTRA_CHUNK_COLUMNS)
        vals[col["url"]] = ""
        templates.append(vals)
        headers.append(_header(bc))
        own = set(tok.tokenize(bc.municipality)) if bc.municipality else set()
        htoks.append(enc([t for t in mat["header_tokens"][b0] if t not in own]))
    stext, sjson, sids, slem = [], [], [], []
    for ss in mat["sentences"]:
        for x in ss:
            j, ids = enc(x.tokens)
            stext.append(x.text)
            sjson.append(j)
            sids.append(ids)
            slem.append(frozenset(x.lemmas))
    starts = mat["sent_start"]
    keys = mat["keys"]
    muni_enc = [enc(tok.tokenize(m)) for m in munis]
    d, d_end = docs or (0, math.ceil(n / CHUNKS_PER_DOC))
    i = d * CHUNKS_PER_DOC
    while i < n and d < d_end:
        rng = np.random.default_rng([SEED, d])
        rnd, r_at = np.zeros(0), 0
        bd = base_docs[d % len(base_docs)]
        m = (d * 611) % len(munis)
        muni, pref, year = munis[m], PREFECTURES[(7 * m) % len(PREFECTURES)], YEARS[d % len(YEARS)]
        doc_id = f"syn/{m:04d}/{d:06d}_{bd.doc_id}"
        title = f"{muni} {bd.title}"
        mj, mids = muni_enc[m]
        members = by_doc[bd.doc_id]
        for j in range(min(CHUNKS_PER_DOC, n - i)):
            b = members[j % len(members)]
            bc = chunks[b]
            k0, k1 = int(starts[b]), int(starts[b + 1])
            ns = k1 - k0
            if r_at + ns + 3 > len(rnd):
                rnd, r_at = rng.random(1 << 16), 0
            u = rnd[r_at : r_at + ns + 3]
            r_at += ns + 3
            picked = [k0 + k for k in range(ns) if u[k] < 0.6] or [k0 + int(u[ns] * ns)]
            if u[ns + 1] < 0.3 and len(members) > 1:
                o = members[int(u[ns + 2] * len(members))]
                picked.append(int(starts[o]) + int(u[ns] * (int(starts[o + 1]) - int(starts[o]))))
            text = "".join(stext[g] for g in picked)
            hj, hids = htoks[b]
            term_ids = mids + hids
            frags = [mj, hj]
            for g in picked:
                term_ids += sids[g]
                frags.append(sjson[g])
            header = headers[b].replace(bc.municipality, muni) if bc.municipality else headers[b]
            v = templates[b].copy()
            v[0] = i
            v[col["chunk_id"]] = f"{doc_id}#{j}"
            v[col["doc_id"]] = doc_id
            v[col["municipality"]] = muni
            v[col["prefecture"]] = pref
            v[col["title"]] = title
            v[col["text"]] = text
            v[col["embed_text"]] = header + text
            v[col["year"]] = year
            v[col["tokens"]] = "[" + ",".join(f for f in frags if f) + "]"
            v[col["embed_key"]] = f"{keys[b]}~{i}"
            v[col["bm25_key"]] = sha256_text(header + text)
            v[col["lemmas"]] = json.dumps(sorted(frozenset().union(*(slem[g] for g in picked))), ensure_ascii=False)
            yield Row(v, term_ids, picked, b, m)
            i += 1
        d += 1


def block_vectors(mat: dict[str, Any], rows: list[Row], rng: np.random.Generator) -> np.ndarray:
    """Unit vectors of a block of rows: unit(0.45·v(chunk) + 0.45·unit(Σ v(sentence)) +
    0.15·u(municipality) + noise of norm 0.08) (see the module docstring)."""
    indptr = np.cumsum([0] + [len(r.sentences) for r in rows])
    idx = np.fromiter((g for r in rows for g in r.sentences), dtype=np.int64, count=int(indptr[-1]))
    b = np.fromiter((r.base for r in rows), dtype=np.int64, count=len(rows))
    m = np.fromiter((r.muni for r in rows), dtype=np.int64, count=len(rows))
    return vectors_for(mat, b, idx, indptr, m, rng)


def vectors_for(mat: dict[str, Any], b: np.ndarray, picks: np.ndarray, pptr: np.ndarray, m: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """:func:`block_vectors` from arrays: bundled chunk ``b``, picked sentences ``picks[pptr[i]:pptr[i+1]]``
    and municipality ``m`` of each row."""
    from scipy import sparse

    svec, cvec, mvec = mat["svec"], mat["cvec"], mat["mvec"]
    S = sparse.csr_matrix((np.ones(len(picks), np.float32), picks, pptr), shape=(len(b), len(svec)))
    sv = np.asarray(S @ svec, dtype=np.float32)
    sv /= np.maximum(np.linalg.norm(sv, axis=1, keepdims=True), 1e-6)
    v = 0.45 * cvec[b] + 0.45 * sv + 0.15 * mvec[m]
    v += rng.standard_normal(v.shape).astype(np.float32) * (0.08 / math.sqrt(v.shape[1]))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def documents_for(mat: dict[str, Any], n: int) -> list[Any]:
    """The synthetic documents of an ``n``-chunk store (same walk as :func:`synth`)."""
    rng = np.random.default_rng(SEED)
    chunks = mat["chunks"]
    base_docs = [d for d in mat["base"].documents.values() if d.n_chunks]
    munis = municipality_names([c.municipality for c in chunks], N_MUNICIPALITIES, rng)
    out = []
    for d in range(math.ceil(n / CHUNKS_PER_DOC)):
        bd = base_docs[d % len(base_docs)]
        m = (d * 611) % len(munis)
        k = min(CHUNKS_PER_DOC, n - d * CHUNKS_PER_DOC)
        out.append(replace(bd, doc_id=f"syn/{m:04d}/{d:06d}_{bd.doc_id}", municipality=munis[m],
                           prefecture=PREFECTURES[(7 * m) % len(PREFECTURES)], title=f"{munis[m]} {bd.title}",
                           year=YEARS[d % len(YEARS)], n_chunks=k, messages=[]))
    return out


# ----------------------------------------------------------------------------- writing
def _shard_path(out: Path, k: int, suffix: str) -> Path:
    return out.parent / f"{out.name}.shard{k}.{suffix}"


def _vocab(mat: dict[str, Any]) -> dict[str, int]:
    """The term ids every shard uses (filled by :func:`synth` before its first row)."""
    vocab: dict[str, int] = {}
    next(synth(mat, 1, vocab), None)
    return vocab


def write_shard(n: int, out: Path, k: int, d0: int, d1: int) -> None:
    """Shard ``k``: the rows of documents ``d0..d1-1`` into its own SQLite file, their vectors into
    the index's vectors file (already created at full size), their term ids, token-count
    pointers and filter-group runs into files beside the index."""
    from index.store_format import _EXTRA_CHUNK_COLUMNS, GROUP_COLUMNS, VECTORS_FILE, _chunk_columns, _create_schema

    mat = material(bundled_index())
    vocab: dict[str, int] = {}
    vec_path = out / VECTORS_FILE
    if not vec_path.is_file():
        vec_path = out.parent / f"{out.name}.vectors.f16.npy"
    vecs = np.load(vec_path, mmap_mode="r+")
    first, end = d0 * CHUNKS_PER_DOC, min(n, d1 * CHUNKS_PER_DOC)
    terms = np.lib.format.open_memmap(_shard_path(out, k, "terms.npy"), mode="w+", dtype=np.int32,
                                      shape=((end - first) * MAX_TERMS,))
    ptr = np.zeros(end - first + 1, dtype=np.int64)
    con = sqlite3.connect(_shard_path(out, k, "sqlite"))
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    _create_schema(con)
    con.execute("DROP INDEX chunks_doc")  # the merged file has it; inserts here stay cheap
    names = [c for c, _ in _chunk_columns()]
    sql = (f"INSERT INTO chunks (id, {', '.join(names)}, {', '.join(_EXTRA_CHUNK_COLUMNS)}) "
           f"VALUES ({','.join('?' * (len(names) + 1 + len(_EXTRA_CHUNK_COLUMNS)))})")
    gcols = [names.index(c) + 1 for c in GROUP_COLUMNS]
    runs: list[tuple[int, list[str]]] = []
    block: list[Row] = []
    state = {"nnz": 0, "done": first}
    picks: list[int] = []
    pcount: list[int] = []
    bases: list[int] = []
    t0 = time.perf_counter()

    def flush() -> None:
        a = state["done"]
        rng = np.random.default_rng([SEED + 2, a])
        vecs[a : a + len(block)] = block_vectors(mat, block, rng).astype(np.float16)
        lens = np.fromiter((len(r.term_ids) for r in block), dtype=np.int64, count=len(block))
        flat = np.fromiter((t for r in block for t in r.term_ids), dtype=np.int32, count=int(lens.sum()))
        z = state["nnz"]
        if z + len(flat) > len(terms):
            raise SystemExit(f"more than {MAX_TERMS} terms per chunk on average")
        terms[z : z + len(flat)] = flat
        ptr[a - first + 1 : a - first + len(block) + 1] = z + np.cumsum(lens)
        state["nnz"] = z + len(flat)
        state["done"] = a + len(block)
        for r in block:
            picks.extend(r.sentences)
            pcount.append(len(r.sentences))
            bases.append(r.base)
        block.clear()
        log(f"[scale] shard {k}: {state['done'] - first:,} of {end - first:,} chunks, "
            f"{time.perf_counter() - t0:.0f} s")

    def rows() -> Iterator[list[Any]]:
        for r in synth(mat, n, vocab, docs=(d0, d1)):
            key = [r.values[c] for c in gcols]
            if not runs or runs[-1][1] != key:
                runs.append((int(r.values[0]), key))
            block.append(r)
            if len(block) == 50_000:
                flush()
            yield r.values
        if block:
            flush()

    con.executemany(sql, rows())
    con.commit()
    con.close()
    vecs.flush()
    terms.flush()
    # the terms file's first ptr[-1] entries are written; the rest of the (sparse) file is unused
    np.save(_shard_path(out, k, "ptr.npy"), ptr)
    np.save(_shard_path(out, k, "picks.npy"), np.array(picks, dtype=np.int32))
    np.save(_shard_path(out, k, "pcount.npy"), np.array(pcount, dtype=np.int32))
    np.save(_shard_path(out, k, "base.npy"), np.array(bases, dtype=np.int32))
    _shard_path(out, k, "runs.json").write_text(json.dumps(runs, ensure_ascii=False), encoding="utf-8")


def _copies(con: sqlite3.Connection, mat: dict[str, Any], docs: list[Any], groups: Any, n: int, n_src: int,
            picks: np.ndarray, pcount: np.ndarray, bases: np.ndarray, vec_path: Path) -> int:
    """Fill ids ``n_src..n-1`` with copies of the ``n_src`` distinct rows: copy ``c`` of document
    ``d`` is document ``d + c·D`` (D = the distinct documents; a multiple of the bundled ones, so
    the bundled document is the same) with that document's municipality, prefecture, year,
    title and ids (SQL, in SQLite's C code), the source rows' text and BM25 terms, and a vector
    drawn again: the same sentences, the new municipality's direction and new noise. Returns the
    number of copies including the distinct rows themselves."""
    copies = math.ceil(n / n_src)
    n_docs_src = math.ceil(n_src / CHUNKS_PER_DOC)
    cols = [r[1] for r in con.execute("PRAGMA table_info(chunks)")]
    expr = {"id": "c.id + :off", "chunk_id": "m.dst || substr(c.chunk_id, length(c.doc_id) + 1)", "doc_id": "m.dst",
            "municipality": "m.muni", "prefecture": "m.pref", "title": "m.title", "year": "m.year",
            "embed_text": "replace(c.embed_text, c.municipality, m.muni)", "embed_key": "c.embed_key || '~' || :copy"}
    select = ", ".join(expr.get(c, f"c.{c}") for c in cols)
    con.execute("CREATE TEMP TABLE docmap (src TEXT PRIMARY KEY, dst TEXT, muni TEXT, pref TEXT, title TEXT, year TEXT)")
    src_runs = list(zip(groups.runs, [groups.groups[g] for _f, g in groups.runs]))
    vecs = np.load(vec_path, mmap_mode="r+")
    pptr = np.zeros(len(pcount) + 1, dtype=np.int64)
    np.cumsum(pcount, out=pptr[1:])
    src_doc = np.arange(n_src) // CHUNKS_PER_DOC
    for c in range(1, copies):
        off = c * n_src
        rows_c = min(n_src, n - off)
        con.execute("DELETE FROM docmap")
        dm = {docs[d].doc_id: docs[d + c * n_docs_src] for d in range(n_docs_src) if d + c * n_docs_src < len(docs)}
        con.executemany("INSERT INTO docmap VALUES (?,?,?,?,?,?)",
                        [(s, t.doc_id, t.municipality, t.prefecture, t.title, t.year) for s, t in dm.items()])
        con.execute(f"INSERT INTO chunks SELECT {select} FROM chunks c JOIN docmap m ON m.src = c.doc_id "
                    "WHERE c.id < :rows ORDER BY c.id", {"off": off, "copy": c, "rows": rows_c})
        con.commit()
        for (first, _g), key in src_runs:
            if first < rows_c:
                t = dm[key.doc_id]
                groups.add_run(first + off, (t.municipality, t.prefecture, key.kind, t.year, t.doc_id))
        for a in range(0, rows_c, 50_000):
            e = min(rows_c, a + 50_000)
            m = ((src_doc[a:e] + c * n_docs_src) * 611) % N_MUNICIPALITIES
            v = vectors_for(mat, bases[a:e].astype(np.int64), picks[pptr[a] : pptr[e]].astype(np.int64),
                            pptr[a : e + 1] - pptr[a], m, np.random.default_rng([SEED + 3, off + a]))
            vecs[off + a : off + e] = v.astype(np.float16)
        log(f"[scale] copy {c}: ids {off:,}..{off + rows_c - 1:,}")
    vecs.flush()
    return copies


def write(n: int, out: Path, kind: str | None, extra_kinds: list[str], shards: int = 1,
          distinct: int = DISTINCT) -> dict[str, Any]:
    """Write the synthetic ``n``-chunk index into ``out`` (replaced); the report dict."""
    import faiss

    from index.config import load_settings
    from index.faiss_index import build_ivf, choose_kind, ivf_nlist, needs_rescoring
    from index.store_format import (
        BM25_DIR, DB_FILE, FAISS_FILE, FORMAT_VERSION, INDEX_JSON, VECTORS_FILE, GroupRuns, _create_schema,
    )

    t_all = time.perf_counter()
    rep: dict[str, Any] = {"n_chunks": n}
    mat = material(bundled_index())
    rep["material_s"] = round(time.perf_counter() - t_all, 1)
    err = check_bm25_csc([json.loads(r.values[-4]) for r in synth(mat, 3000)], out.parent / f"{out.name}.bm25check")
    shutil.rmtree(out.parent / f"{out.name}.bm25check", ignore_errors=True)
    rep["bm25_check_max_abs_diff"] = err
    log(f"[scale] BM25 CSC writer vs bm25s.index on 3000 chunks: max |diff| {err:.2e}")
    if err > 1e-4:
        raise SystemExit("the BM25 CSC writer does not match bm25s")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    s = load_settings()
    kind = kind or choose_kind(s.faiss_index, n, s.ann_threshold, s.pq_threshold)
    dim = mat["cvec"].shape[1]
    vec_path = out / VECTORS_FILE if needs_rescoring(kind) else out.parent / f"{out.name}.vectors.f16.npy"
    vecs = np.lib.format.open_memmap(vec_path, mode="w+", dtype=np.float16, shape=(n, dim))
    rep["shards"] = shards
    del vecs  # created at full size; the shards write their ranges

    # 1. rows, vectors and term ids, in shard processes over document ranges (the machine's
    #    cores are shared: Python per row is the cost), then merged into one SQLite file
    t0 = time.perf_counter()
    per = CHUNKS_PER_DOC * len([d for d in mat["base"].documents.values() if d.n_chunks])
    distinct = max(per, distinct // per * per)  # whole cycles of the bundled documents
    n_src = min(n, distinct)
    n_docs = math.ceil(n_src / CHUNKS_PER_DOC)
    rep["distinct_chunks"] = n_src
    bounds = [round(k * n_docs / shards) for k in range(shards + 1)]
    procs = [subprocess.Popen([sys.executable, "-m", "bench.scale_store", "--n", str(n_src), "--out", str(out),
                               "--shard", str(k), str(bounds[k]), str(bounds[k + 1])], cwd=ROOT)
             for k in range(shards)]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("a shard failed")
    rep["shard_rows_s"] = round(time.perf_counter() - t0, 1)
    log(f"[scale] {shards} shards: {rep['shard_rows_s']} s")
    t0 = time.perf_counter()
    con = sqlite3.connect(out / DB_FILE)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-1000000")  # 1 GB of pages: the unique chunk_id index stays cached
    _create_schema(con)
    groups = GroupRuns()
    ptrs, term_files = [np.zeros(1, np.int64)], []
    picks, pcount, bases = [], [], []
    for k in range(shards):
        part = _shard_path(out, k, "sqlite")
        con.execute("ATTACH DATABASE ? AS s", (str(part),))
        con.execute("INSERT INTO chunks SELECT * FROM s.chunks ORDER BY id")
        con.commit()
        con.execute("DETACH DATABASE s")
        part.unlink()
        for first, key in json.loads(_shard_path(out, k, "runs.json").read_text(encoding="utf-8")):
            groups.add_run(int(first), key)
        _shard_path(out, k, "runs.json").unlink()
        shard_ptr = np.load(_shard_path(out, k, "ptr.npy"))
        term_files.append((_shard_path(out, k, "terms.npy"), int(shard_ptr[-1])))
        ptrs.append(shard_ptr[1:] + ptrs[-1][-1])
        _shard_path(out, k, "ptr.npy").unlink()
        for lst, name in ((picks, "picks"), (pcount, "pcount"), (bases, "base")):
            lst.append(np.load(_shard_path(out, k, f"{name}.npy")))
            _shard_path(out, k, f"{name}.npy").unlink()
    docs = documents_for(mat, n)
    src_ptr = np.concatenate(ptrs)
    copies = _copies(con, mat, docs, groups, n, n_src, np.concatenate(picks), np.concatenate(pcount),
                     np.concatenate(bases), vec_path)
    rep["copies"] = copies
    groups.write(con)
    con.executemany("INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [(d.doc_id, d.municipality, d.prefecture, d.title, d.year, d.kind, d.url, d.sha256, d.n_chunks, "[]")
                     for d in docs])
    con.execute("INSERT INTO meta VALUES ('format_version', ?)", (str(FORMAT_VERSION),))
    con.commit()
    con.close()
    # term ids: the distinct rows', then each copy's (the same as its source row's)
    lens = np.tile(np.diff(src_ptr), copies)[:n]
    doc_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=doc_ptr[1:])
    tmp_terms = np.lib.format.open_memmap(out.parent / f"{out.name}.terms.npy", mode="w+", dtype=np.int32,
                                          shape=(int(doc_ptr[-1]),))
    at = 0
    for f, used in term_files:
        part = np.load(f, mmap_mode="r")[:used]
        tmp_terms[at : at + len(part)] = part
        at += len(part)
        del part
        f.unlink()
    for c in range(1, copies):
        rows_c = min(n_src, n - c * n_src)
        used = int(src_ptr[rows_c])
        tmp_terms[at : at + used] = tmp_terms[:used]
        at += used
    vocab = _vocab(mat)
    rep["merge_s"] = round(time.perf_counter() - t0, 1)
    log(f"[scale] merged: {rep['merge_s']} s, peak RSS {peak_rss_mb():.0f} MiB")

    # 2. BM25
    t0 = time.perf_counter()
    rep["bm25"] = bm25_csc(tmp_terms, doc_ptr, len(vocab), out / BM25_DIR)
    (out / BM25_DIR / "vocab.index.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out / BM25_DIR / "params.index.json").write_text(json.dumps(
        {"k1": K1, "b": B, "delta": 0.5, "method": "lucene", "idf_method": "lucene", "dtype": "float32",
         "int_dtype": "int32", "num_docs": n, "version": _bm25s_version(), "backend": "numpy"}, indent=4))
    del tmp_terms
    (out.parent / f"{out.name}.terms.npy").unlink()
    rep["bm25_s"] = round(time.perf_counter() - t0, 1)
    log(f"[scale] BM25: {rep['bm25_s']} s, {rep['bm25']}")

    # 3. FAISS (the product's IVF builders, vectors read from the float16 file in blocks)
    t0 = time.perf_counter()
    vecs = np.load(vec_path, mmap_mode="r")
    index = build_ivf(vecs, dim, kind=kind) if kind.startswith("ivf") else None
    if index is None:
        from index.faiss_index import build_faiss

        index = build_faiss(np.asarray(vecs, dtype=np.float32), kind, dim)
    faiss.write_index(index, str(out / FAISS_FILE))
    rep["faiss"] = {"kind": kind, "nlist": ivf_nlist(n), "s": round(time.perf_counter() - t0, 1),
                    "mib": round((out / FAISS_FILE).stat().st_size / 2**20, 1)}
    del index
    log(f"[scale] FAISS {kind}: {rep['faiss']}")
    for extra in extra_kinds:
        t0 = time.perf_counter()
        index = build_ivf(vecs, dim, kind=extra)
        faiss.write_index(index, str(out.parent / f"{out.name}.{extra}.faiss"))
        rep[f"faiss_{extra}"] = {"s": round(time.perf_counter() - t0, 1),
                                 "mib": round((out.parent / f"{out.name}.{extra}.faiss").stat().st_size / 2**20, 1)}
        del index
        log(f"[scale] extra FAISS {extra}: {rep[f'faiss_{extra}']}")

    info = dict(mat["base"].info)
    info.update(format_version=FORMAT_VERSION, n_chunks=n, n_documents=len(docs), faiss_index=kind, bm25=True,
                bm25_vocab_size=len(vocab), built_by="bench.scale_store", corpus_dir="(synthetic)",
                built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    (out / INDEX_JSON).write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
    rep["total_s"] = round(time.perf_counter() - t_all, 1)
    rep["disk_mib"] = {p.name: round(sum(f.stat().st_size for f in ([p] if p.is_file() else p.rglob("*"))
                                         if f.is_file()) / 2**20, 1) for p in out.iterdir()}
    rep["peak_rss_mb"] = round(peak_rss_mb())
    return rep


def finish_faiss(n: int, out: Path, kind: str, nlist: int | None) -> dict[str, Any]:
    """Build ``dense.faiss`` (``kind``, ``nlist`` lists or the product's rule) from the vectors file
    of an index whose rows and BM25 are written, and write its ``index.json`` (``--faiss-only``)."""
    import faiss

    from index.faiss_index import build_ivf, ivf_nlist
    from index.store import connect_readonly
    from index.store_format import FAISS_FILE, FORMAT_VERSION, INDEX_JSON, VECTORS_FILE, read_documents

    mat = material(bundled_index())
    vecs = np.load(out / VECTORS_FILE, mmap_mode="r")
    t0 = time.perf_counter()
    index = build_ivf(vecs, vecs.shape[1], nlist=nlist, kind=kind)
    faiss.write_index(index, str(out / FAISS_FILE))
    rep = {"kind": kind, "nlist": int(index.nlist), "rule_nlist": ivf_nlist(n), "s": round(time.perf_counter() - t0, 1),
           "mib": round((out / FAISS_FILE).stat().st_size / 2**20, 1)}
    log(f"[scale] FAISS {kind}: {rep}")
    while not (out / "bm25" / "params.index.json").is_file():  # the BM25 arrays may still be written
        time.sleep(10)
    con = connect_readonly(out / "index.sqlite")
    n_docs = len(read_documents(con))
    con.close()
    vocab = json.loads((out / "bm25" / "vocab.index.json").read_text(encoding="utf-8"))
    info = dict(mat["base"].info)
    info.update(format_version=FORMAT_VERSION, n_chunks=n, n_documents=n_docs, faiss_index=kind, bm25=True,
                bm25_vocab_size=len(vocab), built_by="bench.scale_store", corpus_dir="(synthetic)",
                built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    (out / INDEX_JSON).write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
    return rep


def _bm25s_version() -> str:
    import bm25s

    return str(getattr(bm25s, "__version__", "?"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True, help="index directory to write (replaced)")
    ap.add_argument("--kind", default=None, help="FAISS kind (default: the auto rule)")
    ap.add_argument("--extra-kinds", nargs="*", default=[], help="also build these IVF kinds beside the index")
    ap.add_argument("--shards", type=int, default=2, help="processes writing rows (default 2)")
    ap.add_argument("--distinct", type=int, default=DISTINCT,
                    help=f"distinct rows written in Python; the rest are SQL copies (default {DISTINCT:,})")
    ap.add_argument("--shard", nargs=3, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--faiss-only", action="store_true",
                    help="only (re)build dense.faiss and index.json of an index whose rows and BM25 exist")
    ap.add_argument("--nlist", type=int, default=None, help="IVF lists (default: the product's rule)")
    args = ap.parse_args(argv)
    if args.faiss_only:
        out = finish_faiss(args.n, args.out, args.kind or "ivfsq8", args.nlist)
        write_result(f"scale_faiss_{args.n}", out)
        return 0
    if args.shard:
        write_shard(args.n, args.out, *args.shard)
        return 0
    log(machine_line())
    rep = write(args.n, args.out, args.kind, args.extra_kinds, args.shards, args.distinct)
    write_result(f"scale_store_{args.n}", rep)
    print(json.dumps(rep, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
