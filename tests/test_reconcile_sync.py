"""``[sync] reconcile_every_days``: the sync reconciles after a successful import on the nights it is due,
and posts the fix as one more plain import. A user deleted by hand in Canvas is never re-sent by diffing
(their row did not change); the reconcile night brings them back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson

from clever2sis.canvas.client import CanvasClient
from clever2sis.canvas.sis_import import SisImports
from clever2sis.clever.client import CleverClient
from clever2sis.reconcile.nightly import reconcile_due
from clever2sis.sync.history import History
from clever2sis.sync.pipeline import RunOptions, SyncRuntime, run_sync
from tests.canvas_model import CanvasModel
from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas
from tests.clever_server import CleverTestServer
from tests.nightly_district import NightlyDistrict
from tests.reconcile_canvas import report_zip
from tests.test_cli_canvas import run
from tests.test_sync_month import CLEVER_TOKEN, FAST, sync_job

FIX_FORM = {
    "import_type": "instructure_csv",
    "override_sis_stickiness": "true",
    "clear_sis_stickiness": "true",
}


def test_a_reconcile_night_finds_what_diffing_missed_and_posts_the_fix(tmp_path: Path) -> None:
    district = NightlyDistrict(tmp_path / "district")
    model = CanvasModel()
    canvas = FakeCanvas(script=[("importing", 50), ("imported", 100)], model=model)
    results = []
    deleted_candidates: list[str] = []
    with CanvasTestServer(canvas) as server:
        job = sync_job(server.base_url, tmp_path / "runs", reconcile_every_days=1)
        for number in range(2):
            if number:
                district.advance(number)
            night = district.night(number)
            if number == 1:
                gone = sorted(night.user_ids & set(deleted_candidates))[0]
                model.ui_delete_user(gone)
            with (
                CleverTestServer(night.served(), token=CLEVER_TOKEN) as clever_server,
                CleverClient(CLEVER_TOKEN, clever_server.url) as clever,
                CanvasClient(server.base_url, TEST_TOKEN, sleep=lambda _s: None) as client,
            ):
                result = run_sync(
                    job,
                    clever,
                    SisImports(client, "1"),
                    options=RunOptions(wait_policy=FAST),
                    runtime=SyncRuntime(
                        clock=lambda night=night: night.now,
                        sleep=lambda _s: None,
                        attachment_wait_s=0,
                        secrets=(CLEVER_TOKEN, TEST_TOKEN),
                    ),
                )
            results.append(result)
            if number == 0:
                deleted_candidates = [user for user in night.user_ids if model.user_status(user) == "active"]
    first, second = results
    assert [first.exit_code, second.exit_code] == [0, 0], [first.message, second.message]
    assert first.summary["reconcile"]["message"] == "no drift to fix"
    assert first.summary["reconcile"]["exit_code"] == 0
    facts = second.summary["reconcile"]
    assert facts["drift"]["missing"] >= 1
    assert facts["exit_code"] == 0
    assert facts["fix_import_state"] == "imported"
    assert facts["message"] == (
        f"{facts['fixable']} drifted rows sent as sis_import {facts['fix_sis_import_id']}, ended imported"
    )
    assert model.user_status(gone) == "active"
    # Night 1 posted its diffed import, then the fix: plain, stickiness overridden and cleared.
    assert canvas.posted_forms[-1] == FIX_FORM
    assert "diffing_data_set_identifier" in canvas.posted_forms[-2]
    run_json = orjson.loads((second.run_dir / "run.json").read_bytes())  # type: ignore[operator]
    assert run_json["reconcile"] == facts
    assert (second.run_dir / "reconcile" / "fix" / "sis_import.zip").is_file()  # type: ignore[operator]
    with History(tmp_path / "runs") as history:
        newest = history.runs(limit=1)[0]
    assert newest["message"].endswith(f"; reconcile: {facts['message']}")
    assert newest["sis_import_id"] == second.summary["sis_import_id"] != facts["fix_sis_import_id"]

    # By hand, against the runs directory: what Canvas holds after the last applied run, now without drift.
    report = report_zip(model, tmp_path / "report.zip")
    args = [
        "reconcile",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--profile",
        "nightly",
        "--report",
        str(report),
    ]
    result = run([*args, "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    assert summary["against"]["build_dir"] == str(second.run_dir / "build")  # type: ignore[operator]
    assert (summary["fixable"], summary["total"]["manual"]) == (0, 0)


def test_reconcile_is_due_when_on_and_never_done_or_done_long_enough_ago(tmp_path: Path) -> None:
    now = dt.datetime(2027, 1, 10, 6, 0, tzinfo=dt.UTC)
    assert not reconcile_due(tmp_path, "production", now, 0)
    assert reconcile_due(tmp_path, "production", now, 7)
    (tmp_path / "reconcile").mkdir()
    (tmp_path / "reconcile" / "production.json").write_text('{"reconciled_at": "2027-01-04T06:00:00Z"}')
    assert not reconcile_due(tmp_path, "production", now, 7)
    assert reconcile_due(tmp_path, "production", now + dt.timedelta(days=1), 7)
    assert reconcile_due(tmp_path, "test", now, 7)
    (tmp_path / "reconcile" / "production.json").write_text("not json")
    assert reconcile_due(tmp_path, "production", now, 7)
