"""Measure a pull of a synthetic district from the local Clever server, with Clever's limit and faults.

    python -m tests.measure_pull --students 100000 --page-size 10000
    python -m tests.measure_pull --snapshot /tmp/district --page-size 500

Generates the district (unless --snapshot names one), serves it at 1,200 requests a minute per token with
injected 502s, dropped connections and 429s (seeded), pulls it with the real client (real clock and sleep),
checks that the pulled snapshot equals the served records byte for byte, and prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson

from clever2sis.clever.client import CleverClient
from clever2sis.clever.pull import pull_district
from clever2sis.clever.sample import generate_district
from clever2sis.clever.snapshot import COLLECTIONS, Snapshot
from tests.clever_server import CleverTestServer, Faults, district_from_snapshot

TOKEN = "b3nchb3nchb3nchb3nchb3nchb3nchb3nchb3nc"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--snapshot", type=Path, help="serve this snapshot instead of generating one")
    parser.add_argument("--page-size", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--bad-gateway", type=float, default=0.02, help="share of requests answered 502")
    parser.add_argument("--dropped", type=float, default=0.02, help="share of connections dropped")
    parser.add_argument("--throttled", type=float, default=0.002, help="share of requests given an early 429")
    parser.add_argument("--fault-seed", type=int, default=1)
    parser.add_argument("--rate-limit", type=int, default=1200, help="requests per window per token")
    parser.add_argument("--window-s", type=int, default=60)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="clever2sis-measure-") as tmp:
        source = args.snapshot
        if source is None:
            source = Path(tmp) / "served"
            generate_district(source, students=args.students, seed=args.seed)
        served = district_from_snapshot(source)
        faults = Faults(
            bad_gateway=args.bad_gateway, dropped=args.dropped, throttled=args.throttled, seed=args.fault_seed
        )

        def progress(message: str) -> None:
            if "rate limit" in message or "retry" in message:
                print(f"[{time.monotonic() - started:7.1f}s] {message}", file=sys.stderr)

        with CleverTestServer(
            served, token=TOKEN, rate_limit=args.rate_limit, window_s=args.window_s, faults=faults
        ) as server:
            started = time.monotonic()
            with CleverClient(
                TOKEN, server.url, "v3.0", page_size=args.page_size, progress=progress
            ) as client:
                manifest = pull_district(
                    client, Path(tmp) / "pulled", workers=args.workers, progress=progress
                )
            wall_s = time.monotonic() - started
        pulled = Snapshot.open(Path(tmp) / "pulled")
        equal = {name: pulled.read_bytes(name).splitlines() == served[name] for name in COLLECTIONS}
    figures = {
        "page_size": args.page_size,
        "workers": args.workers,
        "records": {name: manifest["collections"][name]["records"] for name in COLLECTIONS},
        "wall_s": round(wall_s, 1),
        "client": manifest["pull"],
        "server": dict(server.stats),
        "snapshot_equals_served": all(equal.values()),
        "dangling_references": manifest["dangling_references"],
    }
    print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    return 0 if all(equal.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
