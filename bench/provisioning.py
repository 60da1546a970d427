"""A provisioning report for the bench district, written straight from a build's CSVs, with some drift.

What Canvas would report after importing the build (the columns of canvas-lms's account_reports plugin,
``lib/account_reports/sis_exporter.rb``, Canvas ids numbered in file order), changed so that reconcile has
work to do: every :data:`DRIFT_EVERY`-th enrollment is missing, the next one inactive, every
:data:`DRIFT_EVERY`-th user renamed, and as many enrollments added by hand (no SIS batch) as there are
missing ones. Everything is vectorised (pandas and Arrow over whole columns) and streamed into a zip of
``<table>.csv``, as Canvas zips the report.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

DRIFT_EVERY = 1000
ZIP_LEVEL = 1
CANVAS_ID_BASE = {
    "users": 10_000_000,
    "courses": 20_000_000,
    "sections": 30_000_000,
    "enrollments": 40_000_000,
}


def _read(csv_dir: Path, name: str) -> pd.DataFrame:
    path = csv_dir / name
    if not path.is_file():
        return pd.DataFrame()
    return pd.read_csv(path, dtype=str, keep_default_na=False, engine="pyarrow")


def _ids(table: str, count: int) -> pd.Series:
    return pd.Series(np.arange(count, dtype=np.int64) + CANVAS_ID_BASE[table]).astype(str)


def _write(archive: zipfile.ZipFile, table: str, frame: pd.DataFrame) -> int:
    with archive.open(f"{table}.csv", "w") as handle:
        pa_csv.write_csv(
            pa.Table.from_pandas(frame.astype(str), preserve_index=False),
            handle,
            write_options=pa_csv.WriteOptions(quoting_style="needed"),
        )
    return len(frame)


def report_tables(csv_dir: Path) -> dict[str, pd.DataFrame]:
    """The report's tables of the build in ``csv_dir``, drift included."""
    users, courses = _read(csv_dir, "users.csv"), _read(csv_dir, "courses.csv")
    sections, enrollments = _read(csv_dir, "sections.csv"), _read(csv_dir, "enrollments.csv")
    user_ids = _ids("users", len(users))
    full = users["full_name"] if "full_name" in users else pd.Series("", index=users.index)
    name = full.where(full != "", users["first_name"] + " " + users["last_name"]).str.strip()
    renamed = np.arange(len(users)) % DRIFT_EVERY == 0
    name = name.where(~renamed, name + " (edited)")
    report_users = pd.DataFrame(
        {
            "canvas_user_id": user_ids,
            "user_id": users["user_id"],
            "integration_id": users.get("integration_id", ""),
            "authentication_provider_id": "",
            "login_id": users["login_id"],
            "first_name": users["first_name"],
            "last_name": users["last_name"],
            "full_name": name,
            "sortable_name": (users["last_name"] + ", " + users["first_name"]).where(full == "", ""),
            "short_name": "",
            "email": users["email"],
            "status": "active",
            "created_by_sis": "true",
        }
    )
    course_ids = _ids("courses", len(courses))
    report_courses = pd.DataFrame(
        {
            "canvas_course_id": course_ids,
            "course_id": courses["course_id"],
            "integration_id": "",
            "short_name": courses["short_name"],
            "long_name": courses["long_name"],
            "canvas_account_id": "1",
            "account_id": courses["account_id"],
            "canvas_term_id": "1",
            "term_id": courses["term_id"],
            "status": courses["status"].map({"completed": "concluded"}).fillna("unpublished"),
            "start_date": "",
            "end_date": "",
            "course_format": "",
            "canvas_blueprint_course_id": "",
            "blueprint_course_id": "",
            "created_by_sis": "true",
        }
    )
    report_sections = pd.DataFrame(
        {
            "canvas_section_id": _ids("sections", len(sections)),
            "section_id": sections["section_id"],
            "canvas_course_id": "",
            "course_id": sections["course_id"],
            "integration_id": "",
            "name": sections["name"],
            "status": "active",
            "start_date": "",
            "end_date": "",
            "canvas_account_id": "1",
            "account_id": "",
            "created_by_sis": "true",
        }
    )
    place = np.arange(len(enrollments)) % DRIFT_EVERY
    status = enrollments["status"].map({"completed": "concluded"}).fillna("active")
    status = status.where(place != 1, "inactive")
    base = pd.DataFrame(
        {
            "canvas_course_id": "",
            "course_id": enrollments["course_id"],
            "canvas_user_id": "",
            "user_id": enrollments["user_id"],
            "role": enrollments["role"],
            "role_id": "3",
            "canvas_section_id": "",
            "section_id": enrollments["section_id"],
            "status": status,
            "canvas_associated_user_id": "",
            "associated_user_id": "",
            "created_by_sis": "true",
            "base_role_type": "StudentEnrollment",
            "limit_section_privileges": "false",
        }
    )
    kept = base.loc[place != 0]
    by_hand = base.loc[place == 0].assign(section_id="", role="teacher", created_by_sis="false")
    report_enrollments = pd.concat([kept, by_hand], ignore_index=True)
    report_enrollments["canvas_enrollment_id"] = _ids("enrollments", len(report_enrollments))
    tables = {
        "users": report_users,
        "courses": report_courses,
        "sections": report_sections,
        "enrollments": report_enrollments,
    }
    links = _read(csv_dir, "user_observers.csv")
    if len(links):
        tables["user_observers"] = pd.DataFrame(
            {
                "canvas_observer_id": "",
                "observer_id": links["observer_id"],
                "canvas_student_id": "",
                "student_id": links["student_id"],
                "status": "active",
                "created_by_sis": "true",
            }
        )
    return tables


def write_report(csv_dir: Path, dest: Path) -> dict[str, int]:
    """Write the report of the build in ``csv_dir`` to ``dest`` (a zip); the rows of each table."""
    tables = report_tables(csv_dir)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as archive:
        return {table: _write(archive, table, frame) for table, frame in tables.items()}
