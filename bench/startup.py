"""Start-up of the commands that need no pandas: the wall time of the whole process, median of N runs.

Each command runs as the installed ``clever2sis`` script in its own process, as a user or a scheduler
starts it. ``status``, ``list`` and ``doctor`` talk to the local test servers (tests/canvas_server.py,
tests/clever_server.py) on 127.0.0.1, so their time is the start-up plus a few local round trips.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

STARTUP_TARGET_S = 0.15
DEFAULT_RUNS = 15
RUN_TIMEOUT_S = 60
CLEVER_TOKEN = "b3nch5t4rtb3nch5t4rtb3nch5t4rtb3nch5t4r"
FLOOR = "python -c pass"  # the interpreter alone, the floor every command starts from


def _binary() -> Path:
    return Path(sys.executable).parent / "clever2sis"


def _commands(canvas_url: str, clever_url: str, runs_dir: Path, config: Path) -> dict[str, list[str]]:
    return {
        "--help": ["--help"],
        "--version": ["--version"],
        "history": ["history", "--runs-dir", str(runs_dir)],
        "status": ["status", "101", "--config", str(config)],
        "list": ["list", "--limit", "5", "--config", str(config)],
        "doctor": ["doctor", "--config", str(config), "--api-base", clever_url],
    }


def measure_startup(runs: int = DEFAULT_RUNS) -> dict[str, Any]:
    """Each command's wall times over ``runs`` runs (interleaved), and the load average at the start."""
    from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas
    from tests.clever_server import CleverTestServer
    from tests.conftest import tiny_district

    canvas = FakeCanvas()
    canvas.seed(3)
    served = {name: [orjson.dumps(r) for r in records] for name, records in tiny_district().items()}
    with (
        tempfile.TemporaryDirectory(prefix="bench-startup-") as work,
        CanvasTestServer(canvas) as canvas_server,
        CleverTestServer(served, token=CLEVER_TOKEN) as clever_server,
    ):
        config = Path(work) / "clever2sis.toml"
        config.write_text(
            f'[profiles.test]\nbase_url = "{canvas_server.base_url}"\naccount_id = 1\n'
            f'token_env = "BENCH_CANVAS_TOKEN"\n[upload]\nprofile = "test"\n[sync]\nruns_dir = "runs"\n',
            encoding="utf-8",
        )
        env = {**os.environ, "CLEVER_TOKEN": CLEVER_TOKEN, "BENCH_CANVAS_TOKEN": TEST_TOKEN}
        env.pop("CLEVER2SIS_CONFIG", None)
        commands = _commands(canvas_server.base_url, clever_server.url, Path(work) / "runs", config)
        argv = {name: [str(_binary()), *args] for name, args in commands.items()}
        argv[FLOOR] = [sys.executable, "-c", "pass"]
        times: dict[str, list[float]] = {name: [] for name in argv}
        load = os.getloadavg()[0]
        for _ in range(runs):
            for name, args in argv.items():
                started = time.perf_counter()
                done = subprocess.run(args, env=env, capture_output=True, timeout=RUN_TIMEOUT_S, check=False)
                times[name].append(time.perf_counter() - started)
                if done.returncode != 0:
                    raise RuntimeError(
                        f"clever2sis {' '.join(args)} exited {done.returncode}: {done.stderr!r}"
                    )
    return {
        "runs": runs,
        "load": round(load, 2),
        "target_s": STARTUP_TARGET_S,
        "commands": {name: sorted(values) for name, values in times.items()},
    }


def render_startup(startup: dict[str, Any] | None, measured: str) -> list[str]:
    """The Markdown section of the start-up figures (nothing when they were never measured)."""
    if not startup:
        return []
    target = startup["target_s"]
    lines = [
        "## Start-up",
        "",
        f"Measured in the run of {measured} (UTC): {startup['runs']} runs of each command, interleaved; the "
        f"1-minute load average at the start: {startup['load']:.2f}. The whole process, as the installed "
        "`clever2sis` script; `status`, `list` and `doctor` talk to the local test servers. Target: "
        f"under {target:g} s (these commands never import pandas or Arrow).",
        "",
        "| command | median | fastest | slowest | verdict |",
        "|---|---|---|---|---|",
    ]
    for name, values in startup["commands"].items():
        median = statistics.median(values)
        verdict = "meets target" if median < target else "MISSES target"
        label = name if name == FLOOR else f"clever2sis {name}"
        if name == FLOOR:
            verdict = "(the floor: the interpreter alone)"
        lines.append(
            f"| `{label}` | {median:.3f} s | {min(values):.3f} s | {max(values):.3f} s | {verdict} |"
        )
    return [*lines, ""]
