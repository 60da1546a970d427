"""Migrating a Canvas that already has SIS ids (from an older feed) to Clever ids: ``clever2sis map-ids``.

Canvas provisioning reports (users, courses, sections) are matched to the Clever records of a snapshot; the
result is a mapping (``type, old_id, new_id, matched_by``) that ``build --id-map`` turns into
change_sis_id.csv, so existing people keep their accounts and courses keep their work, and a list of what
could not be matched, with the reason.

``new_id`` is the matched Clever record's id: a user's, a section's, or (``course_structure = "course"``) a
Clever course's. That is the Canvas SIS id under the default id templates; with other templates ``build``
writes whatever id its templates give that record.

Matching, in order, each step only for Canvas rows not settled by an earlier one (values compared after
trimming; emails regardless of case):

- users: the old SIS id equal to a Clever ``id``, then to a Clever ``sis_id`` (student, teacher, staff or
  contact), then to a ``student_number``, a ``teacher_number``, a ``state_id``; then the Canvas ``email``
  (or a ``login_id`` that is an address) equal to a Clever email;
- sections: the old section_id equal to a Clever section ``id``, then its ``sis_id``;
- courses: with ``course_structure = "section"`` as sections (a Canvas course per Clever section); with
  ``"course"`` the old course_id equal to a Clever course ``id``, then its ``number``.

Nothing ambiguous is mapped: a value matching several Clever records, or a Clever record matched by several
Canvas records, is listed instead. So is a new id that another Canvas record already has as its SIS id
(Canvas would refuse it), a Canvas record without an SIS id (change_sis_id needs one), and a deleted one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from clever2sis.atomic import atomic_directory
from clever2sis.clever.frames import District, load_district
from clever2sis.clever.snapshot import Snapshot
from clever2sis.config import BuildSettings
from clever2sis.errors import UsageError
from clever2sis.sis.arrow import member
from clever2sis.sis.writer import write_csv

MAPPING_NAME = "id_map.csv"
UNMATCHED_NAME = "unmatched.csv"
MAPPING_COLUMNS = ("type", "old_id", "new_id", "matched_by")
UNMATCHED_COLUMNS = ("type", "old_id", "canvas_id", "name", "email", "problem", "reason")
# problem: a short code per reason, for filtering and counting.
NO_SIS_ID = "no_sis_id"
DELETED = "deleted"
AMBIGUOUS_VALUE = "ambiguous_value"
AMBIGUOUS_RECORD = "ambiguous_record"
ID_TAKEN = "id_taken"
NO_MATCH = "no_match"
TYPES = ("user", "course", "section")


@dataclass(frozen=True)
class ReportSpec:
    """One Canvas provisioning report: the column holding the SIS id, and those shown for people."""

    kind: str
    sis_column: str
    canvas_column: str
    name_column: str


REPORTS = {
    "user": ReportSpec("user", "user_id", "canvas_user_id", "full_name"),
    "course": ReportSpec("course", "course_id", "canvas_course_id", "long_name"),
    "section": ReportSpec("section", "section_id", "canvas_section_id", "name"),
}


def read_report(path: Path, kind: str) -> pd.DataFrame:
    """A Canvas provisioning report as strings (``<NA>`` for empty); extra columns are kept and ignored."""
    spec = REPORTS[kind]
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise UsageError(f"{path}: not a readable CSV ({error})") from None
    frame.columns = [str(column).strip().lower() for column in frame.columns]
    if spec.sis_column not in frame.columns:
        raise UsageError(
            f"{path}: no {spec.sis_column} column; give the Canvas provisioning report of {kind}s "
            f"(columns {spec.canvas_column}, {spec.sis_column}, ...)"
        )
    frame = frame.astype("string")
    for column in frame.columns:
        values = frame[column].str.strip()
        frame[column] = values.where(values != "")
    return frame


def _pairs(keys: pd.Series, ids: pd.Series) -> pd.DataFrame:
    out = pd.DataFrame({"key": keys.str.strip(), "clever_id": ids})
    return out[out["key"].notna() & (out["key"] != "")]


def _user_steps(district: District, report: pd.DataFrame) -> list[tuple[str, pd.Series, pd.DataFrame]]:
    users = district.users
    ids = users["id"]
    old = report["user_id"]
    email = report["email"] if "email" in report else pd.Series(pd.NA, index=report.index, dtype="string")
    if "login_id" in report:
        email = email.fillna(report["login_id"].where(report["login_id"].str.contains("@", regex=False)))

    def stacked(*columns: str) -> pd.DataFrame:
        return pd.concat([_pairs(users[column], ids) for column in columns], ignore_index=True)

    return [
        ("id", old, _pairs(ids, ids)),
        ("sis_id", old, stacked("student_sis_id", "teacher_sis_id", "staff_id", "contact_sis_id")),
        ("student_number", old, stacked("student_number")),
        ("teacher_number", old, stacked("teacher_number")),
        ("state_id", old, stacked("student_state_id", "teacher_state_id")),
        ("email", email.str.lower(), _pairs(users["email"].str.lower(), ids)),
    ]


def _section_steps(district: District, old: pd.Series) -> list[tuple[str, pd.Series, pd.DataFrame]]:
    sections = district.sections
    return [
        ("id", old, _pairs(sections["id"], sections["id"])),
        ("sis_id", old, _pairs(sections["sis_id"], sections["id"])),
    ]


def _course_steps(
    district: District, settings: BuildSettings, old: pd.Series
) -> list[tuple[str, pd.Series, pd.DataFrame]]:
    if settings.course_structure == "section":
        return _section_steps(district, old)
    courses = district.courses
    return [
        ("id", old, _pairs(courses["id"], courses["id"])),
        ("number", old, _pairs(courses["number"], courses["id"])),
    ]


def match(
    kind: str, report: pd.DataFrame, steps: Sequence[tuple[str, pd.Series, pd.DataFrame]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Match ``report``'s rows to Clever ids by ``steps`` (name, Canvas values, Clever (key, clever_id)).

    Returns the mapping (``MAPPING_COLUMNS``) and the unmatched rows (``UNMATCHED_COLUMNS``).
    """
    spec = REPORTS[kind]
    index = report.index
    old = report[spec.sis_column]
    new_id = pd.Series(pd.NA, index=index, dtype="string")
    matched_by = pd.Series(pd.NA, index=index, dtype="string")
    reason = pd.Series(pd.NA, index=index, dtype="string")
    problem = pd.Series(pd.NA, index=index, dtype="string")

    def settle(mask: pd.Series, code: str, why: pd.Series | str) -> None:
        problem[mask] = code
        reason[mask] = why[mask] if isinstance(why, pd.Series) else why

    settle(old.isna(), NO_SIS_ID, "no SIS id in Canvas (change_sis_id needs one)")
    if "status" in report:
        settle(
            reason.isna() & (report["status"].str.lower() == "deleted").fillna(False),
            DELETED,
            "deleted in Canvas",
        )
    for step, values, pairs in steps:
        pairs = pairs.drop_duplicates()
        counts = pairs.groupby("key")["clever_id"].size()
        unique = pairs[pairs["key"].map(counts) == 1].set_index("key")["clever_id"]
        open_ = reason.isna() & new_id.isna() & values.notna()
        hit = open_ & member(values, unique.index)
        new_id[hit] = values[hit].map(unique)
        matched_by[hit] = step
        several = open_ & ~hit & member(values, counts.index)
        n = values.map(counts).astype("Int64").astype("string")
        settle(several, AMBIGUOUS_VALUE, f"its {step} '" + values + "' matches " + n + " Clever records")
    claimed = new_id.notna() & new_id.duplicated(keep=False)
    settle(claimed, AMBIGUOUS_RECORD, "Clever record " + new_id + " is matched by several Canvas records")
    taken = new_id.notna() & ~claimed & (new_id != old) & member(new_id, old.dropna())
    settle(taken, ID_TAKEN, "its new id " + new_id + " is already another Canvas record's SIS id")
    settle(reason.isna() & new_id.isna(), NO_MATCH, "no Clever record matches")
    mapped = reason.isna()
    mapping = pd.DataFrame(
        {"type": kind, "old_id": old[mapped], "new_id": new_id[mapped], "matched_by": matched_by[mapped]}
    )

    def column(name: str) -> pd.Series:
        return report[name] if name in report else pd.Series(pd.NA, index=index, dtype="string")

    unmatched = pd.DataFrame(
        {
            "type": kind,
            "old_id": old,
            "canvas_id": column(spec.canvas_column),
            "name": column(spec.name_column),
            "email": column("email"),
            "problem": problem,
            "reason": reason,
        }
    )[~mapped]
    return mapping, unmatched


def match_reports(
    district: District, settings: BuildSettings, reports: Mapping[str, pd.DataFrame]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The mapping and the unmatched rows of every report given (``kind`` -> report frame)."""
    mappings, unmatched = [], []
    for kind, report in reports.items():
        old = report[REPORTS[kind].sis_column]
        if kind == "user":
            steps = _user_steps(district, report)
        elif kind == "section":
            steps = _section_steps(district, old)
        else:
            steps = _course_steps(district, settings, old)
        found, missed = match(kind, report, steps)
        mappings.append(found)
        unmatched.append(missed)
    mapping = pd.concat(mappings, ignore_index=True) if mappings else pd.DataFrame(columns=MAPPING_COLUMNS)
    missed_all = (
        pd.concat(unmatched, ignore_index=True) if unmatched else pd.DataFrame(columns=UNMATCHED_COLUMNS)
    )
    return (
        mapping.astype("string").sort_values(["type", "old_id"], ignore_index=True),
        missed_all.astype("string").sort_values(["type", "old_id"], ignore_index=True, na_position="first"),
    )


def summary(
    mapping: pd.DataFrame, unmatched: pd.DataFrame, reports: Mapping[str, pd.DataFrame]
) -> dict[str, Any]:
    """Counts per type: Canvas rows read, mapped (by step), unmatched (by reason kind)."""
    out: dict[str, Any] = {}
    for kind, report in reports.items():
        mine = mapping[mapping["type"] == kind]
        missed = unmatched[unmatched["type"] == kind]
        reasons = missed["problem"]
        out[kind] = {
            "canvas_rows": len(report),
            "mapped": len(mine),
            "unchanged": int((mine["old_id"] == mine["new_id"]).sum()),
            "matched_by": {str(k): int(v) for k, v in mine["matched_by"].value_counts().sort_index().items()},
            "unmatched": len(missed),
            "unmatched_problems": {str(k): int(v) for k, v in reasons.value_counts().sort_index().items()},
        }
    return out


def map_ids(
    snapshot_dir: Path,
    out: Path,
    settings: BuildSettings,
    report_paths: Mapping[str, Path],
    *,
    force: bool = False,
) -> dict[str, Any]:
    """Match the given reports to ``snapshot_dir``; write ``out/id_map.csv`` and ``out/unmatched.csv``."""
    if not report_paths:
        raise UsageError(
            "give at least one Canvas report: --canvas-users, --canvas-courses or --canvas-sections"
        )
    if out.exists() and not force:
        raise UsageError(f"{out} already exists; use --force to replace it")
    reports = {kind: read_report(path, kind) for kind, path in report_paths.items()}
    district = load_district(Snapshot.open(snapshot_dir))
    mapping, unmatched = match_reports(district, settings, reports)
    with atomic_directory(out, replace=force) as tmp:
        write_csv(mapping.loc[:, list(MAPPING_COLUMNS)].fillna(""), tmp / MAPPING_NAME)
        write_csv(unmatched.loc[:, list(UNMATCHED_COLUMNS)].fillna(""), tmp / UNMATCHED_NAME)
    return {
        "mapping": str(out / MAPPING_NAME),
        "unmatched": str(out / UNMATCHED_NAME),
        "by_type": summary(mapping, unmatched, reports),
    }


def read_id_map(path: Path) -> pd.DataFrame:
    """A mapping written by map-ids (or by hand, same columns) as strings; bad files are usage errors."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such id map; write one with `clever2sis map-ids`") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise UsageError(f"{path}: not a readable CSV ({error})") from None
    frame.columns = [str(column).strip().lower() for column in frame.columns]
    missing = [column for column in ("type", "old_id", "new_id") if column not in frame.columns]
    if missing:
        raise UsageError(
            f"{path}: no {missing[0]} column; an id map has columns {', '.join(MAPPING_COLUMNS)}"
        )
    frame = frame.astype("string")
    for column in frame.columns:
        frame[column] = frame[column].str.strip()
    bad = frame.loc[~frame["type"].isin(TYPES), "type"]
    if len(bad):
        raise UsageError(f"{path}: type {bad.iloc[0]!r} is not one of {', '.join(TYPES)}")
    return frame
