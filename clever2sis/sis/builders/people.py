"""The people a users.csv is made of: one frame, a row per person who may become a Canvas user.

Two groups of rows make it: the Clever users the settings build (users.py) and, with ``[observers]``, the
contacts who become their observers (observers.py). Each group is a frame with these columns, and the
groups are stacked (users first) into one:

- ``clever_id``: the Clever id; ``user_id``: the Canvas user_id its template renders;
- ``email``: the address where it is a usable one, else ``<NA>``;
- ``observer``, ``student``: whether the row is a contact built as observer, and a student;
- ``login:<field>``: the login candidates, one column per login field in order of preference (``<NA>``
  where the field is unusable; see logins.py), which the login rule turns into ``login_id``;
- ``user.<field>`` / ``contact.<field>``: the template-namespace fields that users.csv columns read (see
  ``USERS_CSV`` in users.py), as the templates see them; missing in the other group.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clever2sis.sis import checks
from clever2sis.sis.arrow import one_array, stacked, string_series

LOGIN = "login:"

# A pragmatic address check: one @, something before it, a dot in the domain, no spaces.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# Python's \s (every character str.isspace accepts) spelled out for Arrow's regex engine, RE2, whose \s is
# ASCII whitespace only. Given \s itself, pandas matches one value at a time with Python's re (3x slower).
UNICODE_WHITESPACE = (
    r"\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
)
_EMAIL_RE2 = EMAIL_PATTERN.replace(r"\s", UNICODE_WHITESPACE)


def checked_email(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The stripped email where it is a usable address (else ``<NA>``), and where one was invalid."""
    email = one_array(values.str.strip())
    email_ok = pc.fill_null(pc.match_substring_regex(email, _EMAIL_RE2), False)
    invalid = pc.and_(pc.is_valid(email), pc.invert(email_ok))
    return (
        string_series(pc.if_else(email_ok, email, pa.scalar(None, pa.large_string())), values.index),
        pd.Series(invalid.to_numpy(zero_copy_only=False), index=values.index),
    )


def invalid_emails(clever_id: pd.Series, given: pd.Series, invalid: pd.Series) -> pd.DataFrame:
    """The ``invalid_email`` findings: ``given`` is the email as Clever has it."""
    return checks.INVALID_EMAIL(invalid, clever_id, user=clever_id, email=given)


def login_candidates(people: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """The ``login:<field>`` columns of ``people`` as the login rule takes them: (field, values), in order."""
    return [(column[len(LOGIN) :], people[column]) for column in people.columns if column.startswith(LOGIN)]


def stack(groups: list[pd.DataFrame]) -> pd.DataFrame:
    """The groups' rows one after the other, numbered from 0; a string column one group lacks is missing
    there. The flags (``observer``, ``student``) are in every group."""
    if len(groups) == 1:
        return groups[0]
    columns = dict.fromkeys(column for group in groups for column in group.columns)
    out = {}
    for column in columns:
        if all(column in group and group[column].dtype == bool for group in groups):
            out[column] = pd.Series(np.concatenate([group[column].to_numpy() for group in groups]))
        else:
            out[column] = stacked([group[column] if column in group else len(group) for group in groups])
    return pd.DataFrame(out)
