"""The build directory module: its record's bytes, the check of a whole build, its frames and its rewrite."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pandas as pd
import pytest

from clever2sis.build_dir import (
    CARRIED,
    REMOVED,
    BuildDir,
    BuildRecord,
    FileEntry,
    ZipEntry,
    empty_frames,
    sha256_file,
)
from clever2sis.config import RawConfig, build_settings
from clever2sis.errors import ApprovalError, BuildDirError, Clever2SisError, ReviewError, SyncBuildError
from clever2sis.sis import files
from clever2sis.sis.build import build
from tests.conftest import make_build_dir
from tests.test_demo_golden import DEMO, EXPECTED

# The same defect is a different exit code for each command that reads a build.
COMMAND_ERRORS = [(BuildDirError, 36), (ReviewError, 40), (ApprovalError, 41), (SyncBuildError, 53)]


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "build"
    build(DEMO, out, build_settings(RawConfig(data={})))
    return out


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# --- build.json ------------------------------------------------------------------------------------------


def test_a_build_record_round_trips_to_the_same_bytes(demo_build: Path) -> None:
    written = (demo_build / "build.json").read_bytes()
    record = BuildRecord.from_dict(orjson.loads(written))
    assert record.to_json() == written
    assert record.zip == ZipEntry(
        sha256=hashlib.sha256((demo_build / "sis_import.zip").read_bytes()).hexdigest(),
        bytes=(demo_build / "sis_import.zip").stat().st_size,
    )
    users = (demo_build / "csv" / "users.csv").read_bytes()
    assert record.files is not None
    assert record.files["users.csv"] == FileEntry(
        rows=users.count(b"\n") - 1, sha256=hashlib.sha256(users).hexdigest(), bytes=len(users)
    )


def test_the_committed_expected_record_round_trips_without_its_volatile_fields() -> None:
    # The expected build.json leaves out built_at: an absent field stays absent.
    expected = (EXPECTED / "build.json").read_bytes()
    record = BuildRecord.from_dict(orjson.loads(expected))
    assert record.built_at is None
    assert record.to_json() == expected


def test_a_minimal_record_needs_only_the_zip() -> None:
    record = BuildRecord.from_dict({"zip": {"sha256": "ab" * 32, "file": "sis_import.zip"}})
    assert record == BuildRecord(zip=ZipEntry(sha256="ab" * 32))
    assert record.as_dict() == {"zip": {"file": "sis_import.zip", "sha256": "ab" * 32}}


# --- is this a whole build -------------------------------------------------------------------------------


@pytest.mark.parametrize(("error", "exit_code"), COMMAND_ERRORS)
def test_each_defect_has_one_message_and_the_callers_exit_code(
    tmp_path: Path, error: type[Clever2SisError], exit_code: int
) -> None:
    def refusal(path: Path) -> str:
        with pytest.raises(error) as caught:
            BuildDir(path).verified_zip(error=error)
        assert caught.value.exit_code == exit_code
        return str(caught.value)

    missing = tmp_path / "missing"
    assert refusal(missing) == f"{missing}: no such build directory; run `clever2sis build` first"

    path = make_build_dir(tmp_path / "build")
    record, archive = path / "build.json", path / "sis_import.zip"
    good = record.read_bytes()

    record.unlink()
    assert refusal(path) == f"{record}: missing; {path} is not a complete build"
    record.write_bytes(b'{"zip": ')
    assert refusal(path) == f"{record}: not valid JSON; rebuild {path}"
    record.write_bytes(b"[]")
    assert refusal(path) == f"{record}: not a clever2sis build record (not a JSON object); rebuild {path}"
    record.write_bytes(b'{"zip": {"file": "sis_import.zip"}}')
    assert refusal(path) == f"{record}: not a clever2sis build record (no zip.sha256); rebuild {path}"
    record.write_bytes(b'{"zip": {"sha256": "00"}, "files": {"users.csv": {"rows": 1}}}')
    assert refusal(path) == (
        f"{record}: not a clever2sis build record (files.users.csv lacks rows, sha256 or bytes); rebuild {path}"
    )

    record.write_bytes(good)
    zip_bytes = archive.read_bytes()
    archive.unlink()
    assert refusal(path) == f"{archive}: missing; {path} is not a complete build"
    archive.write_bytes(zip_bytes + b"\0")
    assert refusal(path) == (
        f"{archive}: its sha256 does not match build.json; the zip changed after the build, so rebuild it"
    )


def test_a_whole_build_gives_its_zip_and_record(demo_build: Path) -> None:
    verified = BuildDir(demo_build).verified_zip(error=ReviewError)
    zip_bytes = (demo_build / "sis_import.zip").read_bytes()
    assert verified.path == demo_build / "sis_import.zip"
    assert verified.sha256 == hashlib.sha256(zip_bytes).hexdigest()
    assert verified.size_bytes == len(zip_bytes)
    assert verified.record.to_json() == (demo_build / "build.json").read_bytes()


def test_sha256_file_reads_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = bytes(range(256)) * (3 * (8 << 20) // 256 + 7)  # three chunks and a bit
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


# --- frames ----------------------------------------------------------------------------------------------


def test_frames_are_the_zips_files_and_empty_frames_for_the_rest(demo_build: Path) -> None:
    frames = BuildDir(demo_build).verified_zip(error=ReviewError).read_frames()
    assert list(frames) == list(files.FILE_ORDER)
    with zipfile.ZipFile(demo_build / "sis_import.zip") as archive:
        zipped = set(archive.namelist())
    for name, frame in frames.items():
        if name in zipped:
            expected = pd.read_csv(demo_build / "csv" / name, dtype=str, keep_default_na=False)
            pd.testing.assert_frame_equal(frame, expected)
            assert len(frame) > 0
        else:
            assert frame.empty
            assert list(frame.columns) == list(files.COLUMNS[name])


def test_reading_a_build_does_not_import_pandas_until_frames_are_asked_for(build_dir: Path) -> None:
    script = (
        "import sys\nfrom pathlib import Path\n"
        "from clever2sis.build_dir import BuildDir\nfrom clever2sis.errors import BuildDirError\n"
        f"BuildDir(Path({str(build_dir)!r})).verified_zip(error=BuildDirError)\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    assert out.stdout == "False\n"


# --- rewrite ---------------------------------------------------------------------------------------------


def test_rewriting_the_same_frames_gives_the_same_bytes(demo_build: Path, tmp_path: Path) -> None:
    path = Path(shutil.copytree(demo_build, tmp_path / "build"))
    (path / "imports" / "test").mkdir(parents=True)
    (path / "imports" / "test" / "latest.json").write_bytes(b'{"sis_import_id": 1}\n')
    (path / "report.html").write_bytes(b"<html></html>")
    before = _tree(path)
    layout = BuildDir(path)
    verified = layout.verified_zip(error=SyncBuildError)
    frames = verified.read_frames()
    shuffled = {name: frame.iloc[::-1].reset_index(drop=True) for name, frame in frames.items()}
    rewritten = layout.rewrite(
        verified.record, shuffled, sync_rows={CARRIED: empty_frames()}, sync={"run_id": "R1"}
    )
    after = _tree(path)
    # Rows come back in the build's order: every CSV and the zip are the bytes the build wrote.
    assert {k: v for k, v in after.items() if k != "build.json"} == {
        k: v for k, v in before.items() if k != "build.json"
    }
    assert rewritten.sync == {"run_id": "R1"}
    assert rewritten.zip == verified.record.zip
    assert rewritten.files == verified.record.files
    assert after["build.json"] == rewritten.to_json()
    assert orjson.loads(after["build.json"]) == {
        **orjson.loads(before["build.json"]),
        "sync": {"run_id": "R1"},
    }
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]


def test_a_rewrite_keeps_the_sync_rows_and_drops_files_left_without_rows(
    demo_build: Path, tmp_path: Path
) -> None:
    path = Path(shutil.copytree(demo_build, tmp_path / "build"))
    layout = BuildDir(path)
    verified = layout.verified_zip(error=SyncBuildError)
    frames = verified.read_frames()
    gone = frames[files.ENROLLMENTS].iloc[:2].assign(status="inactive")
    frames[files.ENROLLMENTS] = frames[files.ENROLLMENTS].iloc[2:]
    frames[files.TERMS] = frames[files.TERMS].iloc[:0]
    removed = {**empty_frames(), files.ENROLLMENTS: gone}
    rewritten = layout.rewrite(verified.record, frames, sync_rows={REMOVED: removed}, sync={})
    assert rewritten.files is not None
    assert files.TERMS not in rewritten.files
    assert not (path / "csv" / files.TERMS).exists()
    with zipfile.ZipFile(path / "sis_import.zip") as archive:
        assert files.TERMS not in archive.namelist()
    assert rewritten.files[files.ENROLLMENTS].rows == len(frames[files.ENROLLMENTS])
    assert sorted(p.name for p in (path / "sync").iterdir()) == [REMOVED]
    kept = layout.read_sync_rows(REMOVED)
    assert kept[files.ENROLLMENTS].to_dict("records") == gone.sort_values(
        list(files.SORT_KEYS[files.ENROLLMENTS])
    ).to_dict("records")
    assert kept[files.USERS].empty
    assert list(kept[files.USERS].columns) == list(files.COLUMNS[files.USERS])
    assert BuildDir(path).verified_zip(error=SyncBuildError).record == rewritten


def test_a_rewrite_that_fails_leaves_the_build_as_it_was(demo_build: Path, tmp_path: Path) -> None:
    path = Path(shutil.copytree(demo_build, tmp_path / "build"))
    before = _tree(path)
    layout = BuildDir(path)
    verified = layout.verified_zip(error=SyncBuildError)
    frames = verified.read_frames()
    frames[files.USERS] = frames[files.USERS].drop(columns=["user_id"])  # its sort key: the rewrite fails
    with pytest.raises(KeyError, match="user_id"):
        layout.rewrite(verified.record, frames, sync_rows={}, sync={})
    assert _tree(path) == before
    assert [p.name for p in path.parent.iterdir()] == ["build"]
