"""Names, roles and schools beside the ids of findings and changes, checked against the snapshot itself."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from clever2sis.clever.snapshot import Snapshot
from clever2sis.config import RawConfig, build_settings
from clever2sis.review.facts import open_build, review_facts
from clever2sis.review.names import (
    NOT_IN_SNAPSHOT,
    SNAPSHOT_CHANGED,
    SNAPSHOT_MISSING,
    SNAPSHOT_NOT_READ,
    SNAPSHOT_READ,
)
from clever2sis.sis.build import build
from tests.conftest import drop_columnar, tiny_district, write_snapshot
from tests.review_district import Changes


def records_of(snapshot: Path, collection: str) -> dict[str, dict[str, Any]]:
    return {record["id"]: record for record in Snapshot.open(snapshot).iter_records(collection)}


def items(facts: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = facts["findings"]["by_kind"][kind]["items"]
    return found


@pytest.fixture(scope="module")
def demo_facts(review_pair: tuple[Path, Path, Changes]) -> dict[str, Any]:
    old, new, _ = review_pair
    return review_facts(open_build(new), open_build(old))


def test_a_user_left_out_of_users_csv_is_named_from_the_snapshot(
    review_pair: tuple[Path, Path, Changes], demo_facts: dict[str, Any]
) -> None:
    snapshot = Path(demo_facts["build"]["snapshot"]["path"])
    users, sections, schools = (records_of(snapshot, c) for c in ("users", "sections", "schools"))
    built = {row.split(",")[0] for row in (review_pair[1] / "csv" / "users.csv").read_text().splitlines()}
    assert demo_facts["names"] == {"status": SNAPSHOT_READ, "detail": ""}
    left_out = items(demo_facts, "enrollment_user_not_built")
    assert len(left_out) == 6
    for item in left_out:
        user = users[item["record_id"]]
        assert item["record_id"] not in built
        assert item["found_in"] == "snapshot"
        assert item["name"] == f"{user['name']['first']} {user['name']['last']}"
        assert item["role"] == "student"
        assert item["school"] == schools[user["roles"]["student"]["school"]]["name"]
        assert item["school_ids"] == user["roles"]["student"]["school"]
        section = sections[item["section_id"]]
        assert item["record_id"] in section["students"]
        assert item["section"] == section["name"]
        assert item["message"].startswith(f"section {item['section_id']}: ")


def test_a_user_clever_did_not_send_is_not_in_the_snapshot(demo_facts: dict[str, Any]) -> None:
    snapshot = Path(demo_facts["build"]["snapshot"]["path"])
    users, sections, schools = (records_of(snapshot, c) for c in ("users", "sections", "schools"))
    [item] = items(demo_facts, "enrollment_unknown_user")
    assert item["record_id"] not in users
    assert (item["name"], item["role"], item["found_in"]) == ("", "", NOT_IN_SNAPSHOT)
    section = sections[item["section_id"]]
    assert item["record_id"] in section["students"]
    assert (item["section"], item["school"]) == (section["name"], schools[section["school"]]["name"])


def test_built_users_sections_and_the_district_are_named_from_the_build(demo_facts: dict[str, Any]) -> None:
    snapshot = Path(demo_facts["build"]["snapshot"]["path"])
    users, sections = records_of(snapshot, "users"), records_of(snapshot, "sections")
    schools = records_of(snapshot, "schools")
    [email] = items(demo_facts, "invalid_email")
    assert email["name"] == "Imani Williams"
    assert list(users[email["record_id"]]["roles"]) == ["staff"]
    assert (email["role"], email["found_in"]) == ("staff", "build")
    for item in items(demo_facts, "section_without_term"):
        section = sections[item["record_id"]]
        assert (item["school"], item["school_ids"]) == (schools[section["school"]]["name"], section["school"])
    [district] = items(demo_facts, "contacts_not_built")
    assert district["name"] == "Sierra Vista Unified School District"


def test_removed_and_changed_rows_show_names_roles_and_schools(
    review_pair: tuple[Path, Path, Changes], demo_facts: dict[str, Any]
) -> None:
    changes = review_pair[2]
    users = demo_facts["diff"]["users.csv"]["rows"]
    [removed] = users["removed"]
    assert (removed["user_id"], removed["name"], removed["role"]) == (
        changes.leaving,
        "Emily Thomas",
        "student",
    )
    assert (removed["school"], removed["school_ids"]) == (
        "Sotomayor Middle School",
        "661fd5e0956a26afbc4a057d",
    )
    moved = next(row for row in users["changed"] if row["key"]["user_id"] == changes.moved)
    assert moved["context"] == {
        "name": "Jack Evans",
        "role": "student",
        "school": "Carver High School",
        "school_ids": "664bc7e0956a26afbc4a057e",
    }
    enrollments = demo_facts["diff"]["enrollments.csv"]["rows"]["removed"]
    teacher = next(row for row in enrollments if row["user_id"] == changes.old_teacher)
    assert (teacher["user_name"], teacher["role"], teacher["school"]) == (
        "Yuki 高橋",
        "teacher",
        "Carver High School",
    )
    sections = demo_facts["diff"]["sections.csv"]["rows"]["changed"]
    assert {row["context"]["school"] for row in sections} == {"Carver High School"}


def test_without_its_snapshot_a_review_says_so(
    review_pair: tuple[Path, Path, Changes], tmp_path: Path
) -> None:
    old, new, _ = review_pair
    copy = shutil.copytree(new, tmp_path / "new")
    record = orjson.loads((copy / "build.json").read_bytes())
    record["snapshot"]["path"] = str(tmp_path / "gone")
    (copy / "build.json").write_bytes(orjson.dumps(record))
    facts = review_facts(open_build(copy), open_build(old))
    assert facts["names"]["status"] == SNAPSHOT_MISSING
    assert facts["names"]["detail"].startswith(f"the snapshot could not be opened: {tmp_path / 'gone'}")
    [missing] = items(facts, "missing_login")
    assert (missing["name"], missing["found_in"]) == ("", SNAPSHOT_NOT_READ)
    [email] = items(facts, "invalid_email")
    assert (email["name"], email["role"]) == ("Imani Williams", "")  # in users.csv; no enrollment to say more


def test_a_snapshot_changed_since_the_build_is_not_read(
    review_pair: tuple[Path, Path, Changes], tmp_path: Path
) -> None:
    new = review_pair[1]
    copy = shutil.copytree(new, tmp_path / "new")
    record = orjson.loads((copy / "build.json").read_bytes())
    record["snapshot"]["manifest_sha256"] = "0" * 64
    (copy / "build.json").write_bytes(orjson.dumps(record))
    facts = review_facts(open_build(copy))
    assert facts["names"]["status"] == SNAPSHOT_CHANGED
    assert items(facts, "missing_login")[0]["found_in"] == SNAPSHOT_NOT_READ


def test_a_snapshot_without_a_columnar_copy_gives_the_same_names(
    review_pair: tuple[Path, Path, Changes], demo_facts: dict[str, Any], tmp_path: Path
) -> None:
    snapshot = shutil.copytree(demo_facts["build"]["snapshot"]["path"], tmp_path / "snapshot")
    drop_columnar(snapshot)
    copy = shutil.copytree(review_pair[1], tmp_path / "new")
    record = orjson.loads((copy / "build.json").read_bytes())
    record["snapshot"]["path"] = str(snapshot)
    record["snapshot"]["manifest_sha256"] = Snapshot.open(snapshot).manifest_sha256
    (copy / "build.json").write_bytes(orjson.dumps(record))
    facts = review_facts(open_build(copy), open_build(review_pair[0]))
    assert facts["names"]["status"] == SNAPSHOT_READ
    assert facts["findings"] == demo_facts["findings"]


def test_templated_ids_are_matched_to_clever_ids_by_integration_id(tmp_path: Path) -> None:
    config = {
        "ids": {
            "user_id": "u-{{ user.id }}",
            "account_id": "a-{{ school.id }}",
            "section_id": "s-{{ section.id }}",
        }
    }
    settings = build_settings(RawConfig(data=config))
    records = tiny_district()
    build(write_snapshot(tmp_path / "s", records), tmp_path / "b", settings)
    facts = review_facts(open_build(tmp_path / "b"))
    users = {user["id"]: user for user in records["users"]}
    built, left_out = items(facts, "duplicate_login")
    assert (built["found_in"], left_out["found_in"]) == ("build", "snapshot")
    for item in (built, left_out):
        user = users[item["record_id"]]
        assert item["name"] == f"{user['name']['first']} {user['name']['last']}"
        assert item["school_ids"] == f"a-{user['roles']['student']['school']}"
    [cleaned] = items(facts, "control_characters")  # names the Canvas user_id
    assert cleaned["record_id"] == "u-5f0000000000000000000101"
    assert (cleaned["name"], cleaned["found_in"]) == ("Zoë O'Brien", "build")
    [course] = items(facts, "section_unknown_course")
    section = next(s for s in records["sections"] if s["id"] == course["record_id"])
    assert (course["name"], course["school_ids"]) == (section["name"], f"a-{section['school']}")
    assert course["school"] == "Alder High"
