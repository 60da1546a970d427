"""The SIS import: its options, the object Canvas returns, the account's sis_imports API and the wait loop.

The API, its parameters and states: canvas-lms ``app/controllers/sis_imports_api_controller.rb`` and
``lib/api/v1/sis_import.rb``; what the options do: ``app/models/sis_batch.rb`` and
``lib/sis/csv/diff_generator.rb``.
"""

from __future__ import annotations

import builtins
import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal
from urllib.parse import quote

if TYPE_CHECKING:  # the options and states are read by commands that never talk to Canvas (no httpx)
    from clever2sis.canvas.client import CanvasClient, Page
from clever2sis.errors import (
    CanvasError,
    CanvasUnavailableError,
    ImportAbortedError,
    ImportedWithMessagesError,
    ImportFailedError,
    PostOutcomeUnknownError,
    UnknownBatchTermError,
    UsageError,
    WaitTimeoutError,
)

IMPORT_TYPE = "instructure_csv"
ATTACHMENT_FIELD = "attachment"
ATTACHMENT_FILENAME = "sis_import.zip"

RUNNING_STATES = frozenset({"initializing", "created", "importing", "cleanup_batch", "restoring"})
# Not started yet: /sis_imports/importing lists only "importing" and "cleanup_batch" (SisBatch.importing in
# app/models/sis_batch.rb), so these are asked for with the list's workflow_state[] filter.
QUEUED_STATES = ("initializing", "created")
SUCCESS_STATES = frozenset({"imported", "imported_with_messages"})
FAILED_STATES = frozenset({"failed", "failed_with_messages"})
RESTORED_STATES = frozenset({"restored", "partially_restored"})
TERMINAL_STATES = SUCCESS_STATES | FAILED_STATES | RESTORED_STATES | {"aborted"}
MESSAGE_STATES = frozenset({"imported_with_messages", "failed_with_messages"})

PROGRESS_RUNNING_STATES = frozenset({"queued", "running"})
PROGRESS_TERMINAL_STATES = frozenset({"completed", "failed"})

DIFFING_DROP_STATUSES = ("deleted", "completed", "inactive", "deleted_last_completed")
DIFFING_USER_REMOVE_STATUSES = ("deleted", "suspended")
BATCH_ENROLLMENT_DROP_STATUSES = ("deleted", "completed", "inactive")
DIFFING_IDENTIFIER_MAX_CHARS = 128
CHANGE_THRESHOLD_RANGE_PERCENT = (1, 100)


class ImportOptionsError(UsageError):
    """An import option, or a combination of them, that Canvas would reject or silently ignore."""


OptionKind = Literal["flag", "text", "number", "choice"]
IMPORT_OPTION = "clever2sis.import_option"  # the key of an ImportOptions field's metadata

_KIND_TYPES: dict[OptionKind, type] = {"flag": bool, "text": str, "number": int, "choice": str}


@dataclass(frozen=True)
class OptionInfo:
    """What a command line and a config file need to know about one import option.

    ``kind`` is how it is given: ``flag`` a ``--x/--no-x`` pair (a boolean), ``text`` a string,
    ``number`` an integer, ``choice`` one of ``choices``. ``metavar`` names the value in ``--help``;
    ``example`` is the value the example config shows for an option that is unset by default.
    """

    help: str
    kind: OptionKind
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    example: str | int | None = None

    @property
    def value_type(self) -> type:
        """The Python type of the option's value: ``bool``, ``int`` or ``str``."""
        return _KIND_TYPES[self.kind]


def _option(
    help: str,
    kind: OptionKind,
    *,
    metavar: str | None = None,
    choices: tuple[str, ...] = (),
    example: str | int | None = None,
) -> Any:
    """An ``ImportOptions`` field: off (``False``) for a flag, unset (``None``) otherwise, with its info."""
    info = OptionInfo(help=help, kind=kind, metavar=metavar, choices=choices, example=example)
    return field(default=False if kind == "flag" else None, metadata={IMPORT_OPTION: info})


@dataclass(frozen=True)
class ImportOptions:
    """Every option of ``POST /sis_imports``, off or unset by default.

    The parameters are those of ``SisImportsApiController#create`` (canvas-lms
    ``app/controllers/sis_imports_api_controller.rb``); what batch mode and diffing do is in
    ``app/models/sis_batch.rb`` and ``lib/sis/csv/diff_generator.rb``. Each field's metadata
    (:class:`OptionInfo`) is the one declaration of its help text and values: the ``upload`` flags and the
    ``[upload]`` keys of the config file are made from it.

    Booleans are sent only when true: Canvas treats an absent flag as false, and ``multi_term_batch_mode``
    turns batch mode on when the parameter is merely present, even as ``false``.
    """

    diffing_data_set_identifier: str | None = _option(
        "Diff against earlier imports of ID.", "text", metavar="ID", example="clever2sis:district:production"
    )
    diffing_remaster_data_set: bool = _option("Apply the whole file and restart the diff chain.", "flag")
    diffing_drop_status: str | None = _option(
        "Status for enrollments missing from a diffed import.",
        "choice",
        choices=DIFFING_DROP_STATUSES,
        example="inactive",
    )
    diffing_user_remove_status: str | None = _option(
        "Status for users missing from a diffed import.",
        "choice",
        choices=DIFFING_USER_REMOVE_STATUSES,
        example="suspended",
    )
    change_threshold: int | None = _option(
        "Stop batch cleanup / diffing beyond this percentage of changes (1-100).",
        "number",
        metavar="PERCENT",
        example=10,
    )
    diff_row_count_threshold: int | None = _option(
        "Apply the whole file when the diff has more rows than this.", "number", metavar="ROWS", example=50000
    )
    batch_mode: bool = _option(
        "Delete what this import leaves out of the term (needs --change-threshold).", "flag"
    )
    batch_mode_term_id: str | None = _option(
        "The term for batch mode (or sis_term_id:X).", "text", metavar="TERM", example="sis_term_id:T1"
    )
    multi_term_batch_mode: bool = _option(
        "Batch mode over every term in terms.csv (with --batch-mode).", "flag"
    )
    batch_mode_enrollment_drop_status: str | None = _option(
        "Status for enrollments batch mode removes.",
        "choice",
        choices=BATCH_ENROLLMENT_DROP_STATUSES,
        example="completed",
    )
    skip_deletes: bool = _option("Ignore rows whose status is deleted.", "flag")
    override_sis_stickiness: bool = _option("Overwrite fields changed in the Canvas UI.", "flag")
    add_sis_stickiness: bool = _option(
        "Make the imported values sticky (with --override-sis-stickiness).", "flag"
    )
    clear_sis_stickiness: bool = _option(
        "Clear stickiness on the fields touched (with --override-sis-stickiness).", "flag"
    )
    update_sis_id_if_login_claimed: bool = _option(
        "Move a claimed login's SIS id instead of skipping the row.", "flag"
    )

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def described(cls) -> list[tuple[str, OptionInfo]]:
        """Every option's name and :class:`OptionInfo`, in declaration order (the order of the form)."""
        return [(f.name, f.metadata[IMPORT_OPTION]) for f in fields(cls)]

    def merged(self, overrides: Mapping[str, Any]) -> ImportOptions:
        """A copy with every non-None value of ``overrides`` applied (command-line flags over config)."""
        unknown = sorted(set(overrides) - set(self.names()))
        if unknown:
            raise ImportOptionsError(f"unknown import option {unknown[0]!r}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def validate(self) -> None:
        """Refuse values and combinations Canvas would reject, or would accept and then ignore."""
        batch = self.batch_mode or self.multi_term_batch_mode
        diffing = self.diffing_data_set_identifier is not None

        def refuse(message: str) -> None:
            raise ImportOptionsError(message)

        if diffing:
            identifier = self.diffing_data_set_identifier or ""
            if not identifier.strip():
                refuse("diffing_data_set_identifier must not be empty")
            if len(identifier) > DIFFING_IDENTIFIER_MAX_CHARS:
                refuse(
                    f"diffing_data_set_identifier is longer than {DIFFING_IDENTIFIER_MAX_CHARS} characters"
                )
        else:
            for name in (
                "diffing_remaster_data_set",
                "diffing_drop_status",
                "diffing_user_remove_status",
                "diff_row_count_threshold",
            ):
                if getattr(self, name) not in (None, False):
                    refuse(f"{name} only applies to diffing; set diffing_data_set_identifier too")
        for name, info in self.described():
            value = getattr(self, name)
            if info.choices and value is not None and value not in info.choices:
                refuse(f"{name} must be one of {', '.join(info.choices)}, not {value!r}")
        low, high = CHANGE_THRESHOLD_RANGE_PERCENT
        if self.change_threshold is not None and not low <= self.change_threshold <= high:
            refuse(f"change_threshold is a percentage from {low} to {high}, not {self.change_threshold}")
        if self.diff_row_count_threshold is not None and self.diff_row_count_threshold < 1:
            refuse(
                f"diff_row_count_threshold must be a positive row count, not {self.diff_row_count_threshold}"
            )

        if self.multi_term_batch_mode and not self.batch_mode:
            refuse("multi_term_batch_mode needs batch_mode as well")
        if self.batch_mode and not self.multi_term_batch_mode and not self.batch_mode_term_id:
            refuse("batch_mode needs batch_mode_term_id (or multi_term_batch_mode)")
        if self.multi_term_batch_mode and self.batch_mode_term_id:
            refuse("multi_term_batch_mode covers the terms in terms.csv; drop batch_mode_term_id")
        if self.batch_mode_term_id is not None and not self.batch_mode_term_id.strip():
            refuse("batch_mode_term_id must not be empty")
        if self.batch_mode_term_id and not batch:
            refuse("batch_mode_term_id only applies to batch mode; set batch_mode too")
        if self.batch_mode_enrollment_drop_status and not batch:
            refuse("batch_mode_enrollment_drop_status only applies to batch mode; set batch_mode too")
        if batch and self.change_threshold is None:
            refuse(
                "batch mode deletes what the zip leaves out; set change_threshold (a percentage) so a "
                "truncated build cannot wipe a term"
            )
        if batch and diffing:
            refuse("batch mode and diffing cannot be combined (Canvas ignores diffing in batch mode)")
        if (self.add_sis_stickiness or self.clear_sis_stickiness) and not self.override_sis_stickiness:
            refuse(
                "add_sis_stickiness and clear_sis_stickiness are ignored by Canvas without "
                "override_sis_stickiness; set it too"
            )
        if self.add_sis_stickiness and self.clear_sis_stickiness:
            refuse("add_sis_stickiness and clear_sis_stickiness contradict each other; choose one")

    def form_fields(self) -> list[tuple[str, str]]:
        """The exact form fields to POST besides the file, in a stable order; :meth:`validate` first."""
        form = [("import_type", IMPORT_TYPE)]
        for name, value in asdict(self).items():
            if value is None or value is False:
                continue
            form.append((name, "true" if value is True else str(value)))
        return form


@dataclass(frozen=True)
class SisImport:
    """One SisImport object as Canvas sent it (``raw``), with the fields we act on."""

    raw: Mapping[str, Any]

    @classmethod
    def from_json(cls, body: Any) -> SisImport:
        if not isinstance(body, Mapping) or not isinstance(body.get("id"), int):
            raise CanvasError("Canvas answered with something that is not a SisImport object")
        return cls(raw=body)

    @property
    def id(self) -> int:
        return int(self.raw["id"])

    @property
    def workflow_state(self) -> str:
        return str(self.raw.get("workflow_state") or "unknown")

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
        return self.workflow_state in TERMINAL_STATES

    @property
    def data(self) -> Mapping[str, Any]:
        value = self.raw.get("data")
        return value if isinstance(value, Mapping) else {}

    @property
    def counts(self) -> Mapping[str, int]:
        value = self.data.get("counts")
        return {k: v for k, v in value.items() if isinstance(v, int)} if isinstance(value, Mapping) else {}

    @property
    def processing_warnings(self) -> list[tuple[str | None, str]]:
        return _pairs(self.raw.get("processing_warnings"))

    @property
    def processing_errors(self) -> list[tuple[str | None, str]]:
        return _pairs(self.raw.get("processing_errors"))

    @property
    def errors_attachment_url(self) -> str | None:
        attachment = self.raw.get("errors_attachment")
        if isinstance(attachment, Mapping) and isinstance(attachment.get("url"), str):
            return str(attachment["url"])
        return None


def _pairs(value: Any) -> list[tuple[str | None, str]]:
    if not isinstance(value, list):
        return []
    pairs: list[tuple[str | None, str]] = []
    for item in value:
        if isinstance(item, list) and len(item) == 2:
            pairs.append((None if item[0] is None else str(item[0]), str(item[1])))
    return pairs


MESSAGES_OK_HINT = "--messages-ok"


def check_outcome(
    sis_import: SisImport, *, messages_ok: bool = False, messages_ok_hint: str = MESSAGES_OK_HINT
) -> None:
    """Raise the :class:`~clever2sis.errors.ImportOutcomeError` that matches a finished import's state.

    ``messages_ok_hint`` names what makes ``imported_with_messages`` exit 0 for the caller's user (a flag
    of ``upload``; the config key for ``sync``, which has no such flag).
    """
    state = sis_import.workflow_state
    where = f"SIS import {sis_import.id} ended {state}"
    if state in {"imported", *RESTORED_STATES}:
        return
    if state == "imported_with_messages":
        if not messages_ok:
            raise ImportedWithMessagesError(
                f"{where}; some rows were skipped ({messages_ok_hint} makes this exit 0)"
            )
        return
    if state in FAILED_STATES:
        raise ImportFailedError(f"{where}; Canvas may still have applied the files it could read")
    if state == "aborted":
        raise ImportAbortedError(f"{where}; nothing was cleaned up")
    raise WaitTimeoutError(f"SIS import {sis_import.id} is still {state}")


class SisImports:
    """The ``/api/v1/accounts/:account_id/sis_imports`` endpoints of one (root) account."""

    def __init__(self, client: CanvasClient, account_id: str) -> None:
        self.client = client
        self.account_id = account_id
        self.base = f"/api/v1/accounts/{quote(account_id, safe=':')}/sis_imports"

    def create(self, zip_path: Path, options: ImportOptions) -> SisImport:
        """Upload ``zip_path`` (streamed as the multipart ``attachment``) with ``options``: the new import."""
        options.validate()

        def open_zip() -> IO[bytes]:
            return zip_path.open("rb")

        try:
            body = self.client.post_file(
                self.base,
                options.form_fields(),
                field=ATTACHMENT_FIELD,
                filename=ATTACHMENT_FILENAME,
                open_file=open_zip,
            )
        except UnknownBatchTermError:
            raise UnknownBatchTermError(
                f"Canvas cannot find batch_mode_term_id {options.batch_mode_term_id!r}; give the Canvas id "
                "or sis_term_id:<id> of an active term"
            ) from None
        try:
            return SisImport.from_json(body)
        except CanvasError as error:
            raise PostOutcomeUnknownError(
                f"POST {self.base}: {error}; the POST may have reached Canvas"
            ) from None

    def get(self, import_id: int) -> SisImport:
        return SisImport.from_json(self.client.get_json(f"{self.base}/{import_id}"))

    def running(self) -> list[SisImport]:
        """Imports Canvas is running right now on this account (``/sis_imports/importing``)."""
        body = self.client.get_json(f"{self.base}/importing")
        items = body.get("sis_imports") if isinstance(body, Mapping) else None
        if not isinstance(items, list):
            raise CanvasError("/sis_imports/importing: expected {'sis_imports': [...]}")
        return [SisImport.from_json(item) for item in items]

    def list(
        self,
        *,
        per_page: int = 50,
        created_since: dt.datetime | None = None,
        states: Sequence[str] = (),
    ) -> Iterator[SisImport]:
        """The account's imports, newest first, page after page: all, or those created after
        ``created_since`` and in one of ``states`` (``SisImportsApiController#index``'s filters)."""
        params = [("per_page", str(per_page))]
        if created_since is not None:
            params.append(("created_since", created_since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))
        params.extend(("workflow_state[]", state) for state in states)
        for item in self.client.paginate(self.base, "sis_imports", params):
            yield SisImport.from_json(item)

    def unfinished(self, *, limit: int = 50) -> builtins.list[SisImport]:
        """Imports running (:meth:`running`) or waiting to run (:data:`QUEUED_STATES`), by id.

        A queued import runs before one posted after it, so it counts as much as a running one.
        """
        found = {item.id: item for item in self.running()}
        for count, item in enumerate(self.list(states=QUEUED_STATES), start=1):
            found.setdefault(item.id, item)
            if count >= limit:
                break
        return [found[key] for key in sorted(found)]

    def error_pages(self, import_id: int, *, per_page: int = 100) -> Iterator[Page]:
        """The raw pages of ``/sis_imports/:id/sis_import_errors`` (``{"sis_import_errors": [...]}``)."""
        return self.client.pages(f"{self.base}/{import_id}/sis_import_errors", {"per_page": str(per_page)})

    def abort(self, import_id: int) -> SisImport:
        return SisImport.from_json(self.client.put_json(f"{self.base}/{import_id}/abort"))

    def restore_states(
        self,
        import_id: int,
        *,
        batch_mode: bool = False,
        undelete_only: bool = False,
        unconclude_only: bool = False,
    ) -> dict[str, Any]:
        """Start rolling back an import's changes; returns the Progress object to follow.

        The parameters are those of ``SisImportsApiController#restore_states``.
        """
        if undelete_only and unconclude_only:
            raise ImportOptionsError("--undelete-only and --unconclude-only cannot be combined")
        form = [
            (name, "true")
            for name, on in (
                ("batch_mode", batch_mode),
                ("undelete_only", undelete_only),
                ("unconclude_only", unconclude_only),
            )
            if on
        ]
        body = self.client.put_json(f"{self.base}/{import_id}/restore_states", form)
        if not isinstance(body, dict) or not isinstance(body.get("id"), int):
            raise CanvasError("restore_states: Canvas did not answer with a Progress object")
        return body

    def progress(self, progress_id: int) -> dict[str, Any]:
        body = self.client.get_json(f"/api/v1/progress/{progress_id}")
        if not isinstance(body, dict):
            raise CanvasError(f"/api/v1/progress/{progress_id}: expected a Progress object")
        return body


@dataclass(frozen=True)
class WaitPolicy:
    """How to poll: the interval grows by ``growth`` from ``first_interval_s`` to ``max_interval_s``."""

    timeout_s: float = 2 * 60 * 60
    first_interval_s: float = 2.0
    max_interval_s: float = 30.0
    growth: float = 1.5
    max_poll_failures: int = 5

    def intervals_s(self) -> Iterator[float]:
        interval = self.first_interval_s
        while True:
            yield interval
            interval = min(interval * self.growth, self.max_interval_s)


def _poll_until(
    fetch: Callable[[], Any],
    done: Callable[[Any], bool],
    *,
    what: str,
    policy: WaitPolicy,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    on_update: Callable[[Any], None],
    on_problem: Callable[[str], None],
) -> Any:
    """Call ``fetch`` until ``done`` says so or ``policy.timeout_s`` of wall clock has passed.

    Requests already retry on their own; a poll that still fails is skipped and counted, and
    ``policy.max_poll_failures`` in a row end the wait.
    """
    deadline = clock() + policy.timeout_s
    last: Any = None
    failures = 0
    for interval_s in policy.intervals_s():
        try:
            last = fetch()
        except CanvasUnavailableError as error:
            failures += 1
            if failures >= policy.max_poll_failures:
                raise CanvasUnavailableError(
                    f"lost contact with Canvas while following {what} ({error}); it may still be running"
                ) from None
            on_problem(f"poll failed ({error}); still following {what}")
        else:
            failures = 0
            on_update(last)
            if done(last):
                return last
        remaining_s = deadline - clock()
        if remaining_s <= 0:
            return last
        sleep(min(interval_s, remaining_s))
    raise AssertionError("unreachable: intervals_s never ends")  # pragma: no cover


def wait_for_import(
    api: SisImports,
    import_id: int,
    *,
    policy: WaitPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_update: Callable[[SisImport], None] = lambda _sis_import: None,
    on_problem: Callable[[str], None] = lambda _message: None,
) -> SisImport:
    """Poll import ``import_id`` to a terminal state; :class:`WaitTimeoutError` when time runs out."""
    last = _poll_until(
        lambda: api.get(import_id),
        lambda sis_import: bool(sis_import.is_finished),
        what=f"SIS import {import_id}",
        policy=policy or WaitPolicy(),
        clock=clock,
        sleep=sleep,
        on_update=on_update,
        on_problem=on_problem,
    )
    if last is None or not last.is_finished:
        state = last.workflow_state if last is not None else "unknown"
        raise WaitTimeoutError(
            f"SIS import {import_id} is still {state} after the wait limit; it carries on in Canvas: "
            f"follow it with `clever2sis status {import_id}`"
        )
    assert isinstance(last, SisImport)
    return last


def wait_for_progress(
    api: SisImports,
    progress_id: int,
    *,
    policy: WaitPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_update: Callable[[dict[str, Any]], None] = lambda _progress: None,
    on_problem: Callable[[str], None] = lambda _message: None,
) -> dict[str, Any]:
    """Poll a Canvas Progress object (from ``restore_states``) to ``completed`` or ``failed``."""
    last = _poll_until(
        lambda: api.progress(progress_id),
        lambda progress: progress.get("workflow_state") in PROGRESS_TERMINAL_STATES,
        what=f"progress {progress_id}",
        policy=policy or WaitPolicy(),
        clock=clock,
        sleep=sleep,
        on_update=on_update,
        on_problem=on_problem,
    )
    state = last.get("workflow_state") if isinstance(last, dict) else None
    if state not in PROGRESS_TERMINAL_STATES:
        raise WaitTimeoutError(f"progress {progress_id} is still {state or 'unknown'} after the wait limit")
    if state == "failed":
        raise ImportFailedError(f"progress {progress_id} failed: {last.get('message') or 'no message'}")
    assert isinstance(last, dict)
    return last
