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
from clever2sis.sis.emails import canvas_accepts_emails
from clever2sis.sis.findings import combine, no_findings
from clever2sis.sis.lengths import MAX_STRING_CHARS, counts, lengths, shortened
from clever2sis.sis.validate import CONTROL_CHARACTERS

LOGIN = "login:"


def checked_email(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The stripped email where Canvas would keep it (else ``<NA>``), and why each other one is not sent.

    Canvas keeps an email only when ``EmailAddressValidator`` accepts it (canvas-lms
    ``lib/email_address_validator.rb``; :func:`clever2sis.sis.emails.canvas_accepts_emails`), and stores it
    as a communication channel whose path is a 255-character string column. An address holding a control
    character (legal in a quoted local part) is not sent either: the build removes control characters
    from every value it writes (``sis/validate.py``), which would send another address. A blank email is a
    missing one. The second Series is ``""`` where the email is sent or missing, else one of the
    ``EMAIL_*`` reasons.
    """
    stripped = one_array(values.str.strip())
    # Canvas reads a blank cell as no email (lib/sis/csv/csv_base_importer.rb strips every field).
    email = pc.if_else(pc.equal(stripped, ""), pa.scalar(None, pa.large_string()), stripped)
    length = pc.utf8_length(email)
    too_long = pc.fill_null(pc.greater(length, MAX_STRING_CHARS), False)
    control = pc.fill_null(pc.match_substring_regex(email, CONTROL_CHARACTERS), False)
    accepted = pc.fill_null(canvas_accepts_emails(email), False)
    present = pc.is_valid(email)
    reason = pc.case_when(
        pc.make_struct(pc.invert(present), too_long, control, pc.invert(accepted)),
        "",
        EMAIL_TOO_LONG,
        EMAIL_CONTROL_CHARACTERS,
        EMAIL_REFUSED,
        "",
    )
    usable = pc.equal(reason, "")
    return (
        string_series(pc.if_else(usable, email, pa.scalar(None, pa.large_string())), values.index),
        string_series(reason.cast(pa.large_string()), values.index),
    )


# Why checked_email does not send an email.
EMAIL_REFUSED = "refused"
EMAIL_TOO_LONG = "too long"
EMAIL_CONTROL_CHARACTERS = "control characters"


def invalid_emails(clever_id: pd.Series, given: pd.Series, reason: pd.Series) -> pd.DataFrame:
    """The ``invalid_email`` findings: ``given`` is the email as Clever has it, ``reason`` what
    :func:`checked_email` says of it. Only the few rows not sent are read."""
    at = np.flatnonzero((reason != "").to_numpy(dtype=bool, na_value=False))
    if not len(at):
        return no_findings()
    user, why = clever_id.iloc[at], reason.iloc[at]
    email = given.iloc[at]
    shown = shortened(email)
    too_long = (why == EMAIL_TOO_LONG).to_numpy(dtype=bool)
    return combine(
        [
            checks.INVALID_EMAIL(why == EMAIL_REFUSED, user, user=user, email=shown),
            checks.EMAIL_TOO_LONG(
                why == EMAIL_TOO_LONG,
                user,
                user=user,
                email=shown,
                length=counts(lengths(email.str.strip()), too_long, email.index),
                limit=str(MAX_STRING_CHARS),
            ),
            checks.EMAIL_CONTROL_CHARACTERS(why == EMAIL_CONTROL_CHARACTERS, user, user=user, email=shown),
        ]
    )


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
