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

The code lives in three modules beside this one, all re-exported here (``ui.build_app``,
``ui.launch_app``, ``ui.open_state``, … stay the names to use): :mod:`ui_state` (the app state, the
engine and the background build, the plain functions behind the tabs and API), :mod:`ui_layout`
(:func:`build_app`: the Blocks, its handlers and API endpoints) and :mod:`ui_serve` (the ``/doc``
route, the login rate limit, host checks, :func:`launch_app`, :func:`serve`).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from index.config import load_settings
from ui_state import (  # noqa: F401  (re-exported: ``ui.<name>`` is the public spelling)
    ALLOWED_SUFFIXES, MAX_UPLOAD_BYTES, LOOPBACK_NAMES, SHOW_K, CHART_K, APP_TITLE, DocumentSource, AppState,
    build_status, open_state, _jsonable, _filters, documents_of, document_chunks, TRUNCATED_NOTICE,
    truncation_notice, _with_notice, search_message, run_search, run_answer, run_compare, run_wording,
    validate_upload)
from ui_layout import (  # noqa: F401  (re-exported: ``ui.<name>`` is the public spelling)
    _user_errors, _err_html, _status_html, _to_state, CSV_MAX_AGE_S, prune_old_dirs, build_app)
from ui_serve import (  # noqa: F401  (re-exported: ``ui.<name>`` is the public spelling)
    _authenticated, AnyPathConvertor, doc_route, LOGIN_MAX_FAILURES, LOGIN_WINDOW_S, LOGIN_MAX_LOCKOUT_S,
    _LoginRecord, LoginLimiter, login_refusal, LoginRateLimitMiddleware, parse_auth, _theme, launch_app,
    is_loopback, host_warning, serve)


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
