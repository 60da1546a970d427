"""enrollments.csv: Clever section rosters as Canvas enrollments.

Students are ``student``; the primary teacher (first in ``teachers``) is ``teacher``; co-teachers take the
``coteacher_role`` setting. An enrollment whose user or section is not in the build is left out and listed.
"""

from __future__ import annotations

import pandas as pd

from clever2sis.clever.frames import District
from clever2sis.config import BuildSettings
from clever2sis.sis import files
from clever2sis.sis.builders import Built, lookup, member, ordered
from clever2sis.sis.findings import WARNING, combine, report


def enrollment_columns(settings: BuildSettings) -> tuple[str, ...]:
    return files.COLUMNS[files.ENROLLMENTS]


def build_enrollments(
    district: District, settings: BuildSettings, plan: pd.DataFrame, user_map: pd.Series
) -> Built:
    teachers = district.section_teachers
    roster = pd.concat(
        [
            district.section_students.assign(role="student"),
            teachers[["section_id", "user_id"]].assign(
                role=(teachers["position"] == 0).map({True: "teacher", False: settings.coteacher_role})
            ),
        ],
        ignore_index=True,
    ).drop_duplicates(["section_id", "user_id", "role"])
    sections = plan.set_index("clever_id")
    roster["canvas_section"] = lookup(roster["section_id"], sections["section_id"])
    roster["canvas_course"] = lookup(roster["section_id"], sections["course_id"])
    roster["canvas_user"] = lookup(roster["user_id"], user_map)

    no_section = roster["canvas_section"].isna()
    no_user = roster["canvas_user"].isna() & ~no_section
    unknown = no_user & ~member(roster["user_id"], district.users["id"])
    left_out = no_user & ~unknown
    who = (roster["role"], " ", roster["user_id"])
    found = [
        report(
            "enrollment_unknown_user",
            WARNING,
            files.ENROLLMENTS,
            unknown,
            roster["user_id"],
            "section ",
            roster["section_id"],
            ": ",
            *who,
            " is not in the snapshot's users; enrollment left out",
        ),
        report(
            "enrollment_user_not_built",
            WARNING,
            files.ENROLLMENTS,
            left_out,
            roster["user_id"],
            "section ",
            roster["section_id"],
            ": ",
            *who,
            " is not in users.csv (see that user's findings, or the user_roles setting); enrollment left out",
        ),
        report(
            "enrollment_section_not_built",
            WARNING,
            files.ENROLLMENTS,
            no_section,
            roster["section_id"],
            "section ",
            roster["section_id"],
            " is not in sections.csv; ",
            *who,
            " not enrolled",
        ),
    ]
    kept = roster[~no_section & ~no_user]
    enrollments = pd.DataFrame(
        {
            "course_id": kept["canvas_course"],
            "section_id": kept["canvas_section"],
            "user_id": kept["canvas_user"],
            "role": kept["role"],
            "status": "active",
        }
    ).drop_duplicates(["section_id", "user_id", "role"])
    frame = ordered(enrollments, enrollment_columns(settings), files.SORT_KEYS[files.ENROLLMENTS])
    return Built(frame, combine(found))
