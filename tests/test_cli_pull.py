"""``clever2sis pull`` through click's CliRunner: the token from the environment only, exit codes, --json."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from clever2sis.cli import main
from tests.clever_server import CleverTestServer, district_from_snapshot
from tests.synthetic import write_district

TOKEN = "00112233445566778899aabbccddeeff00112233"


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
