"""The local guard: stop a run before upload when what Clever sent tonight lost too much of what Canvas holds.

Clever data goes missing for harmless reasons (a district sync half done, a sharing setting changed), and
Canvas removes whatever an import says is gone. So, before anything is uploaded, tonight's build is
compared with the rows Canvas holds (the applied state's present rows). Both sides are taken as the
pipeline gives them: tonight's build *before* the sync carries anything into it, and the present rows
without the rows the sync carried and without the terms that have ended (and their courses, sections
and enrollments): a carried row is not something Clever sent, so it must never make a night look whole.
The guard stops the run on

* a file that lost more than its limit (a share of its rows, ``[sync] max_shrink_percent``);
* a school (Canvas account) that vanished;
* a role (students, teachers) whose enrollments vanished entirely, across the district or within a school
  that is still there;
* a Clever role (students, teachers, staff, district admins, contacts) of which users.csv kept nobody,
  counted from the users' roles each night's build recorded (identities.csv; a state kept before it
  existed is counted from its run's snapshot), so that roles without enrollments count too.

Each is a :class:`Shrink`; any shrink stops the run unless it was allowed (``--allow-large-change``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from clever2sis.sis import files
from clever2sis.sis.arrow import arrow_strings
from clever2sis.sync.changes import among, row_keys

STUDENTS = "students"
TEACHERS = "teachers"
STUDENT_ROLE = "student"
# A Clever role's name in the guard's messages ("all district admins of users.csv vanished").
ROLE_NAMES = {
    "student": STUDENTS,
    "teacher": TEACHERS,
    "staff": "staff",
    "district_admin": "district admins",
    "contact": "contacts",
}
FIRST_RUN = "first_run"
PASSED = "passed"
STOPPED = "stopped"
ALLOWED = "allowed"


@dataclass(frozen=True)
class Shrink:
    """One thing that shrank: ``kind`` is ``file``, ``school`` or ``role``."""

    kind: str
    what: str
    before: int
    after: int
    lost: int
    limit_percent: float | None = None

    @property
    def lost_percent(self) -> float:
        return round(100.0 * self.lost / self.before, 1) if self.before else 0.0

    def message(self) -> str:
        if self.kind == "file":
            return (
                f"{self.what} lost {self.lost} of {self.before} rows ({self.lost_percent}%, limit "
                f"{self.limit_percent:g}%)"
            )
        return f"{self.what} vanished ({self.before} before, {self.after} now)"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "lost_percent": self.lost_percent, "message": self.message()}


@dataclass(frozen=True)
class Verdict:
    """What the guard found, and whether the run may go on."""

    verdict: str
    shrinks: tuple[Shrink, ...] = ()

    @property
    def stops(self) -> bool:
        return self.verdict == STOPPED

    def message(self) -> str:
        return "; ".join(shrink.message() for shrink in self.shrinks)

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "shrinks": [shrink.as_dict() for shrink in self.shrinks]}


def _keys(frame: pd.DataFrame, name: str) -> pd.Series:
    """The distinct row keys of ``frame`` (Arrow's unique: pandas' factorizes Arrow strings slowly)."""
    return pd.Series(pd.arrays.ArrowStringArray(pc.unique(arrow_strings(row_keys(frame, name)))))


def _people(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """(account_id, role group, user_id) of every enrollment (a person once per enrollment), roles grouped
    as students and teachers."""
    enrollments = frames[files.ENROLLMENTS][["course_id", "user_id", "role"]]
    placed = enrollments.merge(frames[files.COURSES][["course_id", "account_id"]], on="course_id", how="left")
    placed["group"] = np.where(placed["role"].to_numpy() == STUDENT_ROLE, STUDENTS, TEACHERS)
    placed["account_id"] = placed["account_id"].fillna("")
    return placed[["account_id", "group", "user_id"]]


def check_shrink(
    old: Mapping[str, pd.DataFrame] | None,
    new: Mapping[str, pd.DataFrame],
    *,
    limit_percent: Callable[[str], float],
    allow: bool = False,
    roles_before: Mapping[str, int] | None = None,
    roles_after: Mapping[str, int] | None = None,
) -> Verdict:
    """Compare ``new`` (tonight's build) with ``old`` (what Canvas holds; None: nothing yet).

    ``roles_before`` and ``roles_after``: how many users of ``old``'s and ``new``'s users.csv hold each
    Clever role (:func:`role_counts`); the role check of users is left out without them.
    """
    if old is None:
        return Verdict(FIRST_RUN)
    shrinks: list[Shrink] = []
    for name in files.FILE_ORDER:
        old_keys = _keys(old[name], name)
        if not len(old_keys):
            continue
        lost = int(np.count_nonzero(~among(old_keys, row_keys(new[name], name))))
        limit = limit_percent(name)
        if 100.0 * lost / len(old_keys) > limit:
            shrinks.append(Shrink("file", name, len(old_keys), len(new[name]), lost, limit))
    old_accounts = dict(zip(old[files.ACCOUNTS]["account_id"], old[files.ACCOUNTS]["name"], strict=True))
    new_accounts = set(new[files.ACCOUNTS]["account_id"])
    old_people, new_people = _people(old), _people(new)
    for account_id, name in sorted(old_accounts.items()):
        if account_id not in new_accounts:
            courses = int((old[files.COURSES]["account_id"] == account_id).sum())
            shrinks.append(Shrink("school", f"school {name} ({account_id})", courses, 0, courses))
    # People per (role group, school), counted once per group and school rather than school by school.
    before_by_school = old_people.groupby(["group", "account_id"], sort=True)["user_id"].nunique()
    after_by_school = set(new_people.groupby(["group", "account_id"]).size().index)
    before_total = old_people.groupby("group")["user_id"].nunique()
    after_groups = set(new_people["group"].unique())
    for group in (STUDENTS, TEACHERS):
        if group not in before_total.index:
            continue
        if group not in after_groups:
            n = int(before_total[group])
            shrinks.append(Shrink("role", f"all {group}", n, 0, n))
            continue
        schools = before_by_school.loc[[group]]
        for (_, account_id), people in zip(schools.index, schools.to_numpy(), strict=True):
            if account_id in new_accounts and (group, account_id) not in after_by_school:
                label = old_accounts.get(account_id, account_id)
                count = int(people)
                shrinks.append(
                    Shrink("role", f"all {group} of school {label} ({account_id})", count, 0, count)
                )
    for role, label in ROLE_NAMES.items():
        held = (roles_before or {}).get(role, 0)
        if held and roles_after is not None and not roles_after.get(role, 0):
            shrinks.append(Shrink("role", f"all {label} of users.csv", held, 0, held))
    if not shrinks:
        return Verdict(PASSED)
    return Verdict(ALLOWED if allow else STOPPED, tuple(shrinks))


def role_counts(users: pd.DataFrame, roles: pd.DataFrame) -> dict[str, int]:
    """How many rows of ``users`` (users.csv) hold each Clever role, by ``roles`` (a snapshot's users: id and
    one ``is_<role>`` flag per role, :func:`clever2sis.clever.frames.user_roles`).

    A users.csv row names its Clever user by integration_id when the file has one (a user_id template other
    than the Clever id), else by user_id.
    """
    clever_id = users["user_id"]
    if "integration_id" in users.columns:
        clever_id = users["integration_id"].where(users["integration_id"] != "", clever_id)
    held = roles.loc[among(roles["id"], clever_id)]
    return {role: int(held[f"is_{role}"].sum()) for role in ROLE_NAMES if f"is_{role}" in held.columns}


def role_counts_of_identities(users: pd.DataFrame, identities: pd.DataFrame) -> dict[str, int]:
    """How many rows of ``users`` (users.csv) hold each Clever role, by ``identities`` (identities.csv's
    rows: ``user_id`` and the ``;``-joined ``roles``)."""
    held = identities.loc[among(identities["user_id"], users["user_id"]), "roles"].astype("str")
    padded = ";" + held + ";"
    return {role: int(padded.str.contains(f";{role};", regex=False).sum()) for role in ROLE_NAMES}
