"""Reconcile at district scale: a 10,000-student sample district (parents as observers) built and imported
into the Canvas model through the local server, then drift of every kind seeded by hand and by other
imports. Reconcile must find exactly that drift, and its fix, uploaded, must clear it: a second reconcile
finds only the additions made by hand, which are flagged and left alone.

The counts asserted come from the seeded changes and the build's own CSVs, not from reconcile's output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
import pandas as pd
import pytest

from clever2sis.canvas.client import CanvasClient
from clever2sis.canvas.sis_import import ImportOptions, SisImports, WaitPolicy, wait_for_import
from clever2sis.clever.sample import generate_district
from clever2sis.config import RawConfig, build_settings
from clever2sis.sis.build import build
from tests.canvas_model import CanvasModel
from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas
from tests.reconcile_canvas import zipped
from tests.test_cli_canvas import run

STUDENTS = 10_000
FAST = WaitPolicy(timeout_s=600, first_interval_s=0.01, max_interval_s=0.01)


@dataclass
class Seeded:
    """The drift seeded, by kind and file, as the ids a test checks."""

    server: CanvasTestServer
    model: CanvasModel
    build_dir: Path
    csv: dict[str, pd.DataFrame]
    rejected: str
    deleted: str
    suspended: str
    renamed: str
    re_emailed: str
    inactive: tuple[str, str, str]
    moved_course: str
    unlinked: tuple[str, str]
    extra_link: tuple[str, str]
    manual_teacher: str


def _import(api: SisImports, zip_path: Path) -> str:
    posted = api.create(zip_path, ImportOptions())
    return wait_for_import(api, posted.id, policy=FAST, sleep=lambda _s: None).workflow_state


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> object:
    work = tmp_path_factory.mktemp("district")
    generate_district(work / "snapshot", students=STUDENTS, seed=21)
    build_dir = work / "build"
    build(work / "snapshot", build_dir, build_settings(RawConfig({"observers": {"enabled": True}})))
    csv = {
        name: pd.read_csv(build_dir / "csv" / f"{name}.csv", dtype=str, keep_default_na=False)
        for name in ("users", "courses", "enrollments", "user_observers")
    }
    enrollments, links = csv["enrollments"], csv["user_observers"]
    students = sorted(set(enrollments.loc[enrollments["role"] == "student", "user_id"]))
    unlinked_students = [s for s in students if s not in set(links["student_id"])]
    rejected, deleted, suspended, re_emailed, inactive_student = unlinked_students[:5]
    teachers = sorted(set(enrollments.loc[enrollments["role"] == "teacher", "user_id"]))
    renamed, manual_teacher = teachers[0], teachers[1]
    login = csv["users"].set_index("user_id").loc[rejected, "login_id"]
    inactive_row = enrollments.loc[enrollments["user_id"] == inactive_student].iloc[0]
    courses = csv["courses"]
    moved = courses.loc[courses["term_id"] != ""].iloc[0]
    other_term = sorted(set(courses["term_id"]) - {"", moved["term_id"]})[0]
    link = links.iloc[0]
    observers = sorted(set(links["observer_id"]))
    targets = set(unlinked_students[:5])
    linked = set(links.loc[links["observer_id"] == observers[0], "student_id"])
    extra_link = (observers[0], next(s for s in students if s not in linked | targets))

    model = CanvasModel()
    server = CanvasTestServer(FakeCanvas(script=[("importing", 50), ("imported", 100)], model=model))
    with server:
        with CanvasClient(server.base_url, TEST_TOKEN, sleep=lambda _s: None) as client:
            api = SisImports(client, "1")
            before = zipped(
                {
                    "users.csv": "user_id,login_id,first_name,last_name,email,status\n"
                    f"OLDFEED-1,{login},Old,Feed,,active\nOLDFEED-2,oldfeed2,Old,Feed Two,,active\n"
                }
            )
            assert _import(api, _written(work / "before.zip", before)) == "imported"
            # The student whose login the old feed holds is refused, and so are their enrollments.
            assert _import(api, build_dir / "sis_import.zip") == "imported_with_messages"
            refused = [message.message for message in model.imports[1].messages]
            assert len(refused) == 1 + int((enrollments["user_id"] == rejected).sum())
            assert all(rejected in message for message in refused), refused
            after = zipped(
                {
                    "courses.csv": "course_id,short_name,long_name,account_id,term_id,status\n"
                    "OLDFEED-C,OLD C,Old feed course,,,active\n",
                    "sections.csv": "section_id,course_id,name,status\nOLDFEED-C,OLDFEED-C,Old feed section,active\n",
                    "enrollments.csv": f"course_id,section_id,user_id,role,status\nOLDFEED-C,OLDFEED-C,{extra_link[1]},student,active\n",
                    "user_observers.csv": f"observer_id,student_id,status\n{extra_link[0]},{extra_link[1]},active\n",
                }
            )
            assert _import(api, _written(work / "after.zip", after)) == "imported"
        model.ui_delete_user("OLDFEED-1")  # the login it held is free again: re-sending the student now works
        model.ui_delete_user(deleted)
        model.ui_edit_user(suspended, state="suspended")
        model.ui_edit_user(renamed, name="Renamed Teacher", sortable_name="Teacher, Renamed")
        model.ui_edit_user(re_emailed, email="personal@example.net")
        inactive = (inactive_row["section_id"], inactive_student, "student")
        model.ui_set_enrollment_state(*inactive, "inactive")
        model.ui_move_course(moved["course_id"], term_id=other_term)
        model.ui_unlink(link["observer_id"], link["student_id"])
        model.ui_enroll(manual_teacher, course_id=courses["course_id"].iloc[-1], role="teacher")
        model.ui_create_user("volunteer@example.org", "Vera Volunteer")
        yield Seeded(
            server, model, build_dir, csv, rejected, deleted, suspended, renamed, re_emailed, inactive,
            moved["course_id"], (link["observer_id"], link["student_id"]), extra_link, manual_teacher,
        )  # fmt: skip


def reconcile(seeded: Seeded, out: Path, *flags: str) -> dict[str, object]:
    result = run(
        ["reconcile", "--against", str(seeded.build_dir), "--out", str(out), "--json", *flags],
        seeded.server.base_url,
    )
    assert result.exit_code in (0, 60), result.output
    summary: dict[str, object] = orjson.loads(result.stdout)
    assert summary["exit_code"] == result.exit_code
    return summary


def drift_rows(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / "drift" / name, dtype=str, keep_default_na=False)


def test_every_kind_of_drift_is_found_and_the_fix_clears_it(seeded: Seeded, tmp_path: Path) -> None:
    enrollments = seeded.csv["enrollments"]
    gone_places = int(enrollments["user_id"].isin([seeded.rejected, seeded.deleted]).sum())
    summary = reconcile(seeded, tmp_path / "first", "--fix")
    assert summary["drift"] == {
        "courses.csv": {"missing": 0, "status": 0, "changed": 1, "extra": 1, "manual": 0},
        "sections.csv": {"missing": 0, "status": 0, "changed": 0, "extra": 1, "manual": 0},
        "users.csv": {"missing": 2, "status": 1, "changed": 2, "extra": 1, "manual": 1},
        "enrollments.csv": {"missing": gone_places, "status": 1, "changed": 0, "extra": 1, "manual": 1},
        "user_observers.csv": {"missing": 1, "status": 0, "changed": 0, "extra": 1, "manual": 0},
    }
    first = tmp_path / "first"
    users = drift_rows(first, "users.csv")
    assert sorted(
        zip(users["kind"], users["user_id"], users["field"], users["canvas"], strict=True)
    ) == sorted(
        [
            ("missing", seeded.rejected, "status", ""),
            ("missing", seeded.deleted, "status", "deleted"),
            ("status", seeded.suspended, "status", "suspended"),
            ("changed", seeded.renamed, "full_name", "Renamed Teacher"),
            ("changed", seeded.renamed, "sortable_name", "Teacher, Renamed"),
            ("changed", seeded.re_emailed, "email", "personal@example.net"),
            ("extra", "OLDFEED-2", "status", "active"),
            ("manual", "", "status", "active"),
        ]
    )
    places = drift_rows(first, "enrollments.csv")
    assert set(places.loc[places["kind"] == "missing", "user_id"]) == {seeded.rejected, seeded.deleted}
    status = places.loc[places["kind"] == "status"]
    assert list(zip(status["section_id"], status["user_id"], status["role"], strict=True)) == [
        seeded.inactive
    ]
    manual = places.loc[places["kind"] == "manual"]
    assert list(zip(manual["section_id"], manual["user_id"], manual["role"], strict=True)) == [
        ("", seeded.manual_teacher, "teacher")
    ]
    courses = drift_rows(first, "courses.csv")
    assert list(zip(courses["kind"], courses["course_id"], strict=True)) == [
        ("changed", seeded.moved_course),
        ("extra", "OLDFEED-C"),
    ]
    links = drift_rows(first, "user_observers.csv")
    assert list(
        zip(links["kind"], links["observer_id"], links["student_id"], links["canvas"], strict=True)
    ) == [
        ("missing", *seeded.unlinked, "deleted"),
        ("extra", *seeded.extra_link, "active"),
    ]
    fix = summary["fix"]
    assert isinstance(fix, dict)
    assert fix["rows"] == {
        "courses.csv": 2,
        "sections.csv": 1,
        "users.csv": 6,
        "enrollments.csv": gone_places + 2,
        "user_observers.csv": 2,
    }

    uploaded = run(["upload", str(first / "fix"), "--wait", *fix["upload_flags"]], seeded.server.base_url)
    assert uploaded.exit_code == 0, uploaded.output
    model = seeded.model
    assert model.user_status(seeded.rejected) == model.user_status(seeded.deleted) == "active"
    assert model.user_status(seeded.suspended) == "active"
    assert model.user_status("OLDFEED-2") == "suspended"
    assert model.course_status("OLDFEED-C") == "deleted"

    second = reconcile(seeded, tmp_path / "second", "--fix")
    assert second["total"] == {"missing": 0, "status": 0, "changed": 0, "extra": 0, "manual": 2}
    assert (second["fixable"], second["fix"], second["exit_code"]) == (0, None, 0)
