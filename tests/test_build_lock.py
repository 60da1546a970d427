"""Two commands on one build directory: the build lock, and what ``build --force`` keeps of the build it
replaces (imports/ and approvals/ always; the review only for the same zip)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner

from clever2sis.build_dir import BuildDir, BuildLock
from clever2sis.canvas.results import record_created
from clever2sis.canvas.signoff import approve, check_before_post
from clever2sis.canvas.sis_import import SisImport
from clever2sis.cli import main
from clever2sis.cli.common import CanvasRuntime
from clever2sis.errors import BuildDirError, BuildError
from clever2sis.review.baseline import find_baseline
from tests.canvas_server import TEST_TOKEN
from tests.conftest import tiny_district, write_snapshot
from tests.test_sis_import import FakeTime

ROOT = Path(__file__).resolve().parents[1]
CHILD_TIMEOUT_S = 60
HOLDER = """
import sys
from pathlib import Path
from clever2sis.build_dir import BuildLock
from clever2sis.errors import BuildError
with BuildLock(Path(sys.argv[1]), shared=sys.argv[2] == "shared", error=BuildError):
    print("held", flush=True)
    sys.stdin.readline()
"""


def _invoke(args: list[str], runtime: CanvasRuntime | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, obj=runtime, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@contextmanager
def _held_by_another_process(out: Path, *, shared: bool = False) -> Iterator[int]:
    """The build lock of ``out`` held by a live process; its pid."""
    args = [sys.executable, "-c", HOLDER, str(out), "shared" if shared else "exclusive"]
    child = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdin is not None
    try:
        assert child.stdout.readline() == "held\n"
        yield child.pid
    finally:
        child.stdin.close()
        child.wait(CHILD_TIMEOUT_S)


@pytest.fixture
def snapshots(tmp_path: Path) -> tuple[Path, Path]:
    """The tiny district, and the same a night later with one more student."""
    first = write_snapshot(tmp_path / "snap-1", tiny_district())
    later = tiny_district()
    later["users"].append(
        dict(
            later["users"][0],
            id="5f0000000000000000000105",
            roles={
                "student": {
                    "school": later["schools"][0]["id"],
                    "credentials": {"district_username": "newkid"},
                }
            },
        )
    )
    return first, write_snapshot(tmp_path / "snap-2", later)


def _build(snapshot: Path, out: Path, *flags: str) -> tuple[int, str]:
    code, _, stderr = _invoke(["build", str(snapshot), "--out", str(out), *flags])
    return code, stderr


# --- the lock --------------------------------------------------------------------------------------------


def test_a_second_build_into_the_same_out_says_another_build_is_writing_it(
    snapshots: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "builds" / "cb"
    with _held_by_another_process(out) as pid:
        code, stderr = _build(snapshots[0], out, "-q")
    assert code == 4
    assert stderr == (
        f"error: another clever2sis build is writing {out} (pid {pid}); wait for it to finish, or build "
        "into another directory\n"
    )
    assert sorted(p.name for p in out.parent.iterdir()) == [".cb.lock"]


def test_build_force_refuses_while_an_upload_review_or_approve_uses_the_build(
    snapshots: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "cb"
    assert _build(snapshots[0], out, "-q")[0] == 0
    before = (out / "sis_import.zip").read_bytes()
    with _held_by_another_process(out, shared=True):
        code, stderr = _build(snapshots[1], out, "--force", "-q")
    assert code == 4
    assert stderr == (
        f"error: {out} is in use by another clever2sis command (an upload, review or approve); build again "
        "when it has finished, or build into another directory\n"
    )
    assert (out / "sis_import.zip").read_bytes() == before
    assert _build(snapshots[1], out, "--force", "-q")[0] == 0


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["upload", "{out}", "-q"], 36),
        (["review", "{out}", "-q"], 40),
        (["approve", "{out}", "--profile", "production", "--by", "Dana"], 41),
    ],
)
def test_upload_review_and_approve_refuse_while_a_build_replaces_the_directory(
    snapshots: tuple[Path, Path], tmp_path: Path, args: list[str], code: int
) -> None:
    out = tmp_path / "cb"
    assert _build(snapshots[0], out, "-q")[0] == 0
    runtime = CanvasRuntime(
        environ={
            "CANVAS_BASE_URL": "https://canvas.invalid",
            "CANVAS_TOKEN": TEST_TOKEN,
            "CANVAS_ACCOUNT_ID": "1",
        },
        transport=httpx.MockTransport(lambda request: pytest.fail(f"no request may be sent: {request.url}")),
    )
    with _held_by_another_process(out) as pid:
        exit_code, stdout, stderr = _invoke([arg.format(out=out) for arg in args], runtime)
    assert exit_code == code
    assert stderr == (
        f"error: another clever2sis build is writing {out} (pid {pid}); wait for it to finish, then run this "
        "again\n"
    )
    assert stdout == ""
    assert sorted(p.name for p in out.iterdir()) == ["build.json", "csv", "sis_import.zip"]


def test_shared_holders_do_not_block_each_other_and_a_lock_file_left_behind_blocks_nothing(
    snapshots: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "cb"
    assert _build(snapshots[0], out, "-q")[0] == 0
    with BuildLock(out, shared=True, error=BuildDirError), BuildLock(out, shared=True, error=BuildDirError):
        pass
    lock = tmp_path / ".cb.lock"
    lock.write_text("999999999\n")  # the pid of a build killed with kill -9 (no such process)
    assert _build(snapshots[1], out, "--force", "-q")[0] == 0
    assert lock.read_text() == ""
    with (
        pytest.raises(BuildError, match=r"in use by another clever2sis command"),
        BuildLock(out, shared=True, error=BuildDirError),
        BuildLock(out, shared=False, error=BuildError),
    ):
        pass
    assert os.path.exists(lock)


# --- build --force keeps the history of the build it replaces ---------------------------------------------


def _uploaded_and_approved(out: Path) -> None:
    """What an upload to the test profile (still running: no sis_import.json) and a sign-off leave."""
    sha256 = BuildDir(out).verified_zip(error=BuildDirError).sha256
    record_created(
        out,
        "test",
        SisImport.from_json({"id": 101, "workflow_state": "importing", "progress": 40}),
        base_url="https://canvas.invalid",
        account_id="1",
        zip_sha256=sha256,
        form_fields=[("import_type", "instructure_csv")],
    )
    approve(out, "production", "Dana")


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_build_force_keeps_imports_and_approvals_and_leaves_out_the_review_of_another_zip(
    snapshots: tuple[Path, Path], tmp_path: Path
) -> None:
    builds = tmp_path / "builds"
    out = builds / "cb"
    assert _build(snapshots[0], out, "-q")[0] == 0
    _uploaded_and_approved(out)
    assert _invoke(["review", str(out), "--excel", "-q"])[0] == 0
    history = {k: v for k, v in _tree(out).items() if k.startswith(("imports/", "approvals/"))}
    assert find_baseline(builds / "next", "test") is not None
    assert find_baseline(builds / "next", "production") is not None

    code, stderr = _build(snapshots[1], out, "--force")
    assert code == 0, stderr
    assert "kept imports/, approvals/ of the build this one replaces" in stderr
    assert (
        "left out report.html and review/: they describe the build this one replaces; run `clever2sis review` "
        "on this one" in stderr
    )
    assert {k: v for k, v in _tree(out).items() if k.startswith(("imports/", "approvals/"))} == history
    assert not (out / "report.html").exists()
    assert not (out / "review").exists()
    # What was uploaded and signed off is the old zip: a sibling's review does not compare with this one.
    assert find_baseline(builds / "next", "test") is None
    assert find_baseline(builds / "next", "production") is None

    # The carried sign-off is of the old zip: it does not let the new one through.
    config = tmp_path / "clever2sis.toml"
    config.write_text('[profiles.production]\nbase_url = "https://canvas.invalid"\naccount_id = 1\n')
    runtime = CanvasRuntime(environ={"CANVAS_TOKEN": TEST_TOKEN}, sleep=FakeTime().sleep)
    code, _, stderr = _invoke(
        ["upload", str(out), "--config", str(config), "--profile", "production", "--dry-run"], runtime
    )
    assert code == 43
    assert "changed since Dana signed it off for 'production'" in stderr
    # Nor is the old zip's test import this zip's test, nor this build what the production profile holds.
    record = approve(out, "production", "Dana")
    assert record["test_import"] is None
    baseline = find_baseline(builds / "next", "production")
    assert baseline is not None
    assert baseline.reason.startswith("last sign-off for production")
    assert (
        orjson.loads((out / "approvals" / "production.json").read_bytes())["zip_sha256"]
        == record["zip_sha256"]
    )


def test_build_force_of_the_same_zip_keeps_the_sign_off_valid_and_still_leaves_out_the_report(
    snapshots: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "cb"
    assert _build(snapshots[0], out, "-q")[0] == 0
    _uploaded_and_approved(out)
    assert _invoke(["review", str(out), "-q"])[0] == 0
    zip_before = (out / "sis_import.zip").read_bytes()
    code, stderr = _build(snapshots[0], out, "--force")
    assert code == 0, stderr
    assert (out / "sis_import.zip").read_bytes() == zip_before
    assert "left out report.html: they describe the build this one replaces" in stderr
    assert not (out / "report.html").exists()
    build = BuildDir(out).verified_zip(error=BuildDirError)
    assert check_before_post("production", build) is not None
    record = approve(out, "production", "Dana")
    assert record["test_import"] is not None
    assert record["test_import"]["sis_import_id"] == 101
