"""Progress of a long run on a terminal: one line on stderr that moves, nothing when piped.

A 10,000-record replay or a 100,000-row batch should not run in silence on a terminal, and
must not write carriage returns into a log file or a CI transcript. ``Progress`` is a counter
the work calls as it goes (``update(n)``, the signature click's progress bar has, so the batch
runner's ``progress=`` callback takes either); the line is redrawn at most ten times a second,
so calling it per chunk or per few thousand records costs nothing measurable.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO

REDRAW_SECONDS = 0.1


def _clock(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """Counts work done of ``total`` (None when unknown) under ``label``; silent unless stderr is a terminal.

    Use as a context manager; ``enabled`` and ``stream`` override the terminal check (tests).
    """

    def __init__(self, label: str, total: int | None = None, *, stream: IO[str] | None = None,
                 enabled: bool | None = None, unit: str = "") -> None:
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self.done = 0
        self._start = time.monotonic()
        self._drawn = 0.0
        self._width = 0

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        if self.enabled:
            self._draw(force=True)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """``n`` more items done."""
        self.done += n
        if self.enabled:
            self._draw()

    def clear(self) -> None:
        """Wipe the line so other output can be written; it is drawn again at the next update."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width, self._drawn = 0, 0.0

    def close(self) -> None:
        """The final figures, and the line ended so what follows starts on its own line."""
        if self.enabled:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False

    def line(self) -> str:
        """The progress line as it is drawn: done of total, percent, rate, time left (or elapsed)."""
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = self.done / elapsed
        unit = f" {self.unit}" if self.unit else ""
        if self.total:
            pct = min(100.0, 100.0 * self.done / self.total)
            left = (self.total - self.done) / rate if rate > 0 and self.done < self.total else 0.0
            tail = f"{_clock(elapsed)}" if self.done >= self.total else f"{_clock(left)} left" if self.done else ""
            return f"{self.label}: {self.done:,}/{self.total:,}{unit} {pct:5.1f}%  {rate:,.0f}/s  {tail}".rstrip()
        return f"{self.label}: {self.done:,}{unit}  {rate:,.0f}/s  {_clock(elapsed)}"

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < REDRAW_SECONDS:
            return
        self._drawn = now
        text = self.line()
        pad = " " * max(self._width - len(text), 0)  # wipe what a longer previous line left behind
        self._width = len(text)
        self.stream.write("\r" + text + pad)
        self.stream.flush()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-less stream: no terminal to draw on
        return False


def progress(label: str, total: int | None = None, unit: str = "") -> Progress:
    """A reporter on stderr: moves on a terminal, silent when stderr is piped or redirected."""
    return Progress(label, total, unit=unit)
