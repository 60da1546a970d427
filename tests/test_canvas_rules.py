"""The built files as Canvas's importer would take them (../shared/reference/canvas-sis-import.md §1.0-1.1).

Canvas decides a file's type from its header alone, testing each importer's predicate in a fixed order;
a stray column can make a courses file look like a terms file. These tests run that detection, written
out from the spec, over every file of builds made with the settings that change headers.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest

from clever2sis.config import RawConfig, build_settings
from clever2sis.sis.build import build

EXPECTED_TYPE = {
    "accounts.csv": "account",
    "terms.csv": "term",
    "courses.csv": "course",
    "sections.csv": "section",
    "users.csv": "user",
    "enrollments.csv": "enrollment",
}


def canvas_file_type(header: list[str]) -> str | None:
    """The importer Canvas would pick for a CSV with this header (first match in importer order)."""
    h = {column.strip().lower() for column in header}
    predicates = [
        ("change_sis_id", "old_id" in h or "old_integration_id" in h),
        ("account", {"account_id", "parent_account_id"} <= h),
        ("term", {"term_id", "name"} <= h),
        ("abstract_course", {"abstract_course_id", "short_name"} <= h and "course_id" not in h),
        ("course", {"course_id", "short_name"} <= h),
        ("section", {"section_id", "name"} <= h),
        ("xlist", {"xlist_course_id", "section_id"} <= h),
        (
            "user",
            {"user_id", "login_id"} <= h
            and not h & {"existing_user_id", "existing_integration_id", "existing_canvas_user_id"},
        ),
        ("login", bool(h & {"existing_user_id", "existing_integration_id", "existing_canvas_user_id"})),
        (
            "enrollment",
            bool(h & {"section_id", "course_id"}) and bool(h & {"user_id", "user_integration_id"}),
        ),
        ("admin", {"account_id", "user_id"} <= h),
        ("user_observer", {"observer_id", "student_id"} <= h),
    ]
    return next((name for name, matches in predicates if matches), None)


SETTINGS = [
    {},
    {"build": {"course_structure": "course", "authentication_provider_id": "saml"}},
    {
        "ids": {
            "user_id": "{{ user.sis_id }}",
            "section_id": "S{{ section.sis_id }}",
            "account_id": "{{ school.sis_id }}",
            "course_id": "C{{ section.id }}",
        }
    },
]


@pytest.mark.parametrize("tables", SETTINGS)
def test_every_file_is_detected_as_its_type_and_follows_the_format_rules(
    tiny_snapshot: Path, tmp_path: Path, tables: dict[str, object]
) -> None:
    build(tiny_snapshot, tmp_path / "b", build_settings(RawConfig(data=tables)))
    with zipfile.ZipFile(tmp_path / "b" / "sis_import.zip") as archive:
        assert sorted(archive.namelist()) == sorted(EXPECTED_TYPE)
        for name in archive.namelist():
            data = archive.read(name)
            assert not data.startswith(b"\xef\xbb\xbf"), f"{name} has a BOM"
            text = data.decode("utf-8")
            rows = list(csv.reader(io.StringIO(text, newline="")))
            header = rows[0]
            assert canvas_file_type(header) == EXPECTED_TYPE[name], (name, header)
            assert header == [column.strip() for column in header]
            assert len(rows) > 1, f"{name} is header-only"
            assert all(len(row) == len(header) for row in rows), name
            assert "\x00" not in text
            if "status" in header:
                statuses = {row[header.index("status")] for row in rows[1:]}
                assert statuses <= {"active", "deleted", "completed", "inactive", "suspended", "published"}
                assert statuses == {s.lower() for s in statuses}


def test_accounts_file_always_has_parent_account_id(tiny_snapshot: Path, tmp_path: Path) -> None:
    build(tiny_snapshot, tmp_path / "b", build_settings(RawConfig(data={})))
    header = (tmp_path / "b" / "csv" / "accounts.csv").read_text().splitlines()[0].split(",")
    assert "parent_account_id" in header


def test_term_dates_are_iso_8601_with_a_zone(tiny_snapshot: Path, tmp_path: Path) -> None:
    import re

    build(
        tiny_snapshot, tmp_path / "b", build_settings(RawConfig(data={"build": {"timezone": "Asia/Kolkata"}}))
    )
    rows = list(csv.DictReader((tmp_path / "b" / "csv" / "terms.csv").open(encoding="utf-8")))
    for row in rows:
        for column in ("start_date", "end_date"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", row[column]), row
    assert rows[0]["start_date"] == "2025-08-18T00:00:00+05:30"
