"""One sync run: reconcile → pull → build → guard (holds) → rollover → (removals) → rewrite → upload → wait.

:func:`run_sync` wires the library stages together, one function per stage (see :func:`_stages`). It
takes its clients (Clever, Canvas) as arguments, the outside world (clock, sleep, progress callback,
secrets) as a :class:`SyncRuntime` and what the run was asked as :class:`RunOptions`; it never prints and
never exits. It always returns a :class:`RunResult` (the JSON line a scheduler reads and the exit code it
acts on), and records the run in ``RUNS_DIR/history.sqlite`` and ``RUNS_DIR/<run_id>/run.json``. Only a
config error found before anything starts is raised (:class:`~clever2sis.errors.UsageError`).

History follows the run as it goes: the stage it is in, its import's state at every change. A run first
reconciles what earlier runs left unsettled (:mod:`clever2sis.sync.reconcile`). An interruption
(:class:`~clever2sis.interrupts.Interrupted`, or :class:`KeyboardInterrupt`) at any stage ends the run
``interrupted`` with exit code 130 (SIGINT) or 143 (SIGTERM): half-written directories are removed on the
way out, a posted import's id stays in the build directory and in history, and the next run follows it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from clever2sis import interrupts
from clever2sis.atomic import atomic_write_bytes
from clever2sis.build_dir import BuildDir, BuildRecord, Frames, empty_frames
from clever2sis.canvas.signoff import needs_approval
from clever2sis.canvas.sis_import import (
    BATCH_ENROLLMENT_DROP_STATUSES,
    ImportOptions,
    SisImport,
    SisImports,
    WaitPolicy,
    check_outcome,
)
from clever2sis.canvas.upload import Posted, follow_import, post_build
from clever2sis.clever.client import CleverClient
from clever2sis.clever.frames import user_roles
from clever2sis.clever.pull import pull_district
from clever2sis.clever.snapshot import Snapshot
from clever2sis.config import BuildSettings, CanvasProfile, SyncSettings, UploadSettings
from clever2sis.errors import (
    ApprovalRequiredError,
    BuildDirError,
    BuildError,
    CanvasError,
    Clever2SisError,
    CleverError,
    ConfigError,
    GuardStoppedError,
    ImportAlreadyRunningError,
    ImportNotRecordedError,
    RunsDirError,
    SchoolsHeldError,
    SnapshotError,
    SyncBuildError,
    SyncError,
    SyncLockedError,
    SyncPullError,
    UsageError,
    WaitTimeoutError,
)
from clever2sis.progress import Progress, silent
from clever2sis.sis import files
from clever2sis.sis.build import build
from clever2sis.sync import guard as guards
from clever2sis.sync import state as state_module
from clever2sis.sync.changes import (
    Amended,
    append_rows,
    carry_ended_terms,
    carry_terms_and_accounts,
    change_counts,
    current_terms_only,
    ended_terms,
    removal_rows,
    without_rows,
)
from clever2sis.sync.history import SUMMARY_FIELDS, UPLOAD_STAGE, History, RunRow
from clever2sis.sync.holds import Held, apply_holds
from clever2sis.sync.reconcile import reconcile_runs
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
from clever2sis.sync.state import (
    AppliedState,
    Outcome,
    ZipSizes,
    applied_of,
    read_legacy_state,
    read_state,
    sent_present,
    state_after,
    state_dir,
    write_state,
    write_unchanged,
)
from clever2sis.sync.threshold import diff_skipped

EXIT_OK = 0
SECONDS_PER_DAY = 24 * 60 * 60
DIFFING_IDENTIFIER_TEMPLATE = "clever2sis:{district_id}:{profile}"

# Outcomes (history, run.json, the JSON line).
IMPORTED = "imported"
LOCKED = "locked"
GUARD_STOPPED = "guard_stopped"
SCHOOLS_HELD = "schools_held"  # Canvas applied the night; the guard held schools (their rows as before)
PULL_FAILED = "pull_failed"
BUILD_FAILED = "build_failed"
UPLOAD_FAILED = "upload_failed"
IMPORT_NOT_FOLLOWED = "import_not_followed"
FAILED = "failed"
INTERRUPTED = "interrupted"

# Stages (history's and the JSON line's "stage": where a run was when it ended, or was stopped).
RECONCILE = "reconcile"
PULL = "pull"
BUILD = "build"
COMPARE = "compare"
REWRITE = "rewrite"
UPLOAD = UPLOAD_STAGE
WAIT = "wait"


@dataclass(frozen=True)
class SyncJob:
    """Everything a run needs from the config: where to upload, how to build, and the sync's own settings."""

    profile: CanvasProfile
    sync: SyncSettings
    build: BuildSettings
    upload: UploadSettings


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


def import_options(job: SyncJob, *, district_id: str, remaster: bool) -> ImportOptions:
    """The import options of a run: ``[upload]``'s, with the safe defaults of the deletion mode filled in."""
    base = job.upload.options
    sync = job.sync
    mode = sync.deletion_mode
    batch = base.batch_mode or base.multi_term_batch_mode
    diffing = base.diffing_data_set_identifier is not None
    if mode != "batch" and batch:
        raise ConfigError(f'[upload] turns batch mode on; set [sync] deletion_mode = "batch" (now {mode!r})')
    if mode != "diffing" and diffing:
        raise ConfigError(f'[upload] turns diffing on; set [sync] deletion_mode = "diffing" (now {mode!r})')
    if remaster and mode != "diffing":
        raise UsageError(f"--remaster applies to diffing only; [sync] deletion_mode is {mode!r}")
    if mode == "diffing":
        identifier = (
            base.diffing_data_set_identifier
            or sync.diffing_data_set_identifier
            or DIFFING_IDENTIFIER_TEMPLATE.format(district_id=district_id, profile=job.profile.name)
        )
        options = dataclasses.replace(
            base,
            diffing_data_set_identifier=identifier,
            diffing_drop_status=base.diffing_drop_status or sync.enrollment_remove_status,
            diffing_user_remove_status=base.diffing_user_remove_status or sync.user_remove_status,
            change_threshold=base.change_threshold or sync.change_threshold,
            diffing_remaster_data_set=base.diffing_remaster_data_set or remaster,
        )
    elif mode == "batch":
        drop = base.batch_mode_enrollment_drop_status or sync.enrollment_remove_status
        if drop not in BATCH_ENROLLMENT_DROP_STATUSES:
            raise ConfigError(
                f"[sync] enrollment_remove_status = {drop!r} does not exist in batch mode; use one of "
                f"{', '.join(BATCH_ENROLLMENT_DROP_STATUSES)}"
            )
        options = dataclasses.replace(
            base,
            batch_mode=True,
            multi_term_batch_mode=base.batch_mode_term_id is None,
            batch_mode_enrollment_drop_status=drop,
            change_threshold=base.change_threshold or sync.change_threshold,
        )
    else:
        options = base
    options.validate()
    return options


def check_job(job: SyncJob, *, remaster: bool = False) -> None:
    """Refuse, before anything starts, a job that could never upload (bad options, a sign-off gate)."""
    import_options(job, district_id="district", remaster=remaster)
    if needs_approval(job.profile.name, job.profile.require_approval):
        raise ApprovalRequiredError(
            f"profile {job.profile.name!r} needs a person's sign-off for every upload, and sync uploads "
            f"unattended; to let the sync's guard stand in for it, set require_approval = false in "
            f"[profiles.{job.profile.name}]"
        )


def remaster_reason(
    history: History, job: SyncJob, now: dt.datetime, *, asked: bool, state: AppliedState | None = None
) -> str | None:
    """Diffing: why tonight re-sends everything (None: it need not).

    When asked; when Canvas applied the last night without deletes (``state``), so that what it did not
    remove is sent as removal rows; on a first run; and when the last remaster is old enough.
    """
    if job.sync.deletion_mode != "diffing":
        return None
    if asked:
        return "asked for (--remaster)"
    if state is not None and state.needs_remaster:
        return f"Canvas applied run {state.run_id} without deletes (diffing_threshold_exceeded)"
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
    ``wait_policy`` (None: wait up to ``[upload] wait_timeout_s``).
    """

    runs_dir: Path | None = None
    remaster: bool = False
    allow_large_change: bool = False
    release_schools: tuple[str, ...] = ()
    wait_policy: WaitPolicy | None = None


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
            return _locked_run(job, clever, canvas, history, runs_dir, base_facts, options, runtime)


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
        message = f"sis_import {run.facts.get('sis_import_id')} ended {outcome}"
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
    if isinstance(error, GuardStoppedError):
        return GUARD_STOPPED
    if isinstance(error, SchoolsHeldError):
        return SCHOOLS_HELD
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
    run.record(
        finished=stamp(run.runtime.clock()),
        outcome=outcome,
        exit_code=exit_code,
        message=message,
        import_state=run.facts.get("import_state"),
    )
    summary = {key: run.facts.get(key) for key in SUMMARY_FIELDS}
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
    run.enter(RECONCILE)
    _reconcile(run)
    run.enter(PULL)
    district_id = _pull(run)
    run.enter(BUILD)
    baseline = run.history.last_baseline(run.job.profile.name)
    state = _applied_state(run, baseline)
    held = state.present if state is not None else None
    record, built = _build(run, previous=held)
    run.enter(COMPARE)
    verdict, kept = _guard(run, state, built)
    amended = dataclasses.replace(_carry(run, held, _rollover(run, held, kept.frames)), held=kept.rows)
    _count_changes(run, held, amended)
    _stop_if_stopped(run, state, verdict)
    run.enter(REWRITE)
    plan = _plan(run, district_id, state)
    sent = _removals(run, held, amended, plan)
    rewritten = _rewrite(run, record, sent, plan, baseline=baseline, verdict=verdict)
    skipped = _diff_skipped(run, plan, state, rewritten, sent)
    if skipped is not None:
        run.log(f"Canvas would not diff tonight: {skipped}; sending a remaster with the removals as rows")
        plan = _Plan(import_options(run.job, district_id=district_id, remaster=True), f"threshold: {skipped}")
        sent = _removals(run, held, amended, plan)
        rewritten = _rewrite(run, record, sent, plan, baseline=baseline, verdict=verdict)
    run.enter(UPLOAD)
    posted = _upload(run, plan.options, verdict)
    run.enter(WAIT)
    _follow(run, posted, plan, state, sent, rewritten)
    if verdict.held:
        raise SchoolsHeldError(verdict.held_message())


def _reconcile(run: _Run) -> None:
    """Settle what earlier runs of the profile left (sync/reconcile.py); stop while one may still post."""
    done = reconcile_runs(
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


def _build(run: _Run, *, previous: Frames | None) -> tuple[BuildRecord, Frames]:
    """Build the snapshot into the run's build directory; return its record and every file's rows.

    ``previous`` (what Canvas holds: the applied state's present rows) lets a term Clever re-created keep
    its term_id.
    """
    try:
        build(run.snapshot_dir, run.build_dir.path, run.job.build, progress=run.log, previous=previous)
        built = run.build_dir.verified_zip(error=SyncBuildError)
        return built.record, built.read_frames()
    except (BuildError, SnapshotError, UsageError) as error:
        raise SyncBuildError(f"build failed: {error}") from error


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

    Not in batch mode: multi-term batch mode takes every term of terms.csv as in scope and would delete
    what a carried term holds.
    """
    if held is None or run.job.sync.deletion_mode == "batch":
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
    never stand in for tonight's.
    """
    old: Frames | None = None
    new = built
    roles_before = roles_after = None
    if state is not None:
        held = without_rows(state.present, state.carried)
        ended = ended_terms(held[files.TERMS], built[files.TERMS], now=run.started)
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
    return verdict, apply_holds(state.present, built, guards.held_accounts(verdict))


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
    """How many users Canvas holds and tonight's users.csv has of each Clever role, from the roles in the
    snapshots of the state's run and of tonight (users.csv does not say a user's roles)."""
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


def _plan(run: _Run, district_id: str, state: AppliedState | None) -> _Plan:
    """Tonight's import options, and whether (and why) it is a remaster."""
    reason = remaster_reason(run.history, run.job, run.started, asked=run.options.remaster, state=state)
    return _Plan(import_options(run.job, district_id=district_id, remaster=reason is not None), reason)


def _removals(run: _Run, held: Frames | None, amended: Amended, plan: _Plan) -> Amended:
    """Explicit mode, and a diffing remaster: send what Canvas holds and tonight lacks as removal rows.

    A remaster applies the files without diffing, so what vanished since the last run would never be
    removed: on those nights the removals are sent as rows, as explicit mode always does.
    """
    if held is None or not (run.job.sync.deletion_mode == "explicit" or plan.remaster):
        return amended
    options = plan.options
    removed = removal_rows(
        held,
        amended.frames,
        enrollment_status=options.diffing_drop_status or run.job.sync.enrollment_remove_status,
        user_status=options.diffing_user_remove_status or run.job.sync.user_remove_status,
    )
    frames = {name: append_rows(amended.frames[name], removed[name]) for name in amended.frames}
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
) -> BuildRecord:
    """Write the sync's changes into the build (CSVs, zip, build.json with a "sync" section, sync/)."""
    sync_facts = {
        "run_id": run.facts["run_id"],
        "deletion_mode": run.job.sync.deletion_mode,
        "baseline_run_id": baseline["run_id"] if baseline else None,
        "guard": verdict.as_dict(),
        "remaster": plan.remaster,
        "remaster_reason": plan.remaster_reason,
    }
    try:
        rewritten = run.build_dir.rewrite(
            record, amended.frames, sync_rows=amended.sync_rows(), sync={**sync_facts, **amended.counts()}
        )
    except OSError as error:
        raise SyncBuildError(f"cannot rewrite the build in {run.build_dir.path}: {error}") from error
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
    """Diffing, not a remaster: why Canvas would skip the diff of tonight's zip (None: it would diff).

    Canvas would then apply the whole files without deletes, and tonight's removals would wait a night.
    """
    if plan.remaster or state is None or state.canvas_baseline is None:
        return None
    if plan.options.diffing_data_set_identifier is None:
        return None
    baseline = state.canvas_baseline
    sizes = ZipSizes({name: entry.bytes for name, entry in (rewritten.files or {}).items()})
    baseline_frames = None
    if plan.options.diff_row_count_threshold is not None:
        layout = BuildDir(run.run_dir.parent / baseline.run_id / BUILD_DIR_NAME)
        try:
            baseline_frames = layout.verified_zip(error=RunsDirError).read_frames()
        except RunsDirError as error:
            run.log(f"warning: Canvas's diff baseline, run {baseline.run_id}, cannot be read: {error}")
    return diff_skipped(baseline, sizes, plan.options, baseline_frames=baseline_frames, tonight=sent.frames)


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
        )
    except ImportNotRecordedError as error:
        run.record(sis_import_id=error.import_id, import_state=error.workflow_state)
        raise
    run.record(sis_import_id=posted.sis_import.id, import_state=posted.sis_import.workflow_state)
    run.log(f"sis_import {posted.sis_import.id} posted; following it")
    return posted


def _follow(
    run: _Run, posted: Posted, plan: _Plan, state: AppliedState | None, sent: Amended, rewritten: BuildRecord
) -> None:
    """Wait for the import to end, save its results, keep the applied state, and raise unless the import
    ended as the config accepts."""

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
    _keep_state(run, plan, state, sent, rewritten, applied)
    if applied == state_module.WHOLE_NO_DELETES:
        run.log(
            "Canvas applied the whole files without deletes (diffing_threshold_exceeded): what vanished "
            "tonight is still active in Canvas; the next run is a remaster that sends it as removal rows"
        )
    check_outcome(final, messages_ok=run.job.upload.messages_ok)


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
            after = state_after(state, sent, outcome)
            # Only a night applied without deletes holds other rows than the build's own present rows.
            build_present = (
                sent_present(sent.frames) if applied == state_module.WHOLE_NO_DELETES else after.present
            )
            write_state(run.run_dir, after, build_present=build_present)
    except OSError as error:
        raise RunsDirError(
            f"cannot keep the applied state of run {run_id} in {state_dir(run.run_dir)}: {error}"
        ) from error
    run.keep = {after.canvas_baseline.run_id} if after and after.canvas_baseline else set()
