"""Exceptions with messages meant for users (printed without a traceback by the CLI and UI).

:class:`SeisakuError` is the one base class of every layer's errors; each layer keeps its own in
its own module (corpus: here; index: :mod:`index.errors`).
"""
from __future__ import annotations


class SeisakuError(Exception):
    """Base class: a failure the user can act on; its message says what to do."""


class ManifestError(SeisakuError):
    """The manifest cannot be used (unreadable, missing required columns)."""

