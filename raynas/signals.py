"""Stop signals: SIGTERM ends a command exactly as Ctrl-C does.

``ray job stop``, ``kill``, a batch scheduler's preemption and a container stop all send SIGTERM. Python's
default for it kills the process on the spot, and ``ray.init`` replaces that with ``sys.exit``, which an
error path cannot tell from a failed start. While a command runs under :func:`stop_signals`, SIGTERM and
Ctrl-C both raise :class:`Stopped` (a ``KeyboardInterrupt``) in the main thread, so every path that keeps an
interrupted run and prints its ``--resume`` command serves both. Whoever handles Ctrl-C more gently in the
meantime (Ray Tune ends its trials and saves its state) gets SIGTERM the same way. :func:`deferred` holds a
stop back while files that must agree with each other are written.

The exit status is 128 + the signal's number, the shell's convention: 130 after Ctrl-C, 143 after SIGTERM.
Plain standard library: nothing here imports torch or Ray.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """A stop signal (Ctrl-C or SIGTERM) raised in the main thread: the command ends as interrupted."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


_installed = False  # stop_signals is active (the CLI's main runs)
_received: int | None = None  # the last stop signal this command received
_pending: int | None = None  # a stop held back by deferred()
_defer_depth = 0
_winding_down = False  # the command is ending anyway: further SIGTERMs are ignored


def received() -> int | None:
    """The last stop signal received since :func:`stop_signals` began (None: none)."""
    return _received


def exit_status(exc: BaseException | None = None) -> int:
    """128 + the signal that stopped the command (``exc``'s, else the last received; Ctrl-C by default)."""
    signum = getattr(exc, "signum", None) or _received or signal.SIGINT
    return 128 + int(signum)


def _handler(signum: int, frame: FrameType | None) -> None:
    global _received, _pending
    if _winding_down and signum == signal.SIGTERM:
        return
    _received = signum
    if _defer_depth:
        _pending = signum
        return
    if signum == signal.SIGTERM:
        gentle = signal.getsignal(signal.SIGINT)
        if callable(gentle) and gentle not in (_handler, signal.default_int_handler):
            gentle(signal.SIGINT, frame)  # e.g. Tune's: it ends its trials, saves its state and returns
            return
    raise Stopped(signum)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM raise :class:`Stopped` while the body runs; the previous handlers come back after.
    Outside the main thread (where Python allows no handler) this does nothing."""
    global _installed, _received, _pending, _defer_depth, _winding_down
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    was = _installed
    _installed, _received, _pending, _defer_depth, _winding_down = True, None, None, 0, False
    for s in STOP_SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        _installed = was
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def wind_down() -> None:
    """The command is ending (reporting, its last upload): a further SIGTERM must not cut that short. The
    hard stop that follows a SIGTERM (``ray job stop``'s SIGKILL) stays possible; Ctrl-C still interrupts."""
    global _winding_down
    _winding_down = True


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold a stop signal back until the body ends (then raise it): for writes that must land together, such
    as a round's result rows and the search state that says the round is done."""
    global _defer_depth, _pending
    if not _installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    _defer_depth += 1
    try:
        yield
    finally:
        _defer_depth -= 1
    if not _defer_depth and _pending is not None:  # the body completed: now stop
        signum, _pending = _pending, None
        raise Stopped(signum)


@contextlib.contextmanager
def keep_handlers() -> Iterator[None]:
    """Put the caller's Ctrl-C and SIGTERM handlers back after the body. ``ray.init`` installs its own for
    SIGTERM (``sys.exit``, which skips every "interrupted" path; its logger adds a crash handler that aborts the
    process), and Tune's ``fit`` leaves its Ctrl-C handler installed after it returns."""
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            for s, h in previous.items():
                if callable(h):
                    signal.signal(s, h)
