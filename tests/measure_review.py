"""Measure `clever2sis review` of a night-two build against night one, and its report in Chromium.

    python -m tests.measure_review --students 100000 --also-leaving 0,2000

Generates the district (unless --snapshot names one) and builds it (night one); for each --also-leaving
count makes the changed copy tests/review_district.py makes (plus that many students leaving, spread over
the district) and builds it (night two); then times `clever2sis review NIGHT_TWO --against NIGHT_ONE`
end to end, and opens the report in headless Chromium: its load-to-interactive time from the Performance
API (navigation start to the report script's "clever2sis-ready" mark), and the time a filter keystroke,
a sort and a school pick take on the largest table. Prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from clever2sis.clever.sample import generate_district
from clever2sis.config import RawConfig, build_settings
from clever2sis.review.verdict import diff_anchor
from clever2sis.sis.build import build
from tests.browser import browser
from tests.review_district import changed_demo

CLI = Path(sys.executable).parent / "clever2sis"

# Run in the page: the timings of one keystroke in the largest table's filter, a sort of it, a school pick.
INTERACTIONS = """
(function (id) {
  function settle() { return document.body.offsetHeight; }
  var details = document.getElementById(id);
  var table = details.querySelector("table");
  details.open = true;
  settle();
  var input = details.querySelector(".filterbar input");
  var t0 = performance.now();
  input.value = "a";
  input.dispatchEvent(new Event("input"));
  settle();
  var t1 = performance.now();
  input.value = "";
  input.dispatchEvent(new Event("input"));
  settle();
  var t2 = performance.now();
  table.tHead.rows[0].cells[0].click();
  settle();
  var t3 = performance.now();
  var select = document.getElementById("school-filter");
  select.value = select.options[1].value;
  select.dispatchEvent(new Event("change"));
  settle();
  var t4 = performance.now();
  var nav = performance.getEntriesByType("navigation")[0];
  return {
    table: id,
    table_count: details.querySelector(".tablecount").textContent,
    filter_ms: t1 - t0,
    sort_ms: t3 - t2,
    school_ms: t4 - t3,
    dom_interactive_ms: nav.domInteractive,
    dom_content_loaded_ms: nav.domContentLoadedEventEnd,
    load_event_ms: nav.loadEventEnd,
    ready_ms: performance.getEntriesByName("clever2sis-ready")[0].startTime,
    rows_in_page: document.querySelectorAll("tbody tr").length
  };
})
"""


def largest_table(facts: dict[str, Any]) -> str:
    """The report id of the findings or changes table with the most rows."""
    sizes = {
        f"finding-{kind}-rows": len(entry["items"]) for kind, entry in facts["findings"]["by_kind"].items()
    }
    for name, entry in facts["diff"].items():
        for part in ("added", "removed"):
            sizes[diff_anchor(name, part)] = len(entry["rows"][part])
    return max(sizes, key=lambda anchor: sizes[anchor])


def _timed(command: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(root: Path, snapshot: Path, also_leaving: int) -> dict[str, Any]:
    settings = build_settings(RawConfig(data={}))
    night_one = root / "night-1"
    if not night_one.exists():
        build(snapshot, night_one, settings)
    changed = root / f"snapshot-{also_leaving}"
    night_two = root / f"night-2-{also_leaving}"
    if not night_two.exists():  # kept from an earlier run in --workdir
        changed_demo(changed, snapshot, also_leaving=also_leaving)
        build(changed, night_two, settings)
    review = [str(CLI), "review", str(night_two), "--against", str(night_one), "-q"]
    load = os.getloadavg()[0]
    runs = [_timed(review) for _ in range(3)]
    facts = orjson.loads(subprocess.run([*review, "--json"], check=True, capture_output=True).stdout)
    report = night_two / "report.html"
    with browser() as page:
        page.open(report)
        in_page = page.js(f"{INTERACTIONS}({orjson.dumps(largest_table(facts)).decode()})")
    return {
        "also_leaving": also_leaving,
        "diff": {
            name: {k: e[k] for k in ("added", "removed", "changed")} for name, e in facts["diff"].items()
        },
        "findings": facts["findings"]["total"],
        "review_wall_s": sorted(round(wall, 2) for wall, _ in runs),
        "review_cpu_s": sorted(round(cpu, 2) for _, cpu in runs),
        "load_average": load,
        "report_bytes": report.stat().st_size,
        "browser": in_page,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--snapshot", type=Path, help="night one's snapshot instead of a generated one")
    parser.add_argument("--also-leaving", default="0,2000", help="comma-separated counts, one night each")
    parser.add_argument("--workdir", type=Path, help="keep the builds here (default: a temporary directory)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        snapshot = args.snapshot
        if snapshot is None:
            snapshot = root / "snapshot"
            if not snapshot.exists():
                generate_district(snapshot, students=args.students, seed=args.seed)
        results = [measure(root, snapshot, int(n)) for n in args.also_leaving.split(",")]
    sys.stdout.write(
        orjson.dumps({"students": args.students, "nights": results}, option=orjson.OPT_INDENT_2).decode()
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
