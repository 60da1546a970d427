"""The contacts who become Canvas users, as observers of their students (``[observers] enabled``).

A contact who is not a built user already and has a relationship of a chosen type (see user_observers.py)
to a student the build wants becomes a row of users.csv. Its user_id and login are the ``observers.user_id``
and ``observers.login_id`` templates over the ``contact`` namespace. The login goes through the same rule as
everyone's (logins.py), as one more login field after all of ``login_id_fields``: built users are served
first, so a parent's email can never take a student's or teacher's login, and a value contested once (two
parents sharing an email) is given to none of them. Clever keeps a contact's whole name in ``name.last``,
so observers are sent with ``full_name`` (Canvas then infers the sortable name) and empty first and last
names. A contact whose students all end up left out of users.csv is left out too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from clever2sis.clever.frames import District
from clever2sis.config import BuildSettings
from clever2sis.sis import checks
from clever2sis.sis.arrow import member, one_array, rows_of, string_series, unless_blank
from clever2sis.sis.builders import prefixed, template
from clever2sis.sis.builders.people import LOGIN, checked_email, invalid_emails
from clever2sis.sis.builders.user_observers import is_self, observer_links

OBSERVER_LOGIN_FIELD = "observers.login_id"


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


def observer_people(
    district: District, settings: BuildSettings, wanted: pd.Series, fields: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The contacts who may become observers, as people (see people.py) with the ``contact.<field>``
    columns named in ``fields``; their ``invalid_email`` findings; and their chosen links to the students
    the build wants (``wanted``: the rows of the users frame built as users)."""
    contacts, links = _candidates(district, settings, wanted)
    namespace = contact_fields(contacts)
    email, invalid = checked_email(namespace["email"])
    found = invalid_emails(contacts["id"], contacts["email"], invalid)
    namespace = prefixed(namespace.assign(email=email), "contact")
    people = pd.DataFrame(
        {
            "clever_id": contacts["id"],
            "user_id": template(settings, "observers.user_id").render(namespace),
            "email": email,
            "observer": np.ones(len(contacts), dtype=bool),
            "student": np.zeros(len(contacts), dtype=bool),
            LOGIN + OBSERVER_LOGIN_FIELD: unless_blank(
                template(settings, "observers.login_id").render(namespace)
            ),
            **{field: namespace[field] for field in fields},
        }
    )
    return people, found, links


def _candidates(
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
    chosen[maybe] = member(string_series(one_array(all_users["id"], maybe)), links["contact_id"]).to_numpy()
    return rows_of(all_users, chosen, ["id", "first", "last", "email", "contact_sis_id"]), links


def without_students(people: pd.DataFrame, sent: pd.Series, links: pd.DataFrame) -> pd.Series:
    """The observers among the ``sent`` rows of ``people`` none of whose students is sent.

    ``links`` are the chosen links to the students the build wants, among whom the sent ones are.
    """
    observer = people["observer"]
    if not observer.any():
        return observer
    sent_students = people.loc[sent & ~observer & people["student"], "clever_id"]
    observed = links[member(links["student_id"], sent_students)]
    observes = pd.Series(False, index=people.index)
    observes[observer] = member(people.loc[observer, "clever_id"], observed["contact_id"]).to_numpy()
    return observer & sent & ~observes


def contacts_not_built(
    district: District, settings: BuildSettings, wanted: pd.Series, observers: int
) -> pd.DataFrame:
    """One finding counting the contacts that are not Canvas users (neither ``observers`` nor built users)."""
    count = int((district.users["is_contact"] & ~wanted).sum()) - observers
    any_left, district_id = pd.Series([count > 0]), pd.Series([district.district.get("id", "")])
    if not settings.observers.enabled:
        return checks.CONTACTS_NOT_BUILT(any_left, district_id, count=str(count))
    types = ", ".join(settings.observers.relationship_types)
    return checks.CONTACTS_NOT_OBSERVERS(any_left, district_id, count=str(count), relationship_types=types)
