"""Exceptions with messages meant for users (printed without a traceback by the CLI and UI).

:class:`SeisakuError` is the one base class of every layer's errors; each layer keeps its own in
its own module (corpus: here; index: :mod:`index.errors`). The index errors that used to live here
are still importable from this module (looked up on first use, so corpus imports nothing from
index when it is loaded).
"""
from __future__ import annotations

from typing import Any


class SeisakuError(Exception):
    """Base class: a failure the user can act on; its message says what to do."""


class ManifestError(SeisakuError):
    """The manifest cannot be used (unreadable, missing required columns)."""


#: Names kept importable from here for older imports; they live in index.errors.
_MOVED_TO_INDEX = frozenset({"IndexMismatchError", "IndexMissingError", "IndexBusyError", "IndexWriteError"})


def __getattr__(name: str) -> Any:
    """``from corpus.errors import IndexMismatchError`` still works: the class of :mod:`index.errors`."""
    if name in _MOVED_TO_INDEX:
        from index import errors

        return getattr(errors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
