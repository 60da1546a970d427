"""``status ID``: the exit code says how the import ended; ``status ID --wait`` follows it and saves its results
where the upload (or the sync run) that posted it keeps them, or in ``--save-dir``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from clever2sis.cli import main
from clever2sis.cli.common import CanvasRuntime
from tests.canvas_server import ROOT_ACCOUNT, TEST_TOKEN, CanvasTestServer, FakeCanvas
from tests.conftest import make_build_dir
from tests.test_sis_import import FakeTime
from tests.test_sync_recovery import FINISHED, STILL_IMPORTING, history_rows, night_timing_out, scene


def run(args: list[str], base_url: str, **env: str) -> Result:
    environ: Mapping[str, str] = {
        "CANVAS_BASE_URL": base_url,
        "CANVAS_TOKEN": TEST_TOKEN,
        "CANVAS_ACCOUNT_ID": ROOT_ACCOUNT,
        **env,
    }
    time = FakeTime()
    runtime = CanvasRuntime(environ=environ, sleep=time.sleep, clock=time.clock, attachment_wait_s=30)
    return CliRunner().invoke(main, args, obj=runtime, catch_exceptions=False)


@pytest.mark.parametrize(
    ("state", "flags", "exit_code"),
    [
        ("imported", [], 0),
        ("imported_with_messages", [], 20),
        ("imported_with_messages", ["--messages-ok"], 0),
        ("failed", [], 21),
        ("failed_with_messages", [], 21),
        ("aborted", [], 22),
        ("importing", [], 0),
        ("created", [], 0),
    ],
)
def test_status_exits_as_upload_does_for_a_finished_import(
    state: str, flags: list[str], exit_code: int
) -> None:
    canvas = FakeCanvas()
    canvas.seed(1, state)
    with CanvasTestServer(canvas) as server:
        result = run(["status", "101", *flags], server.base_url)
    assert result.exit_code == exit_code, result.output
    assert orjson.loads(result.stdout)["workflow_state"] == state
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    if exit_code:
        assert errors == [line for line in result.stderr.splitlines() if line.strip()]
        assert errors[0].startswith(f"error: SIS import 101 ended {state}")
    else:
        assert errors == []


@pytest.mark.parametrize(("flags", "exit_code"), [([], 20), (["--messages-ok"], 0)])
def test_status_wait_follows_an_upload_and_saves_its_results_in_the_build(
    tmp_path: Path, flags: list[str], exit_code: int
) -> None:
    build = make_build_dir(tmp_path / "build")
    with CanvasTestServer(FakeCanvas()) as server:
        posted = run(["upload", str(build)], server.base_url)
        assert posted.exit_code == 0, posted.output
        result = run(["status", "101", "--wait", "--build-dir", str(build), *flags], server.base_url)
    assert result.exit_code == exit_code, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "SIS import 101: imported_with_messages (progress 100%)"
    assert "rows imported: users 3, enrollments 4" in lines
    assert f"results saved in {build / 'imports/env/101'}" in lines
    saved = build / "imports" / "env" / "101"
    assert (
        orjson.loads((saved / "sis_import.json").read_bytes())["workflow_state"] == "imported_with_messages"
    )
    assert sorted(p.name for p in (saved / "sis_import_errors").iterdir()) == [
        "page-0001.json",
        "page-0002.json",
    ]
    assert (saved / "errors_attachment.csv").read_text().splitlines()[0] == "sis_import_id,file,message,row"
    assert (saved / "created.json").is_file()


def test_status_wait_saves_an_unknown_import_in_the_save_dir(tmp_path: Path) -> None:
    canvas = FakeCanvas(script=[("importing", 50), ("failed_with_messages", 100)])
    canvas.seed(1, "created")
    canvas.imports[101].script = list(canvas.script)
    with CanvasTestServer(canvas) as server:
        result = run(["status", "101", "--wait", "--save-dir", str(tmp_path / "saved")], server.base_url)
    assert result.exit_code == 21, result.output
    assert "error: SIS import 101 ended failed_with_messages" in result.stderr
    assert orjson.loads((tmp_path / "saved/101/sis_import.json").read_bytes())["workflow_state"] == (
        "failed_with_messages"
    )


def test_status_wait_times_out_with_23(tmp_path: Path) -> None:
    canvas = FakeCanvas()
    canvas.seed(1, "created")
    canvas.imports[101].script = [("importing", 10)]
    with CanvasTestServer(canvas) as server:
        result = run(
            ["status", "101", "--wait", "--timeout", "20", "--save-dir", str(tmp_path / "s")], server.base_url
        )
    assert result.exit_code == 23, result.output
    assert "SIS import 101 is still importing after the wait limit" in result.stderr
    assert not (tmp_path / "s/101/sis_import.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--wait"], "say where to save the results of sis_import 101: --build-dir BUILD_DIR"),
        (
            ["--build-dir", "{build}"],
            "--build-dir and --save-dir say where --wait saves the results; add --wait",
        ),
        (["--wait", "--build-dir", "{build}"], "has no record of sis_import 101"),
        (
            ["--wait", "--build-dir", "{build}", "--save-dir", "{tmp}"],
            "give --build-dir or --save-dir, not both",
        ),
    ],
)
def test_status_wait_must_know_where_to_save(tmp_path: Path, args: list[str], message: str) -> None:
    build = make_build_dir(tmp_path / "build")
    canvas = FakeCanvas()
    canvas.seed(1, "imported")
    argv = [arg.format(build=build, tmp=tmp_path) for arg in args]
    with CanvasTestServer(canvas) as server:
        result = run(["status", "101", *argv], server.base_url)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not (build / "imports").exists()


def test_status_wait_finds_the_sync_run_that_posted_the_import(tmp_path: Path) -> None:
    with scene(tmp_path, [("created", 0), *STILL_IMPORTING]) as s:
        timed_out = night_timing_out(s)
        assert timed_out.exit_code == 23
        s.canvas.imports[101].script = list(FINISHED)
        result = CliRunner().invoke(
            main,
            ["status", "101", "--wait", "--profile", "nightly", "--config", str(s.config), "--messages-ok"],
            obj=CanvasRuntime(
                environ={"CANVAS_NIGHTLY": TEST_TOKEN}, sleep=lambda _s: None, attachment_wait_s=0
            ),
            catch_exceptions=False,
        )
    assert result.exit_code == 0, result.output
    (row,) = history_rows(s.runs)
    saved = Path(row["run_dir"]) / "build/imports/nightly/101/sis_import.json"
    assert orjson.loads(saved.read_bytes())["workflow_state"] == "imported"
