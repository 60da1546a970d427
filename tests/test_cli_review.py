"""``clever2sis review`` end to end: report, --json, --excel, the default baseline, exit codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from clever2sis.canvas.signoff import approve
from clever2sis.cli import main
from clever2sis.cli.review import REVIEW_COMMANDS
from tests.review_district import Changes


@pytest.fixture
def builds(review_pair: tuple[Path, Path, Changes], tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "builds"
    return (
        shutil.copytree(review_pair[0], root / "2026-09-01"),
        shutil.copytree(review_pair[1], root / "2026-09-02"),
    )


def test_review_against_an_older_build(builds: tuple[Path, Path]) -> None:
    old, new = builds
    result = CliRunner().invoke(main, ["review", str(new), "--against", str(old), "--json", "--excel"])
    assert result.exit_code == 0, result.output
    facts = orjson.loads(result.stdout)
    assert facts["against"]["chosen_by"] == "--against"
    assert facts["highlights"]["school_changes"] == 1
    assert (new / "report.html").is_file()
    assert (new / "review" / "changes.csv").is_file()
    assert "users.csv: +1 -1 ~2 (last_name 1, schools 1)" in result.stderr
    assert "enrollments.csv: 15 removed: left as it is in Canvas" in result.stderr
    assert facts["verdict"]["ready"] is False
    assert facts["signoff"]["profile"] == "production"
    verdict = result.stderr[result.stderr.index("Not ready to sign off") :].splitlines()
    assert verdict[:3] == [
        "Not ready to sign off: 8 things need a decision.",
        "  - 1 value held control characters: removed",
        "  - 1 login is taken by 2 students",
    ]
    assert len(verdict) == 9


def test_approve_after_review_says_the_report_predates_the_sign_off(builds: tuple[Path, Path]) -> None:
    old, new = builds
    assert CliRunner().invoke(main, ["review", str(new), "--against", str(old), "-q"]).exit_code == 0
    result = CliRunner().invoke(main, ["approve", str(new), "--profile", "production", "--by", "Dana"])
    assert result.exit_code == 0, result.output
    assert (
        f"{new / 'report.html'} was written before this sign-off: run the same "
        f"`clever2sis review {new} ...` again to show the sign-off in it"
    ) in result.stderr
    again = CliRunner().invoke(main, ["review", str(new), "--against", str(old), "--json"])
    facts = orjson.loads(again.stdout)
    assert facts["signoff"]["approved"]["approved_by"] == "Dana"
    assert (
        f"signed off for production by Dana at {facts['signoff']['approved']['approved_at']}" in again.stderr
    )
    assert "Signed off for production by Dana" in (new / "report.html").read_text(encoding="utf-8")


def test_review_uses_the_approved_build_and_the_configured_settings(
    builds: tuple[Path, Path], tmp_path: Path
) -> None:
    old, new = builds
    alone = CliRunner().invoke(main, ["review", str(new), "--json", "-q"])
    assert alone.exit_code == 0, alone.output
    assert orjson.loads(alone.stdout)["against"] is None
    approve(old, "production", "Dana")
    config = tmp_path / "clever2sis.toml"
    config.write_text(
        '[upload]\ndiffing_data_set_identifier = "clever:demo"\ndiffing_drop_status = "inactive"\n'
    )
    result = CliRunner().invoke(main, ["review", str(new), "--json", "-q", "--config", str(config)])
    assert result.exit_code == 0, result.output
    facts = orjson.loads(result.stdout)
    assert facts["against"]["path"] == str(old.resolve())
    assert facts["against"]["chosen_by"].startswith("last sign-off for production: approved by Dana")
    assert facts["removals"]["mode"] == "diffing"
    assert facts["removals"]["files"]["enrollments.csv"]["status"] == "inactive"


def test_review_of_a_missing_build(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["review", str(tmp_path / "nope")])
    assert result.exit_code == 40
    assert (
        result.stderr
        == f"error: {tmp_path / 'nope'}: no such build directory; run `clever2sis build` first\n"
    )


@pytest.mark.parametrize("command", [c.name for c in REVIEW_COMMANDS])
def test_every_review_command_has_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output
