"""Building Clever's real recorded sandbox objects (the reference recordings beside the repository, see
tests/conftest.py: their extracted objects)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clever2sis.config import RawConfig, build_settings
from clever2sis.sis import files
from clever2sis.sis.build import build
from tests.conftest import REFERENCE, write_snapshot

EXTRACTED = REFERENCE / "clever-recorded" / "extracted"
CLOSED_SECTION = "58da8c6a894273be68000182"

pytestmark = pytest.mark.skipif(
    not EXTRACTED.is_dir(), reason=f"real Clever recordings not available at {EXTRACTED}"
)


@pytest.fixture(scope="module")
def recorded_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("recorded")
    records = {
        name: [item["data"] for item in json.loads((EXTRACTED / f"{name}.json").read_text())["data"]]
        for name in ("districts", "schools", "terms", "courses", "sections", "users")
    }
    snapshot = write_snapshot(tmp / "snapshot", records)
    build(snapshot, tmp / "build", build_settings(RawConfig(data={})))
    return tmp / "build"


def rows(build_dir: Path, name: str) -> list[dict[str, str]]:
    import csv

    with (build_dir / "csv" / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_closed_section_comes_out_complete(recorded_build: Path) -> None:
    section = json.loads((EXTRACTED / "sections.json").read_text())
    (record,) = [item["data"] for item in section["data"] if item["data"]["id"] == CLOSED_SECTION]

    enrollments = [
        row for row in rows(recorded_build, files.ENROLLMENTS) if row["section_id"] == CLOSED_SECTION
    ]
    students = sorted(row["user_id"] for row in enrollments if row["role"] == "student")
    teachers = [row["user_id"] for row in enrollments if row["role"] == "teacher"]
    assert len(students) == 26
    assert students == sorted(record["students"])
    assert teachers == [record["teacher"]]

    users = {row["user_id"]: row for row in rows(recorded_build, files.USERS)}
    assert all(users[student]["login_id"] for student in students)
    recorded_users = json.loads((EXTRACTED / "users.json").read_text())["data"]
    (teacher,) = [item["data"] for item in recorded_users if item["data"]["id"] == record["teacher"]]
    assert (
        users[record["teacher"]]["login_id"]
        == teacher["roles"]["teacher"]["credentials"]["district_username"]
    )

    (course,) = [row for row in rows(recorded_build, files.COURSES) if row["course_id"] == CLOSED_SECTION]
    assert course == {
        "course_id": CLOSED_SECTION,
        "short_name": "601 P4",
        "long_name": "Sixth Grade Advisory - Madison - 4",
        "account_id": record["school"],
        "term_id": "2012-08-01_2013-06-01_y1",
        "status": "active",
    }
    terms = {row["term_id"]: row for row in rows(recorded_build, files.TERMS)}
    assert terms["2012-08-01_2013-06-01_y1"]["name"] == "Y1 (2012-08-01 – 2013-06-01)"
    accounts = {row["account_id"]: row for row in rows(recorded_build, files.ACCOUNTS)}
    assert accounts[record["school"]]["name"] == "Rockaway Beach Middle School"
    (section_row,) = [
        row for row in rows(recorded_build, files.SECTIONS) if row["section_id"] == CLOSED_SECTION
    ]
    assert section_row["course_id"] == CLOSED_SECTION


def test_recorded_quirks_are_reported(recorded_build: Path) -> None:
    record = json.loads((recorded_build / "build.json").read_text())
    by_kind = record["findings"]["by_kind"]
    assert by_kind["invalid_email"]["count"] == 1
    assert by_kind["section_unknown_course"]["count"] == 2
