"""Would Canvas diff tonight's zip? The two checks ``SisBatch#generate_diff`` makes before it diffs.

Canvas (``app/models/sis_batch.rb``) skips the diff, and applies the whole files without deleting
anything, when

* ``change_threshold`` is set and ``|1 - tonight / baseline| * 100 > change_threshold``, the sizes being
  each zip's files uncompressed, added up (``CanvasUnzip.compute_uncompressed_size``): one figure for the
  whole zip, not one per file;
* ``diff_row_count_threshold`` is set and the diff would hold more rows: in each file both zips hold
  (with the same header), the rows new or changed, and the rows that vanished (``lib/sis/csv/
  diff_generator.rb``, ``gems/csv_diff/lib/csv_diff/diff.rb``). Rows are paired by the file's identifying
  fields, and a later row with the same key replaces an earlier one.

The sync asks before it posts, so that a night Canvas would not diff goes as a remaster with the removals
as rows instead (:func:`diff_skipped`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from clever2sis.canvas.sis_import import ImportOptions
from clever2sis.sis import files
from clever2sis.sync.state import CanvasBaseline, ZipSizes

# Each importer's identifying fields (``identifying_fields`` in lib/sis/csv/*_importer.rb); those a file
# lacks are blank on every row, so only the ones present pair rows.
CANVAS_DIFF_KEYS: dict[str, tuple[str, ...]] = {
    files.CHANGE_SIS_ID: ("old_id", "old_integration_id"),
    files.ACCOUNTS: ("account_id",),
    files.TERMS: ("term_id",),
    files.COURSES: ("course_id",),
    files.SECTIONS: ("section_id",),
    files.USERS: ("user_id",),
    files.ENROLLMENTS: (
        "course_id",
        "section_id",
        "user_id",
        "user_integration_id",
        "role",
        "role_id",
        "associated_user_id",
    ),
    files.ADMINS: ("user_id", "account_id"),
    files.USER_OBSERVERS: ("observer_id",),
}


def size_change_percent(tonight_bytes: int, baseline_bytes: int) -> float:
    """``SisBatch#file_diff_percent``: how far tonight's size is from the baseline's, in percent of it.

    The same floating-point steps as Canvas's, so that a size just at the threshold is judged the same way
    (1,100 bytes against 1,000 is 10.000000000000009%, more than a change_threshold of 10).
    """
    if baseline_bytes == 0:
        return float("inf") if tonight_bytes else 0.0
    return abs(1 - tonight_bytes / baseline_bytes) * 100


def diff_row_count(baseline: Mapping[str, pd.DataFrame], tonight: Mapping[str, pd.DataFrame]) -> int:
    """The rows Canvas's diff of ``tonight`` against ``baseline`` (every row of each zip) would hold."""
    count = 0
    for name in files.FILE_ORDER:
        old, new = baseline[name], tonight[name]
        if not len(old) or not len(new) or sorted(old.columns) != sorted(new.columns):
            continue
        key = [column for column in CANVAS_DIFF_KEYS[name] if column in new.columns]
        if not key:
            continue
        old = old[list(new.columns)].drop_duplicates(key, keep="last")
        new = new.drop_duplicates(key, keep="last")
        paired = new.merge(old, on=key, how="left", suffixes=("", "__before"), indicator=True)
        changed = (paired["_merge"] == "left_only").to_numpy()
        for column in (c for c in new.columns if c not in key):
            changed = changed | (paired[column] != paired[f"{column}__before"]).to_numpy()
        gone = old.merge(new[key], on=key, how="left", indicator=True)["_merge"] == "left_only"
        count += int(np.count_nonzero(changed)) + int(gone.sum())
    return count


def diff_skipped(
    baseline: CanvasBaseline,
    sizes: ZipSizes,
    options: ImportOptions,
    *,
    baseline_frames: Mapping[str, pd.DataFrame] | None,
    tonight: Mapping[str, pd.DataFrame],
) -> str | None:
    """Why Canvas would not diff a zip of ``sizes`` (rows ``tonight``) against ``baseline``; None: it would.

    ``baseline_frames`` (the baseline zip's rows) are needed only with ``diff_row_count_threshold``;
    without them Canvas's answer cannot be known, and that is said as the reason.
    """
    if options.change_threshold is not None:
        percent = size_change_percent(sizes.total, baseline.sizes.total)
        if percent > options.change_threshold:
            return (
                f"the zip is {sizes.total} bytes uncompressed against {baseline.sizes.total} in run "
                f"{baseline.run_id}'s, Canvas's diff baseline: {percent:.1f}% apart, more than "
                f"change_threshold {options.change_threshold}%"
            )
    if options.diff_row_count_threshold is not None:
        if baseline_frames is None:
            return (
                f"diff_row_count_threshold is set and run {baseline.run_id}'s zip, Canvas's diff baseline, "
                "cannot be read to count the diff"
            )
        rows = diff_row_count(baseline_frames, tonight)
        if rows > options.diff_row_count_threshold:
            return (
                f"the diff against run {baseline.run_id}'s zip would hold {rows} rows, more than "
                f"diff_row_count_threshold {options.diff_row_count_threshold}"
            )
    return None
