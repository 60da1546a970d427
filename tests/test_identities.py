"""Identity keys and churn, function by function: identities.csv of a build, the login rule with logins
Canvas holds for removed users, :func:`clever2sis.sync.identities.detect_churn` on small frames, and the
applied state's identities and ledger."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from clever2sis.build_dir import BuildDir, BuildRecord, ZipEntry, sha256_file
from clever2sis.clever.frames import District, load_district
from clever2sis.clever.snapshot import Snapshot
from clever2sis.config import RawConfig, build_settings
from clever2sis.errors import RunsDirError
from clever2sis.sis import files
from clever2sis.sis.build import build
from clever2sis.sis.builders.identities import (
    IDENTITY_COLUMNS,
    IDENTITY_KEYS,
    identity_frame,
    school_account_ids,
)
from clever2sis.sis.builders.logins import assign_logins, given_by, without_claimed
from clever2sis.sis.builders.users import build_users
from clever2sis.sis.writer import write_csv, write_zip
from clever2sis.sync.changes import Amended
from clever2sis.sync.identities import CHANGE_SIS_ID, OFF, UPDATE_SIS_ID, Churn, detect_churn, given_claimed
from clever2sis.sync.state import (
    DIFF,
    REMASTER,
    REMOVED_USER_COLUMNS,
    AppliedState,
    Outcome,
    ZipSizes,
    read_legacy_state,
    read_state,
    state_after,
    write_state,
)
from tests.test_sync_state import HELD, frames, previous_state, user

NIGHT = "2027-01-06T06:00:00Z"
EARLIER = "2026-11-02T06:00:00Z"
DEMO = Path(__file__).resolve().parents[1] / "samples" / "demo-district"


def identity(user_id: str, **keys: str) -> dict[str, str]:
    return {column: keys.get(column, "") for column in IDENTITY_COLUMNS} | {"user_id": user_id}


def table(*rows: dict[str, str], columns: tuple[str, ...] = IDENTITY_COLUMNS) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(columns), dtype="str")


def removed(
    user_id: str, status: str = "suspended", removed_on: str = EARLIER, **keys: str
) -> dict[str, str]:
    row = {column: keys.get(column, "") for column in REMOVED_USER_COLUMNS}
    return row | {"user_id": user_id, "status": status, "removed_on": removed_on, "removed_run_id": "r"}


def users_of(*user_ids: str) -> pd.DataFrame:
    return frames(users=[user(user_id) for user_id in user_ids])[files.USERS]


def churn(
    tonight: list[dict[str, str]],
    held: tuple[dict[str, str], ...] | list[dict[str, str]] = (),
    ledger: tuple[dict[str, str], ...] | list[dict[str, str]] = (),
    mode: str = CHANGE_SIS_ID,
) -> Churn:
    return detect_churn(
        table(*tonight),
        held_users=users_of(*(row["user_id"] for row in held)),
        held_identities=table(*held),
        removed_users=table(*ledger, columns=REMOVED_USER_COLUMNS),
        mode=mode,
        night=NIGHT,
    )


def pairs(found: Churn) -> list[tuple[str, str, str, str]]:
    return [(row.old_id, row.new_id, row.keys, row.via) for row in found.carried.itertuples(index=False)]


# --- matching ------------------------------------------------------------------------------------------------


def test_a_user_vanishing_tonight_is_matched_on_one_key_regardless_of_the_logins_case() -> None:
    found = churn(
        tonight=[identity("A", login_id="Jo.Kim"), identity("B", login_id="stays")],
        held=[identity("OLD", login_id="jo.kim"), identity("B", login_id="stays")],
    )
    assert pairs(found) == [("OLD", "A", "login_id", CHANGE_SIS_ID)]
    assert found.claimed.empty  # carried over: the login is theirs
    assert found.change_sis_id_rows().to_dict("records") == [{"old_id": "OLD", "new_id": "A", "type": "user"}]


def test_a_user_removed_on_an_earlier_night_needs_a_second_key_with_another_value() -> None:
    ledger = [
        removed("L1", login_id="ann", sis_id="111", student_number="111", first_name="Ann", last_name="Lee"),
        removed("L2", login_id="bo", sis_id="222", student_number="9222"),
        removed("L3", login_id="cy", first_name="Cy", last_name="Old"),
    ]
    found = churn(
        tonight=[
            identity("N1", login_id="zed", sis_id="111", student_number="111"),  # one value, twice
            identity("N2", login_id="BO", sis_id="222", student_number="9222"),
            identity("N3", login_id="cy", first_name="  CY ", last_name="old"),  # login and name
        ],
        ledger=ledger,
    )
    assert pairs(found) == [
        ("L2", "N2", "login_id, sis_id, student_number", CHANGE_SIS_ID),
        ("L3", "N3", "login_id, name", CHANGE_SIS_ID),
    ]
    # L1 is not carried (sis_id and student_number are one value): its login still claims its name.
    assert found.claimed.to_dict("records") == [{"login_id": "ann", "user_id": "L1", "removed_on": EARLIER}]
    assert found.ambiguous.empty


def test_a_match_that_is_not_one_to_one_is_ambiguous_and_carries_nobody() -> None:
    found = churn(
        tonight=[identity("N1", login_id="ann"), identity("N2", sis_id="111"), identity("N3", sis_id="555")],
        held=[
            identity("OLD", login_id="ann", sis_id="111"),
            identity("O5", sis_id="555"),
            identity("O6", sis_id="555"),
        ],
    )
    assert found.carried.empty
    assert found.ambiguous.to_dict("records") == [
        {"new_id": "N1", "clever_id": "", "old_ids": "OLD", "keys": "login_id"},
        {"new_id": "N2", "clever_id": "", "old_ids": "OLD", "keys": "sis_id"},
        {"new_id": "N3", "clever_id": "", "old_ids": "O5, O6", "keys": "sis_id"},
    ]
    assert found.claimed["user_id"].tolist() == ["OLD"]  # gone tonight, its login active (O5, O6 have none)
    assert list(found.findings()["kind"]) == ["identity_ambiguous"] * 3


def test_a_user_still_held_or_returning_with_the_same_id_is_no_identity_change() -> None:
    found = churn(
        tonight=[identity("H", login_id="h"), identity("R", login_id="r")],
        held=[identity("H", login_id="h"), identity("GONE", login_id="h2")],
        ledger=[removed("R", login_id="r", sis_id="1")],
    )
    assert found.carried.empty
    assert found.ambiguous.empty
    assert found.claimed.to_dict("records") == [{"login_id": "h2", "user_id": "GONE", "removed_on": NIGHT}]


def test_a_deleted_login_claims_nothing_and_is_carried_by_change_sis_id_even_in_update_mode() -> None:
    ledger = [
        removed("D", status="deleted", login_id="dee", sis_id="4"),
        removed("S", login_id="ess", sis_id="5"),
        removed("X", login_id="old.x", sis_id="6", student_number="66"),
    ]
    found = churn(
        tonight=[
            identity("ND", login_id="dee", sis_id="4"),
            identity("NS", login_id="ess", sis_id="5"),
            identity("NX", login_id="new.x", sis_id="6", student_number="66"),  # the login changed
        ],
        ledger=ledger,
        mode=UPDATE_SIS_ID,
    )
    assert pairs(found) == [
        ("D", "ND", "login_id, sis_id", CHANGE_SIS_ID),
        ("S", "NS", "login_id, sis_id", UPDATE_SIS_ID),
        ("X", "NX", "sis_id, student_number", CHANGE_SIS_ID),
    ]
    assert found.by_login_option
    assert list(found.change_sis_id_rows()["old_id"]) == ["D", "X"]
    assert found.claimed.empty


def test_off_carries_nobody_and_every_login_still_held_is_claimed() -> None:
    found = churn(
        tonight=[identity("A", login_id="jo")],
        held=[identity("OLD", login_id="jo")],
        ledger=[removed("L", login_id="el"), removed("D", status="deleted", login_id="dee")],
        mode=OFF,
    )
    assert found.carried.empty
    assert found.claimed.to_dict("records") == [
        {"login_id": "el", "user_id": "L", "removed_on": EARLIER},
        {"login_id": "jo", "user_id": "OLD", "removed_on": NIGHT},
    ]
    assert given_claimed(table(identity("A", login_id=" JO ")), found.claimed)["user_id"].tolist() == ["OLD"]


def test_a_state_without_identities_is_matched_on_what_users_csv_tells() -> None:
    found = detect_churn(
        table(identity("NEW", login_id="login.old", first_name="First", last_name="LastOLD")),
        held_users=users_of("OLD"),
        held_identities=None,
        removed_users=table(columns=REMOVED_USER_COLUMNS),
        mode=CHANGE_SIS_ID,
        night=NIGHT,
    )
    assert pairs(found) == [("OLD", "NEW", "login_id, name", CHANGE_SIS_ID)]


# --- the login rule and the build -----------------------------------------------------------------------------


def column(*values: str | None) -> pd.Series:
    return pd.Series([pd.NA if value is None else value for value in values], dtype="string")


def test_a_claimed_login_is_given_to_no_one_and_its_user_falls_back() -> None:
    candidates = [
        ("district_username", column("Ann ", "bo", None)),
        ("email", column("a@x.org", "ANN", "ann")),
    ]
    masked, offered = without_claimed(candidates, column("ann"))
    login, lost, _ = assign_logins(masked)
    assert login.tolist() == ["a@x.org", "bo", pd.NA]
    assert lost.empty
    assert offered.to_dict("index") == {
        0: {"position": 0, "field": "district_username", "value": "Ann"},
        1: {"position": 1, "field": "email", "value": "ANN"},
        2: {"position": 1, "field": "email", "value": "ann"},
    }
    # User 1 never reached the claimed value (their username was given first).
    assert given_by(masked, login).tolist() == [1, 0, 2]


@pytest.fixture(scope="module")
def demo() -> District:
    return load_district(Snapshot.open(DEMO))


def test_the_build_says_who_lost_a_claimed_login_and_who_holds_it(demo: District) -> None:
    settings = build_settings(RawConfig(data={}))
    plain = build_users(demo, settings)
    users = plain.built.frame
    student = users.loc[(users["email"] != "") & (users["login_id"] != users["email"])].iloc[0]
    login = str(student["login_id"])
    claimed = pd.DataFrame(
        {"login_id": [login.lower()], "user_id": ["OLD1"], "removed_on": [EARLIER]}, dtype="str"
    )
    again = build_users(demo, settings, claimed=claimed)
    row = again.built.frame.loc[again.built.frame["user_id"] == student["user_id"]].iloc[0]
    assert row["login_id"] == student["email"]
    found = again.built.findings
    assert found.loc[found["kind"] == "login_claimed_by_removed_user", "message"].tolist() == [
        f"user {student['user_id']}: login_id '{login}' (district_username) is still held in "
        f"Canvas by removed user OLD1 (removed {EARLIER}), who is not carried over to this user; sent with "
        f"login_id '{student['email']}' instead"
    ]
    others = again.built.frame.loc[again.built.frame["user_id"] != student["user_id"]]
    assert others.equals(users.loc[users["user_id"] != student["user_id"]])


def test_identities_csv_is_each_users_csv_row_with_its_keys_and_nothing_else_changes(tmp_path: Path) -> None:
    settings = build_settings(RawConfig(data={"observers": {"enabled": True}}))
    build(DEMO, tmp_path / "plain", settings)
    assert not (tmp_path / "plain" / "identities.csv").exists()  # only the sync reads it
    build(DEMO, tmp_path / "b", settings, identities=True)
    identities = pd.read_csv(tmp_path / "b" / "identities.csv", dtype=str, keep_default_na=False)
    users = pd.read_csv(tmp_path / "b" / "csv" / "users.csv", dtype=str, keep_default_na=False)
    assert tuple(identities.columns) == IDENTITY_COLUMNS
    assert identities["user_id"].tolist() == users["user_id"].tolist()
    assert identities["login_id"].tolist() == users["login_id"].tolist()
    by_id = identities.set_index("user_id")
    merged = next(i for i, roles in by_id["roles"].items() if roles == "teacher;staff")
    assert by_id.loc[merged, ["sis_id", "teacher_number"]].tolist() == ["T200023", "200023"]
    contact = users.loc[users["full_name"] != ""].iloc[0]
    assert by_id.loc[contact["user_id"], ["roles", "first_name", "last_name"]].tolist() == [
        "contact",
        "",
        contact["full_name"],
    ]
    student = by_id.loc[by_id["roles"] == "student"].iloc[0]
    assert student["sis_id"] != ""
    assert student["student_number"] != ""
    assert "identities.csv" not in {path.name for path in (tmp_path / "b" / "csv").iterdir()}
    # Each user's schools as the snapshot gives them, as the accounts accounts.csv holds for them.
    accounts = set(pd.read_csv(tmp_path / "b" / "csv" / "accounts.csv", dtype=str)["account_id"])
    expected = {}
    for record in Snapshot.open(DEMO).iter_records("users"):
        roles = record["roles"]
        schools = {(roles.get(role) or {}).get("school") for role in ("student", "teacher")}
        schools |= set((roles.get("staff") or {}).get("schools") or [])
        expected[record["id"]] = ";".join(sorted(schools & accounts))
    assert by_id["account_ids"].to_dict() == {user_id: expected[user_id] for user_id in by_id.index}
    assert by_id.loc[by_id["roles"] == "staff", "account_ids"].str.len().min() > 0
    assert set(by_id.loc[by_id["roles"].isin(["contact", "district_admin"]), "account_ids"]) == {""}


def test_account_ids_are_every_role_s_schools_with_an_account_sorted_and_joined(demo: District) -> None:
    users = pd.DataFrame(
        {
            "id": ["student", "teacher", "both", "staff", "admin", "elsewhere"],
            "student_school": ["S1", None, None, None, None, "S9"],
            "teacher_school": [None, "S2", "S1", None, None, None],
        },
        dtype="string",
    )
    staff = pd.DataFrame(
        {"user_id": ["both", "both", "staff", "staff", "nobody"], "school": ["S2", "S1", "S3", "S2", "S1"]},
        dtype="string",
    )
    district = dataclasses.replace(demo, users=users, staff_schools=staff)
    # S3 has no account (its account_id rendered empty, say); S9 is not in the build.
    school_accounts = pd.Series(["acct-b", "acct-a"], index=["S1", "S2"], dtype="string")
    found = school_account_ids(district, school_accounts).to_pylist()
    assert found == ["acct-b", "acct-a", "acct-a;acct-b", "acct-a", None, None]


# --- the applied state --------------------------------------------------------------------------------------------


def test_the_state_keeps_the_builds_identities_and_the_ledger_their_keys(tmp_path: Path) -> None:
    held_identities = table(
        identity("U1", login_id="login.u1", roles="student", sis_id="S1", student_number="N1"),
        identity("U2", login_id="login.u2", roles="teacher;staff", sis_id="T2", teacher_number="2"),
        identity("U3", login_id="login.u3", roles="student"),
    )
    before = AppliedState(run_id="r0", applied=DIFF, present=HELD, identities=held_identities)
    sent = Amended(frames={**HELD, files.USERS: frames(users=[user("U1"), user("U3")])[files.USERS]})
    tonight = held_identities.loc[held_identities["user_id"] != "U2"].reset_index(drop=True)
    after = state_after(
        before,
        sent,
        Outcome(run_id="r1", night=NIGHT, applied=DIFF, sizes=ZipSizes({})),
        identities=tonight,
    )
    (ledgered,) = after.removed_users.to_dict("records")
    assert ledgered == {
        "user_id": "U2",
        "login_id": "login.u2",
        "status": "suspended",
        "removed_on": NIGHT,
        "removed_run_id": "r1",
        "clever_id": "",
        "sis_id": "T2",
        "student_number": "",
        "teacher_number": "2",
        "first_name": "",
        "last_name": "",
        "roles": "teacher;staff",
    }
    assert after.identities is tonight
    # Renamed by a carry-over: rows, ledger and identities follow the new id.
    renamed = after.renamed(pd.Series(["NEW1"], index=["U1"], dtype="str"))
    assert renamed.present[files.USERS]["user_id"].tolist() == ["NEW1", "U3"]
    assert renamed.present[files.ENROLLMENTS]["user_id"].tolist() == ["NEW1", "U2", "U3"]
    assert renamed.identities is not None
    assert renamed.identities["user_id"].tolist() == ["NEW1", "U3"]


def test_a_user_sent_as_canvas_had_them_keeps_their_identity_and_schools_in_the_state() -> None:
    """A staff member held with a held school is not in tonight's build: the state after the night keeps
    the identity (and account_ids) it had, so the next night still knows their schools."""
    held_identities = table(
        identity("U1", login_id="login.u1", roles="student", account_ids="A"),
        identity("U2", login_id="login.u2", roles="staff", account_ids="A;B"),
        identity("U3", login_id="login.u3", roles="student", account_ids="B"),
    )
    before = AppliedState(run_id="r0", applied=DIFF, present=HELD, identities=held_identities)
    sent = Amended(
        frames={**HELD, files.USERS: frames(users=[user("U1"), user("U2"), user("U3")])[files.USERS]}
    )
    tonight = held_identities.loc[held_identities["user_id"] != "U2"].reset_index(drop=True)
    after = state_after(
        before,
        sent,
        Outcome(run_id="r1", night=NIGHT, applied=DIFF, sizes=ZipSizes({})),
        identities=tonight,
    )
    assert after.identities is not None
    assert after.identities.to_dict("records") == [
        tonight.iloc[0].to_dict(),
        tonight.iloc[1].to_dict(),
        held_identities.iloc[1].to_dict(),
    ]
    assert after.removed_users.empty


@pytest.mark.parametrize("same", [True, False])
def test_identities_are_kept_as_the_builds_or_in_the_state_and_read_back(tmp_path: Path, same: bool) -> None:
    run = tmp_path / "r1"
    layout = BuildDir(run / "build")
    layout.csv_dir.mkdir(parents=True)
    names = [name for name in files.FILE_ORDER if len(HELD[name])]
    for name in names:
        write_csv(HELD[name], layout.csv_file(name))
    write_zip([(name, layout.csv_file(name)) for name in names], layout.zip_file)
    layout.write_record(BuildRecord(zip=ZipEntry(sha256=sha256_file(layout.zip_file))))
    built = table(*(identity(u, login_id=f"login.{u}") for u in ("U1", "U2", "U3")))
    write_csv(built, layout.identities_file)
    state = previous_state(run_id="r1", applied=REMASTER, identities=built if same else built.iloc[:2])
    write_state(run, state, build_present=HELD, build_identities=built)
    assert (run / "state" / "identities.csv").is_file() is not same
    back = read_state(run, "r1")
    assert back.identities is not None
    assert back.identities["user_id"].tolist() == (["U1", "U2", "U3"] if same else ["U1", "U2"])


@pytest.mark.parametrize("same", [True, False])
def test_identities_kept_before_account_ids_existed_are_read_with_none(tmp_path: Path, same: bool) -> None:
    """A state (and its build) an earlier clever2sis kept, whose identities.csv has no account_ids column:
    read as they are, with no account_ids for anyone; a file with another header is refused."""
    run = tmp_path / "r1"
    layout = BuildDir(run / "build")
    layout.csv_dir.mkdir(parents=True)
    names = [name for name in files.FILE_ORDER if len(HELD[name])]
    for name in names:
        write_csv(HELD[name], layout.csv_file(name))
    write_zip([(name, layout.csv_file(name)) for name in names], layout.zip_file)
    layout.write_record(BuildRecord(zip=ZipEntry(sha256=sha256_file(layout.zip_file))))
    built = table(*(identity(u, login_id=f"login.{u}", account_ids="A") for u in ("U1", "U2", "U3")))
    old = built.drop(columns=["account_ids"])
    assert tuple(old.columns) == IDENTITY_KEYS
    write_csv(old, layout.identities_file)
    state = previous_state(run_id="r1", applied=REMASTER, identities=built if same else built.iloc[:2])
    write_state(run, state, build_present=HELD, build_identities=built)
    if not same:
        write_csv(old.iloc[:2], run / "state" / "identities.csv")
    back = read_state(run, "r1")
    assert back.identities is not None
    assert tuple(back.identities.columns) == IDENTITY_COLUMNS
    assert back.identities["user_id"].tolist() == (["U1", "U2", "U3"] if same else ["U1", "U2"])
    assert set(back.identities["account_ids"]) == {""}
    assert back.identities.drop(columns=["account_ids"]).equals(old.iloc[: len(back.identities)])
    legacy = read_legacy_state(run, "r1", applied=REMASTER)
    assert legacy.identities is not None
    assert legacy.identities["account_ids"].tolist() == ["", "", ""]
    damaged = old.rename(columns={"last_name": "surname"})
    write_csv(damaged, layout.identities_file if same else run / "state" / "identities.csv")
    with pytest.raises(RunsDirError, match=r"identities\.csv has the columns user_id, .*, surname"):
        read_state(run, "r1")


def identity_findings() -> list[tuple[str, ...]]:
    """Findings of every identity check (test_checks.py): a login claimed and replaced, one claimed with no
    other field left (both logins of one user claimed), a carry-over and an ambiguous match."""
    district = load_district(Snapshot.open(DEMO))
    settings = build_settings(RawConfig(data={}))
    users = build_users(district, settings).built.frame
    replaced, lost = (
        users.loc[(users["email"] != "") & (users["login_id"] != users["email"])].iloc[:2].itertuples()
    )
    logins = [replaced.login_id, lost.login_id, lost.email]
    claimed = pd.DataFrame(
        {
            "login_id": [str(login).lower() for login in logins],
            "user_id": ["O1", "O2", "O3"],
            "removed_on": EARLIER,
        },
        dtype="str",
    )
    found = build_users(district, settings, claimed=claimed).built.findings
    found = found.loc[found["kind"] == "login_claimed_by_removed_user"]
    changes = churn(
        tonight=[identity("N1", login_id="jo", clever_id="c1"), identity("N2", sis_id="7", clever_id="c2")],
        held=[identity("OLD", login_id="jo"), identity("O7", sis_id="7"), identity("O8", sis_id="7")],
    )
    both = pd.concat([found, changes.findings()], ignore_index=True)
    return [tuple(row) for row in both.itertuples(index=False)]


def test_every_identity_check_is_made() -> None:
    found = identity_findings()
    assert sorted(kind for kind, *_ in found) == [
        "identity_ambiguous",
        "identity_carried",
        "login_claimed_by_removed_user",
        "login_claimed_by_removed_user",
    ]
    claims = [message for kind, *_, message in found if kind == "login_claimed_by_removed_user"]
    assert sorted(message.endswith("; left out") for message in claims) == [False, True]


def test_identities_follow_users_csv_after_the_validation_left_a_row_out() -> None:
    keys = pd.DataFrame(
        {
            "user_id": ["u1", "u" * 300, "u3"],
            "clever_id": ["c1", "c2", "c3"],
            "roles": ["student", "student", "teacher"],
            "sis_id": ["s1", "s2", pd.NA],
            "student_number": ["n1", "n2", pd.NA],
            "teacher_number": [pd.NA, pd.NA, "t3"],
        },
        dtype="string",
    )
    users_csv = frames(users=[user("u1"), user("u3")])[files.USERS].astype("string")
    out = identity_frame(users_csv, keys)
    assert out.to_dict("records") == [
        identity(
            "u1",
            clever_id="c1",
            roles="student",
            login_id="Login.u1",
            sis_id="s1",
            student_number="n1",
            first_name="First",
            last_name="Lastu1",
        ),
        identity(
            "u3",
            clever_id="c3",
            roles="teacher",
            login_id="Login.u3",
            teacher_number="t3",
            first_name="First",
            last_name="Lastu3",
        ),
    ]
