"""Observer links managed by the sync: removed before the main import, every link sent after it.

Canvas cannot be left to carry observer links through the main import:

* its diffing pairs user_observers.csv rows by ``observer_id`` alone (``identifying_fields`` in
  ``lib/sis/csv/user_observer_importer.rb``) and its CSV diff keeps one row per key (``insert or replace``,
  ``gems/csv_diff``), so a parent with several children collapses to one row: removing one link, or adding
  a sibling, can send nothing, and a parent removed from a student keeps seeing that student's grades;
* batch mode never cleans up observer links (``SisBatch#remove_previous_imports``,
  ``app/models/sis_batch.rb``), nor does a remaster or an explicit import unless removal rows are sent;
* the user_observer importer finds the observer and the student only by a login that is not deleted
  (``@root_account.pseudonyms.active``, ``lib/sis/user_observer_importer.rb``), so a removal sent in the
  same import that deletes one of them, or later, fails ("An observer referenced a non-existent user").

So with ``[observers] enabled`` the sync takes user_observers.csv out of the main import (:func:`take_links`)
and sends up to two small plain imports (no diffing identifier, no batch mode, no remaster, no
skip_deletes), each from a build directory of its own inside the run:

1. ``RUN/observers-removed/``, before the main import and only when there are any: every link Canvas holds
   (the applied state's ``observers``) that Clever no longer has, as ``deleted`` rows, while the people are
   still active in Canvas;
2. ``RUN/observers/``, after the main import was applied: every link Clever has tonight, ``active`` (Canvas
   keeps a link it holds as it is, and re-sending heals one it refused once).

The links Canvas may hold (the state's ``observers``) are, after the removals were applied, the links held
less those removed, and from the moment the links import is posted every link sent in it: a link Canvas may
hold is never forgotten, so that its removal is always sent once Clever drops it. This module holds the pure
part (which links, their rows, their names); the pipeline posts the imports.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from clever2sis.build_dir import empty_frames
from clever2sis.sis import files
from clever2sis.sis.builders.user_observers import ACTIVE, LINK_COLUMNS
from clever2sis.sync.changes import Amended, among, row_keys
from clever2sis.sync.identities import renamed_column
from clever2sis.sync.state import AppliedState

# The night's imports, in the order they are posted (the JSON line's and history's ``imports``).
REMOVALS = "observer_removals"
MAIN = "main"
LINKS = "observer_links"
IMPORT_DIR_NAMES = {REMOVALS: "observers-removed", LINKS: "observers"}
# What each observer import's build keeps, with names, under sync/<kind>/user_observers.csv.
REMOVED_KIND = "removed"
ADDED_KIND = "added"
# The same links, planned, kept in the main build (sync/<kind>/user_observers.csv) before either import is
# posted, so that the report the sync writes before its uploads can name them.
PLANNED_KINDS = {REMOVED_KIND: "observers-removed", ADDED_KIND: "observers-added"}
NAME_COLUMNS = ("observer_name", "student_name")
# A run's outcome when an observer import stopped it (history, the JSON line).
REMOVALS_FAILED = "observer_removals_failed"
LINKS_FAILED = "observer_links_failed"


def _links(frame: pd.DataFrame) -> pd.DataFrame:
    """Distinct (observer_id, student_id) pairs as plain string columns, sorted, numbered from 0."""
    pairs = frame.loc[:, list(LINK_COLUMNS)].astype("str")
    return pairs.drop_duplicates().sort_values(list(LINK_COLUMNS), ignore_index=True, kind="stable")


def no_links() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series([], dtype="str") for column in LINK_COLUMNS})


def active_links(rows: pd.DataFrame) -> pd.DataFrame:
    """The links of user_observers.csv ``rows`` that are sent active."""
    if not len(rows):
        return no_links()
    return _links(rows.loc[(rows["status"].astype("str").str.lower() == ACTIVE).to_numpy()])


def links_without(links: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """The links of ``links`` that are not in ``other``."""
    if not len(links) or not len(other):
        return links.reset_index(drop=True)
    gone = among(row_keys(links, files.USER_OBSERVERS), row_keys(other, files.USER_OBSERVERS))
    return links.loc[~gone].reset_index(drop=True)


def before_carry_over(links: pd.DataFrame, renames: pd.Series) -> pd.DataFrame:
    """``links`` with the user ids of people carried over tonight (``renames``: new id by old id) turned
    back into their old ones: an import posted before the main import (which moves them to their new ids)
    finds them by the ids Canvas knows them by until then."""
    if renames.empty or links.empty:
        return links
    back = pd.Series(renames.index.to_numpy(), index=renames.to_numpy(), dtype="str")
    return links.assign(**{column: renamed_column(links[column], back) for column in LINK_COLUMNS})


def held_links(state: AppliedState | None) -> pd.DataFrame:
    """The links Canvas holds as far as the sync knows: the state's ``observers`` and, from a state kept
    while user_observers.csv still went in the main import, that file's present rows."""
    if state is None:
        return no_links()
    return _links(pd.concat([state.observers, active_links(state.present[files.USER_OBSERVERS])]))


def for_sync(state: AppliedState, observers: pd.DataFrame | None = None) -> AppliedState:
    """``state`` as a night with managed links reads it: ``observers`` (the newest the sync kept, else
    the state's own) joined by :func:`held_links`, and user_observers.csv's present rows those links, so
    that the guard and the change counts compare tonight's links with them."""
    source = state if observers is None else dataclasses.replace(state, observers=observers)
    held = held_links(source)
    present = {**state.present, files.USER_OBSERVERS: held.assign(status=ACTIVE)}
    return dataclasses.replace(state, observers=held, present=present)


def for_main_import(state: AppliedState | None, observers: pd.DataFrame) -> AppliedState:
    """The state the main import's outcome is computed from: it holds no user_observers.csv rows (the
    links are in ``observers``, here those Canvas may hold when the main import is posted)."""
    before = state if state is not None else AppliedState.empty()
    present = {**before.present, files.USER_OBSERVERS: empty_frames()[files.USER_OBSERVERS]}
    return dataclasses.replace(before, present=present, observers=observers)


@dataclass(frozen=True)
class LinkPlan:
    """Tonight's links against those Canvas holds, and the users who name them.

    ``held``: the links Canvas holds before tonight; ``tonight``: the links Clever has tonight (the build's
    user_observers.csv); ``users``: users.csv rows to name people by, tonight's first. The links removed,
    added and kept are computed once.
    """

    held: pd.DataFrame
    tonight: pd.DataFrame
    users: Sequence[pd.DataFrame] = field(default_factory=tuple)

    @functools.cached_property
    def removed(self) -> pd.DataFrame:
        """Links Canvas holds that Clever no longer has: sent as ``deleted`` before the main import."""
        return links_without(self.held, self.tonight)

    @functools.cached_property
    def added(self) -> pd.DataFrame:
        """Links Clever has tonight that Canvas does not hold yet."""
        return links_without(self.tonight, self.held)

    @functools.cached_property
    def kept(self) -> pd.DataFrame:
        """The links Canvas holds once the removals are applied."""
        return links_without(self.held, self.removed)

    def counts(self) -> dict[str, int]:
        return {"tonight": len(self.tonight), "added": len(self.added), "removed": len(self.removed)}

    def planned_rows(self) -> dict[str, dict[str, pd.DataFrame]]:
        """The links to remove and to add, named, as the main build keeps them (:data:`PLANNED_KINDS`)."""
        return {
            PLANNED_KINDS[REMOVED_KIND]: {files.USER_OBSERVERS: self.named(self.removed)},
            PLANNED_KINDS[ADDED_KIND]: {files.USER_OBSERVERS: self.named(self.added)},
        }

    def named(self, links: pd.DataFrame) -> pd.DataFrame:
        """``links`` with each person's name (:data:`NAME_COLUMNS`; empty for someone no users.csv has)."""
        names = display_names(self.users)
        out = links.loc[:, list(LINK_COLUMNS)].reset_index(drop=True)
        for column, name_column in zip(LINK_COLUMNS, NAME_COLUMNS, strict=True):
            out[name_column] = out[column].map(names).fillna("").astype("str")
        return out


def display_names(users: Sequence[pd.DataFrame]) -> pd.Series:
    """user_id -> name from users.csv rows (``full_name`` when set, else first and last name); the first
    frame that has a user names them."""
    parts = []
    for frame in users:
        if not len(frame):
            continue
        first_last = (frame["first_name"].astype("str") + " " + frame["last_name"].astype("str")).str.strip()
        if "full_name" in frame.columns:
            full = frame["full_name"].astype("str").str.strip()
            first_last = full.where(full != "", first_last)
        parts.append(pd.DataFrame({"user_id": frame["user_id"].astype("str"), "name": first_last}))
    if not parts:
        return pd.Series([], dtype="str")
    names = pd.concat(parts, ignore_index=True).drop_duplicates("user_id", keep="first")
    return pd.Series(names["name"].to_numpy(), index=names["user_id"].to_numpy(), dtype="str")


def take_links(amended: Amended, state: AppliedState | None) -> tuple[Amended, LinkPlan]:
    """Tonight's user_observers.csv out of the main import, and tonight's links against ``state``'s."""
    frames = dict(amended.frames)
    tonight = active_links(frames[files.USER_OBSERVERS])
    frames[files.USER_OBSERVERS] = empty_frames()[files.USER_OBSERVERS]
    users = [amended.frames[files.USERS]] + ([state.present[files.USERS]] if state is not None else [])
    plan = LinkPlan(held=held_links(state), tonight=tonight, users=tuple(users))
    return dataclasses.replace(amended, frames=frames), plan
