"""One pure builder per Canvas file: DataFrames in, a DataFrame (columns in declared order) and findings out.

Shared here: the template namespaces (what ``{{ school.name }}`` and friends may name), the compiled
templates of the settings, and the result type. The column helpers they share are in
:mod:`clever2sis.sis.arrow`, the checks they make (and the messages of their findings) in
:mod:`clever2sis.sis.checks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from clever2sis.config import BuildSettings
from clever2sis.sis.templates import Template

# What each template namespace offers, and the settings that may use it.
NAMESPACES: dict[str, tuple[str, ...]] = {
    "school": ("id", "name", "sis_id", "school_number", "state_id", "nces_id", "low_grade", "high_grade"),
    "term": ("id", "name", "start_date", "end_date"),
    "course": ("id", "name", "number"),
    "section": ("id", "name", "sis_id", "period", "subject", "grade", "section_number"),
    "teacher": ("id", "first", "last", "email"),
    "user": (
        "id",
        "first",
        "middle",
        "last",
        "email",
        "district_username",
        "sis_id",
        "student_number",
        "state_id",
        "teacher_number",
        "staff_id",
        "grade",
    ),
    "contact": ("id", "sis_id", "name", "email"),
    "canvas": ("account_id", "term_id"),
}
SECTION_SCOPE = ("section", "course", "school", "term", "teacher", "canvas")
SETTING_SCOPES: dict[str, tuple[str, ...]] = {
    "ids.account_id": ("school",),
    "names.account": ("school",),
    "ids.term_id": ("term",),
    "names.term": ("term",),
    "ids.user_id": ("user",),
    "ids.course_id": SECTION_SCOPE,
    "ids.section_id": SECTION_SCOPE,
    "names.course_long_name": SECTION_SCOPE,
    "names.course_short_name": SECTION_SCOPE,
    "names.section": SECTION_SCOPE,
    "observers.user_id": ("contact",),
    "observers.login_id": ("contact",),
}


def template(settings: BuildSettings, setting: str) -> Template:
    """The compiled template for ``setting`` (e.g. ``"names.term"``), checked against its namespaces.

    Its values come out stripped as Canvas strips every field it reads (``lib/sis/csv/csv_base_importer.rb``):
    two ids that differ only by white space around them are one id to Canvas, so the builders must see
    them as one (and leave the second out as a duplicate) rather than send both.
    """
    table, key = setting.split(".", 1)
    if table == "observers":
        source = {"user_id": settings.observers.user_id, "login_id": settings.observers.login_id}[key]
    else:
        source = (settings.ids if table == "ids" else settings.names)[key]
    scope = {name: NAMESPACES[name] for name in SETTING_SCOPES[setting]}
    return Template(setting, source, scope, strip=True)


def check_templates(settings: BuildSettings) -> None:
    """Compile every naming template, so a mistake is reported before any data is read."""
    for setting in SETTING_SCOPES:
        template(settings, setting)


def prefixed(frame: pd.DataFrame, namespace: str) -> pd.DataFrame:
    """``frame``'s namespace fields renamed ``"<namespace>.<field>"`` (missing fields become empty)."""
    return pd.DataFrame(
        {
            f"{namespace}.{name}": (
                frame[name] if name in frame else pd.Series(pd.NA, index=frame.index, dtype="string")
            )
            for name in NAMESPACES[namespace]
        },
        index=frame.index,
    )


def ordered(frame: pd.DataFrame, columns: Sequence[str], sort_by: Sequence[str]) -> pd.DataFrame:
    """Keep ``columns`` in that order, sorted by ``sort_by``, as strings with missing values empty."""
    out = frame.loc[:, list(columns)].astype("string").fillna("")
    return out.sort_values(list(sort_by), kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class Built:
    """A builder's result: the file's rows and what it found on the way."""

    frame: pd.DataFrame
    findings: pd.DataFrame
