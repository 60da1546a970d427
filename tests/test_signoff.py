"""Test → production sign-off: approve records the exact zip; the upload gate refuses anything else."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from clever2sis.build_dir import BuildDir
from clever2sis.canvas.signoff import approve, check_before_post
from clever2sis.cli import main
from clever2sis.config import needs_approval
from clever2sis.errors import ApprovalError, ApprovalMismatchError, ApprovalRequiredError, BuildDirError
from clever2sis.review.baseline import find_baseline
from tests.conftest import canvas_cassette, make_build_dir
from tests.test_cli_canvas import run

NOON = dt.datetime(2026, 9, 2, 12, 0, tzinfo=dt.UTC)


def fixed_clock() -> dt.datetime:
    return NOON


def test_approve_records_the_zip_who_when_and_the_test_import(build_dir: Path) -> None:
    results = build_dir / "imports" / "test" / "101"
    results.mkdir(parents=True)
    (build_dir / "imports" / "test" / "latest.json").write_bytes(
        orjson.dumps(
            {
                "sis_import_id": 101,
                "canvas": "https://t.example",
                "posted_at": "2026-09-01T07:00:00Z",
                "results": "imports/test/101",
            }
        )
    )
    (results / "sis_import.json").write_bytes(
        orjson.dumps({"id": 101, "workflow_state": "imported", "data": {"counts": {"users": 1}}})
    )
    record = approve(build_dir, "production", " Dana Admin ", clock=fixed_clock)
    saved = orjson.loads((build_dir / "approvals" / "production.json").read_bytes())
    assert saved == record
    assert record["zip_sha256"] == hashlib.sha256((build_dir / "sis_import.zip").read_bytes()).hexdigest()
    assert record["approved_by"] == "Dana Admin"
    assert record["approved_at"] == "2026-09-02T12:00:00Z"
    assert record["test_import"]["sis_import_id"] == 101
    assert record["test_import"]["workflow_state"] == "imported"
    assert record["test_import"]["counts"] == {"users": 1}


def test_approve_needs_a_name_and_a_whole_build(build_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ApprovalError, match="--by must name"):
        approve(build_dir, "production", "  ")
    with pytest.raises(ApprovalError, match="no such build directory"):
        approve(tmp_path / "nope", "production", "Dana")


def test_only_production_needs_a_sign_off_unless_configured() -> None:
    assert needs_approval("production", None)
    assert not needs_approval("test", None)
    assert needs_approval("prod-eu", True)
    assert not needs_approval("production", False)


def test_the_gate_refuses_a_missing_or_stale_sign_off_and_passes_an_exact_one(build_dir: Path) -> None:
    build = BuildDir(build_dir).verified_zip(error=BuildDirError)
    assert check_before_post("test", build) is None
    with pytest.raises(ApprovalRequiredError, match=r"clever2sis approve .* --profile production --by NAME"):
        check_before_post("production", build)
    approve(build_dir, "production", "Dana", clock=fixed_clock)
    passed = check_before_post("production", build)
    assert passed is not None
    assert passed["approval"]["approved_by"] == "Dana"


def test_the_gate_refuses_a_zip_changed_since_its_sign_off(tmp_path: Path) -> None:
    build_dir = make_build_dir(tmp_path / "build")
    approve(build_dir, "production", "Dana", clock=fixed_clock)
    # Rebuilt in place with other rows: zip and build.json agree, but they are not the bytes approved.
    make_build_dir(build_dir, users_csv=b"user_id,login_id,first_name,last_name,status\nU2,u2,Bo,Li,active\n")
    build = BuildDir(build_dir).verified_zip(error=BuildDirError)
    with pytest.raises(ApprovalMismatchError, match="changed since Dana signed it off") as caught:
        check_before_post("production", build)
    assert caught.value.exit_code == 43


def test_force_overrides_loudly_and_says_why(build_dir: Path) -> None:
    warnings: list[str] = []
    passed = check_before_post(
        "production",
        BuildDir(build_dir).verified_zip(error=BuildDirError),
        force=True,
        warn=warnings.append,
        clock=fixed_clock,
    )
    assert passed is not None
    assert passed["override"]["forced"] is True
    assert "no sign-off" in passed["override"]["reason"]
    assert warnings[0].startswith("WARNING: --force: uploading to 'production' WITHOUT a valid sign-off")


def test_upload_to_production_without_sign_off_is_refused(build_dir: Path) -> None:
    with canvas_cassette("upload_production_refused") as cassette:
        result = run(["upload", str(build_dir), "--profile", "production"], cassette.base_url)
    assert result.exit_code == 42, result.output
    assert "has no sign-off for profile 'production'" in result.stderr
    assert not (build_dir / "imports").exists()


def test_upload_to_production_with_sign_off_records_it(build_dir: Path) -> None:
    approve(build_dir, "production", "Dana", clock=fixed_clock)
    with canvas_cassette("upload_production_approved") as cassette:
        result = run(["upload", str(build_dir), "--profile", "production"], cassette.base_url)
    assert result.exit_code == 0, result.output
    created = orjson.loads((build_dir / "imports/production/101/created.json").read_bytes())
    assert created["signoff"]["approval"]["approved_by"] == "Dana"


def test_upload_force_is_loud_and_recorded(build_dir: Path) -> None:
    with canvas_cassette("upload_production_forced") as cassette:
        result = run(["upload", str(build_dir), "--profile", "production", "--force"], cassette.base_url)
    assert result.exit_code == 0, result.output
    assert "WARNING: --force" in result.stderr
    created = orjson.loads((build_dir / "imports/production/101/created.json").read_bytes())
    assert created["signoff"]["override"]["forced"] is True


def test_dry_run_applies_the_gate(build_dir: Path) -> None:
    result = run(["upload", str(build_dir), "--profile", "production", "--dry-run"])
    assert result.exit_code == 42
    approve(build_dir, "production", "Dana", clock=fixed_clock)
    result = run(["upload", str(build_dir), "--profile", "production", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "signed off for production by Dana at 2026-09-02T12:00:00Z" in result.stdout


def test_require_approval_from_the_config(build_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "clever2sis.toml"
    config.write_text(
        '[profiles.test]\nbase_url = "https://t.example"\naccount_id = 1\nrequire_approval = true\n'
        '[profiles.production]\nbase_url = "https://p.example"\naccount_id = 1\nrequire_approval = false\n'
    )
    assert (
        run(["upload", str(build_dir), "--config", str(config), "--profile", "test", "--dry-run"]).exit_code
        == 42
    )
    ok = run(["upload", str(build_dir), "--config", str(config), "--profile", "production", "--dry-run"])
    assert ok.exit_code == 0, ok.output


def test_approve_command(build_dir: Path) -> None:
    result = CliRunner().invoke(main, ["approve", str(build_dir), "--profile", "production", "--by", "Dana"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"approved {build_dir / 'sis_import.zip'} (sha256 ")
    assert "never imported with profile 'test'" in result.stderr
    assert (build_dir / "approvals" / "production.json").is_file()
    missing = CliRunner().invoke(main, ["approve", str(build_dir), "--profile", "production"])
    assert missing.exit_code == 2


def test_the_baseline_is_the_last_build_uploaded_or_approved(tmp_path: Path) -> None:
    builds = tmp_path / "builds"
    first, second, third = (make_build_dir(builds / name) for name in ("d1", "d2", "d3"))
    assert find_baseline(third, "production") is None
    (first / "imports" / "production").mkdir(parents=True)
    (first / "imports" / "production" / "latest.json").write_bytes(
        orjson.dumps(
            {"sis_import_id": 7, "posted_at": "2026-09-01T07:00:00Z", "results": "imports/production/7"}
        )
    )
    found = find_baseline(third, "production")
    assert found is not None
    assert found.path == first.resolve()
    assert found.reason == "last upload to production: sis_import 7 posted 2026-09-01T07:00:00Z"
    approve(second, "production", "Dana", clock=fixed_clock)
    found = find_baseline(third, "production")
    assert found is not None
    assert found.path == second.resolve()
    assert "approved by Dana" in found.reason
    assert find_baseline(third, "test") is None
    shutil.rmtree(second / "approvals")
    (first / "imports" / "production" / "7").mkdir()
    (first / "imports" / "production" / "7" / "sis_import.json").write_bytes(b'{"workflow_state": "failed"}')
    assert find_baseline(third, "production") is None
