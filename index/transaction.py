"""The write transaction of an index: the build lock, temporary directories, the swap, recovery.

Every writer (:mod:`index.build`, :mod:`index.update`) resolves its paths first
(:func:`real_paths`), holds :func:`build_lock` (``<index_dir>.lock``, an OS file lock released
if the process dies), puts back an index a crash left aside (:func:`_recover`), builds into a
sibling temporary directory ``<index_dir>.tmp-<pid>`` (:func:`_new_tmp`) and swaps it in
(:func:`_swap_in`: rename the old index aside to ``<index_dir>.old-<pid>``, rename the new one
in, delete the old one), so a crash at any moment leaves the previous index loadable. A failed
write is reported with :func:`write_failure_message` (the text of an ``IndexWriteError``).
"""
from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from index.config import Settings
from index.errors import IndexBusyError, IndexWriteError
from index.store import INDEX_JSON


def write_failure_message(where: Path, e: BaseException) -> str:
    """A user message for a failed write of ``where`` (disk full, permission, other I/O error)."""
    import errno

    code = getattr(e, "errno", None)
    text = str(e)
    if code in (errno.ENOSPC, errno.EDQUOT) or "disk is full" in text or "No space" in text:
        why = "ディスクの空き容量が足りません / no space left on device"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS) or "readonly" in text or "read-only" in text:
        why = "書き込む権限がありません（読み取り専用） / permission denied or read-only file system"
    else:
        why = "書き込みに失敗しました / write failed"
    return (
        f"{where} に書き込めませんでした: {why}（{type(e).__name__}: {e}）。"
        f"以前のインデックスはそのまま使えます。空き容量と書き込み権限を確認してから、もう一度実行してください。"
        f" The previous index is unchanged."
    )


def real_paths(settings: Settings) -> Settings:
    """``settings`` with ``index_dir`` and ``corpus_dir`` resolved (``~`` expanded, symbolic links
    followed: ``os.path.realpath``). Every writer resolves first, so an ``--index`` given as a
    link and its target are one index, with one lock file beside the real directory, and the swap
    replaces the real directory instead of the link."""
    return settings.with_overrides(
        index_dir=Path(os.path.realpath(Path(settings.index_dir).expanduser())),
        corpus_dir=Path(os.path.realpath(Path(settings.corpus_dir).expanduser())),
    )


def _sibling(index_dir: Path, suffix: str) -> Path:
    return index_dir.with_name(index_dir.name + suffix)


def lock_path(index_dir: Path) -> Path:
    """The lock file of an index directory: ``<index_dir>.lock`` (beside it, since it is swapped)."""
    return _sibling(Path(index_dir), ".lock")


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[Path]:
    """Hold the exclusive build lock of ``index_dir``; raise :class:`IndexBusyError` if taken.

    The lock is :class:`filelock.FileLock` on ``<index_dir>.lock`` (``flock`` on POSIX): the
    operating system releases it when the holding process exits or is killed, so it never goes
    stale. The holder writes its process id into the file, for the busy message of the next one.
    """
    from filelock import FileLock, Timeout

    index_dir = Path(index_dir)
    path = lock_path(index_dir)
    try:
        index_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise IndexWriteError(write_failure_message(path, e)) from e
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout as e:
        raise IndexBusyError(_busy_message(index_dir, path)) from e
    except OSError as e:
        raise IndexWriteError(write_failure_message(path, e)) from e
    try:
        _write_holder(path)
        yield path
    finally:
        lock.release()


def _write_holder(path: Path) -> None:
    """Write ``<pid> <UTC time>`` into the held lock file (it names the holder in the busy message)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {datetime.now(timezone.utc).isoformat()}\n".encode())
        finally:
            os.close(fd)


def _busy_message(index_dir: Path, path: Path) -> str:
    holder = ""
    with contextlib.suppress(OSError):
        holder = path.read_text(encoding="utf-8").split()[0]
    who = f"（プロセス {holder}）" if holder else ""
    return (
        f"インデックス {index_dir} は別の処理{who}が作成・更新中です。終わってからもう一度実行してください。"
        f" Another build is running on this index (lock file {path}); wait for it to finish."
    )


def _stale_tmp_dirs(index_dir: Path) -> list[Path]:
    return sorted(p for p in index_dir.parent.glob(index_dir.name + ".tmp-*") if p.is_dir())


def _recover(index_dir: Path) -> None:
    """Under the lock: put back an index a crash left aside and delete leftover ``.old-*`` dirs."""
    olds = sorted(index_dir.parent.glob(index_dir.name + ".old-*"), key=lambda p: p.stat().st_mtime)
    if not (index_dir / INDEX_JSON).is_file():
        good = [p for p in olds if (p / INDEX_JSON).is_file()]
        if good:
            if index_dir.exists():
                shutil.rmtree(index_dir, ignore_errors=True)
            os.rename(good[-1], index_dir)
            olds = [p for p in olds if p != good[-1]]
    for p in olds:
        shutil.rmtree(p, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _swap_in(tmp: Path, index_dir: Path) -> None:
    """Replace ``index_dir`` by the complete directory ``tmp``: rename aside, rename in, delete."""
    old = None
    if index_dir.exists():
        old = _sibling(index_dir, f".old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.rename(index_dir, old)
    try:
        os.rename(tmp, index_dir)
    except BaseException:
        if old is not None:  # put the previous index back at once
            with contextlib.suppress(OSError):
                os.rename(old, index_dir)
        raise
    _fsync_dir(index_dir.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _new_tmp(index_dir: Path) -> Path:
    tmp = _sibling(index_dir, f".tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def begin_build(index_dir: Path) -> tuple[Path, list[Path]]:
    """Start a build of ``index_dir`` (the caller holds its lock): finish or undo an interrupted
    swap, then return this build's temp dir and the temp dirs of builds that died — none is in
    use, since we hold the lock; their embedding caches are read as extra sources, and they are
    deleted once the new index is in place. Shared by the local and the Ray build."""
    _recover(index_dir)
    own_tmp = _sibling(index_dir, f".tmp-{os.getpid()}")
    return own_tmp, [p for p in _stale_tmp_dirs(index_dir) if p != own_tmp]
