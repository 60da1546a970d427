"""user_observers.csv: Clever contacts (parents, guardians) observing their students. Opt-in: ``[observers]``.

A contact's ``student_relationships`` whose ``type`` is one of ``observers.relationship_types`` become rows
(observer_id, student_id, active). The observer is the contact's row in users.csv (see users.py, which
builds observers there through the same login rule as everyone else), the student the student's. Canvas
processes this file last, so both exist by then (../shared/reference/canvas-sis-import.md §1.8).

Every link that is not sent is listed: a student who is not in the pull, or not in users.csv; a contact
left out of users.csv; a link that would have someone observe themself (the same user, or Clever's
relationship ``Self``), which Canvas refuses; and a link repeated (sent once).
"""

from __future__ import annotations

import pandas as pd

from clever2sis.clever.frames import District
from clever2sis.config import BuildSettings
from clever2sis.sis import files
from clever2sis.sis.builders import Built, lookup, member, ordered
from clever2sis.sis.findings import INFO, WARNING, combine, report

SELF_RELATIONSHIP = "Self"


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

    found = [
        report(
            "observer_unknown_student",
            WARNING,
            files.USER_OBSERVERS,
            unknown,
            contact,
            "contact ",
            contact,
            ": student ",
            student,
            " is not a student in the snapshot's users; link left out",
        ),
        report(
            "observer_student_not_built",
            WARNING,
            files.USER_OBSERVERS,
            not_built,
            contact,
            "contact ",
            contact,
            ": student ",
            student,
            " is not in users.csv (see that user's findings, or the user_roles setting); link left out",
        ),
        report(
            "observer_self",
            INFO,
            files.USER_OBSERVERS,
            self_link,
            contact,
            "contact ",
            contact,
            ": the link to student ",
            student,
            " would have the student observe themself (relationship '",
            links["relationship"],
            "'); link left out",
        ),
        report(
            "observer_not_built",
            INFO,
            files.USER_OBSERVERS,
            observer_missing,
            contact,
            "contact ",
            contact,
            " is not in users.csv (see its findings); link to student ",
            student,
            " left out",
        ),
        report(
            "duplicate_observer_link",
            INFO,
            files.USER_OBSERVERS,
            repeated,
            contact,
            "contact ",
            contact,
            ": link to student ",
            student,
            " is listed more than once (relationship '",
            links["relationship"],
            "', type '",
            links["type"],
            "'); sent once",
        ),
    ]
    kept = rows[ok & ~repeated]
    frame = ordered(kept, user_observer_columns(settings), files.SORT_KEYS[files.USER_OBSERVERS])
    return Built(frame, combine(found))
