"""The app against hostile but realistic input (issue 14): long questions, formula cells, a file
name with a newline, contradictory filters, password guessing.

A small corpus of three documents is built once with the real model: an ordinary one, one whose
municipality and title are a spreadsheet formula (``=HYPERLINK(…)``), and one whose file name
holds a newline. The app is launched in this process through ``ui.launch_app``, except for the
1M-character question, which goes to ``python ui.py`` in a child process so that a crash in the
tokenizer fails the test instead of killing pytest.
"""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from index.config import Settings, load_settings
from search.question import MAX_QUESTION_CHARS
from tests.ui_support import REPO, free_port

pytestmark = pytest.mark.slow

FORMULA = '=HYPERLINK("http://x","市")'
NEWLINE_DOC = "line\nbreak.txt"
DOCS = [  # (path, municipality, title, text)
    ("plan.txt", "試験市", "試験市公共施設計画",
     "第1章 公共施設\n\n1 斎場の建替え\n老朽化した斎場の建替えにあたり、PFI方式による民間資金の活用を検討する。所管課：市民課\n"),
    ("formula.txt", FORMULA, '=HYPERLINK("http://x","題")',
     "第1章 行政改革\n\n1 斎場の運営\n斎場の運営を指定管理者制度により民間事業者に委ねることを検討する。所管課：環境課\n"),
    (NEWLINE_DOC, "改行市", "改行市給食計画",
     "第1章 給食\n\n1 学校給食センター\n学校給食センターの整備をPFI方式で行い、民間のノウハウを活用する。所管課：教育総務課\n"),
]
QUESTION = "斎場の建替えに民間資金を使うか検討している自治体"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The three-document corpus (its manifest written with the csv module, so the newline in a
    path is a quoted field) built with the real model."""
    from index.build import build_index

    root = tmp_path_factory.mktemp("hostile")
    corpus = root / "corpus"
    corpus.mkdir()
    with open(corpus / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "municipality", "prefecture", "title", "year", "kind", "url"])
        for path, muni, title, text in DOCS:
            (corpus / path).write_text(text, encoding="utf-8")
            w.writerow([path, muni, "高知県", title, "2025", "計画", ""])
    s = load_settings(corpus_dir=corpus, index_dir=root / "index")
    report = build_index(s, progress=False)
    assert report.n_chunks == 3, report.summary()
    return s


@pytest.fixture(scope="module")
def engine(settings: Settings) -> Any:
    """An Engine over the small index."""
    from search.engine import Engine

    return Engine.from_settings(settings)


@pytest.fixture(scope="module")
def app_url(engine: Any) -> Iterator[str]:
    """The app launched in this process (no login)."""
    import ui

    demo, url = ui.launch_app(engine, port=free_port(), quiet=True)
    try:
        yield url.rstrip("/")
    finally:
        demo.close()


@pytest.fixture(scope="module")
def client(app_url: str) -> Any:
    """A gradio_client Client for the launched app."""
    from gradio_client import Client

    return Client(app_url + "/", verbose=False)


# ── long questions ────────────────────────────────────────────────────────────────────────────

def test_100k_character_question_is_cut_at_the_api(client: Any) -> None:
    """A 100,000-character question to /answer (and /search, /compare, /wording) returns a JSON
    answer for its first MAX_QUESTION_CHARS characters, saying so."""
    long_q = (QUESTION + "。") * (100_000 // (len(QUESTION) + 1) + 1)
    assert len(long_q) >= 100_000
    out = client.predict(long_q, api_name="/answer")
    json.dumps(out, ensure_ascii=False)
    assert out["truncated"] is True and len(out["query"]) <= MAX_QUESTION_CHARS
    assert long_q.startswith(out["query"])
    assert f"先頭の {MAX_QUESTION_CHARS} 文字" in out["notice"]
    assert out["answered"] and out["rows"][0]["municipality"] == "試験市", out["message"]
    found = client.predict(long_q, k=3, api_name="/search")
    assert found["truncated"] is True and len(found["query"]) <= MAX_QUESTION_CHARS and found["results"]
    table = client.predict(long_q, api_name="/compare")
    assert table["truncated"] is True and len(table["topic"]) <= MAX_QUESTION_CHARS
    hits = client.predict(long_q, k=3, api_name="/wording")
    assert hits["truncated"] is True and len(hits["text"]) <= MAX_QUESTION_CHARS
    short = client.predict(QUESTION, api_name="/answer")
    assert short["truncated"] is False and short["notice"] == "" and short["query"] == QUESTION


def test_views_cut_their_question(engine: Any) -> None:
    """The answer views themselves cut the question (callers other than the app: the CLI, scripts)."""
    from search.answers import compare, municipality_answer, wording

    long_q = QUESTION * 5000
    assert len(municipality_answer(engine, long_q).query) <= MAX_QUESTION_CHARS
    assert len(compare(engine, long_q, municipalities=["試験市"]).topic) <= MAX_QUESTION_CHARS
    assert len(wording(engine, long_q, k=3).text) <= MAX_QUESTION_CHARS


def test_million_character_question_does_not_kill_the_app(settings: Settings, tmp_path: Path) -> None:
    """`python ui.py` in a child process gets a 1,000,000-character question on /answer: it answers,
    stays up and answers the next question."""
    from gradio_client import Client

    port = free_port()
    log_path = tmp_path / "ui.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, str(REPO / "ui.py"), "--corpus", str(settings.corpus_dir),
                                 "--index", str(settings.index_dir), "--port", str(port)],
                                cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/"
            c = None
            deadline = time.monotonic() + 240
            while c is None and time.monotonic() < deadline:
                assert proc.poll() is None, log_path.read_text()
                try:
                    c = Client(url, verbose=False)
                except Exception:
                    time.sleep(1)
            assert c is not None, log_path.read_text()
            out = c.submit("斎場の建替え" * 166_667, api_name="/answer").result(timeout=300)
            assert out["truncated"] is True and len(out["query"]) <= MAX_QUESTION_CHARS
            assert proc.poll() is None, log_path.read_text()
            again = c.predict(QUESTION, api_name="/answer")
            assert again["rows"] and again["truncated"] is False
            assert proc.poll() is None, log_path.read_text()
        finally:
            proc.terminate()
            proc.wait(timeout=30)


# ── formula cells in the comparison CSV ───────────────────────────────────────────────────────

def test_formula_municipality_is_escaped_in_the_comparison_csv(engine: Any) -> None:
    """The 比較 tab's CSV (ComparisonTable.to_csv) of a municipality named ``=HYPERLINK(…)``."""
    from search.answers import compare

    table = compare(engine, "斎場の運営", municipalities=[FORMULA, "試験市"])
    assert table.columns[0].entries, table.to_text()
    rows = list(csv.reader(io.StringIO(table.to_csv().decode("utf-8-sig"), newline="")))
    cells = [c for row in rows[1:] for c in row]
    assert rows[1][0] == "'" + FORMULA
    assert any(c.startswith("'" + FORMULA) for c in cells if "『" in c)  # the citation starts with it too
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "試験市" in [r[0] for r in rows[1:]]  # an ordinary name unchanged


# ── /doc with a newline in the document id ─────────────────────────────────────────────────────

def test_document_with_newline_in_its_name_opens(app_url: str) -> None:
    from search.views_html import doc_href

    with urllib.request.urlopen(app_url + doc_href(NEWLINE_DOC)) as resp:
        page = resp.read().decode("utf-8")
        assert resp.status == 200
    assert "学校給食センターの整備をPFI方式で行い" in page and "改行市給食計画" in page
    # the id without its newline is another (unknown) document, not this one
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(app_url + doc_href("line"))
    assert e.value.code == 404


# ── contradictory filters ─────────────────────────────────────────────────────────────────────

def test_contradictory_filters_are_named(client: Any) -> None:
    """municipality=試験市 with prefecture=北海道 (試験市 is in 高知県): every view says that no document
    matches the filters together and names them, instead of a bare 「見つかりませんでした」."""
    flt = dict(municipality=["試験市"], prefecture=["北海道"])
    out = client.predict(QUESTION, api_name="/answer", **flt)
    assert out["answered"] is False
    for msg in (out["message"], client.predict(QUESTION, api_name="/search", **flt)["message"],
                client.predict(QUESTION, api_name="/wording", **flt)["message"]):
        assert msg.startswith("絞り込み条件（自治体「試験市」、都道府県「北海道」）をすべて満たす文書はありません"), msg
    assert client.predict(QUESTION, api_name="/search", **flt)["results"] == []
    # filters that match documents but not the question: the ordinary not-found message
    other = client.predict("競輪場の廃止と跡地の売却", api_name="/answer", municipality=["試験市"], prefecture=["高知県"])
    assert "絞り込み条件" not in other["message"]
    assert client.predict(QUESTION, api_name="/search", municipality=["試験市"], prefecture=["高知県"])["message"] == ""


# ── login rate limit ──────────────────────────────────────────────────────────────────────────

def _login(url: str, user: str, password: str) -> tuple[int, dict[str, str], str]:
    data = urllib.parse.urlencode({"username": user, "password": password}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url + "/login/", data=data, method="POST")) as r:
            return r.status, dict(r.headers), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8")


def test_wrong_passwords_are_rate_limited_per_client(engine: Any) -> None:
    """10 wrong passwords from one address: the first 5 are answered 400 (wrong), the next 5 are
    refused with 429 and Retry-After before the password is checked — the right password too —
    until the lockout (60 s, here advanced on the limiter's clock) has passed; then it logs in."""
    import ui

    skew = [0.0]
    limiter = ui.LoginLimiter(clock=lambda: time.monotonic() + skew[0])
    demo, url = ui.launch_app(ui.build_app(engine), port=free_port(), auth="staff:s3cret", quiet=True,
                              login_limiter=limiter)
    url = url.rstrip("/")
    try:
        codes = [_login(url, "staff", f"guess{i}")[0] for i in range(10)]
        assert codes == [400] * ui.LOGIN_MAX_FAILURES + [429] * (10 - ui.LOGIN_MAX_FAILURES)
        status, headers, body = _login(url, "staff", "s3cret")
        assert status == 429
        assert 1 <= int(headers.get("retry-after") or headers.get("Retry-After")) <= ui.LOGIN_WINDOW_S
        assert json.loads(body)["detail"].startswith("ログインの失敗が続いたため")
        skew[0] += ui.LOGIN_WINDOW_S + 1
        status, headers, _ = _login(url, "staff", "s3cret")
        assert status == 200 and "access-token" in (headers.get("set-cookie") or headers.get("Set-Cookie") or "")
        assert _login(url, "staff", "wrong")[0] == 400  # the correct login cleared the record
    finally:
        demo.close()
