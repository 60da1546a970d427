"""admins.csv ([admins]): who becomes an admin of which sub-account, the exact rows and findings, and the
settings that would make Canvas refuse every row."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from clever2sis.clever.frames import load_district
from clever2sis.clever.snapshot import Snapshot
from clever2sis.config import RawConfig, build_settings
from clever2sis.errors import ConfigError
from clever2sis.sis import files
from clever2sis.sis.build import BuiltFiles, build, build_frames
from clever2sis.sis.writer import csv_bytes
from tests.canvas_rules import canvas_messages
from tests.conftest import DISTRICT_ID, SCHOOL_A, SCHOOL_B, tiny_district, write_snapshot

PRINCIPAL = "5f0000000000000000000a01"
ASSISTANT = "5f0000000000000000000a02"
REGISTRAR = "5f0000000000000000000a03"
COUNSELOR = "5f0000000000000000000a04"
NOWHERE = "5f0000000000000000000a05"
ELSEWHERE = "5f0000000000000000000a06"
NO_LOGIN = "5f0000000000000000000a07"
SUPERINTENDENT = "5f0000000000000000000a08"
UNKNOWN_SCHOOL = "5f00000000000000000000ff"


def staff(
    uid: str,
    first: str,
    last: str,
    *,
    title: str,
    schools: list[str],
    username: str | None = None,
    roles: list[str] | None = None,
) -> dict[str, Any]:
    role: dict[str, Any] = {"schools": schools, "staff_id": f"E{uid[-4:]}", "title": title}
    if username is not None:
        role["credentials"] = {"district_username": username}
    if roles is not None:
        role["roles"] = roles
    return {
        "id": uid,
        "district": DISTRICT_ID,
        "name": {"first": first, "last": last},
        "roles": {"staff": role},
    }


def district_with_admins() -> dict[str, list[dict[str, Any]]]:
    records = tiny_district()
    records["users"] += [
        staff(PRINCIPAL, "Ruth", "Alvarez", title="Principal", schools=[SCHOOL_A], username="ralvarez"),
        staff(
            ASSISTANT,
            "Sam",
            "Brook",
            title="  assistant PRINCIPAL ",
            schools=[SCHOOL_A, SCHOOL_B],
            username="sbrook",
        ),
        staff(
            REGISTRAR,
            "Tao",
            "Chen",
            title="Registrar",
            schools=[SCHOOL_B],
            username="tchen",
            roles=["school_admin"],
        ),
        staff(COUNSELOR, "Uma", "Diaz", title="Counselor", schools=[SCHOOL_A], username="udiaz"),
        staff(NOWHERE, "Vic", "Eze", title="Principal", schools=[], username="veze"),
        staff(ELSEWHERE, "Wen", "Fox", title="Principal", schools=[UNKNOWN_SCHOOL], username="wfox"),
        staff(NO_LOGIN, "Xia", "Gill", title="Principal", schools=[SCHOOL_B]),
        {
            "id": SUPERINTENDENT,
            "district": DISTRICT_ID,
            "name": {"first": "Yara", "last": "Hale"},
            "email": "yhale@example.org",
            "roles": {"district_admin": {"title": "Superintendent"}},
        },
    ]
    return records


def every_admin_finding() -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """A district and [admins] settings that give every kind of admins.csv finding (tests/test_checks.py)."""
    records = district_with_admins()
    superintendent = records["users"][-1]
    superintendent["roles"]["staff"] = {"schools": [SCHOOL_A], "title": "Principal", "staff_id": "E9"}
    settings = {
        "enabled": True,
        "custom_roles": ["District Admin"],
        "district_admins": "schools",
        "district_admin_role": "District Admin",
    }
    return records, {"admins": settings}


@pytest.fixture
def admins_snapshot(tmp_path: Path) -> Path:
    return write_snapshot(tmp_path / "snapshot", district_with_admins())


def built(snapshot: Path, **tables: Any) -> BuiltFiles:
    return build_frames(load_district(Snapshot.open(snapshot)), build_settings(RawConfig(data=tables)))


def admins_csv(result: BuiltFiles) -> str:
    return csv_bytes(result.frames[files.ADMINS]).decode()


def findings(result: BuiltFiles, *kinds: str) -> list[str]:
    found = result.findings
    return found.loc[found["kind"].isin(kinds), "message"].tolist()


ADMIN_KINDS = ("admin_user_not_built", "admin_without_school", "admin_school_not_built", "duplicate_admin")


def test_without_the_setting_there_is_no_admins_file(admins_snapshot: Path) -> None:
    result = built(admins_snapshot)
    assert files.ADMINS not in result.frames
    assert files.ADMINS not in result.skipped
    assert findings(result, *ADMIN_KINDS) == []


def test_school_admins_by_title_and_by_clever_role_become_admins_of_each_of_their_schools(
    admins_snapshot: Path,
) -> None:
    result = built(admins_snapshot, admins={"enabled": True, "staff_roles": ["School_Admin"]})
    assert admins_csv(result) == (
        "user_id,account_id,role,status\n"
        f"{PRINCIPAL},{SCHOOL_A},AccountAdmin,active\n"
        f"{ASSISTANT},{SCHOOL_A},AccountAdmin,active\n"
        f"{ASSISTANT},{SCHOOL_B},AccountAdmin,active\n"
        f"{REGISTRAR},{SCHOOL_B},AccountAdmin,active\n"
    )
    assert findings(result, *ADMIN_KINDS) == [
        f"school admin {ELSEWHERE}: school {UNKNOWN_SCHOOL} is not in accounts.csv (not in the snapshot, or see "
        "its findings); not made an admin there",
        f"school admin {NO_LOGIN} is not in users.csv (see that user's findings, or the user_roles setting); "
        "not made an admin",
        f"school admin {NOWHERE} (title 'Principal') has no schools in Clever (roles.staff.schools); not made an "
        "admin",
    ]
    assert canvas_messages(result.frames) == []


def test_titles_alone_by_default_and_roles_alone_when_titles_are_emptied(admins_snapshot: Path) -> None:
    by_title = built(admins_snapshot, admins={"enabled": True})
    assert REGISTRAR not in admins_csv(by_title)
    by_role = built(
        admins_snapshot, admins={"enabled": True, "staff_titles": [], "staff_roles": ["school_admin"]}
    )
    assert (
        admins_csv(by_role) == f"user_id,account_id,role,status\n{REGISTRAR},{SCHOOL_B},AccountAdmin,active\n"
    )
    assert findings(by_role, *ADMIN_KINDS) == []


def test_staff_not_built_as_users_are_never_admins(admins_snapshot: Path) -> None:
    result = built(admins_snapshot, build={"user_roles": ["student", "teacher"]}, admins={"enabled": True})
    assert files.ADMINS not in result.frames
    assert result.skipped[files.ADMINS].startswith("no rows")
    assert sorted(findings(result, "admin_user_not_built")) == [
        f"school admin {user} is not in users.csv (see that user's findings, or the user_roles setting); not "
        "made an admin"
        for user in sorted([ASSISTANT, NO_LOGIN, PRINCIPAL])
    ]


def test_district_admins_of_every_school_with_their_own_role_which_wins_a_shared_account(
    admins_snapshot: Path,
) -> None:
    records, settings = every_admin_finding()
    result = built(write_snapshot(admins_snapshot.parent / "both", records), **settings)
    assert admins_csv(result) == (
        "user_id,account_id,role,status\n"
        f"{PRINCIPAL},{SCHOOL_A},AccountAdmin,active\n"
        f"{ASSISTANT},{SCHOOL_A},AccountAdmin,active\n"
        f"{SUPERINTENDENT},{SCHOOL_A},District Admin,active\n"
        f"{ASSISTANT},{SCHOOL_B},AccountAdmin,active\n"
        f"{SUPERINTENDENT},{SCHOOL_B},District Admin,active\n"
    )
    assert findings(result, "duplicate_admin") == [
        f"user {SUPERINTENDENT} would be an admin of account '{SCHOOL_A}' as both 'District Admin' and "
        "'AccountAdmin'; sent once, as 'District Admin' (Canvas pairs the rows of admins.csv by user_id and "
        "account_id)"
    ]
    assert canvas_messages(result.frames) == []


def test_district_admins_of_one_configured_sub_account(admins_snapshot: Path) -> None:
    result = built(
        admins_snapshot,
        admins={
            "enabled": True,
            "staff_titles": [],
            "district_admins": "account",
            "district_admin_account_id": " district-office ",
        },
    )
    assert admins_csv(result) == (
        f"user_id,account_id,role,status\n{SUPERINTENDENT},district-office,AccountAdmin,active\n"
    )


def test_account_ids_from_a_template_name_the_sub_accounts(admins_snapshot: Path) -> None:
    result = built(
        admins_snapshot, ids={"account_id": "school-{{ school.sis_id }}"}, admins={"enabled": True}
    )
    assert admins_csv(result) == (
        "user_id,account_id,role,status\n"
        f"{PRINCIPAL},school-100,AccountAdmin,active\n"
        f"{ASSISTANT},school-100,AccountAdmin,active\n"
        f"{ASSISTANT},school-200,AccountAdmin,active\n"
    )


def test_the_zip_holds_admins_after_enrollments_as_canvas_processes_them(
    admins_snapshot: Path, tmp_path: Path
) -> None:
    record = build(
        admins_snapshot, tmp_path / "build", build_settings(RawConfig({"admins": {"enabled": True}}))
    )
    with zipfile.ZipFile(tmp_path / "build" / "sis_import.zip") as archive:
        names = archive.namelist()
    assert names == [n for n in files.FILE_ORDER if n in names]
    assert names.index(files.ENROLLMENTS) < names.index(files.ADMINS)
    assert record["files"][files.ADMINS]["rows"] == 3


@pytest.mark.parametrize(
    ("admins", "message"),
    [
        (
            {"role": "accountadmin"},
            "c.toml: admins.role = 'accountadmin' is not 'AccountAdmin' nor a role of admins.custom_roles (did "
            'you mean "AccountAdmin"? role names are case-sensitive); Canvas would refuse every row ("Invalid '
            "role 'accountadmin' for admin\"): use 'AccountAdmin', or add your custom account role's exact name "
            "to admins.custom_roles",
        ),
        (
            {"district_admin_role": "Principal"},
            "c.toml: admins.district_admin_role = 'Principal' is not 'AccountAdmin' nor a role of "
            "admins.custom_roles; Canvas would refuse every row (\"Invalid role 'Principal' for admin\"): use "
            "'AccountAdmin', or add your custom account role's exact name to admins.custom_roles",
        ),
        (
            {"custom_roles": ["Principal"], "role": "principal"},
            "c.toml: admins.role = 'principal' is not 'AccountAdmin' nor a role of admins.custom_roles (did you "
            'mean "Principal"? role names are case-sensitive); Canvas would refuse every row ("Invalid role '
            "'principal' for admin\"): use 'AccountAdmin', or add your custom account role's exact name to "
            "admins.custom_roles",
        ),
        (
            {"district_admins": "account"},
            'c.toml: admins.district_admins = "account" needs district_admin_account_id: the SIS id of the '
            "sub-account district admins administer (a blank account_id would make them root account admins)",
        ),
        (
            {"district_admins": "account", "district_admin_account_id": "  "},
            'c.toml: admins.district_admins = "account" needs district_admin_account_id: the SIS id of the '
            "sub-account district admins administer (a blank account_id would make them root account admins)",
        ),
        (
            {"district_admin_account_id": "district-office"},
            "c.toml: admins.district_admin_account_id is set but district_admins is 'none'; set district_admins "
            '= "account" or remove district_admin_account_id',
        ),
        ({"staff_titles": ["Principal", " "]}, "c.toml: admins.staff_titles holds an empty name; remove it"),
        (
            {"district_admins": "root"},
            "c.toml: admins.district_admins = 'root'; use one of: none, schools, account",
        ),
        ({"staff_roles": "school_admin"}, "c.toml: admins.staff_roles must be a list, not 'school_admin'"),
        (
            {"enable": True},
            "c.toml: unknown key admins.enable; known keys: custom_roles, district_admin_account_id, "
            "district_admin_role, district_admins, enabled, role, staff_roles, staff_titles",
        ),
    ],
)
def test_settings_canvas_would_refuse_are_config_errors(admins: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        build_settings(RawConfig(data={"admins": admins}, path=Path("c.toml")))
    assert str(error.value) == message


def test_a_custom_role_declared_by_its_exact_name_is_taken(admins_snapshot: Path) -> None:
    result = built(
        admins_snapshot, admins={"enabled": True, "custom_roles": ["Principal"], "role": "Principal"}
    )
    assert f"{PRINCIPAL},{SCHOOL_A},Principal,active\n" in admins_csv(result)
