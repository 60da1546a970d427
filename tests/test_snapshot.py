"""The snapshot format: written whole or not at all, and refused when damaged."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from clever2sis.clever.snapshot import Snapshot, SnapshotWriter
from clever2sis.errors import SnapshotError
from tests.conftest import drop_columnar, tiny_district, write_snapshot


def test_round_trip_keeps_every_record_byte_for_byte(tmp_path: Path) -> None:
    records = tiny_district()
    snapshot = Snapshot.open(write_snapshot(tmp_path / "s", records))
    assert list(snapshot.iter_records("users")) == sorted(records["users"], key=lambda r: r["id"])
    assert snapshot.manifest["collections"]["sections"]["records"] == 3
    assert snapshot.identity()["district_id"] == "5f0000000000000000000001"


def test_manifest_names_format_version_and_times(tmp_path: Path) -> None:
    manifest = orjson.loads((write_snapshot(tmp_path / "s", tiny_district()) / "manifest.json").read_bytes())
    assert manifest["format"] == "clever2sis-snapshot"
    assert manifest["format_version"] == 1
    assert (manifest["started_at"], manifest["finished_at"]) == (
        "2026-09-01T06:00:00Z",
        "2026-09-01T06:05:00Z",
    )
    assert set(manifest["collections"]["users"]) == {"file", "records", "bytes", "sha256"}


def test_an_exception_while_writing_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "s"
    with pytest.raises(RuntimeError), SnapshotWriter(dest, api_version="v3.0", source="test") as snap:
        snap.collection("users").write([{"id": "1"}])
        raise RuntimeError("connection lost")
    assert list(tmp_path.iterdir()) == []


def test_leaving_without_finish_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "s"
    with (
        pytest.raises(SnapshotError, match="was not finished"),
        SnapshotWriter(dest, api_version="v3.0", source="t"),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def test_finish_refuses_missing_collections(tmp_path: Path) -> None:
    with (
        pytest.raises(SnapshotError, match="missing collections: terms, courses, sections, users"),
        SnapshotWriter(tmp_path / "s", api_version="v3.0", source="t") as snap,
    ):
        snap.collection("districts").write([{"id": "d"}])
        snap.collection("schools").write([])
        snap.finish(district={"id": "d"}, started_at="2026-01-01T00:00:00Z")
    assert list(tmp_path.iterdir()) == []


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "s", tiny_district())
    users = path / "users.jsonl"
    users.write_bytes(users.read_bytes()[:-40])
    with pytest.raises(SnapshotError) as error:
        Snapshot.open(path)
    assert str(error.value).endswith("(truncated or changed)")
    assert str(users) in str(error.value)


def test_changed_bytes_are_refused_when_read(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "s", tiny_district())
    terms = path / "terms.jsonl"
    terms.write_bytes(terms.read_bytes().replace(b"Year", b"Yeer"))
    snapshot = Snapshot.open(path)
    with pytest.raises(SnapshotError, match="sha256 does not match the manifest"):
        snapshot.read_bytes("terms")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "{p}: no such snapshot directory"),
        (lambda p: p.mkdir(), "{p}: not a clever2sis snapshot (no manifest.json)"),
        (lambda p: (p.mkdir(), (p / "manifest.json").write_text("{")), "{p}/manifest.json: not valid JSON"),
        (
            lambda p: (p.mkdir(), (p / "manifest.json").write_text('{"format": "x"}')),
            "{p}/manifest.json: not a clever2sis snapshot manifest",
        ),
    ],
)
def test_not_a_snapshot(tmp_path: Path, setup, message: str) -> None:
    path = tmp_path / "s"
    setup(path)
    with pytest.raises(SnapshotError) as error:
        Snapshot.open(path)
    assert str(error.value).startswith(message.format(p=path))


def test_unsupported_api_version(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match=r"unsupported Clever API version 'v2.1'"):
        SnapshotWriter(tmp_path / "s", api_version="v2.1", source="t")


def test_loading_frames_checks_the_bytes_it_parses(tmp_path: Path) -> None:
    from clever2sis.clever.frames import load_district

    path = drop_columnar(write_snapshot(tmp_path / "s", tiny_district()))
    users = path / "users.jsonl"
    users.write_bytes(users.read_bytes().replace(b"Okafor", b"Okafur"))
    with pytest.raises(SnapshotError, match=r"users.jsonl: sha256 does not match the manifest"):
        load_district(Snapshot.open(path))
