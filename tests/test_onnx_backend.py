"""Embedder backends: torch (default), onnx and onnx-int8 (index.onnx_backend), and the fallback."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import index.embedder as embedder_mod
from index.config import Settings, load_settings
from index.embedder import Embedder
from index.onnx_backend import BACKENDS, onnx_available


def test_backend_is_validated() -> None:
    with pytest.raises(ValueError, match="backend"):
        Embedder("e5-small", backend="tensorrt")
    assert set(BACKENDS) == {"torch", "onnx", "onnx-int8"}


def test_settings_carry_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().backend == "onnx-int8"  # the measured default (docs/benchmarks.md)
    assert Embedder.from_settings(Settings().with_overrides(backend="onnx-int8")).backend == "onnx-int8"
    monkeypatch.setenv("SEISAKU_BACKEND", "onnx")
    monkeypatch.setenv("SEISAKU_CONFIG", "/nonexistent/config.toml")
    assert load_settings().backend == "onnx"


def test_torch_backend_has_no_onnx_encoder() -> None:
    emb = Embedder("e5-small", backend="torch")
    assert emb.onnx is None


def test_falls_back_to_torch_without_onnxruntime(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(embedder_mod, "onnx_available", lambda: False)
    emb = Embedder(str(tmp_path), backend="onnx")
    with pytest.warns(RuntimeWarning, match="onnxruntime is not installed"):
        assert emb.onnx is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not on every call
        assert emb.onnx is None


def test_hub_names_fall_back_to_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    emb = Embedder("some-org/some-model-that-is-not-a-folder", backend="onnx-int8")
    with pytest.warns(RuntimeWarning, match="local model folder"):
        assert emb.onnx is None


@pytest.mark.slow
@pytest.mark.skipif(not onnx_available(), reason="onnxruntime not installed")
def test_onnx_matches_torch() -> None:
    texts = ["学校給食センターをPFIで整備する", "火葬場の建て替えについて検討する。" * 200, "指定管理者制度"]
    ref = Embedder("e5-small", backend="torch").encode_passages(texts)
    fp32 = Embedder("e5-small", backend="onnx")
    got = fp32.encode_passages(texts)
    assert fp32.active_backend == "onnx"
    assert got.shape == ref.shape and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (got * ref).sum(1).min() > 0.9999  # the long text goes through the windowed path too
    int8 = Embedder("e5-small", backend="onnx-int8").encode_queries(texts)
    ref_q = Embedder("e5-small", backend="torch").encode_queries(texts)
    assert (int8 * ref_q).sum(1).min() > 0.98


@pytest.mark.slow
@pytest.mark.skipif(not onnx_available(), reason="onnxruntime not installed")
def test_token_ids_equal_the_transformers_tokenizer() -> None:
    """The ONNX path reads tokenizer.json with `tokenizers` (no torch import); its ids, truncation
    and padding must be exactly AutoTokenizer's."""
    from transformers import AutoTokenizer

    from index.onnx_backend import TokenIds

    folder = Embedder("e5-small", backend="onnx-int8").onnx.model_dir
    hf = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    mine = TokenIds(folder)
    texts = ["passage: 学校給食センターのＰＦＩ導入", "query: ＰＰＰ／ＰＦＩ　〜①㈱", "", "passage: " + "長い文章。" * 300,
             "🙏 <script>alert(1)</script>", "令和６年度\t取組状況\n今後の方向性"]
    assert mine.ids(texts) == hf(texts, add_special_tokens=True, truncation=False)["input_ids"]
    assert mine.ids(texts, special=False) == hf(texts, add_special_tokens=False, truncation=False)["input_ids"]
    assert (mine.prefix, mine.suffix, mine.pad_id) == ([hf.cls_token_id], [hf.sep_token_id], hf.pad_token_id)
    for width in (512, 16):
        ids, mask = mine.batch(texts, width)
        ref = hf(texts, padding=True, truncation=True, max_length=width, return_tensors="np")
        assert np.array_equal(ids, ref["input_ids"]) and np.array_equal(mask, ref["attention_mask"])


@pytest.mark.slow
@pytest.mark.skipif(not onnx_available(), reason="onnxruntime not installed")
def test_onnx_search_process_never_imports_torch() -> None:
    """Building and searching on the ONNX backend stays out of torch (≈ 300 MB of RSS)."""
    import subprocess
    import sys

    code = ("import sys; from index.embedder import Embedder; "
            "e = Embedder('e5-small', backend='onnx-int8'); e.encode_queries(['給食']); "
            "e.encode_passages(['学校給食センター' * 200]); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
