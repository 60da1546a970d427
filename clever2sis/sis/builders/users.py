"""users.csv: every Clever user holding a role the settings build (once, however many roles they hold).

The login_id is the first usable value among ``login_id_fields`` (the district's "username field"). Canvas
login ids are unique per root account regardless of case, and a login that two users share would let one
claim the other's account, so the rule is:

  A login_id that several users would share is given to none of them. Each of them falls back to its next
  login field, as long as that value is usable and unique too. A user left with no usable unique login is
  not sent, and is listed in the findings with the users it collided with.

With ``[observers] enabled``, contacts who are not built users already and have a relationship of a chosen
type to a student of the build become users too (the observers of user_observers.csv). Their login is the
``observers.login_id`` template, taken as one more login field after all of ``login_id_fields``: built
users are served first, so a parent's email can never take a student's or teacher's login, and a value
contested once (two parents sharing an email) is given to none of them. Clever keeps a contact's whole name
in ``name.last``, so observers are sent with ``full_name`` (Canvas then infers the sortable name) and empty
first and last names; the column is in the header whenever observers are enabled, empty for other users.
A contact whose students all end up left out of users.csv is left out too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clever2sis.clever.frames import District
from clever2sis.config import BuildSettings
from clever2sis.sis import files
from clever2sis.sis.builders import NAMESPACES, Built, blank, member, ordered, prefixed, template
from clever2sis.sis.builders.user_observers import is_self, observer_links
from clever2sis.sis.findings import INFO, WARNING, combine, findings, no_findings, report, text
from clever2sis.sis.templates import is_identity

OBSERVER_LOGIN_FIELD = "observers.login_id"

# A pragmatic address check: one @, something before it, a dot in the domain, no spaces.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# Python's \s (every character str.isspace accepts) spelled out for Arrow's regex engine, RE2, whose \s is
# ASCII whitespace only. Given \s itself, pandas matches one value at a time with Python's re (3x slower).
UNICODE_WHITESPACE = (
    r"\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
)
_EMAIL_RE2 = EMAIL_PATTERN.replace(r"\s", UNICODE_WHITESPACE)

# Where each field of the ``user`` namespace comes from: the first present value among these columns of the
# users frame (for a user with several roles: student first, then teacher, then staff).
USER_FIELD_SOURCES: dict[str, tuple[str, ...]] = {
    "id": ("id",),
    "first": ("first",),
    "middle": ("middle",),
    "last": ("last",),
    "email": ("email",),
    "district_username": ("student_username", "teacher_username", "staff_username"),
    "sis_id": ("student_sis_id", "teacher_sis_id", "staff_id"),
    "student_number": ("student_number",),
    "state_id": ("student_state_id", "teacher_state_id"),
    "teacher_number": ("teacher_number",),
    "staff_id": ("staff_id",),
    "grade": ("grade",),
}


def user_columns(settings: BuildSettings) -> tuple[str, ...]:
    observers = settings.observers
    columns = list(files.COLUMNS[files.USERS])
    if not is_identity(settings.ids["user_id"], "user") or (
        observers.enabled and not is_identity(observers.user_id, "contact")
    ):
        columns.insert(1, "integration_id")
    if settings.authentication_provider_id or (observers.enabled and observers.authentication_provider_id):
        columns.insert(columns.index("login_id") + 1, "authentication_provider_id")
    if observers.enabled:
        columns.insert(columns.index("last_name") + 1, "full_name")
    return tuple(columns)


def _first_of(*columns: pd.Series) -> pd.Series:
    if len(columns) == 1:
        return columns[0]
    merged = pc.coalesce(*(pa.array(column, type=pa.large_string(), from_pandas=True) for column in columns))
    return pd.Series(pd.arrays.ArrowStringArray(merged), index=columns[0].index)


def user_fields(users: pd.DataFrame, names: Sequence[str] = NAMESPACES["user"]) -> pd.DataFrame:
    """The ``user`` template namespace, or the ``names`` of it a build uses (see ``USER_FIELD_SOURCES``)."""
    return pd.DataFrame(
        {name: _first_of(*(users[column] for column in USER_FIELD_SOURCES[name])) for name in names},
        index=users.index,
    )


def contact_fields(contacts: pd.DataFrame) -> pd.DataFrame:
    """The ``contact`` template namespace. Clever puts a contact's full name in ``name.last``."""
    name = (contacts["first"].fillna("") + " " + contacts["last"].fillna("")).str.strip()
    return pd.DataFrame(
        {
            "id": contacts["id"],
            "sis_id": contacts["contact_sis_id"],
            "name": name.where(name != ""),
            "email": contacts["email"],
        }
    )


def _checked_email(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The stripped email where it is a usable address (else ``<NA>``), and where one was invalid."""
    email = values.str.strip()
    matched = pc.match_substring_regex(pa.array(email, type=pa.large_string(), from_pandas=True), _EMAIL_RE2)
    email_ok = pd.Series(pc.fill_null(matched, False).to_numpy(zero_copy_only=False), index=email.index)
    return email.where(email_ok), email.notna() & ~email_ok


def assign_logins(candidates: list[tuple[str, pd.Series]]) -> tuple[pd.Series, pd.DataFrame]:
    """Apply the login rule of this module.

    ``candidates`` are (field name, values) in order of preference, ``<NA>`` where unusable. Returns the
    chosen login (``<NA>`` for none) and, for each user who lost a login to a collision, the field, the value
    and why (``reason``). A value contested once is never given to anyone later, so a user who lost
    ``jsmith`` as a username cannot be signed into the account of someone whose email is ``jsmith``.
    """
    index = candidates[0][1].index
    open_ = np.ones(len(index), dtype=bool)  # users without a login so far
    given: list[tuple[np.ndarray, pa.Array]] = []  # for each field: the users it gave a login, and the logins
    taken: list[pa.Array] = []  # lower-cased logins given out, and values contested before
    collisions = []
    for field, values in candidates:
        asked = open_ & values.notna().to_numpy()
        positions = np.flatnonzero(asked)
        value = pc.utf8_trim_whitespace(
            pa.array(values, type=pa.large_string(), from_pandas=True).filter(asked)
        )
        key = pc.utf8_lower(value)
        # One hash of the keys gives both who shares a value and how many share it.
        codes = pc.dictionary_encode(key).indices.to_numpy(zero_copy_only=False)
        counts = np.bincount(codes)[codes] if len(codes) else np.zeros(0, dtype=np.int64)
        shared = counts > 1
        clash = shared | _among(key, taken)
        won = ~clash
        given.append((positions[won], value.filter(won)))
        open_[positions[won]] = False
        taken += [key.filter(won), key.filter(shared)]
        if clash.any():
            reason = text("is shared by ", pd.Series(counts[clash]).astype("string"), " users").where(
                pd.Series(shared[clash]), "is already another user's login"
            )
            collisions.append(
                pd.DataFrame(
                    {"field": field, "value": _series(value.filter(clash)), "reason": reason}
                ).set_axis(index[positions[clash]])
            )
    lost = pd.concat(collisions) if collisions else pd.DataFrame(columns=["field", "value", "reason"])
    return _placed(given, index), lost[~lost.index.duplicated()]


def _among(key: pa.Array, taken: list[pa.Array]) -> np.ndarray:
    """Which keys are in ``taken`` (member() looks the many taken values up among a later field's keys)."""
    earlier = pa.chunked_array(taken, type=pa.large_string()).combine_chunks()
    if not len(key) or not len(earlier):
        return np.zeros(len(key), dtype=bool)
    return np.asarray(member(_series(key), _series(earlier)), dtype=bool)


def _series(strings: pa.Array) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(strings), dtype="string")


def _placed(given: list[tuple[np.ndarray, pa.Array]], index: pd.Index) -> pd.Series:
    """The logins of ``given`` (positions and values, field by field) as one column over ``index``."""
    positions = np.concatenate([where for where, _ in given])
    logins = pa.chunked_array([login for _, login in given], type=pa.large_string()).combine_chunks()
    slot = np.full(len(index), -1, dtype=np.int64)
    slot[positions] = np.arange(len(positions))
    return _series(logins.take(pa.array(slot, mask=slot < 0))).set_axis(index)


def _observer_candidates(district: District, settings: BuildSettings, wanted: pd.Series) -> pd.DataFrame:
    """Contacts not built as users already, with a chosen relationship to a student the build wants."""
    all_users = district.users
    links = observer_links(district, settings)
    students = all_users.loc[wanted & all_users["is_student"], "id"]
    links = links[member(links["student_id"], students) & ~is_self(links)]
    return all_users[all_users["is_contact"] & ~wanted & member(all_users["id"], links["contact_id"])]


def build_users(district: District, settings: BuildSettings) -> tuple[Built, pd.Series, pd.Series]:
    """The users file; each built Clever user id's Canvas user_id (for enrollments); the same for the
    contacts built only as observers (so a roster naming a contact never enrolls them)."""
    all_users = district.users
    wanted = pd.Series(False, index=all_users.index)
    for role in settings.user_roles:
        wanted |= all_users[f"is_{role}"]
    user_id = template(settings, "ids.user_id")
    used = [
        name
        for name in NAMESPACES["user"]
        if f"user.{name}" in user_id.variables or name in settings.login_id_fields
    ]
    # Only the columns this build reads are copied out of the million-row users frame.
    sources = dict.fromkeys(
        ["id", "first", "last", "email", *(c for n in used for c in USER_FIELD_SOURCES[n])]
    )
    users = all_users.loc[wanted, list(sources)]
    fields = user_fields(users, used)
    given_email = users["email"]
    email, invalid_email = _checked_email(given_email)

    values = {**{name: fields[name] for name in fields}, "email": email}
    candidates = [(field, values[field].where(~blank(values[field]))) for field in settings.login_id_fields]
    rows = pd.DataFrame(
        {
            "clever_id": users["id"],
            "user_id": user_id.render(fields.add_prefix("user.")),
            "integration_id": users["id"],
            "authentication_provider_id": settings.authentication_provider_id,
            "first_name": users["first"],
            "last_name": users["last"],
            "full_name": pd.Series(pd.NA, index=users.index, dtype="string"),
            "email": email,
            "status": "active",
        }
    )
    observer = pd.Series(False, index=users.index)
    if settings.observers.enabled:
        contacts = _observer_candidates(district, settings, wanted)
        namespace = contact_fields(contacts)
        contact_email, contact_invalid = _checked_email(namespace["email"])
        namespace = prefixed(namespace.assign(email=contact_email), "contact")
        contact_login = template(settings, "observers.login_id").render(namespace)
        rows = pd.concat(
            [
                rows,
                pd.DataFrame(
                    {
                        "clever_id": contacts["id"],
                        "user_id": template(settings, "observers.user_id").render(namespace),
                        "integration_id": contacts["id"],
                        "authentication_provider_id": settings.observers.authentication_provider_id,
                        "first_name": pd.Series(pd.NA, index=contacts.index, dtype="string"),
                        "last_name": pd.Series(pd.NA, index=contacts.index, dtype="string"),
                        "full_name": namespace["contact.name"],
                        "email": contact_email,
                        "status": "active",
                    }
                ),
            ]
        )
        candidates = [(field, column.reindex(rows.index)) for field, column in candidates]
        candidates.append(
            (OBSERVER_LOGIN_FIELD, contact_login.where(~blank(contact_login)).reindex(rows.index))
        )
        invalid_email = pd.concat([invalid_email, contact_invalid])
        given_email = pd.concat([given_email, contacts["email"]])
        observer = pd.Series(rows.index.isin(contacts.index), index=rows.index)
    login, lost = assign_logins(candidates)
    rows.insert(3, "login_id", login)

    no_user_id = blank(rows["user_id"])
    duplicate_id = rows["user_id"].duplicated() & ~no_user_id
    no_login = rows["login_id"].isna()
    sent = ~no_user_id & ~duplicate_id & ~no_login
    sent_students = sent & ~observer & all_users["is_student"].reindex(rows.index, fill_value=False)
    without_students = (
        observer & sent & ~_observes_a_sent_student(district, settings, rows, sent_students)
        if observer.any()
        else observer
    )
    sent &= ~without_students

    cid = rows["clever_id"]
    field_list = ", ".join(settings.login_id_fields)
    recovered = pd.Series(rows.index.isin(lost.index), index=rows.index) & ~no_login
    stranded = pd.Series(rows.index.isin(lost.index), index=rows.index) & no_login
    other = no_login & ~stranded & ~observer
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
            "observer_missing_login",
            WARNING,
            files.USERS,
            no_login & ~stranded & observer,
            cid,
            "contact ",
            cid,
            f" has no usable login_id ({OBSERVER_LOGIN_FIELD} '{settings.observers.login_id}' renders "
            "empty); left out",
        ),
        report(
            "observer_without_students",
            INFO,
            files.USERS,
            without_students,
            cid,
            "contact ",
            cid,
            ": none of the students it observes is in users.csv; left out",
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
            given_email,
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
    found.append(_contacts_not_built(district, settings, wanted, observer))
    kept = rows[sent]
    frame = ordered(kept, user_columns(settings), files.SORT_KEYS[files.USERS])
    return Built(frame, combine(found)), _id_map(rows[sent & ~observer]), _id_map(rows[sent & observer])


def _id_map(rows: pd.DataFrame) -> pd.Series:
    """Canvas user_id by Clever id, kept as Arrow strings (``to_numpy`` would make a Python object each)."""
    return pd.Series(
        rows["user_id"].astype("string").array, index=pd.Index(rows["clever_id"].astype("string").array)
    )


def _observes_a_sent_student(
    district: District, settings: BuildSettings, rows: pd.DataFrame, sent_users: pd.Series
) -> pd.Series:
    """For each row, whether it is the contact of a chosen link to a student who is sent."""
    links = observer_links(district, settings)
    students = rows.loc[sent_users, "clever_id"]
    observed = links[member(links["student_id"], students) & ~is_self(links)]
    return member(rows["clever_id"], observed["contact_id"])


def _contacts_not_built(
    district: District, settings: BuildSettings, wanted: pd.Series, observer: pd.Series
) -> pd.DataFrame:
    """One info finding counting the contacts that are not Canvas users (not observers, not built users)."""
    all_users = district.users
    count = int((all_users["is_contact"] & ~wanted).sum()) - int(observer.sum())
    if not count:
        return no_findings()
    if settings.observers.enabled:
        types = ", ".join(settings.observers.relationship_types)
        why = f"have no relationship of type {types} to a student of the build"
    else:
        why = "are not built as Canvas users (parents as observers are a separate option)"
    return findings(
        "contacts_not_built",
        INFO,
        files.USERS,
        pd.Series([district.district.get("id", "")]),
        pd.Series([f"{count} contact(s) {why}"]),
    )
