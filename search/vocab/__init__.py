"""The vocabulary as data: paraphrase groups, question-frame words and question-type cues.

Every word list the search and answer views match questions with lives in the ``*.tsv`` files
beside this module (and in the user's own files, :attr:`index.config.Settings.vocab_files`).
This module is their one loader; :mod:`search.question`, :mod:`search.sentences` and
:mod:`search.qtype` read the loaded values.

File format (UTF-8, one entry per line, three tab-separated columns)::

    # comment lines and blank lines are ignored
    kind<TAB>entry<TAB>note

``note`` says where the entry comes from or why it is there (required). ``kind`` is one of
:data:`KINDS`:

- ``group``: a paraphrase group, members separated by ``|`` (「指定管理|指定管理者|指定管理者制度」);
- ``frame`` / ``frame-question`` / ``frame-answer``: a question-frame lemma for both sets, the
  engine's set (:data:`search.question.QUESTION_FRAME_TERMS`) or the answer views'
  (:data:`search.question.ANSWER_FRAME_TERMS`);
- ``frame-suffix``: a trailing request frame of a wording question (「という書き方」);
- ``which`` / ``compare`` / ``wording`` / ``fact``: a question-type cue (:mod:`search.qtype`); a
  trailing ``$`` means "only at the end of the question", ``…`` means "any short text between";
- ``not-cue``: text containing a cue that is not one (比較的, いつでも); ``ending``: a polite or
  request ending stripped before end cues are tested (「ですか」「を教えてください」).

A malformed line raises :class:`VocabError` naming the file and line.

The bundled files are read once, at import, then the ``vocab_files`` of the configuration
(:func:`index.config.load_settings`: ``$SEISAKU_CONFIG`` or the default config file). Entry points
that load another configuration (``seisaku --config``, ``ui.py --config``) call
:func:`use_vocab_files`, which adds files in place: the module-level sets and lists of
:mod:`search.question` and :mod:`search.sentences` are these same objects, and caches built on
them are cleared through :func:`on_change`.
"""
from __future__ import annotations

import threading
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from corpus.errors import SeisakuError

#: The bundled vocabulary files, read in name order.
BUNDLED_DIR = Path(__file__).resolve().parent

QTYPE_KINDS = ("which", "compare", "wording", "fact")
KINDS = frozenset({
    "group", "frame", "frame-question", "frame-answer", "frame-suffix",
    *QTYPE_KINDS, "not-cue", "ending",
})


class VocabError(SeisakuError, ValueError):
    """A vocabulary file that cannot be read or has a malformed line (the message names file:line)."""


@dataclass(frozen=True)
class VocabEntry:
    """One line of a vocabulary file."""

    kind: str
    entry: str
    note: str
    source: str  # "file:line"


def norm(text: str) -> str:
    """The comparison form of a vocabulary entry: NFKC, lower-cased, stripped."""
    return unicodedata.normalize("NFKC", text).strip().lower()


def read_vocab_file(path: str | Path) -> list[VocabEntry]:
    """The entries of one vocabulary file; :class:`VocabError` (``file:line: reason``) when a line
    is malformed or the file cannot be read as UTF-8."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise VocabError(f"{p}: 語彙ファイルを読めません / cannot read vocabulary file: {e}") from e
    out: list[VocabEntry] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{p}:{n}"
        cols = line.split("\t")
        if len(cols) != 3:
            raise VocabError(f"{where}: 列は3つ（種類<TAB>語<TAB>注記）/ expected 3 tab-separated columns "
                             f"(kind, entry, note), got {len(cols)}: {line!r}")
        kind, entry, note = (c.strip() for c in cols)
        if kind not in KINDS:
            raise VocabError(f"{where}: 種類 {kind!r} は不明 / unknown kind {kind!r} "
                             f"(one of {', '.join(sorted(KINDS))})")
        if not entry:
            raise VocabError(f"{where}: 語が空 / empty entry")
        if not note:
            raise VocabError(f"{where}: 注記が空 / empty note (say where the entry comes from)")
        if kind == "group":
            members = [m.strip() for m in entry.split("|")]
            if len(members) < 2 or not all(members):
                raise VocabError(f"{where}: 言い換えグループは「|」区切りで2語以上 / a group needs two or "
                                 f"more non-empty members separated by '|': {entry!r}")
        out.append(VocabEntry(kind, entry, note, where))
    return out


@dataclass
class Vocabulary:
    """The loaded vocabulary. Its containers are filled in place, so that names bound to them
    elsewhere (``from search.question import ANSWER_FRAME_TERMS``) see added files."""

    groups: list[tuple[str, ...]] = field(default_factory=list)
    question_frame: set[str] = field(default_factory=set)
    answer_frame: set[str] = field(default_factory=set)
    frame_suffixes: list[str] = field(default_factory=list)
    #: question-type cues: kind -> raw cue texts (NFKC), in file order
    cues: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in QTYPE_KINDS})
    not_cues: list[str] = field(default_factory=list)
    endings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def add(self, entries: Iterable[VocabEntry]) -> None:
        """Add entries (duplicates are skipped)."""
        for e in entries:
            v = norm(e.entry)
            if e.kind == "group":
                g = tuple(dict.fromkeys(norm(m) for m in e.entry.split("|")))
                if g not in self.groups:
                    self.groups.append(g)
            elif e.kind in ("frame", "frame-question", "frame-answer"):
                if e.kind != "frame-answer":
                    self.question_frame.add(v)
                if e.kind != "frame-question":
                    self.answer_frame.add(v)
            elif e.kind == "frame-suffix":
                _append_new(self.frame_suffixes, v)
            elif e.kind in QTYPE_KINDS:
                _append_new(self.cues[e.kind], v)
            elif e.kind == "not-cue":
                _append_new(self.not_cues, v)
            elif e.kind == "ending":
                _append_new(self.endings, v)
        # longest suffix first, so 「という書き方」 is stripped before 「書き方」 (stable for equal lengths)
        self.frame_suffixes.sort(key=len, reverse=True)

    def add_files(self, paths: Iterable[str | Path]) -> list[Path]:
        """Read and add each file not added yet; returns the files newly added. All files are
        read before any is added, so a malformed file leaves the vocabulary unchanged."""
        new: list[tuple[Path, list[VocabEntry]]] = []
        seen = {p.resolve() for p in self.files}
        for path in paths:
            p = Path(path).expanduser()
            if p.resolve() in seen:
                continue
            seen.add(p.resolve())
            new.append((p, read_vocab_file(p)))
        for p, entries in new:
            self.add(entries)
            self.files.append(p)
        return [p for p, _ in new]


def _append_new(items: list[str], value: str) -> None:
    if value not in items:
        items.append(value)


def bundled_files() -> list[Path]:
    """The vocabulary files shipped with seisaku (``search/vocab/*.tsv``)."""
    return sorted(BUNDLED_DIR.glob("*.tsv"))


#: The process's vocabulary: the bundled files, then the configured user files.
VOCAB = Vocabulary()
VOCAB.add_files(bundled_files())

_LISTENERS: list[Callable[[], None]] = []
_LOCK = threading.Lock()


def on_change(callback: Callable[[], None]) -> None:
    """Call ``callback`` (e.g. a cache's ``cache_clear``) whenever files are added."""
    _LISTENERS.append(callback)


def use_vocab_files(paths: Iterable[str | Path]) -> list[Path]:
    """Add the user's vocabulary files (``Settings.vocab_files``) to :data:`VOCAB`, once each;
    returns the files newly added. Raises :class:`VocabError` for a malformed file."""
    with _LOCK:
        added = VOCAB.add_files(paths)
        if added:
            for cb in _LISTENERS:
                cb()
    return added


def _configured_files() -> list[Path]:
    """``vocab_files`` of the default configuration; none when it cannot be read (the entry
    point that loads it reports the error)."""
    from index.config import load_settings

    try:
        return list(load_settings().vocab_files)
    except Exception:  # noqa: BLE001 - a broken config is reported by the entry point that loads it
        return []


use_vocab_files(_configured_files())
