"""What Canvas should hold: the present rows of a build, read from its zip as Arrow text columns,
dictionary-encoded as the report's are (:mod:`clever2sis.reconcile.report`).

"Present" is what :func:`clever2sis.sync.changes.present` means by it: rows not sent with a removal status
(``deleted``, ``inactive``, ``suspended``, ``deleted_last_completed``), nor recorded by a sync under
``sync/removed/``. The zip is checked against build.json first, so the rows compared are the bytes that
were uploaded. Every column is read as text (an id such as ``00123`` stays itself).
"""

from __future__ import annotations

import csv
import functools
import zipfile
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from clever2sis.build_dir import REMOVED, BuildDir, BuildZip
from clever2sis.errors import ReconcileBaselineError
from clever2sis.reconcile.report import CODES, compact, open_member
from clever2sis.sis import files
from clever2sis.sync.changes import REMOVAL_STATUSES

# The Canvas files reconcile compares (accounts and terms are not in the provisioning report it reads).
COMPARED_FILES = (files.COURSES, files.SECTIONS, files.USERS, files.ENROLLMENTS, files.USER_OBSERVERS)
# Files a build always manages, even when it has no rows of them; user_observers.csv only when it is there
# (observers are an option: without it, links in Canvas are not the build's business).
ALWAYS_MANAGED = frozenset({files.COURSES, files.SECTIONS, files.USERS, files.ENROLLMENTS})
READ_BLOCK_BYTES = 32 << 20
_KEY_SEPARATOR = "\x1f"

# Each file's identity: the columns its rows are paired by (as Canvas's diffing pairs them).
KEYS: Mapping[str, tuple[str, ...]] = {
    files.COURSES: ("course_id",),
    files.SECTIONS: ("section_id",),
    files.USERS: ("user_id",),
    files.ENROLLMENTS: ("section_id", "user_id", "role"),
    files.USER_OBSERVERS: ("observer_id", "student_id"),
}


@dataclass(frozen=True)
class Expected:
    """A build's present rows per compared file (all columns text), and the files it manages."""

    build: BuildZip
    tables: Mapping[str, pa.Table]
    managed: frozenset[str]


def _strings(open_file: Callable[[], AbstractContextManager[IO[bytes]]], block_bytes: int) -> pa.Table:
    """A CSV with every column as text (its header names them), read in blocks."""
    with open_file() as handle:
        first_line = handle.readline().decode("utf-8-sig")
    header = next(csv.reader([first_line]), [])
    with open_file() as handle:
        reader = pa_csv.open_csv(
            handle,
            read_options=pa_csv.ReadOptions(block_size=block_bytes),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, CODES),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        return compact(pa.Table.from_batches(list(reader), schema=reader.schema))


def _open_binary(path: Path) -> IO[bytes]:
    return path.open("rb")


def row_keys(table: pa.Table, name: str) -> pa.ChunkedArray:
    """Each row's identity in ``name``: its key columns joined by a separator no id holds."""
    columns = [table.column(column).cast(pa.large_string()) for column in KEYS[name]]
    if len(columns) == 1:
        return columns[0]
    return pc.binary_join_element_wise(*columns, pa.scalar(_KEY_SEPARATOR, pa.large_string()))


def present_rows(table: pa.Table, name: str, removed: pa.Table | None) -> pa.Table:
    """The rows of ``table`` that say the object exists: no removal status, not among ``removed``."""
    if "status" in table.column_names and table.num_rows:
        status = table.column("status").chunk(0)
        removal = pa.array(sorted(REMOVAL_STATUSES), pa.large_string())
        gone = pc.is_in(status.dictionary, value_set=removal).take(status.indices)
        table = table.filter(pc.invert(gone))
    if removed is not None and removed.num_rows and table.num_rows:
        table = table.filter(pc.invert(pc.is_in(row_keys(table, name), value_set=row_keys(removed, name))))
    return table


def read_expected(build_dir: Path, *, block_bytes: int = READ_BLOCK_BYTES) -> Expected:
    """The present rows of the build in ``build_dir`` (zip checked against build.json first)."""
    build = BuildDir(build_dir).verified_zip(error=ReconcileBaselineError)
    layout = BuildDir(build_dir)
    tables: dict[str, pa.Table] = {}
    with zipfile.ZipFile(build.path) as archive:
        names = set(archive.namelist())
        for name in COMPARED_FILES:
            if name in names:
                member = functools.partial(open_member, build.path, archive.getinfo(name))
                table = _strings(member, block_bytes)
            else:
                empty = pa.array([], pa.large_string()).dictionary_encode()
                table = pa.table({column: empty for column in files.COLUMNS[name]})
            removed_file = layout.sync_rows_dir(REMOVED) / name
            removed = None
            if removed_file.is_file():
                removed = _strings(functools.partial(_open_binary, removed_file), block_bytes)
            tables[name] = present_rows(table, name, removed)
    managed = ALWAYS_MANAGED | {name for name in COMPARED_FILES if name in names}
    return Expected(build=build, tables=tables, managed=frozenset(managed))


def expected_from_frames(
    frames: Mapping[str, pd.DataFrame], build: BuildZip, managed: frozenset[str]
) -> Expected:
    """An :class:`Expected` of rows already read (string columns): the sync's applied state."""
    tables = {}
    for name in COMPARED_FILES:
        frame = frames[name]
        columns = list(frame.columns) or list(files.COLUMNS[name])
        tables[name] = pa.table(
            {
                column: pc.dictionary_encode(
                    pa.array(frame[column].to_numpy(dtype=object) if len(frame) else [], pa.large_string())
                )
                for column in columns
            }
        )
    return Expected(build=build, tables=tables, managed=managed)


def read_run(run_dir: Path, run_id: str) -> Expected:
    """What Canvas holds after run ``run_id`` as the sync knows it: its applied state's present rows
    (clever2sis/sync/state.py), which most nights are the present rows of the run's own build (then read
    as :func:`read_expected` reads a build). A run kept before applied states existed is its build."""
    from clever2sis.errors import RunsDirError
    from clever2sis.sync import state as applied_state
    from clever2sis.sync.runs import BUILD_DIR_NAME

    build_dir = run_dir / BUILD_DIR_NAME
    record_file = applied_state.state_dir(run_dir) / applied_state.STATE_RECORD_NAME
    try:
        record = orjson.loads(record_file.read_bytes()) if record_file.is_file() else None
    except (OSError, orjson.JSONDecodeError) as error:
        raise ReconcileBaselineError(f"{record_file}: not readable ({error})") from None
    simple = isinstance(record, dict) and record.get("present") == applied_state.SAME_AS_BUILD
    if record is None or (simple and record.get("run_id") == run_id):
        return read_expected(build_dir)
    expected = read_expected(build_dir)
    try:
        held = applied_state.read_state(run_dir, run_id).present
    except RunsDirError as error:
        raise ReconcileBaselineError(str(error)) from None
    return expected_from_frames(held, expected.build, expected.managed)
