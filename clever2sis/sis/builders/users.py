"""users.csv: every Clever user holding a role the settings build (once, however many roles they hold), and
with ``[observers] enabled`` the contacts who observe them (observers.py).

Where each column's value comes from, and when the header has the column, is declared once in
``USERS_CSV`` (docs/adding-a-column.md shows how to add one). Everyone's login comes from the login rule
(logins.py). A row is left out, with a finding, when its user_id renders empty or repeats another's, when
it is left without a login, or when it is an observer none of whose students is sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clever2sis.clever.frames import District
from clever2sis.config import BuildSettings
from clever2sis.sis import checks
from clever2sis.sis.arrow import (
    blank,
    first_present,
    one_array,
    repeated,
    rows_of,
    string_series,
    unless_blank,
)
from clever2sis.sis.builders import NAMESPACES, Built, template
from clever2sis.sis.builders.logins import assign_logins
from clever2sis.sis.builders.observers import contacts_not_built, observer_people, without_students
from clever2sis.sis.builders.people import LOGIN, checked_email, invalid_emails, login_candidates, stack
from clever2sis.sis.findings import combine
from clever2sis.sis.lengths import shortened
from clever2sis.sis.templates import is_identity

# A column's value for a kind of row: a column of the people frame (see people.py: "user_id", "login_id",
# "email", "clever_id", or a namespace field "user.<field>" for users, "contact.<field>" for observers);
# a function of the settings (one value for every such row); or None (empty).
Source: TypeAlias = str | Callable[[BuildSettings], str] | None
# The people columns a build makes itself (all others a source names are template-namespace fields).
MADE = ("clever_id", "user_id", "login_id", "email")


@dataclass(frozen=True)
class UsersColumn:
    """A users.csv column: its value for a built Clever user (``user``) and for an observer
    (``observer``), and ``when`` the header has it (always when None)."""

    name: str
    user: Source = None
    observer: Source = None
    when: Callable[[BuildSettings], bool] | None = None

    def __post_init__(self) -> None:
        for source, namespace in ((self.user, "user"), (self.observer, "contact")):
            if isinstance(source, str) and source not in MADE:
                prefix, _, field = source.partition(".")
                if prefix != namespace or field not in NAMESPACES[namespace]:
                    raise ValueError(
                        f"users.csv column {self.name}: {source!r} is neither a value the build makes "
                        f"({', '.join(MADE)}) nor a field of the {namespace} namespace "
                        f"({', '.join(f'{namespace}.{name}' for name in NAMESPACES[namespace])})"
                    )


def _active(settings: BuildSettings) -> str:
    return "active"


def _user_ids_from_templates(settings: BuildSettings) -> bool:
    """Whether a user_id template is not the Clever id itself, so that users.csv carries the Clever id too."""
    observers = settings.observers
    return not is_identity(settings.ids["user_id"], "user") or (
        observers.enabled and not is_identity(observers.user_id, "contact")
    )


def _any_provider(settings: BuildSettings) -> bool:
    return bool(settings.authentication_provider_id) or (
        settings.observers.enabled and bool(settings.observers.authentication_provider_id)
    )


def _observers(settings: BuildSettings) -> bool:
    return settings.observers.enabled


# users.csv, column by column in header order (lib/sis/csv/user_importer.rb reads them by name).
USERS_CSV: tuple[UsersColumn, ...] = (
    UsersColumn("user_id", user="user_id", observer="user_id"),
    UsersColumn("integration_id", user="clever_id", observer="clever_id", when=_user_ids_from_templates),
    UsersColumn("login_id", user="login_id", observer="login_id"),
    UsersColumn(
        "authentication_provider_id",
        user=lambda settings: settings.authentication_provider_id,
        observer=lambda settings: settings.observers.authentication_provider_id,
        when=_any_provider,
    ),
    UsersColumn("first_name", user="user.first"),
    UsersColumn("last_name", user="user.last"),
    UsersColumn("full_name", observer="contact.name", when=_observers),
    UsersColumn("email", user="email", observer="email"),
    UsersColumn("status", user=_active, observer=_active),
)

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


def users_csv(settings: BuildSettings, table: Sequence[UsersColumn] = USERS_CSV) -> tuple[UsersColumn, ...]:
    """The columns of users.csv under ``settings`` (of ``table``, the declared ones unless given)."""
    return tuple(column for column in table if column.when is None or column.when(settings))


def user_columns(settings: BuildSettings) -> tuple[str, ...]:
    return tuple(column.name for column in users_csv(settings))


def namespace_fields(columns: Sequence[UsersColumn], namespace: str) -> list[str]:
    """The ``<namespace>.<field>`` people columns that ``columns`` read for users ("user") or observers
    ("contact")."""
    side = "user" if namespace == "user" else "observer"
    sources = (getattr(column, side) for column in columns)
    return list(dict.fromkeys(s for s in sources if isinstance(s, str) and s.startswith(f"{namespace}.")))


def user_fields(users: pd.DataFrame, names: Sequence[str] = NAMESPACES["user"]) -> pd.DataFrame:
    """The ``user`` template namespace, or the ``names`` of it a build uses (see ``USER_FIELD_SOURCES``)."""
    return pd.DataFrame(
        {name: first_present(*(users[column] for column in USER_FIELD_SOURCES[name])) for name in names},
        index=users.index,
    )


def build_users(
    district: District, settings: BuildSettings, table: Sequence[UsersColumn] = USERS_CSV
) -> tuple[Built, pd.Series, pd.Series]:
    """The users file; each built Clever user id's Canvas user_id (for enrollments); the same for the
    contacts built only as observers (so a roster naming a contact never enrolls them).

    ``table``: the users.csv columns (``USERS_CSV``; a test may add one).
    """
    all_users = district.users
    wanted = pd.Series(False, index=all_users.index)
    for role in settings.user_roles:
        wanted |= all_users[f"is_{role}"]
    columns = users_csv(settings, table)
    people, found, links = _people(district, settings, wanted, columns)
    login, lost, refused = assign_logins(login_candidates(people))
    for column in [column for column in people.columns if column.startswith(LOGIN)]:
        del people[column]
    people["login_id"] = login
    del login
    order = pc.sort_indices(one_array(people["user_id"])).to_numpy()  # users.csv's order, and for repeats
    sent, left_out = _sent(people, _LostLogins(lost, refused), order, links, settings)
    del lost, refused
    found += [*left_out, contacts_not_built(district, settings, wanted, int(people["observer"].sum()))]
    observer = people["observer"]
    user_map, observer_map = _id_map(people, sent & ~observer), _id_map(people, sent & observer)
    frame = _users_file(people, columns, order[sent.to_numpy()[order]], settings)
    return Built(frame, combine(found)), user_map, observer_map


def _people(
    district: District, settings: BuildSettings, wanted: pd.Series, columns: Sequence[UsersColumn]
) -> tuple[pd.DataFrame, list[pd.DataFrame], pd.DataFrame | None]:
    """Everyone who may be a row of users.csv (``columns``), as one people frame (see people.py): the
    Clever users the build wants, then the contacts who may observe them; their findings so far; and the
    chosen observer links (None without observers)."""
    users, invalid = _built_users(district, settings, wanted, namespace_fields(columns, "user"))
    if not settings.observers.enabled:
        return users, [invalid], None
    contacts, contacts_invalid, links = observer_people(
        district, settings, wanted, namespace_fields(columns, "contact")
    )
    return stack([users, contacts]), [invalid, contacts_invalid], links


def _built_users(
    district: District, settings: BuildSettings, wanted: pd.Series, fields: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Clever users of the build as people (see people.py) with the ``user.<field>`` columns named in
    ``fields``, and their ``invalid_email`` findings.

    Only the columns of the users frame this build reads are copied out of it (a district has a million
    users).
    """
    all_users = district.users
    user_id = template(settings, "ids.user_id")
    read = [
        name
        for name in NAMESPACES["user"]
        if f"user.{name}" in user_id.variables or name in settings.login_id_fields or f"user.{name}" in fields
    ]
    sources = ["id", "email", *(column for name in read for column in USER_FIELD_SOURCES[name])]
    users = rows_of(all_users, wanted.to_numpy(), list(dict.fromkeys(sources)))
    namespace = user_fields(users, read)
    email, invalid = checked_email(users["email"])
    login_values = {**{name: namespace[name] for name in namespace}, "email": email}
    context = pd.DataFrame(
        {variable: namespace[variable.removeprefix("user.")] for variable in user_id.variables},
        index=users.index,
    )
    people = pd.DataFrame(
        {
            "clever_id": users["id"],
            "user_id": user_id.render(context),
            "email": email,
            "observer": np.zeros(len(users), dtype=bool),
            "student": all_users["is_student"].to_numpy()[wanted.to_numpy()],
            **{LOGIN + name: unless_blank(login_values[name]) for name in settings.login_id_fields},
            **{field: namespace[field.removeprefix("user.")] for field in fields},
        }
    )
    return people, invalid_emails(users["id"], users["email"], invalid)


@dataclass(frozen=True)
class _LostLogins:
    """The login values users lost (``assign_logins``): to a collision (``collided``) and because Canvas
    would not save them (``refused``); each indexed like the people frame."""

    collided: pd.DataFrame
    refused: pd.DataFrame


def _sent(
    people: pd.DataFrame,
    lost_logins: _LostLogins,
    order: np.ndarray,
    links: pd.DataFrame | None,
    settings: BuildSettings,
) -> tuple[pd.Series, list[pd.DataFrame]]:
    """Which rows of ``people`` users.csv sends, and the findings for those it leaves out.

    ``lost_logins``: the values the login rule did not give; ``order``: a stable sort of the user_ids;
    ``links``: the chosen observer links (None without observers).
    """
    lost = lost_logins.collided
    cid, user_id, login, observer = (
        people["clever_id"],
        people["user_id"],
        people["login_id"],
        people["observer"],
    )
    no_user_id = blank(user_id)
    duplicate_id = repeated(user_id, order) & ~no_user_id
    no_login = login.isna()
    sent = ~no_user_id & ~duplicate_id & ~no_login
    lonely = without_students(people, sent, links) if links is not None else observer
    sent &= ~lonely
    stranded = pd.Series(people.index.isin(lost.index), index=people.index) & no_login
    refused = lost_logins.refused
    unusable = pd.Series(people.index.isin(refused.index), index=people.index) & no_login
    # The users who lost a login to a collision are few: their messages are made from their rows only.
    lost_cid = cid.loc[lost.index]
    collision = {"user": lost_cid, "value": lost["value"], "field": lost["field"], "reason": lost["reason"]}
    found = [
        checks.DUPLICATE_LOGIN_REPLACED(
            ~no_login.loc[lost.index], lost_cid, **collision, login_id=login.loc[lost.index]
        ),
        checks.DUPLICATE_LOGIN_LEFT_OUT(no_login.loc[lost.index], lost_cid, **collision),
        *_refused_logins(refused, cid, login, observer),
        checks.MISSING_LOGIN(
            no_login & ~stranded & ~unusable & ~observer,
            cid,
            user=cid,
            login_id_fields=", ".join(settings.login_id_fields),
        ),
        checks.OBSERVER_MISSING_LOGIN(
            no_login & ~stranded & ~unusable & observer,
            cid,
            contact=cid,
            login_id_template=settings.observers.login_id,
        ),
        checks.OBSERVER_WITHOUT_STUDENTS(lonely, cid, contact=cid),
        checks.USER_WITHOUT_ID(no_user_id, cid, user=cid),
        checks.DUPLICATE_USER_ID(duplicate_id, cid, user=cid, user_id=user_id),
    ]
    return sent, found


def _refused_logins(
    refused: pd.DataFrame, cid: pd.Series, login: pd.Series, observer: pd.Series
) -> list[pd.DataFrame]:
    """The findings for the login values Canvas would not save (``refused``, see ``assign_logins``): the
    user was sent with another login, or left out (an observer has no other login field)."""
    if refused.empty:
        return []
    at = refused.index
    user, value, given = cid.loc[at], shortened(refused["value"]), login.loc[at]
    has_login, is_observer = given.notna(), observer.loc[at]
    reason, field = refused["reason"], refused["field"]
    return [
        checks.UNUSABLE_LOGIN_REPLACED(
            has_login, user, user=user, value=value, field=field, reason=reason, login_id=given
        ),
        checks.UNUSABLE_LOGIN_LEFT_OUT(
            ~has_login & ~is_observer, user, user=user, value=value, field=field, reason=reason
        ),
        checks.OBSERVER_UNUSABLE_LOGIN(
            ~has_login & is_observer, user, contact=user, value=value, reason=reason
        ),
    ]


def _id_map(people: pd.DataFrame, keep: pd.Series) -> pd.Series:
    """Canvas user_id by Clever id, kept as Arrow strings (``to_numpy`` would make a Python object each)."""
    at = pa.array(keep.to_numpy())
    user_ids, clever_ids = (
        string_series(one_array(people[column]).filter(at)) for column in ("user_id", "clever_id")
    )
    return pd.Series(user_ids.array, index=pd.Index(clever_ids.array))


def _users_file(
    people: pd.DataFrame, columns: Sequence[UsersColumn], positions: np.ndarray, settings: BuildSettings
) -> pd.DataFrame:
    """users.csv: the ``columns`` of the ``people`` at ``positions``, as strings with missing values empty
    (what ``ordered`` makes).

    Each people column is dropped once taken for the last time, so the file is not held twice (``people``
    is consumed); values that follow from the settings alone are made at the file's length.
    """
    at = pa.array(positions)
    observer = people["observer"].to_numpy()[positions]
    uses = Counter(s for column in columns for s in {column.user, column.observer} if isinstance(s, str))

    def values(source: Source) -> pa.Array | pa.Scalar:
        if source is None:
            return pa.scalar(None, pa.large_string())
        if not isinstance(source, str):
            return pa.scalar(source(settings), pa.large_string())
        taken = one_array(people[source]).take(at)
        uses[source] -= 1
        if not uses[source]:
            del people[source]
        return taken

    out = {}
    for column in columns:
        user = values(column.user)
        if column.observer == column.user or not observer.any():
            value = user
        else:
            value = pc.if_else(pa.array(observer), values(column.observer), user)
        if isinstance(value, pa.Scalar):
            value = pa.repeat(value, len(positions))
        out[column.name] = string_series(pc.fill_null(value, ""))
    return pd.DataFrame(out)
