"""``clever2sis sync`` (the nightly job) and ``clever2sis history`` (what the runs did).

``sync`` resolves the profile and settings, builds the Clever and Canvas clients from environment tokens
and calls :func:`clever2sis.sync.pipeline.run_sync`. It always ends with one JSON line on stdout and exits
with the run's code, so a scheduler can act on either.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from clever2sis.canvas.client import CanvasClient
from clever2sis.canvas.sis_import import SisImports
from clever2sis.clever.client import CLEVER_API_BASE, CLEVER_API_VERSIONS, DEFAULT_API_VERSION, CleverClient
from clever2sis.clever.settings import API_BASE_ENV, API_VERSION_ENV, token_from_env
from clever2sis.cli.canvas import current_runtime, read_canvas_config
from clever2sis.cli.common import (
    SECRETS,
    StderrProgress,
    config_option,
    describe_os_error,
    keep_secret,
    quiet_option,
    run_command,
    verbose_option,
)
from clever2sis.config import build_settings, parse_sync, parse_upload, resolve_profile
from clever2sis.errors import Clever2SisError, RunsDirError
from clever2sis.sync.history import History
from clever2sis.sync.pipeline import RunOptions, SyncJob, SyncRuntime, run_sync

HISTORY_DEFAULT_LIMIT = 30


def _runs_dir_option(function: Any) -> Any:
    return click.option(
        "--runs-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Where runs, the lock and history live (default: [sync] runs_dir).",
    )(function)


def _emit(summary: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(summary, option=orjson.OPT_SORT_KEYS) + b"\n")
    sys.stdout.flush()


@click.command("sync")
@click.option("--profile", metavar="NAME", help="Canvas profile to sync (default upload.profile).")
@config_option
@_runs_dir_option
@click.option("--remaster", is_flag=True, help="Diffing: re-send every row this run (after SIS fixes).")
@click.option(
    "--allow-large-change",
    is_flag=True,
    help="Let a run through that the guard would stop (a reviewed, real large change); recorded in history.",
)
@click.option("--api-base", envvar=API_BASE_ENV, default=CLEVER_API_BASE, help="Clever API host.")
@click.option(
    "--api-version",
    envvar=API_VERSION_ENV,
    type=click.Choice(CLEVER_API_VERSIONS),
    default=DEFAULT_API_VERSION,
    help="Clever API version.",
)
@quiet_option
@verbose_option
def sync_command(
    profile: str | None,
    config_path: Path | None,
    runs_dir: Path | None,
    remaster: bool,
    allow_large_change: bool,
    api_base: str,
    api_version: str,
    quiet: bool,
    verbose: bool,
) -> None:
    """Pull, build, check and upload as one run; wait for the import; print one JSON line.

    Tokens come only from the environment: CLEVER_TOKEN (or CLEVER_TOKEN_FILE) and the profile's Canvas
    token variable. Everything the run did is kept in RUNS_DIR/<run_id>/ and in `clever2sis history`.
    """
    runtime = current_runtime()
    progress = StderrProgress(quiet)

    def action() -> int:
        raw = read_canvas_config(config_path, verbose)
        upload = parse_upload(raw)
        target = resolve_profile(raw, profile, runtime.environ)
        job = SyncJob(profile=target, sync=parse_sync(raw), build=build_settings(raw), upload=upload)
        clever_token = keep_secret(token_from_env(runtime.environ))
        canvas_token = keep_secret(target.token(runtime.environ))
        with (
            CleverClient(clever_token, api_base, api_version, progress=progress) as clever,
            CanvasClient(
                target.base_url,
                canvas_token,
                token_source=target.token_env,
                transport=runtime.transport,
                sleep=runtime.sleep,
                progress=progress,
            ) as canvas,
        ):
            result = run_sync(
                job,
                clever,
                SisImports(canvas, target.account_id),
                options=RunOptions(
                    runs_dir=runs_dir, remaster=remaster, allow_large_change=allow_large_change
                ),
                runtime=SyncRuntime(
                    monotonic=runtime.clock,
                    sleep=runtime.sleep,
                    progress=progress,
                    attachment_wait_s=runtime.attachment_wait_s,
                    secrets=(clever_token, canvas_token),
                ),
            )
        if result.exit_code:
            click.echo(f"error: {SECRETS(result.message)}", err=True)
        _emit(result.summary)
        return result.exit_code

    def guarded() -> int:
        try:
            try:
                return action()
            except OSError as error:
                raise RunsDirError(describe_os_error(error)) from error
        except Clever2SisError as error:
            _emit(
                {
                    "run_id": None,
                    "profile": profile,
                    "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "outcome": "not_started",
                    "exit_code": error.exit_code,
                    "message": SECRETS(str(error)),
                }
            )
            raise

    sys.exit(run_command(guarded, verbose=verbose, io_error=RunsDirError))


def _changed(changes: dict[str, Any] | None) -> str:
    if not changes:
        return "-"
    parts = []
    for name, counts in changes.items():
        moved = {k: v for k, v in counts.items() if v}
        if moved:
            short = " ".join(
                f"{'+' if k == 'added' else '-' if k == 'removed' else '~'}{v}" for k, v in moved.items()
            )
            parts.append(f"{name.removesuffix('.csv')} {short}")
    return ", ".join(parts) or "no changes"


@click.command("history")
@click.option("--profile", metavar="NAME", help="Only runs of this profile.")
@config_option
@_runs_dir_option
@click.option("--limit", type=click.IntRange(min=1), default=HISTORY_DEFAULT_LIMIT, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per run.")
@verbose_option
def history_command(
    profile: str | None,
    config_path: Path | None,
    runs_dir: Path | None,
    limit: int,
    as_json: bool,
    verbose: bool,
) -> None:
    """List sync runs, newest first: when, outcome, the import, what Canvas applied, what changed."""

    def action() -> None:
        settings = parse_sync(read_canvas_config(config_path, verbose))
        directory = runs_dir or settings.runs_dir
        with History(directory) as history:
            rows = history.runs(profile=profile, limit=limit)
        for row in rows:
            if as_json:
                _emit(row.as_dict())
                continue
            flags = " ".join(
                flag
                for flag, on in (
                    ("remaster", row["remaster"]),
                    ("allowed-large-change", row["allow_large_change"]),
                )
                if on
            )
            click.echo(
                "\t".join(
                    str(value)
                    for value in (
                        row["run_id"],
                        row["profile"],
                        row["outcome"],
                        row["exit_code"] if row["exit_code"] is not None else "-",
                        f"guard {row['guard'] or '-'}",
                        f"sis_import {row['sis_import_id'] or '-'} {row['import_state'] or ''}".rstrip(),
                        f"applied {row['applied'] or '-'}",
                        _changed(row["changes"]),
                        flags or "-",
                    )
                )
            )

    run_command(action, verbose=verbose, io_error=RunsDirError)


SYNC_COMMANDS: list[click.Command] = [sync_command, history_command]
