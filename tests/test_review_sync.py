"""The review of a sync run's build shows what the night did beyond the CSVs: the observer links it removed
and added, the people it carried over to a new id (and the ambiguous ones), and the schools its guard held;
``review --excel`` has a sheet for each of those sections.

Each test runs real nights against the Canvas double (the helpers of tests/test_sync_observers.py,
tests/test_identity_churn.py and tests/test_sync_guard.py) and reads two reports: the one the sync wrote
into the build before it uploaded (``RUN/build/report.html``), and ``clever2sis review`` of the same build
afterwards. The expected values come from what Clever served those nights.
"""

from __future__ import annotations

import html as html_module
import re
import shutil
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from clever2sis.cli import main
from clever2sis.review.excel import write_spreadsheet_copies
from clever2sis.review.facts import open_build, review_facts
from clever2sis.review.report import render_report
from clever2sis.review.verdict import verdict
from clever2sis.sync.pipeline import RunResult
from tests.review_district import Changes
from tests.test_identity_churn import DAY, ambiguous_return, recreate
from tests.test_review_report import HOSTILE
from tests.test_sync_guard import break_rosters, schools
from tests.test_sync_nights import JANUARY, Nights, nights
from tests.test_sync_observers import LATER, fail_when, is_main, observer_nights

PLAIN_SHEETS = ["about", "accounts", "terms", "courses", "sections", "users", "enrollments", "findings"]
HELD_HEADER = ["status", "account_id", "school_id", "name", "since", "reason", "lost", "release"]
IDENTITY_HEADER = ["change", "new_id", "old_id", "name", "school", "school_ids", "keys", "via", "removed_on"]
LINKS_HEADER = [
    "change",
    "status",
    "sis_import_id",
    "import_state",
    "observer_id",
    "observer_name",
    "student_id",
    "student_name",
    "school",
    "school_ids",
]

PLANNED_NOTE = "Planned: this report was written before the import was posted."
NEW_ID = "7c" + "0" * 21 + "1"


# --- reading a report ------------------------------------------------------------------------------------


def _text(fragment: str) -> str:
    return html_module.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def table_rows(page: str, table_id: str) -> list[tuple[str, list[str]]]:
    """The rows of the report table in ``<details id=table_id>``: each row's data-schools and cell texts."""
    start = page.index(f'<details class="rows" id="{table_id}"')
    body = page[page.index("<tbody>", start) : page.index("</tbody>", start)]
    return [
        (html_module.unescape(schools), [_text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)])
        for schools, row in re.findall(r'<tr[^>]*data-schools="([^"]*)">(.*?)</tr>', body)
    ]


def verdict_lines(page: str, list_id: str) -> list[tuple[str, str]]:
    """The verdict's lines in ``<ul id=list_id>``: (text, the anchor it links to)."""
    if f'id="{list_id}"' not in page:
        return []
    start = page.index(f'<ul id="{list_id}">')
    items = page[start : page.index("</ul>", start)]
    return [
        (_text(text), anchor) for anchor, text in re.findall(r'<li><a href="#([^"]+)">(.*?)</a></li>', items)
    ]


def note(page: str, element_id: str) -> str:
    found = re.search(rf'<([a-z0-9]+)[^>]* id="{re.escape(element_id)}"[^>]*>(.*?)</\1>', page, re.DOTALL)
    assert found is not None, element_id
    return _text(found.group(2))


def build_of(result: RunResult) -> Path:
    assert result.run_dir is not None
    return result.run_dir / "build"


def sync_report(result: RunResult) -> str:
    """The report the sync wrote into its build before it posted anything."""
    return (build_of(result) / "report.html").read_text(encoding="utf-8")


def sheets_of(workbook: Path) -> dict[str, list[list[str]]]:
    """Every sheet of an .xlsx, in order: its rows, each cell's text ("" for an empty cell)."""
    import openpyxl

    book = openpyxl.load_workbook(workbook, read_only=True)
    return {
        name: [
            ["" if cell is None else cell for cell in row] for row in book[name].iter_rows(values_only=True)
        ]
        for name in book.sheetnames
    }


def reviewed_workbook(result: RunResult) -> dict[str, list[list[str]]]:
    """``clever2sis review --excel`` of the run's build, after the run: the sheets of its review.xlsx."""
    done = CliRunner().invoke(main, ["review", str(build_of(result)), "--excel", "--quiet"])
    assert done.exit_code == 0, done.output
    return sheets_of(build_of(result) / "review" / "review.xlsx")


def reviewed(result: RunResult) -> tuple[dict[str, Any], str]:
    """``clever2sis review`` of the run's build, after the run: its JSON facts and the report it wrote."""
    done = CliRunner().invoke(main, ["review", str(build_of(result)), "--json"])
    assert done.exit_code == 0, done.output
    return orjson.loads(done.stdout), sync_report(result)


# --- what Clever served ----------------------------------------------------------------------------------


def person(district: Nights, user_id: str, records: dict[str, Any] | None = None) -> str:
    """A user's name as Canvas shows it (first and last), from the records Clever served."""
    users = (records or district.records)["users"]
    name = next(u for u in users if u["id"] == user_id)["name"]
    return f"{name.get('first', '')} {name.get('last', '')}".strip()


def schools_of(district: Nights, user_id: str) -> tuple[str, str]:
    """The Canvas accounts of a student's sections (account ids are Clever school ids here) and, in that
    order, the schools' names."""
    ids = sorted({s["school"] for s in district.records["sections"] if user_id in s["students"]})
    names = {s["id"]: s["name"] for s in district.records["schools"]}
    return " ".join(ids), "; ".join(names[i] for i in ids)


def roster(district: Nights, school: str) -> set[str]:
    """The students Clever places in ``school`` (in any of its sections)."""
    return {p for s in district.records["sections"] if s["school"] == school for p in s["students"]}


def school_name(district: Nights, school: str) -> str:
    return next(s["name"] for s in district.records["schools"] if s["id"] == school)


def school_losses(district: Nights, school: str) -> str:
    """What ``school`` would lose once Clever lists its sections empty: every student Canvas enrolls there
    and their enrollments, of the enrollments Canvas holds there from the main import (not the observer
    enrollments the links make)."""
    held = [v for v in district.model.school_state(school)["enrollments"] if v[3] != "observer"]
    students = [v for v in held if v[3] == "student"]
    people = len({v[2] for v in students})
    return f"{people:,} of {people:,} students, {len(students):,} of {len(held):,} enrollments"


def school_cell(district: Nights, user_id: str) -> str:
    """The report's school cell for a student: the names, then the account ids."""
    ids, names = schools_of(district, user_id)
    return f"{names} {ids}"


# --- observer links --------------------------------------------------------------------------------------


def test_a_nights_report_shows_the_links_it_plans_and_review_then_shows_them_sent(tmp_path: Path) -> None:
    with observer_nights(tmp_path) as district:
        district.night(LATER[0])
        parent, gone, _kept = district.parent_of_two()
        newcomer = next(s["id"] for s in district.students() if (parent, s["id"]) not in district.links())
        district.unlink(parent, gone)
        district.link(parent, newcomer)
        night = district.night(LATER[1])

    assert night.exit_code == 0, night.message
    (gone_schools, gone_names), gone_cell = schools_of(district, gone), school_cell(district, gone)
    new_schools, new_cell = schools_of(district, newcomer)[0], school_cell(district, newcomer)
    parent_cell = f"{person(district, parent)} {parent}"
    removed_row = (gone_schools, [parent_cell, f"{person(district, gone)} {gone}", gone_cell])
    added_row = (new_schools, [parent_cell, f"{person(district, newcomer)} {newcomer}", new_cell])
    # Written before the imports were posted: what the night is about to send.
    page = sync_report(night)
    assert table_rows(page, "observer-links-removed") == [removed_row]
    assert table_rows(page, "observer-links-added") == [added_row]
    assert note(page, "observer-links-removed-status") == PLANNED_NOTE
    assert note(page, "observer-links-added-status") == PLANNED_NOTE
    planned = [
        (
            "1 parent link to be removed before the main import, in an import of their own",
            "observer-links-removed",
        ),
        (
            "1 parent link to be added after the main import, in an import of their own",
            "observer-links-added",
        ),
    ]
    assert [
        line for line in verdict_lines(page, "verdict-information") if line[1].startswith("observer-links")
    ] == planned
    assert '<li><a href="#observer-links">Observer links</a> (1 removed, 1 added)</li>' in page
    # Reviewed afterwards: what was sent, in which imports, and how they ended.
    removals, _main, links = night.summary["imports"]
    facts, page = reviewed(night)
    found = facts["observer_links"]
    assert found["status"] == {"removed": "sent", "added": "sent"}
    assert found["import"] == {"removed": removals, "added": links}
    assert [
        (row["observer_id"], row["student_id"], row["school_ids"], row["school"]) for row in found["removed"]
    ] == [(parent, gone, gone_schools, gone_names)]
    assert [line for line in facts["verdict"]["for_information"] if line["rule"] == "observer_links"] == [
        {
            "rule": "observer_links",
            "count": 1,
            "text": f"1 parent link removed before the main import (sis_import {removals['sis_import_id']}: "
            "imported)",
            "anchor": "observer-links-removed",
        },
        {
            "rule": "observer_links",
            "count": 1,
            "text": f"1 parent link added after the main import (sis_import {links['sis_import_id']}: imported)",
            "anchor": "observer-links-added",
        },
    ]
    assert table_rows(page, "observer-links-removed") == [removed_row]
    assert note(page, "observer-links-removed-status") == (
        f"Sent in sis_import {removals['sis_import_id']}: imported."
    )
    assert (
        note(page, "observer-links-added-status") == f"Sent in sis_import {links['sis_import_id']}: imported."
    )


def test_links_a_night_never_sent_are_said_to_be_not_sent(tmp_path: Path) -> None:
    with observer_nights(tmp_path) as district:
        district.night(LATER[0])
        parent, gone, _kept = district.parent_of_two()
        newcomer = next(s["id"] for s in district.students() if (parent, s["id"]) not in district.links())
        district.unlink(parent, gone)
        district.link(parent, newcomer)
        district.canvas.fail = fail_when(is_main)
        failed = district.night(LATER[1])

    assert failed.exit_code != 0
    assert [entry["import"] for entry in failed.summary["imports"]] == ["observer_removals", "main"]
    facts, page = reviewed(failed)
    assert facts["observer_links"]["status"] == {"removed": "sent", "added": "not sent"}
    assert [line["text"] for line in facts["verdict"]["for_information"] if line["rule"] == "observer_links"][
        1
    ] == (
        "1 parent link new tonight: not added, the run ended before their import was posted (the next run "
        "sends it)"
    )
    assert note(page, "observer-links-added-status") == (
        "Not sent: the run ended before this import was posted; the next run sends it."
    )
    assert [cells[1] for _, cells in table_rows(page, "observer-links-added")] == [
        f"{person(district, newcomer)} {newcomer}"
    ]


# --- identity changes ------------------------------------------------------------------------------------


def test_a_carried_over_student_is_shown_old_id_to_new_id_once_in_the_verdict(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        district.night(JANUARY)
        student = district.students()[5]
        old_id = student["id"]
        new_id = "7c" + "0" * 21 + "1"
        recreate(district, old_id, new_id)
        churned = district.night(JANUARY + DAY)

    assert churned.exit_code == 0, churned.message
    school_ids, school_names = schools_of(district, new_id)
    name = person(district, new_id)
    night = "2027-01-06T06:00:00Z"
    page = sync_report(churned)
    assert table_rows(page, "identities-carried-rows") == [
        (
            school_ids,
            [
                f"{name} {new_id}",
                old_id,
                "login_id, sis_id, student_number, name",
                "change_sis_id",
                night,
                school_cell(district, new_id),
            ],
        )
    ]
    facts = review_facts(open_build(build_of(churned)))
    assert facts["identities"]["carried_users"] == [
        {
            "old_id": old_id,
            "new_id": new_id,
            "keys": "login_id, sis_id, student_number, name",
            "via": "change_sis_id",
            "removed_on": night,
            "name": name,
            "school_ids": school_ids,
            "school": school_names,
        }
    ]
    assert facts["identities"]["ambiguous_users"] == []
    carried = "1 student Clever gave a new id keeps their Canvas user (carried over to the new id)"
    information = [
        (line["rule"], line["text"], line["anchor"]) for line in facts["verdict"]["for_information"]
    ]
    assert [line for line in information if line[1] == carried] == [
        ("identities", carried, "identities-carried")
    ]
    assert not [line for line in information if line[2] == "finding-identity_carried"]
    assert (carried, "identities-carried") in verdict_lines(page, "verdict-information")
    # Its change_sis_id.csv row is the carry-over itself: not listed again as another SIS id change.
    assert 'id="identities-sis-ids-rows"' not in page


def test_an_ambiguous_match_is_one_warning_and_its_people_are_listed(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        district.night(JANUARY)
        old_id, first_id, second_id, _sections = ambiguous_return(district)
        night = district.night(JANUARY + DAY)

    assert night.exit_code == 0, night.message
    facts = review_facts(open_build(build_of(night)))
    assert [
        (row["new_id"], row["keys"], row["old_ids"], row["name"])
        for row in facts["identities"]["ambiguous_users"]
    ] == [
        (first_id, "login_id", old_id, person(district, first_id)),
        (second_id, "sis_id, student_number", old_id, "Ravi Iyer"),
    ]
    decisions = facts["verdict"]["needs_decision"]
    assert [line["anchor"] for line in decisions].count("finding-identity_ambiguous") == 1
    assert not [line for line in facts["verdict"]["for_information"] if line["rule"] == "identities"]
    page = sync_report(night)
    assert [(schools, cells[:3]) for schools, cells in table_rows(page, "identities-ambiguous-rows")] == [
        (schools_of(district, first_id)[0], [f"{person(district, first_id)} {first_id}", "login_id", old_id]),
        (schools_of(district, second_id)[0], [f"Ravi Iyer {second_id}", "sis_id, student_number", old_id]),
    ]
    assert note(page, "identities-claimed") == (
        "1 login is still held in Canvas by removed users who are not carried over: given to no one "
        "(login_claimed_by_removed_user)."
    )


# --- held schools ----------------------------------------------------------------------------------------


def test_a_held_school_needs_a_decision_with_its_release_and_a_released_one_is_listed(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        district.night(JANUARY)
        school = schools(district)[0]
        sections = [s for s in district.records["sections"] if s["school"] == school]
        students = {p for s in sections for p in s["students"]}
        student_enrollments = sum(len(s["students"]) for s in sections)
        enrollments = len(district.model.school_state(school)["enrollments"])  # all Canvas holds there
        break_rosters(district, school)
        held = district.night(JANUARY + DAY)
        released = district.night(JANUARY + 2 * DAY, release=(school,))
        profile = district.job.profile.name

    assert [held.exit_code, released.exit_code] == [56, 0], (held.message, released.message)
    name = next(s["name"] for s in district.records["schools"] if s["id"] == school)
    since = held.summary["started"]
    lost = f"{len(students)} of {len(students)} students, {student_enrollments} of {enrollments} enrollments"
    decision = (
        f"1 school held since {since}: its rows stay as Canvas has them; release with --allow-large-change "
        f"{school} after checking Clever, or wait for its data to recover"
    )
    page = sync_report(held)
    assert verdict_lines(page, "verdict-decisions")[0] == (decision, "held-schools")
    assert table_rows(page, "held-schools-rows") == [
        (
            school,
            [
                f"{name} {school}",
                school,
                since,
                f"every one of its students vanished (would lose {lost})",
                lost,
                f"--allow-large-change {school}",
            ],
        )
    ]
    assert (
        note(page, "held-schools-command")
        == f"clever2sis sync --profile {profile} --allow-large-change {school}"
    )
    facts = review_facts(open_build(build_of(held)))
    assert facts["guard"]["verdict"] == "held"
    assert facts["guard"]["profile"] == profile
    assert [(s["account_id"], s["school_id"], s["name"], s["since"]) for s in facts["guard"]["held"]] == [
        (school, school, name, since)
    ]
    assert facts["verdict"]["needs_decision"][0] == {
        "rule": "held_schools",
        "count": 1,
        "text": decision,
        "anchor": "held-schools",
    }
    # Released the next night: nothing to decide about it; the report lists it as let through.
    page = sync_report(released)
    assert "held-schools" not in [anchor for _, anchor in verdict_lines(page, "verdict-decisions")]
    assert 'id="held-schools-rows"' not in page
    assert [cells[:2] for _, cells in table_rows(page, "released-schools-rows")] == [
        [f"{name} {school}", school]
    ]


# --- the workbook: review --excel ------------------------------------------------------------------------


def test_the_workbook_of_a_night_has_its_held_school_carried_over_student_and_observer_links(
    tmp_path: Path,
) -> None:
    with observer_nights(tmp_path) as district:
        district.night(LATER[0])
        parent, gone, kept = district.parent_of_two()
        school = next(s for s in schools(district) if not {gone, kept} & roster(district, s))
        outside = [s["id"] for s in district.students() if s["id"] not in roster(district, school)]
        linked = {student for _, student in district.links()}
        newcomer = next(s for s in outside if s not in linked)
        carried = next(s for s in outside if s not in linked and s != newcomer)
        lost = school_losses(district, school)
        break_rosters(district, school)
        recreate(district, carried, NEW_ID)
        district.unlink(parent, gone)
        district.link(parent, newcomer)
        night = district.night(LATER[1])

    assert night.exit_code == 56, night.message
    removals, _main, links = night.summary["imports"]
    assert [district.canvas.imports[i["sis_import_id"]].state for i in (removals, links)] == ["imported"] * 2
    sheets = reviewed_workbook(night)
    assert list(sheets) == [
        "about",
        "change_sis_id",
        *PLAIN_SHEETS[1:],
        "held_schools",
        "identity_changes",
        "observer_links",
        "changes",
    ]
    assert sheets["held_schools"] == [
        HELD_HEADER,
        [
            "held",
            school,
            school,
            school_name(district, school),
            night.summary["started"],
            f"every one of its students vanished (would lose {lost})",
            lost,
            f"--allow-large-change {school}",
        ],
    ]
    carried_ids, carried_schools = schools_of(district, NEW_ID)
    assert sheets["identity_changes"] == [
        IDENTITY_HEADER,
        [
            "carried over",
            NEW_ID,
            carried,
            person(district, NEW_ID),
            carried_schools,
            carried_ids,
            "login_id, sis_id, student_number, name",
            "change_sis_id",
            "2027-01-06T06:00:00Z",
        ],
    ]
    link_rows = [
        [
            *(change, "sent", str(entry["sis_import_id"]), "imported", parent, person(district, parent)),
            *(student, person(district, student), *reversed(schools_of(district, student))),
        ]
        for change, entry, student in (("removed", removals, gone), ("added", links, newcomer))
    ]
    assert sheets["observer_links"] == [LINKS_HEADER, *link_rows]
    copies = build_of(night) / "review"
    assert (copies / "observer_links.csv").read_text(encoding="utf-8-sig").splitlines()[1] == ",".join(
        [*link_rows[0][:2], f'"=""{removals["sis_import_id"]}"""', *link_rows[0][3:]]
    )


def test_the_workbook_of_a_release_night_lists_the_released_school_and_the_ambiguous_matches(
    tmp_path: Path,
) -> None:
    with nights(tmp_path) as district:
        district.night(JANUARY)
        leaver = district.students()[13]["id"]  # the student ambiguous_return replaces
        school = next(s for s in schools(district) if leaver not in roster(district, s))
        lost = school_losses(district, school)
        break_rosters(district, school)
        held = district.night(JANUARY + DAY)
        old_id, first_id, second_id, _sections = ambiguous_return(district)
        released = district.night(JANUARY + 2 * DAY, release=(school,))

    assert [held.exit_code, released.exit_code] == [56, 0], (held.message, released.message)
    sheets = reviewed_workbook(released)
    assert list(sheets) == [*PLAIN_SHEETS, "held_schools", "identity_changes", "changes"]
    reason = f"every one of its students vanished (would lose {lost})"
    assert sheets["held_schools"] == [
        HELD_HEADER,
        ["released", school, school, school_name(district, school), "", reason, lost, ""],
    ]
    ambiguous = [
        [
            *("ambiguous", new_id, old_id, person(district, new_id)),
            *(*reversed(schools_of(district, new_id)), keys, "", ""),
        ]
        for new_id, keys in ((first_id, "login_id"), (second_id, "sis_id, student_number"))
    ]
    assert sheets["identity_changes"] == [IDENTITY_HEADER, *ambiguous]


# --- builds that are not a sync run's --------------------------------------------------------------------


def test_a_build_without_sync_facts_has_none_of_the_sections(
    review_pair: tuple[Path, Path, Changes], tmp_path: Path
) -> None:
    old, new, _ = review_pair
    facts = review_facts(open_build(new), open_build(old))
    assert not {"guard", "identities", "observer_links"} & set(facts)
    page = render_report(facts)
    for section in ('id="guard"', 'id="identities"', 'id="observer-links"', "Held schools", "Observer links"):
        assert section not in page
    new = shutil.copytree(new, tmp_path / "new")
    view = open_build(new)
    out = write_spreadsheet_copies(view, review_facts(view, open_build(old)))
    assert list(sheets_of(out / "review.xlsx")) == [*PLAIN_SHEETS, "changes"]
    assert not {"held_schools.csv", "identity_changes.csv", "observer_links.csv"} & {
        p.name for p in out.iterdir()
    }
    out = write_spreadsheet_copies(view, review_facts(view))
    assert list(sheets_of(out / "review.xlsx")) == PLAIN_SHEETS


def test_the_workbook_has_a_row_for_each_part_of_the_sync_sections(
    review_pair: tuple[Path, Path, Changes], tmp_path: Path
) -> None:
    """The rows no night above makes: a finding let through, a user SIS id change of ``build --id-map``
    (no sync record of the person), links planned and links not sent (no import)."""
    old, new, _ = review_pair
    new = shutil.copytree(new, tmp_path / "new")
    view = open_build(new)
    facts = review_facts(view, open_build(old))
    let_through = "users.csv would lose 40 of 200 rows (20.0%, over shrink_limit_percent 10%)"
    facts.update(
        guard={
            "verdict": "released",
            "profile": "nightly",
            "held": [],
            "released": [],
            "findings": [let_through],
        },
        identities={
            "carried": 0,
            "ambiguous": 0,
            "logins_claimed": 0,
            "sis_id_changes": [{"old_id": "00123", "new_id": "=00124"}],
            "messages": [],
        },
        observer_links={
            "removed": [
                {
                    "observer_id": "p1",
                    "observer_name": "Ann Lee",
                    "student_id": "s1",
                    "student_name": "Bo Lee",
                }
            ],
            "added": [
                {"observer_id": "p2", "observer_name": "Cy Ray", "student_id": "s2", "student_name": "Di Ray"}
            ],
            "imports": [],
            "status": {"removed": "planned", "added": "not sent"},
            "import": {"removed": None, "added": None},
        },
    )
    sheets = sheets_of(write_spreadsheet_copies(view, facts) / "review.xlsx")
    assert list(sheets)[-4:] == ["held_schools", "identity_changes", "observer_links", "changes"]
    assert sheets["held_schools"] == [HELD_HEADER, ["let through", "", "", "", "", let_through, "", ""]]
    assert sheets["identity_changes"] == [
        IDENTITY_HEADER,
        ["other SIS id change", "=00124", "00123", "", "", "", "", "", ""],
    ]
    assert sheets["observer_links"] == [
        LINKS_HEADER,
        ["removed", "planned", "", "", "p1", "Ann Lee", "s1", "Bo Lee", "", ""],
        ["added", "not sent", "", "", "p2", "Cy Ray", "s2", "Di Ray", "", ""],
    ]


def test_every_value_of_the_sync_sections_is_escaped(review_pair: tuple[Path, Path, Changes]) -> None:
    old, new, _ = review_pair
    facts = review_facts(open_build(new), open_build(old))
    school = {
        "account_id": HOSTILE,
        "school_id": HOSTILE,
        "name": HOSTILE,
        "reason": HOSTILE,
        "losses": [{"measure": HOSTILE, "before": 2, "after": 0, "lost": 2}],
        "since": HOSTILE,
        "release": HOSTILE,
    }
    person_row = {
        "old_id": HOSTILE,
        "new_id": HOSTILE,
        "keys": HOSTILE,
        "via": HOSTILE,
        "removed_on": HOSTILE,
    }
    link = {"observer_id": HOSTILE, "observer_name": HOSTILE, "student_id": HOSTILE, "student_name": HOSTILE}
    named = {"name": HOSTILE, "school_ids": HOSTILE, "school": HOSTILE}
    entry = {"import": HOSTILE, "sis_import_id": HOSTILE, "import_state": HOSTILE}
    facts.update(
        guard={
            "verdict": HOSTILE,
            "profile": HOSTILE,
            "held": [school],
            "released": [school],
            "findings": [HOSTILE],
        },
        identities={
            "carried": 1,
            "ambiguous": 1,
            "logins_claimed": 1,
            "sis_id_changes": [{"old_id": HOSTILE, "new_id": "x"}],
            "messages": [],
            "carried_users": [{**person_row, **named}],
            "ambiguous_users": [{"new_id": HOSTILE, "keys": HOSTILE, "old_ids": HOSTILE, **named}],
        },
        observer_links={
            "removed": [{**link, **named}],
            "added": [{**link, **named}],
            "imports": [entry],
            "status": {"removed": "sent", "added": "sent"},
            "import": {"removed": entry, "added": entry},
        },
    )
    facts["verdict"] = verdict(facts)
    assert facts["verdict"]["needs_decision"][0]["rule"] == "held_schools"
    page = render_report(facts)
    assert HOSTILE not in page
    assert page.count("<script>") == 1
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
