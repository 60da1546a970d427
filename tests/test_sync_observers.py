"""Observer links over a few nights of sync with ``[observers] enabled``, against the local servers and the
Canvas model: a parent who loses one child's link, a parent removed, a student who leaves, a sibling added,
a night whose main import fails, an observer import that fails or is killed, and the deletion modes.

Each test judges the links Canvas holds (the model's active observer links, and the observer enrollments
they make) against the links Clever has that night.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import sqlite3
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from click.testing import CliRunner

from clever2sis.build_dir import empty_frames
from clever2sis.canvas.client import CanvasClient
from clever2sis.canvas.sis_import import SisImports
from clever2sis.clever.client import CleverClient
from clever2sis.cli import main
from clever2sis.config import RawConfig, build_settings
from clever2sis.errors import RunsDirError
from clever2sis.sis import files
from clever2sis.sis.builders.user_observers import link_rows
from clever2sis.sync import observers
from clever2sis.sync.history import SCHEMA_VERSION, History
from clever2sis.sync.pipeline import RunOptions, RunResult, SyncJob, SyncRuntime, run_sync
from clever2sis.sync.state import AppliedState, read_observers, write_observers, write_unchanged
from tests.canvas_server import TEST_TOKEN, CanvasTestServer
from tests.clever_server import CleverTestServer
from tests.test_sync_month import CLEVER_TOKEN, FAST
from tests.test_sync_nights import JANUARY, Nights

PARENT = "Parent/Guardian"
LATER = [JANUARY + dt.timedelta(days=n) for n in range(8)]
NON_EXISTENT = "referenced a non-existent user"


class ObserverNights(Nights):
    """:class:`Nights` with parents and guardians as observers (``[observers] enabled``)."""

    @property
    def job(self) -> SyncJob:
        built = build_settings(RawConfig({"observers": {"enabled": True}}))
        return dataclasses.replace(super().job, build=built)

    def night(
        self,
        now: dt.datetime,
        *,
        allow_large_change: bool = False,
        sleep: Callable[[float], None] | None = None,
    ) -> RunResult:
        """:meth:`Nights.night`, with the run's ``sleep`` (called while it waits for an import) given."""
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
                options=RunOptions(allow_large_change=allow_large_change, wait_policy=FAST),
                runtime=SyncRuntime(clock=lambda: now, sleep=sleep or (lambda _s: None), attachment_wait_s=0),
            )

    # -- what Clever changes --------------------------------------------------------------------------------

    def contact(self, contact_id: str) -> dict[str, Any]:
        return next(u for u in self.records["users"] if u["id"] == contact_id)

    def unlink(self, contact_id: str, student_id: str) -> None:
        role = self.contact(contact_id)["roles"]["contact"]
        role["student_relationships"] = [
            r for r in role["student_relationships"] if r["student"] != student_id
        ]

    def link(self, contact_id: str, student_id: str) -> None:
        role = self.contact(contact_id)["roles"]["contact"]
        role["student_relationships"].append(
            {"relationship": "Parent", "student": student_id, "type": PARENT}
        )

    def remove_user(self, user_id: str) -> None:
        self.records["users"] = [u for u in self.records["users"] if u["id"] != user_id]

    # -- what Canvas holds ----------------------------------------------------------------------------------

    def links(self) -> frozenset[tuple[str | None, str | None]]:
        return self.model.observer_links()

    def observed(self, parent: str) -> list[str | None]:
        return sorted(s for o, s in self.links() if o == parent)

    def observing(self, parent: str, student: str) -> list[str | None]:
        """The sections where ``parent`` has an active observer enrollment linked to ``student``."""
        return sorted(
            v.section_id
            for v in self.model.enrollment_views(("active",))
            if v.user_id == parent and v.associated_user_id == student
        )

    def clever_links(self) -> frozenset[tuple[str, str]]:
        """Tonight's Parent/Guardian links between people Canvas holds active (what it should observe)."""
        pairs = {
            (user["id"], link["student"])
            for user in self.records["users"]
            if "contact" in user["roles"]
            for link in user["roles"]["contact"]["student_relationships"]
            if link["type"] == PARENT
        }
        return frozenset(
            (observer, student)
            for observer, student in pairs
            if self.model.user_status(observer) == "active" and self.model.user_status(student) == "active"
        )

    def parent_of_two(self) -> tuple[str, str, str]:
        """A parent Canvas shows observing two students (the parent, then the students in id order)."""
        by_parent: dict[str, list[str]] = {}
        for observer, student in sorted(self.links(), key=str):
            if observer and student:
                by_parent.setdefault(observer, []).append(student)
        parent = next(p for p, students in sorted(by_parent.items()) if len(students) == 2)
        first, second = sorted(by_parent[parent])
        return parent, first, second

    def finish_imports(self) -> None:
        """Let Canvas end every import no one followed to its end (the double moves on as it is asked)."""
        assert self.server is not None
        with CanvasClient(self.server.base_url, TEST_TOKEN, sleep=lambda _s: None) as client:
            api = SisImports(client, "1")
            for item in list(self.canvas.imports.values()):
                for _ in range(len(item.script) + 1):
                    if api.get(item.id).is_finished:
                        break

    def messages(self) -> list[str]:
        return [m.message for done in self.model.imports for m in done.messages]


@contextlib.contextmanager
def observer_nights(tmp: Path, **sync: object) -> Iterator[ObserverNights]:
    district = ObserverNights(tmp, **sync)
    with CanvasTestServer(district.canvas) as server:
        district.server = server
        yield district


def zip_files(attachment: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(attachment)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def fail_when(test: Callable[[dict[str, str]], bool], state: str = "failed") -> Callable[[bytes], str | None]:
    return lambda attachment: state if test(zip_files(attachment)) else None


def is_main(found: dict[str, str]) -> bool:
    return "users.csv" in found


def is_links(found: dict[str, str]) -> bool:
    return list(found) == ["user_observers.csv"] and ",deleted" not in found["user_observers.csv"]


def imports_of(result: RunResult) -> list[tuple[str, str | None]]:
    return [(entry["import"], entry["import_state"]) for entry in result.summary["imports"]]


def held_in_state(result: RunResult) -> set[tuple[str, str]]:
    assert result.run_dir is not None
    lines = (result.run_dir / "state" / "observers.csv").read_text().splitlines()
    assert lines[0] == "observer_id,student_id"
    return {(line.split(",")[0], line.split(",")[1]) for line in lines[1:]}


def test_a_night_with_observers_sends_the_links_after_the_main_import(tmp_path: Path) -> None:
    with observer_nights(tmp_path) as district:
        first = district.night(LATER[0])
        quiet = district.night(LATER[1])

    assert first.exit_code == 0, first.message
    assert imports_of(first) == [("main", "imported"), ("observer_links", "imported")]
    assert first.run_dir is not None
    main_zip = zip_files((first.run_dir / "build" / "sis_import.zip").read_bytes())
    assert "user_observers.csv" not in main_zip
    assert district.links() == district.clever_links()
    assert len(district.links()) > 20
    assert held_in_state(first) == district.links()
    # A quiet night removes nothing and sends every link again (Canvas keeps them as they are).
    assert quiet.exit_code == 0, quiet.message
    assert imports_of(quiet) == [("main", "imported"), ("observer_links", "imported")]
    assert district.links() == district.clever_links()
    assert district.model.imports[-1].changes == []
    form = district.canvas.posted_forms[-1]
    assert form == {"import_type": "instructure_csv"}
    assert "observer links: sis_import" in quiet.message
    with History(district.runs_dir) as history:
        (row, _) = history.runs(limit=2)
    assert row["imports"] == quiet.summary["imports"]
    assert orjson.loads(quiet.json_line())["imports"][1]["rows"] == len(district.links())


@pytest.mark.parametrize("mode", ["diffing", "explicit", "batch"])
def test_a_parent_who_loses_one_childs_link_stops_observing_that_child_only(
    tmp_path: Path, mode: str
) -> None:
    with observer_nights(tmp_path, deletion_mode=mode) as district:
        district.night(LATER[0])
        parent, gone, kept = district.parent_of_two()
        district.unlink(parent, gone)
        night = district.night(LATER[1])

    assert night.exit_code == 0, night.message
    assert (parent, gone) not in district.links()
    assert (parent, kept) in district.links()
    assert district.observing(parent, gone) == []
    assert district.observing(parent, kept)
    assert district.links() == district.clever_links()
    assert imports_of(night) == [
        ("observer_removals", "imported"),
        ("main", "imported"),
        ("observer_links", "imported"),
    ]
    assert night.run_dir is not None
    removal = (night.run_dir / "observers-removed" / "csv" / "user_observers.csv").read_text()
    assert removal == f"observer_id,student_id,status\n{parent},{gone},deleted\n"
    removals, main, links = district.model.imports[-3:]
    assert [(c.kind, c.key, c.after) for c in removals.changes if c.kind == "user_observer"] == [
        ("user_observer", (parent, gone), "deleted")
    ]
    assert removals.options == {}  # a plain import: no diffing, batch mode or remaster
    assert links.options == {}
    assert "user_observers" not in {f.importer for f in main.files}
    assert held_in_state(night) == district.links()


@pytest.mark.parametrize("status", ["suspended", "deleted"])
def test_a_parent_removed_entirely_loses_every_link_before_being_removed(tmp_path: Path, status: str) -> None:
    with observer_nights(tmp_path, user_remove_status=status) as district:
        district.night(LATER[0])
        parent, first, second = district.parent_of_two()
        district.remove_user(parent)
        night = district.night(LATER[1])

    assert night.exit_code == 0, night.message
    assert district.observed(parent) == []
    assert district.observing(parent, first) == district.observing(parent, second) == []
    assert district.model.user_status(parent) == status
    assert [m for m in district.messages() if NON_EXISTENT in m] == []
    removals, main = district.model.imports[-3:-1]
    assert {c.key for c in removals.changes if c.kind == "user_observer"} == {
        (parent, first),
        (parent, second),
    }
    assert ("user", (parent,), "active", status) in [(c.kind, c.key, c.before, c.after) for c in main.changes]
    assert district.links() == district.clever_links()


def test_a_student_who_leaves_is_no_longer_observed(tmp_path: Path) -> None:
    with observer_nights(tmp_path) as district:
        district.night(LATER[0])
        parent, leaver, sibling = district.parent_of_two()
        observers = sorted(o for o, s in district.links() if s == leaver)
        district.leave(leaver)
        night = district.night(LATER[1])

    assert night.exit_code == 0, night.message
    assert len(observers) >= 1
    assert [o for o, s in district.links() if s == leaver] == []
    assert [o for o in observers if district.observing(str(o), leaver)] == []
    assert (parent, sibling) in district.links()
    assert district.model.user_status(leaver) == "suspended"
    assert district.links() == district.clever_links()


def test_a_sibling_added_is_observed(tmp_path: Path) -> None:
    with observer_nights(tmp_path) as district:
        district.night(LATER[0])
        by_parent: dict[str, list[str]] = {}
        for observer, student in district.links():
            by_parent.setdefault(str(observer), []).append(str(student))
        parent, (child,) = next((p, s) for p, s in sorted(by_parent.items()) if len(s) == 1)
        # A student whose id sorts before the child's: Canvas's diff would keep only the child's row.
        sibling = next(
            s["id"]
            for s in district.students()
            if s["id"] < child and (parent, s["id"]) not in district.links()
        )
        district.link(parent, sibling)
        night = district.night(LATER[1])

    assert night.exit_code == 0, night.message
    assert (parent, sibling) in district.links()
    assert (parent, child) in district.links()
    sections = sorted(
        v.section_id for v in district.model.enrollment_views(("active",)) if v.user_id == sibling
    )
    assert district.observing(parent, sibling) == sections
    assert district.links() == district.clever_links()
    assert night.run_dir is not None
    added = (night.run_dir / "observers" / "sync" / "added" / "user_observers.csv").read_text().splitlines()
    student = next(s for s in district.students() if s["id"] == sibling)
    assert added == [
        "observer_id,student_id,observer_name,student_name",
        f"{parent},{sibling},{district.contact(parent)['name']['last']},"
        f"{student['name']['first']} {student['name']['last']}",
    ]


def test_a_night_whose_main_import_fails_keeps_its_removals_and_sends_no_links(tmp_path: Path) -> None:
    with observer_nights(tmp_path) as district:
        district.night(LATER[0])
        parent, gone, kept = district.parent_of_two()
        held = district.links()
        district.unlink(parent, gone)
        district.canvas.fail = fail_when(is_main)
        failed = district.night(LATER[1])
        posted = len(district.canvas.posted_forms)
        district.canvas.fail = None
        after = district.night(LATER[2])

    assert (failed.exit_code, failed.summary["outcome"]) == (21, "failed")
    assert imports_of(failed) == [("observer_removals", "imported"), ("main", "failed")]
    assert posted == 4  # night 0's main import and links, the removals, the failed main import: no links
    assert held_in_state(failed) == held - {(parent, gone)}
    assert (parent, gone) not in district.links()
    assert (parent, kept) in district.links()
    # The next night knows the removal reached Canvas: it sends no removals, and nothing Canvas refuses.
    assert after.exit_code == 0, after.message
    assert imports_of(after) == [("main", "imported"), ("observer_links", "imported")]
    assert [m for m in district.messages() if "non-existent observer" in m] == []
    assert district.links() == district.clever_links()


def test_removals_that_fail_stop_the_night_before_the_main_import(tmp_path: Path) -> None:
    with observer_nights(tmp_path) as district:
        district.night(LATER[0])
        parent, first, second = district.parent_of_two()
        district.remove_user(parent)
        district.canvas.fail = fail_when(lambda found: ",deleted" in found.get("user_observers.csv", ""))
        stopped = district.night(LATER[1])
        still, held_before = district.model.user_status(parent), district.links()
        district.canvas.fail = None
        after = district.night(LATER[2])

    assert (stopped.exit_code, stopped.summary["outcome"]) == (21, "observer_removals_failed")
    assert stopped.message.startswith("the observer link removals: SIS import ")
    assert "nothing else was posted" in stopped.message
    assert imports_of(stopped) == [("observer_removals", "failed")]
    assert stopped.summary["sis_import_id"] is None
    assert still == "active"  # the main import, which would suspend the parent, was not posted
    assert {(parent, first), (parent, second)} <= held_before
    assert after.exit_code == 0, after.message
    assert imports_of(after)[0] == ("observer_removals", "imported")
    assert district.observed(parent) == []
    assert district.model.user_status(parent) == "suspended"
    assert [m for m in district.messages() if NON_EXISTENT in m] == []


class Killed(BaseException):
    """The sync process dies (kill -9) while it waits."""


@pytest.mark.parametrize("how", ["failed", "killed"])
def test_after_a_failed_or_killed_links_import_the_next_night_converges(tmp_path: Path, how: str) -> None:
    with observer_nights(tmp_path) as district:
        district.night(LATER[0])
        parent, *_children = district.parent_of_two()
        newcomer = next(s["id"] for s in district.students() if (parent, s["id"]) not in district.links())
        district.link(parent, newcomer)
        before = len(district.canvas.posted_forms)
        if how == "failed":
            district.canvas.fail = fail_when(is_links)
            bad = district.night(LATER[1])
            district.canvas.fail = None
        else:

            def die(_seconds: float) -> None:
                if len(district.canvas.posted_forms) == before + 2:  # the main import and the links
                    raise Killed

            with pytest.raises(Killed):
                district.night(LATER[1], sleep=die)
            district.finish_imports()  # Canvas goes on with the killed run's import and ends it
        linked_tonight = (parent, newcomer) in district.links()
        if how == "killed":
            district.unlink(parent, newcomer)  # Clever drops the link the killed run had sent
        after = district.night(LATER[2])

    assert after.exit_code == 0, after.message
    assert district.links() == district.clever_links()
    if how == "failed":
        assert (bad.exit_code, bad.summary["outcome"]) == (21, "observer_links_failed")
        assert imports_of(bad) == [("main", "imported"), ("observer_links", "failed")]
        assert not linked_tonight
        assert (parent, newcomer) in district.links()
    else:
        # Canvas applied the killed run's links; its state kept them, so the link Clever dropped is removed.
        assert linked_tonight
        assert imports_of(after)[0] == ("observer_removals", "imported")
        assert (parent, newcomer) not in district.links()


def test_review_and_history_name_the_links_removed_and_added(tmp_path: Path) -> None:
    with observer_nights(tmp_path) as district:
        district.night(LATER[0])
        parent, gone, _kept = district.parent_of_two()
        newcomer = next(s["id"] for s in district.students() if (parent, s["id"]) not in district.links())
        district.unlink(parent, gone)
        district.link(parent, newcomer)
        night = district.night(LATER[1])

    assert night.exit_code == 0, night.message
    assert night.run_dir is not None
    names = {u["id"]: u["name"] for u in district.records["users"]}
    left = next(u for u in district.district.records["users"] if u["id"] == gone)["name"]
    parent_name = names[parent]["last"]
    reviewed = CliRunner().invoke(main, ["review", str(night.run_dir / "build"), "--json"])
    assert reviewed.exit_code == 0, reviewed.output
    facts = orjson.loads(reviewed.stdout)["observer_links"]
    # The student's schools (account ids are Clever school ids here), for the report's school filter.
    schools = sorted({s["school"] for s in district.records["sections"] if gone in s["students"]})
    school_names = {s["id"]: s["name"] for s in district.records["schools"]}
    assert facts["removed"] == [
        {
            "observer_id": parent,
            "student_id": gone,
            "observer_name": parent_name,
            "student_name": f"{left['first']} {left['last']}",
            "school_ids": " ".join(schools),
            "school": "; ".join(school_names[school] for school in schools),
        }
    ]
    assert [(link["observer_id"], link["student_id"]) for link in facts["added"]] == [(parent, newcomer)]
    assert [entry["import"] for entry in facts["imports"]] == ["observer_removals", "main", "observer_links"]
    assert "observer links: 1 removed before the main import, 1 new after it" in reviewed.stderr
    assert (
        f"  removed: {parent_name} ({parent}) observing {left['first']} {left['last']} ({gone})"
        in reviewed.stderr
    )
    listed = CliRunner().invoke(main, ["history", "--runs-dir", str(district.runs_dir), "--limit", "1"])
    assert listed.exit_code == 0, listed.output
    removals, _main, links = night.summary["imports"]
    assert listed.stdout.rstrip("\n").split("\t")[-1] == (
        f"observers removals {removals['sis_import_id']} imported, links {links['sis_import_id']} imported"
    )


def test_a_damaged_record_of_the_links_stops_the_next_run_unless_allowed(tmp_path: Path) -> None:
    with observer_nights(tmp_path) as district:
        district.night(LATER[0])
        parent, gone, _kept = district.parent_of_two()
        district.unlink(parent, gone)
        district.canvas.fail = fail_when(is_main)
        failed = district.night(LATER[1])
        district.canvas.fail = None
        assert failed.run_dir is not None
        damaged = failed.run_dir / "state" / "observers.csv"
        damaged.write_text("observer\n")
        stopped = district.night(LATER[2])
        allowed = district.night(LATER[3], allow_large_change=True)

    assert stopped.exit_code == 54
    assert stopped.message == (
        f"run {failed.run_id} cannot tell which observer links Canvas holds ({damaged}: not readable "
        "(observers.csv has the columns observer)); restore its run directory, or re-run with "
        "--allow-large-change to go on without it"
    )
    # Allowed, the run goes on from the older record: it sends the removal again, and Canvas, which no longer
    # holds that link, says so (exit 20); Canvas holds what Clever has.
    assert (allowed.exit_code, allowed.summary["outcome"]) == (20, "imported_with_messages"), allowed.message
    assert allowed.message.startswith("the observer link removals: SIS import ")
    assert district.model.imports[-3].messages[0].message == (
        f"Can't delete a non-existent observer for observer: {parent}, student: {gone}"
    )
    assert district.links() == district.clever_links()


# --- the pure parts -------------------------------------------------------------------------------------------


def links(*pairs: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(pairs), columns=["observer_id", "student_id"], dtype="str")


def pairs_of(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame["observer_id"], frame["student_id"], strict=True))


def test_a_link_plan_removes_what_clever_dropped_and_adds_what_is_new() -> None:
    users = pd.DataFrame(
        {
            "user_id": ["P1", "S1", "S2"],
            "login_id": ["p1", "s1", "s2"],
            "first_name": ["", "Sam", "Sue"],
            "last_name": ["", "Doe", "Doe"],
            "full_name": ["Pat Doe", "", ""],
            "email": ["", "", ""],
            "status": ["active"] * 3,
        }
    )
    plan = observers.LinkPlan(
        held=links(("P1", "S1"), ("P1", "S2"), ("P2", "S3")),
        tonight=links(("P1", "S2"), ("P1", "S4"), ("P2", "S3")),
        users=(users,),
    )
    assert pairs_of(plan.removed) == [("P1", "S1")]
    assert pairs_of(plan.added) == [("P1", "S4")]
    assert pairs_of(plan.kept) == [("P1", "S2"), ("P2", "S3")]
    assert plan.counts() == {"tonight": 3, "added": 1, "removed": 1}
    assert plan.named(plan.removed).to_dict("records") == [
        {"observer_id": "P1", "student_id": "S1", "observer_name": "Pat Doe", "student_name": "Sam Doe"}
    ]
    assert plan.named(plan.added)["student_name"].tolist() == [""]
    assert link_rows(plan.removed, "deleted").to_dict("records") == [
        {"observer_id": "P1", "student_id": "S1", "status": "deleted"}
    ]


def test_links_held_include_those_a_state_kept_in_the_main_import() -> None:
    present = empty_frames()
    present[files.USER_OBSERVERS] = pd.DataFrame(
        [("P1", "S1", "active"), ("P9", "S9", "deleted")], columns=["observer_id", "student_id", "status"]
    )
    state = AppliedState(run_id="R1", applied="diff", present=present, observers=links(("P2", "S2")))
    assert pairs_of(observers.held_links(state)) == [("P1", "S1"), ("P2", "S2")]
    seen = observers.for_sync(state, links(("P3", "S3")))
    assert pairs_of(seen.observers) == [("P1", "S1"), ("P3", "S3")]
    assert seen.present[files.USER_OBSERVERS].to_dict("records") == [
        {"observer_id": "P1", "student_id": "S1", "status": "active"},
        {"observer_id": "P3", "student_id": "S3", "status": "active"},
    ]
    main = observers.for_main_import(seen, links(("P3", "S3")))
    assert main.present[files.USER_OBSERVERS].empty
    assert pairs_of(main.observers) == [("P3", "S3")]
    assert pairs_of(observers.held_links(None)) == []


def test_the_links_canvas_may_hold_are_kept_on_their_own(tmp_path: Path) -> None:
    write_unchanged(tmp_path, "R2", None)
    record = tmp_path / "state" / "state.json"
    write_observers(tmp_path, links(("P2", "S1"), ("P1", "S2")))
    assert (tmp_path / "state" / "observers.csv").read_text() == "observer_id,student_id\nP1,S2\nP2,S1\n"
    assert pairs_of(read_observers(tmp_path)) == [("P1", "S2"), ("P2", "S1")]
    assert "observers" not in orjson.loads(record.read_bytes())  # a record that does not count them
    record.write_bytes(orjson.dumps({"format": 1, "observers": 0}))
    write_observers(tmp_path, links(("P1", "S2")))
    assert orjson.loads(record.read_bytes())["observers"] == 1
    with pytest.raises(RunsDirError, match=r"observers\.csv: missing"):
        read_observers(tmp_path / "other")


def test_history_gains_the_imports_column_when_opened(tmp_path: Path) -> None:
    with History(tmp_path) as history:
        history.record({"run_id": "R1", "profile": "p", "started": "x", "outcome": "imported"})
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        db.execute("ALTER TABLE runs DROP COLUMN imports_json")
    db.close()
    with History(tmp_path) as history:
        assert history.runs()[0]["imports"] is None
        history.record({"run_id": "R1", "imports": [{"import": "main", "sis_import_id": 1}]})
        assert history.runs()[0]["imports"] == [{"import": "main", "sis_import_id": 1}]
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    db.close()


def test_a_student_clever_re_creates_while_a_parent_still_names_the_old_id_is_no_longer_observed(
    tmp_path: Path,
) -> None:
    from tests.test_identity_churn import recreate

    with observer_nights(tmp_path) as district:
        district.night(LATER[0])
        parent, first, second = district.parent_of_two()
        person = district.model.canvas_user_id(first)
        new_id = "7c" + "0" * 21 + "9"
        recreate(district, first, new_id)  # the parent's relationship still names the old id
        night = district.night(LATER[1])

    assert night.exit_code == 0, night.message
    assert night.summary["identities_carried"] == 1
    assert district.model.canvas_user_id(new_id) == person
    # The removal went before the main import, by the id Canvas knew the student by then.
    assert night.run_dir is not None
    removal = (night.run_dir / "observers-removed" / "csv" / "user_observers.csv").read_text()
    assert removal == f"observer_id,student_id,status\n{parent},{first},deleted\n"
    assert district.observed(parent) == [second]
    assert district.observing(parent, new_id) == district.observing(parent, first) == []
    assert [m for m in district.messages() if NON_EXISTENT in m] == []
    assert district.links() == district.clever_links()
