"""The declared checks (clever2sis/sis/checks.py): each one made by some build of the tests, docs/build.md's
table of finding kinds generated from them, and the rules of a declaration."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from clever2sis.sis import checks, files
from clever2sis.sis.checks import CHECKS
from clever2sis.sis.findings import INFO, WARNING, Check
from clever2sis.sis.validate import check_references
from tests.documentation import page
from tests.test_admins import every_admin_finding
from tests.test_builders import family_district
from tests.test_finding_messages import SIS_IDS, findings_of, quirky_district, tiny_district
from tests.test_identities import identity_findings
from tests.test_importer_rules import OVERLONG_SETTINGS, overlong_district
from tests.test_malformed_records import with_bad_records
from tests.test_terms import keeping_findings

TABLE_HEADER = "| kind | severity | file | message |"


def pattern(check: Check) -> re.Pattern[str]:
    """What the check's messages look like: its template's text, anything where it names a value."""
    parts = re.split(r"\{[a-z_]+\}", check.message)
    return re.compile(".+?".join(re.escape(part) for part in parts), re.DOTALL)


def test_every_check_is_made_by_a_build_of_the_tests(snapshot_factory: Callable[..., Path]) -> None:
    """Each declared check, kind and message, is what some build gives (test_finding_messages.py and
    test_builders.py pin the exact texts)."""
    observed = findings_of(snapshot_factory(family_district()), {"observers": {"enabled": True}})
    observed += findings_of(snapshot_factory(family_district()), {})
    observed += findings_of(snapshot_factory(quirky_district()), {"ids": SIS_IDS})
    records = tiny_district()
    records["sections"].append(dict(records["sections"][0], id="e4", term_id="5f00000000000000000000c3"))
    id_map = pd.DataFrame(
        [
            ("course", "MA", "5f00000000000000000000d1"),
            ("user", "X", "nobody"),
            ("user", "A", "5f0000000000000000000f01"),
            ("user", "B", "5f0000000000000000000f01"),
        ],
        columns=["type", "old_id", "new_id"],
        dtype="string",
    )
    observed += findings_of(snapshot_factory(records), {"build": {"course_structure": "course"}}, id_map)
    observed += keeping_findings(snapshot_factory)
    observed += findings_of(snapshot_factory(with_bad_records()), {})
    observed += findings_of(snapshot_factory(overlong_district()), OVERLONG_SETTINGS)
    admin_records, admin_settings = every_admin_finding()
    observed += findings_of(snapshot_factory(admin_records), admin_settings)
    observed += identity_findings()
    frame = pd.DataFrame({"section_id": ["S1"], "course_id": ["C9"]}, dtype="string")
    _, dangling = check_references({files.SECTIONS: frame})
    observed += [tuple(row) for row in dangling.itertuples(index=False)]
    never_made = [
        check.message
        for check in CHECKS
        if not any(
            (kind, severity) == (check.kind, check.severity)
            and check.file in (None, file)
            and pattern(check).fullmatch(message)
            for kind, severity, file, _, message in observed
        )
    ]
    assert never_made == []


def kinds_table() -> list[str]:
    """docs/build.md's table of finding kinds, as the declarations give it: warnings first, then infos."""
    rows = [
        f"| `{check.kind}` | {check.severity} | {check.file or 'any file'} | {check.message} |"
        for check in sorted(CHECKS, key=lambda check: check.severity != WARNING)
    ]
    return [TABLE_HEADER, "|---|---|---|---|", *rows]


def documented_table() -> list[str]:
    lines = page("build").splitlines()
    start = lines.index(TABLE_HEADER)
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    return lines[start:end]


def test_the_docs_list_every_declared_kind_under_its_severity() -> None:
    documented = {tuple(cell.strip(" `") for cell in row.split("|")[1:3]) for row in documented_table()[2:]}
    declared = {(check.kind, check.severity) for check in CHECKS}
    assert sorted(declared - documented) == [], (
        "declared but not in docs/build.md (or under another severity)"
    )
    assert sorted(documented - declared) == [], (
        "in docs/build.md but not declared (or under another severity)"
    )


def test_the_documented_table_is_the_declarations() -> None:
    expected = "\n".join(kinds_table())
    assert "\n".join(documented_table()) == expected, (
        f"docs/build.md's table of finding kinds should read:\n{expected}"
    )


def test_a_kind_keeps_one_severity_and_a_message_names_plain_fields() -> None:
    severity = {check.kind: check.severity for check in CHECKS}
    assert all(check.severity == severity[check.kind] for check in CHECKS)
    assert {check.severity for check in CHECKS} == {WARNING, INFO}
    with pytest.raises(ValueError, match=r"^finding kind duplicate_login is declared both warning and info$"):
        checks._check("duplicate_login", INFO, files.USERS, "user {user}")
    with pytest.raises(ValueError, match=r"use plain \{name\} fields only"):
        Check("k", INFO, files.USERS, "user {user!r}")
    with pytest.raises(ValueError, match=r"use plain \{name\} fields only"):
        Check("k", INFO, files.USERS, "{user:>10}")
