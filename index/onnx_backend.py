"""ONNX Runtime backends for a local sentence-transformers model folder (mean pooling + L2).

``onnx``       the encoder exported from torch (fp32), run by ONNX Runtime.
``onnx-int8``  the same graph with dynamic int8 quantisation of the MatMul/Gemm weights
               (``onnxruntime.quantization.quantize_dynamic``, per-channel, signed int8 weights;
               activations are quantised on the fly; ONNX Runtime picks VNNI/AVX-512/AVX2 kernels
               for the CPU at run time).

The export needs torch and transformers once, offline (the folder is local); it is cached in
``<model folder>/onnx/`` (``model.onnx``, ``model_qint8.onnx`` and ``stamp.json``), written to a
temporary file and renamed into place, and redone when the folder's ``seisaku-model.json``
stamp or :data:`EXPORT_VERSION` changes. Nothing is fetched from a model hub.

:class:`OnnxEncoder` mirrors what the Embedder needs: ``tokenizer`` (a :class:`TokenIds` over
the folder's ``tokenizer.json``), ``max_seq_length``, ``dim``, ``encode(texts) -> unit rows`` and
``hidden(ids)`` for the windowed encoding of over-long texts. It reads ``tokenizer.json`` with the
``tokenizers`` library rather than ``transformers.AutoTokenizer``, which would import torch: the
serving and building processes then never load torch (about 300 MB less RSS; see
docs/benchmarks.md).

sentence-transformers' own ``backend="onnx"`` needs ``optimum.onnxruntime``, which (optimum-onnx
0.1) requires transformers < 4.58; this module needs only ``onnxruntime`` (and ``onnx`` for the
int8 file), so it works with the transformers 5 that the rest of the project uses.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corpus.memo import LockedCache

#: Bump when the exported graph changes, so cached exports are redone.
EXPORT_VERSION = 1
ONNX_DIR = "onnx"
FP32_FILE = "model.onnx"
INT8_FILE = "model_qint8.onnx"
STAMP = "stamp.json"
BACKENDS = ("torch", "onnx", "onnx-int8")

#: One ONNX export at a time in this process (it writes files into the model folder).
_EXPORT_LOCK = threading.Lock()
#: The process-wide encoders by (model folder, backend): a registry, each created once.
_ENCODERS: "LockedCache[tuple[str, str], OnnxEncoder]" = LockedCache()
#: Session settings of the encoders this process creates from now on (:func:`set_session_defaults`).
_SESSION: dict[str, Any] = {"threads": None, "providers": ("CPUExecutionProvider",)}


def set_session_defaults(*, threads: int | None = None, providers: Sequence[str] | None = None) -> None:
    """Intra-op threads and execution providers (in order of preference) of the encoders this
    process creates from now on; the Ray build's embedding actors set them (index.ray_build)."""
    _SESSION["threads"] = int(threads) if threads else None
    _SESSION["providers"] = tuple(providers) if providers else ("CPUExecutionProvider",)


def best_providers() -> list[str]:
    """ONNX Runtime's CUDA provider then the CPU one when this onnxruntime has CUDA, else CPU alone."""
    import onnxruntime as ort

    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]


def onnx_available() -> bool:
    """True when onnxruntime can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return False
    return True


def _stamp(model_dir: Path) -> dict[str, Any]:
    src = model_dir / "seisaku-model.json"
    base: Any = None
    if src.is_file():
        base = json.loads(src.read_text(encoding="utf-8"))
    else:  # another local folder: its weights' size and mtime
        w = next((model_dir / f for f in ("model.safetensors", "pytorch_model.bin") if (model_dir / f).is_file()), None)
        base = {"weights": str(w), "size": w.stat().st_size, "mtime": int(w.stat().st_mtime)} if w else None
    return {"export_version": EXPORT_VERSION, "model": base}


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def export_fp32(model_dir: Path, out: Path) -> None:
    """Export the folder's transformer (input_ids, attention_mask -> last_hidden_state) to ``out``."""
    import torch
    from transformers import AutoModel

    hf = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
    hf.eval()

    class _Enc(torch.nn.Module):
        def __init__(self, m: Any) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.tensor([[0, 100, 200, 2], [0, 300, 2, 1]], dtype=torch.long)
    mask = (ids != 1).long()
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
            "last_hidden_state": {0: "batch", 1: "seq"}}

    def write(tmp: Path) -> None:
        with torch.inference_mode():
            torch.onnx.export(
                _Enc(hf), (ids, mask), str(tmp), input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False,
            )

    _atomic_write(out, write)


def quantize_int8(fp32: Path, out: Path) -> None:
    """Dynamic int8 quantisation (per-channel signed weights) of ``fp32`` into ``out``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def write(tmp: Path) -> None:
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gemm"])

    _atomic_write(out, write)


def ensure_onnx(model_dir: str | os.PathLike, backend: str) -> Path:
    """The cached ONNX file for ``backend`` (``onnx`` or ``onnx-int8``), exporting it first if needed."""
    model_dir = Path(model_dir)
    d = model_dir / ONNX_DIR
    stamp = _stamp(model_dir)
    fp32, int8 = d / FP32_FILE, d / INT8_FILE
    with _EXPORT_LOCK:
        current = None
        if (d / STAMP).is_file():
            try:
                current = json.loads((d / STAMP).read_text(encoding="utf-8"))
            except ValueError:
                current = None
        if current != stamp:
            for f in (fp32, int8, d / STAMP):
                if f.exists():
                    f.unlink()
        if not fp32.is_file():
            export_fp32(model_dir, fp32)
        if backend == "onnx-int8" and not int8.is_file():
            quantize_int8(fp32, int8)
        if current != stamp:
            _atomic_write(d / STAMP, lambda p: p.write_text(json.dumps(stamp), encoding="utf-8"))
    return int8 if backend == "onnx-int8" else fp32


class TokenIds:
    """Token ids from a fast tokenizer file, with the model's special tokens placed as its
    template says (``<s> … </s>`` for XLM-R/e5, ``[CLS] … [SEP]`` for BERT), truncated and padded
    here; ids equal ``AutoTokenizer``'s for single texts (tests/test_onnx_backend.py).

    Stateless (no padding or truncation kept on the shared Rust object), so threads may share it.
    """

    def __init__(self, model_dir: str | os.PathLike) -> None:
        from tokenizers import Tokenizer

        d = Path(model_dir)
        self._tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        with_special = self._tok.encode("a", add_special_tokens=True).ids
        plain = self._tok.encode("a", add_special_tokens=False).ids
        at = next((i for i in range(len(with_special) - len(plain) + 1)
                   if with_special[i : i + len(plain)] == plain), 0)
        self.prefix: list[int] = with_special[:at]
        self.suffix: list[int] = with_special[at + len(plain):]
        cfg_path = d / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
        pad = cfg.get("pad_token")
        pad = pad.get("content") if isinstance(pad, dict) else pad
        pad_id = self._tok.token_to_id(pad) if pad else None
        if pad_id is None:
            pad_id = next((i for t in ("<pad>", "[PAD]") if (i := self._tok.token_to_id(t)) is not None), 0)
        self.pad_id = int(pad_id)

    def ids(self, texts: Sequence[str], special: bool = True) -> list[list[int]]:
        """Token ids of each text, untruncated; with ``special`` the template's special tokens."""
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=special)]

    def lengths(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens per text, special tokens included, untruncated."""
        return np.fromiter((len(x) for x in self.ids(texts)), dtype=np.int64, count=len(texts))

    def batch(self, texts: Sequence[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
        """``(input_ids, attention_mask)`` int64 ``[n, longest]``: each text's tokens cut to fit
        ``max_length`` with its special tokens (the end is dropped), right-padded."""
        room = max(1, int(max_length) - len(self.prefix) - len(self.suffix))
        rows = [[*self.prefix, *ids[:room], *self.suffix] for ids in self.ids(texts, special=False)]
        width = max((len(r) for r in rows), default=0)
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            input_ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return input_ids, mask


class OnnxEncoder:
    """An ONNX Runtime session over a local model folder: mean pooling over the attention mask,
    then L2 normalisation (the default model's Pooling + Normalize modules)."""

    def __init__(self, model_dir: str | os.PathLike, backend: str = "onnx", threads: int | None = None) -> None:
        import onnxruntime as ort

        if backend not in ("onnx", "onnx-int8"):
            raise ValueError(f"backend must be 'onnx' or 'onnx-int8', not {backend!r}")
        self.model_dir = Path(model_dir)
        self.backend = backend
        self.path = ensure_onnx(self.model_dir, backend)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        threads = threads or _SESSION["threads"]
        if threads:
            opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        # no busy-waiting between runs: the FAISS and BM25 work that follows a query needs the cores
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=list(_SESSION["providers"]))
        self.tokenizer = TokenIds(self.model_dir)
        cfg = json.loads((self.model_dir / "config.json").read_text(encoding="utf-8"))
        self.dim = int(cfg["hidden_size"])
        st_cfg = self.model_dir / "sentence_bert_config.json"
        max_len = None
        if st_cfg.is_file():
            max_len = json.loads(st_cfg.read_text(encoding="utf-8")).get("max_seq_length")
        self.max_seq_length = int(max_len or min(512, int(cfg.get("max_position_embeddings", 514)) - 2))

    def hidden(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """last_hidden_state, float32 ``[batch, seq, dim]``."""
        (out,) = self.session.run(
            ["last_hidden_state"],
            {"input_ids": input_ids.astype(np.int64), "attention_mask": attention_mask.astype(np.int64)},
        )
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length mean-pooled embeddings of ``texts`` (truncated at max_seq_length), float32."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        input_ids, attention_mask = self.tokenizer.batch(texts, self.max_seq_length)
        mask = attention_mask.astype(np.float32)
        h = self.hidden(input_ids, attention_mask)
        v = (h * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        return v.astype(np.float32)


def get_encoder(model_dir: str | os.PathLike, backend: str) -> OnnxEncoder:
    """The process-wide :class:`OnnxEncoder` for (folder, backend), created on first use."""
    key = (str(Path(model_dir).resolve()), backend)
    return _ENCODERS.get_or_create(key, lambda: OnnxEncoder(model_dir, backend))


def release_encoders() -> int:
    """Forget every process-wide :class:`OnnxEncoder` (their sessions are freed once unused);
    returns how many there were."""
    return len(_ENCODERS.clear())
