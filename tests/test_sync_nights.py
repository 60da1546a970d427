"""A few nights of sync against the local Canvas double, each night's district written by the test: threshold
nights (predicted, and reported by Canvas anyway), terms and accounts Clever drops, the guard judging what
Clever sent, and a missing or damaged applied state.

Each test judges Canvas's state (the double's model of the account) against what Clever holds that night.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
import io
import re
import shutil
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from clever2sis.canvas.client import CanvasClient
from clever2sis.canvas.sis_import import ImportOptions, SisImports, WaitPolicy, wait_for_import
from clever2sis.clever.client import CleverClient
from clever2sis.config import RawConfig, build_settings
from clever2sis.sis import build as build_module
from clever2sis.sync.history import History
from clever2sis.sync.pipeline import RunOptions, RunResult, SyncJob, SyncRuntime, run_sync
from tests.canvas_model import CanvasModel
from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas
from tests.clever_server import CleverTestServer
from tests.nightly_district import NightlyDistrict, Records
from tests.test_sync_month import CLEVER_TOKEN, FAST, sync_job

JANUARY = dt.datetime(2027, 1, 5, 6, 0, tzinfo=dt.UTC)
SUMMER = dt.datetime(2027, 7, 1, 6, 0, tzinfo=dt.UTC)  # every term of the district has ended
GROWTH_STUDENTS = 120  # enough new students to grow the zip past change_threshold (10%)


class Nights:
    """A district and a Canvas double (with its model) that nights are synced into, one call a night."""

    def __init__(self, tmp: Path, **sync: object) -> None:
        self.district = NightlyDistrict(tmp / "district")
        self.records: Records = copy.deepcopy(self.district.records)
        self.model = CanvasModel()
        self.canvas = FakeCanvas(script=[("importing", 50), ("imported", 100)], model=self.model)
        self.runs_dir = tmp / "runs"
        self.sync = sync
        self.build: dict[str, Any] = {}
        self.server: CanvasTestServer | None = None

    @property
    def job(self) -> SyncJob:
        """The job of tonight: the test's [sync] settings, and its build tables (``self.build``) if any."""
        assert self.server is not None
        job = sync_job(self.server.base_url, self.runs_dir, **self.sync)
        return dataclasses.replace(job, build=build_settings(RawConfig(self.build))) if self.build else job

    def night(
        self, now: dt.datetime, *, allow_large_change: bool = False, release: tuple[str, ...] = ()
    ) -> RunResult:
        """Sync ``self.records`` as Clever serves them tonight."""
        assert self.server is not None
        served = {
            name: [orjson.dumps(record) for record in sorted(records, key=lambda r: r["id"])]
            for name, records in self.records.items()
        }
        with (
            CleverTestServer(served, token=CLEVER_TOKEN) as clever_server,
            CleverClient(CLEVER_TOKEN, clever_server.url) as clever,
            CanvasClient(self.server.base_url, TEST_TOKEN, sleep=lambda _s: None) as client,
        ):
            return run_sync(
                self.job,
                clever,
                SisImports(client, "1"),
                options=RunOptions(
                    allow_large_change=allow_large_change, release_schools=release, wait_policy=FAST
                ),
                runtime=SyncRuntime(clock=lambda: now, sleep=lambda _s: None, attachment_wait_s=0),
            )

    # -- what Clever changes ---------------------------------------------------------------------------------

    def students(self) -> list[dict[str, Any]]:
        return sorted((u for u in self.records["users"] if "student" in u["roles"]), key=lambda u: u["id"])

    def leave(self, user_id: str) -> None:
        self.records["users"] = [u for u in self.records["users"] if u["id"] != user_id]
        for section in self.records["sections"]:
            section["students"] = [s for s in section["students"] if s != user_id]

    def join(self, count: int, tag: str) -> list[str]:
        """``count`` new students, each a copy of an existing one, in the sections of their model."""
        models = self.students()
        joined = []
        for number in range(count):
            model = models[number % len(models)]
            user = copy.deepcopy(model)
            user["id"] = f"7e{tag}{number:020d}"
            username = f"joiner.{tag}.{number}"
            user["email"] = f"{username}@students.example.org"
            user["name"] = {"first": "Joiner", "last": f"{tag.upper()}{number}", "middle": ""}
            role = user["roles"]["student"]
            role["credentials"] = {"district_username": username}
            role["email"] = user["email"]
            role["sis_id"] = role["student_number"] = f"8{tag}{number:06d}"
            role["state_id"] = f"7{tag}{number:07d}"
            self.records["users"].append(user)
            for section in self.records["sections"]:
                if model["id"] in section["students"]:
                    section["students"] = sorted([*section["students"], user["id"]])
            joined.append(user["id"])
        return joined

    def drop_role(self, role: str) -> list[str]:
        """Clever stops sharing every user of ``role`` (and, for teachers, their place on sections)."""
        gone = {u["id"] for u in self.records["users"] if role in u["roles"]}
        self.records["users"] = [u for u in self.records["users"] if u["id"] not in gone]
        for section in self.records["sections"]:
            section["teachers"] = [t for t in section.get("teachers", []) if t not in gone]
            if section.get("teacher") in gone:
                section["teacher"] = section["teachers"][0] if section["teachers"] else None
        return sorted(gone)


@contextlib.contextmanager
def nights(tmp: Path, **sync: object) -> Iterator[Nights]:
    district = Nights(tmp, **sync)
    with CanvasTestServer(district.canvas) as server:
        district.server = server
        yield district


def user_status(district: Nights, user_id: str) -> str | None:
    return district.model.user_status(user_id)


def enrollment_statuses(district: Nights, user_id: str) -> set[str]:
    return {view.state for view in district.model.enrollment_views() if view.user_id == user_id}


def state_of(found: Any) -> str | None:
    return None if found is None else str(found.state)


def run_json(result: RunResult) -> dict[str, Any]:
    assert result.run_dir is not None
    return dict(orjson.loads((result.run_dir / "run.json").read_bytes()))


def state_record(result: RunResult) -> dict[str, Any]:
    assert result.run_dir is not None
    return dict(orjson.loads((result.run_dir / "state" / "state.json").read_bytes()))


def history_applied(runs_dir: Path) -> list[str | None]:
    with History(runs_dir) as history:
        return [run["applied"] for run in reversed(history.runs())]


# --- threshold nights ---------------------------------------------------------------------------------------


def test_a_night_past_change_threshold_goes_as_a_remaster_and_its_leaver_is_removed_that_night(
    tmp_path: Path,
) -> None:
    with nights(tmp_path) as district:
        first = district.night(JANUARY)
        leaver = district.students()[0]["id"]
        quiet = district.night(JANUARY + dt.timedelta(days=1))
        district.leave(leaver)
        joiners = district.join(GROWTH_STUDENTS, "a")
        grown = district.night(JANUARY + dt.timedelta(days=2))

    assert [first.exit_code, quiet.exit_code, grown.exit_code] == [0, 0, 0], grown.message
    assert history_applied(district.runs_dir) == ["remaster", "diff", "remaster"]
    assert grown.summary["applied"] == "remaster"
    assert grown.summary["remaster"] is True
    before = state_record(quiet)["canvas_baseline"]["total_bytes"]
    reason = re.fullmatch(
        rf"threshold: the zip is (\d+) bytes uncompressed against {before} in run {quiet.run_id}'s, "
        r"Canvas's diff baseline: (\d+\.\d)% apart, more than change_threshold 10%",
        run_json(grown)["remaster_reason"],
    )
    assert reason is not None, run_json(grown)["remaster_reason"]
    assert abs(1 - int(reason[1]) / before) * 100 > 10
    assert float(reason[2]) == round(abs(1 - int(reason[1]) / before) * 100, 1)
    # Canvas: the remaster was applied whole (nothing skipped), with the leaver's removal rows in it.
    done = district.model.imports[-1]
    assert (done.mode, done.threshold_exceeded, done.workflow_state) == ("remaster", None, "imported")
    assert user_status(district, leaver) == "suspended"
    assert enrollment_statuses(district, leaver) == {"inactive"}
    assert {user_status(district, user_id) for user_id in joiners} == {"active"}
    state = state_record(grown)
    assert state["canvas_baseline"]["run_id"] == grown.run_id
    assert state["present"] == "build"


def _post_partial_remaster(district: Nights, identifier: str) -> None:
    """Someone uploads a partial zip with the sync's diffing identifier, as a remaster: Canvas's diff baseline
    is now that zip, and the sync does not know."""
    assert district.server is not None
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("accounts.csv", "account_id,parent_account_id,name,status\n")
    path = district.runs_dir / "partial.zip"
    path.write_bytes(zipped.getvalue())
    with CanvasClient(district.server.base_url, TEST_TOKEN, sleep=lambda _s: None) as client:
        api = SisImports(client, "1")
        partial = api.create(
            path, ImportOptions(diffing_data_set_identifier=identifier, diffing_remaster_data_set=True)
        )
        # Canvas runs it before the next night (the double moves an import on as it is asked about it).
        wait_for_import(api, partial.id, policy=WaitPolicy(timeout_s=60), sleep=lambda _s: None)


def test_when_canvas_skips_the_diff_anyway_the_leaver_is_removed_the_next_night(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        district.night(JANUARY)
        leaver, later = (student["id"] for student in district.students()[:2])
        quiet = district.night(JANUARY + dt.timedelta(days=1))
        identifier = str(district.canvas.posted_forms[-1]["diffing_data_set_identifier"])
        _post_partial_remaster(district, identifier)
        district.leave(leaver)
        skipped = district.night(JANUARY + dt.timedelta(days=2))
        still_active = user_status(district, leaver)
        district.leave(later)
        healed = district.night(JANUARY + dt.timedelta(days=3))

    # The sync sent a diff (its own baseline says the sizes are close); Canvas compared with the partial
    # zip, skipped the diff and applied the whole files without deletes: the leaver stayed active.
    assert district.canvas.posted_forms[-2].get("diffing_remaster_data_set") is None
    assert district.model.imports[-2].threshold_exceeded is True
    assert still_active == "active"
    assert skipped.summary["applied"] == "whole_no_deletes"
    assert skipped.exit_code == 20  # Canvas ends such an import imported_with_messages
    assert "without deletes (diffing_threshold_exceeded)" in (skipped.run_dir / "run.log").read_text()  # type: ignore[operator]
    state = state_record(skipped)
    assert state["present"] == "files"  # Canvas holds the previous rows and tonight's
    assert state["canvas_baseline"]["run_id"] == quiet.run_id  # Canvas keeps its older baseline
    # The next night is a remaster whose removal rows reach what Canvas still held.
    assert healed.exit_code == 0, healed.message
    assert healed.summary["applied"] == "remaster"
    assert run_json(healed)["remaster_reason"] == (
        f"Canvas applied run {skipped.run_id} without deletes (diffing_threshold_exceeded)"
    )
    assert user_status(district, leaver) == "suspended"
    assert user_status(district, later) == "suspended"
    assert enrollment_statuses(district, leaver) == {"inactive"}
    assert history_applied(district.runs_dir) == ["remaster", "diff", "whole_no_deletes", "remaster"]


# --- terms and accounts -------------------------------------------------------------------------------------


def test_a_term_clever_drops_and_a_school_it_stops_sharing_are_never_sent_as_deleted(tmp_path: Path) -> None:
    with nights(tmp_path, max_shrink_percent_by_file={"terms": 50}) as district:
        first = district.night(JANUARY)
        # The SIS merges the variant calendar's year-long term into the district's: Clever moves its
        # sections over and drops the term.
        variant, year = (
            next(t for t in district.records["terms"] if t["name"] == "Year" and t["start_date"] == start)
            for start in ("2026-08-24", "2026-08-17")
        )
        district.records["terms"] = [t for t in district.records["terms"] if t is not variant]
        moved = [s["id"] for s in district.records["sections"] if s.get("term_id") == variant["id"]]
        for section in district.records["sections"]:
            if section["id"] in moved:
                section["term_id"] = year["id"]
        merged = district.night(JANUARY + dt.timedelta(days=1))
        # Clever stops sharing a school (allowed, as after a review): its account stays.
        school = sorted(district.records["schools"], key=lambda s: s["id"])[-1]
        district.records["schools"] = [s for s in district.records["schools"] if s is not school]
        district.records["sections"] = [
            s for s in district.records["sections"] if s["school"] != school["id"]
        ]
        dropped = district.night(JANUARY + dt.timedelta(days=2), allow_large_change=True)

    assert [merged.exit_code, dropped.exit_code] == [0, 0], (merged.message, dropped.message)
    assert moved
    for done in district.model.imports:
        assert "deleted" not in done.changed("term").values()
        assert "deleted" not in done.changed("account").values()
        assert [m.message for m in done.messages if "delete" in m.message] == []
    old_term, kept_term = "2026-08-24_2027-06-18_year", "2026-08-17_2027-06-11_year"
    assert state_of(district.model.term(old_term)) == "active"
    assert state_of(district.model.account(school["id"])) == "active"
    assert first.run_dir is not None
    assert merged.run_dir is not None
    assert dropped.run_dir is not None
    # Carried as Canvas has them: the rows the first night sent.
    sent = {
        name: (first.run_dir / "build" / "csv" / name).read_text().splitlines()
        for name in ("terms.csv", "accounts.csv")
    }
    carried = (merged.run_dir / "build" / "sync" / "carried" / "terms.csv").read_text().splitlines()
    assert carried[1:] == [line for line in sent["terms.csv"] if line.startswith(f"{old_term},")]
    carried = (dropped.run_dir / "build" / "sync" / "carried" / "accounts.csv").read_text().splitlines()
    assert carried[1:] == [line for line in sent["accounts.csv"] if line.startswith(f"{school['id']},")]
    assert len(carried) == 2
    # The moved sections' courses are in the other term now; none was deleted.
    assert {district.model.course_term(section) for section in moved} == {kept_term}
    assert {district.model.course_status(section) for section in moved} == {"claimed"}  # not deleted
    assert run_json(merged)["sync_changes"]["carried"] == {"terms.csv": 1}


# --- the guard judges what Clever sent tonight ----------------------------------------------------------------


def test_with_every_term_ended_a_night_without_teachers_is_stopped(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        summer = district.night(SUMMER)
        teachers = district.drop_role("teacher")
        stopped = district.night(SUMMER + dt.timedelta(days=1))

    assert summer.exit_code == 0, summer.message
    assert stopped.exit_code == 51, stopped.message
    assert stopped.summary["outcome"] == "guard_stopped"
    sent = [user_id for user_id in teachers if user_status(district, user_id) is not None]
    assert f"all teachers of users.csv vanished ({len(sent)} before, 0 now)" in stopped.message
    assert len(district.canvas.posted_forms) == 1
    assert {user_status(district, teacher) for teacher in sent} == {"active"}


@pytest.mark.parametrize(
    ("role", "named"), [("staff", "all staff"), ("district_admin", "all district admins")]
)
def test_a_night_that_loses_every_user_of_a_role_without_enrollments_is_stopped(
    tmp_path: Path, role: str, named: str
) -> None:
    with nights(tmp_path) as district:
        district.night(JANUARY)
        gone = district.drop_role(role)
        stopped = district.night(JANUARY + dt.timedelta(days=1))

    assert stopped.exit_code == 51, stopped.message
    sent = [user_id for user_id in gone if user_status(district, user_id) is not None]
    assert sent
    assert f"{named} of users.csv vanished ({len(sent)} before, 0 now)" in stopped.message
    assert "users.csv lost" not in stopped.message  # under max_shrink_percent: only the role check saw it


# --- a missing, damaged or older applied state ----------------------------------------------------------------


@pytest.mark.parametrize("damage", ["missing", "not json", "removed_users.csv gone"])
def test_a_missing_or_damaged_state_stops_the_run_unless_allowed(tmp_path: Path, damage: str) -> None:
    with nights(tmp_path) as district:
        first = district.night(JANUARY)
        assert first.run_dir is not None
        state = first.run_dir / "state"
        if damage == "missing":
            shutil.rmtree(state)
        elif damage == "not json":
            (state / "state.json").write_text("{")
        else:
            (state / "removed_users.csv").unlink()
        stopped = district.night(JANUARY + dt.timedelta(days=1))
        allowed = district.night(JANUARY + dt.timedelta(days=1, hours=1), allow_large_change=True)

    assert stopped.exit_code == 54
    assert stopped.message.startswith(f"the last applied run {first.run_id} cannot tell what Canvas holds (")
    assert str(state) in stopped.message
    assert stopped.message.endswith(
        "restore its run directory, or re-run with --allow-large-change to go on without it"
    )
    assert len(district.canvas.posted_forms) == 2  # the first night and the allowed one
    assert allowed.exit_code == 0, allowed.message
    assert "going on as allowed" in (allowed.run_dir / "run.log").read_text()  # type: ignore[operator]


def test_a_run_kept_before_applied_states_existed_is_read_from_its_build(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        first = district.night(JANUARY)
        assert first.run_dir is not None
        shutil.rmtree(first.run_dir / "state")
        # What an older clever2sis left: history schema 1 (no applied column), no state directory.
        with sqlite3.connect(district.runs_dir / "history.sqlite") as db:
            db.execute("ALTER TABLE runs DROP COLUMN applied")
            db.execute("PRAGMA user_version = 1")
        db.close()
        leaver = district.students()[0]["id"]
        district.leave(leaver)
        second = district.night(JANUARY + dt.timedelta(days=1))

    assert second.exit_code == 0, second.message
    assert history_applied(district.runs_dir) == [None, "diff"]
    assert user_status(district, leaver) == "suspended"
    assert (
        f"comparing with run {first.run_id} (sis_import 101, applied remaster)"
        in (
            second.run_dir / "run.log"  # type: ignore[operator]
        ).read_text()
    )


# --- a zip Canvas would refuse ------------------------------------------------------------------------------


def test_a_rewritten_zip_canvas_would_refuse_to_extract_stops_the_night_before_the_upload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync's rewrite adds rows (removals, carried terms) to a zip the build checked: it is checked
    again, and a zip Canvas would not extract (canvas-lms ``gems/canvas_unzip``) stops the night with the
    build directory as it was."""
    with nights(tmp_path) as district:
        first = district.night(JANUARY)
        district.leave(district.students()[0]["id"])
        checked: list[str] = []
        real = build_module.check_canvas_unzips

        def refuse_the_rewrite(archive: Path) -> None:
            checked.append(archive.parent.name)
            if len(checked) > 1:  # the build's own check passes; the rewrite's is refused
                monkeypatch.setattr(build_module, "CANVAS_UNZIP_MAX_RATIO", 1)
            real(archive)

        monkeypatch.setattr(build_module, "check_canvas_unzips", refuse_the_rewrite)
        refused = district.night(JANUARY + dt.timedelta(days=1))

    assert first.exit_code == 0, first.message
    assert (refused.exit_code, refused.outcome) == (53, "build_failed")
    assert re.fullmatch(
        r"the rewritten build in \S+/build: sis_import\.zip would expand to [\d,]+ bytes, more than 1 times "
        r"its [\d,]+ bytes, and Canvas refuses to extract such a zip: \w+\.csv expands \d+ times \([\d,]+ "
        r"bytes from [\d,]+\); look in it for a value repeated over and over",
        refused.message,
    ), refused.message
    assert len(checked) == 2
    assert len(district.canvas.posted_forms) == 1  # the first night's import only
    assert refused.run_dir is not None
    build = refused.run_dir / "build"
    assert orjson.loads((build / "build.json").read_bytes()).get("sync") is None  # as built, not rewritten
