"""A disk that fills (or a directory that cannot be made) under every command that writes files.

Each command says so in one line that names the file, exits with the code its exit-code table in docs/ gives, and
leaves nothing half-written. A tmpfs cannot be mounted here without privileges, and these tests run as
root (so a read-only mode stops nothing): the failure is injected where the bytes reach the disk
(``os.fsync`` of :func:`clever2sis.atomic.atomic_write_bytes`, which is where a full disk reports a
delayed allocation, or ``Path.write_bytes``), or a path runs through a regular file.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import clever2sis.atomic
from clever2sis.build_dir import BuildDir
from clever2sis.cli import main
from clever2sis.cli.common import CanvasRuntime
from tests.canvas_server import TEST_TOKEN
from tests.test_sis_import import FakeTime

NO_SPACE = os.strerror(errno.ENOSPC)


def _full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, NO_SPACE)

    monkeypatch.setattr(clever2sis.atomic.os, "fsync", fsync)


def _fail_writes_to(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """``Path.write_bytes`` fails with ENOSPC for files called ``name``; others are written."""
    write_bytes = Path.write_bytes

    def failing(self: Path, data: Any) -> int:
        if self.name == name:
            raise OSError(errno.ENOSPC, NO_SPACE, str(self))
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing)


def _invoke(args: list[str], runtime: CanvasRuntime | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, obj=runtime, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _leftovers(directory: Path) -> list[str]:
    """Hidden files and directories (temporary ones) under ``directory``, but for a build's lock file."""
    return sorted(p.name for p in directory.rglob(".*") if not p.name.endswith(".lock"))


@pytest.fixture
def built(tiny_snapshot: Path, tmp_path: Path) -> Path:
    out = tmp_path / "builds" / "b"
    code, _, stderr = _invoke(["build", str(tiny_snapshot), "--out", str(out), "-q"])
    assert code == 0, stderr
    return out


def test_review_on_a_full_disk_exits_40_naming_the_report(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _full_disk(monkeypatch)
    code, stdout, stderr = _invoke(["review", str(built), "-q"])
    assert code == 40
    assert stderr == f"error: cannot write the review report {built / 'report.html'}: {NO_SPACE}\n"
    assert stdout == ""
    assert not (built / "report.html").exists()
    assert _leftovers(built.parent) == []


def test_review_excel_on_a_full_disk_keeps_the_older_copies_whole(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, stderr = _invoke(["review", str(built), "--excel", "-q"])
    assert code == 0, stderr
    before = {p.name: p.read_bytes() for p in (built / "review").iterdir()}
    _fail_writes_to(monkeypatch, "findings.csv")
    code, _, stderr = _invoke(["review", str(built), "--excel", "-q"])
    assert code == 40
    assert stderr.startswith(f"error: cannot write the spreadsheet copies {built / 'review'}: {NO_SPACE} (")
    assert stderr.count("\n") == 1
    assert {p.name: p.read_bytes() for p in (built / "review").iterdir()} == before
    assert _leftovers(built.parent) == []


def test_approve_on_a_full_disk_exits_41_naming_the_sign_off(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _full_disk(monkeypatch)
    code, stdout, stderr = _invoke(["approve", str(built), "--profile", "production", "--by", "Dana"])
    assert code == 41
    approval = built / "approvals" / "production.json"
    assert stderr == f"error: cannot record the sign-off in {approval}: {NO_SPACE}\n"
    assert stdout == ""
    assert not approval.exists()
    assert _leftovers(built) == []


def _canvas(created: dict[str, Any], posts: list[httpx.Request] | None = None) -> CanvasRuntime:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(("/sis_imports/importing", "/sis_imports")) and request.method == "GET":
            return httpx.Response(200, json={"sis_imports": []})  # nothing running, nothing queued
        if request.method == "POST":
            if posts is not None:
                posts.append(request)
            return httpx.Response(200, json=created)
        return httpx.Response(200, json={**created, "workflow_state": "imported", "progress": 100})

    time = FakeTime()
    return CanvasRuntime(
        environ={
            "CANVAS_BASE_URL": "https://canvas.invalid",
            "CANVAS_TOKEN": TEST_TOKEN,
            "CANVAS_ACCOUNT_ID": "1",
        },
        transport=httpx.MockTransport(answer),
        sleep=time.sleep,
        clock=time.clock,
    )


def test_upload_that_cannot_write_down_the_upload_exits_36_and_posts_nothing(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _full_disk(monkeypatch)
    posts: list[httpx.Request] = []
    runtime = _canvas({"id": 101, "workflow_state": "created", "progress": 0}, posts)
    code, stdout, stderr = _invoke(["upload", str(built), "-q"], runtime)
    assert code == 36
    intents = built / "imports" / "env" / "intents"
    assert stderr == (
        f"error: cannot record the upload in {intents} before posting ({NO_SPACE}); nothing was posted: free "
        "some space and upload again\n"
    )
    assert stdout == ""
    assert posts == []
    assert list(intents.iterdir()) == []
    assert _leftovers(built) == []


def test_upload_that_cannot_save_the_new_id_exits_36_and_names_the_import(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save: Callable[..., Any] = clever2sis.atomic.atomic_write_bytes

    def failing(path: Path, data: bytes) -> None:
        if path.name == "created.json":
            raise OSError(errno.ENOSPC, NO_SPACE, str(path))
        save(path, data)

    monkeypatch.setattr("clever2sis.canvas.results.atomic_write_bytes", failing)
    posts: list[httpx.Request] = []
    runtime = _canvas({"id": 101, "workflow_state": "created", "progress": 0}, posts)
    code, stdout, stderr = _invoke(["upload", str(built), "-q"], runtime)
    assert code == 36
    created = built / "imports" / "env" / "101" / "created.json"
    (files,) = BuildDir(built).pending_intents("env")
    assert stderr == (
        f"error: SIS import 101 was created on Canvas, but {created} could not be written ({NO_SPACE}); its "
        f"id is kept in {files.answer}, and the next upload or sync of this build records it; follow it with "
        "`clever2sis status 101 --profile env`\n"
    )
    assert stdout == ""
    assert not created.exists()
    assert len(posts) == 1

    monkeypatch.setattr("clever2sis.canvas.results.atomic_write_bytes", save)
    code, stdout, stderr = _invoke(["upload", str(built), "-q"], runtime)
    assert (code, stdout) == (0, "sis_import 101 imported on env\n")  # as Canvas has it now
    assert len(posts) == 1
    assert created.is_file()
    assert BuildDir(built).pending_intents("env") == []
    assert _leftovers(built) == []


def test_upload_wait_that_cannot_save_the_results_exits_36_and_names_the_import(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save: Callable[..., Any] = clever2sis.atomic.atomic_write_bytes

    def failing(path: Path, data: bytes) -> None:
        if path.name == "sis_import.json":
            raise OSError(errno.ENOSPC, NO_SPACE, str(path))
        save(path, data)

    monkeypatch.setattr("clever2sis.canvas.results.atomic_write_bytes", failing)
    runtime = _canvas({"id": 101, "workflow_state": "created", "progress": 0})
    code, stdout, stderr = _invoke(["upload", str(built), "--wait", "-q"], runtime)
    assert code == 36
    assert stdout == "sis_import 101 created on env\n"
    final = built / "imports" / "env" / "101" / "sis_import.json"
    assert stderr == (
        f"error: SIS import 101 ended imported, but its results could not be saved: {final}: {NO_SPACE}; "
        "free some space, then save them with `clever2sis status 101 --profile env --wait`\n"
    )
    assert (built / "imports" / "env" / "101" / "created.json").is_file()


def test_sample_on_a_full_disk_exits_3_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_writes_to(monkeypatch, "manifest.json")
    out = tmp_path / "s"
    code, stdout, stderr = _invoke(["sample", "--students", "50", "--out", str(out), "-q"])
    assert code == 3
    assert stderr.startswith(f"error: cannot write the snapshot to {out}: {NO_SPACE} (")
    assert stderr.count("\n") == 1
    assert stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_history_with_a_runs_dir_that_cannot_be_made_exits_54(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, stdout, stderr = _invoke(["history", "--runs-dir", str(blocker / "runs")])
    assert code == 54
    assert stderr == f"error: cannot open run history {blocker / 'runs' / 'history.sqlite'}: " + (
        f"{os.strerror(errno.ENOTDIR)} ({blocker / 'runs'})\n"
    )
    assert stdout == ""


def test_init_into_a_path_through_a_file_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, stderr = _invoke(["init", str(blocker / "conf")])
    assert code == 2
    assert stderr.startswith(f"error: {blocker / 'conf' / 'clever2sis.toml'}: cannot write the config file (")
