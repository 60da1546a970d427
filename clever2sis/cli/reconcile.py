"""``clever2sis reconcile``: what Canvas holds against what was sent; the drift, and a fix for it.

The profile, token and settings are resolved as for ``upload``; tests inject the HTTP transport, the clock
and ``sleep`` through :class:`~clever2sis.cli.common.CanvasRuntime` (``CliRunner.invoke(obj=...)``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from clever2sis.cli.canvas import canvas_options
from clever2sis.cli.common import (
    SECRETS,
    StderrProgress,
    current_runtime,
    keep_secret,
    read_canvas_config,
    run_command,
)
from clever2sis.errors import UsageError

if TYPE_CHECKING:
    from clever2sis.config import CanvasProfile
    from clever2sis.reconcile.expected import Expected
    from clever2sis.reconcile.run import ReconcileResult, ReconcileSettings


@click.command("reconcile")
@click.option(
    "--against",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="BUILD_DIR",
    help="The build Canvas last imported (default: the last applied run of the profile in --runs-dir).",
)
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the sync's runs live (default: [sync] runs_dir).",
)
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), metavar="DIR", help="Where to write the drift."
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="A provisioning report already downloaded (its zip, one CSV, or a directory); Canvas is not asked.",
)
@click.option("--fix", is_flag=True, help="Also write DIR/fix/, a corrective build of the drifted rows.")
@click.option(
    "--remove-manual",
    is_flag=True,
    help="With --fix: also remove users and enrollments added by hand in Canvas (flagged otherwise).",
)
@click.option(
    "--allow-large-change",
    is_flag=True,
    help="With --fix: let the fix remove more of a file than [sync] max_shrink_percent.",
)
@click.option(
    "--timeout", "timeout_s", type=float, metavar="SECONDS", help="How long to wait for Canvas's report."
)
@click.option("--force", is_flag=True, help="Replace DIR if it exists (only once the new one is whole).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary (DIR/reconcile.json) on stdout.")
@canvas_options
def reconcile_command(
    against: Path | None,
    runs_dir: Path | None,
    out: Path,
    report_file: Path | None,
    fix: bool,
    remove_manual: bool,
    allow_large_change: bool,
    timeout_s: float | None,
    force: bool,
    as_json: bool,
    config_path: Path | None,
    profile: str | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """Compare what Canvas holds (its provisioning report) with the build it last imported.

    Writes DIR/drift/<file>.csv (rows missing or in another state in Canvas, fields that differ, objects
    an import made that the build no longer has, and users and enrollments added by hand, which are only
    flagged) and DIR/reconcile.json. With --fix, DIR/fix/ is a build of the drifted rows only, with
    explicit statuses, for review, approve and upload as a plain import. Exit 0: no drift to fix (or a
    fix was written); 60: drift found.

    \b
    Examples:
      clever2sis reconcile --profile production --out reconcile/2027-01-10
      clever2sis reconcile --against builds/2027-01-09 --profile production --out reconcile/today --fix
      clever2sis upload reconcile/today/fix --override-sis-stickiness --clear-sis-stickiness
      clever2sis reconcile --against builds/2027-01-09 --report provisioning.zip --out reconcile/offline
    """

    def action() -> int:
        from clever2sis.config import parse_sync, resolve_profile
        from clever2sis.reconcile.fix import RemovalStatuses
        from clever2sis.reconcile.run import ReconcileSettings, last_applied_run, summary_lines

        if (remove_manual or allow_large_change) and not fix:
            raise UsageError("--remove-manual and --allow-large-change only apply with --fix")
        runtime = current_runtime()
        raw = read_canvas_config(config_path, verbose)
        sync = parse_sync(raw)
        target = None
        if report_file is None or against is None:
            target = resolve_profile(raw, profile, runtime.environ)
        compared: Path | Expected
        if against is not None:
            compared = against
        else:
            assert target is not None
            compared = last_applied_run(runs_dir or sync.runs_dir, target.name)
        settings = ReconcileSettings(
            fix=fix,
            remove_manual=remove_manual,
            allow_large_change=allow_large_change,
            statuses=RemovalStatuses(enrollment=sync.enrollment_remove_status, user=sync.user_remove_status),
            limit_percent=sync.shrink_limit_percent,
        )
        progress = StderrProgress(quiet)
        result = _run(compared, out, report_file, settings, target, timeout_s, force, progress)
        if not quiet:
            for line in summary_lines(result.summary):
                click.echo(SECRETS(line), err=True)
        if as_json:
            import orjson

            click.echo(orjson.dumps(result.summary, option=orjson.OPT_INDENT_2).decode())
        return result.exit_code

    sys.exit(run_command(action, verbose=verbose))


def _run(
    compared: Path | Expected,
    out: Path,
    report_file: Path | None,
    settings: ReconcileSettings,
    target: CanvasProfile | None,
    timeout_s: float | None,
    force: bool,
    progress: StderrProgress,
) -> ReconcileResult:
    """Reconcile from the file given, or from a report Canvas makes now."""
    from clever2sis.canvas.client import CanvasClient
    from clever2sis.canvas.reports import REPORT_WAIT_S, AccountReports, fetch_provisioning_report
    from clever2sis.canvas.sis_import import WaitPolicy
    from clever2sis.reconcile.run import reconcile

    if report_file is not None:
        return reconcile(
            compared, out, report_file=report_file, settings=settings, force=force, progress=progress
        )
    assert target is not None, "a Canvas profile is resolved whenever no --report is given"
    runtime = current_runtime()
    with CanvasClient(
        target.base_url,
        keep_secret(target.token(runtime.environ)),
        token_source=target.token_env,
        transport=runtime.transport,
        sleep=runtime.sleep,
        progress=progress,
    ) as client:
        api = AccountReports(client, target.account_id)

        def fetch(dest: Path) -> tuple[dict[str, Any], Path]:
            report, path = fetch_provisioning_report(
                api,
                dest,
                policy=WaitPolicy(timeout_s=timeout_s or REPORT_WAIT_S),
                clock=runtime.clock,
                sleep=runtime.sleep,
                progress=progress,
            )
            return {"id": report.id, "profile": target.name}, path

        return reconcile(compared, out, fetch_report=fetch, settings=settings, force=force, progress=progress)
