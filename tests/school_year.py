"""A Clever district through one compressed school year, night by night, for judging what Canvas holds.

The district starts from :func:`clever2sis.clever.sample.generate_district` (260 students with their
parents and guardians as contacts, seed 23, the 2026-27 school year) and changes the way real districts
do, one event per night on known nights (:data:`CALENDAR`; each event is a method below, its docstring says
what Clever does). The 27 nights run in five weeks of consecutive nights (August, October, January, March,
June); the nights between the weeks, when nothing would change, are left out. So the sync's 7-day remaster
falls on the first night of each week (the first after a gap of seven days or more) and, in the March week,
on its last night, seven days after its first (the August and October weeks hold nights the product may
send as remasters of its own accord: the growth night, the id churn).

In the March week one school's SIS export breaks (:data:`BROKEN_NIGHTS`): on the first night Clever lists
its sections with no students in them, on the second the school vanishes from Clever altogether, and on the
third (:data:`MENDED_NIGHT`, the night before the remaster) Clever serves it whole again. What Clever
serves is broken, not the district: the district's own records go on changing underneath (a student of the
broken school leaves while its data is broken, and a student of another school leaves on the second
night), and ``night(n)`` breaks a copy of them.

Before the first night a few records are set as real districts have them (:meth:`SchoolYear._plant`):

* a district-wide Clever course whose sections are taught at two schools;
* a student email with a stray quote after its first letter (``j"ane.doe1234@students...``: Canvas's
  email rule rejects it, a naive ``x@y.z`` regex accepts it), a teacher email on the district's dotless
  mail host (``jane.doe1234@cedarfallsusd``) and a parent's email with a quoted local part holding a
  space (``"jane doe"@example.com``): Canvas accepts those two, a naive regex rejects them;
* the back-to-school arrivals are held back until the growth night (one of them with a username of more
  than 100 characters, made from a long legal name).

The sample's own quirks stay (a student without username or email, two students sharing a username, a
section listing a user who is not in the pull, sections without a term, ...).

``SchoolYear.advance(n)`` applies night ``n``'s lasting changes; ``night(n)`` gives the records Clever
serves that night. What each event did (who left, which ids changed) is kept on the object, for the tests.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from clever2sis.clever.sample import generate_district
from clever2sis.clever.snapshot import COLLECTIONS, Snapshot

SEED = 23
STUDENTS = 260
AS_OF = "2026-08-12T05:00:00Z"
SYNC_TIME = dt.time(6, 0, tzinfo=dt.UTC)  # the nightly job starts at 06:00 UTC
BACK_TO_SCHOOL_ARRIVALS = 36  # held back until the growth night: > 10% of the students
SECTIONS_PER_ARRIVAL = 5
MAX_LOGIN_LENGTH = 100  # Canvas's Pseudonym::MAX_UNIQUE_ID_LENGTH (app/models/pseudonym.rb)
PARENT = "Parent/Guardian"
EDITED_YEAR_END = "2027-06-04"  # the calendar change of the term-date edit (was 2027-06-11)
EMPTY_ROSTERS = "empty rosters"  # how a broken export shows in Clever: sections with no students
VANISHED = "vanished"  # ... or the school, its sections and the people only in it not served at all

Records = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class Night:
    """What Clever serves on one night of the year (``now`` is when the sync runs)."""

    number: int
    event: str
    now: dt.datetime
    records: Records
    broken_schools: frozenset[str] = frozenset()  # schools whose data Clever serves broken tonight
    # The people the district holds whom Clever does not serve tonight (only in a vanished school), with
    # their Clever schools (by their roles).
    hidden: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def served(self) -> dict[str, list[bytes]]:
        return {name: [orjson.dumps(record) for record in self.records[name]] for name in COLLECTIONS}


@dataclass(frozen=True)
class Planted:
    """The records set before the first night that a test looks for."""

    cross_school_course: str  # a Clever course with sections at two schools
    cross_school_sections: tuple[str, str]
    rejected_email_user: str  # a student whose email Canvas rejects and a naive regex accepts
    rejected_email: str
    dotless_email_user: str  # a teacher whose email Canvas accepts and a naive regex rejects
    dotless_email: str
    quoted_email_contact: str  # a parent whose email (their login) Canvas accepts, a naive regex rejects
    quoted_email: str
    long_login_user: str  # a back-to-school arrival whose username is over 100 characters
    long_login: str


@dataclass
class Happened:
    """Who and what each event touched (filled in as the nights are advanced)."""

    arrivals: dict[int, list[str]] = field(default_factory=dict)
    leavers: dict[int, list[str]] = field(default_factory=dict)
    growth_leaver: str = ""
    back_to_school: list[str] = field(default_factory=list)
    swapped: tuple[str, str, str] = ("", "", "")  # section, old teacher, new teacher
    moved: tuple[str, str, str] = ("", "", "")  # student, old school, new school
    returned: tuple[str, str] = ("", "")  # the leaver's old id, their new id
    returned_login: str = ""
    renamed: tuple[str, str, str] = ("", "", "")  # teacher, old username, new username
    unlinked: tuple[str, str, str] = ("", "", "")  # contact, student whose link went, student still linked
    removed_parent: tuple[str, tuple[str, ...]] = ("", ())  # contact, the students they observed
    churned: tuple[str, str] = ("", "")  # old id, new id
    churned_login: str = ""
    ended_terms: dict[int, list[str]] = field(default_factory=dict)
    rolled_over: dict[int, list[str]] = field(default_factory=dict)  # night -> Clever terms dropped
    edited_term: tuple[str, str] = ("", "")  # old Clever term id, new Clever term id
    edited_sections: list[str] = field(default_factory=list)
    broken_school: str = ""  # the school whose SIS export broke
    hidden_leaver: str = ""  # its student who left while its data was broken
    healthy_leaver: str = ""  # a student of another school who left on a broken night


def _night(month: int, day: int) -> dt.datetime:
    year = 2026 if month >= 8 else 2027
    return dt.datetime.combine(dt.date(year, month, day), SYNC_TIME)


# Each night: when it runs, its short name (in test ids), and the method that makes its changes.
CALENDAR: tuple[tuple[dt.datetime, str, str], ...] = (
    (_night(8, 12), "first-run", "_first_run"),
    (_night(8, 13), "quiet", "_quiet"),
    (_night(8, 14), "arrival", "_arrival"),
    (_night(8, 15), "leaver", "_leaver"),
    (_night(8, 16), "growth", "_growth"),
    (_night(8, 17), "first-day", "_first_day"),
    (_night(8, 18), "teacher-swap", "_teacher_swap"),
    (_night(10, 5), "returning-student", "_returning_student"),
    (_night(10, 6), "name-change", "_name_change"),
    (_night(10, 7), "parent-link-removed", "_parent_link_removed"),
    (_night(10, 8), "parent-removed", "_parent_removed"),
    (_night(10, 9), "id-churn", "_id_churn"),
    (_night(1, 14), "arrival", "_arrival"),
    (_night(1, 16), "term-ended", "_term_ended"),
    (_night(1, 19), "rollover", "_rollover"),
    (_night(1, 23), "term-ended", "_term_ended"),
    (_night(1, 26), "rollover", "_rollover"),
    (_night(3, 8), "leaver", "_leaver"),
    (_night(3, 9), "term-date-edit", "_term_date_edit"),
    (_night(3, 10), "arrival", "_arrival"),
    (_night(3, 11), "leaver", "_leaver"),
    (_night(3, 12), "export-broke", "_export_broke"),
    (_night(3, 13), "school-vanished", "_school_vanished"),
    (_night(3, 14), "export-mended", "_export_mended"),
    (_night(3, 15), "remaster-school-move", "_school_move"),
    (_night(6, 7), "term-ended", "_term_ended"),
    (_night(6, 14), "year-ended", "_term_ended"),
)
NIGHTS = len(CALENDAR)
QUIET_NIGHT = 1
LEAVER_NIGHT = 3
GROWTH_NIGHT = 4
TEACHER_SWAP_NIGHT = 6
RETURN_NIGHT = 7
NAME_CHANGE_NIGHT = 8
LINK_REMOVED_NIGHT = 9
PARENT_REMOVED_NIGHT = 10
CHURN_NIGHT = 11
ROLLOVER_NIGHTS = (14, 16)
TERM_EDIT_NIGHT = 18
BROKEN_NIGHTS = (21, 22)  # one school's SIS export is broken: its rosters empty, then it vanishes
MENDED_NIGHT = 23  # Clever serves the school whole again
REMASTER_NIGHT = 24  # seven days after the first night of the March week: the 7-day remaster

# Names for the students (and their parents) who arrive during the year.
ARRIVING = (
    ("Amara", "Okafor", "Chidi"),
    ("Mateo", "Silva", "Renata"),
    ("Freya", "Lindqvist", "Anders"),
    ("Kai", "Nakamura", "Emi"),
    ("Zainab", "Haddad", "Omar"),
    ("Luca", "Romano", "Giulia"),
)
LONG_FIRST = "María de los Ángeles Guadalupe Esperanza"
LONG_LAST = "Fernández-Castañeda de la Santísima Trinidad y Montenegro de los Reyes"


def slug(name: str) -> str:
    """Lower-case ASCII letters and digits: what an SIS makes of a name for usernames."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return "".join(char for char in folded.lower() if char.isalnum())


def schools_of(user: dict[str, Any]) -> set[str]:
    schools: set[str] = set()
    for role in user["roles"].values():
        if isinstance(role, dict):
            schools.update(role.get("schools") or [])
            if role.get("school"):
                schools.add(role["school"])
    return schools


def username_of(user: dict[str, Any]) -> str | None:
    for role in user["roles"].values():
        if isinstance(role, dict) and (role.get("credentials") or {}).get("district_username"):
            return str(role["credentials"]["district_username"])
    return None


def without_users(records: Records, user_ids: set[str]) -> None:
    """Drop the users ``user_ids`` from ``records`` with their places in sections and the parent links to
    them; a contact left without a link goes too."""
    records["users"] = [u for u in records["users"] if u["id"] not in user_ids]
    for section in records["sections"]:
        section["students"] = [s for s in section["students"] if s not in user_ids]
    kept = []
    for user in records["users"]:
        if "contact" in user["roles"]:
            contact = user["roles"]["contact"]
            contact["student_relationships"] = [
                r for r in contact["student_relationships"] if r["student"] not in user_ids
            ]
            if not contact["student_relationships"]:
                continue
        kept.append(user)
    records["users"] = kept


def break_school(records: Records, school: str, how: str) -> None:
    """What Clever serves of ``records`` when ``school``'s SIS export broke ``how``: its sections with no
    students (:data:`EMPTY_ROSTERS`), or (:data:`VANISHED`) no school, none of its sections, and none of the
    users only in it (by their Clever roles), with their places elsewhere and their parents' links."""
    if how == EMPTY_ROSTERS:
        for section in records["sections"]:
            if section["school"] == school:
                section["students"] = []
        return
    records["schools"] = [s for s in records["schools"] if s["id"] != school]
    records["sections"] = [s for s in records["sections"] if s["school"] != school]
    only = {u["id"] for u in records["users"] if schools_of(u) == {school}}
    without_users(records, only)


def clever_id(prefix: str, night: int, serial: int) -> str:
    """A 24-hex-digit id like Clever's, unique per prefix, night and serial."""
    return f"{prefix}{night:02d}{serial:020d}"


class SchoolYear:
    """The district's records, changed night by night (see the module docstring)."""

    def __init__(self, workdir: Path) -> None:
        generate_district(workdir / "generated", students=STUDENTS, seed=SEED, as_of=AS_OF)
        snapshot = Snapshot.open(workdir / "generated")
        self.records: Records = {name: list(snapshot.iter_records(name)) for name in COLLECTIONS}
        self.rng = random.Random(SEED)
        self.serial = 0
        self.used: set[str] = set()  # people an event or a plant already uses
        self.happened = Happened()
        self.gone: dict[str, dict[str, Any]] = {}  # records of leavers, by id
        self._held: list[dict[str, Any]] = []
        self._held_places: dict[str, list[str]] = {}
        self._held_links: dict[str, list[dict[str, Any]]] = {}
        self._held_contacts: list[dict[str, Any]] = []
        self._broken: tuple[str, str] | None = None  # (school, how): see break_school
        self.planted = self._plant()
        self._hold_back()

    # -- looking people up ---------------------------------------------------------------------------------

    def term(self, name: str, start: str) -> dict[str, Any]:
        return next(t for t in self.records["terms"] if t["name"] == name and t["start_date"] == start)

    def _sections_of(self, user_id: str) -> list[dict[str, Any]]:
        return sorted(
            (s for s in self.records["sections"] if user_id in s["students"] or user_id in s["teachers"]),
            key=lambda s: s["id"],
        )

    def _taken(self) -> dict[str, int]:
        """How many users each login value (username or email, lower-cased) would be given to."""
        counts: dict[str, int] = {}
        for user in self.records["users"]:
            for value in {username_of(user), user.get("email")} - {None, ""}:
                key = str(value).lower()
                counts[key] = counts.get(key, 0) + 1
        return counts

    def _ordinary(self, role: str) -> list[dict[str, Any]]:
        """Users of ``role`` with a unique username, a plain email and classes, that nothing uses yet."""
        taken = self._taken()
        found = []
        for user in sorted(self.records["users"], key=lambda u: u["id"]):
            username = username_of(user)
            email = user.get("email") or ""
            if (
                role in user["roles"]
                and len(user["roles"]) == 1
                and username
                and taken.get(username.lower()) == 1
                and "@" in email
                and taken.get(email.lower()) == 1
                and user["id"] not in self.used
                and len(self._sections_of(user["id"])) >= 3
            ):
                found.append(user)
        return found

    def _pick(self, candidates: list[dict[str, Any]]) -> dict[str, Any]:
        chosen = self.rng.choice(candidates)
        self.used.add(chosen["id"])
        return chosen

    def _parents_of_two(self) -> list[dict[str, Any]]:
        """Contacts a build makes observers (a unique email) with two parent links to ordinary students."""
        ordinary = {user["id"] for user in self._ordinary("student")}
        taken = self._taken()
        return [
            user
            for user in sorted(self.records["users"], key=lambda u: u["id"])
            if "contact" in user["roles"]
            and user["id"] not in self.used
            and "@" in (user.get("email") or "")
            and taken.get(str(user["email"]).lower()) == 1
            and [r["type"] for r in user["roles"]["contact"]["student_relationships"]] == [PARENT, PARENT]
            and {r["student"] for r in user["roles"]["contact"]["student_relationships"]} <= ordinary
        ]

    def _current_sections(self, school: str, now: dt.datetime) -> list[dict[str, Any]]:
        """The school's sections in a term that has not ended at ``now`` (ids sorted)."""
        running = {t["id"] for t in self.records["terms"] if now.date().isoformat() <= t["end_date"]}
        return sorted(
            (s for s in self.records["sections"] if s["school"] == school and s.get("term_id") in running),
            key=lambda s: s["id"],
        )

    # -- before the first night ----------------------------------------------------------------------------

    def _plant(self) -> Planted:
        """The records a real district has that the sample does not (see the module docstring)."""
        year = self.term("Year", "2026-08-17")["id"]
        by_school: dict[str, list[dict[str, Any]]] = {}
        for section in sorted(self.records["sections"], key=lambda s: s["id"]):
            if section.get("term_id") == year and section.get("course"):
                by_school.setdefault(section["school"], []).append(section)
        first, second = (by_school[school][0] for school in sorted(by_school)[:2])
        second["course"] = first["course"]

        student = self._pick(self._ordinary("student"))
        local, _, host = student["email"].partition("@")
        rejected = f'{local[:1]}"{local[1:]}@{host}'
        student["email"] = student["roles"]["student"]["email"] = rejected

        teacher = self._pick(self._ordinary("teacher"))
        local, _, host = teacher["email"].partition("@")
        dotless = f"{local}@{host.split('.')[0]}"
        teacher["email"] = dotless

        parent = self._parents_of_two()[0]
        self.used.add(parent["id"])
        names = parent["name"]["last"].split()
        quoted = f'"{slug(names[0])} {slug(names[-1])}"@example.com'
        parent["email"] = quoted

        self.serial += 1
        long_id = clever_id("7a", 0, self.serial)
        long_login = f"{slug(LONG_FIRST)}.{slug(LONG_LAST)}{2026_0000 + self.serial}"
        assert len(long_login) > MAX_LOGIN_LENGTH, long_login
        return Planted(
            cross_school_course=first["course"],
            cross_school_sections=(first["id"], second["id"]),
            rejected_email_user=student["id"],
            rejected_email=rejected,
            dotless_email_user=teacher["id"],
            dotless_email=dotless,
            quoted_email_contact=parent["id"],
            quoted_email=quoted,
            long_login_user=long_id,
            long_login=long_login,
        )

    def _hold_back(self) -> None:
        """Take the back-to-school arrivals out of the summer roster (they come back on the growth night):
        their users, their places in sections, their parents' links, and parents left without a link."""
        candidates = self._ordinary("student")
        held = self.rng.sample(candidates, BACK_TO_SCHOOL_ARRIVALS)
        ids = {user["id"] for user in held}
        self.used |= ids
        self._held = held
        self.records["users"] = [u for u in self.records["users"] if u["id"] not in ids]
        for section in self.records["sections"]:
            taken = [s for s in section["students"] if s in ids]
            if taken:
                self._held_places[section["id"]] = taken
                section["students"] = [s for s in section["students"] if s not in ids]
        kept = []
        for user in self.records["users"]:
            if "contact" in user["roles"]:
                links = user["roles"]["contact"]["student_relationships"]
                held_links = [link for link in links if link["student"] in ids]
                if held_links:
                    self._held_links[user["id"]] = held_links
                    user["roles"]["contact"]["student_relationships"] = [
                        link for link in links if link["student"] not in ids
                    ]
                    if not user["roles"]["contact"]["student_relationships"]:
                        self._held_contacts.append(user)
                        continue
            kept.append(user)
        self.records["users"] = kept

    # -- the events ----------------------------------------------------------------------------------------

    def _first_run(self, number: int, now: dt.datetime) -> None:
        """First run: the summer roster (without the back-to-school arrivals); the sync's first import is a
        remaster."""

    def _quiet(self, number: int, now: dt.datetime) -> None:
        """Quiet night: nothing changes in Clever."""

    def _first_day(self, number: int, now: dt.datetime) -> None:
        """First day of school, the night after the growth night: nothing changes in Clever."""

    def _arrive(self, number: int, now: dt.datetime, names: tuple[str, str, str] | None = None) -> str:
        """A new student (new Clever id, username, SIS id) in five classes of a school, with a parent."""
        self.serial += 1
        first, last, parent_first = names or ARRIVING[self.serial % len(ARRIVING)]
        model = self.rng.choice(self._ordinary("student"))
        user = copy.deepcopy(model)
        user["id"] = clever_id("7f", number, self.serial)
        username = f"{slug(first)}.{slug(last)}{9000 + self.serial}"
        if names is not None:
            username = self.planted.long_login
            user["id"] = self.planted.long_login_user
        host = model["email"].partition("@")[2]
        user["email"] = f"{username}@{host}"
        user["name"] = {"first": first, "last": last, "middle": ""}
        role = user["roles"]["student"]
        role["credentials"] = {"district_username": username}
        role["email"] = user["email"]
        role["sis_id"] = role["student_number"] = f"2{self.serial:08d}"
        role["state_id"] = f"4{self.serial:09d}"
        self.records["users"].append(user)
        sections = self._current_sections(role["school"], now)
        for section in self.rng.sample(sections, min(SECTIONS_PER_ARRIVAL, len(sections))):
            section["students"] = sorted([*section["students"], user["id"]])
        contact = copy.deepcopy(next(u for u in self.records["users"] if "contact" in u["roles"]))
        contact["id"] = clever_id("7e", number, self.serial)
        contact["name"] = {"last": f"{parent_first} {last}"}
        contact["email"] = f"{slug(parent_first)}.{slug(last)}{self.serial}@example.net"
        contact["roles"]["contact"].update(
            sis_id=f"C9{self.serial:06d}",
            legacy_id=contact["id"],
            student_relationships=[{"relationship": "Parent", "student": user["id"], "type": PARENT}],
        )
        self.records["users"].append(contact)
        self.used |= {user["id"], contact["id"]}
        return str(user["id"])

    def _depart(self, user_id: str) -> None:
        """Clever drops a student with their places and their parents' links; a parent left without a
        link goes too."""
        self.gone[user_id] = next(u for u in self.records["users"] if u["id"] == user_id)
        without_users(self.records, {user_id})

    def _student_only_in(self, school: str, *, outside: bool = False) -> str:
        """The first ordinary student (by id) whose school and classes are all ``school`` (``outside``: none
        is). Picked without the random generator, so that the later nights' picks stay as they were."""
        for user in self._ordinary("student"):
            places = {s["school"] for s in self._sections_of(user["id"])} | schools_of(user)
            if (school not in places) if outside else (places == {school}):
                self.used.add(user["id"])
                return str(user["id"])
        raise AssertionError(f"no ordinary student {'outside' if outside else 'only in'} {school}")

    def _arrival(self, number: int, now: dt.datetime) -> None:
        """Arrival: a student enrols mid-year (a new Clever user placed in five classes) with a new parent."""
        self.happened.arrivals[number] = [self._arrive(number, now)]

    def _leaver(self, number: int, now: dt.datetime) -> None:
        """Leaver: a student moves away; Clever drops the user, their places and their parents' links."""
        leaver = self._pick(self._ordinary("student"))
        self._depart(leaver["id"])
        self.happened.leavers[number] = [leaver["id"]]

    def _growth(self, number: int, now: dt.datetime) -> None:
        """Growth night (back to school): the held-back arrivals, one with a username over 100 characters,
        join at once (the files grow by more than Canvas's 10% ``change_threshold``), and the same night
        one student leaves."""
        leaver = self._pick(self._ordinary("student"))
        self._depart(leaver["id"])
        self.happened.growth_leaver = leaver["id"]
        self.happened.leavers[number] = [leaver["id"]]
        self.records["users"].extend(self._held)
        for section in self.records["sections"]:
            if section["id"] in self._held_places:
                section["students"] = sorted([*section["students"], *self._held_places[section["id"]]])
        present = {user["id"]: user for user in self.records["users"]}
        for contact in self._held_contacts:
            contact["roles"]["contact"]["student_relationships"] = []
            self.records["users"].append(contact)
            present[contact["id"]] = contact
        for contact_id, links in self._held_links.items():
            present[contact_id]["roles"]["contact"]["student_relationships"].extend(links)
        self.happened.back_to_school = [user["id"] for user in self._held]
        long_login = self._arrive(number, now, names=(LONG_FIRST, LONG_LAST, "Rosario"))
        self.happened.arrivals[number] = [*self.happened.back_to_school, long_login]

    def _teacher_swap(self, number: int, now: dt.datetime) -> None:
        """Teacher swap: a section's teacher is replaced by another teacher of the school."""
        teachers = {u["id"]: u for u in self._ordinary("teacher")}
        for section in sorted(self._current_sections_all(now), key=lambda s: s["id"]):
            current = section.get("teacher")
            others = sorted(
                t for t, user in teachers.items() if section["school"] in schools_of(user) and t != current
            )
            if current and others and section["id"] not in self.planted.cross_school_sections:
                replacement = others[0]
                self.used.add(replacement)
                section["teacher"] = replacement
                section["teachers"] = [replacement, *(t for t in section["teachers"] if t != current)]
                self.happened.swapped = (section["id"], current, replacement)
                return
        raise AssertionError("no section to swap a teacher in")

    def _current_sections_all(self, now: dt.datetime) -> list[dict[str, Any]]:
        return [s for school in self.records["schools"] for s in self._current_sections(school["id"], now)]

    def _school_move(self, number: int, now: dt.datetime) -> None:
        """School move: a student changes school; Clever takes them out of every class of the old school
        and puts them in five classes of the new one."""
        student = self._pick(self._ordinary("student"))
        role = student["roles"]["student"]
        old = role["school"]
        new = sorted(s["id"] for s in self.records["schools"] if s["id"] != old)[0]
        role["school"], role["schools"] = new, [new]
        for section in self.records["sections"]:
            section["students"] = [s for s in section["students"] if s != student["id"]]
        sections = self._current_sections(new, now)
        for section in self.rng.sample(sections, min(SECTIONS_PER_ARRIVAL, len(sections))):
            section["students"] = sorted([*section["students"], student["id"]])
        self.happened.moved = (student["id"], old, new)

    def _returning_student(self, number: int, now: dt.datetime) -> None:
        """Clever id churn after a long absence: the student who left on the leaver night comes back
        weeks later; Clever creates a new user (new id) with the same username, email and SIS id, placed in
        five classes of their school."""
        old_id = self.happened.leavers[LEAVER_NIGHT][0]
        user = copy.deepcopy(self.gone[old_id])
        user["id"] = clever_id("7b", number, 1)
        self.records["users"].append(user)
        school = user["roles"]["student"]["school"]
        sections = self._current_sections(school, now)
        for section in self.rng.sample(sections, min(SECTIONS_PER_ARRIVAL, len(sections))):
            section["students"] = sorted([*section["students"], user["id"]])
        self.happened.returned = (old_id, user["id"])
        self.happened.returned_login = str(username_of(user))

    def _name_change(self, number: int, now: dt.datetime) -> None:
        """Name change: a teacher's last name changes, and with it her district username and email."""
        teacher = self._pick(self._ordinary("teacher"))
        old = str(username_of(teacher))
        first = teacher["name"]["first"]
        teacher["name"]["last"] = "Whitfield-Ortega"
        role = teacher["roles"]["teacher"]
        number_part = "".join(char for char in old if char.isdigit())
        new = f"{slug(first)}.whitfieldortega{number_part}"
        role["credentials"] = {"district_username": new}
        teacher["email"] = f"{new}@{teacher['email'].partition('@')[2]}"
        self.happened.renamed = (teacher["id"], old, new)

    def _parent_link_removed(self, number: int, now: dt.datetime) -> None:
        """Parent link removed: a parent of two children loses the link to one of them (a custody change);
        the parent stays, linked to the other child."""
        parent = self._parents_of_two()[0]
        self.used.add(parent["id"])
        links = sorted(parent["roles"]["contact"]["student_relationships"], key=lambda r: r["student"])
        parent["roles"]["contact"]["student_relationships"] = links[1:]
        self.happened.unlinked = (parent["id"], links[0]["student"], links[1]["student"])

    def _parent_removed(self, number: int, now: dt.datetime) -> None:
        """Parent removed: a parent of two children loses every link, and Clever drops the contact."""
        parent = self._parents_of_two()[0]
        students = tuple(sorted(r["student"] for r in parent["roles"]["contact"]["student_relationships"]))
        self.records["users"] = [u for u in self.records["users"] if u["id"] != parent["id"]]
        self.happened.removed_parent = (parent["id"], students)

    def _id_churn(self, number: int, now: dt.datetime) -> None:
        """Clever id churn: a student with a parent is re-created by Clever under a new id, with the same
        username, email and SIS id; their classes and their parent's link now name the new id."""
        parents = self._parents_of_two()
        old_id = parents[0]["roles"]["contact"]["student_relationships"][0]["student"]
        self.used |= {old_id, parents[0]["id"]}
        new_id = clever_id("7b", number, 2)
        for user in self.records["users"]:
            if user["id"] == old_id:
                user["id"] = new_id
                self.happened.churned_login = str(username_of(user))
            if "contact" in user["roles"]:
                for link in user["roles"]["contact"]["student_relationships"]:
                    if link["student"] == old_id:
                        link["student"] = new_id
        for section in self.records["sections"]:
            section["students"] = sorted(new_id if s == old_id else s for s in section["students"])
        self.happened.churned = (old_id, new_id)

    def _term_ended(self, number: int, now: dt.datetime) -> None:
        """End of a term: a term's last day has passed (Clever still lists its sections)."""
        self.happened.ended_terms[number] = sorted(
            t["id"] for t in self.records["terms"] if f"{t['end_date']}T23:59:59+00:00" < now.isoformat()
        )

    def _rollover(self, number: int, now: dt.datetime) -> None:
        """Rollover: Clever drops an ended first semester (its term and sections) and the second
        semester's classes start: a new section (new id, same course, teachers and students) per class."""
        ended = [
            t
            for t in self.records["terms"]
            if t["name"] == "Semester 1" and f"{t['end_date']}T23:59:59+00:00" < now.isoformat()
        ]
        following = {
            t["id"]: min(
                (
                    n
                    for n in self.records["terms"]
                    if n["name"] == "Semester 2" and n["start_date"] > t["end_date"]
                ),
                key=lambda n: n["start_date"],
            )["id"]
            for t in ended
        }
        kept, added = [], []
        for section in sorted(self.records["sections"], key=lambda s: s["id"]):
            if section.get("term_id") in following:
                self.serial += 1
                second = copy.deepcopy(section)
                second["id"] = clever_id("7d", number, self.serial)
                second["term_id"] = following[section["term_id"]]
                second["name"] = f"{section['name']} (S2)"
                added.append(second)
            else:
                kept.append(section)
        self.records["sections"] = kept + added
        self.records["terms"] = [t for t in self.records["terms"] if t["id"] not in following]
        self.happened.rolled_over[number] = sorted(following)

    def _term_date_edit(self, number: int, now: dt.datetime) -> None:
        """Term-date edit: the district moves the last day of the year-long term a week earlier; Clever
        re-creates the term under a new id with the new end date and moves its sections to it."""
        old = self.term("Year", "2026-08-17")
        new = {**copy.deepcopy(old), "id": clever_id("7c", number, 1), "end_date": EDITED_YEAR_END}
        self.records["terms"] = [t for t in self.records["terms"] if t["id"] != old["id"]] + [new]
        moved = []
        for section in self.records["sections"]:
            if section.get("term_id") == old["id"]:
                section["term_id"] = new["id"]
                moved.append(section["id"])
        self.happened.edited_term = (old["id"], new["id"])
        self.happened.edited_sections = sorted(moved)

    def _export_broke(self, number: int, now: dt.datetime) -> None:
        """SIS export broke: the export of the school with the fewest students fails, and Clever lists the
        school's sections with no students in them; the same night a student of that school leaves, which
        Clever shows only once the export is mended."""
        students = {s["id"]: 0 for s in self.records["schools"]}
        for user in self.records["users"]:
            if "student" in user["roles"]:
                for school in schools_of(user) & set(students):
                    students[school] += 1
        school = min(students, key=lambda s: (students[s], s))
        self.happened.broken_school = school
        self.happened.hidden_leaver = self._student_only_in(school)
        self._depart(self.happened.hidden_leaver)
        self._broken = (school, EMPTY_ROSTERS)

    def _school_vanished(self, number: int, now: dt.datetime) -> None:
        """School vanished: the broken school is not in Clever at all tonight (nor its sections, nor the
        people only in it); the same night a student of another school leaves."""
        school = self.happened.broken_school
        self.happened.healthy_leaver = self._student_only_in(school, outside=True)
        self._depart(self.happened.healthy_leaver)
        self._broken = (school, VANISHED)

    def _export_mended(self, number: int, now: dt.datetime) -> None:
        """Export mended: Clever serves the broken school whole again, as it is now (without the student
        who left while it was broken)."""
        self._broken = None

    # -- night by night -------------------------------------------------------------------------------------

    def advance(self, number: int) -> None:
        """Apply night ``number``'s lasting changes (call for 0, 1, 2, ... in order)."""
        now, _name, method = CALENDAR[number]
        change: Callable[[int, dt.datetime], None] = getattr(self, method)
        change(number, now)

    def night(self, number: int) -> Night:
        """The records Clever serves on night ``number`` (after :meth:`advance`), each collection by id."""
        now, name, _method = CALENDAR[number]
        records = copy.deepcopy(self.records)
        broken: frozenset[str] = frozenset()
        if self._broken is not None:
            school, how = self._broken
            break_school(records, school, how)
            broken = frozenset({school})
        for collection in COLLECTIONS:
            records[collection].sort(key=lambda r: r["id"])
        served = {user["id"] for user in records["users"]}
        hidden = {
            user["id"]: frozenset(schools_of(user))
            for user in self.records["users"]
            if user["id"] not in served
        }
        return Night(number, name, now, records, broken, hidden)


def describe(number: int) -> str:
    """Night ``number``'s date, name and what happens (its event's docstring, first sentence)."""
    now, name, method = CALENDAR[number]
    doc = getattr(SchoolYear, method).__doc__ or ""
    return f"night {number} ({now.date().isoformat()}, {name}): {' '.join(doc.split())}"
