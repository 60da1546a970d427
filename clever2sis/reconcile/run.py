"""``clever2sis reconcile``: compare a build with Canvas's provisioning report, write the drift (and a fix).

Everything is written to a new directory, renamed into place only when whole::

    OUT/
      reconcile.json              the summary (what ``--json`` prints): compared with what, drift per file,
                                  the fix
      provisioning_report.zip     the report as Canvas sent it (not when --report named a file)
      drift/<file>.csv            one row per drifted object (per field for changed ones): kind, the key,
                                  field, the build's value, Canvas's value, Canvas's id
      fix/                        with --fix and drift to fix: a build directory (csv/, sis_import.zip,
                                  build.json) that review, approve and upload take as any other

The build compared is a build directory, or what Canvas holds after the last run of a runs directory
whose import Canvas applied (its applied state, as the nightly sync starts from it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from clever2sis.atomic import atomic_directory, atomic_write_bytes
from clever2sis.errors import ReconcileBaselineError, UsageError
from clever2sis.progress import Progress, silent
from clever2sis.reconcile.drift import KINDS, MANUAL, RULES, Drift, compare
from clever2sis.reconcile.expected import Expected, read_expected, read_run
from clever2sis.reconcile.fix import (
    FIX_IMPORT_OPTIONS,
    RemovalStatuses,
    check_removals,
    fix_frames,
    write_fix,
)
from clever2sis.reconcile.report import ReportSource, read_table
from clever2sis.sis.writer import write_csv

SUMMARY_NAME = "reconcile.json"
DRIFT_DIR_NAME = "drift"
FIX_DIR_NAME = "fix"
SUMMARY_FORMAT = "clever2sis.reconcile"
SUMMARY_FORMAT_VERSION = 1
EXIT_NO_DRIFT = 0
EXIT_DRIFT = 60

# Given a directory, put Canvas's report in it; return what to record of it and the file.
FetchReport = Callable[[Path], tuple[dict[str, Any], Path]]


@dataclass(frozen=True)
class ReconcileSettings:
    """What to do with the drift: write a fix (``fix``), remove what was added by hand too
    (``remove_manual``), let a fix remove more than ``limit_percent`` of a file (``allow_large_change``)."""

    fix: bool = False
    remove_manual: bool = False
    allow_large_change: bool = False
    statuses: RemovalStatuses = field(default_factory=RemovalStatuses)
    limit_percent: Callable[[str], float] = lambda _name: 10.0


@dataclass(frozen=True)
class ReconcileResult:
    """The summary (``reconcile.json``), the exit code it stands for, the drift, and the fix if written."""

    summary: dict[str, Any]
    exit_code: int
    drift: Drift
    fix_dir: Path | None


def last_applied_run(runs_dir: Path, profile: str) -> Expected:
    """What Canvas holds after the profile's newest run whose import Canvas applied (the nightly
    baseline): that run's applied state (:func:`~clever2sis.reconcile.expected.read_run`)."""
    from clever2sis.errors import RunsDirError
    from clever2sis.sync.history import HISTORY_NAME, History

    if not (runs_dir / HISTORY_NAME).is_file():
        raise ReconcileBaselineError(
            f"{runs_dir} has no sync history; give the build Canvas last imported with --against BUILD_DIR"
        )
    try:
        with History(runs_dir) as history:
            baseline = history.last_baseline(profile)
    except RunsDirError as error:
        raise ReconcileBaselineError(str(error)) from None
    if baseline is None:
        raise ReconcileBaselineError(
            f"no run of profile {profile!r} in {runs_dir} was applied by Canvas; give the build to compare "
            "with --against BUILD_DIR"
        )
    return read_run(Path(str(baseline["run_dir"])), str(baseline["run_id"]))


def _summary(
    expected: Expected,
    report_info: Mapping[str, Any],
    tables: Mapping[str, Any],
    drift: Drift,
    fix: Mapping[str, Any] | None,
    settings: ReconcileSettings,
    out: Path,
) -> dict[str, Any]:
    fixable = drift.fixable(remove_manual=settings.remove_manual)
    exit_code = EXIT_DRIFT if fixable and not settings.fix else EXIT_NO_DRIFT
    return {
        "format": SUMMARY_FORMAT,
        "format_version": SUMMARY_FORMAT_VERSION,
        "against": {"build_dir": str(expected.build.build_dir), "zip_sha256": expected.build.sha256},
        "report": dict(report_info),
        "rows": {
            name: {"build": expected.tables[name].num_rows, "canvas": tables[file_drift.rule.table].num_rows}
            for name, file_drift in drift.files.items()
        },
        "drift": drift.counts(),
        "total": drift.totals(),
        "fixable": fixable,
        "fix": dict(fix) if fix is not None else None,
        "out": str(out),
        "exit_code": exit_code,
    }


def reconcile(
    against: Path | Expected,
    out: Path,
    *,
    fetch_report: FetchReport | None = None,
    report_file: Path | None = None,
    settings: ReconcileSettings = ReconcileSettings(),
    force: bool = False,
    progress: Progress = silent,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> ReconcileResult:
    """Compare ``against`` (a build directory, or rows already read) with Canvas's provisioning report;
    write everything into ``out``.

    The report comes from ``report_file`` (a zip of the report's CSVs, one CSV, or a directory of them)
    or, when none is given, from ``fetch_report`` (Canvas). See the module docstring for what ``out`` holds.
    """
    if out.exists() and not force:
        raise UsageError(f"{out} already exists; use --force to replace it")
    if report_file is None and fetch_report is None:
        raise UsageError("no provisioning report: give --report FILE, or a Canvas profile to ask for one")
    expected = read_expected(against) if isinstance(against, Path) else against
    progress(
        f"comparing with build {expected.build.build_dir}: "
        + ", ".join(f"{name} {table.num_rows:,}" for name, table in expected.tables.items())
        + " present rows"
    )
    with atomic_directory(out, replace=force) as tmp:
        if report_file is not None:
            source, report_info = ReportSource(report_file), {"source": "file", "file": str(report_file)}
        else:
            assert fetch_report is not None
            report_info, path = fetch_report(tmp)
            source = ReportSource(path)
            report_info = {"source": "canvas", **report_info, "file": str(out / path.name)}
        needed = ("courses", "sections", "users", "enrollments", "user_observers")
        tables = {table: read_table(source, table) for table in needed if _needed(table, expected)}
        progress("read the report: " + ", ".join(f"{t} {rows.num_rows:,}" for t, rows in tables.items()))
        drift = compare(expected, tables)
        drift_dir = tmp / DRIFT_DIR_NAME
        drift_dir.mkdir()
        for name, file_drift in drift.files.items():
            write_csv(file_drift.records(), drift_dir / name)
        fix = None
        fixable = drift.fixable(remove_manual=settings.remove_manual)
        if settings.fix and fixable:
            fix = _write_fix(drift, expected, report_info, settings, tmp, out, now)
        summary = _summary(expected, report_info, tables, drift, fix, settings, out)
        atomic_write_bytes(tmp / SUMMARY_NAME, orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    return ReconcileResult(
        summary=summary,
        exit_code=int(summary["exit_code"]),
        drift=drift,
        fix_dir=out / FIX_DIR_NAME if fix is not None else None,
    )


def _needed(table: str, expected: Expected) -> bool:
    """Courses are always read (they say which courses are live); the rest when the build manages them."""
    return table == "courses" or any(RULES[name].table == table for name in expected.managed if name in RULES)


def _write_fix(
    drift: Drift,
    expected: Expected,
    report_info: Mapping[str, Any],
    settings: ReconcileSettings,
    tmp: Path,
    out: Path,
    now: Callable[[], dt.datetime],
) -> dict[str, Any]:
    removing = check_removals(
        drift,
        limit_percent=settings.limit_percent,
        remove_manual=settings.remove_manual,
        allow=settings.allow_large_change,
    )
    frames = fix_frames(drift, settings.statuses, remove_manual=settings.remove_manual)
    options = [f"--{name.replace('_', '-')}" for name, _ in FIX_IMPORT_OPTIONS.form_fields()[1:]]
    record = write_fix(
        frames,
        tmp / FIX_DIR_NAME,
        built_at=now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        reconcile={
            "against": {"build_dir": str(expected.build.build_dir), "zip_sha256": expected.build.sha256},
            "report": dict(report_info),
            "drift": drift.counts(),
            "remove_manual": settings.remove_manual,
            "removing": removing,
            "import_options": FIX_IMPORT_OPTIONS.form_fields(),
        },
    )
    return {
        "build_dir": str(out / FIX_DIR_NAME),
        "rows": {name: entry.rows for name, entry in (record.files or {}).items()},
        "zip_sha256": record.zip.sha256,
        "upload_flags": options,
    }


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """The summary for people (stderr): what was compared, the drift per file, the fix, how to import it."""
    report = summary["report"]
    where = f"provisioning report {report['id']}" if report.get("id") is not None else report["file"]
    lines = [f"compared build {summary['against']['build_dir']} with {where}"]
    for name, counts in summary["drift"].items():
        found = [f"{counts[kind]} {kind}" for kind in KINDS if counts[kind]]
        lines.append(f"  {name}: {', '.join(found) if found else 'no drift'}")
    manual = summary["total"][MANUAL]
    lines.append(
        f"drift to fix: {summary['fixable']}"
        + (f"; {manual} added by hand in Canvas (flagged; --remove-manual removes them)" if manual else "")
    )
    lines.append(f"details: {summary['out']}/{DRIFT_DIR_NAME}/")
    fix = summary["fix"]
    if fix is not None:
        rows = ", ".join(f"{name} {count}" for name, count in fix["rows"].items())
        lines.append(f"fix: {fix['build_dir']} ({rows})")
        lines.append(
            f"  import it as a plain import: clever2sis upload {fix['build_dir']} "
            + " ".join(fix["upload_flags"])
        )
    elif summary["fixable"]:
        lines.append("run again with --fix to write a corrective build")
    return lines
