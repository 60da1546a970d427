"""The sync's parts: settings, import options per deletion mode, the lock, the guard, the other deletion
modes over a few nights, and the ``sync`` command's JSON line and exit codes."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from clever2sis.canvas.sis_import import ImportOptions
from clever2sis.cli import main
from clever2sis.config import CanvasProfile, RawConfig, UploadSettings, parse_sync
from clever2sis.errors import ApprovalRequiredError, ConfigError, SyncLockedError, UsageError
from clever2sis.sync.history import History
from clever2sis.sync.pipeline import check_job, import_options
from clever2sis.sync.runs import RunLock
from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas
from tests.clever_server import CleverTestServer
from tests.nightly_district import VANISH_NIGHT, NightlyDistrict
from tests.test_sync_month import CLEVER_TOKEN, run_month, sync_job


def raw(**tables: object) -> RawConfig:
    return RawConfig(data=tables, path=Path("/etc/clever2sis/clever2sis.toml"))


def test_sync_settings_defaults_and_strictness() -> None:
    settings = parse_sync(raw())
    assert settings.deletion_mode == "diffing"
    assert settings.remaster_every_days == 7
    assert settings.enrollment_remove_status == "inactive"
    assert settings.user_remove_status == "suspended"
    assert settings.term_rollover is True
    assert settings.runs_dir == Path("/etc/clever2sis/runs")
    tuned = parse_sync(raw(sync={"max_shrink_percent": 5, "max_shrink_percent_by_file": {"enrollments": 20}}))
    assert tuned.shrink_limit_percent("enrollments.csv") == 20
    assert tuned.shrink_limit_percent("users.csv") == 5
    with pytest.raises(ConfigError, match=r"unknown key sync\.max_shrink"):
        parse_sync(raw(sync={"max_shrink": 5}))
    with pytest.raises(ConfigError, match="deletion_mode"):
        parse_sync(raw(sync={"deletion_mode": "wipe"}))
    with pytest.raises(ConfigError, match=r"max_shrink_percent_by_file\.pupils"):
        parse_sync(raw(sync={"max_shrink_percent_by_file": {"pupils": 5}}))
    with pytest.raises(ConfigError, match="user_remove_status"):
        parse_sync(raw(sync={"user_remove_status": "inactive"}))


def test_import_options_per_deletion_mode(tmp_path: Path) -> None:
    job = sync_job("https://canvas.example.edu", tmp_path)
    diffing = import_options(job, district_id="D1", remaster=False)
    assert diffing.diffing_data_set_identifier == "clever2sis:D1:nightly"
    assert (diffing.diffing_drop_status, diffing.diffing_user_remove_status) == ("inactive", "suspended")
    assert diffing.change_threshold == 10
    assert import_options(job, district_id="D1", remaster=True).diffing_remaster_data_set
    chosen = dataclasses.replace(
        job, upload=UploadSettings(options=ImportOptions(diffing_drop_status="completed", change_threshold=5))
    )
    options = import_options(chosen, district_id="D1", remaster=False)
    assert (options.diffing_drop_status, options.change_threshold) == ("completed", 5)

    batch = sync_job("https://canvas.example.edu", tmp_path, deletion_mode="batch")
    options = import_options(batch, district_id="D1", remaster=False)
    assert options.batch_mode
    assert options.multi_term_batch_mode
    assert (options.change_threshold, options.batch_mode_enrollment_drop_status) == (10, "inactive")

    explicit = sync_job("https://canvas.example.edu", tmp_path, deletion_mode="explicit")
    assert import_options(explicit, district_id="D1", remaster=False).form_fields() == [
        ("import_type", "instructure_csv")
    ]
    with pytest.raises(UsageError, match="--remaster applies to diffing only"):
        import_options(explicit, district_id="D1", remaster=True)
    mixed = dataclasses.replace(
        explicit, upload=UploadSettings(options=ImportOptions(diffing_data_set_identifier="x"))
    )
    with pytest.raises(ConfigError, match='deletion_mode = "diffing"'):
        import_options(mixed, district_id="D1", remaster=False)


def test_a_profile_that_needs_sign_off_is_refused_before_anything_runs(tmp_path: Path) -> None:
    job = sync_job("https://canvas.example.edu", tmp_path)
    production = dataclasses.replace(job, profile=CanvasProfile("production", "https://c.example.edu", "1"))
    with pytest.raises(ApprovalRequiredError, match="require_approval = false"):
        check_job(production)
    check_job(
        dataclasses.replace(
            job, profile=CanvasProfile("production", "https://c.example.edu", "1", require_approval=False)
        )
    )


def test_the_lock_keeps_a_second_run_out_and_a_stale_lock_file_does_not(tmp_path: Path) -> None:
    (tmp_path / ".lock").write_text("pid 99999\n")  # left behind by a killed run: no flock on it
    with RunLock(tmp_path), pytest.raises(SyncLockedError, match="another sync is running"):
        RunLock(tmp_path).acquire()
    with RunLock(tmp_path):
        pass


def test_a_lock_taken_with_acquire_is_held_through_its_with_block_and_released_after(tmp_path: Path) -> None:
    lock = RunLock(tmp_path).acquire()
    assert (tmp_path / ".lock").read_text().startswith("pid ")
    held_by = re.escape(f"another sync is running in {tmp_path} (pid ")
    with lock, pytest.raises(SyncLockedError, match=held_by):
        RunLock(tmp_path).acquire()
    assert (tmp_path / ".lock").read_text() == ""
    with RunLock(tmp_path):
        pass


def test_a_locked_out_run_exits_50_and_is_recorded(tmp_path: Path) -> None:
    with RunLock(tmp_path / "runs"):
        month = run_month(tmp_path, count=1)
    assert month.exit_codes == [50]
    assert month.results[0]["outcome"] == "locked"
    assert month.forms == []
    with History(tmp_path / "runs") as history:
        assert [run["outcome"] for run in history.runs()] == ["locked"]


def test_the_vanishing_school_is_held_and_released_by_its_id(tmp_path: Path) -> None:
    district = NightlyDistrict(tmp_path / "d")
    canvas = FakeCanvas(script=[("imported", 100)])
    from clever2sis.canvas.client import CanvasClient
    from clever2sis.canvas.sis_import import SisImports
    from clever2sis.clever.client import CleverClient
    from clever2sis.sync.pipeline import RunOptions, SyncRuntime, run_sync
    from tests.test_sync_month import FAST

    results = []
    with CanvasTestServer(canvas) as server:
        job = sync_job(server.base_url, tmp_path / "runs")
        for hour, (number, release) in enumerate(((0, ()), (VANISH_NIGHT, ()), (VANISH_NIGHT, ("*",)))):
            night = district.night(number)
            school = district.vanished_school
            with (
                CleverTestServer(night.served(), token=CLEVER_TOKEN) as clever_server,
                CleverClient(CLEVER_TOKEN, clever_server.url) as clever,
                CanvasClient(server.base_url, TEST_TOKEN) as client,
            ):
                results.append(
                    run_sync(
                        job,
                        clever,
                        SisImports(client, "1"),
                        options=RunOptions(
                            release_schools=tuple(str(school) for _ in release), wait_policy=FAST
                        ),
                        runtime=SyncRuntime(
                            clock=lambda night=night, hour=hour: night.now.replace(hour=6 + hour),
                            sleep=lambda _s: None,
                            attachment_wait_s=0,
                        ),
                    )
                )
    school = str(district.vanished_school)
    assert [r.exit_code for r in results] == [0, 56, 0], [r.message for r in results]
    assert [r.outcome for r in results] == ["imported", "schools_held", "imported"]
    assert [r.summary["guard"] for r in results] == ["first_run", "held", "allowed"]
    assert f"({school}) held since " in results[1].message
    assert "it vanished from tonight's data" in results[1].message
    assert f"--allow-large-change {school}" in results[1].message
    held = results[1].summary["held_schools"]
    assert [(s["account_id"], s["since"], s["release"]) for s in held] == [
        (school, results[1].summary["started"], f"--allow-large-change {school}")
    ]
    assert len(canvas.posted_forms) == 3
    run_json = orjson.loads((results[2].run_dir / "run.json").read_bytes())  # type: ignore[operator]
    assert run_json["allow_large_change"] is False
    assert run_json["guard_details"]["held"] == []
    assert [s["account_id"] for s in run_json["guard_details"]["released"]] == [school]
    assert run_json["held_schools"] == []


@pytest.mark.parametrize("mode", ["explicit", "batch"])
def test_other_deletion_modes_over_a_few_nights(tmp_path: Path, mode: str) -> None:
    month = run_month(tmp_path, count=4, deletion_mode=mode)
    assert month.exit_codes == [0, 0, 0, 0]
    for number, import_id in month.import_of_night.items():
        night = month.nights[number]
        done = month.canvas.import_record(import_id)
        assert done.mode == ("batch" if mode == "batch" else "plain")
        assert not done.aborted
        deleted = [change for change in done.changes if change.after == "deleted"]
        assert deleted == [], (mode, number, deleted[:3])
        for (user_id,), status in done.changed("user").items():
            if status != "active":
                assert user_id not in night.user_ids
        for (_c, section, user_id, _r, _o), status in done.changed("enrollment").items():
            if status != "active":
                assert status == "inactive"
                assert (section, user_id) not in night.places
    if mode == "explicit":
        suspended = [p for p in month.canvas.pseudonyms.values() if p.state == "suspended"]
        assert len(suspended) >= 4
        removed = (
            month.runs_dir / str(month.results[1]["run_id"]) / "build" / "sync" / "removed" / "users.csv"
        )
        assert removed.is_file()
    else:
        assert {form.get("multi_term_batch_mode") for form in month.forms} == {"true"}
        assert {form.get("change_threshold") for form in month.forms} == {"10"}


def test_the_sync_command_prints_one_json_line(tmp_path: Path) -> None:
    district = NightlyDistrict(tmp_path / "d")
    night = district.night(0)
    with (
        CanvasTestServer(FakeCanvas(script=[("imported", 100)])) as canvas,
        CleverTestServer(night.served(), token=CLEVER_TOKEN) as clever,
    ):
        config = tmp_path / "clever2sis.toml"
        config.write_text(
            f'[profiles.nightly]\nbase_url = "{canvas.base_url}"\naccount_id = 1\ntoken_env = "CANVAS_NIGHTLY"\n'
            '[sync]\nruns_dir = "runs"\n'
        )
        env = {"CLEVER_TOKEN": CLEVER_TOKEN, "CLEVER_API_BASE": clever.url, "CANVAS_NIGHTLY": TEST_TOKEN}
        args = ["sync", "--profile", "nightly", "--config", str(config), "--quiet"]
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert len(lines) == 1
        summary = orjson.loads(lines[0])
        assert summary["outcome"] == "imported"
        assert summary["sis_import_id"] == 101
        assert summary["rows"]["users.csv"] > 300
        assert (tmp_path / "runs" / summary["run_id"] / "run.log").is_file()

        with RunLock(tmp_path / "runs"):
            locked = CliRunner().invoke(main, args, env=env)
        assert locked.exit_code == 50
        assert orjson.loads(locked.stdout)["outcome"] == "locked"
        assert "another sync is running" in locked.stderr

        missing = CliRunner().invoke(main, args, env={**env, "CANVAS_NIGHTLY": ""})
        assert missing.exit_code == 30
        assert orjson.loads(missing.stdout)["outcome"] == "not_started"


@pytest.mark.parametrize("command", ["sync", "history"])
def test_every_sync_command_has_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_keep_runs_removes_old_run_directories_but_never_a_baseline(tmp_path: Path) -> None:
    from clever2sis.sync.runs import prune_run_dirs

    runs = tmp_path / "runs"
    names = ["20270101T060000Z", "20270102T060000Z", "20270102T060000Z-01", "20270103T060000Z"]
    for name in [*names, "notes", ".removing-20261231T060000Z"]:
        (runs / name).mkdir(parents=True)
        (runs / name / "run.log").write_text("x")
    assert prune_run_dirs(runs, 0, set()) == []
    assert prune_run_dirs(runs, 2, {"20270101T060000Z"}) == ["20270102T060000Z"]
    assert sorted(path.name for path in runs.iterdir()) == [
        "20270101T060000Z",
        "20270102T060000Z-01",
        "20270103T060000Z",
        "notes",
    ]
    assert prune_run_dirs(runs, 1, set()) == ["20270101T060000Z", "20270102T060000Z-01"]
    assert sorted(path.name for path in runs.iterdir()) == ["20270103T060000Z", "notes"]
    with pytest.raises(ConfigError, match=r"sync\.keep_runs is how many run directories to keep"):
        parse_sync(raw(sync={"keep_runs": -1}))
    assert parse_sync(raw()).keep_runs == 0


def test_a_nightly_sync_with_keep_runs_keeps_the_baseline_through_a_stopped_night(tmp_path: Path) -> None:
    month = run_month(tmp_path, count=VANISH_NIGHT + 2, keep_runs=1, vanishing=2)  # 2 of 3: too many held
    assert month.exit_codes == [0] * VANISH_NIGHT + [51, 0]
    run_ids = [str(result["run_id"]) for result in month.results]
    last = month.runs_dir / run_ids[-1]
    # The stopped night kept the last applied run (its baseline), so the night after still compared with it.
    removed = f"{run_ids[VANISH_NIGHT - 1]}, {run_ids[VANISH_NIGHT]}"
    assert f"removed 2 old run directories (keep_runs = 1): {removed}" in (last / "run.log").read_text()
    assert sorted(p.name for p in month.runs_dir.iterdir() if p.is_dir()) == [run_ids[-1]]
    record = orjson.loads((last / "build" / "build.json").read_bytes())
    assert record["sync"]["baseline_run_id"] == run_ids[VANISH_NIGHT - 1]
    with History(month.runs_dir) as history:
        assert len(history.runs()) == VANISH_NIGHT + 2


RECREATED_END = "2027-06-16"


def _busiest_current_term(records: dict[str, list[dict[str, object]]]) -> dict[str, object]:
    """The term (ending after the nights simulated) that holds the most sections."""
    counts: dict[object, int] = {}
    for section in records["sections"]:
        counts[section.get("term_id")] = counts.get(section.get("term_id"), 0) + 1
    current = (t for t in records["terms"] if str(t["end_date"]) > "2027-02-01")
    return max(current, key=lambda t: (counts.get(t["id"], 0), str(t["id"])))


def _share_a_course(records: dict[str, list[dict[str, object]]]) -> None:
    """Two schools teach one Clever course in that term (Clever courses belong to the district)."""
    term = _busiest_current_term(records)["id"]
    in_term = sorted(
        (s for s in records["sections"] if s.get("term_id") == term and s.get("course")),
        key=lambda s: str(s["id"]),
    )
    first = in_term[0]
    other = next(s for s in in_term if s["school"] != first["school"])
    other["course"] = first["course"]


def _recreate_a_term(records: dict[str, list[dict[str, object]]]) -> tuple[str, str, list[str]]:
    """Clever re-creates the district's busiest current term with a new end date (a new id), as it does when
    the SIS edits a term's dates; returns the old and new Clever ids and the sections now in it."""
    term = _busiest_current_term(records)
    old_id, new_id = str(term["id"]), "7e00000000000000000000c9"
    records["terms"] = [t for t in records["terms"] if t["id"] != old_id]
    records["terms"].append({**term, "id": new_id, "end_date": RECREATED_END})
    moved = []
    for section in records["sections"]:
        if section.get("term_id") == old_id:
            section["term_id"] = new_id
            moved.append(str(section["id"]))
    return old_id, new_id, moved


@pytest.mark.parametrize("structure", ["section", "course"])
def test_a_term_recreated_with_new_dates_keeps_its_canvas_term_and_courses(
    tmp_path: Path, structure: str
) -> None:
    from clever2sis.canvas.client import CanvasClient
    from clever2sis.canvas.sis_import import SisImports
    from clever2sis.clever.client import CleverClient
    from clever2sis.config import build_settings
    from clever2sis.sync.pipeline import RunOptions, SyncRuntime, run_sync
    from tests.canvas_model import CanvasModel
    from tests.test_sync_month import FAST

    district = NightlyDistrict(tmp_path / "d")
    _share_a_course(district.records)
    model = CanvasModel()
    canvas = FakeCanvas(script=[("importing", 50), ("imported", 100)], model=model)
    results, nights = [], []
    with CanvasTestServer(canvas) as server:
        job = dataclasses.replace(
            sync_job(server.base_url, tmp_path / "runs"),
            build=build_settings(RawConfig({"build": {"course_structure": structure}})),
        )
        for number in (0, 1):
            if number:
                district.advance(number)
                old_term, new_term, moved = _recreate_a_term(district.records)
            night = district.night(number)
            nights.append(night)
            with (
                CleverTestServer(night.served(), token=CLEVER_TOKEN) as clever_server,
                CleverClient(CLEVER_TOKEN, clever_server.url) as clever,
                CanvasClient(server.base_url, TEST_TOKEN) as client,
            ):
                results.append(
                    run_sync(
                        job,
                        clever,
                        SisImports(client, "1"),
                        options=RunOptions(wait_policy=FAST),
                        runtime=SyncRuntime(
                            clock=lambda night=night: night.now, sleep=lambda _s: None, attachment_wait_s=0
                        ),
                    )
                )
            if number == 0:
                held = [c.sis_id for c in model.courses.values() if c.sis_id and c.state != "deleted"]
                for course_id in held:  # teachers have made assignments in every course
                    model.mark_coursework(course_id)

    assert [r.exit_code for r in results] == [0, 0], [r.message for r in results]
    assert moved
    first_courses = {section: model.section_course(section) for section in moved}
    term_ids = {model.course_term(str(course)) for course in first_courses.values()}
    assert len(term_ids) == 1
    (kept,) = term_ids
    assert kept is not None
    assert RECREATED_END not in kept  # the Canvas term_id of before, not a new one
    term = model.term(kept)
    assert term is not None
    assert term.end == f"{RECREATED_END}T23:59:59Z"
    assert {t.sis_id for t in model.terms.values() if RECREATED_END in str(t.sis_id)} == set()
    night_two = model.imports[-1]
    assert [row for row in night_two.rows("term") if row.get("status") == "deleted"] == []
    assert [m.message for m in night_two.messages] == []
    assert model.coursework_events == []
    assert all(model.course_status(course_id) != "deleted" for course_id in held)
    record = orjson.loads((results[1].run_dir / "build" / "build.json").read_bytes())  # type: ignore[operator]
    assert record["findings"]["by_kind"]["term_recreated"] == {"severity": "info", "count": 1}
    assert new_term in [i["record_id"] for i in record["findings"]["items"] if i["kind"] == "term_recreated"]
    assert old_term not in {t["id"] for t in nights[1].records["terms"]}
    # No Canvas course holds sections of two schools.
    school_of = {str(s["id"]): s["school"] for s in nights[1].records["sections"]}
    schools_of_course: dict[str, set[object]] = {}
    for section in model.sections.values():
        if section.sis_id in school_of and section.state == "active":
            course = str(model.courses[section.course].sis_id)
            schools_of_course.setdefault(course, set()).add(school_of[section.sis_id])
    assert schools_of_course
    assert max(len(schools) for schools in schools_of_course.values()) == 1
