"""Canvases for the reconcile tests: a build imported into a CanvasModel, then changed by hand (drift).

:func:`small_canvas` is the tiny district of conftest (observers on) with one drift of each kind;
:func:`report_zip` is the provisioning report Canvas would make of a model, zipped as Canvas zips it.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from clever2sis.config import RawConfig, build_settings
from clever2sis.reconcile.fix import FIX_IMPORT_OPTIONS
from clever2sis.sis.build import build
from tests.canvas_model import CanvasModel, ImportRecord
from tests.conftest import tiny_district, write_snapshot

REPORT_TABLES = ("users", "courses", "sections", "enrollments", "user_observers")
TEACHER = "5f0000000000000000000f01"
CO_TEACHER = "5f0000000000000000000f02"
STUDENT = "5f0000000000000000000101"
DELETED_STUDENT = "5f0000000000000000000102"
ALGEBRA = "5f00000000000000000000e1"
HOMEROOM = "5f00000000000000000000e2"
ART = "5f00000000000000000000e3"
SEMESTER = "2026-08-17_2027-01-15_semester-1"


def zipped(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0)), text)
    return out.getvalue()


def report_zip(model: CanvasModel, path: Path) -> Path:
    """The model's provisioning report (deleted objects included), as the zip Canvas makes of it."""
    csvs = model.provisioning_report(REPORT_TABLES, include_deleted=True)
    path.write_bytes(zipped({f"{table}.csv": csvs[table].decode() for table in REPORT_TABLES}))
    return path


def apply_fix(model: CanvasModel, fix_dir: Path, import_id: int) -> ImportRecord:
    """Import a reconcile fix into the model as reconcile says to: plain, stickiness overridden and cleared."""
    options = dict(FIX_IMPORT_OPTIONS.form_fields()[1:])
    return model.apply(import_id, options, (fix_dir / "sis_import.zip").read_bytes())


@dataclass(frozen=True)
class SmallCanvas:
    build_dir: Path
    model: CanvasModel


def small_canvas(tmp: Path) -> SmallCanvas:
    """The tiny district built (observers on) and imported, then changed in Canvas:

    * changed: the teacher's name edited by hand; the Algebra course moved to the semester term by hand;
    * missing: a student deleted by hand (and with them their two enrollments);
    * status: the other student's homeroom enrollment made inactive by hand;
    * extra: a course, its section and an enrollment from an older import the build does not have;
    * manual: the co-teacher enrolled by hand in Art (its default section), and a user made by hand.
    """
    write_snapshot(tmp / "snapshot", tiny_district())
    build_dir = tmp / "build"
    build(tmp / "snapshot", build_dir, build_settings(RawConfig({"observers": {"enabled": True}})))
    model = CanvasModel()
    old_feed = zipped(
        {
            "courses.csv": "course_id,short_name,long_name,account_id,term_id,status\n"
            "OLD-7,OLD 7,Study Hall (old feed),,,active\n",
            "sections.csv": "section_id,course_id,name,status\nOLD-7,OLD-7,Study Hall,active\n",
        }
    )
    assert model.apply(1, {}, old_feed).workflow_state == "imported"
    assert model.apply(2, {}, (build_dir / "sis_import.zip").read_bytes()).workflow_state == "imported"
    enrollment = "course_id,section_id,user_id,role,status\nOLD-7,OLD-7," + STUDENT + ",student,active\n"
    assert model.apply(3, {}, zipped({"enrollments.csv": enrollment})).workflow_state == "imported"
    model.ui_edit_user(TEACHER, name="Chidi Okafor-Eze")
    model.ui_move_course(ALGEBRA, term_id=SEMESTER)
    model.ui_delete_user(DELETED_STUDENT)
    model.ui_set_enrollment_state(HOMEROOM, STUDENT, "student", "inactive")
    model.ui_enroll(CO_TEACHER, course_id=ART, role="teacher")
    model.ui_create_user("helper@example.org", "Sam Helper")
    return SmallCanvas(build_dir, model)
