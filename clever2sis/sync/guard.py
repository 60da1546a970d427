"""The local guard: before anything is uploaded, judge what Clever sent tonight against what Canvas holds.

Clever data goes missing or goes wrong for harmless reasons (one school's SIS export broke, a sharing
setting changed, a template was edited), and Canvas applies whatever an import says. So tonight's build is
compared with the rows Canvas holds (the applied state's present rows). Both sides are taken as the
pipeline gives them: tonight's build *before* the sync carries anything into it, and the present rows
without the rows the sync carried and without the terms that have ended (and their courses, sections and
enrollments): a carried row is not something Clever sent, so it must never make a night look whole.

**Schools are judged one by one** (a school is a Canvas sub-account, :mod:`clever2sis.sync.holds`): its
students and teachers (people enrolled in its courses), sections and enrollments, each against what Canvas
holds of that school. A school is **held** (:class:`SchoolHold`) when

* it vanished from tonight's build, or lost every student or every teacher it had (whatever its size);
* or one of the four lost more than ``[sync.guard] school_max_loss_percent`` *and* more than its floor
  (``school_min_loss``: a 12-student school is not held for losing 2).

A held school's rows are sent as Canvas has them (:func:`clever2sis.sync.holds.apply_holds`) and every
other school is applied. It stays held, night after night, while its data still differs that much from
what Canvas holds of it (the rows kept for it are what Canvas holds), until the data recovers or the school
is released (``--allow-large-change SCHOOL_ID``).

**The whole night stops** (:class:`Shrink`, exit 51) on what no school-by-school hold can contain; the
file checks leave out the held and released schools' rows on both sides:

* a file that lost more than its limit (a share of its rows, ``[sync] max_shrink_percent``);
* a role (students, teachers) whose enrollments vanished across the district, or a Clever role (students,
  teachers, staff, district admins, contacts) of which users.csv kept nobody, counted from the users'
  roles in each night's snapshot, so that roles without enrollments count too;
* more held schools than ``max_held_schools_percent`` of the schools (one held school never stops a
  night, unless it is the only one);
* a file more than ``max_changed_percent`` of whose rows changed (Clever holds a district sync above 75%
  of updates), or more than ``max_identity_changes_percent`` of whose rows changed an id or a login (a
  template change or an SIS patch that renumbers everyone would give everyone a second account or course):
  users paired by Clever id (their integration_id, else their user_id) for user_id and login_id, sections
  by Clever id for section_id and for their course_id (a course renumbered), accounts for account_id;
  both only above ``min_changes`` changed rows;
* more people carried over to a new Clever id tonight than ``max_identity_carryovers``.

``--allow-large-change`` alone lets everything through (nothing is held); ``--allow-large-change
SCHOOL_ID`` (a Clever school id or a Canvas account id) releases that school only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clever2sis.config import GuardSettings
from clever2sis.sis import files
from clever2sis.sis.arrow import arrow_strings
from clever2sis.sync.changes import KEY_SEPARATOR, among, row_keys
from clever2sis.sync.holds import without_schools

STUDENTS = "students"
TEACHERS = "teachers"
SECTIONS = "sections"
ENROLLMENTS = "enrollments"
MEASURES = (STUDENTS, TEACHERS, SECTIONS, ENROLLMENTS)
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
HELD = "held"
STOPPED = "stopped"
ALLOWED = "allowed"
RELEASE_FLAG = "--allow-large-change"
EXAMPLES_SHOWN = 3
# Files whose changed rows the mass-update check counts (change_sis_id.csv renames; it changes nothing).
CHANGE_FILES = tuple(name for name in files.FILE_ORDER if name != files.CHANGE_SIS_ID)


@dataclass(frozen=True)
class Shrink:
    """One finding that stops the whole night.

    ``kind``: ``file`` (rows lost), ``role``, ``schools`` (too many held), ``changes`` (rows changed),
    ``identity`` (ids or logins changed; ``examples`` old → new) or ``carryovers``. ``lost`` counts what
    was lost or changed, of ``before``; ``limit_percent`` or ``limit`` is the limit passed.
    """

    kind: str
    what: str
    before: int
    after: int
    lost: int
    limit_percent: float | None = None
    limit: int | None = None
    examples: tuple[str, ...] = ()

    @property
    def lost_percent(self) -> float:
        return round(100.0 * self.lost / self.before, 1) if self.before else 0.0

    def message(self) -> str:
        limit = f"limit {self.limit_percent:g}%" if self.limit_percent is not None else ""
        if self.kind == "file":
            return f"{self.what} lost {self.lost} of {self.before} rows ({self.lost_percent}%, {limit})"
        if self.kind == "changes":
            return f"{self.what}: {self.lost} of {self.before} rows changed ({self.lost_percent}%, {limit})"
        if self.kind == "identity":
            examples = f"; e.g. {', '.join(self.examples)}" if self.examples else ""
            return (
                f"{self.what} changed for {self.lost} of {self.before} rows ({self.lost_percent}%, {limit})"
                f"{examples}"
            )
        if self.kind == "schools":
            return (
                f"{self.lost} of {self.before} schools would be held ({self.lost_percent}%, {limit}): too "
                "many for one night"
            )
        if self.kind == "carryovers":
            return f"{self.lost} {self.what} tonight (limit {self.limit})"
        return f"{self.what} vanished ({self.before} before, {self.after} now)"

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "examples": list(self.examples),
            "lost_percent": self.lost_percent,
            "message": self.message(),
        }


@dataclass(frozen=True)
class Loss:
    """What a school would lose of one measure (students, teachers, sections, enrollments)."""

    measure: str
    before: int
    after: int
    lost: int

    @property
    def lost_percent(self) -> float:
        return round(100.0 * self.lost / self.before, 1) if self.before else 0.0

    def text(self) -> str:
        return f"{self.lost} of {self.before} {self.measure}"


@dataclass(frozen=True)
class SchoolHold:
    """A school the guard holds (or would hold, had it not been released).

    ``school_id`` is its Clever id (accounts.csv integration_id, else its account_id); ``reason`` says
    why in words; ``losses`` what it would lose tonight (the measures with a loss); ``since`` and
    ``since_run_id`` the first night of the hold that goes on tonight.
    """

    account_id: str
    school_id: str
    name: str
    reason: str
    losses: tuple[Loss, ...]
    since: str = ""
    since_run_id: str = ""

    def named_by(self, value: str) -> bool:
        return value in (self.account_id, self.school_id)

    @property
    def release(self) -> str:
        return f"{RELEASE_FLAG} {self.account_id}"

    def message(self) -> str:
        since = f" since {self.since}" if self.since else ""
        return f"school {self.name} ({self.account_id}) held{since}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "school_id": self.school_id,
            "name": self.name,
            "reason": self.reason,
            "losses": [asdict(loss) for loss in self.losses],
            "since": self.since,
            "since_run_id": self.since_run_id,
            "release": self.release,
            "message": self.message(),
        }


@dataclass(frozen=True)
class Verdict:
    """What the guard found, and whether the run may go on.

    ``shrinks`` stop the whole night; ``held`` are the schools held tonight; ``released`` the schools
    that would have been held and were let through; ``unknown_releases`` the ``--allow-large-change``
    values that name no school Canvas holds or Clever sent.
    """

    verdict: str
    shrinks: tuple[Shrink, ...] = ()
    held: tuple[SchoolHold, ...] = ()
    released: tuple[SchoolHold, ...] = ()
    unknown_releases: tuple[str, ...] = ()

    @property
    def stops(self) -> bool:
        return self.verdict == STOPPED

    def message(self) -> str:
        return "; ".join(
            [shrink.message() for shrink in self.shrinks] + [school.message() for school in self.held]
        )

    def held_message(self) -> str:
        """How tonight's holds are said when the night is applied (the run's message)."""
        schools = "; ".join(school.message() for school in self.held)
        releases = " ".join(school.release for school in self.held)
        return (
            f"{len(self.held)} school(s) held, every other school updated: {schools}. Their rows stay as "
            f"Canvas has them until their data recovers; after a review, release with {releases}"
        )

    def released_message(self) -> str:
        return "; ".join(f"school {s.name} ({s.account_id}): {s.reason}" for s in self.released)

    def held_summary(self) -> list[dict[str, Any]]:
        """Each held school in a few facts (the JSON line and history): its ids and name, the first night
        of the hold, what it would have lost tonight, and how to release it."""
        return [
            {
                "account_id": school.account_id,
                "school_id": school.school_id,
                "name": school.name,
                "since": school.since,
                "lost": {loss.measure: loss.lost for loss in school.losses},
                "release": school.release,
            }
            for school in self.held
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "shrinks": [shrink.as_dict() for shrink in self.shrinks],
            "held": [school.as_dict() for school in self.held],
            "released": [school.as_dict() for school in self.released],
            "unknown_releases": list(self.unknown_releases),
        }


@dataclass(frozen=True)
class GuardInput:
    """What the guard is asked besides the two sides: the limits, the releases, and the night's facts.

    ``release`` holds the ``--allow-large-change`` school ids (``allow_all``: the plain switch);
    ``roles_before`` and ``roles_after`` how many users of each side's users.csv hold each Clever role
    (:func:`role_counts`; the role check of users is left out without them); ``held_before`` the holds
    that went on before tonight (account id → the first night and run, :func:`holds_of`);
    ``carried_identities`` how many people tonight carries over to a new Clever id.
    """

    settings: GuardSettings = field(default_factory=GuardSettings)
    shrink_limit_percent: Callable[[str], float] = lambda _name: 10.0
    allow_all: bool = False
    release: frozenset[str] = frozenset()
    roles_before: Mapping[str, int] | None = None
    roles_after: Mapping[str, int] | None = None
    held_before: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    carried_identities: int = 0
    night: str = ""
    run_id: str = ""


def judge(
    old: Mapping[str, pd.DataFrame] | None, new: Mapping[str, pd.DataFrame], asked: GuardInput
) -> Verdict:
    """Compare ``new`` (tonight's build) with ``old`` (what Canvas holds; None: nothing yet)."""
    carryovers = check_carryovers(asked.carried_identities, asked.settings.max_identity_carryovers)
    if old is None:
        if carryovers is None:
            return Verdict(FIRST_RUN)
        return Verdict(ALLOWED if asked.allow_all else STOPPED, (carryovers,))
    schools = school_checks(old, new, asked.settings)
    tripped = [school for school in schools if school.reason]
    released = [s for s in tripped if asked.allow_all or any(s.named_by(v) for v in asked.release)]
    held = [_since(s, asked) for s in tripped if s not in released]
    excluded = {school.account_id for school in tripped}
    old_part, new_part = without_schools(old, excluded), without_schools(new, excluded)
    shrinks = [
        *file_shrinks(old_part, new_part, asked.shrink_limit_percent),
        *role_shrinks(old, new, asked.roles_before, asked.roles_after),
        *change_shrinks(old_part, new_part, asked.settings),
        *identity_shrinks(old_part, new_part, asked.settings),
    ]
    too_many = too_many_held(len(held), len(schools), asked.settings.max_held_schools_percent)
    if too_many is not None:
        shrinks += _explained(old, new, {school.account_id for school in released}, asked.settings)
    shrinks += [s for s in (too_many, carryovers) if s is not None]
    known = _account_names(old, new)
    unknown = tuple(sorted(v for v in asked.release if not any(v in ids for ids in known)))
    if shrinks and not asked.allow_all:
        verdict = STOPPED
    elif held:
        verdict = HELD
    elif shrinks or released:
        verdict = ALLOWED
    else:
        verdict = PASSED
    return Verdict(verdict, tuple(shrinks), tuple(held), tuple(released), unknown)


def _explained(
    old: Mapping[str, pd.DataFrame],
    new: Mapping[str, pd.DataFrame],
    released: set[str],
    settings: GuardSettings,
) -> list[Shrink]:
    """When too many schools would be held, the district-wide changes that may be why (every user_id
    renumbered makes every school lose its people): the change checks over every school not released."""
    old_part, new_part = without_schools(old, released), without_schools(new, released)
    return [*identity_shrinks(old_part, new_part, settings), *change_shrinks(old_part, new_part, settings)]


def _since(school: SchoolHold, asked: GuardInput) -> SchoolHold:
    since, run_id = asked.held_before.get(school.account_id, (asked.night, asked.run_id))
    return dataclasses.replace(school, since=since, since_run_id=run_id)


def holds_of(guard: Any) -> dict[str, tuple[str, str]]:
    """The holds a run's guard verdict (build.json ``sync.guard``) recorded: account id → (the first night
    of the hold, its run id). Anything not of that shape is left out (a missing or older record: none)."""
    held = guard.get("held") if isinstance(guard, Mapping) else None
    found = {}
    for school in held if isinstance(held, list) else []:
        if isinstance(school, Mapping) and all(
            isinstance(school.get(key), str) for key in ("account_id", "since", "since_run_id")
        ):
            found[school["account_id"]] = (school["since"], school["since_run_id"])
    return found


# --- schools ---------------------------------------------------------------------------------------------


def _strings(values: pd.Series) -> pa.Array:
    return arrow_strings(values).combine_chunks()


def _accounts_of_courses(frames: Mapping[str, pd.DataFrame], course_ids: pd.Series) -> pa.Array:
    """The account_id of each course id (courses.csv), "" for a course the file does not list."""
    courses = frames[files.COURSES]
    positions = pc.index_in(_strings(course_ids), value_set=_strings(courses["course_id"]))
    return pc.fill_null(_strings(courses["account_id"]).take(positions), "")


def _pairs(accounts: pa.Array, items: pa.Array) -> pa.Array:
    """The distinct (account, item) pairs as joined strings."""
    separator = pa.scalar(KEY_SEPARATOR, pa.large_string())
    return pc.unique(pc.binary_join_element_wise(accounts, items, separator))


def _school_items(frames: Mapping[str, pd.DataFrame]) -> dict[str, pa.Array]:
    """Each measure's distinct (school, item) pairs: students and teachers are people enrolled in the
    school's courses (any role but student is a teacher), sections and enrollments its rows."""
    enrollments = frames[files.ENROLLMENTS]
    accounts = _accounts_of_courses(frames, enrollments["course_id"])
    student = pc.fill_null(pc.equal(_strings(enrollments["role"]), STUDENT_ROLE), False)
    users = _strings(enrollments["user_id"])
    sections = frames[files.SECTIONS]
    return {
        STUDENTS: _pairs(accounts.filter(student), users.filter(student)),
        TEACHERS: _pairs(accounts.filter(pc.invert(student)), users.filter(pc.invert(student))),
        SECTIONS: _pairs(
            _accounts_of_courses(frames, sections["course_id"]), _strings(sections["section_id"])
        ),
        ENROLLMENTS: _pairs(accounts, _strings(row_keys(enrollments, files.ENROLLMENTS))),
    }


def _per_account(pairs: pa.Array) -> dict[str, int]:
    """How many pairs each account has."""
    if not len(pairs):
        return {}
    accounts = pc.list_element(pc.split_pattern(pairs, KEY_SEPARATOR, max_splits=1), 0)
    counted = pc.value_counts(accounts)
    return dict(
        zip(
            counted.field("values").to_pylist(),
            counted.field("counts").to_pylist(),
            strict=True,
        )
    )


def _account_names(*sides: Mapping[str, pd.DataFrame]) -> list[set[str]]:
    """Each account's ids (account_id and Clever school id) as a set, over every side."""
    found = []
    for frames in sides:
        for account_id, school_id, _name in _accounts(frames):
            found.append({account_id, school_id})
    return found


def _accounts(frames: Mapping[str, pd.DataFrame]) -> list[tuple[str, str, str]]:
    """(account_id, Clever school id, name) of every row of accounts.csv."""
    accounts = frames[files.ACCOUNTS]
    ids = accounts["account_id"].astype("str")
    school = accounts["integration_id"].astype("str") if "integration_id" in accounts.columns else ids
    school = school.where(school != "", ids)
    return list(zip(ids, school, accounts["name"].astype("str"), strict=True))


def school_checks(
    old: Mapping[str, pd.DataFrame], new: Mapping[str, pd.DataFrame], settings: GuardSettings
) -> list[SchoolHold]:
    """Every school Canvas holds something of (current terms), with its losses; ``reason`` is set (not
    empty) for a school the guard would hold, sorted by account id."""
    before_items, after_items = _school_items(old), _school_items(new)
    counts = {}
    for measure in MEASURES:
        before, after = before_items[measure], after_items[measure]
        lost = before.filter(pc.invert(pc.is_in(before, value_set=after)))
        counts[measure] = (_per_account(before), _per_account(after), _per_account(lost))
    described = {account_id: (school, name) for account_id, school, name in _accounts(old)}
    tonight = {account_id for account_id, _school, _name in _accounts(new)}
    found = []
    for account_id in sorted(set().union(*(counts[m][0] for m in MEASURES)) - {""}):
        school_id, name = described.get(account_id, (account_id, account_id))
        losses = tuple(
            Loss(
                m,
                counts[m][0].get(account_id, 0),
                counts[m][1].get(account_id, 0),
                counts[m][2].get(account_id, 0),
            )
            for m in MEASURES
            if counts[m][0].get(account_id, 0)
        )
        reason = _reason(losses, account_id not in tonight, settings)
        shown = tuple(loss for loss in losses if loss.lost)
        found.append(SchoolHold(account_id, school_id, name, reason, shown))
    return found


def _reason(losses: Iterable[Loss], vanished: bool, settings: GuardSettings) -> str:
    """Why a school with ``losses`` is held, in words ("" when it is not)."""
    lost = [loss for loss in losses if loss.lost]
    what = ", ".join(loss.text() for loss in lost)
    if vanished:
        return f"it vanished from tonight's data (would lose {what})"
    emptied = [loss.measure for loss in lost if loss.measure in (STUDENTS, TEACHERS) and not loss.after]
    if emptied:
        return f"every one of its {' and '.join(emptied)} vanished (would lose {what})"
    limit = settings.school_max_loss_percent
    floors: dict[str, int] = {str(measure): floor for measure, floor in settings.school_min_loss.items()}
    over = [
        loss
        for loss in lost
        if loss.lost > floors.get(loss.measure, 0) and 100.0 * loss.lost / loss.before > limit
    ]
    if not over:
        return ""
    return (
        f"would lose {', '.join(f'{loss.text()} ({loss.lost_percent}%)' for loss in over)}: more than "
        f"{limit:g}% and more than "
        f"{', '.join(f'{floors.get(loss.measure, 0)} {loss.measure}' for loss in over)}"
    )


def too_many_held(held: int, schools: int, limit_percent: float) -> Shrink | None:
    """The district stop when ``held`` of ``schools`` is too many: more than ``limit_percent`` of them, or
    every school there is (a single held school is never too many unless it is the only one)."""
    if not held:
        return None
    if held == schools or (held > 1 and 100.0 * held / schools > limit_percent):
        return Shrink("schools", "held schools", schools, schools - held, held, limit_percent)
    return None


# --- district checks -------------------------------------------------------------------------------------


def _keys(frame: pd.DataFrame, name: str) -> pd.Series:
    """The distinct row keys of ``frame`` (Arrow's unique: pandas' factorizes Arrow strings slowly)."""
    return pd.Series(pd.arrays.ArrowStringArray(pc.unique(arrow_strings(row_keys(frame, name)))))


def file_shrinks(
    old: Mapping[str, pd.DataFrame], new: Mapping[str, pd.DataFrame], limit_percent: Callable[[str], float]
) -> list[Shrink]:
    """The files that lost more than their limit of the rows Canvas holds."""
    found = []
    for name in files.FILE_ORDER:
        old_keys = _keys(old[name], name)
        if not len(old_keys):
            continue
        lost = int(np.count_nonzero(~among(old_keys, row_keys(new[name], name))))
        limit = limit_percent(name)
        if 100.0 * lost / len(old_keys) > limit:
            found.append(Shrink("file", name, len(old_keys), len(new[name]), lost, limit))
    return found


def _groups(frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """How many distinct people hold student and other (teacher) enrollments."""
    enrollments = frames[files.ENROLLMENTS]
    student = (enrollments["role"] == STUDENT_ROLE).to_numpy()
    return {
        STUDENTS: int(enrollments.loc[student, "user_id"].nunique()),
        TEACHERS: int(enrollments.loc[~student, "user_id"].nunique()),
    }


def role_shrinks(
    old: Mapping[str, pd.DataFrame],
    new: Mapping[str, pd.DataFrame],
    roles_before: Mapping[str, int] | None,
    roles_after: Mapping[str, int] | None,
) -> list[Shrink]:
    """Every student or every teacher gone from the enrollments; a Clever role users.csv kept nobody of."""
    found = []
    before, after = _groups(old), _groups(new)
    for group in (STUDENTS, TEACHERS):
        if before[group] and not after[group]:
            found.append(Shrink("role", f"all {group}", before[group], 0, before[group]))
    for role, label in ROLE_NAMES.items():
        held = (roles_before or {}).get(role, 0)
        if held and roles_after is not None and not roles_after.get(role, 0):
            found.append(Shrink("role", f"all {label} of users.csv", held, 0, held))
    return found


def _rows_text(frame: pd.DataFrame, columns: list[str]) -> pa.ChunkedArray:
    """Each row's values (``columns``, a missing column blank) joined, to compare whole rows."""
    separator = pa.scalar(KEY_SEPARATOR, pa.large_string())
    parts = [
        arrow_strings(frame[column])
        if column in frame.columns
        else pa.chunked_array([pa.nulls(len(frame), pa.large_string())])
        for column in columns
    ]
    if len(parts) == 1:
        return pc.fill_null(parts[0], "")
    return pc.binary_join_element_wise(*parts, separator, null_handling="replace", null_replacement="")


def changed_rows(old: pd.DataFrame, new: pd.DataFrame, name: str) -> int:
    """Rows of ``old`` whose key ``new`` has with other values (rows paired as Canvas's diffing does)."""
    if old.empty or new.empty:
        return 0
    columns = list(dict.fromkeys([*old.columns, *new.columns]))
    paired = among(row_keys(old, name), row_keys(new, name))
    same = pc.is_in(_rows_text(old, columns), value_set=_rows_text(new, columns))
    return int(np.count_nonzero(paired & ~np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)))


def change_shrinks(
    old: Mapping[str, pd.DataFrame], new: Mapping[str, pd.DataFrame], settings: GuardSettings
) -> list[Shrink]:
    """The files more than ``max_changed_percent`` of whose rows changed (above ``min_changes``)."""
    found = []
    for name in CHANGE_FILES:
        changed = changed_rows(old[name], new[name], name)
        limit = settings.max_changed_percent
        if changed > settings.min_changes and 100.0 * changed / len(old[name]) > limit:
            found.append(Shrink("changes", name, len(old[name]), len(new[name]), changed, limit))
    return found


def _clever_ids(frame: pd.DataFrame, id_column: str) -> pd.Series:
    """Each row's Clever id: its integration_id when the file has one, else its SIS id."""
    ids = frame[id_column].astype("str")
    if "integration_id" not in frame.columns:
        return ids
    given = frame["integration_id"].astype("str")
    return given.where(given != "", ids)


def _paired(
    frame_old: pd.DataFrame, frame_new: pd.DataFrame, id_column: str, fields: list[str]
) -> pd.DataFrame:
    """Rows of both sides paired by Clever id: ``<field>_old`` and ``<field>_new`` for each field."""

    def side(frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame({"clever_id": _clever_ids(frame, id_column).to_numpy()})
        for name in fields:
            out[name] = frame[name].astype("str").to_numpy()
        return out.drop_duplicates("clever_id")

    return side(frame_old).merge(side(frame_new), on="clever_id", suffixes=("_old", "_new"))


def _identity_shrink(
    what: str, old: pd.Series, new: pd.Series, changed: np.ndarray, rows: int, settings: GuardSettings
) -> Shrink | None:
    count = int(np.count_nonzero(changed))
    limit = settings.max_identity_changes_percent
    if count <= settings.min_changes or 100.0 * count / rows <= limit:
        return None
    pairs = sorted(zip(old[changed], new[changed], strict=True))
    examples = tuple(f"{before} -> {after}" for before, after in pairs[:EXAMPLES_SHOWN])
    return Shrink("identity", what, rows, rows, count, limit, examples=examples)


def identity_shrinks(
    old: Mapping[str, pd.DataFrame], new: Mapping[str, pd.DataFrame], settings: GuardSettings
) -> list[Shrink]:
    """Ids and logins that changed for more than ``max_identity_changes_percent`` of a file's rows."""
    found: list[Shrink | None] = []
    users_old, users_new = old[files.USERS], new[files.USERS]
    if len(users_old) and len(users_new):
        users = _paired(users_old, users_new, "user_id", ["user_id", "login_id"])
        for column in ("user_id", "login_id"):
            before, after = users[f"{column}_old"], users[f"{column}_new"]
            differs = (before.str.lower() != after.str.lower()).to_numpy()
            found.append(
                _identity_shrink(f"users.csv {column}", before, after, differs, len(users_old), settings)
            )
    sections_old, sections_new = old[files.SECTIONS], new[files.SECTIONS]
    if len(sections_old) and len(sections_new):
        sections = _paired(sections_old, sections_new, "section_id", ["section_id", "course_id"])
        before, after = sections["section_id_old"], sections["section_id_new"]
        found.append(
            _identity_shrink(
                "sections.csv section_id",
                before,
                after,
                (before != after).to_numpy(),
                len(sections_old),
                settings,
            )
        )
        moved = sections.loc[sections["course_id_old"] != sections["course_id_new"]]
        courses = moved.drop_duplicates("course_id_old")
        found.append(
            _identity_shrink(
                "courses.csv course_id",
                courses["course_id_old"],
                courses["course_id_new"],
                np.ones(len(courses), dtype=bool),
                len(old[files.COURSES]) or len(courses),
                settings,
            )
        )
    accounts_old, accounts_new = old[files.ACCOUNTS], new[files.ACCOUNTS]
    if len(accounts_old) and len(accounts_new):
        accounts = _paired(accounts_old, accounts_new, "account_id", ["account_id"])
        before, after = accounts["account_id_old"], accounts["account_id_new"]
        found.append(
            _identity_shrink(
                "accounts.csv account_id",
                before,
                after,
                (before != after).to_numpy(),
                len(accounts_old),
                settings,
            )
        )
    return [shrink for shrink in found if shrink is not None]


def check_carryovers(count: int, limit: int) -> Shrink | None:
    """The district stop when more than ``limit`` people are carried over to a new Clever id in a night
    (a few are normal; hundreds mean something upstream broke)."""
    if count <= limit:
        return None
    return Shrink("carryovers", "people carried over to a new Clever id", 0, 0, count, limit=limit)


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


# --- what a build's record says --------------------------------------------------------------------------


def guard_facts(sync: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What the guard decided for a sync's build (build.json ``sync.guard``), for a review to show: the
    verdict, the held and released schools (name, ids, what each would have lost, since when, how to
    release it), the findings that stopped or were let through, and the sync's profile (whose next run
    a release goes to). None: not a sync's build."""
    guard = sync.get("guard") if isinstance(sync, Mapping) else None
    if not isinstance(guard, Mapping):
        return None

    def schools(key: str) -> list[dict[str, Any]]:
        found = guard.get(key)
        return (
            [dict(school) for school in found if isinstance(school, Mapping)]
            if isinstance(found, list)
            else []
        )

    shrinks = guard.get("shrinks")
    profile = sync.get("profile") if isinstance(sync, Mapping) else None
    return {
        "verdict": guard.get("verdict"),
        "profile": profile if isinstance(profile, str) else None,
        "held": schools("held"),
        "released": schools("released"),
        "findings": [
            str(shrink.get("message"))
            for shrink in (shrinks if isinstance(shrinks, list) else [])
            if isinstance(shrink, Mapping) and shrink.get("message")
        ],
    }


def held_accounts(verdict: Verdict) -> Collection[str]:
    """The account ids of the schools held tonight."""
    return [school.account_id for school in verdict.held]
