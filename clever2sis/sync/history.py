"""Run history: one row per sync run in ``RUNS_DIR/history.sqlite`` (stdlib sqlite3, no server).

A row is written when a run starts (outcome ``running``), kept up to date as it goes (its ``stage``, its
import's state) and completed when it ends. A run killed midway (``kill -9``, a power cut) leaves its row
``running``; the next run, and ``clever2sis history``, reconcile it (:mod:`clever2sis.sync.settle`) with
what Canvas says about its import: :meth:`History.unsettled` lists such rows. Counts and the guard's verdict
are stored as JSON text; :meth:`History.runs` gives them back as dicts. Nothing secret is ever stored:
tokens never reach a run's facts.

The schema's version is SQLite's ``user_version``. Version 2 added ``applied`` (what Canvas really applied:
see :mod:`clever2sis.sync.state`); version 3 added ``stage`` (where a run was: the pipeline's stages);
version 4 added ``imports_json`` (every import a run posted: the observer link imports beside the main);
version 5 ``identities_carried`` (how many users the run carried over to a new id:
:mod:`clever2sis.sync.identities`); version 6 ``held_json`` (the schools the guard held,
:mod:`clever2sis.sync.guard`). An older file is migrated when opened (:data:`_ADDED_COLUMNS`); its
rows keep the new columns empty (NULL), and the sync reads such a run as it did before (for ``applied``:
the present rows of its build).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from clever2sis.errors import RunsDirError

HISTORY_NAME = "history.sqlite"
SCHEMA_VERSION = 6
BUSY_TIMEOUT_S = 30.0
RUNNING = "running"
PAUSED = "paused"
# Outcomes after which the run's build is what Canvas now holds: the baseline for the next run.
BASELINE_OUTCOMES = ("imported", "imported_with_messages")
# Import states after which nothing changes any more (clever2sis.canvas.sis_import.TERMINAL_STATES).
FINAL_IMPORT_STATES = (
    "imported",
    "imported_with_messages",
    "failed",
    "failed_with_messages",
    "aborted",
    "restored",
    "partially_restored",
)
# The import_state of a run whose import Canvas no longer knows (404): nothing more can be learned.
NOT_IN_CANVAS = "not_in_canvas"
# The stage during which a run posts its import (the pipeline's): a run that ended in it without an import
# id may have left an upload to confirm in its build directory.
UPLOAD_STAGE = "upload"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    district_id TEXT,
    started TEXT NOT NULL,
    finished TEXT,
    outcome TEXT NOT NULL,
    exit_code INTEGER,
    message TEXT,
    deletion_mode TEXT,
    remaster INTEGER NOT NULL DEFAULT 0,
    allow_large_change INTEGER NOT NULL DEFAULT 0,
    guard TEXT,
    guard_json TEXT,
    rows_json TEXT,
    changes_json TEXT,
    sis_import_id INTEGER,
    import_state TEXT,
    run_dir TEXT,
    applied TEXT,
    stage TEXT,
    imports_json TEXT,
    identities_carried INTEGER,
    held_json TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_profile ON runs (profile, run_id);
"""
# Columns added after the first schema (version 1), with their types: added to an older file when opened.
_ADDED_COLUMNS = {
    "applied": "TEXT",
    "stage": "TEXT",
    "imports_json": "TEXT",
    "identities_carried": "INTEGER",
    "held_json": "TEXT",
}
_JSON_COLUMNS = {
    "guard_json": "guard_details",
    "rows_json": "rows",
    "changes_json": "changes",
    "imports_json": "imports",
    "held_json": "held_schools",
}
_COLUMNS = (
    "run_id",
    "profile",
    "district_id",
    "started",
    "finished",
    "outcome",
    "exit_code",
    "message",
    "deletion_mode",
    "remaster",
    "allow_large_change",
    "guard",
    "guard_json",
    "rows_json",
    "changes_json",
    "sis_import_id",
    "import_state",
    "run_dir",
    "applied",
    "stage",
    "imports_json",
    "identities_carried",
    "held_json",
)
# The facts of a run as its JSON line and run.json give them: the history columns, JSON ones by their fact
# name (the guard's details stay in history and run.json's details, not in the one-line summary).
SUMMARY_FIELDS = tuple(_JSON_COLUMNS.get(column, column) for column in _COLUMNS if column != "guard_json")


@dataclass(frozen=True)
class RunRow:
    """One run as history holds it."""

    values: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)


class History:
    """The history database of one runs directory."""

    def __init__(self, runs_dir: Path) -> None:
        self.path = runs_dir / HISTORY_NAME
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._migrate()
        except sqlite3.Error as error:
            raise RunsDirError(f"cannot open run history {self.path}: {error}") from None
        except OSError as error:
            where = f" ({error.filename})" if error.filename else ""
            raise RunsDirError(
                f"cannot open run history {self.path}: {error.strerror or error}{where}"
            ) from None
        except RunsDirError:
            self._db.close()
            raise

    def _migrate(self) -> None:
        """Create the schema, or bring an older one up to :data:`SCHEMA_VERSION`, in one transaction."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise RunsDirError(
                    f"run history {self.path} has schema version {version}, newer than this clever2sis "
                    f"reads ({SCHEMA_VERSION}); upgrade clever2sis"
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
            for column, kind in _ADDED_COLUMNS.items():
                if column not in columns:
                    db.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
            if version != SCHEMA_VERSION:
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._db:
                yield self._db
        except sqlite3.Error as error:
            raise RunsDirError(f"cannot write run history {self.path}: {error}") from None

    def start(self, run_id: str, *, profile: str, started: str, run_dir: Path | None, **facts: Any) -> None:
        """Record a run that has begun."""
        self.record(
            {
                "run_id": run_id,
                "profile": profile,
                "started": started,
                "outcome": RUNNING,
                "run_dir": str(run_dir) if run_dir else None,
                **facts,
            }
        )

    def record(self, facts: Mapping[str, Any]) -> None:
        """Insert or update the row of ``facts["run_id"]`` with the facts given (dicts as JSON)."""
        values: dict[str, Any] = {}
        for key, value in facts.items():
            column = next((c for c, name in _JSON_COLUMNS.items() if name == key), key)
            if column not in _COLUMNS:
                raise ValueError(f"history has no column {key!r}")
            if column in _JSON_COLUMNS:
                value = None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
            elif isinstance(value, bool):
                value = int(value)
            values[column] = value
        run_id = values.pop("run_id")
        names = list(values)
        with self._write() as db:
            updated = (
                db.execute(
                    f"UPDATE runs SET {', '.join(f'{name} = ?' for name in names)} WHERE run_id = ?",
                    [*(values[name] for name in names), run_id],
                ).rowcount
                if names
                else 0
            )
            if not updated:
                db.execute(
                    f"INSERT INTO runs (run_id, {', '.join(names)}) VALUES (?{', ?' * len(names)})",
                    [run_id, *(values[name] for name in names)],
                )

    def runs(self, *, profile: str | None = None, limit: int | None = None) -> list[RunRow]:
        """Runs newest first, of one profile or all."""
        sql = "SELECT * FROM runs"
        params: list[Any] = []
        if profile is not None:
            sql += " WHERE profile = ?"
            params.append(profile)
        sql += " ORDER BY run_id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        try:
            rows = self._db.execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise RunsDirError(f"cannot read run history {self.path}: {error}") from None
        return [RunRow(_decoded(row)) for row in rows]

    def unsettled(self, profile: str | None = None, *, besides: str | None = None) -> list[RunRow]:
        """Runs to reconcile, oldest first: still ``running`` (only true of the run holding the lock,
        ``besides``), with an import that had not finished when they last looked, or that ended during
        the upload without an import id (their build directory may hold an upload to confirm)."""
        return [
            run
            for run in reversed(self.runs(profile=profile))
            if run["run_id"] != besides
            and (
                run["outcome"] == RUNNING
                or (
                    run["sis_import_id"] is not None
                    and run["import_state"] not in (*FINAL_IMPORT_STATES, NOT_IN_CANVAS)
                )
                or (run["sis_import_id"] is None and run["stage"] == UPLOAD_STAGE)
            )
        ]

    def run_of_import(self, import_id: int, profile: str | None = None) -> RunRow | None:
        """The run that posted (or adopted) import ``import_id``, if one of this directory's runs did."""
        return next((run for run in self.runs(profile=profile) if run["sis_import_id"] == import_id), None)

    def last_baseline(self, profile: str) -> RunRow | None:
        """The profile's newest run whose import Canvas applied: what Canvas now holds."""
        return next(
            (run for run in self.runs(profile=profile) if run["import_state"] in BASELINE_OUTCOMES), None
        )

    def baseline_run_ids(self) -> set[str]:
        """Each profile's last applied run (what the next run of that profile compares with)."""
        newest: dict[str, str] = {}
        for run in self.runs():
            if run["import_state"] in BASELINE_OUTCOMES:
                newest.setdefault(str(run["profile"]), str(run["run_id"]))
        return set(newest.values())

    def paused_since_last_applied(self, profile: str) -> bool:
        """Whether a night of ``profile`` was paused since its last applied run (or ever, without one)."""
        for run in self.runs(profile=profile):
            if run["import_state"] in BASELINE_OUTCOMES:
                return False
            if run["outcome"] == PAUSED:
                return True
        return False

    def last_remaster(self, profile: str) -> RunRow | None:
        """The profile's newest applied run that re-sent everything (a remaster, or the first run)."""
        return next(
            (
                run
                for run in self.runs(profile=profile)
                if run["import_state"] in BASELINE_OUTCOMES and run["remaster"]
            ),
            None,
        )


def _decoded(row: sqlite3.Row) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in row.keys():  # noqa: SIM118 (iterating a Row gives its values)
        value = row[key]
        if key in _JSON_COLUMNS:
            out[_JSON_COLUMNS[key]] = None if value is None else orjson.loads(value)
        elif key in ("remaster", "allow_large_change"):
            out[key] = bool(value)
        else:
            out[key] = value
    return out
