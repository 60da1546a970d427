"""What a sync run changes in a build, and how it compares with the last run Canvas applied.

All functions here are pure: frames in, frames out (reading a build's frames and writing them back are
:mod:`clever2sis.build_dir`'s). A "frames" value maps every Canvas file name to its rows as string columns
(an empty frame with the file's columns when the build has no such file).

* **Term rollover** (:func:`carry_ended_terms`): when a term has ended, Clever drops its sections sooner or
  later; under diffing or batch mode Canvas would then delete the courses and drop the enrollments. So
  rows of ended terms that the last applied run sent are carried into the new build, and every enrollment
  of an ended term is sent as ``completed`` (concluded, grades kept).
* **Terms and accounts** (:func:`carry_terms_and_accounts`): a term or account Canvas holds that tonight's
  build lacks is sent again as it was, so Canvas's diff never sends it as deleted.
* **Explicit deletion mode** (:func:`removal_rows`): the rows the last applied run sent that are gone now,
  as rows with a removal status: courses and sections ``deleted``, enrollments and users as configured
  (``inactive`` and ``suspended`` by default). Accounts and terms are never removed.
* **Admins** (``[admins]``): every night, in every mode, the admins the product made that tonight lacks are
  sent as ``deleted`` rows (:func:`removal_rows` with ``only``); the person who leaves with them stays in
  users.csv that night (:func:`carry_admin_leavers`); on a diffed night the deletions sent the night before
  are sent again unchanged (:func:`carry_admin_removals`); a night that gives an admin another role in an
  account cannot be diffed (:func:`admin_role_changes`). See :func:`removal_rows` for why.
* **What the guard compares** (:func:`current_terms_only`, :func:`without_rows`): the rows of terms that
  have not ended, without the rows the sync carried.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clever2sis.build_dir import CARRIED, HELD, REMOVED, Frames, empty_frames
from clever2sis.review.facts import DIFF_KEYS, diff_file
from clever2sis.sis import files
from clever2sis.sis.arrow import arrow_strings, member

ACTIVE = "active"
COMPLETED = "completed"
DELETED = "deleted"
# Statuses a sync writes for something that is gone; such a row is not "present" in the next comparison.
REMOVAL_STATUSES = frozenset({"deleted", "inactive", "suspended", "deleted_last_completed"})
STUDENT_ROLE = "student"
KEY_SEPARATOR = "\x1f"  # between the key columns of a row's identity: never in a CSV value we write


def row_keys(frame: pd.DataFrame, name: str) -> pd.Series:
    """Each row's identity in ``name`` (its diff key columns joined), computed by Arrow."""
    key = list(DIFF_KEYS[name])
    if frame.empty:
        return pd.Series([], dtype="string")
    parts = [arrow_strings(frame[column]) for column in key]
    separator = pa.scalar(KEY_SEPARATOR, pa.large_string())
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, separator)
    return pd.Series(pd.arrays.ArrowStringArray(joined), index=frame.index, copy=False)


def among(values: pd.Series, of: pd.Series | Collection[str]) -> np.ndarray:
    """Where ``values`` (strings) are in ``of``, as booleans, computed by Arrow: pandas' own ``isin`` walks
    Arrow strings one at a time in Python (seconds for a district's enrollments)."""
    if not isinstance(of, pd.Series):
        of = pd.Series(sorted(of), dtype="string")
    if not len(values):
        return np.zeros(0, dtype=bool)
    return member(values, of).to_numpy(dtype=bool)


def without(frame: pd.DataFrame, other: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows of ``frame`` (of the Canvas file ``name``) whose key is not in ``other``."""
    if frame.empty or other.empty:
        return frame
    return frame.loc[~among(row_keys(frame, name), row_keys(other, name))]


def present(frames: Mapping[str, pd.DataFrame], removed: Mapping[str, pd.DataFrame] | None = None) -> Frames:
    """The rows a build says exist: not sent with a removal status, nor recorded as a removal."""
    out: Frames = {}
    for name in files.FILE_ORDER:
        frame = frames[name]
        if "status" in frame.columns and not frame.empty:
            frame = frame.loc[~among(frame["status"], REMOVAL_STATUSES)]
        if removed is not None:
            frame = without(frame, removed[name], name)
        out[name] = frame.reset_index(drop=True)
    return out


def _parse_moment(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def ended_terms(*term_frames: pd.DataFrame, now: dt.datetime) -> set[str]:
    """Term ids whose end_date is before ``now``."""
    ended: set[str] = set()
    for frame in term_frames:
        for term_id, end_date in zip(frame["term_id"], frame["end_date"], strict=True):
            moment = _parse_moment(str(end_date)) if end_date else None
            if moment is not None and moment < now:
                ended.add(str(term_id))
    return ended


def append_rows(frame: pd.DataFrame, extra: pd.DataFrame) -> pd.DataFrame:
    if extra.empty:
        return frame
    if frame.empty:
        return extra.reset_index(drop=True)
    return pd.concat([frame, extra[list(frame.columns)]], ignore_index=True)


@dataclass(frozen=True)
class Amended:
    """The new build's frames after the sync's changes, and the rows it added for each reason.

    ``held`` are the rows of the schools the guard held, sent as Canvas had them in place of tonight's
    (:mod:`clever2sis.sync.holds`); unlike carried rows, they stay what the next night is judged against.
    """

    frames: Frames
    carried: Frames = field(default_factory=empty_frames)
    removed: Frames = field(default_factory=empty_frames)
    completed_enrollments: int = 0
    held: Frames = field(default_factory=empty_frames)

    def sync_rows(self) -> dict[str, Frames]:
        """The rows the sync added, by reason, as :meth:`clever2sis.build_dir.BuildDir.rewrite` takes them."""
        return {CARRIED: self.carried, REMOVED: self.removed, HELD: self.held}

    def counts(self) -> dict[str, Any]:
        return {
            "carried": {n: len(f) for n, f in self.carried.items() if len(f)},
            "removed": {n: len(f) for n, f in self.removed.items() if len(f)},
            "held": {n: len(f) for n, f in self.held.items() if len(f)},
            "completed_enrollments": self.completed_enrollments,
        }


def carry_ended_terms(
    old: Mapping[str, pd.DataFrame], new: Mapping[str, pd.DataFrame], *, now: dt.datetime
) -> Amended:
    """Keep the ended terms' rows ``old`` sent that ``new`` lacks, and conclude every ended-term enrollment.

    ``old`` is what the last applied run sent (present rows only); ``new`` the new build's frames.
    """
    ended = ended_terms(old[files.TERMS], new[files.TERMS], now=now)
    frames = {name: frame.copy() for name, frame in new.items()}
    carried = empty_frames()
    if not ended:
        return Amended(frames=frames)
    courses = old[files.COURSES]
    carried_courses = without(
        courses.loc[among(courses["term_id"], ended)], new[files.COURSES], files.COURSES
    )
    ended_courses = pd.concat(
        [
            carried_courses["course_id"],
            new[files.COURSES].loc[among(new[files.COURSES]["term_id"], ended), "course_id"],
        ],
        ignore_index=True,
    )
    terms = old[files.TERMS]
    carried[files.TERMS] = without(
        terms.loc[among(terms["term_id"], set(carried_courses["term_id"]) | ended)],
        new[files.TERMS],
        files.TERMS,
    )
    accounts = old[files.ACCOUNTS]
    carried[files.ACCOUNTS] = without(
        accounts.loc[among(accounts["account_id"], set(carried_courses["account_id"]))],
        new[files.ACCOUNTS],
        files.ACCOUNTS,
    )
    carried[files.COURSES] = carried_courses
    sections = old[files.SECTIONS]
    carried[files.SECTIONS] = without(
        sections.loc[among(sections["course_id"], ended_courses)],
        new[files.SECTIONS],
        files.SECTIONS,
    )
    enrollments = old[files.ENROLLMENTS]
    carried[files.ENROLLMENTS] = without(
        enrollments.loc[among(enrollments["course_id"], ended_courses)],
        new[files.ENROLLMENTS],
        files.ENROLLMENTS,
    )
    for name in files.FILE_ORDER:
        carried[name] = carried[name].reset_index(drop=True)
        frames[name] = append_rows(frames[name], carried[name])
    enrollments = frames[files.ENROLLMENTS]
    concluding = among(enrollments["course_id"], ended_courses) & (enrollments["status"] == ACTIVE).to_numpy()
    enrollments.loc[concluding, "status"] = COMPLETED
    return Amended(frames=frames, carried=carried, completed_enrollments=int(concluding.sum()))


def carry_terms_and_accounts(old: Mapping[str, pd.DataFrame], amended: Amended) -> Amended:
    """Carry every term and account ``old`` (what Canvas holds) has that ``amended``'s frames lack.

    A diff sends a vanished row as ``deleted``. Canvas refuses to delete a term or an account that still
    holds courses ("Cannot delete a term with active courses", ``app/models/enrollment_term.rb``; "Can't
    delete an account with active courses.", ``app/models/account.rb``), so the night ends with messages,
    and it deletes one that holds none, for what may be a Clever hiccup. Sent again as Canvas has them,
    they stay; the carried rows are recorded with the others (``sync/carried/``).
    """
    frames = dict(amended.frames)
    carried = dict(amended.carried)
    for name in (files.ACCOUNTS, files.TERMS):
        extra = without(old[name], frames[name], name).reset_index(drop=True)
        if len(extra):
            carried[name] = append_rows(carried[name], extra)
            frames[name] = append_rows(frames[name], extra)
    return dataclasses.replace(amended, frames=frames, carried=carried)


def current_terms_only(frames: Mapping[str, pd.DataFrame], ended: set[str]) -> Frames:
    """``frames`` without the terms in ``ended`` and the courses, sections and enrollments of those terms."""
    out = dict(frames)
    terms, courses = frames[files.TERMS], frames[files.COURSES]
    out[files.TERMS] = terms.loc[~among(terms["term_id"], ended)].reset_index(drop=True)
    ended_courses = courses.loc[among(courses["term_id"], ended), "course_id"]
    out[files.COURSES] = courses.loc[~among(courses["term_id"], ended)].reset_index(drop=True)
    for name in (files.SECTIONS, files.ENROLLMENTS):
        frame = frames[name]
        out[name] = frame.loc[~among(frame["course_id"], ended_courses)].reset_index(drop=True)
    return out


def without_rows(frames: Mapping[str, pd.DataFrame], rows: Mapping[str, pd.DataFrame]) -> Frames:
    """``frames`` without the rows whose key is in ``rows`` (file by file)."""
    return {name: without(frame, rows[name], name).reset_index(drop=True) for name, frame in frames.items()}


def removal_rows(
    old: Mapping[str, pd.DataFrame],
    new: Mapping[str, pd.DataFrame],
    *,
    enrollment_status: str,
    user_status: str,
    only: Collection[str] | None = None,
) -> Frames:
    """Rows ``old`` (present rows of the last applied run) sent that ``new`` lacks, with a removal status.

    Courses and sections become ``deleted``, enrollments ``enrollment_status``, users ``user_status``, admins
    ``deleted``; accounts and terms are never removed (a school or term that vanishes is the guard's
    business). ``only``: just these files.

    Admins are removed only so: ``old`` holds only admins.csv rows the product sent, and Canvas's
    ``deleted`` removes only an admin an import made (``lib/sis/admin_importer.rb`` looks for one with a
    ``sis_batch_id``), so an admin added in Canvas is never touched, and no row ever has a blank
    ``account_id`` (the root account). The sync sends them in every mode: batch mode never removes admins,
    and a diff removes none on a night whose admins.csv is left with no rows (a file type absent from an
    import is passed through: ``lib/sis/csv/diff_generator.rb``).
    """
    statuses = {
        files.COURSES: DELETED,
        files.SECTIONS: DELETED,
        files.ENROLLMENTS: enrollment_status,
        files.USERS: user_status,
        files.ADMINS: DELETED,
    }
    out = empty_frames()
    for name, status in statuses.items():
        if only is not None and name not in only:
            continue
        gone = without(old[name], new[name], name).copy()
        if name == files.ADMINS:
            gone = gone.loc[(gone["account_id"] != "").to_numpy(dtype=bool)]
        gone["status"] = status
        out[name] = gone.reset_index(drop=True)
    return out


def _admins_removed(old: Mapping[str, pd.DataFrame], new: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The admins.csv rows ``old`` holds (present) that ``new`` lacks: those removed tonight."""
    return without(old[files.ADMINS], new[files.ADMINS], files.ADMINS)


def carry_admin_leavers(old: Mapping[str, pd.DataFrame], amended: Amended) -> Amended:
    """Keep in users.csv, for tonight, every user who leaves tonight while admin rows of theirs are removed.

    Canvas finds an admins.csv user among the *active* logins (``lib/sis/admin_importer.rb``,
    ``root_account.pseudonyms.active``) and processes admins.csv after users.csv
    (``lib/sis/csv/import_refactored.rb``): a person suspended tonight can no longer lose an admin role
    tonight ("Invalid or unknown user_id '{id}' for admin"; the admin would stay). So the person's users.csv
    row is sent again as Canvas has it (carried), the admin row is removed, and the next night, with no admin
    row left, the person is removed as anyone else.
    """
    users = old[files.USERS]
    removed = _admins_removed(old, amended.frames)
    leaving = users.loc[among(users["user_id"], removed["user_id"])] if len(removed) else users.iloc[:0]
    extra = without(leaving, amended.frames[files.USERS], files.USERS).reset_index(drop=True)
    if not len(extra):
        return amended
    frames = {**amended.frames, files.USERS: append_rows(amended.frames[files.USERS], extra)}
    carried = {**amended.carried, files.USERS: append_rows(amended.carried[files.USERS], extra)}
    return dataclasses.replace(amended, frames=frames, carried=carried)


def carry_admin_removals(sent_before: pd.DataFrame, amended: Amended) -> Amended:
    """On a diffed night: send again, unchanged, the ``deleted`` admins.csv rows of Canvas's diff baseline
    (``sent_before``) whose user_id and account_id tonight's admins.csv lacks.

    Otherwise Canvas's diff would send each of them once more as a vanished row, the night its person is
    suspended (see :func:`carry_admin_leavers`), and warn. Identical rows are dropped by the diff, so
    nothing reaches Canvas; a remaster (no diff) leaves them out.
    """
    tonight = amended.frames[files.ADMINS]
    key = ["user_id", "account_id"]
    if not len(sent_before):
        return amended
    again = sent_before.merge(tonight[key], on=key, how="left", indicator=True)
    extra = sent_before.loc[(again["_merge"] == "left_only").to_numpy()].reset_index(drop=True)
    if not len(extra):
        return amended
    frames = {**amended.frames, files.ADMINS: append_rows(tonight, extra)}
    carried = {**amended.carried, files.ADMINS: append_rows(amended.carried[files.ADMINS], extra)}
    return dataclasses.replace(amended, frames=frames, carried=carried)


def admin_role_changes(old: Mapping[str, pd.DataFrame], new: Mapping[str, pd.DataFrame]) -> int:
    """How many admins ``new`` gives another role in an account than ``old`` (present rows) holds.

    Canvas pairs admins.csv rows by user_id and account_id (``identifying_fields``), the role aside: a
    diff would send the new role and keep the old one, and a row removing the old role in the same file
    would be taken as the same row. Such a night goes as a remaster, which applies both rows.
    """
    key = ["user_id", "account_id"]
    before, after = present(old)[files.ADMINS], present(new)[files.ADMINS]
    if not len(before) or not len(after):
        return 0
    paired = before[[*key, "role"]].merge(after[[*key, "role"]], on=key, suffixes=("_old", "_new"))
    moved = paired.loc[(paired["role_old"] != paired["role_new"]).to_numpy(dtype=bool)]
    return len(moved[key].drop_duplicates())


def change_counts(
    old: Mapping[str, pd.DataFrame], new: Mapping[str, pd.DataFrame]
) -> dict[str, dict[str, int]]:
    """Per file: rows added, removed and changed between two builds (rows paired as Canvas's diffing does)."""
    out = {}
    for name in files.FILE_ORDER:
        diff = diff_file(name, old[name], new[name])
        out[name] = {"added": len(diff.added), "removed": len(diff.removed), "changed": diff.changed_rows}
    return out


def row_counts(frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    return {name: len(frame) for name, frame in frames.items() if len(frame)}
