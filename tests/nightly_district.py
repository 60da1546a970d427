"""A synthetic district that changes every night, for simulating a month of sync runs.

It starts from :func:`clever2sis.clever.sample.generate_district` and changes like a real district does:

* every night two students leave (their user and every roster place go) and two join (new users placed
  in sections of their school);
* on ``TEACHER_CHANGE_NIGHT`` a section gets another teacher;
* on ``VANISH_NIGHT`` one school (``vanishing`` schools) is missing from the data for that night only (a
  sharing setting, a broken SIS export), with its sections and the people who belong only to it;
* once the first semester has ended (``TERM_END``), from ``ROLLOVER_NIGHT`` on the district drops that
  term and its sections, as Clever does after a rollover.

``night(n)`` gives the records served that night (the cumulative changes up to it) and the facts a test
checks Canvas against: the users and roster places the district really holds.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from clever2sis.clever.sample import generate_district
from clever2sis.clever.snapshot import COLLECTIONS, Snapshot

FIRST_NIGHT = dt.datetime(2027, 1, 5, 6, 0, tzinfo=dt.UTC)
NIGHTS = 30
LEAVERS_PER_NIGHT = 2
JOINERS_PER_NIGHT = 2
SECTIONS_PER_JOINER = 4
TEACHER_CHANGE_NIGHT = 6
VANISH_NIGHT = 9
TERM_END = dt.date(2027, 1, 15)
ROLLOVER_NIGHT = 13  # 2027-01-18: the Monday after the term ended

Records = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class Night:
    number: int
    now: dt.datetime
    records: Records
    user_ids: frozenset[str]
    places: frozenset[tuple[str, str]]  # (section id, user id): students and teachers of each section

    def served(self) -> dict[str, list[bytes]]:
        return {name: [orjson.dumps(record) for record in self.records[name]] for name in COLLECTIONS}


def _schools_of(user: dict[str, Any]) -> set[str]:
    schools: set[str] = set()
    for role in user["roles"].values():
        if isinstance(role, dict):
            schools.update(role.get("schools") or [])
            if role.get("school"):
                schools.add(role["school"])
    return schools


class NightlyDistrict:
    def __init__(self, workdir: Path, *, students: int = 300, seed: int = 11, vanishing: int = 1) -> None:
        generate_district(workdir / "generated", students=students, seed=seed, as_of="2027-01-05T05:00:00Z")
        snapshot = Snapshot.open(workdir / "generated")
        self.records: Records = {name: list(snapshot.iter_records(name)) for name in COLLECTIONS}
        self.rng = random.Random(seed)
        self.joined = 0
        self.left: list[str] = []
        self.changed_section: str | None = None
        self.vanished_school: str | None = None
        self.vanished_schools: tuple[str, ...] = ()
        self.vanishing = vanishing
        self.ended_term_ids = {
            term["id"] for term in self.records["terms"] if term["end_date"] == TERM_END.isoformat()
        }

    # -- the cumulative changes ----------------------------------------------------------------------------

    def _students(self) -> list[dict[str, Any]]:
        return [user for user in self.records["users"] if "student" in user["roles"]]

    def _leave(self) -> None:
        leaving = self.rng.sample(sorted(u["id"] for u in self._students()), LEAVERS_PER_NIGHT)
        self.left.extend(leaving)
        gone = set(leaving)
        self.records["users"] = [u for u in self.records["users"] if u["id"] not in gone]
        for section in self.records["sections"]:
            section["students"] = [s for s in section["students"] if s not in gone]

    def _join(self, night: int) -> None:
        students = sorted(self._students(), key=lambda u: u["id"])
        for _ in range(JOINERS_PER_NIGHT):
            self.joined += 1
            model = self.rng.choice(students)
            user = copy.deepcopy(model)
            user["id"] = f"7f{night:04d}{self.joined:018d}"
            username = f"newstudent.{self.joined:04d}"
            user["email"] = f"{username}@students.example.org"
            user["name"] = {"first": "New", "last": f"Student{self.joined}", "middle": ""}
            role = user["roles"]["student"]
            role["credentials"] = {"district_username": username}
            role["email"] = user["email"]
            role["sis_id"] = role["student_number"] = f"9{self.joined:08d}"
            role["state_id"] = f"8{self.joined:09d}"
            self.records["users"].append(user)
            school = role["school"]
            sections = sorted(
                (s for s in self.records["sections"] if s["school"] == school), key=lambda s: s["id"]
            )
            for section in self.rng.sample(sections, min(SECTIONS_PER_JOINER, len(sections))):
                section["students"] = sorted([*section["students"], user["id"]])

    def _change_teacher(self) -> None:
        teachers = {u["id"]: u for u in self.records["users"] if "teacher" in u["roles"]}
        for section in sorted(self.records["sections"], key=lambda s: s["id"]):
            current = section.get("teacher")
            others = sorted(
                t for t, user in teachers.items() if section["school"] in _schools_of(user) and t != current
            )
            if current and others and section.get("term_id") not in self.ended_term_ids:
                section["teacher"] = others[0]
                section["teachers"] = [others[0], *(t for t in section["teachers"] if t != current)]
                self.changed_section = section["id"]
                return

    def _rollover(self) -> None:
        self.records["sections"] = [
            s for s in self.records["sections"] if s.get("term_id") not in self.ended_term_ids
        ]
        self.records["terms"] = [t for t in self.records["terms"] if t["id"] not in self.ended_term_ids]

    def advance(self, number: int) -> None:
        """Apply night ``number``'s lasting changes (call for 1, 2, ... in order)."""
        self._leave()
        self._join(number)
        if number == TEACHER_CHANGE_NIGHT:
            self._change_teacher()
        if number == ROLLOVER_NIGHT:
            self._rollover()

    # -- what is served ------------------------------------------------------------------------------------

    def night(self, number: int) -> Night:
        records = copy.deepcopy(self.records)
        if number == VANISH_NIGHT:
            schools = sorted(s["id"] for s in records["schools"])
            gone = self.vanished_schools = tuple(schools[-self.vanishing :])
            self.vanished_school = gone[-1]
            records["schools"] = [s for s in records["schools"] if s["id"] not in gone]
            records["sections"] = [s for s in records["sections"] if s["school"] not in gone]
            records["users"] = [
                u for u in records["users"] if not _schools_of(u) or _schools_of(u) - set(gone)
            ]
        for name in COLLECTIONS:
            records[name].sort(key=lambda r: r["id"])
        user_ids = frozenset(u["id"] for u in records["users"])
        places = frozenset(
            (section["id"], person)
            for section in records["sections"]
            for person in [*section["students"], *section.get("teachers", [])]
        )
        now = FIRST_NIGHT + dt.timedelta(days=number)
        return Night(number, now, records, user_ids, places)
