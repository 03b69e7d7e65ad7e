"""Offline and exposure: seisaku never tries to reach the network, and only serves other machines
when told to (with a login).

Every process here runs with a ``sitecustomize.py`` on ``PYTHONPATH`` that wraps
``socket.socket.connect/connect_ex/sendto``, ``socket.create_connection``, ``socket.getaddrinfo``
and ``socket.gethostbyname(_ex)``: any non-loopback destination is written to a log file (with
the stack) and refused. ``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE`` and
``GRADIO_ANALYTICS_ENABLED`` are removed from the environment on purpose: the point is to show
that the code does not try, not that a switch stopped it. The guard is tested first (a process
that does try is caught).

Covered: ``seisaku build``, ``search``, ``answer``; the app (``python ui.py``) answering
gradio_client requests and serving its page to a headless browser (no request leaves the
machine, no web font or CDN); the default bind address is loopback; ``--host 0.0.0.0`` binds all
interfaces and ``--auth`` refuses requests without a login.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.test_store import test_settings, write_corpus

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent

GUARD = r'''
"""Test guard (tests/test_offline.py): refuse and log every non-loopback network attempt."""
import errno, ipaddress, os, socket, sys, traceback

_LOG = os.environ.get("SEISAKU_NET_LOG", "")


def _loopback(host):
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").split("%")[0]
    if host in ("", "localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def _deny(kind, target):
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {kind} {target!r} argv={sys.argv[:3]}\n")
            f.write("".join(traceback.format_stack(limit=15)))
            f.write("---\n")
    raise OSError(errno.ENETUNREACH, f"network access blocked by the offline test: {kind} {target!r}")


def _check(kind, address):
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return
    if isinstance(address, tuple) and address and not _loopback(address[0]):
        _deny(kind, address)


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_sendto = socket.socket.sendto
_create_connection = socket.create_connection
_getaddrinfo = socket.getaddrinfo
_gethostbyname = socket.gethostbyname
_gethostbyname_ex = socket.gethostbyname_ex


def connect(self, address):
    if self.family != socket.AF_UNIX:
        _check("connect", address)
    return _connect(self, address)


def connect_ex(self, address):
    if self.family != socket.AF_UNIX:
        _check("connect_ex", address)
    return _connect_ex(self, address)


def sendto(self, data, *args):
    if self.family != socket.AF_UNIX and args:
        _check("sendto", args[-1])
    return _sendto(self, data, *args)


def create_connection(address, *args, **kw):
    _check("create_connection", address)
    return _create_connection(address, *args, **kw)


def getaddrinfo(host, *args, **kw):
    if not _loopback(host):
        _deny("getaddrinfo", host)
    return _getaddrinfo(host, *args, **kw)


def gethostbyname(host):
    if not _loopback(host):
        _deny("gethostbyname", host)
    return _gethostbyname(host)


def gethostbyname_ex(host):
    if not _loopback(host):
        _deny("gethostbyname_ex", host)
    return _gethostbyname_ex(host)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
socket.socket.sendto = sendto
socket.create_connection = create_connection
socket.getaddrinfo = getaddrinfo
socket.gethostbyname = gethostbyname
socket.gethostbyname_ex = gethostbyname_ex
'''

#: switches that would hide an attempt; removed from the guarded processes' environment
HIDING_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "GRADIO_ANALYTICS_ENABLED",
                   "HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK")


@pytest.fixture(scope="module")
def guard(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The guard directory (for PYTHONPATH) and its log file."""
    d = tmp_path_factory.mktemp("netguard")
    (d / "sitecustomize.py").write_text(GUARD, encoding="utf-8")
    return {"dir": d, "log": d / "attempts.log"}


def guarded_env(guard: dict[str, Any], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in HIDING_SWITCHES}
    env["PYTHONPATH"] = os.pathsep.join([str(guard["dir"]), str(REPO), os.environ.get("PYTHONPATH", "")])
    env["SEISAKU_NET_LOG"] = str(guard["log"])
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


def attempts(guard: dict[str, Any]) -> str:
    return guard["log"].read_text(encoding="utf-8") if guard["log"].exists() else ""


def run_guarded(guard: dict[str, Any], args: list[str], timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=guarded_env(guard), capture_output=True, text=True,
                          timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on ``port`` (from /proc/net/tcp and tcp6)."""
    out = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state = parts[1], parts[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:
                continue
            if len(addr_hex) == 8:
                out.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr_hex)[::-1]))
            else:
                raw = bytes.fromhex(addr_hex)
                out.add(socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))))
    return out


def non_loopback_ip() -> str | None:
    """An address of this machine that is not loopback (None when there is none)."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        out = []
    for ip in out:
        if ":" not in ip and not ip.startswith("127."):
            return ip
    return None


class App:
    """``python ui.py`` in a guarded subprocess."""

    def __init__(self, guard: dict[str, Any], settings: Any, *args: str) -> None:
        self.port = free_port()
        self.log = Path(guard["dir"]) / f"app-{self.port}.log"
        cmd = [sys.executable, str(REPO / "ui.py"), "--index", str(settings.index_dir), "--corpus",
               str(settings.corpus_dir), "--port", str(self.port), *args]
        self.out = open(self.log, "wb")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=guarded_env(guard), stdout=self.out, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 600
        while True:
            assert self.proc.poll() is None, self.output()
            try:
                with urllib.request.urlopen(self.url + "/", timeout=5):
                    break
            except urllib.error.HTTPError:
                break  # it answers (e.g. 401 with a login)
            except OSError:
                assert time.monotonic() < deadline, "the app did not start: " + self.output()
                time.sleep(0.5)

    def output(self) -> str:
        self.out.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.out.close()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, guard: dict[str, Any]) -> Any:
    """A tiny corpus built with ``seisaku build`` under the guard; returns its settings and the run."""
    tmp = tmp_path_factory.mktemp("offline")
    write_corpus(tmp / "corpus")
    s = test_settings(tmp)
    proc = run_guarded(guard, ["-m", "search.cli", "build", "--corpus", str(s.corpus_dir), "--index",
                               str(s.index_dir), "--quiet"])
    return s, proc


@pytest.fixture
def client_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # gradio_client (the caller's tool, not the app) sends telemetry unless this is "False"
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")


# ══ the guard itself ═══════════════════════════════════════════════════════════════════════════


def test_the_guard_catches_an_attempt(guard: dict[str, Any], tmp_path: Path) -> None:
    log = tmp_path / "selftest.log"
    code = (
        "import socket, urllib.request\n"
        "for f in (lambda: socket.create_connection(('example.com', 80), timeout=2),\n"
        "          lambda: urllib.request.urlopen('http://93.184.216.34/', timeout=2),\n"
        "          lambda: socket.socket().connect(('8.8.8.8', 53))):\n"
        "    try:\n        f()\n    except OSError as e:\n        print('refused', e)\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); c = socket.create_connection(s.getsockname()); print('loopback ok')\n"
    )
    env = guarded_env({**guard, "log": log})
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.count("refused") == 3 and "loopback ok" in proc.stdout, proc.stdout + proc.stderr
    text = log.read_text(encoding="utf-8")
    assert "example.com" in text and "93.184.216.34" in text and "8.8.8.8" in text


# ══ build, search, app ═════════════════════════════════════════════════════════════════════════


def test_build_search_answer_make_no_network_attempt(tiny: Any, guard: dict[str, Any]) -> None:
    s, build = tiny
    assert build.returncode == 0, build.stderr[-3000:]
    search = run_guarded(guard, ["-m", "search.cli", "search", "給食センター PFI", "--json", "--index", str(s.index_dir),
                                 "--corpus", str(s.corpus_dir)])
    assert search.returncode == 0, search.stderr[-3000:]
    assert json.loads(search.stdout)["results"][0]["doc_id"] == "a市_計画.txt"
    answer = run_guarded(guard, ["-m", "search.cli", "answer", "学校給食センターをPFIで建て替える自治体", "--json",
                                 "--index", str(s.index_dir), "--corpus", str(s.corpus_dir)])
    assert answer.returncode == 0, answer.stderr[-3000:]
    assert attempts(guard) == ""


@pytest.fixture(scope="module")
def default_app(tiny: Any, guard: dict[str, Any]) -> Iterator[App]:
    s, build = tiny
    assert build.returncode == 0, build.stderr[-3000:]
    app = App(guard, s)
    yield app
    app.stop()


def test_app_answers_without_any_network_attempt(default_app: App, guard: dict[str, Any], client_env: None) -> None:
    from gradio_client import Client

    c = Client(default_app.url + "/", verbose=False)
    out = c.predict("学校給食センターをPFIで整備", k=3, api_name="/search")
    assert out["results"] and out["results"][0]["doc_id"] == "a市_計画.txt"
    assert "rows" in c.predict("学校給食センターをPFIで整備した自治体", api_name="/answer")
    assert "columns" in c.predict("公共施設の再編", None, 3, api_name="/compare")
    assert "hits" in c.predict("施設の複合化により維持管理費を削減", api_name="/wording")
    with urllib.request.urlopen(default_app.url + "/doc/a%E5%B8%82_%E8%A8%88%E7%94%BB.txt") as r:
        assert r.status == 200
    time.sleep(2)  # give any background telemetry thread the chance to try
    assert attempts(guard) == "", attempts(guard)


@pytest.mark.browser
def test_app_page_loads_nothing_from_outside(default_app: App, guard: dict[str, Any]) -> None:
    """The page the browser gets needs nothing from the internet (no web font, no CDN)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.ui_support import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    outside: list[str] = []
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = b.new_page()
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(
                (default_app.url, "data:", "blob:", "about:")) else None)
            page.goto(default_app.url + "/")
            page.wait_for_selector("#sk-query textarea, #sk-query input", timeout=180_000)
            page.wait_for_timeout(1500)
        finally:
            b.close()
    assert outside == []
    assert attempts(guard) == ""


# ══ exposure ═══════════════════════════════════════════════════════════════════════════════════


def test_default_bind_is_loopback_only(default_app: App) -> None:
    assert listening_addresses(default_app.port) == {"127.0.0.1"}
    ip = non_loopback_ip()
    if ip:
        with pytest.raises(OSError):
            socket.create_connection((ip, default_app.port), timeout=3).close()
    # and the defaults in code agree: the CLI, ui.py and launch_app all default to loopback
    import inspect

    import ui
    from search.cli import build_parser

    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    assert inspect.signature(ui.launch_app).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(ui.serve).parameters["host"].default == "127.0.0.1"


def test_exposed_app_requires_login(tiny: Any, guard: dict[str, Any], client_env: None) -> None:
    from gradio_client import Client

    s, _ = tiny
    app = App(guard, s, "--host", "0.0.0.0", "--auth", "staff:s3cret-pw")
    try:
        assert listening_addresses(app.port) & {"0.0.0.0", "::"}
        ip = non_loopback_ip()
        urls = [app.url] + ([f"http://{ip}:{app.port}"] if ip else [])
        for base in urls:
            # no login: the API and the document route refuse
            req = urllib.request.Request(base + "/gradio_api/call/search", data=json.dumps({"data": ["給食"]}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=30)
            assert e.value.code in (401, 403)
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(base + "/doc/a%E5%B8%82_%E8%A8%88%E7%94%BB.txt", timeout=30)
            assert e.value.code == 401
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(base + "/config", timeout=30)
            assert e.value.code in (401, 403)
        with pytest.raises(Exception):
            Client(app.url + "/", verbose=False)
        with pytest.raises(Exception):
            Client(app.url + "/", auth=("staff", "wrong"), verbose=False)
        c = Client(app.url + "/", auth=("staff", "s3cret-pw"), verbose=False)
        assert c.predict("給食センター PFI", k=3, api_name="/search")["results"]
        assert attempts(guard) == "", attempts(guard)
    finally:
        app.stop()


def test_exposing_without_login_warns(tiny: Any, guard: dict[str, Any]) -> None:
    s, _ = tiny
    app = App(guard, s, "--host", "0.0.0.0")
    try:
        text = app.output()
    finally:
        app.stop()
    assert "警告" in text and "0.0.0.0" in text and "--auth" in text
