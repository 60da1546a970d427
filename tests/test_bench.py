"""A smoke test of the benchmark harness (bench/) on a 2,000-student district, in process.

The benchmark itself is ``make bench``; this only checks that its parts agree with each other: the
pre-rendered server speaks the protocol our client and the reference follow, the floor reads every page,
the reference's rows equal ours, and the report renders.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from bench.floors import csv_bytes_of, download_and_parse, zip_only
from bench.reference import build as reference_build
from bench.reference import compare, fetch, load_snapshot, write
from bench.run import Size, jsonl_only, render, verdicts
from bench.run import district as cached_district
from bench.server import PrerenderedServer, render_pages
from clever2sis.clever.client import CleverClient
from clever2sis.clever.pull import pull_district
from clever2sis.clever.sample import generate_district
from clever2sis.clever.snapshot import COLLECTIONS, Snapshot
from clever2sis.config import build_settings, load_raw_config
from clever2sis.sis.build import build
from tests.conftest import drop_columnar

TOKEN = "b3nch5m0k3b3nch5m0k3b3nch5m0k3b3nch5m0k"


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "district"
    generate_district(path, students=2_000, seed=7)
    return path


def test_the_served_pages_pull_back_into_the_same_snapshot(district: Path, tmp_path: Path) -> None:
    pages = render_pages(district, page_size=1_000)
    assert "/v3.0/districts" in pages
    assert "/v3.0/users?limit=1000" in pages
    with PrerenderedServer(pages) as server:
        with CleverClient(TOKEN, server.url, page_size=1_000) as client:
            manifest = pull_district(client, tmp_path / "pulled")
        floor = download_and_parse(server.url, TOKEN, page_size=1_000)
        reference = fetch(server.url, TOKEN, page_size=1_000)
        requests = server.stats["requests"]
    served, pulled = Snapshot.open(district), Snapshot.open(tmp_path / "pulled")
    for name in COLLECTIONS:
        assert pulled.read_bytes(name) == served.read_bytes(name), name
    assert manifest["pull"]["requests"] == floor["pages"] == len(pages)
    assert floor["records"] == sum(len(records) for records in reference.values())
    assert floor["bytes"] == sum(map(len, pages.values()))
    assert requests == 3 * len(pages)


def test_the_reference_build_gives_our_rows_and_the_report_renders(district: Path, tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    record = build(district, ours, build_settings(load_raw_config(None)))
    write(reference_build(load_snapshot(district)), tmp_path / "reference")
    rows = compare(ours / "csv", tmp_path / "reference" / "csv")
    assert all(entry["equal"] for entry in rows.values()), rows
    assert rows["enrollments.csv"]["rows_ours"] == record["files"]["enrollments.csv"]["rows"]
    assert zip_only(csv_bytes_of(ours / "csv"), tmp_path / "floor.zip") > 0

    size = Size(2_000, district, served_bytes=1_000_000, pages=9, rows=rows)
    runs = [
        ("build", 1.0),
        ("build-jsonl", 2.0),
        ("build-reference", 6.0),
        ("zip-floor", 0.6),
        ("pull", 1.0),
        ("pull-reference", 3.0),
    ]
    for name, seconds in runs:
        size.add(name, {"seconds": seconds, "peak_rss_mb": 100.0, "load": 0.5})
    args = argparse.Namespace(repeats=1, reference_repeats=1, latency_ms=200.0)
    info = dict.fromkeys(("cpu", "cores", "memory", "os", "python", "libraries"), "x")
    report = render([size], args, info, "2026-01-01 00:00")
    assert "| build, wall | 1.00 s | 6.00 s | 0.60 s (zip only) | 6.00x | 1.67x |" in report
    assert "| build, from the JSONL alone | 2.00 s | 6.00 s | | 3.00x | 3.33x | 0.50–0.50 |" in report
    assert "| pull + build | 2.00 s | 9.00 s | | 4.50x | | |" in report
    assert dict((target, ok) for target, _, ok in verdicts([size]))[
        "build ≥ 5x faster than the reference's parse + build + zip"
    ]


def test_a_cached_district_without_the_columnar_copy_is_given_it(district: Path, tmp_path: Path) -> None:
    cached = tmp_path / "district-2000-seed7"
    drop_columnar(Path(shutil.copytree(district, cached)))
    assert cached_district(2_000, tmp_path) == cached
    snapshot = Snapshot.open(cached)
    assert snapshot.has_columnar_copy
    assert snapshot.manifest["columnar"] == Snapshot.open(district).manifest["columnar"]
    manifest = (cached / "manifest.json").read_bytes()
    cached_district(2_000, tmp_path)
    assert (cached / "manifest.json").read_bytes() == manifest


def test_the_jsonl_only_twin_builds_the_same_zip_from_the_jsonl(district: Path, tmp_path: Path) -> None:
    twin = jsonl_only(district, tmp_path / "twin")
    assert not Snapshot.open(twin).has_columnar_copy
    assert sorted(path.name for path in twin.iterdir()) == sorted(
        ["manifest.json", *(f"{name}.jsonl" for name in COLLECTIONS)]
    )
    settings = build_settings(load_raw_config(None))
    ours, theirs = build(district, tmp_path / "a", settings), build(twin, tmp_path / "b", settings)
    assert ours["zip"]["sha256"] == theirs["zip"]["sha256"]


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="VmHWM is Linux's /proc/self/status")
def test_a_steps_peak_rss_is_its_own_not_its_parents() -> None:
    import subprocess
    import sys

    held = bytearray(400 << 20)  # the parent's peak, which ru_maxrss would hand down through exec
    held[:: 1 << 12] = b"x" * len(held[:: 1 << 12])
    child = subprocess.run(
        [sys.executable, "-c", "from bench.steps import peak_rss_mb; print(peak_rss_mb())"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert float(child.stdout) < 200
    del held


def test_the_bench_report_writer_gives_reconcile_exactly_the_drift_it_wrote(
    district: Path, tmp_path: Path
) -> None:
    from bench.provisioning import DRIFT_EVERY, write_report
    from clever2sis.reconcile.run import reconcile

    ours = tmp_path / "ours"
    record = build(district, ours, build_settings(load_raw_config(None)))
    rows = write_report(ours / "csv", tmp_path / "report.zip")
    enrollments = record["files"]["enrollments.csv"]["rows"]
    users = record["files"]["users.csv"]["rows"]
    every = -(-enrollments // DRIFT_EVERY)  # one per started thousand
    assert rows["enrollments"] == enrollments
    summary = reconcile(ours, tmp_path / "out", report_file=tmp_path / "report.zip").summary
    assert summary["drift"]["enrollments.csv"] == {
        "missing": every,
        "status": len(range(1, enrollments, DRIFT_EVERY)),
        "changed": 0,
        "extra": 0,
        "manual": every,
    }
    assert summary["drift"]["users.csv"]["changed"] == -(-users // DRIFT_EVERY)
    assert summary["exit_code"] == 60
