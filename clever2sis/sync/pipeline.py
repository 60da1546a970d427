"""One sync run: reconcile → pull → build (and identity changes) → guard (holds) → rollover → (removals) →
rewrite → upload → wait.

With ``[observers] enabled`` the upload is up to three imports: the observer links Clever no longer has
are removed before the main import, and every link Clever has is sent after it (see
:mod:`clever2sis.sync.observers`). The run's exit code is the worst of them: an import that failed (or
could not be uploaded, or was still running) stops the night there and gives its code; otherwise an import
that ended ``imported_with_messages`` gives 20 (unless ``messages_ok``), the main import's first.

:func:`run_sync` wires the library stages together, one function per stage (see :func:`_stages`). It
takes its clients (Clever, Canvas) as arguments, the outside world (clock, sleep, progress callback,
secrets) as a :class:`SyncRuntime` and what the run was asked as :class:`RunOptions`; it never prints and
never exits. It always returns a :class:`RunResult` (the JSON line a scheduler reads and the exit code it
acts on), and records the run in ``RUNS_DIR/history.sqlite`` and ``RUNS_DIR/<run_id>/run.json``. Only a
config error found before anything starts is raised (:class:`~clever2sis.errors.UsageError`).

History follows the run as it goes: the stage it is in, its import's state at every change. A run first
reconciles what earlier runs left unsettled (:mod:`clever2sis.sync.settle`). An interruption
(:class:`~clever2sis.interrupts.Interrupted`, or :class:`KeyboardInterrupt`) at any stage ends the run
``interrupted`` with exit code 130 (SIGINT) or 143 (SIGTERM): half-written directories are removed on the
way out, a posted import's id stays in the build directory and in history, and the next run follows it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd

from clever2sis import interrupts
from clever2sis.atomic import atomic_write_bytes
from clever2sis.build_dir import REMOVED, BuildDir, BuildRecord, Frames, empty_frames
from clever2sis.canvas.sis_import import (
    SUCCESS_STATES,
    ImportOptions,
    SisImport,
    SisImports,
    WaitPolicy,
    check_outcome,
)
from clever2sis.canvas.terms import EnrollmentTerms, ManagedTerm, TeacherDates, set_teacher_dates
from clever2sis.canvas.upload import Posted, follow_import, post_build
from clever2sis.clever.client import CleverClient
from clever2sis.clever.frames import user_roles
from clever2sis.clever.pull import pull_district
from clever2sis.clever.snapshot import Snapshot
from clever2sis.config import PauseWindow
from clever2sis.errors import (
    ApprovalRequiredError,
    BuildDirError,
    BuildError,
    CanvasError,
    Clever2SisError,
    CleverError,
    GuardStoppedError,
    ImportAlreadyRunningError,
    ImportNotRecordedError,
    ImportOutcomeError,
    ObserverImportError,
    PreflightError,
    RunsDirError,
    SchoolsHeldError,
    SnapshotError,
    SyncBuildError,
    SyncError,
    SyncLockedError,
    SyncPausedError,
    SyncPullError,
    UsageError,
    WaitTimeoutError,
)
from clever2sis.preflight import first_failure, run_checks
from clever2sis.progress import Progress, silent
from clever2sis.sis import files
from clever2sis.sis.build import build, with_findings
from clever2sis.sis.builders.user_observers import ACTIVE, DELETED, link_rows
from clever2sis.sync import guard as guards
from clever2sis.sync import observers as links_module
from clever2sis.sync import state as state_module
from clever2sis.sync.changes import (
    Amended,
    admin_role_changes,
    append_rows,
    carry_admin_leavers,
    carry_admin_removals,
    carry_ended_terms,
    carry_terms_and_accounts,
    change_counts,
    current_terms_only,
    ended_terms,
    present,
    removal_rows,
    without_rows,
)
from clever2sis.sync.history import PAUSED, SUMMARY_FIELDS, UPLOAD_STAGE, History, RunRow
from clever2sis.sync.holds import Held, apply_holds
from clever2sis.sync.identities import Churn, detect_churn, given_claimed

# The job and its import options live in sync/job.py (light, for doctor); importable from here as before.
from clever2sis.sync.job import DIFFING_IDENTIFIER_TEMPLATE as DIFFING_IDENTIFIER_TEMPLATE
from clever2sis.sync.job import SyncJob as SyncJob
from clever2sis.sync.job import check_job as check_job
from clever2sis.sync.job import import_options as import_options
from clever2sis.sync.runs import (
    BUILD_DIR_NAME,
    RUN_LOG_NAME,
    RUN_RECORD_NAME,
    SNAPSHOT_DIR_NAME,
    RunLock,
    RunLog,
    new_run_dir,
    prune_run_dirs,
    stamp,
    utc_now,
)
from clever2sis.sync.settle import settle_runs
from clever2sis.sync.state import (
    AppliedState,
    Outcome,
    ZipSizes,
    applied_of,
    observers_file,
    read_legacy_state,
    read_observers,
    read_state,
    sent_present,
    state_after,
    state_dir,
    write_observers,
    write_state,
    write_unchanged,
)
from clever2sis.sync.threshold import diff_skipped

if TYPE_CHECKING:
    import pandas as pd

EXIT_OK = 0
SECONDS_PER_DAY = 24 * 60 * 60

# Outcomes (history, run.json, the JSON line).
IMPORTED = "imported"
LOCKED = "locked"
GUARD_STOPPED = "guard_stopped"
SCHOOLS_HELD = "schools_held"  # Canvas applied the night; the guard held schools (their rows as before)
PULL_FAILED = "pull_failed"
BUILD_FAILED = "build_failed"
UPLOAD_FAILED = "upload_failed"
IMPORT_NOT_FOLLOWED = "import_not_followed"
PREFLIGHT_FAILED = "preflight_failed"
FAILED = "failed"
INTERRUPTED = "interrupted"

# Stages (history's and the JSON line's "stage": where a run was when it ended, or was stopped).
PREFLIGHT = "preflight"
SETTLE = "settle"
PULL = "pull"
BUILD = "build"
COMPARE = "compare"
REWRITE = "rewrite"
UPLOAD = UPLOAD_STAGE
WAIT = "wait"
REMOVE_LINKS = "observer_removals"  # with [observers]: before the upload of the main import
SEND_LINKS = "observer_links"  # with [observers]: after its wait

# What a sync's user can do (sync has no --messages-ok or --queue flag, unlike upload).
MESSAGES_OK_HINT = "upload.messages_ok = true in the config"
BUSY_HINT = "and run the sync again when it has ended (tomorrow night's run tries again by itself)"
# A pre-flight failure on the Clever side exits as a failed pull would; a Canvas one keeps its 30-39 code.
CLEVER_PREFLIGHT_EXIT = SyncPullError.exit_code


@dataclass(frozen=True)
class RunResult:
    """How a run ended: ``summary`` is the one JSON line for stdout; ``exit_code`` what the scheduler gets."""

    run_id: str
    exit_code: int
    outcome: str
    message: str
    summary: dict[str, Any]
    run_dir: Path | None = None

    def json_line(self) -> bytes:
        return orjson.dumps(self.summary, option=orjson.OPT_SORT_KEYS)


def remaster_reason(
    history: History,
    job: SyncJob,
    now: dt.datetime,
    *,
    asked: bool,
    state: AppliedState | None = None,
    carried: int = 0,
) -> str | None:
    """Diffing: why tonight re-sends everything (None: it need not).

    When asked; when Canvas applied the last night without deletes (``state``), so that what it did not
    remove is sent as removal rows; when people are carried over to a new id tonight (``carried``), since
    a diff would send their old ids as removed; on a first run; and when the last remaster is old enough.
    """
    if job.sync.deletion_mode != "diffing":
        return None
    if asked:
        return "asked for (--remaster)"
    if history.paused_since_last_applied(job.profile.name):
        return "the first night after a pause ([sync] pause)"
    if state is not None and state.needs_remaster:
        return f"Canvas applied run {state.run_id} without deletes (diffing_threshold_exceeded)"
    if carried:
        return (
            f"{carried} user(s) carried over to a new id (identity_changes = {job.sync.identity_changes}): "
            "a diff would send their old ids as removed"
        )
    last = history.last_remaster(job.profile.name)
    if last is None:
        return "no remaster applied yet"
    last_at = dt.datetime.fromisoformat(str(last["started"]).replace("Z", "+00:00"))
    days = (now - last_at).total_seconds() / SECONDS_PER_DAY
    if days >= job.sync.remaster_every_days:
        return f"the last one, run {last['run_id']}, is {days:g} days old (remaster_every_days)"
    return None


@dataclass(frozen=True)
class SyncRuntime:
    """The outside world a run touches, passed in so that a test (or another caller) can stand in for it.

    ``clock`` is "now" for run ids, term ends and history; ``monotonic`` and ``sleep`` time the wait for
    the import; ``progress`` gets every line of the run log; ``attachment_wait_s`` bounds the wait for
    Canvas's errors file (None: :data:`clever2sis.canvas.results.ATTACHMENT_WAIT_S`); ``secrets`` (the
    tokens) are redacted from the run log and from every message.
    """

    clock: Callable[[], dt.datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    progress: Progress = silent
    attachment_wait_s: float | None = None
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunOptions:
    """What this run was asked to do, beyond the config.

    ``runs_dir`` (None: ``[sync] runs_dir``); ``remaster`` (diffing: re-send every row this run);
    ``allow_large_change`` (let through a run the guard would stop, and hold no school);
    ``release_schools`` (Clever school ids or Canvas account ids the guard must not hold tonight);
    ``wait_policy`` (None: wait up to ``[upload] wait_timeout_s``); ``ignore_pause`` (run even inside a
    ``[sync] pause`` window).
    """

    runs_dir: Path | None = None
    remaster: bool = False
    allow_large_change: bool = False
    release_schools: tuple[str, ...] = ()
    wait_policy: WaitPolicy | None = None
    ignore_pause: bool = False


@dataclass
class _Run:
    """A run in progress: what it was given, and the facts it gathers (history, run.json, the JSON line)."""

    job: SyncJob
    clever: CleverClient
    canvas: SisImports
    options: RunOptions
    runtime: SyncRuntime
    history: History
    run_dir: Path
    started: dt.datetime
    facts: dict[str, Any]
    log: RunLog
    details: dict[str, Any] = field(default_factory=dict)
    keep: set[str] = field(default_factory=set)  # run directories keep_runs must not remove
    # An observer import that ended with messages: raised at the end unless something worse happens.
    deferred: list[ObserverImportError] = field(default_factory=list)

    @property
    def snapshot_dir(self) -> Path:
        return self.run_dir / SNAPSHOT_DIR_NAME

    @property
    def build_dir(self) -> BuildDir:
        return BuildDir(self.run_dir / BUILD_DIR_NAME)

    def record(self, **facts: Any) -> None:
        self.facts.update(facts)
        self.history.record({"run_id": self.facts["run_id"], **facts})

    def enter(self, stage: str) -> None:
        """The run moves on to ``stage``: history says so at once, so that a killed run shows where it was."""
        self.record(stage=stage)


def run_sync(
    job: SyncJob,
    clever: CleverClient,
    canvas: SisImports,
    *,
    options: RunOptions = RunOptions(),
    runtime: SyncRuntime = SyncRuntime(),
) -> RunResult:
    """Run one sync of ``job`` (see the module docstring) with the clients given."""
    check_job(job, remaster=options.remaster)
    runs_dir = options.runs_dir or job.sync.runs_dir
    started = runtime.clock()
    base_facts: dict[str, Any] = {
        "profile": job.profile.name,
        "started": stamp(started),
        "deletion_mode": job.sync.deletion_mode,
        "allow_large_change": options.allow_large_change,
    }
    try:
        history = History(runs_dir)
    except RunsDirError as error:
        return _unrecorded(started, base_facts, error)
    with history:
        try:
            lock = RunLock(runs_dir).acquire()
        except SyncError as error:
            result = _unrecorded(started, base_facts, error)
            if isinstance(error, SyncLockedError):
                history.record({**result.summary, "finished": result.summary["started"], "run_dir": None})
            return result
        with lock:
            window = None if options.ignore_pause else paused_window(job, started)
            if window is not None:
                return _paused(history, started, base_facts, window)
            return _locked_run(job, clever, canvas, history, runs_dir, base_facts, options, runtime)


def paused_window(job: SyncJob, now: dt.datetime) -> PauseWindow | None:
    """The ``[sync] pause`` window tonight falls in (dates in ``build.timezone``), if any."""
    if not job.sync.pause:
        return None
    return job.sync.paused_on(now.astimezone(zoneinfo.ZoneInfo(job.build.timezone)).date())


def _paused(
    history: History, started: dt.datetime, facts: Mapping[str, Any], window: PauseWindow
) -> RunResult:
    """A night inside a pause window: one history row, nothing pulled or sent."""
    error = SyncPausedError(
        f"paused ([sync] pause {window.describe()}): nothing was pulled or sent; the first night after the "
        "pause is a remaster (sync --ignore-pause runs anyway)"
    )
    run_id = f"{started.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{PAUSED}"
    summary = {
        **facts,
        "run_id": run_id,
        "outcome": PAUSED,
        "exit_code": error.exit_code,
        "message": str(error),
    }
    history.record({**summary, "finished": summary["started"], "run_dir": None})
    return RunResult(run_id, error.exit_code, PAUSED, str(error), summary)


def _unrecorded(started: dt.datetime, facts: Mapping[str, Any], error: SyncError) -> RunResult:
    outcome = LOCKED if isinstance(error, SyncLockedError) else FAILED
    run_id = f"{started.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{outcome}"
    summary = {
        **facts,
        "run_id": run_id,
        "outcome": outcome,
        "exit_code": error.exit_code,
        "message": str(error),
    }
    return RunResult(run_id, error.exit_code, outcome, str(error), summary)


def _locked_run(
    job: SyncJob,
    clever: CleverClient,
    canvas: SisImports,
    history: History,
    runs_dir: Path,
    base_facts: dict[str, Any],
    options: RunOptions,
    runtime: SyncRuntime,
) -> RunResult:
    started = runtime.clock()
    run_id, run_dir = new_run_dir(runs_dir, started)
    log = RunLog(run_dir / RUN_LOG_NAME, clock=runtime.clock, secrets=runtime.secrets, echo=runtime.progress)
    run = _Run(
        job=job,
        clever=clever,
        canvas=canvas,
        options=options,
        runtime=runtime,
        history=history,
        run_dir=run_dir,
        started=started,
        facts={"run_id": run_id, **base_facts, "run_dir": str(run_dir)},
        log=log,
    )
    outcome, exit_code, message = IMPORTED, EXIT_OK, "ok"
    interrupted = False
    try:
        history.start(
            run_id,
            profile=job.profile.name,
            started=base_facts["started"],
            run_dir=run_dir,
            deletion_mode=job.sync.deletion_mode,
            allow_large_change=options.allow_large_change,
        )
        log(f"sync run {run_id} for profile {job.profile.name} ({job.sync.deletion_mode} mode) in {run_dir}")
        _stages(run)
        outcome = str(run.facts.get("import_state") or IMPORTED)
        message = _imports_message(run) or f"sis_import {run.facts.get('sis_import_id')} ended {outcome}"
        if "reconcile" in run.details:
            message += f"; reconcile: {run.details['reconcile']['message']}"
    except Clever2SisError as error:
        outcome, exit_code, message = _outcome_of(error, run.facts), error.exit_code, log.redact(str(error))
    except (interrupts.Interrupted, KeyboardInterrupt) as error:
        stop = interrupts.interruption(error)
        assert stop is not None
        interrupted = True
        outcome, exit_code, message = INTERRUPTED, stop.exit_code, _interrupted_message(run, stop)
    except Exception as error:  # a bug: record the run as failed rather than leave it "running"
        outcome, exit_code, message = (
            FAILED,
            SyncError.exit_code,
            log.redact(f"{type(error).__name__}: {error}"),
        )
        log(f"error: {message}")
        _finish(run, outcome, exit_code, message)
        log.close()
        raise
    return _end(run, runs_dir, outcome, exit_code, message, prune=not interrupted)


def _interrupted_message(run: _Run, stop: interrupts.Interrupted) -> str:
    """What an interrupted run says: where it was stopped, and what becomes of its import."""
    where = f"{stop} during {run.facts.get('stage') or 'its start'}"
    import_id = run.facts.get("sis_import_id")
    if import_id is not None:
        return (
            f"{where}; sis_import {import_id} ({run.facts.get('import_state')}) carries on in Canvas: the "
            "next run follows it (or `clever2sis status "
            f"{import_id} --wait --build-dir {run.build_dir.path}`)"
        )
    if run.build_dir.pending_intents(run.job.profile.name):
        return f"{where}; the upload may have reached Canvas: the next run looks for it before posting"
    recorded = run.build_dir.recorded_imports(run.job.profile.name)
    if recorded:
        return f"{where}; sis_import {recorded[-1]} was posted: the next run follows it"
    return f"{where}; nothing was posted"


def _end(run: _Run, runs_dir: Path, outcome: str, exit_code: int, message: str, *, prune: bool) -> RunResult:
    """Prune, log and record how the run ended; a stop signal now waits until that is written."""
    result: RunResult | None = None
    try:
        with interrupts.deferred():
            if prune:
                _prune(run, runs_dir, run.job.sync.keep_runs)
            run.log(("done: " if exit_code == EXIT_OK else "stopped: ") + message)
            result = _finish(run, outcome, exit_code, message)
    except interrupts.Interrupted:
        if result is None:
            raise
        # A signal while the end was written down: the run is recorded as it ended; the process stops now.
    finally:
        run.log.close()
    return result


def _prune(run: _Run, runs_dir: Path, keep: int) -> None:
    """Apply ``keep_runs``: never this run, nor any profile's last applied run (the next run's baseline),
    nor the run whose zip Canvas's diffing compares with.

    A removal that fails is a warning in the log, not a failed run.
    """
    if keep <= 0:
        return
    protected = {str(run.facts["run_id"]), *run.history.baseline_run_ids(), *run.keep}
    try:
        removed = prune_run_dirs(runs_dir, keep, protected)
    except OSError as error:
        run.log(f"warning: old run directories not removed (keep_runs = {keep}): {error}")
        return
    if removed:
        run.log(
            f"removed {len(removed)} old run director{'y' if len(removed) == 1 else 'ies'} "
            f"(keep_runs = {keep}): {', '.join(removed)}"
        )


def _outcome_of(error: Clever2SisError, facts: Mapping[str, Any]) -> str:
    if isinstance(error, ObserverImportError):
        return error.outcome
    if isinstance(error, GuardStoppedError):
        return GUARD_STOPPED
    if isinstance(error, SchoolsHeldError):
        return SCHOOLS_HELD
    if isinstance(error, PreflightError):
        return PREFLIGHT_FAILED
    if isinstance(error, SyncPullError):
        return PULL_FAILED
    if isinstance(error, SyncBuildError):
        return BUILD_FAILED
    if isinstance(error, WaitTimeoutError):
        return IMPORT_NOT_FOLLOWED
    if facts.get("import_state"):
        return str(facts["import_state"])
    if isinstance(error, CanvasError | ApprovalRequiredError):
        return UPLOAD_FAILED
    return FAILED


def _finish(run: _Run, outcome: str, exit_code: int, message: str) -> RunResult:
    dates = run.details.get("term_overrides")
    if dates is not None and dates["message"]:
        message += f"; {dates['message']}"
    run.record(
        finished=stamp(run.runtime.clock()),
        outcome=outcome,
        exit_code=exit_code,
        message=message,
        import_state=run.facts.get("import_state"),
    )
    summary = {key: run.facts.get(key) for key in SUMMARY_FIELDS}
    if "reconcile" in run.details:
        summary["reconcile"] = run.details["reconcile"]
    if dates is not None:
        summary["term_overrides"] = {key: dates[key] for key in ("set", "unchanged", "failed")}
    record = {**summary, **run.details}
    atomic_write_bytes(
        run.run_dir / RUN_RECORD_NAME, orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n"
    )
    return RunResult(str(summary["run_id"]), exit_code, outcome, message, summary, run.run_dir)


# --- the stages ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """How tonight goes to Canvas: the import options, and why it is a remaster (None: it is not)."""

    options: ImportOptions
    remaster_reason: str | None = None

    @property
    def remaster(self) -> bool:
        return self.remaster_reason is not None


def _stages(run: _Run) -> None:
    """The stages in order; each records its facts on ``run`` and raises to stop the run."""
    run.enter(PREFLIGHT)
    _preflight(run)
    run.enter(SETTLE)
    _settle(run)
    run.enter(PULL)
    district_id = _pull(run)
    run.enter(BUILD)
    baseline = run.history.last_baseline(run.job.profile.name)
    state = _held_links(run, baseline, _applied_state(run, baseline))
    held = state.present if state is not None else None
    record, built = _build(run, previous=held)
    churn, record, built = _identity_changes(run, state, record, built)
    if state is not None and len(churn.carried):
        state = state.renamed(churn.renames)
        held = state.present
    run.enter(COMPARE)
    verdict, holds = _guard(run, state, built)
    amended = _with_renames(
        dataclasses.replace(_carry(run, held, _rollover(run, held, holds.frames)), held=holds.rows), churn
    )
    _count_changes(run, held, amended)
    _stop_if_stopped(run, state, verdict)
    run.enter(REWRITE)
    plan = _plan(run, district_id, state, churn)
    amended, links = _take_links(run, state, amended)
    sent = _removals(run, state, amended, plan)
    rewritten = _rewrite(
        run, record, sent, plan, baseline=baseline, verdict=verdict, churn=churn, links=links
    )
    skipped = _diff_skipped(run, plan, state, rewritten, sent)
    if skipped is not None:
        run.log(f"Canvas would not diff tonight: {skipped}; sending a remaster with the removals as rows")
        plan = _Plan(_options(run, district_id, churn, remaster=True), skipped)
        sent = _removals(run, state, amended, plan)
        rewritten = _rewrite(
            run, record, sent, plan, baseline=baseline, verdict=verdict, churn=churn, links=links
        )
    _report(run)
    if links is not None:
        run.enter(REMOVE_LINKS)
    kept = _remove_links(run, record, links, churn.renames)
    run.enter(UPLOAD)
    posted = _upload(run, plan.options, verdict)
    run.enter(WAIT)
    main_state = state if kept is None else links_module.for_main_import(state, kept)
    final = _follow(run, posted, plan, main_state, sent, rewritten)
    if links is not None:
        run.enter(SEND_LINKS)
    _send_links(run, record, final, links)
    check_outcome(final, messages_ok=run.job.upload.messages_ok, messages_ok_hint=MESSAGES_OK_HINT)
    _compare_with_canvas(run)
    if run.deferred:  # an observer import that ended with messages: the night says so
        raise run.deferred[0]
    if verdict.held:
        raise SchoolsHeldError(verdict.held_message())


def _preflight(run: _Run) -> None:
    """Check both tokens and the Canvas account (see :mod:`clever2sis.preflight`) before the pull."""
    checks = run_checks(run.clever, run.canvas.client, run.canvas.account_id, log=run.log)
    run.details["preflight"] = [check.as_dict() for check in checks]
    failure = first_failure(checks)
    if failure is not None:
        code = CLEVER_PREFLIGHT_EXIT if failure.name.startswith("clever") else failure.exit_code
        raise PreflightError(f"pre-flight, nothing was pulled: {failure.name}: {failure.detail}", code)


def _report(run: _Run) -> None:
    """Write report.html into the build, as ``clever2sis review`` would; a failure is only a warning."""
    from clever2sis.review.run import review_build

    try:
        done = review_build(
            run.build_dir.path, profile=run.job.profile.name, upload_options=run.job.upload.options
        )
    except Exception as error:  # the report is for people; it must never fail the night's sync
        run.log(f"warning: report.html not written ({type(error).__name__}: {error}); the run goes on")
        return
    run.log(f"report written: {done.report}")


def _settle(run: _Run) -> None:
    """Settle what earlier runs of the profile left (sync/settle.py); stop while one may still post."""
    done = settle_runs(
        run.history,
        run.canvas,
        profile=run.job.profile.name,
        now=run.runtime.clock(),
        besides=str(run.facts["run_id"]),
        progress=run.log,
    )
    for problem in done.problems:
        run.log(f"warning: {problem}")
    if done.blocking:
        raise ImportAlreadyRunningError(f"not posting: {done.blocking[0]}")


def _pull(run: _Run) -> str:
    """Pull the district into the run's snapshot; return its id."""
    try:
        manifest = pull_district(run.clever, run.snapshot_dir, progress=run.log)
    except (CleverError, SnapshotError, UsageError) as error:
        raise SyncPullError(f"pull failed: {error}") from error
    district_id = str(manifest["district"]["id"])
    run.record(district_id=district_id)
    return district_id


def _build(
    run: _Run, *, previous: Frames | None, claimed: pd.DataFrame | None = None
) -> tuple[BuildRecord, Frames]:
    """Build the snapshot into the run's build directory; return its record and every file's rows.

    ``previous`` (what Canvas holds: the applied state's present rows) lets a term Clever re-created keep
    its term_id; ``claimed`` are logins Canvas holds for removed users, which the build gives no one (a
    second build of the night replaces the first).
    """
    try:
        build(
            run.snapshot_dir,
            run.build_dir.path,
            run.job.build,
            progress=run.log,
            previous=previous,
            claimed_logins=claimed,
            force=claimed is not None,
            identities=True,
        )
        built = run.build_dir.verified_zip(error=SyncBuildError)
        return built.record, built.read_frames()
    except (BuildError, SnapshotError, UsageError) as error:
        raise SyncBuildError(f"build failed: {error}") from error


def _tonight_identities(run: _Run) -> pd.DataFrame:
    identities = run.build_dir.read_identities()
    if identities is None:
        raise SyncBuildError(f"build failed: {run.build_dir.identities_file} is missing")
    return identities


def _identity_changes(
    run: _Run, state: AppliedState | None, record: BuildRecord, built: Frames
) -> tuple[Churn, BuildRecord, Frames]:
    """Who Clever re-created under a new id tonight (:mod:`clever2sis.sync.identities`), against what
    Canvas holds; and the build again, without the logins Canvas holds for removed users who are not
    carried over, when tonight's build gave one of them to someone (Canvas would skip that user's row).

    The second build costs a night as much as the first; it happens only on such nights.
    """
    if state is None:
        run.record(identities_carried=0)
        return Churn.none(), record, built
    tonight = _tonight_identities(run)
    churn = detect_churn(
        tonight,
        held_users=state.present[files.USERS],
        held_identities=state.held_identities() if state.identities is not None else None,
        removed_users=state.removed_users,
        mode=run.job.sync.identity_changes,
        night=stamp(run.started),
    )
    taken = given_claimed(tonight, churn.claimed)
    if len(taken):
        run.log(
            f"{len(taken)} login(s) Canvas holds for removed users not carried over were given tonight "
            f"({', '.join(taken['login_id'].head(3))}{', ...' if len(taken) > 3 else ''}); building again "
            "without them"
        )
        record, built = _build(run, previous=state.present, claimed=churn.claimed)
    carried, ambiguous = len(churn.carried), len(churn.ambiguous)
    if carried or ambiguous:
        via = ", ".join(sorted(set(churn.carried["via"])))
        run.log(
            f"identity changes: {carried} user(s) carried over to a new id{f' ({via})' if via else ''}, "
            f"{ambiguous} ambiguous (not carried)"
        )
    run.record(identities_carried=carried)
    run.details["identity_changes"] = churn.details()
    return churn, record, built


def _with_renames(amended: Amended, churn: Churn) -> Amended:
    """``amended`` with the change_sis_id.csv rows of tonight's carry-overs."""
    rows = churn.change_sis_id_rows()
    if rows.empty:
        return amended
    frames = dict(amended.frames)
    frames[files.CHANGE_SIS_ID] = append_rows(frames[files.CHANGE_SIS_ID], rows)
    return dataclasses.replace(amended, frames=frames)


def _applied_state(run: _Run, baseline: RunRow | None) -> AppliedState | None:
    """What Canvas holds: the state the last applied run kept (None: no such run, or it is gone and allowed).

    A run kept before applied states existed (history has no ``applied`` for it) is read from its build.
    A state that is missing or damaged stops the run, unless --allow-large-change lets it go on from that
    run's build, or with nothing to compare with when the build is gone too.
    """
    if baseline is None:
        return None
    run_id, run_dir = str(baseline["run_id"]), Path(str(baseline["run_dir"]))
    try:
        if baseline["applied"] is None:
            state = read_legacy_state(run_dir, run_id, applied=_legacy_applied(baseline))
        else:
            state = read_state(run_dir, run_id)
    except RunsDirError as error:
        if not run.options.allow_large_change:
            raise RunsDirError(
                f"the last applied run {run_id} cannot tell what Canvas holds ({error}); restore its run "
                "directory, or re-run with --allow-large-change to go on without it"
            ) from None
        run.log(f"warning: the applied state of run {run_id} cannot be read ({error}); going on as allowed")
        try:
            state = read_legacy_state(run_dir, run_id, applied=_legacy_applied(baseline))
        except RunsDirError:
            run.log(f"warning: no build of run {run_id} to compare with either; going on as allowed")
            return None
    run.log(f"comparing with run {run_id} (sis_import {baseline['sis_import_id']}, applied {state.applied})")
    if state.canvas_baseline is not None:
        run.keep.add(state.canvas_baseline.run_id)
    return state


def _legacy_applied(baseline: RunRow) -> str:
    """What an applied run kept before history had ``applied`` most likely did, from its mode."""
    mode = baseline["deletion_mode"]
    if mode == "diffing":
        return state_module.REMASTER if baseline["remaster"] else state_module.DIFF
    return state_module.BATCH if mode == "batch" else state_module.EXPLICIT


def _rollover(run: _Run, held: Frames | None, new: Frames) -> Amended:
    """With ``[sync] term_rollover``: carry the ended terms' rows, conclude their enrollments."""
    if not run.job.sync.term_rollover:
        return Amended(frames=new)
    amended = carry_ended_terms(held if held is not None else empty_frames(), new, now=run.started)
    if amended.completed_enrollments or any(len(f) for f in amended.carried.values()):
        carried = {name: len(frame) for name, frame in amended.carried.items() if len(frame)}
        run.log(f"term rollover: {amended.completed_enrollments} enrollments concluded; carried {carried}")
    return amended


def _carry(run: _Run, held: Frames | None, amended: Amended) -> Amended:
    """Diffing and explicit mode: send again every term and account Canvas holds that Clever left out.
    Every mode: keep for tonight the users who leave while their admin rows are removed
    (:func:`~clever2sis.sync.changes.carry_admin_leavers`).

    Not in batch mode: multi-term batch mode takes every term of terms.csv as in scope and would delete
    what a carried term holds.
    """
    if held is None:
        return amended
    amended = carry_admin_leavers(held, amended)
    if run.job.sync.deletion_mode == "batch":
        return amended
    carried = carry_terms_and_accounts(held, amended)
    more = {
        name: len(carried.carried[name]) - len(amended.carried[name])
        for name in (files.ACCOUNTS, files.TERMS)
        if len(carried.carried[name]) > len(amended.carried[name])
    }
    if more:
        run.log(f"terms and accounts Canvas holds and Clever left out, sent again: {more}")
    return carried


def _guard(run: _Run, state: AppliedState | None, built: Frames) -> tuple[guards.Verdict, Held]:
    """Judge what Clever sent tonight against what Canvas holds (:mod:`clever2sis.sync.guard`); return
    the verdict and tonight's frames with the held schools as Canvas has them.

    Tonight: the build before anything was carried into it. Canvas: the applied state's present rows less
    the rows the sync carried (a held school's rows stay: they are what Canvas holds of it). Both without
    the terms that have ended (and what they hold), so a rollover is not a loss and an ended term's rows
    never stand in for tonight's. Which terms have ended is read from every term Canvas holds, the carried
    ones too: a school held over a rollover keeps its rows of the ended term, whose term row the sync
    carried, and those rows must not count as the school's tonight once its data returns.
    """
    old: Frames | None = None
    new = built
    roles_before = roles_after = None
    if state is not None:
        held = without_rows(state.present, state.carried)
        ended = ended_terms(state.present[files.TERMS], built[files.TERMS], now=run.started)
        old, new = current_terms_only(held, ended), current_terms_only(built, ended)
        roles_before, roles_after = _role_counts(run, state, held, built)
    asked = guards.GuardInput(
        settings=run.job.sync.guard,
        shrink_limit_percent=run.job.sync.shrink_limit_percent,
        allow_all=run.options.allow_large_change,
        release=frozenset(run.options.release_schools),
        roles_before=roles_before,
        roles_after=roles_after,
        held_before=_held_before(run, state),
        carried_identities=int(run.facts.get("identities_carried") or 0),
        night=stamp(run.started),
        run_id=str(run.facts["run_id"]),
    )
    verdict = guards.judge(old, new, asked)
    run.details["guard_details"] = verdict.as_dict()
    run.record(guard=verdict.verdict, guard_details=verdict.as_dict(), held_schools=verdict.held_summary())
    if verdict.shrinks or verdict.held or verdict.released:
        run.log(f"guard ({verdict.verdict}): {verdict.message() or 'released ' + verdict.released_message()}")
    for value in verdict.unknown_releases:
        run.log(f"warning: --allow-large-change {value} names no school Canvas holds or Clever sent")
    if state is None or not verdict.held or verdict.stops:
        return verdict, Held(frames=built, rows=empty_frames())
    identities = state.held_identities() if state.identities is not None else None
    return verdict, apply_holds(state.present, built, guards.held_accounts(verdict), identities)


def _held_before(run: _Run, state: AppliedState | None) -> dict[str, tuple[str, str]]:
    """The holds that went on before tonight: those the state's run recorded in its build (none when its
    record cannot be read: tonight is then the first night of any hold)."""
    if state is None or state.run_id is None:
        return {}
    layout = BuildDir(run.run_dir.parent / state.run_id / BUILD_DIR_NAME)
    try:
        record = layout.read_record(error=RunsDirError)
    except RunsDirError:
        return {}
    return guards.holds_of((record.sync or {}).get("guard"))


def _stop_if_stopped(run: _Run, state: AppliedState | None, verdict: guards.Verdict) -> None:
    """Stop the run (nothing uploaded) when the guard stops the whole night."""
    if verdict.stops:
        raise GuardStoppedError(
            f"nothing was uploaded: against run {state.run_id if state else '?'}, {verdict.message()}. "
            "If the district really changed this much, re-run with --allow-large-change (a held school "
            "alone: --allow-large-change SCHOOL_ID)"
        )


def _role_counts(
    run: _Run, state: AppliedState, held: Frames, built: Frames
) -> tuple[dict[str, int], dict[str, int]]:
    """How many users Canvas holds and tonight's users.csv has of each Clever role (users.csv does not say
    a user's roles): from the builds' identities.csv, or for a state kept before it existed from the roles
    in the snapshots of the state's run and of tonight."""
    if state.identities is not None:
        return (
            guards.role_counts_of_identities(held[files.USERS], state.identities),
            guards.role_counts_of_identities(built[files.USERS], _tonight_identities(run)),
        )
    tonight = guards.role_counts(built[files.USERS], user_roles(Snapshot.open(run.snapshot_dir)))
    before_dir = run.run_dir.parent / str(state.run_id) / SNAPSHOT_DIR_NAME
    try:
        before_roles = user_roles(Snapshot.open(before_dir))
    except SnapshotError as error:
        if not run.options.allow_large_change:
            raise RunsDirError(
                f"the snapshot of run {state.run_id} cannot be read to compare users' roles with ({error}); "
                "restore its run directory, or re-run with --allow-large-change to go on without it"
            ) from None
        run.log(
            f"warning: no snapshot of run {state.run_id} to compare users' roles with; going on as allowed"
        )
        return {}, tonight
    return guards.role_counts(held[files.USERS], before_roles), tonight


def _count_changes(run: _Run, held: Frames | None, amended: Amended) -> None:
    """Record what tonight changes against what Canvas holds (history's ``changes``)."""
    run.record(changes=change_counts(held if held is not None else empty_frames(), amended.frames))


def _plan(run: _Run, district_id: str, state: AppliedState | None, churn: Churn) -> _Plan:
    """Tonight's import options, and whether (and why) it is a remaster."""
    reason = remaster_reason(
        run.history,
        run.job,
        run.started,
        asked=run.options.remaster,
        state=state,
        carried=len(churn.carried),
    )
    return _Plan(_options(run, district_id, churn, remaster=reason is not None), reason)


def _options(run: _Run, district_id: str, churn: Churn, *, remaster: bool) -> ImportOptions:
    """The import options (:func:`import_options`), with update_sis_id_if_login_claimed when a carry-over
    is made by it."""
    options = import_options(run.job, district_id=district_id, remaster=remaster)
    if churn.by_login_option:
        options = dataclasses.replace(options, update_sis_id_if_login_claimed=True)
    return options


def _removals(run: _Run, state: AppliedState | None, amended: Amended, plan: _Plan) -> Amended:
    """Explicit mode, and a diffing remaster: send what Canvas holds and tonight lacks as removal rows.
    Every night: the admins the product made that tonight lacks (see
    :func:`~clever2sis.sync.changes.removal_rows`), and on a diffed night the admin removals of Canvas's
    baseline again (:func:`~clever2sis.sync.changes.carry_admin_removals`).

    A remaster applies the files without diffing, so what vanished since the last run would never be
    removed: on those nights the removals are sent as rows, as explicit mode always does.
    """
    if state is None:
        return amended
    every_file = run.job.sync.deletion_mode == "explicit" or plan.remaster
    options = plan.options
    if not every_file and options.diffing_data_set_identifier is not None:
        amended = carry_admin_removals(state.admin_removals, amended)
    removed = removal_rows(
        state.present,
        amended.frames,
        enrollment_status=options.diffing_drop_status or run.job.sync.enrollment_remove_status,
        user_status=options.diffing_user_remove_status or run.job.sync.user_remove_status,
        only=None if every_file else (files.ADMINS,),
    )
    frames = {name: append_rows(amended.frames[name], removed[name]) for name in amended.frames}
    if every_file or len(removed[files.ADMINS]):
        run.log(f"removals sent as rows: { {n: len(f) for n, f in removed.items() if len(f)} }")
    return dataclasses.replace(amended, frames=frames, removed=removed)


def _rewrite(
    run: _Run,
    record: BuildRecord,
    amended: Amended,
    plan: _Plan,
    *,
    baseline: RunRow | None,
    verdict: guards.Verdict,
    churn: Churn,
    links: links_module.LinkPlan | None = None,
) -> BuildRecord:
    """Write the sync's changes into the build (CSVs, zip, build.json with a "sync" section and tonight's
    identity findings, sync/). The section also holds, for the review, tonight's identity changes (when
    there are any) and, with managed observer links, their counts; the links to remove and to add go,
    named, under sync/ (:data:`~clever2sis.sync.observers.PLANNED_KINDS`)."""
    found = churn.findings()
    if len(found):
        record = dataclasses.replace(record, findings=with_findings(record.findings or {}, found))
    sync_facts = {
        "run_id": run.facts["run_id"],
        "profile": run.job.profile.name,
        "import_options": {
            k: v for k, v in dataclasses.asdict(plan.options).items() if v not in (None, False)
        },
        "deletion_mode": run.job.sync.deletion_mode,
        "baseline_run_id": baseline["run_id"] if baseline else None,
        "guard": verdict.as_dict(),
        "remaster": plan.remaster,
        "remaster_reason": plan.remaster_reason,
        "identities": churn.counts(),
    }
    if len(churn.carried) or len(churn.ambiguous):
        sync_facts["identity_changes"] = churn.details()
    sync_rows = amended.sync_rows()
    if links is not None:
        sync_facts["observer_links"] = links.counts()
        sync_rows.update(links.planned_rows())
    try:
        rewritten = run.build_dir.rewrite(
            record, amended.frames, sync_rows=sync_rows, sync={**sync_facts, **amended.counts()}
        )
    except OSError as error:
        raise SyncBuildError(f"cannot rewrite the build in {run.build_dir.path}: {error}") from error
    except BuildError as error:
        raise SyncBuildError(f"the rewritten build in {run.build_dir.path}: {error}") from error
    run.details["import_options"] = plan.options.form_fields()
    run.details["sync_changes"] = amended.counts()
    run.details["remaster_reason"] = plan.remaster_reason
    run.record(
        rows={name: entry.rows for name, entry in (rewritten.files or {}).items()}, remaster=plan.remaster
    )
    if plan.remaster:
        run.log(
            f"remaster ({plan.remaster_reason}): Canvas applies the whole files and restarts the diff chain"
        )
    return rewritten


def _diff_skipped(
    run: _Run, plan: _Plan, state: AppliedState | None, rewritten: BuildRecord, sent: Amended
) -> str | None:
    """Diffing, not a remaster: why tonight cannot go as a diff (None: it can), as the remaster's reason.

    ``threshold: ...``: Canvas would skip the diff, apply the whole files without deletes, and tonight's
    removals would wait a night. ``admins: ...``: tonight gives an admin another role in an account, and
    Canvas's diff would keep the old role (:func:`~clever2sis.sync.changes.admin_role_changes`).
    """
    if plan.remaster or state is None or state.canvas_baseline is None:
        return None
    if plan.options.diffing_data_set_identifier is None:
        return None
    moved = admin_role_changes(state.present, sent.frames)
    if moved:
        return (
            f"admins: admins.csv gives {moved} admin(s) another role in an account, and Canvas's diff pairs "
            "admins by user_id and account_id only (the old role would stay)"
        )
    baseline = state.canvas_baseline
    sizes = ZipSizes({name: entry.bytes for name, entry in (rewritten.files or {}).items()})
    baseline_frames = None
    if plan.options.diff_row_count_threshold is not None:
        layout = BuildDir(run.run_dir.parent / baseline.run_id / BUILD_DIR_NAME)
        try:
            baseline_frames = layout.verified_zip(error=RunsDirError).read_frames()
        except RunsDirError as error:
            run.log(f"warning: Canvas's diff baseline, run {baseline.run_id}, cannot be read: {error}")
    skipped = diff_skipped(
        baseline, sizes, plan.options, baseline_frames=baseline_frames, tonight=sent.frames
    )
    return None if skipped is None else f"threshold: {skipped}"


def _upload(run: _Run, options: ImportOptions, verdict: guards.Verdict) -> Posted:
    """Post the build's zip (checked against build.json again); the guard's verdict is its sign-off."""
    try:
        posted = post_build(
            run.canvas,
            run.build_dir.verified_zip(error=BuildDirError),
            options,
            profile=run.job.profile.name,
            before_post=lambda _profile, _zip: {
                "sync": {"run_id": run.facts["run_id"], "guard": verdict.verdict}
            },
            progress=run.log,
            now=run.runtime.clock,
            busy_hint=BUSY_HINT,
        )
    except ImportNotRecordedError as error:
        run.record(sis_import_id=error.import_id, import_state=error.workflow_state)
        raise
    run.record(sis_import_id=posted.sis_import.id, import_state=posted.sis_import.workflow_state)
    _note_import(run, links_module.MAIN, posted.sis_import)
    run.log(f"sis_import {posted.sis_import.id} posted; following it")
    return posted


def _follow(
    run: _Run, posted: Posted, plan: _Plan, state: AppliedState | None, sent: Amended, rewritten: BuildRecord
) -> SisImport:
    """Wait for the import to end, save its results, keep the applied state; return the import as it
    ended (:func:`_stages` judges it, after the observer links were sent)."""

    def on_update(sis_import: SisImport) -> None:
        if sis_import.workflow_state != run.facts.get("import_state"):
            run.record(import_state=sis_import.workflow_state)

    results = follow_import(
        run.canvas,
        posted,
        policy=run.options.wait_policy or WaitPolicy(timeout_s=run.job.upload.wait_timeout_s),
        clock=run.runtime.monotonic,
        sleep=run.runtime.sleep,
        on_update=on_update,
        progress=run.log,
        attachment_wait_s=run.runtime.attachment_wait_s,
    )
    final = results.sis_import
    run.details["import_counts"] = dict(final.counts)
    run.log(f"sis_import {final.id} ended {final.workflow_state}: {dict(final.counts)}")
    applied = applied_of(final, plan.options)
    run.record(import_state=final.workflow_state, applied=applied)
    _note_import(run, links_module.MAIN, final)
    _keep_state(run, plan, state, sent, rewritten, applied)
    if applied != state_module.NONE:
        _teacher_dates(run, sent)
    if applied == state_module.WHOLE_NO_DELETES:
        run.log(
            "Canvas applied the whole files without deletes (diffing_threshold_exceeded): what vanished "
            "tonight is still active in Canvas; the next run is a remaster that sends it as removal rows"
        )
    return final


def _keep_state(
    run: _Run,
    plan: _Plan,
    state: AppliedState | None,
    sent: Amended,
    rewritten: BuildRecord,
    applied: str,
) -> None:
    """Compute the state after tonight and keep it in the run directory (see clever2sis/sync/state.py)."""
    run_id = str(run.facts["run_id"])
    try:
        if applied == state_module.NONE:
            write_unchanged(run.run_dir, run_id, state)
            after = state
        else:
            outcome = Outcome(
                run_id=run_id,
                night=stamp(run.started),
                applied=applied,
                sizes=ZipSizes({name: entry.bytes for name, entry in (rewritten.files or {}).items()}),
                user_remove_status=plan.options.diffing_user_remove_status or run.job.sync.user_remove_status,
            )
            identities = run.build_dir.read_identities()
            after = state_after(state, sent, outcome, identities=identities)
            # Only a night applied without deletes holds other rows than the build's own present rows.
            build_present = (
                sent_present(sent.frames) if applied == state_module.WHOLE_NO_DELETES else after.present
            )
            write_state(run.run_dir, after, build_present=build_present, build_identities=identities)
    except OSError as error:
        raise RunsDirError(
            f"cannot keep the applied state of run {run_id} in {state_dir(run.run_dir)}: {error}"
        ) from error
    run.keep = {after.canvas_baseline.run_id} if after and after.canvas_baseline else set()


def _compare_with_canvas(run: _Run) -> None:
    """``[sync] reconcile_every_days``: on a night it is due, compare Canvas with what it holds after tonight
    (the state _keep_state wrote) and post the fix (:mod:`clever2sis.reconcile.nightly`). Its outcome never
    changes the night's."""
    from clever2sis.reconcile.fix import RemovalStatuses
    from clever2sis.reconcile.nightly import NightlyReconcile, reconcile_after_import, reconcile_due

    runs_dir = run.run_dir.parent
    job = run.job
    if not reconcile_due(runs_dir, job.profile.name, run.started, job.sync.reconcile_every_days):
        return
    run.log("reconcile: comparing Canvas with tonight's import (its provisioning report)")
    facts = reconcile_after_import(
        NightlyReconcile(
            runs_dir=runs_dir,
            run_id=str(run.facts["run_id"]),
            run_dir=run.run_dir,
            profile=job.profile.name,
            canvas=run.canvas,
            statuses=RemovalStatuses(job.sync.enrollment_remove_status, job.sync.user_remove_status),
            limit_percent=job.sync.shrink_limit_percent,
            import_wait=run.options.wait_policy or WaitPolicy(timeout_s=job.upload.wait_timeout_s),
            messages_ok=job.upload.messages_ok,
            now=run.started,
            monotonic=run.runtime.monotonic,
            sleep=run.runtime.sleep,
            attachment_wait_s=run.runtime.attachment_wait_s,
            progress=run.log,
        )
    )
    run.details["reconcile"] = facts
    run.log(f"reconcile: {facts['message']}")


def _teacher_dates(run: _Run, sent: Amended) -> None:
    """``[sync] teacher_start_days_before`` / ``teacher_end_days_after``: after an applied import, give the
    terms of tonight's terms.csv the teachers' term date overrides (see :mod:`clever2sis.canvas.terms`).

    What it set and what failed go to the run log, run.json (``term_overrides``), the JSON line and the
    history message; a failure is a warning, never the night's outcome: the import it follows is done.
    """
    sync = run.job.sync
    dates = TeacherDates(
        start_days_before=sync.teacher_start_days_before,
        end_days_after=sync.teacher_end_days_after,
        roles=sync.teacher_dates_roles,
        timezone=run.job.build.timezone,
    )
    if not dates.on:
        return
    terms = present(sent.frames)[files.TERMS]
    managed = [
        ManagedTerm(str(term_id), str(start), str(end))
        for term_id, start, end in zip(terms["term_id"], terms["start_date"], terms["end_date"], strict=True)
    ]
    client = EnrollmentTerms(run.canvas.client, run.canvas.account_id)
    facts = set_teacher_dates(client, managed, dates, progress=run.log)
    for failure in facts["failures"]:
        where = f"term {failure['term_id']}" if failure["term_id"] else "terms"
        run.log(f"warning: teacher term dates not set for {where}: {failure['error']}")
    run.log(
        f"teacher term dates: {facts['set']} set, {facts['unchanged']} already right, {facts['failed']} "
        f"failed, of {facts['terms']} term(s)"
    )
    run.details["term_overrides"] = facts


# --- observer links (see clever2sis/sync/observers.py) ---------------------------------------------------

IMPORT_LABELS = {
    links_module.REMOVALS: "observer link removals",
    links_module.MAIN: "main import",
    links_module.LINKS: "observer links",
}


def _note_import(run: _Run, role: str, sis_import: SisImport, rows: int | None = None) -> None:
    """Record one of the night's imports in ``imports`` (history, run.json, the JSON line), in the order
    they were posted."""
    imports: list[dict[str, Any]] = list(run.facts.get("imports") or [])
    entry = _entry(role, sis_import.id, sis_import.workflow_state)
    if rows is not None:
        entry["rows"] = rows
    found = next((i for i, e in enumerate(imports) if e["import"] == role), None)
    if found is None:
        imports.append(entry)
    else:
        imports[found] = {**imports[found], **entry}
    run.record(imports=imports)


def _entry(role: str, import_id: int, workflow_state: str) -> dict[str, Any]:
    return {"import": role, "sis_import_id": import_id, "import_state": workflow_state}


def _imports_message(run: _Run) -> str | None:
    """How each of the night's imports ended, when there was more than the main one."""
    imports = run.facts.get("imports") or []
    if len(imports) < 2:
        return None
    return "; ".join(
        f"{IMPORT_LABELS[e['import']]}: sis_import {e['sis_import_id']} ended {e['import_state']}"
        for e in imports
    )


def _held_links(run: _Run, baseline: RunRow | None, state: AppliedState | None) -> AppliedState | None:
    """With ``[observers] enabled``: the links Canvas holds join the state (see
    :func:`clever2sis.sync.observers.for_sync`).

    They are the newest a run kept since the state's run: a night whose main import was not applied may
    still have removed links before it (and kept what Canvas then held). That run is kept by keep_runs.
    """
    if state is None or baseline is None or not run.job.build.observers.enabled:
        return state
    for row in run.history.runs(profile=run.job.profile.name):
        if str(row["run_id"]) <= str(baseline["run_id"]):
            break
        if row["run_id"] == run.facts["run_id"] or not row["run_dir"]:
            continue
        run_dir = Path(str(row["run_dir"]))
        if not observers_file(run_dir).is_file():
            continue
        try:
            newer = read_observers(run_dir)
        except RunsDirError as error:
            if not run.options.allow_large_change:
                raise RunsDirError(
                    f"run {row['run_id']} cannot tell which observer links Canvas holds ({error}); restore "
                    "its run directory, or re-run with --allow-large-change to go on without it"
                ) from None
            run.log(f"warning: the observer links of run {row['run_id']} cannot be read ({error}); going on")
            break
        run.log(f"observer links Canvas holds: as run {row['run_id']} kept them ({len(newer)})")
        run.keep.add(str(row["run_id"]))
        return links_module.for_sync(state, newer)
    return links_module.for_sync(state)


def _take_links(
    run: _Run, state: AppliedState | None, amended: Amended
) -> tuple[Amended, links_module.LinkPlan | None]:
    """With ``[observers] enabled``: user_observers.csv out of the main import; tonight's links against
    those Canvas holds (None: the links go in the main import, as the build made them)."""
    if not run.job.build.observers.enabled:
        return amended, None
    amended, links = links_module.take_links(amended, state)
    counts = links.counts()
    run.details["observer_links"] = counts
    run.log(
        f"observer links: {counts['tonight']} tonight ({counts['added']} new), {counts['removed']} that "
        "Clever no longer has; sent in imports of their own, not in the main import"
    )
    return amended, links


def _keep_links(run: _Run, observers: pd.DataFrame) -> None:
    """Keep the links Canvas may hold now in the run's state (RUN/state/observers.csv)."""
    try:
        write_observers(run.run_dir, observers)
    except OSError as error:
        raise RunsDirError(
            f"cannot keep the observer links of run {run.facts['run_id']} in "
            f"{state_dir(run.run_dir)}: {error}"
        ) from error


def _observer_import(
    run: _Run, role: str, record: BuildRecord, rows: pd.DataFrame, named: pd.DataFrame, kind: str
) -> SisImport:
    """Write one observer import's build directory (RUN/observers-removed/ or RUN/observers/: csv/, zip,
    build.json, and ``named`` under sync/<kind>/), post it as a plain import and follow it to its end.

    Upload errors and a wait that runs out raise (:class:`~clever2sis.errors.CanvasError`).
    """
    layout = BuildDir(run.run_dir / links_module.IMPORT_DIR_NAMES[role])
    frames = empty_frames()
    frames[files.USER_OBSERVERS] = rows
    facts = {"run_id": run.facts["run_id"], "import": role, "rows": len(rows)}
    try:
        layout.path.mkdir(parents=True, exist_ok=True)
        layout.rewrite(
            dataclasses.replace(record, findings=None, skipped_files=None),
            frames,
            sync_rows={kind: {files.USER_OBSERVERS: named}},
            sync=facts,
        )
    except OSError as error:
        raise SyncBuildError(f"cannot write the {IMPORT_LABELS[role]} in {layout.path}: {error}") from error
    except BuildError as error:
        raise SyncBuildError(f"the {IMPORT_LABELS[role]} in {layout.path}: {error}") from error
    run.log(f"{IMPORT_LABELS[role]}: {len(rows)} rows in {layout.path}")
    try:
        posted = post_build(
            run.canvas,
            layout.verified_zip(error=BuildDirError),
            ImportOptions(),
            profile=run.job.profile.name,
            before_post=lambda _profile, _zip: {"sync": {"run_id": run.facts["run_id"], "import": role}},
            progress=run.log,
            now=run.runtime.clock,
        )
    except ImportNotRecordedError as error:
        run.record(
            imports=[*(run.facts.get("imports") or []), _entry(role, error.import_id, error.workflow_state)]
        )
        raise
    _note_import(run, role, posted.sis_import, len(rows))
    results = follow_import(
        run.canvas,
        posted,
        policy=run.options.wait_policy or WaitPolicy(timeout_s=run.job.upload.wait_timeout_s),
        clock=run.runtime.monotonic,
        sleep=run.runtime.sleep,
        progress=run.log,
        attachment_wait_s=run.runtime.attachment_wait_s,
    )
    final = results.sis_import
    _note_import(run, role, final, len(rows))
    run.log(
        f"{IMPORT_LABELS[role]}: sis_import {final.id} ended {final.workflow_state}: {dict(final.counts)}"
    )
    return final


def _outcome_problem(run: _Run, final: SisImport) -> ImportOutcomeError | None:
    try:
        check_outcome(final, messages_ok=run.job.upload.messages_ok, messages_ok_hint=MESSAGES_OK_HINT)
    except ImportOutcomeError as problem:
        return problem
    return None


def _judged_observer_import(
    run: _Run,
    role: str,
    record: BuildRecord,
    rows: tuple[pd.DataFrame, pd.DataFrame, str],
    *,
    then: str,
    failed: str,
) -> SisImport:
    """Post one observer import (``rows``: its rows, the named rows and their kind, as
    :func:`_observer_import` takes them) and judge how it ended: not uploaded or not applied raises
    ObserverImportError (outcome ``failed``; ``then`` says what happens next); applied with messages is
    kept for the night's end."""
    label = f"the {IMPORT_LABELS[role]}"
    try:
        final = _observer_import(run, role, record, *rows)
    except CanvasError as error:
        raise ObserverImportError(
            f"{label} could not be sent ({error}); {then}", exit_code=error.exit_code, outcome=failed
        ) from error
    problem = _outcome_problem(run, final)
    if final.workflow_state not in SUCCESS_STATES:
        assert problem is not None
        raise ObserverImportError(f"{label}: {problem}; {then}", exit_code=problem.exit_code, outcome=failed)
    if problem is not None:
        run.deferred.append(
            ObserverImportError(
                f"{label}: {problem}", exit_code=problem.exit_code, outcome=final.workflow_state
            )
        )
    return final


def _remove_links(
    run: _Run, record: BuildRecord, links: links_module.LinkPlan | None, renames: pd.Series
) -> pd.DataFrame | None:
    """Before the main import: the links Canvas holds that Clever no longer has, as ``deleted`` rows in a
    plain import of their own (the people are still active in Canvas, and named by the ids they have
    before the main import carries some over to new ones: ``renames``); return the links Canvas holds once
    it has ended, also kept in the run's state (None: links not managed).

    When it is not applied (or cannot be uploaded) the night stops before the main import, which would
    suspend or delete people whose links could then no longer be removed; the next run sends them again.
    """
    if links is None:
        return None
    removed = links.removed
    if not len(removed):
        _keep_links(run, links.held)
        return links.held
    stop = (
        "nothing else was posted: the main import would suspend people whose links could then no longer be "
        "removed. The next run sends the removals again"
    )
    _judged_observer_import(
        run,
        links_module.REMOVALS,
        record,
        (link_rows(links_module.before_carry_over(removed, renames), DELETED), links.named(removed), REMOVED),
        then=stop,
        failed=links_module.REMOVALS_FAILED,
    )
    kept = links.kept
    _keep_links(run, kept)
    return kept


def _send_links(
    run: _Run, record: BuildRecord, final: SisImport, links: links_module.LinkPlan | None
) -> None:
    """After the main import was applied: every link Clever has tonight, ``active``, in a plain import of
    its own. From the moment it is posted Canvas may hold each of them, so the run's state keeps them all
    first (a link Canvas may hold is never forgotten: its removal is sent once Clever drops it)."""
    if links is None or final.workflow_state not in SUCCESS_STATES:
        return
    _keep_links(run, links.tonight)
    if not len(links.tonight):
        return
    _judged_observer_import(
        run,
        links_module.LINKS,
        record,
        (link_rows(links.tonight, ACTIVE), links.named(links.added), links_module.ADDED_KIND),
        then="the next run sends every link again",
        failed=links_module.LINKS_FAILED,
    )
