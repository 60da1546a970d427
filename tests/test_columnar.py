"""The snapshot's columnar copy: written with every snapshot, read by the build instead of parsing the JSONL
(giving the same frames), checked like the JSONL, and ignored when it is not this clever2sis's."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as paipc
import pyarrow.json as pajson
import pytest
from click.testing import CliRunner

from clever2sis.clever.frames import District, load_district
from clever2sis.clever.schemas import SCHEMA_FINGERPRINT, SCHEMAS
from clever2sis.clever.snapshot import COLLECTIONS, Snapshot, _ColumnarFile, add_columnar_copy
from clever2sis.cli import main
from clever2sis.config import RawConfig, build_settings
from clever2sis.errors import SnapshotError
from clever2sis.sis.build import build
from tests.conftest import drop_columnar, reparsed, tiny_district, write_snapshot

DEMO = Path(__file__).resolve().parents[1] / "samples" / "demo-district"


@pytest.fixture(params=["tiny", "demo"])
def snapshot_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "tiny":
        return write_snapshot(tmp_path / "tiny", tiny_district())
    return Path(shutil.copytree(DEMO, tmp_path / "demo"))


def without_copy(path: Path, dest: Path) -> Path:
    return drop_columnar(Path(shutil.copytree(path, dest)))


def rewrite_manifest(path: Path, change) -> None:
    manifest = orjson.loads((path / "manifest.json").read_bytes())
    change(manifest)
    (path / "manifest.json").write_bytes(orjson.dumps(manifest))


def flip_a_byte(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))


def assert_same_district(left: District, right: District) -> None:
    assert left.district == right.district
    assert left.malformed == right.malformed
    for field in dataclasses.fields(District):
        if field.name not in ("district", "malformed"):
            a, b = getattr(left, field.name), getattr(right, field.name)
            pd.testing.assert_frame_equal(a, b, check_exact=True, obj=field.name)
            assert list(a.dtypes) == list(b.dtypes), field.name


def test_every_snapshot_has_a_copy_of_every_collection(snapshot_path: Path) -> None:
    snapshot = Snapshot.open(snapshot_path)
    assert snapshot.manifest["columnar"]["schema"] == SCHEMA_FINGERPRINT
    assert snapshot.has_columnar_copy
    for name in COLLECTIONS:
        entry = snapshot.columnar_entry(name)
        assert entry is not None
        assert entry["file"] == f"{name}.arrow"
        assert entry["records"] == snapshot.manifest["collections"][name]["records"]
        assert set(entry) == {"file", "records", "bytes", "sha256"}


def test_each_copy_is_the_table_arrow_parses_from_the_jsonl(snapshot_path: Path) -> None:
    snapshot = Snapshot.open(snapshot_path)
    for name in COLLECTIONS:
        parsed = pajson.read_json(
            snapshot_path / f"{name}.jsonl",
            parse_options=pajson.ParseOptions(
                explicit_schema=SCHEMAS[name], unexpected_field_behavior="ignore"
            ),
        )
        table = snapshot.read_columnar(name)
        assert table is not None
        assert table.schema == SCHEMAS[name]
        assert table.schema.metadata is None
        assert table.equals(parsed), name


def test_the_copy_and_the_jsonl_give_the_same_frames(snapshot_path: Path, tmp_path: Path) -> None:
    jsonl_only = without_copy(snapshot_path, tmp_path / "jsonl-only")
    assert not Snapshot.open(jsonl_only).has_columnar_copy
    assert_same_district(
        load_district(Snapshot.open(snapshot_path)), load_district(Snapshot.open(jsonl_only))
    )


def test_a_build_reads_the_copy_not_the_jsonl(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "s", tiny_district())
    users = path / "users.jsonl"
    users.write_bytes(users.read_bytes().replace(b"Okafor", b"Okafur"))
    district = load_district(Snapshot.open(path))
    assert "Okafor" in set(district.users["last"].dropna())


def test_a_snapshot_without_the_copy_builds_the_same_zip(tmp_path: Path) -> None:
    path = Path(shutil.copytree(DEMO, tmp_path / "demo"))
    jsonl_only = without_copy(path, tmp_path / "jsonl-only")
    settings = build_settings(RawConfig(data={}))
    said: list[str] = []
    with_copy = build(path, tmp_path / "a", settings, progress=said.append)
    assert not any("no columnar copy" in line for line in said)
    without = build(jsonl_only, tmp_path / "b", settings, progress=said.append)
    assert (
        "the snapshot has no columnar copy this clever2sis reads (an older pull): parsing its JSONL" in said
    )
    assert with_copy["zip"] == without["zip"]
    assert (tmp_path / "a" / "sis_import.zip").read_bytes() == (
        tmp_path / "b" / "sis_import.zip"
    ).read_bytes()


def test_a_changed_copy_is_refused_naming_the_file(tiny_snapshot: Path, tmp_path: Path) -> None:
    users = tiny_snapshot / "users.arrow"
    flip_a_byte(users)
    with pytest.raises(SnapshotError) as error:
        Snapshot.open(tiny_snapshot).read_columnar("users")
    assert str(error.value) == f"{users}: sha256 does not match the manifest (changed or corrupt)"
    result = CliRunner().invoke(main, ["build", str(tiny_snapshot), "--out", str(tmp_path / "b"), "-q"])
    assert result.exit_code == 3
    assert result.stderr == f"error: {users}: sha256 does not match the manifest (changed or corrupt)\n"
    assert not (tmp_path / "b").exists()


def test_a_copy_of_the_wrong_size_or_missing_is_refused_when_opened(tiny_snapshot: Path) -> None:
    sections = tiny_snapshot / "sections.arrow"
    size = sections.stat().st_size
    sections.write_bytes(sections.read_bytes() + b"\0")
    with pytest.raises(SnapshotError) as error:
        Snapshot.open(tiny_snapshot)
    assert str(error.value) == (
        f"{sections}: {size + 1} bytes, but the manifest says {size} (truncated or changed)"
    )
    sections.unlink()
    with pytest.raises(SnapshotError) as error:
        Snapshot.open(tiny_snapshot)
    assert str(error.value) == f"{sections}: missing from the snapshot"


def test_a_copy_with_other_rows_than_the_jsonl_is_refused_when_opened(tiny_snapshot: Path) -> None:
    rewrite_manifest(tiny_snapshot, lambda m: m["columnar"]["collections"]["users"].update(records=3))
    with pytest.raises(SnapshotError, match=r"the columnar copy of users holds 3 records, the JSONL 7$"):
        Snapshot.open(tiny_snapshot)


def test_a_copy_written_with_other_schemas_is_ignored(snapshot_path: Path, tmp_path: Path) -> None:
    expected = load_district(Snapshot.open(without_copy(snapshot_path, tmp_path / "jsonl-only")))
    rewrite_manifest(snapshot_path, lambda m: m["columnar"].update(schema="0" * 64))
    flip_a_byte(snapshot_path / "users.arrow")
    (snapshot_path / "sections.arrow").unlink()
    snapshot = Snapshot.open(snapshot_path)
    assert not snapshot.has_columnar_copy
    assert snapshot.columnar_entry("users") is None
    assert snapshot.read_columnar("users") is None
    assert_same_district(load_district(snapshot), expected)


def test_a_collection_without_a_copy_is_read_from_its_jsonl(tiny_snapshot: Path, tmp_path: Path) -> None:
    expected = load_district(Snapshot.open(tiny_snapshot))
    rewrite_manifest(tiny_snapshot, lambda m: m["columnar"]["collections"].pop("sections"))
    (tiny_snapshot / "sections.arrow").unlink()
    sections = tiny_snapshot / "sections.jsonl"
    assert Snapshot.open(tiny_snapshot).columnar_entry("sections") is None
    assert_same_district(load_district(Snapshot.open(tiny_snapshot)), expected)
    sections.write_bytes(sections.read_bytes().replace(b"Algebra", b"Algebro"))
    with pytest.raises(SnapshotError, match=r"sections.jsonl: sha256 does not match the manifest"):
        load_district(Snapshot.open(tiny_snapshot))


def test_records_that_do_not_fit_the_schema_get_no_copy(snapshot_factory) -> None:
    path = snapshot_factory({"sections": [{"id": "x", "students": "not-a-list"}]})
    manifest = Snapshot.open(path).manifest
    assert set(manifest["columnar"]["collections"]) == set(COLLECTIONS) - {"sections"}
    assert not (path / "sections.arrow").exists()


def test_the_same_rows_give_the_same_bytes_however_they_arrive(tmp_path: Path) -> None:
    schema = SCHEMAS["courses"]
    rows = pa.Table.from_pylist(
        [{"id": f"c{i}", "name": f"Course {i}" if i % 3 else None, "number": str(i)} for i in range(10)],
        schema=schema,
    )

    def written(sizes: list[int]) -> bytes:
        path = tmp_path / f"{'-'.join(map(str, sizes))}.arrow"
        file = _ColumnarFile(path, schema, batch_rows=3)
        start = 0
        for size in sizes:
            file.write(rows.slice(start, size))
            start += size
        entry = file.close()
        assert entry["records"] == 10
        assert entry["bytes"] == path.stat().st_size
        return path.read_bytes()

    whole = written([10])
    assert written([1, 5, 0, 4]) == whole
    assert written([2, 2, 2, 2, 2]) == whole
    reader = paipc.open_file(pa.py_buffer(whole))
    assert [reader.get_batch(i).num_rows for i in range(reader.num_record_batches)] == [3, 3, 3, 1]
    assert reader.read_all().equals(rows)


def test_a_copy_can_be_added_to_a_snapshot_without_one(tiny_snapshot: Path, tmp_path: Path) -> None:
    written = {name: (tiny_snapshot / f"{name}.arrow").read_bytes() for name in COLLECTIONS}
    path = reparsed(tiny_snapshot, tmp_path / "again")
    assert {name: (path / f"{name}.arrow").read_bytes() for name in COLLECTIONS} == written
    manifest = (path / "manifest.json").read_bytes()
    assert add_columnar_copy(path) == orjson.loads(manifest)
    assert (path / "manifest.json").read_bytes() == manifest
    assert sorted(p.name for p in path.iterdir()) == sorted(p.name for p in tiny_snapshot.iterdir())


def test_adding_a_copy_checks_the_jsonl_and_leaves_nothing_when_it_fails(tiny_snapshot: Path) -> None:
    drop_columnar(tiny_snapshot)
    manifest = (tiny_snapshot / "manifest.json").read_bytes()
    users = tiny_snapshot / "users.jsonl"
    users.write_bytes(users.read_bytes().replace(b"Okafor", b"Okafur"))
    with pytest.raises(SnapshotError, match=r"users.jsonl: sha256 does not match the manifest"):
        add_columnar_copy(tiny_snapshot)
    assert (tiny_snapshot / "manifest.json").read_bytes() == manifest
    assert not [p.name for p in tiny_snapshot.iterdir() if ".arrow" in p.name and "users" in p.name]


def test_unique_categorical_equals_pandas_own_with_or_without_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy as np
    import pandas as pd

    from clever2sis.clever.frames import unique_categorical

    categories = pd.Index(["b", "a", "c"], dtype="string")
    codes = np.array([2, -1, 0, 0, 1], dtype=np.int32)
    expected = pd.Series(pd.Categorical.from_codes(codes, categories=categories))
    pd.testing.assert_series_equal(unique_categorical(codes, categories), expected)
    monkeypatch.delattr(pd.CategoricalDtype, "_from_fastpath")
    pd.testing.assert_series_equal(unique_categorical(codes, categories), expected)
