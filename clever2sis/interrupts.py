"""Stopping cleanly on SIGTERM and SIGINT: the one module of the library that touches signal handlers.

systemd stopping a service, a Kubernetes eviction and ``timeout`` send SIGTERM; Ctrl-C sends SIGINT. By
default Python dies on the first and raises :class:`KeyboardInterrupt` for the second. A command that must
end tidily (the nightly ``sync``: record how the run ended, print its JSON line, remove half-written
directories, keep a posted import's id) wraps itself in :func:`raise_on_signals`; from then on either
signal raises :class:`Interrupted` in the main thread, wherever it is.

:class:`Interrupted` derives from :class:`BaseException`, as :class:`KeyboardInterrupt` does, so an
``except Exception`` in library code never swallows it, while every ``with`` and ``finally`` on the way out
still runs (:func:`clever2sis.atomic.atomic_directory` removes its ``.<name>.partial-*`` directory). Library
code only ever catches it, through :func:`interruption`; only the CLI calls :func:`raise_on_signals`.

:func:`deferred` holds a signal back for the few lines that must not be cut in two (writing down how a run
ended); the signal is raised as the block ends. Exit codes follow the shell's convention, 128 + the signal
number: 130 for SIGINT, 143 for SIGTERM.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SIGNAL_EXIT_BASE = 128
EXIT_SIGINT = SIGNAL_EXIT_BASE + signal.SIGINT
EXIT_SIGTERM = SIGNAL_EXIT_BASE + signal.SIGTERM


class Interrupted(BaseException):
    """A stop signal arrived; ``signum`` says which, :attr:`exit_code` is the process's exit code."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return SIGNAL_EXIT_BASE + self.signum

    def __str__(self) -> str:
        return f"interrupted by {self.name}"


def interruption(error: BaseException) -> Interrupted | None:
    """``error`` as an :class:`Interrupted` (a :class:`KeyboardInterrupt` is SIGINT); None for the rest."""
    if isinstance(error, Interrupted):
        return error
    if isinstance(error, KeyboardInterrupt):
        return Interrupted(signal.SIGINT)
    return None


@dataclass
class _State:
    depth: int = 0
    pending: list[int] = field(default_factory=list)


_STATE = _State()


def _handler(signum: int, _frame: FrameType | None) -> None:
    if _STATE.depth:
        _STATE.pending.append(signum)
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def raise_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise :class:`Interrupted`; the previous handlers come back after.

    Outside the main thread (where Python delivers signals) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _handler) for number in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold back a stop signal until the block ends, then raise it (the first that came)."""
    _STATE.depth += 1
    try:
        yield
    finally:
        _STATE.depth -= 1
        if not _STATE.depth and _STATE.pending:
            signum = _STATE.pending[0]
            _STATE.pending.clear()
            raise Interrupted(signum)
