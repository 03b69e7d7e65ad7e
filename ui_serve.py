"""Serving the seisaku web app: the ``/doc`` route, the login rate limit, host checks, launch (part of ``ui``).

:func:`launch_app` launches a :func:`ui_layout.build_app` Blocks with the queue, CSS, the ``/doc``
route (:func:`doc_route`) and :class:`LoginRateLimitMiddleware`; :func:`serve` runs it until
interrupted, building the index first when there is none. ``ui.py`` re-exports every name.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import math
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import gradio as gr
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.middleware import Middleware

from corpus.errors import SeisakuError
from index.config import Settings
from search import views_html as V
from ui_layout import build_app
from ui_state import LOOPBACK_NAMES, MAX_UPLOAD_BYTES, AppState, document_chunks, open_state

if TYPE_CHECKING:
    from search.engine import Engine

log = logging.getLogger("seisaku.ui")


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
