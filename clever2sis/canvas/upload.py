"""Upload a build's zip as a SIS import and see it through: the library half of ``clever2sis upload``.

The zip comes checked against its build.json (:meth:`clever2sis.build_dir.BuildDir.verified_zip`, with
:class:`~clever2sis.errors.BuildDirError`: exit code 36).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clever2sis.build_dir import BuildZip
from clever2sis.canvas.results import ImportResults, record_created, save_results
from clever2sis.canvas.sis_import import ImportOptions, SisImport, SisImports, WaitPolicy, wait_for_import
from clever2sis.errors import BuildDirError, ImportAlreadyRunningError, PostOutcomeUnknownError
from clever2sis.progress import Progress, silent


def ensure_nothing_running(api: SisImports, *, queue: bool, progress: Progress = silent) -> None:
    """Stop when Canvas is already running an import on the account, unless ``queue`` says to line up."""
    running = api.running()
    if not running:
        return
    described = ", ".join(f"{item.id} ({item.workflow_state})" for item in running)
    if not queue:
        raise ImportAlreadyRunningError(
            f"SIS import {described} is already running on this account; wait for it, or pass --queue to "
            "have Canvas run this one after it"
        )
    progress(f"SIS import {described} is running; this one will queue behind it")


@dataclass(frozen=True)
class Posted:
    """An import Canvas created from a build, and where its results are saved."""

    sis_import: SisImport
    directory: Path
    profile: str


def post_build(
    api: SisImports,
    build: BuildZip,
    options: ImportOptions,
    *,
    profile: str,
    queue: bool = False,
    before_post: Callable[[str, BuildZip], Mapping[str, Any] | None] = lambda _profile, _build: None,
    progress: Progress = silent,
) -> Posted:
    """Check everything, post the zip, and record the new import's id in the build directory at once.

    ``before_post`` is the last check (the sign-off gate); what it returns is saved in created.json. An id
    that cannot be saved (a full disk) is a :class:`~clever2sis.errors.BuildDirError` that names the import,
    which exists in Canvas by then.
    """
    options.validate()
    ensure_nothing_running(api, queue=queue, progress=progress)
    signoff = before_post(profile, build)
    progress(f"uploading {build.path} ({build.size_bytes} bytes)")
    try:
        sis_import = api.create(build.path, options)
    except PostOutcomeUnknownError as error:
        raise PostOutcomeUnknownError(
            f"{error}. The SIS import may have been created: see the account's latest imports with "
            f"`clever2sis list --profile {profile}` before uploading again"
        ) from None
    try:
        directory = record_created(
            build.build_dir,
            profile,
            sis_import,
            base_url=str(api.client.base_url),
            account_id=api.account_id,
            zip_sha256=build.sha256,
            form_fields=options.form_fields(),
            signoff=signoff,
        )
    except OSError as error:
        raise BuildDirError(
            f"SIS import {sis_import.id} was created on Canvas, but {error.filename} could not be written "
            f"({error.strerror or error}); follow it with "
            f"`clever2sis status {sis_import.id} --profile {profile}`"
        ) from None
    return Posted(sis_import=sis_import, directory=directory, profile=profile)


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

    Results that cannot be saved are a :class:`~clever2sis.errors.BuildDirError` naming the import and its
    end state.
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
            f"{where}{error.strerror or error}; `clever2sis status {final.id} --profile {posted.profile}` "
            "shows it"
        ) from None
