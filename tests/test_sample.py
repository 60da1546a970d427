"""The synthetic district generator: exact counts for a seed, determinism, Clever's shapes, every quirk."""

from __future__ import annotations

import collections
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from clever2sis.clever.sample import generate_district
from clever2sis.clever.snapshot import COLLECTIONS, Snapshot
from clever2sis.cli import main
from clever2sis.errors import UsageError
from tests.conftest import REFERENCE

STUDENTS, SEED = 600, 7
AS_OF = "2026-09-01T06:00:00Z"
AS_OF_EPOCH = 1788242400
RECORDED = REFERENCE / "clever-recorded" / "extracted"

ID = re.compile(r"[0-9a-f]{24}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
DATE = re.compile(r"\d{4}-\d\d-\d\d")
DOB = re.compile(r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}")
GRADES = {"PreKindergarten", "Kindergarten", *(str(grade) for grade in range(1, 13))}
SUBJECTS = {
    "english/language arts",
    "math",
    "science",
    "social studies",
    "language",
    "homeroom/advisory",
    "interventions/online learning",
    "technology and engineering",
    "PE and health",
    "arts and music",
    "other",
    "",
}


class District:
    """A generated snapshot, read back record by record."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        snapshot = Snapshot.open(path)
        self.records = {name: list(snapshot.iter_records(name)) for name in COLLECTIONS}
        self.users = self.records["users"]
        self.by_id = {user["id"]: user for user in self.users}
        self.sections = self.records["sections"]

    def role(self, role: str) -> Iterator[dict[str, Any]]:
        return (user for user in self.users if role in user["roles"])


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> District:
    path = tmp_path_factory.mktemp("sample") / "district"
    manifest = generate_district(path, students=STUDENTS, seed=SEED, as_of=AS_OF)
    return District(path, manifest)


# -- manifest and determinism -------------------------------------------------------------------------


def test_manifest_counts_for_seed(district: District) -> None:
    manifest = district.manifest
    counts = {name: entry["records"] for name, entry in manifest["collections"].items()}
    assert counts == {
        "districts": 1,
        "schools": 3,
        "terms": 6,
        "courses": 176,
        "sections": 210,
        "users": 1225,
    }
    roles = collections.Counter(role for user in district.users for role in user["roles"])
    assert roles == {"student": 600, "contact": 578, "teacher": 36, "staff": 10, "district_admin": 2}
    assert (
        sum(len(section["students"]) for section in district.sections) == 3899 + 1
    )  # + one dangling student id
    assert manifest["source"] == "sample"
    assert manifest["api_version"] == "v3.0"
    assert manifest["started_at"] == manifest["finished_at"] == AS_OF
    assert manifest["generator"] == {"students": STUDENTS, "seed": SEED}
    assert manifest["district"] == {
        "id": district.records["districts"][0]["id"],
        "name": district.records["districts"][0]["name"],
    }
    assert json.loads((district.path / "manifest.json").read_bytes()) == manifest


def test_same_seed_gives_identical_bytes(district: District, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_district(again, students=STUDENTS, seed=SEED, as_of=AS_OF)
    files = sorted(path.name for path in district.path.iterdir())
    assert files == sorted(path.name for path in again.iterdir())
    assert len(files) == 2 * len(COLLECTIONS) + 1  # the JSONL, the columnar copy, the manifest
    for name in files:
        assert (district.path / name).read_bytes() == (again / name).read_bytes(), name


def test_another_seed_gives_another_district(district: District, tmp_path: Path) -> None:
    other = tmp_path / "other"
    generate_district(other, students=STUDENTS, seed=SEED + 1, as_of=AS_OF)
    assert (other / "users.jsonl").read_bytes() != (district.path / "users.jsonl").read_bytes()


def test_existing_destination_is_refused_untouched(tmp_path: Path) -> None:
    dest = tmp_path / "taken"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match=re.escape(str(dest))):
        generate_district(dest, students=100, seed=1)
    assert [path.name for path in dest.iterdir()] == ["keep.txt"]
    generate_district(dest, students=100, seed=1, replace=True)
    assert Snapshot.open(dest).manifest["generator"] == {"students": 100, "seed": 1}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"students": 10, "seed": 1}, "at least"),
        ({"students": 100, "seed": -1}, "seed"),
        ({"students": 100, "seed": 1, "as_of": "2026-09-01"}, "as_of"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        generate_district(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_progress_is_reported(tmp_path: Path) -> None:
    messages: list[str] = []
    generate_district(tmp_path / "p", students=100, seed=1, progress=messages.append)
    assert any(message.startswith("users: ") for message in messages)
    assert messages[-1] == f"wrote {tmp_path / 'p'}"


def test_proportions_scale_with_students(tmp_path: Path) -> None:
    manifest = generate_district(tmp_path / "big", students=20_000, seed=3)
    users = list(Snapshot.open(tmp_path / "big").iter_records("users"))
    roles = collections.Counter(role for user in users for role in user["roles"])
    counts = manifest["collections"]
    assert roles["student"] == 20_000
    assert 18_000 <= roles["contact"] <= 22_000
    assert 1_100 <= roles["teacher"] <= 1_300
    assert roles["staff"] == 300 + 1  # + the teacher who is also staff
    assert roles["district_admin"] == 2
    assert counts["schools"]["records"] == 40
    assert 4_500 <= counts["sections"]["records"] <= 5_800


# -- shapes -------------------------------------------------------------------------------------------


def test_ids_are_object_ids_unique_and_ascending(district: District) -> None:
    seen: set[str] = set()
    for name in COLLECTIONS:
        ids = [record["id"] for record in district.records[name]]
        assert all(ID.fullmatch(record_id) for record_id in ids), name
        assert ids == sorted(ids), name
        assert all(int(record_id[:8], 16) <= AS_OF_EPOCH for record_id in ids), name
        assert seen.isdisjoint(ids)
        seen.update(ids)
    for user in district.users:
        created = int(user["id"][:8], 16)
        assert user["created"].startswith(_utc(created)[:19])


def _utc(epoch: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def test_field_sets_and_formats(district: District) -> None:
    (record,) = district.records["districts"]
    assert list(record) == [
        "login_methods", "sis_type", "state", "error", "last_sync", "portal_url",
        "district_contact", "name", "launch_date", "id",
    ]  # fmt: skip
    assert (record["sis_type"], record["state"], record["error"]) == ("sftp", "success", "")
    assert DATE.fullmatch(record["launch_date"])
    assert TIMESTAMP.fullmatch(record["last_sync"])
    district_id = record["id"]
    for school in district.records["schools"]:
        assert set(school) == {
            "id", "district", "name", "sis_id", "school_number", "state_id", "nces_id", "low_grade",
            "high_grade", "phone", "principal", "location", "created", "last_modified", "ext",
        }  # fmt: skip
        assert {school["low_grade"], school["high_grade"]} <= GRADES
        assert set(school["location"]) == {"address", "city", "state", "zip"}
        assert TIMESTAMP.fullmatch(school["created"])
        assert TIMESTAMP.fullmatch(school["last_modified"])
    for term in district.records["terms"]:
        assert list(term) == ["district", "end_date", "name", "start_date", "id"]
        assert DATE.fullmatch(term["start_date"])
        assert term["start_date"] < term["end_date"]
    for course in district.records["courses"]:
        assert list(course) == ["district", "name", "number", "id"]
    for section in district.sections:
        assert set(section) - {"course", "term_id"} == {
            "id", "district", "school", "name", "sis_id", "subject", "grade", "period", "section_number",
            "students", "teacher", "teachers", "created", "last_modified", "ext",
        }  # fmt: skip
        assert section["subject"] in SUBJECTS
        assert section["grade"] in GRADES
        assert section["students"]
        assert section["teachers"][0] == section["teacher"]
        assert len(set(section["teachers"])) == len(section["teachers"]) <= 4
        assert section["students"] == sorted(section["students"])
    for user in district.users:
        assert user["district"] == district_id
        assert set(user) - {"email"} == {"id", "district", "name", "created", "last_modified", "roles"}
        assert TIMESTAMP.fullmatch(user["created"])
        assert user["created"] <= user["last_modified"]
    for user in district.role("student"):
        student = user["roles"]["student"]
        assert set(student) - {"email"} == {
            "school", "schools", "enrollments", "sis_id", "student_number", "state_id", "grade",
            "graduation_year", "dob", "gender", "race", "hispanic_ethnicity", "ell_status", "credentials",
            "location", "ext",
        }  # fmt: skip
        assert student.get("email") == user.get("email")
        assert student["enrollments"] == []
        assert student["schools"] == [student["school"]]
        assert DOB.fullmatch(student["dob"])
        assert student["grade"] in GRADES
        assert set(user["name"]) == {"first", "middle", "last"}
    for user in district.role("contact"):
        assert set(user["roles"]) == {"contact"}
        assert set(user["roles"]["contact"]) == {
            "sis_id", "phone", "phone_type", "student_relationships", "legacy_id",
        }  # fmt: skip
        assert user["name"].get("first", "") == ""
        assert " " in user["name"]["last"]
    for user in district.role("district_admin"):
        assert set(user["roles"]["district_admin"]) == {"title"}


def test_section_names_are_course_teacher_period(district: District) -> None:
    courses = {course["id"]: course["name"] for course in district.records["courses"]}
    checked = 0
    for section in district.sections:
        if section.get("course") in courses:
            last = district.by_id[section["teacher"]]["name"]["last"]
            assert section["name"] == f"{courses[section['course']]} - {last} - {section['period']}"
            checked += 1
    assert checked > 200


def test_contacts_name_students_of_their_family(district: District) -> None:
    for user in district.role("contact"):
        for link in user["roles"]["contact"]["student_relationships"]:
            assert set(link) == {"student", "relationship", "type"}
            if link["student"] in district.by_id:
                assert "student" in district.by_id[link["student"]]["roles"]


def test_record_shapes_match_recorded_clever_data(district: District) -> None:
    if not RECORDED.is_dir():
        pytest.skip(f"recorded Clever data not available at {RECORDED} (only on the project's dev machine)")

    def recorded(name: str) -> list[dict[str, Any]]:
        return [item["data"] for item in json.loads((RECORDED / f"{name}.json").read_bytes())["data"]]

    # Fields our generated records add over the (partial) recording, all documented Clever fields.
    documented_extra = {"schools": {"nces_id"}, "student": {"ell_status"}}
    for name in ("districts", "schools", "terms", "courses", "sections"):
        real = set().union(*(set(record) for record in recorded(name)))
        generated = set().union(*(set(record) for record in district.records[name]))
        assert generated - real == documented_extra.get(name, set()), name
        assert real <= generated, name
    real_users = recorded("users")
    for role in ("student", "teacher", "contact"):
        real = set().union(*(set(u["roles"][role]) for u in real_users if role in u["roles"]))
        generated = set().union(*(set(u["roles"][role]) for u in district.role(role)))
        assert generated - real == documented_extra.get(role, set()), role
        assert real <= generated, role
    assert set().union(*(set(u) for u in real_users)) == set().union(*(set(u) for u in district.users))


# -- quirks -------------------------------------------------------------------------------------------


def test_quirk_several_schools_and_bands(district: District) -> None:
    schools = district.records["schools"]
    assert len(schools) == 3
    assert {(school["low_grade"], school["high_grade"]) for school in schools} >= {("6", "8"), ("9", "12")}
    assert len({school["name"] for school in schools}) == 3


def test_quirk_semester_year_and_duplicate_term_names(district: District) -> None:
    terms = district.records["terms"]
    assert {term["name"] for term in terms} == {"Semester 1", "Semester 2", "Year"}
    years = [term for term in terms if term["name"] == "Year"]
    assert len(years) == 2
    assert years[0]["start_date"] != years[1]["start_date"]
    used = {section.get("term_id") for section in district.sections}
    assert {term["id"] for term in terms} & used


def test_quirk_sections_without_term_or_course(district: District) -> None:
    sections = district.sections
    assert any("term_id" not in section for section in sections)
    assert any(section.get("term_id") == "" for section in sections)
    assert any("course" not in section for section in sections)
    assert any(section.get("course") == "" for section in sections)


def test_quirk_dangling_term_course_and_student(district: District) -> None:
    terms = {term["id"] for term in district.records["terms"]}
    courses = {course["id"] for course in district.records["courses"]}
    dangling_terms = [s for s in district.sections if s.get("term_id") and s["term_id"] not in terms]
    dangling_courses = [s for s in district.sections if s.get("course") and s["course"] not in courses]
    assert len(dangling_terms) == 1
    assert ID.fullmatch(dangling_terms[0]["term_id"])
    assert len(dangling_courses) == 1
    assert ID.fullmatch(dangling_courses[0]["course"])
    missing = [
        (s["id"], sid) for s in district.sections for sid in s["students"] if sid not in district.by_id
    ]
    assert len(missing) == 1


def test_quirk_co_teachers(district: District) -> None:
    sizes = collections.Counter(len(section["teachers"]) for section in district.sections)
    assert set(sizes) == {1, 2, 3, 4}
    for section in district.sections:
        assert section["teachers"][0] == section["teacher"]
        assert all("teacher" in district.by_id[teacher]["roles"] for teacher in section["teachers"])


def test_quirk_students_in_a_section_of_another_school(district: District) -> None:
    crossing = [
        section
        for section in district.sections
        for student in section["students"]
        if student in district.by_id
        and district.by_id[student]["roles"]["student"]["school"] != section["school"]
    ]
    assert crossing


def test_quirk_contacts(district: District) -> None:
    contacts = list(district.role("contact"))
    types = collections.Counter(
        link["type"] for user in contacts for link in user["roles"]["contact"]["student_relationships"]
    )
    assert {"Parent/Guardian", "Emergency", "Family"} <= set(types)
    assert any(len(user["roles"]["contact"]["student_relationships"]) > 1 for user in contacts)
    dangling = [
        link["student"]
        for user in contacts
        for link in user["roles"]["contact"]["student_relationships"]
        if link["student"] not in district.by_id
    ]
    assert len(dangling) == 1
    assert any(user["roles"]["contact"]["sis_id"] == "" for user in contacts)
    linked = {
        link["student"] for user in contacts for link in user["roles"]["contact"]["student_relationships"]
    }
    assert all(user["id"] in linked for user in district.role("student"))


def test_quirk_staff_admins_and_a_teacher_who_is_also_staff(district: District) -> None:
    assert len(list(district.role("staff"))) == 10  # 9 staff + the teacher who is also staff
    assert len(list(district.role("district_admin"))) == 2
    both = [user for user in district.users if {"teacher", "staff"} <= set(user["roles"])]
    assert len(both) == 1


def test_quirk_names(district: District) -> None:
    names = [" ".join(part for part in user["name"].values()) for user in district.users]
    text = "\n".join(names)
    for needle in ("ñ", "ü", "Nguyễn", "王", "O'Brien", ", Jr.", '"Sunny"'):
        assert needle in text, needle
    assert any(char in "áéíóú" for char in text)
    control = [name for name in names if re.search(r"[\x00-\x1f]", name)]
    assert len(control) == 1
    assert "\t" in control[0]


def test_quirk_emails(district: District) -> None:
    emails = [user.get("email") for user in district.users]
    assert any("email" not in user for user in district.users)
    assert "" in emails
    counts = collections.Counter(email for email in emails if email)
    assert [count for count in counts.values() if count > 1] == [2]
    assert len([email for email in emails if email and "@" not in email]) == 1


def test_quirk_student_usernames(district: District) -> None:
    students = [user["roles"]["student"] for user in district.role("student")]
    usernames = collections.Counter(s["credentials"].get("district_username") for s in students)
    assert [count for name, count in usernames.items() if name and count > 1] == [2]
    lost = [
        user
        for user in district.role("student")
        if not user.get("email") and not user["roles"]["student"]["credentials"].get("district_username")
    ]
    assert len(lost) == 1


# -- command line -------------------------------------------------------------------------------------


def test_cli_json_and_existing_directory(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    runner = CliRunner()
    args = ["sample", "--students", "100", "--seed", "5", "--out", str(out), "--json", "--quiet"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest == Snapshot.open(out).manifest
    assert manifest["generator"] == {"students": 100, "seed": 5}
    assert result.stderr == ""

    again = runner.invoke(main, args)
    assert again.exit_code == 2
    assert again.stdout == ""
    assert again.stderr.count("\n") == 1
    assert str(out) in again.stderr

    forced = runner.invoke(main, ["sample", "--students", "100", "--seed", "6", "--out", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert forced.stdout == ""  # data only on stdout: the summary is chatter, on stderr
    assert f"wrote {out}: " in forced.stderr
    assert "users:" in forced.stderr
    assert Snapshot.open(out).manifest["generator"]["seed"] == 6


def test_cli_quiet_prints_nothing_and_data_only_goes_to_stdout(tmp_path: Path) -> None:
    args = ["sample", "--students", "100", "--seed", "5", "--out", str(tmp_path / "q"), "--quiet"]
    quiet = CliRunner().invoke(main, args)
    assert quiet.exit_code == 0, quiet.output
    assert (quiet.stdout, quiet.stderr) == ("", "")
    loud = CliRunner().invoke(main, [*args[:-1], "--force"])
    assert loud.stdout == ""
    assert f"\nwrote {tmp_path / 'q'}: 1 districts, " in loud.stderr
