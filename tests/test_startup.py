"""The commands that need no pandas start without it: importing the CLI, and running ``--help``,
``--version``, ``history``, ``status``, ``list`` and ``doctor``, load neither pandas nor Arrow; a command
loads only its own modules, and the table the group loads them from names every command (the start-up
figures themselves are in ``make bench``: docs/benchmarks.md)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import orjson
import pytest
from click.testing import CliRunner

import clever2sis.cli
from clever2sis.cli import COMMAND_TABLE, commands, main
from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas
from tests.clever_server import CleverTestServer
from tests.conftest import tiny_district

HEAVY = ("pandas", "pyarrow", "numpy", "jinja2")
CLEVER_TOKEN = "startup-clever-token-0123456789abcdef"
# Runs the command line given as arguments the way the clever2sis script does, then prints (on stderr,
# after the command's own output) which heavy modules the process had imported.
PROBE = f"""
import atexit, sys
atexit.register(lambda: print("LOADED", sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr))
from clever2sis.cli import main
sys.argv = ["clever2sis", *sys.argv[1:]]
main()
"""


def loaded(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("LOADED "), done.stderr
    return done.returncode, orjson.loads(last.removeprefix("LOADED ").replace("'", '"'))


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = f"import sys, clever2sis.cli; print(sorted(m for m in {(*HEAVY, 'httpx')!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout == "[]\n"


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["sync", "--help"], ["doctor", "--help"]])
def test_help_and_version_load_no_heavy_library(args: list[str]) -> None:
    assert loaded(*args) == (0, [])


def test_history_status_list_and_doctor_load_no_heavy_library(tmp_path: Path) -> None:
    canvas = FakeCanvas()
    canvas.seed(2)
    served = {name: [orjson.dumps(r) for r in records] for name, records in tiny_district().items()}
    with CanvasTestServer(canvas) as server, CleverTestServer(served, token=CLEVER_TOKEN) as clever:
        config = tmp_path / "clever2sis.toml"
        config.write_text(
            f'[profiles.test]\nbase_url = "{server.base_url}"\naccount_id = 1\ntoken_env = "T"\n'
            '[upload]\nprofile = "test"\n[sync]\nruns_dir = "runs"\n'
        )
        env = {"PATH": "/usr/bin:/bin", "T": TEST_TOKEN, "CLEVER_TOKEN": CLEVER_TOKEN}
        for args in (
            ["history", "--config", str(config)],
            ["status", "101", "--config", str(config)],
            ["list", "--config", str(config)],
            ["doctor", "--config", str(config), "--api-base", clever.url],
        ):
            assert loaded(*args, env=env) == (0, []), args


# Runs the command line given as arguments, then prints (on stderr) which command modules were imported.
CLI_PROBE = """
import atexit, sys
atexit.register(lambda: print("CLI", sorted(m for m in sys.modules if m.startswith("clever2sis.cli")), file=sys.stderr))
from clever2sis.cli import main
sys.argv = ["clever2sis", *sys.argv[1:]]
main()
"""


def command_modules(*args: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", CLI_PROBE, *args], capture_output=True, text=True, timeout=120, check=False
    )
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("CLI "), done.stderr
    return done.returncode, orjson.loads(last.removeprefix("CLI ").replace("'", '"'))


@pytest.mark.parametrize(
    ("args", "modules"),
    [
        (["--version"], []),
        (["status", "--help"], ["canvas", "common"]),
        (["history", "--help"], ["common", "sync"]),
        (["doctor", "--help"], ["common", "doctor", "sync"]),
        (["init", "--help"], ["common", "init"]),
    ],
)
def test_a_command_loads_only_its_own_modules(args: list[str], modules: list[str]) -> None:
    assert command_modules(*args) == (0, ["clever2sis.cli", *(f"clever2sis.cli.{m}" for m in modules)])


def test_the_root_help_loads_every_command_and_lists_them_in_order() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.split("Commands:\n", 1)[1].splitlines()]
    assert listed == sorted(COMMAND_TABLE)
    assert [command.name for command in commands()] == list(COMMAND_TABLE)


def test_the_table_names_every_command_the_modules_define() -> None:
    defined = {}
    for module in pkgutil.iter_modules(clever2sis.cli.__path__, "clever2sis.cli."):
        namespace = vars(importlib.import_module(module.name))
        for attribute, value in namespace.items():
            if (
                isinstance(value, click.Command)
                and value.callback
                and value.callback.__module__ == module.name
            ):
                defined[value.name] = f"{module.name}:{attribute}"
    assert defined == COMMAND_TABLE


def test_a_mistyped_command_is_offered_the_closest_one() -> None:
    result = CliRunner().invoke(main, ["stauts"])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == "Error: No such command 'stauts'. Did you mean 'status'?"
