"""Upload a build's zip as a SIS import and see it through: the library half of ``clever2sis upload``."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from clever2sis.canvas.results import ImportResults, record_created, save_results
from clever2sis.canvas.sis_import import ImportOptions, SisImport, SisImports, WaitPolicy, wait_for_import
from clever2sis.errors import BuildDirError, ImportAlreadyRunningError
from clever2sis.progress import Progress, silent

ZIP_NAME = "sis_import.zip"
BUILD_INFO_NAME = "build.json"
_HASH_CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class BuildZip:
    """The zip of a build directory, checked against the sha256 its ``build.json`` records."""

    build_dir: Path
    path: Path
    sha256: str
    size_bytes: int


def check_build_dir(build_dir: Path) -> BuildZip:
    """The build's zip, refused when it is missing, or when it is not the zip ``build.json`` describes."""
    zip_path = build_dir / ZIP_NAME
    info_path = build_dir / BUILD_INFO_NAME
    if not build_dir.is_dir():
        raise BuildDirError(f"{build_dir}: no such build directory; run `clever2sis build` first")
    if not zip_path.is_file():
        raise BuildDirError(f"{zip_path}: no zip to upload; run `clever2sis build` into {build_dir} first")
    try:
        info = orjson.loads(info_path.read_bytes())
        expected = info["zip"]["sha256"]
    except FileNotFoundError:
        raise BuildDirError(f"{info_path}: missing; {build_dir} is not a complete build") from None
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise BuildDirError(f"{info_path}: has no zip.sha256; {build_dir} is not a complete build") from None
    digest = hashlib.sha256()
    size = 0
    with zip_path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
            size += len(chunk)
    if digest.hexdigest() != expected:
        raise BuildDirError(
            f"{zip_path}: its sha256 does not match {BUILD_INFO_NAME}; the zip changed after the build, "
            "so rebuild it"
        )
    return BuildZip(build_dir=build_dir, path=zip_path, sha256=expected, size_bytes=size)


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
    sis_import: SisImport
    directory: Path


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

    ``before_post`` is the last check (the sign-off gate); what it returns is saved in created.json.
    """
    options.validate()
    ensure_nothing_running(api, queue=queue, progress=progress)
    signoff = before_post(profile, build)
    progress(f"uploading {build.path} ({build.size_bytes} bytes)")
    sis_import = api.create(build.path, options)
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
    return Posted(sis_import=sis_import, directory=directory)


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
    """Poll the import to its end, then save its final state, errors pages and errors file."""
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
    return save_results(api, final, posted.directory, clock=clock, sleep=sleep, progress=progress, **extra)
