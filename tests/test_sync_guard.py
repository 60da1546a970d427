"""The guard over real nights, judged on the Canvas double's state: a school whose SIS export broke is held
exactly as Canvas had it while every other school is applied, and recovers when its data returns; a small
school is not held for a small loss; too many held schools, or a renumbering of every user_id, stop the
night; ``--allow-large-change SCHOOL_ID`` releases one school."""

from __future__ import annotations

import copy
import csv
import datetime as dt
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from clever2sis.cli import main
from clever2sis.config import GuardSettings
from clever2sis.sync.history import History
from tests.school_year import VANISHED, break_school, without_users
from tests.test_sync_nights import JANUARY, Nights, nights, run_json, user_status

DAY = dt.timedelta(days=1)
ROLLED_OVER = dt.datetime(2027, 1, 18, 6, 0, tzinfo=dt.UTC)  # the Monday after the first semester ended


def schools(district: Nights) -> list[str]:
    return sorted(s["id"] for s in district.records["schools"])


def students_only_in(district: Nights, school: str, *, outside: bool = False) -> list[str]:
    """Students whose sections are all in ``school`` (``outside``: none of them is)."""
    placed: dict[str, set[str]] = {}
    for section in district.records["sections"]:
        for student in section["students"]:
            placed.setdefault(student, set()).add(section["school"])
    return sorted(s for s, where in placed.items() if (school not in where if outside else where == {school}))


def break_rosters(district: Nights, school: str) -> None:
    """The school's SIS export broke: Clever lists its sections with nobody in them."""
    for section in district.records["sections"]:
        if section["school"] == school:
            section["students"] = []


def clever_sis_id(roles: dict[str, Any]) -> str | None:
    """The SIS id Clever gives a person: their student's, teacher's or staff member's, in that order."""
    found = [
        (roles.get("student") or {}).get("sis_id"),
        (roles.get("teacher") or {}).get("sis_id"),
        (roles.get("staff") or {}).get("staff_id"),
    ]
    return next((value for value in found if value), None)


def held_of(result: Any) -> list[tuple[str, str]]:
    return [(s["account_id"], s["since"]) for s in result.summary["held_schools"] or []]


def test_a_school_whose_roster_empties_is_held_as_canvas_had_it_and_recovers(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        first = district.night(JANUARY)
        school = schools(district)[0]
        before = district.model.school_state(school)
        sound = copy.deepcopy(district.records["sections"])
        leaver = students_only_in(district, school, outside=True)[0]
        district.leave(leaver)
        sound = [{**s, "students": [p for p in s["students"] if p != leaver]} for s in sound]
        break_rosters(district, school)
        broken = district.night(JANUARY + DAY)
        held_state = district.model.school_state(school)
        still = district.night(JANUARY + 2 * DAY)
        still_state = district.model.school_state(school)
        district.records["sections"] = sound
        recovered = district.night(JANUARY + 3 * DAY)
        after = district.model.school_state(school)
        listed = CliRunner().invoke(main, ["history", "--runs-dir", str(district.runs_dir)])

    assert first.exit_code == 0, first.message
    assert [broken.exit_code, still.exit_code, recovered.exit_code] == [56, 56, 0], (
        broken.message,
        recovered.message,
    )
    assert [broken.outcome, still.outcome, recovered.outcome] == ["schools_held", "schools_held", "imported"]
    assert [broken.summary["guard"], still.summary["guard"], recovered.summary["guard"]] == [
        "held",
        "held",
        "passed",
    ]
    # Held: Canvas holds the school exactly as before, on both nights; the first night of the hold stays.
    assert held_state == before
    assert still_state == before
    since = broken.summary["started"]
    assert held_of(broken) == held_of(still) == [(school, since)]
    assert held_of(recovered) == []
    name = next(s["name"] for s in district.records["schools"] if s["id"] == school)
    assert (
        f"school {name} ({school}) held since {since}: every one of its students vanished" in broken.message
    )
    assert f"release with --allow-large-change {school}" in broken.message
    # Every other school was applied: the leaver of another school is suspended from the held night on.
    assert user_status(district, leaver) == "suspended"
    assert (
        district.model.import_record(district.model.imports[1].id).changed("user")[(leaver,)] == "suspended"
    )
    # The data came back: the school is as it was, nothing of it was ever removed.
    assert after == before
    details = run_json(broken)["guard_details"]
    (held,) = details["held"]
    assert held["losses"][0]["measure"] == "students"
    assert held["losses"][0]["lost"] == held["losses"][0]["before"] > 0
    assert listed.exit_code == 0, listed.output
    header, *lines = listed.stdout.splitlines()
    assert header.split("\t")[8] == "held"
    assert f"held {school} (since {since[:10]})" in lines[1]
    assert f"held {school} (since {since[:10]})" in lines[2]
    assert "held -" in lines[0]
    assert (Path(str(broken.run_dir)) / "build" / "sync" / "held" / "enrollments.csv").is_file()


def test_a_school_held_after_a_rollover_recovers_when_its_data_returns(tmp_path: Path) -> None:
    """A school held after a rollover keeps its rows of the ended term as Canvas has them (the term row
    itself is carried); once its data returns those rows are not counted as lost, and the hold ends."""
    with nights(tmp_path) as district:
        first = district.night(JANUARY)
        ended = district.district.ended_term_ids
        in_ended = [s["school"] for s in district.records["sections"] if s.get("term_id") in ended]
        school = max(schools(district), key=lambda s: (in_ended.count(s), s))
        district.records["sections"] = [
            s for s in district.records["sections"] if s.get("term_id") not in ended
        ]
        district.records["terms"] = [t for t in district.records["terms"] if t["id"] not in ended]
        rolled = district.night(ROLLED_OVER)
        before = district.model.school_state(school)
        sound = copy.deepcopy(district.records["sections"])
        break_rosters(district, school)
        broken = district.night(ROLLED_OVER + DAY)
        district.records["sections"] = sound
        recovered = district.night(ROLLED_OVER + 2 * DAY)

    assert in_ended.count(school) > 3  # more than school_min_loss's 3 sections: enough to hold it
    assert [first.exit_code, rolled.exit_code, broken.exit_code, recovered.exit_code] == [0, 0, 56, 0], (
        recovered.message
    )
    assert [s for s, _since in held_of(broken)] == [school]
    assert (recovered.summary["guard"], held_of(recovered)) == ("passed", [])
    assert district.model.school_state(school) == before


def canvas_users(district: Nights, *user_ids: str) -> dict[str, Any]:
    """What Canvas holds of each user: the state of their login, every login, their email."""
    model = district.model
    return {u: (model.user_status(u), model.logins(u), model.email(u)) for u in user_ids}


def test_the_staff_of_a_vanished_school_keep_their_canvas_users_while_it_is_held(tmp_path: Path) -> None:
    """A school vanishes from Clever with the people only in it, its staff (who have no enrollment) too:
    Canvas keeps them as they were while the school is held, and once its data returns holds everyone as
    Clever says. A staff member of another school who left meanwhile is removed as usual."""
    with nights(tmp_path) as district:
        school = schools(district)[-1]
        other = schools(district)[0]
        staff = sorted(
            (u for u in district.records["users"] if set(u["roles"]) == {"staff"}), key=lambda u: u["id"]
        )
        only_there, also_elsewhere, leaver, stays = (u["id"] for u in staff[:4])
        for user, placed in zip(staff, ([school], [school, other], [other], [other]), strict=False):
            user["roles"]["staff"]["schools"] = sorted(placed)
        first = district.night(JANUARY)
        before = canvas_users(district, only_there, also_elsewhere)
        school_before = district.model.school_state(school)
        sound = copy.deepcopy(district.records)
        # Tonight the school's export is lost: the school, its sections and the people only in it (its
        # staff member too); a staff member of it and of another school is lost with it, and a staff
        # member of the other school really left.
        break_school(district.records, school, VANISHED)
        without_users(district.records, {also_elsewhere, leaver})
        assert only_there not in {u["id"] for u in district.records["users"]}
        broken = district.night(JANUARY + DAY)
        held_users = canvas_users(district, only_there, also_elsewhere)
        left_status = user_status(district, leaver)
        still = district.night(JANUARY + 2 * DAY)
        still_users = canvas_users(district, only_there, also_elsewhere)
        school_held = district.model.school_state(school)
        # The school's data returns; the staff member of both schools had really left.
        district.records = sound
        without_users(district.records, {also_elsewhere, leaver})
        recovered = district.night(JANUARY + 3 * DAY)

    assert [first.exit_code, broken.exit_code, still.exit_code, recovered.exit_code] == [0, 56, 56, 0], (
        broken.message,
        recovered.message,
    )
    assert [s for s, _since in held_of(broken)] == [school]
    assert before[only_there][0] == before[also_elsewhere][0] == "active"
    # Held: both staff members exactly as Canvas had them, on both nights; the school too.
    assert held_users == before
    assert still_users == before
    assert school_held == school_before
    held_rows = Path(str(broken.run_dir)) / "build" / "sync" / "held" / "users.csv"
    with held_rows.open(newline="", encoding="utf-8") as handle:
        assert {only_there, also_elsewhere} <= {row["user_id"] for row in csv.DictReader(handle)}
    # Every other school was applied: its staff member who left was suspended on the first held night.
    assert left_status == "suspended"
    # Back: Canvas holds every staff member as Clever says.
    assert canvas_users(district, only_there) == {only_there: before[only_there]}
    assert user_status(district, also_elsewhere) == "suspended"
    assert user_status(district, leaver) == "suspended"
    assert user_status(district, stays) == "active"
    assert district.model.school_state(school) == school_before


def test_a_small_school_is_not_held_for_a_small_loss(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        big = schools(district)[0]
        template = next(s for s in district.records["schools"] if s["id"] == big)
        small = {**copy.deepcopy(template), "id": "5c" + "0" * 22, "name": "Little Creek School"}
        district.records["schools"].append(small)
        model = next(
            s
            for s in sorted(district.records["sections"], key=lambda s: s["id"])
            if s["school"] == big and s.get("term_id") and len(s["students"]) >= 12 and s.get("teacher")
        )
        section = {**copy.deepcopy(model), "id": "5d" + "0" * 22, "school": small["id"]}
        section["students"] = sorted(model["students"])[:12]
        district.records["sections"].append(section)
        first = district.night(JANUARY)
        dropped = section["students"][:2]
        section["students"] = section["students"][2:]
        second = district.night(JANUARY + DAY)

    assert [first.exit_code, second.exit_code] == [0, 0], second.message
    assert second.summary["guard"] == "passed"
    states = {
        view.user_id: view.state
        for view in district.model.enrollment_views()
        if view.section_id == section["id"] and view.role == "student"
    }
    assert len(states) == 12
    assert {states[s] for s in dropped} == {"inactive"}
    assert sorted(s for s, state in states.items() if state == "active") == section["students"]


def test_too_many_held_schools_stop_the_whole_night(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        district.night(JANUARY)
        before = [district.model.school_state(s) for s in schools(district)]
        for school in schools(district)[:2]:
            break_rosters(district, school)
        stopped = district.night(JANUARY + DAY)

    assert stopped.exit_code == 51, stopped.message
    assert stopped.outcome == "guard_stopped"
    assert "2 of 3 schools would be held (66.7%, limit 25%): too many for one night" in stopped.message
    assert len(district.canvas.posted_forms) == 1
    assert [district.model.school_state(s) for s in schools(district)] == before


def test_a_share_of_held_schools_that_stops_the_district_is_a_setting(tmp_path: Path) -> None:
    with nights(tmp_path, guard=GuardSettings(max_held_schools_percent=70)) as district:
        district.night(JANUARY)
        for school in schools(district)[:2]:
            break_rosters(district, school)
        held = district.night(JANUARY + DAY)

    assert held.exit_code == 56, held.message
    assert [s for s, _since in held_of(held)] == schools(district)[:2]


def test_a_renumbering_of_every_user_id_stops_the_night(tmp_path: Path) -> None:
    """With identity changes off, the renumbering is seen as users' ids changing (paired by Clever id)."""
    with nights(tmp_path, identity_changes="off") as district:
        first = district.night(JANUARY)
        states = district.model.user_states()
        district.build = {"ids": {"user_id": "{{ user.sis_id }}"}}
        stopped = district.night(JANUARY + DAY)

    assert first.exit_code == 0, first.message
    assert stopped.exit_code == 51, stopped.message
    message = stopped.message
    assert "users.csv user_id changed for " in message
    examples = message.split("users.csv user_id changed for ", 1)[1].split("; e.g. ", 1)[1].split(";")[0]
    pairs = [pair.split(" -> ") for pair in examples.split(", ")[:3]]
    assert len(pairs) == 3
    # Each example is one person: their Clever id before, their SIS id tonight (a staff member's is the
    # staff_id Clever gives them).
    sis_ids = {u["id"]: clever_sis_id(u["roles"]) for u in district.records["users"]}
    assert all(sis_ids[old] == new for old, new in pairs), pairs
    assert len(district.canvas.posted_forms) == 1
    assert district.model.user_states() == states


def test_a_renumbering_carried_over_person_by_person_stops_the_night(tmp_path: Path) -> None:
    """By default the sync matches each renumbered person to their Canvas user (same login): so many
    carry-overs in one night stop it too."""
    with nights(tmp_path) as district:
        district.night(JANUARY)
        states = district.model.user_states()
        district.build = {"ids": {"user_id": "{{ user.sis_id }}"}}
        stopped = district.night(JANUARY + DAY)

    assert stopped.exit_code == 51, stopped.message
    carried = stopped.summary["identities_carried"]
    assert carried > 25
    assert f"{carried} people carried over to a new Clever id tonight (limit 25)" in stopped.message
    assert len(district.canvas.posted_forms) == 1
    assert district.model.user_states() == states


def test_allow_large_change_with_a_school_id_releases_that_school(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        district.night(JANUARY)
        school = schools(district)[-1]
        only = students_only_in(district, school)
        break_rosters(district, school)
        held = district.night(JANUARY + DAY)
        sync_args = ["--allow-large-change", "no-such-school", "--allow-large-change", school]
        released = district.night(JANUARY + 2 * DAY, release=tuple(sync_args[1::2]))

    assert [held.exit_code, released.exit_code] == [56, 0], released.message
    assert released.summary["guard"] == "allowed"
    assert held_of(released) == []
    details = run_json(released)["guard_details"]
    assert [s["account_id"] for s in details["released"]] == [school]
    assert details["unknown_releases"] == ["no-such-school"]
    assert (
        "--allow-large-change no-such-school names no school"
        in (Path(str(released.run_dir)) / "run.log").read_text()
    )
    # Released: the school's emptied rosters reached Canvas (its students' enrollments are inactive).
    views = [v for v in district.model.enrollment_views() if v.user_id in set(only) and v.role == "student"]
    assert views
    assert {v.state for v in views} <= {"inactive", "completed"}
    with History(district.runs_dir) as history:
        rows = list(reversed(history.runs()))
    assert [row["guard"] for row in rows] == ["first_run", "held", "allowed"]
    assert orjson.loads(orjson.dumps(rows[1]["held_schools"]))[0]["account_id"] == school
