"""``upload``, ``status``, ``list``, ``abort`` and ``restore``: the Canvas commands.

Each command resolves its profile from the config file (or the CANVAS_* environment variables), builds a
:class:`~clever2sis.canvas.client.CanvasClient` and calls the library. Tests inject the HTTP transport, the
clock and ``sleep`` through ``CliRunner.invoke(..., obj=CanvasRuntime(...))``.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import click
import httpx
import orjson

from clever2sis.build_dir import BuildDir
from clever2sis.canvas.client import CanvasClient
from clever2sis.canvas.results import summary_lines
from clever2sis.canvas.signoff import check_before_post
from clever2sis.canvas.sis_import import (
    BATCH_ENROLLMENT_DROP_STATUSES,
    DIFFING_DROP_STATUSES,
    DIFFING_USER_REMOVE_STATUSES,
    SisImport,
    SisImports,
    WaitPolicy,
    check_outcome,
    wait_for_progress,
)
from clever2sis.canvas.upload import follow_import, post_build
from clever2sis.cli.common import StderrProgress, quiet_option, run_command, verbose_option
from clever2sis.config import (
    DEFAULT_CONFIG_NAME,
    CanvasProfile,
    RawConfig,
    UploadSettings,
    load_raw_config,
    parse_upload,
    resolve_profile,
)
from clever2sis.errors import BuildDirError

CONFIG_ENV = "CLEVER2SIS_CONFIG"
LIST_DEFAULT_LIMIT = 20
BAR_WIDTH = 30


@dataclass(frozen=True)
class CanvasRuntime:
    """What the commands take from the outside world; tests replace it through the click context."""

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    attachment_wait_s: float | None = None


def _runtime() -> CanvasRuntime:
    obj = click.get_current_context().obj
    return obj if isinstance(obj, CanvasRuntime) else CanvasRuntime()


def _config_path(value: Path | None) -> Path | None:
    if value is not None:
        return value
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def config_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--config`` (or CLEVER2SIS_CONFIG), as ``config_path``; see :func:`_config_path` for the default."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar=CONFIG_ENV,
        help=f"Config file (default ./{DEFAULT_CONFIG_NAME} when present; env {CONFIG_ENV}).",
    )(function)


def canvas_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option(
        "--profile",
        metavar="NAME",
        help="Canvas profile from the config (test, production, ...); default upload.profile or CANVAS_*.",
    )(function)
    return verbose_option(quiet_option(config_option(function)))


@dataclass(frozen=True)
class _Session:
    raw: RawConfig
    settings: UploadSettings
    profile: CanvasProfile
    api: SisImports
    progress: StderrProgress


@contextmanager
def _session(config_path: Path | None, profile_name: str | None, quiet: bool) -> Iterator[_Session]:
    runtime = _runtime()
    raw = load_raw_config(_config_path(config_path))
    settings = parse_upload(raw)
    profile = resolve_profile(raw, profile_name, runtime.environ)
    progress = StderrProgress(quiet)
    client = CanvasClient(
        profile.base_url,
        profile.token(runtime.environ),
        token_source=profile.token_env,
        transport=runtime.transport,
        sleep=runtime.sleep,
        progress=progress,
    )
    with client:
        yield _Session(raw, settings, profile, SisImports(client, profile.account_id), progress)


class ImportBar:
    """A one-line progress bar on stderr (a line per change when stderr is not a terminal)."""

    def __init__(self, quiet: bool, clock: Callable[[], float]) -> None:
        self.quiet = quiet
        self.clock = clock
        self.started = clock()
        self.last: tuple[str, int] | None = None
        self.tty = sys.stderr.isatty()

    def __call__(self, sis_import: SisImport) -> None:
        if self.quiet:
            return
        state, percent = sis_import.workflow_state, sis_import.progress
        if not self.tty and self.last == (state, percent):
            return
        self.last = (state, percent)
        filled = BAR_WIDTH * percent // 100
        elapsed_s = self.clock() - self.started
        bar = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent:3d}% {state} ({elapsed_s:.0f}s)"
        if self.tty:
            click.echo(f"\r{bar}\x1b[K", err=True, nl=sis_import.is_finished)
        else:
            click.echo(bar, err=True)


def _option_flags(function: Callable[..., Any]) -> Callable[..., Any]:
    """One flag per Canvas import option; each overrides the config's ``[upload]`` value when given."""
    flags = [
        click.option(
            "--diffing-data-set-identifier", metavar="ID", help="Diff against earlier imports of ID."
        ),
        click.option(
            "--diffing-remaster-data-set/--no-diffing-remaster-data-set",
            default=None,
            help="Apply the whole file and restart the diff chain.",
        ),
        click.option(
            "--diffing-drop-status",
            type=click.Choice(DIFFING_DROP_STATUSES),
            help="Status for enrollments missing from a diffed import.",
        ),
        click.option(
            "--diffing-user-remove-status",
            type=click.Choice(DIFFING_USER_REMOVE_STATUSES),
            help="Status for users missing from a diffed import.",
        ),
        click.option(
            "--change-threshold",
            type=int,
            metavar="PERCENT",
            help="Stop batch cleanup / diffing beyond this percentage of changes (1-100).",
        ),
        click.option(
            "--diff-row-count-threshold",
            type=int,
            metavar="ROWS",
            help="Apply the whole file when the diff has more rows than this.",
        ),
        click.option(
            "--batch-mode/--no-batch-mode",
            default=None,
            help="Delete what this import leaves out of the term (needs --change-threshold).",
        ),
        click.option(
            "--batch-mode-term-id", metavar="TERM", help="The term for batch mode (or sis_term_id:X)."
        ),
        click.option(
            "--multi-term-batch-mode/--no-multi-term-batch-mode",
            default=None,
            help="Batch mode over every term in terms.csv (with --batch-mode).",
        ),
        click.option(
            "--batch-mode-enrollment-drop-status",
            type=click.Choice(BATCH_ENROLLMENT_DROP_STATUSES),
            help="Status for enrollments batch mode removes.",
        ),
        click.option(
            "--skip-deletes/--no-skip-deletes", default=None, help="Ignore rows whose status is deleted."
        ),
        click.option(
            "--override-sis-stickiness/--no-override-sis-stickiness",
            default=None,
            help="Overwrite fields changed in the Canvas UI.",
        ),
        click.option(
            "--add-sis-stickiness/--no-add-sis-stickiness",
            default=None,
            help="Make the imported values sticky (with --override-sis-stickiness).",
        ),
        click.option(
            "--clear-sis-stickiness/--no-clear-sis-stickiness",
            default=None,
            help="Clear stickiness on the fields touched (with --override-sis-stickiness).",
        ),
        click.option(
            "--update-sis-id-if-login-claimed/--no-update-sis-id-if-login-claimed",
            default=None,
            help="Move a claimed login's SIS id instead of skipping the row.",
        ),
    ]
    for flag in reversed(flags):
        function = flag(function)
    return function


@click.command("upload")
@click.argument("build_dir", type=click.Path(file_okay=False, path_type=Path))
@canvas_options
@click.option("--wait/--no-wait", default=False, help="Follow the import to its end with a progress bar.")
@click.option("--queue", is_flag=True, help="Post even when another import is running (Canvas queues it).")
@click.option(
    "--timeout", "timeout_s", type=float, metavar="SECONDS", help="How long --wait follows the job."
)
@click.option(
    "--messages-ok/--no-messages-ok",
    default=None,
    help="Exit 0 for imported_with_messages (default: 20, or upload.messages_ok).",
)
@click.option("--dry-run", is_flag=True, help="Check everything and print the form fields; send nothing.")
@click.option(
    "--force",
    is_flag=True,
    help="Upload to a profile that needs a sign-off without a valid one (warns; recorded in created.json).",
)
@_option_flags
def upload_command(
    build_dir: Path,
    config_path: Path | None,
    profile: str | None,
    quiet: bool,
    verbose: bool,
    wait: bool,
    queue: bool,
    timeout_s: float | None,
    messages_ok: bool | None,
    dry_run: bool,
    force: bool,
    **option_flags: Any,
) -> None:
    """Post BUILD_DIR/sis_import.zip as a Canvas SIS import; print its id; with --wait, see it through.

    The import id is saved under BUILD_DIR/imports/<profile>/ as soon as Canvas returns it; the final state,
    every errors page and the errors CSV are saved beside it when --wait follows the job to its end.
    A profile that needs a sign-off (production, or require_approval = true) takes only a zip recorded
    by `clever2sis approve`.
    """

    def loud(message: str) -> None:
        click.echo(message, err=True)

    def action() -> None:
        build = BuildDir(build_dir).verified_zip(error=BuildDirError)
        raw = load_raw_config(_config_path(config_path))
        options = parse_upload(raw).options.merged(option_flags)
        options.validate()
        if dry_run:
            target = resolve_profile(raw, profile, _runtime().environ)
            gate = check_before_post(
                target.name, build, require_approval=target.require_approval, force=force, warn=loud
            )
            if gate is not None and "approval" in gate:
                approval = gate["approval"]
                click.echo(
                    f"signed off for {target.name} by {approval['approved_by']} at {approval['approved_at']}"
                )
            click.echo(f"would POST {build.path} to {target.base_url} account {target.account_id} with:")
            for name, value in options.form_fields():
                click.echo(f"  {name}={value}")
            return
        runtime = _runtime()
        with _session(config_path, profile, quiet) as session:
            posted = post_build(
                session.api,
                build,
                options,
                profile=session.profile.name,
                queue=queue,
                before_post=functools.partial(
                    check_before_post,
                    require_approval=session.profile.require_approval,
                    force=force,
                    warn=loud,
                ),
                progress=session.progress,
            )
            sis_import = posted.sis_import
            click.echo(f"sis_import {sis_import.id} {sis_import.workflow_state} on {session.profile.name}")
            session.progress(f"id saved in {posted.directory}")
            if not wait:
                session.progress(
                    f"follow it with: clever2sis status {sis_import.id} --profile {session.profile.name}"
                )
                return
            policy = WaitPolicy(timeout_s=timeout_s or session.settings.wait_timeout_s)
            results = follow_import(
                session.api,
                posted,
                policy=policy,
                clock=runtime.clock,
                sleep=runtime.sleep,
                on_update=ImportBar(quiet, runtime.clock),
                progress=session.progress,
                attachment_wait_s=runtime.attachment_wait_s,
            )
            for line in summary_lines(results):
                click.echo(line)
            ok = session.settings.messages_ok if messages_ok is None else messages_ok
            check_outcome(results.sis_import, messages_ok=ok)

    run_command(action, verbose=verbose)


@click.command("status")
@click.argument("import_id", type=int)
@canvas_options
def status_command(
    import_id: int, config_path: Path | None, profile: str | None, quiet: bool, verbose: bool
) -> None:
    """Print SIS import IMPORT_ID as Canvas reports it (JSON on stdout)."""

    def action() -> None:
        with _session(config_path, profile, quiet) as session:
            sis_import = session.api.get(import_id)
        click.echo(orjson.dumps(sis_import.raw, option=orjson.OPT_INDENT_2).decode())

    run_command(action, verbose=verbose)


@click.command("list")
@canvas_options
@click.option("--limit", type=click.IntRange(min=1), default=LIST_DEFAULT_LIMIT, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One SisImport JSON object per line.")
def list_command(
    config_path: Path | None, profile: str | None, quiet: bool, verbose: bool, limit: int, as_json: bool
) -> None:
    """List the account's recent SIS imports, newest first."""

    def action() -> None:
        with _session(config_path, profile, quiet) as session:
            for sis_import in islice(session.api.list(), limit):
                if as_json:
                    click.echo(orjson.dumps(sis_import.raw).decode())
                else:
                    raw = sis_import.raw
                    click.echo(
                        f"{sis_import.id}\t{sis_import.workflow_state}\t{sis_import.progress}%\t"
                        f"{raw.get('created_at') or '-'}\t{raw.get('ended_at') or '-'}"
                    )

    run_command(action, verbose=verbose)


@click.command("abort")
@click.argument("import_id", type=int)
@canvas_options
def abort_command(
    import_id: int, config_path: Path | None, profile: str | None, quiet: bool, verbose: bool
) -> None:
    """Abort SIS import IMPORT_ID if it has not finished."""

    def action() -> None:
        with _session(config_path, profile, quiet) as session:
            sis_import = session.api.abort(import_id)
        click.echo(f"sis_import {sis_import.id} {sis_import.workflow_state}")

    run_command(action, verbose=verbose)


@click.command("restore")
@click.argument("import_id", type=int)
@canvas_options
@click.option("--batch-mode", is_flag=True, help="Restore only what batch-mode cleanup deleted.")
@click.option("--undelete-only", is_flag=True, help="Restore only deletions.")
@click.option("--unconclude-only", is_flag=True, help="Restore only concluded enrollments.")
@click.option("--timeout", "timeout_s", type=float, metavar="SECONDS", help="How long to follow the restore.")
def restore_command(
    import_id: int,
    config_path: Path | None,
    profile: str | None,
    quiet: bool,
    verbose: bool,
    batch_mode: bool,
    undelete_only: bool,
    unconclude_only: bool,
    timeout_s: float | None,
) -> None:
    """Roll back the changes SIS import IMPORT_ID made, and follow the restore to its end."""

    def action() -> None:
        runtime = _runtime()
        with _session(config_path, profile, quiet) as session:
            started = session.api.restore_states(
                import_id, batch_mode=batch_mode, undelete_only=undelete_only, unconclude_only=unconclude_only
            )
            session.progress(f"restore of sis_import {import_id} started (progress {started['id']})")
            final = wait_for_progress(
                session.api,
                int(started["id"]),
                policy=WaitPolicy(timeout_s=timeout_s or session.settings.wait_timeout_s),
                clock=runtime.clock,
                sleep=runtime.sleep,
                on_update=lambda p: session.progress(
                    f"{p.get('workflow_state')} {p.get('completion') or 0}%"
                ),
                on_problem=session.progress,
            )
            sis_import = session.api.get(import_id)
        click.echo(
            f"restore {final['workflow_state']}; sis_import {import_id} is {sis_import.workflow_state}"
        )

    run_command(action, verbose=verbose)


CANVAS_COMMANDS: list[click.Command] = [
    upload_command,
    status_command,
    list_command,
    abort_command,
    restore_command,
]
