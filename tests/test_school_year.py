"""A school year of nightly syncs, judged by what Canvas holds against what Clever says, night by night.

The district of :mod:`tests.school_year` is served each night by the local Clever server and synced with
the default settings (diffing, the 7-day remaster, ``change_threshold`` 10, removals ``inactive`` and
``suspended``, term rollover) and observers on, for both course structures, into a FakeCanvas whose
CanvasModel applies each import as canvas-lms does. After each night the invariant
(:func:`tests.invariant.violations`) is computed on the model, every course that exists is marked as
holding coursework, and a copy of the model is kept, so each test reads Canvas's state on any night.

**A successful night** ends with exit 0. Exit 20 (``imported_with_messages``) would count too if every
message Canvas gave were one the product could not avoid (:data:`UNAVOIDABLE`), but in this district none
is: each one (an email or login Canvas refuses, a login claimed by a suspended user, a term Canvas will
not delete, a diff skipped over ``change_threshold``) follows from data and rules the product knows before
it posts. A successful night must satisfy the invariant. Any other night must say so (a non-zero exit,
the same outcome in history and in the JSON line), delete no coursework, and be followed by a successful
night; the year's last night must be successful.

**A held night** is a night on which Clever serves one school's data broken (``Night.broken_schools``: its
rosters empty, or the school vanished). It is not successful in that sense, and must not be: Canvas must
not apply the broken school. It must end with exit 56 (outcome ``schools_held``), its ``held_schools``
naming exactly the broken schools, each held since the first broken night; Canvas's state of each broken
school (:meth:`CanvasModel.school_state`: its account, courses, sections, enrollments, its people's
logins and the links to them), and the Canvas users of its people Clever does not serve tonight (its staff,
who have no enrollment, too), must equal their state after the last night before the break, so nothing of
it was removed or changed; and the invariant must hold on every other school (:func:`tests.invariant.violations`
with ``Tonight.held_schools``, which leaves the held schools' rows out). The night the data returns must be
successful, with the invariant whole.

``test_night`` runs once per night and structure, named after the night's event. The ``test_problem_*``
tests each pin one fact about Canvas's state that the product must get right.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clever2sis.canvas.client import CanvasClient
from clever2sis.canvas.sis_import import SisImports, WaitPolicy
from clever2sis.clever.client import CleverClient
from clever2sis.config import CanvasProfile, RawConfig, SyncSettings, UploadSettings, build_settings
from clever2sis.errors import GuardStoppedError
from clever2sis.sync.history import History
from clever2sis.sync.pipeline import RunOptions, SyncJob, SyncRuntime, run_sync
from tests.canvas_model import CanvasModel, EnrollmentView
from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas
from tests.clever_server import CleverTestServer
from tests.invariant import LOST_COURSEWORK, Tonight, ended, findings, sent, violations
from tests.school_year import (
    BROKEN_NIGHTS,
    CALENDAR,
    CHURN_NIGHT,
    EDITED_YEAR_END,
    GROWTH_NIGHT,
    LEAVER_NIGHT,
    LINK_REMOVED_NIGHT,
    MAX_LOGIN_LENGTH,
    MENDED_NIGHT,
    NIGHTS,
    PARENT,
    PARENT_REMOVED_NIGHT,
    REMASTER_NIGHT,
    RETURN_NIGHT,
    TERM_EDIT_NIGHT,
    Night,
    SchoolYear,
    describe,
)

pytestmark = pytest.mark.slow

CLEVER_TOKEN = "year-clever-token-0123456789abcdef"
PROFILE = "nightly"
FAST = WaitPolicy(timeout_s=60, first_interval_s=0.01, max_interval_s=0.01)
STRUCTURES = ("section", "course")
UNAVOIDABLE: tuple[re.Pattern[str], ...] = ()  # Canvas messages no product could avoid here: none
SHOWN = 12  # violations listed in a failure message
SEVEN_DAYS = dt.timedelta(days=7)  # [sync] remaster_every_days, the default
TERM_REFUSED = "Cannot delete a term with active courses"
EMAIL_OR_LOGIN_REFUSED = re.compile(r"is invalid \(email:|unique_id is too long|Invalid login_id")
SCHOOLS_HELD_EXIT = 56  # README, exit codes: Canvas imported the night, but the guard held schools
SCHOOLS_HELD = "schools_held"


@dataclass(frozen=True)
class NightRun:
    """One night of the year: what Clever served, how the sync ended, and Canvas's state after it."""

    night: Night
    exit_code: int
    outcome: str
    summary: dict[str, Any]
    import_ids: tuple[int, ...]
    build_dir: Path | None
    violations: tuple[str, ...]
    canvas: CanvasModel  # a copy of the model as the night left it


@dataclass(frozen=True)
class Year:
    structure: str
    district: SchoolYear
    nights: list[NightRun]
    history: dict[str, dict[str, Any]]  # run_id -> history row
    canvas: CanvasModel  # the model, after the last night


def sync_job(base_url: str, runs_dir: Path, structure: str) -> SyncJob:
    raw = RawConfig({"build": {"course_structure": structure}, "observers": {"enabled": True}})
    return SyncJob(
        profile=CanvasProfile(PROFILE, base_url, "1"),
        sync=SyncSettings(runs_dir=runs_dir),
        build=build_settings(raw),
        upload=UploadSettings(),
    )


def snapshot(model: CanvasModel) -> CanvasModel:
    """A copy of the model's state (the import records, which only grow, are shared)."""
    copied: CanvasModel = copy.deepcopy(model, memo={id(model.imports): model.imports})
    return copied


def run_year(tmp: Path, structure: str) -> Year:
    district = SchoolYear(tmp)
    model = CanvasModel()
    canvas = FakeCanvas(script=[("importing", 50), ("imported", 100)], model=model)
    runs_dir = tmp / "runs"
    held: dict[str, set[str]] = {}
    nights: list[NightRun] = []
    with CanvasTestServer(canvas) as server:
        job = sync_job(server.base_url, runs_dir, structure)
        for number in range(NIGHTS):
            district.advance(number)
            night = district.night(number)
            before = len(model.imports)
            with (
                CleverTestServer(night.served(), token=CLEVER_TOKEN) as clever_server,
                CleverClient(CLEVER_TOKEN, clever_server.url) as clever,
                CanvasClient(server.base_url, TEST_TOKEN, sleep=lambda _s: None) as client,
            ):
                result = run_sync(
                    job,
                    clever,
                    SisImports(client, "1"),
                    options=RunOptions(wait_policy=FAST),
                    runtime=SyncRuntime(
                        clock=lambda night=night: night.now,
                        sleep=lambda _s: None,
                        attachment_wait_s=0,
                        secrets=(CLEVER_TOKEN, TEST_TOKEN),
                    ),
                )
            import_ids = tuple(record.id for record in model.imports[before:])
            build_dir = result.run_dir / "build" if result.run_dir else None
            found: tuple[str, ...] = ("the night left no build to judge",)
            if build_dir is not None and (build_dir / "build.json").is_file():
                tonight = Tonight(
                    number,
                    night.now,
                    night.records,
                    build_dir,
                    import_ids,
                    {course: frozenset(sections) for course, sections in held.items()},
                    night.broken_schools,
                    night.hidden,
                )
                found = tuple(violations(model, tonight))
            _mark_coursework(model, held)
            nights.append(
                NightRun(
                    night,
                    result.exit_code,
                    result.outcome,
                    result.summary,
                    import_ids,
                    build_dir,
                    found,
                    snapshot(model),
                )
            )
    with History(runs_dir) as history:
        rows = {str(row["run_id"]): row.as_dict() for row in history.runs(profile=PROFILE)}
    return Year(structure, district, nights, rows, model)


def _mark_coursework(model: CanvasModel, held: dict[str, set[str]]) -> None:
    """Every course that has existed for a night holds coursework; remember the sections each held."""
    for course in model.courses.values():
        if course.sis_id is not None and course.state != "deleted":
            model.mark_coursework(course.sis_id)
    for section in model.sections.values():
        course_id = model.courses[section.course].sis_id
        if section.sis_id is not None and course_id is not None:
            held.setdefault(course_id, set()).add(section.sis_id)


@pytest.fixture(scope="module")
def years(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Year]:
    """The year for a course structure, run once per module and structure (a year that raised raises
    again for every test, without running again)."""
    cache: dict[str, Year | Exception] = {}

    def year(structure: str) -> Year:
        if structure not in cache:
            try:
                cache[structure] = run_year(tmp_path_factory.mktemp(f"year-{structure}"), structure)
            except Exception as error:
                cache[structure] = error
                raise
        found = cache[structure]
        if isinstance(found, Exception):
            raise found
        return found

    return year


def successful(run: NightRun) -> bool:
    """Exit 0, or exit 20 where every message of the night's imports is one no product could avoid."""
    if run.exit_code == 0:
        return True
    if run.outcome != "imported_with_messages":
        return False
    messages = [m.message for i in run.import_ids for m in run.canvas.import_record(i).messages]
    return all(any(p.search(m) for p in UNAVOIDABLE) for m in messages)


def held_since(run: NightRun) -> dict[str, str]:
    """The schools the night's JSON line says were held, with the first night of each hold."""
    return {school["account_id"]: school["since"] for school in run.summary["held_schools"] or []}


def active_in(canvas: CanvasModel, school: str) -> list[EnrollmentView]:
    """The active enrollments Canvas holds in the school's courses (sorted)."""
    return sorted(
        (
            v
            for v in canvas.enrollment_views(("active",))
            if v.course_id is not None and canvas.course_account(v.course_id) == school
        ),
        key=str,
    )


def canvas_user(canvas: CanvasModel, user_id: str) -> tuple[Any, ...]:
    """What Canvas holds of a person: the state of their login, every login of theirs, their email."""
    return (canvas.user_status(user_id), canvas.logins(user_id), canvas.email(user_id))


def before_the_break(year: Year, number: int) -> NightRun:
    """The last night before the break that night ``number`` (a held night) belongs to."""
    while year.nights[number].night.broken_schools:
        number -= 1
    return year.nights[number]


def judged(year: Year, first: int) -> Iterator[NightRun]:
    """The nights from ``first`` on by which an event's effect must be in Canvas: ``first`` itself when it
    succeeded (else the night after, which must), and every later night."""
    start = first if successful(year.nights[first]) else first + 1
    yield from year.nights[start:]


def said(run: NightRun) -> str:
    """The distinct messages Canvas gave the night's imports (the first few), for a failure message."""
    messages = {m.message: None for i in run.import_ids for m in run.canvas.import_record(i).messages}
    return f"; Canvas said:{listed(list(messages))}" if messages else ""


def listed(found: tuple[str, ...] | list[str]) -> str:
    more = f"\n  ... and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    return "\n  ".join(["", *found[:SHOWN]]) + more


def _night_params() -> list[Any]:
    return [
        pytest.param(structure, number, id=f"{structure}-n{number:02d}-{CALENDAR[number][1]}")
        for structure in STRUCTURES
        for number in range(NIGHTS)
    ]


@pytest.mark.parametrize(("structure", "number"), _night_params())
def test_night(years: Callable[[str], Year], structure: str, number: int) -> None:
    year = years(structure)
    run = year.nights[number]
    what = describe(number)
    row = year.history[str(run.summary["run_id"])]
    assert (row["outcome"], row["exit_code"]) == (run.outcome, run.exit_code), what
    if run.night.broken_schools:
        _judge_held_night(year, run, what)
        return
    if number and year.nights[number - 1].night.broken_schools:
        assert successful(run), (
            f"{what}\nthe broken school's data returned, but the night ended {run.outcome} "
            f"(exit {run.exit_code}: {run.summary['message']}){said(run)}"
        )
    if successful(run):
        assert not run.violations, f"{what}\nCanvas breaks the invariant:{listed(run.violations)}"
        return
    assert run.exit_code != 0, what
    assert run.outcome != "imported", what
    lost = [v for v in run.violations if LOST_COURSEWORK in v]
    assert not lost, f"{what}\ncoursework lost on a night that did not succeed:{listed(lost)}"
    assert number + 1 < NIGHTS, f"{what}\nthe year's last night ended {run.outcome} (exit {run.exit_code})"
    following = year.nights[number + 1]
    recovered = successful(following)
    assert recovered, (
        f"{what}\nended {run.outcome} (exit {run.exit_code}: {run.summary['message']}){said(run)}\n"
        f"and so did the next night: {following.outcome} (exit {following.exit_code}){said(following)}"
    )


def _judge_held_night(year: Year, run: NightRun, what: str) -> None:
    """A held night (see the module doc): exit 56, the broken schools held since the break, each as Canvas
    had it before the break, and the invariant whole on every other school."""
    assert (run.exit_code, run.outcome) == (SCHOOLS_HELD_EXIT, SCHOOLS_HELD), (
        f"{what}\nended {run.outcome} (exit {run.exit_code}: {run.summary['message']}){said(run)}"
    )
    before = before_the_break(year, run.night.number)
    first = year.nights[before.night.number + 1]
    assert held_since(run) == dict.fromkeys(run.night.broken_schools, first.summary["started"]), what
    for school in sorted(run.night.broken_schools):
        assert run.canvas.school_state(school) == before.canvas.school_state(school), (
            f"{what}\nCanvas's state of held school {school} is not what it was on night {before.night.number}"
        )
        for person in sorted(p for p, schools in run.night.hidden.items() if school in schools):
            assert canvas_user(run.canvas, person) == canvas_user(before.canvas, person), (
                f"{what}\nCanvas's user {person} of held school {school} (not in Clever tonight) is not what "
                f"it was on night {before.night.number}"
            )
    assert not run.violations, (
        f"{what}\nCanvas breaks the invariant on a healthy school:{listed(run.violations)}"
    )
    assert run.night.number + 1 < NIGHTS, f"{what}\nthe year's last night was held"


# -- the district really has the events the tests judge ---------------------------------------------------


def test_the_year_has_its_events(years: Callable[[str], Year]) -> None:
    year = years("section")
    happened, planted = year.district.happened, year.district.planted
    sizes = [  # the main import's: with [observers] the links go in imports of their own
        year.canvas.import_record(run.summary["sis_import_id"]).size if run.summary["sis_import_id"] else 0
        for run in year.nights
    ]
    assert sizes[GROWTH_NIGHT] > sizes[GROWTH_NIGHT - 1] * 1.10  # over Canvas's change_threshold of 10%
    assert len(happened.back_to_school) > 0.1 * len(
        [u for u in year.nights[GROWTH_NIGHT - 1].night.records["users"] if "student" in u["roles"]]
    )
    assert happened.growth_leaver
    assert happened.growth_leaver not in _user_ids(year.nights[GROWTH_NIGHT].night)
    week = max(n for n in range(1, REMASTER_NIGHT) if CALENDAR[n][0] - CALENDAR[n - 1][0] >= SEVEN_DAYS)
    assert CALENDAR[REMASTER_NIGHT][0] - CALENDAR[week][0] == SEVEN_DAYS
    assert year.nights[REMASTER_NIGHT].summary["remaster"]
    assert len(planted.long_login) > MAX_LOGIN_LENGTH
    quiet = year.nights[1].summary["changes"]
    assert all(counts == {"added": 0, "removed": 0, "changed": 0} for counts in quiet.values())
    schools = {
        s["school"]
        for s in year.nights[0].night.records["sections"]
        if s.get("course") == planted.cross_school_course
    }
    assert len(schools) == 2
    old_term, new_term = happened.edited_term
    terms = {t["id"]: t for t in year.nights[TERM_EDIT_NIGHT].night.records["terms"]}
    assert old_term not in terms
    assert terms[new_term]["end_date"] == EDITED_YEAR_END
    assert happened.churned[1] in _user_ids(year.nights[CHURN_NIGHT].night)
    assert happened.returned[0] == year.district.happened.leavers[LEAVER_NIGHT][0]
    school = happened.broken_school
    broke, vanished = (year.nights[n].night for n in BROKEN_NIGHTS)
    mended = year.nights[MENDED_NIGHT].night
    assert [broke.broken_schools, vanished.broken_schools, mended.broken_schools] == [
        {school},
        {school},
        set(),
    ]
    assert all(s["students"] == [] for s in broke.records["sections"] if s["school"] == school)
    assert [s for s in broke.records["sections"] if s["school"] == school]
    assert school not in {s["id"] for s in vanished.records["schools"]}
    assert [s for s in vanished.records["sections"] if s["school"] == school] == []
    staff = {u["id"] for u in broke.records["users"] if set(u["roles"]) == {"staff"}}
    assert staff & {u for u, schools in vanished.hidden.items() if schools == {school}}  # vanish with it
    assert any(s["students"] for s in mended.records["sections"] if s["school"] == school)
    assert happened.hidden_leaver in _user_ids(year.nights[BROKEN_NIGHTS[0] - 1].night)
    assert happened.hidden_leaver not in _user_ids(mended)
    assert happened.healthy_leaver in _user_ids(broke)
    assert happened.healthy_leaver not in _user_ids(vanished)


def _user_ids(night: Night) -> set[str]:
    return {user["id"] for user in night.records["users"]}


# -- the problems ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("structure", STRUCTURES)
def test_problem_1_a_removed_parent_link_no_longer_observes(
    years: Callable[[str], Year], structure: str
) -> None:
    year = years(structure)
    parent, gone, kept = year.district.happened.unlinked
    before = year.nights[LINK_REMOVED_NIGHT - 1].canvas.observer_links()
    assert {(parent, gone), (parent, kept)} <= before  # the parent observed both children
    for run in judged(year, LINK_REMOVED_NIGHT):
        links = run.canvas.observer_links()
        what = describe(run.night.number)
        assert (parent, gone) not in links, f"{what}: parent {parent} still observes {gone} (link removed)"
        assert (parent, kept) in links, f"{what}: parent {parent} no longer observes {kept}"
        observing = [
            v.section_id
            for v in run.canvas.enrollment_views(("active",))
            if v.user_id == parent and v.associated_user_id == gone
        ]
        assert observing == [], f"{what}: parent {parent} still sees {gone}'s sections {observing}"
    removed, students = year.district.happened.removed_parent
    assert {(removed, s) for s in students} <= year.nights[PARENT_REMOVED_NIGHT - 1].canvas.observer_links()
    for run in judged(year, PARENT_REMOVED_NIGHT):
        what = describe(run.night.number)
        still = sorted(s for o, s in run.canvas.observer_links() if o == removed)
        assert still == [], f"{what}: removed parent {removed} still observes {still}"
        assert run.canvas.user_status(removed) == "suspended", what


@pytest.mark.parametrize("structure", STRUCTURES)
def test_problem_2_a_churned_student_signs_in_and_keeps_their_canvas_user(
    years: Callable[[str], Year], structure: str
) -> None:
    year = years(structure)
    happened = year.district.happened
    cases = (
        ("returning", RETURN_NIGHT, happened.returned, happened.returned_login),
        ("re-created", CHURN_NIGHT, happened.churned, happened.churned_login),
    )
    for case, night, (old, new), login in cases:
        person = year.nights[night - 1].canvas.canvas_user_id(old)
        assert person is not None, f"{case} student {old} was never in Canvas"
        for run in judged(year, night):
            what = f"{describe(run.night.number)} ({case} student {old} -> {new})"
            canvas = run.canvas
            assert canvas.signs_in_as(login) == new, (
                f"{what}: '{login}' signs in as {canvas.signs_in_as(login)}"
            )
            assert canvas.canvas_user_id(new) == person, (
                f"{what}: not the Canvas user holding their coursework"
            )
            terms = {t["id"]: t for t in run.night.records["terms"]}
            for section in run.night.records["sections"]:
                if new in section["students"]:
                    want = (
                        "completed" if ended(terms.get(section.get("term_id")), run.night.now) else "active"
                    )
                    state = canvas.enrollment_state(section["id"], new, "student")
                    assert state == want, f"{what}: section {section['id']} is {state}, not {want}"
        if case == "re-created":
            parents = {
                u["id"]
                for u in year.nights[night].night.records["users"]
                if any(
                    r["student"] == new and r["type"] == PARENT
                    for r in (u["roles"].get("contact") or {}).get("student_relationships", [])
                )
            }
            for run in judged(year, night):
                links = run.canvas.observer_links()
                assert {(p, new) for p in parents} <= links, (
                    f"{describe(run.night.number)}: parents {parents}"
                )


@pytest.mark.parametrize("structure", ["course"])
def test_problem_3_courses_span_no_schools_and_the_term_date_edit_replaces_no_course(
    years: Callable[[str], Year], structure: str
) -> None:
    year = years(structure)
    school_of = {s["id"]: s["school"] for run in year.nights for s in run.night.records["sections"]}
    for run in year.nights:
        canvas, what = run.canvas, describe(run.night.number)
        for course in canvas.courses.values():
            if course.sis_id is None or course.state == "deleted":
                continue
            schools = sorted({school_of[s] for s in canvas.course_sections(course.sis_id) if s in school_of})
            assert len(schools) <= 1, f"{what}: course {course.sis_id} spans schools {schools}"
            if schools:
                assert canvas.course_account(course.sis_id) == schools[0], what
    edited = year.district.happened.edited_sections
    for run in judged(year, TERM_EDIT_NIGHT):
        canvas, what = run.canvas, describe(run.night.number)
        for section in edited:
            course = canvas.section_course(section)
            term = canvas.term(canvas.course_term(course or ""))
            end = (term.end if term else None) or ""
            assert end.startswith(EDITED_YEAR_END), (
                f"{what}: section {section}'s course {course} is in a term ending {end}, not {EDITED_YEAR_END}"
            )
    ids = {i for run in year.nights for i in run.import_ids}
    lost = [e for e in year.canvas.coursework_events if e.import_id in ids]
    assert lost == [], f"{len(lost)} courses with coursework deleted or emptied, e.g. {lost[:3]}"


@pytest.mark.parametrize("structure", STRUCTURES)
def test_problem_4_the_term_date_edit_stops_no_later_night(
    years: Callable[[str], Year], structure: str
) -> None:
    year = years(structure)
    after = year.nights[TERM_EDIT_NIGHT:]
    stopped = [
        (run.night.number, run.outcome, run.exit_code)
        for run in after
        if run.exit_code == GuardStoppedError.exit_code or not run.import_ids
    ]
    assert stopped == [], f"nights stopped after the term-date edit: {stopped}"
    refused = [
        (run.night.number, message.message)
        for run in year.nights
        for i in run.import_ids
        for message in year.canvas.import_record(i).messages
        if TERM_REFUSED in message.message
    ]
    assert refused == [], refused


@pytest.mark.parametrize("structure", STRUCTURES)
def test_problem_5_the_growth_nights_leaver_is_removed_by_the_next_night(
    years: Callable[[str], Year], structure: str
) -> None:
    year = years(structure)
    leaver = year.district.happened.growth_leaver
    before = year.nights[GROWTH_NIGHT - 1].canvas
    assert before.user_status(leaver) == "active"
    assert any(v.user_id == leaver for v in before.enrollment_views(("active",)))
    for run in year.nights[GROWTH_NIGHT + 1 :]:
        what = describe(run.night.number)
        assert run.canvas.user_status(leaver) == "suspended", (
            f"{what}: leaver {leaver} is {run.canvas.user_status(leaver)}"
        )
        active = [v.section_id for v in run.canvas.enrollment_views(("active",)) if v.user_id == leaver]
        assert active == [], f"{what}: leaver {leaver} still active in sections {active}"


@pytest.mark.parametrize("structure", STRUCTURES)
def test_problem_6_emails_and_logins_follow_canvas_rules(
    years: Callable[[str], Year], structure: str
) -> None:
    year = years(structure)
    planted = year.district.planted
    for run in year.nights:
        if run.build_dir is None:
            continue
        what = describe(run.night.number)
        users = {u["id"]: u for u in run.night.records["users"]}
        rows = {row["user_id"]: row for row in sent(run.build_dir, "users.csv")}
        invalid = {f["record_id"] for f in findings(run.build_dir) if f["kind"] == "invalid_email"}
        for user_id, row in rows.items():
            email = str(users[user_id].get("email") or "").strip() if user_id in users else ""
            if email and run.canvas.email_valid(email):
                assert row["email"] == email, (
                    f"{what}: {user_id}'s email '{email}' (Canvas accepts it) not sent"
                )
            elif email:
                assert row["email"] == "", f"{what}: {user_id}'s email '{email}' (Canvas rejects it) was sent"
                assert user_id in invalid, f"{what}: {user_id}'s email '{email}' left out without a finding"
            assert len(row["login_id"]) <= MAX_LOGIN_LENGTH, f"{what}: login over {MAX_LOGIN_LENGTH}: {row}"
            assert row["login_id"].isprintable(), f"{what}: login not printable: {row}"
        for user_id, email in (
            (planted.dotless_email_user, planted.dotless_email),
            (planted.quoted_email_contact, planted.quoted_email),
        ):
            assert rows.get(user_id, {}).get("email") == email, f"{what}: {user_id} <{email}> not sent"
        rejected = rows.get(planted.rejected_email_user, {})
        assert rejected.get("email") == "", f"{what}: {planted.rejected_email} (Canvas rejects it) sent"
        assert planted.rejected_email_user in invalid, f"{what}: no finding for {planted.rejected_email}"
        if run.night.number >= GROWTH_NIGHT and planted.long_login_user in users:  # not when it vanished
            named = [f for f in findings(run.build_dir) if f["record_id"] == planted.long_login_user]
            assert named, (
                f"{what}: no finding names {planted.long_login_user} (login over {MAX_LOGIN_LENGTH} characters)"
            )
    refused = [
        (run.night.number, message.message)
        for run in year.nights
        for i in run.import_ids
        for message in year.canvas.import_record(i).messages
        if EMAIL_OR_LOGIN_REFUSED.search(message.message)
    ]
    assert refused == [], refused[:5]
    assert year.canvas.email(planted.dotless_email_user) == planted.dotless_email
    assert year.canvas.email(planted.quoted_email_contact) == planted.quoted_email


@pytest.mark.parametrize("structure", STRUCTURES)
def test_problem_7_a_school_whose_export_broke_is_held_as_canvas_had_it_until_its_data_returns(
    years: Callable[[str], Year], structure: str
) -> None:
    year = years(structure)
    happened = year.district.happened
    school = happened.broken_school
    before = year.nights[BROKEN_NIGHTS[0] - 1]
    held = [year.nights[n] for n in BROKEN_NIGHTS]
    mended = year.nights[MENDED_NIGHT]
    since = held[0].summary["started"]
    assert [(r.exit_code, r.outcome, r.summary["guard"]) for r in held] == [
        (SCHOOLS_HELD_EXIT, SCHOOLS_HELD, "held")
    ] * len(held)
    assert [held_since(run) for run in held] == [{school: since}] * len(held)
    name = next(s["name"] for s in before.night.records["schools"] if s["id"] == school)
    reasons = ("every one of its students vanished", "it vanished from tonight's data")
    state = before.canvas.school_state(school)
    for run, reason in zip(held, reasons, strict=True):
        what = describe(run.night.number)
        message = run.summary["message"]
        assert f"school {name} ({school}) held since {since}: {reason}" in message, f"{what}: {message}"
        assert f"release with --allow-large-change {school}" in message, f"{what}: {message}"
        assert run.canvas.school_state(school) == state, f"{what}: Canvas's state of {school} changed"
    # The student who left while the export was broken stays as Canvas had them until the data returns.
    leaver = happened.hidden_leaver
    assert any(v.user_id == leaver for v in active_in(before.canvas, school)), f"{leaver} was not enrolled"
    for run in held:
        assert run.canvas.user_status(leaver) == "active", describe(run.night.number)
    assert (mended.exit_code, mended.outcome, mended.summary["guard"], held_since(mended)) == (
        0,
        "imported",
        "passed",
        {},
    ), mended.summary["message"]
    assert mended.canvas.user_status(leaver) == "suspended"
    active = [v.section_id for v in mended.canvas.enrollment_views(("active",)) if v.user_id == leaver]
    assert active == [], f"{describe(MENDED_NIGHT)}: {leaver} still active in {active}"
    # Nothing of the school was lost or made twice through the hold: the night its data returned, Canvas
    # holds the school's active enrollments it held before the break, less the leaver's (and their parents').
    assert active_in(mended.canvas, school) == [
        v for v in active_in(before.canvas, school) if leaver not in (v.user_id, v.associated_user_id)
    ]
    # Every other school was applied on the held nights: a student of another school who left on the
    # second one was suspended that night.
    other = happened.healthy_leaver
    assert held[0].canvas.user_status(other) == "active"
    assert held[1].canvas.user_status(other) == "suspended"
    active = [v.section_id for v in held[1].canvas.enrollment_views(("active",)) if v.user_id == other]
    assert active == [], f"{describe(BROKEN_NIGHTS[1])}: {other} still active in {active}"
