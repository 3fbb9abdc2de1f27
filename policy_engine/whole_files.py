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

    Written beside the file ``out`` names (through a symbolic link: the link stays, its file is replaced), as
    ``NAME.PID.partial``, readable by its owner alone while written, then moved over it with its permissions (a 600
    file of client data stays the owner's). A file the user may write but not add to its folder is written in
    place. An error names ``out``, not the partial file; in the main thread SIGTERM and SIGHUP, when left to their
    default, clean up as Ctrl-C does (exit 143 and 129), so no partial file of client data is left behind.
    """
    import signal
    import stat

    target = Path(os.path.realpath(out))
    if not os.access(target.parent, os.W_OK) and os.access(target, os.W_OK):
        yield target
        return
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else _default_mode()
    previous = _cleaning_on_stop()
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))  # the owner's alone while written
        yield partial
        os.chmod(partial, mode)
        partial.replace(target)
    except OSError as e:
        if e.filename is not None and Path(e.filename) not in (partial, target):
            raise  # another file's (an input read in the block): its own name
        raise OSError(e.errno, e.strerror or str(e), str(out)) from None
    finally:
        partial.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python


@contextlib.contextmanager
def text_written_whole(out: Path) -> Iterator[Any]:
    """:func:`replaced_whole` as an open text file (UTF-8)."""
    with replaced_whole(out) as path, path.open("w", encoding="utf-8") as fh:
        yield fh


def _default_mode() -> int:
    """The mode a new file gets here (0o666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _cleaning_on_stop() -> dict[int, Any]:
    """SIGTERM and SIGHUP made to clean up as Ctrl-C does, and the handlers they had: only those left to their
    default (an ignored SIGHUP, as under nohup, stays ignored; an application's own handler stays its own), and only
    in the main thread (Python sets handlers there alone; a worker's stop leaves the partial file)."""
    import signal

    if not _main_thread():
        return {}
    stops = (signal.SIGTERM, signal.SIGHUP) if hasattr(signal, "SIGHUP") else (signal.SIGTERM,)
    return {sig: signal.signal(sig, _stopped) for sig in stops if signal.getsignal(sig) in (signal.SIG_DFL, None)}


def _stopped(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # the clean-up runs (a killed run leaves no partial file)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
