"""Outputs written whole or not at all: beside the file they replace, then moved over it.

A run stopped half way (Ctrl-C, SIGTERM from a scheduler, SIGHUP from a closed session, a full disk, an error) leaves
the file as it was, where writing in place truncated it: a later step would read half a portfolio. Shared by
``audit export --out`` and ``batch --records``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def replaced_whole(out: Path) -> Iterator[Path]:
    """The path to write ``out``'s new content to, moved over ``out`` when the block ends without an error.

    Written beside the file ``out`` names (through a symbolic link: the link stays, its file is replaced), as a
    new hidden ``.NAME.*.partial`` file of a name no other run can hold (created exclusively; written, and given its
    mode, without following a link), readable by its owner alone while written, then moved over it with its mode
    and group (a 600 file of client data stays the owner's). A folder others may write to without the sticky bit
    lets them swap the partial file before the rename: keep outputs out of such folders. A file the user may write
    but not add to its folder is written in place. An error names ``out``, not the partial file; in the main thread
    SIGTERM and SIGHUP, when left to their default, clean up as Ctrl-C does (exit 143 and 129), so no partial file of
    client data is left behind.
    """
    import signal
    import stat
    import tempfile

    target = Path(os.path.realpath(out))
    if not os.access(target.parent, os.W_OK) and os.access(target, os.W_OK):
        yield target
        return
    before = target.stat() if target.exists() else None
    mode = stat.S_IMODE(before.st_mode) if before is not None else 0o666 & ~_umask()
    previous = _cleaning_on_stop()
    partial: Path | None = None
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")  # 0o600, O_EXCL
        os.close(fd)
        partial = Path(name)
        yield partial
        _take_over(partial, mode, before)
        partial.replace(target)
    except OSError as e:
        ours = partial is None or e.filename is None or Path(e.filename) in (partial, target)  # None: mkstemp's
        if not ours:
            raise  # another file's (an input read in the block): its own name
        raise OSError(e.errno, e.strerror or str(e), str(out)) from None
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _take_over(partial: Path, mode: int, before: os.stat_result | None) -> None:
    """The target's group and mode given to the partial file, through a descriptor that follows no link. A group the
    writer cannot give (not its own) leaves the writer's: its group bits are cleared then, so the writer's group
    does not gain what the target's had (a 640 export of client data stays readable by its owner)."""
    fd = os.open(partial, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        if before is not None and before.st_gid != os.fstat(fd).st_gid:
            try:
                os.fchown(fd, -1, before.st_gid)
            except OSError:
                mode &= ~0o070
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


@contextlib.contextmanager
def text_written_whole(out: Path) -> Iterator[Any]:
    """:func:`replaced_whole` as an open text file (UTF-8), opened without following a link."""
    with replaced_whole(out) as path:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0))
        with open(fd, "w", encoding="utf-8") as fh:
            yield fh


def _umask() -> int:
    """The process's umask, read without setting it where the system tells it (Linux): setting it to read it back
    would leave it 0 for a moment, and a file another thread creates then would be writable by anyone."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o077)  # elsewhere: the strictest mask for that moment, never a wider one
    os.umask(umask)
    return umask


def _cleaning_on_stop() -> dict[int, Any]:
    """SIGTERM and SIGHUP made to clean up as Ctrl-C does, and the handlers they had: only those left to their
    default (an ignored SIGHUP, as under nohup, stays ignored; an application's own handler, in Python or set
    outside it, stays its own), and only in the main thread (Python sets handlers there alone)."""
    import signal

    if not _main_thread():
        return {}
    stops = (signal.SIGTERM, signal.SIGHUP) if hasattr(signal, "SIGHUP") else (signal.SIGTERM,)
    return {sig: signal.signal(sig, _stopped) for sig in stops if signal.getsignal(sig) is signal.SIG_DFL}


def _stopped(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # the clean-up runs (a killed run leaves no partial file)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
