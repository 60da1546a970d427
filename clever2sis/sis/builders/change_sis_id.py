"""change_sis_id.csv: the SIS ids an older feed gave Canvas records, changed to this build's (``--id-map``).

The id map (see clever2sis/sis/id_map.py) names each Canvas record by its old SIS id and the Clever record it
is; this builder writes the Canvas id the build gives that record, so the new ids are exactly those the
rest of the zip uses: Canvas processes this file first, and every other file must already use the new ids
(``lib/sis/csv/import_refactored.rb``, ``lib/sis/change_sis_id_importer.rb``). Only ids that change are
written.

Left out and listed: a record the build does not contain (``id_map_not_built``); a Clever course that
became several Canvas courses (``course_structure = "course"``, one per term); and every row of a conflict
Canvas would refuse or apply in no defined order: an old id given twice, two old ids for one new id, or a
new id that is another row's old id.
"""

from __future__ import annotations

import pandas as pd

from clever2sis.clever.frames import District
from clever2sis.config import BuildSettings
from clever2sis.sis import checks, files
from clever2sis.sis.arrow import lookup
from clever2sis.sis.builders import Built, ordered
from clever2sis.sis.findings import combine

TARGET_FILES = {"user": files.USERS, "course": files.COURSES, "section": files.SECTIONS}


def change_sis_id_columns(settings: BuildSettings) -> tuple[str, ...]:
    return files.COLUMNS[files.CHANGE_SIS_ID]


def _keyed(values: pd.Series, keys: pd.Series) -> pd.Series:
    return pd.Series(values.to_numpy(), index=keys.to_numpy(), dtype="string")


def _course_ids(
    district: District, settings: BuildSettings, plan: pd.DataFrame
) -> tuple[pd.Series, pd.Series]:
    """Clever id (a section's, or a course's with the "course" structure) -> its one Canvas course_id, and
    the Clever courses that became several Canvas courses."""
    if settings.course_structure == "section":
        return _keyed(plan["course_id"], plan["clever_id"]), pd.Series([], dtype="string")
    course_of = _keyed(district.sections["course"], district.sections["id"])
    pairs = pd.DataFrame({"clever": lookup(plan["clever_id"], course_of), "course_id": plan["course_id"]})
    pairs = pairs.dropna().drop_duplicates()
    counts = pairs["clever"].value_counts()
    single = pairs[pairs["clever"].map(counts) == 1]
    return _keyed(single["course_id"], single["clever"]), pd.Series(counts[counts > 1].index, dtype="string")


def build_change_sis_id(
    district: District,
    settings: BuildSettings,
    id_map: pd.DataFrame,
    plan: pd.DataFrame,
    user_map: pd.Series,
    observer_map: pd.Series,
) -> Built:
    """The id changes of ``id_map`` (type, old_id, new_id = a Clever id) for records in this build."""
    kind, old, clever = id_map["type"], id_map["old_id"], id_map["new_id"]
    course_ids, split = _course_ids(district, settings, plan)
    targets = {
        "user": pd.concat([user_map, observer_map]),
        "section": pd.Series(
            plan["section_id"].to_numpy(), index=plan["clever_id"].to_numpy(), dtype="string"
        ),
        "course": course_ids,
    }
    new = pd.Series(pd.NA, index=id_map.index, dtype="string")
    for name, target in targets.items():
        mine = kind == name
        new[mine] = lookup(clever[mine], target)
    several = (kind == "course") & clever.isin(split)
    not_built = new.isna() & ~several
    candidate = new.notna() & (new != old)
    rows = pd.DataFrame({"old_id": old, "new_id": new, "type": kind})[candidate]
    twice_old = rows.duplicated(["type", "old_id"], keep=False)
    twice_new = rows.duplicated(["type", "new_id"], keep=False)
    chained = pd.Series(
        pd.MultiIndex.from_frame(rows[["type", "new_id"]]).isin(
            pd.MultiIndex.from_frame(rows[["type", "old_id"]])
        ),
        index=rows.index,
    )
    conflict = pd.Series(False, index=id_map.index)
    conflict[rows.index] = twice_old | twice_new | chained
    found = [
        checks.ID_MAP_NOT_BUILT(
            not_built, old, type=kind, old_id=old, clever_id=clever, target_file=kind.map(TARGET_FILES)
        ),
        checks.ID_MAP_SEVERAL_COURSES(several, old, old_id=old, clever_id=clever),
        checks.ID_MAP_CONFLICT(conflict, old, type=kind, old_id=old, new_id=new),
    ]
    kept = rows[~conflict[rows.index]]
    frame = ordered(kept, change_sis_id_columns(settings), files.SORT_KEYS[files.CHANGE_SIS_ID])
    return Built(frame, combine(found))
