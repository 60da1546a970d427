"""Drift: where what Canvas holds (its provisioning report) differs from what a build says it should hold.

Per compared file, every row is one of:

* ``missing``: in the build, but Canvas has no such object, or has it deleted;
* ``status``: in the build, but Canvas holds it in another state (a user suspended, an enrollment
  concluded or inactive, a course concluded, ...);
* ``changed``: Canvas holds it as the build says, but a field differs (names, email, login_id, a course's
  names, account or term, a section's course or name, an enrollment's course);
* ``extra``: in use in Canvas and made by an import (``created_by_sis``), but not in the build;
* ``manual``: users and enrollments added by hand (not ``created_by_sis``) that the build does not have.

Rows are paired by the columns Canvas's diffing pairs them by (:data:`~clever2sis.reconcile.expected.KEYS`).
A field the build leaves blank is not compared: Canvas keeps what it has when an import sends nothing
(a blank email, or term_id: ``lib/sis/course_importer.rb`` keeps a course's term then). Names are compared
as Canvas stores them from the row (``UserImporter#infer_user_name`` and ``#infer_sortable_name``,
``lib/sis/user_importer.rb``): ``full_name``, else first and last name joined; the sortable name is only
compared when no ``full_name`` is sent (Canvas then infers it), and the report's ``first_name`` and
``last_name`` are never compared (Canvas derives them from the sortable name, losing commas). Observer
enrollments (``canvas_associated_user_id`` set) come from observer links, not enrollments.csv, and are not
compared; nor are enrollments of courses without a SIS id, nor sections and enrollments of courses that
are concluded or deleted (removing them would only erase history).

Everything is computed by Arrow and numpy over whole columns: each column's values are turned into small
integer codes once (the report's columns are already dictionary-encoded, :mod:`~clever2sis.reconcile.report`),
a row's key becomes one int64, and rows are paired by one hash lookup per file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clever2sis.reconcile.expected import KEYS, Expected
from clever2sis.reconcile.report import TRUE
from clever2sis.sis import files

MISSING = "missing"
STATUS = "status"
CHANGED = "changed"
EXTRA = "extra"
MANUAL = "manual"
KINDS = (MISSING, STATUS, CHANGED, EXTRA, MANUAL)
# The build's derived columns: the name and sortable name Canvas makes of a users.csv row.
CANVAS_NAME = "canvas:name"
CANVAS_SORTABLE_NAME = "canvas:sortable_name"
DRIFT_VALUE_COLUMNS = ("field", "build", "canvas", "canvas_id")
_NO_ROW = -1
_MAX_KEY_SPACE = 1 << 62


@dataclass(frozen=True)
class Compared:
    """A field compared: the build's column (or a derived one) and the report's."""

    build: str
    report: str
    strip: bool = False


@dataclass(frozen=True)
class Rule:
    """How one Canvas file is compared with its report table.

    ``holds``: for each status the build sends, the report's statuses that mean Canvas holds it so;
    ``live``: the report's statuses of an object in use; ``gone``: of an object Canvas no longer has;
    ``addressable``: the report columns an import needs to name the object (a row without them can be
    flagged, not fixed); ``under_course``: only rows whose course is live in the report count.
    """

    name: str
    table: str
    fields: tuple[Compared, ...]
    holds: Mapping[str, frozenset[str]]
    live: frozenset[str]
    canvas_id: str
    addressable: tuple[str, ...]
    gone: frozenset[str] = frozenset({"deleted"})
    flags_manual: bool = False
    under_course: bool = False


RULES: Mapping[str, Rule] = {
    files.COURSES: Rule(
        files.COURSES,
        "courses",
        (
            Compared("short_name", "short_name"),
            Compared("long_name", "long_name"),
            Compared("account_id", "account_id"),
            Compared("term_id", "term_id"),
        ),
        holds={
            "active": frozenset({"unpublished", "active"}),
            "published": frozenset({"active"}),
            "completed": frozenset({"concluded"}),
        },
        live=frozenset({"unpublished", "active"}),
        canvas_id="canvas_course_id",
        addressable=("course_id",),
    ),
    files.SECTIONS: Rule(
        files.SECTIONS,
        "sections",
        (Compared("course_id", "course_id"), Compared("name", "name")),
        holds={"active": frozenset({"active"})},
        live=frozenset({"active"}),
        canvas_id="canvas_section_id",
        addressable=("section_id", "course_id"),
        under_course=True,
    ),
    files.USERS: Rule(
        files.USERS,
        "users",
        (
            Compared("login_id", "login_id"),
            Compared(CANVAS_NAME, "full_name", strip=True),
            Compared(CANVAS_SORTABLE_NAME, "sortable_name", strip=True),
            Compared("email", "email"),
            Compared("integration_id", "integration_id"),
        ),
        holds={"active": frozenset({"active"})},
        live=frozenset({"active"}),
        canvas_id="canvas_user_id",
        addressable=("user_id",),
        flags_manual=True,
    ),
    files.ENROLLMENTS: Rule(
        files.ENROLLMENTS,
        "enrollments",
        (Compared("course_id", "course_id"),),
        holds={"active": frozenset({"active"}), "completed": frozenset({"concluded"})},
        live=frozenset({"active", "invited"}),
        canvas_id="canvas_enrollment_id",
        addressable=("course_id", "user_id"),
        flags_manual=True,
        under_course=True,
    ),
    files.USER_OBSERVERS: Rule(
        files.USER_OBSERVERS,
        "user_observers",
        (),
        holds={"active": frozenset({"active"})},
        live=frozenset({"active"}),
        canvas_id="canvas_observer_id",
        addressable=("observer_id", "student_id"),
    ),
}


# -- columns as integer codes ---------------------------------------------------------------------------


def _dictionary(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(each row's code, the distinct values) of a text column, dictionary-encoded or not."""
    chunked = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    if not pa.types.is_dictionary(chunked.type):
        chunked = pc.dictionary_encode(chunked)
    chunked = chunked.unify_dictionaries()
    if chunked.num_chunks == 0:
        return np.empty(0, dtype=np.int64), pa.array([], pa.large_string())
    dictionary = chunked.chunk(0).dictionary.cast(pa.large_string())
    codes = np.concatenate([chunk.indices.to_numpy(zero_copy_only=False) for chunk in chunked.chunks])
    return codes.astype(np.int64, copy=False), dictionary


def _translated(values: pa.Array, into: pa.Array) -> np.ndarray:
    """The position of each of ``values`` among ``into`` (distinct values), :data:`_NO_ROW` where absent."""
    found = pc.index_in(values, value_set=into)
    return np.asarray(pc.fill_null(found, _NO_ROW).to_numpy(zero_copy_only=False), dtype=np.int64)


def _flags(dictionary: pa.Array, codes: np.ndarray, chosen: frozenset[str] | set[str]) -> np.ndarray:
    """True for each row whose value is one of ``chosen`` (decided once per distinct value)."""
    per_value = np.isin(np.asarray(dictionary.to_pylist(), dtype=object), list(chosen))
    return per_value[codes] if len(codes) else np.zeros(0, dtype=bool)


def _column_codes(table: pa.Table, name: str) -> tuple[np.ndarray, pa.Array]:
    return _dictionary(table.column(name))


@dataclass(frozen=True)
class _Keys:
    """Both sides' keys as int64 (mixed radix over each key column's codes); -1: not a key of the build."""

    expected: np.ndarray
    report: np.ndarray


def _keys(expected: pa.Table, report: pa.Table, key: Sequence[str]) -> _Keys:
    expected_key = np.zeros(expected.num_rows, dtype=np.int64)
    report_key = np.zeros(report.num_rows, dtype=np.int64)
    report_valid = np.ones(report.num_rows, dtype=bool)
    space = 1
    for column in key:
        codes, values = _column_codes(expected, column)
        report_codes, report_values = _column_codes(report, column)
        translated = _translated(report_values, values)[report_codes]
        size = max(len(values), 1)
        space *= size
        if space >= _MAX_KEY_SPACE:
            raise OverflowError(f"key {key} has too many distinct values to be coded in 64 bits")
        expected_key = expected_key * size + codes
        report_valid &= translated >= 0
        report_key = report_key * size + np.where(translated >= 0, translated, 0)
    return _Keys(expected_key, np.where(report_valid, report_key, _NO_ROW))


# -- the comparison ---------------------------------------------------------------------------------------


@dataclass
class FileDrift:
    """One file's drift: positions in the build's present rows (``expected``) and in the report's rows.

    ``sis_live`` is how many objects of the file Canvas holds in use that an import made (what the fix's
    guard compares its removals with).
    """

    rule: Rule
    expected: pa.Table
    report: pa.Table
    missing: np.ndarray
    missing_rows: np.ndarray  # the report row of each missing one (a deleted object), -1 when none
    status: np.ndarray
    status_rows: np.ndarray
    changed: np.ndarray  # (position, report row, field index) per changed field
    extra: np.ndarray
    manual: np.ndarray
    sis_live: int = 0
    addressable_manual: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def counts(self) -> dict[str, int]:
        """Objects per kind (a changed object counts once, however many fields differ)."""
        return {
            MISSING: len(self.missing),
            STATUS: len(self.status),
            CHANGED: len(np.unique(self.changed[:, 0])) if len(self.changed) else 0,
            EXTRA: len(self.extra),
            MANUAL: len(self.manual),
        }

    def resend(self) -> np.ndarray:
        """The positions of the build's rows to send again (missing, in another state, or changed)."""
        changed = self.changed[:, 0] if len(self.changed) else np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate([self.missing, self.status, changed]).astype(np.int64))

    def records(self) -> pd.DataFrame:
        """One row per drifted object (per field for ``changed``): kind, the key, field, both values, and
        Canvas's id; in kind order, then by key and field."""
        key = list(KEYS[self.rule.name])
        parts = [
            self._expected_records(MISSING, self.missing, self.missing_rows),
            self._expected_records(STATUS, self.status, self.status_rows),
            self._changed_records(),
            self._report_records(EXTRA, self.extra),
            self._report_records(MANUAL, self.manual),
        ]
        frame = (
            pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else None
        )
        if frame is None:
            return pd.DataFrame({c: pd.Series([], dtype="str") for c in ["kind", *key, *DRIFT_VALUE_COLUMNS]})
        frame["_kind"] = frame["kind"].map({kind: n for n, kind in enumerate(KINDS)})
        frame = frame.sort_values(["_kind", *key, "field"], kind="stable").drop(columns="_kind")
        return frame.reset_index(drop=True)[["kind", *key, *DRIFT_VALUE_COLUMNS]]

    def _strings(self, table: pa.Table, rows: np.ndarray, column: str) -> list[str]:
        taken = table.column(column).take(pa.array(rows, pa.int64()))
        return pc.cast(taken, pa.large_string()).to_pylist()  # type: ignore[no-any-return]

    def _report_values(self, rows: np.ndarray, column: str) -> list[str]:
        """The report's ``column`` at ``rows`` (empty where a row is -1)."""
        present = rows >= 0
        values = [""] * len(rows)
        for at, value in zip(
            np.flatnonzero(present), self._strings(self.report, rows[present], column), strict=True
        ):
            values[at] = value
        return values

    def _expected_records(self, kind: str, positions: np.ndarray, rows: np.ndarray) -> pd.DataFrame:
        out = {c: self._strings(self.expected, positions, c) for c in KEYS[self.rule.name]}
        return pd.DataFrame(
            {
                "kind": kind,
                **out,
                "field": "status",
                "build": self._strings(self.expected, positions, "status"),
                "canvas": self._report_values(rows, "status"),
                "canvas_id": self._report_values(rows, self.rule.canvas_id),
            },
            index=pd.RangeIndex(len(positions)),
        )

    def _changed_records(self) -> pd.DataFrame:
        parts = []
        for number, compared in enumerate(self.rule.fields):
            chosen = self.changed[self.changed[:, 2] == number] if len(self.changed) else self.changed
            if not len(chosen):
                continue
            positions, rows = chosen[:, 0], chosen[:, 1]
            parts.append(
                pd.DataFrame(
                    {
                        "kind": CHANGED,
                        **{c: self._strings(self.expected, positions, c) for c in KEYS[self.rule.name]},
                        "field": compared.report,
                        "build": self._strings(self.expected, positions, compared.build),
                        "canvas": self._strings(self.report, rows, compared.report),
                        "canvas_id": self._strings(self.report, rows, self.rule.canvas_id),
                    }
                )
            )
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def _report_records(self, kind: str, rows: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "kind": kind,
                **{c: self._strings(self.report, rows, c) for c in KEYS[self.rule.name]},
                "field": "status",
                "build": "",
                "canvas": self._strings(self.report, rows, "status"),
                "canvas_id": self._strings(self.report, rows, self.rule.canvas_id),
            },
            index=pd.RangeIndex(len(rows)),
        )


def with_canvas_names(users: pa.Table) -> pa.Table:
    """``users`` with the name and sortable name Canvas makes of each row (``UserImporter``): values are
    stripped first as Canvas's CSV reader strips them; blank where the row gives Canvas none."""

    def text(name: str) -> pa.ChunkedArray:
        if name in users.column_names:
            return pc.utf8_trim_whitespace(users.column(name).cast(pa.large_string()))
        return pa.chunked_array([pa.nulls(users.num_rows, pa.large_string()).fill_null("")])

    first, last, full = text("first_name"), text("last_name"), text("full_name")
    has_full = pc.not_equal(full, "")
    has_parts = pc.or_(pc.not_equal(first, ""), pc.not_equal(last, ""))
    empty = pa.scalar("", pa.large_string())
    joined = pc.binary_join_element_wise(first, last, pa.scalar(" ", pa.large_string()))
    sortable = pc.binary_join_element_wise(last, first, pa.scalar(", ", pa.large_string()))
    name = pc.if_else(has_full, full, pc.if_else(has_parts, joined, empty))
    sortable_name = pc.if_else(has_full, empty, pc.if_else(has_parts, sortable, empty))
    return users.append_column(CANVAS_NAME, pc.utf8_trim_whitespace(name)).append_column(
        CANVAS_SORTABLE_NAME, pc.utf8_trim_whitespace(sortable_name)
    )


def _firsts(values: np.ndarray) -> np.ndarray:
    """True at the first occurrence of each value (a hash pass; numpy's unique sorts)."""
    return ~pd.Series(values).duplicated(keep="first").to_numpy()


def _unique_rows(table: pa.Table, keys: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    """The first row of each key (Canvas applies each row in turn; a build never repeats one)."""
    first = _firsts(keys)
    if first.all():
        return table, keys
    return table.filter(pa.array(first)), keys[first]


def _text_flags(report: pa.Table, column: str, chosen: frozenset[str] | set[str]) -> np.ndarray:
    codes, values = _column_codes(report, column)
    return _flags(values, codes, chosen)


def _not_blank(report: pa.Table, column: str) -> np.ndarray:
    codes, values = _column_codes(report, column)
    return ~_flags(values, codes, {""})


def _among(report: pa.Table, column: str, values: pa.Array) -> np.ndarray:
    """True for each report row whose ``column`` is one of ``values``."""
    codes, distinct = _column_codes(report, column)
    return _translated(distinct, values)[codes] >= 0 if len(codes) else np.zeros(0, dtype=bool)


def live_courses(courses: pa.Table) -> pa.Array:
    """The SIS ids of the courses the report shows in use (unpublished or active)."""
    live = _text_flags(courses, "course_id", {""})
    live = ~live & _text_flags(courses, "status", RULES[files.COURSES].live)
    ids = pc.cast(courses.column("course_id"), pa.large_string()).filter(pa.array(live))
    unique = pc.unique(ids)
    return unique.combine_chunks() if isinstance(unique, pa.ChunkedArray) else unique


def _changed(
    rule: Rule, expected: pa.Table, report: pa.Table, rows: np.ndarray, positions: np.ndarray
) -> np.ndarray:
    """(position, report row, field number) of each compared field that differs, where the build gives it."""
    found = []
    for number, compared in enumerate(rule.fields):
        if compared.build not in expected.column_names or not len(rows):
            continue
        codes, values = _column_codes(expected, compared.build)
        report_codes, report_values = _column_codes(report, compared.report)
        if compared.strip:
            report_values = pc.utf8_trim_whitespace(report_values)
        as_expected = _translated(report_values, values)[report_codes[rows]]
        blank = _flags(values, codes, {""})[positions]
        differs = (as_expected != codes[positions]) & ~blank
        found.append(np.column_stack([positions[differs], rows[differs], np.full(differs.sum(), number)]))
    return np.concatenate(found).astype(np.int64) if found else np.zeros((0, 3), dtype=np.int64)


def _without_rostered_people(report: pa.Table, manual: np.ndarray, matched: np.ndarray) -> np.ndarray:
    """``manual`` login rows less those of a Canvas user who also holds a login the build has (a second
    login of a rostered person, e.g. one an admin added for another authentication provider)."""
    codes, _ = _column_codes(report, "canvas_user_id")
    return manual[~np.isin(codes[manual], codes[matched])]


def compare_file(rule: Rule, expected: pa.Table, report: pa.Table, *, live_course_ids: pa.Array) -> FileDrift:
    """Compare one file's present rows with its report table (see the module docstring)."""
    if rule.name == files.USERS:
        expected = with_canvas_names(expected)
    keys = _keys(expected, report, KEYS[rule.name])
    expected, expected_keys = _unique_rows(expected, keys.expected)
    found = _translated(pa.array(keys.report, pa.int64()), pa.array(expected_keys, pa.int64()))
    found[keys.report < 0] = _NO_ROW
    if rule.name == files.ENROLLMENTS:
        found[_not_blank(report, "canvas_associated_user_id")] = _NO_ROW
    rows = np.flatnonzero(found >= 0)
    positions = found[rows]

    status_codes, status_values = _column_codes(report, "status")
    sent_codes, sent_values = _column_codes(expected, "status")
    holds = np.array(
        [[value in rule.holds.get(sent, frozenset()) for value in status_values.to_pylist()]
         for sent in sent_values.to_pylist()],
        dtype=bool,
    ).reshape(len(sent_values), len(status_values))  # fmt: skip
    row_holds = holds[sent_codes[positions], status_codes[rows]] if len(rows) else np.zeros(0, dtype=bool)
    held = np.zeros(expected.num_rows, dtype=bool)
    held[positions[row_holds]] = True
    first_row = np.full(expected.num_rows, _NO_ROW, dtype=np.int64)
    first = _firsts(positions)
    first_row[positions[first]] = rows[first]
    gone = np.append(_flags(status_values, status_codes, rule.gone), True)  # the last: no report row
    unheld = np.flatnonzero(~held)
    unheld_rows = first_row[unheld]
    absent = gone[unheld_rows]  # -1 picks the appended True

    live = _flags(status_values, status_codes, rule.live)
    by_sis = _text_flags(report, "created_by_sis", {TRUE})
    in_scope = np.ones(report.num_rows, dtype=bool)
    if rule.name == files.ENROLLMENTS:
        in_scope &= ~_not_blank(report, "canvas_associated_user_id")
    if rule.under_course:
        in_scope &= _among(report, "course_id", live_course_ids)
    addressable = np.ones(report.num_rows, dtype=bool)
    for column in rule.addressable:
        addressable &= _not_blank(report, column)
    candidates = (found < 0) & in_scope & live
    manual = np.zeros(0, dtype=np.int64)
    if rule.flags_manual:
        manual = np.flatnonzero(candidates & ~by_sis)
        if rule.name == files.USERS:
            manual = _without_rostered_people(report, manual, rows)
    return FileDrift(
        rule=rule,
        expected=expected,
        report=report,
        missing=unheld[absent],
        missing_rows=unheld_rows[absent],
        status=unheld[~absent],
        status_rows=unheld_rows[~absent],
        changed=_changed(rule, expected, report, rows[row_holds], positions[row_holds]),
        extra=np.flatnonzero(candidates & by_sis & addressable),
        manual=manual,
        sis_live=int((in_scope & by_sis & live).sum()),
        addressable_manual=manual[addressable[manual]],
    )


@dataclass(frozen=True)
class Drift:
    """Every compared file's drift, in Canvas's file order."""

    files: Mapping[str, FileDrift]

    def counts(self) -> dict[str, dict[str, int]]:
        return {name: drift.counts() for name, drift in self.files.items()}

    def totals(self) -> dict[str, int]:
        return {kind: sum(drift.counts()[kind] for drift in self.files.values()) for kind in KINDS}

    def fixable(self, *, remove_manual: bool = False) -> int:
        """How many objects a fix would send: all but manual ones (unless they are to be removed)."""
        totals = self.totals()
        manual = sum(len(d.addressable_manual) for d in self.files.values()) if remove_manual else 0
        return sum(totals[kind] for kind in (MISSING, STATUS, CHANGED, EXTRA)) + manual


def compare(expected: Expected, report: Mapping[str, pa.Table]) -> Drift:
    """Compare every file the build manages with its report table (``report``: table name → rows)."""
    live_course_ids = live_courses(report["courses"])
    out = {}
    for name in files.FILE_ORDER:
        if name in RULES and name in expected.managed:
            rule = RULES[name]
            out[name] = compare_file(
                rule, expected.tables[name], report[rule.table], live_course_ids=live_course_ids
            )
    return Drift(out)
