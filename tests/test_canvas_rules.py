"""The built files as Canvas's importer would take them (canvas-lms lib/sis/csv/csv_base_importer.rb,
lib/sis/csv/import_refactored.rb; every rule: docs/canvas-rules.md).

Canvas decides a file's type from its header alone, testing each importer's predicate in a fixed order;
a stray column can make a courses file look like a terms file. These tests run that detection (restated
from the spec in tests/canvas_rules.py) over every file of builds made with the settings that change headers.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from clever2sis.config import RawConfig, build_settings
from clever2sis.sis.build import build
from tests.canvas_rules import FILE_TYPES, detect

SETTINGS = [
    {},
    {"build": {"course_structure": "course", "authentication_provider_id": "saml"}},
    {
        "ids": {
            "user_id": "{{ user.sis_id }}",
            "section_id": "S{{ section.sis_id }}",
            "account_id": "{{ school.sis_id }}",
            "course_id": "C{{ section.id }}",
        }
    },
]


@pytest.mark.parametrize("tables", SETTINGS)
def test_every_file_is_detected_as_its_type_and_follows_the_format_rules(
    tiny_snapshot: Path, tmp_path: Path, tables: dict[str, object]
) -> None:
    build(tiny_snapshot, tmp_path / "b", build_settings(RawConfig(data=tables)))
    with zipfile.ZipFile(tmp_path / "b" / "sis_import.zip") as archive:
        assert archive.namelist() == [
            "accounts.csv",
            "terms.csv",
            "courses.csv",
            "sections.csv",
            "users.csv",
            "enrollments.csv",
        ]
        for name in archive.namelist():
            data = archive.read(name)
            assert not data.startswith(b"\xef\xbb\xbf"), f"{name} has a BOM"
            text = data.decode("utf-8")
            rows = list(csv.reader(io.StringIO(text, newline="")))
            header = rows[0]
            assert detect(pd.Index(header)) == FILE_TYPES[name], (name, header)
            assert header == [column.strip() for column in header]
            assert len(rows) > 1, f"{name} is header-only"
            assert all(len(row) == len(header) for row in rows), name
            assert "\x00" not in text
            if "status" in header:
                statuses = {row[header.index("status")] for row in rows[1:]}
                assert statuses <= {"active", "deleted", "completed", "inactive", "suspended", "published"}
                assert statuses == {s.lower() for s in statuses}


def test_accounts_file_always_has_parent_account_id(tiny_snapshot: Path, tmp_path: Path) -> None:
    build(tiny_snapshot, tmp_path / "b", build_settings(RawConfig(data={})))
    header = (tmp_path / "b" / "csv" / "accounts.csv").read_text().splitlines()[0].split(",")
    assert "parent_account_id" in header


def test_term_dates_are_iso_8601_with_a_zone(tiny_snapshot: Path, tmp_path: Path) -> None:
    import re

    build(
        tiny_snapshot, tmp_path / "b", build_settings(RawConfig(data={"build": {"timezone": "Asia/Kolkata"}}))
    )
    rows = list(csv.DictReader((tmp_path / "b" / "csv" / "terms.csv").open(encoding="utf-8")))
    for row in rows:
        for column in ("start_date", "end_date"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", row[column]), row
    assert rows[0]["start_date"] == "2025-08-18T00:00:00+05:30"
