"""Two builds of the demo district for the review tests: as bundled, and after a night of real changes.

The changed copy holds what a district's roster really does between two pulls: a student leaves, one
arrives, a student's last name changes, a student moves school (new school, new schedule), a section
changes teacher, and a section gets a co-teacher. Every choice is by sorted id, so the result is stable.
The schools are the first elementary, middle and high school by id (by their grades), so the same
night can be made of any sample district; ``also_leaving`` makes that many more students leave, spread
over the district, for a night of many removals.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clever2sis.clever.snapshot import COLLECTIONS, Snapshot
from clever2sis.config import RawConfig, build_settings
from clever2sis.sis.build import build
from tests.conftest import write_snapshot

DEMO = Path(__file__).resolve().parents[1] / "samples" / "demo-district"
ARRIVING_ID = "69ffffff44b8c55b4f19ff01"
MIDDLE_LOW_GRADE = "6"
HIGH_LOW_GRADE = "9"
ELEMENTARY_HIGH_GRADES = {
    "PreKindergarten",
    "TransitionalKindergarten",
    "Kindergarten",
    "1",
    "2",
    "3",
    "4",
    "5",
}


@dataclass(frozen=True)
class Changes:
    """Who and what the changed copy changed, for assertions."""

    leaving: str
    arriving: str
    renamed: str
    new_last_name: str
    moved: str
    retaught_section: str
    old_teacher: str
    new_teacher: str
    cotaught_section: str
    coteacher: str
    also_leaving: tuple[str, ...] = ()


def _students_of(sections: list[dict[str, Any]], school: str) -> list[str]:
    return sorted({s for section in sections if section["school"] == school for s in section["students"]})


def _schedule(sections: list[dict[str, Any]], user_id: str) -> list[dict[str, Any]]:
    return [section for section in sections if user_id in section["students"]]


def _first_school(schools: list[dict[str, Any]], wanted: Any) -> str:
    return min(school["id"] for school in schools if wanted(school))


def changed_demo(dest: Path, source: Path = DEMO, *, also_leaving: int = 0) -> Changes:
    """Write the changed copy of ``source`` to ``dest`` (``also_leaving`` more students leaving)."""
    snapshot = Snapshot.open(source)
    records = {name: list(snapshot.iter_records(name)) for name in COLLECTIONS}
    users = {user["id"]: user for user in records["users"]}
    sections = sorted(records["sections"], key=lambda s: s["id"])
    schools = records["schools"]
    elementary = _first_school(schools, lambda s: s.get("high_grade") in ELEMENTARY_HIGH_GRADES)
    middle = _first_school(schools, lambda s: s.get("low_grade") == MIDDLE_LOW_GRADE)
    high = _first_school(schools, lambda s: s.get("low_grade") == HIGH_LOW_GRADE)

    middle_students = _students_of(sections, middle)
    high_students = _students_of(sections, high)
    leaving, moved = middle_students[0], middle_students[1]
    renamed = _students_of(sections, elementary)[0]
    schedule_donor = high_students[0]
    keep = {leaving, moved, renamed, schedule_donor, high_students[1]}
    others = sorted({s for section in sections for s in section["students"] if s in users and s not in keep})
    stride = max(len(others) // also_leaving, 1) if also_leaving else 1
    more = tuple(others[::stride][:also_leaving])

    # Students leave: gone from users and from every roster.
    gone = {leaving, *more}
    records["users"] = [user for user in records["users"] if user["id"] not in gone]
    for section in sections:
        section["students"] = [s for s in section["students"] if s not in gone]

    # A student arrives at the high school, with the schedule of a classmate.
    arriving = copy.deepcopy(users[schedule_donor])
    arriving["id"] = ARRIVING_ID
    arriving["name"] = {"first": "Amara", "middle": "", "last": "Okonkwo"}
    role = arriving["roles"]["student"]
    role["credentials"] = {"district_username": "amara.okonkwo9001"}
    role["sis_id"] = role["student_number"] = "100009001"
    role["state_id"] = "3000009001"
    arriving["email"] = role["email"] = "amara.okonkwo9001@students.sierravistausd.example.org"
    records["users"].append(arriving)
    for section in _schedule(sections, schedule_donor):
        section["students"].append(ARRIVING_ID)

    # A last name changes.
    new_last_name = users[renamed]["name"]["last"] + "-Reyes"
    users[renamed]["name"]["last"] = new_last_name

    # A student moves from the middle school to the high school: new school, new schedule.
    for section in sections:
        section["students"] = [s for s in section["students"] if s != moved]
    for section in _schedule(sections, high_students[1]):
        section["students"].append(moved)
    users[moved]["roles"]["student"]["school"] = high
    users[moved]["roles"]["student"]["schools"] = [high]

    # A section changes teacher; another gets a co-teacher (both single-teacher high school sections).
    taught = [s for s in sections if s["school"] == high and len(s["teachers"]) == 1]
    retaught, cotaught = taught[0], taught[1]
    high_teachers = sorted({t for s in sections if s["school"] == high for t in s["teachers"]})
    old_teacher = retaught["teachers"][0]
    new_teacher = next(t for t in high_teachers if t not in (old_teacher, cotaught["teachers"][0]))
    retaught["teacher"] = new_teacher
    retaught["teachers"] = [new_teacher]
    coteacher = next(t for t in high_teachers if t not in (cotaught["teachers"][0], new_teacher))
    cotaught["teachers"].append(coteacher)

    records["districts"] = list(snapshot.iter_records("districts"))
    write_snapshot(dest, records)
    return Changes(
        leaving=leaving,
        arriving=ARRIVING_ID,
        renamed=renamed,
        new_last_name=new_last_name,
        moved=moved,
        retaught_section=retaught["id"],
        old_teacher=old_teacher,
        new_teacher=new_teacher,
        cotaught_section=cotaught["id"],
        coteacher=coteacher,
        also_leaving=more,
    )


def build_pair(root: Path) -> tuple[Path, Path, Changes]:
    """Build the demo district and its changed copy under ``root``: (older build, newer build, changes)."""
    settings = build_settings(RawConfig(data={}))
    changes = changed_demo(root / "snapshot-changed")
    build(DEMO, root / "build-1", settings)
    build(root / "snapshot-changed", root / "build-2", settings)
    return root / "build-1", root / "build-2", changes
