"""The index layer's errors (all :class:`corpus.errors.SeisakuError`: the CLI and UI print their
messages without a traceback)."""
from __future__ import annotations

from corpus.errors import SeisakuError


class IndexMismatchError(SeisakuError):
    """The index on disk was built with another model or format; the message says how to rebuild."""


class IndexMissingError(SeisakuError):
    """No index at the given location; the message says how to build one."""


class IndexBusyError(SeisakuError):
    """Another build/add/remove holds the index lock."""


class IndexWriteError(SeisakuError):
    """The index (or the corpus, for add/remove) could not be written: disk full, read-only
    directory, I/O error. The previous index is left as it was; the message says what to check."""
