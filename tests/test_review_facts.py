"""The review facts of two builds of the demo district, pinned as golden JSON, and what removals do."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from clever2sis.canvas.sis_import import ImportOptions
from clever2sis.errors import ReviewError
from clever2sis.review.facts import diff_builds, open_build, removal_consequences, review_facts
from tests.review_district import Changes

GOLDEN = Path(__file__).parent / "golden" / "review_facts.json"


def stable_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """The facts without what names where and when (directories, build times)."""
    out = dict(facts)
    build_path = facts["build"]["path"]
    for side in ("build", "against"):
        if out.get(side):
            entry = {k: v for k, v in out[side].items() if k not in ("path", "built_at")}
            entry["snapshot"] = {k: v for k, v in entry["snapshot"].items() if k != "path"}
            out[side] = entry
    out["signoff"] = {
        **facts["signoff"],
        "command": facts["signoff"]["command"].replace(build_path, "BUILD_DIR"),
    }
    return out


def demo_facts(pair: tuple[Path, Path, Changes]) -> dict[str, Any]:
    old, new, _ = pair
    return review_facts(open_build(new), open_build(old))


def test_demo_review_facts_match_the_golden_file(review_pair: tuple[Path, Path, Changes]) -> None:
    facts = stable_facts(demo_facts(review_pair))
    assert facts == orjson.loads(GOLDEN.read_bytes()), "run `make golden` after an intended change"


def test_each_change_of_the_night_is_in_the_diff(review_pair: tuple[Path, Path, Changes]) -> None:
    changes = review_pair[2]
    facts = demo_facts(review_pair)
    users = facts["diff"]["users.csv"]
    assert [row["user_id"] for row in users["rows"]["added"]] == [changes.arriving]
    assert users["rows"]["added"][0]["login_id"] == "amara.okonkwo9001"
    assert [row["user_id"] for row in users["rows"]["removed"]] == [changes.leaving]
    by_user = {row["key"]["user_id"]: row["changes"] for row in users["rows"]["changed"]}
    assert by_user[changes.renamed] == [{"field": "last_name", "old": "Carter", "new": changes.new_last_name}]
    assert by_user[changes.moved] == [
        {
            "field": "schools",
            "old": "661fd5e0956a26afbc4a057d",
            "new": "664bc7e0956a26afbc4a057e",
            "old_names": "Sotomayor Middle School",
            "new_names": "Carver High School",
        }
    ]
    sections = {
        row["key"]["section_id"]: row["changes"][0]
        for row in facts["diff"]["sections.csv"]["rows"]["changed"]
    }
    assert sections[changes.retaught_section]["old"] == changes.old_teacher
    assert sections[changes.retaught_section]["new"] == changes.new_teacher
    cotaught = sections[changes.cotaught_section]
    assert cotaught["new"].split() == sorted([cotaught["old"], changes.coteacher])
    assert facts["highlights"] == {
        "users_added": 1,
        "users_removed": 1,
        "name_changes": 1,
        "login_changes": 0,
        "school_changes": 1,
        "teacher_changes": 2,
        "enrollments_added": 13,
        "enrollments_removed": 15,
    }
    enrollments = facts["diff"]["enrollments.csv"]
    assert enrollments["key"] == ["section_id", "user_id", "role"]
    removed_users = {row["user_id"] for row in enrollments["rows"]["removed"]}
    assert removed_users == {changes.leaving, changes.moved, changes.old_teacher}
    added = {(row["user_id"], row["role"]) for row in enrollments["rows"]["added"]}
    assert (changes.coteacher, "teacher") in added
    assert (changes.new_teacher, "teacher") in added
    assert all(row["user_name"] for row in enrollments["rows"]["added"])


def test_without_an_older_build_there_is_no_diff(review_pair: tuple[Path, Path, Changes]) -> None:
    facts = review_facts(open_build(review_pair[1]))
    assert facts["against"] is None
    assert facts["diff"] is None
    assert facts["counts"]["files"]["enrollments.csv"] == 4168


def consequences(pair: tuple[Path, Path, Changes], **options: Any) -> dict[str, Any]:
    old, new = open_build(pair[0]), open_build(pair[1])
    return removal_consequences(diff_builds(old, new), old, new, ImportOptions(**options))


def test_removals_change_nothing_without_diffing_or_batch_mode(
    review_pair: tuple[Path, Path, Changes],
) -> None:
    result = consequences(review_pair)
    assert result["mode"] == "full"
    assert result["files"]["enrollments.csv"] == {
        "removed": 15,
        "affected": 0,
        "status": None,
        "effect": "left as it is in Canvas: nothing sends a removal",
        "aborts_import": False,
    }


def test_diffing_defaults_to_deleted(review_pair: tuple[Path, Path, Changes]) -> None:
    result = consequences(review_pair, diffing_data_set_identifier="clever:demo")
    assert result["mode"] == "diffing"
    assert result["files"]["enrollments.csv"]["status"] == "deleted"
    assert result["files"]["enrollments.csv"]["affected"] == 15
    assert result["files"]["users.csv"]["status"] == "deleted"
    assert result["files"]["users.csv"]["effect"].startswith("login deleted")


def test_diffing_uses_the_drop_and_user_remove_statuses(review_pair: tuple[Path, Path, Changes]) -> None:
    result = consequences(
        review_pair,
        diffing_data_set_identifier="clever:demo",
        diffing_drop_status="inactive",
        diffing_user_remove_status="suspended",
        skip_deletes=True,
    )
    assert result["files"]["enrollments.csv"]["status"] == "inactive"
    assert result["files"]["enrollments.csv"]["affected"] == 15
    assert result["files"]["users.csv"]["effect"] == "user suspended: cannot log in; enrollments kept"


def test_skip_deletes_ignores_deleted_rows(review_pair: tuple[Path, Path, Changes]) -> None:
    result = consequences(review_pair, diffing_data_set_identifier="clever:demo", skip_deletes=True)
    assert result["files"]["users.csv"]["affected"] == 0
    assert "skip_deletes" in result["files"]["users.csv"]["effect"]


def test_diffing_thresholds_mean_the_whole_file_is_applied(review_pair: tuple[Path, Path, Changes]) -> None:
    rows = consequences(review_pair, diffing_data_set_identifier="clever:demo", diff_row_count_threshold=10)
    assert rows["files"]["enrollments.csv"]["affected"] == 0
    assert "28 diff rows exceed diff_row_count_threshold 10" in rows["files"]["enrollments.csv"]["effect"]
    assert rows["files"]["users.csv"]["affected"] == 1
    remaster = consequences(
        review_pair, diffing_data_set_identifier="clever:demo", diffing_remaster_data_set=True
    )
    assert all(entry["affected"] == 0 for entry in remaster["files"].values())


def test_batch_mode_removes_courses_sections_and_enrollments_of_the_term_only(
    review_pair: tuple[Path, Path, Changes],
) -> None:
    result = consequences(
        review_pair,
        batch_mode=True,
        batch_mode_term_id="sis_term_id:2026-08-17_2027-06-11_year",
        change_threshold=50,
        batch_mode_enrollment_drop_status="completed",
    )
    assert result["mode"] == "batch"
    enrollments = result["files"]["enrollments.csv"]
    assert enrollments["status"] == "completed"
    assert enrollments["affected"] == 13  # the other two are in courses of other terms
    assert result["files"]["users.csv"]["affected"] == 0
    assert "never removes users" in result["files"]["users.csv"]["effect"]
    every_term = consequences(review_pair, multi_term_batch_mode=True, batch_mode=True, change_threshold=1)
    assert every_term["files"]["enrollments.csv"]["affected"] == 15  # 15 of 4,170 is under 1%


def test_a_changed_zip_is_not_reviewed(review_pair: tuple[Path, Path, Changes], tmp_path: Path) -> None:
    copy = shutil.copytree(review_pair[1], tmp_path / "copy")
    with (copy / "sis_import.zip").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ReviewError, match="sha256 does not match"):
        open_build(copy)
    with pytest.raises(ReviewError, match="no such build directory"):
        open_build(tmp_path / "missing")
