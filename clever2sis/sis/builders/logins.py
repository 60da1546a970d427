"""The login rule: which users.csv row gets which login_id.

Canvas login ids are unique per root account regardless of case (``lib/sis/user_importer.rb``,
``app/models/pseudonym.rb``), and a login that two users share would let one claim the other's account. Each
user offers candidate values, field by field in order of preference (the ``login_id_fields`` setting, then
``observers.login_id`` for observers), and the rule is:

  A login_id that several users would share is given to none of them. Each of them falls back to its next
  login field, as long as that value is usable and unique too. A value contested once is never given to
  anyone later, so a user who lost ``jsmith`` as a username cannot be signed into the account of someone
  whose email is ``jsmith``. A user left with no usable unique login is not sent, and is listed in the
  findings with the value they lost.

Everyone's first field is settled before anyone's second, so a value is given to the user who offers it
earliest in their preferences, and observers (whose only field comes last) never take a login that a student
or teacher is given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clever2sis.sis.arrow import member, one_array, string_series
from clever2sis.sis.findings import text

LOST_COLUMNS = ("field", "value", "reason")


def assign_logins(candidates: list[tuple[str, pd.Series]]) -> tuple[pd.Series, pd.DataFrame]:
    """Apply the login rule of this module.

    ``candidates`` are (field name, values) in order of preference, ``<NA>`` where unusable, all over the
    same index. Returns the chosen login (``<NA>`` for none) and, for each user who lost a login to a
    collision (indexed like ``candidates``), the field, the value and why (``reason``: "is shared by 2
    users", "is already another user's login").
    """
    index = candidates[0][1].index
    open_ = np.ones(len(index), dtype=bool)  # users without a login so far
    given: list[tuple[np.ndarray, pa.Array]] = []  # for each field: the users it gave a login, and the logins
    taken: list[pa.Array] = []  # lower-cased logins given out, and values contested before
    collisions = []
    for field, values in candidates:
        asked = open_ & values.notna().to_numpy()
        positions = np.flatnonzero(asked)
        value = pc.utf8_trim_whitespace(one_array(values).filter(asked))
        key = pc.utf8_lower(value)
        # One hash of the keys gives both who shares a value and how many share it.
        codes = pc.dictionary_encode(key).indices.to_numpy(zero_copy_only=False)
        counts = np.bincount(codes)[codes] if len(codes) else np.zeros(0, dtype=np.int64)
        shared = counts > 1
        clash = shared | _among(key, taken)
        won = ~clash
        given.append((positions[won], value.filter(won)))
        open_[positions[won]] = False
        taken += [key.filter(won), key.filter(shared)]
        if clash.any():
            reason = text("is shared by ", pd.Series(counts[clash]).astype("string"), " users").where(
                pd.Series(shared[clash]), "is already another user's login"
            )
            collisions.append(
                pd.DataFrame(
                    {"field": field, "value": string_series(value.filter(clash)), "reason": reason}
                ).set_axis(index[positions[clash]])
            )
    lost = pd.concat(collisions) if collisions else pd.DataFrame(columns=list(LOST_COLUMNS))
    return _placed(given, index), lost[~lost.index.duplicated()]


def _among(key: pa.Array, taken: list[pa.Array]) -> np.ndarray:
    """Which keys are in ``taken`` (member() looks the many taken values up among a later field's keys)."""
    earlier = pa.chunked_array(taken, type=pa.large_string()).combine_chunks()
    if not len(key) or not len(earlier):
        return np.zeros(len(key), dtype=bool)
    return np.asarray(member(string_series(key), string_series(earlier)), dtype=bool)


def _placed(given: list[tuple[np.ndarray, pa.Array]], index: pd.Index) -> pd.Series:
    """The logins of ``given`` (positions and values, field by field) as one column over ``index``."""
    positions = np.concatenate([where for where, _ in given])
    logins = pa.chunked_array([login for _, login in given], type=pa.large_string()).combine_chunks()
    slot = np.full(len(index), -1, dtype=np.int64)
    slot[positions] = np.arange(len(positions))
    return string_series(logins.take(pa.array(slot, mask=slot < 0))).set_axis(index)
