"""Identity churn: a person whose Clever id changes keeps their Canvas user.

Clever re-creates a user under a new id when their SIS id changes, when they come back after a long
absence, or when an email change splits a teacher and a staff member Clever had merged. The new id is a new
user_id, and without help Canvas would make a new user: the old one is suspended, its login still claims
the username (``app/models/pseudonym.rb`` checks uniqueness among logins not deleted), the new user's row
is skipped ("An existing Canvas user with the SIS ID ... has already claimed ...'s user_id requested login
information, skipping", ``lib/sis/user_importer.rb``) and every enrollment of theirs fails.

:func:`detect_churn` compares tonight's build (its identities.csv) with what Canvas holds (the applied
state): a user_id new tonight and an old one that is gone (vanishing tonight, or removed on an earlier
night and kept in the state's ledger) are the same person when they share a key: the login (regardless of
case), the SIS id, the student number or the teacher number. The match must be one to one: a new user
matching several old ones, or an old one matched by several new ones, is ``identity_ambiguous`` and not
carried. A user removed on an earlier night needs a second, corroborating key with another value (the name
counts, so login and name, or login and number): a username a different person is given years later must
not hand them the old account.

A match is carried over (``[sync] identity_changes``):

- ``change_sis_id`` (default): a ``change_sis_id.csv`` row (``type`` user, old_id to new_id), which Canvas
  processes before every other file (``lib/sis/change_sis_id_importer.rb``), so the Canvas user, with its
  logins, enrollments, coursework and observer links, answers to the new id before users.csv is read;
- ``update_sis_id_if_login_claimed``: for a match by the login, Canvas's import option of that name, which
  re-points the login the new row asks for (and its user) to the new SIS id; a match by SIS id or number
  alone still gets a change_sis_id row, since there the login changed;
- ``off``: nothing is carried; the person becomes a new Canvas user.

A night that carries someone over is sent as a remaster under diffing (the pipeline sees to it): a diff
would send the old id as removed, after the rename, and suspend the person again or make a stranger of
the old id. Every login an old user still holds in Canvas and that is not carried is ``claimed``: the
build gives it to no one (``login_claimed_by_removed_user``), so nobody is skipped by Canvas for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clever2sis.build_dir import Frames
from clever2sis.sis import checks, files
from clever2sis.sis.builders.identities import IDENTITY_COLUMNS, IDENTITY_KEYS
from clever2sis.sis.builders.users import CLAIMED_COLUMNS
from clever2sis.sis.findings import combine, no_findings
from clever2sis.sync.changes import among

CHANGE_SIS_ID = "change_sis_id"
UPDATE_SIS_ID = "update_sis_id_if_login_claimed"
OFF = "off"
# The keys a person is matched by (identities.csv's columns), in the order findings name them.
MATCH_KEYS = ("login_id", "sis_id", "student_number", "teacher_number")
NAME = "name"
# A user removed on an earlier night must share this many keys with other values (the name counting).
EARLIER_NIGHT_KEYS = 2
CARRIED_COLUMNS = ("old_id", "new_id", "clever_id", "keys", "removed_on", "tonight", "via")
AMBIGUOUS_COLUMNS = ("new_id", "clever_id", "old_ids", "keys")
# What run.json and build.json keep of each carry-over.
DETAIL_COLUMNS = ("old_id", "new_id", "keys", "removed_on", "via")
# The ledger statuses whose login still claims its name in Canvas (a deleted login claims none).
CLAIMING_STATUSES = frozenset({"suspended"})
# Each Canvas file's columns that name a user.
USER_COLUMNS = {
    files.USERS: ("user_id",),
    files.ENROLLMENTS: ("user_id",),
    files.USER_OBSERVERS: ("observer_id", "student_id"),
    files.ADMINS: ("user_id",),
}


def _strings(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series([], dtype="str") for column in columns})


@dataclass(frozen=True)
class Churn:
    """Tonight's identity changes: ``carried`` (:data:`CARRIED_COLUMNS`: one row per person carried over,
    ``via`` change_sis_id or update_sis_id_if_login_claimed), ``ambiguous`` (:data:`AMBIGUOUS_COLUMNS`: new
    users whose match was not one to one) and ``claimed`` (:data:`CLAIMED_COLUMNS`: logins Canvas holds for
    old users who are not carried over)."""

    carried: pd.DataFrame
    ambiguous: pd.DataFrame
    claimed: pd.DataFrame

    @classmethod
    def none(cls) -> Churn:
        return cls(_strings(CARRIED_COLUMNS), _strings(AMBIGUOUS_COLUMNS), _strings(CLAIMED_COLUMNS))

    @property
    def renames(self) -> pd.Series:
        """new user_id by old user_id, for every person carried over."""
        return pd.Series(
            self.carried["new_id"].to_numpy(), index=self.carried["old_id"].to_numpy(), dtype="str"
        )

    @property
    def by_login_option(self) -> bool:
        """Whether some carry-over needs the import option update_sis_id_if_login_claimed."""
        return bool((self.carried["via"] == UPDATE_SIS_ID).any())

    def change_sis_id_rows(self) -> pd.DataFrame:
        """change_sis_id.csv's rows for the carry-overs made with it, sorted as the build sorts them."""
        rows = self.carried.loc[self.carried["via"] == CHANGE_SIS_ID, ["old_id", "new_id"]].assign(
            type="user"
        )
        rows = rows[list(files.COLUMNS[files.CHANGE_SIS_ID])].astype("str")
        return rows.sort_values(list(files.SORT_KEYS[files.CHANGE_SIS_ID]), ignore_index=True, kind="stable")

    def findings(self) -> pd.DataFrame:
        """``identity_carried`` for every carry-over and ``identity_ambiguous`` for every ambiguous match,
        each about the new user (its Clever id)."""
        if self.carried.empty and self.ambiguous.empty:
            return no_findings()
        carried, ambiguous = self.carried.reset_index(drop=True), self.ambiguous.reset_index(drop=True)
        when = pd.Series(
            np.where(
                carried["tonight"] == "true", "gone from Clever tonight", "removed " + carried["removed_on"]
            ),
            dtype="string",
        )
        parts = [
            checks.IDENTITY_CARRIED(
                pd.Series(True, index=carried.index),
                carried["clever_id"],
                user=carried["clever_id"],
                new_id=carried["new_id"],
                old_id=carried["old_id"],
                when=when,
                keys=carried["keys"],
                via=carried["via"],
            ),
            checks.IDENTITY_AMBIGUOUS(
                pd.Series(True, index=ambiguous.index),
                ambiguous["clever_id"],
                user=ambiguous["clever_id"],
                new_id=ambiguous["new_id"],
                keys=ambiguous["keys"],
                old_ids=ambiguous["old_ids"],
            ),
        ]
        return combine(parts)

    def details(self) -> dict[str, Any]:
        """Who is carried over (old_id, new_id, the keys they share, when the old one was removed, via)
        and who is ambiguous (:data:`AMBIGUOUS_COLUMNS`), as run.json and build.json keep them."""
        return {
            "carried": self.carried.loc[:, list(DETAIL_COLUMNS)].to_dict("records"),
            "ambiguous": self.ambiguous.to_dict("records"),
            "claimed_logins": len(self.claimed),
        }

    def counts(self) -> dict[str, int]:
        return {
            "carried": len(self.carried),
            "ambiguous": len(self.ambiguous),
            "claimed_logins": len(self.claimed),
        }


def identities_of_users(users: pd.DataFrame) -> pd.DataFrame:
    """What users.csv rows alone tell of their identity (for a state kept before identities.csv existed):
    user_id, the Clever id (integration_id, else user_id), login and names; the other keys empty."""
    out = pd.DataFrame({column: pd.Series([""] * len(users), dtype="str") for column in IDENTITY_COLUMNS})
    for column in ("user_id", "login_id", "first_name", "last_name"):
        if column in users:
            out[column] = users[column].astype("str").to_numpy()
    if "full_name" in users:
        full = users["full_name"].astype("str").to_numpy()
        out["last_name"] = np.where(full != "", full, out["last_name"].to_numpy())
    clever = users["integration_id"].astype("str").to_numpy() if "integration_id" in users else None
    out["clever_id"] = (
        np.where(clever != "", clever, out["user_id"]) if clever is not None else out["user_id"]
    )
    return out


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    """The match keys trimmed (the login lower-cased), and ``name`` (first and last, lower-cased, spaces
    collapsed); a missing value is empty."""

    def column(name: str) -> pd.Series:
        return frame[name].fillna("").astype("str").reset_index(drop=True)

    out = pd.DataFrame({"user_id": column("user_id")})
    for key in MATCH_KEYS:
        out[key] = column(key).str.strip()
    out["login_id"] = out["login_id"].str.lower()
    name = column("first_name") + " " + column("last_name")
    out[NAME] = name.str.lower().str.split().str.join(" ")
    return out


def detect_churn(
    tonight: pd.DataFrame,
    *,
    held_users: pd.DataFrame,
    held_identities: pd.DataFrame | None,
    removed_users: pd.DataFrame,
    mode: str,
    night: str,
) -> Churn:
    """Tonight's identity changes (see the module docstring).

    ``tonight``: tonight's identities.csv; ``held_users``: the users.csv rows Canvas holds and
    ``held_identities`` their identities (None when the state has none: what users.csv tells is used);
    ``removed_users``: the state's ledger (clever2sis.sync.state.REMOVED_USER_COLUMNS); ``mode``: the
    ``identity_changes`` setting; ``night``: tonight's stamp (when a user vanishing tonight is removed).
    """
    tonight_ids = tonight["user_id"]
    held = held_identities if held_identities is not None else identities_of_users(held_users)
    held = held.loc[among(held["user_id"], held_users["user_id"])]
    vanishing = held.loc[~among(held["user_id"], tonight_ids)].assign(
        removed_on=night, tonight="true", claims=True, status="active"
    )
    ledger = removed_users.loc[
        ~among(removed_users["user_id"], tonight_ids)
        & ~among(removed_users["user_id"], held_users["user_id"])
    ]
    earlier = ledger.assign(tonight="false", claims=among(ledger["status"], CLAIMING_STATUSES))
    old = pd.concat(
        [
            frame.loc[:, [*IDENTITY_KEYS, "removed_on", "tonight", "claims", "status"]]
            for frame in (vanishing, earlier)
        ],
        ignore_index=True,
    )
    known = pd.concat([held_users["user_id"], removed_users["user_id"]], ignore_index=True)
    new = tonight.loc[~among(tonight_ids, known)].reset_index(drop=True)
    carried, ambiguous = (
        _matches(new, old)
        if mode != OFF and len(new) and len(old)
        else (
            _strings(CARRIED_COLUMNS),
            _strings(AMBIGUOUS_COLUMNS),
        )
    )
    carried["via"] = _via(carried, new, old, mode)
    return Churn(carried, ambiguous, _claimed(old, carried))


def _pairs(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """Every (new_id, old_id) that share a key, once per key: new_id, old_id, key, value."""
    parts = []
    for key in MATCH_KEYS:
        left = new.loc[new[key] != "", ["user_id", key]].rename(columns={"user_id": "new_id", key: "value"})
        right = old.loc[old[key] != "", ["user_id", key]].rename(columns={"user_id": "old_id", key: "value"})
        if len(left) and len(right):
            parts.append(left.merge(right, on="value").assign(key=key))
    if not parts:
        return pd.DataFrame(
            {column: pd.Series([], dtype="str") for column in ("new_id", "old_id", "value", "key")}
        )
    return pd.concat(parts, ignore_index=True)


def _matches(new_rows: pd.DataFrame, old_rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The carry-overs (without ``via``) and the ambiguous matches of ``new_rows`` among ``old_rows``."""
    new, old = _normalised(new_rows), _normalised(old_rows)
    pairs = _pairs(new, old)
    if pairs.empty:
        return _strings(CARRIED_COLUMNS), _strings(AMBIGUOUS_COLUMNS)
    pairs["rank"] = pairs["key"].map({key: rank for rank, key in enumerate(MATCH_KEYS)})
    pairs = pairs.sort_values(["new_id", "old_id", "rank"], kind="stable", ignore_index=True)
    olds_of_new = pairs.groupby("new_id")["old_id"].transform("nunique")
    news_of_old = pairs.groupby("old_id")["new_id"].transform("nunique")
    single = (olds_of_new == 1) & (news_of_old == 1)
    clever_of = pd.Series(new_rows["clever_id"].to_numpy(), index=new_rows["user_id"].to_numpy())
    ambiguous = _ambiguous(pairs.loc[~single], clever_of)
    one = pairs.loc[single]
    if one.empty:
        return _strings(CARRIED_COLUMNS), ambiguous
    grouped = one.groupby(["new_id", "old_id"], sort=True)
    matched = grouped.agg(
        keys=("key", lambda keys: ", ".join(dict.fromkeys(keys))), values=("value", "nunique")
    )
    matched = matched.reset_index()
    old_info = old_rows.assign(_name=old[NAME].to_numpy()).set_index("user_id")
    new_name = pd.Series(new[NAME].to_numpy(), index=new["user_id"].to_numpy())
    same_name = (
        new_name.reindex(matched["new_id"]).to_numpy()
        == old_info["_name"].reindex(matched["old_id"]).to_numpy()
    ) & (new_name.reindex(matched["new_id"]).to_numpy() != "")
    earlier = old_info["tonight"].reindex(matched["old_id"]).to_numpy() != "true"
    needed = np.where(earlier, EARLIER_NIGHT_KEYS, 1)
    carry = matched.loc[matched["values"].to_numpy() + same_name >= needed].copy()
    names = np.where(same_name, ", name", "")
    carry["keys"] = carry["keys"] + pd.Series(names, index=matched.index).loc[carry.index]
    carried = pd.DataFrame(
        {
            "old_id": carry["old_id"].to_numpy(),
            "new_id": carry["new_id"].to_numpy(),
            "clever_id": clever_of.reindex(carry["new_id"]).to_numpy(),
            "keys": carry["keys"].to_numpy(),
            "removed_on": old_info["removed_on"].reindex(carry["old_id"]).to_numpy(),
            "tonight": old_info["tonight"].reindex(carry["old_id"]).to_numpy(),
        }
    ).astype("str")
    return carried.sort_values("new_id", ignore_index=True), ambiguous


def _ambiguous(pairs: pd.DataFrame, clever_of: pd.Series) -> pd.DataFrame:
    """One row per new user among ``pairs`` (matches that are not one to one): the old ids and the keys."""
    if pairs.empty:
        return _strings(AMBIGUOUS_COLUMNS)
    grouped = pairs.groupby("new_id", sort=True)
    out = grouped.agg(
        old_ids=("old_id", lambda ids: ", ".join(sorted(set(ids)))),
        keys=("key", lambda keys: ", ".join(key for key in MATCH_KEYS if key in set(keys))),
    ).reset_index()
    out["clever_id"] = clever_of.reindex(out["new_id"]).to_numpy()
    return out.loc[:, list(AMBIGUOUS_COLUMNS)].astype("str")


def _via(carried: pd.DataFrame, new: pd.DataFrame, old: pd.DataFrame, mode: str) -> np.ndarray:
    """How each carry-over reaches Canvas: by the login option only when that is the mode, the login is
    the same and the old user's login still claims it (a deleted one is not found by login)."""
    if mode != UPDATE_SIS_ID:
        return np.full(len(carried), CHANGE_SIS_ID, dtype=object)
    new_login = pd.Series(new["login_id"].str.lower().to_numpy(), index=new["user_id"].to_numpy())
    old_at = old.set_index("user_id")
    same = (
        new_login.reindex(carried["new_id"]).to_numpy()
        == old_at["login_id"].str.lower().reindex(carried["old_id"]).to_numpy()
    )
    claims = old_at["claims"].reindex(carried["old_id"]).to_numpy(dtype=bool)
    return np.where(same & claims, UPDATE_SIS_ID, CHANGE_SIS_ID)


def _claimed(old: pd.DataFrame, carried: pd.DataFrame) -> pd.DataFrame:
    """The logins (lower-cased) old users not carried over still hold in Canvas; one holder per login, the
    latest removed."""
    holding = old.loc[old["claims"].to_numpy(dtype=bool) & (old["login_id"].fillna("") != "")]
    holding = holding.loc[~among(holding["user_id"].astype("str"), carried["old_id"])]
    out = pd.DataFrame(
        {
            "login_id": holding["login_id"].str.strip().str.lower().to_numpy(),
            "user_id": holding["user_id"].to_numpy(),
            "removed_on": holding["removed_on"].to_numpy(),
        }
    ).astype("str")
    out = out.sort_values(["login_id", "removed_on"], kind="stable")
    return out.drop_duplicates("login_id", keep="last").reset_index(drop=True)


def given_claimed(tonight: pd.DataFrame, claimed: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``claimed`` whose login tonight's build gave to someone (so the build must be made again
    with them taken)."""
    logins = tonight["login_id"].fillna("").astype("str").str.strip().str.lower()
    return claimed.loc[among(claimed["login_id"], logins[logins != ""])].reset_index(drop=True)


def renamed_column(values: pd.Series, renames: pd.Series) -> pd.Series:
    """``values`` (user ids) with each old id of ``renames`` (new id by old id) replaced by its new id."""
    if renames.empty or values.empty:
        return values
    hit = among(values.astype("str"), pd.Series(renames.index, dtype="str"))
    if not hit.any():
        return values
    out = values.copy()
    out.loc[hit] = renames.reindex(values.loc[hit].to_numpy()).to_numpy()
    return out


def renamed_users(frames: Mapping[str, pd.DataFrame], renames: pd.Series) -> Frames:
    """``frames`` (every Canvas file) with every user id of ``renames`` (new by old) replaced."""
    out = dict(frames)
    for name, columns in USER_COLUMNS.items():
        frame = frames[name]
        if frame.empty or renames.empty:
            continue
        changed = frame.copy()
        for column in columns:
            changed[column] = renamed_column(frame[column], renames)
        out[name] = changed
    return out
