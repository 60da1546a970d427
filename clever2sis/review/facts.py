"""The review facts: a build (and optionally an older one) in, one JSON-ready dict out.

Everything the report, the terminal summary and ``review --json`` show comes from :func:`review_facts`:

- ``build`` / ``against``: where each build came from (snapshot, district, config, tool version, zip sha256);
- ``counts``: rows per Canvas file, and per school and per role, from the CSVs themselves;
- ``findings``: every validation finding of the build, grouped by kind, each naming its record;
- ``diff``: per Canvas file, the rows added, removed and changed (with every field that changed), rows
  paired by each file's identifying columns (enrollments by section, user and role, as Canvas's diffing
  pairs them: ``identifying_fields`` in canvas-lms ``lib/sis/csv/enrollment_importer.rb``, used by
  ``lib/sis/csv/diff_generator.rb``);
- ``removals``: what those removed rows would do in Canvas under the import settings in force (batch
  mode: ``SisBatch#remove_previous_imports`` in ``app/models/sis_batch.rb``; diffing:
  ``lib/sis/csv/diff_generator.rb``);
- ``identities``, only for a build with identity changes: the users carried over to a new id, and those
  that could not be (:mod:`clever2sis.review.identities`).

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from clever2sis.build_dir import BuildDir, BuildRecord
from clever2sis.canvas.sis_import import ImportOptions
from clever2sis.errors import ReviewError
from clever2sis.review.identities import identity_facts
from clever2sis.sis import files

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
    files.USER_OBSERVERS: ("observer_id", "student_id"),
}
SCHOOLS = "schools"
TEACHERS = "teachers"
DERIVED: dict[str, tuple[str, ...]] = {files.USERS: (SCHOOLS,), files.SECTIONS: (TEACHERS,)}
STUDENT_ROLE = "student"
ROOT_ACCOUNT_LABEL = "(root account)"
_ID_SEPARATOR = " "
_NAME_SEPARATOR = "; "


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


def _empty(columns: Iterable[str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series([], dtype="str") for column in columns})


def open_build(build_dir: Path) -> BuildView:
    """Read ``build_dir``'s zip (after checking it against build.json) into a :class:`BuildView`.

    A directory that is not a whole build is a :class:`~clever2sis.errors.ReviewError` (exit code 40).
    """
    verified = BuildDir(build_dir).verified_zip(error=ReviewError)
    return BuildView(path=build_dir, record=verified.record, frames=_with_derived(verified.read_frames()))


def _joined_ids(frame: pd.DataFrame, owner: str, item: str) -> pd.Series:
    """``owner`` -> its distinct ``item`` values, sorted and joined by a space."""
    pairs = frame[[owner, item]].drop_duplicates().sort_values([owner, item])
    return pairs.groupby(owner, sort=True)[item].agg(_ID_SEPARATOR.join)


def _with_derived(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    enrollments = frames[files.ENROLLMENTS]
    placed = enrollments[["user_id", "course_id"]].merge(
        frames[files.COURSES][["course_id", "account_id"]], on="course_id", how="inner"
    )
    users = frames[files.USERS].copy()
    users[SCHOOLS] = users["user_id"].map(_joined_ids(placed, "user_id", "account_id")).fillna("")
    teaching = enrollments.loc[enrollments["role"] != STUDENT_ROLE]
    sections = frames[files.SECTIONS].copy()
    sections[TEACHERS] = sections["section_id"].map(_joined_ids(teaching, "section_id", "user_id")).fillna("")
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


def _role_counts(frame: pd.DataFrame, by: list[str]) -> dict[Any, dict[str, int]]:
    sizes = frame.groupby(by, sort=True).size()
    out: dict[Any, dict[str, int]] = {}
    for index, n in sizes.items():
        *owner, role = index if isinstance(index, tuple) else (index,)
        out.setdefault(owner[0] if owner else None, {})[str(role)] = int(n)
    return out


def counts(view: BuildView) -> dict[str, Any]:
    """Rows per file; per school (Canvas account) courses, sections, enrollments and people; per role."""
    frames = view.frames
    courses = frames[files.COURSES][["course_id", "account_id"]]
    sections = frames[files.SECTIONS][["section_id", "course_id"]].merge(courses, on="course_id", how="left")
    enrollments = frames[files.ENROLLMENTS][["course_id", "user_id", "role"]].merge(
        courses, on="course_id", how="left"
    )
    enrollments["account_id"] = enrollments["account_id"].fillna("")
    people = enrollments.drop_duplicates(["account_id", "role", "user_id"])
    course_counts = courses.groupby("account_id").size()
    section_counts = sections.groupby("account_id").size()
    enrollment_counts = _role_counts(enrollments, ["account_id", "role"])
    people_counts = _role_counts(people, ["account_id", "role"])
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
    all_enrollments = frames[files.ENROLLMENTS]
    by_role = {
        str(role): {"users": int(group["user_id"].nunique()), "enrollments": len(group)}
        for role, group in all_enrollments.groupby("role", sort=True)
    }
    enrolled = set(all_enrollments["user_id"])
    return {
        "files": {name: entry.rows for name, entry in (view.record.files or {}).items()},
        "by_school": by_school,
        "by_role": by_role,
        "users_without_enrollments": int((~frames[files.USERS]["user_id"].isin(enrolled)).sum()),
    }


# --- findings ------------------------------------------------------------------------------------------


def grouped_findings(view: BuildView) -> dict[str, Any]:
    """The build's findings by kind (warnings first), each naming its record (and the person, if built)."""
    recorded = view.record.findings or {}
    items: list[dict[str, Any]] = list(recorded.get("items") or [])
    names = {**_as_dict(view.user_names()), **_as_dict(view.section_names())}
    by_kind: dict[str, dict[str, Any]] = {}
    ordered = sorted(items, key=lambda item: (item["severity"] != "warning", item["kind"]))
    for kind, grouped in itertools.groupby(ordered, key=lambda item: str(item["kind"])):
        group = list(grouped)
        rows = [
            {
                "file": item.get("file"),
                "record_id": item.get("record_id"),
                "name": names.get(str(item.get("record_id")), ""),
                "message": item.get("message"),
            }
            for item in group
        ]
        by_kind[kind] = {"severity": group[0]["severity"], "count": len(rows), "items": rows}
    return {
        "total": len(items),
        "warnings": sum(1 for item in items if item.get("severity") == "warning"),
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


def diff_file(name: str, old: pd.DataFrame, new: pd.DataFrame) -> FileDiff:
    """Pair ``old`` and ``new`` rows by the file's key and compare every other column (vectorised)."""
    key = list(DIFF_KEYS[name])
    columns = [c for c in dict.fromkeys([*old.columns, *new.columns]) if c not in key]
    old = old.reindex(columns=[*key, *columns], fill_value="")
    new = new.reindex(columns=[*key, *columns], fill_value="")
    merged = old.merge(new, on=key, how="outer", suffixes=("__old", "__new"), indicator=True)
    sort_key = [c for c in files.SORT_KEYS[name] if c in old.columns]
    removed_keys = merged.loc[merged["_merge"] == "left_only", key]
    added_keys = merged.loc[merged["_merge"] == "right_only", key]
    removed = old.merge(removed_keys, on=key, how="inner").sort_values(sort_key, ignore_index=True)
    added = new.merge(added_keys, on=key, how="inner").sort_values(sort_key, ignore_index=True)
    both = merged.loc[merged["_merge"] == "both"]
    parts = []
    for position, column in enumerate(columns):
        before, after = both[f"{column}__old"], both[f"{column}__new"]
        differs = before != after
        if differs.any():
            part = both.loc[differs, key].copy()
            part["field"] = column
            part["old"] = before[differs]
            part["new"] = after[differs]
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
    return {name: diff_file(name, old.frames[name], new.frames[name]) for name in files.FILE_ORDER}


def _names_of(ids: str, *maps: Mapping[str, str]) -> str:
    if not ids:
        return ""
    shown = []
    for item in ids.split(_ID_SEPARATOR):
        shown.append(next((m[item] for m in maps if m.get(item)), item or ROOT_ACCOUNT_LABEL))
    return _NAME_SEPARATOR.join(shown)


def _as_dict(series: pd.Series) -> dict[str, str]:
    return {str(k): str(v) for k, v in series.items()}


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _with_context(name: str, frame: pd.DataFrame, view: BuildView) -> pd.DataFrame:
    """Enrollment rows with the user's and the section's names beside the ids, for people."""
    if name != files.ENROLLMENTS or frame.empty:
        return frame
    frame = frame.copy()
    frame["user_name"] = frame["user_id"].map(view.user_names()).fillna("")
    frame["section_name"] = frame["section_id"].map(view.section_names()).fillna("")
    return frame


def diff_facts(old: BuildView, new: BuildView, diffs: Mapping[str, FileDiff]) -> dict[str, Any]:
    """The diff as plain data: per file counts, changed fields, and every added, removed and changed row."""
    lookups: dict[str, tuple[dict[str, str], dict[str, str]]] = {
        SCHOOLS: (_as_dict(new.account_names()), _as_dict(old.account_names())),
        TEACHERS: (_as_dict(new.user_names()), _as_dict(old.user_names())),
    }
    out: dict[str, Any] = {}
    for name, diff in diffs.items():
        changed: list[dict[str, Any]] = []
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
            changed.append({"key": dict(zip(diff.key, key_values, strict=True)), "changes": entry_changes})
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
                "added": _records(_with_context(name, diff.added, new)),
                "removed": _records(_with_context(name, diff.removed, old)),
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
                    effect=f"the import is aborted after its rows are applied: {affected} of {total} "
                    f"({percent:.1f}%) exceeds change_threshold {options.change_threshold}%; nothing is "
                    "removed",
                )
        out[name] = entry
    return out, notes


def removal_consequences(
    diffs: Mapping[str, FileDiff], old: BuildView, new: BuildView, options: ImportOptions
) -> dict[str, Any]:
    """What the rows missing from the new build would do in Canvas under ``options`` (spec §4.2, §4.3)."""
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
    return {"mode": mode, "settings": settings_in_force(options), "files": by_file, "notes": notes}


# --- everything together -------------------------------------------------------------------------------


def review_facts(
    new: BuildView,
    old: BuildView | None = None,
    *,
    options: ImportOptions | None = None,
    against_reason: str | None = None,
) -> dict[str, Any]:
    """The facts of a review of ``new``, diffed against ``old`` when given."""
    options = options or ImportOptions()
    facts: dict[str, Any] = {
        "review_format_version": REVIEW_FORMAT_VERSION,
        "build": provenance(new),
        "against": None,
        "counts": counts(new),
        "findings": grouped_findings(new),
        "import_settings": settings_in_force(options),
        "diff": None,
        "highlights": None,
        "removals": None,
    }
    if old is not None:
        diffs = diff_builds(old, new)
        facts["against"] = {**provenance(old), "chosen_by": against_reason or "--against"}
        facts["against_counts"] = counts(old)
        facts["diff"] = diff_facts(old, new, diffs)
        facts["highlights"] = highlights(facts["diff"])
        facts["removals"] = removal_consequences(diffs, old, new, options)
    identities = identity_facts(new)
    if identities is not None:  # only a build with identity changes has the key
        facts["identities"] = identities
    return facts
