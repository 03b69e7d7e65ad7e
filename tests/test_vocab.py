"""The vocabulary as data (search/vocab/*.tsv and the user's vocab_files): loading, errors, user files.

Real files, the real tokenizer (fugashi); a user file is tried in a fresh process (the vocabulary is
the process's), started with a config file that names it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from index.config import load_settings
from search import question, sentences, vocab
from search.vocab import KINDS, VOCAB, VocabError, bundled_files, read_vocab_file

ROOT = Path(__file__).resolve().parent.parent
#: The areas of administrative vocabulary the bundled groups are sorted into (issue 11, point 5).
AREAS = ("行革", "財政", "予算用語", "公共施設", "DX", "人事・定員", "PPP/PFI", "広域連携", "窓口", "給食", "ごみ", "防災")


def test_bundled_files_load_into_the_module_level_names():
    """Every bundled file parses; the names callers import are the loaded containers themselves."""
    files = bundled_files()
    assert {f.name for f in files} >= {"paraphrases.tsv", "frames.tsv", "question_types.tsv"}
    entries = [e for f in files for e in read_vocab_file(f)]
    assert entries and {e.kind for e in entries} <= KINDS and all(e.note for e in entries)
    assert sentences.EQUIVALENTS is VOCAB.groups and len(VOCAB.groups) >= 60
    assert question.QUESTION_FRAME_TERMS is VOCAB.question_frame and "自治体" in question.QUESTION_FRAME_TERMS
    assert question.ANSWER_FRAME_TERMS is VOCAB.answer_frame and "書きぶり" in question.ANSWER_FRAME_TERMS
    assert question.FRAME_SUFFIXES is VOCAB.frame_suffixes
    assert question.FRAME_SUFFIXES.index("という書き方") < question.FRAME_SUFFIXES.index("書き方")  # longest first


def test_bundled_groups_are_general_and_sorted_by_area():
    """Each group names its area; no spelling is in two groups; every area has several groups."""
    groups = [e for e in read_vocab_file(vocab.BUNDLED_DIR / "paraphrases.tsv") if e.kind == "group"]
    assert all(any(e.note.startswith(a) for a in AREAS) for e in groups), [e.note for e in groups
                                                                         if not any(e.note.startswith(a) for a in AREAS)]
    for area in AREAS:
        assert sum(1 for e in groups if e.note.startswith(area)) >= 3, area
    members = [vocab.norm(m) for e in groups for m in e.entry.split("|")]
    assert len(members) == len(set(members))


@pytest.mark.parametrize(("line", "says"), [
    ("group\t指定管理|指定管理者", "3 tab-separated columns"),
    ("synonym\t指定管理|指定管理者\t公共施設", "unknown kind"),
    ("group\t指定管理\t公共施設", "two or more"),
    ("group\t指定管理||指定管理者\t公共施設", "two or more"),
    ("frame\t\t空", "empty entry"),
    ("frame\t自治体\t ", "empty note"),
])
def test_a_malformed_line_is_named_by_file_and_line(tmp_path: Path, line: str, says: str):
    """The error names file:line and what is wrong; comments and blank lines are skipped."""
    f = tmp_path / "mine.tsv"
    f.write_text("# my vocabulary\n\ngroup\t電算|電子計算機\t自前: 古い言い方\n" + line + "\n", encoding="utf-8")
    with pytest.raises(VocabError) as e:
        read_vocab_file(f)
    assert f"{f}:4:" in str(e.value) and says in str(e.value)


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path):
    f = tmp_path / "sjis.tsv"
    f.write_bytes("group\t電算|電子計算機\t古い言い方\n".encode("cp932"))
    with pytest.raises(VocabError, match="sjis.tsv"):
        read_vocab_file(f)


def test_config_vocab_files_are_relative_to_the_config_file(tmp_path: Path):
    cfg = tmp_path / "conf" / "config.toml"
    cfg.parent.mkdir()
    cfg.write_text('vocab_files = ["mine.tsv", "/abs/other.tsv"]\n', encoding="utf-8")
    s = load_settings(cfg)
    assert s.vocab_files == (tmp_path / "conf" / "mine.tsv", Path("/abs/other.tsv"))
    with pytest.raises(ValueError, match="vocab_files"):
        load_settings(cfg, vocab_files="mine.tsv")


_PROBE = """
import json, sys
from search.sentences import concept_coverage
from search.qtype import question_type
q, text = sys.argv[1], sys.argv[2]
print(json.dumps({"coverage": concept_coverage(q, text), "type": question_type(sys.argv[3])}))
"""

QUESTION = "マスコットキャラクターを活用したシティプロモーション"
PASSAGE = "ゆるキャラを使って市の魅力発信に取り組む"
TYPE_Q = "公共施設の再配置の試算"


def _probe(env_extra: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "SEISAKU_CONFIG"}
    env.update(env_extra, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", _PROBE, QUESTION, PASSAGE, TYPE_Q], capture_output=True, text=True,
                         env=env, cwd=str(ROOT), timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_user_file_adds_groups_that_change_concept_coverage(tmp_path: Path):
    """Without the user's file the passage covers none of the question's concepts; with it (named
    by vocab_files in the config), the mascot and the city-promotion concepts are present, and a
    user question-type cue applies."""
    (tmp_path / "mine.tsv").write_text(
        "# 広報の言い換え\n"
        "group\tゆるキャラ|マスコットキャラクター|ご当地キャラクター\t広報: mascot characters\n"
        "group\tシティプロモーション|シティセールス|魅力発信\t広報: promoting the city\n"
        "fact\t試算$\t自前: 「…の試算」 asks for a figure\n", encoding="utf-8")
    cfg = tmp_path / "config.toml"
    cfg.write_text('vocab_files = ["mine.tsv"]\n', encoding="utf-8")
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    before = _probe({"SEISAKU_CONFIG": str(empty)})
    after = _probe({"SEISAKU_CONFIG": str(cfg)})
    assert before == {"coverage": 0.0, "type": "which"}
    assert after["coverage"] == pytest.approx(2 / 3) and after["type"] == "fact"


def test_the_cli_names_a_malformed_user_file(tmp_path: Path):
    """`seisaku --config` with a broken vocab file: one error line naming file:line, exit status 2."""
    (tmp_path / "bad.tsv").write_text("group\t電算|電子計算機\t古い言い方\ngroup 電算\n", encoding="utf-8")
    cfg = tmp_path / "config.toml"
    cfg.write_text('vocab_files = ["bad.tsv"]\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "SEISAKU_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-m", "search.cli", "chunks", "--config", str(cfg), "--corpus", str(tmp_path)],
                         capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"{tmp_path / 'bad.tsv'}:2:" in out.stderr


_ENGINE_PROBE = """
import json, sys
from pathlib import Path
from index.config import load_settings
from search.engine import Engine
from search.qtype import question_type
before = question_type(sys.argv[2])
settings = load_settings().with_overrides(index_dir=Path(sys.argv[1]), vocab_files=(Path(sys.argv[3]),))
engine = Engine(settings.index_dir, settings)
print(json.dumps({"before": before, "after": question_type(sys.argv[2]),
                  "engine_type": engine.search(sys.argv[2], k=1) and engine.last_query_info.question_type}))
"""


@pytest.mark.slow
def test_an_engine_built_from_settings_adds_their_vocab_files(tmp_path: Path, built_index):
    """A library caller that hands ``Engine`` settings with ``vocab_files`` (no config file, no
    CLI) gets the user's cues: the question is typed by them before the engine searches."""
    (tmp_path / "mine.tsv").write_text("fact\t試算$\t自前: 「…の試算」 asks for a figure\n", encoding="utf-8")
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "SEISAKU_CONFIG"}
    env.update(SEISAKU_CONFIG=str(empty), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", _ENGINE_PROBE, str(built_index.index_dir), TYPE_Q,
                          str(tmp_path / "mine.tsv")], capture_output=True, text=True, env=env, cwd=str(ROOT),
                         timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"before": "which", "after": "fact", "engine_type": "fact"}
