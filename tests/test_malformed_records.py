"""A record whose field has another type than Clever gives it (``"roles": "student"``, ``"name": 3``,
``"students": "x"``) is one finding, named by collection and id, and left out of the build, which is
otherwise what it would be without that record; the pull keeps it (it is what Clever sent) and counts it in
the manifest."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from clever2sis.clever.snapshot import MAX_MALFORMED_RECORDS, Snapshot
from clever2sis.cli import main
from tests.clever_server import CleverTestServer, district_from_snapshot
from tests.conftest import DISTRICT_ID, SCHOOL_A, student, tiny_district, write_snapshot

TOKEN = "0a1b2c3d4e5f0a1b2c3d4e5f0a1b2c3d4e5f0a1b"

# (collection, the record's id, the record, the finding's message after "<collection> record <id> ")
BAD: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "users",
        "5f0000000000000000000901",
        {
            "id": "5f0000000000000000000901",
            "district": DISTRICT_ID,
            "name": {"first": "A"},
            "roles": "student",
        },
        "roles is a string where Clever sends an object",
    ),
    (
        "users",
        "5f0000000000000000000902",
        {**student("5f0000000000000000000902", "B", "C", school=SCHOOL_A, username="bc"), "name": 3},
        "name is a number where Clever sends an object",
    ),
    (
        "sections",
        "5f00000000000000000000e9",
        {
            "id": "5f00000000000000000000e9",
            "district": DISTRICT_ID,
            "school": SCHOOL_A,
            "name": "Broken",
            "teacher": "5f0000000000000000000f01",
            "teachers": ["5f0000000000000000000f01"],
            "students": "x",
        },
        "students is a string where Clever sends an array",
    ),
]


def with_bad_records() -> dict[str, list[dict[str, Any]]]:
    records = tiny_district()
    for collection, _, record, _ in BAD:
        records[collection].append(copy.deepcopy(record))
    return records


def _build(snapshot: Path, out: Path) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(main, ["build", str(snapshot), "--out", str(out), "-q", "--json"])
    return result.exit_code, orjson.loads(result.stdout) if result.stdout else {}, result.stderr


def _csvs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "csv").iterdir())}


def _line(snapshot: Path, collection: str, record_id: str) -> int:
    lines = (snapshot / f"{collection}.jsonl").read_bytes().splitlines()
    return next(n for n, line in enumerate(lines, 1) if orjson.loads(line)["id"] == record_id)


def _expected_findings(snapshot: Path) -> list[dict[str, str]]:
    return sorted(
        (
            {
                "kind": "malformed_record",
                "severity": "warning",
                "file": f"{collection}.jsonl",
                "record_id": record_id,
                "message": f"{collection} record {record_id} (line {_line(snapshot, collection, record_id)}): "
                f"{problem}; left out of the build",
            }
            for collection, record_id, _, problem in BAD
        ),
        key=lambda item: (item["file"], item["record_id"]),
    )


def test_a_wrongly_typed_record_is_a_finding_and_the_rest_builds_as_without_it(tmp_path: Path) -> None:
    bad = write_snapshot(tmp_path / "bad", with_bad_records())
    good = write_snapshot(tmp_path / "good", tiny_district())
    assert Snapshot.open(bad).columnar_entry("users") is None

    code, record, stderr = _build(bad, tmp_path / "b-bad")
    assert code == 0, stderr
    assert _build(good, tmp_path / "b-good")[0] == 0
    assert _csvs(tmp_path / "b-bad") == _csvs(tmp_path / "b-good")
    items = [item for item in record["findings"]["items"] if item["kind"] == "malformed_record"]
    assert items == _expected_findings(bad)
    assert record["findings"]["by_kind"]["malformed_record"] == {"severity": "warning", "count": 3}

    strict = CliRunner().invoke(
        main, ["build", str(bad), "--out", str(tmp_path / "b-strict"), "-q", "--strict"]
    )
    assert strict.exit_code == 5


def test_a_pull_keeps_and_counts_wrongly_typed_records_and_the_build_leaves_them_out(tmp_path: Path) -> None:
    served = write_snapshot(tmp_path / "served", with_bad_records())
    out = tmp_path / "pulled"
    with CleverTestServer(district_from_snapshot(served), token=TOKEN) as server:
        result = CliRunner().invoke(
            main,
            ["pull", "--out", str(out), "--page-size", "3", "--json"],
            env={"CLEVER_TOKEN": TOKEN, "CLEVER_API_BASE": server.url},
        )
    assert result.exit_code == 0, result.stderr
    manifest = orjson.loads(result.stdout)
    assert manifest["malformed_records"] == {
        "sections": {"records": 1, "ids": ["5f00000000000000000000e9"]},
        "users": {"records": 2, "ids": ["5f0000000000000000000901", "5f0000000000000000000902"]},
    }
    assert "warning: 2 users record(s) with fields of another type than Clever's" in result.stderr
    for collection in ("users", "sections"):
        assert (out / f"{collection}.jsonl").read_bytes() == (served / f"{collection}.jsonl").read_bytes()
    code, record, stderr = _build(out, tmp_path / "b")
    assert code == 0, stderr
    assert [item for item in record["findings"]["items"] if item["kind"] == "malformed_record"] == (
        _expected_findings(out)
    )


def test_a_clean_pull_records_no_malformed_records(tmp_path: Path) -> None:
    served = write_snapshot(tmp_path / "served", tiny_district())
    with CleverTestServer(district_from_snapshot(served), token=TOKEN) as server:
        result = CliRunner().invoke(
            main,
            ["pull", "--out", str(tmp_path / "pulled"), "--json"],
            env={"CLEVER_TOKEN": TOKEN, "CLEVER_API_BASE": server.url},
        )
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout)["malformed_records"] == {}


@pytest.mark.parametrize("extra", [0, 1])
def test_more_wrongly_typed_records_than_the_limit_are_not_clever_data(tmp_path: Path, extra: int) -> None:
    records = tiny_district()
    records["terms"] += [
        {"id": f"5f{n:022d}", "district": DISTRICT_ID, "name": ["not", "a", "name"]}
        for n in range(MAX_MALFORMED_RECORDS + extra)
    ]
    snapshot = write_snapshot(tmp_path / "s", records)
    code, record, stderr = _build(snapshot, tmp_path / "b")
    if not extra:
        assert code == 0, stderr
        assert record["findings"]["by_kind"]["malformed_record"]["count"] == MAX_MALFORMED_RECORDS
        return
    assert code == 3
    first = _line(snapshot, "terms", "5f" + "0" * 22)
    assert stderr == (
        f"error: {snapshot / 'terms.jsonl'}: not Clever terms records: more than {MAX_MALFORMED_RECORDS} of "
        f"them do not have Clever's field types (the first, line {first}: name is an array where Clever "
        "sends a string)\n"
    )
    assert not (tmp_path / "b").exists()
