"""``clever2sis reconcile`` on the tiny district with one drift of each kind (tests/reconcile_canvas.py): the
exact --json summary and drift CSVs, the fix and what importing it leaves in Canvas, and the exit codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from clever2sis.build_dir import BuildDir
from clever2sis.errors import BuildDirError
from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas
from tests.conftest import canvas_cassette
from tests.reconcile_canvas import (
    ALGEBRA,
    DELETED_STUDENT,
    HOMEROOM,
    STUDENT,
    TEACHER,
    SmallCanvas,
    apply_fix,
    report_zip,
    small_canvas,
)
from tests.test_cli_canvas import run

DRIFT = {
    "courses.csv": [
        "kind,course_id,field,build,canvas,canvas_id",
        "changed,5f00000000000000000000e1,term_id,2026-08-17_2027-06-11_year,2026-08-17_2027-01-15_semester-1,9",
        "extra,OLD-7,status,,unpublished,2",
    ],
    "sections.csv": ["kind,section_id,field,build,canvas,canvas_id", "extra,OLD-7,status,,active,3"],
    "users.csv": [
        "kind,user_id,field,build,canvas,canvas_id",
        "missing,5f0000000000000000000102,status,active,deleted,17",
        "changed,5f0000000000000000000f01,full_name,Chidi Okafor,Chidi Okafor-Eze,21",
        "manual,,status,,active,40",
    ],
    "enrollments.csv": [
        "kind,section_id,user_id,role,field,build,canvas,canvas_id",
        "missing,5f00000000000000000000e1,5f0000000000000000000102,student,status,active,deleted,26",
        "missing,5f00000000000000000000e3,5f0000000000000000000102,student,status,active,deleted,31",
        "status,5f00000000000000000000e2,5f0000000000000000000101,student,status,active,inactive,29",
        "extra,OLD-7,5f0000000000000000000101,student,status,,active,36",
        "manual,,5f0000000000000000000f02,teacher,status,,active,39",
    ],
    "user_observers.csv": ["kind,observer_id,student_id,field,build,canvas,canvas_id"],
}
FIX = {
    "courses.csv": [
        "course_id,short_name,long_name,account_id,term_id,status",
        "5f00000000000000000000e1,MA101 P2,Algebra I - Okafor - 2,5f00000000000000000000a1,2026-08-17_2027-06-11_year,active",
        "OLD-7,OLD 7,Study Hall (old feed),,,deleted",
    ],
    "sections.csv": ["section_id,course_id,name,status", "OLD-7,OLD-7,Study Hall,deleted"],
    "users.csv": [
        "user_id,login_id,first_name,last_name,full_name,email,status",
        '5f0000000000000000000102,an@example.org,Nguyễn,"Văn, An",,an@example.org,active',
        "5f0000000000000000000f01,cokafor,Chidi,Okafor,,cokafor@example.org,active",
    ],
    "enrollments.csv": [
        "course_id,section_id,user_id,role,status",
        "5f00000000000000000000e1,5f00000000000000000000e1,5f0000000000000000000102,student,active",
        "5f00000000000000000000e2,5f00000000000000000000e2,5f0000000000000000000101,student,active",
        "5f00000000000000000000e3,5f00000000000000000000e3,5f0000000000000000000102,student,active",
        "OLD-7,OLD-7,5f0000000000000000000101,student,inactive",
    ],
}
COUNTS = {
    "courses.csv": {"missing": 0, "status": 0, "changed": 1, "extra": 1, "manual": 0},
    "sections.csv": {"missing": 0, "status": 0, "changed": 0, "extra": 1, "manual": 0},
    "users.csv": {"missing": 1, "status": 0, "changed": 1, "extra": 0, "manual": 1},
    "enrollments.csv": {"missing": 2, "status": 1, "changed": 0, "extra": 1, "manual": 1},
    "user_observers.csv": {"missing": 0, "status": 0, "changed": 0, "extra": 0, "manual": 0},
}


@pytest.fixture
def canvas(tmp_path: Path) -> SmallCanvas:
    return small_canvas(tmp_path / "district")


def lines_of(directory: Path) -> dict[str, list[str]]:
    return {path.name: path.read_text().splitlines() for path in sorted(directory.iterdir())}


def test_reconcile_asks_canvas_and_writes_the_exact_summary_drift_and_fix(
    canvas: SmallCanvas, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = [
        "reconcile",
        "--against",
        str(canvas.build_dir),
        "--out",
        str(out),
        "--fix",
        "--allow-large-change",
    ]
    with canvas_cassette("reconcile_small", FakeCanvas(model=canvas.model)) as cassette:
        result = run([*args, "--json"], cassette.base_url)
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    assert summary == orjson.loads((out / "reconcile.json").read_bytes())
    assert orjson.loads(result.stdout.replace(str(tmp_path), "<tmp>")) == {
        "format": "clever2sis.reconcile",
        "format_version": 1,
        "against": {
            "build_dir": "<tmp>/district/build",
            "zip_sha256": BuildDir(canvas.build_dir).verified_zip(error=BuildDirError).sha256,
        },
        "report": {
            "source": "canvas",
            "id": 1,
            "profile": "env",
            "file": "<tmp>/out/provisioning_report.zip",
        },
        "rows": {
            "courses.csv": {"build": 3, "canvas": 4},
            "sections.csv": {"build": 3, "canvas": 5},
            "users.csv": {"build": 5, "canvas": 6},
            "enrollments.csv": {"build": 8, "canvas": 13},
            "user_observers.csv": {"build": 1, "canvas": 1},
        },
        "drift": COUNTS,
        "total": {"missing": 3, "status": 1, "changed": 2, "extra": 3, "manual": 2},
        "fixable": 9,
        "fix": {
            "build_dir": "<tmp>/out/fix",
            "rows": {"courses.csv": 2, "sections.csv": 1, "users.csv": 2, "enrollments.csv": 4},
            "zip_sha256": BuildDir(out / "fix").verified_zip(error=BuildDirError).sha256,
            "upload_flags": ["--override-sis-stickiness", "--clear-sis-stickiness"],
        },
        "out": "<tmp>/out",
        "exit_code": 0,
    }
    assert lines_of(out / "drift") == DRIFT
    assert lines_of(out / "fix" / "csv") == FIX
    assert sorted(p.name for p in out.iterdir()) == [
        "drift",
        "fix",
        "provisioning_report.zip",
        "reconcile.json",
    ]
    written = [path for path in (*out.rglob("*"), cassette.path) if path.is_file()]
    assert not [path for path in written if TEST_TOKEN.encode() in path.read_bytes()]
    assert TEST_TOKEN not in result.output
    assert result.stderr.splitlines()[-9:] == [
        "  courses.csv: 1 changed, 1 extra",
        "  sections.csv: 1 extra",
        "  users.csv: 1 missing, 1 changed, 1 manual",
        "  enrollments.csv: 2 missing, 1 status, 1 extra, 1 manual",
        "  user_observers.csv: no drift",
        "drift to fix: 9; 2 added by hand in Canvas (flagged; --remove-manual removes them)",
        f"details: {out}/drift/",
        f"fix: {out}/fix (courses.csv 2, sections.csv 1, users.csv 2, enrollments.csv 4)",
        f"  import it as a plain import: clever2sis upload {out}/fix --override-sis-stickiness "
        "--clear-sis-stickiness",
    ]
    record = BuildDir(out / "fix").verified_zip(error=BuildDirError).record
    assert record.reconcile is not None
    assert record.reconcile["drift"] == COUNTS
    assert record.reconcile["import_options"] == [
        ["import_type", "instructure_csv"],
        ["override_sis_stickiness", "true"],
        ["clear_sis_stickiness", "true"],
    ]
    assert record.reconcile["removing"] == [
        "courses.csv 1 of the 4 Canvas holds from imports (25.0%)",
        "sections.csv 1 of the 4 Canvas holds from imports (25.0%)",
        "enrollments.csv 1 of the 6 Canvas holds from imports (16.7%)",
    ]


def test_the_fix_imported_clears_the_drift_and_only_the_manual_additions_stay_flagged(
    canvas: SmallCanvas, tmp_path: Path
) -> None:
    first = run_file(canvas, tmp_path / "first", "--fix", "--allow-large-change")
    assert first.exit_code == 0, first.output
    record = apply_fix(canvas.model, tmp_path / "first" / "fix", 10)
    assert (record.workflow_state, record.messages) == ("imported", [])
    model = canvas.model
    assert model.user_status(DELETED_STUDENT) == "active"
    # The name is the nightly import's again: the fix cleared its stickiness.
    assert model.user_names(TEACHER) == ("Chidi Okafor", "Okafor, Chidi", frozenset())
    assert model.course_term(ALGEBRA) == "2026-08-17_2027-06-11_year"
    assert model.enrollment_state(HOMEROOM, STUDENT, "student") == "active"
    assert model.course_status("OLD-7") == "deleted"

    second = run_file(canvas, tmp_path / "second", "--fix")
    assert second.exit_code == 0, second.output
    summary = orjson.loads((tmp_path / "second" / "reconcile.json").read_bytes())
    assert summary["total"] == {"missing": 0, "status": 0, "changed": 0, "extra": 0, "manual": 2}
    assert (summary["fixable"], summary["fix"]) == (0, None)
    assert not (tmp_path / "second" / "fix").exists()
    assert lines_of(tmp_path / "second" / "drift")["enrollments.csv"][1:] == [
        "manual,,5f0000000000000000000f02,teacher,status,,active,39"
    ]


def run_file(canvas: SmallCanvas, out: Path, *flags: str) -> object:
    report = report_zip(canvas.model, out.parent / f"{out.name}-report.zip")
    return run(
        ["reconcile", "--against", str(canvas.build_dir), "--report", str(report), "--out", str(out), *flags]
    )


def test_drift_found_without_fix_exits_60(canvas: SmallCanvas, tmp_path: Path) -> None:
    result = run_file(canvas, tmp_path / "out")
    assert result.exit_code == 60, result.output  # type: ignore[attr-defined]
    assert "run again with --fix to write a corrective build" in result.stderr  # type: ignore[attr-defined]
    assert lines_of(tmp_path / "out" / "drift") == DRIFT
    assert not (tmp_path / "out" / "fix").exists()


def test_remove_manual_removes_what_an_import_can_name(canvas: SmallCanvas, tmp_path: Path) -> None:
    result = run_file(canvas, tmp_path / "out", "--fix", "--remove-manual", "--allow-large-change")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    fix = lines_of(tmp_path / "out" / "fix" / "csv")
    # The manual enrollment is in Art's default section (no section_id): it is named by its course.
    assert fix["enrollments.csv"] == [
        *FIX["enrollments.csv"][:3],
        "5f00000000000000000000e3,,5f0000000000000000000f02,teacher,inactive",
        *FIX["enrollments.csv"][3:],
    ]
    assert fix["users.csv"] == FIX["users.csv"]  # the user made by hand has no SIS id to name it by
    apply_fix(canvas.model, tmp_path / "out" / "fix", 10)
    after = run_file(canvas, tmp_path / "after")
    summary = orjson.loads((tmp_path / "after" / "reconcile.json").read_bytes())
    assert after.exit_code == 0  # type: ignore[attr-defined]
    assert summary["drift"]["enrollments.csv"]["manual"] == 0
    assert summary["drift"]["users.csv"]["manual"] == 1


def test_a_fix_that_removes_too_much_is_refused_and_nothing_is_written(
    canvas: SmallCanvas, tmp_path: Path
) -> None:
    result = run_file(canvas, tmp_path / "out", "--fix")
    assert result.exit_code == 62  # type: ignore[attr-defined]
    assert result.stderr.splitlines()[-1] == (  # type: ignore[attr-defined]
        "error: the fix would remove courses.csv 1 of the 4 Canvas holds from imports (25.0%), limit 10%; "
        "sections.csv 1 of the 4 Canvas holds from imports (25.0%), limit 10%; enrollments.csv 1 of the 6 Canvas "
        "holds from imports (16.7%), limit 10%: is the build compared the one "
        "Canvas last imported? If it is, re-run with --allow-large-change"
    )
    assert not (tmp_path / "out").exists()


def test_upload_takes_the_fix_as_a_plain_import_only(canvas: SmallCanvas, tmp_path: Path) -> None:
    assert run_file(canvas, tmp_path / "out", "--fix", "--allow-large-change").exit_code == 0  # type: ignore[attr-defined]
    fix = tmp_path / "out" / "fix"
    refused = run(["upload", str(fix), "--diffing-data-set-identifier", "clever2sis:d:env"])
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: {fix} is a reconcile fix (only the drifted rows): import it as a plain import, without "
        "diffing_data_set_identifier or batch mode (use a config whose [upload] sets neither)\n"
    )
    with CanvasTestServer(FakeCanvas(script=[("imported", 100)], model=canvas.model)) as server:
        posted = run(
            ["upload", str(fix), "--wait", "--override-sis-stickiness", "--clear-sis-stickiness"],
            server.base_url,
        )
        forms = server.canvas.posted_forms
    assert posted.exit_code == 0, posted.output
    assert forms == [
        {"import_type": "instructure_csv", "override_sis_stickiness": "true", "clear_sis_stickiness": "true"}
    ]
    assert canvas.model.user_status(DELETED_STUDENT) == "active"
    review = run(["review", str(fix), "--against", str(canvas.build_dir), "--json"])
    assert review.exit_code == 0, review.output
    approved = run(["approve", str(fix), "--profile", "production", "--by", "Pat Admin"])
    assert approved.exit_code == 0, approved.output
    assert (fix / "approvals" / "production.json").is_file()


def test_a_report_missing_a_column_or_a_table_exits_64(canvas: SmallCanvas, tmp_path: Path) -> None:
    report = report_zip(canvas.model, tmp_path / "report.zip")
    directory = tmp_path / "report"
    directory.mkdir()
    shutil.unpack_archive(report, directory)
    users = directory / "users.csv"
    users.write_text(users.read_text().replace("created_by_sis", "made_by_sis", 1))
    result = run(
        [
            "reconcile",
            "--against",
            str(canvas.build_dir),
            "--report",
            str(directory),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert result.exit_code == 64
    assert result.stderr.splitlines()[-1] == (
        f"error: {directory}: users.csv has no column 'created_by_sis'; give a provisioning report (Canvas's "
        "account Reports → Provisioning), not an SIS export"
    )
    users.unlink()
    result = run(
        [
            "reconcile",
            "--against",
            str(canvas.build_dir),
            "--report",
            str(directory),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert result.exit_code == 64
    assert "the report has no users.csv; run the provisioning report with users checked" in result.stderr
    assert not (tmp_path / "o").exists()


def test_the_build_to_compare_must_be_whole_and_out_must_be_new(canvas: SmallCanvas, tmp_path: Path) -> None:
    report = report_zip(canvas.model, tmp_path / "report.zip")
    missing = run(
        [
            "reconcile",
            "--against",
            str(tmp_path / "nope"),
            "--report",
            str(report),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert missing.exit_code == 63
    assert f"error: {tmp_path / 'nope'}: no such build directory" in missing.stderr
    no_history = run(
        [
            "reconcile",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--report",
            str(report),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert no_history.exit_code == 63
    assert (
        "has no sync history; give the build Canvas last imported with --against BUILD_DIR"
        in no_history.stderr
    )
    (tmp_path / "o").mkdir()
    exists = run(
        [
            "reconcile",
            "--against",
            str(canvas.build_dir),
            "--report",
            str(report),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert exists.exit_code == 2
    assert "already exists; use --force to replace it" in exists.stderr
    flags = run(
        [
            "reconcile",
            "--against",
            str(canvas.build_dir),
            "--report",
            str(report),
            "--out",
            str(tmp_path / "p"),
            "--remove-manual",
        ]
    )
    assert flags.exit_code == 2
    assert "--remove-manual and --allow-large-change only apply with --fix" in flags.stderr


def test_reconcile_help_has_examples() -> None:
    result = run(["reconcile", "--help"])
    assert result.exit_code == 0
    assert (
        "  Examples:\n    clever2sis reconcile --profile production --out reconcile/2027-01-10\n"
        in result.stdout
    )
