"""Start-up of the commands that need no pandas: median of N runs of each, every run its own process.

Each command runs as the installed ``clever2sis`` script, as a user or a scheduler starts it, and is timed
two ways:

* the whole process, from spawn to exit;
* for the commands that talk to a server (``status``, ``list`` and ``doctor``, served by the local test
  servers tests/canvas_server.py and tests/clever_server.py on 127.0.0.1), from just before the process is
  spawned (``time.time()``) to the arrival of its first request at either server (each server notes
  ``time.time()`` as a request reaches its handler). That is the start-up the target speaks of: the command
  is ready and talking. The whole time adds the round trips, which against a real Canvas or Clever take
  0.1-0.5 s each.

The verdict against the target is on the first request for those commands and on the whole process for
the others. Two floors run beside them: the interpreter alone, and a process that only imports click and
httpx and makes one ``httpx.Client()`` (which loads the CA bundle): what any command built on them pays
before it does anything of its own. The package's bytecode is compiled first, as pip compiles it on
install, so that no run times the compiling of a module edited since (the environment may forbid writing
bytecode on import).
"""

from __future__ import annotations

import compileall
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
HTTP_FLOOR_CODE = "import click, httpx; httpx.Client()"
HTTP_FLOOR = f"python -c '{HTTP_FLOOR_CODE}'"  # the libraries every network command is built on
FLOORS = {
    FLOOR: "the floor: the interpreter alone",
    HTTP_FLOOR: "the floor of a network command: click, httpx and one client with its CA bundle",
}
NETWORK = frozenset({"status", "list", "doctor"})  # judged on the time to their first request


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
    """Each command's wall times over ``runs`` runs (interleaved), the network commands' times to their
    first request, and the load average at the start."""
    import clever2sis
    from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas
    from tests.clever_server import CleverTestServer
    from tests.conftest import tiny_district

    compileall.compile_dir(Path(clever2sis.__file__).parent, quiet=1)
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
        argv[HTTP_FLOOR] = [sys.executable, "-c", HTTP_FLOOR_CODE]
        times: dict[str, list[float]] = {name: [] for name in argv}
        first: dict[str, list[float]] = {name: [] for name in argv if name in NETWORK}
        load = os.getloadavg()[0]
        for _ in range(runs):
            for name, args in argv.items():
                seen = (len(canvas.arrivals), len(clever_server.arrivals))
                spawned = time.time()
                started = time.perf_counter()
                done = subprocess.run(args, env=env, capture_output=True, timeout=RUN_TIMEOUT_S, check=False)
                times[name].append(time.perf_counter() - started)
                if done.returncode != 0:
                    raise RuntimeError(
                        f"clever2sis {' '.join(args)} exited {done.returncode}: {done.stderr!r}"
                    )
                arrivals = [*canvas.arrivals[seen[0] :], *clever_server.arrivals[seen[1] :]]
                if name in NETWORK:
                    if not arrivals:
                        raise RuntimeError(f"clever2sis {' '.join(args)} sent no request to the servers")
                    first[name].append(min(arrivals) - spawned)
    return {
        "runs": runs,
        "load": round(load, 2),
        "target_s": STARTUP_TARGET_S,
        "commands": {name: sorted(values) for name, values in times.items()},
        "first_request": {name: sorted(values) for name, values in first.items()},
    }


def _figures(values: list[float] | None) -> list[str]:
    if not values:
        return ["–", "–", "–"]
    return [f"{statistics.median(values):.3f} s", f"{min(values):.3f} s", f"{max(values):.3f} s"]


def render_startup(startup: dict[str, Any] | None, measured: str) -> list[str]:
    """The Markdown section of the start-up figures (nothing when they were never measured)."""
    if not startup:
        return []
    target = startup["target_s"]
    first_request: dict[str, list[float]] = startup.get("first_request", {})
    lines = [
        "## Start-up",
        "",
        f"Measured in the run of {measured} (UTC): {startup['runs']} runs of each command, interleaved, "
        f"each its own process; the 1-minute load average at the start: {startup['load']:.2f}. 'Whole' is "
        "the process from spawn to exit, as the installed `clever2sis` script. `status`, `list` and "
        "`doctor` talk to the local test servers on 127.0.0.1; for them 'to the first request' is the time "
        "from spawning the process to its first request reaching a server: the command is ready and "
        "talking, the start-up the target speaks of. Their whole time adds the round trips (a few here, "
        "each well under a millisecond; 0.1-0.5 s each against a real Canvas or Clever). Target: under "
        f"{target:g} s, judged on the first request for those three and on the whole process for the "
        "others (none of them imports pandas or Arrow). The floors: the interpreter alone, and a process "
        "that only imports click and httpx and makes one `httpx.Client()` (its CA bundle loaded).",
        "",
        "| command | whole: median | fastest | slowest | to the first request: median | fastest | slowest "
        "| verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, values in startup["commands"].items():
        first = first_request.get(name)
        if name in FLOORS:
            label, verdict = name, f"({FLOORS[name]})"
        else:
            label = f"clever2sis {name}"
            judged, figure = (first, "first request") if first else (values, "whole")
            met = "meets target" if statistics.median(judged) < target else "MISSES target"
            verdict = f"{met} ({figure})"
        lines.append(f"| `{label}` | {' | '.join([*_figures(values), *_figures(first)])} | {verdict} |")
    return [*lines, ""]
