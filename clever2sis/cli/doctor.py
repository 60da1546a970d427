"""``clever2sis doctor``: the sync's checks alone, one line each, before anyone waits for a night to fail.

It reads the settings as ``sync`` does, then runs the pre-flight checks of :mod:`clever2sis.preflight`
against both services. Every check runs that can (a failed one only skips those that need it), so one
run says everything that is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import orjson

from clever2sis.clever.settings import token_from_env
from clever2sis.cli.common import (
    config_option,
    current_runtime,
    keep_secret,
    read_canvas_config,
    run_command,
    verbose_option,
)
from clever2sis.cli.sync import clever_api_options
from clever2sis.config import CanvasProfile, build_settings, parse_sync, parse_upload, resolve_profile
from clever2sis.errors import Clever2SisError
from clever2sis.preflight import Check, exit_code, failed, passed, skipped

# doctor asks once and says what it found: few retries, short waits (sync's clients retry for minutes).
DOCTOR_CANVAS_ATTEMPTS = 2
DOCTOR_CLEVER_RETRIES = 1
DOCTOR_MAX_RETRY_SLEEP_S = 5.0


@click.command("doctor")
@click.option("--profile", metavar="NAME", help="Canvas profile to check (default upload.profile).")
@config_option
@clever_api_options
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON on stdout.")
@verbose_option
def doctor_command(
    profile: str | None,
    config_path: Path | None,
    api_base: str,
    api_version: str,
    as_json: bool,
    verbose: bool,
) -> None:
    """Check what a sync needs, one line per check: the settings, both tokens, Clever and the Canvas account.

    Each line is `ok`, `FAIL` (with what to fix) or `skip` (a check that needs a failed one). Exit 0 only
    when every check passed; otherwise the exit code of the first failure (2 settings, 10-11 Clever,
    30-39 Canvas, 42 sign-off, 54 runs directory), as `sync` would have exited.

    \b
    Examples:
      clever2sis doctor --profile production
      clever2sis doctor --config /etc/clever2sis/clever2sis.toml --profile test --json
    """

    def action() -> int:
        checks: list[Check] = []

        def add(check: Check) -> None:
            checks.append(check)
            if not as_json:
                click.echo(check.line())

        run_doctor(profile, config_path, api_base, api_version, verbose=verbose, add=add)
        if as_json:
            click.echo(
                orjson.dumps([check.as_dict() for check in checks], option=orjson.OPT_INDENT_2).decode()
            )
        return exit_code(checks)

    raise SystemExit(run_command(action, verbose=verbose))


def run_doctor(
    profile: str | None,
    config_path: Path | None,
    api_base: str,
    api_version: str,
    *,
    verbose: bool,
    add: Callable[[Check], None],
) -> None:
    """Every check, in order, each handed to ``add`` as soon as it is known."""
    runtime = current_runtime()
    try:
        raw = read_canvas_config(config_path, verbose)
        upload = parse_upload(raw)
        upload.options.validate()
        sync = parse_sync(raw)
        build_settings(raw)
        from clever2sis.notify.settings import parse_notify

        notify = parse_notify(raw)
    except Clever2SisError as error:
        add(failed("settings", error))
        add(skipped("everything else", "needs settings that can be read"))
        return
    add(passed("settings", raw.location.describe().removeprefix("config: ")))
    target = _profile_check(raw, profile, runtime.environ, add)
    add(_runs_dir_check(sync.runs_dir))
    if notify.enabled:
        add(_checked("alerts", lambda: notify.check_environment(runtime.environ), "their variables are set"))
    clever_token = _token_check("clever token", lambda: token_from_env(runtime.environ), add)
    canvas_token = None
    if target is not None:
        canvas_token = _token_check("canvas token", lambda: target.token(runtime.environ), add)
    _service_checks(target, clever_token, canvas_token, api_base, api_version, add)


def _profile_check(
    raw: Any, profile: str | None, environ: Any, add: Callable[[Check], None]
) -> CanvasProfile | None:
    from clever2sis.sync.job import SyncJob, check_job

    try:
        target = resolve_profile(raw, profile, environ)
    except Clever2SisError as error:
        add(failed("canvas profile", error))
        return None
    add(passed("canvas profile", f"{target.name}: {target.base_url}, account {target.account_id}"))
    job = SyncJob(profile=target, sync=parse_sync(raw), build=build_settings(raw), upload=parse_upload(raw))
    add(_checked("sync settings", lambda: check_job(job), "import options and sign-off allow a nightly sync"))
    return target


def _runs_dir_check(runs_dir: Path) -> Check:
    """The runs directory (or the nearest existing parent it would be made in) is writable."""
    existing = next((path for path in (runs_dir, *runs_dir.parents) if path.exists()), None)
    if existing is not None and existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        state = "exists" if existing == runs_dir else f"will be made in {existing}"
        return passed("runs dir", f"{runs_dir} ({state}, writable)")
    from clever2sis.errors import RunsDirError

    where = existing if existing is not None else runs_dir
    return failed(
        "runs dir",
        f"{runs_dir}: {where} is not a writable directory for this user; fix its owner or mode, or set "
        "[sync] runs_dir",
        RunsDirError.exit_code,
    )


def _checked(name: str, check: Callable[[], object], ok: str) -> Check:
    try:
        check()
    except Clever2SisError as error:
        return failed(name, error)
    return passed(name, ok)


def _token_check(name: str, read: Callable[[], str], add: Callable[[Check], None]) -> str | None:
    try:
        token = read()
    except Clever2SisError as error:
        add(failed(name, error))
        return None
    add(passed(name, "set"))
    return keep_secret(token)


def _service_checks(
    target: CanvasProfile | None,
    clever_token: str | None,
    canvas_token: str | None,
    api_base: str,
    api_version: str,
    add: Callable[[Check], None],
) -> None:
    from clever2sis.canvas.client import CanvasClient, RetryPolicy
    from clever2sis.clever.client import CleverClient
    from clever2sis.preflight import check_canvas, check_clever

    runtime = current_runtime()
    if clever_token is None:
        add(skipped("clever district", "needs a Clever token"))
    else:
        try:
            with CleverClient(
                clever_token, api_base, api_version, sleep=runtime.sleep, max_retries=DOCTOR_CLEVER_RETRIES
            ) as clever:
                for check in check_clever(clever):
                    add(check)
        except Clever2SisError as error:
            add(failed("clever district", error))
    if target is None or canvas_token is None:
        add(skipped("canvas account", "needs a Canvas profile and its token"))
        return
    retry = RetryPolicy(max_attempts=DOCTOR_CANVAS_ATTEMPTS, max_total_sleep_s=DOCTOR_MAX_RETRY_SLEEP_S)
    with CanvasClient(
        target.base_url,
        canvas_token,
        token_source=target.token_env,
        transport=runtime.transport,
        retry=retry,
        sleep=runtime.sleep,
    ) as canvas:
        for check in check_canvas(canvas, target.account_id):
            add(check)
