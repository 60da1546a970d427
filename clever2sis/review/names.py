"""Names beside ids: who and what each id in a review stands for, from the builds and their snapshot.

A review names records in two ways. Changes name Canvas ids (``user_id``, ``section_id``, ``account_id``)
that the builds' own CSVs describe. Findings name the Clever record a build step judged: a user, section,
school or term of the snapshot (:data:`SUBJECT_BY_FILE`, :data:`SUBJECT_BY_KIND`), or, for the checks of
the finished files (``control_characters``, ``dangling_reference``, ``value_too_long``, ``id_too_long``),
the Canvas id in the first column of their file. Enrollment findings name the user; the section is the one
their message starts with.

A Clever record is looked for in the new build first (a Canvas row's Clever id is its ``integration_id``
when the file has that column, which the build adds whenever an id template is not the Clever id itself,
else its id), then in the snapshot the build was made from: the path build.json records, read only while
its manifest is still the one the build recorded. ``found_in`` says which (:data:`FOUND_IN`); a record in
neither is "not in the snapshot".

Each described row gets context columns (:data:`ROW_CONTEXT`): the person's or record's name, a person's
``role`` (their Canvas enrollment roles, else their Clever roles), the ``school`` (school names,
``"; "``-joined) and ``school_ids`` (Canvas account ids, space-separated: what the report's school filter
matches). Only the ids asked for are looked up, with one vectorised lookup per kind of record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clever2sis.clever.frames import load_district
from clever2sis.clever.snapshot import Snapshot
from clever2sis.errors import SnapshotError
from clever2sis.sis import files
from clever2sis.sis.arrow import arrow_strings, lookup, member

if TYPE_CHECKING:
    from clever2sis.build_dir import BuildRecord
    from clever2sis.review.facts import BuildView

ROOT_ACCOUNT_LABEL = "(root account)"

# What a finding's record_id names, by the file it is about; SUBJECT_BY_KIND overrides it for a kind.
USER, SECTION, SCHOOL, TERM, DISTRICT, ROW, NOTHING = (
    "user",
    "section",
    "school",
    "term",
    "district",
    "row",
    "",
)
SUBJECT_BY_FILE: dict[str, str] = {
    files.CHANGE_SIS_ID: NOTHING,
    files.ACCOUNTS: SCHOOL,
    files.TERMS: TERM,
    files.COURSES: SECTION,
    files.SECTIONS: SECTION,
    files.USERS: USER,
    files.ENROLLMENTS: USER,
    files.USER_OBSERVERS: USER,
    files.ADMINS: USER,
}
SUBJECT_BY_KIND: dict[str, str] = {
    "enrollment_section_not_built": SECTION,
    "contacts_not_built": DISTRICT,
    # The checks of the finished files name the Canvas id in the file's first column.
    "control_characters": ROW,
    "dangling_reference": ROW,
    "value_too_long": ROW,
    "id_too_long": ROW,
}
SECTION_IN_MESSAGE = r"^section (\S+?):? "

FOUND_IN_BUILD = "build"
FOUND_IN_SNAPSHOT = "snapshot"
NOT_IN_SNAPSHOT = "not in the snapshot"
NOT_IN_BUILD = "not in this build"
SNAPSHOT_NOT_READ = "not in this build; the snapshot could not be read"
FOUND_IN = (FOUND_IN_BUILD, FOUND_IN_SNAPSHOT, NOT_IN_SNAPSHOT, NOT_IN_BUILD, SNAPSHOT_NOT_READ)

SNAPSHOT_READ = "read"
SNAPSHOT_NOT_NEEDED = "not needed"
SNAPSHOT_NOT_RECORDED = "not recorded"
SNAPSHOT_MISSING = "missing"
SNAPSHOT_CHANGED = "changed"
SNAPSHOT_UNREADABLE = "unreadable"

# Canvas roles in the order a person's roles are listed; other roles follow, sorted.
CANVAS_ROLE_ORDER = ("student", "teacher", "ta", "designer", "observer")
CLEVER_ROLES = ("student", "teacher", "staff", "district_admin", "contact")
ROLE_SEPARATOR = ", "
NAME_SEPARATOR = "; "
ID_SEPARATOR = " "

ROW_CONTEXT: dict[str, tuple[str, ...]] = {
    files.CHANGE_SIS_ID: (),
    files.ACCOUNTS: ("name", "school", "school_ids"),
    files.TERMS: ("name",),
    files.COURSES: ("name", "school", "school_ids"),
    files.SECTIONS: ("name", "school", "school_ids"),
    files.USERS: ("name", "role", "school", "school_ids"),
    files.ENROLLMENTS: ("user_name", "section_name", "school", "school_ids"),
    files.USER_OBSERVERS: ("observer_name", "student_name", "school", "school_ids"),
}
FINDING_CONTEXT = ("name", "role", "school", "school_ids", "section_id", "section", "found_in")


def _unique(series: pd.Series) -> pd.Series:
    """``series`` without repeated index entries (the first wins), so that it can map values."""
    return series[~series.index.duplicated()]


def _series(values: Any, index: Any) -> pd.Series:
    """Strings by string keys: a mapping for :func:`_get` (where the first of repeated keys wins)."""
    return pd.Series(values, index=pd.Index(index, dtype="str"), dtype="str")


def _text(values: pd.Series) -> pd.Series:
    """``values`` as strings, missing ones empty (whatever dtype an empty lookup left them in)."""
    if values.dtype == "str" and not values.hasnans:
        return values
    return values.astype("str").where(values.notna(), "")


# Past this many mapping entries per key, the mapping is cut down to the keys' entries before the lookup.
_CUT_THE_MAPPING_FACTOR = 4


def _get(keys: pd.Series, mapping: pd.Series) -> pd.Series:
    """``mapping[key]`` for each key, missing where unknown (by Arrow: pandas' ``map`` is far slower on
    Arrow strings).

    A review looks a few thousand ids up in files of a hundred thousand rows, many times: hashing the
    keys and probing the mapping with them costs a fraction of hashing the whole mapping each time.
    """
    keys = _text(keys)
    if len(mapping) > _CUT_THE_MAPPING_FACTOR * len(keys):
        index = arrow_strings(mapping.index)
        wanted = pc.is_in(index, value_set=pc.unique(arrow_strings(keys))).to_numpy(zero_copy_only=False)
        mapping = mapping[wanted]
    return lookup(keys, mapping).astype("str")


def _isin(values: pd.Series, of: pd.Series | pd.Index) -> pd.Series:
    return member(_text(values), of)


def join_runs(owners: pa.Array, items: pa.Array, separator: str) -> tuple[pa.Array, pa.Array]:
    """(each owner, its items joined by ``separator``), for ``owners`` sorted so each owner's items are one
    run. Each run becomes one list by its offsets and Arrow joins the lists: no Python join per owner."""
    if not len(owners):
        return pa.array([], pa.large_string()), pa.array([], pa.large_string())
    changes = pc.not_equal(owners.slice(1), owners.slice(0, len(owners) - 1)).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.concatenate(([True], changes)))
    offsets = pa.array(np.append(starts, len(owners)), pa.int32())
    lists = pa.ListArray.from_arrays(offsets, items.cast(pa.large_string()))
    joined = pc.binary_join(lists, pa.scalar(separator, pa.large_string()))
    return owners.take(pa.array(starts)).cast(pa.large_string()), joined


def clever_ids(frame: pd.DataFrame, id_column: str) -> pd.Series:
    """Each row's Clever id: its ``integration_id`` when the file has one, else its Canvas id."""
    if "integration_id" not in frame.columns:
        return frame[id_column]
    given = frame["integration_id"]
    return given.where(given != "", frame[id_column])


# --- the snapshot ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotNames:
    """What the build's snapshot says of the Clever records a review names (only those asked for).

    ``users``: index Clever id; ``name``, ``role`` (Clever roles), ``school`` (a Clever school id).
    ``sections``: index Clever id; ``name``, ``school``. ``schools`` and ``terms``: Clever id -> name.
    """

    status: str
    detail: str = ""
    users: pd.DataFrame = field(default_factory=lambda: _empty(["name", "role", "school"]))
    sections: pd.DataFrame = field(default_factory=lambda: _empty(["name", "school"]))
    schools: pd.Series = field(default_factory=lambda: _series([], []))
    terms: pd.Series = field(default_factory=lambda: _series([], []))

    def facts(self) -> dict[str, str]:
        return {"status": self.status, "detail": self.detail}


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype="str") for c in columns}, index=pd.Index([], dtype="str"))


def open_snapshot(record: BuildRecord) -> tuple[Snapshot | None, str, str]:
    """The snapshot a build.json names, if it is still the one built from: (snapshot, status, detail)."""
    recorded = record.snapshot or {}
    path = recorded.get("path")
    if not path:
        return None, SNAPSHOT_NOT_RECORDED, "build.json records no snapshot path"
    try:
        snapshot = Snapshot.open(Path(path))
    except SnapshotError as error:
        return None, SNAPSHOT_MISSING, f"the snapshot could not be opened: {error}"
    if snapshot.manifest_sha256 != recorded.get("manifest_sha256"):
        return None, SNAPSHOT_CHANGED, f"{path} has changed since this build was made from it"
    return snapshot, SNAPSHOT_READ, ""


def _wanted_frames(snapshot: Snapshot, users: set[str], sections: set[str]) -> dict[str, pd.DataFrame]:
    """The wanted users and sections, and every school and term, with clever/frames.py's column names.

    From the columnar copy when the snapshot has one (filtered by id before anything becomes pandas);
    otherwise every collection is parsed, as a build of such a snapshot does.
    """
    if not snapshot.has_columnar_copy:
        district = load_district(snapshot)
        return {
            "users": district.users.loc[district.users["id"].isin(users)],
            "sections": district.sections.loc[district.sections["id"].isin(sections)],
            "schools": district.schools,
            "terms": district.terms,
        }
    tables: dict[str, pa.Table] = {}
    for collection, ids in (("users", users), ("sections", sections), ("schools", None), ("terms", None)):
        table = snapshot.read_columnar(collection)
        if table is None:
            raise SnapshotError(f"{snapshot.path}: no columnar copy of {collection}")
        if ids is not None:
            table = table.filter(pc.is_in(table.column("id"), value_set=pa.array(sorted(ids), pa.string())))
        tables[collection] = table
    user_table = tables["users"]
    roles = user_table.column("roles")
    people = pd.DataFrame(
        {
            "id": user_table.column("id").to_pandas(),
            "first": pc.struct_field(user_table.column("name"), "first").to_pandas(),
            "last": pc.struct_field(user_table.column("name"), "last").to_pandas(),
            **{
                f"{role}_school": pc.struct_field(pc.struct_field(roles, role), "school").to_pandas()
                for role in ("student", "teacher")
            },
            **{
                f"is_{role}": pc.is_valid(pc.struct_field(roles, role)).to_numpy(zero_copy_only=False)
                for role in CLEVER_ROLES
            },
        }
    )
    return {
        "users": people,
        **{
            name: tables[name].select(["id", "name", *(["school"] if name == "sections" else [])]).to_pandas()
            for name in ("sections", "schools", "terms")
        },
    }


def read_snapshot_names(record: BuildRecord, users: set[str], sections: set[str]) -> SnapshotNames:
    """Look Clever ``users`` and ``sections`` (and every school and term) up in the build's snapshot."""
    if not (users or sections):
        return SnapshotNames(status=SNAPSHOT_NOT_NEEDED)
    snapshot, status, detail = open_snapshot(record)
    if snapshot is None:
        return SnapshotNames(status=status, detail=detail)
    try:
        frames = _wanted_frames(snapshot, users, sections)
    except SnapshotError as error:
        return SnapshotNames(status=SNAPSHOT_UNREADABLE, detail=f"the snapshot could not be read: {error}")
    people = frames["users"]
    name = (_text(people["first"]) + " " + _text(people["last"])).str.strip()
    roles = pd.Series("", index=people.index, dtype="str")
    for role in CLEVER_ROLES:
        roles = roles.where(~people[f"is_{role}"].astype(bool), roles + ROLE_SEPARATOR + role)
    school = _text(people["student_school"]).where(
        _text(people["student_school"]) != "", _text(people["teacher_school"])
    )
    ids = _text(people["id"]).to_numpy()
    section_frame = frames["sections"]
    section_ids = _text(section_frame["id"]).to_numpy()
    return SnapshotNames(
        status=SNAPSHOT_READ,
        users=pd.DataFrame(
            {
                "name": _series(name.to_numpy(), ids),
                "role": _series(roles.str.removeprefix(ROLE_SEPARATOR).to_numpy(), ids),
                "school": _series(school.to_numpy(), ids),
            }
        ),
        sections=pd.DataFrame(
            {
                "name": _series(_text(section_frame["name"]).to_numpy(), section_ids),
                "school": _series(_text(section_frame["school"]).to_numpy(), section_ids),
            }
        ),
        schools=_series(_text(frames["schools"]["name"]).to_numpy(), _text(frames["schools"]["id"])),
        terms=_series(_text(frames["terms"]["name"]).to_numpy(), _text(frames["terms"]["id"])),
    )


# --- one build's lookups -----------------------------------------------------------------------------------


class Side:
    """One build's CSVs as lookups by Canvas id and by Clever id (each made once, when first needed)."""

    def __init__(self, view: BuildView) -> None:
        self.view = view
        self._roles = pd.Series([], index=pd.Index([], dtype="str"), dtype="str")

    @cached_property
    def users(self) -> pd.DataFrame:
        """Index user_id: ``name``, ``school_ids`` (the derived schools), ``clever_id``."""
        users = self.view.frames[files.USERS]
        ids = users["user_id"].to_numpy()
        return pd.DataFrame(
            {
                "name": _series((users["first_name"] + " " + users["last_name"]).str.strip().to_numpy(), ids),
                "school_ids": _series(users["schools"].to_numpy(), ids),
                "clever_id": _series(clever_ids(users, "user_id").to_numpy(), ids),
            }
        )

    @cached_property
    def user_by_clever_id(self) -> pd.Series:
        return _series(self.users.index.to_numpy(), self.users["clever_id"].to_numpy())

    @cached_property
    def accounts(self) -> pd.Series:
        accounts = self.view.frames[files.ACCOUNTS]
        return _series(accounts["name"].to_numpy(), accounts["account_id"].to_numpy())

    @cached_property
    def account_by_clever_id(self) -> pd.Series:
        accounts = self.view.frames[files.ACCOUNTS]
        return _series(accounts["account_id"].to_numpy(), clever_ids(accounts, "account_id").to_numpy())

    @cached_property
    def courses(self) -> pd.DataFrame:
        """Index course_id: ``name`` (its long name), ``account_id``."""
        courses = self.view.frames[files.COURSES]
        ids = courses["course_id"].to_numpy()
        return pd.DataFrame(
            {
                "name": _series(courses["long_name"].to_numpy(), ids),
                "account_id": _series(courses["account_id"].to_numpy(), ids),
            }
        )

    @cached_property
    def sections(self) -> pd.DataFrame:
        """Index section_id: ``name``, ``account_id`` (its course's)."""
        sections = self.view.frames[files.SECTIONS]
        ids = sections["section_id"].to_numpy()
        account = _text(_get(sections["course_id"], self.courses["account_id"]))
        return pd.DataFrame(
            {
                "name": _series(sections["name"].to_numpy(), ids),
                "account_id": _series(account.to_numpy(), ids),
            }
        )

    @cached_property
    def section_by_clever_id(self) -> pd.Series:
        sections = self.view.frames[files.SECTIONS]
        return _series(sections["section_id"].to_numpy(), clever_ids(sections, "section_id").to_numpy())

    @cached_property
    def terms(self) -> pd.Series:
        terms = self.view.frames[files.TERMS]
        return _series(terms["name"].to_numpy(), terms["term_id"].to_numpy())

    def roles(self, user_ids: pd.Series) -> pd.Series:
        """Each user's Canvas enrollment roles in this build, listed in :data:`CANVAS_ROLE_ORDER` (each
        user's are found once, however often they are asked for)."""
        user_ids = _text(user_ids)
        new = user_ids[~_isin(user_ids, self._roles.index)].drop_duplicates()
        if len(new):
            found = self._find_roles(new)
            self._roles = pd.concat([self._roles, found.reindex(new.to_numpy()).fillna("")])
        return _text(_get(user_ids, self._roles))

    def _find_roles(self, user_ids: pd.Series) -> pd.Series:
        enrollments = self.view.frames[files.ENROLLMENTS]
        held = enrollments.loc[_isin(enrollments["user_id"], user_ids), ["user_id", "role"]]
        held = held.astype("str").drop_duplicates()
        rank = held["role"].map({role: n for n, role in enumerate(CANVAS_ROLE_ORDER)})
        held = held.assign(rank=rank.fillna(len(CANVAS_ROLE_ORDER))).sort_values(["user_id", "rank", "role"])
        owners, joined = join_runs(
            pa.array(held["user_id"].array, pa.large_string()),
            pa.array(held["role"].array, pa.large_string()),
            ROLE_SEPARATOR,
        )
        return _series(joined.to_numpy(zero_copy_only=False), owners.to_numpy(zero_copy_only=False))


def _first(ids: pd.Series, lookups: Iterable[pd.Series]) -> pd.Series:
    """``mapping[id]`` from the first mapping that has the id; missing where none has it."""
    found = pd.Series(pd.NA, index=ids.index, dtype="str")
    for mapping in lookups:
        found = found.fillna(_get(ids, mapping))
    return found


def _found(built: pd.Series, in_snapshot: pd.Series, missing: str) -> pd.Series:
    found = pd.Series(missing, index=built.index, dtype="str")
    found = found.where(~in_snapshot.astype(bool), FOUND_IN_SNAPSHOT)
    return found.where(~built.astype(bool), FOUND_IN_BUILD)


# --- everything together -----------------------------------------------------------------------------------


class Names:
    """Context columns for a review's findings and changes (see the module docstring)."""

    def __init__(self, new: BuildView, old: BuildView | None = None) -> None:
        self.new = Side(new)
        self.old = Side(old) if old is not None else None
        self.snapshot = SnapshotNames(status=SNAPSHOT_NOT_NEEDED)

    def sides(self, side: Side) -> list[Side]:
        """``side``, then the other build: where a row of ``side`` is described from."""
        other = self.old if side is self.new else self.new
        return [side] if other is None else [side, other]

    def read_snapshot(self, findings: pd.DataFrame, people: Iterable[tuple[pd.Series, Side]] = ()) -> None:
        """Read from the new build's snapshot, once, what ``findings`` need that the build does not say,
        and the Clever roles of ``people`` (Canvas user ids of a side) who hold no enrollment there."""
        subject = subjects(findings)
        record_ids = _text(findings["record_id"])
        users = record_ids[subject == USER]
        wanted_users = set(users[~_isin(users, self.new.user_by_clever_id.index)])
        built = _get(users, self.new.user_by_clever_id).dropna()
        people = [(built, self.new), *people]
        for ids, side in people:
            no_role = _text(ids)[side.roles(_text(ids)) == ""]
            wanted_users.update(_get(no_role, side.users["clever_id"]).dropna())
        sections = pd.concat([record_ids[subject == SECTION], sections_named(findings).dropna()])
        wanted_sections = set(sections[~_isin(sections, self.new.section_by_clever_id.index)])
        self.snapshot = read_snapshot_names(self.new.view.record, wanted_users, wanted_sections)

    # --- schools and records ----------------------------------------------------------------------------

    @cached_property
    def _account_names(self) -> pd.Series:
        names = [self.new.accounts] + ([self.old.accounts] if self.old is not None else [])
        return _unique(pd.concat(names))

    def school_names(self, school_ids: pd.Series, *, empty_is_root: bool = False) -> pd.Series:
        """Space-separated account ids -> their names, ``"; "``-joined (an unknown id shows as itself)."""
        ids = _text(school_ids)
        if not len(ids):
            return ids
        lists = pc.split_pattern(pa.array(ids.array, pa.large_string()), ID_SEPARATOR)
        parts = pd.Series(pc.list_flatten(lists).to_numpy(zero_copy_only=False), dtype="str")
        named = _get(parts, self._account_names).fillna(parts)
        named = named.where(parts != "", ROOT_ACCOUNT_LABEL if empty_is_root else "")
        rows = pa.ListArray.from_arrays(lists.offsets, pa.array(named.array, pa.large_string()))
        joined = pc.binary_join(rows, pa.scalar(NAME_SEPARATOR, pa.large_string()))
        return pd.Series(joined.to_numpy(zero_copy_only=False), index=ids.index, dtype="str")

    def _clever_schools(self, clever_school: pd.Series) -> tuple[pd.Series, pd.Series]:
        """Clever school ids -> (Canvas account ids, school names): from the build, else the snapshot."""
        account = _text(_get(clever_school, self.new.account_by_clever_id))
        from_snapshot = _get(clever_school, self.snapshot.schools).fillna(clever_school)
        return account, _text(self.school_names(account).where(account != "", from_snapshot))

    def people(self, user_ids: pd.Series, side: Side) -> pd.DataFrame:
        """Canvas user ids of ``side`` (else of the other build) -> name, role, school, school_ids."""
        user_ids = _text(user_ids)
        sides = self.sides(side)
        role = pd.Series("", index=user_ids.index, dtype="str")
        for one in sides:
            role = role.where(role != "", one.roles(user_ids))
        clever = _first(user_ids, (one.users["clever_id"] for one in sides))
        role = role.where(role != "", _text(_get(clever, self.snapshot.users["role"])))
        school_ids = _text(_first(user_ids, (one.users["school_ids"] for one in sides)))
        return pd.DataFrame(
            {
                "name": _text(_first(user_ids, (one.users["name"] for one in sides))),
                "role": role,
                "school": self.school_names(school_ids),
                "school_ids": school_ids,
            }
        )

    def records(self, ids: pd.Series, name: str, side: Side) -> pd.DataFrame:
        """Canvas course or section ids of ``side`` (else of the other build) -> name, school, school_ids."""
        ids = _text(ids)
        sides = self.sides(side)
        tables = [one.courses if name == files.COURSES else one.sections for one in sides]
        account = _first(ids, (table["account_id"] for table in tables))
        school = self.school_names(_text(account), empty_is_root=True).where(account.notna(), "")
        return pd.DataFrame(
            {
                "name": _text(_first(ids, (table["name"] for table in tables))),
                "school": school,
                "school_ids": _text(account),
            }
        )

    def rows(self, name: str, frame: pd.DataFrame, side: Side) -> pd.DataFrame:
        """:data:`ROW_CONTEXT` for rows (or just the key columns) of Canvas file ``name`` of ``side``."""
        if name == files.USERS:
            return self.people(frame["user_id"], side)
        if name == files.ENROLLMENTS:
            person = self.people(frame["user_id"], side)
            section = self.records(frame["section_id"], files.SECTIONS, side)
            return pd.DataFrame(
                {
                    "user_name": person["name"],
                    "section_name": section["name"],
                    "school": section["school"],
                    "school_ids": section["school_ids"],
                }
            )
        if name in (files.SECTIONS, files.COURSES):
            return self.records(frame["section_id" if name == files.SECTIONS else "course_id"], name, side)
        if name == files.ACCOUNTS:
            ids = _text(frame["account_id"])
            school = self.school_names(ids, empty_is_root=True)
            return pd.DataFrame({"name": school, "school": school, "school_ids": ids})
        if name == files.TERMS:
            terms = _first(_text(frame["term_id"]), (one.terms for one in self.sides(side)))
            return pd.DataFrame({"name": _text(terms)})
        if name == files.USER_OBSERVERS:
            observer = self.people(frame["observer_id"], side)
            student = self.people(frame["student_id"], side)
            return pd.DataFrame(
                {
                    "observer_name": observer["name"],
                    "student_name": student["name"],
                    "school": student["school"],
                    "school_ids": student["school_ids"],
                }
            )
        return pd.DataFrame(index=frame.index)

    # --- findings -----------------------------------------------------------------------------------------

    def findings(self, items: pd.DataFrame) -> pd.DataFrame:
        """``items`` (build.json's findings) with the :data:`FINDING_CONTEXT` columns added."""
        out = items.copy()
        for column in FINDING_CONTEXT:
            out[column] = pd.Series("", index=items.index, dtype="str")
        subject = subjects(items)
        for kind in subject.unique():
            rows = items.loc[subject == kind]
            context = self._subject(str(kind), rows)
            for column in context.columns:
                out.loc[rows.index, column] = context[column].to_numpy()
        section_id = sections_named(items)
        named = section_id.notna()
        if named.any():
            section = self._clever_sections(section_id[named])
            out.loc[named, "section_id"] = section_id[named]
            out.loc[named, "section"] = section["name"].to_numpy()
            # A user who is nowhere has the section's school.
            schoolless = named & (out["school_ids"] == "") & (out["school"] == "")
            out.loc[schoolless, "school"] = section.loc[schoolless[named], "school"].to_numpy()
            out.loc[schoolless, "school_ids"] = section.loc[schoolless[named], "school_ids"].to_numpy()
        return out

    def _missing(self) -> str:
        return NOT_IN_SNAPSHOT if self.snapshot.status == SNAPSHOT_READ else SNAPSHOT_NOT_READ

    def _subject(self, subject: str, rows: pd.DataFrame) -> pd.DataFrame:
        ids = _text(rows["record_id"])
        if subject == USER:
            return self._clever_users(ids)
        if subject == SECTION:
            return self._clever_sections(ids)
        if subject == SCHOOL:
            account, school = self._clever_schools(ids)
            known = (account != "") | _isin(ids, self.snapshot.schools.index)
            school = school.where(known, "")
            found = _found(account != "", known, self._missing())
            return pd.DataFrame({"name": school, "school": school, "school_ids": account, "found_in": found})
        if subject == TERM:
            term = _get(ids, self.snapshot.terms)
            found = _found(pd.Series(False, index=ids.index), term.notna(), self._missing())
            return pd.DataFrame({"name": _text(term), "found_in": found})
        if subject == DISTRICT:
            district = (self.new.view.record.snapshot or {}).get("district_name") or ""
            return pd.DataFrame({"name": district, "found_in": FOUND_IN_BUILD}, index=rows.index)
        if subject == ROW:
            return self._canvas_rows(rows)
        return pd.DataFrame(index=rows.index)

    def _from_snapshot(
        self, out: pd.DataFrame, ids: pd.Series, table: pd.DataFrame, built: pd.Series
    ) -> None:
        """Fill ``out`` from a snapshot ``table`` for the ``ids`` the build does not have; set found_in."""
        known = ~built & _isin(ids, table.index)
        if known.any():
            found = ids[known]
            account, school = self._clever_schools(_text(_get(found, table["school"])))
            for column in table.columns.drop("school"):
                out.loc[known, column] = _text(_get(found, table[column])).to_numpy()
            out.loc[known, "school"] = school.to_numpy()
            out.loc[known, "school_ids"] = account.to_numpy()
        out["found_in"] = _found(built, known, self._missing())

    def _clever_users(self, ids: pd.Series) -> pd.DataFrame:
        user_id = _get(ids, self.new.user_by_clever_id)
        built = user_id.notna()
        out = self.people(_text(user_id), self.new).where(built, "")
        self._from_snapshot(out, ids, self.snapshot.users, built)
        return out

    def _clever_sections(self, ids: pd.Series) -> pd.DataFrame:
        section_id = _get(ids, self.new.section_by_clever_id)
        built = section_id.notna()
        out = self.records(_text(section_id), files.SECTIONS, self.new).where(built, "")
        self._from_snapshot(out, ids, self.snapshot.sections, built)
        return out

    def _canvas_rows(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Context for findings that name the Canvas id in the first column of their file."""
        parts = []
        for name, group in rows.groupby("file", sort=False):
            file = str(name)
            ids = _text(group["record_id"])
            if file in (files.ENROLLMENTS, files.COURSES):  # enrollments.csv's first column is course_id
                context = self.records(ids, files.COURSES, self.new)
            elif file == files.USER_OBSERVERS:  # observer_id
                context = self.people(ids, self.new)
            else:
                context = self.rows(file, ids.to_frame(files.COLUMNS[file][0]), self.new)
            built = context["name"] != "" if "name" in context else pd.Series(False, index=ids.index)
            context["found_in"] = _found(built, pd.Series(False, index=ids.index), NOT_IN_BUILD)
            parts.append(context)
        return pd.concat(parts).reindex(rows.index)


def subjects(findings: pd.DataFrame) -> pd.Series:
    """What each finding's record_id names (see :data:`SUBJECT_BY_FILE`)."""
    by_kind = findings["kind"].map(SUBJECT_BY_KIND)
    return _text(by_kind.fillna(findings["file"].map(SUBJECT_BY_FILE)))


def sections_named(findings: pd.DataFrame) -> pd.Series:
    """The Clever section an enrollment finding about a user names (missing for other findings)."""
    about_a_user = (findings["file"] == files.ENROLLMENTS) & (subjects(findings) == USER)
    named = _text(findings["message"]).str.extract(SECTION_IN_MESSAGE, expand=False)
    return named.where(about_a_user)
