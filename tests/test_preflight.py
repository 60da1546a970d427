"""Pre-flight checks and ``clever2sis doctor``: both tokens and the Canvas account, before any pull.

Against the local Clever and Canvas servers (which answer ``/v3.0/districts`` and
``/api/v1/accounts/:id`` as the real services do), and ``httpx.MockTransport`` for what they cannot
stage (a token that may not read rosters).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner, Result

from clever2sis.clever.client import CleverClient
from clever2sis.cli import main
from clever2sis.preflight import check_clever
from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas
from tests.clever_server import CleverTestServer
from tests.conftest import DISTRICT_ID, tiny_district
from tests.nightly_district import NightlyDistrict

CLEVER_TOKEN = "doctor-clever-token-0123456789abcdef"


def served() -> dict[str, list[bytes]]:
    return {name: [orjson.dumps(record) for record in records] for name, records in tiny_district().items()}


@pytest.fixture
def servers() -> Iterator[tuple[CleverTestServer, CanvasTestServer]]:
    with (
        CleverTestServer(served(), token=CLEVER_TOKEN) as clever,
        CanvasTestServer(FakeCanvas(script=[("imported", 100)])) as canvas,
    ):
        yield clever, canvas


def write_config(tmp_path: Path, base_url: str, account_id: str = "1") -> Path:
    config = tmp_path / "clever2sis.toml"
    config.write_text(
        f'[profiles.production]\nbase_url = "{base_url}"\naccount_id = "{account_id}"\n'
        'token_env = "CANVAS_PROD_TOKEN"\nrequire_approval = false\n'
        '[sync]\nruns_dir = "runs"\n',
        encoding="utf-8",
    )
    return config


def doctor(config: Path, clever_url: str, **env: str) -> Result:
    environ = {"CLEVER_TOKEN": CLEVER_TOKEN, "CANVAS_PROD_TOKEN": TEST_TOKEN, **env}
    args = ["doctor", "--profile", "production", "--config", str(config), "--api-base", clever_url]
    return CliRunner().invoke(main, args, env=environ)


def statuses(result: Result) -> list[tuple[str, str]]:
    """(status, check name) of every line doctor printed."""
    return [(line[:4].strip(), line[6:].split(":", 1)[0]) for line in result.stdout.splitlines()]


def test_doctor_passes_every_check_against_a_healthy_setup(
    tmp_path: Path, servers: tuple[CleverTestServer, CanvasTestServer]
) -> None:
    clever, canvas = servers
    result = doctor(write_config(tmp_path, canvas.base_url), clever.url)
    assert result.exit_code == 0, result.output
    assert statuses(result) == [
        ("ok", "settings"),
        ("ok", "canvas profile"),
        ("ok", "sync settings"),
        ("ok", "runs dir"),
        ("ok", "clever token"),
        ("ok", "canvas token"),
        ("ok", "clever district"),
        ("ok", "clever rosters"),
        ("ok", "canvas account"),
        ("ok", "canvas sis imports"),
    ]
    lines = result.stdout.splitlines()
    assert lines[6] == f"ok    clever district: Test District ({DISTRICT_ID}) at {clever.url} v3.0"
    assert lines[8] == f"ok    canvas account: account 1 (Test District) on {canvas.base_url}, a root account"
    assert lines[9] == "ok    canvas sis imports: enabled, and the token's user may import (no import yet)"
    assert clever.paths == ["/v3.0/districts", "/v3.0/sections?limit=1"]  # two small requests, no pull
    assert CLEVER_TOKEN not in result.output
    assert TEST_TOKEN not in result.output


@pytest.mark.parametrize(
    ("account_id", "canvas", "code", "line"),
    [
        (
            "2",
            FakeCanvas(),
            32,
            "FAIL  canvas account: account 2 (Lincoln Middle) is a sub-account of account 1; SIS imports run "
            "on the root account: set account_id = 1",
        ),
        (
            "3",
            FakeCanvas(),
            34,
            "FAIL  canvas sis imports: SIS imports are not enabled for this account on {base}; ask a Canvas "
            "admin to enable them",
        ),
        (
            "99",
            FakeCanvas(),
            39,
            "FAIL  canvas account: {base} has no account 99 (HTTP 404): set account_id to the root account's "
            'id (Admin → the account: the number in its URL), or "self"',
        ),
        (
            "1",
            FakeCanvas(import_permission=False),
            33,
            "FAIL  canvas sis imports: the token's user may not import SIS data on account 1 (HTTP 401); "
            "give its account role the permission to import SIS data (or use an admin's token)",
        ),
    ],
)
def test_doctor_names_what_is_wrong_with_the_canvas_account(
    tmp_path: Path, account_id: str, canvas: FakeCanvas, code: int, line: str
) -> None:
    with (
        CleverTestServer(served(), token=CLEVER_TOKEN) as clever,
        CanvasTestServer(canvas) as server,
    ):
        result = doctor(write_config(tmp_path, server.base_url, account_id), clever.url)
    assert result.exit_code == code, result.output
    assert line.format(base=server.base_url) in result.stdout.splitlines()
    assert statuses(result)[-1][0] in ("FAIL", "skip")


def test_doctor_reports_every_problem_at_once_and_exits_with_the_first(
    tmp_path: Path, servers: tuple[CleverTestServer, CanvasTestServer]
) -> None:
    clever, canvas = servers
    result = doctor(
        write_config(tmp_path, canvas.base_url),
        clever.url,
        CLEVER_TOKEN="not-the-district-token-0123456789abcdef",
        CANVAS_PROD_TOKEN="not-a-canvas-token-0123456789abcdef",
    )
    assert result.exit_code == 11  # the first failure: Clever refused its token
    assert statuses(result)[-4:] == [
        ("FAIL", "clever district"),
        ("skip", "clever rosters"),
        ("FAIL", "canvas account"),
        ("skip", "canvas sis imports"),
    ]
    lines = result.stdout.splitlines()
    assert lines[-4].startswith("FAIL  clever district: Clever refused the token (401")
    assert lines[-2] == (
        f"FAIL  canvas account: {canvas.base_url} refused the token in CANVAS_PROD_TOKEN for account 1 "
        "(HTTP 401): the token is wrong, expired or revoked, or its user is not an admin of this account; "
        "make a new token as an account admin"
    )
    assert "not-a-canvas-token" not in result.output


def test_doctor_without_tokens_or_a_profile(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["doctor", "--json"], env={"CLEVER_TOKEN": "", "CANVAS_BASE_URL": ""})
    assert result.exit_code == 30
    checks = orjson.loads(result.stdout)
    assert [(c["check"], c["status"], c["exit_code"]) for c in checks] == [
        ("settings", "ok", 0),
        ("canvas profile", "FAIL", 30),
        ("runs dir", "ok", 0),
        ("clever token", "FAIL", 2),
        ("clever district", "skip", 0),
        ("canvas account", "skip", 0),
    ]
    bad = tmp_path / "bad.toml"
    bad.write_text("[sync]\npause = [{ from = 2027-06-12 }]\n")
    broken = CliRunner().invoke(main, ["doctor", "--config", str(bad)])
    assert broken.exit_code == 2
    assert broken.stdout.splitlines() == [
        f"FAIL  settings: {bad}: sync.pause: no 'to' date; a window has from and to (dates, both included)",
        "skip  everything else: needs settings that can be read",
    ]


def test_a_token_that_cannot_read_rosters_fails_the_clever_check() -> None:
    district = {"data": [{"data": {"id": DISTRICT_ID, "name": "Test District", "state": "error"}}]}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v3.0/districts":
            return httpx.Response(200, json=district)
        return httpx.Response(401, json={"message": "Unauthorized"})

    with CleverClient(CLEVER_TOKEN, transport=httpx.MockTransport(answer)) as client:
        district_check, rosters = check_clever(client)
    assert district_check.line() == (
        f"ok    clever district: Test District ({DISTRICT_ID}) at https://api.clever.com v3.0; Clever's own "
        "sync with the district's SIS is 'error', so the data may be stale"
    )
    assert (rosters.status, rosters.exit_code) == ("FAIL", 11)
    assert rosters.detail.startswith(
        "the token cannot read sections (Clever refused the token (401: Unauthorized)"
    )


def test_a_sync_stops_before_the_pull_when_the_canvas_account_cannot_import(tmp_path: Path) -> None:
    night = NightlyDistrict(tmp_path / "d").night(0)
    canvas = FakeCanvas(script=[("imported", 100)])
    with (
        CleverTestServer(night.served(), token=CLEVER_TOKEN) as clever,
        CanvasTestServer(canvas) as server,
    ):
        config = write_config(tmp_path, server.base_url, account_id="3")
        env = {"CLEVER_TOKEN": CLEVER_TOKEN, "CLEVER_API_BASE": clever.url, "CANVAS_PROD_TOKEN": TEST_TOKEN}
        result = CliRunner().invoke(
            main, ["sync", "--profile", "production", "--config", str(config), "--quiet"], env=env
        )
    assert result.exit_code == 34, result.output
    summary = orjson.loads(result.stdout)
    assert summary["outcome"] == "preflight_failed"
    assert summary["message"] == (
        "pre-flight, nothing was pulled: canvas sis imports: SIS imports are not enabled for this account on "
        f"{server.base_url}; ask a Canvas admin to enable them"
    )
    assert clever.paths == ["/v3.0/districts", "/v3.0/sections?limit=1"]  # the pull never started
    assert canvas.posted_forms == []
    run_dir = Path(summary["run_dir"])
    assert not (run_dir / "snapshot").exists()
    log = (run_dir / "run.log").read_text()
    assert "ok    canvas account: account 3 (Sandbox District)" in log
    assert "FAIL  canvas sis imports: SIS imports are not enabled" in log
    checks = orjson.loads((run_dir / "run.json").read_bytes())["preflight"]
    assert [c["status"] for c in checks] == ["ok", "ok", "ok", "FAIL"]
