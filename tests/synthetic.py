"""Small synthetic districts for the pull tests, written with SnapshotWriter (every value invented here).

Ids look like Clever's (24 hex digits, ascending in creation order). Names include non-ASCII letters so the
byte-for-byte path is exercised. ``dangling`` adds references to ids that are not in the district, as a
district sync in progress produces.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from clever2sis.clever.snapshot import COLLECTIONS, SnapshotWriter

FIRST_NAMES = ("Ada", "Bao", "Chloé", "Dmitri", "Eun-ji", "Farah", "Gústav", "Hana", "Ifeoma", "Jonás")
LAST_NAMES = ("Okafor", "Nguyễn", "Müller", "O'Brien", "Søndergaard", "Kowalski", "Tanaka", "Álvarez")
STUDENTS_PER_SECTION = 25
STUDENTS_PER_SCHOOL = 400


class _Ids:
    """Ascending ObjectID-like ids: an 8-hex-digit time, then a fixed middle, then a counter."""

    def __init__(self, seed: int) -> None:
        self._next = 0x5F000000
        self._middle = f"{seed & 0xFFFFFFFF:08x}"

    def __call__(self) -> str:
        self._next += 1
        return f"{self._next:08x}{self._middle}{self._next & 0xFFFFFFFF:08x}"


def district_records(
    students: int, *, seed: int = 1, dangling: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """Every collection of an invented district, records in ascending id order."""
    rng = random.Random(seed)
    new_id = _Ids(seed)
    district_id = new_id()
    stamp = "2024-08-01T12:00:00.000Z"
    district = {"id": district_id, "name": f"Synthetic District {seed}", "sis_type": "sftp"}
    schools = [
        {"id": new_id(), "district": district_id, "name": f"School {n + 1}", "sis_id": f"S{n + 1}"}
        for n in range(max(1, -(-students // STUDENTS_PER_SCHOOL)))
    ]
    terms = [
        {"id": new_id(), "district": district_id, "name": name, "start_date": start, "end_date": end}
        for name, start, end in (("S1", "2024-08-15", "2024-12-20"), ("S2", "2025-01-06", "2025-06-06"))
    ]
    courses = [
        {"id": new_id(), "district": district_id, "name": f"Course {n}", "number": str(100 + n)}
        for n in range(5)
    ]

    def person() -> dict[str, str]:
        return {"first": rng.choice(FIRST_NAMES), "last": rng.choice(LAST_NAMES)}

    users: list[dict[str, Any]] = []
    student_ids: list[tuple[str, str]] = []
    for n in range(students):
        school = schools[n // STUDENTS_PER_SCHOOL]["id"]
        user_id = new_id()
        student_ids.append((user_id, school))
        users.append(
            {
                "id": user_id,
                "district": district_id,
                "name": person(),
                "created": stamp,
                "roles": {
                    "student": {"school": school, "schools": [school], "sis_id": f"st{n}", "grade": "9"}
                },
            }
        )
    sections: list[dict[str, Any]] = []
    for start in range(0, students, STUDENTS_PER_SECTION):
        members = student_ids[start : start + STUDENTS_PER_SECTION]
        teacher_id = new_id()
        school = members[0][1]
        users.append(
            {
                "id": teacher_id,
                "district": district_id,
                "name": person(),
                "email": f"t{start}@example.org",
                "roles": {"teacher": {"school": school, "schools": [school], "sis_id": f"t{start}"}},
            }
        )
        sections.append(
            {
                "id": new_id(),
                "district": district_id,
                "school": school,
                "course": rng.choice(courses)["id"],
                "term_id": rng.choice(terms)["id"],
                "name": f"Section {len(sections) + 1}",
                "students": [member for member, _ in members],
                "teacher": teacher_id,
                "teachers": [teacher_id],
            }
        )
    for n in range(0, students, 3):
        users.append(
            {
                "id": new_id(),
                "district": district_id,
                "name": {"last": "Parent Ñandú"},
                "roles": {
                    "contact": {
                        "student_relationships": [{"relationship": "Parent", "student": student_ids[n][0]}]
                    }
                },
            }
        )
    if dangling and sections:
        missing = new_id()
        sections[0]["students"].append(missing)
        sections[0]["course"] = "ffffffffffffffffffffff01"
        users[-1]["roles"]["contact"]["student_relationships"].append({"student": missing})
    return {
        "districts": [district],
        "schools": schools,
        "terms": terms,
        "courses": courses,
        "sections": sorted(sections, key=lambda r: r["id"]),
        "users": sorted(users, key=lambda r: r["id"]),
    }


def write_district(dest: Path, students: int, *, seed: int = 1, dangling: bool = False) -> Path:
    """Write :func:`district_records` as a snapshot at ``dest``."""
    records = district_records(students, seed=seed, dangling=dangling)
    with SnapshotWriter(dest, api_version="v3.0", source="synthetic") as snapshot:
        for name in COLLECTIONS:
            snapshot.collection(name).write(records[name])
        snapshot.finish(district=records["districts"][0], started_at="2024-08-01T12:00:00Z")
    return dest
