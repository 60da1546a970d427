"""A month of nightly syncs against local servers, from a district that changes every night.

Each night the changed district is served by the local Clever server and synced (default settings:
diffing with the safe removal statuses) into a FakeCanvas whose CanvasModel applies each import as
canvas-lms does, so the tests judge the state Canvas is left in against what Clever says. The clock is
injected, so thirty nights take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from clever2sis.canvas.client import CanvasClient
from clever2sis.canvas.sis_import import SisImports, WaitPolicy
from clever2sis.clever.client import CleverClient
from clever2sis.cli import main
from clever2sis.config import CanvasProfile, RawConfig, SyncSettings, UploadSettings, build_settings
from clever2sis.errors import SchoolsHeldError
from clever2sis.sync.history import History
from clever2sis.sync.pipeline import RunOptions, SyncJob, SyncRuntime, run_sync
from tests.canvas_model import CanvasModel
from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas
from tests.clever_server import CleverTestServer
from tests.nightly_district import (
    NIGHTS,
    ROLLOVER_NIGHT,
    TEACHER_CHANGE_NIGHT,
    VANISH_NIGHT,
    Night,
    NightlyDistrict,
)

CLEVER_TOKEN = "month-clever-token-0123456789abcdef"
FAST = WaitPolicy(timeout_s=60, first_interval_s=0.01, max_interval_s=0.01)


@dataclass(frozen=True)
class Month:
    nights: list[Night]
    results: list[dict[str, object]]
    exit_codes: list[int]
    import_of_night: dict[int, int]
    canvas: CanvasModel
    forms: list[dict[str, str]]
    runs_dir: Path
    district: NightlyDistrict


def sync_job(base_url: str, runs_dir: Path, **sync: object) -> SyncJob:
    return SyncJob(
        profile=CanvasProfile("nightly", base_url, "1"),
        sync=SyncSettings(runs_dir=runs_dir, **sync),  # type: ignore[arg-type]
        build=build_settings(RawConfig({})),
        upload=UploadSettings(),
    )


def run_month(
    tmp: Path,
    *,
    count: int = NIGHTS,
    allow_large_change: bool = False,
    vanishing: int = 1,
    canvas: FakeCanvas | None = None,
    **sync: object,
) -> Month:
    """``count`` nights of sync into ``canvas`` (default: a Canvas whose model applies every import)."""
    district = NightlyDistrict(tmp, vanishing=vanishing)
    runs_dir = tmp / "runs"
    if canvas is None:
        canvas = FakeCanvas(script=[("importing", 50), ("imported", 100)], model=CanvasModel())
    model = canvas.model or CanvasModel()
    nights, results, codes, import_of_night = [], [], [], {}
    with CanvasTestServer(canvas) as server:
        job = sync_job(server.base_url, runs_dir, **sync)
        for number in range(count):
            if number:
                district.advance(number)
            night = district.night(number)
            nights.append(night)
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
                    options=RunOptions(allow_large_change=allow_large_change, wait_policy=FAST),
                    runtime=SyncRuntime(
                        clock=lambda night=night: night.now,
                        sleep=lambda _s: None,
                        attachment_wait_s=0,
                        secrets=(CLEVER_TOKEN, TEST_TOKEN),
                    ),
                )
            results.append(result.summary)
            codes.append(result.exit_code)
            if len(model.imports) > before:
                import_of_night[number] = model.imports[-1].id
    return Month(nights, results, codes, import_of_night, model, canvas.posted_forms, runs_dir, district)


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Month:
    return run_month(tmp_path_factory.mktemp("month"))


def test_every_night_ran_and_the_vanishing_school_was_held_not_the_district(month: Month) -> None:
    expected = [0] * NIGHTS
    expected[VANISH_NIGHT] = SchoolsHeldError.exit_code
    assert month.exit_codes == expected, [r["message"] for r in month.results]
    assert sorted(month.import_of_night) == list(range(NIGHTS))
    held = month.results[VANISH_NIGHT]
    school = str(month.district.vanished_school)
    assert (held["outcome"], held["import_state"], held["guard"]) == ("schools_held", "imported", "held")
    assert f"({school}) held since {held['started']}: it vanished from tonight's data" in str(held["message"])
    assert f"release with --allow-large-change {school}" in str(held["message"])
    assert [s["account_id"] for s in held["held_schools"]] == [school]  # type: ignore[union-attr]
    # Canvas applied the other schools' changes that night and changed nothing of the held school.
    before, tonight = month.nights[VANISH_NIGHT - 1], month.nights[VANISH_NIGHT]
    sections = {s["id"] for s in before.records["sections"] if s["school"] == school}
    # The people enrolled only in the school's sections, and its staff (no sections) who vanished with it.
    placed: dict[str, set[str]] = {}
    for section in before.records["sections"]:
        for person in [*section["students"], *section.get("teachers", [])]:
            placed.setdefault(person, set()).add(section["school"])
    only_there = {person for person, schools in placed.items() if schools == {school}}
    staff = {
        u["id"]
        for u in before.records["users"]
        if set(u["roles"]) == {"staff"} and school in u["roles"]["staff"]["schools"]
    }
    assert staff
    assert not staff & tonight.user_ids
    only_there |= staff
    done = month.canvas.import_record(month.import_of_night[VANISH_NIGHT])
    touched = [key for key in done.changed("enrollment") if key[1] in sections]
    assert touched == []
    assert [key for key in done.changed("user") if key[0] in only_there] == []
    assert sections
    assert only_there
    left = [u for u in before.user_ids - tonight.user_ids if u not in only_there]
    assert left
    assert {done.changed("user").get((user_id,)) for user_id in left} <= {"suspended", None}
    assert "suspended" in done.changed("user").values()
    # The night after, the school is back and nothing of it was ever removed.
    assert month.results[VANISH_NIGHT + 1]["guard"] == "passed"


def test_nothing_is_deleted_and_every_removal_is_real(month: Month) -> None:
    removed_users = removed_places = 0
    for number, import_id in month.import_of_night.items():
        night = month.nights[number]
        done = month.canvas.import_record(import_id)
        deleted = [change for change in done.changes if change.after == "deleted"]
        assert deleted == [], (number, deleted[:3])
        for (user_id,), status in done.changed("user").items():
            if status == "active":
                continue
            assert status == "suspended"
            assert user_id not in night.user_ids, (
                f"night {number}: user {user_id} suspended but still in Clever"
            )
            removed_users += 1
        for (_course, section, user_id, _role, _observed), status in done.changed("enrollment").items():
            if status == "active":
                continue
            if status == "inactive":
                assert (section, user_id) not in night.places, f"night {number}: {section}/{user_id}"
                removed_places += 1
            else:
                assert status == "completed", (number, status)
    # The district really lost students every night: the removals happened, they were not just avoided.
    assert removed_users >= (NIGHTS - 2) * 2
    assert removed_places > removed_users


def test_students_who_left_are_suspended_and_joiners_active(month: Month) -> None:
    statuses = [month.canvas.user_status(user_id) for user_id in month.district.left]
    # None: a student the build never sent (the sample's users without a unique login).
    assert set(statuses) <= {"suspended", None}
    assert statuses.count("suspended") >= len(statuses) - 4
    last = month.nights[-1]
    joiners = [u for u in last.records["users"] if u["id"].startswith("7f")]
    assert len(joiners) > NIGHTS  # some joiners left again, later in the month
    for user in joiners:
        assert month.canvas.user_status(user["id"]) == "active"
        assert (
            month.canvas.signs_in_as(user["roles"]["student"]["credentials"]["district_username"])
            == user["id"]
        )


def test_the_changed_teacher_is_replaced_not_deleted(month: Month) -> None:
    section = month.district.changed_section
    assert section is not None
    teachers = {
        view.user_id: view.state
        for view in month.canvas.enrollment_views()
        if view.section_id == section and view.role == "teacher"
    }
    assert sorted(teachers.values()) == ["active", "inactive"], teachers
    changed = month.results[TEACHER_CHANGE_NIGHT]["changes"]
    assert isinstance(changed, dict)
    assert changed["enrollments.csv"]["added"] >= 1


def test_the_ended_term_is_concluded_not_deleted(month: Month) -> None:
    ended = month.district.ended_term_ids
    ended_courses = {
        course.sis_id
        for course in month.canvas.courses.values()
        if course.sis_id and "_2027-01-15_" in (month.canvas.course_term(course.sis_id) or "")
    }
    assert ended
    assert ended_courses
    for key in ended_courses:
        assert month.canvas.course_status(key) == "claimed"  # an active, unpublished course: not deleted
    statuses = {
        view.state
        for view in month.canvas.enrollment_views()
        if view.course_id in ended_courses and view.user_id not in month.district.left
    }
    assert statuses == {"completed"}
    # The district dropped the term's sections on the rollover night; the sync carried them, and the
    # guard did not take the rollover for a disaster.
    assert month.exit_codes[ROLLOVER_NIGHT] == 0
    carried = orjson.loads(
        (Path(str(month.results[ROLLOVER_NIGHT]["run_dir"])) / "build" / "build.json").read_bytes()
    )
    assert carried["sync"]["carried"]["sections.csv"] > 0


def test_remasters_come_every_seven_days(month: Month) -> None:
    remastered = [n for n in range(NIGHTS) if month.results[n]["remaster"]]
    assert remastered == [0, 7, 14, 21, 28]
    forms = [form for form in month.forms]
    assert all(form["diffing_data_set_identifier"].endswith(":nightly") for form in forms)
    assert {form["diffing_drop_status"] for form in forms} == {"inactive"}
    assert {form["diffing_user_remove_status"] for form in forms} == {"suspended"}
    assert {form["change_threshold"] for form in forms} == {"10"}


def test_history_shows_each_night(month: Month) -> None:
    with History(month.runs_dir) as history:
        runs = history.runs(profile="nightly")
    assert len(runs) == NIGHTS
    assert [run["run_id"] for run in reversed(runs)] == [r["run_id"] for r in month.results]
    outcomes = [run["outcome"] for run in reversed(runs)]
    assert outcomes.count("imported") == NIGHTS - 1
    assert outcomes[VANISH_NIGHT] == "schools_held"
    result = CliRunner().invoke(main, ["history", "--runs-dir", str(month.runs_dir), "--limit", "100"])
    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.splitlines()
    assert header.split("\t") == [
        "run_id",
        "profile",
        "outcome",
        "exit",
        "guard",
        "sis_import",
        "applied",
        "changes",
        "held",
        "flags",
        "observer_imports",
    ]
    assert len(lines) == NIGHTS
    held = lines[NIGHTS - 1 - VANISH_NIGHT]
    assert "schools_held" in held
    assert (
        f"held {month.district.vanished_school} (since {month.results[VANISH_NIGHT]['started']!s:.10})"
        in held
    )
    assert "users +2 -2" in lines[0]
    as_json = CliRunner().invoke(
        main, ["history", "--runs-dir", str(month.runs_dir), "--json", "--limit", "1"]
    )
    assert orjson.loads(as_json.stdout)["changes"]["users.csv"] == {"added": 2, "removed": 2, "changed": 0}


def test_no_token_in_any_run_file(month: Month) -> None:
    for path in month.runs_dir.rglob("*"):
        if path.is_file() and path.suffix in {".json", ".log", ".sqlite"}:
            data = path.read_bytes()
            assert CLEVER_TOKEN.encode() not in data, path
            assert TEST_TOKEN.encode() not in data, path
