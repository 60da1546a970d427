"""admins.csv: Clever school admins (and, if chosen, district admins) as admins of Canvas sub-accounts.

Opt-in (``[admins] enabled``). A Clever staff member (``roles.staff``) is a school admin when their title is
one of ``admins.staff_titles`` or one of their Clever roles (``roles.staff.roles``) is one of
``admins.staff_roles`` (both compared stripped and case-insensitively: they are free text in the SIS). A
school admin becomes an admin, with the Canvas role ``admins.role``, of the sub-account of each school in
their ``roles.staff.schools``. Clever district admins (``roles.district_admin``) become admins, with
``admins.district_admin_role``, of every school's sub-account (``district_admins = "schools"``) or of the
one sub-account ``admins.district_admin_account_id`` (``"account"``), or of nothing (``"none"``).

How Canvas reads the file (canvas-lms ``lib/sis/admin_importer.rb``, ``lib/sis/csv/admin_importer.rb``):

* ``user_id`` is found among the root account's *active* logins by SIS id, so it is the person's users.csv
  user_id, and a person left out of users.csv is left out here, with a finding;
* a blank ``account_id`` is the root account: a row here always names a sub-account (a school's, or the
  configured one), so the product never makes or removes a root account admin;
* ``role`` is an account role by its exact name (the config checks it, see
  :func:`clever2sis.config.admin_settings`);
* Canvas's diff pairs rows by ``user_id`` and ``account_id`` (``identifying_fields``), so a person has one
  row per account: one who would be admin of an account both as school admin and as district admin with
  another role is sent with the district admin role, and an info finding says so.
"""

from __future__ import annotations

import pandas as pd

from clever2sis.clever.frames import District
from clever2sis.config import AdminSettings, BuildSettings
from clever2sis.sis import checks, files
from clever2sis.sis.arrow import lookup, member
from clever2sis.sis.builders import Built, ordered
from clever2sis.sis.findings import combine

ACTIVE = "active"
SCHOOL_ADMIN = "school admin"
DISTRICT_ADMIN = "district admin"


def admin_columns(settings: BuildSettings) -> tuple[str, ...]:
    return files.COLUMNS[files.ADMINS]


def school_admins(district: District, admins: AdminSettings) -> pd.DataFrame:
    """The school admins (``id`` and ``staff_title``): staff with a chosen title or Clever role."""
    users = district.users
    staff = users.loc[users["is_staff"], ["id", "staff_title"]]
    titles = pd.Index(sorted(admins.school_admin_titles()), dtype="string")
    by_title = member(staff["staff_title"].str.strip().str.lower(), titles)
    roles = district.staff_roles
    wanted = pd.Index(sorted(admins.school_admin_roles()), dtype="string")
    chosen = roles.loc[member(roles["role"].str.strip().str.lower(), wanted)]
    return staff.loc[by_title | member(staff["id"], chosen["user_id"])].reset_index(drop=True)


def build_admins(
    district: District,
    settings: BuildSettings,
    school_accounts: pd.Series,
    user_map: pd.Series,
    accounts: pd.Series,
) -> Built:
    """The admins file.

    ``school_accounts``: each Clever school id's Canvas account_id; ``user_map``: each Clever id built as a
    user -> its users.csv user_id; ``accounts``: the account_ids accounts.csv holds (after its checks).
    """
    admins = settings.admins
    chosen = school_admins(district, admins)
    placed = chosen.merge(district.staff_schools, left_on="id", right_on="user_id", how="left")
    no_school = placed["school"].isna()
    account_id = lookup(placed["school"].fillna(""), school_accounts)
    unknown = ~no_school & ~member(account_id, accounts)
    school_rows = pd.DataFrame(
        {
            "clever_id": placed["id"],
            "account_id": account_id,
            "role": admins.role,
            "what": SCHOOL_ADMIN,
        }
    )[~no_school & ~unknown]
    found = [
        checks.ADMIN_WITHOUT_SCHOOL(
            no_school, placed["id"], user=placed["id"], title=placed["staff_title"].fillna("")
        ),
        checks.ADMIN_SCHOOL_NOT_BUILT(
            unknown, placed["id"], user=placed["id"], school=placed["school"].fillna("")
        ),
    ]
    rows = pd.concat([_district_admin_rows(district, admins, accounts), school_rows], ignore_index=True)
    # Hashing the few admins' ids and probing every user's is much cheaper than hashing every user's.
    built = user_map[member(pd.Series(user_map.index, dtype="string"), rows["clever_id"]).to_numpy()]
    rows["user_id"] = lookup(rows["clever_id"], built)
    not_built = rows["user_id"].isna()
    first = ~rows.duplicated(["clever_id", "what"])
    found.append(
        checks.ADMIN_USER_NOT_BUILT(
            not_built & first, rows["clever_id"], what=rows["what"], user=rows["clever_id"]
        )
    )
    rows = rows[~not_built].reset_index(drop=True)
    found.append(_duplicates(rows))
    rows = rows.drop_duplicates(["user_id", "account_id"], keep="first").assign(status=ACTIVE)
    frame = ordered(rows, admin_columns(settings), files.SORT_KEYS[files.ADMINS])
    return Built(frame, combine(found))


def _district_admin_rows(district: District, admins: AdminSettings, accounts: pd.Series) -> pd.DataFrame:
    """The district admins' rows (first, so that their role wins an account they share with a school
    admin row): one per sub-account they administer."""
    users = district.users
    ids = users.loc[users["is_district_admin"], "id"].reset_index(drop=True)
    if admins.district_admins == "schools":
        targets = pd.Series(sorted(set(accounts.dropna())), dtype="string")
    elif admins.district_admins == "account":
        targets = pd.Series([admins.district_admin_account_id], dtype="string")
    else:
        targets = pd.Series([], dtype="string")
    pairs = pd.DataFrame({"clever_id": ids}).merge(pd.DataFrame({"account_id": targets}), how="cross")
    return pairs.assign(role=admins.district_admin_role, what=DISTRICT_ADMIN)


def _duplicates(rows: pd.DataFrame) -> pd.DataFrame:
    """An info finding for each row left out because its person is already an admin of that account with
    another role (the first row of a user_id and account_id is sent)."""
    key = ["user_id", "account_id"]
    kept = rows.drop_duplicates(key, keep="first")[[*key, "role"]]
    later = rows[rows.duplicated(key, keep="first")].merge(kept, on=key, suffixes=("", "_kept"))
    other = later["role"] != later["role_kept"]
    return checks.DUPLICATE_ADMIN(
        other,
        later["clever_id"],
        user=later["clever_id"],
        account_id=later["account_id"],
        role=later["role_kept"],
        other_role=later["role"],
    )
