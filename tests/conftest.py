"""Shared fixtures: a small build directory, and vcrpy cassettes recorded from tests/canvas_server.py."""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
import vcr
import yaml

from tests.canvas_server import CanvasTestServer, FakeCanvas

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
def canvas_cassette(name: str, canvas: FakeCanvas | None = None) -> Iterator[Cassette]:
    """Replay ``tests/cassettes/<name>.yaml``; record it from the fake server when it is missing.

    ``CLEVER2SIS_RECORD=1 make test`` re-records every cassette.
    """
    path = CASSETTES / f"{name}.yaml"
    if path.exists() and not os.environ.get(RECORD_ENV):
        with canvas_vcr.use_cassette(path.name, record_mode="none", allow_playback_repeats=False):
            yield Cassette(_recorded_origin(path), None, path)
        return
    path.unlink(missing_ok=True)
    with CanvasTestServer(canvas) as server, canvas_vcr.use_cassette(path.name, record_mode="once"):
        yield Cassette(server.base_url, server.canvas, path)
