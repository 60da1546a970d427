"""The snapshot format: written whole or not at all, and refused when damaged."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from clever2sis.clever.snapshot import Snapshot, SnapshotWriter
from clever2sis.cli import main
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


def _pointing(snapshot: Path, entry: str, collection: str, name: str) -> Path:
    """The snapshot with its manifest's ``entry`` ("collections" or "columnar") for ``collection`` naming
    ``name``, a copy of the real file there (same size and sha256, so only the name can give it away)."""
    manifest = orjson.loads((snapshot / "manifest.json").read_bytes())
    entries = manifest["collections"] if entry == "collections" else manifest["columnar"]["collections"]
    source = snapshot / entries[collection]["file"]
    target = Path(name) if Path(name).is_absolute() else snapshot / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())
    entries[collection]["file"] = name
    (snapshot / "manifest.json").write_bytes(orjson.dumps(manifest))
    return snapshot


@pytest.mark.parametrize("entry", ["collections", "columnar"])
@pytest.mark.parametrize("where", ["../outside", "/abs", "sub/dir"])
def test_a_manifest_naming_a_file_outside_the_snapshot_is_refused(
    tmp_path: Path, entry: str, where: str
) -> None:
    snapshot = write_snapshot(tmp_path / "s", tiny_district())
    suffix = ".jsonl" if entry == "collections" else ".arrow"
    name = str(tmp_path / f"abs{suffix}") if where == "/abs" else f"{where}{suffix}"
    _pointing(snapshot, entry, "users", name)
    label = "collection 'users'" if entry == "collections" else "the columnar copy of 'users'"
    with pytest.raises(SnapshotError) as caught:
        Snapshot.open(snapshot)
    assert str(caught.value) == (
        f"{snapshot / 'manifest.json'}: {label} names the file {name!r}; a manifest names its files by plain "
        f"name inside the snapshot (users{suffix}), so it was changed by hand or not written by clever2sis: "
        "pull the snapshot again"
    )
    result = CliRunner().invoke(main, ["build", str(snapshot), "--out", str(tmp_path / "b"), "-q"])
    assert result.exit_code == 3
    assert result.stderr == f"error: {caught.value}\n"
    assert not (tmp_path / "b").exists()


def test_a_snapshot_file_that_links_out_of_the_snapshot_is_refused(tmp_path: Path) -> None:
    snapshot = write_snapshot(tmp_path / "s", tiny_district())
    outside = tmp_path / "elsewhere.jsonl"
    (snapshot / "users.jsonl").rename(outside)
    (snapshot / "users.jsonl").symlink_to(outside)
    with pytest.raises(SnapshotError) as caught:
        Snapshot.open(snapshot)
    assert str(caught.value) == (
        f"{snapshot / 'users.jsonl'}: a link to {outside}, outside the snapshot; a snapshot holds its own "
        "files: pull the snapshot again"
    )
