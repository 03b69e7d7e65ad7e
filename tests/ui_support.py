"""Helpers shared by the app tests (tests/test_ui_client.py, tests/test_ui_browser.py).

The real index comes from the session fixture ``built_index`` of tests/conftest.py (the bundled
corpus built with the real model); when that fixture is absent the index is built here once per
session into a temporary directory. Upload tests work on COPIES of the corpus and index.
"""
from __future__ import annotations

import contextlib
import shutil
import socket
from pathlib import Path
from typing import Any, Iterator

import pytest

from index.config import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "corpus"

#: Debian's chromium, launched by Playwright without any browser download.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

_OWN_BUILD: dict[str, Settings] = {}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _settings_from(value: Any) -> Settings:
    """Settings for what ``built_index`` returns (Settings, an index path, or an object with them)."""
    if isinstance(value, Settings):
        return value
    for name in ("settings",):
        v = getattr(value, name, None)
        if isinstance(v, Settings):
            return v
    if isinstance(value, dict) and isinstance(value.get("settings"), Settings):
        return value["settings"]
    index_dir = getattr(value, "index_dir", None) or (value.get("index_dir") if isinstance(value, dict) else None) or value
    return load_settings(corpus_dir=BUNDLED, index_dir=Path(index_dir))


def real_settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of the real index of the bundled corpus (``built_index`` or a build of our own).

    ``SEISAKU_UI_TEST_INDEX=<dir>`` (development only) uses an index already built from the
    bundled corpus instead.
    """
    import os

    if os.environ.get("SEISAKU_UI_TEST_INDEX"):
        return load_settings(corpus_dir=BUNDLED, index_dir=Path(os.environ["SEISAKU_UI_TEST_INDEX"]))
    try:
        return _settings_from(request.getfixturevalue("built_index"))
    except pytest.FixtureLookupError:
        pass
    if "s" not in _OWN_BUILD:
        from index.build import build_index

        s = load_settings(corpus_dir=BUNDLED, index_dir=tmp_path_factory.mktemp("ui-index") / "index")
        report = build_index(s, progress=False)
        if not report.n_chunks:
            pytest.skip(f"the bundled corpus did not build: {report.summary()}")
        _OWN_BUILD["s"] = s
    return _OWN_BUILD["s"]


def writable_copy(settings: Settings, dst: Path) -> Settings:
    """A copy of the corpus and the index under ``dst`` (never write into the repository's corpus/)."""
    corpus = dst / "corpus"
    shutil.copytree(settings.corpus_dir, corpus, ignore=shutil.ignore_patterns("*.py", "__pycache__", "readers", "uploads"))
    index = dst / "index"
    shutil.copytree(settings.index_dir, index)
    return settings.with_overrides(corpus_dir=corpus, index_dir=index)


@contextlib.contextmanager
def launched(settings: Settings, auth: str | None = None) -> Iterator[str]:
    """The app for ``settings`` launched in this process on a free port; yields its URL."""
    import ui
    from search.engine import Engine

    demo, url = ui.launch_app(Engine.from_settings(settings), host="127.0.0.1", port=free_port(), auth=auth,
                              prevent_thread_lock=True, quiet=True)
    try:
        yield url.rstrip("/")
    finally:
        demo.close()
