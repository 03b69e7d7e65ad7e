"""Build the index on Ray (``seisaku build --ray [ADDRESS]``): the same index, made by many nodes.

Two Ray Data passes, then the same write as :func:`index.build.build_index`:

1. **Documents** (Ray tasks, one per document): each task reads and chunks its document in a
   :class:`corpus.worker.DocumentWorker` child — exactly what the local build does, so a document
   that crashes or hangs gets the same error message — and computes the chunks' BM25 terms
   (:class:`index.tokenizer.Tokenizer`) and lemmas (:func:`index.tokenizer.text_lemmas`) in the
   same pass. Progress: documents and chunks done per second.
2. **Passages** (Ray actors, one embedding model each): the driver looks every passage up in the
   embedding caches (the current index's and those of killed builds, as locally) and sends the
   rest in the local build's blocks (:data:`RAY_BLOCK`); each actor embeds a block with
   :meth:`index.embedder.Embedder.encode_passages` (ONNX Runtime, batches planned by padded
   tokens; the CUDA provider on an actor given a GPU, else the CPU one). Each block is written to
   the new cache as it comes back, so a killed build's work is salvaged by the next one. Actors
   are restarted when their process dies (``max_restarts``) and the block they held is sent
   again (``max_task_retries``).

The driver then writes the index — one SQLite file, FAISS, BM25, ``index.json`` — in the format
of docs/index-format.md, under the build lock, into a temporary sibling swapped in atomically
(:func:`index.build._write_and_swap`). A Ray build and a local build or ``seisaku add`` can follow
one another in any order: they share the format and the embedding cache.

Where things live: the corpus must be readable at the same path on every node (shared storage);
the index and its cache only on the driver. Every node needs seisaku installed with the extra
(``pip install -e .[ray]``) at the same version: the tasks report their reader, chunker and
tokeniser versions and the actors their model id, and a mismatch stops the build.

Without an address a local Ray instance is started (loopback, no dashboard, as many CPUs as this
process may use) and stopped at the end. Ray is imported only here, and only when called.
"""
from __future__ import annotations

import logging
import os
import pickle
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corpus.errors import SeisakuError
from corpus.manifest import read_manifest
from corpus.records import Chunk, DocumentMeta, IngestMessage
from index.build import (
    BuildReport,
    EMBED_BLOCK,
    Encode,
    Progress,
    _base_info,
    _cache_sources,
    _doc_record,
    _embed,
    _finish_info,
    finish_build,
    _module_version,
    _notify,
    _use_ocr_cache,
    _write_and_swap,
    embedder_dim,
    get_embedder,
    release_embedders,
)
from index.config import Settings
from index.embedding_cache import EmbeddingCache
from index.store_format import bm25_text, embed_key
from index.store_write import IndexRows
from index.tokenizer import Tokenizer, share_terms, text_lemmas
from index.transaction import begin_build, build_lock, real_paths

#: Passages per actor call: the local build's block (see :func:`ray_encoder` for why). 5M chunks
#: make ≈ 20k blocks, plenty for any cluster; a lost call costs one block.
RAY_BLOCK = EMBED_BLOCK
#: Where the local instance listens: a loopback address that Ray keeps. Ray replaces 127.0.0.1
#: and localhost by the machine's network address (ray._private.services.resolve_ip_for_localhost);
#: the rest of 127/8 is loopback on Linux only.
LOCAL_HOST = "127.0.0.2" if sys.platform.startswith("linux") else "127.0.0.1"
#: How many times Ray restarts a dead embedding actor, and resends the block it held.
MAX_RESTARTS = 4
#: Said when Ray is missing.
INSTALL_HINT = (
    "Ray がインストールされていません。pip install -e '.[ray]'（scripts/install --test も入れます）"
    " / Ray is not installed: pip install -e '.[ray]'"
)


class RayBuildError(SeisakuError):
    """The Ray build cannot run: Ray missing, the cluster unreachable, or nodes whose seisaku or
    model differs from the driver's. The message says what to do."""


@dataclass
class RayBuildReport(BuildReport):
    """A :class:`index.build.BuildReport` with what the cluster did and how fast."""

    address: str = ""
    n_nodes: int = 0
    n_actors: int = 0
    read_seconds: float = 0.0
    embed_seconds: float = 0.0
    gpus: int = 0

    @property
    def docs_per_second(self) -> float:
        """Documents read and chunked per second of the first pass."""
        return self.n_docs / self.read_seconds if self.read_seconds > 0 else 0.0

    @property
    def chunks_per_second(self) -> float:
        """Chunks made (and tokenised) per second of the first pass."""
        return self.n_chunks / self.read_seconds if self.read_seconds > 0 else 0.0

    @property
    def embedded_per_second(self) -> float:
        """Passages embedded per second of the second pass (0 when all came from the cache)."""
        return self.n_embedded / self.embed_seconds if self.embed_seconds > 0 and self.n_embedded else 0.0

    def summary(self) -> str:
        """The local summary plus one line on the cluster and its rates."""
        gpu = f", GPU {self.gpus}" if self.gpus else ""
        return (
            f"{super().summary()}\nRay {self.address or 'local'}（{self.n_nodes} ノード, 埋め込みアクター "
            f"{self.n_actors}{gpu}）: 読み込み {self.docs_per_second:.1f} 文書/秒・{self.chunks_per_second:.1f} "
            f"チャンク/秒, 埋め込み {self.embedded_per_second:.1f} チャンク/秒"
        )


@dataclass(frozen=True)
class _Job:
    """What every task and actor of one build needs (pickled into each)."""

    settings: Settings
    versions: dict[str, str | None]
    model_id: str


@dataclass
class _DocResult:
    """What the first pass returns for one manifest row."""

    i: int
    meta: DocumentMeta
    chunks: list[Chunk]
    messages: list[IngestMessage]
    tokens: list[list[str]]
    lemmas: list[list[str]]
    versions: dict[str, str | None] = field(default_factory=dict)


def code_versions(tokenizer: Tokenizer) -> dict[str, str | None]:
    """The versions that decide what a document becomes: readers + loader, normaliser, chunker,
    tokeniser. A node whose versions differ from the driver's would write a mixed index."""
    return {
        "loader": _module_version("corpus.loader"),
        "normalizer": _module_version("corpus.normalize"),
        "chunker": _module_version("corpus.chunker"),
        "tokenizer": tokenizer.version,
    }


# --------------------------------------------------------------------------- in the Ray workers

#: Per Ray worker process: the document worker (keyed by its settings) and the tokeniser.
_PROCESS: dict[str, Any] = {}


def _document_worker(settings: Settings) -> Any:
    from corpus.worker import DocumentWorker

    key = repr((settings.max_item_tokens, settings.limits))
    if _PROCESS.get("worker_key") != key:
        old = _PROCESS.pop("worker", None)
        if old is not None:
            old.close()
        _PROCESS["worker"] = DocumentWorker(max_tokens=settings.max_item_tokens, limits=settings.limits)
        _PROCESS["worker_key"] = key
    return _PROCESS["worker"]


def _tokenizer() -> Tokenizer:
    tok = _PROCESS.get("tokenizer")
    if tok is None:
        tok = _PROCESS["tokenizer"] = Tokenizer()
    return tok


def load_documents(batch: dict[str, np.ndarray], job: _Job) -> dict[str, np.ndarray]:
    """First pass, in a Ray task: read, chunk and tokenise the documents of ``batch`` (columns
    ``i`` and ``meta``, a pickled :class:`DocumentMeta`); returns ``i`` and ``result``, a pickled
    :class:`_DocResult` each."""
    settings = job.settings
    _use_ocr_cache(settings)  # OCR results go to <cache_dir>/ocr on this node
    worker = _document_worker(settings)
    tok = _tokenizer()
    versions = code_versions(tok)
    out = []
    for i, raw_meta in zip(batch["i"], batch["meta"]):
        meta: DocumentMeta = pickle.loads(raw_meta)
        loaded = worker.load(Path(settings.corpus_dir), meta)
        result = _DocResult(
            i=int(i), meta=meta, chunks=list(loaded.chunks), messages=list(loaded.messages),
            tokens=[tok.tokenize(bm25_text(c)) for c in loaded.chunks],
            lemmas=[text_lemmas(c.text) for c in loaded.chunks],
            versions=versions,
        )
        out.append(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return {"i": np.asarray(batch["i"], dtype=np.int64), "result": np.array(out, dtype=object)}


class EmbedPassages:
    """Second pass, a Ray Data actor: one embedding model per actor process.

    A call gets blocks (column ``texts``: a pickled list of passages) and returns each block's
    vectors (``vecs``: float32 bytes) with the actor's ``model_id`` and process id ``pid``.
    """

    def __init__(self, job: _Job) -> None:
        """Load the model (converting or exporting it first on a new node, under a file lock)."""
        import ray
        from filelock import FileLock

        from index.embedder import Embedder
        from index.onnx_backend import best_providers, set_session_defaults

        ctx = ray.get_runtime_context()
        cpus = int(ctx.get_assigned_resources().get("CPU", 1) or 1)
        gpu = bool(ray.get_gpu_ids())
        set_session_defaults(threads=max(1, cpus), providers=best_providers() if gpu else None)
        settings = job.settings
        self.batch_size = settings.batch_size
        self.embedder = Embedder.from_settings(settings)
        cache = Path(settings.cache_dir).expanduser()
        cache.mkdir(parents=True, exist_ok=True)
        with FileLock(str(cache / "ray-model.lock")):  # two actors of a new node convert it once
            self.dim = int(self.embedder.dim)
        self.model_id = str(self.embedder.model_id)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Embed each block of ``batch``."""
        vecs = []
        for texts in batch["texts"]:
            v = self.embedder.encode_passages(pickle.loads(texts), batch_size=self.batch_size)
            vecs.append(np.ascontiguousarray(v, dtype=np.float32).tobytes())
        n = len(vecs)
        return {
            "block": np.asarray(batch["block"], dtype=np.int64),
            "vecs": np.array(vecs, dtype=object),
            "model_id": np.array([self.model_id] * n, dtype=object),
            "pid": np.full(n, os.getpid(), dtype=np.int64),
        }


# --------------------------------------------------------------------------- the driver


def _project_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


def connect(address: str | None, *, num_cpus: int | None = None) -> tuple[Any, bool]:
    """``(ray, started)``: Ray connected to ``address`` (``auto``, ``HOST:PORT``, ``ray://…``), or
    to a new local instance when None (loopback, no dashboard, ``num_cpus`` default: this
    process's cores). ``started`` says whether this call initialised Ray (then the caller shuts it
    down). Raises :class:`RayBuildError` when Ray is missing or the cluster cannot be reached."""
    try:
        import ray
        import ray.data  # noqa: F401 - the extra's ray[data]
    except ImportError as e:
        raise RayBuildError(INSTALL_HINT) from e
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report to the internet
    if ray.is_initialized():
        return ray, False
    from index.embedder import available_cores

    try:
        if address is None:
            # the workers import this checkout even when seisaku is not installed
            path = os.pathsep.join(p for p in (_project_root(), os.environ.get("PYTHONPATH", "")) if p)
            ray.init(address="local", num_cpus=num_cpus or available_cores(), include_dashboard=False,
                     _node_ip_address=LOCAL_HOST, logging_level=logging.ERROR,
                     runtime_env={"env_vars": {"PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0"}})
        else:
            ray.init(address=address, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise RayBuildError(
            f"Ray クラスタ {address or '(local)'} に接続できません: {e} / cannot connect to the Ray cluster"
        ) from e
    with warnings.catch_warnings():  # Ray Data's own deprecated fields, on first use
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ray.data.DataContext.get_current()
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notes on progress bars, deprecations
    ctx.enable_progress_bars = False  # ours say documents and chunks per second
    return ray, True


def _rate_note(done: int, chunks: int, t0: float) -> str:
    el = max(time.monotonic() - t0, 1e-9)
    return f"{done / el:.1f} 文書/秒, {chunks / el:.1f} チャンク/秒"


def read_corpus(ray: Any, job: _Job, entries: list[DocumentMeta], progress: Progress) -> list[_DocResult]:
    """First pass: every manifest row read, chunked and tokenised in a Ray task; results in
    manifest order. Raises :class:`RayBuildError` when a node runs other reader/chunker code."""
    if not entries:
        return []
    from tqdm.auto import tqdm

    items = [{"i": i, "meta": pickle.dumps(m, protocol=pickle.HIGHEST_PROTOCOL)} for i, m in enumerate(entries)]
    ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        load_documents, batch_size=1, fn_kwargs={"job": job}, num_cpus=1, batch_format="numpy")
    results: list[_DocResult | None] = [None] * len(entries)
    t0, n_chunks = time.monotonic(), 0
    _notify(progress, "読み込み", 0, len(entries), "")
    bar = tqdm(total=len(entries), desc="読み込み (Ray)", unit="文書", disable=progress is not True)
    try:
        for done, row in enumerate(ds.iter_rows(), 1):
            r: _DocResult = pickle.loads(row["result"])
            if r.versions != job.versions:
                raise RayBuildError(
                    f"Ray のノードの seisaku が違います（ノード {r.versions}, このマシン {job.versions}）。"
                    f"全ノードに同じ版を入れてください / a node runs another seisaku version")
            results[r.i] = r
            n_chunks += len(r.chunks)
            note = _rate_note(done, n_chunks, t0)
            bar.set_postfix_str(f"{n_chunks} チャンク, {note}", refresh=False)
            bar.update(1)
            _notify(progress, "読み込み", done, len(entries), f"{r.meta.doc_id} ({note})")
    finally:
        bar.close()
    missing = [entries[i].doc_id for i, r in enumerate(results) if r is None]
    if missing:
        raise RayBuildError(f"Ray から結果が返らなかった文書があります / no result for: {', '.join(missing[:5])}")
    return [r for r in results if r is not None]


def actor_plan(ray: Any, actor_cpus: int) -> dict[str, Any]:
    """How the embedding actors are placed: one per GPU when the cluster has GPUs, else one per
    ``actor_cpus`` CPUs (each running ONNX Runtime on that many threads)."""
    res = ray.cluster_resources()
    gpus = int(res.get("GPU", 0))
    if gpus:
        return {"concurrency": gpus, "num_gpus": 1, "num_cpus": 1, "gpus": gpus}
    cpus = max(1, int(actor_cpus))
    return {"concurrency": max(1, int(res.get("CPU", 1)) // cpus), "num_gpus": 0, "num_cpus": cpus, "gpus": 0}


def ray_encoder(ray: Any, job: _Job, plan: dict[str, Any], *, on_block: Any = None) -> Encode:
    """The ``encode`` of :func:`index.build._embed` that runs on the embedding actors: the texts
    cut into the blocks of :data:`RAY_BLOCK` the local build embeds, each block yielded back as
    it comes in. ``on_block(pid, n)`` hears of each block (tests, benchmarks).

    Why the same blocks: the int8 model quantises each batch's activations with one scale, so a
    passage's vector moves (≈ 0.01 per component) with its batch-mates; a block is planned into
    the same batches wherever it runs, so the vectors equal the local build's (to ≈ 1e-7 on the
    same CPU kind)."""

    def encode(texts: list[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        blocks = [np.arange(a, min(a + RAY_BLOCK, len(texts))) for a in range(0, len(texts), RAY_BLOCK)]
        if not blocks:
            return
        items = [{"block": b, "texts": pickle.dumps([texts[r] for r in rows], protocol=pickle.HIGHEST_PROTOCOL)}
                 for b, rows in enumerate(blocks)]
        used = plan["used"] = min(plan["concurrency"], len(blocks))  # no idle actor
        with warnings.catch_warnings():  # Ray 2.60 names no parameter for the restarts yet
            warnings.simplefilter("ignore", DeprecationWarning)
            ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
                EmbedPassages, fn_constructor_kwargs={"job": job}, batch_size=1, batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=used, max_tasks_in_flight_per_actor=2),
                num_cpus=plan["num_cpus"], num_gpus=plan["num_gpus"] or None,
                max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS)
        seen: set[int] = set()
        for row in ds.iter_rows():
            b = int(row["block"])
            if str(row["model_id"]) != job.model_id:
                raise RayBuildError(
                    f"Ray のノードの埋め込みモデルが違います（{row['model_id']}, このマシン {job.model_id}）"
                    f" / a node embeds with another model")
            if b in seen:  # a block sent again after a failure may come back twice
                continue
            seen.add(b)
            vecs = np.frombuffer(row["vecs"], dtype=np.float32).reshape(len(blocks[b]), -1)
            if on_block is not None:
                on_block(int(row["pid"]), len(blocks[b]))
            yield blocks[b], vecs
        if len(seen) != len(blocks):
            raise RayBuildError(f"Ray から埋め込みが返らなかったブロックがあります（{len(blocks) - len(seen)} 件）")

    return encode


def build_index_ray(
    settings: Settings,
    *,
    address: str | None = None,
    progress: Progress = True,
    release_model: bool = False,
    num_cpus: int | None = None,
    actor_cpus: int = 1,
    on_block: Any = None,
) -> RayBuildReport:
    """Build the index of ``settings.corpus_dir`` into ``settings.index_dir`` on Ray (see the
    module docstring): the same index :func:`index.build.build_index` writes, under its lock.

    ``address``: a running cluster (``auto``, ``HOST:PORT``); None starts a local instance with
    ``num_cpus`` CPUs. ``actor_cpus``: CPUs (ONNX Runtime threads) per embedding actor on a
    cluster without GPUs. ``progress`` as for ``build_index`` (the bars say documents and chunks
    per second). Raises :class:`RayBuildError` (Ray missing, cluster unreachable, mismatched
    nodes) and what ``build_index`` raises.
    """
    settings = real_paths(settings)
    with build_lock(Path(settings.index_dir)):
        ray, started = connect(address, num_cpus=num_cpus)
        try:
            return _build_locked(ray, settings, address=address, progress=progress, release_model=release_model,
                                 actor_cpus=actor_cpus, on_block=on_block)
        finally:
            if started:
                ray.shutdown()


def _build_locked(ray: Any, settings: Settings, *, address: str | None, progress: Progress, release_model: bool,
                  actor_cpus: int, on_block: Any) -> RayBuildReport:
    t0 = time.monotonic()
    _use_ocr_cache(settings)
    index_dir = Path(settings.index_dir)
    own_tmp, salvage = begin_build(index_dir)

    manifest = read_manifest(settings.corpus_dir, check_unlisted=True)
    embedder = get_embedder(settings)
    tokenizer = Tokenizer()
    job = _Job(settings=settings, versions=code_versions(tokenizer), model_id=str(embedder.model_id))
    t_read = time.monotonic()
    results = read_corpus(ray, job, list(manifest.entries), progress)
    read_seconds = time.monotonic() - t_read

    messages = list(manifest.messages)
    chunks: list[Chunk] = []
    tokens: list[list[str]] = []
    lemmas: list[list[str]] = []
    pool: dict[str, str] = {}
    for r in results:
        messages.extend(r.messages)
        chunks.extend(r.chunks)
        tokens.extend(share_terms(t, pool) for t in r.tokens)
        lemmas.extend(share_terms(lm, pool) for lm in r.lemmas)
    documents = [_doc_record(settings.corpus_dir, r.meta, len(r.chunks), messages) for r in results]
    dim = embedder_dim(embedder, index_dir)
    prompt = embedder.passage_prompt or ""
    keys = [embed_key(prompt, c.embed_text) for c in chunks]
    info = _finish_info(_base_info(settings, embedder, tokenizer, dim), settings.corpus_dir, documents, built_by="build")
    if release_model:
        release_embedders()  # the driver only needed the model's dimension

    plan = actor_plan(ray, actor_cpus)
    result: dict[str, Any] = {}

    def fill(cache: EmbeddingCache) -> np.ndarray:
        t_embed = time.monotonic()
        vecs, n_emb, n_cached = _embed(
            embedder, keys, [c.embed_text for c in chunks], _cache_sources(index_dir, salvage), cache,
            batch_size=settings.batch_size, progress=progress, dim=dim,
            encode=ray_encoder(ray, job, plan, on_block=on_block),
        )
        result.update(n_embedded=n_emb, n_cached=n_cached, embed_seconds=time.monotonic() - t_embed)
        return vecs

    _write_and_swap(settings, IndexRows(chunks, tokens, keys, documents, lemmas), vectors=fill, info=info,
                    progress=progress)
    ok = finish_build(salvage, documents, messages, settings.corpus_dir)
    return RayBuildReport(
        n_docs=len(documents), n_chunks=len(chunks), n_embedded=result["n_embedded"], n_cached=result["n_cached"],
        messages=messages, ok=ok, action="build", index_dir=str(index_dir), elapsed=time.monotonic() - t0,
        address=address or "", n_nodes=sum(1 for n in ray.nodes() if n.get("Alive")),
        n_actors=plan.get("used", 0), read_seconds=read_seconds,
        embed_seconds=result["embed_seconds"], gpus=plan["gpus"],
    )
