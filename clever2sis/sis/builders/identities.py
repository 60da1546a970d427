"""identities.csv: who each users.csv row is, by the keys a person can be recognised by on a later night.

Clever re-creates a user under a new id now and then (their SIS id changed, they came back after a long
absence, an email change split a merged teacher and staff member), and the new id is a new user_id for
Canvas. To tell such a person from a stranger, the sync compares tonight's keys with those of the users
Canvas holds and has removed (:mod:`clever2sis.sync.identities`). The build writes them beside itself,
``BUILD_DIR/identities.csv``; the file is never uploaded (it is not in the zip, nor in build.json).

Columns (:data:`IDENTITY_COLUMNS`), one row per users.csv row, in its order:

- ``user_id``, ``login_id``, ``first_name``, ``last_name``: as users.csv sends them (a contact's whole name,
  which Clever keeps in ``name.last`` and users.csv sends as ``full_name``, is its ``last_name``);
- ``clever_id``: the Clever user's id;
- ``roles``: every Clever role the user holds, ``;``-joined in the order of
  :data:`clever2sis.clever.frames.ROLES` (``teacher;staff``);
- ``sis_id``, ``student_number``, ``teacher_number``: the ``user`` namespace's fields (the first SIS id of
  the user's roles, student first); a contact's ``sis_id`` is its contact SIS id;
- ``account_ids``: the Canvas account_ids (accounts.csv's, as this build makes them) of the user's Clever
  schools, from every role they hold (a student's ``school``, a teacher's ``school``, a staff member's
  ``schools``), ``;``-joined and sorted; empty when none (a contact, a district admin, a school the build
  makes no account for). The sync reads it to keep a staff member, who has no enrollment to tie them to a
  school, when their school is held (:mod:`clever2sis.sync.holds`).

A file written before ``account_ids`` existed has the other columns (:data:`IDENTITY_KEYS`) in the same
order; :func:`current_identities` reads it as having no account_ids for anyone.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clever2sis.clever.frames import ROLES, District
from clever2sis.sis.arrow import arrow_strings, one_array, positions, string_series

# The keys a person is recognised by (identities.csv's whole header before account_ids).
IDENTITY_KEYS = (
    "user_id",
    "clever_id",
    "roles",
    "login_id",
    "sis_id",
    "student_number",
    "teacher_number",
    "first_name",
    "last_name",
)
ACCOUNT_IDS = "account_ids"
IDENTITY_COLUMNS = (*IDENTITY_KEYS, ACCOUNT_IDS)
# The columns the users builder gives (the keys users.csv does not hold), and the namespace fields they are.
KEY_COLUMNS = ("clever_id", "roles", "sis_id", "student_number", "teacher_number", ACCOUNT_IDS)
USER_KEY_FIELDS = ("sis_id", "student_number", "teacher_number")
ROLE_SEPARATOR = ";"
ACCOUNT_SEPARATOR = ";"
# The users frame's columns that name one school of a role (staff list theirs in District.staff_schools).
SCHOOL_COLUMNS = ("student_school", "teacher_school")
# users.csv's columns each identity column is read from (the first of them the file has).
FROM_USERS_CSV = {
    "user_id": ("user_id",),
    "login_id": ("login_id",),
    "first_name": ("first_name",),
    "last_name": ("full_name", "last_name"),
}


def role_names(flags: Mapping[str, np.ndarray]) -> pa.Array:
    """Each row's roles (``flags``: ``is_<role>`` per role of ROLES, aligned) as one ``;``-joined string."""
    parts = [
        pc.if_else(
            pa.array(flags[f"is_{role}"]),
            pa.scalar(role, pa.large_string()),
            pa.scalar(None, pa.large_string()),
        )
        for role in ROLES
        if f"is_{role}" in flags
    ]
    separator = pa.scalar(ROLE_SEPARATOR, pa.large_string())
    joined = pc.binary_join_element_wise(*parts, separator, null_handling="skip")
    return pc.fill_null(joined, "")


def identity_frame(users_csv: pd.DataFrame | None, keys: pd.DataFrame) -> pd.DataFrame:
    """identities.csv from the final users.csv (None: the build has none) and ``keys``, the users builder's
    ``user_id`` and :data:`KEY_COLUMNS` of the rows it built. The validation of the built files may leave
    rows out (an id Canvas cannot store) or clean a value, so each row finds its keys by user_id (a user_id
    the validation changed finds none). Observers' rows take their ``full_name`` as ``last_name``."""
    if users_csv is None or users_csv.empty:
        return pd.DataFrame({column: pd.Series([], dtype="string") for column in IDENTITY_COLUMNS})
    sent, built = one_array(users_csv["user_id"]), one_array(keys["user_id"])
    # Most nights the validation leaves every row as built: then the rows align and nothing is hashed (a
    # lookup among a million user_ids costs half a second).
    at = None if sent.equals(built) else pc.index_in(sent, value_set=built)
    out = {}
    for column in IDENTITY_COLUMNS:
        if column in KEY_COLUMNS and column not in keys:
            out[column] = pd.Series([""] * len(users_csv), dtype="string")
            continue
        if column in KEY_COLUMNS:
            key = one_array(keys[column])
            out[column] = string_series(pc.fill_null(key if at is None else key.take(at), ""))
            continue
        sources = [name for name in FROM_USERS_CSV[column] if name in users_csv]
        values = one_array(users_csv[sources[0]])
        for other in sources[1:]:
            fallback = one_array(users_csv[other])
            values = pc.if_else(pc.equal(values, ""), fallback, values)
        out[column] = string_series(values)
    return pd.DataFrame(out)


def school_account_ids(district: District, school_accounts: pd.Series) -> pa.Array:
    """Each row of ``district.users``: the account_ids (``school_accounts``: each Clever school id's Canvas
    account_id, as the accounts builder gives them) of the user's schools, ``;``-joined and sorted; null for
    a user with none.

    The (user, account) pairs of every role are numbered, de-duplicated and sorted as integers, and the
    strings are joined by Arrow, one list per user: no step walks the users in Python.
    """
    users = district.users
    school_accounts = school_accounts.dropna()
    names = np.unique(school_accounts.to_numpy(dtype=str))
    if not len(users) or not len(names):
        return pa.nulls(len(users), pa.large_string())
    schools = arrow_strings(pd.Series(school_accounts.index, dtype="string"))
    code_of_school = np.searchsorted(names, school_accounts.to_numpy(dtype=str))
    rows, codes = [], []
    for column in SCHOOL_COLUMNS:
        at = positions(users[column], schools)
        rows.append(np.flatnonzero(at >= 0))
        codes.append(code_of_school[at[at >= 0]])
    staff = district.staff_schools
    owner = positions(staff["user_id"], arrow_strings(users["id"]))
    at = positions(staff["school"], schools)
    placed = (owner >= 0) & (at >= 0)
    rows.append(owner[placed])
    codes.append(code_of_school[at[placed]])
    pairs = np.unique(np.concatenate(rows).astype(np.int64) * len(names) + np.concatenate(codes))
    row, code = pairs // len(names), pairs % len(names)
    starts = np.flatnonzero(np.diff(row, prepend=-1))
    offsets = pa.array(np.append(starts, len(row)), type=pa.int32())
    values = pa.array(names, type=pa.large_string()).take(pa.array(code))
    separator = pa.scalar(ACCOUNT_SEPARATOR, pa.large_string())
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, values), separator)
    of_row = np.full(len(users), -1, dtype=np.int64)
    of_row[row[starts]] = np.arange(len(starts))
    return joined.take(pa.array(of_row, mask=of_row < 0))


def current_identities(frame: pd.DataFrame) -> pd.DataFrame | None:
    """identities.csv as read (string columns) in this clever2sis's columns: one written before
    ``account_ids`` existed (:data:`IDENTITY_KEYS` alone) gains the column, empty for every row; None for a
    file with any other header."""
    columns = tuple(frame.columns)
    if columns == IDENTITY_COLUMNS:
        return frame
    if columns != IDENTITY_KEYS:
        return None
    return frame.assign(**{ACCOUNT_IDS: ""})
