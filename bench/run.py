"""The benchmark: start-up of the light commands, and pull and build of synthetic districts beside a
reference script and the floors.

    python -m bench.run [--sizes 10000,100000,1000000] [--repeats 3] [--latency-ms 200]
                        [--reference-repeats N] [--startup-runs 15] [--out docs/benchmarks.md]

Start-up (bench/startup.py): ``--help``, ``--version``, ``history``, ``status``, ``list`` and ``doctor``, each
run ``--startup-runs`` times as its own process, timed to its exit and (``status``, ``list``, ``doctor``) to
its first request at the local test server; the median is reported against the 0.15 s target, beside the
floors (the interpreter alone; click and httpx with one client).
``--sizes none --merge docs/benchmarks.json`` measures only the start-up and keeps the other figures.

For each size: the sample district (generated once, cached under bench/cache/; one cached without the
snapshot's columnar copy is given it), served by bench/server.py (pre-rendered pages, in its own process)
and pulled by ``clever2sis pull``, by the reference fetch and by the download-and-parse floor; then served
again with ``--latency-ms`` per page and pulled by ours and the floor; then built by ``clever2sis build``, by
the reference (parse + build + zip) and zipped by the zip floor. Every measured step runs in its own process
(bench/steps.py) for its peak RSS; each is run ``--repeats`` times, interleaved, and the median is
reported. The reference's rows are checked against ours once per size. Results go to ``--out`` (Markdown)
and beside it as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from bench.reference import compare
from bench.startup import DEFAULT_RUNS as STARTUP_RUNS
from bench.startup import measure_startup, render_startup
from clever2sis.clever.snapshot import COLUMNAR_SECTION, MANIFEST_NAME, Snapshot, add_columnar_copy

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / "cache"
SEED = 7
STEP_TIMEOUT_S = 3 * 3600
SERVER_START_TIMEOUT_S = 900
GIB = 1 << 30

# The targets for the largest district.
BUILD_SPEEDUP_MIN = 5.0
BUILD_FLOOR_RATIO_MAX = 2.0
BUILD_PEAK_RSS_MAX_MB = 2 * 1024
PULL_SPEEDUP_MIN = 3.0
PULL_FLOOR_RATIO_MAX = 2.0
BUILD_GROWTH_MAX = 11.0


@dataclass
class Size:
    students: int
    snapshot: Path
    served_bytes: int = 0
    pages: int = 0
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rows: dict[str, Any] = field(default_factory=dict)
    measured: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "students": self.students,
            # Relative to the repository, so the committed figures name no path of the machine.
            "snapshot": str(
                self.snapshot.relative_to(ROOT) if self.snapshot.is_relative_to(ROOT) else self.snapshot
            ),
            "pages": self.pages,
            "bytes": self.served_bytes,
            "measured": self.measured,
            "runs": self.runs,
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any], measured: str) -> Size:
        return cls(
            students=raw["students"],
            snapshot=ROOT / raw.get("snapshot", ""),
            served_bytes=raw["bytes"],
            pages=raw["pages"],
            runs=raw["runs"],
            rows=raw["rows"],
            measured=raw.get("measured") or measured,
        )

    def add(self, name: str, result: dict[str, Any]) -> None:
        self.runs.setdefault(name, []).append(result)

    def median(self, name: str, key: str = "seconds") -> float | None:
        values = [run[key] for run in self.runs.get(name, []) if key in run]
        return statistics.median(values) if values else None


def log(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def step(name: str, *args: str) -> dict[str, Any]:
    """Run one bench.steps step in a new process; its result, with the 1-minute load average beside it.

    The disk is synced first, outside the clock: a build writes about a gigabyte at 1M students, and
    without it one step's writeback lands in the next step's time (two builds measured 11 s and 23 s).
    """
    os.sync()
    load = os.getloadavg()[0]
    completed = subprocess.run(
        [sys.executable, "-m", "bench.steps", name, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"step {name} failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    result: dict[str, Any] = orjson.loads(completed.stdout.strip().splitlines()[-1])
    result["load"] = load
    log(f"  {name}: {result['seconds']:.2f} s, peak RSS {result['peak_rss_mb']:.0f} MB (load {load:.2f})")
    return result


def district(students: int, cache: Path) -> Path:
    """The cached sample district of ``students``, generated if missing. One cached before snapshots had a
    columnar copy (or with other schemas) is given the copy first: builds are measured reading it."""
    path = cache / f"district-{students}-seed{SEED}"
    if not (path / "manifest.json").is_file():
        log(f"generating the {students:,}-student district into {path}")
        step("generate", "--students", str(students), "--seed", str(SEED), "--out", str(path))
    elif not Snapshot.open(path).has_columnar_copy:
        log(f"adding the columnar copy to {path} (parsing its JSONL)")
        add_columnar_copy(path)
    return path


def jsonl_only(snapshot: Path, dest: Path) -> Path:
    """``snapshot`` without its columnar copy (its JSONL hard-linked, the manifest's columnar section left
    out): what a build reads when the snapshot came from an older clever2sis, measured for comparison."""
    dest.mkdir(parents=True)
    manifest = orjson.loads((snapshot / MANIFEST_NAME).read_bytes())
    manifest.pop(COLUMNAR_SECTION, None)
    for entry in manifest["collections"].values():
        os.link(snapshot / entry["file"], dest / entry["file"])
    (dest / MANIFEST_NAME).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return dest


class Server:
    """bench.server in its own process (so it never shares the client's GIL)."""

    def __init__(self, snapshot: Path, latency_ms: float = 0.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.server", str(snapshot), "--latency-ms", str(latency_ms)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        if len(line) != 4 or line[0] != "ready":
            self.close()
            raise RuntimeError(f"bench.server did not start: {line}")
        self.url, self.pages, self.bytes = line[1], int(line[2]), int(line[3])

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def measure(size: Size, repeats: int, reference_repeats: int, latency_ms: float, work: Path) -> None:
    log(f"{size.students:,} students: serving {size.snapshot}")
    server = Server(size.snapshot)
    try:
        size.served_bytes, size.pages = server.bytes, server.pages
        for repeat in range(repeats):
            out = work / f"pull-{repeat}"
            size.add("pull", step("pull", "--url", server.url, "--out", str(out)))
            shutil.rmtree(out)
            if repeat < reference_repeats:
                size.add("pull-reference", step("pull-reference", "--url", server.url))
            size.add("pull-floor", step("pull-floor", "--url", server.url))
    finally:
        server.close()
    if latency_ms > 0:
        log(f"{size.students:,} students: serving with {latency_ms:g} ms per page")
        server = Server(size.snapshot, latency_ms)
        try:
            for repeat in range(repeats):
                out = work / f"pull-latency-{repeat}"
                size.add("pull-latency", step("pull", "--url", server.url, "--out", str(out)))
                shutil.rmtree(out)
                size.add("pull-latency-floor", step("pull-floor", "--url", server.url))
        finally:
            server.close()
    ours, theirs = work / "build", work / "build-reference"
    plain = jsonl_only(size.snapshot, work / "jsonl-only")
    for repeat in range(repeats):
        size.add("build", step("build", "--snapshot", str(size.snapshot), "--out", str(ours)))
        if repeat < reference_repeats:
            size.add(
                "build-jsonl", step("build", "--snapshot", str(plain), "--out", str(work / "build-jsonl"))
            )
        if repeat < reference_repeats:
            shutil.rmtree(theirs, ignore_errors=True)
            size.add(
                "build-reference",
                step("build-reference", "--snapshot", str(size.snapshot), "--out", str(theirs)),
            )
            if repeat == 0:
                size.rows = compare(ours / "csv", theirs / "csv")
                log(f"  rows equal: { {name: entry['equal'] for name, entry in size.rows.items()} }")
        size.add("zip-floor", step("zip-floor", "--csv", str(ours / "csv"), "--out", str(work / "zip-floor")))
    report = work / "provisioning_report.zip"
    size.add("reconcile-report", step("reconcile-report", "--csv", str(ours / "csv"), "--out", str(report)))
    for _ in range(repeats):
        args = ("--build", str(ours), "--report", str(report), "--out", str(work / "reconcile"))
        size.add("reconcile", step("reconcile", *args))
    shutil.rmtree(ours, ignore_errors=True)
    shutil.rmtree(theirs, ignore_errors=True)


# -- report ------------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            cpu,
        )
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        total_kb = int(meminfo.read_text().split("MemTotal:", 1)[1].split()[0])
        memory = f"{total_kb / (1 << 20):.1f} GiB"
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("pandas", "pyarrow", "numpy", "orjson", "httpx")
    )
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": versions,
    }


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


def _mb(value: float | None) -> str:
    """A peak RSS, which steps measure in MiB (the unit of the 2 GiB target)."""
    return "–" if value is None else f"{value:,.0f} MiB"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return None if not numerator or not denominator else numerator / denominator


def _loads(size: Size, *names: str) -> str:
    loads = [run["load"] for name in names for run in size.runs.get(name, [])]
    return f"{min(loads):.2f}–{max(loads):.2f}" if loads else "–"


def _verdict(ok: bool | None) -> str:
    return "–" if ok is None else "**met**" if ok else "**not met**"


def verdicts(sizes: Sequence[Size]) -> list[tuple[str, str, bool | None]]:
    """The targets of the issue, for the largest size measured (and growth from the one before it)."""
    largest = sizes[-1]
    build, ref_build = largest.median("build"), largest.median("build-reference")
    zip_floor = largest.median("zip-floor")
    pull, ref_pull, floor = (
        largest.median("pull"),
        largest.median("pull-reference"),
        largest.median("pull-floor"),
    )
    latency, latency_floor = largest.median("pull-latency"), largest.median("pull-latency-floor")
    rss = largest.median("build", "peak_rss_mb")

    def check(value: float | None, ok: bool) -> bool | None:
        return None if value is None else ok

    speedup = _ratio(ref_build, build)
    to_zip = _ratio(build, zip_floor)
    pull_speedup = _ratio(ref_pull, pull)
    to_floor = _ratio(pull, floor)
    latency_ratio = _ratio(latency, latency_floor)
    rows = [
        (
            f"build ≥ {BUILD_SPEEDUP_MIN:g}x faster than the reference's parse + build + zip",
            f"{speedup:.1f}x" if speedup else "–",
            check(speedup, (speedup or 0) >= BUILD_SPEEDUP_MIN),
        ),
        (
            f"build within {BUILD_FLOOR_RATIO_MAX:g}x of the zip-only floor",
            f"{to_zip:.1f}x" if to_zip else "–",
            check(to_zip, (to_zip or 0) <= BUILD_FLOOR_RATIO_MAX),
        ),
        (
            "build peak RSS ≤ 2 GiB",
            _mb(rss),
            check(rss, (rss or 0) <= BUILD_PEAK_RSS_MAX_MB),
        ),
        (
            f"pull ≥ {PULL_SPEEDUP_MIN:g}x faster than the reference's fetch",
            f"{pull_speedup:.1f}x" if pull_speedup else "–",
            check(pull_speedup, (pull_speedup or 0) >= PULL_SPEEDUP_MIN),
        ),
        (
            f"pull within {PULL_FLOOR_RATIO_MAX:g}x of the download-and-parse floor",
            f"{to_floor:.2f}x" if to_floor else "–",
            check(to_floor, (to_floor or 0) <= PULL_FLOOR_RATIO_MAX),
        ),
        (
            f"pull with latency within {PULL_FLOOR_RATIO_MAX:g}x of the floor with the same latency",
            f"{latency_ratio:.2f}x" if latency_ratio else "–",
            check(latency_ratio, (latency_ratio or 0) <= PULL_FLOOR_RATIO_MAX),
        ),
    ]
    if len(sizes) > 1:
        before = sizes[-2]
        growth = _ratio(build, before.median("build"))
        scale = largest.students / before.students
        apart = " (measured in different runs)" if before.measured != largest.measured else ""
        rows.append(
            (
                f"linear growth: the {largest.students:,} build ≤ {BUILD_GROWTH_MAX * scale / 10:g}x the "
                f"{before.students:,} build{apart}",
                f"{growth:.1f}x" if growth else "–",
                check(growth, (growth or 0) <= BUILD_GROWTH_MAX * scale / 10),
            )
        )
    return rows


def render(
    sizes: Sequence[Size],
    args: argparse.Namespace,
    info: dict[str, str],
    started: str,
    startup: tuple[dict[str, Any] | None, str] = (None, ""),
) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench.run`); do not edit by hand. How it measures: "
        "[bench/run.py](../bench/run.py).",
        "",
        f"- written: {started} (UTC); each figure is the median of its runs (how many: under each size)",
        f"- machine: {info['cpu']}, {info['cores']} cores, {info['memory']}; {info['os']}",
        f"- Python {info['python']}; {info['libraries']}",
        "- the machine is shared: the 1-minute load average at the start of each run is given beside each "
        "figure (min–max over the runs)",
        "",
        "Pull: from bench/server.py on 127.0.0.1 (pages pre-rendered, in its own process; 10,000 records per "
        "page). Ours is `clever2sis pull` (3 collections at once, snapshot written and checked); the "
        "reference fetch keeps the records in memory and writes nothing; the floor fetches and parses "
        "every page (httpx + orjson) and does nothing else. MB/s is the served JSON over the wall time.",
        "Build: ours is `clever2sis build` with default settings (CSVs, zip, build.json), reading the "
        "snapshot's columnar copy (`<collection>.arrow`, which the pull writes from the pages it parses: "
        "its cost is in the pull's figures). 'From the JSONL alone' is the same build of the same "
        "snapshot without that copy, as a snapshot of an older clever2sis would be read. The reference "
        "parses the JSONL with `json`, builds dicts, writes with `csv.DictWriter`, zips with `zipfile`; "
        "the zip floor zips our CSV bytes (already in memory) with `zipfile` at its default level (our "
        "zip is deflated by ISA-L, level 1). 'Pull + build' adds the two medians, for the whole of the "
        "work either way. Times are the work after imports; peak RSS is the step's process. The disk is "
        "synced before each step (outside its time), so no step pays for an earlier one's writes.",
        "Reconcile: `clever2sis reconcile` of the build with a provisioning report read from disk (what "
        "Canvas would report after importing the build, written by bench/provisioning.py with drift: one "
        "enrollment in 1,000 missing, one inactive, one added by hand, one user in 1,000 renamed), through "
        "the same streaming reader as a report downloaded from Canvas; drift CSVs and summary written.",
        "",
        *render_startup(*startup),
    ]
    for size in sizes:
        mb = size.served_bytes / 1e6
        pull, ref_pull, floor = size.median("pull"), size.median("pull-reference"), size.median("pull-floor")
        lat, lat_floor = size.median("pull-latency"), size.median("pull-latency-floor")
        build, ref_build, zip_floor = (
            size.median("build"),
            size.median("build-reference"),
            size.median("zip-floor"),
        )
        jsonl = size.median("build-jsonl")

        def rate(seconds: float | None, mb: float = mb) -> str:
            return "–" if not seconds else f"{mb / seconds:,.0f} MB/s"

        def times(ratio: float | None) -> str:
            return "–" if ratio is None else f"{ratio:.2f}x"

        lines += [
            f"## {size.students:,} students",
            "",
            f"Measured in the run of {size.measured} (UTC): {len(size.runs.get('build', []))} run(s) of "
            f"each figure ({len(size.runs.get('build-reference', []))} of the reference build). "
            f"Served: {size.pages} pages, {mb:,.0f} MB of JSON.",
            "",
            "| figure | clever2sis | reference | floor | reference / ours | ours / floor | load |",
            "|---|---|---|---|---|---|---|",
            f"| pull, wall | {_s(pull)} | {_s(ref_pull)} | {_s(floor)} | {times(_ratio(ref_pull, pull))} | "
            f"{times(_ratio(pull, floor))} | {_loads(size, 'pull', 'pull-reference', 'pull-floor')} |",
            f"| pull, throughput | {rate(pull)} | {rate(ref_pull)} | {rate(floor)} | | | |",
            f"| pull, requests | {_n(size.median('pull', 'requests'))} | {size.pages} | "
            f"{_n(size.median('pull-floor', 'pages'))} | | | |",
            f"| pull, peak RSS | {_rss(size, 'pull')} | {_rss(size, 'pull-reference')} | "
            f"{_rss(size, 'pull-floor')} | | | |",
            f"| pull, {args.latency_ms:g} ms per page | {_s(lat)} | – | {_s(lat_floor)} | | "
            f"{times(_ratio(lat, lat_floor))} | {_loads(size, 'pull-latency', 'pull-latency-floor')} |",
            f"| build, wall | {_s(build)} | {_s(ref_build)} | {_s(zip_floor)} (zip only) | "
            f"{times(_ratio(ref_build, build))} | {times(_ratio(build, zip_floor))} | "
            f"{_loads(size, 'build', 'build-reference', 'zip-floor')} |",
            f"| build, from the JSONL alone | {_s(jsonl)} | {_s(ref_build)} | | "
            f"{times(_ratio(ref_build, jsonl))} | {times(_ratio(jsonl, zip_floor))} | "
            f"{_loads(size, 'build-jsonl')} |",
            f"| pull + build | {_s(_sum(pull, build))} | {_s(_sum(ref_pull, ref_build))} | | "
            f"{times(_ratio(_sum(ref_pull, ref_build), _sum(pull, build)))} | | |",
            f"| build, peak RSS | {_rss(size, 'build')} | {_rss(size, 'build-reference')} | "
            f"{_rss(size, 'zip-floor')} | | | |",
            f"| reconcile, wall | {_s(size.median('reconcile'))} | | | | | {_loads(size, 'reconcile')} |",
            f"| reconcile, peak RSS | {_rss(size, 'reconcile')} | | | | | |",
            f"| report read by reconcile | {_size(size.median('reconcile-report', 'report_bytes'))} zipped | "
            "| | | | |",
            f"| zip size | {_size(size.median('build', 'zip_bytes'))} | "
            f"{_size(size.median('build-reference', 'zip_bytes'))} | "
            f"{_size(size.median('zip-floor', 'zip_bytes'))} | | | |",
            "",
        ]
        if size.rows:
            lines += ["Reference rows against ours (sorted rows per file):", ""]
            lines += ["| file | rows (ours) | rows (reference) | equal |", "|---|---|---|---|"]
            for name, entry in size.rows.items():
                lines.append(
                    f"| {name} | {entry['rows_ours']:,} | {entry['rows_reference']:,} | "
                    f"{'yes' if entry['equal'] else 'NO'} |"
                )
                for side in ("only_ours", "only_reference"):
                    for row in entry.get(side, []):
                        lines.append(f"| | {side}: `{row}` | | |")
            lines.append("")
    if not sizes:
        return "\n".join(lines)
    lines += [
        f"## Targets ({sizes[-1].students:,} students)",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    for target, measured, ok in verdicts(sizes):
        lines.append(f"| {target} | {measured} | {_verdict(ok)} |")
    lines.append("")
    return "\n".join(lines)


def _rss(size: Size, name: str) -> str:
    return _mb(size.median(name, "peak_rss_mb"))


def _sum(*values: float | None) -> float | None:
    return None if any(value is None for value in values) else sum(value or 0 for value in values)


def _n(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _size(value: float | None) -> str:
    return "–" if value is None else f"{value / 1e6:,.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--reference-repeats", type=int, help="runs of the (slow) reference per size (default: --repeats)"
    )
    parser.add_argument("--latency-ms", type=float, default=200.0, help="0 skips the latency runs")
    parser.add_argument("--startup-runs", type=int, default=STARTUP_RUNS, help="0 skips the start-up runs")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, help="raw results (default: --out with .json)")
    parser.add_argument(
        "--report-only", action="store_true", help="measure nothing: write the report of --merge again"
    )
    parser.add_argument(
        "--merge",
        type=Path,
        help="the raw results of an earlier run: its sizes not measured now are reported beside these",
    )
    args = parser.parse_args(argv)
    args.reference_repeats = min(args.reference_repeats or args.repeats, args.repeats)
    sizes_given = "" if args.sizes.strip().lower() == "none" else args.sizes
    students = sorted(int(value.replace("_", "")) for value in sizes_given.split(",") if value.strip())
    if args.report_only:
        if not args.merge:
            parser.error("--report-only needs --merge")
        students = []
    if args.repeats < 1 or any(n < 50 for n in students):
        parser.error("--repeats must be 1 or more and every size at least 50 students")
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    info = machine()
    if args.report_only:
        started = orjson.loads(args.merge.read_bytes())["started"]
    args.cache.mkdir(parents=True, exist_ok=True)
    earlier: list[Size] = []
    startup: tuple[dict[str, Any] | None, str] = (None, "")
    if args.merge:
        previous = orjson.loads(args.merge.read_bytes())
        earlier = [Size.from_dict(raw, previous["started"]) for raw in previous["sizes"]]
        if previous.get("startup"):
            startup = (previous["startup"], previous.get("startup_measured", previous["started"]))
    if args.startup_runs > 0 and not args.report_only:
        log(f"start-up: {args.startup_runs} runs of each command")
        startup = (measure_startup(args.startup_runs), started)
    sizes = [Size(n, district(n, args.cache)) for n in students]
    for size in sizes:
        size.measured = started
        with tempfile.TemporaryDirectory(prefix="bench-", dir=args.cache) as work:
            measure(size, args.repeats, args.reference_repeats, args.latency_ms, Path(work))
    sizes += [size for size in earlier if size.students not in students]
    sizes.sort(key=lambda size: size.students)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(sizes, args, info, started, startup), encoding="utf-8")
    raw = {
        "started": started,
        "machine": info,
        "sizes": [size.as_dict() for size in sizes],
        "startup": startup[0],
        "startup_measured": startup[1],
    }
    (args.json or args.out.with_suffix(".json")).write_bytes(orjson.dumps(raw, option=orjson.OPT_INDENT_2))
    log(f"wrote {args.out}")
    for target, measured, ok in verdicts(sizes):
        log(f"{_verdict(ok):>13}  {target}: {measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
