"""Course and term ids that stay put under ordinary SIS edits.

A term whose dates change is re-created by Clever (a new id) and derives another term_id; given what Canvas
holds (``previous``), the build lets it keep the old Canvas term_id, one to one only. A course is never given
sections of two schools. Each test builds the tiny district once as Canvas holds it and again after an edit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from clever2sis.clever.frames import load_district
from clever2sis.clever.snapshot import Snapshot
from clever2sis.config import RawConfig, build_settings
from clever2sis.errors import BuildError
from clever2sis.sis import files
from clever2sis.sis.build import PREVIOUS_FILES, BuiltFiles, build_frames
from clever2sis.sis.builders.terms import Previous
from clever2sis.sis.writer import csv_bytes
from tests.conftest import SCHOOL_B, tiny_district
from tests.test_builders import assert_canvas_accepts

Records = dict[str, list[dict[str, Any]]]
MakeSnapshot = Callable[[Records], Path]

YEAR = "5f00000000000000000000c1"  # "Year" 2026-08-17 .. 2027-06-11: section e1 (course d1, school a1)
SEMESTER = "5f00000000000000000000c3"  # "Semester 1" 2026-08-17 .. 2027-01-15: section e3
YEAR_ID = "2026-08-17_2027-06-11_year"
SEMESTER_ID = "2026-08-17_2027-01-15_semester-1"
E1, E3, E4 = "5f00000000000000000000e1", "5f00000000000000000000e3", "5f00000000000000000000e4"
NEW_YEAR, OTHER_NEW = "5f00000000000000000000c9", "5f00000000000000000000ca"


def build(
    make: MakeSnapshot, records: Records, previous: Previous | None = None, **tables: dict[str, object]
) -> BuiltFiles:
    settings = build_settings(RawConfig(data=tables))
    return build_frames(load_district(Snapshot.open(make(records))), settings, previous=previous)


def held(result: BuiltFiles) -> Previous:
    """What Canvas holds once ``result`` is imported, as far as a build's ``previous`` needs it."""
    return {name: result.frames[name] for name in PREVIOUS_FILES}


def csv_text(result: BuiltFiles, name: str) -> str:
    return csv_bytes(result.frames[name]).decode()


def findings(result: BuiltFiles, *kinds: str) -> list[tuple[str, str]]:
    found = result.findings[result.findings["kind"].isin(kinds)]
    return list(zip(found["record_id"], found["message"], strict=True))


def recreate(records: Records, old: str, new: str, *, sections: list[str], **dates: str) -> None:
    """Clever re-creates term ``old`` as ``new`` (new dates) and points ``sections`` at it."""
    term = next(t for t in records["terms"] if t["id"] == old)
    records["terms"] = [t for t in records["terms"] if t["id"] != old] + [dict(term, id=new, **dates)]
    for section in records["sections"]:
        if section["id"] in sections:
            section["term_id"] = new


def with_section(records: Records, section_id: str, **fields: object) -> Records:
    """``records`` plus a copy of section e1 with ``fields`` changed."""
    records["sections"].append(dict(records["sections"][0], id=section_id, **fields))
    return records


def recreated_year() -> Records:
    """The tiny district after Clever re-created the "Year" term with a later end date."""
    records = tiny_district()
    recreate(records, YEAR, NEW_YEAR, sections=[E1], end_date="2027-06-18")
    return records


def claimed_year() -> tuple[Records, Records]:
    """Before and after: sections e1 and e4 were in "Year"; now each is in a new term of its own."""
    before = with_section(tiny_district(), E4, period="3")
    records = with_section(tiny_district(), E4, period="3")
    recreate(records, YEAR, NEW_YEAR, sections=[E1], end_date="2027-06-18")
    records["terms"].append(dict(records["terms"][-1], id=OTHER_NEW, end_date="2027-06-25"))
    records["sections"][-1]["term_id"] = OTHER_NEW
    return before, records


def merged_terms() -> Records:
    """Sections of "Year" and "Semester 1" (both gone) are now in one new term."""
    records = tiny_district()
    recreate(records, YEAR, NEW_YEAR, sections=[E1, E3], end_date="2027-06-18")
    records["terms"] = [t for t in records["terms"] if t["id"] != SEMESTER]
    return records


def keeping_findings(make: MakeSnapshot) -> list[tuple[str, ...]]:
    """Every finding of builds against what Canvas holds in which a term is kept, or is not and why."""
    plain = held(build(make, tiny_district()))
    before, claimed = claimed_year()
    results = [
        build(make, recreated_year(), plain),
        build(make, claimed, held(build(make, before))),
        build(make, merged_terms(), plain),
    ]
    return [tuple(row) for result in results for row in result.findings.itertuples(index=False)]


def test_a_recreated_term_keeps_its_term_id_with_the_new_dates(snapshot_factory: MakeSnapshot) -> None:
    before = build(snapshot_factory, tiny_district())
    records = recreated_year()

    after = build(snapshot_factory, records, held(before))
    assert csv_text(after, files.TERMS) == (
        "term_id,name,status,start_date,end_date\n"
        "2025-08-18_2026-06-12_year,Year (2025-08-18 – 2026-06-12),active,2025-08-18T00:00:00Z,2026-06-12T23:59:59Z\n"
        f"{SEMESTER_ID},Semester 1,active,2026-08-17T00:00:00Z,2027-01-15T23:59:59Z\n"
        f"{YEAR_ID},Year (2026-08-17 – 2027-06-18),active,2026-08-17T00:00:00Z,2027-06-18T23:59:59Z\n"
    )
    assert csv_text(after, files.COURSES) == csv_text(before, files.COURSES)
    assert findings(after, "term_recreated", "term_not_kept") == [
        (
            NEW_YEAR,
            f"term {NEW_YEAR} re-creates Canvas term '{YEAR_ID}' (its sections were all in it, and no Clever "
            f"term gives it any more): it keeps that term_id, with dates 2026-08-17 – 2027-06-11 now "
            "2026-08-17 – 2027-06-18",
        )
    ]
    assert_canvas_accepts(after)

    # Without what Canvas holds, the term is a new one and its course moves to it.
    unaware = build(snapshot_factory, records)
    assert "2026-08-17_2027-06-18_year,Year" in csv_text(unaware, files.TERMS)
    assert f"{E1},MA101 P2,Algebra I - Okafor - 2,5f00000000000000000000a1,2026-08-17_2027-06-18_year," in (
        csv_text(unaware, files.COURSES)
    )


def test_the_course_structure_keeps_its_course_ids_through_a_recreated_term(
    snapshot_factory: MakeSnapshot,
) -> None:
    course = {"course_structure": "course"}
    before = build(snapshot_factory, with_section(tiny_district(), E4, period="3"), build=course)
    records = with_section(tiny_district(), E4, period="3")
    recreate(records, YEAR, NEW_YEAR, sections=[E1, E4], start_date="2026-08-10")

    after = build(snapshot_factory, records, held(before), build=course)
    kept = f"5f00000000000000000000d1_5f00000000000000000000a1_{YEAR_ID}"
    assert csv_text(after, files.SECTIONS) == csv_text(before, files.SECTIONS)
    assert csv_text(after, files.SECTIONS).count(f",{kept},") == 2
    assert csv_text(after, files.COURSES) == csv_text(before, files.COURSES)
    assert f"{YEAR_ID},Year (2026-08-10 – 2027-06-11),active,2026-08-10T00:00:00Z," in csv_text(
        after, files.TERMS
    )
    assert [record for record, _ in findings(after, "term_recreated")] == [NEW_YEAR]


def test_two_new_terms_claiming_one_old_term_keep_nothing(snapshot_factory: MakeSnapshot) -> None:
    earlier, records = claimed_year()
    after = build(snapshot_factory, records, held(build(snapshot_factory, earlier)))
    assert YEAR_ID not in csv_text(after, files.TERMS)
    assert findings(after, "term_recreated", "term_not_kept") == [
        (
            NEW_YEAR,
            f"term {NEW_YEAR}: its sections were in Canvas term '{YEAR_ID}', and so were those of new Canvas "
            "term(s) '2026-08-17_2027-06-25_year'; a term_id is kept by one new term only, so this is new "
            "Canvas term '2026-08-17_2027-06-18_year'",
        ),
        (
            OTHER_NEW,
            f"term {OTHER_NEW}: its sections were in Canvas term '{YEAR_ID}', and so were those of new "
            "Canvas term(s) '2026-08-17_2027-06-18_year'; a term_id is kept by one new term only, so this is "
            "new Canvas term '2026-08-17_2027-06-25_year'",
        ),
    ]


def test_a_new_term_whose_sections_were_in_several_terms_keeps_nothing(
    snapshot_factory: MakeSnapshot,
) -> None:
    before = build(snapshot_factory, tiny_district())
    after = build(snapshot_factory, merged_terms(), held(before))
    assert "2026-08-17_2027-06-18_year" in csv_text(after, files.TERMS)
    assert findings(after, "term_recreated", "term_not_kept") == [
        (
            NEW_YEAR,
            f"term {NEW_YEAR}: its sections were in several Canvas terms ('{SEMESTER_ID}', '{YEAR_ID}'); a "
            "term_id is kept only when they were all in one, so this is new Canvas term "
            "'2026-08-17_2027-06-18_year'",
        )
    ]


@pytest.mark.parametrize(
    "case",
    ["old term still given", "sections all new", "from the fallback term", "old term deleted in Canvas"],
)
def test_a_new_term_that_replaces_no_vanished_term_is_simply_new(
    snapshot_factory: MakeSnapshot, case: str
) -> None:
    """No finding either: nothing was re-created."""
    tables: dict[str, dict[str, object]] = {"terms": {"fallback_term_id": "no-term"}}
    before = build(snapshot_factory, tiny_district(), **tables)
    previous = held(before)
    records = tiny_district()
    new_term = dict(records["terms"][0], id=NEW_YEAR, end_date="2027-06-18")
    records["terms"].append(new_term)
    moved = {
        "old term still given": [E1],  # e1 moves to the new term, and its old term is still there tonight
        "sections all new": [E4],
        "from the fallback term": ["5f00000000000000000000e2"],  # e2 had no term
        "old term deleted in Canvas": [E1],
    }[case]
    if case == "sections all new":
        with_section(records, E4)
    if case != "old term still given":
        records["terms"] = [t for t in records["terms"] if t["id"] != YEAR]
    if case == "old term deleted in Canvas":
        terms = previous[files.TERMS].copy()
        terms.loc[terms["term_id"] == YEAR_ID, "status"] = "deleted"
        previous = {**previous, files.TERMS: terms}
    for section in records["sections"]:
        if section["id"] in moved:
            section["term_id"] = NEW_YEAR

    after = build(snapshot_factory, records, previous, **tables)
    assert "2026-08-17_2027-06-18_year,Year" in csv_text(after, files.TERMS)
    assert findings(after, "term_recreated", "term_not_kept") == []


def test_no_previous_and_an_empty_previous_build_as_before(snapshot_factory: MakeSnapshot) -> None:
    plain = build(snapshot_factory, tiny_district())
    empty = {name: pd.DataFrame({c: [] for c in files.COLUMNS[name]}, dtype="str") for name in PREVIOUS_FILES}
    against_nothing = build(snapshot_factory, tiny_district(), empty)
    for name in plain.frames:
        assert csv_text(against_nothing, name) == csv_text(plain, name)


def _rename_course(records: Records) -> None:
    records["courses"][0].update(name="Algebra One", number="MA111")


def _change_teacher(records: Records) -> None:
    section = records["sections"][0]
    section["teacher"] = "5f0000000000000000000f02"
    section["teachers"] = ["5f0000000000000000000f02"]


def _edit_term_dates(records: Records) -> None:
    recreate(records, YEAR, NEW_YEAR, sections=[E1, E4], end_date="2027-06-04")


@pytest.mark.parametrize("structure", ["section", "course"])
@pytest.mark.parametrize("edit", [_rename_course, _change_teacher, _edit_term_dates])
def test_course_and_section_ids_survive_ordinary_edits(
    snapshot_factory: MakeSnapshot, structure: str, edit: Callable[[Records], None]
) -> None:
    district = with_section(tiny_district(), E4, period="3", sis_id="9004")
    before = build(snapshot_factory, district, build={"course_structure": structure})
    records = copy.deepcopy(district)
    edit(records)
    after = build(snapshot_factory, records, held(before), build={"course_structure": structure})

    def ids(result: BuiltFiles) -> list[tuple[str, str]]:
        sections = result.frames[files.SECTIONS]
        return list(zip(sections["section_id"], sections["course_id"], strict=True))

    assert ids(after) == ids(before)
    courses = ["course_id", "account_id", "term_id"]
    assert after.frames[files.COURSES][courses].equals(before.frames[files.COURSES][courses])
    if edit is _rename_course:  # the edit reached the build: only the names changed
        assert "MA111" in csv_text(after, files.COURSES)


def test_a_course_id_that_spans_schools_is_refused(snapshot_factory: MakeSnapshot) -> None:
    records = with_section(tiny_district(), E4, school=SCHOOL_B, sis_id="9004")
    template = "{{ course.id }}_{{ canvas.term_id }}"
    with pytest.raises(BuildError) as refused:
        build(snapshot_factory, records, build={"course_structure": "course"}, ids={"course_id": template})
    assert str(refused.value) == (
        f"ids.course_id = '{template}' puts sections of several schools in one Canvas course "
        f"('5f00000000000000000000d1_{YEAR_ID}': schools 5f00000000000000000000a1, 5f00000000000000000000b1), "
        "and a Canvas course belongs to one school's account; add {{ school.id }} to ids.course_id"
    )
    # The section structure with the same template is refused as well; the defaults never are.
    with pytest.raises(BuildError, match="puts sections of several schools in one Canvas course"):
        build(snapshot_factory, records, ids={"course_id": template})
    by_school = build(snapshot_factory, records, build={"course_structure": "course"})
    accounts = by_school.frames[files.SECTIONS].merge(by_school.frames[files.COURSES], on="course_id")
    assert accounts.groupby("course_id")["account_id"].nunique().max() == 1
