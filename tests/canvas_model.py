"""The state of one Canvas root account as a sequence of SIS imports leaves it, for tests to judge.

A test double of canvas-lms's SIS CSV importer, restated in Python from the canvas-lms sources and its public
SIS CSV format doc (``doc/api/sis_csv.md``). Each behaviour below names the canvas-lms file it follows; the
model keeps the objects imports create (accounts, terms, courses, sections, users with their logins,
enrollments, observer links) and applies each import as Canvas does:

* the attachment: every ``.csv`` of the zip, its type decided by its header (first predicate wins,
  ``lib/sis/csv/import_refactored.rb``), values stripped and blanks read as nothing
  (``lib/sis/csv/csv_base_importer.rb``), rows numbered from 2 (the header is line 1);
* diffing against the data set's baseline (``app/models/sis_batch.rb`` ``generate_diff``,
  ``lib/sis/csv/diff_generator.rb``, ``gems/csv_diff/lib/csv_diff/diff.rb``);
* the importers in Canvas's order: change_sis_id, accounts, terms, courses, sections, users, enrollments,
  user_observers (``lib/sis/*_importer.rb``), each row's warning worded as the code words it;
* batch mode's cleanup and its ``change_threshold`` abort (``SisBatch#remove_previous_imports``);
* the outcome, capped messages and counts (``SisBatch#finalize_workflow_state``,
  ``#populate_old_warnings_and_errors``);
* admins.csv (``lib/sis/admin_importer.rb``): account admins an import makes (SIS-managed) beside the ones
  a test adds as an admin would in Canvas's UI (:meth:`CanvasModel.add_manual_admin`), which a ``deleted``
  row never removes;
* the Terms API's date overrides (``app/controllers/terms_controller.rb``, ``EnrollmentTerm#set_overrides``
  and ``#enrollment_dates_for``, ``app/models/enrollment_term.rb``): :meth:`CanvasModel.set_term_overrides`
  and the access dates of an enrollment (:meth:`CanvasModel.access_dates`).

Not modelled (a row of these raises :class:`UnmodelledFileError` so a test never silently passes over
them): abstract courses, cross-listings, logins.csv, groups, terms.csv's date overrides. Objects are plain
dicts of dataclasses keyed by an internal Canvas id, with indexes by SIS id, so a 300-student district over
30 nights takes a few seconds. An admin made by hand (:meth:`CanvasModel.add_manual_admin`) is the
``ui_*`` methods' kind of change, below.

Changes made by hand in Canvas (its UI or API, not an import) are the ``ui_*`` methods: they make what they
change sticky, as ``StickySisFields`` does (``lib/sticky_sis_fields.rb``), so later imports leave those
fields alone unless they set ``override_sis_stickiness`` (``clear_sis_stickiness`` then un-sticks them,
``add_sis_stickiness`` sticks what the import set). Sticky here: a login's ``unique_id`` and
``workflow_state`` (``app/models/pseudonym.rb``), a user's ``name`` and ``sortable_name``, a course's term
and account. An object made by hand has no SIS batch (``created_by_sis`` false in the provisioning report,
:meth:`CanvasModel.provisioning_report`, which renders the account as ``lib/account_reports/sis_exporter.rb``
of the account_reports plugin does).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clever2sis.sis.builders.logins import printable
from clever2sis.sis.emails import canvas_accepts_email
from tests.canvas_rules import DETECTION

Row = dict[str, str | None]
Key = tuple[str | None, ...]

# Pseudonym::MAX_UNIQUE_ID_LENGTH (app/models/pseudonym.rb).
MAX_UNIQUE_ID_LENGTH = 100
# SisBatch#populate_old_warnings_and_errors keeps this many of each kind on the import.
MESSAGES_SHOWN = 24
# lib/sis/csv/import_refactored.rb IMPORTERS: the order files are processed in, whatever the zip's order.
IMPORTERS = (
    "change_sis_id",
    "account",
    "term",
    "abstract_course",
    "course",
    "section",
    "xlist",
    "user",
    "login",
    "enrollment",
    "admin",
    "group_category",
    "group",
    "group_membership",
    "grade_publishing_results",
    "user_observer",
)
MODELLED = frozenset(
    {"change_sis_id", "account", "term", "course", "section", "user", "enrollment", "admin", "user_observer"}
)
COUNT_KEYS = {
    "change_sis_id": "change_sis_ids",
    "account": "accounts",
    "term": "terms",
    "abstract_course": "abstract_courses",
    "course": "courses",
    "section": "sections",
    "xlist": "xlists",
    "user": "users",
    "login": "logins",
    "enrollment": "enrollments",
    "admin": "admins",
    "group_category": "group_categories",
    "group": "groups",
    "group_membership": "group_memberships",
    "grade_publishing_results": "grade_publishing_results",
    "user_observer": "user_observers",
}
# Each importer's identifying_fields (lib/sis/csv/*_importer.rb): what the diff pairs rows by.
IDENTIFYING_FIELDS: dict[str, tuple[str, ...]] = {
    "change_sis_id": ("old_id", "old_integration_id"),
    "account": ("account_id",),
    "term": ("term_id",),
    "course": ("course_id",),
    "section": ("section_id",),
    "user": ("user_id",),
    "enrollment": (
        "course_id",
        "section_id",
        "user_id",
        "user_integration_id",
        "role",
        "role_id",
        "associated_user_id",
        "temporary_enrollment_source_user_id",
    ),
    "admin": ("user_id", "account_id"),
    "user_observer": ("observer_id",),
}
# lib/sis/csv/diff_generator.rb: the statuses the diff may give vanished rows instead of "deleted".
VALID_ENROLLMENT_DROP_STATUS = ("deleted", "inactive", "completed", "deleted_last_completed")
VALID_USER_REMOVE_STATUS = ("deleted", "suspended")
VALID_USER_STATUSES = ("active", "suspended", "deleted")
SUCCEEDED = frozenset({"imported", "imported_with_messages"})
# lib/sis/csv/import_refactored.rb IGNORE_FILES, matched on each file's name.
IGNORED_FILE = re.compile(r"__macosx|desktop d[bf]|\A\..*", re.IGNORECASE)
# Ruby's String#strip: whitespace and NUL.
RUBY_STRIP = " \t\n\v\f\r\0"
BUILT_IN_ROLES = (
    (re.compile(r"\Ateacher\Z", re.IGNORECASE), "TeacherEnrollment", "teacher"),
    (re.compile(r"\Astudent", re.IGNORECASE), "StudentEnrollment", "student"),
    (re.compile(r"\Ata\Z", re.IGNORECASE), "TaEnrollment", "ta"),
    (re.compile(r"\Aobserver\Z", re.IGNORECASE), "ObserverEnrollment", "observer"),
    (re.compile(r"\Adesigner\Z", re.IGNORECASE), "DesignerEnrollment", "designer"),
)
BOOLEAN_TRUE = frozenset({"1", "true", "on", "yes"})
# The provisioning report (lib/account_reports/sis_exporter.rb): its words for course and enrollment states,
# and the ids the model gives what it does not hold as objects (the root account, the default term, roles).
COURSE_REPORT_STATES = {
    "claimed": "unpublished",
    "created": "unpublished",
    "available": "active",
    "completed": "concluded",
    "deleted": "deleted",
}
ENROLLMENT_REPORT_STATES = {
    "invited": "invited",
    "creation_pending": "invited",
    "active": "active",
    "completed": "concluded",
    "inactive": "inactive",
    "deleted": "deleted",
    "rejected": "rejected",
}
ROOT_ACCOUNT_CANVAS_ID = 1
DEFAULT_TERM_CANVAS_ID = 1
ROLE_IDS = {
    "StudentEnrollment": 3,
    "TeacherEnrollment": 4,
    "TaEnrollment": 5,
    "DesignerEnrollment": 6,
    "ObserverEnrollment": 7,
}
CUSTOM_ROLE_ID = 20
# User::SUFFIXES (app/models/user.rb).
NAME_SUFFIXES = re.compile(r"^(Sn?r\.?|Senior|Jn?r\.?|Junior|II|III|IV|V|VI|Esq\.?|Esquire)$", re.IGNORECASE)
# The one built-in account role (Account#available_account_roles, app/models/account.rb).
ACCOUNT_ADMIN = "AccountAdmin"
# The enrollment types a term date override may name (TermsController#save_and_render_response), and those
# whose access starts "whenever" without one (Enrollment#admin?: teachers, TAs and designers).
OVERRIDE_TYPES = ("StudentEnrollment", "TeacherEnrollment", "TaEnrollment", "DesignerEnrollment")
ADMIN_ENROLLMENT_TYPES = frozenset({"TeacherEnrollment", "TaEnrollment", "DesignerEnrollment"})


class UnmodelledFileError(Exception):
    """The import holds a file type the model does not apply (admins, groups, cross-listings...)."""


class RowError(Exception):
    """One row refused with Canvas's warning (canvas-lms raises ``ImportError`` for these)."""


# -- what an import is and did --------------------------------------------------------------------------------


@dataclass
class CsvFile:
    """One CSV as Canvas reads it: lower-cased headers (``None`` for a blank cell), stripped values."""

    path: str
    importer: str
    headers: list[str | None]
    rows: list[Row]
    size: int = 0


@dataclass(frozen=True)
class Message:
    """A ``SisBatchError``: ``row`` is the line in the file Canvas read (header = 1), ``None`` for a file."""

    file: str | None
    message: str
    row: int | None = None
    failure: bool = False


@dataclass(frozen=True)
class StateChange:
    """An object's ``workflow_state`` moved (``before`` is ``None`` when the import created it)."""

    kind: str
    key: Key
    before: str | None
    after: str


@dataclass(frozen=True)
class CourseworkEvent:
    """Something happened to a course a test marked as holding coursework."""

    import_id: int
    course_id: str
    event: str  # "deleted" or "section_moved"
    detail: str = ""


@dataclass
class ImportRecord:
    """One SIS import: what was posted, what the importers ran, and what it did."""

    id: int
    options: Mapping[str, Any]
    files: list[CsvFile] = field(default_factory=list)
    size: int = 0
    mode: str = "plain"  # plain, batch, first, remaster, diffing
    identifier: str | None = None
    remaster: bool = False
    generated_diff: bool = False
    diffed_against: int | None = None
    threshold_exceeded: bool | None = None
    applied: list[CsvFile] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    changes: list[StateChange] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {key: 0 for key in COUNT_KEYS.values()})
    aborted: bool = False
    workflow_state: str = "importing"

    @property
    def supplied_batches(self) -> list[str]:
        present = {csv_file.importer for csv_file in self.applied}
        return [name for name in IMPORTERS if name in present]

    @property
    def warnings(self) -> list[Message]:
        return [m for m in self.messages if not m.failure]

    @property
    def failures(self) -> list[Message]:
        return [m for m in self.messages if m.failure]

    def processing(self, failures: bool) -> list[list[str | None]]:
        """``processing_errors`` / ``processing_warnings``: 24 pairs and a trailer (SisBatch)."""
        chosen = self.failures if failures else self.warnings
        pairs: list[list[str | None]] = [[m.file, m.message] for m in chosen[:MESSAGES_SHOWN]]
        if len(chosen) > MESSAGES_SHOWN:
            kind = "errors" if failures else "warnings"
            pairs.append(
                [
                    f"and {len(chosen) - MESSAGES_SHOWN} more {kind} that were not included",
                    f"Download the error file to see all {kind}.",
                ]
            )
        return pairs

    def rows(self, importer: str) -> list[Row]:
        """The rows the ``importer`` ran in this import (the diff's rows when the import was diffed)."""
        return [row for f in self.applied if f.importer == importer for row in f.rows]

    def changed(self, kind: str) -> dict[Key, str]:
        """Each object of ``kind`` whose state this import changed, and the state it ended in."""
        return {c.key: c.after for c in self.changes if c.kind == kind}


# -- reading the attachment ----------------------------------------------------------------------------------


def _ruby_strip(value: str) -> str | None:
    value = value.strip(RUBY_STRIP)
    return value or None


def detect(header: Iterable[str | None]) -> str | None:
    """The importer whose predicate the header matches first (lib/sis/csv/import_refactored.rb)."""
    names = {h.strip().lower() for h in header if h is not None}
    return next((name for name, predicate in DETECTION if predicate(names)), None)


def parse_csv(path: str, data: bytes, messages: list[Message]) -> CsvFile | None:
    """One file of the attachment as Canvas's importers see it, or ``None`` with the failure it gave.

    ``lib/sis/csv/import_refactored.rb``: invalid UTF-8, malformed CSV and an unrecognised header are
    failures; ``lib/sis/csv/csv_base_importer.rb`` PARSE_ARGS: a BOM is dropped, headers lower-cased (not
    stripped), values stripped with blanks read as nothing, empty lines skipped, and rows whose every value
    is blank skipped too (``csv_rows``).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        messages.append(Message(path, "Invalid UTF-8", failure=True))
        return None
    try:
        lines = [line for line in csv.reader(io.StringIO(text, newline=""), strict=True) if line]
    except csv.Error:
        messages.append(Message(path, "Malformed CSV", failure=True))
        return None
    importer = detect(lines[0]) if lines else None
    if importer is None:
        messages.append(Message(path, "Couldn't find Canvas CSV import headers", failure=True))
        return None
    headers = [cell.lower() if cell != "" else None for cell in lines[0]]
    rows: list[Row] = []
    for line in lines[1:]:
        row: Row = {}
        for header, cell in zip(headers, line, strict=False):
            if header is not None and header not in row:
                row[header] = _ruby_strip(cell)
        for header in headers:
            if header is not None:
                row.setdefault(header, None)
        if any(value is not None for value in row.values()):
            rows.append(row)
    return CsvFile(path, importer, headers, rows, len(data))


def read_attachment(data: bytes, filename: str, messages: list[Message]) -> tuple[list[CsvFile], int]:
    """The CSVs of an upload (a zip, or one CSV) and its uncompressed size (``CanvasUnzip``).

    Names matching IGNORE_FILES are skipped silently, other non-CSV files with ``Skipping unknown file
    type``, empty files silently (lib/sis/csv/import_refactored.rb). Files of a zip are read in path order.
    """
    if not zipfile.is_zipfile(io.BytesIO(data)):
        parsed = parse_csv(filename, data, messages) if data else None
        return ([parsed] if parsed else []), len(data)
    files: list[CsvFile] = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = sorted((i for i in archive.infolist() if not i.is_dir()), key=lambda i: i.filename)
        size = sum(info.file_size for info in infos)
        for info in infos:
            name = info.filename.rsplit("/", 1)[-1]
            if any(IGNORED_FILE.search(part) for part in (*info.filename.split("/")[:-1], name)):
                continue
            if not name.lower().endswith(".csv"):
                messages.append(Message(info.filename, "Skipping unknown file type"))
                continue
            if info.file_size == 0:
                continue
            parsed = parse_csv(info.filename, archive.read(info), messages)
            if parsed is not None:
                files.append(parsed)
    return files, size


# -- diffing ------------------------------------------------------------------------------------------------


class DiffFailure(Exception):
    """``CsvDiff::Failure``: the two files cannot be diffed."""


def diff_csv(previous: CsvFile, current: CsvFile, delete_status: str) -> CsvFile:
    """``CsvDiff::Diff#generate`` (gems/csv_diff/lib/csv_diff/diff.rb) on two files of one type.

    Rows of each file are stored by their identifying fields with ``insert or replace``, so of several rows
    sharing a key only the last counts, in the previous file and the current alike (user_observers are keyed
    by ``observer_id`` alone: one parent's links collapse to one row). New or changed rows come out as they
    are, in the current file's order; rows whose key vanished come out after them with ``status`` set to
    ``delete_status``; identical rows are dropped.
    """
    if not previous.headers or not current.headers:
        raise DiffFailure("CSVs given must have headers enabled, pass :headers => true to CSV constructor")
    previous_names = sorted(h for h in previous.headers if h is not None)
    canonical = [h for h in current.headers if h is not None]
    if previous_names != sorted(canonical):
        raise DiffFailure("CSV headers do not match, cannot diff")
    key_fields = IDENTIFYING_FIELDS[current.importer]
    if not set(previous.headers) & set(key_fields):
        raise DiffFailure("At least one primary key field must be present")

    def stored(csv_file: CsvFile) -> dict[Key, tuple[str | None, ...]]:
        table: dict[Key, tuple[str | None, ...]] = {}
        for row in csv_file.rows:
            key = tuple(row.get(k) for k in key_fields)
            table.pop(key, None)  # insert or replace: the replacing row takes a new rowid, at the end
            table[key] = tuple(row.get(h) for h in canonical)
        return table

    old, new = stored(previous), stored(current)
    out: list[Row] = [
        dict(zip(canonical, data, strict=True)) for key, data in new.items() if old.get(key) != data
    ]
    for key, data in old.items():
        if key not in new:
            row = dict(zip(canonical, data, strict=True))
            if "status" in row:
                row["status"] = delete_status
            out.append(row)
    return CsvFile(current.path, current.importer, list(canonical), out, current.size)


def _delete_status(importer: str, options: Mapping[str, Any]) -> str:
    """The status vanished rows get (lib/sis/csv/diff_generator.rb ``generate_csvs``)."""
    if importer == "enrollment" and options.get("diffing_drop_status") in VALID_ENROLLMENT_DROP_STATUS:
        return str(options["diffing_drop_status"])
    if importer == "user" and options.get("diffing_user_remove_status") in VALID_USER_REMOVE_STATUS:
        return str(options["diffing_user_remove_status"])
    return "deleted"


def generate_csvs(
    previous: list[CsvFile], current: list[CsvFile], options: Mapping[str, Any], messages: list[Message]
) -> tuple[list[CsvFile], int]:
    """``SIS::CSV::DiffGenerator#generate_csvs`` (lib/sis/csv/diff_generator.rb): the files to import and
    their row count.

    A type absent from the previous import passes through whole (and a type absent from the current one
    produces nothing: no deletes). Several files of a type are paired by file name; files that do not pair,
    or a diff that fails, pass the type's files through whole with the warning Canvas gives.
    """
    generated: list[CsvFile] = []
    row_count = 0  # only diffed files count: a file passed through whole has no row_count in Canvas
    for importer in IMPORTERS:
        csvs = [f for f in current if f.importer == importer]
        previous_of_type = [f for f in previous if f.importer == importer]
        if not csvs or not previous_of_type:
            generated.extend(csvs)
            continue
        pairs: dict[int, CsvFile] = {}
        if len(csvs) == len(previous_of_type):
            if len(csvs) == 1:
                pairs[0] = previous_of_type[0]
            elif len({f.path for f in csvs}) == len(csvs):
                for index, csv_file in enumerate(csvs):
                    match = next((p for p in previous_of_type if p.path == csv_file.path), None)
                    if match is not None:
                        pairs[index] = match
        if len(pairs) != len(csvs):
            text = f"Unable to perform diffing against mismatched previous and current {importer} imports"
            messages.append(Message(csvs[0].path, text))
            generated.extend(csvs)
            continue
        try:
            for index, csv_file in enumerate(csvs):
                diffed = diff_csv(pairs[index], csv_file, _delete_status(importer, options))
                generated.append(diffed)
                row_count += len(diffed.rows)
        except DiffFailure as failure:
            messages.append(Message(csvs[0].path, f"Couldn't generate diff: {failure}"))
            generated.extend(csvs)
    return generated, row_count


def file_diff_percent(current_size: int, previous_size: int) -> float:
    """``SisBatch#file_diff_percent``: how far the attachment's uncompressed size moved, in percent."""
    if previous_size == 0:
        return 0.0 if current_size == 0 else float("inf")
    return abs(1 - current_size / previous_size) * 100


# -- the default email rule ------------------------------------------------------------------------------------


def default_email_valid(value: str) -> bool:
    """``EmailAddressValidator.valid?`` (lib/email_address_validator.rb with the mail gem 2.8.1): the product's
    own rule, clever2sis.sis.emails.canvas_accepts_email. The model takes it rather than a rule of its own
    because the rule is checked independently, against the Ruby gem itself (tests/test_emails_ruby.py). Pass
    ``email_valid=`` to :class:`CanvasModel` to use another rule.
    """
    return canvas_accepts_email(value)


# -- the objects --------------------------------------------------------------------------------------------


@dataclass
class Account:
    id: int
    sis_id: str | None
    parent: int | None  # None: the root account
    name: str | None
    state: str = "active"
    integration_id: str | None = None
    batch: int | None = None


@dataclass
class Override:
    """An ``EnrollmentDatesOverride``: one enrollment type's dates in a term (``None``: not set)."""

    start: str | None = None
    end: str | None = None


@dataclass
class Term:
    id: int
    sis_id: str | None
    name: str | None
    state: str = "active"
    start: str | None = None
    end: str | None = None
    integration_id: str | None = None
    batch: int | None = None
    overrides: dict[str, Override] = field(default_factory=dict)


@dataclass
class Course:
    id: int
    sis_id: str | None
    short_name: str | None
    long_name: str | None
    account: int | None  # None: the root account
    term: int | None  # None: the default term
    state: str = "claimed"
    start: str | None = None
    end: str | None = None
    integration_id: str | None = None
    batch: int | None = None
    coursework: bool = False
    stuck: set[str] = field(default_factory=set)  # fields changed by hand: "enrollment_term_id", "account_id"


@dataclass
class Section:
    id: int
    sis_id: str | None  # None: the course's default section
    course: int
    name: str | None
    state: str = "active"
    start: str | None = None
    end: str | None = None
    integration_id: str | None = None
    batch: int | None = None


@dataclass
class User:
    id: int
    name: str | None = None
    sortable_name: str | None = None
    short_name: str | None = None
    email: str | None = None
    stuck: set[str] = field(default_factory=set)  # fields changed by hand: "name", "sortable_name"


@dataclass
class Pseudonym:
    id: int
    user: int
    login: str
    sis_user_id: str | None
    provider: str | None = None
    state: str = "active"
    integration_id: str | None = None
    batch: int | None = None
    stuck: set[str] = field(default_factory=set)  # fields changed by hand: "unique_id", "workflow_state"


@dataclass
class Enrollment:
    id: int
    user: int
    course: int
    section: int
    type: str  # StudentEnrollment, ...
    role: str  # the CSV's role word for built-in roles, the custom role's name otherwise
    associated_user: int | None
    state: str = "active"
    batch: int | None = None


@dataclass
class AccountUser:
    """An account admin: ``account`` None is the root account; ``batch`` None: made in Canvas's UI (not by an
    import), so a ``deleted`` row never removes it."""

    id: int
    account: int | None
    user: int
    role: str
    state: str = "active"
    batch: int | None = None


@dataclass
class ObserverLink:
    id: int
    observer: int
    student: int
    state: str = "active"
    batch: int | None = None


@dataclass(frozen=True)
class EnrollmentView:
    course_id: str | None
    section_id: str | None  # None: the course's default section
    user_id: str | None
    role: str
    associated_user_id: str | None
    state: str


def _flag(options: Mapping[str, Any], name: str) -> bool:
    """Rails ``value_to_boolean`` on a posted option ("1", "true", "on", "yes")."""
    value = options.get(name)
    return value is True or (isinstance(value, str) and value.lower() in BOOLEAN_TRUE)


def _number(options: Mapping[str, Any], name: str) -> int | None:
    value = options.get(name)
    return int(value) if value not in (None, "", False) else None


def _matches(pattern: str, value: str | None) -> bool:
    return value is not None and re.search(pattern, value, re.IGNORECASE) is not None


def _date(value: str | None) -> str | None:
    """A date cell as Canvas keeps it, or ``ValueError`` when ``Time.zone.parse`` would refuse it."""
    if value is None or value == "<delete>":
        return None
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        if not re.match(
            r"\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?\s*(?:Z|[+-]\d{2}:?\d{2})?\Z", value
        ):
            raise
    return value


def _date_ok(value: str | None) -> bool:
    try:
        _date(value)
    except ValueError:
        return False
    return True


@dataclass
class _Import:
    """The import being applied: its record, its options, and the file and row being read."""

    record: ImportRecord
    options: Mapping[str, Any]
    file: str | None = None
    row: int | None = None
    deferred: list[Callable[[], object]] = field(default_factory=list)  # work an importer does after its file

    def warn(self, message: str) -> None:
        self.record.messages.append(Message(self.file, message, self.row))

    @property
    def skip_deletes(self) -> bool:
        return _flag(self.options, "skip_deletes")


def _s(value: str | None) -> str:
    """A value as Ruby interpolates it (``nil`` reads as nothing)."""
    return "" if value is None else value


def _ruby_csv_value(value: object) -> object:
    """A value as Ruby's CSV writes it: ``nil`` empty, ``true``/``false`` in lower case."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _last_name_first(name: str | None) -> str | None:
    """``User.last_name_first`` for a name given whole (app/models/user.rb), for plain names: the last word,
    a comma, the words before it."""
    words = (name or "").split()
    return " ".join(words) if len(words) < 2 else f"{words[-1]}, {' '.join(words[:-1])}"


def _infer_sortable_name(row: Row, prior: str | None, name: str | None) -> str | None:
    """``UserImporter#infer_sortable_name`` (lib/sis/user_importer.rb): the row's ``sortable_name``; with a
    ``full_name``, what the User model infers from the name; else ``[last_name, first_name].join(", ")``;
    else the prior one."""
    if row.get("sortable_name"):
        return row["sortable_name"]
    if row.get("full_name"):
        return _last_name_first(name)
    if row.get("first_name") or row.get("last_name"):
        return ", ".join(_s(row.get(k)) for k in ("last_name", "first_name"))
    return prior


def name_parts(sortable_name: str | None) -> tuple[str, str]:
    """(first, last) as ``User.name_parts(sortable_name, likely_already_surname_first: true)`` splits them
    for the provisioning report (app/models/user.rb): surname, given and a suffix, split on commas."""
    if sortable_name is None:
        return "", ""
    stripped = sortable_name.strip()
    pieces: list[str | None] = [*re.split(r"\s*,\s*", stripped, maxsplit=2), None, None]
    surname, given, suffix = pieces[:3]
    if suffix is not None and not NAME_SUFFIXES.match(suffix):
        given, suffix = f"{given} {suffix}", None
    if given is None:
        given, surname = stripped, None
    given_parts = given.split()
    if suffix is None and len(given_parts) > 1 and NAME_SUFFIXES.match(given_parts[-1]):
        given_parts.pop()
    if surname is None and len(given_parts) > 1:
        surname = given_parts.pop()
    return " ".join(given_parts), surname or ""


class CanvasModel:
    """One Canvas root account's SIS objects, changed by :meth:`apply` as canvas-lms applies an import.

    ``email_valid`` decides which email addresses users.csv may set (``EmailAddressValidator``);
    ``authentication_providers`` lists the provider ids the account has (``None``: any id names one);
    ``custom_roles`` maps custom course role names to their base type (``"StudentEnrollment"``...);
    ``account_roles`` names the custom account roles the root account has (beside ``AccountAdmin``).
    """

    def __init__(
        self,
        *,
        email_valid: Callable[[str], bool] = default_email_valid,
        authentication_providers: Collection[str] | None = None,
        custom_roles: Mapping[str, str] | None = None,
        account_roles: Collection[str] = (),
    ) -> None:
        self.email_valid = email_valid
        self.authentication_providers = (
            None if authentication_providers is None else set(authentication_providers)
        )
        self.custom_roles = dict(custom_roles or {})
        self.account_roles = frozenset(account_roles)
        self.account_users: dict[int, AccountUser] = {}
        self.accounts: dict[int, Account] = {}
        self.terms: dict[int, Term] = {}
        self.courses: dict[int, Course] = {}
        self.sections: dict[int, Section] = {}
        self.users: dict[int, User] = {}
        self.pseudonyms: dict[int, Pseudonym] = {}
        self.enrollments: dict[int, Enrollment] = {}
        self.links: dict[int, ObserverLink] = {}
        self.imports: list[ImportRecord] = []
        self.coursework_events: list[CourseworkEvent] = []
        self._next_id = 1
        self._sis: dict[str, dict[str, int]] = {kind: {} for kind in ("account", "term", "course", "section")}
        self._pseudo_by_sis: dict[str, int] = {}
        self._pseudo_by_integration: dict[str, int] = {}
        self._logins: dict[str, set[int]] = {}
        self._user_pseudos: dict[int, list[int]] = {}
        self._enrollment_by_key: dict[tuple[int, int, str, str, int | None], int] = {}
        self._user_enrollments: dict[int, set[int]] = {}
        self._section_enrollments: dict[int, set[int]] = {}
        self._course_enrollments: dict[int, set[int]] = {}
        self._default_sections: dict[int, int] = {}
        self._link_by_pair: dict[tuple[int, int], int] = {}
        self._student_links: dict[int, set[int]] = {}
        self._current: _Import | None = None

    # -- queries ------------------------------------------------------------------------------------------

    def account(self, account_id: str | None) -> Account | None:
        found = self._sis["account"].get(_s(account_id))
        return self.accounts[found] if found is not None else None

    def term(self, term_id: str | None) -> Term | None:
        found = self._sis["term"].get(_s(term_id))
        return self.terms[found] if found is not None else None

    def course(self, course_id: str | None) -> Course | None:
        found = self._sis["course"].get(_s(course_id))
        return self.courses[found] if found is not None else None

    def section(self, section_id: str | None) -> Section | None:
        found = self._sis["section"].get(_s(section_id))
        return self.sections[found] if found is not None else None

    def course_status(self, course_id: str) -> str | None:
        course = self.course(course_id)
        return course.state if course else None

    def course_term(self, course_id: str) -> str | None:
        """The SIS id of the course's term; ``None`` for the default term (or an unknown course)."""
        course = self.course(course_id)
        return self.terms[course.term].sis_id if course and course.term is not None else None

    def section_course(self, section_id: str) -> str | None:
        section = self.section(section_id)
        return self.courses[section.course].sis_id if section else None

    def course_account(self, course_id: str) -> str | None:
        """The SIS id of the course's account; ``None`` for the root account (or an unknown course)."""
        course = self.course(course_id)
        return self.accounts[course.account].sis_id if course and course.account is not None else None

    def course_sections(self, course_id: str, states: Collection[str] = ("active",)) -> list[str]:
        """The SIS ids of the course's sections in ``states``, in creation order (default sections left out)."""
        course = self.course(course_id)
        return [
            section.sis_id
            for section in self.sections.values()
            if course is not None
            and section.course == course.id
            and section.sis_id is not None
            and section.state in states
        ]

    def user_status(self, user_id: str) -> str | None:
        """The state of the login carrying SIS id ``user_id``: active, suspended, deleted, or ``None``."""
        pseudo = self._pseudo(user_id)
        return pseudo.state if pseudo else None

    def user_states(self) -> dict[str, str]:
        """The state of every login carrying a SIS id, by that id."""
        return {p.sis_user_id: p.state for p in self.pseudonyms.values() if p.sis_user_id is not None}

    def canvas_user_id(self, user_id: str) -> int | None:
        """The Canvas id of the user whose login carries SIS id ``user_id``. It stays when the SIS id changes
        (change_sis_id, a re-pointed login): the same number is the same person, with their coursework."""
        pseudo = self._pseudo(user_id)
        return pseudo.user if pseudo else None

    def login_holders(self, login: str) -> list[tuple[str | None, str]]:
        """(SIS id, state) of every login named ``login`` (case-insensitively), deleted ones included."""
        return [(p.sis_user_id, p.state) for p in self._pseudos_by_login(login)]

    def logins(self, user_id: str) -> list[tuple[str, str | None, str, str | None]]:
        """Every login of the Canvas user holding SIS id ``user_id``: (login, provider, state, SIS id)."""
        pseudo = self._pseudo(user_id)
        if pseudo is None:
            return []
        found = (self.pseudonyms[p] for p in self._user_pseudos[pseudo.user])
        return [(p.login, p.provider, p.state, p.sis_user_id) for p in found]

    def email(self, user_id: str) -> str | None:
        pseudo = self._pseudo(user_id)
        return self.users[pseudo.user].email if pseudo else None

    def signs_in_as(self, login: str, provider: str | None = None) -> str | None:
        """Who a person typing ``login`` signs in as: the SIS id of the one active login of that name.

        ``Pseudonym.active_only`` (app/models/pseudonym.rb): suspended and deleted logins sign no one in;
        logins of one name held by two users sign in neither.
        """
        found = [p for p in self._pseudos_by_login(login) if p.state == "active" and p.provider == provider]
        if len({p.user for p in found}) != 1:
            return None
        return found[0].sis_user_id

    def enrollment_views(self, states: Collection[str] | None = None) -> list[EnrollmentView]:
        """Every enrollment (or those in ``states``) by SIS ids, in creation order."""
        return [self._view(e) for e in self.enrollments.values() if states is None or e.state in states]

    def active_enrollments(self) -> frozenset[tuple[str | None, str | None, str]]:
        """(section_id, user_id, role) of each active enrollment; ``None`` names a default section."""
        return frozenset(
            (view.section_id, view.user_id, view.role) for view in self.enrollment_views(("active",))
        )

    def enrollment_state(
        self,
        section_id: str | None,
        user_id: str,
        role: str,
        *,
        course_id: str | None = None,
        associated_user_id: str | None = None,
    ) -> str | None:
        """The state of one enrollment (``course_id`` names the course of a default-section one)."""
        for view in self.enrollment_views():
            if (view.section_id, view.user_id, view.role, view.associated_user_id) == (
                section_id,
                user_id,
                role,
                associated_user_id,
            ) and (course_id is None or view.course_id == course_id):
                return view.state
        return None

    def observer_links(self, state: str = "active") -> frozenset[tuple[str | None, str | None]]:
        """(observer_id, student_id) of each link in ``state``."""
        return frozenset(
            (self._sis_of_user(link.observer), self._sis_of_user(link.student))
            for link in self.links.values()
            if link.state == state
        )

    def school_state(self, account_id: str) -> dict[str, Any]:
        """Everything Canvas holds of one school (a sub-account by SIS id): its account, courses, sections,
        enrollments, the users enrolled there with their logins and emails, and the observer links to them.
        ``batch`` (the last import to touch an object) is left out, so equal states mean nothing of the
        school was removed or changed, whatever imports ran in between."""

        def plain(item: Any) -> dict[str, Any]:
            return {k: v for k, v in dataclasses.asdict(item).items() if k != "batch"}

        account = self.account(account_id)
        if account is None:
            raise KeyError(f"no account {account_id}")
        courses = sorted((c for c in self.courses.values() if c.account == account.id), key=lambda c: c.id)
        course_ids = {c.id for c in courses}
        sections = sorted((s for s in self.sections.values() if s.course in course_ids), key=lambda s: s.id)
        names = {c.sis_id for c in courses}
        enrollments = sorted(
            (dataclasses.astuple(v) for v in self.enrollment_views() if v.course_id in names), key=str
        )
        people = sorted({str(v[2]) for v in enrollments})
        links = sorted(
            (str(self._sis_of_user(link.observer)), str(self._sis_of_user(link.student)), link.state)
            for link in self.links.values()
            if self._sis_of_user(link.student) in people
        )
        return {
            "account": plain(account),
            "courses": [plain(c) for c in courses],
            "sections": [plain(s) for s in sections],
            "enrollments": enrollments,
            "users": {p: (self.user_status(p), self.logins(p), self.email(p)) for p in people},
            "links": links,
        }

    def admins(self, state: str = "active") -> frozenset[tuple[str | None, str | None, str]]:
        """(account_id, user_id, role) of each account admin in ``state``; account_id None: the root."""
        return frozenset(
            (self._account_sis(admin.account), self._sis_of_user(admin.user), admin.role)
            for admin in self.account_users.values()
            if admin.state == state
        )

    def sis_admins(self) -> frozenset[tuple[str | None, str | None, str]]:
        """The active admins an import made or touched (SIS-managed)."""
        return frozenset(
            (self._account_sis(admin.account), self._sis_of_user(admin.user), admin.role)
            for admin in self.account_users.values()
            if admin.state == "active" and admin.batch is not None
        )

    def add_manual_admin(self, user_id: str, account_id: str | None, role: str = ACCOUNT_ADMIN) -> None:
        """Make ``user_id`` an admin of ``account_id`` (None: the root account) as an admin would in Canvas's
        UI: an ``AccountUser`` no import made."""
        pseudo = self._pseudo(user_id)
        account = self.account(account_id) if account_id is not None else None
        if pseudo is None or (account_id is not None and account is None):
            raise KeyError(f"no user {user_id} or account {account_id}")
        admin = AccountUser(self._new_id(), account.id if account else None, pseudo.user, role)
        self.account_users[admin.id] = admin

    def _account_sis(self, account: int | None) -> str | None:
        return None if account is None else self.accounts[account].sis_id

    def term_by_ref(self, ref: str) -> Term | None:
        """The active term a Terms API path names: its Canvas id, ``sis_term_id:X`` or
        ``hex:sis_term_id:<hex>`` (``Api.sis_parse_id``, lib/api.rb)."""
        hexed = re.fullmatch(r"hex:sis_term_id:((?:[0-9A-Fa-f]{2})+)", ref)
        if hexed:
            term = self.term(bytes.fromhex(hexed.group(1)).decode())
        elif ref.startswith("sis_term_id:"):
            term = self.term(ref.removeprefix("sis_term_id:"))
        else:
            term = self.terms.get(int(ref)) if ref.isdigit() else None
        return term if term is not None and term.state == "active" else None

    def set_term_overrides(self, term: Term, overrides: Mapping[str, Mapping[str, str | None]]) -> None:
        """``EnrollmentTerm#set_overrides``: for each enrollment type given, both dates are set from the
        values given (a date not given, or blank, becomes unset)."""
        for kind, values in overrides.items():
            override = term.overrides.setdefault(kind, Override())
            override.start = values.get("start_at") or None
            override.end = values.get("end_at") or None

    def access_dates(self, section_id: str, user_id: str, role: str) -> tuple[str | None, str | None]:
        """When the enrollment's user may take part, from its course's term (``Course#enrollment_dates_for``
        without course or section dates, which the product never sends, then
        ``EnrollmentTerm#enrollment_dates_for``): an override's date, else the term's; a teacher's, TA's or
        designer's start is "whenever" (``None``) without an override. ``None`` end: no end."""
        for enrollment in self.enrollments.values():
            view = self._view(enrollment)
            if (view.section_id, view.user_id, view.role) != (section_id, user_id, role):
                continue
            course = self.courses[enrollment.course]
            term = self.terms.get(course.term) if course.term is not None else None
            if term is None:
                return None, None
            override = term.overrides.get(enrollment.type, Override())
            default_start = None if enrollment.type in ADMIN_ENROLLMENT_TYPES else term.start
            return override.start or default_start, override.end or term.end
        raise KeyError(f"no enrollment of {user_id} as {role} in section {section_id}")

    def mark_coursework(self, course_id: str) -> None:
        """Say the course holds coursework: deleting it or moving its sections away is recorded."""
        course = self.course(course_id)
        if course is None:
            raise KeyError(f"no course {course_id}")
        course.coursework = True

    def import_record(self, import_id: int) -> ImportRecord:
        return next(record for record in self.imports if record.id == import_id)

    # -- applying an import ---------------------------------------------------------------------------------

    def apply(
        self,
        import_id: int,
        options: Mapping[str, Any],
        attachment: bytes,
        *,
        filename: str = "sis_import.zip",
    ) -> ImportRecord:
        """Apply one posted import (``options`` as posted) and return what it did.

        ``SisBatch#process_instructure_csv_zip``: the diff first (``generate_diff``), then every file in
        IMPORTERS order, then batch mode's cleanup, then the final state (``finalize_workflow_state``):
        aborted stays aborted, any failure makes ``failed_with_messages``, any other message
        ``imported_with_messages``.
        """
        record = ImportRecord(import_id, dict(options))
        record.files, record.size = read_attachment(attachment, filename, record.messages)
        unmodelled = sorted({f.importer for f in record.files} - MODELLED)
        if unmodelled:
            raise UnmodelledFileError(f"the model does not apply {', '.join(unmodelled)} files")
        batch_mode = _flag(options, "batch_mode") or "multi_term_batch_mode" in options
        record.applied = record.files if batch_mode else self._diffed(record)
        current = self._current = _Import(record, options)
        try:
            for importer in IMPORTERS:
                for csv_file in record.applied:
                    if csv_file.importer == importer:
                        self._run(current, csv_file)
            if batch_mode:
                record.mode = "batch"
                self._batch_cleanup(current)
        finally:
            self._current = None
        record.counts["error_count"] = len(record.failures)
        record.counts["warning_count"] = len(record.warnings)
        if record.aborted:
            record.workflow_state = "aborted"
        elif record.failures:
            record.workflow_state = "failed_with_messages"
        else:
            record.workflow_state = "imported_with_messages" if record.messages else "imported"
        self.imports.append(record)
        return record

    def _baseline(self, identifier: str) -> ImportRecord | None:
        """``SisBatch#generate_diff``: the latest succeeded batch of the data set that was diffed or was a
        remaster, else the first succeeded one; a failed or aborted batch never."""
        succeeded = [r for r in self.imports if r.identifier == identifier and r.workflow_state in SUCCEEDED]
        chained = [r for r in succeeded if r.remaster or r.generated_diff]
        if chained:
            return chained[-1]
        return succeeded[0] if succeeded else None

    def _diffed(self, record: ImportRecord) -> list[CsvFile]:
        """The files to import under diffing (``SisBatch#generate_diff``), or the upload's own files.

        ``change_threshold`` compares the uncompressed size of the whole attachment with the baseline's,
        and ``diff_row_count_threshold`` the rows of the diffed files: past either, the whole upload is
        applied (without deletes) with Canvas's warning, ``diffing_threshold_exceeded`` is true, and the
        import does not become a baseline.
        """
        options = record.options
        identifier = options.get("diffing_data_set_identifier") or None
        if not identifier:
            return record.files
        record.identifier = str(identifier)
        record.remaster = _flag(options, "diffing_remaster_data_set")
        baseline = self._baseline(record.identifier)
        if record.remaster or baseline is None:
            record.mode = "remaster" if record.remaster else "first"
            return record.files
        record.mode = "diffing"
        change_threshold = _number(options, "change_threshold")
        if change_threshold and file_diff_percent(record.size, baseline.size) > change_threshold:
            record.threshold_exceeded = True
            text = "Diffing not performed because file size difference exceeded threshold"
            record.messages.append(Message(None, text))
            return record.files
        generated, row_count = generate_csvs(baseline.files, record.files, options, record.messages)
        row_threshold = _number(options, "diff_row_count_threshold")
        if row_threshold and row_count > row_threshold:
            record.threshold_exceeded = True
            text = "Diffing not performed because difference row count exceeded threshold"
            record.messages.append(Message(None, text))
            return record.files
        record.threshold_exceeded = False
        record.diffed_against = baseline.id
        record.generated_diff = True
        return generated

    def _run(self, current: _Import, csv_file: CsvFile) -> None:
        """One file through its importer: each row counted when it succeeds, or refused with its warning."""
        handlers: dict[str, Callable[[_Import, Row], bool]] = {
            "change_sis_id": self._change_sis_id_row,
            "account": self._account_row,
            "term": self._term_row,
            "course": self._course_row,
            "section": self._section_row,
            "user": self._user_row,
            "enrollment": self._enrollment_row,
            "admin": self._admin_row,
            "user_observer": self._user_observer_row,
        }
        handler = handlers[csv_file.importer]
        current.file, current.deferred = csv_file.path, []
        count = 0
        try:
            for number, row in enumerate(csv_file.rows, start=2):
                current.row = number
                try:
                    count += handler(current, row)
                except RowError as refused:
                    current.warn(str(refused))
            current.row = None
            for work in current.deferred:
                work()
        finally:
            current.file = current.row = None
            current.deferred = []
        current.record.counts[COUNT_KEYS[csv_file.importer]] += count

    # -- bookkeeping --------------------------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _set_sis_id(self, kind: str, obj: Any, sis_id: str | None) -> None:
        if obj.sis_id is not None and self._sis[kind].get(obj.sis_id) == obj.id:
            del self._sis[kind][obj.sis_id]
        obj.sis_id = sis_id
        if sis_id is not None:
            self._sis[kind][sis_id] = obj.id

    def _pseudo(self, sis_user_id: str | None) -> Pseudonym | None:
        found = self._pseudo_by_sis.get(sis_user_id) if sis_user_id is not None else None
        return self.pseudonyms[found] if found is not None else None

    def _set_pseudo_sis(self, pseudo: Pseudonym, sis_user_id: str | None) -> None:
        if pseudo.sis_user_id is not None and self._pseudo_by_sis.get(pseudo.sis_user_id) == pseudo.id:
            del self._pseudo_by_sis[pseudo.sis_user_id]
        pseudo.sis_user_id = sis_user_id
        if sis_user_id is not None:
            self._pseudo_by_sis[sis_user_id] = pseudo.id

    def _set_pseudo_integration(self, pseudo: Pseudonym, integration_id: str | None) -> None:
        if pseudo.integration_id is not None:
            self._pseudo_by_integration.pop(pseudo.integration_id, None)
        pseudo.integration_id = integration_id
        if integration_id is not None:
            self._pseudo_by_integration[integration_id] = pseudo.id

    def _pseudo_with_integration(self, integration_id: str | None) -> Pseudonym | None:
        found = self._pseudo_by_integration.get(integration_id) if integration_id is not None else None
        return self.pseudonyms[found] if found is not None else None

    def _set_login(self, pseudo: Pseudonym, login: str) -> None:
        self._logins.get(pseudo.login.lower(), set()).discard(pseudo.id)
        pseudo.login = login
        self._logins.setdefault(login.lower(), set()).add(pseudo.id)

    def _pseudos_by_login(self, login: str) -> list[Pseudonym]:
        return [self.pseudonyms[p] for p in sorted(self._logins.get(login.lower(), ()))]

    def _sis_of_user(self, user: int | None) -> str | None:
        """The SIS id a Canvas user is known by: its first login not deleted, else its first login."""
        if user is None:
            return None
        pseudos = [self.pseudonyms[p] for p in self._user_pseudos.get(user, [])]
        with_sis = [p for p in pseudos if p.sis_user_id is not None]
        live = [p for p in with_sis if p.state != "deleted"]
        return (live or with_sis)[0].sis_user_id if with_sis else None

    def _log(self, kind: str, key: Key, before: str | None, after: str) -> None:
        if before != after and self._current is not None:
            self._current.record.changes.append(StateChange(kind, key, before, after))

    def _coursework(self, course: Course, event: str, detail: str = "") -> None:
        if course.coursework and self._current is not None:
            self.coursework_events.append(
                CourseworkEvent(self._current.record.id, _s(course.sis_id), event, detail)
            )

    def _stuck(self, current: _Import, obj: User | Pseudonym | Course, name: str) -> bool:
        """Whether an import must leave field ``name`` of ``obj`` alone: changed by hand, and the import does
        not set ``override_sis_stickiness`` (``StickySisFields#stuck_sis_fields``)."""
        return name in obj.stuck and not _flag(current.options, "override_sis_stickiness")

    def _settle_stickiness(
        self, current: _Import, obj: User | Pseudonym | Course, names: Iterable[str]
    ) -> None:
        """After an import set ``names`` of ``obj``: ``clear_sis_stickiness`` un-sticks them,
        ``add_sis_stickiness`` sticks them (both only with ``override_sis_stickiness``)."""
        if not _flag(current.options, "override_sis_stickiness"):
            return
        if _flag(current.options, "clear_sis_stickiness"):
            obj.stuck.difference_update(names)
        elif _flag(current.options, "add_sis_stickiness"):
            obj.stuck.update(names)

    def _view(self, enrollment: Enrollment) -> EnrollmentView:
        return EnrollmentView(
            self.courses[enrollment.course].sis_id,
            self.sections[enrollment.section].sis_id,
            self._sis_of_user(enrollment.user),
            enrollment.role,
            self._sis_of_user(enrollment.associated_user),
            enrollment.state,
        )

    def _default_section(self, course: Course) -> Section:
        """``Course#default_section``: the course's section without a SIS id, made when first needed."""
        found = self._default_sections.get(course.id)
        if found is None:
            section = Section(self._new_id(), None, course.id, course.long_name)
            self.sections[section.id] = section
            self._default_sections[course.id] = found = section.id
        return self.sections[found]

    # -- enrollments and the observers linked to them ----------------------------------------------------

    def _add_enrollment(self, enrollment: Enrollment) -> None:
        self.enrollments[enrollment.id] = enrollment
        key = (
            enrollment.section,
            enrollment.user,
            enrollment.type,
            enrollment.role,
            enrollment.associated_user,
        )
        self._enrollment_by_key[key] = enrollment.id
        self._user_enrollments.setdefault(enrollment.user, set()).add(enrollment.id)
        self._section_enrollments.setdefault(enrollment.section, set()).add(enrollment.id)
        self._course_enrollments.setdefault(enrollment.course, set()).add(enrollment.id)

    def _set_enrollment_state(self, enrollment: Enrollment, state: str, *, new: bool = False) -> None:
        """Change one enrollment's state, and its linked observers' as ``Enrollment#update_linked_enrollments``
        (app/models/enrollment.rb) and ``Enrollment::BatchStateUpdater`` do: each active observer of a
        student gets (or keeps) an observer enrollment in the student's section that mirrors the student's."""
        before = None if new else enrollment.state
        enrollment.state = state
        view = self._view(enrollment)
        self._log(
            "enrollment",
            (view.course_id, view.section_id, view.user_id, view.role, view.associated_user_id),
            before,
            state,
        )
        if enrollment.type == "StudentEnrollment" and before != state:
            for link_id in sorted(self._links_of(enrollment.user)):
                link = self.links[link_id]
                if link.state != "deleted":
                    self._mirror_for(link.observer, enrollment)

    def _links_of(self, student: int) -> Collection[int]:
        return self._student_links.get(student, ())

    def _mirror_for(self, observer: int, student_enrollment: Enrollment) -> None:
        """``Enrollment#create_linked_enrollment_for`` / ``update_from``: the observer's enrollment in the
        student's section, associated with the student, takes the student enrollment's state."""
        key = (
            student_enrollment.section,
            observer,
            "ObserverEnrollment",
            "observer",
            student_enrollment.user,
        )
        found = self._enrollment_by_key.get(key)
        if found is None:
            if student_enrollment.state == "deleted":
                return
            linked = Enrollment(
                self._new_id(),
                observer,
                student_enrollment.course,
                student_enrollment.section,
                "ObserverEnrollment",
                "observer",
                student_enrollment.user,
            )
            self._add_enrollment(linked)
            self._set_enrollment_state(linked, student_enrollment.state, new=True)
        elif self.enrollments[found].state != student_enrollment.state:
            self._set_enrollment_state(self.enrollments[found], student_enrollment.state)

    def _move_section(self, section: Section, course: Course) -> None:
        """``CourseSection#move_to_course``: the section and its enrollments go to ``course``."""
        old = self.courses[section.course]
        self._coursework(old, "section_moved", f"section {section.sis_id} moved to course {course.sis_id}")
        for enrollment_id in list(self._section_enrollments.get(section.id, ())):
            enrollment = self.enrollments[enrollment_id]
            self._course_enrollments[enrollment.course].discard(enrollment_id)
            enrollment.course = course.id
            self._course_enrollments.setdefault(course.id, set()).add(enrollment_id)
        section.course = course.id

    def _delete_enrollments(self, enrollment_ids: Iterable[int], batch: int | None) -> int:
        """``Enrollment::BatchStateUpdater.destroy_batch``: the enrollments not yet deleted become deleted."""
        count = 0
        for enrollment_id in sorted(enrollment_ids):
            enrollment = self.enrollments[enrollment_id]
            if enrollment.state != "deleted":
                self._set_enrollment_state(enrollment, "deleted")
                enrollment.batch = batch if batch is not None else enrollment.batch
                count += 1
        return count

    # -- change_sis_id.csv --------------------------------------------------------------------------------

    def _change_sis_id_row(self, current: _Import, row: Row) -> bool:
        """``SIS::ChangeSisIdImporter`` (lib/sis/change_sis_id_importer.rb): one object's SIS id or
        integration id changes; a new id already in use, or an old id naming nothing, is refused."""
        old_id, new_id = row.get("old_id"), row.get("new_id")
        old_integration, new_integration = row.get("old_integration_id"), row.get("new_integration_id")
        if not row.get("type"):
            raise RowError("No type given for change_sis_id")
        if not old_id and not old_integration:
            raise RowError("No old_id or old_integration_id given for change_sis_id")
        if not new_id and not new_integration:
            raise RowError("No new_id or new_integration_id given for change_sis_id")
        kind = _s(row.get("type")).lower().strip()
        scopes: dict[str, list[Any]] = {
            "user": list(self.pseudonyms.values()),
            "course": list(self.courses.values()),
            "section": [s for s in self.sections.values() if s.sis_id is not None],
            "term": list(self.terms.values()),
            "account": list(self.accounts.values()),
            "group": [],
            "group_category": [],
        }
        if kind not in scopes:
            raise RowError(f"Invalid type '{kind}' for change_sis_id")
        column, attribute = ("sis_user_id", "sis_user_id") if kind == "user" else ("sis_source_id", "sis_id")
        if kind == "group_category" and (old_integration or new_integration):
            raise RowError("Group categories should not have integration IDs.")

        def first(name: str, value: str | None) -> Any:
            return next((o for o in scopes[kind] if getattr(o, name) == value), None)

        if new_id and first(attribute, new_id) is not None:
            raise RowError(
                f"A new_id, '{new_id}', referenced an existing {kind} and the {kind} with {column} "
                f"'{_s(old_id)}' was not updated"
            )
        if new_integration and first("integration_id", new_integration) is not None:
            raise RowError(
                f"A new_integration_id, '{new_integration}', referenced an existing {kind} and the {kind} "
                f"with integration_id '{_s(old_integration)}' was not updated"
            )
        by_id = first(attribute, old_id) if old_id else None
        by_integration = first("integration_id", old_integration) if old_integration else None
        if old_id and old_integration and by_id is not by_integration:
            raise RowError(
                f"An old_id, '{old_id}', referenced a different {kind} than the old_integration_id, "
                f"'{old_integration}'"
            )
        target = by_id if old_id else by_integration
        if target is None and old_id:
            raise RowError(f"An old_id, '{old_id}', referenced a non-existent {kind} and was not changed.")
        if target is None:
            raise RowError(
                f"An old_integration_id, '{old_integration}', referenced a non-existent {kind} and was not changed."
            )
        if new_id:
            if kind == "user":
                self._set_pseudo_sis(target, new_id)
            else:
                self._set_sis_id(kind, target, new_id)
        if new_integration:
            integration = None if new_integration == "<delete>" else new_integration
            if kind == "user":
                self._set_pseudo_integration(target, integration)
            else:
                target.integration_id = integration
        target.batch = current.record.id
        return True

    # -- accounts.csv -------------------------------------------------------------------------------------

    def _account_row(self, current: _Import, row: Row) -> bool:
        """``SIS::AccountImporter`` (lib/sis/account_importer.rb): parents must exist (and not be deleted);
        deleting an account that still has active sub-accounts or courses is refused."""
        account_id, parent_id, status, name = (
            row.get(k) for k in ("account_id", "parent_account_id", "status", "name")
        )
        if not account_id:
            raise RowError("No account_id given for an account")
        if current.skip_deletes and _matches("deleted", status):
            return False
        parent: Account | None = None
        if parent_id:
            parent = self.account(parent_id)
            if parent is None:
                raise RowError(f"Parent account didn't exist for {account_id}")
            if parent.state == "deleted":
                raise RowError(
                    f"Cannot restore sub_account with ID: {account_id} because parent_account with ID: "
                    f"{parent_id} has been deleted."
                )
        account = self.account(account_id)
        if account is None:
            if not name:
                raise RowError(f"No name given for account {account_id}, skipping")
            if not re.match(r"(active|deleted)", _s(status), re.IGNORECASE):
                raise RowError(f'Improper status "{_s(status)}" for account {account_id}, skipping')
        state = account.state if account else "active"
        if status and _matches("active", status):
            state = "active"
        elif status and _matches("deleted", status):
            held = account.id if account else None
            if any(a.parent == held and a.state != "deleted" for a in self.accounts.values() if held):
                raise RowError(
                    f"Cannot delete the sub_account with ID: {account_id} because it has active sub accounts."
                )
            if any(c.account == held and c.state != "deleted" for c in self.courses.values() if held):
                raise RowError(
                    f"Cannot delete the sub_account with ID: {account_id} because it has active courses."
                )
            state = "deleted"
        if account is None:
            account = Account(self._new_id(), None, None, name)
            self.accounts[account.id] = account
            self._set_sis_id("account", account, account_id)
            self._log("account", (account_id,), None, state)
        else:
            self._log("account", (account_id,), account.state, state)
        account.parent = parent.id if parent else None
        account.name = name or account.name
        account.integration_id = row.get("integration_id")
        account.state, account.batch = state, current.record.id
        return True

    # -- terms.csv ----------------------------------------------------------------------------------------

    def _term_row(self, current: _Import, row: Row) -> bool:
        """``SIS::TermImporter`` (lib/sis/term_importer.rb) with ``EnrollmentTerm#check_if_deletable``
        (app/models/enrollment_term.rb): deleting a term that still has courses not deleted is refused, and
        the refused row changes nothing (not even its dates). Dates are set as given: empty clears."""
        term_id, name, status = row.get("term_id"), row.get("name"), row.get("status")
        start, end = self._dates(current, row, f"Bad date format for term {_s(term_id)}")
        if not term_id:
            raise RowError("No term_id given for a term")
        if not re.match(r"active|deleted", _s(status), re.IGNORECASE):
            raise RowError(f'Improper status "{_s(status)}" for term {term_id}')
        if current.skip_deletes and _matches("deleted", status):
            return False
        if row.get("date_override_enrollment_type"):
            raise UnmodelledFileError("terms.csv date overrides are not modelled")
        if not name:
            raise RowError(f"No name given for term {term_id}")
        term = self.term(term_id)
        state = "active" if _matches("active", status) else "deleted"
        if (
            term is not None
            and state == "deleted"
            and term.state != "deleted"
            and any(c.term == term.id and c.state != "deleted" for c in self.courses.values())
        ):
            raise RowError(
                f"A term did not pass validation (term: {term_id} / {name}, error: Workflow state Cannot "
                "delete a term with active courses)"
            )
        if term is None:
            term = Term(self._new_id(), None, name)
            self.terms[term.id] = term
            self._set_sis_id("term", term, term_id)
            self._log("term", (term_id,), None, state)
        else:
            self._log("term", (term_id,), term.state, state)
        term.name, term.integration_id, term.state = name, row.get("integration_id"), state
        term.start, term.end, term.batch = start, end, current.record.id
        return True

    def _dates(self, current: _Import, row: Row, bad: str) -> tuple[str | None, str | None]:
        """The row's start and end dates; one ``Time.zone.parse`` refuses is a warning, and left empty."""
        values = (row.get("start_date"), row.get("end_date"))
        if not all(_date_ok(value) for value in values):
            current.warn(bad)
        start, end = (_date(value) if _date_ok(value) else None for value in values)
        return start, end

    # -- courses.csv --------------------------------------------------------------------------------------

    def _course_row(self, current: _Import, row: Row) -> bool:
        """``SIS::CourseImporter`` (lib/sis/course_importer.rb).

        An unknown or deleted ``term_id`` is silently ignored: a new course lands in the default term, an
        existing one keeps its term. ``active``/``unpublished`` leave a published course published;
        ``active`` restores a concluded one. Deleting a course deletes its enrollments, concluding it
        concludes the active ones (``Course#update_enrolled_users``, app/models/course.rb).
        """
        course_id, status = row.get("course_id"), row.get("status")
        short_name, long_name = row.get("short_name"), row.get("long_name")
        start, end = self._dates(current, row, f"Bad date format for course {_s(course_id)}")
        if not course_id:
            raise RowError("No course_id given for a course")
        if not short_name:
            raise RowError(f"No short_name given for course {course_id}")
        if not long_name:
            raise RowError(f"No long_name given for course {course_id}")
        if not re.match(r"(active|deleted|completed|unpublished|published)", _s(status), re.IGNORECASE):
            raise RowError(f'Improper status "{_s(status)}" for course {course_id}')
        course_format = row.get("course_format")
        if course_format and not re.match(
            r"(online|on_campus|blended|not_set)", course_format, re.IGNORECASE
        ):
            raise RowError(f'Invalid course_format "{course_format}" for course {course_id}')
        passback = row.get("grade_passback_setting")
        if passback and passback.lower().strip() not in ("nightly_sync", "disabled", "not_set"):
            raise RowError(f'Invalid grade_passback_setting "{passback}" for course {course_id}')
        if current.skip_deletes and _matches("deleted", status):
            return False
        if row.get("abstract_course_id") or row.get("blueprint_course_id") not in (None, "dissociate"):
            raise UnmodelledFileError("abstract and blueprint courses are not modelled")
        course = self.course(course_id)
        term = self.term(row["term_id"]) if row.get("term_id") else None
        account = self.account(row["account_id"]) if row.get("account_id") else None
        if row.get("account_id") and account is None:
            raise RowError(f'Account not found "{row["account_id"]}" for course {course_id}')
        account_of_course = course.account if course else None
        account_stuck = course is not None and self._stuck(current, course, "account_id")
        if account is not None and account.state == "active" and not account_stuck:
            account_of_course = account.id
        if account_of_course is not None and self.accounts[account_of_course].state == "deleted":
            raise RowError(
                f"Cannot restore course {course_id} because the associated account "
                f"{self.accounts[account_of_course].sis_id} is deleted"
            )
        new = course is None
        if course is None:
            course = Course(self._new_id(), None, short_name, long_name, None, None, state="created")
            self._set_sis_id("course", course, course_id)
        state = _s(status).lower()
        before = None if new else course.state
        after = course.state
        if state in ("active", "unpublished", "published"):
            opened = "available" if state == "published" else "claimed"
            after = {"completed": "available", "deleted": opened, "created": opened, "claimed": opened}.get(
                course.state, course.state
            )
        elif _matches("deleted", status):
            after = "deleted"
        elif _matches("completed", status):
            after = "completed"
        if (
            term is not None
            and term.state == "active"
            and not self._stuck(current, course, "enrollment_term_id")
        ):
            course.term = term.id
        course.account = account_of_course
        self._settle_stickiness(current, course, ("enrollment_term_id", "account_id"))
        course.short_name, course.long_name = short_name, long_name
        course.integration_id, course.batch = row.get("integration_id"), current.record.id
        if "start_date" in row:
            course.start = start
        if "end_date" in row:
            course.end = end
        if new:
            self.courses[course.id] = course
        self._log("course", (course_id,), before, after)
        if after == "deleted" and before != "deleted":
            self._coursework(course, "deleted")
        course.state = after
        if not new and before != after:
            self._course_state_reaches_enrollments(course)
        return True

    def _course_state_reaches_enrollments(self, course: Course) -> None:
        """``Course#update_enrolled_users``: a concluded course concludes its active enrollments, a deleted
        one deletes every enrollment it has."""
        for enrollment_id in sorted(self._course_enrollments.get(course.id, ())):
            enrollment = self.enrollments[enrollment_id]
            if course.state == "completed" and enrollment.state in ("active", "invited"):
                self._set_enrollment_state(enrollment, "completed")
            elif course.state == "deleted" and enrollment.state != "deleted":
                self._set_enrollment_state(enrollment, "deleted")

    # -- sections.csv -------------------------------------------------------------------------------------

    def _section_row(self, current: _Import, row: Row) -> bool:
        """``SIS::SectionImporter`` (lib/sis/section_importer.rb): a section whose ``course_id`` changed moves
        to that course with its enrollments; a deleted section's enrollments are deleted once the file is
        read. Dates are set as given (empty clears)."""
        section_id, course_id = row.get("section_id"), row.get("course_id")
        name, status = row.get("name"), row.get("status")
        start, end = self._dates(current, row, f"Bad date format for section {_s(section_id)}")
        if not section_id:
            raise RowError(f"No section_id given for a section in course {_s(course_id)}")
        if not course_id:
            raise RowError(f"No course_id given for a section {section_id}")
        if not name and re.match(r"active", _s(status), re.IGNORECASE):
            raise RowError(f"No name given for section {section_id} in course {course_id}")
        if not re.match(r"active|deleted", _s(status), re.IGNORECASE):
            raise RowError(f'Improper status "{_s(status)}" for section {section_id} in course {course_id}')
        if current.skip_deletes and _matches("deleted", status):
            return False
        course = self.course(course_id)
        if course is None:
            raise RowError(f"Section {section_id} references course {course_id} which doesn't exist")
        section = self.section(section_id)
        if section is None and not name:
            raise RowError(f"No name given for section {section_id} in course {course_id}")
        state = "active" if _matches("active", status) else "deleted"
        if section is None:
            section = Section(self._new_id(), None, course.id, name)
            self.sections[section.id] = section
            self._set_sis_id("section", section, section_id)
            self._log("section", (section_id,), None, state)
        else:
            self._log("section", (section_id,), section.state, state)
            if section.course != course.id:
                self._move_section(section, course)
        section.name = name or section.name
        section.integration_id, section.state = row.get("integration_id"), state
        section.start, section.end, section.batch = start, end, current.record.id
        if state == "deleted":
            batch, held = current.record.id, section.id
            current.deferred.append(
                lambda: self._delete_enrollments(self._section_enrollments.get(held, set()).copy(), batch)
            )
        return True

    # -- users.csv ----------------------------------------------------------------------------------------

    def _user_row(self, current: _Import, row: Row) -> bool:
        """``SIS::UserImporter`` (lib/sis/user_importer.rb) on one row, with ``Pseudonym``'s rules
        (app/models/pseudonym.rb).

        A user's login (pseudonym) carries the SIS id. ``login_id`` is unique per root account (and
        authentication provider), case-insensitively, among logins that are not deleted: a suspended login
        still claims its name, so another ``user_id`` asking for it is skipped, unless
        ``update_sis_id_if_login_claimed`` re-points that login, and the Canvas user behind it with all its
        enrollments, to the new SIS id. ``deleted`` deletes the login; when it was the user's last login not
        deleted, the user's enrollments (and the observer enrollments linked to them) are deleted too.
        ``suspended`` keeps everything but the sign-in. An email the rule refuses is a warning, and the user
        is saved without it.
        """
        if any(value is not None and "\0" in value for value in row.values()):
            raise RowError("Some of the fields contain NULL character")  # lib/sis/csv/user_importer.rb
        user_id, login, status = row.get("user_id"), row.get("login_id"), row.get("status")
        if not user_id:
            raise RowError("No user_id given for a user")
        if not login:
            raise RowError(f"No login_id given for user {user_id}")
        if not status:
            raise RowError(f"No status given for user {user_id}")
        if not re.match(r"(active|suspended|deleted)", status, re.IGNORECASE):
            raise RowError(f"Improper status for user {user_id}")
        if current.skip_deletes and _matches("deleted", status):
            return False
        state = status.lower() if status.lower() in VALID_USER_STATUSES else "active"
        provider_id = row.get("authentication_provider_id")
        provider = self._provider(provider_id) if provider_id else None
        pseudo = self._pseudo(user_id)
        by_login = next(
            (
                p
                for p in self._pseudos_by_login(login)
                if p.state != "deleted" and (not provider_id or p.provider == provider)
            ),
            None,
        )
        by_integration = self._pseudo_with_integration(row.get("integration_id"))
        pseudo = pseudo or by_login
        if by_integration is not None and state != "deleted" and by_integration is not pseudo:
            current.warn(
                f"An existing Canvas user with the {self._claimant(by_integration)} has already claimed "
                f"{user_id}'s requested integration_id, skipping"
            )
            return False
        repoint = False
        if pseudo is not None:
            if pseudo.sis_user_id and pseudo.sis_user_id != user_id:
                if not _flag(current.options, "update_sis_id_if_login_claimed"):
                    current.warn(
                        f"An existing Canvas user with the SIS ID {pseudo.sis_user_id} has already claimed "
                        f"{user_id}'s user_id requested login information, skipping"
                    )
                    return False
                repoint = True
            if (
                by_login is not None
                and by_login is not pseudo
                and (state != "deleted" or pseudo.login.lower() != login.lower())
            ):
                current.warn(
                    f"An existing Canvas user with the {self._claimant(by_login)} has already claimed "
                    f"{user_id}'s user_id requested login information, skipping"
                )
                return False
        return self._save_user(current, row, pseudo, state, provider, repoint)

    def _provider(self, provider_id: str) -> str | None:
        known = self.authentication_providers
        return provider_id if known is None or provider_id in known else None

    def _claimant(self, pseudo: Pseudonym) -> str:
        return f"SIS ID {pseudo.sis_user_id}" if pseudo.sis_user_id else f"Canvas ID {pseudo.user}"

    def _save_user(
        self,
        current: _Import,
        row: Row,
        pseudo: Pseudonym | None,
        state: str,
        provider: str | None,
        repoint: bool,
    ) -> bool:
        """The second half of ``UserImporter#process_batch``: the login and user saved (or refused by the
        pseudonym's validations, leaving nothing saved), then the email."""
        user_id, login = _s(row.get("user_id")), _s(row.get("login_id"))
        if pseudo is not None and state == "deleted":
            if pseudo.state == "deleted":
                return False
            self._remove_enrollments_if_last_login(pseudo, user_id)
        if row.get("authentication_provider_id") and provider is None:
            current.warn(
                f"unrecognized authentication provider {row['authentication_provider_id']} for {user_id}, skipping"
            )
            return False
        refusal = self._login_refusal(pseudo, login, provider, state)
        if refusal is not None:
            raise RowError(f"Could not save the user with user_id: '{user_id}'. {refusal}")
        if pseudo is None:
            user = User(self._new_id())
            self.users[user.id] = user
            pseudo = Pseudonym(self._new_id(), user.id, login, None, state=state)
            self.pseudonyms[pseudo.id] = pseudo
            self._user_pseudos.setdefault(user.id, []).append(pseudo.id)
            self._logins.setdefault(login.lower(), set()).add(pseudo.id)
            self._log("user", (user_id,), None, state)
        else:
            if self._stuck(current, pseudo, "workflow_state"):
                state = pseudo.state
            # A re-pointed login appears under its new SIS id; its old id names no one any more.
            self._log("user", (user_id,), None if repoint else pseudo.state, state)
        user = self.users[pseudo.user]
        first, last, full = row.get("first_name"), row.get("last_name"), row.get("full_name")
        if not self._stuck(current, user, "name"):
            user.name = (
                full
                or (" ".join(_s(v) for v in (first, last)) if first or last else None)
                or user.name
                or login
            )
        if not self._stuck(current, user, "sortable_name"):
            user.sortable_name = _infer_sortable_name(row, user.sortable_name, user.name)
        user.short_name = row.get("short_name") or user.short_name
        if login != pseudo.login and not self._stuck(current, pseudo, "unique_id"):
            self._set_login(pseudo, login)
        pseudo.provider = provider
        self._set_pseudo_sis(pseudo, user_id)
        if row.get("integration_id"):
            self._set_pseudo_integration(pseudo, row["integration_id"])
        pseudo.state, pseudo.batch = state, current.record.id
        self._settle_stickiness(current, user, ("name", "sortable_name"))
        self._settle_stickiness(current, pseudo, ("unique_id", "workflow_state"))
        email = row.get("email")
        if email and not self.email_valid(email):
            current.warn(f"The email address associated with user '{user_id}' is invalid (email: '{email}')")
            return False
        if email:
            user.email = email
        return True

    def _login_refusal(
        self, pseudo: Pseudonym | None, login: str, provider: str | None, state: str
    ) -> str | None:
        """Why ``Pseudonym`` would not save this login (the reason ``generate_user_warning`` words), if it
        would not: over MAX_UNIQUE_ID_LENGTH characters, unprintable, or taken by another login not deleted
        of the same provider (``validate_unique_id``). Printable is ``/\\A[[:print:]]+\\z/`` as Ruby reads it
        (clever2sis.sis.builders.logins.printable: no-break spaces and format characters print, line
        separators do not; checked against Ruby itself by tests/test_logins_ruby.py)."""
        if state != "deleted":
            taken = [
                p
                for p in self._pseudos_by_login(login)
                if p is not pseudo and p.state != "deleted" and p.provider == provider
            ]
            if taken:
                return (
                    "Unknown reason: unique_id ID already in use for this account and authentication provider"
                )
        if len(login) > MAX_UNIQUE_ID_LENGTH:
            return f"Unknown reason: unique_id is too long (maximum is {MAX_UNIQUE_ID_LENGTH} characters)"
        if not printable(login):
            return f"Invalid login_id: '{login}'"
        return None

    def _remove_enrollments_if_last_login(self, pseudo: Pseudonym, user_id: str) -> None:
        """``UserImporter#remove_enrollments_if_last_login``: unless the user has another login not deleted,
        every enrollment of the user is deleted, and so are the observer enrollments linked to its student
        enrollments. The observer links themselves stay."""
        others = [
            self.pseudonyms[p]
            for p in self._user_pseudos[pseudo.user]
            if self.pseudonyms[p].state != "deleted" and self.pseudonyms[p].sis_user_id != user_id
        ]
        if others:
            return
        self._delete_enrollments(self._user_enrollments.get(pseudo.user, set()).copy(), None)

    # -- enrollments.csv ----------------------------------------------------------------------------------

    def _role(self, role: str | None) -> tuple[str, str] | None:
        """(base type, role) as ``SIS::EnrollmentImporter`` finds the role: a custom role by exact name,
        a built-in one by its name (``StudentEnrollment``) or by the role word, case-insensitively."""
        if role is None:
            return None
        if role in self.custom_roles:
            return self.custom_roles[role], role
        for pattern, base, word in BUILT_IN_ROLES:
            if role == base or pattern.match(role):
                return base, word
        return None

    def _enrollment_row(self, current: _Import, row: Row) -> bool:
        """``SIS::EnrollmentImporter`` (lib/sis/enrollment_importer.rb, lib/sis/models/enrollment.rb).

        An enrollment is its section + user + role (+ the observed user): another role makes another
        enrollment. Only ``course_id`` means the course's default section. The user is found by SIS id
        whatever its login's state: a suspended user's enrollments are applied as any other's; a deleted
        login gets Canvas's warnings below.
        """
        course_id, section_id, user_id = row.get("course_id"), row.get("section_id"), row.get("user_id")
        status, role = row.get("status"), row.get("role")
        where = f"course {course_id}" if course_id else f"section {_s(section_id)}"
        self._dates(current, row, f"Bad date format for user {_s(user_id)} in {where}")
        if not course_id and not section_id:
            raise RowError("No course_id or section_id given for an enrollment")
        if not user_id and not row.get("user_integration_id"):
            raise RowError("No user_id given for an enrollment")
        if not re.match(
            r"active|deleted|completed|inactive|deleted_last_completed", _s(status), re.IGNORECASE
        ):
            raise RowError(f'Improper status "{_s(status)}" for an enrollment')
        if current.skip_deletes and _matches("deleted", status):
            return False
        if row.get("temporary_enrollment_source_user_id") or row.get("root_account") or row.get("role_id"):
            raise UnmodelledFileError("temporary enrollments, trusted accounts and role ids are not modelled")
        if row.get("user_integration_id"):
            pseudo = self._pseudo_with_integration(row["user_integration_id"])
        else:
            pseudo = self._pseudo(user_id)
        if pseudo is None:
            raise RowError(
                f"User not found for enrollment (User ID: {_s(user_id)}, Course ID: {_s(course_id)}, "
                f"Section ID: {_s(section_id)})"
            )
        course = self.course(course_id) if course_id else None
        section = self.section(section_id) if section_id else None
        if course is None and section is None:
            raise RowError(
                f"Neither course nor section existed for user enrollment (Course ID: {_s(course_id)}, "
                f"Section ID: {_s(section_id)}, User ID: {_s(user_id)})"
            )
        if section_id and section is None:
            raise RowError(f"An enrollment referenced a non-existent section {section_id}")
        if course_id and course is None:
            raise RowError(f"An enrollment referenced a non-existent course {course_id}")
        section = section if section is not None else self._default_section(course)  # type: ignore[arg-type]
        course = course if course is not None else self.courses[section.course]
        if course.id != section.course:
            raise RowError(
                f"An enrollment listed a section ({_s(section_id)}) and a course ({_s(course_id)}) that are "
                f"unrelated for user ({_s(user_id)})"
            )
        found = self._role(role)
        if found is None:
            raise RowError(f'Improper role "{_s(role)}" for an enrollment')
        kind, role_name = found
        associated: int | None = None
        if row.get("associated_user_id") and kind == "ObserverEnrollment":
            observed = self._pseudo(row["associated_user_id"])
            if observed is None:
                raise RowError(
                    f"An enrollment referenced a non-existent associated user {row['associated_user_id']}"
                )
            associated = observed.user
        key = (section.id, pseudo.user, kind, role_name, associated)
        existing = self._enrollment_by_key.get(key)
        enrollment = self.enrollments[existing] if existing is not None else None
        if enrollment is None:
            enrollment = Enrollment(
                self._new_id(), pseudo.user, course.id, section.id, kind, role_name, associated, state=""
            )
        return self._enrollment_status(current, row, enrollment, pseudo, existing is None)

    def _enrollment_status(
        self, current: _Import, row: Row, enrollment: Enrollment, pseudo: Pseudonym, new: bool
    ) -> bool:
        """``EnrollmentImporter#enrollment_status``: the state the row gives the enrollment, with Canvas's
        warnings for a deleted login; ``deleted`` on an enrollment that exists is applied when the file has
        been read (``enrollments_to_delete``)."""
        user_id, course_id, status = _s(row.get("user_id")), _s(row.get("course_id")), _s(row.get("status"))
        if not new and enrollment.state == "deleted" and pseudo.state == "deleted":
            current.warn(f"Attempted enrolling with deleted sis login {pseudo.login} in course {course_id}")
            return False
        if re.match(r"active", status, re.IGNORECASE):
            state = "active"
            if pseudo.state == "deleted":
                others = [
                    self.pseudonyms[p]
                    for p in self._user_pseudos[pseudo.user]
                    if self.pseudonyms[p].state != "deleted" and self.pseudonyms[p].sis_user_id != user_id
                ]
                if others:
                    current.warn(
                        f"Enrolled a user {user_id} in course {course_id}, but referenced a deleted sis login"
                    )
                else:
                    state = "deleted"
                    current.warn(f"Attempted enrolling of deleted user {user_id} in course {course_id}")
        elif re.match(r"completed", status, re.IGNORECASE):
            state = "completed"
        elif re.match(r"inactive", status, re.IGNORECASE):
            state = "inactive"
        elif re.match(r"deleted_last_completed", status, re.IGNORECASE) and not self._other_active_enrollment(
            enrollment
        ):
            state = "completed"
        else:
            if new:
                state = "deleted"
            else:
                if enrollment.state == "deleted":
                    enrollment.batch = current.record.id
                else:
                    batch = current.record.id
                    current.deferred.append(lambda: self._delete_enrollments([enrollment.id], batch))
                return True
        if new:
            self._add_enrollment(enrollment)
        enrollment.batch = current.record.id
        if new or enrollment.state != state:
            self._set_enrollment_state(enrollment, state, new=new)
        return True

    def _other_active_enrollment(self, enrollment: Enrollment) -> bool:
        """Whether the user has another enrollment not deleted in the course with the same role and
        observed user (``deleted_last_completed``)."""
        return any(
            other.id != enrollment.id
            and other.state != "deleted"
            and (other.user, other.type, other.role, other.associated_user)
            == (enrollment.user, enrollment.type, enrollment.role, enrollment.associated_user)
            for other in (self.enrollments[e] for e in self._course_enrollments.get(enrollment.course, ()))
        )

    # -- admins.csv ---------------------------------------------------------------------------------------

    def _admin_row(self, current: _Import, row: Row) -> bool:
        """``SIS::AdminImporter`` (lib/sis/admin_importer.rb) on one row.

        The account is a sub-account found by SIS id among the active ones (blank: the root account), the
        role an account role of it by exact name, the user the holder of an *active* login with that SIS id
        (a suspended user is not found). ``active`` makes (or revives) the admin of that user, account and
        role, and marks it as the import's; ``deleted`` removes it only if an import made or touched it
        (``sis_batch_id``): an admin added in the UI stays. A deletion that finds nothing still counts.
        """
        user_id, account_id, role, status = (row.get(k) for k in ("user_id", "account_id", "role", "status"))
        if not user_id:
            raise RowError("No user_id given for admin")
        if not status:
            raise RowError("No status given for admin")
        if not role and not row.get("role_id"):
            raise RowError("No role_id or role given for admin")
        state = status.strip().lower()
        if state not in ("active", "deleted"):
            raise RowError(f"Invalid status {status} for admin")
        if current.skip_deletes and state == "deleted":
            return False
        if row.get("role_id") or row.get("root_account"):
            raise UnmodelledFileError("admins.csv role_id and root_account are not modelled")
        account: Account | None = None
        if account_id:
            account = self.account(account_id)
            if account is None or account.state != "active":
                raise RowError("Invalid account_id given for admin")
        if role != ACCOUNT_ADMIN and role not in self.account_roles:
            raise RowError(f"Invalid role '{_s(role)}' for admin")
        pseudo = self._pseudo(user_id)
        if pseudo is None or pseudo.state != "active":
            raise RowError(f"Invalid or unknown user_id '{user_id}' for admin")
        where = account.id if account is not None else None
        found = next(
            (
                a
                for a in self.account_users.values()
                if a.account == where
                and a.user == pseudo.user
                and a.role == role
                and (state == "active" or a.batch is not None)
            ),
            None,
        )
        key = (account_id, user_id, _s(role))
        if state == "active":
            if found is None:
                found = AccountUser(self._new_id(), where, pseudo.user, _s(role), state="")
                self.account_users[found.id] = found
            self._log("admin", key, found.state or None, "active")
            found.state, found.batch = "active", current.record.id
        elif found is not None:
            self._log("admin", key, found.state, "deleted")
            found.state, found.batch = "deleted", current.record.id
        return True

    # -- user_observers.csv -------------------------------------------------------------------------------

    def _user_observer_row(self, current: _Import, row: Row) -> bool:
        """``SIS::UserObserverImporter`` (lib/sis/user_observer_importer.rb) with ``UserObservationLink``
        (app/models/user_observation_link.rb): an active link enrols the observer as an observer in each of
        the student's active enrollments (and in those the student gets later); deleting the link deletes
        the observer enrollments linked to that student."""
        observer_id, student_id, status = row.get("observer_id"), row.get("student_id"), row.get("status")
        if not observer_id:
            raise RowError("No observer_id given for a user observer")
        if not student_id:
            raise RowError("No user_id given for a user observer")
        if student_id == observer_id:
            raise RowError(f"Can't observe yourself user {student_id}")
        if not re.fullmatch(r"active|deleted", _s(status), re.IGNORECASE):
            raise RowError(f'Improper status "{_s(status)}" for a user_observer')
        if current.skip_deletes and _matches("deleted", status):
            return False
        observer_login = self._pseudo(observer_id)
        if observer_login is None or observer_login.state == "deleted":
            raise RowError(f"An observer referenced a non-existent user {observer_id}")
        student_login = self._pseudo(student_id)
        if student_login is None or student_login.state == "deleted":
            raise RowError(f"A student referenced a non-existent user {student_id}")
        observer, student = observer_login.user, student_login.user
        if observer == student:
            raise RowError(f"Can't observe yourself user {student_id}")
        pair = (observer, student)
        link = self.links.get(self._link_by_pair.get(pair, -1))
        if _s(status).lower() == "active":
            if link is None:
                link = ObserverLink(self._new_id(), observer, student, state="")
                self.links[link.id] = link
                self._link_by_pair[pair] = link.id
                self._student_links.setdefault(student, set()).add(link.id)
            self._log("user_observer", (observer_id, student_id), link.state or None, "active")
            link.state, link.batch = "active", current.record.id
            for enrollment_id in sorted(self._user_enrollments.get(student, ())):
                enrollment = self.enrollments[enrollment_id]
                if enrollment.type == "StudentEnrollment" and enrollment.state in (
                    "active",
                    "invited",
                    "creation_pending",
                ):
                    self._mirror_for(observer, enrollment)
            return True
        if link is None or link.state == "deleted":
            raise RowError(
                f"Can't delete a non-existent observer for observer: {observer_id}, student: {student_id}"
            )
        self._log("user_observer", (observer_id, student_id), link.state, "deleted")
        link.state, link.batch = "deleted", current.record.id
        linked = [
            e
            for e in self._user_enrollments.get(observer, ())
            if self.enrollments[e].type == "ObserverEnrollment"
            and self.enrollments[e].associated_user == student
        ]
        self._delete_enrollments(linked, None)
        return True

    # -- batch mode ---------------------------------------------------------------------------------------

    def batch_term(self, term_id: str) -> Term | None:
        """The active term ``batch_mode_term_id`` names: ``sis_term_id:X`` or a term's Canvas id."""
        if term_id.startswith("sis_term_id:"):
            term = self.term(term_id.removeprefix("sis_term_id:"))
        else:
            term = self.terms.get(int(term_id)) if term_id.isdigit() else None
        return term if term is not None and term.state == "active" else None

    def _batch_cleanup(self, current: _Import) -> None:
        """``SisBatch#remove_previous_imports`` (app/models/sis_batch.rb).

        In the batch's terms (``multi_term_batch_mode``: the terms this import's terms.csv touched), the
        SIS courses, sections and enrollments of each type the import supplied (a header-only file counts)
        that this import did not touch are removed: enrollments get ``batch_mode_enrollment_drop_status``
        (deleted by default), sections and courses are deleted. Users, accounts, terms and observer links are
        never cleaned up. When the share of a type to remove exceeds ``change_threshold`` the batch is
        aborted before anything is removed.
        """
        record, options = current.record, current.options
        # Canvas refuses to clean up after a batch whose stored state is failed or aborted; during the
        # import it is still "importing", so a rejected file does not stop the cleanup.
        if "multi_term_batch_mode" in options:
            terms = {t.id for t in self.terms.values() if t.batch == record.id}
            if not terms:
                record.aborted = True
                record.messages.append(
                    Message(None, "Terms not found. Terms must be included with multi_term_batch_mode")
                )
                return
        else:
            term = self.batch_term(str(options.get("batch_mode_term_id", "")))
            if term is None:
                return
            terms = {term.id}
        supplied = set(record.supplied_batches)
        drop = str(options.get("batch_mode_enrollment_drop_status") or "deleted")

        def course_in_terms(course_id: int) -> bool:
            return self.courses[course_id].term in terms

        scopes: dict[str, list[Any]] = {}
        if "course" in supplied:
            scopes["courses"] = [
                c
                for c in self.courses.values()
                if c.state != "deleted" and c.batch is not None and c.sis_id is not None and c.term in terms
            ]
        if "section" in supplied:
            scopes["sections"] = [
                s
                for s in self.sections.values()
                if s.state != "deleted"
                and s.batch is not None
                and s.sis_id is not None
                and course_in_terms(s.course)
            ]
        if "enrollment" in supplied:
            scopes["enrollments"] = [
                e
                for e in self.enrollments.values()
                if e.state != "deleted"
                and e.state != drop
                and e.batch is not None
                and course_in_terms(e.course)
            ]
        gone = {name: [o for o in objects if o.batch != record.id] for name, objects in scopes.items()}
        threshold = _number(options, "change_threshold")
        for name in ("courses", "sections", "enrollments"):
            if (
                name in scopes
                and threshold
                and scopes[name]
                and len(gone[name]) / len(scopes[name]) * 100 > threshold
            ):
                record.aborted = True
                text = (
                    f"{len(gone[name])} {name} would be deleted and exceeds the set threshold of {threshold}%"
                )
                record.messages.append(Message(None, text))
                return
        if "enrollments" in gone:
            for enrollment in gone["enrollments"]:
                self._set_enrollment_state(enrollment, drop)
                enrollment.batch = record.id
            record.counts["batch_enrollments_deleted"] = len(gone["enrollments"])
        if "sections" in gone:
            for section in gone["sections"]:
                self._log("section", (section.sis_id,), section.state, "deleted")
                section.state, section.batch = "deleted", record.id
                self._delete_enrollments(self._section_enrollments.get(section.id, set()).copy(), record.id)
            record.counts["batch_sections_deleted"] = len(gone["sections"])
        if "courses" in gone:
            for course in gone["courses"]:
                self._delete_enrollments(self._course_enrollments.get(course.id, set()).copy(), record.id)
                self._log("course", (course.sis_id,), course.state, "deleted")
                self._coursework(course, "deleted")
                course.state, course.batch = "deleted", record.id
            record.counts["batch_courses_deleted"] = len(gone["courses"])

    # -- changes made by hand in Canvas (its UI or API): drift the imports did not make ------------------

    def ui_create_user(self, login: str, name: str, *, sis_user_id: str | None = None) -> int:
        """A user an admin adds by hand (no SIS batch); returns its Canvas id."""
        user = User(self._new_id(), name=name, sortable_name=_last_name_first(name))
        self.users[user.id] = user
        pseudo = Pseudonym(self._new_id(), user.id, login, None)
        self.pseudonyms[pseudo.id] = pseudo
        self._user_pseudos.setdefault(user.id, []).append(pseudo.id)
        self._logins.setdefault(login.lower(), set()).add(pseudo.id)
        self._set_pseudo_sis(pseudo, sis_user_id)
        return user.id

    def ui_edit_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        sortable_name: str | None = None,
        email: str | None = None,
        state: str | None = None,
    ) -> None:
        """A user edited by hand: names (they become sticky), the email (a communication channel, never
        sticky), the login's state (``suspended``: it becomes sticky)."""
        pseudo = self._login_of(user_id)
        user = self.users[pseudo.user]
        if name is not None:
            user.name = name
            user.stuck.add("name")
        if sortable_name is not None:
            user.sortable_name = sortable_name
            user.stuck.add("sortable_name")
        if email is not None:
            user.email = email
        if state is not None:
            pseudo.state = state
            pseudo.stuck.add("workflow_state")

    def ui_unlink(self, observer_id: str, student_id: str) -> None:
        """An observer link removed by hand: the link deleted, and the observer's enrollments linked to it."""
        observer, student = self._login_of(observer_id).user, self._login_of(student_id).user
        link = self.links[self._link_by_pair[(observer, student)]]
        link.state = "deleted"
        linked = [
            e
            for e in self._user_enrollments.get(observer, ())
            if self.enrollments[e].type == "ObserverEnrollment"
            and self.enrollments[e].associated_user == student
        ]
        self._delete_enrollments(linked, None)

    def ui_delete_user(self, user_id: str) -> None:
        """A user deleted by hand (``User#destroy``): every login deleted (its state sticky), every
        enrollment deleted."""
        user = self._login_of(user_id).user
        for pseudo_id in self._user_pseudos[user]:
            pseudo = self.pseudonyms[pseudo_id]
            pseudo.state = "deleted"
            pseudo.stuck.add("workflow_state")
        self._delete_enrollments(self._user_enrollments.get(user, set()).copy(), None)

    def ui_enroll(
        self, user_id: str, *, course_id: str, section_id: str | None = None, role: str = "student"
    ) -> None:
        """An enrollment added by hand (no SIS batch), in ``section_id`` or the course's default section."""
        pseudo, course = self._login_of(user_id), self.course(course_id)
        if course is None:
            raise KeyError(f"no course {course_id}")
        section = self.section(section_id) if section_id else self._default_section(course)
        found = self._role(role)
        if section is None or found is None:
            raise KeyError(f"no section {section_id} or role {role}")
        kind, role_name = found
        enrollment = Enrollment(self._new_id(), pseudo.user, course.id, section.id, kind, role_name, None)
        self._add_enrollment(enrollment)

    def ui_set_enrollment_state(self, section_id: str, user_id: str, role: str, state: str) -> None:
        """An enrollment concluded (``completed``), deactivated (``inactive``) or deleted by hand."""
        section, user = self.section(section_id), self._login_of(user_id).user
        for enrollment in self.enrollments.values():
            if section is not None and (enrollment.section, enrollment.user, enrollment.role) == (
                section.id,
                user,
                role,
            ):
                self._set_enrollment_state(enrollment, state)
                return
        raise KeyError(f"no enrollment {section_id} {user_id} {role}")

    def ui_move_course(
        self, course_id: str, *, term_id: str | None = None, account_id: str | None = None
    ) -> None:
        """A course moved to another term or account by hand: that field becomes sticky."""
        course = self.course(course_id)
        if course is None:
            raise KeyError(f"no course {course_id}")
        if term_id is not None:
            term = self.term(term_id)
            course.term = term.id if term else None
            course.stuck.add("enrollment_term_id")
        if account_id is not None:
            account = self.account(account_id)
            course.account = account.id if account else None
            course.stuck.add("account_id")

    def user_names(self, user_id: str) -> tuple[str | None, str | None, frozenset[str]]:
        """(name, sortable name, the fields of them changed by hand) of the user holding SIS id ``user_id``."""
        user = self.users[self._login_of(user_id).user]
        return user.name, user.sortable_name, frozenset(user.stuck)

    def _login_of(self, user_id: str) -> Pseudonym:
        pseudo = self._pseudo(user_id)
        if pseudo is None:
            raise KeyError(f"no user {user_id}")
        return pseudo

    # -- the provisioning report (lib/account_reports/sis_exporter.rb of the account_reports plugin) -------

    def provisioning_report(
        self, tables: Iterable[str], *, include_deleted: bool = False
    ) -> dict[str, bytes]:
        """The provisioning report's CSV of each of ``tables``, as Canvas renders this account.

        Columns, rows and values follow ``SisExporter`` (provisioning headers, ``include_deleted``'s scopes,
        the course and enrollment state words, ``created_by_sis`` = the object has a SIS batch); Ruby's
        CSV writes ``nil`` as an empty field and booleans as ``true``/``false``. Rows come in Canvas id order.
        """
        writers = {
            "users": self._report_users,
            "courses": self._report_courses,
            "sections": self._report_sections,
            "enrollments": self._report_enrollments,
            "user_observers": self._report_user_observers,
        }
        out: dict[str, bytes] = {}
        for table in tables:
            header, rows = writers[table](include_deleted)
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(
                [_ruby_csv_value(value) for value in row]
                for row in sorted(rows, key=lambda r: int(r[0] or 0))
            )
            out[table] = text.getvalue().encode()
        return out

    def _report_pseudo(self, user: int | None, include_deleted: bool) -> Pseudonym | None:
        """``SisPseudonym.for(user, require_sis: false)``: a live login with a SIS id, else any live login,
        else (``include_deleted``) a deleted login with a SIS id."""
        pseudos = [self.pseudonyms[p] for p in self._user_pseudos.get(user, [])] if user is not None else []
        live = [p for p in pseudos if p.state != "deleted"]
        deleted = [p for p in pseudos if p.state == "deleted" and p.sis_user_id] if include_deleted else []
        ranked = [p for p in live if p.sis_user_id] + live + deleted
        return ranked[0] if ranked else None

    def _account_ids(self, account: int | None) -> tuple[int, str | None]:
        """(Canvas id, SIS id) of an account; ``None`` is the root account."""
        if account is None:
            return ROOT_ACCOUNT_CANVAS_ID, None
        return account, self.accounts[account].sis_id

    def _report_users(self, include_deleted: bool) -> tuple[list[str], list[list[object]]]:
        header = [
            "canvas_user_id", "user_id", "integration_id", "authentication_provider_id", "login_id",
            "first_name", "last_name", "full_name", "sortable_name", "short_name", "email", "status",
            "created_by_sis",
        ]  # fmt: skip
        rows: list[list[object]] = []
        for pseudo in sorted(self.pseudonyms.values(), key=lambda p: p.id):
            if pseudo.state == "deleted" and not (include_deleted and pseudo.sis_user_id):
                continue
            user = self.users[pseudo.user]
            first, last = name_parts(user.sortable_name)
            rows.append(
                [
                    user.id, pseudo.sis_user_id, pseudo.integration_id, pseudo.provider, pseudo.login, first,
                    last, user.name, user.sortable_name, user.short_name, user.email, pseudo.state,
                    pseudo.batch is not None,
                ]
            )  # fmt: skip
        return header, rows

    def _report_courses(self, include_deleted: bool) -> tuple[list[str], list[list[object]]]:
        header = [
            "canvas_course_id", "course_id", "integration_id", "short_name", "long_name", "canvas_account_id",
            "account_id", "canvas_term_id", "term_id", "status", "start_date", "end_date", "course_format",
            "canvas_blueprint_course_id", "blueprint_course_id", "created_by_sis",
        ]  # fmt: skip
        rows: list[list[object]] = []
        for course in self.courses.values():
            if include_deleted:
                if course.state == "deleted" and course.sis_id is None:
                    continue
            elif course.state in ("deleted", "completed"):
                continue
            account_id, account_sis = self._account_ids(course.account)
            term = self.terms[course.term] if course.term is not None else None
            rows.append(
                [
                    course.id, course.sis_id, course.integration_id, course.short_name, course.long_name,
                    account_id, account_sis, term.id if term else DEFAULT_TERM_CANVAS_ID,
                    term.sis_id if term else None, COURSE_REPORT_STATES[course.state], course.start,
                    course.end, None, None, None, course.batch is not None,
                ]
            )  # fmt: skip
        return header, rows

    def _report_sections(self, include_deleted: bool) -> tuple[list[str], list[list[object]]]:
        header = [
            "canvas_section_id", "section_id", "canvas_course_id", "course_id", "integration_id", "name",
            "status", "start_date", "end_date", "canvas_account_id", "account_id", "created_by_sis",
        ]  # fmt: skip
        rows: list[list[object]] = []
        for section in self.sections.values():
            course = self.courses[section.course]
            if include_deleted:
                if section.state == "deleted" and not (section.sis_id and course.sis_id):
                    continue
            elif section.state == "deleted" or course.state == "deleted":
                continue
            account_id, account_sis = self._account_ids(course.account)
            rows.append(
                [
                    section.id, section.sis_id, course.id, course.sis_id, section.integration_id, section.name,
                    section.state, section.start, section.end, account_id, account_sis,
                    section.batch is not None,
                ]
            )  # fmt: skip
        return header, rows

    def _report_enrollments(self, include_deleted: bool) -> tuple[list[str], list[list[object]]]:
        header = [
            "canvas_course_id", "course_id", "canvas_user_id", "user_id", "role", "role_id",
            "canvas_section_id", "section_id", "status", "canvas_associated_user_id", "associated_user_id",
            "created_by_sis", "base_role_type", "limit_section_privileges", "canvas_enrollment_id",
        ]  # fmt: skip
        rows: list[list[object]] = []
        for enrollment in self.enrollments.values():
            if include_deleted:
                if enrollment.state == "deleted" and enrollment.batch is None:
                    continue
            elif enrollment.state in ("deleted", "completed"):
                continue
            pseudo = self._report_pseudo(enrollment.user, include_deleted)
            if pseudo is None:
                continue
            course, section = self.courses[enrollment.course], self.sections[enrollment.section]
            state = ENROLLMENT_REPORT_STATES[enrollment.state]
            if "deleted" in (section.state, course.state):
                state = "deleted"
            observed = self._report_pseudo(enrollment.associated_user, include_deleted)
            rows.append(
                [
                    course.id, course.sis_id, enrollment.user, pseudo.sis_user_id, enrollment.role,
                    CUSTOM_ROLE_ID if enrollment.role in self.custom_roles else ROLE_IDS[enrollment.type], section.id, section.sis_id, state,
                    enrollment.associated_user, observed.sis_user_id if observed else None,
                    enrollment.batch is not None, enrollment.type, False, enrollment.id,
                ]
            )  # fmt: skip
        return header, rows

    def _report_user_observers(self, include_deleted: bool) -> tuple[list[str], list[list[object]]]:
        """One row per link and pair of the student's and the observer's logins (the report joins them)."""
        header = [
            "canvas_observer_id",
            "observer_id",
            "canvas_student_id",
            "student_id",
            "status",
            "created_by_sis",
        ]
        rows: list[list[object]] = []
        for link in self.links.values():
            students = [self.pseudonyms[p] for p in self._user_pseudos.get(link.student, [])]
            observers = [self.pseudonyms[p] for p in self._user_pseudos.get(link.observer, [])]
            if not include_deleted:
                if link.state == "deleted":
                    continue
                students = [p for p in students if p.state == "active"]
            for student_login in students:
                for observer_login in observers:
                    rows.append(
                        [
                            link.observer, observer_login.sis_user_id, link.student, student_login.sis_user_id,
                            link.state, link.batch is not None,
                        ]
                    )  # fmt: skip
        return header, rows
