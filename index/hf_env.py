"""Hugging Face switches scoped to one block: hub offline, load-progress bars hidden.

Both the embedder (loading a model folder) and the e5 converter (saving one) use these, so they
live here rather than in either module (which would make the two import each other). Each context
manager restores what it changed on exit: no environment change outlives the call that made it.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Set HF_HUB_OFFLINE=1 and TRANSFORMERS_OFFLINE=1 inside the block; restore them afterwards."""
    saved = {k: os.environ.get(k) for k in OFFLINE_SWITCHES}
    for k in OFFLINE_SWITCHES:
        os.environ[k] = "1"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """Hide transformers' per-load "Loading weights" progress bar inside the block (restored afterwards)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        yield
        return
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()
