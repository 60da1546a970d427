"""End to end: the demo district served by the local Clever server, pulled by ``clever2sis pull``.

The ``pulled_demo`` fixture gives the served snapshot and the pulled one, so further stages can be checked
on the pulled copy (for example that building it gives the same zip as building the served snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from clever2sis.clever.snapshot import COLLECTIONS, Snapshot
from clever2sis.cli import main
from tests.clever_server import CleverTestServer, district_from_snapshot

DEMO = Path(__file__).resolve().parents[1] / "samples" / "demo-district"
TOKEN = "e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0"

pytestmark = pytest.mark.skipif(not DEMO.is_dir(), reason=f"demo district not found at {DEMO}")


def dangling_in(snapshot: Snapshot) -> dict[str, int]:
    """Dangling references counted the slow, obvious way, to check the pull's count."""
    ids = {name: {r["id"] for r in snapshot.iter_records(name)} for name in COLLECTIONS}
    counts = dict.fromkeys(
        (
            "sections.students",
            "sections.teachers",
            "sections.teacher",
            "sections.course",
            "sections.term_id",
            "sections.school",
            "users.contact.student_relationships",
        ),
        0,
    )
    targets = {
        "students": "users",
        "teachers": "users",
        "teacher": "users",
        "course": "courses",
        "term_id": "terms",
        "school": "schools",
    }
    for section in snapshot.iter_records("sections"):
        for field, target in targets.items():
            value = section.get(field)
            for ref in value if isinstance(value, list) else [value] if value else []:
                counts[f"sections.{field}"] += ref not in ids[target]
    for user in snapshot.iter_records("users"):
        for relationship in user["roles"].get("contact", {}).get("student_relationships", []):
            counts["users.contact.student_relationships"] += relationship["student"] not in ids["users"]
    return counts


@dataclass(frozen=True)
class PulledDemo:
    served: Snapshot
    pulled: Snapshot
    manifest: dict[str, object]
    stderr: str


@pytest.fixture(scope="module")
def pulled_demo(tmp_path_factory: pytest.TempPathFactory) -> PulledDemo:
    dest = tmp_path_factory.mktemp("e2e") / "pulled"
    with CleverTestServer(district_from_snapshot(DEMO), token=TOKEN) as server:
        result = CliRunner().invoke(
            main,
            ["pull", "--out", str(dest), "--page-size", "250", "--json"],
            env={"CLEVER_TOKEN": TOKEN, "CLEVER_API_BASE": server.url},
        )
    assert result.exit_code == 0, result.stderr
    return PulledDemo(Snapshot.open(DEMO), Snapshot.open(dest), orjson.loads(result.stdout), result.stderr)


def test_the_pulled_snapshot_holds_exactly_the_served_records(pulled_demo: PulledDemo) -> None:
    for name in COLLECTIONS:
        assert pulled_demo.pulled.read_bytes(name) == pulled_demo.served.read_bytes(name), name
        served_entry = pulled_demo.served.manifest["collections"][name]
        pulled_entry = pulled_demo.pulled.manifest["collections"][name]
        assert pulled_entry["sha256"] == served_entry["sha256"]


def test_the_pulled_columnar_copy_is_byte_for_byte_the_generated_one(pulled_demo: PulledDemo) -> None:
    assert pulled_demo.pulled.manifest["columnar"] == pulled_demo.served.manifest["columnar"]
    for name in COLLECTIONS:
        assert (pulled_demo.pulled.path / f"{name}.arrow").read_bytes() == (
            pulled_demo.served.path / f"{name}.arrow"
        ).read_bytes(), name


def test_the_manifest_describes_the_pull(pulled_demo: PulledDemo) -> None:
    manifest = pulled_demo.pulled.manifest
    assert manifest == pulled_demo.manifest
    assert manifest["district"] == pulled_demo.served.manifest["district"]
    assert manifest["source"] == "clever-api"
    assert manifest["api_version"] == "v3.0"
    assert manifest["pull"]["pages"]["users"] > 1
    assert manifest["dangling_references"] == dangling_in(pulled_demo.served)
    assert "snapshot complete" in pulled_demo.stderr


def test_building_the_pulled_snapshot_gives_the_same_zip_as_building_the_served_one(
    pulled_demo: PulledDemo, tmp_path: Path
) -> None:
    runner = CliRunner()
    for name, snapshot in (("served", pulled_demo.served), ("pulled", pulled_demo.pulled)):
        result = runner.invoke(main, ["build", str(snapshot.path), "--out", str(tmp_path / name), "--quiet"])
        assert result.exit_code == 0, result.stderr
    served = (tmp_path / "served" / "sis_import.zip").read_bytes()
    assert (tmp_path / "pulled" / "sis_import.zip").read_bytes() == served
    expected = Path(__file__).resolve().parents[1] / "samples" / "demo-district.expected" / "build.json"
    assert (
        orjson.loads((tmp_path / "pulled" / "build.json").read_bytes())["zip"]
        == orjson.loads(expected.read_bytes())["zip"]
    )
