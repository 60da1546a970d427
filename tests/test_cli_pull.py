"""``clever2sis pull`` through click's CliRunner: the token from the environment only, exit codes, --json."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from clever2sis.atomic import recover_directory
from clever2sis.clever.snapshot import Snapshot
from clever2sis.cli import main
from tests.clever_server import CleverTestServer, Stall, district_from_snapshot
from tests.synthetic import write_district

TOKEN = "00112233445566778899aabbccddeeff00112233"
ROOT = Path(__file__).resolve().parents[1]
KILL_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    return district_from_snapshot(write_district(tmp_path_factory.mktemp("source") / "district", 60, seed=5))


def test_help_names_the_token_variable() -> None:
    result = CliRunner().invoke(main, ["pull", "--help"])
    assert result.exit_code == 0
    assert "CLEVER_TOKEN" in result.output
    assert "--page-size" in result.output


def test_a_missing_token_is_a_one_line_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["pull", "--out", str(tmp_path / "snap")], env={"CLEVER_TOKEN": ""})
    assert result.exit_code == 2
    assert result.stderr == (
        "error: no Clever token: set CLEVER_TOKEN to the district-app token "
        "(or CLEVER_TOKEN_FILE to a file holding it)\n"
    )
    assert not (tmp_path / "snap").exists()


def test_pull_json_prints_the_manifest_and_keeps_the_token_out_of_every_output(
    district: dict[str, list[bytes]], tmp_path: Path
) -> None:
    with CleverTestServer(district, token=TOKEN) as server:
        result = CliRunner().invoke(
            main,
            ["pull", "--out", str(tmp_path / "snap"), "--json", "--page-size", "25"],
            env={"CLEVER_TOKEN": TOKEN, "CLEVER_API_BASE": server.url},
        )
    assert result.exit_code == 0, result.stderr
    manifest = orjson.loads(result.stdout)
    assert manifest["collections"]["users"]["records"] == len(district["users"])
    assert "users: page 2," in result.stderr
    assert "snapshot complete" in result.stderr
    for text in (result.stdout, result.stderr):
        assert TOKEN not in text
    for path in (tmp_path / "snap").iterdir():  # the .arrow files are binary: compared as bytes
        assert TOKEN.encode() not in path.read_bytes(), path.name


def test_the_token_can_come_from_a_file(district: dict[str, list[bytes]], tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with CleverTestServer(district, token=TOKEN) as server:
        result = CliRunner().invoke(
            main,
            ["pull", "--out", str(tmp_path / "snap"), "--api-base", server.url, "--quiet"],
            env={"CLEVER_TOKEN": "", "CLEVER_TOKEN_FILE": str(token_file)},
        )
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert (tmp_path / "snap" / "manifest.json").is_file()


def test_a_refused_token_exits_11_and_says_what_to_check(
    district: dict[str, list[bytes]], tmp_path: Path
) -> None:
    wrong = "ffffffffffffffffffffffffffffffffffffffff"
    with CleverTestServer(district, token=TOKEN) as server:
        result = CliRunner().invoke(
            main,
            ["pull", "--out", str(tmp_path / "snap"), "--api-base", server.url, "--workers", "1"],
            env={"CLEVER_TOKEN": wrong},
        )
    assert result.exit_code == 11
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: pulling users failed: Clever refused the token (401: Unauthorized)")
    assert "CLEVER_TOKEN" in last
    assert wrong not in result.stderr
    assert not (tmp_path / "snap").exists()


def test_an_api_base_with_a_version_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["pull", "--out", str(tmp_path / "snap"), "--api-base", "https://api.clever.com/v3.0"],
        env={"CLEVER_TOKEN": TOKEN},
    )
    assert result.exit_code == 2
    assert "--api-version" in result.stderr


def test_a_pull_killed_mid_collection_leaves_a_partial_that_the_next_pull_removes(
    district: dict[str, list[bytes]], tmp_path: Path
) -> None:
    stall = Stall("users")
    out = tmp_path / "snap"
    with CleverTestServer(district, token=TOKEN, stall=stall) as server:
        env = {**os.environ, "CLEVER_TOKEN": TOKEN, "CLEVER_API_BASE": server.url}
        args = [sys.executable, "-m", "clever2sis", "pull", "--out", str(out), "--page-size", "20", "-q"]
        child = subprocess.Popen(args, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
        try:
            assert stall.reached.wait(KILL_TIMEOUT_S), "the pull never asked for a second page of users"
            [partial] = [p for p in tmp_path.iterdir() if p.name.startswith(".snap.partial-")]
            assert (partial / "users.jsonl").exists()
            recover_directory(out.resolve())  # the pull is alive: its partial stays
            assert partial.is_dir()
            child.send_signal(signal.SIGKILL)
            assert child.wait(KILL_TIMEOUT_S) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
            stall.release.set()
        assert not out.exists()
        assert partial.is_dir()
        result = CliRunner().invoke(main, ["pull", "--out", str(out), "--page-size", "20", "-q"], env=env)
    assert result.exit_code == 0, result.stderr
    assert Snapshot.open(out).manifest["collections"]["users"]["records"] == len(district["users"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]
