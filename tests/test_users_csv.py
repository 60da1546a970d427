"""users.csv's declared columns (USERS_CSV): the header each setting gives, where each value comes from, and
a column added through the declaration alone (as docs/adding-a-column.md shows)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import product
from pathlib import Path

import pytest

from clever2sis.clever.frames import District, load_district
from clever2sis.clever.snapshot import Snapshot
from clever2sis.config import RawConfig, build_settings
from clever2sis.sis import files
from clever2sis.sis.builders.users import USERS_CSV, UsersColumn, build_users, user_columns
from clever2sis.sis.writer import csv_bytes
from tests.test_builders import family_district


@pytest.mark.parametrize(
    ("sis_ids", "provider", "observers"), list(product([False, True], ["", "saml"], [False, True]))
)
def test_the_header_each_setting_gives(sis_ids: bool, provider: str, observers: bool) -> None:
    settings = build_settings(
        RawConfig(
            data={
                "ids": {"user_id": "{{ user.sis_id }}" if sis_ids else "{{ user.id }}"},
                "build": {"authentication_provider_id": provider},
                "observers": {"enabled": observers},
            }
        )
    )
    expected = [
        "user_id",
        *(["integration_id"] if sis_ids else []),
        "login_id",
        *(["authentication_provider_id"] if provider else []),
        "first_name",
        "last_name",
        *(["full_name"] if observers else []),
        "email",
        "status",
    ]
    assert list(user_columns(settings)) == expected


def test_observer_settings_alone_add_integration_id_and_the_provider() -> None:
    settings = build_settings(
        RawConfig(
            data={
                "observers": {
                    "enabled": True,
                    "user_id": "p-{{ contact.id }}",
                    "authentication_provider_id": "canvas",
                }
            }
        )
    )
    assert user_columns(settings) == (
        "user_id",
        "integration_id",
        "login_id",
        "authentication_provider_id",
        "first_name",
        "last_name",
        "full_name",
        "email",
        "status",
    )


def test_the_default_header_is_the_one_files_names() -> None:
    """files.COLUMNS holds each file's header under the default settings (the review and sync read it for a
    build without that file): a column every build has belongs there too."""
    assert user_columns(build_settings(RawConfig(data={}))) == files.COLUMNS[files.USERS]


def test_a_source_must_be_a_value_the_build_makes_or_a_namespace_field() -> None:
    assert len({column.name for column in USERS_CSV}) == len(USERS_CSV)
    UsersColumn("x", user="user.grade", observer="contact.sis_id")
    with pytest.raises(
        ValueError, match=r"^users.csv column x: 'contact.name' is neither a value the build makes \("
    ):
        UsersColumn("x", user="contact.name")
    with pytest.raises(ValueError, match=r"contact\.grade") as error:
        UsersColumn("x", observer="contact.grade")
    assert str(error.value) == (
        "users.csv column x: 'contact.grade' is neither a value the build makes (clever_id, user_id, login_id, "
        "email) nor a field of the contact namespace (contact.id, contact.sis_id, contact.name, contact.email)"
    )


@pytest.fixture
def family(snapshot_factory: Callable[..., Path]) -> District:
    return load_district(Snapshot.open(snapshot_factory(family_district())))


def users_csv_text(district: District, tables: dict[str, object], table: tuple[UsersColumn, ...]) -> str:
    built = build_users(district, build_settings(RawConfig(data=tables)), table).built
    return csv_bytes(built.frame).decode()


# The example of docs/adding-a-column.md: Canvas emails a new user whose login is Canvas's own, who has an
# email and a canvas_password_notification value, a link to set a password (lib/sis/user_importer.rb).
PASSWORD_NOTIFICATION = UsersColumn(
    "canvas_password_notification",
    observer=lambda settings: "true",
    when=lambda s: s.observers.enabled and s.observers.authentication_provider_id == "canvas",
)


def test_a_column_added_by_one_declaration(family: District) -> None:
    table = (*USERS_CSV, PASSWORD_NOTIFICATION)
    canvas_logins = {"observers": {"enabled": True, "authentication_provider_id": "canvas"}}
    assert users_csv_text(family, canvas_logins, table) == (
        "user_id,login_id,authentication_provider_id,first_name,last_name,full_name,email,status,"
        "canvas_password_notification\n"
        "5f0000000000000000000101,zobrien,,Zoë\x00,O'Brien,,zoe@example.org,active,\n"
        '5f0000000000000000000102,an@example.org,,Nguyễn,"Văn, An",,an@example.org,active,\n'
        "5f0000000000000000000c01,pat@example.org,canvas,,,Pat O'Brien,pat@example.org,active,true\n"
        "5f0000000000000000000f01,cokafor,,Chidi,Okafor,,cokafor@example.org,active,\n"
        "5f0000000000000000000f02,glindqvist,,Greta,Lindqvist,,glindqvist@example.org,active,\n"
    )
    without = {"observers": {"enabled": True}}
    assert users_csv_text(family, without, table) == users_csv_text(family, without, USERS_CSV)


def test_a_column_reading_namespace_fields_the_build_did_not_read(family: District) -> None:
    """A column's ``user.<field>`` and ``contact.<field>`` are copied out of the snapshot for it."""
    table = (*USERS_CSV, UsersColumn("short_name", user="user.student_number", observer="contact.name"))
    text = users_csv_text(family, {"observers": {"enabled": True}}, table)
    assert text.splitlines()[0] == "user_id,login_id,first_name,last_name,full_name,email,status,short_name"
    assert [line.rsplit(",", 1)[1] for line in text.splitlines()[1:]] == [
        "N0101",
        "N0102",
        "Pat O'Brien",
        "",
        "",
    ]
