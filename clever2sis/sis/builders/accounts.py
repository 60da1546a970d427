"""accounts.csv: one sub-account per Clever school, directly under the root account."""

from __future__ import annotations

import pandas as pd

from clever2sis.clever.frames import District
from clever2sis.config import BuildSettings
from clever2sis.sis import checks, files
from clever2sis.sis.arrow import blank
from clever2sis.sis.builders import Built, ordered, prefixed, template
from clever2sis.sis.findings import combine
from clever2sis.sis.templates import is_identity


def account_columns(settings: BuildSettings) -> tuple[str, ...]:
    extra = () if is_identity(settings.ids["account_id"], "school") else ("integration_id",)
    return files.COLUMNS[files.ACCOUNTS] + extra


def build_accounts(district: District, settings: BuildSettings) -> tuple[Built, pd.Series]:
    """The accounts file, and each Clever school id's Canvas account_id (for courses)."""
    schools = district.schools
    context = prefixed(schools, "school")
    accounts = pd.DataFrame(
        {
            "school": schools["id"],
            "account_id": template(settings, "ids.account_id").render(context),
            "parent_account_id": "",
            "name": template(settings, "names.account").render(context),
            "status": "active",
            "integration_id": schools["id"],
        }
    )
    no_id = blank(accounts["account_id"])
    no_name = blank(accounts["name"])
    accounts.loc[no_name, "name"] = accounts.loc[no_name, "account_id"]
    duplicate = accounts["account_id"].duplicated() & ~no_id
    keep = accounts[~no_id & ~duplicate]
    school = accounts["school"]
    found = combine(
        [
            checks.ACCOUNT_WITHOUT_ID(no_id, school, school=school),
            checks.DUPLICATE_ACCOUNT_ID(duplicate, school, school=school, account_id=accounts["account_id"]),
        ]
    )
    school_accounts = pd.Series(
        keep["account_id"].to_numpy(), index=keep["school"].to_numpy(), dtype="string"
    )
    frame = ordered(keep, account_columns(settings), files.SORT_KEYS[files.ACCOUNTS])
    return Built(frame, found), school_accounts
