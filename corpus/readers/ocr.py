"""OCR of PDF pages without a usable text layer, with Tesseract's command line.

The PDF reader (:mod:`corpus.readers.pdf`) hands over the pages whose text layer is empty (scans,
and text converted to outlines) or mostly garbage. Each page is rendered with pypdfium2 at
:data:`DPI` (the page's ``/Rotate`` applied, so landscape pages come out upright), written to
Tesseract as a grayscale PNM on stdin, and read with ``tesseract stdin stdout -l jpn --psm 3``.
Pages are OCR'd in parallel (a thread pool of ``os.cpu_count()`` workers, each running one
single-threaded ``tesseract`` process) with a tqdm bar on stderr.

Results are cached as text files under ``<cache dir>/ocr/`` keyed by the sha256 of the rendered
image + DPI + Tesseract version + languages + page segmentation mode, so a rebuild never OCRs a
page again. The cache dir is :data:`CACHE_DIR` when set, else ``$SEISAKU_CACHE/ocr``, else
``<user cache dir>/seisaku/ocr`` — the same place as ``index.config.Settings.cache_dir``.

The build sets :data:`CACHE_DIR` to ``Settings.cache_dir / "ocr"``, and the document worker hands
both settings to its child process (:func:`current_setup`, :func:`apply_setup`).

The command is :data:`TESSERACT_CMD` when set, else ``$SEISAKU_TESSERACT``, else ``tesseract``.
Without it (or without the ``jpn`` language data) :func:`tesseract_info` is None and the reader
keeps its "needs OCR" warnings.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from corpus.records import Chunk, Page

#: Render resolution for OCR (Tesseract reads Japanese best at 300 dpi and above).
DPI = 300
#: Tesseract languages: ``jpn`` reads the horizontal pages of these documents as well as
#: ``jpn+jpn_vert`` at 40 % of its time (4.6 s against 11.9 s for one A4 page on this machine).
LANGUAGES = "jpn"
#: Page segmentation mode 3: automatic layout analysis (columns, tables, headings).
PSM = 3
#: Overrides (None: use the environment / the default); a test or the build may set these.
TESSERACT_CMD: str | None = None
CACHE_DIR: Path | None = None
#: Environment variable naming the tesseract command.
TESSERACT_ENV = "SEISAKU_TESSERACT"
#: Rendered pages whose darkest pixel is at least this light are blank: not OCR'd.
BLANK_MIN_PIXEL = 235
#: Version of the text post-processing (:func:`clean_ocr_text`); part of the cache key.
CLEAN_VERSION = "1"

OCR_READ = "OCR で読み取りました / read with OCR (Tesseract)"


@dataclass(frozen=True)
class TesseractInfo:
    """A usable Tesseract: its command, version line and installed languages."""

    command: str
    version: str
    languages: tuple[str, ...]


@dataclass(frozen=True)
class OcrPage:
    """The OCR result of one page: its 0-based index, text, and whether it came from the cache."""

    index: int
    text: str
    cached: bool = False


def tesseract_command() -> str:
    """The tesseract command: :data:`TESSERACT_CMD`, else ``$SEISAKU_TESSERACT``, else ``tesseract``."""
    return TESSERACT_CMD or os.environ.get(TESSERACT_ENV) or "tesseract"


@lru_cache(maxsize=8)
def _probe(command: str) -> TesseractInfo | None:
    exe = shutil.which(command)
    if exe is None:
        return None
    try:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
        langs = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    first = (version.stdout or version.stderr).strip().splitlines()
    names = tuple(line.strip() for line in (langs.stdout or "").splitlines()[1:] if line.strip())
    if version.returncode != 0 or not first:
        return None
    return TesseractInfo(exe, first[0], names)


def tesseract_info() -> TesseractInfo | None:
    """The usable Tesseract (None when the command is missing or broken); probed once per command."""
    return _probe(tesseract_command())


def missing_languages(info: TesseractInfo, languages: str = LANGUAGES) -> list[str]:
    """The languages of ``languages`` (``jpn+jpn_vert``) that ``info`` lacks."""
    return [lang for lang in languages.split("+") if lang not in info.languages]


def default_cache_dir() -> Path:
    """Where OCR results are cached: :data:`CACHE_DIR`, else ``$SEISAKU_CACHE/ocr``, else
    ``<user cache dir>/seisaku/ocr``."""
    if CACHE_DIR is not None:
        return Path(CACHE_DIR)
    env = os.environ.get("SEISAKU_CACHE")
    if env:
        return Path(env).expanduser() / "ocr"
    import platformdirs

    return Path(platformdirs.user_cache_dir("seisaku", appauthor=False)) / "ocr"


@dataclass(frozen=True)
class OcrSetup:
    """This process's OCR settings (cache dir and tesseract command), as the document worker
    (:mod:`corpus.worker`) hands them to its child process with every document."""

    cache_dir: Path
    command: str


def current_setup() -> OcrSetup:
    """The OCR settings in force in this process."""
    return OcrSetup(default_cache_dir(), tesseract_command())


def apply_setup(setup: OcrSetup | None) -> None:
    """Use ``setup`` in this process (the worker's child: the parent's settings win over the
    environment the child started with). None leaves everything as it is."""
    global CACHE_DIR, TESSERACT_CMD
    if setup is not None:
        CACHE_DIR, TESSERACT_CMD = Path(setup.cache_dir), setup.command


def cache_key(image: bytes, *, dpi: int, version: str, languages: str, psm: int) -> str:
    """The cache key of one rendered page: sha256 over the image bytes and everything that
    changes the OCR result (DPI, Tesseract version, languages, PSM, post-processing version)."""
    h = hashlib.sha256()
    h.update(f"{dpi}\x1f{version}\x1f{languages}\x1f{psm}\x1f{CLEAN_VERSION}\x1f".encode())
    h.update(image)
    return h.hexdigest()


class OcrCache:
    """OCR texts as files ``<dir>/<key[:2]>/<key>.txt``, written atomically (safe across
    processes: the last writer wins with the same text)."""

    def __init__(self, directory: Path) -> None:
        """A cache in ``directory`` (created on first write)."""
        self.dir = Path(directory)

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.txt"

    def get(self, key: str) -> str | None:
        """The cached text of ``key``, or None."""
        try:
            return self._path(key).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def put(self, key: str, text: str) -> None:
        """Store ``text`` under ``key``; a cache that cannot be written is skipped silently."""
        p = self._path(key)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(f"{p.name}.{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, p)
        except OSError:
            pass


_JA = r"\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff60"
_JA_JA = re.compile(rf"(?<=[{_JA}]) (?=[{_JA}])")
_GAP = re.compile(r" {3,}")
_JA_DIGIT = re.compile(rf"(?<=[{_JA}]) (?=[0-9])|(?<=[0-9]) (?=[{_JA}])")


def clean_ocr_text(text: str) -> str:
    """Tesseract's text made searchable: spaces between Japanese characters dropped
    (「定 時 株 主 総 会」→「定時株主総会」), a single space between Japanese and a digit dropped
    (「第 27 期」→「第27期」); gaps of two or more spaces (between columns) stay as two spaces;
    trailing spaces, form feeds and runs of blank lines removed."""
    lines = []
    for line in text.replace("\f", "\n").splitlines():
        line = _JA_JA.sub("", line)
        line = _GAP.sub("  ", _JA_DIGIT.sub("", line)).rstrip()
        lines.append(line)
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return out


def pnm_bytes(width: int, height: int, pixels: bytes) -> bytes:
    """A binary PGM (P5) of ``height`` rows of ``width`` 8-bit gray pixels."""
    return b"P5\n%d %d\n255\n" % (width, height) + pixels


def render_page(pdf: Any, index: int, dpi: int = DPI) -> tuple[bytes, bool]:
    """Page ``index`` of the open pypdfium2 document rendered in gray at ``dpi`` as PGM bytes
    (``/Rotate`` applied), and whether the page is blank (no pixel darker than
    :data:`BLANK_MIN_PIXEL`)."""
    import numpy as np

    page = pdf[index]
    try:
        bitmap = page.render(scale=dpi / 72, grayscale=True)
        try:
            arr = np.array(bitmap.to_numpy(), dtype=np.uint8, copy=True)
        finally:
            bitmap.close()
    finally:
        page.close()
    if arr.ndim == 3:
        arr = arr[:, :, 0]
    blank = bool(arr.size == 0 or int(arr.min()) >= BLANK_MIN_PIXEL)
    h, w = arr.shape
    return pnm_bytes(w, h, np.ascontiguousarray(arr).tobytes()), blank


def run_tesseract(info: TesseractInfo, image: bytes, *, dpi: int = DPI, languages: str = LANGUAGES,
                  psm: int = PSM, timeout: float | None = None) -> str:
    """Tesseract's text of one PNM image (stdin → stdout), single-threaded; raises
    ``subprocess.CalledProcessError`` / ``TimeoutExpired`` when it fails."""
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    r = subprocess.run(
        [info.command, "stdin", "stdout", "-l", languages, "--psm", str(psm), "--dpi", str(dpi)],
        input=image, capture_output=True, env=env, timeout=timeout, check=True,
    )
    return r.stdout.decode("utf-8", errors="replace")


def ocr_pages(
    pdf: Any,
    indices: Sequence[int],
    *,
    info: TesseractInfo,
    cache: OcrCache | None = None,
    dpi: int = DPI,
    languages: str = LANGUAGES,
    psm: int = PSM,
    workers: int | None = None,
    deadline: float | None = None,
    progress: bool | None = None,
    ocr: Callable[..., str] | None = None,
) -> tuple[dict[int, OcrPage], list[tuple[int, str]]]:
    """OCR the 0-based pages ``indices`` of the open pypdfium2 document ``pdf``.

    Pages are rendered here, one at a time (pdfium is not thread-safe), and OCR'd by a pool of
    ``workers`` threads (default ``os.cpu_count()``), each running one tesseract process; at most
    two pages per worker wait rendered in memory. Cached pages are not OCR'd again; new results
    are cached. Blank pages give empty text. ``deadline`` (a ``time.monotonic()`` value) stops
    starting new pages when passed. ``progress`` shows a tqdm bar on stderr (None: when stderr
    is a terminal). ``ocr`` reads one image (default: :func:`run_tesseract`, looked up at call
    time).

    Returns the results by page index and ``(index, reason)`` for every page that was not read
    (tesseract failed, or the deadline passed).
    """
    from tqdm.auto import tqdm

    read = ocr or run_tesseract
    workers = max(1, workers or os.cpu_count() or 1)
    results: dict[int, OcrPage] = {}
    failures: list[tuple[int, str]] = []
    pending: dict[Future[str], tuple[int, str]] = {}
    bar = tqdm(total=len(indices), desc="OCR", unit="ページ", file=sys.stderr,
               disable=(not sys.stderr.isatty()) if progress is None else not progress)

    def collect(block_until: int) -> None:
        while len(pending) > block_until:
            fut = next(iter(pending))
            index, key = pending.pop(fut)
            try:
                text = clean_ocr_text(fut.result())
            except Exception as e:  # tesseract crashed or timed out: this page only
                failures.append((index, f"{type(e).__name__}: {e}"))
            else:
                results[index] = OcrPage(index, text)
                if cache is not None:
                    cache.put(key, text)
            bar.update(1)

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seisaku-ocr") as pool:
            for index in indices:
                if deadline is not None and time.monotonic() >= deadline:
                    failures.append((index, "deadline"))
                    bar.update(1)
                    continue
                try:
                    image, blank = render_page(pdf, index, dpi)
                except Exception as e:
                    failures.append((index, f"render: {type(e).__name__}: {e}"))
                    bar.update(1)
                    continue
                if blank:
                    results[index] = OcrPage(index, "")
                    bar.update(1)
                    continue
                key = cache_key(image, dpi=dpi, version=info.version, languages=languages, psm=psm)
                hit = cache.get(key) if cache is not None else None
                if hit is not None:
                    results[index] = OcrPage(index, hit, cached=True)
                    bar.update(1)
                    continue
                timeout = None if deadline is None else max(1.0, deadline - time.monotonic())
                fut = pool.submit(read, info, image, dpi=dpi, languages=languages, psm=psm, timeout=timeout)
                pending[fut] = (index, key)
                collect(2 * workers)
            collect(0)
    finally:
        bar.close()
    return results, failures


def ocr_page_numbers(pages: Iterable[Page]) -> set[int]:
    """The numbers of the pages that were read with OCR."""
    return {p.number for p in pages if p.ocr}


def mark_ocr_chunks(chunks: Iterable[Chunk], pages: Iterable[Page]) -> None:
    """Set ``chunk.ocr`` on every chunk whose page range holds a page read with OCR."""
    numbers = ocr_page_numbers(pages)
    if not numbers:
        return
    for c in chunks:
        if any(c.page_start <= n <= c.page_end for n in numbers):
            c.ocr = True
