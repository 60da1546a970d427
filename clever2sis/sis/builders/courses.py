"""courses.csv, and the section plan that courses.csv and sections.csv share.

``course_structure = "section"``: each Clever section is one Canvas course with one Canvas section.
``course_structure = "course"``: one Canvas course per Clever course, school and Canvas term, each Clever
section a Canvas section in it; a section without a Clever course becomes a course of its own. Clever
courses belong to the district, not to a school, so the default course_id names the school too: a Canvas
course lives in one account (a school's), and a course spanning schools would show its teachers another
school's students. Whatever the templates, a course_id given to sections of several schools is refused
(:func:`refuse_courses_across_schools`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clever2sis.clever.frames import District
from clever2sis.config import BuildSettings
from clever2sis.errors import BuildError
from clever2sis.sis import checks, files
from clever2sis.sis.arrow import arrow_strings, blank, lookup, member
from clever2sis.sis.builders import Built, ordered, prefixed, template
from clever2sis.sis.findings import combine, text
from clever2sis.sis.templates import is_identity


def plan_sections(
    district: District, settings: BuildSettings, school_accounts: pd.Series, term_map: pd.Series
) -> Built:
    """One row per Clever section: its Canvas course_id, section_id, account, term and names."""
    sections = district.sections
    account_id = lookup(sections["school"], school_accounts)
    term_id = lookup(sections["term_id"], term_map)
    unknown_term = ~blank(sections["term_id"]) & term_id.isna()
    term_id = term_id.fillna(settings.fallback_term_id)
    context = _context(district, account_id, term_id)
    plan = pd.DataFrame(
        {
            "row": np.arange(len(sections)),
            "clever_id": sections["id"],
            "sis_id": sections["sis_id"],
            "section_id": template(settings, "ids.section_id").render(context),
            "course_id": template(settings, "ids.course_id").render(context),
            "account_id": account_id.fillna(""),
            "term_id": term_id,
            "long_name": template(settings, "names.course_long_name").render(context),
            "short_name": template(settings, "names.course_short_name").render(context),
            "section_name": template(settings, "names.section").render(context),
        }
    )
    course_known = member(sections["course"], district.courses["id"])
    if settings.course_structure == "course":
        own = ~course_known
        plan.loc[own, "course_id"] = plan.loc[own, "section_id"]
        plan.loc[own, "long_name"] = sections.loc[own, "name"].fillna(plan.loc[own, "section_id"])
    plan["long_name"] = plan["long_name"].where(~blank(plan["long_name"]), plan["short_name"])
    plan["long_name"] = plan["long_name"].where(~blank(plan["long_name"]), plan["course_id"])
    plan["short_name"] = plan["short_name"].where(~blank(plan["short_name"]), plan["long_name"])
    plan["section_name"] = plan["section_name"].where(~blank(plan["section_name"]), plan["long_name"])

    no_ids = blank(plan["section_id"]) | blank(plan["course_id"])
    duplicate = plan["section_id"].duplicated() & ~no_ids
    has_course = ~blank(sections["course"])
    fallback = (
        f"fallback term '{settings.fallback_term_id}'" if settings.fallback_term_id else "the default term"
    )
    sid = sections["id"]
    found = [
        checks.SECTION_UNKNOWN_TERM(
            unknown_term, sid, section=sid, term=sections["term_id"], fallback_term=fallback
        ),
        checks.SECTION_WITHOUT_TERM(blank(sections["term_id"]), sid, section=sid, fallback_term=fallback),
        checks.SECTION_UNKNOWN_COURSE(
            has_course & ~course_known, sid, section=sid, course=sections["course"]
        ),
        checks.SECTION_WITHOUT_COURSE(~has_course, sid, section=sid),
        checks.SECTION_UNKNOWN_SCHOOL(
            ~member(sections["school"], school_accounts.index), sid, section=sid, school=sections["school"]
        ),
        checks.SECTION_WITHOUT_ID(no_ids, sid, section=sid),
        checks.DUPLICATE_SECTION_ID(duplicate, sid, section=sid, section_id=plan["section_id"]),
    ]
    kept = ~no_ids & ~duplicate
    refuse_courses_across_schools(plan[kept], sections.loc[kept, "school"], settings)
    return Built(plan[kept].reset_index(drop=True), combine(found))


def refuse_courses_across_schools(plan: pd.DataFrame, school: pd.Series, settings: BuildSettings) -> None:
    """A :class:`BuildError` when one course_id holds sections of several schools (Canvas accounts).

    ``plan`` rows and ``school`` (each section's Clever school id) are aligned. The message names the
    setting, one such course and its schools, and the fix. A course per section (section ids are unique
    here) cannot span schools, and is not hashed (~0.1 s at 250,000 sections).
    """
    if arrow_strings(plan["course_id"]).equals(arrow_strings(plan["section_id"])):
        return
    course, course_ids = pd.factorize(plan["course_id"])
    account, _ = pd.factorize(plan["account_id"].fillna(""))
    lowest = np.full(len(course_ids), np.iinfo(np.int64).max)
    highest = np.full(len(course_ids), -1)
    np.minimum.at(lowest, course, account)
    np.maximum.at(highest, course, account)
    spanning = np.flatnonzero(lowest != highest)
    if not len(spanning):
        return
    first = str(course_ids[spanning].min())
    in_first = (plan["course_id"] == first).to_numpy()
    schools = sorted(set(school[in_first].fillna("(no school)")))
    raise BuildError(
        f"ids.course_id = {settings.ids['course_id']!r} puts sections of several schools in one Canvas "
        f"course ({first!r}: schools {', '.join(schools)}), and a Canvas course belongs to one school's "
        "account; add {{ school.id }} to ids.course_id"
    )


def _context(district: District, account_id: pd.Series, term_id: pd.Series) -> pd.DataFrame:
    """The template namespaces of each section (see ``SECTION_SCOPE``): its own fields, its course's,
    school's, term's and primary teacher's (all missing where unknown), and the Canvas ids derived already."""
    sections = district.sections
    primary = district.section_teachers[district.section_teachers["position"] == 0]
    teacher_id = pd.Series(pd.NA, index=sections.index, dtype="string")
    teacher_id.iloc[primary["section"].to_numpy()] = primary["user_id"].to_numpy()
    teacher_id = teacher_id.fillna(sections["teacher"])
    users = district.users
    teachers = users.loc[users["is_teacher"], ["id", "first", "last", "email"]]
    return pd.concat(
        [
            prefixed(sections, "section"),
            _joined(sections["course"], district.courses.set_index("id"), "course"),
            _joined(sections["school"], district.schools.set_index("id"), "school"),
            _joined(sections["term_id"], district.terms.set_index("id"), "term"),
            _joined(teacher_id, teachers.set_index("id"), "teacher"),
            pd.DataFrame({"canvas.account_id": account_id, "canvas.term_id": term_id}),
        ],
        axis=1,
    )


def _joined(keys: pd.Series, table: pd.DataFrame, namespace: str) -> pd.DataFrame:
    """``table``'s row for each key (all missing where the key is unknown), by one Arrow lookup, as the
    fields of ``namespace``."""
    positions = pc.index_in(
        pa.array(keys, from_pandas=True), value_set=pa.array(table.index, from_pandas=True)
    )
    rows = pd.DataFrame(
        {
            column: pd.Series(
                pa.array(table[column], from_pandas=True).take(positions).to_pandas(),
                index=keys.index,
                dtype="string",
            )
            for column in table.columns
        },
        index=keys.index,
    )
    rows.insert(
        0, "id", keys.where(pd.Series(positions.is_valid().to_numpy(zero_copy_only=False), index=keys.index))
    )
    return prefixed(rows, namespace)


def course_columns(settings: BuildSettings) -> tuple[str, ...]:
    keyed_on_section = settings.course_structure == "section" and is_identity(
        settings.ids["course_id"], "section"
    )
    extra = () if settings.course_structure == "course" or keyed_on_section else ("integration_id",)
    return files.COLUMNS[files.COURSES] + extra


def unique_codes(codes: pd.Series, *tiebreaks: pd.Series) -> pd.Series:
    """Course codes made unique: a code several courses share gets `` (<tiebreak>)`` appended, trying each
    tiebreak in turn (the section's SIS id reads best; the Clever id is always unique)."""
    out = codes
    for tiebreak in tiebreaks:
        shared = out.duplicated(keep=False) & ~blank(tiebreak)
        if not shared.any():
            break
        out = out.where(~shared, text(codes, " (", tiebreak, ")"))
    return out


def build_courses(plan: pd.DataFrame, settings: BuildSettings) -> Built:
    """One course row per distinct Canvas course_id; the first section (by Clever id) names it."""
    first = plan.sort_values("clever_id", kind="stable").drop_duplicates("course_id")
    courses = first.assign(status=settings.course_status, integration_id=first["clever_id"])
    courses["short_name"] = unique_codes(courses["short_name"], courses["sis_id"], courses["clever_id"])
    return Built(ordered(courses, course_columns(settings), files.SORT_KEYS[files.COURSES]), combine([]))
