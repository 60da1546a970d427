"""The commands that need no pandas start without it: importing the CLI, and running ``--help``,
``--version``, ``history``, ``status``, ``list`` and ``doctor``, load neither pandas nor Arrow (the start-up
figures themselves are in ``make bench``: docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

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
