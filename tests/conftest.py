"""Shared fixtures: paths to the bundled corpus and to ../shared material (skipped when absent)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "corpus"
SHARED = REPO.parent / "shared"
ARTIFACTS = REPO / "artifacts"


@pytest.fixture(scope="session")
def bundled_corpus() -> Path:
    """The bundled sample corpus (corpus/ with manifest.csv)."""
    return BUNDLED


@pytest.fixture(scope="session")
def shared_pdfs() -> Path:
    """../shared/pdfs, the real municipal PDFs; tests using it skip when it is absent."""
    p = SHARED / "pdfs"
    if not p.is_dir():
        pytest.skip("../shared/pdfs is not present")
    return p


@pytest.fixture(scope="session")
def dev_queries() -> Path:
    """../shared/eval/dev_queries.jsonl; skipped when absent."""
    p = SHARED / "eval" / "dev_queries.jsonl"
    if not p.is_file():
        pytest.skip("../shared/eval is not present")
    return p


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests save screenshots and other artefacts (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def built_index(tmp_path_factory: pytest.TempPathFactory):
    """The bundled corpus built once per session with the real default model (index/build.py).

    Returns the :class:`index.config.Settings` used: ``.index_dir`` is the built index (a temp
    dir), ``.corpus_dir`` the bundled corpus, ``.cache_dir`` the user cache (converted model).
    """
    import os

    from index.build import build_index
    from index.config import Settings, default_cache_dir

    cache = Path(os.environ.get("SEISAKU_CACHE") or default_cache_dir())
    settings = Settings(corpus_dir=BUNDLED, index_dir=tmp_path_factory.mktemp("built") / "index", cache_dir=cache)
    report = build_index(settings, progress=False)
    assert report.n_chunks > 0, report.messages
    return settings


@pytest.fixture(scope="module")
def small_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small corpus (tests.test_store.DOCS) with its built index and embedding cache, once per
    test module; a test that changes it takes ``work`` instead."""
    from tests.test_store import build_small_index

    return build_small_index(tmp_path_factory.mktemp("small-base"))


@pytest.fixture
def work(small_base: Path, tmp_path: Path):
    """A private copy of the small corpus and index for one test (its ``Settings``)."""
    from tests.test_store import copy_small_index

    return copy_small_index(small_base, tmp_path)
