"""Command-line arguments (issue 14, point 8): a Shift_JIS question on a UTF-8 terminal is read as
CP932 with a note instead of ending in a ``UnicodeEncodeError`` traceback; unreadable bytes and
counts below 1 are refused with exit status 2. The real ``seisaku`` command runs in subprocesses."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from search.cli import build_parser, recover_text

REPO = Path(__file__).resolve().parent.parent
CP932_NOTE = "質問を CP932 (Shift_JIS) として読みました"


def run_seisaku(*args: str | bytes, timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -m search.cli *args`` (bytes arguments are passed as they are) under a UTF-8 locale."""
    env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")
    env.pop("PYTHONIOENCODING", None)
    return subprocess.run([sys.executable, "-m", "search.cli", *args], cwd=REPO, env=env, capture_output=True,
                          timeout=timeout)


def sjis(text: str) -> bytes:
    """``text`` encoded as CP932 (Shift_JIS), as a Windows-made script or paste would pass it."""
    return text.encode("cp932")


# ------------------------------------------------------------------------------ counts


COUNT_OPTIONS = [("search", "-k"), ("wording", "-k"), ("compare", "--top")]


@pytest.mark.parametrize("command,option", COUNT_OPTIONS)
@pytest.mark.parametrize("value", ["-1", "0", "abc", "1.5"])
def test_counts_below_one_are_refused(command: str, option: str, value: str, capsys: pytest.CaptureFixture) -> None:
    """``compare --top -1``, ``wording -k 0``, … were accepted; now argparse refuses them: exit 2
    and a message naming the option and the rule."""
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([command, "学校給食", option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "1 以上の整数を指定してください" in err and value in err


@pytest.mark.parametrize("command,option", COUNT_OPTIONS)
def test_positive_counts_are_accepted(command: str, option: str) -> None:
    """A count of 1 or more passes unchanged, as an int."""
    args = build_parser().parse_args([command, "学校給食", option, "3"])
    assert getattr(args, option.lstrip("-")) == 3


def test_negative_count_through_the_real_command() -> None:
    """The real command: ``compare --top -1`` ends with exit 2 and no traceback, before any index
    or model is loaded."""
    proc = run_seisaku("compare", "学校給食", "--top", "-1", "--index", "/nonexistent/index", timeout=120)
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == 2 and "Traceback" not in err
    assert "1 以上の整数を指定してください" in err


# ------------------------------------------------------------------------------ question encoding


def test_recover_text_reads_surrogate_escaped_cp932() -> None:
    """Bytes that are not UTF-8 arrive in ``sys.argv`` as surrogate escapes; their bytes are read
    as CP932. A clean argument is returned unchanged."""
    if sys.getfilesystemencoding().lower().replace("-", "") != "utf8":
        pytest.skip("needs a UTF-8 file-system encoding")
    q = "学校給食センターの民間委託"
    assert recover_text(q) == (q, None)
    assert recover_text(os.fsdecode(sjis(q))) == (q, "cp932")


def test_unreadable_question_is_one_error_line() -> None:
    """Bytes that are neither UTF-8 nor CP932 (a truncated Shift_JIS character): one error line,
    exit 2, no traceback."""
    proc = run_seisaku("answer", b"\x8aw\x8dZ\x81", "--index", "/nonexistent/index", timeout=120)
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == 2 and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("エラー: 質問を読めません"), err


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """``--corpus``/``--index`` arguments of a built small index (tests.test_store.DOCS)."""
    from tests.test_store import build_small_index, test_settings

    tmp = build_small_index(tmp_path_factory.mktemp("cli_args"))
    s = test_settings(tmp)
    return ["--corpus", str(s.corpus_dir), "--index", str(s.index_dir)]


def _run_json(small_index: list[str], command: str, question: str) -> object:
    """Run ``command`` with ``question`` in Shift_JIS and ``--json``; check the CP932 note, exit 0
    and no traceback; return the parsed JSON."""
    proc = run_seisaku(command, sjis(question), *small_index, "--json")
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "UnicodeEncodeError" not in err
    assert CP932_NOTE in err
    return json.loads(proc.stdout.decode("utf-8"))


#: command, Shift_JIS question, the JSON key that echoes it, and what the answer must name
#: outside that echo.
SJIS_QUESTIONS = [
    ("answer", "学校給食センターをPFIで建て替える自治体", "query", "A市"),
    ("compare", "公共施設の統廃合", "topic", "B町"),
    ("wording", "書かない窓口の実現", "text", "書かない窓口"),
    ("search", "ごみ処理施設の共同運営", "query", "C村"),
]


@pytest.mark.slow
@pytest.mark.parametrize("command,question,echo,found", SJIS_QUESTIONS, ids=[c[0] for c in SJIS_QUESTIONS])
def test_shift_jis_question(small_index: list[str], command: str, question: str, echo: str | None, found: str) -> None:
    """``answer`` ended in a UnicodeEncodeError traceback and ``search`` said
    「該当する文書は見つかりませんでした」; now every command reads the Shift_JIS question (CP932 note,
    exit 0), echoes it decoded and finds what it asks for."""
    out = _run_json(small_index, command, question)
    assert out[echo] == question
    rest = {k: v for k, v in out.items() if k != echo}
    assert found in json.dumps(rest, ensure_ascii=False)


@pytest.mark.slow
def test_shift_jis_municipality_filter(small_index: list[str]) -> None:
    """A Shift_JIS ``--municipality`` filter is read the same way (note on stderr, filter applied)."""
    proc = run_seisaku("search", "施設", "--municipality", sjis("B町"), *small_index, "--json")
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "自治体名を CP932 (Shift_JIS) として読みました" in err
    out = json.loads(proc.stdout.decode("utf-8"))["results"]
    assert out and {r["municipality"] for r in out} == {"B町"}


@pytest.mark.slow
def test_contradictory_filters_are_named_on_the_command_line(small_index: list[str]) -> None:
    """`seisaku search` with a municipality and a prefecture it is not in said only 「見つかりません」;
    it now names the filters that exclude every document."""
    proc = run_seisaku("search", "ごみ処理の広域化", "--municipality", "C村", "--prefecture", "北海道", *small_index)
    out = proc.stdout.decode("utf-8")
    assert proc.returncode == 0, proc.stderr.decode("utf-8")
    assert "C村" in out and "北海道" in out and "すべて満たす文書はありません" in out
