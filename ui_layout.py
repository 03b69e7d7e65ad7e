"""The Gradio Blocks of the seisaku web app: tabs, handlers and named API endpoints (part of ``ui``).

:func:`build_app` lays out the 検索 / 比較 / 文例 / 文書 tabs and registers ``/search``, ``/answer``,
``/compare``, ``/wording``; serving it is :mod:`ui_serve`'s job. ``ui.py`` re-exports every name.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import gradio as gr

from corpus.errors import SeisakuError
from index.config import Settings
from search import views_html as V
from search.question import clip_question
from ui_state import (ALLOWED_SUFFIXES, APP_TITLE, CHART_K, MAX_UPLOAD_BYTES, SHOW_K, AppState, _filters,
                      _with_notice, documents_of, run_answer, run_compare, run_search, run_wording,
                      search_message, truncation_notice, validate_upload, with_question_type)

if TYPE_CHECKING:
    from search.engine import Engine

log = logging.getLogger("seisaku.ui")



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
            return (V.notice_html(truncation_notice(truncated)) + V.question_type_html(answer.get("question_type_label", ""))
                    + V.heading("自治体ごとの回答") + V.render_answer(answer),
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
            """Ranked passages with citations: {"query", "question_type", "question_type_label", "results":
            [Result.to_json(), …], "message", "truncated", "notice"}; ``question_type`` is which / compare /
            wording / fact (search.qtype); ``message`` says why nothing was found when the filters exclude every
            document; a question over MAX_QUESTION_CHARS is cut (``truncated``, ``notice``, and
            ``query`` is then the cut question; otherwise it echoes the question as sent)."""
            clipped, truncated = clip_question(query)
            results = run_search(state, clipped, k=k, filters=_filters(prefecture, municipality, kind, year), mode=mode)
            message = "" if results or not clipped else search_message(state.get_engine())
            data = _with_notice({"query": clipped if truncated else query, "results": results, "message": message},
                                truncated)
            return with_question_type(data, clipped)

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
