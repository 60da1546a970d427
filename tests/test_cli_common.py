"""``run_command``: every command's documented exit code, with and without ``--verbose``.

``--verbose`` adds the traceback on stderr and changes nothing else: the one-line error and the exit code a
script acts on stay the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from clever2sis.cli import main
from clever2sis.cli.common import CanvasRuntime
from tests.canvas_server import ROOT_ACCOUNT, TEST_TOKEN

TRACEBACK = "Traceback (most recent call last):"


def _cases(tmp_path: Path) -> dict[str, tuple[list[str], dict[str, str], int, str]]:
    """command group -> (arguments, environment, exit code, the error line's start)."""
    missing = tmp_path / "missing"
    config = tmp_path / "clever2sis.toml"
    config.write_text('[profiles.nightly]\nbase_url = "https://canvas.invalid"\naccount_id = 1\n')
    return {
        "pull": (
            ["pull", "--out", str(tmp_path / "s")],
            {"CLEVER_TOKEN": ""},
            2,
            "error: no Clever token: set CLEVER_TOKEN",
        ),
        "build": (
            ["build", str(missing), "--out", str(tmp_path / "b")],
            {},
            3,
            f"error: {missing}: no such snapshot directory",
        ),
        "upload": (["upload", str(missing)], {}, 36, f"error: {missing}: no such build directory"),
        "review": (["review", str(missing)], {}, 40, f"error: {missing}: no such build directory"),
        "approve": (
            ["approve", str(missing), "--profile", "production", "--by", " "],
            {},
            41,
            "error: --by must name the person signing off",
        ),
        "sync": (
            ["sync", "--profile", "nightly", "--config", str(config)],
            {"CLEVER_TOKEN": "c" * 40, "CANVAS_TOKEN": ""},
            30,
            "error: set CANVAS_TOKEN to a Canvas access token",
        ),
        "sample": (["sample", "--students", "0", "--out", str(tmp_path / "s")], {}, 2, "error: --students"),
    }


GROUPS = ["pull", "build", "upload", "review", "approve", "sync", "sample"]


def _invoke(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    environ = {"CANVAS_TOKEN": TEST_TOKEN, "CANVAS_ACCOUNT_ID": ROOT_ACCOUNT, **env}
    runtime = CanvasRuntime(environ=environ)
    result = CliRunner().invoke(main, args, env=env, obj=runtime, catch_exceptions=False)
    return result.exit_code, result.stderr


@pytest.mark.parametrize("group", GROUPS)
def test_verbose_keeps_the_documented_exit_code_and_adds_the_traceback(tmp_path: Path, group: str) -> None:
    args, env, code, error = _cases(tmp_path)[group]
    quiet_code, quiet_err = _invoke(args, env)
    assert quiet_code == code, quiet_err
    assert TRACEBACK not in quiet_err
    errors = [line for line in quiet_err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, quiet_err
    assert errors[0].startswith(error), quiet_err

    verbose_code, verbose_err = _invoke([*args, "--verbose"], env)
    assert verbose_code == code, verbose_err
    assert TRACEBACK in verbose_err
    assert verbose_err.rstrip("\n").splitlines()[-1] == errors[0]
