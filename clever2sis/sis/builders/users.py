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
from clever2sis.sis.builders import NAMESPACES, Built, arrow_strings, blank, member, prefixed, template
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
    """Each row's first present value among ``columns`` (aligned string columns)."""
    if len(columns) == 1:
        return columns[0]
    return _series(pc.coalesce(*(_strings(column) for column in columns)), columns[0].index)


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
    email = _strings(values.str.strip())
    email_ok = pc.fill_null(pc.match_substring_regex(email, _EMAIL_RE2), False)
    invalid = pc.and_(pc.is_valid(email), pc.invert(email_ok))
    return (
        _series(pc.if_else(email_ok, email, pa.scalar(None, pa.large_string())), values.index),
        pd.Series(invalid.to_numpy(zero_copy_only=False), index=values.index),
    )


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
        value = pc.utf8_trim_whitespace(_strings(values).filter(asked))
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


def _placed(given: list[tuple[np.ndarray, pa.Array]], index: pd.Index) -> pd.Series:
    """The logins of ``given`` (positions and values, field by field) as one column over ``index``."""
    positions = np.concatenate([where for where, _ in given])
    logins = pa.chunked_array([login for _, login in given], type=pa.large_string()).combine_chunks()
    slot = np.full(len(index), -1, dtype=np.int64)
    slot[positions] = np.arange(len(positions))
    return _series(logins.take(pa.array(slot, mask=slot < 0))).set_axis(index)


def _observer_candidates(
    district: District, settings: BuildSettings, wanted: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Contacts not built as users already, with a chosen relationship to a student the build wants (the
    columns of the ``contact`` namespace); and those relationships."""
    all_users = district.users
    links = observer_links(district, settings)
    students = all_users.loc[wanted & all_users["is_student"], "id"]
    links = links[member(links["student_id"], students) & ~is_self(links)]
    maybe = (all_users["is_contact"] & ~wanted).to_numpy()
    chosen = maybe.copy()
    chosen[maybe] = member(_series(_strings(all_users["id"], maybe)), links["contact_id"]).to_numpy()
    return _rows_of(all_users, chosen, ["id", "first", "last", "email", "contact_sis_id"]), links


def build_users(district: District, settings: BuildSettings) -> tuple[Built, pd.Series, pd.Series]:
    """The users file; each built Clever user id's Canvas user_id (for enrollments); the same for the
    contacts built only as observers (so a roster naming a contact never enrolls them).

    A district has a million users, so each intermediate column is let go as soon as it has been used.
    """
    all_users = district.users
    wanted = pd.Series(False, index=all_users.index)
    for role in settings.user_roles:
        wanted |= all_users[f"is_{role}"]
    is_student = all_users["is_student"].to_numpy()[wanted.to_numpy()]  # rows are numbered from 0 below
    user_id = template(settings, "ids.user_id")
    used = [
        name
        for name in NAMESPACES["user"]
        if f"user.{name}" in user_id.variables or name in settings.login_id_fields
    ]
    # Only the columns this build reads are copied out of the users frame.
    sources = ["id", "first", "last", "email", *(c for n in used for c in USER_FIELD_SOURCES[n])]
    users = _rows_of(all_users, wanted.to_numpy(), list(dict.fromkeys(sources)))
    fields = user_fields(users, used)
    email, invalid_email = _checked_email(users["email"])
    found = [_invalid_emails(users["id"], users["email"], invalid_email)]

    values = {**{name: fields[name] for name in fields}, "email": email}
    candidates: list[tuple[str, pd.Series]] = [
        (field, _unless_blank(values[field])) for field in settings.login_id_fields
    ]
    rows = pd.DataFrame(
        {
            "clever_id": users["id"],
            "user_id": user_id.render(fields.add_prefix("user.")),
            "first_name": users["first"],
            "last_name": users["last"],
            "email": email,
        }
    )
    del users, fields, values, email
    observer = pd.Series(False, index=rows.index)
    if settings.observers.enabled:
        contacts, links = _observer_candidates(district, settings, wanted)
        namespace = contact_fields(contacts)
        contact_email, contact_invalid = _checked_email(namespace["email"])
        found.append(_invalid_emails(contacts["id"], contacts["email"], contact_invalid))
        namespace = prefixed(namespace.assign(email=contact_email), "contact")
        contact_login = template(settings, "observers.login_id").render(namespace)
        no_name = pd.Series(pd.NA, index=contacts.index, dtype="string")
        rows = pd.concat(
            [
                rows.assign(full_name=pd.Series(pd.NA, index=rows.index, dtype="string")),
                pd.DataFrame(
                    {
                        "clever_id": contacts["id"],
                        "user_id": template(settings, "observers.user_id").render(namespace),
                        "first_name": no_name,
                        "last_name": no_name,
                        "email": contact_email,
                        "full_name": namespace["contact.name"],
                    }
                ),
            ],
            ignore_index=True,
        )
        built_users = len(rows) - len(contacts)  # rows: the users, then the contacts
        candidates = [(field, _padded(values, 0, len(contacts), rows.index)) for field, values in candidates]
        login_field = _padded(_unless_blank(contact_login), built_users, 0, rows.index)
        candidates.append((OBSERVER_LOGIN_FIELD, login_field))
        observer = pd.Series(np.arange(len(rows)) >= built_users, index=rows.index)
        is_student = np.append(is_student, np.zeros(len(contacts), dtype=bool))
    login, lost = assign_logins(candidates)
    del candidates
    rows["login_id"] = login

    no_user_id = blank(rows["user_id"])
    # One stable sort by user_id (users.csv's sort key) finds repeated ids and orders the file.
    order = pc.sort_indices(_strings(rows["user_id"])).to_numpy()
    duplicate_id = _repeated(rows["user_id"], order) & ~no_user_id
    no_login = login.isna()
    sent = ~no_user_id & ~duplicate_id & ~no_login
    if observer.any():
        sent_students = sent & ~observer & is_student
        without_students = observer & sent & ~_observes_a_sent_student(links, rows, sent_students, observer)
    else:
        without_students = observer
    sent &= ~without_students

    cid = rows["clever_id"]
    field_list = ", ".join(settings.login_id_fields)
    stranded = pd.Series(rows.index.isin(lost.index), index=rows.index) & no_login
    other = no_login & ~stranded & ~observer
    # The users who lost a login to a collision are few: their messages are made from their rows only.
    lost_cid = cid.loc[lost.index]
    lost_login = (
        "user ",
        lost_cid,
        ": login_id '",
        lost["value"],
        "' (",
        lost["field"],
        ") ",
        lost["reason"],
    )
    found += [
        report(
            "duplicate_login",
            WARNING,
            files.USERS,
            ~no_login.loc[lost.index],
            lost_cid,
            *lost_login,
            "; sent with login_id '",
            login.loc[lost.index],
            "' instead",
        ),
        report(
            "duplicate_login",
            WARNING,
            files.USERS,
            no_login.loc[lost.index],
            lost_cid,
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
        _contacts_not_built(district, settings, wanted, observer),
    ]
    del login, lost, lost_cid, lost_login, cid
    user_map, observer_map = _id_map(rows, sent & ~observer), _id_map(rows, sent & observer)
    frame = _users_file(rows, observer, order[sent.to_numpy()[order]], settings)
    return Built(frame, combine(found)), user_map, observer_map


def _invalid_emails(clever_id: pd.Series, given: pd.Series, invalid: pd.Series) -> pd.DataFrame:
    return report(
        "invalid_email",
        WARNING,
        files.USERS,
        invalid,
        clever_id,
        "user ",
        clever_id,
        ": email '",
        given,
        "' is not a valid address; sent without an email",
    )


def _users_file(
    rows: pd.DataFrame, observer: pd.Series, positions: np.ndarray, settings: BuildSettings
) -> pd.DataFrame:
    """users.csv: ``rows`` at ``positions``, as strings with missing values empty (what ``ordered`` makes).

    Each column is dropped from ``rows`` once taken, so the file is not held twice; the columns that follow
    from the settings alone are made here, at the file's length.
    """
    at = pa.array(positions)
    out = {}
    for column in user_columns(settings):
        if column in rows:
            values = _strings(rows.pop(column)).take(at)
        elif column == "integration_id":
            values = _strings(rows["clever_id"]).take(at)
        elif column == "authentication_provider_id":
            values = pc.if_else(
                pa.array(observer.to_numpy()[positions]),
                pa.scalar(settings.observers.authentication_provider_id, pa.large_string()),
                pa.scalar(settings.authentication_provider_id, pa.large_string()),
            )
        elif column == "status":
            values = pa.repeat(pa.scalar("active", pa.large_string()), len(positions))
        else:
            raise KeyError(f"users.csv column {column!r} has no source here")
        out[column] = _series(pc.fill_null(values, ""))
    return pd.DataFrame(out)


def _strings(values: pd.Series, keep: np.ndarray | None = None) -> pa.Array:
    """The column (its rows where ``keep``) as one Arrow array: pandas may hold it in many chunks, which
    are filtered before they are joined."""
    strings = arrow_strings(values)
    if keep is not None:
        strings = strings.filter(keep)
    return strings.combine_chunks()


def _series(strings: pa.Array | pa.ChunkedArray, index: pd.Index | None = None) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(strings), index=index, dtype="string")


def _rows_of(frame: pd.DataFrame, keep: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """``frame.loc[keep, columns]`` for string columns, numbered from 0, filtered by Arrow (pandas takes by
    position, ~5x slower). Each column's chunks are filtered where they are and then joined once, so later
    steps find one array (joining them before would copy the rows left out too)."""
    return pd.DataFrame({column: _series(_strings(frame[column], keep)) for column in columns})


def _padded(values: pd.Series, before: int, after: int, index: pd.Index) -> pd.Series:
    """``values`` with ``before`` missing values ahead and ``after`` behind, as a column over ``index``."""
    nulls = pa.nulls(before, pa.large_string()), pa.nulls(after, pa.large_string())
    return _series(pa.concat_arrays([nulls[0], _strings(values), nulls[1]]), index)


def _unless_blank(values: pd.Series) -> pd.Series:
    """``values`` with blank ones (missing or only whitespace) made ``<NA>``; ``values`` itself if none is."""
    empty = blank(values)
    if not (empty & values.notna()).any():
        return values
    kept = pc.if_else(pa.array(empty.to_numpy()), pa.scalar(None, pa.large_string()), _strings(values))
    return _series(kept, values.index)


def _repeated(values: pd.Series, order: np.ndarray) -> pd.Series:
    """``values.duplicated()`` given ``order``, a stable sort of ``values``: in it a repeated value comes
    right after its first occurrence. Missing values read as empty."""
    in_order = pc.fill_null(_strings(values), "").take(pa.array(order))
    repeated = np.zeros(len(values), dtype=bool)
    if len(values) > 1:
        same = pc.equal(in_order.slice(1), in_order.slice(0, len(values) - 1))
        repeated[order[1:]] = same.to_numpy(zero_copy_only=False)
    return pd.Series(repeated, index=values.index)


def _id_map(rows: pd.DataFrame, keep: pd.Series) -> pd.Series:
    """Canvas user_id by Clever id, kept as Arrow strings (``to_numpy`` would make a Python object each)."""
    at = pa.array(keep.to_numpy())
    user_ids, clever_ids = (_series(_strings(rows[column]).filter(at)) for column in ("user_id", "clever_id"))
    return pd.Series(user_ids.array, index=pd.Index(clever_ids.array))


def _observes_a_sent_student(
    links: pd.DataFrame, rows: pd.DataFrame, sent_students: pd.Series, observer: pd.Series
) -> pd.Series:
    """For each observer row, whether it is the contact of one of ``links`` to a student who is sent.

    ``links`` are the chosen links to the students the build wants, among whom the sent ones are.
    """
    observed = links[member(links["student_id"], rows.loc[sent_students, "clever_id"])]
    found = pd.Series(False, index=rows.index)
    found[observer] = member(rows.loc[observer, "clever_id"], observed["contact_id"]).to_numpy()
    return found


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
