"""Shared fixtures: tiny snapshots written with the real SnapshotWriter from records made here; a small
build directory; vcrpy cassettes recorded from tests/canvas_server.py."""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import vcr
import yaml

from clever2sis.clever.snapshot import COLLECTIONS, SnapshotWriter, add_columnar_copy
from tests.canvas_server import CanvasTestServer, FakeCanvas

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
DISTRICT_ID = "5f0000000000000000000001"

Records = Mapping[str, Sequence[Mapping[str, Any]]]


def write_snapshot(dest: Path, records: Records, *, replace: bool = False) -> Path:
    """A snapshot at ``dest`` holding ``records`` (collection -> list of Clever records)."""
    with SnapshotWriter(dest, api_version="v3.0", source="test", replace=replace) as snap:
        for name in COLLECTIONS:
            snap.collection(name).write(sorted(records.get(name, []), key=lambda r: r["id"]))
        district = (records.get("districts") or [{"id": DISTRICT_ID, "name": "Test District"}])[0]
        snap.finish(district=district, started_at="2026-09-01T06:00:00Z", finished_at="2026-09-01T06:05:00Z")
    return dest


def drop_columnar(path: Path) -> Path:
    """Make the snapshot at ``path`` one written before the columnar copy existed: no section, no files."""
    manifest = orjson.loads((path / "manifest.json").read_bytes())
    for entry in manifest.pop("columnar")["collections"].values():
        (path / entry["file"]).unlink()
    (path / "manifest.json").write_bytes(
        orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )
    return path


def reparsed(path: Path, dest: Path) -> Path:
    """A copy of the snapshot at ``path`` whose columnar copy was made afresh by parsing its JSONL."""
    shutil.copytree(path, dest)
    add_columnar_copy(drop_columnar(dest))
    return dest


def student(
    uid: str,
    first: str,
    last: str,
    *,
    school: str,
    username: str | None = None,
    email: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    role: dict[str, Any] = {
        "school": school,
        "schools": [school],
        "enrollments": [],
        "sis_id": f"S{uid[-4:]}",
        "student_number": f"N{uid[-4:]}",
        "grade": "9",
        **extra,
    }
    if username is not None:
        role["credentials"] = {"district_username": username}
    record: dict[str, Any] = {
        "id": uid,
        "district": DISTRICT_ID,
        "name": {"first": first, "last": last},
        "roles": {"student": role},
    }
    if email is not None:
        record["email"] = email
    return record


def teacher(
    uid: str, first: str, last: str, *, school: str, username: str, email: str, staff: bool = False
) -> dict[str, Any]:
    roles: dict[str, Any] = {
        "teacher": {
            "school": school,
            "schools": [school],
            "sis_id": f"T{uid[-4:]}",
            "teacher_number": uid[-4:],
            "credentials": {"district_username": username},
            "title": "Teacher",
        }
    }
    if staff:
        roles["staff"] = {
            "schools": [school],
            "staff_id": f"ST{uid[-4:]}",
            "title": "Coach",
            "credentials": {"district_username": username},
        }
    return {
        "id": uid,
        "district": DISTRICT_ID,
        "name": {"first": first, "last": last},
        "email": email,
        "roles": roles,
    }


SCHOOL_A = "5f00000000000000000000a1"
SCHOOL_B = "5f00000000000000000000b1"


def tiny_district() -> dict[str, list[dict[str, Any]]]:
    """Seven users, two schools, three terms (two named "Year"), three sections with every quirk the
    builders handle: co-teachers, a teacher who is also staff, a section with no term, a course that is
    not in the pull, a student not in the pull, a shared username, a bad email, a tab in a name."""
    return {
        "districts": [{"id": DISTRICT_ID, "name": "Test District"}],
        "schools": [
            {"id": SCHOOL_A, "district": DISTRICT_ID, "name": "Alder High", "sis_id": "100"},
            {"id": SCHOOL_B, "district": DISTRICT_ID, "name": "Birch Middle", "sis_id": "200"},
        ],
        "terms": [
            {
                "id": "5f00000000000000000000c1",
                "district": DISTRICT_ID,
                "name": "Year",
                "start_date": "2026-08-17",
                "end_date": "2027-06-11",
            },
            {
                "id": "5f00000000000000000000c2",
                "district": DISTRICT_ID,
                "name": "Year",
                "start_date": "2025-08-18",
                "end_date": "2026-06-12",
            },
            {
                "id": "5f00000000000000000000c3",
                "district": DISTRICT_ID,
                "name": "Semester 1",
                "start_date": "2026-08-17",
                "end_date": "2027-01-15",
            },
        ],
        "courses": [
            {
                "id": "5f00000000000000000000d1",
                "district": DISTRICT_ID,
                "name": "Algebra I",
                "number": "MA101",
            },
        ],
        "sections": [
            {
                "id": "5f00000000000000000000e1",
                "district": DISTRICT_ID,
                "school": SCHOOL_A,
                "name": "Algebra I - Okafor - 2",
                "sis_id": "9001",
                "period": "2",
                "course": "5f00000000000000000000d1",
                "term_id": "5f00000000000000000000c1",
                "teacher": "5f0000000000000000000f01",
                "teachers": ["5f0000000000000000000f01", "5f0000000000000000000f02"],
                "students": [
                    "5f0000000000000000000101",
                    "5f0000000000000000000102",
                    "5f0000000000000000000199",
                ],
            },
            {
                "id": "5f00000000000000000000e2",
                "district": DISTRICT_ID,
                "school": SCHOOL_B,
                "name": "Homeroom - Lindqvist - 1",
                "sis_id": "9002",
                "period": "1",
                "course": "",
                "term_id": "",
                "teacher": "5f0000000000000000000f02",
                "teachers": ["5f0000000000000000000f02"],
                "students": [
                    "5f0000000000000000000101",
                    "5f0000000000000000000103",
                    "5f0000000000000000000104",
                ],
            },
            {
                "id": "5f00000000000000000000e3",
                "district": DISTRICT_ID,
                "school": SCHOOL_A,
                "name": "Art - Okafor - 5",
                "sis_id": "9003",
                "period": "5",
                "course": "5f00000000000000000000dd",
                "term_id": "5f00000000000000000000c3",
                "teacher": "5f0000000000000000000f01",
                "teachers": ["5f0000000000000000000f01"],
                "students": ["5f0000000000000000000102"],
            },
        ],
        "users": [
            student(
                "5f0000000000000000000101",
                "Zoë\x00",
                "O'Brien",
                school=SCHOOL_A,
                username="zobrien",
                email="zoe@example.org",
            ),
            student(
                "5f0000000000000000000102",
                "Nguyễn",
                "Văn, An",
                school=SCHOOL_A,
                username="shared",
                email="an@example.org",
            ),
            student(
                "5f0000000000000000000103",
                "Li\tWei",
                '"Sunny" Chen',
                school=SCHOOL_B,
                username="shared",
                email="not-an-email",
            ),
            student("5f0000000000000000000104", "Ana", "Pérez", school=SCHOOL_B),
            teacher(
                "5f0000000000000000000f01",
                "Chidi",
                "Okafor",
                school=SCHOOL_A,
                username="cokafor",
                email="cokafor@example.org",
            ),
            teacher(
                "5f0000000000000000000f02",
                "Greta",
                "Lindqvist",
                school=SCHOOL_B,
                username="glindqvist",
                email="glindqvist@example.org",
                staff=True,
            ),
            {
                "id": "5f0000000000000000000c01",
                "district": DISTRICT_ID,
                "name": {"first": "", "last": "Pat O'Brien"},
                "email": "pat@example.org",
                "roles": {
                    "contact": {
                        "sis_id": "",
                        "phone": "",
                        "phone_type": "Cell",
                        "student_relationships": [
                            {
                                "student": "5f0000000000000000000101",
                                "relationship": "Parent",
                                "type": "Parent/Guardian",
                            }
                        ],
                    }
                },
            },
        ],
    }


@pytest.fixture(autouse=True)
def _no_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CLEVER2SIS_CONFIG in the shell that runs the tests must not reach the commands they run."""
    monkeypatch.delenv("CLEVER2SIS_CONFIG", raising=False)


@pytest.fixture
def tiny_snapshot(tmp_path: Path) -> Path:
    return write_snapshot(tmp_path / "snapshot", tiny_district())


@pytest.fixture
def snapshot_factory(tmp_path: Path) -> Callable[[Records], Path]:
    counter = iter(range(1000))

    def make(records: Records) -> Path:
        return write_snapshot(tmp_path / f"snapshot-{next(counter)}", records)

    return make


CASSETTES = Path(__file__).parent / "cassettes"
RECORD_ENV = "CLEVER2SIS_RECORD"
USERS_CSV = b"user_id,login_id,first_name,last_name,status\nU1,u1,Ada,Lovelace,active\n"

canvas_vcr = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    filter_headers=["authorization"],
    match_on=["method", "scheme", "host", "port", "path", "query"],
)


def make_build_dir(path: Path, *, users_csv: bytes = USERS_CSV) -> Path:
    """A build directory as ``clever2sis build`` leaves it: the zip and a build.json naming its sha256."""
    path.mkdir(parents=True, exist_ok=True)
    zip_path = path / "sis_import.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("users.csv", date_time=(2025, 1, 1, 0, 0, 0)), users_csv)
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    (path / "build.json").write_bytes(orjson.dumps({"zip": {"sha256": digest, "file": "sis_import.zip"}}))
    return path


@pytest.fixture
def build_dir(tmp_path: Path) -> Path:
    return make_build_dir(tmp_path / "build")


@dataclass
class Cassette:
    """Where to point the client: the live fake server when recording, its recorded origin on replay."""

    base_url: str
    canvas: FakeCanvas | None
    path: Path


def _recorded_origin(path: Path) -> str:
    interactions = yaml.safe_load(path.read_text())["interactions"]
    parts = urlsplit(interactions[0]["request"]["uri"])
    return f"{parts.scheme}://{parts.netloc}"


@contextmanager
def canvas_cassette(
    name: str, canvas: FakeCanvas | None = None, *, match_body: bool = False
) -> Iterator[Cassette]:
    """Replay ``tests/cassettes/<name>.yaml``; record it from the fake server when it is missing.

    ``match_body``: a replayed request must carry the very body recorded too (a form's exact fields).
    ``CLEVER2SIS_RECORD=1 make test`` re-records every cassette.
    """
    path = CASSETTES / f"{name}.yaml"
    match_on = [*canvas_vcr.match_on, "body"] if match_body else list(canvas_vcr.match_on)
    if path.exists() and not os.environ.get(RECORD_ENV):
        with canvas_vcr.use_cassette(
            path.name, record_mode="none", allow_playback_repeats=False, match_on=match_on
        ):
            yield Cassette(_recorded_origin(path), None, path)
        return
    path.unlink(missing_ok=True)
    with (
        CanvasTestServer(canvas) as server,
        canvas_vcr.use_cassette(path.name, record_mode="once", match_on=match_on),
    ):
        yield Cassette(server.base_url, server.canvas, path)


@pytest.fixture(scope="session")
def review_pair(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The demo district built as bundled and after a night of changes (tests/review_district.py)."""
    from tests.review_district import build_pair

    return build_pair(tmp_path_factory.mktemp("review"))
