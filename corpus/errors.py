"""Exceptions with messages meant for users (printed without a traceback by the CLI and UI)."""
from __future__ import annotations


class SeisakuError(Exception):
    """Base class: a failure the user can act on; its message says what to do."""


class ManifestError(SeisakuError):
    """The manifest cannot be used (unreadable, missing required columns)."""


class IndexMismatchError(SeisakuError):
    """The index on disk was built with another model or format; the message says how to rebuild."""


class IndexMissingError(SeisakuError):
    """No index at the given location; the message says how to build one."""
