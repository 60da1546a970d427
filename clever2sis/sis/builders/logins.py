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

A value Canvas would not save as a login is not usable either (``Logins.refused``): ``Pseudonym``
(``app/models/pseudonym.rb``) takes a unique_id of at most ``MAX_UNIQUE_ID_LENGTH`` (100) characters made of
``[[:print:]]`` characters only, and refuses the user's row otherwise ("Could not save the user with
user_id ..."). Its user falls back to their next login field, as after a collision.

``[[:print:]]`` is Ruby's (Onigmo's) class: every character but controls (Cc), unassigned code points (Cn),
surrogates and the line and paragraph separators (Zl, Zp); spaces (Zs), format characters (Cf) and private
use ones (Co) are printable. It is read here from Python's Unicode tables; where they are newer or older than
the Ruby Canvas runs on, only the characters one version assigns and the other does not are judged
differently (tests/test_logins_ruby.py checks the rule against Ruby itself).

A login Canvas still holds for a user outside the build (a removed user, whose suspended login still claims
its name: ``app/models/pseudonym.rb`` checks uniqueness among logins not deleted) is given to no one either
(:func:`without_claimed`): Canvas would skip the row ("has already claimed ... requested login information",
``lib/sis/user_importer.rb``), so its user falls back to their next login field, as if someone had taken the
value before anyone's first field.
"""

from __future__ import annotations

import unicodedata
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clever2sis.sis.arrow import member, one_array, string_series
from clever2sis.sis.findings import text
from clever2sis.sis.lengths import MAX_LOGIN_CHARS

LOST_COLUMNS = ("field", "value", "reason")
# The general categories Onigmo's [[:print:]] leaves out (with the surrogates, which UTF-8 cannot hold).
UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cn", "Zl", "Zp", "Cs"})


def printable(value: str) -> bool:
    """Whether Canvas's login format (``/\\A[[:print:]]+\\z/``) takes ``value``."""
    return bool(value) and all(unicodedata.category(char) not in UNPRINTABLE_CATEGORIES for char in value)


def _refused(field: str, value: pa.Array, index: pd.Index) -> tuple[np.ndarray, pd.DataFrame]:
    """Which of the (trimmed) ``value``s Canvas would not save as a login, and for those (indexed by
    ``index``) the field, the value and why."""
    length = pc.fill_null(pc.utf8_length(value), 0).to_numpy(zero_copy_only=False)
    too_long = np.asarray(length > MAX_LOGIN_CHARS, dtype=bool)
    bad = too_long.copy()
    rows, chars = _first_unprintable(value)
    bad[rows] = True
    unprintable = dict(zip(rows.tolist(), chars, strict=True))
    at = np.flatnonzero(bad)
    reasons = [
        f"is {length[row]:,} characters long, more than the {MAX_LOGIN_CHARS} Canvas takes"
        if too_long[row]
        else f"holds {_named(unprintable[row])}, which Canvas does not take in a login"
        for row in at.tolist()
    ]
    found = pd.DataFrame(
        {
            "field": field,
            "value": string_series(value.take(pa.array(at, type=pa.int64()))),
            "reason": pd.Series(reasons, dtype="string"),
        }
    ).set_axis(index[at])
    return bad, found


def _first_unprintable(value: pa.Array) -> tuple[np.ndarray, list[str]]:
    """The positions of the values holding a character that [[:print:]] leaves out, and the first such
    character of each.

    Only the values that may hold one are read: the non-ASCII ones, and all of them if a control byte is in
    the data (found by a numpy scan of the bytes, as ``sis/validate.py`` finds control characters). Their
    distinct characters are judged once each, and RE2 then finds the first refused one of each value.
    """
    ascii_only = np.asarray(
        pc.fill_null(pc.string_is_ascii(value), True).to_numpy(zero_copy_only=False), dtype=bool
    )
    control_bytes = _has_control_bytes(value)
    rows = np.arange(len(value)) if control_bytes else np.flatnonzero(~ascii_only)
    if not len(rows):
        return rows, []
    candidates = value.take(pa.array(rows))
    refused = sorted(ord(char) for char in _characters(candidates) if not printable(char))
    if not refused:
        return np.zeros(0, dtype=np.int64), []
    pattern = f"(?P<char>[{_character_class(refused)}])"
    found = pc.struct_field(pc.extract_regex(candidates, pattern), [0])
    hit = np.asarray(pc.is_valid(found).to_numpy(zero_copy_only=False), dtype=bool)
    return rows[hit], found.filter(pa.array(hit)).to_pylist()


def _character_class(codes: list[int]) -> str:
    """The sorted code points as the inside of an RE2 character class, runs written as ranges."""
    runs: list[list[int]] = []
    for code in codes:
        if runs and runs[-1][1] == code - 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return "".join(f"\\x{{{a:x}}}-\\x{{{b:x}}}" if a < b else f"\\x{{{a:x}}}" for a, b in runs)


def _has_control_bytes(value: pa.Array) -> bool:
    """Whether a byte of the values' data is a C0 control or DEL (UTF-8 uses none inside a character)."""
    data = value.buffers()[2] if len(value) else None
    octets = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    return bool(len(octets)) and bool((octets < 0x20).any() or (octets == 0x7F).any())


def _characters(value: pa.Array) -> set[str]:
    """The distinct characters of the (large_string) values: their data buffer decoded once."""
    data = value.buffers()[2]
    if data is None:
        return set()
    offsets = np.frombuffer(value.buffers()[1], dtype=np.int64)[value.offset : value.offset + len(value) + 1]
    return set(bytes(memoryview(data)[int(offsets[0]) : int(offsets[-1])]).decode("utf-8"))


def _named(char: str) -> str:
    """``U+2028 (LINE SEPARATOR)``, for a message."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


class Logins(NamedTuple):
    """What the login rule gave: each user's ``login`` (``<NA>`` for none), and for the users who lost a
    value on the way (each indexed like the candidates, with its first loss) the field, the value and why:
    ``lost`` to a collision (``reason``: "is shared by 2 users", "is already another user's login") or
    ``refused`` by Canvas's rules ("is 150 characters long, more than the 100 Canvas takes", "holds U+2028
    (LINE SEPARATOR), which Canvas does not take in a login")."""

    login: pd.Series
    lost: pd.DataFrame
    refused: pd.DataFrame


def assign_logins(candidates: list[tuple[str, pd.Series]]) -> Logins:
    """Apply the login rule of this module.

    ``candidates`` are (field name, values) in order of preference, ``<NA>`` where unusable, all over the
    same index. A value is read trimmed of white space; one Canvas would not save is refused before any
    collision, and only while its user has no login yet (a later field the rule never reaches is not
    judged).
    """
    index = candidates[0][1].index
    open_ = np.ones(len(index), dtype=bool)  # users without a login so far
    given: list[tuple[np.ndarray, pa.Array]] = []  # for each field: the users it gave a login, and the logins
    taken: list[pa.Array] = []  # lower-cased logins given out, and values contested before
    collisions = []
    refusals = []
    for field, values in candidates:
        asked = open_ & values.notna().to_numpy()
        positions = np.flatnonzero(asked)
        value = pc.utf8_trim_whitespace(one_array(values).filter(asked))
        bad, refused = _refused(field, value, index[positions])
        if bad.any():
            refusals.append(refused)
            positions, value = positions[~bad], value.filter(pa.array(~bad))
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
    return Logins(_placed(given, index), _first_of_each(collisions), _first_of_each(refusals))


def _first_of_each(losses: list[pd.DataFrame]) -> pd.DataFrame:
    """The losses of every field in one frame, each user's first only."""
    if not losses:
        return pd.DataFrame(columns=list(LOST_COLUMNS))
    lost = pd.concat(losses)
    return lost[~lost.index.duplicated()]


def without_claimed(
    candidates: list[tuple[str, pd.Series]], claimed: pd.Series
) -> tuple[list[tuple[str, pd.Series]], pd.DataFrame]:
    """The candidates with every value in ``claimed`` (lower-cased logins) made ``<NA>``, compared trimmed
    and regardless of case; and, for each user who offered such a value (indexed like ``candidates``), the
    first: its field's position in ``candidates`` (``position``), the field and the value."""
    index = candidates[0][1].index
    taken = string_series(pa.array(claimed, type=pa.large_string(), from_pandas=True))
    out, found = [], []
    seen = np.zeros(len(index), dtype=bool)
    for position, (field, values) in enumerate(candidates):
        key = pc.utf8_lower(pc.utf8_trim_whitespace(one_array(values)))
        hit = np.asarray(member(string_series(key), taken), dtype=bool)
        if not hit.any():
            out.append((field, values))
            continue
        first = hit & ~seen
        seen |= hit
        found.append(
            pd.DataFrame(
                {
                    "position": position,
                    "field": field,
                    "value": string_series(pc.utf8_trim_whitespace(one_array(values, first))),
                }
            ).set_axis(index[first])
        )
        out.append((field, values.mask(pd.Series(hit, index=index))))
    offered = pd.concat(found) if found else pd.DataFrame(columns=["position", "field", "value"])
    return out, offered


def given_by(candidates: list[tuple[str, pd.Series]], login: pd.Series) -> np.ndarray:
    """The position in ``candidates`` of the field that gave each user their ``login`` (the number of
    fields where they have none)."""
    out = np.full(len(login), len(candidates), dtype=np.int64)
    chosen = one_array(login)
    for position, (_, values) in enumerate(reversed(candidates)):
        same = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(one_array(values)), chosen), False)
        out[np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)] = len(candidates) - 1 - position
    return out


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
