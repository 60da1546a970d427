"""The commands that need no pandas start without it: importing the CLI, and running ``--help``,
``--version``, ``history``, ``status``, ``list`` and ``doctor``, load neither pandas nor Arrow; a command
loads only its own modules, and the table the group loads them from names every command (the start-up
figures themselves are in ``make bench``: docs/benchmarks.md)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
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
# What status and list reach Canvas without (the build directory, the run history, time zones), and what
# doctor reaches its services without (it reads the run history and the time zone). zipfile is not here:
# certifi's bundle is found through importlib.resources, which imports it.
BUILD_DIR = ("clever2sis.build_dir", "clever2sis.canvas.signoff", "clever2sis.atomic")
NOT_FOR_CANVAS = (*BUILD_DIR, "clever2sis.sync.history", "sqlite3", "zoneinfo")
CLEVER_TOKEN = "startup-clever-token-0123456789abcdef"
# Runs the command line given as arguments the way the clever2sis script does, then prints (on stderr,
# after the command's own output) every module the process had imported.
PROBE = """
import atexit, sys
atexit.register(lambda: print("MODULES", *sorted(sys.modules), file=sys.stderr))
from clever2sis.cli import main
sys.argv = ["clever2sis", *sys.argv[1:]]
main()
"""


def modules(*args: str, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """The exit code of ``clever2sis ARGS`` and the modules it had imported by its end."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("MODULES "), done.stderr
    return done.returncode, set(last.split()[1:])


def loaded(
    *args: str, env: dict[str, str] | None = None, among: tuple[str, ...] = HEAVY
) -> tuple[int, list[str]]:
    """The exit code of ``clever2sis ARGS`` and which of ``among`` it imported."""
    code, names = modules(*args, env=env)
    return code, sorted(name for name in among if name in names)


def command_modules(*args: str) -> tuple[int, list[str]]:
    code, names = modules(*args)
    return code, sorted(name for name in names if name.startswith("clever2sis.cli"))


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = f"import sys, clever2sis.cli; print(sorted(m for m in {(*HEAVY, 'httpx')!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout == "[]\n"


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["sync", "--help"], ["doctor", "--help"]])
def test_help_and_version_load_no_heavy_library(args: list[str]) -> None:
    assert loaded(*args) == (0, [])


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str], str]]:
    """A Canvas and a Clever on 127.0.0.1: the config naming the first, the environment, the second's URL."""
    canvas = FakeCanvas()
    canvas.seed(2)
    served = {name: [orjson.dumps(r) for r in records] for name, records in tiny_district().items()}
    with CanvasTestServer(canvas) as server, CleverTestServer(served, token=CLEVER_TOKEN) as clever:
        config = tmp_path_factory.mktemp("startup") / "clever2sis.toml"
        config.write_text(
            f'[profiles.test]\nbase_url = "{server.base_url}"\naccount_id = 1\ntoken_env = "T"\n'
            '[upload]\nprofile = "test"\n[sync]\nruns_dir = "runs"\n'
        )
        yield config, {"PATH": "/usr/bin:/bin", "T": TEST_TOKEN, "CLEVER_TOKEN": CLEVER_TOKEN}, clever.url


def test_history_status_list_and_doctor_load_no_heavy_library(
    servers: tuple[Path, dict[str, str], str],
) -> None:
    config, env, clever_url = servers
    for args in (
        ["history", "--config", str(config)],
        ["status", "101", "--config", str(config)],
        ["list", "--config", str(config)],
        ["doctor", "--config", str(config), "--api-base", clever_url],
    ):
        assert loaded(*args, env=env) == (0, []), args


def test_status_and_list_reach_canvas_without_builds_or_the_run_history(
    servers: tuple[Path, dict[str, str], str],
) -> None:
    config, env, clever_url = servers
    for args in (["status", "101", "--config", str(config)], ["list", "--config", str(config)]):
        assert loaded(*args, env=env, among=NOT_FOR_CANVAS) == (0, []), args
    doctor = ["doctor", "--config", str(config), "--api-base", clever_url]
    assert loaded(*doctor, env=env, among=BUILD_DIR) == (0, [])


@pytest.mark.parametrize(
    ("args", "own"),
    [
        (["--version"], []),
        (["status", "--help"], ["canvas", "common"]),
        (["history", "--help"], ["common", "sync"]),
        (["doctor", "--help"], ["common", "doctor", "sync"]),
        (["init", "--help"], ["common", "init"]),
    ],
)
def test_a_command_loads_only_its_own_modules(args: list[str], own: list[str]) -> None:
    assert command_modules(*args) == (0, ["clever2sis.cli", *(f"clever2sis.cli.{m}" for m in own)])


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
