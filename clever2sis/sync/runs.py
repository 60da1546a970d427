"""Run directories, the lock that keeps two runs apart, and the run log.

::

    RUNS_DIR/
      .lock                 flock'ed by the running sync (the kernel releases it when the process dies)
      history.sqlite        one row per run (see history.py)
      <run_id>/             run ids are UTC timestamps (20270105T060000Z), so they sort by time
        snapshot/           the pull
        build/              the build as uploaded (csv/, sis_import.zip, build.json, sync/, imports/)
        run.log             every progress line, time-stamped
        run.json            the run's outcome: what the JSON line on stdout says, and more

With ``[sync] keep_runs = N`` each run ends by removing the run directories older than the newest N, except
the ones the next runs need (see :func:`prune_run_dirs`); history.sqlite keeps every run's row.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import os
import re
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from types import TracebackType
from typing import IO

from clever2sis.errors import RunsDirError, SyncLockedError
from clever2sis.secrets import Redactor

LOCK_NAME = ".lock"
RUN_LOG_NAME = "run.log"
RUN_RECORD_NAME = "run.json"
SNAPSHOT_DIR_NAME = "snapshot"
BUILD_DIR_NAME = "build"
RUN_ID_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SAME_SECOND_RUNS = 100
RUN_ID_PATTERN = re.compile(r"\d{8}T\d{6}Z(-\d{2})?")
_REMOVING_PREFIX = ".removing-"

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def stamp(moment: dt.datetime) -> str:
    """ISO 8601 UTC to the second with a Z (sorts as a string)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RunLock:
    """An exclusive, non-blocking ``flock`` on ``RUNS_DIR/.lock`` held for the whole run.

    The lock belongs to the open file, not to the file's existence: a run killed with ``kill -9`` leaves
    the file behind but the kernel drops the lock with the process, so a stale file never blocks.
    """

    def __init__(self, runs_dir: Path) -> None:
        self.path = runs_dir / LOCK_NAME
        self._handle: IO[str] | None = None

    def acquire(self) -> RunLock:
        """Take the lock, or raise :class:`SyncLockedError` (another run holds it) or :class:`RunsDirError`.

        Apart from ``with``, so that a caller can tell "not taken" from what goes wrong while it is held.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a+", encoding="utf-8")
        except OSError as error:
            raise RunsDirError(f"cannot use runs directory {self.path.parent}: {error.strerror}") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise SyncLockedError(
                    f"another sync is running in {self.path.parent} ({holder}); this run did nothing"
                ) from None
            raise RunsDirError(f"cannot lock {self.path}: {error.strerror}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def __enter__(self) -> RunLock:
        """Take the lock, unless :meth:`acquire` already took it."""
        return self if self._handle is not None else self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def new_run_dir(runs_dir: Path, now: dt.datetime) -> tuple[str, Path]:
    """A fresh run directory named by ``now`` (UTC); a second run in the same second gets a suffix."""
    base = now.astimezone(dt.UTC).strftime(RUN_ID_FORMAT)
    for attempt in range(MAX_SAME_SECOND_RUNS):
        run_id = base if attempt == 0 else f"{base}-{attempt:02d}"
        path = runs_dir / run_id
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            continue
        except OSError as error:
            raise RunsDirError(f"cannot create run directory {path}: {error.strerror}") from None
        return run_id, path
    raise RunsDirError(f"{runs_dir}: {MAX_SAME_SECOND_RUNS} runs started in the same second {base}")


def prune_run_dirs(runs_dir: Path, keep: int, protected: Collection[str]) -> list[str]:
    """Remove the run directories older than the newest ``keep`` (0: remove none), never one in ``protected``
    (the running one, each profile's last applied run); return the run ids removed, oldest first.

    Only directories named like a run id are touched. Each is renamed to a hidden name before it is deleted,
    so a removal cut short never leaves something that looks like a run; such leftovers go on the next call.
    """
    import shutil  # here: history and doctor read the runs directory without it (nor its bz2 and lzma)

    if keep <= 0:
        return []
    for leftover in runs_dir.glob(f"{_REMOVING_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    runs = sorted(
        (path.name for path in runs_dir.iterdir() if path.is_dir() and RUN_ID_PATTERN.fullmatch(path.name)),
        reverse=True,
    )
    removed = []
    for run_id in reversed(runs[keep:]):
        if run_id in protected:
            continue
        doomed = runs_dir / f"{_REMOVING_PREFIX}{run_id}"
        (runs_dir / run_id).rename(doomed)
        shutil.rmtree(doomed)
        removed.append(run_id)
    return removed


class RunLog:
    """A progress callback that appends time-stamped lines to ``run.log`` and passes them on.

    Every line goes through :attr:`redact` (a :class:`~clever2sis.secrets.Redactor` of the secrets given,
    the tokens) first: they never reach the file, even if some message were to quote one.
    """

    def __init__(
        self, path: Path, *, clock: Clock, secrets: Iterable[str] = (), echo: Callable[[str], None]
    ) -> None:
        self.path = path
        self.clock = clock
        self.redact = Redactor(secrets)
        self.echo = echo
        self._handle = path.open("a", encoding="utf-8")

    def __call__(self, message: str) -> None:
        message = self.redact(message)
        self._handle.write(f"{stamp(self.clock())} {message}\n")
        self._handle.flush()
        self.echo(message)

    def close(self) -> None:
        self._handle.close()
