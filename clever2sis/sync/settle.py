"""Reconciling run history with Canvas: a run that died leaves neither wrong history nor a lost import.

A sync killed with ``kill -9`` (or by a power cut) leaves its history row ``running`` for ever; a run that
was interrupted, or stopped waiting at ``wait_timeout_s``, leaves its import in the state it last saw
(``created``, ``importing``) after Canvas finished it. :func:`settle_runs` settles each such row of a
profile (:meth:`~clever2sis.sync.history.History.unsettled`). It runs at the start of every sync, which
holds the runs directory's lock (so no other run is alive), and in ``clever2sis history`` when it can take
the lock:

* a ``running`` row is a dead run. Its half-written directories (``.snapshot.partial-*``,
  ``.build.partial-*``) are removed; what its upload left unconfirmed is settled
  (:func:`clever2sis.canvas.intent.settle_intents`: an import it posted but never heard back about is
  adopted); it becomes ``killed``, with the stage it was in;
* a row with an import is brought up to date with Canvas (``GET /sis_imports/:id``): the import's final
  state, or the state it is in while it still runs. A run whose import Canvas applied is then the
  baseline of the next run, as any applied run is.

An upload of a dead run that may still be reaching Canvas leaves its row ``running`` and is reported in
:attr:`Reconciliation.blocking`: the new run must not post until it is known. A row Canvas cannot be asked
about (no access, Canvas down) is left as it is and reported in :attr:`Reconciliation.problems`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from clever2sis.atomic import atomic_write_bytes, recover_directory
from clever2sis.build_dir import BuildDir
from clever2sis.canvas.intent import settle_intents
from clever2sis.canvas.sis_import import TERMINAL_STATES, SisImports
from clever2sis.errors import CanvasError, CanvasNotFoundError
from clever2sis.progress import Progress, silent
from clever2sis.sync.history import NOT_IN_CANVAS, RUNNING, SUMMARY_FIELDS, History, RunRow
from clever2sis.sync.runs import BUILD_DIR_NAME, RUN_RECORD_NAME, SNAPSHOT_DIR_NAME, stamp

KILLED = "killed"
RECONCILED_MARK = "; reconciled "


@dataclass(frozen=True)
class Reconciled:
    """A row brought up to date: its outcome and import as they now stand."""

    run_id: str
    outcome: str
    sis_import_id: int | None
    import_state: str | None
    message: str


@dataclass
class Reconciliation:
    """What :func:`settle_runs` did, and what it could not do."""

    runs: list[Reconciled] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def settle_runs(
    history: History,
    api: SisImports | None,
    *,
    profile: str,
    now: dt.datetime,
    besides: str | None = None,
    progress: Progress = silent,
) -> Reconciliation:
    """Settle the unsettled rows of ``profile`` (never ``besides``, the run doing it) with ``api``'s Canvas.

    Without ``api`` only what needs no Canvas is settled: a dead run that posted nothing.
    """
    result = Reconciliation()
    for row in history.unsettled(profile, besides=besides):
        try:
            done = _reconcile(row, history, api, now=now, progress=progress, result=result)
        except CanvasError as error:
            result.problems.append(f"run {row['run_id']} was not reconciled: {error}")
            continue
        if done is not None:
            result.runs.append(done)
            progress(f"run {done.run_id} reconciled: {done.outcome}; {_import_words(done)}")
    return result


def _import_words(done: Reconciled) -> str:
    if done.sis_import_id is None:
        return "no import"
    return f"sis_import {done.sis_import_id} {done.import_state}"


def _reconcile(
    row: RunRow,
    history: History,
    api: SisImports | None,
    *,
    now: dt.datetime,
    progress: Progress,
    result: Reconciliation,
) -> Reconciled | None:
    """Bring one row up to date (see the module docstring); None when it is left as it is."""
    run_id = str(row["run_id"])
    died = row["outcome"] == RUNNING
    run_dir = Path(str(row["run_dir"])) if row["run_dir"] else None
    import_id: int | None = row["sis_import_id"]
    notes: list[str] = []
    if died and run_dir is not None:
        removed = remove_partials(run_dir)
        if removed:
            notes.append(f"cleared what it left half-written: {', '.join(removed)}")
    if import_id is None:
        build = BuildDir(run_dir / BUILD_DIR_NAME) if run_dir is not None else None
        if build is not None and build.pending_intents(str(row["profile"])):
            if api is None:
                result.problems.append(f"run {run_id} left an upload to confirm; it needs Canvas to settle")
                return None
            settled = settle_intents(api, build.path, str(row["profile"]), now=now, progress=progress)
            if settled.waiting:
                result.blocking.extend(f"run {run_id}: {reason}" for reason in settled.waiting)
                return None
            for adopted in settled.adopted:
                import_id = adopted.sis_import.id
                notes.append(f"its upload's answer was lost; sis_import {import_id} was {adopted.how}")
            if settled.not_found:
                notes.append("its upload never reached Canvas")
        recorded = build.recorded_imports(str(row["profile"])) if build is not None else []
        if import_id is None and recorded:
            import_id = recorded[-1]  # stopped after Canvas answered, before history heard of it
            notes.append(f"its build directory recorded sis_import {import_id}")
        if import_id is None and not died:
            return None  # it ended during the upload and left nothing to confirm
    state: str | None = row["import_state"]
    if import_id is not None:
        if api is None:
            result.problems.append(f"run {run_id}: sis_import {import_id} was not checked (no Canvas access)")
            return None
        try:
            state = api.get(import_id).workflow_state
        except CanvasNotFoundError:
            state = NOT_IN_CANVAS
    checked = f"at {stamp(now)}: " + (
        "nothing was posted"
        if import_id is None
        else f"sis_import {import_id} {'ended' if state in TERMINAL_STATES else 'is'} {state}"
    )
    if died:
        outcome = KILLED
        stage = row["stage"] or "its start"
        head = "; ".join([f"killed during {stage} (the process ended without recording it)", *notes])
    else:
        outcome = str(row["outcome"])
        head = "; ".join([str(row["message"] or "").split(RECONCILED_MARK)[0], *notes])
    facts: dict[str, Any] = {
        "run_id": run_id,
        "outcome": outcome,
        "message": f"{head}{RECONCILED_MARK}{checked}",
        "sis_import_id": import_id,
        "import_state": state,
    }
    history.record(facts)
    if run_dir is not None and run_dir.is_dir():
        _update_run_record(run_dir, history, run_id, facts)
    return Reconciled(run_id, outcome, import_id, state, str(facts["message"]))


def remove_partials(run_dir: Path) -> list[str]:
    """Clear what a run cut short left half-written beside its snapshot and build: the names cleared.

    :func:`clever2sis.atomic.recover_directory` does it (an abandoned partial is removed; a directory a
    swap had renamed aside is put back when the new one never arrived, and removed otherwise).
    """
    targets = [run_dir / SNAPSHOT_DIR_NAME, run_dir / BUILD_DIR_NAME]
    before = sorted(
        path.name for target in targets for path in run_dir.glob(f".{target.name}.*-*") if path.is_dir()
    )
    for target in targets:
        recover_directory(target.resolve())
    return [name for name in before if not (run_dir / name).exists()]


def _update_run_record(run_dir: Path, history: History, run_id: str, facts: dict[str, Any]) -> None:
    """Bring run.json up to date (or write it, for a run that died before writing one)."""
    path = run_dir / RUN_RECORD_NAME
    try:
        record = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        row = next((r for r in history.runs() if r["run_id"] == run_id), None)
        record = {key: row.values.get(key) for key in SUMMARY_FIELDS} if row is not None else {}
    if not isinstance(record, dict):
        record = {}
    record.update(facts)
    atomic_write_bytes(path, orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n")
