"""``clever2sis sync`` (the nightly job) and ``clever2sis history`` (what the runs did).

``sync`` resolves the profile and settings, builds the Clever and Canvas clients from environment tokens
and calls :func:`clever2sis.sync.pipeline.run_sync`. It always ends with one JSON line on stdout and exits
with the run's code, so a scheduler can act on either. SIGTERM and SIGINT stop it cleanly
(:func:`clever2sis.interrupts.raise_on_signals`): the run ends ``interrupted``, still with its JSON line,
and exits 143 or 130.
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
from clever2sis.config import RawConfig, build_settings, parse_sync, parse_upload, resolve_profile
from clever2sis.errors import Clever2SisError, RunsDirError, SyncError
from clever2sis.interrupts import Interrupted, deferred, raise_on_signals
from clever2sis.sync.history import History
from clever2sis.sync.pipeline import RunOptions, RunResult, SyncJob, SyncRuntime, run_sync
from clever2sis.sync.reconcile import reconcile_runs
from clever2sis.sync.runs import RunLock

HISTORY_DEFAULT_LIMIT = 30
ALLOW_EVERYTHING = "*"  # --allow-large-change without a school id (or with "*"): let everything through


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
    "allow_large_change",
    multiple=True,
    is_flag=False,
    flag_value=ALLOW_EVERYTHING,
    metavar="[SCHOOL_ID]",
    help="After a review: with a school (Clever school id or Canvas account id, repeatable), release that "
    "school the guard holds; alone, let through everything the guard would stop or hold. Recorded in "
    "history.",
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
    allow_large_change: tuple[str, ...],
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
        options = RunOptions(
            runs_dir=runs_dir,
            remaster=remaster,
            allow_large_change=ALLOW_EVERYTHING in allow_large_change,
            release_schools=tuple(sorted(set(allow_large_change) - {ALLOW_EVERYTHING})),
        )
        result = _run(job, (clever_token, canvas_token), api_base, api_version, progress, options)
        try:
            with deferred():
                if result.exit_code:
                    click.echo(f"error: {SECRETS(result.message)}", err=True)
                _emit(result.summary)
        except Interrupted:
            pass  # the run has ended and said so; a signal now only stops what is left: nothing
        return result.exit_code

    def guarded() -> int:
        try:
            try:
                return action()
            except OSError as error:
                raise RunsDirError(describe_os_error(error)) from error
        except (Clever2SisError, Interrupted) as error:
            _emit(
                {
                    "run_id": None,
                    "profile": profile,
                    "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "outcome": "interrupted" if isinstance(error, Interrupted) else "not_started",
                    "exit_code": error.exit_code,
                    "message": SECRETS(str(error)),
                }
            )
            raise

    with raise_on_signals():
        sys.exit(run_command(guarded, verbose=verbose, io_error=RunsDirError))


def _run(
    job: SyncJob,
    tokens: tuple[str, str],
    api_base: str,
    api_version: str,
    progress: StderrProgress,
    options: RunOptions,
) -> RunResult:
    """One run of ``job`` with clients made from ``tokens`` (Clever's, Canvas's) and the CLI's runtime.

    A stop signal while the clients close, once the run has ended, does not undo the run's result.
    """
    runtime = current_runtime()
    clever_token, canvas_token = tokens
    result: RunResult | None = None
    try:
        with (
            CleverClient(clever_token, api_base, api_version, progress=progress) as clever,
            CanvasClient(
                job.profile.base_url,
                canvas_token,
                token_source=job.profile.token_env,
                transport=runtime.transport,
                sleep=runtime.sleep,
                progress=progress,
            ) as canvas,
        ):
            result = run_sync(
                job,
                clever,
                SisImports(canvas, job.profile.account_id),
                options=options,
                runtime=SyncRuntime(
                    clock=runtime.now,
                    monotonic=runtime.clock,
                    sleep=runtime.sleep,
                    progress=progress,
                    attachment_wait_s=runtime.attachment_wait_s,
                    secrets=tokens,
                ),
            )
    except Interrupted:
        if result is None:
            raise
    return result


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


def _held(held: list[dict[str, Any]] | None) -> str:
    """The schools a run held, each with the first night of its hold: ``held S2 (since 2027-01-05)``."""
    if not held:
        return "held -"
    return "held " + ", ".join(
        f"{school['account_id']} (since {str(school['since'])[:10]})" for school in held
    )


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
    """List sync runs, newest first: when, outcome, the import, what Canvas applied, what changed.

    Runs that ended without saying so (killed) and imports still running when their run ended are first
    brought up to date with Canvas (with each profile's token), unless a sync is running right now.
    """

    def action() -> None:
        raw = read_canvas_config(config_path, verbose)
        directory = runs_dir or parse_sync(raw).runs_dir
        with History(directory) as history:
            _reconcile_history(history, raw, directory)
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
                        _held(row["held_schools"]),
                        flags or "-",
                    )
                )
            )

    run_command(action, verbose=verbose, io_error=RunsDirError)


def _reconcile_history(history: History, raw: RawConfig, directory: Path) -> None:
    """Reconcile every profile's unsettled runs (sync/reconcile.py), when no sync holds the lock."""
    try:
        lock = RunLock(directory).acquire()
    except SyncError:
        return  # a sync is running: its row is live, and it reconciles the others itself
    runtime = current_runtime()
    progress = StderrProgress()
    with lock:
        for name in sorted({str(row["profile"]) for row in history.unsettled()}):
            now = runtime.now()
            try:
                target = resolve_profile(raw, name, runtime.environ)
                token = keep_secret(target.token(runtime.environ))
            except Clever2SisError as error:
                done = reconcile_runs(history, None, profile=name, now=now, progress=progress)
                for problem in done.problems:
                    click.echo(f"warning: {problem} ({SECRETS(str(error))})", err=True)
                continue
            with CanvasClient(
                target.base_url,
                token,
                token_source=target.token_env,
                transport=runtime.transport,
                sleep=runtime.sleep,
                progress=progress,
            ) as client:
                api = SisImports(client, target.account_id)
                done = reconcile_runs(history, api, profile=name, now=now, progress=progress)
            for problem in [*done.problems, *done.blocking]:
                click.echo(f"warning: {SECRETS(problem)}", err=True)


SYNC_COMMANDS: list[click.Command] = [sync_command, history_command]
