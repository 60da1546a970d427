"""The exceptions the library raises; the CLI maps each to a one-line message and an exit code."""

from __future__ import annotations


class Clever2SisError(Exception):
    """Base of every error a user can act on. ``str(error)`` is the message shown to them."""

    exit_code = 1


class UsageError(Clever2SisError):
    """Bad arguments or settings: fix the command line or the config file."""

    exit_code = 2


class ConfigError(UsageError):
    """The config file cannot be read, or a key in it is unknown or has a bad value."""


class SnapshotError(Clever2SisError):
    """A snapshot directory is missing, truncated, or not a clever2sis snapshot."""

    exit_code = 3


class BuildError(Clever2SisError):
    """The build could not be completed (for example an unknown template variable)."""

    exit_code = 4


class StrictFindingsError(Clever2SisError):
    """``--strict`` was given and the build has validation findings."""

    exit_code = 5


class CleverError(Clever2SisError):
    """The Clever API could not be read: it kept failing, or answered something the client cannot use."""

    exit_code = 10


class CleverApiError(CleverError):
    """Clever answered with an error, an unexpected page, or kept failing after the bounded retries."""

    exit_code = 10


class CleverAuthError(CleverError):
    """Clever refused the token (401/403): it is wrong, revoked, or lacks the scopes a pull needs."""

    exit_code = 11


# --- Canvas (upload and import follow-up) --------------------------------------------------------------
# Exit codes 20-29 are import outcomes, 30-39 are problems a user can fix before trying again.


class CanvasError(Clever2SisError):
    """Canvas answered in a way we cannot use (an unexpected status or body)."""

    exit_code = 39


class CanvasNotFoundError(CanvasError):
    """HTTP 404: Canvas does not know the import (or the account) asked for."""


class CanvasSettingsError(CanvasError):
    """No Canvas base URL, token or account id: set the environment variable or the config profile."""

    exit_code = 30


class CanvasAuthError(CanvasError):
    """Canvas rejected the token (HTTP 401)."""

    exit_code = 31


class NotRootAccountError(CanvasError):
    """The account id is not a root account; SIS imports run on root accounts only."""

    exit_code = 32


class CanvasPermissionError(CanvasError):
    """A plain HTTP 403: the token's user lacks a permission."""

    exit_code = 33


class SisImportsDisabledError(CanvasPermissionError):
    """HTTP 403: SIS imports are not enabled for the account."""

    exit_code = 34


class UnknownBatchTermError(CanvasError):
    """Batch mode names a term Canvas cannot find."""

    exit_code = 35


class BuildDirError(CanvasError):
    """The build directory has no zip to upload, or the zip does not match its build.json."""

    exit_code = 36


class ImportNotRecordedError(BuildDirError):
    """Canvas created the import, but its id could not be saved in created.json (a full disk); the import's
    id and state come with it, so that a caller can still record them elsewhere (the sync's history)."""

    def __init__(self, message: str, import_id: int, workflow_state: str) -> None:
        super().__init__(message)
        self.import_id = import_id
        self.workflow_state = workflow_state


class ImportAlreadyRunningError(CanvasError):
    """Another SIS import is running on the account and ``--queue`` was not given."""

    exit_code = 37


class CanvasUnavailableError(CanvasError):
    """Network errors, 5xx or rate limiting that outlasted the retries."""

    exit_code = 38


class PostOutcomeUnknownError(CanvasUnavailableError):
    """A POST may have reached Canvas, but no answer came back that says what it did: none came, a 5xx came
    (a gateway's, after it forwarded the request), or a body that is not what was asked for. It is never
    simply sent again: the caller looks for what it made (:mod:`clever2sis.canvas.intent`)."""


class ImportNotConfirmedError(CanvasUnavailableError):
    """An upload may have created an import, but Canvas's answer was lost and no import matches it (yet);
    the record of the upload is kept, and the next upload or sync of the build looks for it again."""


class ImportOutcomeError(CanvasError):
    """The import ended in a state other than ``imported``; the exit code says which."""

    exit_code = 29


class ImportedWithMessagesError(ImportOutcomeError):
    exit_code = 20


class ImportFailedError(ImportOutcomeError):
    exit_code = 21


class ImportAbortedError(ImportOutcomeError):
    exit_code = 22


class WaitTimeoutError(ImportOutcomeError):
    """The job was still running when the wall-clock limit ran out; it may still finish."""

    exit_code = 23


# --- Review and sign-off ---------------------------------------------------------------------------------
# Exit codes 40-49.


class ReviewError(Clever2SisError):
    """A build directory to review (or to review against) is missing, incomplete or changed."""

    exit_code = 40


class ApprovalError(Clever2SisError):
    """A sign-off cannot be recorded (for example the build has no zip matching its build.json)."""

    exit_code = 41


class ApprovalRequiredError(Clever2SisError):
    """The profile needs a sign-off of this zip before upload, and there is none."""

    exit_code = 42


class ApprovalMismatchError(ApprovalRequiredError):
    """A sign-off exists, but for other bytes: the zip changed since it was approved."""

    exit_code = 43


# --- The nightly job (sync) ------------------------------------------------------------------------------
# Exit codes 50-59. Upload and import outcomes inside a sync keep the Canvas codes (20-39).


class SyncError(Clever2SisError):
    """A sync run could not go on."""

    exit_code = 59


class SyncLockedError(SyncError):
    """Another sync holds the runs directory's lock; this run did nothing."""

    exit_code = 50


class GuardStoppedError(SyncError):
    """The new build lost too much against the last successful run; nothing was uploaded."""

    exit_code = 51


class SyncPullError(SyncError):
    """The pull from Clever failed (the cause is in the message and the run's log)."""

    exit_code = 52


class SyncBuildError(SyncError):
    """The build (or the sync's own changes to it) failed."""

    exit_code = 53


class RunsDirError(SyncError):
    """The runs directory or its history database cannot be used."""

    exit_code = 54


class SyncPausedError(SyncError):
    """Tonight is inside a ``[sync] pause`` window: nothing was pulled or sent."""

    exit_code = 55


class PreflightError(Clever2SisError):
    """A pre-flight check failed (a token, the Canvas account, SIS imports): nothing was pulled or sent.

    Its exit code is the failed check's, so ``sync`` exits as the pull or the upload would have.
    """

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ObserverImportError(SyncError):
    """One of a sync run's observer link imports did not end as the config accepts.

    Its exit code is that import's (20-23 for how it ended, 30-39 when it could not be uploaded), and
    ``outcome`` is the run's outcome in history and the JSON line.
    """

    def __init__(self, message: str, *, exit_code: int, outcome: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.outcome = outcome


# --- Reconcile (what Canvas holds against what was sent) -------------------------------------------------
# Exit codes 60-69. Drift found without --fix is 60 (the CLI's, not an error: everything was written).


class ReconcileError(Clever2SisError):
    """A reconcile could not be completed."""

    exit_code = 69


class ReportFailedError(ReconcileError):
    """Canvas's provisioning report ended in error or was aborted, or was not done within the wait limit."""

    exit_code = 61


class FixTooLargeError(ReconcileError):
    """The fix would remove more of a file's rows than the guard allows; nothing was written."""

    exit_code = 62


class ReconcileBaselineError(ReconcileError):
    """There is no build to compare Canvas with: the build directory or the last applied run is unusable."""

    exit_code = 63


class ReportFileError(ReconcileError):
    """A provisioning report file cannot be read: not a zip or CSV, a file or a column missing."""

    exit_code = 64


class SchoolsHeldError(SyncError):
    """Canvas applied the night, but the guard held schools: their rows stayed as Canvas had them."""

    exit_code = 56
