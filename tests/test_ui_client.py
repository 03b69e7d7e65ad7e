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
    assert hits, [(r["municipality"], r["item"]) for r in out["results"]]
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
