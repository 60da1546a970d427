"""The weekly reconcile inside ``clever2sis sync`` (``[sync] reconcile_every_days``).

On a night it is due, after the main import succeeded, the sync asks Canvas for the provisioning report,
compares it with what Canvas holds after tonight as the sync knows it (the run's applied state,
clever2sis/sync/state.py: most nights the build just imported) and, when there is drift to fix, posts
the fix as one more small plain import and follows it as it follows the main one. Everything goes to
``RUN/reconcile/`` (the layout of :mod:`clever2sis.reconcile.run`, the fix's import results under
``fix/imports/``).

A reconcile never changes the night's outcome or exit code: the main import is what the night is judged
by, and its facts are recorded whatever happens here. What happened is in the JSON line's ``reconcile``
object (with its own ``exit_code``: 0, 61 for a report that failed, 62 for a fix refused as too large,
20-23 or 30-39 for the fix's import) and in the run log. It counts as done, and is next due
``reconcile_every_days`` later, once a report was compared (``RUNS_DIR/reconcile/<profile>.json``); a
report that failed is asked for again the next night.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from clever2sis.atomic import atomic_write_bytes
from clever2sis.build_dir import BuildDir
from clever2sis.canvas.reports import REPORT_WAIT_S, AccountReports, fetch_provisioning_report
from clever2sis.canvas.sis_import import SisImports, WaitPolicy, check_outcome
from clever2sis.canvas.upload import follow_import, post_build
from clever2sis.errors import BuildDirError, Clever2SisError, ImportOutcomeError
from clever2sis.progress import Progress, silent
from clever2sis.reconcile.expected import read_run
from clever2sis.reconcile.fix import FIX_IMPORT_OPTIONS, RemovalStatuses
from clever2sis.reconcile.run import ReconcileSettings, reconcile

SCHEDULE_DIR_NAME = "reconcile"
RECONCILE_DIR_NAME = "reconcile"
SECONDS_PER_DAY = 24 * 60 * 60


def _schedule_file(runs_dir: Path, profile: str) -> Path:
    return runs_dir / SCHEDULE_DIR_NAME / f"{profile}.json"


def reconcile_due(runs_dir: Path, profile: str, now: dt.datetime, every_days: int) -> bool:
    """Whether tonight is a reconcile night: on, and never done or done ``every_days`` days ago or more."""
    if every_days <= 0:
        return False
    path = _schedule_file(runs_dir, profile)
    try:
        last = orjson.loads(path.read_bytes())["reconciled_at"]
        then = dt.datetime.fromisoformat(str(last).replace("Z", "+00:00"))
    except (FileNotFoundError, KeyError, TypeError, ValueError, orjson.JSONDecodeError):
        return True
    return (now - then).total_seconds() >= every_days * SECONDS_PER_DAY


def _record_done(runs_dir: Path, profile: str, run_id: str, now: dt.datetime) -> None:
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"profile": profile, "run_id": run_id, "reconciled_at": stamp}
    atomic_write_bytes(
        _schedule_file(runs_dir, profile), orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n"
    )


@dataclass(frozen=True)
class NightlyReconcile:
    """What a sync run gives its reconcile: where, with which Canvas, and the outside world."""

    runs_dir: Path
    run_id: str
    run_dir: Path
    profile: str
    canvas: SisImports
    statuses: RemovalStatuses
    limit_percent: Callable[[str], float]
    import_wait: WaitPolicy
    messages_ok: bool
    now: dt.datetime
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    attachment_wait_s: float | None = None
    progress: Progress = silent


def reconcile_after_import(night: NightlyReconcile) -> dict[str, Any]:
    """Reconcile what tonight's import left in Canvas; post and follow the fix. Never raises for what a
    user can act on: returns the facts for the JSON line (see the module docstring)."""
    out = night.run_dir / RECONCILE_DIR_NAME
    facts: dict[str, Any] = {"dir": str(out), "report_id": None, "drift": None, "fixable": None}
    facts |= {"fix_sis_import_id": None, "fix_import_state": None, "exit_code": 0, "message": ""}
    reports = AccountReports(night.canvas.client, night.canvas.account_id)

    def fetch(dest: Path) -> tuple[dict[str, Any], Path]:
        report, path = fetch_provisioning_report(
            reports,
            dest,
            policy=WaitPolicy(timeout_s=REPORT_WAIT_S),
            clock=night.monotonic,
            sleep=night.sleep,
            progress=night.progress,
        )
        facts["report_id"] = report.id
        return {"id": report.id, "profile": night.profile}, path

    settings = ReconcileSettings(fix=True, statuses=night.statuses, limit_percent=night.limit_percent)
    try:
        expected = read_run(night.run_dir, night.run_id)
        result = reconcile(
            expected, out, fetch_report=fetch, settings=settings, force=True, progress=night.progress
        )
        facts |= {"drift": result.summary["total"], "fixable": result.summary["fixable"]}
        _record_done(night.runs_dir, night.profile, night.run_id, night.now)
        if result.fix_dir is None:
            facts["message"] = "no drift to fix"
            return facts
        _post_fix(night, result.fix_dir, facts)
    except Clever2SisError as error:
        facts |= {"exit_code": error.exit_code, "message": str(error)}
        night.progress(f"warning: reconcile: {error}")
    return facts


def _post_fix(night: NightlyReconcile, fix_dir: Path, facts: dict[str, Any]) -> None:
    """Post the fix as a plain import, follow it, and record how it ended (raising what it ended as)."""
    posted = post_build(
        night.canvas,
        BuildDir(fix_dir).verified_zip(error=BuildDirError),
        FIX_IMPORT_OPTIONS,
        profile=night.profile,
        before_post=lambda _profile, _zip: {"sync": {"run_id": night.run_id, "reconcile": True}},
        progress=night.progress,
    )
    facts |= {"fix_sis_import_id": posted.sis_import.id, "fix_import_state": posted.sis_import.workflow_state}
    night.progress(f"reconcile: fix posted as sis_import {posted.sis_import.id}; following it")
    results = follow_import(
        night.canvas,
        posted,
        policy=night.import_wait,
        clock=night.monotonic,
        sleep=night.sleep,
        progress=night.progress,
        attachment_wait_s=night.attachment_wait_s,
    )
    final = results.sis_import
    facts["fix_import_state"] = final.workflow_state
    facts["message"] = (
        f"{facts['fixable']} drifted rows sent as sis_import {final.id}, ended {final.workflow_state}"
    )
    try:
        check_outcome(final, messages_ok=night.messages_ok)
    except ImportOutcomeError as error:
        facts |= {"exit_code": error.exit_code}
        night.progress(f"warning: reconcile: {error}")
