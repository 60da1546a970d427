"""One pure builder per Canvas file: DataFrames in, a DataFrame (columns in declared order) and findings out.

Shared here: the template namespaces (what ``{{ school.name }}`` and friends may name) and small helpers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
    """The compiled template for ``setting`` (e.g. ``"names.term"``), checked against its namespaces."""
    table, key = setting.split(".", 1)
    if table == "observers":
        source = {"user_id": settings.observers.user_id, "login_id": settings.observers.login_id}[key]
    else:
        source = (settings.ids if table == "ids" else settings.names)[key]
    scope = {name: NAMESPACES[name] for name in SETTING_SCOPES[setting]}
    return Template(setting, source, scope)


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


# member(): look ``of`` up among ``values`` first when it is this many times longer.
_PROBE_THE_SET_FACTOR = 4


def arrow_strings(values: pd.Series | pd.Index) -> pa.ChunkedArray:
    """The Arrow strings (large_string) behind a string column or index, without a copy where pandas holds
    them in Arrow already; an Index is read through its array, never as Python objects."""
    array = pa.array(values.array, type=pa.large_string(), from_pandas=True)
    return array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])


def member(values: pd.Series, of: pd.Series | pd.Index) -> pd.Series:
    """``values.isin(of)`` for strings, computed by Arrow (pandas' own is ~20x slower on Arrow strings).

    Missing values are never members. Arrow hashes the set it looks in, and building that table costs
    ~10x more per value than looking a value up in it; so when ``of`` is much the larger, the values of
    ``of`` are looked up among ``values`` first and only the hits become the set. When ``values`` are the
    very values of ``of`` in the same order (ids handed from one file to the next), nothing is hashed.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = member(pd.Series(values.cat.categories, dtype="string"), of).to_numpy()
        codes = values.cat.codes.to_numpy()
        return pd.Series(np.where(codes >= 0, categories[codes], False), index=values.index)
    strings, value_set = arrow_strings(values), arrow_strings(of)
    if len(strings) == len(value_set) and not strings.null_count and strings.equals(value_set):
        return pd.Series(True, index=values.index)
    if len(value_set) > _PROBE_THE_SET_FACTOR * len(strings):
        value_set = value_set.filter(pc.is_in(value_set, value_set=strings, skip_nulls=True))
    found = pc.is_in(strings, value_set=value_set, skip_nulls=True)
    return pd.Series(found.to_numpy(zero_copy_only=False), index=values.index).fillna(False).astype(bool)


def lookup(keys: pd.Series, mapping: pd.Series) -> pd.Series:
    """``mapping[key]`` for each key, ``<NA>`` where the key is missing or unknown (first match wins)."""
    positions = pc.index_in(arrow_strings(keys), value_set=arrow_strings(mapping.index))
    taken = arrow_strings(mapping.reset_index(drop=True)).take(positions)
    # to_numpy, not to_pandas: a pandas Series would be re-aligned on its own RangeIndex.
    return pd.Series(taken.to_numpy(zero_copy_only=False), index=keys.index, dtype="string")


def blank(values: pd.Series) -> pd.Series:
    """True where a string value is missing or only whitespace.

    Arrow strings are trimmed by Arrow directly (what pandas' ``str.strip`` calls), without first filling
    missing values into a copy of the column.
    """
    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"):
        return values.fillna("").str.strip() == ""
    empty = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(arrow_strings(values)), ""), True)
    return pd.Series(empty.to_numpy(zero_copy_only=False), index=values.index)


@dataclass(frozen=True)
class Built:
    """A builder's result: the file's rows and what it found on the way."""

    frame: pd.DataFrame
    findings: pd.DataFrame
