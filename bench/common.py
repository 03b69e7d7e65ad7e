"""Shared helpers for the benchmarks: machine facts, timing statistics, peak RSS, the real corpus
vectors and the synthetic scale-up used by every size sweep.

Synthetic scale-up (used by faiss_scale, e2e_latency and build_scale): chunk ``i`` of an
``N``-chunk corpus is real chunk ``i % n_real`` (``n_real`` = the bundled corpus' chunks). Its
vector is the real chunk's embedding plus i.i.d. Gaussian noise of standard deviation
``NOISE / sqrt(dim)`` per dimension (so the noise vector's norm is about ``NOISE``), then
re-normalised to unit length; copy 0 of each real chunk is kept exact. Its BM25 token list is the
real chunk's token list, unchanged. Query vectors for recall are the real embeddings of the dev
questions plus the same kind of noise.
"""
from __future__ import annotations

import gc
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEV_QUERIES = ROOT.parent / "shared" / "eval" / "dev_queries.jsonl"
RESULTS_DIR = ROOT / "bench" / "results"
#: Relative noise norm of the synthetic copies (see the module docstring): 0.25 is about the median
#: distance between a real chunk and its nearest other chunk (0.23), so copies of neighbouring chunks
#: interleave rather than forming separated clusters.
NOISE = 0.25

SIZES_FULL = (1_000, 10_000, 100_000, 1_000_000)
SIZES_QUICK = (1_000, 10_000)


# ------------------------------------------------------------------------------- machine facts
def machine() -> dict[str, Any]:
    """CPU model, cores, RAM and library versions (stated in every report)."""
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        info["loadavg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = next(
            (l.split(":", 1)[1].split() for l in open("/proc/cpuinfo", encoding="utf-8") if l.startswith("flags")), []
        )
        info["simd"] = " ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags)
    except OSError:
        info["cpu"] = platform.processor()
    try:
        info["cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["cores"] = os.cpu_count()
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        info["ram_gib"] = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    for mod in ("torch", "faiss", "sentence_transformers", "onnxruntime", "bm25s", "numpy", "transformers"):
        try:
            m = __import__(mod)
            info[mod] = getattr(m, "__version__", "?")
        except Exception:  # noqa: BLE001 - absent or broken: reported as such
            info[mod] = None
    return info


def machine_line(m: dict[str, Any] | None = None) -> str:
    m = m or machine()
    return (
        f"{m.get('cpu')} ({m.get('simd')}), {m.get('cores')} cores, {m.get('ram_gib')} GiB RAM; "
        f"Python {m.get('python')}, torch {m.get('torch')}, faiss {m.get('faiss')}, "
        f"sentence-transformers {m.get('sentence_transformers')}, onnxruntime {m.get('onnxruntime')}, "
        f"bm25s {m.get('bm25s')}, numpy {m.get('numpy')}"
    )


# ------------------------------------------------------------------------------- timing / memory
def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of ``values`` (linear interpolation)."""
    if not len(values):
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / mean / max in milliseconds of a list of durations in seconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(pct(ms, 50), 3),
        "p95_ms": round(pct(ms, 95), 3),
        "mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan"),
        "max_ms": round(max(ms), 3) if ms else float("nan"),
        "runs": len(ms),
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def rss_mb() -> float:
    """Current resident set size in MiB (psutil if present, else /proc)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_parts_mb() -> dict[str, float]:
    """This process's resident memory split as Linux reports it (/proc/self/status, MiB):
    ``anon`` (its own heap: what it needs), ``file`` (pages of memory-mapped files it touched,
    which the kernel drops under pressure) and ``shmem``; empty where /proc is missing."""
    out: dict[str, float] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                for key, name in (("RssAnon:", "anon"), ("RssFile:", "file"), ("RssShmem:", "shmem")):
                    if line.startswith(key):
                        out[name] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return out


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (getrusage ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mb() -> float:
    """Largest peak RSS of any waited-for child process, MiB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


# ------------------------------------------------------------------------------- results
def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` (with the machine) and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    data = {"machine": machine(), "argv": sys.argv, "written": time.strftime("%Y-%m-%d %H:%M:%S"), **data}
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return path


def log(*a: Any) -> None:
    print(*a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- real data
def load_chunks() -> list[Any]:
    """The bundled corpus' chunks (corpus.loader.load_corpus(corpus/).chunks)."""
    from corpus.loader import load_corpus

    return list(load_corpus(ROOT / "corpus").chunks)


def load_dev_questions() -> list[Any]:
    from search.evaluate import load_questions

    return load_questions(DEV_QUERIES)


def bench_cache_dir() -> Path:
    from index.config import default_cache_dir

    d = Path(os.environ.get("SEISAKU_BENCH_CACHE") or default_cache_dir() / "bench")
    d.mkdir(parents=True, exist_ok=True)
    return d


def real_vectors(backend: str = "torch") -> tuple[np.ndarray, np.ndarray]:
    """(chunk vectors, dev-query vectors) of the bundled corpus with the default model, cached
    on disk under the bench cache keyed by the texts. Falls back to random unit vectors (and says
    so) only when the model cannot be loaded."""
    chunks = load_chunks()
    questions = load_dev_questions()
    texts = [c.embed_text for c in chunks]
    queries = [q.query for q in questions]
    key = hashlib.sha256(json.dumps([backend, texts, queries], ensure_ascii=False).encode()).hexdigest()[:16]
    path = bench_cache_dir() / f"real_vectors_{key}.npz"
    if path.is_file():
        z = np.load(path)
        return z["P"], z["Q"]
    from index.config import load_settings
    from index.embedder import Embedder

    emb = Embedder.from_settings(load_settings())
    P = emb.encode_passages(texts)
    Q = emb.encode_queries(queries)
    np.savez(path, P=P, Q=Q)
    return P, Q


def synthetic_vectors(base: np.ndarray, n: int, noise: float = NOISE, seed: int = 0, block: int = 100_000) -> np.ndarray:
    """``n`` unit vectors: row i = normalise(base[i % len(base)] + N(0, noise²/dim)), copy 0 exact."""
    rng = np.random.default_rng(seed)
    nb, d = base.shape
    out = np.empty((n, d), dtype=np.float32)
    sigma = noise / np.sqrt(d)
    for a in range(0, n, block):
        b = min(n, a + block)
        idx = np.arange(a, b) % nb
        v = base[idx] + rng.standard_normal((b - a, d), dtype=np.float32) * sigma
        first = np.arange(a, b) < nb
        v[first] = base[idx[first]]
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[a:b] = v
    return out


def noisy_queries(Q: np.ndarray, n: int, noise: float = NOISE, seed: int = 1) -> np.ndarray:
    """``n`` query vectors: the real dev-query vectors cycled, plus noise, re-normalised."""
    rng = np.random.default_rng(seed)
    d = Q.shape[1]
    v = Q[np.arange(n) % len(Q)] + rng.standard_normal((n, d), dtype=np.float32) * (noise / np.sqrt(d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def free() -> None:
    gc.collect()


def clear_query_caches(store: Any = None) -> None:
    """Forget everything a search or an answer view remembers between questions — query vectors,
    sentence vectors, sentence terms and concepts, passage tokens, and ``store``'s BM25 arrays —
    so that a timed question starts as if never seen (the benchmarks' "cold" queries)."""
    import search.answers as answers_mod
    import search.engine as engine_mod
    import search.highlight as highlight_mod
    import search.sentences as sentences_mod

    engine_mod._QVEC_CACHE.clear()
    answers_mod._VEC_CACHE.clear()
    sentences_mod._terms_cached.cache_clear()
    sentences_mod.concepts.cache_clear()
    highlight_mod.clear_token_cache()
    if store is not None:
        store._bm25_cache.clear()


def time_search_and_answer(engine: Any, query: str, cold: Callable[[], None]) -> tuple[float, float]:
    """Seconds of ``engine.search(query, k=10)`` and of ``municipality_answer(engine, query)``,
    each run after ``cold()`` has emptied the caches the benchmark means to exclude: the two
    things a user waits for on a question."""
    from search.answers import municipality_answer

    cold()
    t_search, _ = timed(lambda: engine.search(query, k=10))
    cold()
    t_answer, _ = timed(lambda: municipality_answer(engine, query))
    return t_search, t_answer


def run_step(module: str, argv: Sequence[str], *, stream_stderr: bool = False) -> dict[str, Any]:
    """Run ``python -m module *argv`` in a fresh interpreter — one benchmark step, so that its
    memory never counts against another's — and return the JSON object of its last stdout line.
    Its stderr is shown as it runs (``stream_stderr``), else its last 3,000 characters when the
    step fails; a failed step raises RuntimeError."""
    p = subprocess.run([sys.executable, "-m", module, *argv], cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=None if stream_stderr else subprocess.PIPE, text=True)
    if p.returncode != 0:
        if p.stderr:
            log(p.stderr[-3000:])
        raise RuntimeError(f"step {list(argv)} of {module} failed ({p.returncode})")
    return json.loads(p.stdout.strip().splitlines()[-1])

