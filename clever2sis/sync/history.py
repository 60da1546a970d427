"""Run history: one row per sync run in ``RUNS_DIR/history.sqlite`` (stdlib sqlite3, no server).

A row is written when a run starts (outcome ``running``) and completed when it ends, so a run killed
midway still shows, as ``running`` with no end. Counts and the guard's verdict are stored as JSON text;
:meth:`History.runs` gives them back as dicts. Nothing secret is ever stored: tokens never reach a run's
facts.

The schema's version is SQLite's ``user_version``. Version 2 added ``applied`` (what Canvas really applied:
see :mod:`clever2sis.sync.state`); a version 1 file is migrated when opened, its rows keep ``applied``
empty (NULL), and the sync reads such a run as it did before (the present rows of its build).
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
SCHEMA_VERSION = 2
BUSY_TIMEOUT_S = 30.0
RUNNING = "running"
# Outcomes after which the run's build is what Canvas now holds: the baseline for the next run.
BASELINE_OUTCOMES = ("imported", "imported_with_messages")

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
    applied TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_profile ON runs (profile, run_id);
"""
_JSON_COLUMNS = {"guard_json": "guard_details", "rows_json": "rows", "changes_json": "changes"}
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
            if "applied" not in columns:
                db.execute("ALTER TABLE runs ADD COLUMN applied TEXT")
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
