"""One home for each shared list and helper (issue 12, point 4): every user gets the same object.

Page labels, supported extensions, question-frame words, the embedder registry, the Hugging Face
environment switches and the error classes. Nothing here loads the embedding model.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from corpus.records import page_label


@pytest.mark.parametrize(("first", "last", "label"), [
    (3, 3, "p.3"), (3, None, "p.3"), (3, 5, "pp.3–5"), (None, None, ""), (0, 0, ""), ("", "", ""),
])
def test_page_label(first, last, label):
    """「p.3」 for one page, 「pp.3–5」 with an en dash for a range, nothing when the page is unknown."""
    assert page_label(first, last) == label


def test_every_view_labels_pages_alike():
    """The citation, the answer rows, the HTML views and the page-shape line use the one label."""
    from corpus.shapes import PageShape, describe_page_shapes
    from search import answers, views_html

    assert views_html.pages_label(2, 4) == page_label(2, 4) == "pp.2–4"
    assert describe_page_shapes([PageShape(2, 4, "table")]).startswith("pp.2–4 ")

    class _C:
        page_start, page_end = 7, 7

    assert answers._pages(_C()) == "p.7"


def test_supported_extensions_have_one_home():
    """add_document and the upload form accept what the readers read (.xlsm included)."""
    import inspect

    import index.build as build
    import index.update as update
    from corpus.readers import READERS, SUPPORTED_EXTENSIONS

    assert SUPPORTED_EXTENSIONS == frozenset(READERS) and ".xlsm" in SUPPORTED_EXTENSIONS
    assert not hasattr(build, "DEFAULT_EXTENSIONS") and not hasattr(update, "DEFAULT_EXTENSIONS")
    assert "SUPPORTED_EXTENSIONS" in inspect.getsource(update.add_document)


def test_add_document_refuses_an_unreadable_extension(tmp_path: Path):
    """The refusal lists the readers' own extensions."""
    from index.update import add_document
    from index.config import Settings

    src = tmp_path / "memo.xyz"
    src.write_bytes(b"x" * 100)
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")
    (tmp_path / "corpus").mkdir()
    report = add_document(settings, src, municipality="南国市", progress=False)
    text = " ".join(str(m) for m in report.messages)
    assert not report.ok
    assert ".xlsm" in text and ".docx" in text


def test_frame_words_have_one_home():
    """The engine, the sentence matcher and the answer views read the frame words of search.question."""
    import search.answers as answers
    import search.engine as engine
    import search.sentences as sentences
    from search import question

    assert engine.QUESTION_FRAME_TERMS is question.QUESTION_FRAME_TERMS
    assert answers.ANSWER_FRAME_TERMS is question.ANSWER_FRAME_TERMS
    assert sentences.ANSWER_FRAME_TERMS is question.ANSWER_FRAME_TERMS
    assert not hasattr(sentences, "FRAME_TERMS") and not hasattr(answers, "_FRAME_SUFFIXES")
    # the content of a wording question without its frame
    assert answers.strip_frame("公共施設の使用料を見直すという書き方") == "公共施設の使用料を見直す"
    assert "自治体" not in sentences.content_terms("使用料を見直した自治体")


def test_builder_and_engine_share_one_embedder(tmp_path: Path):
    """One registry (with a lock): the builder and the engine get the same Embedder instance."""
    import index.embedder as embedder_mod
    from index.build import get_embedder, release_embedders
    from index.config import Settings
    from search.engine import _shared_embedder

    settings = Settings(cache_dir=tmp_path / "cache")
    try:
        emb = get_embedder(settings)
        assert _shared_embedder(settings) is emb
        assert embedder_mod.shared_embedder(settings.with_overrides(batch_size=8)) is emb  # same model and prompts
    finally:
        release_embedders()
    assert len(embedder_mod._EMBEDDERS) == 0


def test_hub_offline_is_scoped(monkeypatch: pytest.MonkeyPatch):
    """The offline switches hold inside the block only; earlier values come back afterwards."""
    from index.hf_env import hub_offline

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    with hub_offline():
        assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in os.environ and os.environ["TRANSFORMERS_OFFLINE"] == "0"
    with pytest.raises(RuntimeError):
        with hub_offline():
            raise RuntimeError
    assert "HF_HUB_OFFLINE" not in os.environ


def test_each_layer_has_its_own_errors():
    """Index errors live in index.errors alone (corpus.errors, the lower layer, knows nothing of
    them) and share the one base; index.build re-exports them."""
    import corpus.errors as corpus_errors
    import index.build as build
    import index.errors as index_errors

    for name in ("IndexMismatchError", "IndexMissingError", "IndexBusyError", "IndexWriteError"):
        cls = getattr(index_errors, name)
        assert issubclass(cls, corpus_errors.SeisakuError)
        assert getattr(build, name) is cls
        assert not hasattr(corpus_errors, name)
