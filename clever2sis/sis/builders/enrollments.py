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
import pyarrow as pa
import pyarrow.compute as pc

from clever2sis.clever.frames import District, unique_categorical
from clever2sis.config import BuildSettings
from clever2sis.sis import files
from clever2sis.sis.builders import Built, arrow_strings
from clever2sis.sis.findings import WARNING, combine, report


def enrollment_columns(settings: BuildSettings) -> tuple[str, ...]:
    return files.COLUMNS[files.ENROLLMENTS]


def _positions(values: pa.ChunkedArray, of: pa.ChunkedArray) -> np.ndarray:
    """Each value's position in ``of`` (-1 where absent), by Arrow's hash lookup."""
    found = pc.index_in(values, value_set=of)
    return np.asarray(pc.fill_null(found, -1).to_numpy(), dtype=np.int32)


def _user_positions(values: pd.Series, of: pa.ChunkedArray) -> np.ndarray:
    """:func:`_positions` of a roster's user ids; a categorical column is looked up once per category."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return _positions(arrow_strings(values), of)
    per_category = _positions(arrow_strings(values.cat.categories), of)
    codes = values.cat.codes.to_numpy()
    return np.where(codes >= 0, per_category[codes], np.int32(-1))


def _ranks(values: pa.ChunkedArray) -> np.ndarray:
    """The rank of each string in sorted order (ties broken by position; values here are unique)."""
    order = pc.sort_indices(values).to_numpy()
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order))
    return ranks


def build_enrollments(
    district: District, settings: BuildSettings, plan: pd.DataFrame, user_map: pd.Series
) -> Built:
    roles = sorted({"student", "teacher", settings.coteacher_role})
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
    canvas_ids = arrow_strings(pd.Series(user_map.array))
    plan_of_row = np.full(len(district.sections), -1, dtype=np.int32)
    plan_of_row[plan["row"].to_numpy()] = np.arange(len(plan), dtype=np.int32)
    found = []
    sections, users, role_codes = [], [], []
    for roster, role in parts:
        section = plan_of_row[roster["section"].to_numpy()]
        user = _user_positions(roster["user_id"], built_ids)
        keep = (section >= 0) & (user >= 0)
        if not keep.all():
            found += _left_out(district, roster[~keep], section[~keep] < 0, np.asarray(roles)[role[~keep]])
            section, user, role = section[keep], user[keep], role[keep]
        sections.append(section)
        users.append(user)
        role_codes.append(role)
        del section, user, keep

    # One key per enrollment that sorts like (course_id, section_id, role, user_id) and is unique per
    # (section, role, user): one sort then both de-duplicates and orders. Built in place, a part at a time:
    # these are the largest arrays of the build.
    section_order = np.lexsort(
        (_ranks(arrow_strings(plan["section_id"])), _ranks_with_ties(plan["course_id"]))
    ).astype(np.int32)
    section_rank = np.empty(len(plan), dtype=np.int64)
    section_rank[section_order] = np.arange(len(plan))
    user_rank = _ranks(canvas_ids)
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


def _left_out(
    district: District, rows: pd.DataFrame, no_section: np.ndarray, role_names: np.ndarray
) -> list[pd.DataFrame]:
    """Findings for roster entries that are not enrolled (only these rows are formatted)."""
    rows = rows.assign(user_id=rows["user_id"].astype("string"))
    section_id = pd.Series(district.sections["id"].to_numpy()[rows["section"].to_numpy()], index=rows.index)
    no_section_mask = pd.Series(no_section, index=rows.index)
    unknown = ~no_section_mask & ~_known(rows["user_id"], district.users["id"])
    not_built = ~no_section_mask & ~unknown
    who = (pd.Series(role_names, index=rows.index, dtype="string"), " ", rows["user_id"])
    return [
        report(
            "enrollment_unknown_user",
            WARNING,
            files.ENROLLMENTS,
            unknown,
            rows["user_id"],
            "section ",
            section_id,
            ": ",
            *who,
            " is not in the snapshot's users; enrollment left out",
        ),
        report(
            "enrollment_user_not_built",
            WARNING,
            files.ENROLLMENTS,
            not_built,
            rows["user_id"],
            "section ",
            section_id,
            ": ",
            *who,
            " is not in users.csv (see that user's findings, or the user_roles setting); enrollment left out",
        ),
        report(
            "enrollment_section_not_built",
            WARNING,
            files.ENROLLMENTS,
            no_section_mask,
            section_id,
            "section ",
            section_id,
            " is not in sections.csv; ",
            *who,
            " not enrolled",
        ),
    ]


def _known(values: pd.Series, ids: pd.Series) -> pd.Series:
    """``values.isin(ids)`` for a few values against millions of ids: the ids are probed against the values'
    distinct set, which is far cheaper than hashing every id into a set."""
    wanted = pc.unique(arrow_strings(values))
    present = arrow_strings(ids).filter(pc.is_in(arrow_strings(ids), value_set=wanted))
    return pd.Series(pc.is_in(arrow_strings(values), value_set=present).to_numpy(), index=values.index)


def _ranks_with_ties(values: pd.Series) -> np.ndarray:
    """Dense ranks of strings that may repeat (course ids shared by sections)."""
    codes, _ = pd.factorize(values, sort=True)
    return np.asarray(codes, dtype=np.int64)
