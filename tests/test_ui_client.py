"""The app's named API endpoints through gradio_client, against a launched app on the real index.

Uses the real embedding model and the index of the bundled corpus (marked ``slow``).
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.ui_support import launched, real_settings

pytestmark = pytest.mark.slow

CREMATORIUM_Q = "火葬場の建て替えに民間資金を使うか検討している自治体"
LUNCH_Q = "学校給食センターをPFIで整備した自治体"


@pytest.fixture(scope="module")
def app_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the app launched on the real index (read-only use)."""
    with launched(real_settings(request, tmp_path_factory)) as url:
        yield url


@pytest.fixture(scope="module")
def client(app_url: str) -> Any:
    """A gradio_client Client for the launched app."""
    from gradio_client import Client

    return Client(app_url + "/", verbose=False)


def test_named_endpoints_are_listed(client: Any) -> None:
    info = client.view_api(print_info=False, return_format="dict")
    names = set(info["named_endpoints"])
    assert {"/search", "/answer", "/compare", "/wording"} <= names
    # the UI's own events are not part of the public API
    assert not any(n.startswith("/ui_") for n in names)


def test_search_endpoint_finds_aizuwakamatsu_crematorium(client: Any) -> None:
    out = client.predict(CREMATORIUM_Q, api_name="/search")
    json.dumps(out, ensure_ascii=False)  # JSON-able
    assert out["query"] == CREMATORIUM_Q
    hits = [r for r in out["results"] if r["municipality"] == "会津若松市" and "斎場" in (r["text"] + r["item"] + r["section"])]
    if not hits:  # say where the row is, to tell a ranking problem from a plumbing one
        deeper = client.predict(CREMATORIUM_Q, k=50, api_name="/search")["results"]
        rank = next((r["rank"] for r in deeper if r["municipality"] == "会津若松市" and "斎場" in r["text"]), None)
        pytest.fail(f"the 会津若松市 斎場 row is not in the top {len(out['results'])} (search ranks it {rank})")
    r = hits[0]
    assert r["citation"].startswith("会津若松市『") and r["title"] in r["citation"]
    assert f"p.{r['page_start']}" in r["citation"] or f"pp.{r['page_start']}" in r["citation"]
    assert r["page_start"] >= 1 and r["doc_id"] and r["chunk_id"]


def test_search_endpoint_filters(client: Any) -> None:
    out = client.predict(CREMATORIUM_Q, k=5, municipality=["小平市"], api_name="/search")
    assert out["results"] and {r["municipality"] for r in out["results"]} == {"小平市"}
    assert client.predict("", api_name="/search")["results"] == []


def test_answer_endpoint_lists_aizuwakamatsu_for_school_lunch(client: Any) -> None:
    out = client.predict(LUNCH_Q, api_name="/answer")
    assert out["answered"] is True, out.get("message")
    munis = [r["municipality"] for r in out["rows"]]
    assert "会津若松市" in munis
    row = out["rows"][munis.index("会津若松市")]
    assert row["citation"] and row["sentence"] and row["page_start"] >= 1


def test_compare_endpoint_two_columns(client: Any) -> None:
    out = client.predict("公共施設の保有量の削減", ["つくばみらい市", "小平市"], 4, api_name="/compare")
    assert [c["municipality"] for c in out["columns"]] == ["つくばみらい市", "小平市"]
    assert any(c["entries"] for c in out["columns"])


def test_wording_endpoint_returns_verbatim_sentences(client: Any) -> None:
    out = client.predict("職員一人ひとりがコストを意識する", k=5, api_name="/wording")
    assert out["hits"], out
    for h in out["hits"]:
        assert h["sentence"] in h["passage"] and h["citation"]


def test_endpoints_say_the_question_type(client: Any) -> None:
    """Each endpoint carries the question's type (search.qtype) and its Japanese label."""
    found = client.predict(CREMATORIUM_Q, k=3, api_name="/search")
    assert (found["question_type"], found["question_type_label"]) == ("which", "どの自治体か")
    assert client.predict("小平市とつくばみらい市で公共施設の削減の進め方を比べたい", api_name="/answer")["question_type"] == "compare"
    assert client.predict("職員一人ひとりがコストを意識するという書き方", k=3, api_name="/wording")["question_type"] == "wording"
    assert client.predict("公共施設の削減の推進期間はいつまでか", ["小平市"], 2, api_name="/compare")["question_type"] == "fact"


def test_document_route_renders_escaped_chunks(client: Any, app_url: str) -> None:
    r = client.predict(CREMATORIUM_Q, k=1, api_name="/search")["results"][0]
    from search.views_html import doc_href

    with urllib.request.urlopen(app_url + doc_href(r["doc_id"])) as resp:
        page = resp.read().decode("utf-8")
        assert resp.headers.get("Content-Type", "").startswith("text/html")
    assert f'id="chunk-{r["chunk_id"]}"' in page and "<script" not in page
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(app_url + "/doc/no-such-document.txt")
    assert e.value.code == 404


def test_login_protects_api_and_document_route(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> None:
    from gradio_client import Client

    with launched(real_settings(request, tmp_path_factory), auth="staff:s3cret") as url:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url + "/doc/" + "002_5d4461abb80c93bd.txt")
        assert e.value.code == 401
        with pytest.raises(Exception):
            Client(url + "/", verbose=False)
        c = Client(url + "/", auth=("staff", "s3cret"), verbose=False)
        assert c.predict(CREMATORIUM_Q, k=3, api_name="/search")["results"]


def test_several_users_at_once(client: Any) -> None:
    """Two searches submitted together both complete (queue concurrency ≥ 2)."""
    jobs = [client.submit(q, k=3, api_name="/search") for q in (CREMATORIUM_Q, LUNCH_Q)]
    outs = [j.result(timeout=300) for j in jobs]
    assert all(o["results"] for o in outs)
    assert [o["query"] for o in outs] == [CREMATORIUM_Q, LUNCH_Q]


def test_python_ui_py_builds_missing_index_then_serves(tmp_path: Path) -> None:
    """`python ui.py --corpus C --index I --port N` with no index: serves at once, builds, then answers."""
    import subprocess
    import sys
    import time

    from gradio_client import Client

    from tests.ui_support import REPO, free_port

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "plan.txt").write_text(
        "第1章 公共施設\n\n1 斎場の建替え\n老朽化した斎場の建替えにあたり、PFI方式による民間資金の活用を検討する。所管課：市民課\n",
        encoding="utf-8")
    (corpus / "manifest.csv").write_text(
        "path,municipality,prefecture,title,year,kind,url\nplan.txt,試験市,高知県,試験市公共施設計画,2025,計画,\n",
        encoding="utf-8")
    port = free_port()
    log = (tmp_path / "ui.log").open("w")
    proc = subprocess.Popen([sys.executable, str(REPO / "ui.py"), "--corpus", str(corpus), "--index", str(tmp_path / "index"),
                             "--port", str(port)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 300
        out: dict = {}
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "ui.log").read_text()
            try:
                out = Client(url, verbose=False).predict("斎場 民間資金", k=3, api_name="/search")
                break
            except Exception:
                time.sleep(2)  # not listening yet, or still building (the endpoint says so)
        assert out.get("results"), (tmp_path / "ui.log").read_text()
        assert out["results"][0]["municipality"] == "試験市"
        console = (tmp_path / "ui.log").read_text()
        assert "インデックスがないため作成します" in console and "127.0.0.1" in console
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_user_errors_reach_the_client(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """With no index the endpoint fails with the message saying how to build one (not a bare 'Error')."""
    import ui
    from gradio_client import Client

    from index.config import load_settings
    from tests.ui_support import free_port

    demo, url = ui.launch_app(load_settings(index_dir=tmp_path / "none"), port=free_port(), quiet=True)
    try:
        with pytest.raises(Exception) as e:
            Client(url, verbose=False).predict("斎場", api_name="/search")
        assert "seisaku build" in str(e.value) or "インデックス" in str(e.value)
    finally:
        demo.close()


def test_old_comparison_csvs_are_pruned(tmp_path) -> None:
    """Each comparison writes its CSV into a directory of its own under the app's CSV root;
    exports older than CSV_MAX_AGE_S are deleted, newer ones kept."""
    import os
    import time

    import ui

    old, new = tmp_path / "old", tmp_path / "new"
    for d in (old, new):
        d.mkdir()
        (d / "比較.csv").write_text("自治体\n", encoding="utf-8")
    t = time.time() - ui.CSV_MAX_AGE_S - 60
    os.utime(old, (t, t))
    assert ui.prune_old_dirs(tmp_path, ui.CSV_MAX_AGE_S) == 1
    assert not old.exists() and (new / "比較.csv").is_file()
    assert ui.prune_old_dirs(tmp_path / "missing", ui.CSV_MAX_AGE_S) == 0
