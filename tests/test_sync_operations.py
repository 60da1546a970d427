"""The nightly job as an operator meets it: pause windows, the report of each run and its review, alerts,
and messages that name what a sync's user can change."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from clever2sis.cli import main
from clever2sis.config import PauseWindow, RawConfig, build_settings
from clever2sis.sync.history import History
from clever2sis.sync.pipeline import paused_window
from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas
from tests.clever_server import CleverTestServer
from tests.nightly_district import FIRST_NIGHT, VANISH_NIGHT, NightlyDistrict
from tests.test_sync_month import CLEVER_TOKEN, run_month, sync_job
from tests.webhook_server import WEBHOOK_PATH, WebhookReceiver

# --- pause windows ---------------------------------------------------------------------------------------


def test_paused_nights_send_nothing_and_the_first_night_after_is_a_remaster(tmp_path: Path) -> None:
    second, third = (FIRST_NIGHT + dt.timedelta(days=n) for n in (1, 2))
    windows = (PauseWindow(second.date(), second.date()), PauseWindow(second.date(), third.date()))
    month = run_month(tmp_path, count=5, pause=windows)  # overlapping windows are fine
    assert month.exit_codes == [0, 55, 55, 0, 0]
    paused = month.results[1]
    assert paused["outcome"] == "paused"
    assert paused["message"] == (
        "paused ([sync] pause 2027-01-06 to 2027-01-06): nothing was pulled or sent; the first night after "
        "the pause is a remaster (sync --ignore-pause runs anyway)"
    )
    assert sorted(month.import_of_night) == [0, 3, 4]
    assert [form.get("diffing_remaster_data_set") for form in month.forms] == ["true", "true", None]
    with History(month.runs_dir) as history:
        rows = history.runs()
    assert [row["outcome"] for row in rows] == ["imported", "imported", "paused", "paused", "imported"]
    assert rows[2]["run_id"] == "20270107T060000Z-paused"
    assert rows[2]["run_dir"] is None
    assert sorted(p.name for p in month.runs_dir.iterdir() if p.is_dir()) == [
        str(month.results[n]["run_id"]) for n in (0, 3, 4)
    ]


def test_a_pause_window_is_in_build_timezone_and_both_ends_count(tmp_path: Path) -> None:
    window = PauseWindow(dt.date(2027, 6, 12), dt.date(2027, 8, 20))
    job = sync_job("https://canvas.example.edu", tmp_path, pause=(window,))
    local = type(job)(
        profile=job.profile,
        sync=job.sync,
        build=build_settings(RawConfig({"build": {"timezone": "America/Los_Angeles"}})),
        upload=job.upload,
    )
    first_local_night = dt.datetime(2027, 6, 12, 6, 0, tzinfo=dt.UTC)  # 2027-06-11 23:00 in Los Angeles
    assert paused_window(job, first_local_night) == window
    assert paused_window(local, first_local_night) is None
    assert paused_window(local, first_local_night + dt.timedelta(hours=1)) == window
    last = dt.datetime(2027, 8, 21, 6, 59, tzinfo=dt.UTC)  # 2027-08-20 23:59 in Los Angeles
    assert paused_window(local, last) == window
    assert paused_window(local, last + dt.timedelta(minutes=1)) is None


def test_the_sync_command_honours_a_pause_and_ignore_pause(tmp_path: Path) -> None:
    night = NightlyDistrict(tmp_path / "d").night(0)
    today = dt.datetime.now(dt.UTC).date()
    with (
        CanvasTestServer(FakeCanvas(script=[("imported", 100)])) as canvas,
        CleverTestServer(night.served(), token=CLEVER_TOKEN) as clever,
    ):
        config = tmp_path / "clever2sis.toml"
        config.write_text(
            f'[profiles.nightly]\nbase_url = "{canvas.base_url}"\naccount_id = 1\ntoken_env = "CANVAS_NIGHTLY"\n'
            f'[sync]\nruns_dir = "runs"\npause = [{{ from = {today - dt.timedelta(days=1)}, to = "{today}" }}]\n'
        )
        env = {"CLEVER_TOKEN": CLEVER_TOKEN, "CLEVER_API_BASE": clever.url, "CANVAS_NIGHTLY": TEST_TOKEN}
        args = ["sync", "--profile", "nightly", "--config", str(config), "--quiet"]
        paused = CliRunner().invoke(main, args, env=env)
        assert paused.exit_code == 55, paused.output
        assert orjson.loads(paused.stdout)["outcome"] == "paused"
        assert clever.paths == []
        assert canvas.canvas.posted_forms == []
        forced = CliRunner().invoke(main, [*args, "--ignore-pause"], env=env)
        assert forced.exit_code == 0, forced.output
        assert len(canvas.canvas.posted_forms) == 1
        history = CliRunner().invoke(main, ["history", "--config", str(config)])
    header, *rows = history.stdout.splitlines()
    assert (
        header
        == "run_id\tprofile\toutcome\texit\tguard\tsis_import\tapplied\tchanges\theld\tflags\tobserver_imports"
    )
    # (both runs may start in the same second, so their order is not asserted)
    assert sorted(row.split("\t")[2:4] for row in rows) == [["imported", "0"], ["paused", "55"]]


# --- each run's report, and the review of a sync run -----------------------------------------------------


def test_each_run_writes_its_report_and_its_review_uses_the_run_s_settings_and_baseline(
    tmp_path: Path,
) -> None:
    month = run_month(tmp_path, count=2)
    assert month.exit_codes == [0, 0]
    first, second = (Path(str(result["run_dir"])) for result in month.results)
    for run in (first, second):
        assert (run / "build" / "report.html").is_file()
        assert f"report written: {run / 'build' / 'report.html'}" in (run / "run.log").read_text()

    result = CliRunner().invoke(main, ["review", str(second / "build"), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    facts = orjson.loads(result.stdout)
    assert facts["against"]["path"] == str(first / "build")
    assert facts["comparison"] == {
        "profile": "nightly",
        "import_settings_from": f"sync run {second.name}: the import options it sent",
        "older_build": str(first / "build"),
        "reason": f"the run sync run {second.name} compared with: run {first.name}",
    }
    district = month.results[0]["district_id"]
    assert facts["import_settings"] == {
        "diffing_data_set_identifier": f"clever2sis:{district}:nightly",
        "diffing_drop_status": "inactive",
        "diffing_user_remove_status": "suspended",
        "change_threshold": 10,
    }
    removals = facts["removals"]
    assert removals["mode"] == "diffing"
    users = removals["files"]["users.csv"]
    assert users["removed"] == 2  # the two students who left that night
    assert users["status"] == "suspended"

    first_review = CliRunner().invoke(main, ["review", str(first / "build")])
    assert first_review.exit_code == 0
    assert f"no older build to compare with: sync run {first.name} had no earlier applied run\n" in (
        first_review.stderr
    )


def test_a_report_that_cannot_be_written_is_a_warning_not_a_failed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import clever2sis.review.run

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(clever2sis.review.run, "review_build", broken)
    month = run_month(tmp_path, count=1)
    assert month.exit_codes == [0]
    log = (Path(str(month.results[0]["run_dir"])) / "run.log").read_text()
    assert "warning: report.html not written (OSError: No space left on device); the run goes on" in log


# --- alerts ----------------------------------------------------------------------------------------------


def test_a_failed_night_and_a_held_school_each_send_one_alert(tmp_path: Path) -> None:
    district = NightlyDistrict(tmp_path / "d")
    canvas = FakeCanvas(script=[("importing", 50), ("failed", 100)])
    with CanvasTestServer(canvas) as server, WebhookReceiver() as hook:
        config = tmp_path / "clever2sis.toml"
        config.write_text(
            f'[profiles.nightly]\nbase_url = "{server.base_url}"\naccount_id = 1\ntoken_env = "CANVAS_NIGHTLY"\n'
            '[sync]\nruns_dir = "runs"\n'
            '[notify.webhook]\nurl_env = "HOOK_URL"\nformat = "json"\n'
        )
        env = {
            "CLEVER_TOKEN": CLEVER_TOKEN,
            "CANVAS_NIGHTLY": TEST_TOKEN,
            "HOOK_URL": hook.url,
        }
        args = ["sync", "--profile", "nightly", "--config", str(config), "--quiet"]
        codes = []
        for number, script in ((0, [("failed", 100)]), (1, [("imported", 100)]), (VANISH_NIGHT, None)):
            if script is not None:
                canvas.script = script
            with CleverTestServer(district.night(number).served(), token=CLEVER_TOKEN) as clever:
                codes.append(
                    CliRunner().invoke(main, args, env={**env, "CLEVER_API_BASE": clever.url}).exit_code
                )
        missing = CliRunner().invoke(main, args, env={**env, "CANVAS_NIGHTLY": ""})
    assert [*codes, missing.exit_code] == [21, 0, 56, 30]  # the vanished school is held
    bodies = [received.json() for received in hook.received]
    assert [(b["reasons"], b["exit_code"], b["outcome"]) for b in bodies] == [
        (["failure"], 21, "failed"),
        (["schools_held"], 56, "schools_held"),
        (["failure"], 30, "not_started"),
    ]
    assert (
        bodies[2]["message"]
        == "set CANVAS_NIGHTLY to a Canvas access token (profile 'nightly' reads it from there)"
    )
    for received in hook.received:
        assert received.path == WEBHOOK_PATH
        assert CLEVER_TOKEN.encode() not in received.body
        assert TEST_TOKEN.encode() not in received.body
    first_log = sorted((tmp_path / "runs").glob("*/run.log"))[0].read_text()  # night 0, the failed one
    assert "alert" in first_log  # the delivery is in the run's log


# --- hints that name what a sync's user can change -------------------------------------------------------


def test_sync_messages_name_config_keys_not_upload_flags(tmp_path: Path) -> None:
    month = run_month(
        tmp_path / "messages", count=1, canvas=FakeCanvas(script=[("imported_with_messages", 100)])
    )
    assert month.exit_codes == [20]
    message = str(month.results[0]["message"])
    assert message.endswith(
        "some rows were skipped (upload.messages_ok = true in the config makes this exit 0)"
    )
    assert "--messages-ok" not in message

    busy = FakeCanvas(script=[("imported", 100)])
    busy.seed(1, "importing")
    busy.running.append(101)
    month = run_month(tmp_path / "busy", count=1, canvas=busy)
    assert month.exit_codes == [37]
    message = str(month.results[0]["message"])
    assert "--queue" not in message
    assert message == (
        "SIS import 101 (importing) is already running or queued on this account; wait for it (or abort it: "
        "`clever2sis abort ID`), and run the sync again when it has ended (tomorrow night's run tries again "
        "by itself)"
    )


def test_upload_keeps_its_own_flags_in_its_hints() -> None:
    from clever2sis.canvas.sis_import import SisImport, check_outcome
    from clever2sis.errors import ImportedWithMessagesError

    with pytest.raises(ImportedWithMessagesError) as raised:
        check_outcome(SisImport({"id": 7, "workflow_state": "imported_with_messages"}))
    assert str(raised.value) == (
        "SIS import 7 ended imported_with_messages; some rows were skipped (--messages-ok makes this exit 0)"
    )
    assert os.environ.get("CLEVER2SIS_CONFIG") is None


def test_a_paused_night_sends_no_alert() -> None:
    from clever2sis.notify.facts import read_facts
    from clever2sis.notify.message import reasons
    from clever2sis.notify.settings import NotifySettings, WebhookSettings

    settings = NotifySettings(daily_summary=True, webhook=WebhookSettings(url="https://hooks.example.org/x"))
    paused = {"run_id": "20270613T060000Z-paused", "outcome": "paused", "exit_code": 55, "message": "paused"}
    assert reasons(settings, read_facts(paused)) == ()
    assert reasons(settings, read_facts({**paused, "exit_code": 52, "outcome": "pull_failed"})) == (
        "failure",
    )
