"""Killed and interrupted sync runs leave right history, and the next run picks up the thread.

``clever2sis sync`` runs as a subprocess against the local Clever and Canvas servers and is stopped at each
stage: SIGTERM (systemd, Kubernetes, ``timeout``) or SIGINT (Ctrl-C) while a Clever page stalls, during the
build, while Canvas holds the POST's answer, and while the import is followed; ``kill -9`` during the wait
and during the pull. After each, the run's history row and JSON line say how it ended, no half-written
directory is left, and the next run neither posts twice nor posts while the previous import still runs,
and compares with the last import Canvas applied.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from clever2sis.canvas.client import CanvasClient
from clever2sis.canvas.sis_import import SisImports, WaitPolicy
from clever2sis.clever.client import CleverClient
from clever2sis.cli import main
from clever2sis.cli.common import CanvasRuntime
from clever2sis.interrupts import EXIT_SIGINT, EXIT_SIGTERM, Interrupted, interruption
from clever2sis.sync.history import History
from clever2sis.sync.pipeline import RunOptions, RunResult, SyncRuntime, run_sync
from clever2sis.sync.settle import remove_partials
from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas, Stall
from tests.clever_server import CleverTestServer
from tests.clever_server import Stall as PageStall
from tests.nightly_district import NightlyDistrict
from tests.test_sis_import import FakeTime
from tests.test_sync_month import CLEVER_TOKEN, sync_job

SIGNAL_WAIT_S = 120.0
POLL_S = 0.02
FINISHED = [("imported", 100)]
STILL_IMPORTING = [("importing", 50)]


@dataclass
class Scene:
    """A district, a Canvas double and a config for ``clever2sis sync --profile nightly``."""

    tmp: Path
    district: NightlyDistrict
    canvas: FakeCanvas
    canvas_url: str
    config: Path

    @property
    def runs(self) -> Path:
        return self.tmp / "runs"

    def env(self, clever_url: str) -> dict[str, str]:
        return {
            **os.environ,
            "CLEVER_TOKEN": CLEVER_TOKEN,
            "CLEVER_API_BASE": clever_url,
            "CANVAS_NIGHTLY": TEST_TOKEN,
        }

    def rows(self) -> list[dict[str, Any]]:
        """History as it is on disk, read without writing (the run may still be writing it)."""
        path = self.runs / "history.sqlite"
        if not path.is_file():
            return []
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
                db.row_factory = sqlite3.Row
                return [dict(row) for row in db.execute("SELECT * FROM runs ORDER BY run_id")]
        except sqlite3.OperationalError:  # created, but its table not yet
            return []

    def stage(self) -> str | None:
        rows = self.rows()
        return rows[-1]["stage"] if rows else None


@contextmanager
def scene(tmp_path: Path, script: list[tuple[str, int]]) -> Iterator[Scene]:
    canvas = FakeCanvas(script=list(script))
    with CanvasTestServer(canvas) as server:
        config = tmp_path / "clever2sis.toml"
        config.write_text(
            f'[profiles.nightly]\nbase_url = "{server.base_url}"\naccount_id = 1\ntoken_env = "CANVAS_NIGHTLY"\n'
            '[sync]\nruns_dir = "runs"\n[upload]\nwait_timeout_s = 600\n'
        )
        yield Scene(tmp_path, NightlyDistrict(tmp_path / "district"), canvas, server.base_url, config)


def until(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SIGNAL_WAIT_S
    while not condition():
        if process.poll() is not None:
            _out, err = process.communicate()
            raise AssertionError(f"sync ended before {what}: {process.returncode}\n{err.decode()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


@dataclass(frozen=True)
class Ended:
    returncode: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> dict[str, Any]:
        (line,) = self.stdout.splitlines()
        value = orjson.loads(line)
        assert isinstance(value, dict)
        return value


def stopped_sync(
    scene: Scene,
    when: Callable[[Scene], bool],
    what: str,
    *,
    signum: int = signal.SIGTERM,
    stall: PageStall | None = None,
    after: Callable[[], None] = lambda: None,
) -> Ended:
    """Run a sync of night 0 in a subprocess, send it ``signum`` once ``when`` holds, and let it end."""
    with CleverTestServer(scene.district.night(0).served(), token=CLEVER_TOKEN, stall=stall) as clever:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clever2sis",
                "sync",
                "--profile",
                "nightly",
                "--config",
                str(scene.config),
            ],
            env=scene.env(clever.url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            until(lambda: when(scene), what, process)
            process.send_signal(signum)
            after()
            out, err = process.communicate(timeout=SIGNAL_WAIT_S)
        finally:
            if stall is not None:
                stall.release.set()
            if process.poll() is None:
                process.kill()
                process.communicate()
    return Ended(process.returncode, out.decode(), err.decode())


def next_night(scene: Scene, number: int = 1) -> RunResult:
    """The next night's sync, in this process, against the same Canvas and runs directory."""
    scene.district.advance(number)
    night = scene.district.night(number)
    job = dataclasses.replace(sync_job(scene.canvas_url, scene.runs))
    fake = FakeTime()
    with (
        CleverTestServer(night.served(), token=CLEVER_TOKEN) as clever_server,
        CleverClient(CLEVER_TOKEN, clever_server.url) as clever,
        CanvasClient(scene.canvas_url, TEST_TOKEN, sleep=fake.sleep) as client,
    ):
        return run_sync(
            job,
            clever,
            SisImports(client, "1"),
            options=RunOptions(wait_policy=WaitPolicy(timeout_s=30, first_interval_s=1, max_interval_s=1)),
            runtime=SyncRuntime(monotonic=fake.clock, sleep=fake.sleep, attachment_wait_s=0),
        )


def polled(scene: Scene) -> bool:
    """The run is following its import: it has asked Canvas about it at least once."""
    return scene.stage() == "wait" and 101 in scene.canvas.imports and scene.canvas.imports[101].gets >= 1


def partials(run_dir: Path) -> list[str]:
    return sorted(path.name for path in run_dir.rglob(".*partial-*"))


def history_rows(runs: Path) -> list[dict[str, Any]]:
    with History(runs) as history:
        return [row.as_dict() for row in reversed(history.runs())]


# --- SIGTERM and SIGINT at each stage --------------------------------------------------------------------


def test_sigterm_while_clever_stalls_a_page(tmp_path: Path) -> None:
    stall = PageStall("sections", first_page=True)
    with scene(tmp_path, FINISHED) as s:
        ended = stopped_sync(
            s,
            lambda s: stall.reached.is_set() and s.stage() == "pull",
            "a stalled Clever page",
            stall=stall,
            after=stall.release.set,
        )
        assert ended.returncode == 143, ended.stderr
        summary = ended.summary
        assert (summary["outcome"], summary["exit_code"], summary["stage"]) == ("interrupted", 143, "pull")
        assert summary["message"] == "interrupted by SIGTERM during pull; nothing was posted"
        assert summary["sis_import_id"] is None
        assert "error: interrupted by SIGTERM during pull; nothing was posted" in ended.stderr
        run_dir = Path(summary["run_dir"])
        assert partials(run_dir) == []
        assert not (run_dir / "snapshot").exists()
        (row,) = s.rows()
        assert (row["outcome"], row["exit_code"], row["stage"]) == ("interrupted", 143, "pull")
        assert orjson.loads((run_dir / "run.json").read_bytes())["outcome"] == "interrupted"
        assert s.canvas.imports == {}

        after = next_night(s)
    assert after.exit_code == 0, after.message
    assert after.summary["guard"] == "first_run"


def test_sigint_during_the_build(tmp_path: Path) -> None:
    with scene(tmp_path, FINISHED) as s:
        ended = stopped_sync(s, lambda s: s.stage() == "build", "the build", signum=signal.SIGINT)
        assert ended.returncode == 130, ended.stderr
        summary = ended.summary
        assert (summary["outcome"], summary["exit_code"], summary["stage"]) == ("interrupted", 130, "build")
        assert summary["message"] == "interrupted by SIGINT during build; nothing was posted"
        run_dir = Path(summary["run_dir"])
        assert partials(run_dir) == []
        assert not (run_dir / "build").exists()
        assert (run_dir / "snapshot" / "manifest.json").is_file()
        assert s.canvas.imports == {}


def test_sigterm_while_canvas_holds_the_post_then_the_next_run_adopts_it(tmp_path: Path) -> None:
    stall = Stall()
    with scene(tmp_path, FINISHED) as s:
        s.canvas.post_stall = stall
        ended = stopped_sync(s, lambda _s: stall.reached.is_set(), "the POST", after=stall.release)
        assert ended.returncode == 143, ended.stderr
        summary = ended.summary
        assert (summary["outcome"], summary["stage"], summary["sis_import_id"]) == (
            "interrupted",
            "upload",
            None,
        )
        assert summary["message"] == (
            "interrupted by SIGTERM during upload; the upload may have reached Canvas: the next run looks for "
            "it before posting"
        )
        run_dir = Path(summary["run_dir"])
        (intent,) = (run_dir / "build/imports/nightly/intents").glob("*.intent.json")
        assert sorted(s.canvas.imports) == [101]

        after = next_night(s)
        assert after.exit_code == 0, after.message
        assert sorted(s.canvas.imports) == [101, 102]
        assert len(s.canvas.posted_forms) == 2
        first, second = history_rows(s.runs)
        assert (first["outcome"], first["sis_import_id"], first["import_state"]) == (
            "interrupted",
            101,
            "imported",
        )
        assert (
            "its upload's answer was lost; sis_import 101 was found among the account's imports"
            in first["message"]
        )
        assert (second["sis_import_id"], second["guard"]) == (102, "passed")
        record = orjson.loads((after.run_dir / "build" / "build.json").read_bytes())  # type: ignore[operator]
        assert record["sync"]["baseline_run_id"] == first["run_id"]
        created = orjson.loads((run_dir / "build/imports/nightly/101/created.json").read_bytes())
        assert created["adopted"]["how"] == "found among the account's imports"
        assert not intent.exists()


def test_sigterm_during_the_wait_keeps_the_import_and_the_next_run_waits_for_it(tmp_path: Path) -> None:
    with scene(tmp_path, [("created", 0), *STILL_IMPORTING]) as s:
        ended = stopped_sync(s, polled, "the wait")
        assert ended.returncode == 143, ended.stderr
        summary = ended.summary
        assert (summary["outcome"], summary["stage"], summary["sis_import_id"]) == (
            "interrupted",
            "wait",
            101,
        )
        assert summary["message"].startswith(
            f"interrupted by SIGTERM during wait; sis_import 101 ({summary['import_state']}) carries on in "
            "Canvas: the next run follows it"
        )
        run_dir = Path(summary["run_dir"])
        assert (run_dir / "build/imports/nightly/101/created.json").is_file()

        still = next_night(s)
        assert still.exit_code == 37, still.message
        assert "SIS import 101 (importing) is already running or queued" in still.message
        assert len(s.canvas.posted_forms) == 1
        assert history_rows(s.runs)[0]["import_state"] == "importing"

        s.canvas.imports[101].script = s.canvas.script = list(FINISHED)
        done = next_night(s, 2)
    assert done.exit_code == 0, done.message
    assert sorted(s.canvas.imports) == [101, 102]
    first = history_rows(s.runs)[0]
    assert (first["outcome"], first["import_state"]) == ("interrupted", "imported")
    assert done.summary["guard"] == "passed"
    record = orjson.loads((done.run_dir / "build" / "build.json").read_bytes())  # type: ignore[operator]
    assert record["sync"]["baseline_run_id"] == first["run_id"]


# --- kill -9: nothing recorded the end -------------------------------------------------------------------


def test_a_run_killed_during_the_wait_is_reconciled_by_the_next_run(tmp_path: Path) -> None:
    with scene(tmp_path, [("created", 0), *STILL_IMPORTING]) as s:
        ended = stopped_sync(s, polled, "the wait", signum=signal.SIGKILL)
        assert ended.returncode == -signal.SIGKILL
        assert ended.stdout == ""
        (row,) = s.rows()
        assert (row["outcome"], row["stage"], row["sis_import_id"]) == ("running", "wait", 101)

        s.canvas.imports[101].script = s.canvas.script = list(FINISHED)
        after = next_night(s)
    assert after.exit_code == 0, after.message
    first, second = history_rows(s.runs)
    assert (first["outcome"], first["import_state"], first["exit_code"]) == ("killed", "imported", None)
    assert first["message"].startswith(
        "killed during wait (the process ended without recording it); reconciled at "
    )
    assert first["message"].endswith(": sis_import 101 ended imported")
    run_json = orjson.loads((Path(first["run_dir"]) / "run.json").read_bytes())
    assert (run_json["outcome"], run_json["import_state"]) == ("killed", "imported")
    assert second["guard"] == "passed"
    assert sorted(s.canvas.imports) == [101, 102]


def test_a_run_killed_during_the_pull_leaves_nothing_half_written_for_long(tmp_path: Path) -> None:
    stall = PageStall("sections", first_page=True)
    with scene(tmp_path, FINISHED) as s:
        ended = stopped_sync(
            s,
            lambda s: stall.reached.is_set(),
            "a stalled Clever page",
            signum=signal.SIGKILL,
            stall=stall,
        )
        assert ended.returncode == -signal.SIGKILL
        (row,) = s.rows()
        run_dir = Path(row["run_dir"])
        assert [name.split("-")[0] for name in partials(run_dir)] == [".snapshot.partial"]

        after = next_night(s)
    assert after.exit_code == 0, after.message
    first = history_rows(s.runs)[0]
    assert first["outcome"] == "killed"
    assert first["message"].startswith(
        "killed during pull (the process ended without recording it); cleared what it left half-written: "
        ".snapshot.partial-"
    )
    assert first["message"].endswith(": nothing was posted")
    assert partials(run_dir) == []


def test_history_reconciles_a_killed_run(tmp_path: Path) -> None:
    with scene(tmp_path, [("created", 0), *STILL_IMPORTING]) as s:
        stopped_sync(s, polled, "the wait", signum=signal.SIGKILL)
        environ = {"CANVAS_NIGHTLY": TEST_TOKEN}
        runtime = CanvasRuntime(environ=environ)
        listed = CliRunner().invoke(
            main, ["history", "--json", "--config", str(s.config)], obj=runtime, catch_exceptions=False
        )
    assert listed.exit_code == 0, listed.output
    (row,) = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert (row["outcome"], row["sis_import_id"]) == ("killed", 101)
    assert row["import_state"] in ("created", "importing")
    assert "reconciled: killed; sis_import 101" in listed.stderr


# --- a run that stopped waiting --------------------------------------------------------------------------


def night_timing_out(scene: Scene) -> RunResult:
    """Night 0's sync, in this process, giving up on its import after 10 s (of a fake clock)."""
    night = scene.district.night(0)
    fake = FakeTime()
    with (
        CleverTestServer(night.served(), token=CLEVER_TOKEN) as clever_server,
        CleverClient(CLEVER_TOKEN, clever_server.url) as clever,
        CanvasClient(scene.canvas_url, TEST_TOKEN, sleep=fake.sleep) as client,
    ):
        return run_sync(
            sync_job(scene.canvas_url, scene.runs),
            clever,
            SisImports(client, "1"),
            options=RunOptions(wait_policy=WaitPolicy(timeout_s=10, first_interval_s=1, max_interval_s=1)),
            runtime=SyncRuntime(monotonic=fake.clock, sleep=fake.sleep, attachment_wait_s=0),
        )


def test_a_run_that_timed_out_records_the_state_it_saw_and_the_next_run_settles_it(tmp_path: Path) -> None:
    with scene(tmp_path, [("created", 0), *STILL_IMPORTING]) as s:
        timed_out = night_timing_out(s)
        assert timed_out.exit_code == 23
        assert (timed_out.summary["outcome"], timed_out.summary["import_state"]) == (
            "import_not_followed",
            "importing",
        )
        (row,) = history_rows(s.runs)
        assert (row["outcome"], row["import_state"], row["stage"]) == (
            "import_not_followed",
            "importing",
            "wait",
        )

        s.canvas.imports[101].script = s.canvas.script = list(FINISHED)
        after = next_night(s)
    assert after.exit_code == 0, after.message
    first = history_rows(s.runs)[0]
    assert (first["outcome"], first["import_state"]) == ("import_not_followed", "imported")
    assert first["message"].endswith(": sis_import 101 ended imported")
    assert first["message"].startswith("SIS import 101 is still importing after the wait limit")
    assert after.summary["guard"] == "passed"


def test_an_old_history_gains_the_stage_column(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    with sqlite3.connect(runs / "history.sqlite") as db:
        db.executescript(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, profile TEXT NOT NULL, district_id TEXT, "
            "started TEXT NOT NULL, finished TEXT, outcome TEXT NOT NULL, exit_code INTEGER, message TEXT, "
            "deletion_mode TEXT, remaster INTEGER NOT NULL DEFAULT 0, allow_large_change INTEGER NOT NULL "
            "DEFAULT 0, guard TEXT, guard_json TEXT, rows_json TEXT, changes_json TEXT, sis_import_id INTEGER, "
            "import_state TEXT, run_dir TEXT);"
            "INSERT INTO runs (run_id, profile, started, outcome) VALUES ('20270101T060000Z', 'p', 'x', 'imported');"
        )
    with History(runs) as history:
        history.record({"run_id": "20270101T060000Z", "stage": "wait"})
        (row,) = history.runs()
    assert (row["outcome"], row["stage"]) == ("imported", "wait")


def test_interrupted_runs_name_their_exit_codes() -> None:
    assert (EXIT_SIGINT, EXIT_SIGTERM) == (130, 143)
    assert getattr(interruption(KeyboardInterrupt()), "signum", None) == signal.SIGINT
    assert str(Interrupted(signal.SIGTERM)) == "interrupted by SIGTERM"
    assert interruption(ValueError()) is None


def test_what_a_cut_short_swap_left_is_removed_or_put_back(tmp_path: Path) -> None:
    dead = 4_000_000  # a pid no process has (above this machine's running ones)
    names = (f".build.partial-{dead}-ab12", "build", f".build.old-{dead}-cd34", f".snapshot.old-{dead}-ef56")
    for name in (*names, ".notes"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "marker").write_text(name)
    assert remove_partials(tmp_path) == [
        f".build.old-{dead}-cd34",
        f".build.partial-{dead}-ab12",
        f".snapshot.old-{dead}-ef56",
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == [".notes", "build", "snapshot"]
    assert (tmp_path / "build/marker").read_text() == "build"
    assert (tmp_path / "snapshot/marker").read_text() == f".snapshot.old-{dead}-ef56"


def test_an_id_saved_in_the_build_but_not_in_history_is_picked_up(tmp_path: Path) -> None:
    """Stopped after Canvas answered (created.json written) and before history heard of the import."""
    with scene(tmp_path, [("created", 0), *STILL_IMPORTING]) as s:
        first = night_timing_out(s)
        with History(s.runs) as history:
            history.record(
                {
                    "run_id": first.run_id,
                    "outcome": "interrupted",
                    "stage": "upload",
                    "sis_import_id": None,
                    "import_state": None,
                }
            )
        s.canvas.imports[101].script = s.canvas.script = list(FINISHED)
        after = next_night(s)
    assert after.exit_code == 0, after.message
    row = history_rows(s.runs)[0]
    assert (row["outcome"], row["sis_import_id"], row["import_state"]) == ("interrupted", 101, "imported")
    assert "its build directory recorded sis_import 101" in row["message"]
    assert after.summary["guard"] == "passed"
