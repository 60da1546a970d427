"""Plumbing shared by the commands: progress on stderr, error messages and exit codes."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TypeVar

import click

from clever2sis.errors import Clever2SisError

T = TypeVar("T")

EXIT_OK = 0
EXIT_INTERRUPTED = 130


def verbose_option(function: Callable[..., T]) -> Callable[..., T]:
    return click.option("--verbose", "-v", is_flag=True, help="Show a traceback when something fails.")(
        function
    )


def quiet_option(function: Callable[..., T]) -> Callable[..., T]:
    return click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")(function)


class StderrProgress:
    """Progress lines on stderr, each stamped with the seconds since the command started."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            click.echo(f"[{time.monotonic() - self.started:6.1f}s] {message}", err=True)


def run_command(action: Callable[[], T], *, verbose: bool = False) -> T:
    """Run ``action``; turn a library error into ``error: <message>`` on stderr and its exit code."""
    try:
        return action()
    except Clever2SisError as error:
        if verbose:
            raise
        click.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; nothing was left half-written", err=True)
        sys.exit(EXIT_INTERRUPTED)
