"""The material of the synthetic stores (bench/scale_store.py): the bundled corpus built by the
product, its chunks cut into sentences with their terms, lemmas and real embeddings (cached),
and the generated municipality names."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import bench_cache_dir, log

SEED = 20261201
N_MUNICIPALITIES = 1741
PLACE_KANJI = "山川田中野原井上下北南東西大小本新松竹梅桜岡島崎浜沢津宮高森林谷口石橋江戸長吉平和泉朝日月星光白黒赤青緑金銀岩滝池湖海港浦鶴亀鹿熊犬羽根"
_SENT = re.compile(r"[^。！？\n]+[。！？]?")


@dataclass
class Sentence:
    text: str
    tokens: list[str]
    lemmas: list[str]
    #: The tokens as JSON list items (no brackets) and as vocabulary ids (filled by :func:`synth`).
    tokens_json: str = ""
    ids: Any = None


def bundled_index() -> Path:
    """The bundled corpus built by the product into the bench cache (built once)."""
    from index.build import build_index
    from index.config import load_settings

    d = bench_cache_dir() / "scale_bundled_index"
    if not (d / "index.json").is_file():
        build_index(load_settings().with_overrides(index_dir=d), progress=False)
    return d


def material(base_dir: Path) -> dict[str, Any]:
    """Sentences of every bundled chunk with terms, lemmas and vectors (cached by content)."""
    from index.store import IndexStore
    from index.tokenizer import Tokenizer, text_lemmas

    base = IndexStore.open(base_dir)
    chunks = list(base.chunks)
    per_chunk = [[m.group(0).strip() for m in _SENT.finditer(c.text) if len(m.group(0).strip()) >= 4] or [c.text]
                 for c in chunks]
    key = hashlib.sha256(json.dumps([base.info["model_id"], per_chunk], ensure_ascii=False).encode()).hexdigest()[:16]
    cache = bench_cache_dir() / f"scale_material_{key}.npz"
    tok = Tokenizer()
    texts = [s for ss in per_chunk for s in ss]
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        svec = z["svec"]
        meta = json.loads(str(z["meta"]))
    else:
        from index.config import load_settings
        from index.embedder import Embedder

        log(f"[scale] embedding {len(texts)} sentences of the bundled corpus")
        svec = np.asarray(Embedder.from_settings(load_settings()).encode_passages(texts), dtype=np.float32)
        meta = {"tokens": [tok.tokenize(s) for s in texts], "lemmas": [sorted(text_lemmas(s)) for s in texts],
                "headers": [tok.tokenize(_header(c)) for c in chunks]}
        np.savez(cache, svec=svec, meta=np.array(json.dumps(meta, ensure_ascii=False)))
    sents, k = [], 0
    for ss in per_chunk:
        sents.append([Sentence(s, meta["tokens"][k + j], meta["lemmas"][k + j]) for j, s in enumerate(ss)])
        k += len(ss)
    starts = np.cumsum([0] + [len(ss) for ss in per_chunk])
    mvec = np.random.default_rng(SEED + 1).standard_normal((N_MUNICIPALITIES, svec.shape[1])).astype(np.float32)
    mvec /= np.linalg.norm(mvec, axis=1, keepdims=True)
    return {"mvec": mvec, "base": base, "chunks": chunks, "sentences": sents, "svec": svec, "sent_start": starts,
            "cvec": base.vectors(), "header_tokens": meta["headers"], "keys": base.embed_keys()}


def _header(c: Any) -> str:
    """The heading lines ``embed_text`` puts before a chunk's text."""
    return c.embed_text[: len(c.embed_text) - len(c.text)] if c.embed_text.endswith(c.text) else ""


def municipality_names(bundled: list[str], n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct names: the bundled ones, then two-kanji names + 市/町/村 (792:743:183)."""
    out = list(dict.fromkeys(x for x in bundled if x))
    seen = set(out)
    suffixes = np.array(["市"] * 792 + ["町"] * 743 + ["村"] * 183)
    while len(out) < n:
        a, b = rng.choice(list(PLACE_KANJI), 2, replace=False)
        name = f"{a}{b}{rng.choice(suffixes)}"
        if name not in seen and not any(name in o or o in name for o in out[:8]):
            seen.add(name)
            out.append(name)
    return out[:n]
