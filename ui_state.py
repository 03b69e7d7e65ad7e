"""State of the seisaku web app and the plain functions behind its tabs and API (part of ``ui``).

:class:`AppState` holds the settings, the engine (loaded on first use) and the status line;
:func:`open_state` loads the engine or builds a missing index in a background thread. The
``run_*`` functions are what the tabs and the named API endpoints call; :func:`validate_upload`
checks an upload before it is indexed. ``ui.py`` re-exports every name.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

from corpus.errors import SeisakuError
from corpus.readers import SUPPORTED_EXTENSIONS
from corpus.readers.ocr import OCR_READ
from index.config import Settings
from index.errors import IndexMismatchError, IndexMissingError
from search import views_html as V
from search.qtype import question_type, question_type_label
from search.question import MAX_QUESTION_CHARS, clip_question
from search.records import Filters

if TYPE_CHECKING:
    from corpus.records import Chunk
    from index.build import BuildProgress
    from search.engine import Engine

log = logging.getLogger("seisaku.ui")


#: Upload limits: accepted suffixes and the maximum size in bytes.
ALLOWED_SUFFIXES: tuple[str, ...] = tuple(sorted(SUPPORTED_EXTENSIONS))  # one home: corpus.readers
MAX_UPLOAD_BYTES: int = 50 * 1024 * 1024
#: Host names that mean this machine only (besides every address in 127.0.0.0/8 and ::1).
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
#: Search: how many passages are shown as cards, and how many are counted for the chart.
SHOW_K = 10
CHART_K = 30
APP_TITLE = "seisaku — 自治体の行財政改革文書の検索"



# ══ application state ═════════════════════════════════════════════════════════════════════════

class DocumentSource(Protocol):
    """What the 文書 tab and the ``/doc`` page read from the engine (:class:`search.engine.Engine`
    has both methods)."""

    def documents(self) -> list[dict[str, Any]]:
        """One row per indexed document (doc_id, manifest fields, n_chunks, ocr_pages, messages)."""
        ...

    def document_chunks(self, doc_id: str) -> list[Chunk]:
        """The chunks of one document in reading order (empty when unknown)."""
        ...


class AppState:
    """The settings, the (lazily loaded) engine, the build status, and the write lock.

    The engine is thread-safe for searches; adding or removing documents is serialised by
    ``write_lock`` and followed by ``engine.reload()``.
    """

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        """Hold ``settings`` and, when given, an already constructed ``engine``; the user's
        vocabulary files of ``settings`` are added (search.vocab.use_vocab_files)."""
        if settings.vocab_files:
            from search.vocab import use_vocab_files

            use_vocab_files(settings.vocab_files)
        self.settings = settings
        self.engine = engine
        self.status = "準備完了" if engine is not None else "インデックスを読み込んでいません"
        self.error: str | None = None
        self.building = False
        self.build_started: float | None = None
        self.write_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._console = False
        self._stage = ""

    # -- engine -------------------------------------------------------------------------------
    def get_engine(self, _while_building: bool = False) -> Engine:
        """The engine, loading it on first use; raises a :class:`SeisakuError` while building."""
        if self.engine is not None:
            return self.engine
        if self.building and not _while_building:
            raise SeisakuError(f"インデックスを作成中です（{self.status}）。しばらくお待ちください。")
        with self._load_lock:
            if self.engine is None:
                from search.engine import Engine

                self.engine = Engine.from_settings(self.settings)
                self.status = "準備完了"
        return self.engine

    def status_text(self) -> str:
        """The status line: what is happening, with the elapsed time while building."""
        if self.building and self.build_started is not None:
            return f"{self.status}（{time.monotonic() - self.build_started:.0f} 秒経過）"
        return self.status

    def warm_up(self) -> None:
        """Load the embedding model with one tiny search so the first user does not wait for it,
        then read the index's memory-mapped files once into the OS page cache (after a cold
        start at 5M chunks the first searches otherwise wait on the disk: docs/serving.md)."""
        try:
            engine = self.get_engine()
            engine.search("行財政改革", k=1)
            engine.store.warm_page_cache()
        except Exception:  # only an optimisation
            log.debug("warm-up failed", exc_info=True)

    @property
    def ready(self) -> bool:
        """True once the engine is loaded."""
        return self.engine is not None

    def ensure_index(self, console: bool = True) -> None:
        """Load the engine; when there is no index (or an incompatible one) build it first.

        Every :class:`index.build.BuildProgress` goes to :attr:`status` (the status line, e.g.
        「索引を作成中: 埋め込み 120/248 件」); with ``console`` each stage also gets a line on stderr.
        """
        try:
            self.get_engine(_while_building=True)
            return
        except IndexMissingError:
            reason = "インデックスがないため作成します"
        except IndexMismatchError as e:
            reason = f"インデックスを作り直します（{e}）"
        self.building = True
        self.build_started = time.monotonic()
        self.status = reason
        if console:
            print(f"seisaku: {reason}: {self.settings.index_dir}", file=sys.stderr, flush=True)
        try:
            from index.build import build_index

            self._console, self._stage = console, ""
            report = build_index(self.settings, progress=self.on_build_progress)
            for m in report.messages:
                if console:
                    print(str(m), file=sys.stderr)
            summary = report.summary()
            if console and summary:
                print(summary, file=sys.stderr, flush=True)
            self.get_engine(_while_building=True)
            self.building = False
            self.status = f"準備完了（{summary}）" if summary else "準備完了"
        except Exception as e:  # shown in the status line; the app keeps running
            self.building = False
            self.error = str(e)
            self.status = f"インデックスを作成できませんでした: {e}"
            if console:
                traceback.print_exc()
            raise

    def on_build_progress(self, event: BuildProgress) -> None:
        """The build's progress callback: the status line shows :func:`build_status` of ``event``;
        on the console, each new stage gets one line."""
        self.status = build_status(event)
        if self._console and event.stage != self._stage:
            print(f"seisaku: {self.status}", file=sys.stderr, flush=True)
        self._stage = event.stage


def build_status(event: BuildProgress) -> str:
    """The status line of a build step, e.g. 「索引を作成中: 埋め込み 120/248 件」."""
    return f"索引を作成中: {event.text()}"


def open_state(settings: Settings, console: bool = True) -> AppState:
    """The app state for ``settings``: the engine is loaded when the index is usable; otherwise the
    index is built in a background thread (its progress in the status line) and the app can be
    served meanwhile. Other errors (a broken configuration) are raised."""
    state = AppState(settings)
    try:
        state.get_engine()
        threading.Thread(target=state.warm_up, name="seisaku-warm-up", daemon=True).start()
        return state
    except (IndexMissingError, IndexMismatchError):
        state.building = True
        state.status = "インデックスを作成します"

    def build() -> None:
        try:
            state.ensure_index(console=console)
            state.warm_up()
        except Exception:
            pass  # already in the status line (and on the console)

    threading.Thread(target=build, name="seisaku-build", daemon=True).start()
    return state


def _jsonable(x: Any) -> Any:
    """A dataclass / record converted to plain JSON data (``to_dict``/``to_json`` when present)."""
    for name in ("to_dict", "to_json"):
        f = getattr(x, name, None)
        if callable(f):
            return f()
    if is_dataclass(x) and not isinstance(x, type):
        return asdict(x)
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def _filters(prefecture: Sequence[str] | None = None, municipality: Sequence[str] | None = None,
             kind: Sequence[str] | None = None, year: Sequence[str] | None = None) -> Filters:
    def t(v: Sequence[str] | str | None) -> tuple[str, ...]:
        if not v:
            return ()
        if isinstance(v, str):
            v = [v]
        return tuple(str(x) for x in v if str(x).strip())

    return Filters(municipality=t(municipality), prefecture=t(prefecture), kind=t(kind), year=t(year))


def documents_of(engine: DocumentSource) -> list[dict[str, Any]]:
    """The engine's documents as dicts (doc_id, municipality, …, chunks, warnings as strings)."""
    out = []
    for d in engine.documents():
        row = dict(d)
        row["chunks"] = row.get("n_chunks", 0)
        msgs = row.pop("messages", None) or []
        # the per-page "read with OCR" notes are counted in ocr_pages (the OCR column), not listed
        row["warnings"] = [str(m) for m in msgs if not str(m).endswith(OCR_READ)]
        row.setdefault("ocr_pages", sum(1 for m in msgs if str(m).endswith(OCR_READ)))
        out.append(row)
    return out


def document_chunks(engine: DocumentSource, doc_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """(document metadata, its chunks as dicts in reading order) or None when unknown. The
    metadata comes from the document's row, or from its first chunk when the row is missing."""
    meta = next((d for d in documents_of(engine) if d.get("doc_id") == doc_id), None)
    dicts = [c.to_dict() for c in engine.document_chunks(doc_id)]
    if meta is None and not dicts:
        return None
    if meta is None:
        first = dicts[0]
        meta = {k: first.get(k, "") for k in ("municipality", "prefecture", "title", "year", "kind", "url")}
        meta["doc_id"] = doc_id
    return meta, dicts


# ══ plain functions behind the UI and the API ═════════════════════════════════════════════════

#: Shown (and returned by the API as ``notice``) when a question was cut to MAX_QUESTION_CHARS.
TRUNCATED_NOTICE = (f"質問が長すぎるため、先頭の {MAX_QUESTION_CHARS} 文字だけを使いました。"
                    f" / The question was cut to its first {MAX_QUESTION_CHARS} characters.")


def truncation_notice(truncated: bool) -> str:
    """:data:`TRUNCATED_NOTICE` when the question was cut, else ``""``."""
    return TRUNCATED_NOTICE if truncated else ""


def _with_notice(data: dict[str, Any], truncated: bool) -> dict[str, Any]:
    """``data`` with ``truncated`` (bool) and ``notice`` (the Japanese/English notice or "")."""
    data["truncated"] = bool(truncated)
    data["notice"] = truncation_notice(truncated)
    return data


def with_question_type(data: dict[str, Any], question: str) -> dict[str, Any]:
    """``data`` with ``question_type`` (which / compare / wording / fact, :func:`search.qtype.question_type`
    of ``question``) and its Japanese ``question_type_label`` (「どの自治体か」)."""
    qtype = question_type(question or "")
    data["question_type"] = qtype
    data["question_type_label"] = question_type_label(qtype)
    return data


def search_message(engine: Engine) -> str:
    """Why the last search of this thread returned nothing when its filters excluded every
    document (naming them, :func:`search.filters.no_match_message`), else ``""``."""
    from search.answers import not_found_message

    return not_found_message(engine, "")


def run_search(state: AppState, query: str, k: int = SHOW_K, filters: Filters | None = None,
               mode: str = "hybrid", highlight: bool | int = True) -> list[dict[str, Any]]:
    """Ranked passages as ``Result.to_json()`` dicts (``highlight``: see ``Engine.search``);
    ``query`` is cut to MAX_QUESTION_CHARS first."""
    query = clip_question(query)[0]
    if not query:
        return []
    engine = state.get_engine()
    return [r.to_json() for r in engine.search(query, k=int(k), filters=filters, mode=mode, highlight=highlight)]


def run_answer(state: AppState, query: str, filters: Filters | None = None) -> dict[str, Any]:
    """``MunicipalityAnswer.to_dict()`` for ``query`` (cut to MAX_QUESTION_CHARS), with
    ``truncated``/``notice`` and ``question_type``/``question_type_label``."""
    from search.answers import municipality_answer

    query, truncated = clip_question(query)
    if not query:
        return with_question_type(_with_notice({"query": "", "answered": False, "message": "質問を入力してください",
                                                "rows": []}, False), "")
    data = _jsonable(municipality_answer(state.get_engine(), query, filters=filters))
    return with_question_type(_with_notice(data, truncated), query)


def run_compare(state: AppState, topic: str, municipalities: Sequence[str] | None = None, top_n: int = 4) -> tuple[dict[str, Any], Any]:
    """(``ComparisonTable.to_dict()`` with ``truncated``/``notice`` and ``question_type``/
    ``question_type_label``, the table object) for ``topic`` (cut to MAX_QUESTION_CHARS)."""
    from search.answers import compare

    topic, truncated = clip_question(topic)
    names = [m for m in (municipalities or []) if m and str(m).strip()]
    table = compare(state.get_engine(), topic, municipalities=names or None, top_n=int(top_n))
    return with_question_type(_with_notice(_jsonable(table), truncated), topic), table


def run_wording(state: AppState, text: str, k: int = 10, filters: Filters | None = None) -> dict[str, Any]:
    """``WordingResult.to_dict()`` for a draft sentence or theme (cut to MAX_QUESTION_CHARS), with
    ``truncated``/``notice`` and ``question_type``/``question_type_label``."""
    from search.answers import wording

    text, truncated = clip_question(text)
    data = _jsonable(wording(state.get_engine(), text, k=int(k), filters=filters))
    return with_question_type(_with_notice(data, truncated), text)


def validate_upload(path: str | os.PathLike[str] | None, municipality: str, url: str = "",
                    max_bytes: int = MAX_UPLOAD_BYTES) -> list[str]:
    """Problems with an upload before it is indexed (empty list when it may go ahead)."""
    problems = []
    if not path:
        problems.append("ファイルを選んでください。")
    else:
        p = Path(path)
        if p.suffix.lower() not in ALLOWED_SUFFIXES:
            problems.append(f"この種類のファイルは取り込めません: {p.suffix or '（拡張子なし）'}（使えるのは {' '.join(ALLOWED_SUFFIXES)}）")
        try:
            size = p.stat().st_size
        except OSError:
            size = -1
            problems.append("アップロードされたファイルを読めません。")
        if size > max_bytes:
            problems.append(f"ファイルが大きすぎます: {size / 1e6:.1f} MB（上限 {max_bytes / 1e6:.0f} MB）")
        elif size == 0:
            problems.append("ファイルが空です。")
    if not (municipality or "").strip():
        problems.append("自治体名は必須です。")
    if url and not V.safe_url(url):
        problems.append("URL は http:// か https:// で始まるものだけ指定できます。")
    return problems
