"""Canvas's account reports: start the provisioning report, follow it to its end, stream its file to disk.

The API (canvas-lms ``app/controllers/account_reports_controller.rb``, ``lib/api/v1/account_report.rb`` and
the public Account Reports API doc):

* ``POST /api/v1/accounts/:account_id/reports/:report`` with ``parameters[...]`` form fields starts a report
  and answers with the Report object (``id``, ``report``, ``status``, ``progress``, ``parameters``, ...);
* ``GET /api/v1/accounts/:account_id/reports/:report/:id`` is its state: ``status`` goes ``created`` →
  ``running`` (→ ``compiling``) → ``complete``, or ends ``error``, ``aborted`` or ``deleted``
  (``app/models/account_report.rb``); a complete report carries ``attachment`` (a File object whose
  ``url`` downloads it) and ``file_url``.

The provisioning report (``provisioning_csv``, the plugin's ``lib/account_reports/sis_exporter.rb``) writes
one CSV per table whose parameter is true; with several tables the file is a zip holding ``<table>.csv``
for each (``AccountReports.report_attachment``). Without ``include_deleted`` it leaves out deleted objects
and also concluded courses and enrollments, which a comparison must see, so it is always asked for here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from clever2sis.canvas.client import CanvasClient
from clever2sis.canvas.sis_import import WaitPolicy, _poll_until
from clever2sis.errors import CanvasError, ReportFailedError
from clever2sis.progress import Progress, silent

PROVISIONING_REPORT = "provisioning_csv"
# The provisioning report's tables reconcile reads, as its parameters name them.
PROVISIONING_TABLES = ("users", "courses", "sections", "enrollments", "user_observers")
INCLUDE_DELETED = "include_deleted"
RUNNING_STATES = frozenset({"created", "running", "compiling"})
COMPLETE = "complete"
FAILED_STATES = frozenset({"error", "aborted", "deleted"})
TERMINAL_STATES = frozenset({COMPLETE, *FAILED_STATES})
REPORT_WAIT_S = 2 * 60 * 60
REPORT_FILE_STEM = "provisioning_report"
_ZIP_MAGIC = b"PK\x03\x04"


def report_parameters(
    tables: Sequence[str] = PROVISIONING_TABLES, *, include_deleted: bool = True
) -> list[tuple[str, str]]:
    """The form fields that start a report over ``tables``: ``parameters[<table>]=true`` for each."""
    fields = [(f"parameters[{table}]", "true") for table in tables]
    if include_deleted:
        fields.append((f"parameters[{INCLUDE_DELETED}]", "true"))
    return fields


@dataclass(frozen=True)
class AccountReport:
    """One Report object as Canvas sent it (``raw``), with the fields acted on."""

    raw: Mapping[str, Any]

    @classmethod
    def from_json(cls, body: Any) -> AccountReport:
        if not isinstance(body, Mapping) or not isinstance(body.get("id"), int):
            raise CanvasError("Canvas answered with something that is not a Report object")
        return cls(raw=body)

    @property
    def id(self) -> int:
        return int(self.raw["id"])

    @property
    def report(self) -> str:
        return str(self.raw.get("report") or PROVISIONING_REPORT)

    @property
    def status(self) -> str:
        return str(self.raw.get("status") or "unknown")

    @property
    def progress(self) -> int:
        value = self.raw.get("progress")
        try:
            return max(0, min(100, int(float(value)))) if value is not None else 0
        except (TypeError, ValueError):
            return 0

    @property
    def is_finished(self) -> bool:
        """True for terminal states only; an unknown state counts as still running."""
        return self.status in TERMINAL_STATES

    @property
    def download_url(self) -> str | None:
        """The attachment's ``url``, else ``file_url``; None until the report is complete."""
        attachment = self.raw.get("attachment")
        if isinstance(attachment, Mapping) and isinstance(attachment.get("url"), str):
            return str(attachment["url"])
        file_url = self.raw.get("file_url")
        return file_url if isinstance(file_url, str) else None


class AccountReports:
    """The ``/api/v1/accounts/:account_id/reports`` endpoints of one account."""

    def __init__(self, client: CanvasClient, account_id: str) -> None:
        self.client = client
        self.account_id = account_id
        self.base = f"/api/v1/accounts/{quote(account_id, safe=':')}/reports"

    def start(self, report: str, parameters: Sequence[tuple[str, str]]) -> AccountReport:
        """Start ``report`` with the ``parameters[...]`` form fields given: the new Report."""
        return AccountReport.from_json(self.client.post_form(f"{self.base}/{report}", parameters))

    def get(self, report: str, report_id: int) -> AccountReport:
        return AccountReport.from_json(self.client.get_json(f"{self.base}/{report}/{report_id}"))

    def download(self, report: AccountReport, dest_dir: Path) -> Path:
        """Stream a complete report's file into ``dest_dir``: ``provisioning_report.zip`` (or ``.csv``)."""
        url = report.download_url
        if url is None:
            raise CanvasError(f"report {report.id} is {report.status} but has no file to download")
        partial = dest_dir / f"{REPORT_FILE_STEM}.download"
        self.client.download_to(url, partial)
        with partial.open("rb") as handle:
            suffix = ".zip" if handle.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC else ".csv"
        return partial.replace(dest_dir / f"{REPORT_FILE_STEM}{suffix}")


def wait_for_report(
    api: AccountReports,
    started: AccountReport,
    *,
    policy: WaitPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_update: Callable[[AccountReport], None] = lambda _report: None,
    on_problem: Callable[[str], None] = lambda _message: None,
) -> AccountReport:
    """Poll ``started`` until it is complete; :class:`ReportFailedError` when it fails or time runs out."""
    policy = policy or WaitPolicy(timeout_s=REPORT_WAIT_S)
    what = f"{started.report} report {started.id}"
    last = _poll_until(
        lambda: api.get(started.report, started.id),
        lambda report: bool(report.is_finished),
        what=what,
        policy=policy,
        clock=clock,
        sleep=sleep,
        on_update=on_update,
        on_problem=on_problem,
    )
    if not isinstance(last, AccountReport) or not last.is_finished:
        state = last.status if isinstance(last, AccountReport) else "unknown"
        raise ReportFailedError(
            f"Canvas's {what} is still {state} after {policy.timeout_s:.0f}s; it carries on in Canvas: "
            "run reconcile again later, or give it longer with --timeout"
        )
    if last.status != COMPLETE:
        raise ReportFailedError(
            f"Canvas's {what} ended {last.status}; nothing was compared. Run it again, or look at "
            "the account's Reports page in Canvas for its message"
        )
    return last


def fetch_provisioning_report(
    api: AccountReports,
    dest_dir: Path,
    *,
    tables: Sequence[str] = PROVISIONING_TABLES,
    policy: WaitPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress = silent,
) -> tuple[AccountReport, Path]:
    """Start the provisioning report of ``tables`` (deleted objects included), wait for it, download it.

    Returns the final Report and the file in ``dest_dir`` (a zip of ``<table>.csv``).
    """
    started = api.start(PROVISIONING_REPORT, report_parameters(tables))
    progress(f"provisioning report {started.id} started ({', '.join(tables)}, deleted objects included)")
    seen: dict[str, Any] = {}

    def on_update(report: AccountReport) -> None:
        moment = (report.status, report.progress)
        if seen.get("last") != moment:
            seen["last"] = moment
            progress(f"provisioning report {report.id}: {report.status} {report.progress}%")

    final = wait_for_report(
        api, started, policy=policy, clock=clock, sleep=sleep, on_update=on_update, on_problem=progress
    )
    path = api.download(final, dest_dir)
    progress(f"provisioning report {final.id} downloaded to {path} ({path.stat().st_size:,} bytes)")
    return final, path
