"""Upload a build's zip as a SIS import and see it through: the library half of ``clever2sis upload``.

The zip comes checked against its build.json (:meth:`clever2sis.build_dir.BuildDir.verified_zip`, with
:class:`~clever2sis.errors.BuildDirError`: exit code 36).

An upload never loses its import and never posts one twice (:mod:`clever2sis.canvas.intent`):

1. what earlier uploads of the build left unconfirmed is settled first: adopted, closed, or (while it may
   still have reached Canvas) a reason to stop;
2. nothing may be running or queued on the account, unless ``queue`` (:func:`ensure_nothing_running`);
3. the intent is written (or the upload stops here, having sent nothing);
4. the POST; when its answer is lost the import is looked for and adopted instead of being posted again;
5. the id goes into the intent's answer slot, then into created.json, and the intent goes.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clever2sis.build_dir import BuildDir, BuildZip, IntentFiles
from clever2sis.canvas.intent import (
    FOUND,
    Intent,
    Settlement,
    adopt,
    discard,
    find_import,
    new_intent,
    settle_intents,
    write_answer,
    write_intent,
)
from clever2sis.canvas.results import ImportResults, record_created, save_results
from clever2sis.canvas.sis_import import ImportOptions, SisImport, SisImports, WaitPolicy, wait_for_import
from clever2sis.errors import (
    BuildDirError,
    CanvasError,
    ImportAlreadyRunningError,
    ImportNotConfirmedError,
    ImportNotRecordedError,
    PostOutcomeUnknownError,
    UsageError,
)
from clever2sis.progress import Progress, silent

QUEUE_HINT = "or pass --queue to have Canvas run this one after it"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ensure_nothing_running(
    api: SisImports,
    *,
    queue: bool,
    build_dir: Path | None = None,
    profile: str | None = None,
    progress: Progress = silent,
    busy_hint: str = QUEUE_HINT,
) -> None:
    """Stop when an import is running or queued on the account, unless ``queue`` says to line up.

    Imports this build recorded (``build_dir``, ``profile``) are named as such in the message;
    ``busy_hint`` ends it with what the caller's user can do (``upload`` has ``--queue``).
    """
    unfinished = api.unfinished()
    if not unfinished:
        return
    mine = set(BuildDir(build_dir).recorded_imports(profile)) if build_dir and profile else set()
    described = ", ".join(
        f"{item.id} ({item.workflow_state}{', posted from this build' if item.id in mine else ''})"
        for item in unfinished
    )
    if not queue:
        raise ImportAlreadyRunningError(
            f"SIS import {described} is already running or queued on this account; wait for it (or abort it: "
            f"`clever2sis abort ID`), {busy_hint}"
        )
    progress(f"SIS import {described} is running or queued; this one will queue behind it")


def check_plain_for_fix(build: BuildZip, options: ImportOptions) -> None:
    """Refuse to diff a reconcile fix, or import it in batch mode: it holds only the drifted rows, so Canvas
    would take every other row of the account as gone."""
    if build.record.reconcile is None:
        return
    if options.diffing_data_set_identifier or options.batch_mode or options.multi_term_batch_mode:
        raise UsageError(
            f"{build.build_dir} is a reconcile fix (only the drifted rows): import it as a plain import, "
            "without diffing_data_set_identifier or batch mode (use a config whose [upload] sets neither)"
        )


@dataclass(frozen=True)
class Posted:
    """The import an upload made, and where its results go.

    ``adopted`` says how an import whose POST answer was lost was found instead (None: Canvas answered).
    """

    sis_import: SisImport
    directory: Path
    profile: str
    adopted: str | None = None


def post_build(
    api: SisImports,
    build: BuildZip,
    options: ImportOptions,
    *,
    profile: str,
    queue: bool = False,
    before_post: Callable[[str, BuildZip], Mapping[str, Any] | None] = lambda _profile, _build: None,
    progress: Progress = silent,
    now: Callable[[], dt.datetime] = _utc_now,
    write: Callable[[Path, bytes], None] | None = None,
    busy_hint: str = QUEUE_HINT,
) -> Posted:
    """Check everything, post the zip, and record the new import's id in the build directory at once.

    ``before_post`` is the last check (the sign-off gate); what it returns is saved in created.json.
    ``now`` is the wall clock the intent is stamped with (compared with Canvas's ``created_at``);
    ``write`` writes created.json and latest.json (see :func:`~clever2sis.canvas.results.record_created`).
    ``busy_hint`` is what to do when another import is running (see :func:`ensure_nothing_running`).
    """
    options.validate()
    check_plain_for_fix(build, options)
    settled = _settle_earlier(api, build, profile, now(), progress)
    fields = tuple(options.form_fields())
    for earlier in reversed(settled.adopted):
        if earlier.intent.zip_sha256 == build.sha256 and earlier.intent.form_fields == fields:
            progress(
                f"this zip was already posted with these options as sis_import {earlier.sis_import.id}; "
                "following that one instead of posting it again"
            )
            return Posted(earlier.sis_import, earlier.directory, profile, adopted=earlier.how)
    ensure_nothing_running(
        api, queue=queue, build_dir=build.build_dir, profile=profile, progress=progress, busy_hint=busy_hint
    )
    signoff = before_post(profile, build)
    intent = new_intent(
        profile=profile,
        canvas=str(api.client.base_url),
        account_id=api.account_id,
        zip_path=build.path,
        zip_sha256=build.sha256,
        options=options,
        now=now(),
        signoff=signoff,
    )
    files = BuildDir(build.build_dir).intent_files(profile, intent.intent_id)
    try:
        write_intent(files, intent)
    except OSError as error:
        raise BuildDirError(
            f"cannot record the upload in {files.directory} before posting ({error.strerror or error}); "
            "nothing was posted: free some space and upload again"
        ) from None
    progress(f"uploading {build.path} ({build.size_bytes} bytes)")
    try:
        sis_import = api.create(build.path, options)
    except PostOutcomeUnknownError as lost:
        return _recover(api, build, intent, files, lost, progress)
    except CanvasError:
        discard(files)  # Canvas answered with a refusal: nothing was created
        raise
    return _record(api, build, intent, files, sis_import, now(), write)


def _settle_earlier(
    api: SisImports, build: BuildZip, profile: str, now: dt.datetime, progress: Progress
) -> Settlement:
    """Settle what earlier uploads of this build left; stop while one may still have reached Canvas."""
    settled = settle_intents(api, build.build_dir, profile, now=now, progress=progress)
    if settled.waiting:
        raise ImportNotConfirmedError(
            f"not posting: {settled.waiting[0]}"
            + (f" (and {len(settled.waiting) - 1} more)" if len(settled.waiting) > 1 else "")
        )
    return settled


def _recover(
    api: SisImports,
    build: BuildZip,
    intent: Intent,
    files: IntentFiles,
    lost: PostOutcomeUnknownError,
    progress: Progress,
) -> Posted:
    """The POST's answer is lost: find what it created and adopt it, or keep the intent and say so."""
    progress(f"{lost}; looking for it among the account's recent imports")
    layout = BuildDir(build.build_dir)
    kept = (
        f"The upload is recorded in {files.intent}: the next upload or sync of this build looks for its "
        "import again before posting anything (`clever2sis list` shows the account's imports)"
    )
    try:
        found = find_import(api, intent, exclude=layout.recorded_imports(intent.profile))
    except CanvasError as error:
        raise ImportNotConfirmedError(
            f"{lost}; the account's imports could not be listed either ({error}). {kept}"
        ) from None
    if len(found) != 1:
        what = (
            "no import matches it yet"
            if not found
            else f"several imports match it ({', '.join(str(item.id) for item in found)})"
        )
        raise ImportNotConfirmedError(f"{lost}; {what}. {kept}")
    adopted = adopt(api, layout, intent, found[0], FOUND)
    discard(files)
    progress(
        f"sis_import {adopted.sis_import.id} ({adopted.sis_import.workflow_state}) is this upload: {FOUND}"
    )
    return Posted(adopted.sis_import, adopted.directory, intent.profile, adopted=FOUND)


def _record(
    api: SisImports,
    build: BuildZip,
    intent: Intent,
    files: IntentFiles,
    sis_import: SisImport,
    now: dt.datetime,
    write: Callable[[Path, bytes], None] | None,
) -> Posted:
    """Save the id Canvas answered: in the answer slot (needs no free space), then in created.json.

    :class:`~clever2sis.errors.ImportNotRecordedError` when created.json cannot be written: the import
    exists, and its id is in the answer slot for the next upload or sync of the build to record.
    """
    try:
        write_answer(files, sis_import, now)
        kept = f"its id is kept in {files.answer}"
    except OSError:
        kept = f"the upload is recorded in {files.intent}"
    try:
        directory = record_created(
            build.build_dir,
            intent.profile,
            sis_import,
            base_url=str(api.client.base_url),
            account_id=api.account_id,
            zip_sha256=build.sha256,
            form_fields=intent.form_fields,
            signoff=intent.signoff,
            intent_id=intent.intent_id,
            write=write,
        )
    except OSError as error:
        raise ImportNotRecordedError(
            f"SIS import {sis_import.id} was created on Canvas, but {error.filename or 'created.json'} could "
            f"not be written ({error.strerror or error}); {kept}, and the next upload or sync of this build "
            f"records it; follow it with `clever2sis status {sis_import.id} --profile {intent.profile}`",
            sis_import.id,
            sis_import.workflow_state,
        ) from None
    discard(files)
    return Posted(sis_import, directory, intent.profile)


def follow_import(
    api: SisImports,
    posted: Posted,
    *,
    policy: WaitPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_update: Callable[[SisImport], None] = lambda _sis_import: None,
    progress: Progress = silent,
    attachment_wait_s: float | None = None,
) -> ImportResults:
    """Poll the import to its end, then save its final state, errors pages and errors file.

    A file that cannot be saved (a full disk) is a :class:`~clever2sis.errors.BuildDirError`: the import
    has ended in Canvas, and ``clever2sis status ID --wait`` saves its results again.
    """
    final = wait_for_import(
        api,
        posted.sis_import.id,
        policy=policy,
        clock=clock,
        sleep=sleep,
        on_update=on_update,
        on_problem=progress,
    )
    extra = {} if attachment_wait_s is None else {"attachment_wait_s": attachment_wait_s}
    try:
        return save_results(
            api, final, posted.directory, clock=clock, sleep=sleep, progress=progress, **extra
        )
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        raise BuildDirError(
            f"SIS import {final.id} ended {final.workflow_state}, but its results could not be saved: "
            f"{where}{error.strerror or error}; free some space, then save them with "
            f"`clever2sis status {final.id} --profile {posted.profile} --wait`"
        ) from None
