"""The exact findings of builds that trip every check: kind, severity, file, record and message text.

The tiny district (tests/conftest.py) with more quirks: a school without an SIS id and one sharing
another's, a term with neither name nor dates, one with a date that is not a date, one repeating another's
name and dates, a section without an SIS id in a school that has no account, one repeating another's SIS
id, a user without an SIS id and one repeating another's. Built with ids from SIS ids, so each of those is
an id Canvas would refuse or apply twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from clever2sis.clever.frames import load_district
from clever2sis.clever.snapshot import Snapshot
from clever2sis.config import RawConfig, build_settings
from clever2sis.sis import files
from clever2sis.sis.build import build_frames
from clever2sis.sis.validate import check_references
from tests.conftest import DISTRICT_ID, SCHOOL_A, student, tiny_district

SIS_IDS = {
    "account_id": "{{ school.sis_id }}",
    "user_id": "{{ user.sis_id }}",
    "section_id": "{{ section.sis_id }}",
}


def quirky_district() -> dict[str, list[dict[str, Any]]]:
    records = tiny_district()
    records["schools"] += [
        {"id": "5f00000000000000000000c9", "district": DISTRICT_ID, "name": "Cedar Elementary"},
        {"id": "5f00000000000000000000d9", "district": DISTRICT_ID, "name": "Dogwood High", "sis_id": "100"},
    ]
    records["terms"] += [
        {"id": "5f00000000000000000000c4", "district": DISTRICT_ID},
        {
            "id": "5f00000000000000000000c5",
            "district": DISTRICT_ID,
            "name": "Summer",
            "start_date": "2026-13-45",
            "end_date": "2026-08-01",
        },
        {
            "id": "5f00000000000000000000c6",
            "district": DISTRICT_ID,
            "name": "Year",
            "start_date": "2026-08-17",
            "end_date": "2027-06-11",
        },
    ]
    algebra = records["sections"][0]
    records["sections"] += [
        dict(
            algebra,
            id="5f00000000000000000000e7",
            sis_id="",
            school="5f00000000000000000000c9",
            students=["5f0000000000000000000101"],
        ),
        dict(
            algebra,
            id="5f00000000000000000000e8",
            sis_id="9001",
            term_id="5f00000000000000000000c4",
            students=[],
        ),
    ]
    records["users"] += [
        student("5f0000000000000000000105", "No", "Id", school=SCHOOL_A, username="noid", sis_id=""),
        student("5f0000000000000000000106", "Same", "Id", school=SCHOOL_A, username="sameid", sis_id="S0101"),
    ]
    return records


def findings_of(
    snapshot: Path, tables: dict[str, Any], id_map: pd.DataFrame | None = None
) -> list[tuple[str, ...]]:
    settings = build_settings(RawConfig(data=tables))
    result = build_frames(load_district(Snapshot.open(snapshot)), settings, id_map=id_map)
    return [tuple(row) for row in result.findings.itertuples(index=False)]


WARNING, INFO = "warning", "info"
E1, E2, E3 = "5f00000000000000000000e1", "5f00000000000000000000e2", "5f00000000000000000000e3"
E7, E8 = "5f00000000000000000000e7", "5f00000000000000000000e8"
U = "5f0000000000000000000"


def test_every_check_of_the_builders_with_its_exact_message(snapshot_factory: Callable[..., Path]) -> None:
    found = findings_of(snapshot_factory(quirky_district()), {"ids": SIS_IDS})
    assert found == [
        (
            "account_without_id",
            WARNING,
            files.ACCOUNTS,
            "5f00000000000000000000c9",
            "school 5f00000000000000000000c9 renders an empty account_id; left out",
        ),
        (
            "duplicate_account_id",
            WARNING,
            files.ACCOUNTS,
            "5f00000000000000000000d9",
            "school 5f00000000000000000000d9: account_id '100' is already used by another school; left out",
        ),
        (
            "section_unknown_course",
            WARNING,
            files.COURSES,
            E3,
            f"section {E3}: course 5f00000000000000000000dd is not in the snapshot's courses; named from the "
            "section",
        ),
        (
            "section_unknown_school",
            WARNING,
            files.COURSES,
            E7,
            f"section {E7}: school 5f00000000000000000000c9 is not in the snapshot's schools (or has no "
            "account); its course goes in the root account",
        ),
        (
            "section_unknown_term",
            WARNING,
            files.COURSES,
            E8,
            f"section {E8}: term 5f00000000000000000000c4 is not in the snapshot's terms; its course goes to "
            "the default term",
        ),
        (
            "section_without_course",
            INFO,
            files.COURSES,
            E2,
            f"section {E2} has no course; named from the section",
        ),
        (
            "section_without_term",
            INFO,
            files.COURSES,
            E2,
            f"section {E2} has no term; its course goes to the default term",
        ),
        *(
            (
                "enrollment_section_not_built",
                WARNING,
                files.ENROLLMENTS,
                section,
                f"section {section} is not in sections.csv; {who} not enrolled",
            )
            for section, who in [
                (E7, f"student {U}101"),
                (E7, f"teacher {U}f01"),
                (E7, f"teacher {U}f02"),
                (E8, f"teacher {U}f01"),
                (E8, f"teacher {U}f02"),
            ]
        ),
        (
            "enrollment_unknown_user",
            WARNING,
            files.ENROLLMENTS,
            f"{U}199",
            f"section {E1}: student {U}199 is not in the snapshot's users; enrollment left out",
        ),
        *(
            (
                "enrollment_user_not_built",
                WARNING,
                files.ENROLLMENTS,
                f"{U}{user}",
                f"section {E2}: student {U}{user} is not in users.csv (see that user's findings, or the user_roles "
                "setting); enrollment left out",
            )
            for user in ("103", "104")
        ),
        (
            "duplicate_section_id",
            WARNING,
            files.SECTIONS,
            E8,
            f"section {E8}: section_id '9001' is already used by another section; left out",
        ),
        (
            "section_without_id",
            WARNING,
            files.SECTIONS,
            E7,
            f"section {E7} renders an empty section_id or course_id; left out",
        ),
        (
            "bad_date",
            WARNING,
            files.TERMS,
            "5f00000000000000000000c5",
            "term 5f00000000000000000000c5: start_date '2026-13-45' or end_date '2026-08-01' is not YYYY-MM-DD; "
            "sent without it",
        ),
        (
            "term_without_id",
            WARNING,
            files.TERMS,
            "5f00000000000000000000c4",
            "term 5f00000000000000000000c4 has no name or dates to derive a term_id from; its sections go to the "
            "fallback term",
        ),
        (
            "terms_merged",
            INFO,
            files.TERMS,
            "5f00000000000000000000c6",
            "term 5f00000000000000000000c6 has the same name and dates as another Clever term; both are Canvas "
            "term '2026-08-17_2027-06-11_year'",
        ),
        (
            "contacts_not_built",
            INFO,
            files.USERS,
            DISTRICT_ID,
            "1 contact(s) are not built as Canvas users (parents as observers are a separate option)",
        ),
        (
            "control_characters",
            WARNING,
            files.USERS,
            "S0101",
            "users.csv user_id S0101: control characters removed from first_name",
        ),
        (
            "duplicate_login",
            WARNING,
            files.USERS,
            f"{U}102",
            f"user {U}102: login_id 'shared' (district_username) is shared by 2 users; sent with login_id "
            "'an@example.org' instead",
        ),
        (
            "duplicate_login",
            WARNING,
            files.USERS,
            f"{U}103",
            f"user {U}103: login_id 'shared' (district_username) is shared by 2 users, and no other login field "
            "is usable; left out",
        ),
        (
            "duplicate_user_id",
            WARNING,
            files.USERS,
            f"{U}106",
            f"user {U}106: user_id 'S0101' is already used by another user; left out",
        ),
        (
            "invalid_email",
            WARNING,
            files.USERS,
            f"{U}103",
            f"user {U}103: email 'not-an-email' is not a valid address; sent without an email",
        ),
        (
            "missing_login",
            WARNING,
            files.USERS,
            f"{U}104",
            f"user {U}104 has no usable login_id (district_username, email); left out",
        ),
        (
            "user_without_id",
            WARNING,
            files.USERS,
            f"{U}105",
            f"user {U}105 renders an empty user_id; left out",
        ),
    ]


def test_the_checks_of_an_id_map(snapshot_factory: Callable[..., Path]) -> None:
    records = tiny_district()
    records["sections"].append(
        dict(records["sections"][0], id="5f00000000000000000000e4", term_id="5f00000000000000000000c3")
    )
    rows = [
        ("course", "MA", "5f00000000000000000000d1"),  # one Clever course, a Canvas course per term
        ("user", "OLD104", f"{U}104"),  # not built (no login)
        ("user", "A", f"{U}f01"),  # two old ids for one new id
        ("user", "B", f"{U}f01"),
    ]
    id_map = pd.DataFrame(rows, columns=["type", "old_id", "new_id"], dtype="string")
    found = findings_of(snapshot_factory(records), {"build": {"course_structure": "course"}}, id_map)
    assert [row for row in found if row[2] == files.CHANGE_SIS_ID] == [
        (
            "id_map_conflict",
            WARNING,
            files.CHANGE_SIS_ID,
            "A",
            f"user A -> {U}f01: the id map gives this old id twice, this new id twice, or this new id as "
            "another old id; not changed",
        ),
        (
            "id_map_conflict",
            WARNING,
            files.CHANGE_SIS_ID,
            "B",
            f"user B -> {U}f01: the id map gives this old id twice, this new id twice, or this new id as "
            "another old id; not changed",
        ),
        (
            "id_map_not_built",
            WARNING,
            files.CHANGE_SIS_ID,
            "MA",
            "course MA: Clever course 5f00000000000000000000d1 is several Canvas courses (one per school and "
            "term); its SIS id is not changed",
        ),
        (
            "id_map_not_built",
            WARNING,
            files.CHANGE_SIS_ID,
            "OLD104",
            f"user OLD104: Clever record {U}104 is not in users.csv; its SIS id is not changed",
        ),
    ]


def test_a_dangling_reference_drops_the_row_and_what_references_it() -> None:
    def frame(**columns: list[str]) -> pd.DataFrame:
        return pd.DataFrame(columns, dtype="string")

    built = {
        files.ACCOUNTS: frame(account_id=["A1"]),
        files.TERMS: frame(term_id=["T1"]),
        files.COURSES: frame(course_id=["C1", "C2"], account_id=["A1", "A9"], term_id=["", "T9"]),
        files.SECTIONS: frame(section_id=["S1", "S2"], course_id=["C1", "C2"]),
    }
    out, found = check_references(built)
    assert out[files.COURSES]["course_id"].tolist() == ["C1"]
    assert out[files.SECTIONS]["section_id"].tolist() == ["S1"]
    assert [tuple(row) for row in found.itertuples(index=False)] == [
        (
            "dangling_reference",
            WARNING,
            files.COURSES,
            "C2",
            "courses.csv course_id C2: account_id 'A9' is not in accounts.csv; row left out",
        ),
        (
            "dangling_reference",
            WARNING,
            files.SECTIONS,
            "S2",
            "sections.csv section_id S2: course_id 'C2' is not in courses.csv; row left out",
        ),
    ]
