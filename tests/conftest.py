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
