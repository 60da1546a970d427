"""Saving results, the summary, and our payload handling checked against real Canvas payloads."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from clever2sis.build_dir import BuildDir
from clever2sis.canvas.client import CanvasClient, RetryPolicy
from clever2sis.canvas.results import ImportResults, save_results, summary_lines
from clever2sis.canvas.sis_import import TERMINAL_STATES, ImportOptions, SisImport, SisImports, WaitPolicy
from clever2sis.canvas.upload import follow_import, post_build
from clever2sis.errors import BuildDirError, CanvasUnavailableError
from tests.canvas_server import FakeCanvas, FakeImport
from tests.conftest import REFERENCE, make_build_dir
from tests.test_sis_import import FakeTime

FIXTURES = REFERENCE / "canvas-fixtures"
TRANSCRIBED = FIXTURES / "canvas-lms_spec_sis_imports_api_expected_json_TRANSCRIBED.json"
CANVASAPI = FIXTURES / "canvasapi_tests_fixtures_sis_import.json"
ERRORS_CSV = FIXTURES / "CONSTRUCTED_sis_errors_attachment_example.csv"


def _fixture(path: Path) -> Any:
    if not path.exists():
        pytest.skip(
            f"reference payload {path} is not on this machine (the reference recordings beside the repository: see tests/conftest.py)"
        )
    return json.loads(path.read_text())


def _with_id(body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["id"] = 7
    return body


def test_real_created_and_imported_payloads_parse() -> None:
    spec = _fixture(TRANSCRIBED)
    created = SisImport.from_json(_with_id(spec["post_response_created"]))
    assert (created.workflow_state, created.is_finished, created.progress) == ("created", False, 0)
    imported = SisImport.from_json(_with_id(spec["get_show_after_import_imported"]))
    assert imported.is_finished
    assert imported.counts["users"] == 1
    assert imported.errors_attachment_url is None
    lines = summary_lines(ImportResults(imported, Path("out")))
    assert lines[:3] == [
        "SIS import 7: imported (progress 100%)",
        "rows imported: users 1",
        "warnings: 0, failures: 0",
    ]


def test_canvasapi_payloads_parse() -> None:
    fixtures = _fixture(CANVASAPI)
    assert SisImport.from_json(fixtures["get_by_id"]["data"]).workflow_state == "importing"
    assert SisImport.from_json(fixtures["abort_sis_import"]["data"]).workflow_state in TERMINAL_STATES
    progress = fixtures["restore_sis_import_states"]["data"]
    assert {"id", "workflow_state", "completion", "url"} <= set(progress)


def test_test_server_speaks_the_real_shape() -> None:
    spec = _fixture(TRANSCRIBED)
    fake = FakeCanvas()
    created = fake.sis_import_json(FakeImport(1, {}, [], 0), "http://127.0.0.1:1")
    assert set(spec["post_response_created"]) <= set(created)
    done = FakeImport(1, {}, [], 0, state="imported", progress=100)
    assert set(spec["get_show_after_import_imported"]) <= set(
        fake.sis_import_json(done, "http://127.0.0.1:1")
    )


def test_errors_csv_header_matches_canvas() -> None:
    if not ERRORS_CSV.exists():
        pytest.skip(f"reference payload {ERRORS_CSV} is not on this machine")
    assert ERRORS_CSV.read_text().splitlines()[0] == "sis_import_id,file,message,row"


def test_summary_lists_first_messages_and_counts() -> None:
    warnings = [["users.csv", f"warning {n}"] for n in range(7)]
    sis_import = SisImport(
        {
            "id": 9,
            "workflow_state": "failed_with_messages",
            "progress": 60,
            "data": {"counts": {"users": 2, "courses": 0, "error_count": 1, "warning_count": 30}},
            "processing_warnings": warnings,
            "processing_errors": [[None, "Error while importing CSV. Please contact support."]],
        }
    )
    lines = summary_lines(ImportResults(sis_import, Path("out"), notes=["later"]))
    assert lines[:4] == [
        "SIS import 9: failed_with_messages (progress 60%)",
        "rows imported: users 2",
        "warnings: 30, failures: 1",
        "  failure: Error while importing CSV. Please contact support.",
    ]
    assert "  warning: users.csv: warning 4" in lines
    assert "  warning: users.csv: warning 5" not in lines
    assert "  … 2 more warnings in the saved files" in lines
    assert lines[-1] == "later"


def test_the_id_survives_a_connection_lost_after_the_post(tmp_path: Path) -> None:

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(("/importing", "/sis_imports")) and request.method == "GET":
            return httpx.Response(200, json={"sis_imports": []})
        if request.method == "POST":
            return httpx.Response(200, json={"id": 55, "workflow_state": "created", "progress": 0})
        raise httpx.ConnectError("cable pulled")

    time = FakeTime()
    client = CanvasClient(
        "https://c.test",
        "tok",
        transport=httpx.MockTransport(handler),
        sleep=time.sleep,
        retry=RetryPolicy(2),
    )
    api = SisImports(client, "1")
    build = BuildDir(make_build_dir(tmp_path / "b")).verified_zip(error=BuildDirError)
    posted = post_build(api, build, ImportOptions(), profile="test")
    with pytest.raises(CanvasUnavailableError, match="SIS import 55"):
        follow_import(api, posted, policy=WaitPolicy(max_poll_failures=2), clock=time.clock, sleep=time.sleep)
    created = json.loads((tmp_path / "b/imports/test/55/created.json").read_text())
    assert created["sis_import_id"] == 55
    assert created["zip_sha256"] == build.sha256
    assert json.loads((tmp_path / "b/imports/test/latest.json").read_text())["results"] == "imports/test/55"


def test_errors_file_that_never_comes_is_noted(tmp_path: Path) -> None:

    body = {"id": 5, "workflow_state": "imported_with_messages", "processing_warnings": [["u.csv", "w"]]}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/sis_import_errors"):
            return httpx.Response(200, json={"sis_import_errors": []})
        return httpx.Response(200, json=body)

    time = FakeTime()
    api = SisImports(CanvasClient("https://c.test", "tok", transport=httpx.MockTransport(handler)), "1")
    results = save_results(
        api, SisImport(body), tmp_path, clock=time.clock, sleep=time.sleep, attachment_wait_s=20
    )
    assert results.errors_attachment is None
    assert "had not written the errors file after 20s" in results.notes[0]
    assert time.now == pytest.approx(20)
    assert (tmp_path / "sis_import.json").exists()
    assert (tmp_path / "sis_import_errors/page-0001.json").exists()
