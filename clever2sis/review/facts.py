"""The review facts: a build (and optionally an older one) in, one JSON-ready dict out.

Everything the report, the terminal summary and ``review --json`` show comes from :func:`review_facts`:

- ``build`` / ``against``: where each build came from (snapshot, district, config, tool version, zip sha256);
- ``counts``: rows per Canvas file, and per school and per role, from the CSVs themselves;
- ``findings``: every validation finding of the build, grouped by kind, each naming its record, with the
  person's or record's name, role and school beside its id (:mod:`clever2sis.review.names`);
- ``diff``: per Canvas file, the rows added, removed and changed (with every field that changed), rows
  paired by each file's identifying columns (enrollments by section, user and role, as Canvas's diffing
  pairs them: ``identifying_fields`` in canvas-lms ``lib/sis/csv/enrollment_importer.rb``, used by
  ``lib/sis/csv/diff_generator.rb``), each row with the names, role and school of what it is about;
- ``removals``: what those removed rows would do in Canvas under the import settings in force (batch
  mode: ``SisBatch#remove_previous_imports`` in ``app/models/sis_batch.rb``; diffing:
  ``lib/sis/csv/diff_generator.rb``);
- ``names``: whether the build's snapshot was read for the records its CSVs do not name;
- ``signoff``: what approving this zip means, the ``clever2sis approve`` command, the sign-offs held
  (:mod:`clever2sis.review.approvals`);
- ``verdict``: ready to sign off, or what needs a decision first (:mod:`clever2sis.review.verdict`);
- ``identities``, only for a build with identity changes: the users carried over to a new id, and those
  that could not be (:mod:`clever2sis.review.identities`);
- ``guard``, only for a sync run's build: what the sync's guard decided, the schools it held (their rows
  sent as Canvas holds them) or let through (:func:`clever2sis.sync.guard.guard_facts`);
- ``observer_links``, only for the build of a sync run that manages observer links: the links it removed
  and added, or plans to (:mod:`clever2sis.review.observers`).

The CSVs are read from ``sis_import.zip`` (checked against build.json by
:meth:`clever2sis.build_dir.BuildDir.verified_zip`), not from ``csv/``: the review describes exactly the
bytes that would be uploaded, even if someone opened and saved a CSV copy.

Two facts are derived, both at the Canvas level, from the CSVs alone (no snapshot needed):

- a user's ``schools``: the accounts of the courses they are enrolled in (so a student who moved school
  shows as a ``schools`` change on users.csv);
- a section's ``teachers``: the users holding a non-student enrollment in it (so a changed or added
  co-teacher shows as a ``teachers`` change on sections.csv).

Both hold sorted Canvas ids (a renamed school or teacher does not make every row "changed"); each change
to them also carries the names, for people.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clever2sis.build_dir import BuildDir, BuildRecord
from clever2sis.canvas.sis_import import ImportOptions
from clever2sis.errors import ReviewError
from clever2sis.review.approvals import DEFAULT_PROFILE, signoff_facts
from clever2sis.review.identities import identity_facts
from clever2sis.review.names import ROOT_ACCOUNT_LABEL, Names, Side, join_runs
from clever2sis.review.verdict import verdict
from clever2sis.sis import files
from clever2sis.sis.arrow import arrow_strings, member

REVIEW_FORMAT_VERSION = 1

# How rows of each file are paired between two builds: the columns Canvas's diffing identifies them by.
DIFF_KEYS: dict[str, tuple[str, ...]] = {
    files.CHANGE_SIS_ID: ("type", "old_id"),
    files.ACCOUNTS: ("account_id",),
    files.TERMS: ("term_id",),
    files.COURSES: ("course_id",),
    files.SECTIONS: ("section_id",),
    files.USERS: ("user_id",),
    files.ENROLLMENTS: ("section_id", "user_id", "role"),
    files.ADMINS: ("user_id", "account_id", "role"),
    files.USER_OBSERVERS: ("observer_id", "student_id"),
}
SCHOOLS = "schools"
TEACHERS = "teachers"
DERIVED: dict[str, tuple[str, ...]] = {files.USERS: (SCHOOLS,), files.SECTIONS: (TEACHERS,)}
DERIVED_FIELDS = (SCHOOLS, TEACHERS)
STUDENT_ROLE = "student"
_ID_SEPARATOR = " "
_NAME_SEPARATOR = "; "
_AS_PANDAS_STRINGS = {pa.large_string(): pd.StringDtype("pyarrow", na_value=np.nan)}


@dataclass(frozen=True)
class BuildView:
    """A build directory read for review: its build.json and every Canvas file as string columns.

    Files the build did not write are empty frames with their usual columns. Users carry the derived
    ``schools`` column and sections the derived ``teachers`` column.
    """

    path: Path
    record: BuildRecord
    frames: dict[str, pd.DataFrame]

    def user_names(self) -> pd.Series:
        users = self.frames[files.USERS]
        names = (users["first_name"] + " " + users["last_name"]).str.strip()
        return pd.Series(names.to_numpy(), index=users["user_id"].to_numpy(), dtype="str")

    def account_names(self) -> pd.Series:
        accounts = self.frames[files.ACCOUNTS]
        return pd.Series(accounts["name"].to_numpy(), index=accounts["account_id"].to_numpy(), dtype="str")

    def section_names(self) -> pd.Series:
        sections = self.frames[files.SECTIONS]
        return pd.Series(sections["name"].to_numpy(), index=sections["section_id"].to_numpy(), dtype="str")

    def user_schools(self, user_ids: pd.Series) -> pd.DataFrame:
        """For each of ``user_ids``, in order: ``school_ids`` (the accounts of their enrollments, as the
        derived ``schools`` column) and ``school`` (those accounts' names); empty for a user this build
        does not have. Names are joined once per distinct set of schools, not per user."""
        users = self.frames[files.USERS]
        by_user = pd.Series(users[SCHOOLS].to_numpy(), index=users["user_id"].to_numpy(), dtype="str")
        found = user_ids.astype("str").map(by_user).fillna("").astype("str")
        names = self.account_names()
        joined = {
            value: _NAME_SEPARATOR.join(str(names.get(a, a)) for a in value.split(_ID_SEPARATOR) if a)
            for value in found.unique()
        }
        return pd.DataFrame(
            {"school_ids": found.to_numpy(), "school": found.map(joined).to_numpy()}, dtype="str"
        )


def _empty(columns: Iterable[str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series([], dtype="str") for column in columns})


def open_build(build_dir: Path) -> BuildView:
    """Read ``build_dir``'s zip (after checking it against build.json) into a :class:`BuildView`.

    A directory that is not a whole build is a :class:`~clever2sis.errors.ReviewError` (exit code 40).
    """
    verified = BuildDir(build_dir).verified_zip(error=ReviewError)
    return BuildView(path=build_dir, record=verified.record, frames=_with_derived(verified.read_frames()))


def _strings(values: pa.Array | pa.ChunkedArray, index: pd.Index | None = None) -> pd.Series:
    """Arrow strings as a pandas ``str`` column, without a copy."""
    series: pd.Series = values.to_pandas(types_mapper=_AS_PANDAS_STRINGS.get)
    if index is not None:
        series.index = index
    return series


def _one_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _take(keys: pd.Series, index: pa.Array | pa.ChunkedArray, values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``values`` at the position of each key in ``index`` (null where a key is not there), all in Arrow."""
    positions = pc.index_in(arrow_strings(keys), value_set=index)
    return _one_array(values).take(positions.combine_chunks())


def _joined_ids(owners: pa.Array, items: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Each owner's distinct items, sorted and joined by a space: (owners, joined), in Arrow (a join per
    owner in Python took seconds at 100,000 users)."""
    pairs = pa.table({"owner": owners, "item": items}).drop_null().group_by(["owner", "item"]).aggregate([])
    pairs = pairs.sort_by([("owner", "ascending"), ("item", "ascending")])
    return join_runs(
        pairs.column("owner").combine_chunks(), pairs.column("item").combine_chunks(), _ID_SEPARATOR
    )


def _course_accounts(frames: Mapping[str, pd.DataFrame], file: str) -> pa.Array:
    """The account_id of each row's course in ``file`` (null where the course is not in courses.csv)."""
    courses = frames[files.COURSES]
    return _take(
        frames[file]["course_id"], arrow_strings(courses["course_id"]), arrow_strings(courses["account_id"])
    )


def _with_derived(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    enrollments = frames[files.ENROLLMENTS]
    user_ids = arrow_strings(enrollments["user_id"]).combine_chunks()
    schools = _joined_ids(user_ids, _course_accounts(frames, files.ENROLLMENTS))
    users = frames[files.USERS].copy()
    users[SCHOOLS] = _strings(pc.fill_null(_take(users["user_id"], *schools), ""), users.index)
    teaching = pc.not_equal(arrow_strings(enrollments["role"]), STUDENT_ROLE).combine_chunks()
    section_ids = arrow_strings(enrollments["section_id"]).combine_chunks()
    teachers = _joined_ids(section_ids.filter(teaching), user_ids.filter(teaching))
    sections = frames[files.SECTIONS].copy()
    sections[TEACHERS] = _strings(pc.fill_null(_take(sections["section_id"], *teachers), ""), sections.index)
    return {**frames, files.USERS: users, files.SECTIONS: sections}


# --- provenance ----------------------------------------------------------------------------------------


def provenance(view: BuildView) -> dict[str, Any]:
    """Where a build came from: its directory, snapshot, district, config, tool version and zip."""
    record = view.record
    snapshot = record.snapshot or {}
    return {
        "path": str(view.path),
        "built_at": record.built_at,
        "tool": record.tool,
        "district": {"id": snapshot.get("district_id"), "name": snapshot.get("district_name")},
        "snapshot": {
            key: snapshot.get(key)
            for key in ("path", "source", "api_version", "started_at", "finished_at", "manifest_sha256")
        },
        "config": record.config,
        "zip": {"sha256": record.zip.sha256, "bytes": record.zip.bytes},
    }


# --- counts --------------------------------------------------------------------------------------------


def _role_counts(
    owner_codes: np.ndarray, owners: int, role_codes: np.ndarray, roles: int, user_codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Enrollments and distinct people per (owner, role), as ``owners x roles`` arrays, from codes."""
    group = owner_codes.astype(np.int64) * roles + role_codes
    enrollments = np.bincount(group, minlength=owners * roles).reshape(owners, roles)
    users = int(user_codes.max()) + 1 if len(user_codes) else 1
    held = np.unique(group * users + user_codes)
    people = np.bincount(held // users, minlength=owners * roles).reshape(owners, roles)
    return enrollments, people


def _codes(values: pa.Array | pa.ChunkedArray, *, sort: bool = True) -> tuple[np.ndarray, pd.Index]:
    """Each value's code and the distinct values (sorted unless ``sort`` is false), by Arrow."""
    # The chunks of an encoded chunked array share one dictionary: no copy of the values into one array.
    encoded = pc.dictionary_encode(pa.chunked_array([values]) if isinstance(values, pa.Array) else values)
    if not encoded.num_chunks:
        return np.zeros(0, dtype=np.int64), pd.Index([], dtype="str")
    codes = np.concatenate([chunk.indices.to_numpy(zero_copy_only=False) for chunk in encoded.chunks])
    codes = codes.astype(np.int64)
    dictionary = encoded.chunks[-1].dictionary
    distinct = pd.Index(dictionary.to_pandas(types_mapper=_AS_PANDAS_STRINGS.get), dtype="str")
    if not sort:
        return codes, distinct
    order = distinct.argsort()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], distinct[order]


def _by_role(counts: np.ndarray, roles: pd.Index, row: int) -> dict[str, int]:
    return {str(role): int(n) for role, n in zip(roles, counts[row], strict=True) if n}


def counts(view: BuildView) -> dict[str, Any]:
    """Rows per file; per school (Canvas account) courses, sections, enrollments and people; per role."""
    frames = view.frames
    courses = frames[files.COURSES][["course_id", "account_id"]]
    sections = _strings(_course_accounts(frames, files.SECTIONS))
    all_enrollments = frames[files.ENROLLMENTS]
    # Encoded once: enrollments and people per school and role, and per role, are counts of codes.
    account_codes, account_ids = _codes(pc.fill_null(_course_accounts(frames, files.ENROLLMENTS), ""))
    role_codes, roles = _codes(arrow_strings(all_enrollments["role"]))
    user_codes, enrolled_users = _codes(arrow_strings(all_enrollments["user_id"]), sort=False)
    per_school = _role_counts(account_codes, len(account_ids), role_codes, len(roles), user_codes)
    per_role = _role_counts(np.zeros(len(role_codes), np.int64), 1, role_codes, len(roles), user_codes)
    enrollment_counts = {str(a): _by_role(per_school[0], roles, n) for n, a in enumerate(account_ids)}
    people_counts = {str(a): _by_role(per_school[1], roles, n) for n, a in enumerate(account_ids)}
    course_counts = courses.groupby("account_id").size()
    section_counts = sections.groupby(sections).size()
    names = view.account_names()

    def label(account: str) -> str:
        return str(names.get(account, account or ROOT_ACCOUNT_LABEL))

    accounts = sorted(
        set(names.index) | set(course_counts.index) | set(enrollment_counts),
        key=lambda account: (label(account), account),
    )
    by_school = [
        {
            "account_id": account,
            "name": label(account),
            "courses": int(course_counts.get(account, 0)),
            "sections": int(section_counts.get(account, 0)),
            "people": people_counts.get(account, {}),
            "enrollments": enrollment_counts.get(account, {}),
        }
        for account in accounts
    ]
    by_role = {
        str(role): {"users": int(per_role[1][0, n]), "enrollments": int(per_role[0][0, n])}
        for n, role in enumerate(roles)
    }
    enrolled = member(frames[files.USERS]["user_id"], enrolled_users)
    return {
        "files": {name: entry.rows for name, entry in (view.record.files or {}).items()},
        "by_school": by_school,
        "by_role": by_role,
        "users_without_enrollments": int((~enrolled).sum()),
    }


# --- findings ------------------------------------------------------------------------------------------


FINDING_ITEM_COLUMNS = ("kind", "severity", "file", "record_id", "message")
FINDING_ROW = (
    "file",
    "record_id",
    "name",
    "role",
    "school",
    "school_ids",
    "section_id",
    "section",
    "found_in",
)


def findings_frame(view: BuildView) -> pd.DataFrame:
    """build.json's findings, one row each, in its order."""
    items = (view.record.findings or {}).get("items") or []
    frame = pd.DataFrame.from_records(items, columns=list(FINDING_ITEM_COLUMNS))
    return frame.fillna("").astype("str") if len(frame) else _empty(FINDING_ITEM_COLUMNS)


def grouped_findings(view: BuildView, names: Names | None = None) -> dict[str, Any]:
    """The build's findings by kind (warnings first), each naming its record, with the name, role and
    school of the person or record beside its id (:meth:`Names.findings`)."""
    if names is None:
        names = Names(view)
        names.read_snapshot(findings_frame(view))
    frame = names.findings(findings_frame(view))
    order = (frame["severity"] != "warning").astype(int)
    frame = frame.assign(_order=order).sort_values(["_order", "kind"], kind="stable")
    by_kind: dict[str, dict[str, Any]] = {}
    for kind, group in frame.groupby("kind", sort=False):
        rows = group.loc[:, [*FINDING_ROW, "message"]].to_dict(orient="records")
        by_kind[str(kind)] = {"severity": group["severity"].iloc[0], "count": len(rows), "items": rows}
    return {
        "total": len(frame),
        "warnings": int((frame["severity"] == "warning").sum()),
        "by_kind": by_kind,
    }


# --- diff ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileDiff:
    """Rows of one file added, removed and changed between two builds; ``changes`` is one row per field."""

    name: str
    key: tuple[str, ...]
    old_rows: int
    new_rows: int
    added: pd.DataFrame
    removed: pd.DataFrame
    changes: pd.DataFrame

    @property
    def changed_rows(self) -> int:
        return len(self.changes.drop_duplicates(list(self.key))) if len(self.changes) else 0


def _row_keys(old: pd.DataFrame, new: pd.DataFrame, key: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each row's key as one integer, the same for the same key in ``old`` and ``new``: every key column
    encoded over both files at once, the codes combined (no string made or hashed per row)."""
    combined_old = np.zeros(len(old), dtype=np.int64)
    combined_new = np.zeros(len(new), dtype=np.int64)
    for column in key:
        both = pa.chunked_array([*arrow_strings(old[column]).chunks, *arrow_strings(new[column]).chunks])
        codes, distinct = _codes(both, sort=False)
        combined_old = combined_old * len(distinct) + codes[: len(old)]
        combined_new = combined_new * len(distinct) + codes[len(old) :]
    return combined_old, combined_new


def diff_file(name: str, old: pd.DataFrame, new: pd.DataFrame) -> FileDiff:
    """Pair ``old`` and ``new`` rows by the file's key and compare every other column (vectorised).

    Keys are unique within a file (the builders make them so), so each new row's key is looked up among
    the old rows' (as integers, :func:`_row_keys`), and each column compared on the paired rows: no merge
    of whole files.
    """
    key = list(DIFF_KEYS[name])
    columns = [c for c in dict.fromkeys([*old.columns, *new.columns]) if c not in key]
    old = old.reindex(columns=[*key, *columns], fill_value="")
    new = new.reindex(columns=[*key, *columns], fill_value="")
    sort_key = [c for c in files.SORT_KEYS[name] if c in old.columns]
    old_keys, new_keys = _row_keys(old, new, key)
    in_old = pd.Index(old_keys).get_indexer(new_keys)
    paired = in_old >= 0
    new_at = np.flatnonzero(paired)
    old_at = in_old[paired]
    kept = np.zeros(len(old), dtype=bool)
    kept[old_at] = True
    removed = old.iloc[np.flatnonzero(~kept)].sort_values(sort_key, ignore_index=True)
    added = new.iloc[np.flatnonzero(~paired)].sort_values(sort_key, ignore_index=True)
    parts = []
    for position, column in enumerate(columns):
        before = arrow_strings(old[column]).take(pa.array(old_at))
        after = arrow_strings(new[column]).take(pa.array(new_at))
        differs = pc.fill_null(pc.not_equal(before, after), True).to_numpy(zero_copy_only=False)
        if differs.any():
            part = new.iloc[new_at[differs]][key].reset_index(drop=True)
            part["field"] = column
            part["old"] = pd.Series(
                before.filter(pa.array(differs)).to_numpy(zero_copy_only=False), dtype="str"
            )
            part["new"] = pd.Series(
                after.filter(pa.array(differs)).to_numpy(zero_copy_only=False), dtype="str"
            )
            part["_position"] = position
            parts.append(part)
    if parts:
        changes = (
            pd.concat(parts, ignore_index=True)
            .sort_values([*key, "_position"], ignore_index=True)
            .drop(columns="_position")
        )
    else:
        changes = _empty([*key, "field", "old", "new"])
    return FileDiff(
        name=name,
        key=tuple(key),
        old_rows=len(old),
        new_rows=len(new),
        added=added,
        removed=removed,
        changes=changes,
    )


def diff_builds(old: BuildView, new: BuildView) -> dict[str, FileDiff]:
    """Every file's diff, in processing order; a file of :data:`~clever2sis.sis.files.LISTED_WHEN_BUILT`
    only when one of the builds wrote it."""
    written = {*(old.record.files or {}), *(new.record.files or {})}
    return {
        name: diff_file(name, old.frames[name], new.frames[name])
        for name in files.FILE_ORDER
        if name not in files.LISTED_WHEN_BUILT or name in written
    }


def _names_of(ids: str, *maps: Mapping[str, str]) -> str:
    if not ids:
        return ""
    shown = []
    for item in ids.split(_ID_SEPARATOR):
        shown.append(next((m[item] for m in maps if m.get(item)), item or ROOT_ACCOUNT_LABEL))
    return _NAME_SEPARATOR.join(shown)


def _as_dict(series: pd.Series, only: set[str] | None = None) -> dict[str, str]:
    """``series`` as a dict, of the ``only`` keys when given (not a Python pair per user for a few)."""
    if only is not None:
        series = series[series.index.isin(sorted(only))]
    return {str(k): str(v) for k, v in series.items()}


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of strings (through Arrow: pandas' to_dict boxes every value on its own)."""
    if frame.empty:
        return []
    records: list[dict[str, Any]] = pa.Table.from_pandas(frame, preserve_index=False).to_pylist()
    return records


def _ids_in(changes: pd.DataFrame, field: str) -> set[str]:
    """The ids named by the old and new values of the changes to ``field``."""
    rows = changes.loc[changes["field"] == field, ["old", "new"]] if len(changes) else changes
    return {i for value in rows.to_numpy().ravel() for i in str(value).split(_ID_SEPARATOR) if i}


def _with_context(names: Names, name: str, frame: pd.DataFrame, side: Side | None) -> pd.DataFrame:
    """Rows of ``name`` with the context people need beside the ids (:data:`names.ROW_CONTEXT`)."""
    if frame.empty or side is None:
        return frame
    context = names.rows(name, frame, side)
    return frame.assign(**{c: context[c].to_numpy() for c in context.columns if c not in frame.columns})


def diff_facts(
    old: BuildView, new: BuildView, diffs: Mapping[str, FileDiff], names: Names | None = None
) -> dict[str, Any]:
    """The diff as plain data: per file counts, changed fields, and every added, removed and changed row
    (each with the names, role and school of what it is about)."""
    names = names or Names(new, old)
    named = {
        field: {i for diff in diffs.values() for i in _ids_in(diff.changes, field)}
        for field in DERIVED_FIELDS
    }
    lookups: dict[str, tuple[dict[str, str], dict[str, str]]] = {
        SCHOOLS: (
            _as_dict(new.account_names(), named[SCHOOLS]),
            _as_dict(old.account_names(), named[SCHOOLS]),
        ),
        TEACHERS: (_as_dict(new.user_names(), named[TEACHERS]), _as_dict(old.user_names(), named[TEACHERS])),
    }
    out: dict[str, Any] = {}
    for name, diff in diffs.items():
        changed: list[dict[str, Any]] = []
        keys = diff.changes.loc[:, list(diff.key)].drop_duplicates(ignore_index=True)
        contexts = iter(_records(names.rows(name, keys, names.new)) if len(keys) else [])
        for key_values, group in itertools.groupby(
            _records(diff.changes), key=lambda row: tuple(row[k] for k in diff.key)
        ):
            entry_changes = []
            for row in group:
                change = {"field": row["field"], "old": row["old"], "new": row["new"]}
                if row["field"] in lookups:
                    change["old_names"] = _names_of(row["old"], *reversed(lookups[row["field"]]))
                    change["new_names"] = _names_of(row["new"], *lookups[row["field"]])
                entry_changes.append(change)
            changed.append(
                {
                    "key": dict(zip(diff.key, key_values, strict=True)),
                    "context": next(contexts),
                    "changes": entry_changes,
                }
            )
        out[name] = {
            "key": list(diff.key),
            "old_rows": diff.old_rows,
            "new_rows": diff.new_rows,
            "added": len(diff.added),
            "removed": len(diff.removed),
            "changed": len(changed),
            "fields_changed": {
                str(field): int(n) for field, n in diff.changes.groupby("field", sort=True).size().items()
            },
            "rows": {
                "added": _records(_with_context(names, name, diff.added, names.new)),
                "removed": _records(_with_context(names, name, diff.removed, names.old)),
                "changed": changed,
            },
        }
    return out


def highlights(diff: Mapping[str, Any]) -> dict[str, int]:
    """The changes people ask about first, counted from the diff."""

    def rows_with(name: str, wanted: set[str]) -> int:
        return sum(
            1 for row in diff[name]["rows"]["changed"] if any(c["field"] in wanted for c in row["changes"])
        )

    return {
        "users_added": diff[files.USERS]["added"],
        "users_removed": diff[files.USERS]["removed"],
        "name_changes": rows_with(files.USERS, {"first_name", "last_name"}),
        "login_changes": rows_with(files.USERS, {"login_id"}),
        "school_changes": rows_with(files.USERS, {SCHOOLS}),
        "teacher_changes": rows_with(files.SECTIONS, {TEACHERS}),
        "enrollments_added": diff[files.ENROLLMENTS]["added"],
        "enrollments_removed": diff[files.ENROLLMENTS]["removed"],
    }


# --- what removals do in Canvas ------------------------------------------------------------------------

EFFECTS: dict[tuple[str, str], str] = {
    (files.ENROLLMENTS, "deleted"): "enrollment deleted",
    (files.ENROLLMENTS, "completed"): "enrollment concluded (the course becomes read-only for them)",
    (files.ENROLLMENTS, "inactive"): "enrollment made inactive (no access; kept, and restored if sent again)",
    (files.ENROLLMENTS, "deleted_last_completed"): (
        "enrollment deleted when the user has another active enrollment in the course, else concluded"
    ),
    (files.USERS, "deleted"): (
        "login deleted; when it is the user's last login in the account, all their enrollments there are "
        "deleted too"
    ),
    (files.USERS, "suspended"): "user suspended: cannot log in; enrollments kept",
    (files.ADMINS, "deleted"): (
        "account admin removed (only one an import made: an admin added in Canvas stays)"
    ),
}
NOT_REMOVED = "left as it is in Canvas: nothing sends a removal"
BATCH_TYPES = (files.COURSES, files.SECTIONS, files.ENROLLMENTS)


def _effect(name: str, status: str) -> str:
    return EFFECTS.get((name, status), f"{name.removesuffix('s.csv')} {status}")


def settings_in_force(options: ImportOptions) -> dict[str, Any]:
    """The import options that differ from Canvas's defaults."""
    default = ImportOptions()
    return {
        f.name: getattr(options, f.name)
        for f in fields(options)
        if getattr(options, f.name) != getattr(default, f.name)
    }


def _bytes(record: BuildRecord) -> int:
    return sum(entry.bytes for entry in (record.files or {}).values())


def _diffing(
    diffs: Mapping[str, FileDiff], old: BuildView, new: BuildView, options: ImportOptions
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    notes = [
        "Canvas diffs against the last successful import of this data set "
        f"({options.diffing_data_set_identifier!r}); this review assumes that import was the older build."
    ]
    whole_file = ""
    if options.diffing_remaster_data_set:
        whole_file = "diffing_remaster_data_set is on"
    elif options.change_threshold is not None:
        before, after = _bytes(old.record), _bytes(new.record)
        change_percent = abs(1 - after / before) * 100 if before else 100.0
        if change_percent > options.change_threshold:
            whole_file = (
                f"the files' size changed by {change_percent:.1f}%, over change_threshold "
                f"{options.change_threshold}%"
            )
    if whole_file:
        notes.append(f"{whole_file}: Canvas applies the whole files and sends no removals")
    out: dict[str, dict[str, Any]] = {}
    for name, diff in diffs.items():
        removed = len(diff.removed)
        if name == files.ENROLLMENTS:
            status = options.diffing_drop_status or "deleted"
        elif name == files.USERS:
            status = options.diffing_user_remove_status or "deleted"
        else:
            status = "deleted"
        diff_rows = len(diff.added) + removed + diff.changed_rows
        entry: dict[str, Any] = {"removed": removed, "affected": removed, "status": status}
        if whole_file:
            entry.update(affected=0, status=None, effect=NOT_REMOVED)
        elif options.diff_row_count_threshold is not None and diff_rows > options.diff_row_count_threshold:
            entry.update(
                affected=0,
                status=None,
                effect=f"{NOT_REMOVED} ({diff_rows} diff rows exceed diff_row_count_threshold "
                f"{options.diff_row_count_threshold}: the whole file is applied)",
            )
        elif options.skip_deletes and "deleted" in status:
            entry.update(affected=0, effect=f"{NOT_REMOVED} (skip_deletes ignores rows sent as {status})")
        else:
            entry["effect"] = _effect(name, status)
        out[name] = entry
    return out, notes


def _batch_terms(new: BuildView, options: ImportOptions) -> set[str] | None:
    if options.multi_term_batch_mode:
        return set(new.frames[files.TERMS]["term_id"])
    term = options.batch_mode_term_id or ""
    prefix = "sis_term_id:"
    return {term.removeprefix(prefix)} if term.startswith(prefix) else None


def _batch(
    diffs: Mapping[str, FileDiff], old: BuildView, new: BuildView, options: ImportOptions
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    terms = _batch_terms(new, options)
    notes = [
        "Batch mode also deletes SIS courses, sections and enrollments of the term that no build listed "
        "(made by another import); this review sees only the two builds."
    ]
    if terms is None:
        notes.append(
            f"batch_mode_term_id {options.batch_mode_term_id!r} is a Canvas id this review cannot map to "
            "a term: every removal is counted as in scope"
        )
    course_terms = old.frames[files.COURSES].set_index("course_id")["term_id"]

    def in_scope(frame: pd.DataFrame) -> pd.Series:
        if terms is None:
            return pd.Series(True, index=frame.index)
        return frame["course_id"].map(course_terms).isin(terms)

    out: dict[str, dict[str, Any]] = {}
    for name, diff in diffs.items():
        removed = len(diff.removed)
        if name not in BATCH_TYPES:
            effect = f"{NOT_REMOVED} (batch mode never removes {name.removesuffix('.csv')})"
            out[name] = {"removed": removed, "affected": 0, "status": None, "effect": effect}
            continue
        status = (
            (options.batch_mode_enrollment_drop_status or "deleted")
            if name == files.ENROLLMENTS
            else ("deleted")
        )
        affected = int(in_scope(diff.removed).sum()) if removed else 0
        entry: dict[str, Any] = {"removed": removed, "affected": affected, "status": status}
        entry["effect"] = _effect(name, status)
        if options.change_threshold is not None and affected:
            total = int(in_scope(old.frames[name]).sum())
            percent = affected / total * 100 if total else 100.0
            if percent > options.change_threshold:
                entry.update(
                    affected=0,
                    status=None,
                    aborts_import=True,
                    effect=f"the import is aborted after its rows are applied: {affected} of {total} "
                    f"({percent:.1f}%) exceeds change_threshold {options.change_threshold}%; nothing is "
                    "removed",
                )
        out[name] = entry
    return out, notes


def removal_consequences(
    diffs: Mapping[str, FileDiff], old: BuildView, new: BuildView, options: ImportOptions
) -> dict[str, Any]:
    """What the rows missing from the new build would do in Canvas under ``options``.

    Per file: rows ``removed``, how many Canvas would act on (``affected``), sent as which ``status``, the
    ``effect`` in words, and whether they make Canvas abort the import (``aborts_import``). From Canvas's
    batch mode and diffing (``app/models/sis_batch.rb``, ``lib/sis/csv/diff_generator.rb`` in canvas-lms).
    """
    if options.diffing_data_set_identifier is not None:
        mode = "diffing"
        by_file, notes = _diffing(diffs, old, new, options)
    elif options.batch_mode or options.multi_term_batch_mode:
        mode = "batch"
        by_file, notes = _batch(diffs, old, new, options)
    else:
        mode = "full"
        by_file = {
            name: {"removed": len(diff.removed), "affected": 0, "status": None, "effect": NOT_REMOVED}
            for name, diff in diffs.items()
        }
        notes = [
            "Without diffing or batch mode Canvas only adds and updates: a row left out of the import "
            "changes nothing. Removed people stay active with their enrollments."
        ]
    for entry in by_file.values():
        entry.setdefault("aborts_import", False)
    return {"mode": mode, "settings": settings_in_force(options), "files": by_file, "notes": notes}


# --- everything together -------------------------------------------------------------------------------


def _link_schools(new: BuildView, old: BuildView | None) -> Callable[[pd.Series], pd.DataFrame]:
    """The schools of the students of observer links: from ``new``, else (a student who left) ``old``."""

    def schools(students: pd.Series) -> pd.DataFrame:
        found = new.user_schools(students)
        if old is None:
            return found
        before = old.user_schools(students)
        return found.where(found["school_ids"] != "", before)

    return schools


def review_facts(
    new: BuildView,
    old: BuildView | None = None,
    *,
    options: ImportOptions | None = None,
    against_reason: str | None = None,
    profile: str = DEFAULT_PROFILE,
) -> dict[str, Any]:
    """The facts of a review of ``new``, diffed against ``old`` when given, for sign-off for ``profile``."""
    options = options or ImportOptions()
    names = Names(new, old)
    diffs = diff_builds(old, new) if old is not None else None
    people: list[tuple[pd.Series, Side]] = []
    if diffs is not None and names.old is not None:
        users = diffs[files.USERS]
        people = [
            (users.added["user_id"], names.new),
            (users.changes["user_id"].drop_duplicates(), names.new),
            (users.removed["user_id"], names.old),
        ]
    names.read_snapshot(findings_frame(new), people)
    facts: dict[str, Any] = {
        "review_format_version": REVIEW_FORMAT_VERSION,
        "build": provenance(new),
        "against": None,
        "counts": counts(new),
        "findings": grouped_findings(new, names),
        "import_settings": settings_in_force(options),
        "diff": None,
        "highlights": None,
        "removals": None,
    }
    if old is not None and diffs is not None:
        facts["against"] = {**provenance(old), "chosen_by": against_reason or "--against"}
        facts["against_counts"] = counts(old)
        facts["diff"] = diff_facts(old, new, diffs, names)
        facts["highlights"] = highlights(facts["diff"])
        facts["removals"] = removal_consequences(diffs, old, new, options)
    # Only a build with identity changes has the key, only a sync run's build the guard's, and only one
    # whose run manages observer links their changes: other builds' facts stay as they were.
    # The sync's modules import this one (its diff): theirs are imported here.
    from clever2sis.review.observers import observer_link_changes
    from clever2sis.sync.guard import guard_facts

    identities = identity_facts(new)
    if identities is not None:
        facts["identities"] = identities
    guard = guard_facts(new.record.sync)
    if guard is not None:
        facts["guard"] = guard
    links = observer_link_changes(new.path, new.record.sync, schools=_link_schools(new, old))
    if links is not None:
        facts["observer_links"] = links
    facts["names"] = names.snapshot.facts()
    facts["signoff"] = signoff_facts(new.path, new.record, profile)
    facts["verdict"] = verdict(facts)
    return facts
