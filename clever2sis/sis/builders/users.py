"""users.csv: every Clever user holding a role the settings build (once, however many roles they hold), and
with ``[observers] enabled`` the contacts who observe them (observers.py).

Where each column's value comes from, and when the header has the column, is declared once in
``USERS_CSV`` (docs/adding-a-column.md shows how to add one). Everyone's login comes from the login rule
(logins.py), which gives no one a login Canvas still holds for a removed user (``claimed``, from the sync). A
row is left out, with a finding, when its user_id renders empty or repeats another's, when it is left
without a login, or when it is an observer none of whose students is sent. The keys a person is recognised
by later (identities.py) are given with the file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias

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
    lookup,
    one_array,
    repeated,
    rows_of,
    string_series,
    unless_blank,
)
from clever2sis.sis.builders import NAMESPACES, Built, template
from clever2sis.sis.builders.identities import (
    ACCOUNT_IDS,
    KEY_COLUMNS,
    USER_KEY_FIELDS,
    role_names,
    school_account_ids,
)
from clever2sis.sis.builders.logins import assign_logins, given_by, without_claimed
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
# The people columns of a person's identity keys (identities.py): "key:<name>", never read by users.csv.
KEY = "key:"
# The columns of ``claimed`` (build_users): a login (lower-cased), the removed user holding it, and when.
CLAIMED_COLUMNS = ("login_id", "user_id", "removed_on")


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


class BuiltUsers(NamedTuple):
    """What :func:`build_users` gives: the file; each built Clever user id's Canvas user_id (for
    enrollments); the same for the contacts built only as observers (so a roster naming a contact never
    enrolls them); and the identity keys of the file's rows (user_id and identities.py's KEY_COLUMNS)."""

    built: Built
    user_map: pd.Series
    observer_map: pd.Series
    keys: pd.DataFrame


def build_users(
    district: District,
    settings: BuildSettings,
    table: Sequence[UsersColumn] = USERS_CSV,
    *,
    claimed: pd.DataFrame | None = None,
    school_accounts: pd.Series | None = None,
) -> BuiltUsers:
    """users.csv, the maps of user ids, and the rows' identity keys (see :class:`BuiltUsers`).

    ``table``: the users.csv columns (``USERS_CSV``; a test may add one). ``claimed``: logins Canvas still
    holds for removed users (:data:`CLAIMED_COLUMNS`), which the login rule gives no one.
    ``school_accounts``: each Clever school id's Canvas account_id, for the keys' ``account_ids`` (left
    empty without it: only the sync's builds need them).
    """
    all_users = district.users
    wanted = pd.Series(False, index=all_users.index)
    for role in settings.user_roles:
        wanted |= all_users[f"is_{role}"]
    columns = users_csv(settings, table)
    people, found, links = _people(district, settings, wanted, columns, school_accounts)
    candidates = login_candidates(people)
    offered = None
    if claimed is not None and len(claimed):
        candidates, offered = without_claimed(candidates, claimed["login_id"])
    login, lost, refused = assign_logins(candidates)
    claimed_lost = _claimed_losses(people, candidates, login, offered, claimed)
    del candidates, offered
    for column in [column for column in people.columns if column.startswith(LOGIN)]:
        del people[column]
    people["login_id"] = login
    del login
    order = pc.sort_indices(one_array(people["user_id"])).to_numpy()  # users.csv's order, and for repeats
    sent, left_out = _sent(people, _LostLogins(lost, refused, claimed_lost), order, links, settings)
    del lost, refused, claimed_lost
    found += [*left_out, contacts_not_built(district, settings, wanted, int(people["observer"].sum()))]
    observer = people["observer"]
    user_map, observer_map = _id_map(people, sent & ~observer), _id_map(people, sent & observer)
    positions = order[sent.to_numpy()[order]]
    keys = _identity_keys(people, positions)
    frame = _users_file(people, columns, positions, settings)
    return BuiltUsers(Built(frame, combine(found)), user_map, observer_map, keys)


def _identity_keys(people: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """The user_id and identity keys (identities.py's KEY_COLUMNS) of the ``people`` at ``positions``; the
    ``key:`` columns are dropped from ``people`` once taken."""
    at = pa.array(positions)
    out = {"user_id": string_series(one_array(people["user_id"]).take(at))}
    for name in KEY_COLUMNS:
        source = "clever_id" if name == "clever_id" else KEY + name
        if source in people:
            out[name] = string_series(one_array(people[source]).take(at))
            if source != "clever_id":
                del people[source]
        else:
            out[name] = pd.Series(pd.NA, index=range(len(positions)), dtype="string")
    return pd.DataFrame(out)


def _claimed_losses(
    people: pd.DataFrame,
    candidates: list[tuple[str, pd.Series]],
    login: pd.Series,
    offered: pd.DataFrame | None,
    claimed: pd.DataFrame | None,
) -> pd.DataFrame:
    """The users who reached a claimed login (``offered``: the first claimed value each offered, by
    :func:`~clever2sis.sis.builders.logins.without_claimed`) before the field that gave their login, or who
    were left without one: field, value, and the removed user holding it (``claimant``, ``removed_on``)."""
    columns = ["field", "value", "claimant", "removed_on"]
    if offered is None or offered.empty or claimed is None:
        return pd.DataFrame({column: pd.Series([], dtype="string") for column in columns})
    at = offered.index
    given = given_by([(field, values.loc[at]) for field, values in candidates], login.loc[at])
    lost = offered.loc[offered["position"].to_numpy() < given]
    holder = claimed.drop_duplicates("login_id", keep="last").set_index("login_id")
    value = lost["value"].str.lower()
    return pd.DataFrame(
        {
            "field": lost["field"].astype("string"),
            "value": lost["value"],
            "claimant": lookup(value, holder["user_id"]),
            "removed_on": lookup(value, holder["removed_on"]),
        },
        index=lost.index,
    )


def _people(
    district: District,
    settings: BuildSettings,
    wanted: pd.Series,
    columns: Sequence[UsersColumn],
    school_accounts: pd.Series | None = None,
) -> tuple[pd.DataFrame, list[pd.DataFrame], pd.DataFrame | None]:
    """Everyone who may be a row of users.csv (``columns``), as one people frame (see people.py): the
    Clever users the build wants, then the contacts who may observe them; their findings so far; and the
    chosen observer links (None without observers). With ``school_accounts`` the users have their
    schools' account_ids (a ``key:`` column; contacts have none)."""
    users, invalid = _built_users(district, settings, wanted, namespace_fields(columns, "user"))
    if school_accounts is not None:
        accounts = school_account_ids(district, school_accounts).filter(pa.array(wanted.to_numpy()))
        users[KEY + ACCOUNT_IDS] = string_series(accounts)
    if not settings.observers.enabled:
        return users, [invalid], None
    fields = namespace_fields(columns, "contact")
    contacts, contacts_invalid, links = observer_people(
        district, settings, wanted, [*fields, "contact.sis_id"]
    )
    contacts[KEY + "sis_id"] = contacts["contact.sis_id"]
    if "contact.sis_id" not in fields:
        del contacts["contact.sis_id"]
    flags = _flags_of(district, contacts["clever_id"])
    contacts[KEY + "roles"] = string_series(role_names(flags))
    return stack([users, contacts]), [invalid, contacts_invalid], links


def _flags_of(district: District, clever_ids: pd.Series) -> dict[str, np.ndarray]:
    """The ``is_<role>`` flags of the users with ``clever_ids`` (few: the contacts built as observers)."""
    users = district.users
    at = pc.index_in(one_array(clever_ids), value_set=one_array(users["id"])).to_numpy(zero_copy_only=False)
    at = np.asarray(at, dtype=np.int64)
    return {column: users[column].to_numpy()[at] for column in users.columns if column.startswith("is_")}


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
        if f"user.{name}" in user_id.variables
        or name in settings.login_id_fields
        or f"user.{name}" in fields
        or name in USER_KEY_FIELDS
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
            **{KEY + name: namespace[name] for name in USER_KEY_FIELDS},
            KEY + "roles": string_series(role_names(_flags(all_users, wanted))),
        }
    )
    return people, invalid_emails(users["id"], users["email"], invalid)


def _flags(users: pd.DataFrame, wanted: pd.Series) -> dict[str, np.ndarray]:
    """The ``is_<role>`` flags of the ``wanted`` users."""
    keep = wanted.to_numpy()
    return {column: users[column].to_numpy()[keep] for column in users.columns if column.startswith("is_")}


@dataclass(frozen=True)
class _LostLogins:
    """The login values users lost (``assign_logins``): to a collision (``collided``), because Canvas
    would not save them (``refused``), and because Canvas holds them for a removed user (``claimed``,
    :func:`_claimed_losses`); each indexed like the people frame."""

    collided: pd.DataFrame
    refused: pd.DataFrame
    claimed: pd.DataFrame


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
    claimed_lost = lost_logins.claimed
    stranded = (
        pd.Series(people.index.isin(lost.index.union(claimed_lost.index)), index=people.index) & no_login
    )
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
        *_claimed_findings(claimed_lost, cid, login),
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


def _claimed_findings(claimed_lost: pd.DataFrame, cid: pd.Series, login: pd.Series) -> list[pd.DataFrame]:
    """The ``login_claimed_by_removed_user`` findings of the users in ``claimed_lost``: sent with another
    login, or left out."""
    if claimed_lost.empty:
        return []
    at = claimed_lost.index
    user, given = cid.loc[at], login.loc[at]
    values = {
        "user": user,
        "value": claimed_lost["value"],
        "field": claimed_lost["field"],
        "claimant": claimed_lost["claimant"],
        "removed_on": claimed_lost["removed_on"],
    }
    return [
        checks.LOGIN_CLAIMED_REPLACED(given.notna(), user, **values, login_id=given),
        checks.LOGIN_CLAIMED_LEFT_OUT(given.isna(), user, **values),
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
