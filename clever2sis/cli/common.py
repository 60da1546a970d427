"""Plumbing shared by the commands: the settings file, the outside world a command talks to
(:class:`CanvasRuntime`), progress on stderr, error messages and exit codes.

Everything the commands print about a failure or progress goes through :data:`SECRETS`, the redactor of
every token this process has read (each command hands its tokens over with :func:`keep_secret` as it reads
them): an error message, a ``--verbose`` traceback, the traceback of a bug, a progress line.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click

from clever2sis.config import CONFIG_ENV, DEFAULT_CONFIG_NAME, RawConfig, config_warnings, load_config
from clever2sis.errors import Clever2SisError
from clever2sis.interrupts import Interrupted
from clever2sis.secrets import Redactor

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")

EXIT_OK = 0
EXIT_BUG = 1
EXIT_INTERRUPTED = 130

SECRETS = Redactor()


def keep_secret(token: str) -> str:
    """``token``, now redacted from everything the CLI prints (see :data:`SECRETS`)."""
    SECRETS.add(token)
    return token


def verbose_option(function: Callable[..., T]) -> Callable[..., T]:
    return click.option(
        "--verbose",
        "-v",
        is_flag=True,
        help="Name the config file read; show a traceback when something fails.",
    )(function)


def config_option(function: Callable[..., T]) -> Callable[..., T]:
    """``--config FILE``, as ``config_path``: the one settings option of every command that reads settings.

    Resolution (flag, then the environment variable, then the file in the current directory) is the
    library's (:func:`clever2sis.config.find_config`), so that every command finds the same file.
    """
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path),
        metavar="FILE",
        help=f"Settings file (default: ${CONFIG_ENV}, else ./{DEFAULT_CONFIG_NAME} if present, else "
        "built-in defaults).",
    )(function)


def read_config(
    config_path: Path | None, *, verbose: bool = False, environ: Mapping[str, str] | None = None
) -> RawConfig:
    """Find and read the settings file as every command does; say on stderr which one and what looks wrong.

    With ``verbose``, one line names the file and how it was found. Every warning of
    :func:`clever2sis.config.config_warnings` is shown as ``warning: ...`` (``--quiet`` does not hide it).
    """
    raw = load_config(config_path, os.environ if environ is None else environ)
    if verbose:
        click.echo(raw.location.describe(), err=True)
    for warning in config_warnings(raw):
        click.echo(f"warning: {warning}", err=True)
    return raw


@dataclass(frozen=True)
class CanvasRuntime:
    """What the commands take from the outside world; tests replace it through the click context.

    ``clock`` times waits; ``now`` is the wall clock an upload's intent is stamped with.
    """

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    attachment_wait_s: float | None = None
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))


def current_runtime() -> CanvasRuntime:
    """The running command's :class:`CanvasRuntime` (``CliRunner.invoke(obj=...)``), else the real one."""
    obj = click.get_current_context().obj
    return obj if isinstance(obj, CanvasRuntime) else CanvasRuntime()


def read_canvas_config(config_path: Path | None, verbose: bool) -> RawConfig:
    """:func:`~clever2sis.cli.common.read_config`, with the environment of the :class:`CanvasRuntime`."""
    return read_config(config_path, verbose=verbose, environ=current_runtime().environ)


def use_arrow_memory() -> None:
    """Before a command that builds or reads Arrow tables: memory Arrow frees goes back to the system.

    Called by those commands only (not for every command), so that the others never import Arrow.
    """
    from clever2sis.memory import use_returning_allocator

    use_returning_allocator()


def quiet_option(function: Callable[..., T]) -> Callable[..., T]:
    return click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")(function)


class StderrProgress:
    """Progress lines on stderr, each stamped with the seconds since the command started."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            click.echo(f"[{time.monotonic() - self.started:6.1f}s] {SECRETS(message)}", err=True)


def run_command(
    action: Callable[[], T], *, verbose: bool = False, io_error: type[Clever2SisError] = Clever2SisError
) -> T:
    """Run ``action``; turn a library error into ``error: <message>`` on stderr and its exit code.

    With ``verbose`` the traceback comes first; the exit code stays the same. An ``OSError`` that no
    library function turned into one of its errors (a disk that filled, a permission taken away) is shown
    the same way, naming the file, with ``io_error``'s exit code: each command passes the error class whose
    code its exit-code table in docs/ gives for files it cannot read or write. Anything else that escapes
    ``action`` is a bug: its traceback and a line saying so, then exit 1. Every line is redacted
    (:data:`SECRETS`).
    """
    try:
        return action()
    except Clever2SisError as error:
        _fail(error, str(error), error.exit_code, verbose)
    except OSError as error:
        _fail(error, describe_os_error(error), io_error.exit_code, verbose)
    except Interrupted as stop:
        click.echo(f"{stop}; nothing was left half-written", err=True)
        sys.exit(stop.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; nothing was left half-written", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except (click.ClickException, click.exceptions.Abort, click.exceptions.Exit):
        raise
    except Exception as error:
        _echo_traceback(error)
        click.echo(
            f"error: unexpected {type(error).__name__} (a bug in clever2sis; please report it with the "
            "traceback above)",
            err=True,
        )
        sys.exit(EXIT_BUG)


def describe_os_error(error: OSError) -> str:
    """``<file>: <reason>`` for an OSError (the reason alone when it names no file)."""
    reason = error.strerror or str(error) or type(error).__name__
    return f"{error.filename}: {reason}" if error.filename is not None else reason


def _fail(error: BaseException, message: str, exit_code: int, verbose: bool) -> NoReturn:
    if verbose:
        _echo_traceback(error)
    click.echo(f"error: {SECRETS(message)}", err=True)
    sys.exit(exit_code)


def _echo_traceback(error: BaseException) -> None:
    click.echo(SECRETS("".join(traceback.format_exception(error))).rstrip("\n"), err=True)
