"""user_observers.csv: Clever contacts (parents, guardians) observing their students. Opt-in: ``[observers]``.

A contact's ``student_relationships`` whose ``type`` is one of ``observers.relationship_types`` become rows
(observer_id, student_id, active). The observer is the contact's row in users.csv (see observers.py, which
makes observers of contacts through the same login rule as everyone's), the student the student's. Canvas
processes this file last (the importer order of ``lib/sis/csv/import_refactored.rb``), so both exist by
then (``lib/sis/user_observer_importer.rb``).

Every link that is not sent is listed: a student who is not in the pull, or not in users.csv; a contact
left out of users.csv; a link that would have someone observe themself (the same user, or Clever's
relationship ``Self``), which Canvas refuses; and a link repeated (sent once).

:func:`link_rows` makes the rows of links given as pairs, with a status: the sync sends the links it
removes as ``deleted`` rows of their own (see clever2sis/sync/observers.py).
"""

from __future__ import annotations

import pandas as pd

from clever2sis.clever.frames import District
from clever2sis.config import BuildSettings
from clever2sis.sis import checks, files
from clever2sis.sis.arrow import lookup, member
from clever2sis.sis.builders import Built, ordered
from clever2sis.sis.findings import combine

SELF_RELATIONSHIP = "Self"
ACTIVE = "active"
DELETED = "deleted"
LINK_COLUMNS = ("observer_id", "student_id")


def user_observer_columns(settings: BuildSettings) -> tuple[str, ...]:
    return files.COLUMNS[files.USER_OBSERVERS]


def observer_links(district: District, settings: BuildSettings) -> pd.DataFrame:
    """The contact links of the chosen relationship types (contact_id, student_id, relationship, type)."""
    links = district.contact_links
    chosen = member(links["type"], pd.Index(settings.observers.relationship_types, dtype="string"))
    return links[chosen]


def is_self(links: pd.DataFrame) -> pd.Series:
    """Links that name the student as their own contact (Clever's relationship ``Self``, or the same id)."""
    return (links["relationship"] == SELF_RELATIONSHIP).fillna(False).astype(bool) | (
        links["contact_id"] == links["student_id"]
    ).fillna(False).astype(bool)


def build_user_observers(
    district: District, settings: BuildSettings, user_map: pd.Series, observer_map: pd.Series
) -> Built:
    """The observer links. ``user_map``: each Clever id built as a user -> its Canvas user_id;
    ``observer_map``: the same for contacts built only as observers."""
    links = observer_links(district, settings)
    contact, student = links["contact_id"], links["student_id"]
    observer_id = lookup(contact, pd.concat([user_map, observer_map]))
    student_id = lookup(student, user_map)
    students = district.users.loc[district.users["is_student"], "id"]

    unknown = ~member(student, students)
    not_built = ~unknown & student_id.isna()
    self_link = ~unknown & ~not_built & (is_self(links) | (observer_id == student_id).fillna(False))
    observer_missing = ~unknown & ~not_built & ~self_link & observer_id.isna()
    ok = ~unknown & ~not_built & ~self_link & ~observer_missing
    rows = pd.DataFrame({"observer_id": observer_id, "student_id": student_id, "status": "active"})
    repeated = ok & rows.duplicated(["observer_id", "student_id"])

    relationship = links["relationship"]
    found = [
        checks.OBSERVER_UNKNOWN_STUDENT(unknown, contact, contact=contact, student=student),
        checks.OBSERVER_STUDENT_NOT_BUILT(not_built, contact, contact=contact, student=student),
        checks.OBSERVER_SELF(self_link, contact, contact=contact, student=student, relationship=relationship),
        checks.OBSERVER_NOT_BUILT(observer_missing, contact, contact=contact, student=student),
        checks.DUPLICATE_OBSERVER_LINK(
            repeated, contact, contact=contact, student=student, relationship=relationship, type=links["type"]
        ),
    ]
    kept = rows[ok & ~repeated]
    frame = ordered(kept, user_observer_columns(settings), files.SORT_KEYS[files.USER_OBSERVERS])
    return Built(frame, combine(found))


def link_rows(links: pd.DataFrame, status: str) -> pd.DataFrame:
    """user_observers.csv rows for ``links`` (observer_id, student_id), each with ``status`` (``active`` or
    ``deleted``), in the file's columns and order."""
    rows = links.loc[:, list(LINK_COLUMNS)].assign(status=status)
    return ordered(rows, files.COLUMNS[files.USER_OBSERVERS], files.SORT_KEYS[files.USER_OBSERVERS])
