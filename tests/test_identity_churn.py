"""A person whose Clever id changes keeps their Canvas user: a few nights of sync against the local Canvas
double, Clever re-creating a student (tonight, or after weeks away), a stranger given a removed user's
username, an ambiguous match, and a merged teacher and staff member split by an email change.

Each test judges the Canvas model's state after the nights: who signs in with a login (``signs_in_as``),
which Canvas user (``canvas_user_id``: the same number is the same person, with their coursework) holds
the enrollments Clever gives the new id, and what Canvas said about each import.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from clever2sis.cli import main
from clever2sis.cli.review import summary_lines
from clever2sis.review.facts import open_build, review_facts
from clever2sis.sync.history import History
from clever2sis.sync.pipeline import RunResult
from tests.test_sync_nights import JANUARY, Nights, nights, run_json

DAY = dt.timedelta(days=1)
CLAIMED = "has already claimed"


def username(user: dict[str, Any]) -> str:
    role = next(role for role in user["roles"].values() if role.get("credentials"))
    return str(role["credentials"]["district_username"])


def user_record(district: Nights, user_id: str) -> dict[str, Any]:
    return next(u for u in district.records["users"] if u["id"] == user_id)


def sections_of(district: Nights, user_id: str) -> list[str]:
    return sorted(
        s["id"]
        for s in district.records["sections"]
        if user_id in s["students"] or user_id in s.get("teachers", [])
    )


def recreate(district: Nights, old_id: str, new_id: str) -> dict[str, Any]:
    """Clever gives user ``old_id`` the id ``new_id``, everything else the same; rosters follow."""
    user = user_record(district, old_id)
    user["id"] = new_id
    for section in district.records["sections"]:
        section["students"] = sorted(new_id if s == old_id else s for s in section["students"])
    return user


def come_back(district: Nights, user: dict[str, Any], new_id: str, sections: list[str]) -> dict[str, Any]:
    """A user who left comes back as ``new_id`` (a copy of their old record), in ``sections``."""
    returning = copy.deepcopy(user)
    returning["id"] = new_id
    district.records["users"].append(returning)
    for section in district.records["sections"]:
        if section["id"] in sections:
            section["students"] = sorted([*section["students"], new_id])
    return returning


def another_section(district: Nights, user: dict[str, Any], besides: list[str]) -> str:
    school = user["roles"]["student"]["school"]
    return sorted(
        s["id"] for s in district.records["sections"] if s["school"] == school and s["id"] not in besides
    )[0]


def canvas_messages(district: Nights) -> list[str]:
    return [message.message for record in district.model.imports for message in record.messages]


def findings_of(result: RunResult, kind: str) -> list[str]:
    assert result.run_dir is not None
    record = orjson.loads((result.run_dir / "build" / "build.json").read_bytes())
    return [item["message"] for item in record["findings"]["items"] if item["kind"] == kind]


def build_csv(result: RunResult, name: str) -> str | None:
    assert result.run_dir is not None
    path = result.run_dir / "build" / "csv" / name
    return path.read_text() if path.is_file() else None


def identities_carried(runs_dir: Path) -> list[int | None]:
    with History(runs_dir) as history:
        return [run["identities_carried"] for run in reversed(history.runs())]


def mark_coursework(district: Nights, sections: list[str]) -> None:
    for section in sections:
        course = district.model.section_course(section)
        assert course is not None
        district.model.mark_coursework(course)


# --- re-created tonight -------------------------------------------------------------------------------------


def test_a_student_clever_re_creates_signs_in_to_the_same_canvas_user_with_every_enrollment(
    tmp_path: Path,
) -> None:
    with nights(tmp_path) as district:
        first = district.night(JANUARY)
        student = district.students()[5]
        old_id, login = student["id"], username(student)
        person = district.model.canvas_user_id(old_id)
        kept = sections_of(district, old_id)
        mark_coursework(district, kept)
        new_id = "7c" + "0" * 21 + "1"
        user = recreate(district, old_id, new_id)
        added = another_section(district, user, kept)
        next(s for s in district.records["sections"] if s["id"] == added)["students"].append(new_id)
        churned = district.night(JANUARY + DAY)
        after = district.night(JANUARY + 2 * DAY)

    assert [first.exit_code, churned.exit_code, after.exit_code] == [0, 0, 0], (
        churned.message,
        after.message,
    )
    assert district.model.signs_in_as(login) == new_id
    assert person is not None
    assert district.model.canvas_user_id(new_id) == person
    assert district.model.user_status(old_id) is None  # the old id names no one: it was renamed
    for section in [*kept, added]:
        assert district.model.enrollment_state(section, new_id, "student") == "active", section
    assert district.model.coursework_events == []
    assert [m for m in canvas_messages(district) if CLAIMED in m] == []
    # Sent as a remaster with change_sis_id.csv; recorded in the JSON line, history, run.json and build.json.
    assert build_csv(churned, "change_sis_id.csv") == f"old_id,new_id,type\n{old_id},{new_id},user\n"
    assert churned.summary["applied"] == "remaster"
    assert churned.summary["identities_carried"] == 1
    assert run_json(churned)["remaster_reason"] == (
        "1 user(s) carried over to a new id (identity_changes = change_sis_id): a diff would send their old "
        "ids as removed"
    )
    assert run_json(churned)["identity_changes"]["carried"] == [
        {
            "old_id": old_id,
            "new_id": new_id,
            "keys": "login_id, sis_id, student_number, name",
            "removed_on": "2027-01-06T06:00:00Z",
            "via": "change_sis_id",
        }
    ]
    assert findings_of(churned, "identity_carried") == [
        f"user {new_id}: user_id '{new_id}' is Canvas user '{old_id}' (gone from Clever tonight; the same "
        "login_id, sis_id, student_number, name); carried over with change_sis_id, so the person keeps "
        "their Canvas account, enrollments and coursework"
    ]
    assert identities_carried(district.runs_dir) == [0, 1, 0]
    listed = CliRunner().invoke(main, ["history", "--runs-dir", str(district.runs_dir)])
    header, *lines = listed.stdout.splitlines()
    assert header.split("\t")[-2:] == ["flags", "observer_imports"]
    assert [line.split("\t")[-2] for line in lines] == [
        "-",
        "remaster identities-carried 1",
        "remaster",
    ]
    # review shows the carry-over: its facts and the terminal summary's line.
    assert churned.run_dir is not None
    facts = review_facts(open_build(churned.run_dir / "build"))
    assert facts["identities"]["carried"] == 1
    assert facts["identities"]["sis_id_changes"] == [{"old_id": old_id, "new_id": new_id}]
    assert "  identities: 1 carried over to a new id" in summary_lines(facts)
    assert "identities" not in review_facts(open_build(first.run_dir / "build"))  # type: ignore[operator]
    assert after.summary["applied"] == "diff"
    assert build_csv(after, "change_sis_id.csv") is None


def test_with_update_sis_id_if_login_claimed_the_login_is_re_pointed_instead(tmp_path: Path) -> None:
    with nights(tmp_path, identity_changes="update_sis_id_if_login_claimed") as district:
        district.night(JANUARY)
        student = district.students()[7]
        old_id, login = student["id"], username(student)
        person = district.model.canvas_user_id(old_id)
        kept = sections_of(district, old_id)
        new_id = "7c" + "0" * 21 + "2"
        recreate(district, old_id, new_id)
        churned = district.night(JANUARY + DAY)
        after = district.night(JANUARY + 2 * DAY)

    assert [churned.exit_code, after.exit_code] == [0, 0], (churned.message, after.message)
    form = district.canvas.posted_forms[1]
    assert form.get("update_sis_id_if_login_claimed") == "true"
    assert form.get("diffing_remaster_data_set") == "true"
    assert district.canvas.posted_forms[2].get("update_sis_id_if_login_claimed") is None
    assert build_csv(churned, "change_sis_id.csv") is None
    assert district.model.signs_in_as(login) == new_id
    assert district.model.canvas_user_id(new_id) == person
    for section in kept:
        assert district.model.enrollment_state(section, new_id, "student") == "active", section
    assert [m for m in canvas_messages(district) if CLAIMED in m] == []
    assert churned.summary["identities_carried"] == 1
    assert run_json(churned)["identity_changes"]["carried"][0]["via"] == "update_sis_id_if_login_claimed"


# --- back after weeks, and a stranger -------------------------------------------------------------------------


def test_a_student_who_left_weeks_ago_and_returns_with_a_new_id_is_carried_over(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        district.night(JANUARY)
        student = copy.deepcopy(district.students()[9])
        old_id, login = student["id"], username(student)
        person = district.model.canvas_user_id(old_id)
        sections = sections_of(district, old_id)
        district.leave(old_id)
        left = district.night(JANUARY + DAY)
        suspended = district.model.user_status(old_id)
        new_id = "7c" + "0" * 21 + "3"
        come_back(district, student, new_id, sections[:3])
        back = district.night(JANUARY + 9 * DAY)

    assert [left.exit_code, back.exit_code] == [0, 0], back.message
    assert suspended == "suspended"
    assert district.model.signs_in_as(login) == new_id
    assert district.model.canvas_user_id(new_id) == person
    for section in sections[:3]:
        assert district.model.enrollment_state(section, new_id, "student") == "active", section
    for section in sections[3:]:
        assert district.model.enrollment_state(section, new_id, "student") == "inactive", section
    assert [m for m in canvas_messages(district) if CLAIMED in m] == []
    assert findings_of(back, "identity_carried") == [
        f"user {new_id}: user_id '{new_id}' is Canvas user '{old_id}' (removed 2027-01-06T06:00:00Z; the same "
        "login_id, sis_id, student_number, name); carried over with change_sis_id, so the person keeps "
        "their Canvas account, enrollments and coursework"
    ]
    assert back.run_dir is not None
    ledger = (back.run_dir / "state" / "removed_users.csv").read_text()
    assert old_id not in ledger
    assert new_id not in ledger


def test_a_stranger_given_a_removed_users_username_is_not_carried_and_signs_in_by_email(
    tmp_path: Path,
) -> None:
    with nights(tmp_path) as district:
        district.night(JANUARY)
        leaver = copy.deepcopy(district.students()[11])
        old_id, login = leaver["id"], username(leaver)
        person = district.model.canvas_user_id(old_id)
        sections = sections_of(district, old_id)
        district.leave(old_id)
        district.night(JANUARY + DAY)
        stranger = copy.deepcopy(leaver)
        new_id = "7c" + "0" * 21 + "4"
        stranger["id"] = new_id
        stranger["name"] = {"first": "Noor", "last": "Haddad", "middle": ""}
        stranger["email"] = "noor.haddad@students.example.org"
        role = stranger["roles"]["student"]
        role["email"] = stranger["email"]
        role["sis_id"] = role["student_number"] = "855500001"
        role["state_id"] = "7555000001"
        come_back(district, stranger, new_id, sections[:2])
        joined = district.night(JANUARY + 9 * DAY)

    assert joined.exit_code == 0, joined.message
    assert joined.summary["identities_carried"] == 0
    assert findings_of(joined, "identity_carried") == []
    assert findings_of(joined, "login_claimed_by_removed_user") == [
        f"user {new_id}: login_id '{login}' (district_username) is still held in Canvas by removed user "
        f"{old_id} (removed 2027-01-06T06:00:00Z), who is not carried over to this user; sent with login_id "
        "'noor.haddad@students.example.org' instead"
    ]
    users = build_csv(joined, "users.csv")
    assert users is not None
    assert f"{new_id},noor.haddad@students.example.org,Noor,Haddad," in users
    assert district.model.signs_in_as("noor.haddad@students.example.org") == new_id
    assert district.model.canvas_user_id(new_id) not in (None, person)
    for section in sections[:2]:
        assert district.model.enrollment_state(section, new_id, "student") == "active", section
    # The removed student's account is as it was: suspended, with its login and enrollments.
    assert district.model.canvas_user_id(old_id) == person
    assert district.model.user_status(old_id) == "suspended"
    assert district.model.login_holders(login) == [(old_id, "suspended")]
    assert {district.model.enrollment_state(s, old_id, "student") for s in sections} == {"inactive"}
    assert [m for m in canvas_messages(district) if CLAIMED in m] == []


# --- ambiguous, and a merged user split ---------------------------------------------------------------------


def ambiguous_return(district: Nights) -> tuple[str, str, str, list[str]]:
    """A student leaves and two new users come in their place, one with the old username, one with the
    old SIS id and number (neither match is one to one); returns the old id, the two new ids and the old
    student's sections (the first new user is in the first two, the second in the next two)."""
    gone = copy.deepcopy(district.students()[13])
    old_id = gone["id"]
    sections = sections_of(district, old_id)
    district.leave(old_id)
    by_login, by_sis = copy.deepcopy(gone), copy.deepcopy(gone)
    first_id, second_id = "7c" + "0" * 21 + "5", "7c" + "0" * 21 + "6"
    by_login["id"] = first_id
    by_login["email"] = by_login["roles"]["student"]["email"] = "second.account@students.example.org"
    by_login["roles"]["student"]["sis_id"] = by_login["roles"]["student"]["student_number"] = "855500002"
    by_sis["id"] = second_id
    by_sis["name"] = {"first": "Ravi", "last": "Iyer", "middle": ""}
    by_sis["email"] = by_sis["roles"]["student"]["email"] = "ravi.iyer@students.example.org"
    by_sis["roles"]["student"]["credentials"] = {"district_username": "ravi.iyer"}
    come_back(district, by_login, first_id, sections[:2])
    come_back(district, by_sis, second_id, sections[2:4])
    return old_id, first_id, second_id, sections


def test_an_ambiguous_match_is_a_finding_and_nobody_is_carried_over(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        district.night(JANUARY)
        login = username(district.students()[13])
        old_id, first_id, second_id, sections = ambiguous_return(district)
        night = district.night(JANUARY + DAY)

    assert night.exit_code == 0, night.message
    assert night.summary["identities_carried"] == 0
    assert findings_of(night, "identity_ambiguous") == [
        f"user {first_id}: user_id '{first_id}' shares login_id with Canvas user(s) {old_id}, which Clever "
        "no longer has, but not one to one; not carried over, so Canvas makes a new user",
        f"user {second_id}: user_id '{second_id}' shares sis_id, student_number with Canvas user(s) {old_id}, "
        "which Clever no longer has, but not one to one; not carried over, so Canvas makes a new user",
    ]
    assert len(findings_of(night, "login_claimed_by_removed_user")) == 1
    assert district.model.user_status(old_id) == "suspended"
    assert district.model.signs_in_as(login) is None
    assert district.model.signs_in_as("second.account@students.example.org") == first_id
    assert district.model.signs_in_as("ravi.iyer") == second_id
    assert district.model.enrollment_state(sections[0], first_id, "student") == "active"
    assert district.model.enrollment_state(sections[2], second_id, "student") == "active"
    assert [m for m in canvas_messages(district) if CLAIMED in m] == []


def test_an_email_change_that_splits_a_merged_teacher_and_staff_member_keeps_the_teachers_account(
    tmp_path: Path,
) -> None:
    with nights(tmp_path) as district:
        district.night(JANUARY)
        merged = next(u for u in district.records["users"] if {"teacher", "staff"} <= set(u["roles"]))
        old_id, login = merged["id"], username(merged)
        person = district.model.canvas_user_id(old_id)
        teaching = sections_of(district, old_id)
        assert teaching
        mark_coursework(district, teaching)
        # The staff record's email changes: Clever no longer merges it, and makes two users.
        teacher, staff = copy.deepcopy(merged), copy.deepcopy(merged)
        teacher_id, staff_id = "7c" + "0" * 21 + "7", "7c" + "0" * 21 + "8"
        teacher["id"] = teacher_id
        del teacher["roles"]["staff"]
        staff["id"] = staff_id
        del staff["roles"]["teacher"]
        staff["email"] = "athletics.director@example.org"
        staff["roles"]["staff"]["credentials"] = {"district_username": "athletics.director"}
        district.records["users"] = [u for u in district.records["users"] if u["id"] != old_id]
        district.records["users"] += [teacher, staff]
        for section in district.records["sections"]:
            section["teachers"] = [teacher_id if t == old_id else t for t in section.get("teachers", [])]
            if section.get("teacher") == old_id:
                section["teacher"] = teacher_id
        split = district.night(JANUARY + DAY)

    assert split.exit_code == 0, split.message
    assert split.summary["identities_carried"] == 1
    assert (
        run_json(split)["identity_changes"]["carried"][0]["keys"] == "login_id, sis_id, teacher_number, name"
    )
    assert district.model.signs_in_as(login) == teacher_id
    assert district.model.canvas_user_id(teacher_id) == person
    for section in teaching:
        assert district.model.enrollment_state(section, teacher_id, "teacher") == "active", section
    assert district.model.signs_in_as("athletics.director") == staff_id
    assert district.model.canvas_user_id(staff_id) not in (None, person)
    assert district.model.coursework_events == []
    assert [m for m in canvas_messages(district) if CLAIMED in m] == []
