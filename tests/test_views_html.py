"""Pure HTML rendering of the app (search/views_html.py) and ui.py helpers: no gradio server, no model."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from search import views_html as V

XSS = "<script>alert(1)</script> **bold** [x](javascript:alert(2)) ${alert(3)} {{value}} <img src=x onerror=alert(4)>"


class _Tags(HTMLParser):
    """Collects start tags and attributes, to assert what markup a rendering really contains."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html_text: str) -> _Tags:
    p = _Tags()
    p.feed(html_text)
    p.close()
    return p


def assert_inert(html_text: str) -> None:
    """No script/img/iframe tags, no on* handlers, no javascript: URLs, no template syntax."""
    p = parse(html_text)
    for tag, attrs in p.tags:
        assert tag not in {"script", "img", "iframe", "object", "embed"}, tag
        for k, v in attrs.items():
            assert not k.startswith("on"), (tag, k)
            if k in {"href", "src", "action"}:
                assert not (v or "").strip().lower().startswith("javascript:"), v
    assert "${" not in html_text and "{{" not in html_text


def result(text: str = "斎場の建て替えにPFIを検討する。次の文。", **kw) -> dict:
    d = {
        "rank": 1, "score": 0.9, "chunk_id": "abc123", "doc_id": "004_x.txt", "municipality": "会津若松市",
        "prefecture": "福島県", "title": "行財政改革の取組状況", "section": "公共施設", "item": "斎場の整備",
        "department": "市民課", "page_start": 12, "page_end": 12, "text": text, "url": "",
        "citation": "会津若松市『行財政改革の取組状況』公共施設 › 斎場の整備（市民課） p.12",
        "spans": [{"start": 0, "end": 2, "kind": "term"}, {"start": 0, "end": 15, "kind": "sentence"}],
    }
    d.update(kw)
    return d


def test_esc_escapes_markup_and_template_characters() -> None:
    out = V.esc(XSS)
    assert "<" not in out and ">" not in out and "${" not in out and "{{" not in out
    assert V.esc(None) == ""
    assert V.esc('"\'') == "&quot;&#x27;"


def test_highlight_marks_terms_and_sentence_and_escapes() -> None:
    text = "斎場<b>の整備。次"
    out = V.highlight(text, [{"start": 0, "end": 2, "kind": "term"}, {"start": 0, "end": 9, "kind": "sentence"}])
    assert out.startswith('<mark class="sent term">斎場</mark><mark class="sent">&lt;b&gt;の整備。</mark>')
    assert out.endswith("次")
    # out-of-range and malformed spans are ignored or clipped
    assert V.highlight("abc", [{"start": 2, "end": 99}, {"start": "x", "end": 1}]) == 'ab<mark class="term">c</mark>'
    assert V.highlight("<x>", []) == "&lt;x&gt;"


def test_highlight_accepts_span_objects() -> None:
    from search.records import Span

    assert V.highlight("abcd", [Span(1, 3, "term")]) == 'a<mark class="term">bc</mark>d'


def test_result_card_has_citation_copy_and_doc_link() -> None:
    out = V.render_results([result()], "火葬場")
    p = parse(out)
    hrefs = [a.get("href") for t, a in p.tags if t == "a"]
    assert "/doc/004_x.txt#chunk-abc123" in hrefs
    buttons = [a for t, a in p.tags if t == "button"]
    assert buttons and buttons[0]["data-copy"].startswith("会津若松市『行財政改革の取組状況』")
    fields = [a for t, a in p.tags if t == "input"]
    assert fields and fields[0]["value"] == buttons[0]["data-copy"] and "readonly" in fields[0]
    assert "<mark" in out and "所管課: 市民課" in out and "p.12" in out


def test_document_text_is_inert_everywhere() -> None:
    r = result(text=XSS, title=XSS, item=XSS, section=XSS, department=XSS, municipality=XSS, citation=XSS,
               url="javascript:alert(5)", spans=[{"start": 0, "end": 8, "kind": "term"}])
    outputs = [
        V.render_results([r], XSS),
        V.render_answer({"answered": True, "message": XSS, "rows": [{**r, "sentence": XSS, "confidence": 0.9}]}),
        V.render_answer({"answered": False, "message": XSS, "rows": [], "nearest": {"citation": XSS}}),
        V.render_comparison({"topic": XSS, "columns": [{"municipality": XSS, "prefecture": XSS, "entries": [r]},
                                                        {"municipality": XSS, "entries": [], "cell": XSS}]}),
        V.render_wording({"text": XSS, "message": XSS, "hits": [{**r, "sentence": XSS, "also": [{"citation": XSS}]}]}),
        V.render_documents([{"doc_id": XSS, "municipality": XSS, "title": XSS, "kind": XSS, "year": XSS,
                             "n_chunks": 1, "warnings": [XSS]}]),
        V.render_document_page({"title": XSS, "municipality": XSS, "url": "javascript:alert(6)", "doc_id": XSS},
                               [{"chunk_id": XSS, "section_path": [XSS], "item": XSS, "text": XSS, "page_start": 1, "page_end": 1}]),
        V.bar_chart_svg([(XSS, 3), ("小平市", 1)], XSS),
        V.message_html(XSS, XSS),
    ]
    for out in outputs:
        assert_inert(out)
        assert "&lt;script&gt;" in out or "&lt;script" in out  # shown as literal text
    # the literal text survives in what the user sees
    text = "".join(parse(outputs[0]).text)
    assert "<script>alert(1)</script>" in text and "**bold**" in text


def test_answer_table_columns_and_not_found() -> None:
    row = {**result(), "sentence": "斎場の建て替えにPFIを検討する。", "sentence_text": "斎場の建て替えにPFIを検討する。",
           "confidence": 0.82, "page": 12}
    out = V.render_answer({"answered": True, "message": "", "rows": [row]})
    heads = re.findall(r"<th>(.*?)</th>", out)
    assert heads == ["自治体", "該当項目", "回答となる文", "所管課", "ページ", "確度", "出典"]
    assert "会津若松市" in out and "p.12" in out and "高" in out and "0.82" in out
    out = V.render_answer({"answered": False, "message": "", "rows": []})
    assert "見つかりませんでした" in out and "<table" not in out


def test_comparison_one_column_per_municipality() -> None:
    table = {"topic": "公共施設", "columns": [
        {"municipality": "つくばみらい市", "prefecture": "茨城県", "entries": [
            {"item": "施設の統廃合", "sentence_text": "統廃合を進める。", "page": 5, "citation": "つくばみらい市『x』 p.5",
             "doc_id": "001.txt", "chunk_id": "c9"}]},
        {"municipality": "小平市", "entries": [], "cell": "該当なし"}]}
    out = V.render_comparison(table)
    assert re.findall(r"<th>([^<]*)", out) == ["つくばみらい市", "小平市"]
    assert "該当なし" in out and "p.5" in out and "/doc/001.txt#chunk-c9" in out
    assert "見つかりませんでした" in V.render_comparison({"topic": "x", "columns": [], "message": "見つかりませんでした"})


def test_bar_chart_and_counts() -> None:
    rs = [result(), result(municipality="小平市", prefecture="東京都"), result()]
    counts = V.match_counts(rs)
    assert counts == [("会津若松市", 2), ("小平市", 1)]
    assert V.match_counts(rs, "prefecture")[0] == ("福島県", 2)
    svg = V.bar_chart_svg(counts, "自治体別")
    assert svg.startswith("<svg") and svg.count("<rect") == 2 and "会津若松市" in svg
    assert V.bar_chart_svg([]) == ""


def test_doc_href_quotes_ids() -> None:
    assert V.doc_href("uploads/a b#.txt", "c/1") == "/doc/uploads/a%20b%23.txt#chunk-c%2F1"
    assert V.chunk_anchor("c/1") == "chunk-c%2F1"
    assert V.safe_url("https://example.jp/x") == "https://example.jp/x"
    assert V.safe_url("javascript:alert(1)") == "" and V.safe_url(" data:text/html,x") == ""


def test_document_page_has_anchor_per_chunk() -> None:
    out = V.render_document_page({"doc_id": "d.txt", "title": "題"}, [
        {"chunk_id": "c1", "section_path": ["節"], "item": "項目", "text": "本文1", "page_start": 1, "page_end": 1},
        {"chunk_id": "c2", "section_path": [], "item": "", "text": "本文2", "page_start": 2, "page_end": 3}])
    assert 'id="chunk-c1"' in out and 'id="chunk-c2"' in out and "節 › 項目" in out and "pp.2–3" in out
    assert out.startswith("<!doctype html>") and 'charset="utf-8"' in out


# ── ui.py helpers (importing ui imports gradio, but nothing is launched) ──────────────────────

def test_validate_upload(tmp_path: Path) -> None:
    ui = pytest.importorskip("ui")
    ok = tmp_path / "plan.txt"
    ok.write_text("本文", encoding="utf-8")
    assert ui.validate_upload(ok, "南国市") == []
    bad = tmp_path / "evil.exe"
    bad.write_bytes(b"MZ")
    assert any("取り込めません" in p for p in ui.validate_upload(bad, "南国市"))
    assert any("自治体名" in p for p in ui.validate_upload(ok, " "))
    assert any("URL" in p for p in ui.validate_upload(ok, "南国市", url="javascript:alert(1)"))
    assert any("大きすぎます" in p for p in ui.validate_upload(ok, "南国市", max_bytes=1))
    empty = tmp_path / "empty.md"
    empty.write_bytes(b"")
    assert any("空" in p for p in ui.validate_upload(empty, "南国市"))
    assert any("ファイルを選んで" in p for p in ui.validate_upload(None, "南国市"))


def test_parse_auth() -> None:
    ui = pytest.importorskip("ui")
    from corpus.errors import SeisakuError

    assert ui.parse_auth(None) is None and ui.parse_auth("") is None
    assert ui.parse_auth("staff:pa:ss") == ("staff", "pa:ss")
    with pytest.raises(SeisakuError):
        ui.parse_auth("nopassword")
    with pytest.raises(SeisakuError):
        ui.parse_auth(":x")


def test_document_helpers_with_a_stub_engine() -> None:
    ui = pytest.importorskip("ui")
    from corpus.records import Chunk

    chunks = [Chunk("c1", "d.txt", "小平市", "東京都", "題", ("節",), "項目", "課", 1, 1, "本文", ""),
              Chunk("c2", "e.txt", "会津若松市", "福島県", "題2", (), "", "", 2, 2, "別", "")]

    class Stub:
        def documents(self):
            return [{"doc_id": "d.txt", "municipality": "小平市", "title": "題", "n_chunks": 1, "messages": ["warning: x"]}]

        def document_chunks(self, doc_id):
            return [c for c in chunks if c.doc_id == doc_id]

    docs = ui.documents_of(Stub())
    assert docs[0]["chunks"] == 1 and docs[0]["warnings"] == ["warning: x"]
    meta, cs = ui.document_chunks(Stub(), "d.txt")
    assert meta["title"] == "題" and [c["chunk_id"] for c in cs] == ["c1"]
    meta, cs = ui.document_chunks(Stub(), "e.txt")  # not in documents(): metadata from its chunks
    assert meta["municipality"] == "会津若松市" and len(cs) == 1
    assert ui.document_chunks(Stub(), "nope.txt") is None


def test_host_warning_only_off_loopback() -> None:
    ui = pytest.importorskip("ui")
    assert ui.host_warning("127.0.0.1", None) is None and ui.host_warning("localhost", None) is None
    w = ui.host_warning("0.0.0.0", None)
    assert w and "--auth" in w
    assert "--auth" in (ui.host_warning("0.0.0.0", "a:b") or "")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "[::1]", "localhost",
                                  "LOCALHOST", "::ffff:127.0.0.2"])
def test_any_loopback_address_is_not_exposed(host: str) -> None:
    """127.0.0.0/8 and ::1 reach this machine only: no exposure warning (issue 14: 127.0.0.2 warned)."""
    ui = pytest.importorskip("ui")
    assert ui.is_loopback(host) and ui.host_warning(host, None) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "128.0.0.1", "10.0.0.1", "example.jp",
                                  "localhost.example.jp", "", "127.0.0.1.example.jp"])
def test_other_hosts_warn_as_exposed(host: str) -> None:
    ui = pytest.importorskip("ui")
    assert not ui.is_loopback(host)
    w = ui.host_warning(host, None)
    assert w and w.startswith("警告") and "--auth" in w


def test_notice_and_filter_message_in_views() -> None:
    from search.filters import no_match_message
    from search.records import Filters

    assert V.notice_html("") == ""
    assert "先頭" in V.notice_html("質問が長すぎるため、先頭の 1000 文字だけを使いました。<b>")
    assert "<b>" not in V.notice_html("<b>")
    msg = no_match_message(Filters(municipality=("会津若松市",), prefecture=("東京都",)))
    assert msg.startswith("絞り込み条件（自治体「会津若松市」、都道府県「東京都」）をすべて満たす文書はありません")
    assert " / No document matches all of these filters together" in msg
    out = V.render_results([], "斎場", message=msg)
    assert "会津若松市" in out and "東京都" in out and "見つかりませんでした" not in out
    assert "「斎場」に該当する箇所は見つかりませんでした" in V.render_results([], "斎場")


def test_truncation_notice_in_api_dicts() -> None:
    ui = pytest.importorskip("ui")
    from search.question import MAX_QUESTION_CHARS

    assert ui._with_notice({"query": "x"}, False) == {"query": "x", "truncated": False, "notice": ""}
    d = ui._with_notice({"query": "x"}, True)
    assert d["truncated"] is True and f"先頭の {MAX_QUESTION_CHARS} 文字" in d["notice"] and " / " in d["notice"]


# ── login rate limit (pure: an explicit clock) ────────────────────────────────────────────────

class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_login_limiter_locks_an_address_out_after_five_failures() -> None:
    ui = pytest.importorskip("ui")
    clock = _Clock()
    lim = ui.LoginLimiter(max_failures=5, window_s=60, max_lockout_s=3600, clock=clock)
    for _ in range(4):
        assert lim.failed("10.0.0.1") == 0
        clock.t += 1
    assert lim.retry_after("10.0.0.1") == 0
    assert lim.failed("10.0.0.1") == 60          # the 5th failure within 60 s
    assert lim.retry_after("10.0.0.1") == 60
    assert lim.retry_after("10.0.0.2") == 0      # per address
    clock.t += 59.5
    assert 0 < lim.retry_after("10.0.0.1") <= 0.5
    clock.t += 1
    assert lim.retry_after("10.0.0.1") == 0
    for _ in range(4):
        lim.failed("10.0.0.1")
    assert lim.failed("10.0.0.1") == 120         # the second lockout doubles
    clock.t += 121
    lim.succeeded("10.0.0.1")                    # a correct login forgets the record
    for _ in range(4):
        assert lim.failed("10.0.0.1") == 0
    assert lim.failed("10.0.0.1") == 60


def test_login_limiter_failures_spread_out_are_not_locked_out() -> None:
    ui = pytest.importorskip("ui")
    clock = _Clock()
    lim = ui.LoginLimiter(max_failures=5, window_s=60, clock=clock)
    for _ in range(20):                          # one typo every 15 s: never 5 within 60 s
        assert lim.failed("10.0.0.1") == 0
        clock.t += 15


def test_login_lockout_is_capped_and_forgotten_after_a_quiet_hour() -> None:
    ui = pytest.importorskip("ui")
    clock = _Clock()
    lim = ui.LoginLimiter(max_failures=5, window_s=60, max_lockout_s=3600, clock=clock)
    lockouts = []
    for _ in range(8):
        for _ in range(5):
            lockout = lim.failed("h")
        lockouts.append(lockout)
        clock.t += lockout
    assert lockouts == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    clock.t += 3601
    for _ in range(4):
        assert lim.failed("h") == 0
    assert lim.failed("h") == 60


def test_question_type_line_is_escaped():
    """The 「質問の種類」 line shows its label as text, and nothing when there is no label."""
    assert V.question_type_html("どの自治体か") == '<div class="sk-sub sk-qtype">質問の種類: どの自治体か</div>'
    assert "<b>" not in V.question_type_html("<b>x</b>") and "&lt;b&gt;" in V.question_type_html("<b>x</b>")
    assert V.question_type_html("") == ""
