"""raynas's own progress display and output verbosity, shared by the Tune runs and the in-process searches.

On a terminal a progress bar redraws itself in place; where the stream is a file or a pipe (a job's log, ``>
log.txt``) a bar would write carriage returns and control characters into it, so plain lines are printed
instead, at most one every ``PLAIN_EVERY_S`` seconds (and at the end). ``--verbose`` (``set_verbose``) keeps
Ray's own console output (trial tables, its hints), which raynas otherwise silences.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import IO, Any

VERBOSE_ENV = "RAYNAS_VERBOSE"
PLAIN_EVERY_S = 30.0  # a redirected log gets a progress line at most this often
BAR_WIDTH = 20


def set_verbose(on: bool) -> None:
    """``raynas --verbose``: also show Ray's own output. Kept in the environment, so Ray workers and the trials
    this process starts see it too."""
    if on:
        os.environ[VERBOSE_ENV] = "1"
    else:
        os.environ.pop(VERBOSE_ENV, None)


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def interactive(stream: IO[str] | None = None) -> bool:
    """A terminal that redraws a line in place (not a file, a pipe or ``TERM=dumb``)."""
    stream = stream if stream is not None else sys.stderr
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
    return tty and os.environ.get("TERM", "") != "dumb"


def duration(seconds: float) -> str:
    """``1h02m``, ``3m05s``, ``42s``: short enough for a progress line."""
    s = max(0, int(round(seconds)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class Progress:
    """Work done out of ``total`` (epochs, rounds, trials) with the elapsed time and an estimate of the rest.

    The estimate extrapolates the rate since the first update (work done before it, e.g. by a run resumed from
    its checkpoints, does not count as fast work). ``update`` may be called as often as wanted: a plain stream
    gets a line when the work advanced, at most every ``every`` seconds (and when it is complete), and a
    heartbeat line every ``10 * every`` seconds while nothing advances."""

    def __init__(self, desc: str, total: float | None, unit: str, *, stream: IO[str] | None = None,
                 every: float = PLAIN_EVERY_S, clock: Callable[[], float] = time.monotonic,
                 bar: bool | None = None) -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.every, self.clock = every, clock
        self.bar = interactive(self.stream) if bar is None else bar
        self.done = 0.0
        self.finished = False
        self._start: float | None = None
        self._done_at_start = 0.0
        self._printed_at: float | None = None
        self._printed: tuple[float, float | None, bool] | None = None
        self._width = 0
        self._drawn = ""

    def begin(self, done: float = 0.0) -> None:
        """Start the clock now, with ``done`` already done, without a line: work whose first update comes only
        after its first unit (an EAGAN round) counts that unit's time in the elapsed time and the rate."""
        if self._start is None:
            self._start, self._done_at_start, self.done = self.clock(), done, done

    def update(self, done: float, note: str = "", *, total: float | None = None,
               finished: bool | None = None) -> None:
        """``done`` out of ``total`` (when given, it replaces the total); ``finished`` (default: done reached the
        total) says the work is over, e.g. a trial that reported its last epoch but has not ended yet is not."""
        now = self.clock()
        if total is not None:
            self.total = total
        if self._start is None:
            self._start, self._done_at_start = now, done
        self.done = done
        self.finished = self.total is not None and done >= self.total if finished is None else finished
        complete = self.finished
        if self.bar:
            text = self.line(note, now)
            if text != self._drawn:  # at most about once a second (the elapsed time), or when the work moves
                self._draw(text)
            return
        since = None if self._printed_at is None else now - self._printed_at
        changed = self._printed is None or self._printed != (done, self.total, complete)
        # a line when the work advanced (at most every ``every`` s, always at the end), else a heartbeat that
        # says it is alive every 10 x ``every`` s
        if since is None or (changed and (complete or since >= self.every)) or since >= 10 * self.every:
            self._write(f"raynas: {self.line(note, now)}\n")
            self._printed_at, self._printed = now, (done, self.total, complete)

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left at the rate so far, or None while there is no rate yet (or no total)."""
        if self._start is None or self.total is None:
            return None
        now = self.clock() if now is None else now
        gained, spent = self.done - self._done_at_start, now - self._start
        if gained <= 0 or spent <= 0:
            return None
        return max(0.0, (self.total - self.done) * spent / gained)

    def line(self, note: str = "", now: float | None = None) -> str:
        now = self.clock() if now is None else now
        parts = [f"{self.desc}:", self._count()]
        if self._start is not None:
            parts.append(f"{duration(now - self._start)} elapsed")
        left = self.eta(now)
        if self.finished:
            parts.append("done")
        elif left is not None:
            parts.append(f"ETA {duration(left)}")
        if note:
            parts.append(f"| {note}")
        return " ".join(parts)

    def _count(self) -> str:
        done = f"{self.done:g}" if self.done != int(self.done) else str(int(self.done))
        if self.total is None:
            return f"{done} {self.unit}"
        total = int(self.total) if float(self.total).is_integer() else self.total
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return f"{done}/{total} {self.unit} ({pct:.0f}%)"

    def _draw(self, text: str) -> None:
        self._drawn = text
        if self.total:
            filled = int(BAR_WIDTH * min(1.0, self.done / self.total))
            text = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {text}"
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self._write(f"\r{text}{' ' * pad}")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed log: progress is not worth failing a run for
            pass

    def close(self) -> None:
        """End a terminal's bar with a newline (a plain stream already ends every line)."""
        if self.bar and self._width:
            self._write("\n")
            self._width = 0

    def __getstate__(self) -> dict[str, Any]:  # a Tune callback is pickled with the run: never the stream
        state = dict(self.__dict__)
        state["stream"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.stream = sys.stderr
