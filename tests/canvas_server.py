"""A local stand-in for Canvas's sis_imports API, used to record the vcrpy cassettes under tests/cassettes/.

It follows Canvas's sis_imports API (app/controllers/sis_imports_api_controller.rb, app/models/sis_batch.rb,
and the public SIS Imports API doc): multipart POST with an ``attachment`` field, root-account and
SIS-enabled checks, option validation with Canvas's messages, a state that moves on with each GET, errors
pages linked by ``Link`` headers, an errors file that appears a little after the end,
``/sis_imports/importing``, abort, ``restore_states`` returning a Progress, and a paged list with the
``created_since``, ``created_before`` and ``workflow_state[]`` filters. An import is stamped with the
double's clock (``FakeCanvas.now``) when it is created, and lists the files of its zip as
``csv_attachments`` (name and size) once it has started, as Canvas does once it has unpacked the zip.

``FakeCanvas.post_stall`` (a :class:`Stall`) holds the answer to the next POST after the import is
created, as a slow or dying connection would: the import exists, the client has no answer yet.

``GET /api/v1/accounts/:id`` answers with the account object of ``lib/api/v1/account.rb``
(``root_account_id`` null for a root account), for the pre-flight checks.

Without a model every import ends as the script says, with the same canned messages. With a
:class:`~tests.canvas_model.CanvasModel` (``FakeCanvas(model=...)``) each posted zip is applied to it, and
the import's final state, messages, counts, diffing fields, errors pages and errors file are the model's.

It also serves the account reports API for the provisioning report (app/controllers/account_reports_controller.rb,
lib/api/v1/account_report.rb): a POST of ``parameters[...]`` starts one, each GET moves it along its script
(``created`` → ``running`` → ``complete`` by default), and the complete report's attachment is the model's
:meth:`~tests.canvas_model.CanvasModel.provisioning_report`, rendered when the report completes: a zip of
``<table>.csv`` for several tables, one CSV for one (``AccountReports.report_attachment``).

The Terms API (app/controllers/terms_api_controller.rb, app/controllers/terms_controller.rb) serves the
model's terms: the list (``include[]=overrides``, paginated under ``enrollment_terms``), one term, and the
PUT that sets date overrides, with Canvas's refusals. Every request to it is kept (``term_requests``:
method, path, query and form, as Canvas received them) so a test can say exactly what was sent, and
``term_faults`` makes Canvas answer a status (a 500, a 403) to the next requests of a path.

It listens on 127.0.0.1 only, on a free port, in a daemon thread; every loop in it is bounded.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import orjson

from tests.canvas_model import OVERRIDE_TYPES, CanvasModel, ImportRecord, Term

TEST_TOKEN = "test-token-0123456789-not-a-secret"
ROOT_ACCOUNT = "1"
SUB_ACCOUNT = "2"
SIS_DISABLED_ACCOUNT = "3"
KNOWN_TERMS = frozenset({"7", "sis_term_id:T2025"})
TERMINAL = frozenset(
    {
        "imported",
        "imported_with_messages",
        "failed",
        "failed_with_messages",
        "aborted",
        "restored",
        "partially_restored",
    }
)
OPTION_KEYS = (
    "batch_mode",
    "batch_mode_term_id",
    "multi_term_batch_mode",
    "override_sis_stickiness",
    "add_sis_stickiness",
    "clear_sis_stickiness",
    "diffing_data_set_identifier",
    "diff_row_count_threshold",
    "diffing_drop_status",
    "skip_deletes",
    "change_threshold",
    "diffing_user_remove_status",
    "update_sis_id_if_login_claimed",
)
WARNINGS = [
    [
        "users.csv",
        "An existing Canvas user with the SIS ID U1 has already claimed U2's user_id requested login "
        "information, skipping",
    ],
    ["users.csv", "The email address associated with user 'U3' is invalid (email: 'nope')"],
    [
        "enrollments.csv",
        "Neither course nor section existed for user enrollment (Course ID: C9, Section ID: , User ID: U1)",
    ],
]
MAX_PER_PAGE = 2
STALL_LIMIT_S = 60.0  # a stalled answer is sent anyway after this long, so no test can hang on it
SEEDED_AGE = dt.timedelta(hours=1)
NOT_STARTED = frozenset({"initializing", "created"})
IMPORTING_STATES = frozenset({"importing", "cleanup_batch"})  # what /sis_imports/importing lists
# The accounts this Canvas holds: id → (name, parent_account_id, root_account_id).
ACCOUNTS = {
    ROOT_ACCOUNT: ("Test District", None, None),
    SUB_ACCOUNT: ("Lincoln Middle", ROOT_ACCOUNT, ROOT_ACCOUNT),
    SIS_DISABLED_ACCOUNT: ("Sandbox District", None, None),
}
# What Canvas answers an authenticated user who lacks a permission (ApplicationController
# #render_unauthorized_action, as the API renders it).
UNAUTHORIZED = {
    "status": "unauthorized",
    "errors": [{"message": "user not authorized to perform that action"}],
}
# The option values Canvas accepts (app/controllers/sis_imports_api_controller.rb), checked with a model.
CHOICES = {
    "diffing_drop_status": ("deleted", "completed", "inactive", "deleted_last_completed"),
    "diffing_user_remove_status": ("deleted", "suspended"),
    "batch_mode_enrollment_drop_status": ("deleted", "completed", "inactive"),
}


# The provisioning report's tables in SisExporter::SIS_CSV_REPORTS order (the zip's order), and the ones the
# model renders.
REPORT_TABLES = (
    "users",
    "accounts",
    "terms",
    "courses",
    "sections",
    "enrollments",
    "groups",
    "group_membership",
    "group_categories",
    "xlist",
    "user_observers",
    "admins",
)
MODELLED_REPORT_TABLES = frozenset({"users", "courses", "sections", "enrollments", "user_observers"})
AVAILABLE_REPORTS = frozenset({"provisioning_csv", "sis_export_csv"})
REPORT_FILE_ID_BASE = 7000
ERRORS_FILE_ID_BASE = 9000


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in {"1", "true", "on", "yes"}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def zip_listing(payload: bytes) -> list[tuple[str, int]]:
    """The files of a posted zip as Canvas stores them: base name and size, empty ones skipped."""
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            return [
                (info.filename.rsplit("/", 1)[-1], info.file_size)
                for info in archive.infolist()
                if not info.is_dir() and info.file_size
            ]
    except zipfile.BadZipFile:
        return []


class Stall:
    """Holds a request's answer until :meth:`release` (or :data:`STALL_LIMIT_S`); ``reached`` is set once a
    request is being held."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.released = threading.Event()

    def hold(self) -> None:
        self.reached.set()
        self.released.wait(STALL_LIMIT_S)

    def release(self) -> None:
        self.released.set()


@dataclass
class FakeReport:
    """One account report: its parameters as posted, its script of states, and its file once complete."""

    id: int
    report: str
    parameters: dict[str, str]
    script: list[tuple[str, int]]
    gets: int = 0
    state: str = "created"
    progress: int = 0
    file: bytes | None = None
    file_name: str = ""
    content_type: str = "application/zip"


@dataclass
class FakeImport:
    id: int
    options: dict[str, Any]
    script: list[tuple[str, int]]
    attachment_delay_gets: int
    gets: int = 0
    gets_after_end: int = 0
    state: str = "created"
    progress: int = 0
    created_at: str = "2025-01-06T10:00:00Z"
    files: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class TermRequest:
    """One request to the Terms API as Canvas received it: the form's fields in the order sent."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    form: tuple[tuple[str, str], ...] = ()


def canvas_time(value: str | None) -> str | None:
    """A time as Canvas's API writes it: UTC, ``Z``."""
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def term_json(term: Term, *, overrides: bool) -> dict[str, Any]:
    """``Api::V1::EnrollmentTerm#enrollment_term_json``: the term, and its overrides when asked for."""
    body: dict[str, Any] = {
        "id": term.id,
        "name": term.name,
        "start_at": canvas_time(term.start),
        "end_at": canvas_time(term.end),
        "created_at": "2025-01-06T10:00:00Z",
        "workflow_state": term.state,
        "grading_period_group_id": None,
        "sis_term_id": term.sis_id,
        "sis_import_id": term.batch,
    }
    if overrides:
        body["overrides"] = {
            kind: {"start_at": canvas_time(o.start), "end_at": canvas_time(o.end)}
            for kind, o in sorted(term.overrides.items())
        }
    return body


@dataclass
class FakeCanvas:
    """The server's state. Tests configure it before requests arrive (the handler takes ``lock``).

    A ``model`` applies each import when it is posted, so aborting the import later does not undo it.
    """

    script: list[tuple[str, int]] = field(
        default_factory=lambda: [
            ("created", 0),
            ("importing", 40),
            ("importing", 80),
            ("imported_with_messages", 100),
        ]
    )
    attachment_delay_gets: int = 2
    running: list[int] = field(default_factory=list)
    imports: dict[int, FakeImport] = field(default_factory=dict)
    progresses: dict[int, dict[str, Any]] = field(default_factory=dict)
    posted_forms: list[dict[str, str]] = field(default_factory=list)
    next_id: int = 101
    lock: threading.Lock = field(default_factory=threading.Lock)
    model: CanvasModel | None = None  # set it to apply each import to a model of the account
    now: Callable[[], dt.datetime] = utc_now  # stamps created_at
    post_stall: Stall | None = None  # holds the answer to the next POST, once the import exists
    report_script: list[tuple[str, int]] = field(
        default_factory=lambda: [("created", 0), ("running", 50), ("complete", 100)]
    )
    reports: dict[int, FakeReport] = field(default_factory=dict)
    report_forms: list[dict[str, str]] = field(default_factory=list)
    next_report_id: int = 1
    term_requests: list[TermRequest] = field(default_factory=list)
    term_faults: dict[str, list[int]] = field(default_factory=dict)  # path -> statuses to answer first
    import_permission: bool = True  # False: the token's user may read the account but not import SIS data
    # With a model: given each posted zip, a final state to end that import in without applying it
    # ("failed": Canvas gave up before it changed anything), or None to apply it.
    fail: Callable[[bytes], str | None] | None = None
    arrivals: list[float] = field(default_factory=list)  # time.time() as each request reached the handler

    def record(self, item: FakeImport) -> ImportRecord | None:
        """What the model did with ``item`` (``None`` without a model, or for a seeded import)."""
        if self.model is None:
            return None
        return next((r for r in self.model.imports if r.id == item.id), None)

    def seed(self, count: int, state: str = "imported") -> None:
        for _ in range(count):
            item = FakeImport(self.next_id, {}, [(state, 100)], 0, state=state, progress=100)
            item.created_at = stamp(self.now() - SEEDED_AGE)
            self.imports[item.id] = item
            self.next_id += 1

    def report_json(self, item: FakeReport, origin: str) -> dict[str, Any]:
        """The Report object (``Api::V1::AccountReport#account_report_json``)."""
        done = item.state in ("complete", "error", "aborted")
        body: dict[str, Any] = {
            "id": item.id,
            "progress": item.progress,
            "parameters": item.parameters,
            "current_line": None,
            "status": item.state,
            "report": item.report,
            "created_at": "2025-01-06T10:00:00Z",
            "started_at": None if item.state == "created" else "2025-01-06T10:00:02Z",
            "ended_at": "2025-01-06T10:01:00Z" if done else None,
            "file_url": None,
        }
        if item.file is not None:
            file_id = REPORT_FILE_ID_BASE + item.id
            url = f"{origin}/files/{file_id}/download?download_frd=1&verifier=r3p0rt{item.id}"
            body["file_url"] = f"{origin}/accounts/{ROOT_ACCOUNT}/files/{file_id}/download"
            body["attachment"] = {
                "id": file_id,
                "uuid": f"report-file-{item.id}",
                "folder_id": None,
                "display_name": item.file_name,
                "filename": item.file_name,
                "upload_status": "success",
                "content-type": item.content_type,
                "url": url,
                "size": len(item.file),
                "created_at": "2025-01-06T10:01:00Z",
                "updated_at": "2025-01-06T10:01:00Z",
                "locked": False,
                "hidden": False,
                "mime_class": "zip" if item.content_type == "application/zip" else "file",
            }
        return body

    def render_report(self, item: FakeReport) -> None:
        """Give a report that has just completed its file: the model's provisioning report of its tables."""
        tables = [t for t in REPORT_TABLES if _truthy(item.parameters.get(t))]
        unmodelled = sorted(set(tables) - MODELLED_REPORT_TABLES)
        if unmodelled or self.model is None:
            raise NotImplementedError(f"the test double renders no report of {unmodelled or tables}")
        csvs = self.model.provisioning_report(
            tables, include_deleted=_truthy(item.parameters.get("include_deleted"))
        )
        stem = f"{item.report}_06_Jan_2025_{item.id}"
        item.parameters["extra_text"] = (
            "Term: All Terms; "
            + ("Include Deleted Objects; " if _truthy(item.parameters.get("include_deleted")) else "")
            + f"Reports: {' '.join(tables)} "
        )
        if len(tables) == 1:
            item.file, item.file_name, item.content_type = csvs[tables[0]], f"{stem}.csv", "text/csv"
            return
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for table in tables:
                archive.writestr(
                    zipfile.ZipInfo(f"{table}.csv", date_time=(2025, 1, 6, 10, 1, 0)), csvs[table]
                )
        item.file, item.file_name = out.getvalue(), f"{stem}.zip"

    def sis_import_json(self, item: FakeImport, origin: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": item.id,
            "created_at": item.created_at,
            "started_at": None if item.state in {"created", "initializing"} else "2025-01-06T10:00:05Z",
            "ended_at": "2025-01-06T10:03:00Z" if item.state in TERMINAL else None,
            "updated_at": "2025-01-06T10:03:00Z",
            "progress": item.progress,
            "workflow_state": item.state,
            "data": {"import_type": "instructure_csv"},
        }
        for key in OPTION_KEYS:
            body[key] = item.options.get(key)
        body["diffing_remaster"] = item.options.get("diffing_remaster_data_set")
        body["diffed_against_import_id"] = None
        body["skip_deletes"] = bool(item.options.get("skip_deletes"))
        body["update_sis_id_if_login_claimed"] = bool(item.options.get("update_sis_id_if_login_claimed"))
        if item.files and item.state not in NOT_STARTED:
            body["csv_attachments"] = [
                {"id": 7000 + 10 * item.id + n, "display_name": name, "filename": name, "size": size}
                for n, (name, size) in enumerate(item.files)
            ]
        record = self.record(item)
        if record is not None:
            return self._modelled_json(body, item, record, origin)
        if item.state in TERMINAL:
            warnings = WARNINGS if item.state.endswith("_with_messages") else []
            failures = (
                [["bad.csv", "Couldn't find Canvas CSV import headers"]]
                if item.state.startswith("failed")
                else []
            )
            body["data"].update(
                {
                    "supplied_batches": ["user", "enrollment"],
                    "completed_importers": ["user", "enrollment"],
                    "running_immediately": True,
                    "counts": {
                        "accounts": 0,
                        "terms": 0,
                        "courses": 0,
                        "sections": 0,
                        "users": 3,
                        "enrollments": 4,
                        "error_count": len(failures),
                        "warning_count": len(warnings),
                    },
                }
            )
            if warnings:
                body["processing_warnings"] = warnings
            if failures:
                body["processing_errors"] = failures
            if warnings and item.gets_after_end >= item.attachment_delay_gets:
                body["errors_attachment"] = {
                    "id": 9000 + item.id,
                    "display_name": f"sis_errors_attachment_{item.id}.csv",
                    "content-type": "text/csv",
                    "url": f"{origin}/files/{9000 + item.id}/download?download_frd=1&verifier=v3r1f13r",
                }
        return body

    def _modelled_json(
        self, body: dict[str, Any], item: FakeImport, record: ImportRecord, origin: str
    ) -> dict[str, Any]:
        """The SisImport as ``SisBatch#as_json`` shows what the model did (once the import has ended)."""
        body["diffed_against_import_id"] = record.diffed_against
        if record.identifier:
            body["diffing_threshold_exceeded"] = record.threshold_exceeded
        if item.state not in TERMINAL:
            return body
        body["data"].update(
            {
                "supplied_batches": record.supplied_batches,
                "completed_importers": record.supplied_batches,
                "running_immediately": True,
                "counts": dict(record.counts),
            }
        )
        if record.diffed_against is not None:
            body["data"]["diffed_against_sis_batch_id"] = record.diffed_against
        if record.warnings:
            body["processing_warnings"] = record.processing(failures=False)
        if record.failures:
            body["processing_errors"] = record.processing(failures=True)
        if record.messages and item.gets_after_end >= item.attachment_delay_gets:
            body["errors_attachment"] = {
                "id": 9000 + item.id,
                "display_name": f"sis_errors_attachment_{item.id}.csv",
                "content-type": "text/csv",
                "url": f"{origin}/files/{9000 + item.id}/download?download_frd=1&verifier=v3r1f13r",
            }
        return body


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read responses, not logs."""

    @property
    def canvas(self) -> FakeCanvas:
        return self.server.canvas

    @property
    def origin(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _send(
        self, status: int, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None
    ) -> None:
        """Keep the answer; :meth:`_answer` sends it once the lock is released (and any stall is over)."""
        self._answer = (status, body, headers, raw)

    def _flush(self) -> None:
        status, body, headers, raw = self._answer
        payload = raw if raw is not None else orjson.dumps(body)
        self.send_response(status)
        content_type = "text/csv" if raw is not None else "application/json; charset=utf-8"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {TEST_TOKEN}":
            return True
        self._send(401, {"errors": [{"message": "Invalid access token."}]})
        return False

    def _account_ok(self, account: str) -> bool:
        if account == SUB_ACCOUNT:
            self._send(400, {"errors": ["SIS imports can only be executed on root accounts"]})
            return False
        if account == SIS_DISABLED_ACCOUNT:
            self._send(403, {"errors": ["SIS imports are not enabled for this account"]})
            return False
        if account not in (ROOT_ACCOUNT, "self"):
            self._send(404, {"errors": [{"message": "The specified resource does not exist."}]})
            return False
        return True

    def _handle(self, method: str) -> None:
        arrived = time.time()
        with self.canvas.lock:
            self.canvas.arrivals.append(arrived)
        self._stall: Stall | None = None
        self._route(method)
        if self._stall is not None:
            self._stall.hold()
        self._flush()

    def _route(self, method: str) -> None:
        if not self._authorised():
            return
        parts = urlsplit(self.path)
        self._query_lists = parse_qs(parts.query)
        query = {k: v[-1] for k, v in self._query_lists.items()}
        path = parts.path
        with self.canvas.lock:
            if match := re.fullmatch(r"/api/v1/accounts/([^/]+)/terms(?:/([^/]+))?", path):
                return self._terms(method, match.group(1), match.group(2), parts.query)
            if method == "GET" and (match := re.fullmatch(r"/files/(\d+)/download", path)):
                if int(match.group(1)) - REPORT_FILE_ID_BASE in self.canvas.reports:
                    return self._report_file(int(match.group(1)) - REPORT_FILE_ID_BASE)
                return self._errors_file(int(match.group(1)))
            if match := re.fullmatch(r"/api/v1/accounts/([^/]+)/reports/([a-z_]+)(?:/(\d+))?", path):
                account, report, which = match.groups()
                if not self._account_ok(account):
                    return None
                return self._report(method, report, int(which) if which else None)
            if method == "GET" and (match := re.fullmatch(r"/api/v1/progress/(\d+)", path)):
                return self._progress(int(match.group(1)))
            if method == "GET" and (match := re.fullmatch(r"/api/v1/accounts/([^/]+)", path)):
                return self._account(match.group(1))
            match = re.fullmatch(
                r"/api/v1/accounts/([^/]+)/sis_imports(?:/(importing|\d+))?(?:/([a-z_]+))?", path
            )
            if not match:
                return self._send(404, {"errors": [{"message": "The specified resource does not exist."}]})
            account, which, action = match.groups()
            if not self._account_ok(account):
                return None
            if not self.canvas.import_permission:
                return self._send(401, UNAUTHORIZED)
            base = f"{self.origin}/api/v1/accounts/{account}/sis_imports"
            if method == "POST" and which is None:
                return self._create()
            if method == "GET" and which is None:
                return self._list(base, query)
            if method == "GET" and which == "importing":
                running = [
                    item
                    for key, item in sorted(self.canvas.imports.items())
                    if key in self.canvas.running or item.state in IMPORTING_STATES
                ]
                return self._send(
                    200, {"sis_imports": [self.canvas.sis_import_json(i, self.origin) for i in running]}
                )
            item = self.canvas.imports.get(int(which)) if which and which.isdigit() else None
            if item is None:
                return self._send(404, {"errors": [{"message": "The specified resource does not exist."}]})
            if method == "GET" and action is None:
                return self._show(item)
            if method == "GET" and action == "sis_import_errors":
                return self._errors(item, base, query)
            if method == "PUT" and action == "abort":
                return self._abort(item)
            if method == "PUT" and action == "restore_states":
                return self._restore(item)
            return self._send(404, {"errors": [{"message": "The specified resource does not exist."}]})

    # -- the Terms API ------------------------------------------------------------------------------------

    def _terms(self, method: str, account: str, which: str | None, raw_query: str) -> None:
        query = tuple(parse_qsl(raw_query, keep_blank_values=True))
        form: tuple[tuple[str, str], ...] = ()
        if method == "PUT":
            length = int(self.headers.get("Content-Length") or 0)
            form = tuple(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
        path = urlsplit(self.path).path
        self.canvas.term_requests.append(TermRequest(method, path, query, form))
        faults = self.canvas.term_faults.get(path)
        if faults:
            status = faults.pop(0)
            message = "Rate Limit Exceeded" if status == 403 else "Internal Server Error"
            return self._send(status, {"errors": [{"message": message}]})
        if account == SUB_ACCOUNT:
            return self._send(400, {"message": "Terms only belong to root_accounts."})
        if account not in (ROOT_ACCOUNT, "self"):
            return self._send(404, {"errors": [{"message": "The specified resource does not exist."}]})
        model = self.canvas.model
        if which is None and method == "GET":
            return self._term_list(
                model, dict(query), path, "overrides" in [v for k, v in query if k == "include[]"]
            )
        term = model.term_by_ref(which) if model is not None and which is not None else None
        if term is None:
            return self._send(404, {"errors": [{"message": "The specified resource does not exist."}]})
        if method == "GET":
            return self._send(200, term_json(term, overrides=True))
        if method == "PUT":
            return self._term_update(model, term, form)
        return self._send(404, {"errors": [{"message": "The specified resource does not exist."}]})

    def _term_list(
        self, model: CanvasModel | None, query: dict[str, str], path: str, overrides: bool
    ) -> None:
        """``TermsApiController#index``: active terms by start and end (newest first), then id, paginated
        (the links keep the query's ``include[]``)."""
        terms = sorted(
            (t for t in (model.terms.values() if model else ()) if t.state == "active"), key=lambda t: t.id
        )
        terms.sort(key=lambda t: canvas_time(t.end) or "", reverse=True)
        terms.sort(key=lambda t: canvas_time(t.start) or "", reverse=True)
        items = [term_json(t, overrides=overrides) for t in terms]
        chunk, headers = self._page(items, f"{self.origin}{path}", query)
        self._send(200, {"enrollment_terms": chunk}, headers)

    def _term_update(self, model: CanvasModel | None, term: Term, form: tuple[tuple[str, str], ...]) -> None:
        """``TermsController#update`` of the overrides: the enrollment types must be Canvas's, an end may not
        come before its start, and each type given gets both its dates (``EnrollmentTerm#set_overrides``)."""
        assert model is not None
        given = [(k, v) for k, v in form if k.startswith("enrollment_term[")]
        if not given:
            return self._send(400, {"message": "param is missing or the value is empty: enrollment_term"})
        overrides: dict[str, dict[str, str | None]] = {}
        for key, value in given:
            match = re.fullmatch(r"enrollment_term\[overrides\]\[([^\]]+)\]\[(start_at|end_at)\]", key)
            if match:
                overrides.setdefault(match.group(1), {})[match.group(2)] = value
        if any(kind not in OVERRIDE_TYPES for kind in overrides):
            return self._send(400, {"message": "Invalid enrollment type in overrides"})
        for dates in overrides.values():
            start, end = canvas_time(dates.get("start_at") or None), canvas_time(dates.get("end_at") or None)
            if start and end and end < start:
                return self._send(
                    400, {"errors": {"base": [{"message": "End dates cannot be before start dates"}]}}
                )
        model.set_term_overrides(term, overrides)
        self._send(200, term_json(term, overrides=True))

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _report(self, method: str, report: str, which: int | None) -> None:
        if report not in AVAILABLE_REPORTS:
            return self._send(404, {"errors": [{"message": "The specified resource does not exist."}]})
        if method == "POST" and which is None:
            fields, _ = self._form()
            self.canvas.report_forms.append(fields)
            parameters = {
                match.group(1): value
                for key, value in fields.items()
                if (match := re.fullmatch(r"parameters\[([a-z_]+)\]", key))
            }
            item = FakeReport(self.canvas.next_report_id, report, parameters, list(self.canvas.report_script))
            self.canvas.next_report_id += 1
            self.canvas.reports[item.id] = item
            return self._send(200, self.canvas.report_json(item, self.origin))
        item = self.canvas.reports.get(which) if which is not None else None
        if method != "GET" or item is None or item.report != report:
            return self._send(404, {"errors": [{"message": "The specified resource does not exist."}]})
        if item.gets < len(item.script):
            item.state, item.progress = item.script[item.gets]
            item.gets += 1
            if item.state == "complete" and item.file is None:
                self.canvas.render_report(item)
        return self._send(200, self.canvas.report_json(item, self.origin))

    def _report_file(self, report_id: int) -> None:
        item = self.canvas.reports[report_id]
        if item.file is None:
            return self._send(404, {"errors": [{"message": "The specified resource does not exist."}]})
        self.send_response(200)
        self.send_header("Content-Type", item.content_type)
        self.send_header("Content-Length", str(len(item.file)))
        self.send_header("Content-Disposition", f'attachment; filename="{item.file_name}"')
        self.end_headers()
        self.wfile.write(item.file)
        return None

    def _account(self, account: str) -> None:
        known = ACCOUNTS.get(ROOT_ACCOUNT if account == "self" else account)
        if known is None:
            return self._send(404, {"errors": [{"message": "The specified resource does not exist."}]})
        name, parent, root = known
        number = int(ROOT_ACCOUNT if account == "self" else account)
        body: dict[str, Any] = {
            "id": number,
            "name": name,
            "workflow_state": "active",
            "parent_account_id": None if parent is None else int(parent),
            "root_account_id": None if root is None else int(root),
            "uuid": f"account-uuid-{number}",
            "default_storage_quota_mb": 500,
            "default_user_storage_quota_mb": 50,
            "default_group_storage_quota_mb": 50,
            "default_time_zone": "America/Los_Angeles",
        }
        if parent is not None:
            body["sis_account_id"] = f"school-{number}"
        return self._send(200, body)

    def _form(self) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            return {k: v[-1] for k, v in parse_qs(body.decode()).items()}, {}
        if not content_type.startswith("multipart/form-data"):
            return {}, {}
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        fields: dict[str, str] = {}
        files: dict[str, tuple[str, bytes]] = {}
        for part in message.iter_parts():
            assert isinstance(part, Message)
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            payload = part.get_payload(decode=True)
            assert isinstance(name, str)
            assert isinstance(payload, bytes)
            if filename is not None:
                files[name] = (filename, payload)
            else:
                fields[name] = payload.decode()
        return fields, files

    def _create(self) -> None:
        fields, files = self._form()
        self.canvas.posted_forms.append(fields)
        if "attachment" not in files:
            return self._send(400, {"error": True, "error_message": "Missing attachment"})
        model = self.canvas.model
        if _truthy(fields.get("batch_mode")):
            term = fields.get("batch_mode_term_id")
            known = model.batch_term(term or "") is not None if model is not None else term in KNOWN_TERMS
            if not known and "multi_term_batch_mode" not in fields:
                message = "Batch mode specified, but the given batch_mode_term_id cannot be found."
                return self._send(400, {"message": message})
        if "multi_term_batch_mode" in fields and not fields.get("change_threshold"):
            return self._send(400, {"message": "change_threshold is required to use multi term_batch mode."})
        for name, allowed in CHOICES.items() if model is not None else ():
            if fields.get(name) and fields[name] not in allowed:
                return self._send(400, {"message": f"Invalid {name}"})
        options: dict[str, Any] = {}
        for key, value in fields.items():
            if key in {"import_type", "extension"}:
                continue
            options[key] = int(value) if key.endswith("threshold") else (_truthy(value) or value)
        item = FakeImport(
            self.canvas.next_id,
            options,
            list(self.canvas.script),
            self.canvas.attachment_delay_gets,
            created_at=stamp(self.canvas.now()),
            files=zip_listing(files["attachment"][1]),
        )
        if model is not None:
            filename, attachment = files["attachment"]
            forced = self.canvas.fail(attachment) if self.canvas.fail is not None else None
            running = [step for step in item.script if step[0] not in TERMINAL]
            if forced is not None:
                item.script = [*running, (forced, 100)]
            else:
                record = model.apply(item.id, options, attachment, filename=filename)
                item.script = [*running, (record.workflow_state, 100)]
        self.canvas.next_id += 1
        self.canvas.imports[item.id] = item
        self._send(200, self.canvas.sis_import_json(item, self.origin))
        self._stall, self.canvas.post_stall = self.canvas.post_stall, None

    def _show(self, item: FakeImport) -> None:
        if item.state in TERMINAL:
            item.gets_after_end += 1
        else:
            item.state, item.progress = item.script[min(item.gets, len(item.script) - 1)]
            item.gets += 1
        self._send(200, self.canvas.sis_import_json(item, self.origin))

    def _page(self, items: list[Any], url: str, query: dict[str, str]) -> tuple[list[Any], dict[str, str]]:
        per_page = min(int(query.get("per_page", "10")), MAX_PER_PAGE)
        page = int(query.get("page", "1"))
        chunk = items[(page - 1) * per_page : page * per_page]
        # Canvas's links repeat the request's filters (created_since, workflow_state[], ...).
        kept = [(k, v) for k, vs in self._query_lists.items() if k not in ("page", "per_page") for v in vs]
        filters = f"&{urlencode(kept)}" if kept else ""
        links = [f'<{url}?page={page}&per_page={per_page}{filters}>; rel="current"']
        if page * per_page < len(items):
            links.append(f'<{url}?page={page + 1}&per_page={per_page}{filters}>; rel="next"')
        if page > 1:
            links.append(f'<{url}?page={page - 1}&per_page={per_page}{filters}>; rel="prev"')
        links.append(f'<{url}?page=1&per_page={per_page}{filters}>; rel="first"')
        return chunk, {"Link": ",".join(links)}

    def _list(self, base: str, query: dict[str, str]) -> None:
        newest_first = sorted(self.canvas.imports.values(), key=lambda i: -i.id)
        since = _parse_time(query.get("created_since", ""))
        before = _parse_time(query.get("created_before", ""))
        states = self._query_lists.get("workflow_state[]", [])
        newest_first = [
            item
            for item in newest_first
            if (since is None or (_parse_time(item.created_at) or since) > since)
            and (before is None or (_parse_time(item.created_at) or before) < before)
            and (not states or item.state in states)
        ]
        items = [self.canvas.sis_import_json(i, self.origin) for i in newest_first]
        chunk, headers = self._page(items, base, query)
        self._send(200, {"sis_imports": chunk}, headers)

    def _error_rows(self, item: FakeImport, failures_only: bool = False) -> list[dict[str, Any]]:
        record = self.canvas.record(item)
        if record is not None:
            if item.state not in TERMINAL:
                return []
            return [
                {
                    "sis_import_id": item.id,
                    "file": m.file,
                    "message": m.message,
                    "row": m.row,
                    "row_info": None,
                }
                for m in record.messages
                if m.failure or not failures_only
            ]
        if not item.state.endswith("_with_messages"):
            return []
        return [
            {"sis_import_id": item.id, "file": file, "message": message, "row": row, "row_info": None}
            for row, (file, message) in enumerate(WARNINGS, start=2)
        ]

    def _errors(self, item: FakeImport, base: str, query: dict[str, str]) -> None:
        failures_only = self.canvas.model is not None and _truthy(query.get("failure"))
        rows = self._error_rows(item, failures_only)
        chunk, headers = self._page(rows, f"{base}/{item.id}/sis_import_errors", query)
        self._send(200, {"sis_import_errors": chunk}, headers)

    def _errors_file(self, file_id: int) -> None:
        item = self.canvas.imports.get(file_id - 9000)
        if item is None:
            return self._send(404, {"errors": [{"message": "The specified resource does not exist."}]})
        if self.canvas.record(item) is not None:
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["sis_import_id", "file", "message", "row"])
            for error in self._error_rows(item):
                writer.writerow([item.id, error["file"] or "", error["message"], error["row"] or ""])
            return self._send(200, None, raw=out.getvalue().encode())
        lines = ["sis_import_id,file,message,row"]
        for row in self._error_rows(item):
            message = '"' + row["message"].replace('"', '""') + '"'
            lines.append(f"{item.id},{row['file']},{message},{row['row']}")
        self._send(200, None, raw=("\n".join(lines) + "\n").encode())

    def _abort(self, item: FakeImport) -> None:
        if item.state in TERMINAL:
            return self._send(404, {"errors": [{"message": "The specified resource does not exist."}]})
        item.state = "aborted"
        self._send(200, self.canvas.sis_import_json(item, self.origin))

    def _restore(self, item: FakeImport) -> None:
        fields, _ = self._form()
        if _truthy(fields.get("undelete_only")) and _truthy(fields.get("unconclude_only")):
            return self._send(400, "cannot set both undelete_only and unconclude_only")
        progress_id = len(self.canvas.progresses) + 1
        filtered = any(_truthy(fields.get(k)) for k in ("batch_mode", "undelete_only", "unconclude_only"))
        progress = {
            "id": progress_id,
            "context_id": item.id,
            "context_type": "SisBatch",
            "user_id": None,
            "tag": "sis_batch_state_restore",
            "completion": 0,
            "workflow_state": "queued",
            "updated_at": "2025-01-06T11:00:00Z",
            "message": None,
            "url": f"{self.origin}/api/v1/progress/{progress_id}",
            "_script": [("running", 50), ("completed", 100)],
            "_final_state": "partially_restored" if filtered else "restored",
        }
        self.canvas.progresses[progress_id] = progress
        item.state = "restoring"
        self._send(200, {k: v for k, v in progress.items() if not k.startswith("_")})

    def _progress(self, progress_id: int) -> None:
        progress = self.canvas.progresses.get(progress_id)
        if progress is None:
            return self._send(404, {"errors": [{"message": "The specified resource does not exist."}]})
        if progress["_script"]:
            progress["workflow_state"], progress["completion"] = progress["_script"].pop(0)
            if progress["workflow_state"] == "completed":
                self.canvas.imports[progress["context_id"]].state = progress["_final_state"]
        self._send(200, {k: v for k, v in progress.items() if not k.startswith("_")})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    canvas: FakeCanvas


class CanvasTestServer:
    """``with CanvasTestServer() as server:`` a fake Canvas at ``server.base_url`` until the block ends."""

    def __init__(self, canvas: FakeCanvas | None = None) -> None:
        self.canvas = canvas or FakeCanvas()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.canvas = self.canvas
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> CanvasTestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
