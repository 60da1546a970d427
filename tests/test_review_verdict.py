"""The verdict: what needs a decision before sign-off, in words, by the documented rules."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from clever2sis.canvas.sis_import import ImportOptions
from clever2sis.config import RawConfig, build_settings
from clever2sis.review.facts import open_build, review_facts
from clever2sis.review.verdict import FINDING_LINES, MESSAGE_KINDS, RULES, verdict
from clever2sis.sis.build import build
from clever2sis.sis.checks import CHECKS
from tests import documentation
from tests.conftest import DISTRICT_ID, SCHOOL_A, student, teacher, write_snapshot
from tests.review_district import Changes

DEMO_DECISIONS = [
    ("1 value held control characters: removed", "finding-control_characters"),
    ("1 login is taken by 2 students", "finding-duplicate_login"),
    ("1 enrollment names a user Clever did not send: left out", "finding-enrollment_unknown_user"),
    ("6 enrollments are left out: their users are not in users.csv", "finding-enrollment_user_not_built"),
    ("1 staff member has an email address that is not valid: sent without one", "finding-invalid_email"),
    ("1 student has no usable login: left out", "finding-missing_login"),
    (
        "1 section names a course Clever did not send: named from the section",
        "finding-section_unknown_course",
    ),
    (
        "1 section names a term Clever did not send: its course goes to the default term",
        "finding-section_unknown_term",
    ),
]
DEMO_INFORMATION = [
    ("1 student is no longer sent; Canvas keeps them as they are", "diff-users-removed"),
    ("15 enrollments are no longer sent; Canvas keeps them as they are", "diff-enrollments-removed"),
    ("1 student added", "diff-users-added"),
    ("1 name changed", "diff-users-changed"),
    ("1 student moved school", "diff-users-changed"),
    ("13 enrollments added", "diff-enrollments-added"),
    ("2 sections have a new or added teacher", "diff-sections-changed"),
    (
        "578 contact(s) are not built as Canvas users (parents as observers are a separate option)",
        "finding-contacts_not_built",
    ),
    ("2 sections have no course: named from the section", "finding-section_without_course"),
    ("6 sections have no term: their courses go to the default term", "finding-section_without_term"),
]


def facts_of(pair: tuple[Path, Path, Changes], **options: Any) -> dict[str, Any]:
    old, new, _ = pair
    return review_facts(open_build(new), open_build(old), options=ImportOptions(**options))


def lines(facts: dict[str, Any], part: str) -> list[tuple[str, str]]:
    return [(line["text"], line["anchor"]) for line in facts["verdict"][part]]


def test_the_demo_night_needs_a_decision_on_each_warning(review_pair: tuple[Path, Path, Changes]) -> None:
    facts = facts_of(review_pair)
    assert facts["verdict"]["ready"] is False
    assert facts["verdict"]["headline"] == "Not ready to sign off: 8 things need a decision."
    assert lines(facts, "needs_decision") == DEMO_DECISIONS
    assert lines(facts, "for_information") == DEMO_INFORMATION
    # Each count is the count of what its table lists.
    by_anchor = {line["anchor"]: line["count"] for line in facts["verdict"]["needs_decision"]}
    for kind, entry in facts["findings"]["by_kind"].items():
        if entry["severity"] == "warning":
            assert by_anchor[f"finding-{kind}"] == len(entry["items"])


def test_the_shared_login_is_counted_once_with_its_holders(review_pair: tuple[Path, Path, Changes]) -> None:
    facts = facts_of(review_pair)
    items = facts["findings"]["by_kind"]["duplicate_login"]["items"]
    assert len({re.search(r"login_id '([^']*)'", item["message"]).group(1) for item in items}) == 1  # type: ignore[union-attr]
    assert [item["role"] for item in items] == ["student", "student"]


def test_removals_canvas_acts_on_need_a_decision(review_pair: tuple[Path, Path, Changes]) -> None:
    facts = facts_of(
        review_pair,
        diffing_data_set_identifier="clever:demo",
        diffing_drop_status="inactive",
        diffing_user_remove_status="suspended",
    )
    decisions = lines(facts, "needs_decision")
    assert decisions[:2] == [
        ("1 student would be suspended", "diff-users-removed"),
        ("15 enrollments would be made inactive", "diff-enrollments-removed"),
    ]
    assert facts["verdict"]["headline"] == "Not ready to sign off: 10 things need a decision."
    assert not any(rule == "kept_in_canvas" for rule, _ in _rules(facts, "for_information"))
    concluded = facts_of(
        review_pair,
        batch_mode=True,
        batch_mode_term_id="sis_term_id:2026-08-17_2027-06-11_year",
        batch_mode_enrollment_drop_status="completed",
    )
    assert lines(concluded, "needs_decision")[0] == (
        "13 enrollments would be concluded",
        "diff-enrollments-removed",
    )
    assert ("1 student is no longer sent; Canvas keeps them as they are", "diff-users-removed") in lines(
        concluded, "for_information"
    )


def _rules(facts: dict[str, Any], part: str) -> list[tuple[str, str]]:
    return [(line["rule"], line["text"]) for line in facts["verdict"][part]]


def test_an_aborted_batch_import_needs_a_decision(review_pair: tuple[Path, Path, Changes]) -> None:
    facts = facts_of(review_pair, batch_mode=True, multi_term_batch_mode=True, change_threshold=0)
    aborted = [text for rule, text in _rules(facts, "needs_decision") if rule == "aborted"]
    # In scope: the older build's enrollments in courses of a term the new build sends.
    old = open_build(review_pair[0]).frames
    terms = set(open_build(review_pair[1]).frames["terms.csv"]["term_id"])
    course_terms = old["courses.csv"].set_index("course_id")["term_id"]
    in_scope = int(old["enrollments.csv"]["course_id"].map(course_terms).isin(terms).sum())
    assert in_scope == 4031
    assert aborted == [
        f"enrollments.csv: the import is aborted after its rows are applied: 15 of {in_scope} (0.4%) exceeds "
        "change_threshold 0%; nothing is removed"
    ]
    assert facts["removals"]["files"]["enrollments.csv"]["aborts_import"] is True


def clean_district() -> dict[str, list[dict[str, Any]]]:
    """One school, one section, a teacher and two students, nothing for a finding to say."""
    teacher_id, ada, bo = "5f0000000000000000000f01", "5f0000000000000000000101", "5f0000000000000000000102"
    return {
        "districts": [{"id": DISTRICT_ID, "name": "Clean District"}],
        "schools": [{"id": SCHOOL_A, "district": DISTRICT_ID, "name": "Alder High", "sis_id": "100"}],
        "terms": [
            {
                "id": "5f00000000000000000000c1",
                "district": DISTRICT_ID,
                "name": "Year",
                "start_date": "2026-08-17",
                "end_date": "2027-06-11",
            },
        ],
        "courses": [
            {
                "id": "5f00000000000000000000d1",
                "district": DISTRICT_ID,
                "name": "Algebra I",
                "number": "MA101",
            }
        ],
        "sections": [
            {
                "id": "5f00000000000000000000e1",
                "district": DISTRICT_ID,
                "school": SCHOOL_A,
                "name": "Algebra I - Okafor - 2",
                "sis_id": "9001",
                "period": "2",
                "course": "5f00000000000000000000d1",
                "term_id": "5f00000000000000000000c1",
                "teacher": teacher_id,
                "teachers": [teacher_id],
                "students": [ada, bo],
            },
        ],
        "users": [
            student(
                ada, "Ada", "Lovelace", school=SCHOOL_A, username="ada.lovelace", email="ada@example.org"
            ),
            student(bo, "Bo", "Chen", school=SCHOOL_A, username="bo.chen", email="bo@example.org"),
            teacher(
                teacher_id,
                "Ngozi",
                "Okafor",
                school=SCHOOL_A,
                username="ngozi.okafor",
                email="no@example.org",
            ),
        ],
    }


def test_a_clean_build_is_ready_to_sign_off(tmp_path: Path) -> None:
    settings = build_settings(RawConfig(data={}))
    build(write_snapshot(tmp_path / "s", clean_district()), tmp_path / "b1", settings)
    shutil.copytree(tmp_path / "b1", tmp_path / "b2")
    facts = review_facts(open_build(tmp_path / "b2"), open_build(tmp_path / "b1"))
    assert facts["findings"]["total"] == 0
    assert facts["verdict"] == {
        "ready": True,
        "headline": "Ready to sign off: nothing needs a decision.",
        "needs_decision": [],
        "for_information": [],
    }
    alone = review_facts(open_build(tmp_path / "b2"))
    assert alone["verdict"]["ready"] is True
    assert lines(alone, "for_information") == [
        (
            "No older build to compare with: this review cannot say what the import would change or remove",
            "changes",
        )
    ]


def test_a_login_change_needs_a_decision(tmp_path: Path) -> None:
    settings = build_settings(RawConfig(data={}))
    records = clean_district()
    build(write_snapshot(tmp_path / "s1", records), tmp_path / "b1", settings)
    records["users"][1]["roles"]["student"]["credentials"]["district_username"] = "bo.chen2"
    build(write_snapshot(tmp_path / "s2", records), tmp_path / "b2", settings)
    facts = review_facts(open_build(tmp_path / "b2"), open_build(tmp_path / "b1"))
    assert facts["verdict"]["needs_decision"] == [
        {
            "rule": "login_changes",
            "count": 1,
            "text": "1 student would sign in with a new login (login_id changed)",
            "anchor": "diff-users-changed",
        }
    ]
    assert facts["verdict"]["headline"] == "Not ready to sign off: 1 thing needs a decision."


def test_the_json_verdict_is_the_one_computed_from_the_facts(review_pair: tuple[Path, Path, Changes]) -> None:
    facts = orjson.loads(orjson.dumps(facts_of(review_pair)))
    assert verdict(facts) == facts["verdict"]


def test_the_docs_list_every_rule_as_the_library_declares_it() -> None:
    section = documentation.section(documentation.page("review"), "The verdict")
    rows = re.findall(r"^\| `([a-z_]+)` \| (needs a decision|for information) \|", section, re.MULTILINE)
    assert rows == [
        (rule.name, "needs a decision" if rule.needs_decision else "for information") for rule in RULES
    ]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_every_rule_reads_the_facts_without_an_older_build(
    rule: Any, review_pair: tuple[Path, Path, Changes]
) -> None:
    facts = review_facts(open_build(review_pair[1]))
    for line in rule.lines(facts):
        assert line.rule == rule.name
        assert line.text


def test_every_kind_of_finding_has_words() -> None:
    assert {check.kind for check in CHECKS} - set(FINDING_LINES) - MESSAGE_KINDS == {"duplicate_login"}
