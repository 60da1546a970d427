"""users.csv: every Clever user holding a role the settings build (once, however many roles they hold).

The login_id is the first usable value among ``login_id_fields`` (the district's "username field"). Canvas
login ids are unique per root account regardless of case, and a login that two users share would let one
claim the other's account, so the rule is:

  A login_id that several users would share is given to none of them. Each of them falls back to its next
  login field, as long as that value is usable and unique too. A user left with no usable unique login is
  not sent, and is listed in the findings with the users it collided with.
"""

from __future__ import annotations

import pandas as pd

from clever2sis.clever.frames import District
from clever2sis.config import BuildSettings
from clever2sis.sis import files
from clever2sis.sis.builders import Built, blank, member, ordered, prefixed, template
from clever2sis.sis.findings import INFO, WARNING, combine, findings, report, text
from clever2sis.sis.templates import is_identity

# A pragmatic address check: one @, something before it, a dot in the domain, no spaces.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def user_columns(settings: BuildSettings) -> tuple[str, ...]:
    columns = list(files.COLUMNS[files.USERS])
    if not is_identity(settings.ids["user_id"], "user"):
        columns.insert(1, "integration_id")
    if settings.authentication_provider_id:
        columns.insert(columns.index("login_id") + 1, "authentication_provider_id")
    return tuple(columns)


def _first_of(*columns: pd.Series) -> pd.Series:
    out = columns[0]
    for column in columns[1:]:
        out = out.fillna(column)
    return out


def user_fields(users: pd.DataFrame) -> pd.DataFrame:
    """The ``user`` template namespace: role-specific fields merged (student first, then teacher, staff)."""
    return pd.DataFrame(
        {
            "id": users["id"],
            "first": users["first"],
            "middle": users["middle"],
            "last": users["last"],
            "email": users["email"],
            "district_username": _first_of(
                users["student_username"], users["teacher_username"], users["staff_username"]
            ),
            "sis_id": _first_of(users["student_sis_id"], users["teacher_sis_id"], users["staff_id"]),
            "student_number": users["student_number"],
            "state_id": _first_of(users["student_state_id"], users["teacher_state_id"]),
            "teacher_number": users["teacher_number"],
            "staff_id": users["staff_id"],
            "grade": users["grade"],
        }
    )


def assign_logins(candidates: list[tuple[str, pd.Series]]) -> tuple[pd.Series, pd.DataFrame]:
    """Apply the login rule of this module.

    ``candidates`` are (field name, values) in order of preference, ``<NA>`` where unusable. Returns the
    chosen login (``<NA>`` for none) and, for each user who lost a login to a collision, the field, the value
    and why (``reason``). A value contested once is never given to anyone later, so a user who lost
    ``jsmith`` as a username cannot be signed into the account of someone whose email is ``jsmith``.
    """
    index = candidates[0][1].index
    login = pd.Series(pd.NA, index=index, dtype="string")
    taken = pd.Series([], dtype="string")  # lower-cased logins given out, and values contested before
    collisions = []
    for field, values in candidates:
        open_ = login.isna() & values.notna()
        value = values[open_].str.strip()
        key = value.str.lower()
        shared = key.duplicated(keep=False)
        clash = shared | member(key, taken)
        winners = clash.index[~clash]
        login[winners] = value[winners]
        taken = pd.concat([taken, key[winners], key[shared].drop_duplicates()], ignore_index=True)
        losers = clash.index[clash]
        if len(losers):
            counts = key[losers].map(key[shared].value_counts())
            reason = pd.Series("is already another user's login", index=losers, dtype="string")
            many = counts.notna()
            reason[many] = text("is shared by ", counts[many].astype(int).astype(str), " users")
            collisions.append(pd.DataFrame({"field": field, "value": value[losers], "reason": reason}))
    lost = pd.concat(collisions) if collisions else pd.DataFrame(columns=["field", "value", "reason"])
    return login, lost[~lost.index.duplicated()]


def build_users(district: District, settings: BuildSettings) -> tuple[Built, pd.Series]:
    """The users file, and each built Clever user id's Canvas user_id (for enrollments)."""
    all_users = district.users
    wanted = pd.Series(False, index=all_users.index)
    for role in settings.user_roles:
        wanted |= all_users[f"is_{role}"]
    users = all_users[wanted]
    fields = user_fields(users)
    email = fields["email"].str.strip()
    email_ok = email.str.fullmatch(EMAIL_PATTERN).fillna(False).astype(bool)
    invalid_email = email.notna() & ~email_ok

    values = {**{name: fields[name] for name in fields}, "email": email.where(email_ok)}
    candidates = [(field, values[field].where(~blank(values[field]))) for field in settings.login_id_fields]
    login, lost = assign_logins(candidates)

    rows = pd.DataFrame(
        {
            "clever_id": users["id"],
            "user_id": template(settings, "ids.user_id").render(prefixed(fields, "user")),
            "integration_id": users["id"],
            "login_id": login,
            "authentication_provider_id": settings.authentication_provider_id,
            "first_name": users["first"],
            "last_name": users["last"],
            "email": email.where(email_ok),
            "status": "active",
        }
    )
    no_user_id = blank(rows["user_id"])
    duplicate_id = rows["user_id"].duplicated() & ~no_user_id
    no_login = rows["login_id"].isna()
    sent = ~no_user_id & ~duplicate_id & ~no_login

    cid = rows["clever_id"]
    field_list = ", ".join(settings.login_id_fields)
    recovered = pd.Series(rows.index.isin(lost.index), index=rows.index) & ~no_login
    stranded = pd.Series(rows.index.isin(lost.index), index=rows.index) & no_login
    other = no_login & ~stranded
    lost_login = (
        "user ",
        cid,
        ": login_id '",
        lost["value"].reindex(rows.index),
        "' (",
        lost["field"].reindex(rows.index),
        ") ",
        lost["reason"].reindex(rows.index),
    )
    found = [
        report(
            "duplicate_login",
            WARNING,
            files.USERS,
            recovered,
            cid,
            *lost_login,
            "; sent with login_id '",
            login,
            "' instead",
        ),
        report(
            "duplicate_login",
            WARNING,
            files.USERS,
            stranded,
            cid,
            *lost_login,
            ", and no other login field is usable; left out",
        ),
        report(
            "missing_login",
            WARNING,
            files.USERS,
            other,
            cid,
            "user ",
            cid,
            f" has no usable login_id ({field_list}); left out",
        ),
        report(
            "invalid_email",
            WARNING,
            files.USERS,
            invalid_email,
            cid,
            "user ",
            cid,
            ": email '",
            fields["email"],
            "' is not a valid address; sent without an email",
        ),
        report(
            "user_without_id",
            WARNING,
            files.USERS,
            no_user_id,
            cid,
            "user ",
            cid,
            " renders an empty user_id; left out",
        ),
        report(
            "duplicate_user_id",
            WARNING,
            files.USERS,
            duplicate_id,
            cid,
            "user ",
            cid,
            ": user_id '",
            rows["user_id"],
            "' is already used by another user; left out",
        ),
    ]
    roles_left_out = [role for role in ("contact",) if role not in settings.user_roles]
    if roles_left_out:
        only_contacts = all_users["is_contact"] & ~wanted
        count = int(only_contacts.sum())
        if count:
            found.append(
                findings(
                    "contacts_not_built",
                    INFO,
                    files.USERS,
                    pd.Series([district.district.get("id", "")]),
                    pd.Series(
                        [
                            f"{count} contact(s) are not built as Canvas users (parents as observers "
                            "are a separate option)"
                        ]
                    ),
                )
            )
    kept = rows[sent]
    user_map = pd.Series(kept["user_id"].to_numpy(), index=kept["clever_id"].to_numpy(), dtype="string")
    frame = ordered(kept, user_columns(settings), files.SORT_KEYS[files.USERS])
    return Built(frame, combine(found)), user_map
