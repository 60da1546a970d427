"""The fix: a small build directory holding only the drifted rows, with explicit statuses.

* a row Canvas lacks, holds in another state or holds with other values is sent again as the build has
  it (its own status);
* an extra object (in use, made by an import, not in the build) is sent with a removal status: courses
  and sections ``deleted``, enrollments ``[sync] enrollment_remove_status`` (``inactive``), users
  ``[sync] user_remove_status`` (``suspended``), observer links ``deleted``; the values that name it are
  Canvas's own (the report's), other columns left blank, so Canvas keeps what it has
  (``lib/sis/user_importer.rb`` keeps a user's name and email when a row gives none);
* objects added by hand are removed the same way only when asked (``remove_manual``), and only those an
  import can name (a user with a SIS id; an enrollment of such a user in a course with one).

It is not a diff: it must be imported as a plain import (no ``diffing_data_set_identifier``, no batch
mode), which ``upload`` checks for a build whose build.json has a ``reconcile`` section. Fields changed by
hand in Canvas are sticky and an import leaves them alone unless it sets ``override_sis_stickiness``, so the
fix is meant to be imported with it, and with ``clear_sis_stickiness`` so that the nightly imports own
those fields again (:data:`FIX_IMPORT_OPTIONS`).

A fix that would remove more than ``[sync] max_shrink_percent`` of the objects of a file that Canvas holds
from imports is refused (:class:`~clever2sis.errors.FixTooLargeError`), as the nightly guard refuses such a
night: comparing with the wrong build would otherwise remove a school.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from clever2sis import __version__
from clever2sis.build_dir import BuildDir, BuildRecord, FileEntry, ZipEntry, sha256_file
from clever2sis.canvas.sis_import import ImportOptions
from clever2sis.errors import FixTooLargeError
from clever2sis.reconcile.drift import CANVAS_NAME, CANVAS_SORTABLE_NAME, Drift, FileDrift
from clever2sis.sis import files
from clever2sis.sis.writer import write_csv, write_zip

DELETED = "deleted"
FIX_IMPORT_OPTIONS = ImportOptions(override_sis_stickiness=True, clear_sis_stickiness=True)
_DERIVED = frozenset({CANVAS_NAME, CANVAS_SORTABLE_NAME})

# What names an object in a removal row: the build's column ← the report's column.
REMOVAL_COLUMNS: Mapping[str, tuple[str, ...]] = {
    files.COURSES: ("course_id", "short_name", "long_name", "account_id", "term_id"),
    files.SECTIONS: ("section_id", "course_id", "name"),
    files.USERS: ("user_id", "login_id"),
    files.ENROLLMENTS: ("course_id", "section_id", "user_id", "role"),
    files.USER_OBSERVERS: ("observer_id", "student_id"),
}


@dataclass(frozen=True)
class RemovalStatuses:
    """The statuses removal rows are sent with (the ``[sync]`` settings of the same names)."""

    enrollment: str = "inactive"
    user: str = "suspended"

    def of(self, name: str) -> str:
        return {files.ENROLLMENTS: self.enrollment, files.USERS: self.user}.get(name, DELETED)


def _text_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table (text or dictionary-encoded text) as string columns."""
    return pd.DataFrame(
        {
            name: pd.Series(table.column(name).cast(pa.large_string()).to_pylist(), dtype="str")
            for name in table.column_names
        },
        index=pd.RangeIndex(table.num_rows),
    )


def _removals(drift: FileDrift, rows: np.ndarray, columns: list[str], status: str) -> pd.DataFrame:
    named = _text_frame(
        drift.report.take(pa.array(rows, pa.int64())).select(list(REMOVAL_COLUMNS[drift.rule.name]))
    )
    out = pd.DataFrame({column: pd.Series([""] * len(rows), dtype="str") for column in columns})
    for column in REMOVAL_COLUMNS[drift.rule.name]:
        if column in out.columns:
            out[column] = named[column].to_numpy()
    out["status"] = status
    return out


def fix_frames(
    drift: Drift, statuses: RemovalStatuses, *, remove_manual: bool = False
) -> dict[str, pd.DataFrame]:
    """The fix's rows of each drifted file, in the build's columns, sorted as a build sorts them."""
    out: dict[str, pd.DataFrame] = {}
    for name, file_drift in drift.files.items():
        columns = [c for c in file_drift.expected.column_names if c not in _DERIVED]
        resend = _text_frame(
            file_drift.expected.select(columns).take(pa.array(file_drift.resend(), pa.int64()))
        )
        removal_rows = file_drift.extra
        if remove_manual:
            removal_rows = np.concatenate([removal_rows, file_drift.addressable_manual])
        removals = _removals(file_drift, removal_rows, columns, statuses.of(name))
        frame = pd.concat([part for part in (resend, removals) if len(part)] or [resend], ignore_index=True)
        if len(frame):
            out[name] = frame.sort_values(list(files.SORT_KEYS[name]), kind="stable", ignore_index=True)
    return out


def check_removals(
    drift: Drift, *, limit_percent: Callable[[str], float], remove_manual: bool, allow: bool
) -> list[str]:
    """Refuse a fix that removes too much of a file (unless ``allow``); return what it removes, per file."""
    removing, too_much = [], []
    for name, file_drift in drift.files.items():
        count = len(file_drift.extra) + (len(file_drift.addressable_manual) if remove_manual else 0)
        if not count:
            continue
        base = max(file_drift.sis_live, 1)
        share = 100.0 * count / base
        line = f"{name} {count} of the {file_drift.sis_live} Canvas holds from imports ({share:.1f}%)"
        removing.append(line)
        if share > limit_percent(name):
            too_much.append(f"{line}, limit {limit_percent(name):g}%")
    if too_much and not allow:
        raise FixTooLargeError(
            f"the fix would remove {'; '.join(too_much)}: is the build compared the one Canvas last "
            "imported? If it is, re-run with --allow-large-change"
        )
    return removing


def write_fix(
    frames: Mapping[str, pd.DataFrame], dest: Path, *, built_at: str, reconcile: Mapping[str, Any]
) -> BuildRecord:
    """Write ``frames`` as a build directory at ``dest`` (csv/, sis_import.zip, build.json), in Canvas's
    file order; ``reconcile`` becomes build.json's ``reconcile`` section."""
    layout = BuildDir(dest)
    layout.csv_dir.mkdir(parents=True)
    names = [name for name in files.FILE_ORDER if name in frames and len(frames[name])]
    written = {name: write_csv(frames[name], layout.csv_file(name)) for name in names}
    write_zip([(name, layout.csv_file(name)) for name in names], layout.zip_file)
    record = BuildRecord(
        tool={"name": "clever2sis", "version": __version__},
        built_at=built_at,
        files={name: FileEntry(rows=f.rows, sha256=f.sha256, bytes=f.bytes) for name, f in written.items()},
        zip=ZipEntry(sha256=sha256_file(layout.zip_file), bytes=layout.zip_file.stat().st_size),
        reconcile=dict(reconcile),
    )
    layout.write_record(record)
    return record
