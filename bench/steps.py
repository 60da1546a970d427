"""One measured step, run in its own process so that its peak RSS is its own.

    python -m bench.steps STEP [options]

prints one JSON object on its last line of stdout: ``seconds`` (wall time of the work, after imports),
``peak_rss_mb`` (the process's own high-water RSS, see :func:`peak_rss_mb`) and what the step counted. Steps:

``generate``         the sample district (``--students``, ``--seed``) into ``--out``
``pull``             ``clever2sis pull`` (the library call the command makes) from ``--url`` into ``--out``
``pull-reference``   the reference fetch (urllib + json, every record kept in memory)
``pull-floor``       download-and-parse floor (httpx + orjson, nothing else)
``build``            ``clever2sis build`` (default settings) of ``--snapshot`` into ``--out``
``build-reference``  the reference's parse + build + zip of ``--snapshot`` into ``--out``
``zip-floor``        zipfile of the CSV files in ``--csv`` into ``--out``
``reconcile-report`` a provisioning report of the build CSVs in ``--csv``, with drift, into ``--out`` (a zip)
``reconcile``        ``clever2sis reconcile`` of ``--build`` with the report ``--report`` into ``--out``
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

import orjson


def _token(step: str) -> str:
    """A fresh token per run, so each run gets the rate-limit window a nightly sync would."""
    return f"bench-{step}-{time.time_ns()}"


def run(step: str, args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    facts: dict[str, Any] = {}
    if step == "generate":
        from clever2sis.clever.sample import generate_district

        generate_district(args.out, students=args.students, seed=args.seed)
    elif step == "pull":
        # What `clever2sis pull` has imported before it pulls (pandas among it, which pyarrow's compute
        # functions would otherwise import on first use, inside the clock).
        import clever2sis.cli  # noqa: F401
        from clever2sis.clever.client import CleverClient
        from clever2sis.clever.pull import pull_district

        started = time.perf_counter()
        with CleverClient(_token(step), args.url) as client:
            manifest = pull_district(client, args.out)
        facts = {
            "requests": manifest["pull"]["requests"],
            "records": sum(entry["records"] for entry in manifest["collections"].values()),
        }
    elif step == "pull-reference":
        from bench.reference import fetch

        started = time.perf_counter()
        records = fetch(args.url, _token(step))
        facts = {"records": sum(map(len, records.values()))}
    elif step == "pull-floor":
        from bench.floors import download_and_parse

        started = time.perf_counter()
        facts = download_and_parse(args.url, _token(step))
    elif step == "build":
        from clever2sis.config import build_settings, load_raw_config
        from clever2sis.sis.build import build

        started = time.perf_counter()
        record = build(args.snapshot, args.out, build_settings(load_raw_config(None)), force=True)
        facts = {"zip_bytes": record["zip"]["bytes"]}
    elif step == "build-reference":
        from bench.reference import build as build_rows
        from bench.reference import load_snapshot, write

        started = time.perf_counter()
        write(build_rows(load_snapshot(args.snapshot)), args.out)
        facts = {"zip_bytes": (args.out / "sis_import.zip").stat().st_size}
    elif step == "zip-floor":
        from bench.floors import csv_bytes_of, zip_only

        members = csv_bytes_of(args.csv)
        args.out.mkdir(parents=True, exist_ok=True)
        seconds = zip_only(members, args.out / "sis_import.zip")
        return {
            "seconds": seconds,
            "zip_bytes": (args.out / "sis_import.zip").stat().st_size,
            "csv_bytes": sum(len(data) for _, data in members),
        }
    elif step == "reconcile-report":
        from bench.provisioning import write_report

        facts = {"rows": write_report(args.csv, args.out), "report_bytes": 0}
        facts["report_bytes"] = args.out.stat().st_size
    elif step == "reconcile":
        from clever2sis.reconcile.run import ReconcileSettings, reconcile

        started = time.perf_counter()
        result = reconcile(
            args.build, args.out, report_file=args.report, settings=ReconcileSettings(), force=True
        )
        facts = {"fixable": result.summary["fixable"], "drift": result.summary["total"]}
    else:
        raise SystemExit(f"unknown step {step!r}")
    return {"seconds": time.perf_counter() - started, **facts}


def peak_rss_mb() -> float:
    """This process's peak RSS in MiB: Linux's ``VmHWM``, which belongs to the process's own memory.

    Not ``ru_maxrss``: Linux carries that across ``exec``, so a step started by a parent that once held
    3 GB (bench.run, after comparing the reference's rows with ours) would report 3 GB whatever it used.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("step")
    parser.add_argument("--url")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--snapshot", type=Path)
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--build", type=Path)
    parser.add_argument("--report", type=Path)
    parser.add_argument("--students", type=int)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    result = run(args.step, args)
    result["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
