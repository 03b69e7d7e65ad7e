"""The seisaku web app (Gradio): 検索 / 比較 / 文例 / 文書 tabs and named API endpoints.

Run ``python ui.py`` (or ``seisaku serve``): the index is built first when there is none (progress on
the console and in the status line at the top of the page), then the app serves on
http://127.0.0.1:7860 — loopback only unless ``--host`` says otherwise; ``--auth user:password``
adds a login, rate-limited per client address (:class:`LoginLimiter`: 5 wrong passwords within
60 s lock the address out for 60 s, doubling up to an hour). No public share link is ever created.

Every question (tabs and API) is cut to ``search.question.MAX_QUESTION_CHARS`` characters before
any view sees it; the API answers carry ``truncated`` and ``notice``, the tabs show the notice.

Named API endpoints for ``gradio_client`` (see docs/ui.md): ``/search``, ``/answer``, ``/compare``,
``/wording`` — each returns JSON-able dicts. The route ``/doc/<doc_id>#chunk-<chunk_id>`` shows a
document's chunks as escaped HTML with one anchor per chunk.

Security: every document text and user input shown in HTML goes through
:func:`search.views_html.esc`; only ``gr.HTML`` with markup built in :mod:`search.views_html` is used
for document text (never ``gr.Markdown``). Uploads are checked for type and size before they reach
``index.update.add_document``, which stores them under the corpus with a sanitised name.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

import gradio as gr
from fastapi import Request
from fastapi.routing import APIRoute
from fastapi.responses import HTMLResponse
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.middleware import Middleware

from corpus.errors import SeisakuError
from corpus.readers import SUPPORTED_EXTENSIONS
from corpus.readers.ocr import OCR_READ
from index.config import Settings, load_settings
from index.errors import IndexMismatchError, IndexMissingError
from search import views_html as V
from search.question import MAX_QUESTION_CHARS, clip_question
from search.records import Filters

if TYPE_CHECKING:
    from corpus.records import Chunk
    from index.build import BuildProgress, BuildReport
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
        """Hold ``settings`` and, when given, an already constructed ``engine``."""
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
        """Load the embedding model with one tiny search so the first user does not wait for it."""
        try:
            self.get_engine().search("行財政改革", k=1)
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
    """``MunicipalityAnswer.to_dict()`` for ``query`` (cut to MAX_QUESTION_CHARS), with ``truncated``/``notice``."""
    from search.answers import municipality_answer

    query, truncated = clip_question(query)
    if not query:
        return _with_notice({"query": "", "answered": False, "message": "質問を入力してください", "rows": []}, False)
    return _with_notice(_jsonable(municipality_answer(state.get_engine(), query, filters=filters)), truncated)


def run_compare(state: AppState, topic: str, municipalities: Sequence[str] | None = None, top_n: int = 4) -> tuple[dict[str, Any], Any]:
    """(``ComparisonTable.to_dict()`` with ``truncated``/``notice``, the table object) for ``topic``
    (cut to MAX_QUESTION_CHARS)."""
    from search.answers import compare

    topic, truncated = clip_question(topic)
    names = [m for m in (municipalities or []) if m and str(m).strip()]
    table = compare(state.get_engine(), topic, municipalities=names or None, top_n=int(top_n))
    return _with_notice(_jsonable(table), truncated), table


def run_wording(state: AppState, text: str, k: int = 10, filters: Filters | None = None) -> dict[str, Any]:
    """``WordingResult.to_dict()`` for a draft sentence or theme (cut to MAX_QUESTION_CHARS), with
    ``truncated``/``notice``."""
    from search.answers import wording

    text, truncated = clip_question(text)
    return _with_notice(_jsonable(wording(state.get_engine(), text, k=int(k), filters=filters)), truncated)


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


# ══ the Blocks app ════════════════════════════════════════════════════════════════════════════

def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an API function so that a :class:`SeisakuError` reaches the client as its message."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except SeisakuError as e:
            raise gr.Error(str(e)) from e

    return wrapper


def _err_html(e: BaseException) -> str:
    if isinstance(e, SeisakuError):
        return V.message_html(str(e), "error")
    log.exception("ui handler failed")
    return V.message_html(f"エラーが発生しました: {type(e).__name__}: {e}", "error")


def _status_html(state: AppState) -> str:
    kind = "error" if state.error else ("info" if state.ready else "empty")
    return f'<div class="sk-status">{V.message_html("状態: " + state.status_text(), kind)}</div>'


def _to_state(target: AppState | Settings | Engine) -> AppState:
    if isinstance(target, AppState):
        return target
    if isinstance(target, Settings):
        return AppState(target)
    return AppState(target.settings, engine=target)


#: Exported CSV files (and Gradio's cached copies) are deleted after this many seconds.
CSV_MAX_AGE_S = 3600


def prune_old_dirs(root: Path, max_age_s: float) -> int:
    """Delete the subdirectories of ``root`` not modified for ``max_age_s`` seconds; returns how
    many were deleted (errors are ignored: another request may be pruning too)."""
    import shutil
    import time

    now, n = time.time(), 0
    for d in root.iterdir() if root.is_dir() else ():
        try:
            if d.is_dir() and now - d.stat().st_mtime > max_age_s:
                shutil.rmtree(d, ignore_errors=True)
                n += 1
        except OSError:
            continue
    return n


def build_app(engine_or_settings: AppState | Settings | Engine) -> gr.Blocks:
    """The Gradio Blocks of the app for an ``Engine``, ``Settings`` (engine loaded on first use)
    or an :class:`AppState` (e.g. from :func:`open_state`, building the index in the background).

    Launch it with :func:`launch_app` (which adds the CSS, the copy script and the ``/doc`` route);
    ``demo.seisaku_state`` holds the :class:`AppState`.
    """
    state = _to_state(engine_or_settings)
    # comparison CSVs: one directory per app, removed at exit; files older than CSV_MAX_AGE_S are
    # pruned on each export (Gradio's copies in its cache go with delete_cache)
    csv_root = tempfile.TemporaryDirectory(prefix="seisaku-csv-")

    with gr.Blocks(title=APP_TITLE, analytics_enabled=False,
                   delete_cache=(CSV_MAX_AGE_S, CSV_MAX_AGE_S)) as demo:
        demo.seisaku_csv_root = csv_root  # lives as long as the app
        gr.HTML('<h1 style="margin:0;font-size:1.5em">seisaku　自治体の行財政改革文書を横断検索</h1>'
                '<div class="sk-sub">他の自治体の取組を、出典（自治体・文書・節 › 項目・所管課・ページ）つきで探せます。</div>')
        status = gr.HTML(_status_html(state), elem_id="sk-status")
        timer = gr.Timer(1.0, active=not state.ready)

        # ── 検索 ────────────────────────────────────────────────────────────────────────────
        with gr.Tab("検索", id="search"):
            with gr.Row():
                q = gr.Textbox(label="質問", placeholder="例: 火葬場の建て替えに民間資金を使うか検討している自治体",
                               lines=1, scale=5, elem_id="sk-query")
                btn = gr.Button("検索", variant="primary", scale=1, elem_id="sk-search-btn")
            with gr.Accordion("絞り込み", open=False):
                with gr.Row():
                    f_pref = gr.Dropdown(label="都道府県", choices=[], multiselect=True, elem_id="sk-f-pref")
                    f_muni = gr.Dropdown(label="自治体", choices=[], multiselect=True, elem_id="sk-f-muni")
                    f_kind = gr.Dropdown(label="文書の種類", choices=[], multiselect=True, elem_id="sk-f-kind")
                    f_year = gr.Dropdown(label="年度", choices=[], multiselect=True, elem_id="sk-f-year")
            answer_html = gr.HTML(V.message_html("質問を入力して「検索」を押すと、該当する自治体の一覧と根拠の箇所を出典つきで表示します。"),
                                  elem_id="sk-answer")
            with gr.Row():
                with gr.Column(scale=3):
                    cards_html = gr.HTML(elem_id="sk-cards")
                with gr.Column(scale=2):
                    chart_html = gr.HTML(elem_id="sk-chart")

        # ── 比較 ────────────────────────────────────────────────────────────────────────────
        with gr.Tab("比較", id="compare"):
            with gr.Row():
                c_topic = gr.Textbox(label="テーマ", placeholder="例: 公共施設の保有量の削減", scale=4, elem_id="sk-topic")
                c_munis = gr.Dropdown(label="比較する自治体（空なら上位の自治体）", choices=[], multiselect=True,
                                      scale=4, elem_id="sk-c-munis")
                c_top = gr.Slider(2, 8, value=4, step=1, label="上位何自治体", scale=2)
            c_btn = gr.Button("比較", variant="primary", elem_id="sk-compare-btn")
            c_html = gr.HTML(elem_id="sk-compare")
            c_file = gr.File(label="CSV（UTF-8 BOM 付き、Excel でそのまま開けます）", interactive=False, elem_id="sk-csv")

        # ── 文例 ────────────────────────────────────────────────────────────────────────────
        with gr.Tab("文例", id="wording"):
            with gr.Row():
                w_text = gr.Textbox(label="下書きの文またはテーマ", placeholder="例: 職員一人ひとりがコストを意識する",
                                    lines=2, scale=5, elem_id="sk-wording-text")
                w_k = gr.Slider(3, 30, value=10, step=1, label="件数", scale=1)
            with gr.Accordion("絞り込み", open=False, elem_id="sk-w-filters"):
                with gr.Row():
                    w_pref = gr.Dropdown(label="都道府県", choices=[], multiselect=True, elem_id="sk-w-pref")
                    w_muni = gr.Dropdown(label="自治体", choices=[], multiselect=True, elem_id="sk-w-muni")
                    w_kind = gr.Dropdown(label="文書の種類", choices=[], multiselect=True, elem_id="sk-w-kind")
                    w_year = gr.Dropdown(label="年度", choices=[], multiselect=True, elem_id="sk-w-year")
            w_btn = gr.Button("文例を探す", variant="primary", elem_id="sk-wording-btn")
            w_html = gr.HTML(elem_id="sk-wording")

        # ── 文書 ────────────────────────────────────────────────────────────────────────────
        with gr.Tab("文書", id="documents"):
            d_table = gr.HTML(elem_id="sk-docs")
            d_refresh = gr.Button("一覧を更新", size="sm")
            with gr.Accordion("文書を追加", open=True):
                gr.HTML(f'<div class="sk-sub">取り込めるファイル: {V.esc(" ".join(ALLOWED_SUFFIXES))}、'
                        f'{MAX_UPLOAD_BYTES // (1024 * 1024)} MB まで。</div>')
                with gr.Row():
                    u_file = gr.File(label="ファイル", file_types=list(ALLOWED_SUFFIXES), type="filepath",
                                     elem_id="sk-upload", scale=2)
                    with gr.Column(scale=3):
                        with gr.Row():
                            u_muni = gr.Textbox(label="自治体（必須）", elem_id="sk-u-muni")
                            u_pref = gr.Textbox(label="都道府県", elem_id="sk-u-pref")
                            u_year = gr.Textbox(label="年度", placeholder="2024", elem_id="sk-u-year")
                        with gr.Row():
                            u_title = gr.Textbox(label="題名", elem_id="sk-u-title")
                            u_kind = gr.Dropdown(label="種類", choices=[], allow_custom_value=True, elem_id="sk-u-kind")
                        u_url = gr.Textbox(label="URL（任意）", placeholder="https://", elem_id="sk-u-url")
                u_btn = gr.Button("追加して索引を更新", variant="primary", elem_id="sk-upload-btn")
                u_msg = gr.HTML(elem_id="sk-upload-msg")
            with gr.Accordion("文書を削除", open=False):
                with gr.Row():
                    r_doc = gr.Dropdown(label="文書 ID", choices=[], elem_id="sk-r-doc", scale=4)
                    r_delete = gr.Checkbox(label="ファイルも削除する", value=False, scale=1)
                r_btn = gr.Button("削除", variant="stop", elem_id="sk-remove-btn")
                r_msg = gr.HTML(elem_id="sk-remove-msg")

        # ── handlers ────────────────────────────────────────────────────────────────────────
        choice_outputs = [f_pref, f_muni, f_kind, f_year, c_munis, u_kind, r_doc, w_pref, w_muni, w_kind, w_year]

        def choice_updates() -> list[Any]:
            if not state.ready:
                return [gr.update() for _ in choice_outputs]
            e = state.get_engine()
            munis, prefs, kinds, years = e.municipalities(), e.prefectures(), e.kinds(), e.years()
            docs = [d["doc_id"] for d in e.documents()]
            return [gr.update(choices=prefs), gr.update(choices=munis), gr.update(choices=kinds),
                    gr.update(choices=years), gr.update(choices=munis), gr.update(choices=kinds),
                    gr.update(choices=docs), gr.update(choices=prefs), gr.update(choices=munis),
                    gr.update(choices=kinds), gr.update(choices=years)]

        def docs_html() -> str:
            if not state.ready:
                return V.message_html(state.status, "empty")
            return V.render_documents(documents_of(state.get_engine()))

        def on_load() -> list[Any]:
            return [_status_html(state), gr.Timer(active=not state.ready), docs_html(), *choice_updates()]

        def on_tick() -> list[Any]:
            if state.ready or state.error:
                return [_status_html(state), gr.Timer(active=False), docs_html(), *choice_updates()]
            return [_status_html(state), gr.Timer(active=True), gr.update(), *[gr.update() for _ in choice_outputs]]

        load_outputs = [status, timer, d_table, *choice_outputs]
        demo.load(on_load, None, load_outputs, api_visibility="private", queue=False)
        timer.tick(on_tick, None, load_outputs, api_visibility="private", queue=False)

        def ui_search(query: str, prefs: list[str], munis: list[str], kinds: list[str], years: list[str]):
            query, truncated = clip_question(query)
            if not query:
                return V.message_html("質問を入力してください", "empty"), "", ""
            try:
                flt = _filters(prefs, munis, kinds, years)
                results = run_search(state, query, k=CHART_K, filters=flt, highlight=SHOW_K)
                why_empty = "" if results else search_message(state.get_engine())
                answer = run_answer(state, query, filters=flt)
            except Exception as e:
                return _err_html(e), "", ""
            chart = V.bar_chart_svg(V.match_counts(results), f"自治体別の該当件数（上位 {len(results)} 件中）")
            prefs_count = V.match_counts(results, "prefecture")
            if len(prefs_count) > 1:
                chart += V.bar_chart_svg(prefs_count, "都道府県別の該当件数")
            return (V.notice_html(truncation_notice(truncated)) + V.heading("自治体ごとの回答") + V.render_answer(answer),
                    V.heading("該当箇所") + V.render_results(results[:SHOW_K], query, message=why_empty), chart)

        search_inputs = [q, f_pref, f_muni, f_kind, f_year]
        search_outputs = [answer_html, cards_html, chart_html]
        btn.click(ui_search, search_inputs, search_outputs, api_visibility="private")
        q.submit(ui_search, search_inputs, search_outputs, api_visibility="private")

        def ui_compare(topic: str, munis: list[str], top: float):
            if not (topic or "").strip():
                return V.message_html("テーマを入力してください", "empty"), None
            try:
                data, table = run_compare(state, topic, munis or None, int(top))
            except Exception as e:
                return _err_html(e), None
            csv_path = None
            to_csv = getattr(table, "to_csv", None)
            if callable(to_csv):
                prune_old_dirs(Path(csv_root.name), CSV_MAX_AGE_S)
                d = Path(tempfile.mkdtemp(dir=csv_root.name))
                csv_path = d / "比較.csv"
                csv_path.write_bytes(to_csv())
            return V.notice_html(data.get("notice", "")) + V.render_comparison(data), (str(csv_path) if csv_path else None)

        c_btn.click(ui_compare, [c_topic, c_munis, c_top], [c_html, c_file], api_visibility="private")
        c_topic.submit(ui_compare, [c_topic, c_munis, c_top], [c_html, c_file], api_visibility="private")

        def ui_wording(text: str, k: float, prefs: list[str], munis: list[str], kinds: list[str], years: list[str]):
            if not (text or "").strip():
                return V.message_html("文またはテーマを入力してください", "empty")
            try:
                found = run_wording(state, text, int(k), filters=_filters(prefs, munis, kinds, years))
                return V.notice_html(found.get("notice", "")) + V.render_wording(found)
            except Exception as e:
                return _err_html(e)

        wording_inputs = [w_text, w_k, w_pref, w_muni, w_kind, w_year]
        w_btn.click(ui_wording, wording_inputs, [w_html], api_visibility="private")
        w_text.submit(ui_wording, wording_inputs, [w_html], api_visibility="private")

        def ui_upload(file: str | None, muni: str, pref: str, title: str, year: str, kind: str, url: str,
                      progress: gr.Progress = gr.Progress()):
            limit = min(MAX_UPLOAD_BYTES, int(getattr(state.settings, "max_file_bytes", MAX_UPLOAD_BYTES) or MAX_UPLOAD_BYTES))
            problems = validate_upload(file, muni, url, max_bytes=limit)
            if problems:
                return ["".join(V.message_html(p, "error") for p in problems), gr.update(), *[gr.update() for _ in choice_outputs]]
            from index.update import add_document

            progress(0.1, desc="検証しました。索引を更新しています…")
            try:
                with state.write_lock:
                    report = add_document(state.settings, Path(file), municipality=muni.strip(), prefecture=(pref or "").strip(),
                                          title=(title or "").strip() or Path(file).stem, year=(year or "").strip(),
                                          kind=(kind or "").strip(), url=(url or "").strip())
                    progress(0.8, desc="検索エンジンを再読み込みしています…")
                    if report.ok:
                        state.get_engine().reload()
            except Exception as e:
                return [_err_html(e), gr.update(), *[gr.update() for _ in choice_outputs]]
            progress(1.0, desc="完了")
            msgs = [V.message_html(report.summary(), "info" if report.ok else "error")]
            msgs += [V.message_html(str(m), "error" if m.severity == "error" else "empty") for m in report.messages]
            return ["".join(msgs), docs_html(), *choice_updates()]

        u_btn.click(ui_upload, [u_file, u_muni, u_pref, u_title, u_year, u_kind, u_url],
                    [u_msg, d_table, *choice_outputs], api_visibility="private", concurrency_id="write", concurrency_limit=1)

        def ui_remove(doc_id: str | None, delete_file: bool):
            if not doc_id:
                return [V.message_html("削除する文書を選んでください", "empty"), gr.update(), *[gr.update() for _ in choice_outputs]]
            from index.update import remove_document

            try:
                with state.write_lock:
                    report = remove_document(state.settings, doc_id, delete_file=bool(delete_file))
                    if report.ok:
                        state.get_engine().reload()
            except Exception as e:
                return [_err_html(e), gr.update(), *[gr.update() for _ in choice_outputs]]
            msgs = [V.message_html(report.summary(), "info" if report.ok else "error")]
            msgs += [V.message_html(str(m), "empty") for m in report.messages]
            return ["".join(msgs), docs_html(), *choice_updates()]

        r_btn.click(ui_remove, [r_doc, r_delete], [r_msg, d_table, *choice_outputs], api_visibility="private",
                    concurrency_id="write", concurrency_limit=1)
        d_refresh.click(lambda: [docs_html(), *choice_updates()], None, [d_table, *choice_outputs],
                        api_visibility="private")

        # ── named API endpoints (JSON) ──────────────────────────────────────────────────────
        def search(query: str, k: int = 10, prefecture: list[str] | None = None, municipality: list[str] | None = None,
                   kind: list[str] | None = None, year: list[str] | None = None, mode: str = "hybrid") -> dict:
            """Ranked passages with citations: {"query", "results": [Result.to_json(), …], "message",
            "truncated", "notice"}; ``message`` says why nothing was found when the filters exclude every
            document; a question over MAX_QUESTION_CHARS is cut (``truncated``, ``notice``, and
            ``query`` is then the cut question; otherwise it echoes the question as sent)."""
            clipped, truncated = clip_question(query)
            results = run_search(state, clipped, k=k, filters=_filters(prefecture, municipality, kind, year), mode=mode)
            message = "" if results or not clipped else search_message(state.get_engine())
            return _with_notice({"query": clipped if truncated else query, "results": results, "message": message},
                                truncated)

        def answer(query: str, prefecture: list[str] | None = None, municipality: list[str] | None = None,
                   kind: list[str] | None = None, year: list[str] | None = None) -> dict:
            """Which municipalities did X: MunicipalityAnswer.to_dict()."""
            return run_answer(state, query, filters=_filters(prefecture, municipality, kind, year))

        def compare(topic: str, municipalities: list[str] | None = None, top_n: int = 4) -> dict:
            """How do municipalities approach X, side by side: ComparisonTable.to_dict()."""
            return run_compare(state, topic, municipalities or None, top_n)[0]

        def wording(text: str, k: int = 10, prefecture: list[str] | None = None, municipality: list[str] | None = None,
                    kind: list[str] | None = None, year: list[str] | None = None) -> dict:
            """How did others word X: WordingResult.to_dict() (verbatim sentences with citations)."""
            return run_wording(state, text, k=k, filters=_filters(prefecture, municipality, kind, year))

        for fn in (search, answer, compare, wording):
            gr.api(_user_errors(fn), api_name=fn.__name__, api_description=fn.__doc__)

    demo.seisaku_state = state  # type: ignore[attr-defined]
    return demo


# ══ serving ═══════════════════════════════════════════════════════════════════════════════════

def _authenticated(app: Any, request: Any) -> bool:
    """The same check gradio's own routes make: no auth configured, or a valid login cookie."""
    if getattr(app, "auth", None) is None and getattr(app, "auth_dependency", None) is None:
        return True
    cid = getattr(app, "cookie_id", "")
    token = request.cookies.get(f"access-token-{cid}") or request.cookies.get(f"access-token-unsecure-{cid}")
    return bool(token) and token in getattr(app, "tokens", {})


class AnyPathConvertor(PathConvertor):
    """Starlette's ``path`` convertor, but also across line breaks: a document id is a manifest
    path, which may hold a newline (``%0A`` in the link); ``.*`` alone stops at it and /doc gave 404."""

    regex = "(?s:.*)"


def doc_route(state: AppState) -> APIRoute:
    """The ``GET /doc/{doc_id}`` route (login-checked); any document id works, including one with
    control characters such as a newline. It is handed to the app when gradio creates it
    (``app_kwargs["routes"]``), so it answers from the first request the server accepts — added
    after launch, a /doc link opened in the first moments got gradio's 404."""
    register_url_convertor("anypath", AnyPathConvertor())

    async def doc_page(doc_id: str, request: Request) -> HTMLResponse:
        if not _authenticated(request.app, request):
            return HTMLResponse(V.render_document_page({"title": "ログインが必要です"}, []), status_code=401)
        try:
            engine = state.get_engine()
        except Exception as e:
            return HTMLResponse(V.render_document_page({"title": str(e)}, []), status_code=503)
        found = document_chunks(engine, doc_id)
        if found is None:
            return HTMLResponse(V.render_document_page({"title": f"文書が見つかりません: {doc_id}"}, []), status_code=404)
        meta, chunks = found
        return HTMLResponse(V.render_document_page(meta, chunks),
                            headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})

    return APIRoute("/doc/{doc_id:anypath}", doc_page, methods=["GET"], response_class=HTMLResponse)


#: Login rate limit: this many wrong passwords from one client address within LOGIN_WINDOW_S
#: seconds lock that address out for LOGIN_WINDOW_S seconds, doubling with each further lockout
#: (60 s, 120 s, 240 s, … at most LOGIN_MAX_LOCKOUT_S); a correct login clears the record.
LOGIN_MAX_FAILURES = 5
LOGIN_WINDOW_S = 60.0
LOGIN_MAX_LOCKOUT_S = 3600.0


@dataclass
class _LoginRecord:
    """One client address: its recent failures, how often it was locked out, and until when."""

    failures: list[float] = field(default_factory=list)
    lockouts: int = 0
    blocked_until: float = 0.0
    last: float = 0.0


@dataclass
class LoginLimiter:
    """Counts failed logins per client address and locks an address out after too many.

    ``max_failures`` failures within ``window_s`` seconds lock the address out for ``window_s``
    seconds, doubled for each further lockout up to ``max_lockout_s``; an address quiet for
    ``max_lockout_s`` starts afresh, and a correct login clears it. While locked out every
    attempt is refused (429) without checking the password, a correct one included. Thread-safe.
    Behind a reverse proxy all users share the proxy's address and its lockouts.
    """

    max_failures: int = LOGIN_MAX_FAILURES
    window_s: float = LOGIN_WINDOW_S
    max_lockout_s: float = LOGIN_MAX_LOCKOUT_S
    max_hosts: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _hosts: dict[str, _LoginRecord] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def retry_after(self, host: str) -> float:
        """Seconds ``host`` must wait before it may try again (0 when it may try now)."""
        with self._lock:
            rec = self._hosts.get(host)
            return max(0.0, rec.blocked_until - self.clock()) if rec else 0.0

    def failed(self, host: str) -> float:
        """Record a wrong password from ``host``; returns the lockout it now has (0 when none)."""
        now = self.clock()
        with self._lock:
            rec = self._hosts.get(host)
            if rec is None or (now - rec.last > self.max_lockout_s and now >= rec.blocked_until):
                rec = self._hosts[host] = _LoginRecord()
                self._forget_quiet(now)
            rec.last = now
            rec.failures = [t for t in rec.failures if now - t < self.window_s] + [now]
            if len(rec.failures) < self.max_failures:
                return 0.0
            rec.failures.clear()
            rec.lockouts += 1
            lockout = min(self.window_s * 2 ** (rec.lockouts - 1), self.max_lockout_s)
            rec.blocked_until = now + lockout
            return lockout

    def succeeded(self, host: str) -> None:
        """A correct login from ``host``: forget its failures and lockouts."""
        with self._lock:
            self._hosts.pop(host, None)

    def _forget_quiet(self, now: float) -> None:
        """Drop addresses quiet for ``max_lockout_s`` when more than ``max_hosts`` are tracked."""
        if len(self._hosts) <= self.max_hosts:
            return
        for h in [h for h, r in self._hosts.items() if now - r.last > self.max_lockout_s and now >= r.blocked_until]:
            del self._hosts[h]


def login_refusal(wait_s: float) -> str:
    """The message of a refused (rate-limited) login."""
    n = max(1, math.ceil(wait_s))
    return (f"ログインの失敗が続いたため、しばらく受け付けません。{n} 秒後にもう一度お試しください。"
            f" / Too many failed logins from this address; try again in {n} s.")


class LoginRateLimitMiddleware:
    """ASGI middleware in front of gradio's ``POST /login``: refuses a locked-out client address
    with 429 (and ``Retry-After``) before gradio checks the password, and tells the
    :class:`LoginLimiter` about each answer gradio gives (400 = wrong password, 2xx = logged in)."""

    def __init__(self, app: Any, limiter: LoginLimiter) -> None:
        """Wrap the ASGI ``app``."""
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Pass every request through; count and limit ``POST …/login``."""
        if scope.get("type") != "http" or scope.get("method") != "POST" \
                or not str(scope.get("path", "")).rstrip("/").endswith("/login"):
            await self.app(scope, receive, send)
            return
        host = str((scope.get("client") or ("unknown",))[0])
        wait = self.limiter.retry_after(host)
        if wait > 0:
            body = json.dumps({"detail": login_refusal(wait)}, ensure_ascii=False).encode("utf-8")
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"retry-after", str(max(1, math.ceil(wait))).encode()),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        status: list[int] = []

        async def send_status(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        await self.app(scope, receive, send_status)
        if status and status[0] in (400, 401):
            lockout = self.limiter.failed(host)
            if lockout:
                log.warning("login: %s locked out for %.0f s after %d wrong passwords", host, lockout,
                            self.limiter.max_failures)
        elif status and 200 <= status[0] < 300:
            self.limiter.succeeded(host)


def parse_auth(auth: str | Sequence[str] | None) -> tuple[str, str] | None:
    """``"user:password"`` → ``("user", "password")``; None/empty → None."""
    if not auth:
        return None
    if not isinstance(auth, str):
        user, pw = auth
        return str(user), str(pw)
    if ":" not in auth:
        raise SeisakuError("--auth は 'ユーザー名:パスワード' の形で指定してください。")
    user, pw = auth.split(":", 1)
    if not user or not pw:
        raise SeisakuError("--auth のユーザー名とパスワードは空にできません。")
    return user, pw


def _theme() -> gr.themes.Base:
    """Soft theme with local Japanese fonts only (no web-font download: the app works offline)."""
    fonts = ["IPAPGothic", "IPAexGothic", "Noto Sans CJK JP", "Hiragino Sans", "Meiryo", "IPAGothic", "sans-serif"]
    return gr.themes.Soft(font=fonts, font_mono=["IPAGothic", "monospace"])


def launch_app(target: gr.Blocks | AppState | Settings | Engine, host: str = "127.0.0.1", port: int | None = 7860, auth: str | Sequence[str] | None = None,
               prevent_thread_lock: bool = True, quiet: bool = False,
               login_limiter: LoginLimiter | None = None) -> tuple[gr.Blocks, str]:
    """Build (unless ``target`` is already a Blocks from :func:`build_app`) and launch; returns (demo, url).

    Never creates a share link. Adds the queue (several users at once), the CSS, the copy script,
    the ``/doc`` route and the login rate limit (``login_limiter``, default :class:`LoginLimiter`()).
    """
    limiter = login_limiter if login_limiter is not None else LoginLimiter()
    demo = target if isinstance(target, gr.Blocks) else build_app(target)
    state: AppState = demo.seisaku_state  # type: ignore[attr-defined]
    demo.queue(default_concurrency_limit=4, max_size=64)
    app, url, _ = demo.launch(
        server_name=host, server_port=port, auth=parse_auth(auth), share=False, prevent_thread_lock=prevent_thread_lock,
        inbrowser=False, quiet=quiet, show_error=False, max_file_size=MAX_UPLOAD_BYTES, ssr_mode=False,
        css=V.APP_CSS, head=V.COPY_SCRIPT, theme=_theme(), footer_links=["api"],
        auth_message="seisaku にログインしてください",
        # the /doc route is part of the app from its creation: first in the route list (Starlette
        # matches in order, so gradio's catch-all never shadows it) and there before the first request
        app_kwargs={"middleware": [Middleware(LoginRateLimitMiddleware, limiter=limiter)], "routes": [doc_route(state)]},
    )
    demo.seisaku_login_limiter = limiter  # type: ignore[attr-defined]
    return demo, url


def is_loopback(host: str) -> bool:
    """True when ``host`` is reachable from this machine only: any address in 127.0.0.0/8, ``::1``
    (also written ``[::1]``), an IPv4-mapped loopback (``::ffff:127.0.0.2``) or ``localhost``."""
    h = (host or "").strip().lower()
    if h in LOOPBACK_NAMES:
        return True
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    try:
        addr = ipaddress.ip_address(h.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return bool(addr.is_loopback or (mapped is not None and mapped.is_loopback))


def host_warning(host: str, auth: str | Sequence[str] | None) -> str | None:
    """The console warning for a non-loopback ``host`` (None for :func:`is_loopback` hosts:
    127.0.0.0/8, ::1, localhost)."""
    if is_loopback(host):
        return None
    return (f"警告: {host} で待ち受けます。ネットワーク上の他の端末からアクセスできます。"
            + ("ログインを設定していません: --auth user:password の指定を強く推奨します。" if not auth
               else "（--auth のログインが必要です。通信は暗号化されないため信頼できるネットワークでのみ使ってください）"))


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860, auth: str | None = None, share: bool = False) -> int:
    """Serve the app until interrupted; builds the index first when there is none. Returns an exit code.

    ``share`` must stay False: seisaku never opens a public share link.
    """
    if share:
        print("seisaku: 公開共有リンク (share) は使えません。--host と --auth を使ってください。", file=sys.stderr)
        return 2
    try:
        parse_auth(auth)
    except SeisakuError as e:
        print(f"エラー: {e}", file=sys.stderr)
        return 2
    warning = host_warning(host, auth)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    try:
        # Serve at once; a missing index is built beside it, its progress in the status line.
        state = open_state(settings, console=True)
    except Exception as e:
        print(f"エラー: {e}", file=sys.stderr)
        return 2
    demo, url = launch_app(build_app(state), host=host, port=port, auth=auth, prevent_thread_lock=True, quiet=True)
    print(f"seisaku: {url} で待ち受けています（終了は Ctrl+C）", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python ui.py [--host H] [--port N] [--auth user:pass] [--index DIR] [--corpus DIR] [--model M] [--config F]``."""
    ap = argparse.ArgumentParser(prog="ui.py", description="seisaku の Web アプリ（Gradio）")
    ap.add_argument("--host", default="127.0.0.1", help="既定はループバックのみ。公開には 0.0.0.0 を明示し --auth を推奨")
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--auth", help="ログイン 'user:password'")
    ap.add_argument("--index", help="インデックスのディレクトリ")
    ap.add_argument("--corpus", help="コーパスのディレクトリ（manifest.csv のある所）")
    ap.add_argument("--model", help="埋め込みモデル")
    ap.add_argument("--config", help="設定ファイル (TOML)")
    args = ap.parse_args(argv)
    try:
        settings = load_settings(args.config, corpus_dir=args.corpus, index_dir=args.index, model=args.model)
    except (ValueError, OSError) as e:
        print(f"エラー: {e}", file=sys.stderr)
        return 2
    return serve(settings, host=args.host, port=args.port, auth=args.auth, share=False)


if __name__ == "__main__":
    sys.exit(main())
