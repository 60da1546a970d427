"""``upload``, ``status``, ``list``, ``abort`` and ``restore``: the Canvas commands.

Each command resolves its profile from the config file (or the CANVAS_* environment variables), builds a
:class:`~clever2sis.canvas.client.CanvasClient` and calls the library. Tests inject the HTTP transport, the
clock and ``sleep`` through ``CliRunner.invoke(..., obj=CanvasRuntime(...))``.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from clever2sis.canvas.sis_import import (
    ImportOptions,
    SisImport,
    SisImports,
    WaitPolicy,
    check_outcome,
    wait_for_progress,
)
from clever2sis.cli.common import (
    StderrProgress,
    config_option,
    current_runtime,
    keep_secret,
    quiet_option,
    read_canvas_config,
    run_command,
    verbose_option,
)
from clever2sis.config import (
    CanvasProfile,
    RawConfig,
    UploadSettings,
    parse_sync,
    parse_upload,
    resolve_profile,
)
from clever2sis.errors import BuildDirError, UsageError
from clever2sis.progress import Progress

# The Canvas client (httpx), the build directory, the sign-off and the run history (zipfile, sqlite3) are
# imported by the commands and paths that use them, so that status and list start without the last three.
if TYPE_CHECKING:
    from clever2sis.build_dir import BuildZip
    from clever2sis.canvas.results import ImportResults
    from clever2sis.canvas.upload import Posted

LIST_DEFAULT_LIMIT = 20
LIST_HEADER = ("id", "workflow_state", "progress", "created_at", "ended_at")
BAR_WIDTH = 30


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
def _session(raw: RawConfig, profile_name: str | None, quiet: bool) -> Iterator[_Session]:
    from clever2sis.canvas.client import CanvasClient

    runtime = current_runtime()
    settings = parse_upload(raw)
    profile = resolve_profile(raw, profile_name, runtime.environ)
    progress = StderrProgress(quiet)
    client = CanvasClient(
        profile.base_url,
        keep_secret(profile.token(runtime.environ)),
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


IMPORT_FLAGS_KEY = "clever2sis.import_flags"  # where the import option flags given are kept, in ctx.meta


def _keep_import_flag(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None and param.name is not None:
        ctx.meta.setdefault(IMPORT_FLAGS_KEY, {})[param.name] = value


def import_option_flags(function: Callable[..., Any]) -> Callable[..., Any]:
    """One flag per field of :class:`ImportOptions`, made from the field's metadata.

    ``change_threshold`` becomes ``--change-threshold PERCENT``; a boolean such as ``skip_deletes`` becomes
    ``--skip-deletes/--no-skip-deletes``. The flags are not passed to the command as arguments: the ones
    given are collected, by option name, for :func:`given_import_flags`, and override the config's
    ``[upload]`` values.
    """
    for name, info in reversed(ImportOptions.described()):
        flag = "--" + name.replace("_", "-")
        common: dict[str, Any] = {"help": info.help, "expose_value": False, "callback": _keep_import_flag}
        if info.kind == "flag":
            option = click.option(f"{flag}/--no-{flag[2:]}", name, default=None, **common)
        elif info.kind == "choice":
            option = click.option(flag, name, type=click.Choice(info.choices), **common)
        else:
            option = click.option(flag, name, type=info.value_type, metavar=info.metavar, **common)
        function = option(function)
    return function


def given_import_flags() -> dict[str, Any]:
    """The import option flags given on the command line: option name → value."""
    return dict(click.get_current_context().meta.get(IMPORT_FLAGS_KEY, {}))


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
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check the build, options, settings and sign-off; print the form fields; send nothing.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Upload to a profile that needs a sign-off without a valid one (warns; recorded in created.json).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the SisImport as JSON on stdout: as created, or as it ended with --wait.",
)
@import_option_flags
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
    as_json: bool,
) -> None:
    """Post BUILD_DIR/sis_import.zip as a Canvas SIS import; print its id; with --wait, see it through.

    The import id is saved under BUILD_DIR/imports/<profile>/ as soon as Canvas returns it; the final state,
    every errors page and the errors CSV are saved beside it when --wait follows the job to its end.
    A profile that needs a sign-off (production, or require_approval = true) takes only a zip recorded
    by `clever2sis approve`. With --json, stdout holds only the SisImport object (the lines above go to
    stderr); a --dry-run prints the form it would send instead.

    \b
    Examples:
      clever2sis upload builds/2026-09-01 --profile test --wait
      clever2sis upload builds/2026-09-01 --profile test --dry-run --change-threshold 10
      clever2sis upload builds/2026-09-01 --profile production --wait --json > import.json
    """

    def loud(message: str) -> None:
        click.echo(message, err=True)

    def say(message: str) -> None:
        """A result line: on stdout, or on stderr (unless --quiet) when stdout holds the JSON."""
        if not as_json:
            click.echo(message)
        elif not quiet:
            click.echo(message, err=True)

    def action() -> None:
        from clever2sis.build_dir import BuildLock

        raw = read_canvas_config(config_path, verbose)
        # Held until the results are saved: no build replaces the directory meanwhile.
        with BuildLock(build_dir, shared=True, error=BuildDirError):
            upload(raw)

    def upload(raw: RawConfig) -> None:
        from clever2sis.build_dir import BuildDir
        from clever2sis.canvas.observers import diffing_observers_warning
        from clever2sis.canvas.results import summary_lines

        build = BuildDir(build_dir).verified_zip(error=BuildDirError)
        options = parse_upload(raw).options.merged(given_import_flags())
        options.validate()
        warning = diffing_observers_warning(build, options)
        if warning is not None:
            loud(warning)
        if dry_run:
            _dry_run(raw, build, options, profile=profile, force=force, as_json=as_json, say=say, loud=loud)
            return
        with _session(raw, profile, quiet) as session:
            posted = _post(session, build, options, queue=queue, force=force, warn=loud)
            sis_import = posted.sis_import
            _report_posted(posted, session, say)
            if not wait:
                session.progress(
                    f"follow it with: clever2sis status {sis_import.id} --profile {session.profile.name}"
                )
                if as_json:
                    _print_json(dict(sis_import.raw))
                return
            results = _follow(session, posted, timeout_s=timeout_s, quiet=quiet)
            for line in summary_lines(results):
                say(line)
            if as_json:
                _print_json(dict(results.sis_import.raw))
            ok = session.settings.messages_ok if messages_ok is None else messages_ok
            check_outcome(results.sis_import, messages_ok=ok)

    run_command(action, verbose=verbose, io_error=BuildDirError)


def _post(
    session: _Session, build: BuildZip, options: ImportOptions, *, queue: bool, force: bool, warn: Progress
) -> Posted:
    """Post ``build`` as the session's profile (``POST /api/v1/accounts/:account_id/sis_imports``), once
    the sign-off gate (:func:`~clever2sis.canvas.signoff.check_before_post`) lets it through."""
    from clever2sis.canvas.signoff import check_before_post
    from clever2sis.canvas.upload import post_build

    return post_build(
        session.api,
        build,
        options,
        profile=session.profile.name,
        queue=queue,
        before_post=functools.partial(
            check_before_post, require_approval=session.profile.require_approval, force=force, warn=warn
        ),
        progress=session.progress,
        now=current_runtime().now,
    )


def _follow(session: _Session, posted: Posted, *, timeout_s: float | None, quiet: bool) -> ImportResults:
    """Follow ``posted`` to its end (``upload --wait``, ``status --wait``): a progress bar on stderr, the
    results saved beside the import id (:func:`~clever2sis.canvas.upload.follow_import`)."""
    from clever2sis.canvas.upload import follow_import

    runtime = current_runtime()
    return follow_import(
        session.api,
        posted,
        policy=WaitPolicy(timeout_s=timeout_s or session.settings.wait_timeout_s),
        clock=runtime.clock,
        sleep=runtime.sleep,
        on_update=ImportBar(quiet, runtime.clock),
        progress=session.progress,
        attachment_wait_s=runtime.attachment_wait_s,
    )


def _report_posted(posted: Posted, session: _Session, say: Callable[[str], None]) -> None:
    """The new import's id (``say``: stdout, or stderr with --json); how it was found and where it is
    saved on stderr."""
    sis_import = posted.sis_import
    say(f"sis_import {sis_import.id} {sis_import.workflow_state} on {session.profile.name}")
    if posted.adopted is not None:
        session.progress(f"sis_import {sis_import.id} was posted earlier, its answer lost: {posted.adopted}")
    session.progress(f"id saved in {posted.directory}")


def _dry_run(
    raw: RawConfig,
    build: BuildZip,
    options: ImportOptions,
    *,
    profile: str | None,
    force: bool,
    as_json: bool,
    say: Callable[[str], None],
    loud: Progress,
) -> None:
    """``upload --dry-run``: every check that needs no request, then the form that would be posted."""
    from clever2sis.canvas.signoff import check_before_post

    target = resolve_profile(raw, profile, current_runtime().environ)
    target.token(current_runtime().environ)  # a real upload would stop here without one (30)
    gate = check_before_post(
        target.name, build, require_approval=target.require_approval, force=force, warn=loud
    )
    if gate is not None and "approval" in gate:
        approval = gate["approval"]
        say(f"signed off for {target.name} by {approval['approved_by']} at {approval['approved_at']}")
    say(f"would POST {build.path} to {target.base_url} account {target.account_id} with:")
    for name, value in options.form_fields():
        say(f"  {name}={value}")
    if as_json:
        _print_json(
            {
                "dry_run": True,
                "zip": str(build.path),
                "base_url": target.base_url,
                "account_id": target.account_id,
                "profile": target.name,
                "form_fields": dict(options.form_fields()),
                "signoff": gate,
            }
        )
    loud(
        "dry run: nothing was sent to Canvas, so the token, the account and the imports running "
        f"on it were not checked (clever2sis doctor --profile {target.name} checks the first two)"
    )


def _print_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())


@click.command("status")
@click.argument("import_id", type=int)
@canvas_options
@click.option(
    "--wait/--no-wait",
    default=False,
    help="Follow the import to its end and save its results, as upload does.",
)
@click.option(
    "--timeout", "timeout_s", type=float, metavar="SECONDS", help="How long --wait follows the job."
)
@click.option(
    "--messages-ok/--no-messages-ok",
    default=None,
    help="Exit 0 for imported_with_messages (default: 20, or upload.messages_ok).",
)
@click.option(
    "--build-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --wait: the build the import was posted from; results go in its imports/<profile>/<ID>/ "
    "(default: the sync run that posted it, from the run history).",
)
@click.option(
    "--save-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --wait: save the results in DIR/<ID>/ instead (an import no build directory knows).",
)
def status_command(
    import_id: int,
    config_path: Path | None,
    profile: str | None,
    quiet: bool,
    verbose: bool,
    wait: bool,
    timeout_s: float | None,
    messages_ok: bool | None,
    build_dir: Path | None,
    save_dir: Path | None,
) -> None:
    """Print SIS import IMPORT_ID as Canvas reports it (JSON on stdout); with --wait, see it through.

    The exit code says how a finished import ended, as upload's does: 20 imported_with_messages, 21 failed,
    22 aborted; 0 while it runs. With --wait it is followed to its end, its results are saved like upload
    --wait saves them, and 23 means it was still running at --timeout.

    \b
    Examples:
      clever2sis status 1234 --profile test
      clever2sis status 1234 --profile production --wait --build-dir builds/2026-09-01
    """

    def action() -> None:
        raw = read_canvas_config(config_path, verbose)
        if not wait and (build_dir is not None or save_dir is not None):
            raise UsageError("--build-dir and --save-dir say where --wait saves the results; add --wait")
        with _session(raw, profile, quiet) as session:
            ok = session.settings.messages_ok if messages_ok is None else messages_ok
            if not wait:
                sis_import = session.api.get(import_id)
                click.echo(orjson.dumps(sis_import.raw, option=orjson.OPT_INDENT_2).decode())
                if sis_import.is_finished:
                    check_outcome(sis_import, messages_ok=ok)
                return
            from clever2sis.build_dir import BuildLock
            from clever2sis.canvas.results import summary_lines
            from clever2sis.canvas.upload import Posted

            directory, build = results_dir(
                raw, session.profile.name, import_id, build_dir=build_dir, save_dir=save_dir
            )
            session.progress(f"following sis_import {import_id}; results go in {directory}")
            # Held while the results are written into the build: no build replaces it meanwhile.
            lock = BuildLock(build, shared=True, error=BuildDirError) if build else contextlib.nullcontext()
            with lock:
                posted = Posted(SisImport({"id": import_id}), directory, session.profile.name)
                results = _follow(session, posted, timeout_s=timeout_s, quiet=quiet)
        for line in summary_lines(results):
            click.echo(line)
        check_outcome(results.sis_import, messages_ok=ok)

    run_command(action, verbose=verbose, io_error=BuildDirError)


def results_dir(
    raw: RawConfig, profile: str, import_id: int, *, build_dir: Path | None, save_dir: Path | None
) -> tuple[Path, Path | None]:
    """Where ``status --wait`` saves an import's results, and the build directory that is (None: none).

    The build that knows the import, or ``--save-dir``; without either, the sync run that posted it (from
    the run history of ``[sync] runs_dir``).
    """
    from clever2sis.build_dir import BuildDir
    from clever2sis.sync.history import HISTORY_NAME, History
    from clever2sis.sync.runs import BUILD_DIR_NAME

    if build_dir is not None and save_dir is not None:
        raise UsageError("give --build-dir or --save-dir, not both")
    if save_dir is not None:
        return save_dir / str(import_id), None
    if build_dir is None:
        history_file = parse_sync(raw).runs_dir / HISTORY_NAME
        row = None
        if history_file.is_file():
            with History(history_file.parent) as history:
                row = history.run_of_import(import_id, profile)
        if row is None or not row["run_dir"]:
            raise UsageError(
                f"say where to save the results of sis_import {import_id}: --build-dir BUILD_DIR (the build "
                "it was posted from) or --save-dir DIR"
            )
        build_dir = Path(str(row["run_dir"])) / BUILD_DIR_NAME
    layout = BuildDir(build_dir)
    known = layout.import_profile(import_id)
    if known is None:
        raise UsageError(
            f"{build_dir} has no record of sis_import {import_id} (no imports/<profile>/{import_id}/"
            "created.json, no latest.json naming it); give the build it was posted from, or --save-dir DIR"
        )
    return layout.import_dir(known, import_id).path, build_dir


@click.command("list")
@canvas_options
@click.option("--limit", type=click.IntRange(min=1), default=LIST_DEFAULT_LIMIT, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One SisImport JSON object per line.")
def list_command(
    config_path: Path | None, profile: str | None, quiet: bool, verbose: bool, limit: int, as_json: bool
) -> None:
    """List the account's recent SIS imports, newest first, under a header row (tab-separated).

    \b
    Examples:
      clever2sis list --profile production --limit 5
      clever2sis list --json | jq -r 'select(.workflow_state == "failed") | .id'
    """

    def action() -> None:
        with _session(read_canvas_config(config_path, verbose), profile, quiet) as session:
            if not as_json:
                click.echo("\t".join(LIST_HEADER))
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
    """Abort SIS import IMPORT_ID if it has not finished.

    \b
    Examples:
      clever2sis abort 1234 --profile test
    """

    def action() -> None:
        with _session(read_canvas_config(config_path, verbose), profile, quiet) as session:
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
    """Roll back the changes SIS import IMPORT_ID made, and follow the restore to its end.

    \b
    Examples:
      clever2sis restore 1234 --profile production --undelete-only
    """

    def action() -> None:
        runtime = current_runtime()
        with _session(read_canvas_config(config_path, verbose), profile, quiet) as session:
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
