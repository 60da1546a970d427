"""What an upload leaves in the build directory, and the summary printed at the end.

Layout (documented in docs/upload.md, "What an upload leaves in the build directory")::

    BUILD_DIR/imports/<profile>/
      latest.json                     the last import posted with this profile: id, Canvas, account, when
      intents/                        uploads not yet confirmed (see canvas/intent.py)
      <import_id>/
        created.json                  written the moment the POST returns: the SisImport as created, the
                                      Canvas host, account, zip sha256 and the exact form fields sent
                                      (or, for an import whose answer was lost, as it was found: "adopted")
        sis_import.json               the final SisImport object
        sis_import_errors/page-0001.json ...   every page of /sis_imports/:id/sis_import_errors, as sent
        errors_attachment.csv         Canvas's full errors file (when the import had messages)

Every file is written atomically, so a lost connection or Ctrl-C leaves either the old file or the new one.
The names are :mod:`clever2sis.build_dir`'s (:meth:`~clever2sis.build_dir.BuildDir.import_dir`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from clever2sis.atomic import atomic_write_bytes
from clever2sis.build_dir import ERRORS_DIR_NAME, BuildDir, ImportDir
from clever2sis.canvas.client import safe_url
from clever2sis.canvas.sis_import import MESSAGE_STATES, SisImport, SisImports
from clever2sis.progress import Progress, silent

ATTACHMENT_WAIT_S = 60.0
ATTACHMENT_POLL_INTERVAL_S = 5.0
FIRST_MESSAGES = 5


def _dump(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_created(
    build_dir: Path,
    profile: str,
    sis_import: SisImport,
    *,
    base_url: str,
    account_id: str,
    zip_sha256: str,
    form_fields: Iterable[tuple[str, str]],
    signoff: Mapping[str, Any] | None = None,
    posted_at: str | None = None,
    intent_id: str | None = None,
    adopted: str | None = None,
    write: Callable[[Path, bytes], None] | None = None,
) -> Path:
    """Save the new import's id before anything else happens; returns its results directory.

    ``intent_id`` names the upload intent it answers (canvas/intent.py); ``adopted`` says how an import
    whose answer was lost was found, and ``posted_at`` is then when it was posted. ``write`` writes a file
    whole (default :func:`~clever2sis.atomic.atomic_write_bytes`); OSError (a full disk) reaches the caller.
    """
    write = write or atomic_write_bytes
    layout = BuildDir(build_dir)
    directory = layout.import_dir(profile, sis_import.id)
    receipt: dict[str, Any] = {
        "sis_import_id": sis_import.id,
        "profile": profile,
        "canvas": safe_url(base_url),
        "account_id": account_id,
        "posted_at": posted_at or _now(),
        "zip_sha256": zip_sha256,
        "form_fields": [list(pair) for pair in form_fields],
        "sis_import": sis_import.raw,
    }
    if signoff is not None:
        receipt["signoff"] = dict(signoff)
    if intent_id is not None:
        receipt["intent_id"] = intent_id
    if adopted is not None:
        receipt["adopted"] = {"how": adopted, "at": _now()}
    write(directory.created, _dump(receipt))
    latest = {k: receipt[k] for k in ("sis_import_id", "profile", "canvas", "account_id", "posted_at")}
    latest["results"] = str(directory.path.relative_to(build_dir))
    if _latest_id(layout.latest_import_file(profile)) <= sis_import.id:  # an adopted older one stays behind
        write(layout.latest_import_file(profile), _dump(latest))
    return directory.path


def _latest_id(path: Path) -> int:
    try:
        value = orjson.loads(path.read_bytes()).get("sis_import_id")
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return 0
    return value if isinstance(value, int) else 0


@dataclass
class ImportResults:
    """What was saved for a finished import, and where."""

    sis_import: SisImport
    directory: Path
    error_pages: int = 0
    error_rows: int = 0
    errors_attachment: Path | None = None
    notes: list[str] = field(default_factory=list)


def save_results(
    api: SisImports,
    sis_import: SisImport,
    directory: Path,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    attachment_wait_s: float = ATTACHMENT_WAIT_S,
    progress: Progress = silent,
) -> ImportResults:
    """Save the final object, every errors page and the errors CSV of a finished import into ``directory``.

    Canvas writes the errors CSV in a separate job after the import ends (spec §3.2), so when the import
    has messages and no ``errors_attachment`` yet, the import is fetched again for up to
    ``attachment_wait_s``.
    """
    if sis_import.workflow_state in MESSAGE_STATES and sis_import.errors_attachment_url is None:
        sis_import = _wait_for_attachment(api, sis_import, clock, sleep, attachment_wait_s, progress)
    saved = ImportDir(directory)
    atomic_write_bytes(saved.final, _dump(sis_import.raw))
    results = ImportResults(sis_import=sis_import, directory=directory)

    for page in api.error_pages(sis_import.id):
        atomic_write_bytes(saved.error_page(page.number), _dump(page.body))
        results.error_pages += 1
        rows = page.body.get("sis_import_errors") if isinstance(page.body, Mapping) else None
        results.error_rows += len(rows) if isinstance(rows, list) else 0

    url = sis_import.errors_attachment_url
    if url is not None:
        path = saved.errors_attachment
        atomic_write_bytes(path, api.client.download(url))
        results.errors_attachment = path
    elif sis_import.workflow_state in MESSAGE_STATES:
        results.notes.append(
            f"Canvas had not written the errors file after {attachment_wait_s:.0f}s; "
            f"`clever2sis status {sis_import.id}` shows it once it is there"
        )
    return results


def _wait_for_attachment(
    api: SisImports,
    sis_import: SisImport,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    wait_s: float,
    progress: Progress,
) -> SisImport:
    deadline = clock() + wait_s
    progress(f"waiting up to {wait_s:.0f}s for the errors file of import {sis_import.id}")
    while clock() < deadline:
        sleep(min(ATTACHMENT_POLL_INTERVAL_S, max(deadline - clock(), 0.0)))
        sis_import = api.get(sis_import.id)
        if sis_import.errors_attachment_url is not None:
            break
    return sis_import


def summary_lines(results: ImportResults, *, first_messages: int = FIRST_MESSAGES) -> list[str]:
    """A short human report: state, rows per type, warnings and failures with the first messages."""
    sis_import = results.sis_import
    counts = dict(sis_import.counts)
    warning_count = counts.pop("warning_count", None)
    error_count = counts.pop("error_count", None)
    warnings = sis_import.processing_warnings
    failures = sis_import.processing_errors
    lines = [f"SIS import {sis_import.id}: {sis_import.workflow_state} (progress {sis_import.progress}%)"]
    imported = [f"{name} {count}" for name, count in counts.items() if count]
    lines.append("rows imported: " + (", ".join(imported) if imported else "none"))
    lines.append(
        f"warnings: {warning_count if warning_count is not None else len(warnings)}, "
        f"failures: {error_count if error_count is not None else len(failures)}"
    )
    for label, pairs in (("failure", failures), ("warning", warnings)):
        for file, message in pairs[:first_messages]:
            lines.append(f"  {label}: {file + ': ' if file else ''}{message}")
        if len(pairs) > first_messages:
            lines.append(f"  … {len(pairs) - first_messages} more {label}s in the saved files")
    error_message = sis_import.data.get("error_message")
    if isinstance(error_message, str):
        lines.append(f"  error: {error_message}")
    lines.append(f"results saved in {results.directory}")
    if results.error_rows:
        lines.append(
            f"  {results.error_rows} error rows in {results.error_pages} page(s) under {ERRORS_DIR_NAME}/"
        )
    if results.errors_attachment is not None:
        lines.append(f"  errors file: {results.errors_attachment.name}")
    lines.extend(results.notes)
    return lines
