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
from typing import TYPE_CHECKING, Any

import click
import orjson

from clever2sis.canvas.sis_import import SisImports
from clever2sis.clever.settings import (
    API_BASE_ENV,
    API_VERSION_ENV,
    CLEVER_API_BASE,
    CLEVER_API_VERSIONS,
    DEFAULT_API_VERSION,
    token_from_env,
)
from clever2sis.cli.common import (
    SECRETS,
    CanvasRuntime,
    StderrProgress,
    config_option,
    current_runtime,
    describe_os_error,
    keep_secret,
    quiet_option,
    read_canvas_config,
    run_command,
    verbose_option,
)
from clever2sis.config import RawConfig, build_settings, parse_sync, parse_upload, resolve_profile
from clever2sis.errors import Clever2SisError, RunsDirError, SyncError
from clever2sis.interrupts import Interrupted, deferred, raise_on_signals
from clever2sis.sync.history import History
from clever2sis.sync.runs import RunLock

if TYPE_CHECKING:  # the pipeline (pandas, Arrow) and the alerts are loaded by the commands that run them
    from clever2sis.notify.settings import NotifySettings
    from clever2sis.sync.pipeline import RunOptions, RunResult, SyncJob

HISTORY_DEFAULT_LIMIT = 30
ALLOW_EVERYTHING = "*"  # --allow-large-change without a school id (or with "*"): let everything through
HISTORY_HEADER = (
    "run_id",
    "profile",
    "outcome",
    "exit",
    "guard",
    "sis_import",
    "applied",
    "changes",
    "held",
    "flags",
    "observer_imports",
)


def _runs_dir_option(function: Any) -> Any:
    return click.option(
        "--runs-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Where runs, the lock and history live (default: [sync] runs_dir).",
    )(function)


def clever_api_options(function: Any) -> Any:
    """``--api-base`` and ``--api-version``: where Clever is (``sync`` and ``doctor``)."""
    function = click.option(
        "--api-version",
        envvar=API_VERSION_ENV,
        type=click.Choice(CLEVER_API_VERSIONS),
        default=DEFAULT_API_VERSION,
        help=f"Clever API version [env: {API_VERSION_ENV}].",
    )(function)
    return click.option(
        "--api-base",
        envvar=API_BASE_ENV,
        default=CLEVER_API_BASE,
        help=f"Clever API host [env: {API_BASE_ENV}].",
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
@click.option(
    "--ignore-pause",
    is_flag=True,
    help="Run even inside a [sync] pause window (e.g. a fix during the summer break).",
)
@clever_api_options
@quiet_option
@verbose_option
def sync_command(
    profile: str | None,
    config_path: Path | None,
    runs_dir: Path | None,
    remaster: bool,
    allow_large_change: tuple[str, ...],
    ignore_pause: bool,
    api_base: str,
    api_version: str,
    quiet: bool,
    verbose: bool,
) -> None:
    """Pull, build, check and upload as one run; wait for the import; print one JSON line.

    Tokens come only from the environment: CLEVER_TOKEN (or CLEVER_TOKEN_FILE) and the profile's Canvas
    token variable. Both tokens and the Canvas account are checked before the pull (as `clever2sis
    doctor` does). Everything the run did is kept in RUNS_DIR/<run_id>/ and in `clever2sis history`.

    \b
    Examples:
      clever2sis sync --profile production --quiet >> /var/log/clever2sis/sync.jsonl
      clever2sis sync --profile production --allow-large-change   # after reviewing a real large change
      clever2sis sync --profile production --remaster              # re-send every row after SIS fixes
    """
    runtime = current_runtime()
    progress = StderrProgress(quiet)
    secrets: list[str] = []
    alerts: list[NotifySettings] = []  # the [notify] settings, once read: a run stopped after that alerts

    def action() -> int:
        from clever2sis.notify.settings import parse_notify
        from clever2sis.sync.pipeline import RunOptions, SyncJob

        raw = read_canvas_config(config_path, verbose)
        upload = parse_upload(raw)
        target = resolve_profile(raw, profile, runtime.environ)
        job = SyncJob(profile=target, sync=parse_sync(raw), build=build_settings(raw), upload=upload)
        notify = parse_notify(raw)
        notify.check_environment(runtime.environ)
        alerts.append(notify)
        clever_token = keep_secret(token_from_env(runtime.environ))
        canvas_token = keep_secret(target.token(runtime.environ))
        secrets.extend((clever_token, canvas_token))
        options = RunOptions(
            runs_dir=runs_dir,
            remaster=remaster,
            allow_large_change=ALLOW_EVERYTHING in allow_large_change,
            release_schools=tuple(sorted(set(allow_large_change) - {ALLOW_EVERYTHING})),
            ignore_pause=ignore_pause,
        )
        result = _run(job, (clever_token, canvas_token), api_base, api_version, progress, options)
        try:
            with deferred():
                if result.exit_code:
                    click.echo(f"error: {SECRETS(result.message)}", err=True)
                _send_alert(notify, result.summary, result.run_dir, runtime, progress, secrets)
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
            summary = _not_started(profile, error)
            if alerts:
                _send_alert(alerts[0], summary, None, runtime, progress, secrets)
            _emit(summary)
            raise

    with raise_on_signals():
        sys.exit(run_command(guarded, verbose=verbose, io_error=RunsDirError))


def _not_started(profile: str | None, error: Clever2SisError | Interrupted) -> dict[str, Any]:
    """The JSON line of a run that never started (bad settings, a missing token, a signal before the run)."""
    return {
        "run_id": None,
        "profile": profile,
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "outcome": "interrupted" if isinstance(error, Interrupted) else "not_started",
        "exit_code": error.exit_code,
        "message": SECRETS(str(error)),
    }


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
    from clever2sis.canvas.client import CanvasClient
    from clever2sis.clever.client import CleverClient
    from clever2sis.sync.pipeline import SyncRuntime, run_sync

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


def _send_alert(
    notify: NotifySettings,
    summary: dict[str, Any],
    run_dir: Path | None,
    runtime: CanvasRuntime,
    progress: StderrProgress,
    secrets: list[str],
) -> None:
    """Send the alert a run calls for (it never changes the run's outcome); its log lines go to the run's
    run.log when the run has a directory, else to stderr."""
    from clever2sis.notify.alerts import notify_run
    from clever2sis.sync.runs import RUN_LOG_NAME, RunLog, utc_now

    log: RunLog | None = None
    if run_dir is not None and run_dir.is_dir():
        log = RunLog(run_dir / RUN_LOG_NAME, clock=utc_now, secrets=secrets, echo=progress)
    try:
        notify_run(
            notify,
            summary,
            transport=runtime.transport,
            sleep=runtime.sleep,
            clock=runtime.clock,
            environ=runtime.environ,
            secrets=secrets,
            log=log if log is not None else progress,
        )
    finally:
        if log is not None:
            log.close()


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


def _observer_imports(imports: list[dict[str, Any]] | None) -> str:
    """The run's observer link imports ("observers removals 104 imported, links 106 imported"), or "-"."""
    labels = {"observer_removals": "removals", "observer_links": "links"}
    parts = [
        f"{labels[entry['import']]} {entry['sis_import_id']} {entry['import_state'] or ''}".rstrip()
        for entry in imports or []
        if entry.get("import") in labels
    ]
    return f"observers {', '.join(parts)}" if parts else "-"


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
    """List sync runs, newest first: when, outcome, the import, what Canvas applied, what changed, and the
    observer link imports.

    Runs that ended without saying so (killed) and imports still running when their run ended are first
    brought up to date with Canvas (with each profile's token), unless a sync is running right now. A
    header row names the columns (tab-separated); --json prints one object per run with every column.

    \b
    Examples:
      clever2sis history --limit 7
      clever2sis history --profile production --json | jq -r 'select(.exit_code != 0) | .message'
    """

    def action() -> None:
        raw = read_canvas_config(config_path, verbose)
        directory = runs_dir or parse_sync(raw).runs_dir
        with History(directory) as history:
            _reconcile_history(history, raw, directory)
            rows = history.runs(profile=profile, limit=limit)
        if not as_json:
            click.echo("\t".join(HISTORY_HEADER))
        for row in rows:
            if as_json:
                _emit(row.as_dict())
                continue
            flags = " ".join(
                flag
                for flag, on in (
                    ("remaster", row["remaster"]),
                    ("allowed-large-change", row["allow_large_change"]),
                    (f"identities-carried {row['identities_carried']}", row["identities_carried"]),
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
                        _observer_imports(row["imports"]),
                    )
                )
            )

    run_command(action, verbose=verbose, io_error=RunsDirError)


def _reconcile_history(history: History, raw: RawConfig, directory: Path) -> None:
    """Reconcile every profile's unsettled runs (sync/settle.py), when no sync holds the lock."""
    try:
        lock = RunLock(directory).acquire()
    except SyncError:
        return  # a sync is running: its row is live, and it reconciles the others itself
    runtime = current_runtime()
    progress = StderrProgress()
    with lock:
        unsettled = sorted({str(row["profile"]) for row in history.unsettled()})
        if not unsettled:
            return
        from clever2sis.canvas.client import CanvasClient
        from clever2sis.sync.settle import settle_runs

        for name in unsettled:
            now = runtime.now()
            try:
                target = resolve_profile(raw, name, runtime.environ)
                token = keep_secret(target.token(runtime.environ))
            except Clever2SisError as error:
                done = settle_runs(history, None, profile=name, now=now, progress=progress)
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
                done = settle_runs(history, api, profile=name, now=now, progress=progress)
            for problem in [*done.problems, *done.blocking]:
                click.echo(f"warning: {SECRETS(problem)}", err=True)


SYNC_COMMANDS: list[click.Command] = [sync_command, history_command]
