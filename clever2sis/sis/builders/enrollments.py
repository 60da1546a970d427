"""enrollments.csv: Clever section rosters as Canvas enrollments.

Students are ``student``; the primary teacher (first in ``teachers``) is ``teacher``; co-teachers take the
``coteacher_role`` setting. An enrollment whose user or section is not in the build is left out and listed.

A large district has millions of roster entries, so they are handled as integer codes (a section's row in the
section plan, a user's row in the user map, a role) and only become strings as categorical columns whose
categories are the Canvas ids: each id is stored once however many enrollments name it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clever2sis.clever.frames import District, encoded_categorical, unique_categorical
from clever2sis.config import BuildSettings
from clever2sis.sis import checks, files
from clever2sis.sis.arrow import arrow_strings, dense_ranks, member, positions, ranks
from clever2sis.sis.builders import Built
from clever2sis.sis.findings import combine


def enrollment_columns(settings: BuildSettings) -> tuple[str, ...]:
    return files.COLUMNS[files.ENROLLMENTS]


def build_enrollments(
    district: District, settings: BuildSettings, plan: pd.DataFrame, user_map: pd.Series
) -> Built:
    roles = sorted({"student", "teacher", settings.coteacher_role})
    sections, users, role_codes, found = _roster_codes(district, settings, plan, user_map, roles)
    canvas_ids = arrow_strings(pd.Series(user_map.array))

    # One key per enrollment that sorts like (course_id, section_id, role, user_id) and is unique per
    # (section, role, user): one sort then both de-duplicates and orders. Built in place, a part at a time:
    # these are the largest arrays of the build.
    section_order = np.lexsort(
        (ranks(arrow_strings(plan["section_id"])), dense_ranks(plan["course_id"]))
    ).astype(np.int32)
    section_rank = np.empty(len(plan), dtype=np.int64)
    section_rank[section_order] = np.arange(len(plan))
    user_rank = ranks(canvas_ids)
    n_users, n_roles = max(len(user_map), 1), len(roles)
    key = section_rank[np.concatenate(sections)]
    del sections
    key *= n_roles
    key += np.concatenate(role_codes)
    del role_codes
    key *= n_users
    key += user_rank[np.concatenate(users)]
    del users
    key.sort()
    if len(key):
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]  # np.unique, 15x faster
    section_key, rest = np.divmod(key, n_users * n_roles)
    del key
    section = section_order[section_key]
    del section_key
    role_key, user_key = np.divmod(rest, n_users)
    del rest
    role = role_key.astype(np.int8)
    del role_key
    user = np.argsort(user_rank).astype(np.int32)[user_key]
    del user_key
    course_codes, course_ids = pd.factorize(plan["course_id"])

    def categorical(codes: np.ndarray, categories: pd.Series | pd.Index | list[str]) -> pd.Series:
        return unique_categorical(codes, pd.Index(categories, dtype="string"))

    frame = pd.DataFrame(
        {
            "course_id": categorical(course_codes.astype(np.int32)[section], course_ids),
            "section_id": categorical(section, plan["section_id"]),
            "user_id": categorical(user, pd.Index(user_map.array)),
            "role": categorical(role, roles),
            "status": categorical(np.zeros(len(user), dtype=np.int8), ["active"]),
        }
    )
    return Built(frame.loc[:, list(enrollment_columns(settings))], combine(found))


def _roster_codes(
    district: District, settings: BuildSettings, plan: pd.DataFrame, user_map: pd.Series, roles: list[str]
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[pd.DataFrame]]:
    """The roster entries that are enrolled, as codes: each one's row in ``plan``, its user's position in
    ``user_map`` and its role's in ``roles`` (an array of each per roster: students, then teachers); and
    the findings for the entries left out."""
    code = {role: roles.index(role) for role in roles}
    students = district.section_students
    teachers = district.section_teachers
    parts = [
        (students, np.full(len(students), code["student"], dtype=np.int8)),
        (
            teachers,
            np.where(
                teachers["position"].to_numpy() == 0, code["teacher"], code[settings.coteacher_role]
            ).astype(np.int8),
        ),
    ]
    built_ids = arrow_strings(user_map.index)
    plan_of_row = np.full(len(district.sections), -1, dtype=np.int32)
    plan_of_row[plan["row"].to_numpy()] = np.arange(len(plan), dtype=np.int32)
    found = []
    sections, users, role_codes = [], [], []
    for roster, role in parts:
        section = plan_of_row[roster["section"].to_numpy()]
        user_ids = roster["user_id"]
        if not isinstance(user_ids.dtype, pd.CategoricalDtype):
            # Each teacher teaches many sections: their ids are looked up once each.
            user_ids = encoded_categorical(arrow_strings(user_ids)).set_axis(user_ids.index)
        user = positions(user_ids, built_ids)
        keep = (section >= 0) & (user >= 0)
        if not keep.all():
            found += _left_out(district, roster[~keep], section[~keep] < 0, np.asarray(roles)[role[~keep]])
            section, user, role = section[keep], user[keep], role[keep]
        sections.append(section)
        users.append(user)
        role_codes.append(role)
    return sections, users, role_codes, found


def _left_out(
    district: District, rows: pd.DataFrame, no_section: np.ndarray, role_names: np.ndarray
) -> list[pd.DataFrame]:
    """Findings for roster entries that are not enrolled (only these rows are formatted)."""
    user = rows["user_id"].astype("string")
    section = pd.Series(district.sections["id"].to_numpy()[rows["section"].to_numpy()], index=rows.index)
    no_section_mask = pd.Series(no_section, index=rows.index)
    unknown = ~no_section_mask & ~member(user, district.users["id"])
    who = {"section": section, "role": pd.Series(role_names, index=rows.index, dtype="string"), "user": user}
    return [
        checks.ENROLLMENT_UNKNOWN_USER(unknown, user, **who),
        checks.ENROLLMENT_USER_NOT_BUILT(~no_section_mask & ~unknown, user, **who),
        checks.ENROLLMENT_SECTION_NOT_BUILT(no_section_mask, section, **who),
    ]
