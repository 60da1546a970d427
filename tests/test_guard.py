"""The guard's rules on small frames: which school is held and why, what a held school sends, and what stops
the whole night (mass changes, renumbered ids, identity carry-overs, too many held schools)."""

from __future__ import annotations

import pandas as pd
import pytest

from clever2sis.build_dir import Frames, empty_frames
from clever2sis.config import GuardSettings
from clever2sis.sis import files
from clever2sis.sis.builders.identities import ACCOUNT_IDS, IDENTITY_COLUMNS
from clever2sis.sync import guard
from clever2sis.sync.guard import GuardInput, judge
from clever2sis.sync.holds import apply_holds, school_rows, without_schools


def frames(**rows: list[tuple[str, ...]]) -> Frames:
    """Frames with the given rows per file (``users=[...]`` for users.csv), every other file empty."""
    out = empty_frames()
    for stem, values in rows.items():
        name = f"{stem}.csv"
        out[name] = pd.DataFrame(values, columns=list(files.COLUMNS[name]), dtype="str")
    return out


def user(user_id: str, last: str = "Last") -> tuple[str, ...]:
    return (user_id, f"login.{user_id}", "First", last, f"{user_id}@example.org", "active")


def school(
    account: str, students: int, *, teachers: int = 1, sections: int = 2, prefix: str | None = None
) -> dict[str, list[tuple[str, ...]]]:
    """A school's rows: ``sections`` sections (one course each) with every student and teacher in each."""
    prefix = prefix or account
    people = [f"{prefix}s{n:03d}" for n in range(students)]
    staff = [f"{prefix}t{n:02d}" for n in range(teachers)]
    out: dict[str, list[tuple[str, ...]]] = {
        "accounts": [(account, "", f"School {account}", "active")],
        "courses": [],
        "sections": [],
        "users": [user(p) for p in [*people, *staff]],
        "enrollments": [],
    }
    for n in range(sections):
        course = section = f"{account}-c{n}"
        out["courses"].append((course, f"C{n}", f"Course {n}", account, "T1", "active"))
        out["sections"].append((section, course, f"Section {n}", "active"))
        out["enrollments"] += [(course, section, p, "student", "active") for p in people]
        out["enrollments"] += [(course, section, t, "teacher", "active") for t in staff]
    return out


def district(*schools: dict[str, list[tuple[str, ...]]], **extra: list[tuple[str, ...]]) -> Frames:
    merged: dict[str, list[tuple[str, ...]]] = {
        "terms": [("T1", "Year", "active", "2026-08-17", "2027-06-11")]
    }
    for part in [*schools, extra]:
        for stem, rows in part.items():
            merged.setdefault(stem, [])
            merged[stem] = [*merged[stem], *rows]
    return frames(**merged)


def ids(frame: pd.DataFrame, column: str) -> list[str]:
    return sorted(frame[column])


def verdict(old: Frames, new: Frames, **asked: object) -> guard.Verdict:
    return judge(old, new, GuardInput(night="2027-01-05T06:00:00Z", run_id="R2", **asked))  # type: ignore[arg-type]


# --- which school is held ---------------------------------------------------------------------------------


def test_a_school_whose_roster_empties_is_held_and_the_others_pass() -> None:
    old = district(school("A", 40), school("B", 40), school("C", 40))
    broken = school("B", 40)
    broken["enrollments"] = [row for row in broken["enrollments"] if row[3] != "student"]
    new = district(school("A", 40), broken, school("C", 40))
    found = verdict(old, new)
    assert found.verdict == guard.HELD
    assert found.shrinks == ()
    assert [s.account_id for s in found.held] == ["B"]
    (held,) = found.held
    assert (
        held.reason
        == "every one of its students vanished (would lose 40 of 40 students, 80 of 82 enrollments)"
    )
    assert (held.since, held.since_run_id, held.release) == (
        "2027-01-05T06:00:00Z",
        "R2",
        "--allow-large-change B",
    )
    assert found.held_summary() == [
        {
            "account_id": "B",
            "school_id": "B",
            "name": "School B",
            "since": "2027-01-05T06:00:00Z",
            "lost": {"students": 40, "enrollments": 80},
            "release": "--allow-large-change B",
        }
    ]


def test_a_small_school_is_not_held_for_a_small_loss_but_a_large_one_is() -> None:
    old = district(school("A", 200), school("S", 12))
    small = school("S", 12)
    gone = {"Ss000", "Ss001"}
    small["enrollments"] = [row for row in small["enrollments"] if row[2] not in gone]
    new = district(school("A", 200), small)
    # 2 of 12 students (16.7%) and 4 of 26 enrollments: over 10%, not over the floors of 5 and 30.
    assert verdict(old, new).verdict == guard.PASSED
    tight = GuardSettings(school_min_loss={"students": 1, "teachers": 2, "sections": 3, "enrollments": 30})
    found = verdict(old, new, settings=tight)
    assert [s.account_id for s in found.held] == ["S"]
    assert found.held[0].reason == (
        "would lose 2 of 12 students (16.7%): more than 10% and more than 1 students"
    )
    big = school("A", 200)
    big["enrollments"] = [row for row in big["enrollments"] if not row[2].startswith("As00")]  # 10 students
    assert verdict(old, district(big, school("S", 12))).verdict == guard.PASSED  # 5%: under the percentage


def test_a_vanished_school_is_held_whatever_its_size_unless_it_is_released() -> None:
    old = district(school("A", 50), school("T", 3, prefix="T"))
    new = district(school("A", 50))
    found = verdict(old, new)
    assert [(s.account_id, s.reason) for s in found.held] == [
        (
            "T",
            "it vanished from tonight's data (would lose 3 of 3 students, 1 of 1 teachers, 2 of 2 sections, 8 of 8 enrollments)",
        )
    ]
    released = verdict(old, new, release=frozenset({"T"}))
    assert (released.verdict, released.held, [s.account_id for s in released.released]) == (
        guard.ALLOWED,
        (),
        ["T"],
    )
    everything = verdict(old, new, allow_all=True)
    assert (everything.verdict, everything.held) == (guard.ALLOWED, ())
    unknown = verdict(old, new, release=frozenset({"T", "nope"}))
    assert unknown.unknown_releases == ("nope",)


def test_a_school_is_released_by_its_clever_id_too() -> None:
    old = district(school("A", 50), school("B", 50))
    old[files.ACCOUNTS]["integration_id"] = ["clever-a", "clever-b"]
    new = district(school("A", 50))
    new[files.ACCOUNTS]["integration_id"] = ["clever-a"]
    assert [s.school_id for s in verdict(old, new).held] == ["clever-b"]
    assert verdict(old, new, release=frozenset({"clever-b"})).held == ()


def test_a_hold_keeps_its_first_night() -> None:
    old = district(school("A", 50), school("B", 50), school("C", 50))
    new = district(school("A", 50), school("C", 50))
    found = verdict(old, new, held_before={"B": ("2027-01-01T06:00:00Z", "R1")})
    assert [(s.since, s.since_run_id) for s in found.held] == [("2027-01-01T06:00:00Z", "R1")]
    assert guard.holds_of(found.as_dict()) == {"B": ("2027-01-01T06:00:00Z", "R1")}
    assert guard.holds_of({"held": [{"account_id": "B"}]}) == {}
    assert guard.holds_of(None) == {}


@pytest.mark.parametrize(
    ("held", "schools", "stops"), [(1, 3, False), (2, 3, True), (1, 1, True), (2, 10, False), (3, 10, True)]
)
def test_too_many_held_schools_stop_the_district(held: int, schools: int, stops: bool) -> None:
    assert (guard.too_many_held(held, schools, 25.0) is not None) is stops


def test_two_of_three_schools_held_stop_the_whole_night() -> None:
    old = district(school("A", 50), school("B", 50), school("C", 50))
    new = district(school("A", 50))
    found = verdict(old, new)
    assert found.stops
    assert [s.account_id for s in found.held] == ["B", "C"]
    assert found.message().startswith(
        "2 of 3 schools would be held (66.7%, limit 25%): too many for one night; "
    )


# --- what a held school sends ----------------------------------------------------------------------------


def test_a_held_school_is_sent_as_canvas_has_it_and_people_of_two_schools_keep_both() -> None:
    a, b = school("A", 3), school("B", 3)
    both = ("Bs000", "login.both", "First", "Both", "both@example.org", "active")
    canvas = district(
        a,
        b,
        enrollments=[("A-c0", "A-c0", "Bs000", "student", "active")],  # a B student in a class of A
        users=[("staff1", "login.staff1", "Staff", "One", "staff1@example.org", "active")],
        user_observers=[("parent1", "As000", "active"), ("parent2", "Bs001", "active")],
    )
    canvas[files.USERS] = pd.concat(
        [
            canvas[files.USERS],
            pd.DataFrame([user("parent1"), user("parent2")], columns=files.COLUMNS[files.USERS]),
        ],
        ignore_index=True,
    )
    # Tonight A's export broke: its sections lost their rosters, a new student appears only in A, and
    # its names changed; B's data is sound (and renames one of its students, who is also in A).
    broken = school("A", 0)
    broken["sections"] = [(s, c, f"Renamed {n}", st) for s, c, n, st in broken["sections"]]
    tonight = district(
        broken,
        b,
        users=[user("Anew"), ("staff1", "login.staff1", "Staff", "Renamed", "staff1@example.org", "active")],
        enrollments=[("A-c1", "A-c1", "Anew", "student", "active")],
        user_observers=[("parent2", "Bs001", "active")],
    )
    tonight[files.USERS] = tonight[files.USERS].loc[tonight[files.USERS]["user_id"] != "At00"]
    tonight[files.USERS].loc[tonight[files.USERS]["user_id"] == "Bs000"] = [both]
    tonight[files.USERS] = pd.concat(
        [tonight[files.USERS], pd.DataFrame([user("parent2")], columns=files.COLUMNS[files.USERS])],
        ignore_index=True,
    )
    held = apply_holds(canvas, tonight, ["A"])
    sent = held.frames
    # A: exactly as Canvas has it.
    assert school_rows(sent, ["A"])[files.SECTIONS].equals(school_rows(canvas, ["A"])[files.SECTIONS])
    a_rows = school_rows(sent, ["A"])
    for name in (
        files.ACCOUNTS,
        files.COURSES,
        files.SECTIONS,
        files.ENROLLMENTS,
        files.USERS,
        files.USER_OBSERVERS,
    ):
        expected = school_rows(canvas, ["A"])[name]
        assert (
            a_rows[name]
            .sort_values(list(expected.columns), ignore_index=True)
            .equals(expected.sort_values(list(expected.columns), ignore_index=True))
        ), name
    a_enrollments = sent[files.ENROLLMENTS].loc[sent[files.ENROLLMENTS]["course_id"].str.startswith("A-")]
    a_people = ["As000", "As001", "As002", "At00"]
    assert ids(a_enrollments, "user_id") == sorted([*a_people, "Bs000", *a_people])  # A-c0 (with B's), A-c1
    assert "Anew" not in set(sent[files.USERS]["user_id"])  # new tonight, only in the held school: waits
    assert set(sent[files.SECTIONS]["name"]) == {"Section 0", "Section 1"}
    # The B student in A's class keeps tonight's user row; their A enrollment is Canvas's.
    assert sent[files.USERS].loc[sent[files.USERS]["user_id"] == "Bs000", "last_name"].tolist() == ["Both"]
    # The staff member (no enrollment) is the district's: tonight's row.
    assert sent[files.USERS].loc[sent[files.USERS]["user_id"] == "staff1", "last_name"].tolist() == [
        "Renamed"
    ]
    # A's parent is held with their child; B's parent is tonight's.
    assert sorted(map(tuple, sent[files.USER_OBSERVERS][["observer_id", "student_id"]].to_numpy())) == [
        ("parent1", "As000"),
        ("parent2", "Bs001"),
    ]
    assert "parent1" in set(sent[files.USERS]["user_id"])
    # B: tonight's rows.
    assert without_schools(sent, ["A"])[files.ENROLLMENTS].equals(
        without_schools(tonight, ["A"])[files.ENROLLMENTS]
    )
    assert {name: len(frame) for name, frame in held.rows.items() if len(frame)} == {
        files.ACCOUNTS: 1,
        files.COURSES: 2,
        files.SECTIONS: 2,
        files.USERS: 5,
        files.ENROLLMENTS: 9,
        files.USER_OBSERVERS: 1,
    }


def test_a_held_person_keeps_every_enrollment_even_in_a_school_not_held() -> None:
    canvas = district(
        school("A", 2),
        school("B", 2),
        enrollments=[("B-c0", "B-c0", "As000", "student", "active")],
    )
    tonight = district(school("A", 0), school("B", 2))
    tonight[files.USERS] = tonight[files.USERS].loc[~tonight[files.USERS]["user_id"].str.startswith("A")]
    sent = apply_holds(canvas, tonight, ["A"]).frames
    kept = sent[files.ENROLLMENTS]
    assert ("B-c0", "B-c0", "As000", "student", "active") in set(map(tuple, kept.to_numpy()))
    assert "As000" in set(sent[files.USERS]["user_id"])


def test_a_vanished_school_is_sent_whole_from_canvas() -> None:
    canvas = district(school("A", 3), school("B", 3))
    tonight = district(school("B", 3))
    sent = apply_holds(canvas, tonight, ["A"]).frames
    for name in (files.ACCOUNTS, files.COURSES, files.SECTIONS, files.USERS, files.ENROLLMENTS):
        assert len(sent[name]) == len(canvas[name]), name


def staff_identities(**accounts: str) -> pd.DataFrame:
    """identities.csv rows of users Canvas holds, each with its recorded ``account_ids``."""
    rows = [
        {column: "" for column in IDENTITY_COLUMNS} | {"user_id": u, ACCOUNT_IDS: a}
        for u, a in accounts.items()
    ]
    return pd.DataFrame(rows, columns=list(IDENTITY_COLUMNS), dtype="str")


def test_staff_who_vanish_with_a_held_school_are_held_and_the_others_are_tonights() -> None:
    a, b = school("A", 3), school("B", 3)
    staff = ["onlyA", "AandB", "onlyB", "stays", "admin", "teachesB", "legacy"]
    canvas = district(
        a,
        b,
        users=[user(person) for person in staff],
        enrollments=[("B-c0", "B-c0", "teachesB", "teacher", "active")],
        admins=[
            ("onlyA", "A", "AccountAdmin", "active"),
            ("onlyA", "B", "AccountAdmin", "active"),
            ("admin", "A", "AccountAdmin", "active"),
            ("onlyB", "B", "AccountAdmin", "active"),
        ],
    )
    identities = staff_identities(
        onlyA="A", AandB="A;B", onlyB="B", stays="A", admin="", teachesB="A", legacy=""
    )
    # Tonight A vanished with the people only in it; "stays" (of A too) is still in Clever, renamed; the
    # district admin is still admin of every school but A, which tonight's data lacks.
    tonight = district(
        b,
        users=[user("stays", last="Renamed"), user("admin")],
        admins=[("admin", "B", "AccountAdmin", "active")],
    )
    held = apply_holds(canvas, tonight, ["A"], identities)
    sent = held.frames
    users = sent[files.USERS].set_index("user_id")
    # Held whole, as Canvas has them: only in the held school, or in it and in a sound one (the export that
    # lost A may have lost them with it); with every admin row of theirs.
    assert {"onlyA", "AandB"} <= set(users.index)
    assert ("onlyA", "B", "AccountAdmin", "active") in set(map(tuple, sent[files.ADMINS].to_numpy()))
    # Tonight's: in tonight's data; gone from a school not held; with an enrollment (a teacher of B); or
    # recorded in no school (a district admin, a state kept before account_ids existed).
    assert users.loc["stays", "last_name"] == "Renamed"
    assert not {"onlyB", "teachesB", "legacy"} & set(users.index)
    assert ("onlyB", "B", "AccountAdmin", "active") not in set(map(tuple, sent[files.ADMINS].to_numpy()))
    # A held school's admin rows are Canvas's, whoever holds them; the other schools' are tonight's.
    assert sorted(map(tuple, sent[files.ADMINS].to_numpy())) == [
        ("admin", "A", "AccountAdmin", "active"),
        ("admin", "B", "AccountAdmin", "active"),
        ("onlyA", "A", "AccountAdmin", "active"),
        ("onlyA", "B", "AccountAdmin", "active"),
    ]
    assert ids(held.rows[files.USERS], "user_id") == sorted(
        ["AandB", "onlyA", *(f"As00{n}" for n in range(3)), "At00"]
    )
    # Without the identities of the users Canvas holds (a state kept before identities.csv), no staff
    # member is known to belong to A: they are tonight's, as before.
    unknown = apply_holds(canvas, tonight, ["A"]).frames[files.USERS]
    assert not {"onlyA", "AandB"} & set(unknown["user_id"])


# --- what stops the whole night ----------------------------------------------------------------------------


def test_renumbering_every_user_id_stops_the_night_with_examples() -> None:
    old = district(school("A", 40), school("B", 40))
    new = district(school("A", 40), school("B", 40))
    renumbered = {uid: f"SIS-{n:04d}" for n, uid in enumerate(sorted(new[files.USERS]["user_id"]))}
    new[files.USERS] = new[files.USERS].assign(
        integration_id=new[files.USERS]["user_id"], user_id=new[files.USERS]["user_id"].map(renumbered)
    )
    new[files.ENROLLMENTS] = new[files.ENROLLMENTS].assign(
        user_id=new[files.ENROLLMENTS]["user_id"].map(renumbered)
    )
    found = verdict(old, new)
    assert found.stops
    messages = [s.message() for s in found.shrinks if s.kind == "identity"]
    assert messages == [
        "users.csv user_id changed for 82 of 82 rows (100.0%, limit 5%); e.g. As000 -> SIS-0000, "
        "As001 -> SIS-0001, As002 -> SIS-0002"
    ]
    # Every school lost its people (by user_id), so every school would be held: too many, and why.
    assert [s.kind for s in found.shrinks] == ["identity", "schools"]
    assert verdict(old, new, allow_all=True).verdict == guard.ALLOWED


def test_changed_logins_and_renumbered_courses_count_as_identity_changes() -> None:
    old = district(school("A", 60, sections=30))
    new = district(school("A", 60, sections=30))
    new[files.USERS] = new[files.USERS].assign(login_id=new[files.USERS]["login_id"] + "@new.example.org")
    for name in (files.COURSES, files.SECTIONS, files.ENROLLMENTS):
        new[name] = new[name].assign(course_id="new-" + new[name]["course_id"])
    found = verdict(old, new)
    assert found.held == ()
    assert [s.message() for s in found.shrinks if s.kind == "identity"] == [
        "users.csv login_id changed for 61 of 61 rows (100.0%, limit 5%); e.g. login.As000 -> "
        "login.As000@new.example.org, login.As001 -> login.As001@new.example.org, login.As002 -> "
        "login.As002@new.example.org",
        "courses.csv course_id changed for 30 of 30 rows (100.0%, limit 5%); e.g. A-c0 -> new-A-c0, "
        "A-c1 -> new-A-c1, A-c10 -> new-A-c10",
    ]
    case_only = district(school("A", 60))
    case_only[files.USERS] = case_only[files.USERS].assign(
        login_id=case_only[files.USERS]["login_id"].str.upper()
    )
    # Canvas compares logins without case: no identity change, though still a mass change of users.csv.
    assert [s.kind for s in verdict(district(school("A", 60)), case_only).shrinks] == ["changes"]


def test_a_file_most_of_whose_rows_changed_stops_the_night_above_the_floor() -> None:
    old = district(school("A", 100))
    new = district(school("A", 100))
    new[files.USERS] = new[files.USERS].assign(first_name="Changed")
    found = verdict(old, new)
    assert [s.message() for s in found.shrinks] == ["users.csv: 101 of 101 rows changed (100.0%, limit 75%)"]
    few = district(school("A", 20))
    renamed = district(school("A", 20))
    renamed[files.USERS] = renamed[files.USERS].assign(first_name="Changed")
    assert verdict(few, renamed).verdict == guard.PASSED  # 21 changed rows: not above min_changes (25)
    assert guard.changed_rows(old[files.USERS], old[files.USERS], files.USERS) == 0


def test_identity_carryovers_count_against_their_own_limit() -> None:
    same = district(school("A", 10))
    assert verdict(same, same, carried_identities=25).verdict == guard.PASSED
    found = verdict(same, same, carried_identities=26)
    assert found.stops
    assert found.message() == "26 people carried over to a new Clever id tonight (limit 25)"
    assert guard.check_carryovers(3, 2) is not None
    assert judge(None, same, GuardInput(carried_identities=30)).stops


def test_a_held_school_is_left_out_of_the_district_file_check() -> None:
    old = district(school("A", 10), school("B", 200), school("C", 10))
    new = district(school("A", 10), school("C", 10))
    found = verdict(old, new)
    # B held 400 of 440 enrollments: the other schools lost nothing, so the night goes on.
    assert (found.verdict, [s.account_id for s in found.held], found.shrinks) == (guard.HELD, ["B"], ())


def test_the_guard_facts_of_a_build_record() -> None:
    old = district(school("A", 50), school("B", 50), school("C", 50))
    found = verdict(old, district(school("A", 50), school("C", 50)))
    facts = guard.guard_facts({"guard": found.as_dict()})
    assert facts is not None
    assert facts["verdict"] == guard.HELD
    assert [(s["account_id"], s["release"]) for s in facts["held"]] == [("B", "--allow-large-change B")]
    assert guard.guard_facts({}) is None
    assert guard.guard_facts(None) is None
