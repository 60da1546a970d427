"""The applied state: what Canvas holds after a night, as far as the sync knows, and how it is kept.

Canvas is the sum of every import it applied, and an import is not always applied as sent: on a night when
Canvas skips the diff (``diffing_threshold_exceeded``) it applies the whole files without deleting
anything, and the rows that vanished stay. So each run ends by computing, from the state before it and what
it sent, the state after it (:func:`state_after`, a pure function), and by keeping that beside its build
(:func:`write_state`); the next run starts from the state of the newest run whose import Canvas applied
(:func:`read_state`).

An :class:`AppliedState` holds:

* ``present``: per Canvas file, the rows Canvas holds (not removed): tonight's rows, unless Canvas applied
  the files without deletes (the previous rows and tonight's together) or applied nothing (unchanged).
  ``change_sis_id.csv`` renames ids; Canvas holds no rows of it.
* ``carried``: the rows of ``present`` that the sync sent only because Canvas holds them (ended terms,
  terms and accounts Clever no longer lists): they never count as Clever's.
* ``removed_users``: every user the sync removed (Canvas holds them suspended or deleted), with the keys a
  person may be recognised by later (:data:`REMOVED_USER_COLUMNS`) and the night of the removal.
* ``identities``: those keys for every user ``present`` holds (identities.csv's columns), or None for a
  state kept before builds wrote identities.csv; :mod:`clever2sis.sync.identities` matches a user Clever
  re-created against them and against ``removed_users``.
* ``observers``: the observer links Canvas holds (:data:`OBSERVER_COLUMNS`).
* ``canvas_baseline``: the run whose zip Canvas's diffing compares with, and that zip's uncompressed size
  per file. Canvas diffs against its newest applied import that was diffed or a remaster
  (``SisBatch#generate_diff``, ``app/models/sis_batch.rb``), so a night applied without a diff leaves it
  where it was.
* ``admin_removals``: the admins.csv rows the run's zip sent as ``deleted``, which a diffed night sends
  again unchanged (:func:`clever2sis.sync.changes.carry_admin_removals`). They are read from the run's
  zip when ``present`` is the build's own (a night applied without deletes is followed by a remaster,
  which needs none).

A run's state lives in ``RUN/state/``: ``state.json`` (:data:`STATE_FORMAT`), ``removed_users.csv``,
``observers.csv`` and, only when ``present`` is not simply the present rows of the run's own build (most
nights it is), ``present/<file>.csv``; likewise ``identities.csv`` only when they are not the build's own
``BUILD_DIR/identities.csv`` (``"identities"`` in state.json: ``build``, ``files``, or absent: unknown).
A run whose import Canvas did not apply records only that nothing changed since the state it started from.

When the sync manages the observer links (``[observers] enabled``; see clever2sis/sync/observers.py) they
change in imports of their own, before and after the main one, so ``observers.csv`` is also written on its
own (:func:`write_observers`) each time the links Canvas may hold change, even on a night whose main import
was not applied; the next run reads the newest such file (:func:`read_observers`).
"""

from __future__ import annotations

import dataclasses
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from clever2sis.atomic import atomic_directory, atomic_write_bytes
from clever2sis.build_dir import CARRIED, REMOVED, BuildDir, Frames, empty_frames
from clever2sis.canvas.sis_import import SUCCESS_STATES, ImportOptions, SisImport
from clever2sis.errors import RunsDirError
from clever2sis.sis import files
from clever2sis.sis.builders.identities import IDENTITY_COLUMNS, current_identities
from clever2sis.sync.changes import Amended, among, append_rows, present, without
from clever2sis.sync.identities import identities_of_users, renamed_column, renamed_users
from clever2sis.sync.runs import BUILD_DIR_NAME

# What Canvas applied on a night (history's ``applied`` column).
DIFF = "diff"  # the diff against the Canvas baseline: vanished rows removed by Canvas
REMASTER = "remaster"  # the whole files, no deletes (the sync sends its removals as rows)
WHOLE_NO_DELETES = "whole_no_deletes"  # Canvas skipped the diff (threshold): whole files, no deletes
EXPLICIT = "explicit"  # a plain import: each row as sent
BATCH = "batch"  # batch mode: what the zip's terms leave out is removed
NONE = "none"  # nothing (the import failed or was aborted)
APPLIED_MODES = (DIFF, REMASTER, WHOLE_NO_DELETES, EXPLICIT, BATCH, NONE)
# Canvas's warnings when it skips the diff (``SisBatch#generate_diff``).
DIFF_SKIPPED_WARNINGS = (
    "Diffing not performed because file size difference exceeded threshold",
    "Diffing not performed because difference row count exceeded threshold",
)

STATE_DIR_NAME = "state"
STATE_RECORD_NAME = "state.json"
PRESENT_DIR_NAME = "present"
REMOVED_USERS_NAME = "removed_users.csv"
IDENTITIES_FILE_NAME = "identities.csv"
OBSERVERS_NAME = "observers.csv"
STATE_FORMAT = 1
SAME_AS_BUILD = "build"  # state.json's "present": the present rows of the run's own build
OWN_FILES = "files"  # state.json's "present": present/<file>.csv

USER_REMOVAL_STATUSES = frozenset({"suspended", "deleted"})
# The removed-user ledger: the user's identity keys (identities.csv's, the login lower-cased as Canvas
# compares logins; from users.csv alone for a user whose state has no identities), status and night.
REMOVED_USER_COLUMNS = (
    "user_id",
    "login_id",
    "status",
    "removed_on",
    "removed_run_id",
    "clever_id",
    "sis_id",
    "student_number",
    "teacher_number",
    "first_name",
    "last_name",
    "roles",
)
OBSERVER_COLUMNS = ("observer_id", "student_id")


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series([], dtype="str") for column in columns})


@dataclass(frozen=True)
class ZipSizes:
    """The uncompressed size in bytes of each file in a zip (what Canvas's change_threshold compares)."""

    files: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.files.values())

    @classmethod
    def of_zip(cls, path: Path) -> ZipSizes:
        with zipfile.ZipFile(path) as archive:
            return cls({info.filename: info.file_size for info in archive.infolist()})

    def as_dict(self) -> dict[str, Any]:
        return {"files": dict(sorted(self.files.items())), "total_bytes": self.total}

    @classmethod
    def from_dict(cls, value: Any) -> ZipSizes:
        sizes = value.get("files") if isinstance(value, dict) else None
        if not isinstance(sizes, dict) or not all(isinstance(n, int) for n in sizes.values()):
            raise ValueError("canvas_baseline.files is not a map of file sizes")
        return cls({str(name): int(size) for name, size in sizes.items()})


@dataclass(frozen=True)
class CanvasBaseline:
    """The run whose zip Canvas diffs the next import against, and that zip's sizes."""

    run_id: str
    sizes: ZipSizes

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, **self.sizes.as_dict()}

    @classmethod
    def from_dict(cls, value: Any) -> CanvasBaseline | None:
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("run_id"), str):
            raise ValueError("canvas_baseline has no run_id")
        return cls(value["run_id"], ZipSizes.from_dict(value))


@dataclass(frozen=True)
class AppliedState:
    """What Canvas holds after run ``run_id`` (see the module docstring); ``applied``: what that night did."""

    run_id: str | None
    applied: str
    present: Frames
    carried: Frames = field(default_factory=empty_frames)
    removed_users: pd.DataFrame = field(default_factory=lambda: _empty(REMOVED_USER_COLUMNS))
    observers: pd.DataFrame = field(default_factory=lambda: _empty(OBSERVER_COLUMNS))
    canvas_baseline: CanvasBaseline | None = None
    admin_removals: pd.DataFrame = field(default_factory=lambda: _empty(files.COLUMNS[files.ADMINS]))
    identities: pd.DataFrame | None = None

    @classmethod
    def empty(cls) -> AppliedState:
        """Before the first night: Canvas holds nothing the sync sent."""
        return cls(run_id=None, applied=NONE, present=empty_frames())

    @property
    def needs_remaster(self) -> bool:
        """Canvas applied the last night without deletes: what vanished must be sent as removal rows."""
        return self.applied == WHOLE_NO_DELETES

    def held_identities(self) -> pd.DataFrame:
        """The identities of the users ``present`` holds (from users.csv alone where none are kept)."""
        users = self.present[files.USERS]
        if self.identities is None:
            return identities_of_users(users)
        return self.identities.loc[among(self.identities["user_id"], users["user_id"])].reset_index(drop=True)

    def renamed(self, renames: pd.Series) -> AppliedState:
        """This state with the user ids of ``renames`` (new by old: users carried over tonight) replaced,
        in every row, the ledger, the identities and the observer links (the old id is not removed)."""
        if renames.empty:
            return self
        observers = self.observers.copy()
        for column in OBSERVER_COLUMNS:
            observers[column] = renamed_column(observers[column], renames)
        ledger = self.removed_users.copy()
        ledger["user_id"] = renamed_column(ledger["user_id"], renames)
        identities = None
        if self.identities is not None:
            identities = self.identities.copy()
            identities["user_id"] = renamed_column(identities["user_id"], renames)
        admin_removals = self.admin_removals.copy()
        admin_removals["user_id"] = renamed_column(admin_removals["user_id"], renames)
        return dataclasses.replace(
            self,
            present=renamed_users(self.present, renames),
            carried=renamed_users(self.carried, renames),
            removed_users=ledger,
            observers=observers,
            identities=identities,
            admin_removals=admin_removals,
        )


@dataclass(frozen=True)
class Outcome:
    """How a night ended, as :func:`state_after` needs it.

    ``applied`` is one of :data:`APPLIED_MODES`; ``sizes`` those of the zip sent; ``user_remove_status``
    what Canvas's diff makes of a user who vanished (``diffing_user_remove_status``).
    """

    run_id: str
    night: str
    applied: str
    sizes: ZipSizes
    user_remove_status: str = "suspended"


def applied_of(final: SisImport, options: ImportOptions) -> str:
    """What Canvas applied, from the import as it ended and the options it was sent with."""
    if final.workflow_state not in SUCCESS_STATES:
        return NONE
    if options.batch_mode:
        return BATCH
    if options.diffing_data_set_identifier is None:
        return EXPLICIT
    if options.diffing_remaster_data_set:
        return REMASTER
    skipped = final.raw.get("diffing_threshold_exceeded")
    if skipped is None:  # a Canvas that does not say: its warning does
        skipped = any(message in DIFF_SKIPPED_WARNINGS for _, message in final.processing_warnings)
    return WHOLE_NO_DELETES if skipped else DIFF


def state_after(
    previous: AppliedState | None,
    tonight: Amended,
    outcome: Outcome,
    *,
    identities: pd.DataFrame | None = None,
) -> AppliedState:
    """The state after a night that sent ``tonight`` (every row of the zip, and the rows it carried).

    Nothing applied: ``previous``. Files applied without deletes: ``previous``'s present rows and tonight's
    together (a row sent tonight, with any status, in tonight's version). Otherwise tonight's present rows.
    ``identities`` are those of tonight's build (None: unknown); the state's follow the users it holds.
    ``previous`` is taken with tonight's carry-overs already made (:meth:`AppliedState.renamed`).
    """
    before = previous if previous is not None else AppliedState.empty()
    if outcome.applied == NONE:
        return before
    sent = sent_present(tonight.frames)
    if outcome.applied == WHOLE_NO_DELETES:
        held = {
            name: append_rows(without(before.present[name], tonight.frames[name], name), sent[name])
            for name in files.FILE_ORDER
        }
    else:
        held = sent
    baseline = (
        CanvasBaseline(outcome.run_id, outcome.sizes)
        if outcome.applied in (DIFF, REMASTER)
        else before.canvas_baseline
    )
    return AppliedState(
        run_id=outcome.run_id,
        applied=outcome.applied,
        present=held,
        carried={name: tonight.carried[name].reset_index(drop=True) for name in files.FILE_ORDER},
        removed_users=_ledger(before, tonight.frames, held, outcome),
        observers=before.observers,
        canvas_baseline=baseline,
        admin_removals=removed_admins(tonight.frames),
        identities=_identities_after(before, identities, held),
    )


def removed_admins(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The admins.csv rows of a zip's ``frames`` sent as ``deleted``."""
    admins = frames[files.ADMINS]
    return admins.loc[(admins["status"] == "deleted").to_numpy(dtype=bool)].reset_index(drop=True)


def _identities_after(
    before: AppliedState, tonight: pd.DataFrame | None, held: Mapping[str, pd.DataFrame]
) -> pd.DataFrame | None:
    """The identities of the users Canvas holds after tonight: tonight's build's, and ``before``'s for the
    users Canvas holds that tonight's build lacks (sent as Canvas had them: held with a held school, carried
    for a night; or left in place by a night applied without deletes). So a staff member held with their
    school keeps their account_ids night after night (:mod:`clever2sis.sync.holds`)."""
    if tonight is None:
        return tonight
    users = held[files.USERS]["user_id"]
    lacking = users.loc[~among(users, tonight["user_id"])]
    if lacking.empty:
        return tonight
    kept = before.held_identities()
    kept = kept.loc[among(kept["user_id"], lacking)]
    return append_rows(tonight, kept) if len(kept) else tonight


def sent_present(frames: Mapping[str, pd.DataFrame]) -> Frames:
    """The rows a zip leaves Canvas holding: no removal status, and nothing of change_sis_id.csv."""
    out = present(frames)
    out[files.CHANGE_SIS_ID] = empty_frames()[files.CHANGE_SIS_ID]
    return out


def _ledger(
    before: AppliedState, sent: Mapping[str, pd.DataFrame], held: Mapping[str, pd.DataFrame], outcome: Outcome
) -> pd.DataFrame:
    """``before``'s removed users, less those Canvas holds again, plus tonight's removals.

    Tonight's removals are the users sent with a removal status and, on a diffed night, those Canvas's
    diff removed (held before, not in tonight's users.csv). A user already listed keeps the first night.
    """
    users = sent[files.USERS]
    removed = [users.loc[among(users["status"], USER_REMOVAL_STATUSES)]]
    if outcome.applied == DIFF and len(users):
        removed.append(
            without(before.present[files.USERS], users, files.USERS).assign(status=outcome.user_remove_status)
        )
    rows = [frame for frame in removed if len(frame)]
    ledger = before.removed_users
    if rows:
        ledger = pd.concat(
            [ledger, *(_removed_user_rows(frame, outcome, before.held_identities()) for frame in rows)],
            ignore_index=True,
        )
    back = among(ledger["user_id"], held[files.USERS]["user_id"])
    return ledger.loc[~back].drop_duplicates("user_id", keep="first").reset_index(drop=True)


def _removed_user_rows(users: pd.DataFrame, outcome: Outcome, known: pd.DataFrame) -> pd.DataFrame:
    """Ledger rows of users.csv rows: their identity keys from ``known`` (the identities of the users held
    before), else what users.csv tells (the Clever id: integration_id where users.csv has one)."""
    told = identities_of_users(users.reset_index(drop=True))
    keys = known.drop_duplicates("user_id").set_index("user_id")
    out = pd.DataFrame({name: pd.Series([""] * len(users), dtype="str") for name in REMOVED_USER_COLUMNS})
    out["user_id"] = told["user_id"]
    found = among(told["user_id"], keys.index.to_series())
    for name in REMOVED_USER_COLUMNS:
        if name not in told.columns:
            continue
        values = told[name].to_numpy(dtype=object).copy()
        if found.any() and name in keys.columns:
            values[found] = keys[name].reindex(told["user_id"][found]).fillna("").to_numpy()
        out[name] = pd.Series(values, dtype="str")
    out["login_id"] = out["login_id"].str.lower()
    out["status"] = users["status"].astype("str").to_numpy() if "status" in users else ""
    out["removed_on"] = outcome.night
    out["removed_run_id"] = outcome.run_id
    return out


# --- keeping it ------------------------------------------------------------------------------------------


def state_dir(run_dir: Path) -> Path:
    return run_dir / STATE_DIR_NAME


def write_state(
    run_dir: Path,
    state: AppliedState,
    *,
    build_present: Mapping[str, pd.DataFrame],
    build_identities: pd.DataFrame | None = None,
) -> None:
    """Keep ``state`` in ``RUN/state/`` (written beside it, renamed into place when whole).

    ``build_present`` is :func:`sent_present` of the run's build, ``build_identities`` its identities.csv:
    when ``present`` (the identities) are the same rows, only that is recorded.
    """
    from clever2sis.sis.writer import write_csv

    same = all(_same_rows(state.present[name], build_present[name]) for name in files.FILE_ORDER)
    identities = state.identities
    same_identities = (
        identities is not None and build_identities is not None and _same_rows(identities, build_identities)
    )
    record = {
        "format": STATE_FORMAT,
        "run_id": state.run_id,
        "applied": state.applied,
        "present": SAME_AS_BUILD if same else OWN_FILES,
        "canvas_baseline": None if state.canvas_baseline is None else state.canvas_baseline.as_dict(),
        "removed_users": len(state.removed_users),
        "observers": len(state.observers),
    }
    if identities is not None:
        record["identities"] = SAME_AS_BUILD if same_identities else OWN_FILES
    with atomic_directory(state_dir(run_dir), replace=True) as tmp:
        write_csv(_sorted(state.removed_users, ["user_id"]), tmp / REMOVED_USERS_NAME)
        write_csv(_sorted(state.observers, list(OBSERVER_COLUMNS)), tmp / OBSERVERS_NAME)
        if identities is not None and not same_identities:
            write_csv(_sorted(identities, ["user_id"]), tmp / IDENTITIES_FILE_NAME)
        if not same:
            (tmp / PRESENT_DIR_NAME).mkdir()
            for name in files.FILE_ORDER:
                frame = state.present[name]
                write_csv(_sorted(frame, list(files.SORT_KEYS[name])), tmp / PRESENT_DIR_NAME / name)
        atomic_write_bytes(tmp / STATE_RECORD_NAME, orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n")


def write_observers(run_dir: Path, observers: pd.DataFrame) -> None:
    """Keep ``observers`` (the links Canvas may hold now) as the run's ``state/observers.csv``, atomically,
    and their count in ``state.json`` when the run has written one."""
    from clever2sis.sis.writer import csv_chunks

    frame = _sorted(observers.loc[:, list(OBSERVER_COLUMNS)], list(OBSERVER_COLUMNS))
    atomic_write_bytes(observers_file(run_dir), b"".join(bytes(chunk) for chunk in csv_chunks(frame)))
    record_file = state_dir(run_dir) / STATE_RECORD_NAME
    try:
        record = orjson.loads(record_file.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return
    if isinstance(record, dict) and "observers" in record:
        record["observers"] = len(frame)
        atomic_write_bytes(record_file, orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n")


def observers_file(run_dir: Path) -> Path:
    return state_dir(run_dir) / OBSERVERS_NAME


def read_observers(run_dir: Path) -> pd.DataFrame:
    """The run's ``state/observers.csv``; :class:`RunsDirError` naming the file when it cannot be read."""
    path = observers_file(run_dir)
    try:
        return _read_csv(path, OBSERVER_COLUMNS)
    except FileNotFoundError:
        raise RunsDirError(f"{path}: missing") from None
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise RunsDirError(f"{path}: not readable ({error})") from None


def write_unchanged(run_dir: Path, run_id: str, previous: AppliedState | None) -> None:
    """Record that run ``run_id`` changed nothing in Canvas: its state is ``previous``'s run's."""
    record = {
        "format": STATE_FORMAT,
        "run_id": run_id,
        "applied": NONE,
        "unchanged_since": None if previous is None else previous.run_id,
    }
    atomic_write_bytes(
        state_dir(run_dir) / STATE_RECORD_NAME, orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n"
    )


def read_state(run_dir: Path, run_id: str) -> AppliedState:
    """The state run ``run_id`` kept in ``run_dir``; :class:`RunsDirError` naming the file when it cannot."""
    record_file = state_dir(run_dir) / STATE_RECORD_NAME
    try:
        record = orjson.loads(record_file.read_bytes())
    except FileNotFoundError:
        raise RunsDirError(f"{record_file}: missing") from None
    except (OSError, orjson.JSONDecodeError) as error:
        raise RunsDirError(f"{record_file}: not readable ({error})") from None
    try:
        return _state_from(record, run_dir, run_id)
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise RunsDirError(f"{record_file}: not a whole applied state ({error})") from None


def _state_from(record: Any, run_dir: Path, run_id: str, *, follow: bool = True) -> AppliedState:
    if not isinstance(record, dict) or record.get("format") != STATE_FORMAT:
        raise ValueError(f"format is not {STATE_FORMAT}")
    if record.get("run_id") != run_id:
        raise ValueError(f"it is the state of run {record.get('run_id')!r}, not {run_id!r}")
    applied = record.get("applied")
    if applied not in APPLIED_MODES:
        raise ValueError(f"applied is {applied!r}")
    if applied == NONE:
        since = record.get("unchanged_since")
        if since is None:
            return AppliedState.empty()
        if not follow:
            raise ValueError(f"unchanged_since names run {since!r}, which changed nothing either")
        earlier = run_dir.parent / str(since)
        return _state_from(
            orjson.loads((state_dir(earlier) / STATE_RECORD_NAME).read_bytes()),
            earlier,
            str(since),
            follow=False,
        )
    build = BuildDir(run_dir / BUILD_DIR_NAME)
    carried = build.read_sync_rows(CARRIED)
    admin_removals = _empty(files.COLUMNS[files.ADMINS])
    if record.get("present") == SAME_AS_BUILD:
        sent = build.verified_zip(error=RunsDirError).read_frames()
        held, admin_removals = sent_present(sent), removed_admins(sent)
    elif record.get("present") == OWN_FILES:
        held = {name: _read_csv(state_dir(run_dir) / PRESENT_DIR_NAME / name) for name in files.FILE_ORDER}
    else:
        raise ValueError(f"present is {record.get('present')!r}")
    removed_users = _read_csv(state_dir(run_dir) / REMOVED_USERS_NAME, REMOVED_USER_COLUMNS)
    observers = _read_csv(state_dir(run_dir) / OBSERVERS_NAME, OBSERVER_COLUMNS)
    identities = _read_identities(record.get("identities"), build, state_dir(run_dir))
    return AppliedState(
        run_id=run_id,
        applied=str(applied),
        present=held,
        carried=carried,
        removed_users=removed_users,
        observers=observers,
        canvas_baseline=CanvasBaseline.from_dict(record.get("canvas_baseline")),
        admin_removals=admin_removals,
        identities=identities,
    )


def _read_identities(kept: Any, build: BuildDir, directory: Path) -> pd.DataFrame | None:
    """The identities a state records (``kept``: state.json's "identities"); None when it records none.
    Identities kept by an earlier clever2sis, without ``account_ids``, are read with none for anyone."""
    if kept is None:
        return None
    if kept == OWN_FILES:
        path = directory / IDENTITIES_FILE_NAME
        return _current_identities(_read_csv(path), path.name)
    if kept != SAME_AS_BUILD:
        raise ValueError(f"identities is {kept!r}")
    identities = build.read_identities()
    if identities is None:
        raise ValueError(f"{build.identities_file} is missing")
    return _current_identities(identities, build.identities_file.name)


def _current_identities(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    current = current_identities(frame)
    if current is None:
        raise ValueError(f"{name} has the columns {', '.join(frame.columns)}")
    return current


def read_legacy_state(run_dir: Path, run_id: str, *, applied: str) -> AppliedState:
    """The state of a run kept before applied states existed: the present rows of its build, less the rows
    it sent as removals; Canvas's baseline is taken to be that run (``applied`` as history tells)."""
    build = BuildDir(run_dir / BUILD_DIR_NAME)
    verified = build.verified_zip(error=RunsDirError)
    held = present(verified.read_frames(), build.read_sync_rows(REMOVED))
    held[files.CHANGE_SIS_ID] = empty_frames()[files.CHANGE_SIS_ID]
    baseline = CanvasBaseline(run_id, ZipSizes.of_zip(verified.path)) if applied in (DIFF, REMASTER) else None
    identities = build.read_identities()
    return AppliedState(
        run_id=run_id,
        applied=applied,
        present=held,
        carried=build.read_sync_rows(CARRIED),
        canvas_baseline=baseline,
        identities=identities
        if identities is not None and tuple(identities.columns) == IDENTITY_COLUMNS
        else None,
    )


def _read_csv(path: Path, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if columns is not None and tuple(frame.columns) != columns:
        raise ValueError(f"{path.name} has the columns {', '.join(frame.columns)}")
    return frame


def _same_rows(one: pd.DataFrame, other: pd.DataFrame) -> bool:
    return one is other or (
        list(one.columns) == list(other.columns)
        and one.reset_index(drop=True).equals(other.reset_index(drop=True))
    )


def _sorted(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return frame.sort_values(by, ignore_index=True, kind="stable") if len(frame) else frame
