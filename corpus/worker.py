"""Read and chunk documents in a child process, so that no single document can take a build down.

A document is read by third-party code (pdfium, openpyxl, python-docx, MeCab) that can crash the
interpreter (a segmentation fault), exhaust memory or run for hours. :class:`DocumentWorker` keeps
one child process that reads and chunks one document at a time
(:func:`corpus.document.load_document`) and sends back its :class:`~corpus.document.LoadedDocument`
(chunks, messages, page shapes). When the child dies (a signal, ``os._exit``, the OOM killer)
or a document takes longer than ``max_doc_seconds``, the document gets an error message naming
what happened and the limit, the child is replaced, and the caller goes on with the next
document. ``seisaku build`` (through :func:`corpus.loader.load_corpus` with ``isolate=True``),
``seisaku add`` and uploads in the app all load documents this way.

The child is started from a fork server (``multiprocessing`` "forkserver" context, with the corpus
modules preloaded), so starting or replacing it costs milliseconds and never forks the app's
threads; where forkserver is unavailable, "spawn" is used.
"""
from __future__ import annotations

import multiprocessing as mp
import signal
import time
from pathlib import Path
from typing import Any

from corpus import document
from corpus.document import LoadedDocument
from corpus.limits import DocumentLimits, limit_message
from corpus.readers import ocr as _ocr
from corpus.records import DocumentMeta, IngestMessage

#: Modules the fork server imports once, so that each worker starts ready to read and chunk.
PRELOAD = ["corpus.document", "corpus.chunker", "corpus.readers", "corpus.morph"]


def _serve(conn: Any) -> None:
    """The worker's loop: receive ``(corpus_dir, meta, max_tokens, limits, ocr setup)``, send a
    LoadedDocument; ``None`` ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    while True:
        try:
            req = conn.recv()
        except (EOFError, OSError):
            return
        if req is None:
            return
        corpus_dir, meta, max_tokens, limits, ocr_setup = req
        _ocr.apply_setup(ocr_setup)  # the parent's OCR cache dir and tesseract command
        try:  # the module attribute, looked up at call time (fault-injection tests wrap it)
            out = document.load_document(corpus_dir, meta, max_tokens=max_tokens, limits=limits)
        except Exception as e:  # load_document should not raise; report rather than die
            out = LoadedDocument(meta, messages=[IngestMessage(
                "error", meta.path, f"読み込みに失敗しました / read failed: {type(e).__name__}: {e}")])
        conn.send(out)


def _context() -> Any:
    try:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    except ValueError:  # pragma: no cover - platforms without forkserver
        return mp.get_context("spawn")


def _death(exitcode: int | None) -> str:
    """How a child ended, for messages: ``シグナル SIGSEGV`` or ``終了コード 3``."""
    if exitcode is None:
        return "応答なし"
    if exitcode < 0:
        try:
            return f"シグナル {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"シグナル {-exitcode}"
    return f"終了コード {exitcode}"


class DocumentWorker:
    """One child process that loads documents one at a time (see the module docstring).

    Use as a context manager, or call :meth:`close`. :meth:`load` never raises for anything a
    document does: a crash, a time-out or a broken pipe become an error message on the document.
    """

    def __init__(self, *, max_tokens: int = 400, limits: DocumentLimits | None = None) -> None:
        """A worker with the chunk token budget and the per-document limits it applies."""
        self.max_tokens = max_tokens
        self.limits = limits or DocumentLimits()
        self._ctx = _context()
        self._proc: Any = None
        self._conn: Any = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_serve, args=(child,), name="seisaku-document-worker", daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent

    def _stop(self, kill: bool) -> int | None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is None:
            return None
        if kill and proc.is_alive():
            proc.kill()
        elif not kill:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        if conn is not None:
            conn.close()
        return proc.exitcode

    def load(self, corpus_dir: Path, meta: DocumentMeta) -> LoadedDocument:
        """Read and chunk ``meta``'s file in the worker; a crash or a time-out is an error message."""
        if self._proc is None or not self._proc.is_alive():
            self._stop(kill=True)
            self._start()
        seconds = float(self.limits.max_doc_seconds)
        t0 = time.monotonic()
        try:
            self._conn.send((Path(corpus_dir), meta, self.max_tokens, self.limits, _ocr.current_setup()))
            if self._conn.poll(seconds):
                return self._conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            pass
        elapsed = time.monotonic() - t0
        alive = self._proc is not None and self._proc.is_alive()
        exitcode = self._stop(kill=True)
        if alive and elapsed >= seconds:
            msg = limit_message(
                f"読み込みと分割に {seconds:g} 秒以上かかったため中止し、この文書を飛ばしました"
                f" / reading and chunking took longer than {seconds:g} s; document skipped",
                seconds, "max_doc_seconds",
            )
        else:
            msg = (
                f"この文書の読み込み中に処理プロセスが異常終了しました（{_death(exitcode)}）。"
                f"この文書を飛ばして続けます / the worker reading this document crashed "
                f"(exit {exitcode}); document skipped, the rest goes on"
            )
        return LoadedDocument(meta, messages=[IngestMessage("error", meta.path, msg)])

    def close(self) -> None:
        """End the child process."""
        self._stop(kill=False)

    def __enter__(self) -> "DocumentWorker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
