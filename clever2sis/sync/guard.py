"""The local guard: stop a run before upload when the new build lost too much against the last applied run.

Clever data goes missing for harmless reasons (a district sync half done, a sharing setting changed), and
Canvas removes whatever an import says is gone. So, before anything is uploaded, the new build is compared
with what the last applied run sent (its present rows):

* a file that lost more than its limit (a share of its rows, ``[sync] max_shrink_percent``);
* a school (Canvas account) that vanished;
* a role (students, teachers) that vanished entirely, across the district or within a school that is
  still there.

Each is a :class:`Shrink`; any shrink stops the run unless it was allowed (``--allow-large-change``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from clever2sis.sis import files
from clever2sis.sync.changes import row_keys

STUDENTS = "students"
TEACHERS = "teachers"
STUDENT_ROLE = "student"
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


def _keys(frame: pd.DataFrame, name: str) -> set[str]:
    return set(row_keys(frame, name))


def _people(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """(account_id, role group, user_id) of every enrollment, roles grouped as students and teachers."""
    enrollments = frames[files.ENROLLMENTS][["course_id", "user_id", "role"]]
    placed = enrollments.merge(frames[files.COURSES][["course_id", "account_id"]], on="course_id", how="left")
    placed["group"] = placed["role"].map(lambda role: STUDENTS if role == STUDENT_ROLE else TEACHERS)
    placed["account_id"] = placed["account_id"].fillna("")
    return placed[["account_id", "group", "user_id"]].drop_duplicates()


def check_shrink(
    old: Mapping[str, pd.DataFrame] | None,
    new: Mapping[str, pd.DataFrame],
    *,
    limit_percent: Callable[[str], float],
    allow: bool = False,
) -> Verdict:
    """Compare ``new`` with ``old`` (present rows of the last applied run; None: there is none)."""
    if old is None:
        return Verdict(FIRST_RUN)
    shrinks: list[Shrink] = []
    for name in files.FILE_ORDER:
        old_keys = _keys(old[name], name)
        if not old_keys:
            continue
        lost = len(old_keys - _keys(new[name], name))
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
    for group in (STUDENTS, TEACHERS):
        before = old_people.loc[old_people["group"] == group]
        after = new_people.loc[new_people["group"] == group]
        if before["user_id"].nunique() and not after["user_id"].nunique():
            n = int(before["user_id"].nunique())
            shrinks.append(Shrink("role", f"all {group}", n, 0, n))
            continue
        for account_id in sorted(set(before["account_id"]) & new_accounts):
            n = int(before.loc[before["account_id"] == account_id, "user_id"].nunique())
            if n and not (after["account_id"] == account_id).any():
                label = old_accounts.get(account_id, account_id)
                shrinks.append(Shrink("role", f"all {group} of school {label} ({account_id})", n, 0, n))
    if not shrinks:
        return Verdict(PASSED)
    return Verdict(ALLOWED if allow else STOPPED, tuple(shrinks))
