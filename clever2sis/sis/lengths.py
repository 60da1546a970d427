"""The lengths Canvas can store, and the check that fits every built value into them.

Canvas saves SIS ids and names into 255-character string columns (``ActiveRecord::Base.
maximum_string_length``, checked by ``validates_length_of`` in ``app/models/course.rb`` for a course's
sis_source_id, name and course_code, ``app/models/course_section.rb`` for a section's sis_source_id and
name, ``app/models/account.rb`` for an account's name, ``app/models/user.rb`` for a user's name,
sortable_name and short_name, ``app/models/pseudonym.rb`` for a login's sis_user_id; the other ids and
a term's name are string columns of the same size, ``db/migrate/20101210192618_init_canvas_db.rb``).
A row holding a longer value is refused by Canvas. So, file by file and column by column (``LIMITS``):

* an **id** over its limit leaves its row out, with an ``id_too_long`` finding: an id cut short could
  name another record (two ids may share their first 255 characters), so no id is shortened (rows that
  refer to it are then left out by the reference check, ``sis/validate.py``);
* a **name** over its limit is cut to it, with a ``value_too_long`` finding.

A user's name is two columns: Canvas makes ``name`` "first last" and ``sortable_name`` "last, first"
(``lib/sis/user_importer.rb``, ``infer_user_name`` and ``infer_sortable_name``), so first_name and
last_name together may hold 253 characters (the longer is cut first, neither below half of them). Canvas
infers an observer's sortable name from its ``full_name`` ("surname, given", ``User.last_name_first``),
one character longer, so full_name may hold 254. A login_id has its own limit (``MAX_LOGIN_CHARS``, the
login rule of ``sis/builders/logins.py``), and so does an email (``sis/builders/people.py``).

Lengths are counted in characters (code points), as Ruby's ``String#length`` counts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clever2sis.sis import checks, files
from clever2sis.sis.arrow import one_array, string_series
from clever2sis.sis.findings import combine, no_findings

# ActiveRecord::Base.maximum_string_length: every SIS id and name column Canvas writes.
MAX_STRING_CHARS = 255
# Pseudonym::MAX_UNIQUE_ID_LENGTH (app/models/pseudonym.rb): a login_id.
MAX_LOGIN_CHARS = 100
# A user's first_name and last_name together: the 255 of sortable_name less its ", ".
MAX_USER_NAME_PAIR_CHARS = MAX_STRING_CHARS - len(", ")
# An observer's full_name: its inferred sortable name adds a comma.
MAX_FULL_NAME_CHARS = MAX_STRING_CHARS - 1
# A value a finding's message shows is cut to this many characters (a record may hold millions).
MAX_SHOWN_CHARS = 100
_SHOWN_ELLIPSIS = "..."


@dataclass(frozen=True)
class Limit:
    """The most characters Canvas stores in ``column`` of ``file``; an ``id`` leaves its row out when it is
    longer, any other value is cut."""

    file: str
    column: str
    chars: int
    id: bool


def _ids(file: str, *columns: str) -> tuple[Limit, ...]:
    return tuple(Limit(file, column, MAX_STRING_CHARS, id=True) for column in columns)


def _names(file: str, *columns: str, chars: int = MAX_STRING_CHARS) -> tuple[Limit, ...]:
    return tuple(Limit(file, column, chars, id=False) for column in columns)


# Every column of every built file that holds an id or a name (a column a build does not write is skipped;
# references to another file's ids are that file's to check).
LIMITS: tuple[Limit, ...] = (
    *_ids(files.CHANGE_SIS_ID, "old_id", "new_id"),
    *_ids(files.ACCOUNTS, "account_id", "integration_id"),
    *_names(files.ACCOUNTS, "name"),
    *_ids(files.TERMS, "term_id", "integration_id"),
    *_names(files.TERMS, "name"),
    *_ids(files.COURSES, "course_id", "integration_id"),
    *_names(files.COURSES, "short_name", "long_name"),
    *_ids(files.SECTIONS, "section_id", "integration_id"),
    *_names(files.SECTIONS, "name"),
    *_ids(files.USERS, "user_id", "integration_id"),
    *_names(files.USERS, "full_name", chars=MAX_FULL_NAME_CHARS),
)
# users.csv's name pair (see the module docstring).
USER_NAME_PAIR = ("first_name", "last_name")


def lengths(values: pd.Series) -> np.ndarray:
    """Each value's length in characters (0 where missing)."""
    counted = pc.fill_null(pc.utf8_length(one_array(values.astype("string"))), 0)
    return np.asarray(counted.to_numpy(zero_copy_only=False), dtype=np.int64)


def counts(numbers: np.ndarray, where: np.ndarray, index: pd.Index) -> pd.Series:
    """``numbers`` as text for a message (``1,234``) where ``where``, else empty: a check formats only the
    rows it reports, and so only they are formatted here."""
    out = np.full(len(numbers), "", dtype=object)
    out[where] = [f"{n:,}" for n in numbers[where]]
    return pd.Series(out, index=index, dtype="string")


def shortened(values: pd.Series) -> pd.Series:
    """``values`` as a message shows them: a value over ``MAX_SHOWN_CHARS`` is cut, with ``...``. A
    categorical column is returned as it is unless one of its categories is that long."""
    categories = values.cat.categories if isinstance(values.dtype, pd.CategoricalDtype) else None
    if (
        categories is not None
        and not (lengths(pd.Series(categories, dtype="string")) > MAX_SHOWN_CHARS).any()
    ):
        return values
    strings = one_array(values.astype("string"))
    long = pc.fill_null(pc.greater(pc.utf8_length(strings), MAX_SHOWN_CHARS), False)
    if not pc.any(long).as_py():
        return values
    cut = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(strings, 0, MAX_SHOWN_CHARS),
        pa.scalar(_SHOWN_ELLIPSIS, pa.large_string()),
        pa.scalar("", pa.large_string()),
    )
    return string_series(pc.if_else(long, cut, strings), values.index)


def _cut(values: pd.Series, keep: np.ndarray) -> pd.Series:
    """Each value cut to its ``keep`` characters (one Arrow pass per distinct ``keep``: few, as only the
    values over a limit are cut)."""
    strings = one_array(values.astype("string"))
    out = strings
    for room in np.unique(keep):
        at = pa.array(keep == room)
        out = pc.if_else(at, pc.utf8_slice_codeunits(strings, 0, int(room)), out)
    return string_series(out, values.index)


def fit_lengths(name: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``frame`` (the rows of built file ``name``) with every value fitted to ``LIMITS``: rows with an id
    over its limit left out, names over theirs cut; and a finding for each."""
    limits = [limit for limit in LIMITS if limit.file == name and limit.column in frame]
    pair = name == files.USERS and all(column in frame for column in USER_NAME_PAIR)
    if not limits and not pair:
        return frame, no_findings()
    id_column = str(frame.columns[0])
    record = frame.iloc[:, 0]
    found: list[pd.DataFrame] = []
    out = frame.copy(deep=False)  # a column is copied only when it is cut
    too_long = np.zeros(len(frame), dtype=bool)
    for limit in limits:
        length = lengths(frame[limit.column])
        over = length > limit.chars
        if not over.any():
            continue
        mask = pd.Series(over, index=frame.index)
        shown = shortened(record)
        values: dict[str, pd.Series | str] = {
            "id_column": id_column,
            "id": shown,
            "column": limit.column,
            "length": counts(length, over, frame.index),
            "limit": str(limit.chars),
        }
        if limit.id:
            too_long |= over
            found.append(checks.ID_TOO_LONG.about(name)(mask, shown, **values))
        else:
            out[limit.column] = _cut_rows(out[limit.column], over, np.full(int(over.sum()), limit.chars))
            found.append(checks.VALUE_TOO_LONG.about(name)(mask, shown, **values))
    if pair:
        out, pair_found = _fit_name_pair(out, record, id_column)
        found.append(pair_found)
    if too_long.any():
        out = out[~too_long].reset_index(drop=True)
    return out, combine(found)


def _fit_name_pair(
    frame: pd.DataFrame, record: pd.Series, id_column: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """users.csv's first_name and last_name cut to ``MAX_USER_NAME_PAIR_CHARS`` together: the longer one
    first, neither below half the room unless it was shorter."""
    first, last = (lengths(frame[column]) for column in USER_NAME_PAIR)
    over = first + last > MAX_USER_NAME_PAIR_CHARS
    if not over.any():
        return frame, no_findings()
    room = MAX_USER_NAME_PAIR_CHARS
    keep_first = np.minimum(first, np.maximum(room - last, room // 2))
    keep_last = np.minimum(last, room - keep_first)
    out = frame.copy(deep=False)
    mask = pd.Series(over, index=frame.index)
    together = counts(first + last, over, frame.index)
    shown = shortened(record)
    found = checks.NAME_PAIR_TOO_LONG.about(files.USERS)(
        mask, shown, id_column=id_column, id=shown, length=together, limit=str(room)
    )
    for column, keep in zip(USER_NAME_PAIR, (keep_first, keep_last), strict=True):
        out[column] = _cut_rows(out[column], over, keep[over])
    return out, found


def _cut_rows(values: pd.Series, rows: np.ndarray, keep: np.ndarray) -> pd.Series:
    """``values`` with those at ``rows`` (a mask) cut to ``keep`` characters (one per row cut)."""
    out = values.astype("string").copy()
    out[rows] = _cut(out[rows], keep).to_numpy()
    return out
