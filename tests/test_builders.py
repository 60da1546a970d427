"""Each builder on the tiny district: the exact rows it writes and the findings it reports."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from clever2sis.clever.frames import load_district
from clever2sis.clever.snapshot import Snapshot
from clever2sis.config import RawConfig, build_settings
from clever2sis.sis import files
from clever2sis.sis.build import BuiltFiles, build_frames
from clever2sis.sis.builders.people import checked_email
from clever2sis.sis.emails import canvas_accepts_email
from clever2sis.sis.writer import csv_bytes
from tests.canvas_rules import canvas_messages


def built(snapshot: Path, **tables: dict[str, object]) -> BuiltFiles:
    settings = build_settings(RawConfig(data=tables))
    return build_frames(load_district(Snapshot.open(snapshot)), settings)


def csv_text(result: BuiltFiles, name: str) -> str:
    return csv_bytes(result.frames[name]).decode()


def messages(result: BuiltFiles, kind: str) -> list[str]:
    return result.findings.loc[result.findings["kind"] == kind, "message"].tolist()


def assert_canvas_accepts(result: BuiltFiles) -> None:
    """Nothing in the build would draw a message from Canvas's importer (tests/canvas_rules.py)."""
    assert canvas_messages(result.frames) == []


def test_accounts_one_per_school_under_the_root(tiny_snapshot: Path) -> None:
    assert csv_text(built(tiny_snapshot), files.ACCOUNTS) == (
        "account_id,parent_account_id,name,status\n"
        "5f00000000000000000000a1,,Alder High,active\n"
        "5f00000000000000000000b1,,Birch Middle,active\n"
    )


def test_account_ids_from_a_template_keep_the_clever_id_as_integration_id(tiny_snapshot: Path) -> None:
    result = built(
        tiny_snapshot,
        ids={"account_id": "school-{{ school.sis_id }}"},
        names={"account": "{{ school.name|upper }}"},
    )
    assert csv_text(result, files.ACCOUNTS) == (
        "account_id,parent_account_id,name,status,integration_id\n"
        "school-100,,ALDER HIGH,active,5f00000000000000000000a1\n"
        "school-200,,BIRCH MIDDLE,active,5f00000000000000000000b1\n"
    )


def test_terms_keyed_on_name_and_dates_and_same_names_told_apart(tiny_snapshot: Path) -> None:
    assert csv_text(built(tiny_snapshot), files.TERMS) == (
        "term_id,name,status,start_date,end_date\n"
        "2025-08-18_2026-06-12_year,Year (2025-08-18 – 2026-06-12),active,2025-08-18T00:00:00Z,2026-06-12T23:59:59Z\n"
        "2026-08-17_2027-01-15_semester-1,Semester 1,active,2026-08-17T00:00:00Z,2027-01-15T23:59:59Z\n"
        "2026-08-17_2027-06-11_year,Year (2026-08-17 – 2027-06-11),active,2026-08-17T00:00:00Z,2027-06-11T23:59:59Z\n"
    )


def test_term_dates_in_the_district_time_zone(tiny_snapshot: Path) -> None:
    text = csv_text(built(tiny_snapshot, build={"timezone": "America/Chicago"}), files.TERMS)
    assert "2026-08-17T00:00:00-05:00,2027-01-15T23:59:59-06:00" in text


def test_sections_without_a_term_go_to_the_configured_fallback(tiny_snapshot: Path) -> None:
    result = built(tiny_snapshot, terms={"fallback_term_id": "no-term", "fallback_term_name": "Undated"})
    assert "no-term,Undated,active,," in csv_text(result, files.TERMS)
    assert (
        "5f00000000000000000000e2,9002 P1,Homeroom - Lindqvist - 1,5f00000000000000000000b1,no-term,active"
        in (csv_text(result, files.COURSES))
    )
    assert messages(result, "section_without_term") == [
        "section 5f00000000000000000000e2 has no term; its course goes to fallback term 'no-term'"
    ]


def test_courses_one_per_section_by_default(tiny_snapshot: Path) -> None:
    result = built(tiny_snapshot)
    assert csv_text(result, files.COURSES) == (
        "course_id,short_name,long_name,account_id,term_id,status\n"
        "5f00000000000000000000e1,MA101 P2,Algebra I - Okafor - 2,5f00000000000000000000a1,"
        "2026-08-17_2027-06-11_year,active\n"
        "5f00000000000000000000e2,9002 P1,Homeroom - Lindqvist - 1,5f00000000000000000000b1,,active\n"
        "5f00000000000000000000e3,9003 P5,Art - Okafor - 5,5f00000000000000000000a1,"
        "2026-08-17_2027-01-15_semester-1,active\n"
    )
    assert messages(result, "section_unknown_course") == [
        "section 5f00000000000000000000e3: course 5f00000000000000000000dd is not in the snapshot's courses; "
        "named from the section"
    ]


def test_course_structure_groups_sections_by_course_school_and_term(snapshot_factory) -> None:
    from tests.conftest import SCHOOL_B, tiny_district

    records = tiny_district()
    second = dict(
        records["sections"][0],
        id="5f00000000000000000000e4",
        name="Algebra I - Lindqvist - 3",
        period="3",
        teacher="5f0000000000000000000f02",
        teachers=["5f0000000000000000000f02"],
    )
    other_school = dict(
        second,
        id="5f00000000000000000000e5",
        name="Algebra I - Lindqvist - 4",
        sis_id="9005",
        school=SCHOOL_B,
    )
    records["sections"] += [second, other_school]
    result = built(snapshot_factory(records), build={"course_structure": "course"})
    assert csv_text(result, files.COURSES) == (
        "course_id,short_name,long_name,account_id,term_id,status\n"
        "5f00000000000000000000d1_5f00000000000000000000a1_2026-08-17_2027-06-11_year,MA101 (9001),Algebra I,"
        "5f00000000000000000000a1,2026-08-17_2027-06-11_year,active\n"
        "5f00000000000000000000d1_5f00000000000000000000b1_2026-08-17_2027-06-11_year,MA101 (9005),Algebra I,"
        "5f00000000000000000000b1,2026-08-17_2027-06-11_year,active\n"
        "5f00000000000000000000e2,9002,Homeroom - Lindqvist - 1,5f00000000000000000000b1,,active\n"
        "5f00000000000000000000e3,9003,Art - Okafor - 5,5f00000000000000000000a1,2026-08-17_2027-01-15_semester-1,"
        "active\n"
    )
    assert csv_text(result, files.SECTIONS) == (
        "section_id,course_id,name,status\n"
        "5f00000000000000000000e1,5f00000000000000000000d1_5f00000000000000000000a1_2026-08-17_2027-06-11_year,"
        "Algebra I - Okafor - 2,active\n"
        "5f00000000000000000000e2,5f00000000000000000000e2,Homeroom - Lindqvist - 1,active\n"
        "5f00000000000000000000e3,5f00000000000000000000e3,Art - Okafor - 5,active\n"
        "5f00000000000000000000e4,5f00000000000000000000d1_5f00000000000000000000a1_2026-08-17_2027-06-11_year,"
        "Algebra I - Lindqvist - 3,active\n"
        "5f00000000000000000000e5,5f00000000000000000000d1_5f00000000000000000000b1_2026-08-17_2027-06-11_year,"
        "Algebra I - Lindqvist - 4,active\n"
    )


def test_shared_course_codes_are_made_unique(snapshot_factory) -> None:
    from tests.conftest import tiny_district

    records = tiny_district()
    records["sections"].append(dict(records["sections"][0], id="5f00000000000000000000e5"))
    codes = built(snapshot_factory(records)).frames[files.COURSES]["short_name"].tolist()
    assert codes[0] == "MA101 P2 (5f00000000000000000000e1)"
    assert codes[-1] == "MA101 P2 (5f00000000000000000000e5)"


def test_users_once_each_with_login_rule_and_cleaned_names(tiny_snapshot: Path) -> None:
    result = built(tiny_snapshot)
    assert csv_text(result, files.USERS) == (
        "user_id,login_id,first_name,last_name,email,status\n"
        "5f0000000000000000000101,zobrien,Zoë,O'Brien,zoe@example.org,active\n"
        '5f0000000000000000000102,an@example.org,Nguyễn,"Văn, An",an@example.org,active\n'
        "5f0000000000000000000f01,cokafor,Chidi,Okafor,cokafor@example.org,active\n"
        "5f0000000000000000000f02,glindqvist,Greta,Lindqvist,glindqvist@example.org,active\n"
    )
    assert messages(result, "duplicate_login") == [
        "user 5f0000000000000000000102: login_id 'shared' (district_username) is shared by 2 users; sent with "
        "login_id 'an@example.org' instead",
        "user 5f0000000000000000000103: login_id 'shared' (district_username) is shared by 2 users, and no other "
        "login field is usable; left out",
    ]
    assert messages(result, "missing_login") == [
        "user 5f0000000000000000000104 has no usable login_id (district_username, email); left out"
    ]
    assert messages(result, "invalid_email") == [
        "user 5f0000000000000000000103: email 'not-an-email' is not a valid address; sent without an email"
    ]
    assert messages(result, "control_characters") == [
        "users.csv user_id 5f0000000000000000000101: control characters removed from first_name"
    ]


def test_users_sis_id_template_keeps_clever_id_and_auth_provider(tiny_snapshot: Path) -> None:
    result = built(
        tiny_snapshot, ids={"user_id": "{{ user.sis_id }}"}, build={"authentication_provider_id": "saml"}
    )
    lines = csv_text(result, files.USERS).splitlines()
    assert (
        lines[0]
        == "user_id,integration_id,login_id,authentication_provider_id,first_name,last_name,email,status"
    )
    assert lines[1] == "S0101,5f0000000000000000000101,zobrien,saml,Zoë,O'Brien,zoe@example.org,active"
    assert "5f00000000000000000000e1,5f00000000000000000000e1,S0101,student,active" in csv_text(
        result, files.ENROLLMENTS
    )


def test_email_check_is_canvas_rule_value_by_value() -> None:
    """checked_email sends the stripped value exactly where canvas_accepts_email (the rule, judged one value
    at a time in Python) takes it, it holds no control character and fits the 255 characters Canvas stores."""
    values = pd.Series(
        [
            *("a@b.co", " a@b.co ", "a b@c.de", "a@b@c.de", "a@.bc", "a@bc.", "@b.c", "a@b..c", "a@b.c.d"),
            *("a\u00a0b@c.de", "a@b\u2003c.de", "a\x0b@b.c", "a@b\x1c.c", "a@b.c\n", "a@b.c\u2028x"),
            *("ü@bä.example", "a@b.c\u200b", "a\x85b@c.de", "", " ", pd.NA, "a@b", '"john doe"@x.org'),
            *('"a\tb"@x.org', '"a\x01"@x.org', "x@" + "d" * 253, "x@" + "d" * 254, "a(b)@x.org"),
        ],
        dtype="string",
    )
    email, reason = checked_email(values)
    stripped = [None if value is pd.NA else value.strip() for value in values]
    sent = [
        value
        if value
        and canvas_accepts_email(value)
        and not re.search(r"[\x00-\x1f\x7f]", value)
        and len(value) <= 255
        else None
        for value in stripped
    ]
    assert [None if value is pd.NA else value for value in email] == sent
    assert (reason != "").tolist() == [
        bool(value) and value != kept for value, kept in zip(stripped, sent, strict=True)
    ]


def test_enrollments_primary_teacher_coteachers_and_left_out_users(tiny_snapshot: Path) -> None:
    result = built(tiny_snapshot, build={"coteacher_role": "ta"})
    assert csv_text(result, files.ENROLLMENTS) == (
        "course_id,section_id,user_id,role,status\n"
        "5f00000000000000000000e1,5f00000000000000000000e1,5f0000000000000000000101,student,active\n"
        "5f00000000000000000000e1,5f00000000000000000000e1,5f0000000000000000000102,student,active\n"
        "5f00000000000000000000e1,5f00000000000000000000e1,5f0000000000000000000f02,ta,active\n"
        "5f00000000000000000000e1,5f00000000000000000000e1,5f0000000000000000000f01,teacher,active\n"
        "5f00000000000000000000e2,5f00000000000000000000e2,5f0000000000000000000101,student,active\n"
        "5f00000000000000000000e2,5f00000000000000000000e2,5f0000000000000000000f02,teacher,active\n"
        "5f00000000000000000000e3,5f00000000000000000000e3,5f0000000000000000000102,student,active\n"
        "5f00000000000000000000e3,5f00000000000000000000e3,5f0000000000000000000f01,teacher,active\n"
    )
    assert messages(result, "enrollment_unknown_user") == [
        "section 5f00000000000000000000e1: student 5f0000000000000000000199 is not in the snapshot's users; "
        "enrollment left out"
    ]
    assert len(messages(result, "enrollment_user_not_built")) == 2


def test_user_roles_setting_leaves_staff_only_users_and_their_enrollments_out(tiny_snapshot: Path) -> None:
    result = built(tiny_snapshot, build={"user_roles": ["student"]})
    assert result.frames[files.USERS]["user_id"].tolist() == [
        "5f0000000000000000000101",
        "5f0000000000000000000102",
    ]
    assert set(result.frames[files.ENROLLMENTS]["role"]) == {"student"}


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        (
            {"build": {"course_structure": "term"}},
            "defaults: build.course_structure = 'term'; use one of: section, course",
        ),
        (
            {"build": {"colour": 1}},
            "defaults: unknown key build.colour; known keys: authentication_provider_id, "
            "coteacher_role, course_status, course_structure, login_id_fields, timezone, user_roles",
        ),
        (
            {"build": {"timezone": "Mars/Olympus"}},
            "defaults: build.timezone 'Mars/Olympus' is not a known time zone",
        ),
        ({"build": {"login_id_fields": []}}, "defaults: build.login_id_fields must not be empty"),
    ],
)
def test_bad_settings_name_the_key(tables: dict[str, object], message: str) -> None:
    from clever2sis.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        build_settings(RawConfig(data=tables))
    assert str(error.value) == message


def test_unknown_template_variable_names_the_setting(tiny_snapshot: Path) -> None:
    from clever2sis.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        built(tiny_snapshot, names={"course_long_name": "{{ section.colour }}"})
    assert str(error.value).startswith(
        "names.course_long_name: unknown template variable 'section.colour' in '{{ section.colour }}'; section has: id,"
    )


def test_example_config_documents_the_defaults() -> None:
    from pathlib import Path

    from clever2sis.config import load_raw_config

    example = build_settings(
        load_raw_config(Path(__file__).parents[1] / "samples" / "clever2sis.example.toml")
    )
    defaults = build_settings(RawConfig(data={}))
    assert {k: v for k, v in vars(example).items() if not k.startswith("config_")} == {
        k: v for k, v in vars(defaults).items() if not k.startswith("config_")
    }


def test_zip_members_read_back_with_zipfile_and_chunked_deflate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zipfile

    from clever2sis.sis import writer

    monkeypatch.setattr(writer, "ZIP_CHUNK_BYTES", 1 << 16)
    big = pd.DataFrame({"user_id": pd.Series([f"{i:024x}" for i in range(20_000)], dtype="string")})
    written = writer.write_csv(big, tmp_path / "users.csv")
    (tmp_path / "empty.csv").write_bytes(b"")
    writer.write_zip(
        [("users.csv", tmp_path / "users.csv"), ("empty.csv", tmp_path / "empty.csv")], tmp_path / "z.zip"
    )
    with zipfile.ZipFile(tmp_path / "z.zip") as archive:
        assert archive.testzip() is None
        assert [(i.filename, i.date_time, i.external_attr >> 16) for i in archive.infolist()] == [
            ("users.csv", (1980, 1, 1, 0, 0, 0), 0o100644),
            ("empty.csv", (1980, 1, 1, 0, 0, 0), 0o100644),
        ]
        assert archive.read("users.csv") == (tmp_path / "users.csv").read_bytes()
    assert written.rows == 20_000
    assert written.bytes == 8 + 20_000 * 25


def test_csv_quotes_only_what_needs_quoting() -> None:
    frame = pd.DataFrame(
        {
            "a": pd.Series(["x", "y,z", 'q"u', None, "é"], dtype="string"),
            "b": pd.Series(["1", "", "3\n4", "4", "5"], dtype="string"),
        }
    )
    assert csv_bytes(frame) == b'a,b\nx,1\n"y,z",\n"q""u","3\n4"\n,4\n\xc3\xa9,5\n'


def contact(uid: str, name: str, email: str, *links: tuple[str, str, str]) -> dict[str, object]:
    """A Clever contact (whole name in name.last) linked to (student, relationship, type) ..."""
    from tests.conftest import DISTRICT_ID

    return {
        "id": uid,
        "district": DISTRICT_ID,
        "name": {"first": "", "last": name},
        "email": email,
        "roles": {
            "contact": {
                "sis_id": "",
                "student_relationships": [
                    {"student": student, "relationship": relationship, "type": kind}
                    for student, relationship, kind in links
                ],
            }
        },
    }


def family_district() -> dict[str, list[dict[str, object]]]:
    """The tiny district plus contacts covering every observer rule."""
    from tests.conftest import tiny_district

    records = tiny_district()
    pat = records["users"][-1]
    pat["roles"]["contact"]["student_relationships"].append(  # type: ignore[index]
        {"student": "5f0000000000000000000101", "relationship": "Parent", "type": "Parent/Guardian"}
    )
    okafor = records["users"][4]
    okafor["roles"]["contact"] = {  # type: ignore[index]
        "student_relationships": [
            {"student": "5f0000000000000000000102", "relationship": "Aunt/Uncle", "type": "Parent/Guardian"}
        ]
    }
    guardian = ("Parent", "Parent/Guardian")
    records["users"] += [
        contact(
            "5f0000000000000000000c02",
            "Minh Nguyen",
            "AN@example.org",
            ("5f0000000000000000000102", *guardian),
        ),
        contact("5f0000000000000000000c03", "Sam Okafor", "", ("5f0000000000000000000101", *guardian)),
        contact(
            "5f0000000000000000000c04",
            "Rosa Pérez",
            "rosa@example.org",
            ("5f0000000000000000000104", *guardian),
        ),
        contact(
            "5f0000000000000000000c05",
            "Ola Gran",
            "gran@example.org",
            ("5f0000000000000000000101", "Grandparent", "Emergency"),
            ("5f0000000000000000000199", *guardian),
        ),
        contact(
            "5f0000000000000000000c06",
            "An Nguyen",
            "an2@example.org",
            ("5f0000000000000000000102", "Self", "Parent/Guardian"),
        ),
    ]
    return records


def test_observers_are_off_by_default(snapshot_factory) -> None:
    result = built(snapshot_factory(family_district()))
    assert files.USER_OBSERVERS not in result.frames
    assert "full_name" not in result.frames[files.USERS]
    assert messages(result, "contacts_not_built") == [
        "6 contact(s) are not built as Canvas users (parents as observers are a separate option)"
    ]


def test_contacts_become_observers_of_their_students(snapshot_factory) -> None:
    result = built(snapshot_factory(family_district()), observers={"enabled": True})
    assert csv_text(result, files.USERS) == (
        "user_id,login_id,first_name,last_name,full_name,email,status\n"
        "5f0000000000000000000101,zobrien,Zoë,O'Brien,,zoe@example.org,active\n"
        '5f0000000000000000000102,an@example.org,Nguyễn,"Văn, An",,an@example.org,active\n'
        "5f0000000000000000000c01,pat@example.org,,,Pat O'Brien,pat@example.org,active\n"
        "5f0000000000000000000f01,cokafor,Chidi,Okafor,,cokafor@example.org,active\n"
        "5f0000000000000000000f02,glindqvist,Greta,Lindqvist,,glindqvist@example.org,active\n"
    )
    assert csv_text(result, files.USER_OBSERVERS) == (
        "observer_id,student_id,status\n"
        "5f0000000000000000000c01,5f0000000000000000000101,active\n"
        "5f0000000000000000000f01,5f0000000000000000000102,active\n"
    )
    assert messages(result, "duplicate_login")[-1] == (
        "user 5f0000000000000000000c02: login_id 'AN@example.org' (observers.login_id) is already another "
        "user's login, and no other login field is usable; left out"
    )
    assert messages(result, "observer_missing_login") == [
        "contact 5f0000000000000000000c03 has no usable login_id (observers.login_id '{{ contact.email }}' "
        "renders empty); left out"
    ]
    assert messages(result, "observer_student_not_built") == [
        "contact 5f0000000000000000000c04: student 5f0000000000000000000104 is not in users.csv (see that "
        "user's findings, or the user_roles setting); link left out"
    ]
    assert messages(result, "observer_without_students") == [
        "contact 5f0000000000000000000c04: none of the students it observes is in users.csv; left out"
    ]
    assert messages(result, "observer_unknown_student") == [
        "contact 5f0000000000000000000c05: student 5f0000000000000000000199 is not a student in the "
        "snapshot's users; link left out"
    ]
    assert messages(result, "observer_self") == [
        "contact 5f0000000000000000000c06: the link to student 5f0000000000000000000102 would have the "
        "student observe themself (relationship 'Self'); link left out"
    ]
    assert messages(result, "observer_not_built") == [
        "contact 5f0000000000000000000c02 is not in users.csv (see its findings); link to student "
        "5f0000000000000000000102 left out",
        "contact 5f0000000000000000000c03 is not in users.csv (see its findings); link to student "
        "5f0000000000000000000101 left out",
    ]
    assert messages(result, "duplicate_observer_link") == [
        "contact 5f0000000000000000000c01: link to student 5f0000000000000000000101 is listed more than once "
        "(relationship 'Parent', type 'Parent/Guardian'); sent once"
    ]
    assert messages(result, "contacts_not_built") == [
        "2 contact(s) have no relationship of type Parent/Guardian to a student of the build"
    ]
    assert_canvas_accepts(result)


def test_observer_settings_types_ids_and_provider(snapshot_factory) -> None:
    result = built(
        snapshot_factory(family_district()),
        observers={
            "enabled": True,
            "relationship_types": ["Parent/Guardian", "Emergency"],
            "user_id": "parent-{{ contact.id }}",
            "login_id": "{{ contact.email|lower }}",
            "authentication_provider_id": "canvas",
        },
    )
    users = csv_text(result, files.USERS).splitlines()
    assert users[0] == (
        "user_id,integration_id,login_id,authentication_provider_id,first_name,last_name,full_name,email,status"
    )
    assert (
        users[1]
        == "5f0000000000000000000101,5f0000000000000000000101,zobrien,,Zoë,O'Brien,,zoe@example.org,active"
    )
    assert "parent-5f0000000000000000000c05,5f0000000000000000000c05,gran@example.org,canvas,,,Ola Gran," in (
        csv_text(result, files.USERS)
    )
    assert (
        "parent-5f0000000000000000000c05,5f0000000000000000000101,active"
        in csv_text(result, files.USER_OBSERVERS).splitlines()
    )
    assert_canvas_accepts(result)


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        (
            {"observers": {"relationship_types": ["Parent"]}},
            "defaults: observers.relationship_types = 'Parent'; use one of: Parent/Guardian, Emergency, "
            "Primary, Secondary, Family, Other",
        ),
        ({"observers": {"enabled": "yes"}}, "defaults: observers.enabled must be a bool, not 'yes'"),
    ],
)
def test_bad_observer_settings_name_the_key(tables: dict[str, object], message: str) -> None:
    from clever2sis.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        build_settings(RawConfig(data=tables))
    assert str(error.value) == message


def test_observer_templates_see_only_the_contact() -> None:
    from clever2sis.errors import ConfigError
    from clever2sis.sis.builders import check_templates

    with pytest.raises(ConfigError) as error:
        check_templates(build_settings(RawConfig(data={"observers": {"login_id": "{{ user.email }}"}})))
    assert str(error.value) == (
        "observers.login_id: unknown template variable 'user' in '{{ user.email }}'; available here: contact"
    )


def test_control_character_scan_handles_chunked_and_categorical_columns() -> None:
    import pyarrow as pa

    from clever2sis.sis.validate import clean_control_characters

    chunked = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([["ok", "fine"], ["bad\x00", "ok"]])))
    frame = pd.DataFrame(
        {
            "user_id": pd.Series(["u1", "u2", "u3", "u4"], dtype="string"),
            "first_name": chunked,
            "role": pd.Series(pd.Categorical(["a", "b\t", "a", "a"])),
        }
    )
    cleaned, found = clean_control_characters("users.csv", frame)
    assert cleaned["first_name"].tolist() == ["ok", "fine", "bad", "ok"]
    assert cleaned["role"].tolist() == ["a", "b", "a", "a"]
    assert found["message"].tolist() == [
        "users.csv user_id u2: control characters removed from role",
        "users.csv user_id u3: control characters removed from first_name",
    ]


def test_write_csv_renders_in_small_chunks_and_raises_what_the_writing_thread_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clever2sis.sis import writer

    monkeypatch.setattr(writer, "CSV_ROWS_PER_CHUNK", 7)
    monkeypatch.setattr(writer, "CSV_CHUNKS_AHEAD", 2)
    frame = pd.DataFrame({"a": pd.Series([f"x{i}" for i in range(100)], dtype="string"), "b": "y,z"})
    seen: list[bytes] = []
    written = writer.write_csv(frame, tmp_path / "f.csv", also=lambda chunk: seen.append(bytes(chunk)))
    expected = "a,b\n" + "".join(f'x{i},"y,z"\n' for i in range(100))
    assert (tmp_path / "f.csv").read_text() == expected == b"".join(seen).decode()
    assert (written.rows, written.bytes) == (100, len(expected))

    def refuse(chunk: bytes | memoryview) -> None:
        if len(seen) > 3:
            raise OSError("disk full")
        seen.append(bytes(chunk))

    seen.clear()
    with pytest.raises(OSError, match="disk full"):
        writer.write_csv(frame, tmp_path / "g.csv", also=refuse)


def test_control_character_scan_sees_every_control_byte_and_nothing_else() -> None:
    from clever2sis.sis.validate import _may_hold_control_characters

    for code in [*range(0x20), 0x7F]:
        assert _may_hold_control_characters(pd.Series(["fine", f"x{chr(code)}y"], dtype="string"))
    clean = "".join(chr(c) for c in range(0x20, 0x7F)) + "é€𝒜\u0080\u00ff"
    assert not _may_hold_control_characters(pd.Series([clean, "", pd.NA], dtype="string"))
    many_blocks = pd.Series(["x" * 1000] * 3000 + ["y\x7f"], dtype="string")  # past the first scan block
    assert _may_hold_control_characters(many_blocks)
