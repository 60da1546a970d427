"""The build stage: a snapshot becomes Canvas SIS Import CSVs, a zip, and a record of both (build.json).

::

    BUILD_DIR/
      csv/<file>.csv       the files, for a person to open
      sis_import.zip       the same files, for Canvas
      build.json           snapshot identity, config hash, tool version, rows and sha256 per file, the zip's
                           sha256, and every validation finding (kind, severity, file, record_id, message)
      identities.csv       (the sync's builds) who each users.csv row is, by the keys a person is
                           recognised by later (not uploaded; see clever2sis/sis/builders/identities.py)

(:mod:`clever2sis.build_dir` owns that layout and the record.) Everything is written into a temporary
directory first and renamed into place when complete, under the build directory's lock; ``--force`` keeps
the imports/ and approvals/ of the build it replaces (:func:`carry_over`).
"""

from __future__ import annotations

import functools
import shutil
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from clever2sis import __version__
from clever2sis.atomic import atomic_directory
from clever2sis.build_dir import (
    APPROVALS_DIR_NAME,
    IDENTITIES_NAME,
    IMPORTS_DIR_NAME,
    RECORD_NAME,
    BuildDir,
    BuildLock,
    BuildRecord,
    FileEntry,
    ZipEntry,
    sha256_file,
)
from clever2sis.clever.frames import District, load_district
from clever2sis.clever.snapshot import Snapshot, utc_timestamp
from clever2sis.config import BuildSettings
from clever2sis.errors import BuildError, StrictFindingsError, UsageError
from clever2sis.memory import release_freed_memory, use_returning_allocator
from clever2sis.progress import Progress, silent
from clever2sis.sis import files
from clever2sis.sis.builders import Built, check_templates
from clever2sis.sis.builders.accounts import build_accounts
from clever2sis.sis.builders.admins import build_admins
from clever2sis.sis.builders.change_sis_id import build_change_sis_id
from clever2sis.sis.builders.courses import build_courses, plan_sections
from clever2sis.sis.builders.enrollments import build_enrollments
from clever2sis.sis.builders.identities import identity_frame
from clever2sis.sis.builders.sections import build_sections
from clever2sis.sis.builders.terms import Previous, build_terms, keep_recreated_terms
from clever2sis.sis.builders.user_observers import build_user_observers
from clever2sis.sis.builders.users import build_users
from clever2sis.sis.checks import MALFORMED_RECORD
from clever2sis.sis.findings import FINDING_COLUMNS, WARNING, combine, no_findings
from clever2sis.sis.id_map import read_id_map
from clever2sis.sis.lengths import fit_lengths
from clever2sis.sis.validate import check_references, clean_control_characters
from clever2sis.sis.writer import InOrder, WrittenFile, ZipWriter, write_csv


@dataclass(frozen=True)
class BuiltFiles:
    """The rows of every Canvas file (only files with rows), all findings, and identities.csv's rows (None
    when they were not asked for, or ``ready`` took them)."""

    frames: dict[str, pd.DataFrame]
    findings: pd.DataFrame
    skipped: dict[str, str]
    identities: pd.DataFrame | None = None


Ready = Callable[[str, pd.DataFrame], None]
# The files of what Canvas holds that a build reads (see build_frames' ``previous``).
PREVIOUS_FILES = (files.TERMS, files.COURSES, files.SECTIONS)

# CanvasUnzip.default_limits (canvas-lms gems/canvas_unzip/lib/canvas_unzip.rb), with which an SIS import's
# zip is extracted (lib/sis/csv/import_refactored.rb): its files may hold, uncompressed, at most this many
# times the zip's own size, and at most CANVAS_UNZIP_MAX_BYTES; past either, extracting raises
# SizeLimitExceeded and the whole import fails ("Error while importing CSV").
CANVAS_UNZIP_MAX_RATIO = 100
CANVAS_UNZIP_MAX_BYTES = 50 << 30  # 50 GiB


def check_canvas_unzips(archive: Path) -> None:
    """Raise :class:`BuildError` when Canvas would refuse to extract ``archive`` (see
    ``CANVAS_UNZIP_MAX_RATIO``), naming the file that makes it so: the one that expands the most times, or
    under the absolute cap the largest. Canvas counts the bytes of every file in the zip against the size of
    the zip file as uploaded."""
    with zipfile.ZipFile(archive) as opened:
        members = opened.infolist()
    zip_bytes = archive.stat().st_size
    total = sum(member.file_size for member in members)
    by_ratio = zip_bytes * CANVAS_UNZIP_MAX_RATIO
    if total <= min(by_ratio, CANVAS_UNZIP_MAX_BYTES):
        return
    if total > by_ratio:
        worst = max(members, key=lambda member: member.file_size / max(member.compress_size, 1))
        ratio = worst.file_size / max(worst.compress_size, 1)
        raise BuildError(
            f"{archive.name} would expand to {total:,} bytes, more than {CANVAS_UNZIP_MAX_RATIO} times its "
            f"{zip_bytes:,} bytes, and Canvas refuses to extract such a zip: {worst.filename} expands "
            f"{ratio:,.0f} times ({worst.file_size:,} bytes from {worst.compress_size:,}); look in it for a "
            "value repeated over and over"
        )
    largest = max(members, key=lambda member: member.file_size)
    raise BuildError(
        f"{archive.name} would expand to {total:,} bytes, more than the {CANVAS_UNZIP_MAX_BYTES:,} bytes "
        f"(50 GiB) Canvas extracts; the largest file is {largest.filename} ({largest.file_size:,} bytes)"
    )


def build_frames(
    district: District,
    settings: BuildSettings,
    progress: Progress = silent,
    *,
    id_map: pd.DataFrame | None = None,
    previous: Previous | None = None,
    claimed_logins: pd.DataFrame | None = None,
    ready: Ready | None = None,
    identities: bool = False,
) -> BuiltFiles:
    """Run every builder, then the validation that spans files. Pure: no I/O.

    ``id_map`` (from ``clever2sis map-ids``) adds change_sis_id.csv: old SIS ids changed to this build's.

    ``previous`` is what Canvas holds (at least its terms.csv, courses.csv and sections.csv rows: the last
    build uploaded, or the sync's last applied run): a term Clever re-created keeps its Canvas term_id
    (:func:`~clever2sis.sis.builders.terms.keep_recreated_terms`), and the sections are planned again with
    it, so course ids and courses' term_id that embed ``canvas.term_id`` stay as they were.

    ``claimed_logins`` are logins Canvas still holds for removed users who are not tonight's (the sync's,
    :data:`~clever2sis.sis.builders.users.CLAIMED_COLUMNS`): the login rule gives them to no one.

    ``identities`` asks for identities.csv's rows, which only the sync reads (a million users' keys cost a
    second of a 1M-student build and 110 MB on disk). ``ready`` is given each file with rows as soon as it
    is final, in processing order, and identities.csv's rows (as
    :data:`~clever2sis.build_dir.IDENTITIES_NAME`) once users.csv is final. Every file before
    enrollments.csv is final before the enrollments are built, so a caller can write them meanwhile.
    """
    accounts, school_accounts = build_accounts(district, settings)
    terms, term_map = build_terms(district, settings)
    plan = plan_sections(district, settings, school_accounts, term_map)
    if previous is not None:
        terms, kept_map = keep_recreated_terms(terms, term_map, district, plan.frame, previous, settings)
        if not kept_map.equals(term_map):
            term_map = kept_map
            plan = plan_sections(district, settings, school_accounts, term_map)
    courses = build_courses(plan.frame, settings)
    sections = build_sections(plan.frame, settings)
    progress(f"courses: {len(courses.frame):,}; sections: {len(sections.frame):,}")
    users, user_map, observer_map, keys = build_users(
        district, settings, claimed=claimed_logins, school_accounts=school_accounts if identities else None
    )
    progress(f"users: {len(users.frame):,}")
    first = {
        files.ACCOUNTS: accounts,
        files.TERMS: terms,
        files.COURSES: courses,
        files.SECTIONS: sections,
        files.USERS: users,
    }
    if id_map is not None:
        first[files.CHANGE_SIS_ID] = build_change_sis_id(
            district, settings, id_map, plan.frame, user_map, observer_map
        )
        progress(f"SIS ids changed: {len(first[files.CHANGE_SIS_ID].frame):,}")
    final = _Validated(ready)
    final.found.append(malformed_findings(district))
    final.add(first)
    final.found.append(plan.findings)
    kept: pd.DataFrame | None = None
    if identities:
        kept = identity_frame(final.frames.get(files.USERS), keys)
        if ready is not None:
            ready(IDENTITIES_NAME, kept)
            kept = None
    del first, accounts, terms, courses, sections, users, keys
    rest = {files.ENROLLMENTS: build_enrollments(district, settings, plan.frame, user_map)}
    release_freed_memory()
    progress(f"enrollments: {len(rest[files.ENROLLMENTS].frame):,}")
    if settings.admins.enabled:
        sent_accounts = final.frames.get(files.ACCOUNTS, accounts_columns_only())["account_id"]
        rest[files.ADMINS] = build_admins(district, settings, school_accounts, user_map, sent_accounts)
        progress(f"admins: {len(rest[files.ADMINS].frame):,}")
    if settings.observers.enabled:
        rest[files.USER_OBSERVERS] = build_user_observers(district, settings, user_map, observer_map)
        progress(f"user observers: {len(rest[files.USER_OBSERVERS].frame):,}")
    final.add(rest)
    return BuiltFiles(
        frames=final.frames, findings=combine(final.found), skipped=final.skipped, identities=kept
    )


def accounts_columns_only() -> pd.DataFrame:
    """accounts.csv without rows (a build whose every school was left out)."""
    return pd.DataFrame({column: pd.Series([], dtype="string") for column in files.COLUMNS[files.ACCOUNTS]})


def malformed_findings(district: District) -> pd.DataFrame:
    """A ``malformed_record`` warning for each record the snapshot holds with a field of another type than
    Clever gives it (left out when the snapshot was loaded), about its collection's JSONL. There are at
    most :data:`~clever2sis.clever.snapshot.MAX_MALFORMED_RECORDS` per collection."""
    parts = []
    for collection, records in district.malformed.items():
        ids = pd.Series([record.record_id or "" for record in records], dtype="string")
        parts.append(
            MALFORMED_RECORD.about(f"{collection}.jsonl")(
                pd.Series(True, index=ids.index),
                ids,
                collection=collection,
                record_id=ids.replace("", "(no id)"),
                line=pd.Series([str(record.line) for record in records], dtype="string"),
                problem=pd.Series([record.problem for record in records], dtype="string"),
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else no_findings()


class _Validated:
    """Built files made final a batch at a time, in processing order: control characters cleaned and values
    fitted to the lengths Canvas stores, then rows whose references are not in the build dropped (each
    file's targets come before it, so are final)."""

    def __init__(self, ready: Ready | None) -> None:
        self.ready = ready
        self.frames: dict[str, pd.DataFrame] = {}
        self.found: list[pd.DataFrame] = []
        self.skipped: dict[str, str] = {}

    def add(self, built: Mapping[str, Built]) -> None:
        names = [name for name in files.FILE_ORDER if name in built]
        frames = dict(self.frames)
        for name in names:
            self.found.append(built[name].findings)
            frames[name], cleaned = clean_control_characters(name, built[name].frame)
            self.found.append(cleaned)
            frames[name], fitted = fit_lengths(name, frames[name])
            self.found.append(fitted)
        frames, dangling = check_references(frames, only=names)
        self.found.append(dangling)
        for name in names:
            if frames[name].empty:
                self.skipped[name] = "no rows (Canvas would take a header-only file as 'delete all')"
                continue
            self.frames[name] = frames[name]
            if self.ready is not None:
                self.ready(name, frames[name])


def findings_summary(found: pd.DataFrame) -> dict[str, Any]:
    kinds = found.groupby("kind", sort=True).agg(severity=("severity", "first"), n=("kind", "size"))
    return {
        "total": len(found),
        "warnings": int((found["severity"] == WARNING).sum()),
        "by_kind": {
            str(kind): {"severity": str(severity), "count": int(n)}
            for kind, severity, n in zip(kinds.index, kinds["severity"], kinds["n"], strict=True)
        },
    }


def with_findings(recorded: Mapping[str, Any], extra: pd.DataFrame) -> dict[str, Any]:
    """build.json's ``findings`` (``recorded``) with the findings ``extra`` added: summary and items again,
    in the stable order of :func:`~clever2sis.sis.findings.combine`."""
    items = pd.DataFrame(list(recorded.get("items", [])), columns=list(FINDING_COLUMNS), dtype="string")
    found = combine([items, extra])
    return {
        **findings_summary(found),
        "items": pa.Table.from_pandas(found, preserve_index=False).to_pylist(),
    }


def build_record(
    snapshot: Snapshot,
    settings: BuildSettings,
    written: Mapping[str, WrittenFile],
    archive: Path,
    built: BuiltFiles,
    id_map: Path | None = None,
) -> BuildRecord:
    return BuildRecord(
        tool={"name": "clever2sis", "version": __version__},
        built_at=utc_timestamp(),
        snapshot=snapshot.identity(),
        config={
            "source": settings.config_source,
            "sha256": settings.config_sha256,
            "course_structure": settings.course_structure,
            **({"id_map": {"source": str(id_map), "sha256": sha256_file(id_map)}} if id_map else {}),
        },
        files={
            name: FileEntry(rows=file.rows, sha256=file.sha256, bytes=file.bytes)
            for name, file in written.items()
        },
        skipped_files=built.skipped,
        zip=ZipEntry(sha256=sha256_file(archive), bytes=archive.stat().st_size),
        findings={
            **findings_summary(built.findings),
            "items": pa.Table.from_pandas(built.findings, preserve_index=False).to_pylist(),
        },
    )


def previous_build(build_dir: Path) -> Previous:
    """What Canvas holds once ``build_dir`` is imported, as :func:`build` takes it: the terms, courses and
    sections of its zip (checked against its build.json; rows sent as deleted are not held).

    A build directory that is missing, incomplete or whose zip changed is a :class:`UsageError`.
    """
    frames = BuildDir(build_dir).verified_zip(error=UsageError).read_frames()
    return {name: frames[name] for name in PREVIOUS_FILES}


def build(
    snapshot_dir: Path,
    out: Path,
    settings: BuildSettings,
    *,
    force: bool = False,
    strict: bool = False,
    progress: Progress = silent,
    id_map: Path | None = None,
    previous: Previous | None = None,
    claimed_logins: pd.DataFrame | None = None,
    identities: bool = False,
) -> dict[str, Any]:
    """Build ``snapshot_dir`` into ``out`` and return the build record (also saved as build.json).

    ``id_map``: a mapping from ``clever2sis map-ids``, for the first import into a Canvas that already has
    SIS ids from an older feed (adds change_sis_id.csv). ``previous``: what Canvas holds (see
    :func:`build_frames`; :func:`previous_build` reads it from a build directory). ``claimed_logins``:
    logins Canvas holds for removed users, given to no one (see :func:`build_frames`). ``identities``:
    write identities.csv beside the build (the sync does; see :func:`build_frames`).

    The build holds ``out``'s :class:`~clever2sis.build_dir.BuildLock` from the moment the snapshot is
    open until the new directory is in place: a second build of ``out``, or one while an upload, review or
    approve uses it, stops at once saying so. With ``force`` an existing build is replaced, keeping what
    records its history (see :func:`carry_over`).
    """
    if out.exists() and not force:
        raise UsageError(f"{out} already exists; use --force to replace it")
    check_templates(settings)
    use_returning_allocator()
    id_changes = read_id_map(id_map) if id_map is not None else None
    snapshot = Snapshot.open(snapshot_dir)
    with BuildLock(out, shared=False, error=BuildError):
        if out.exists() and not force:
            raise UsageError(
                f"{out} already exists (another build wrote it meanwhile); use --force to replace it"
            )
        record = _write_build(
            snapshot,
            out,
            settings,
            force=force,
            progress=progress,
            id_map=id_map,
            id_changes=id_changes,
            previous=previous,
            claimed_logins=claimed_logins,
            identities=identities,
        )
    warnings = (record.findings or {})["warnings"]
    if strict and warnings:
        raise StrictFindingsError(
            f"{warnings} warning finding(s) and --strict was given; "
            f"the build is in {out} for review (see {RECORD_NAME})"
        )
    return record.as_dict()


def _write_build(
    snapshot: Snapshot,
    out: Path,
    settings: BuildSettings,
    *,
    force: bool,
    progress: Progress,
    id_map: Path | None,
    id_changes: pd.DataFrame | None,
    previous: Previous | None,
    claimed_logins: pd.DataFrame | None = None,
    identities: bool = False,
) -> BuildRecord:
    """Load the snapshot, build and write every file into a new directory, and put it in place at ``out``."""
    progress(f"reading snapshot {snapshot.path} (district {snapshot.district_id})")
    if not snapshot.has_columnar_copy:
        progress("the snapshot has no columnar copy this clever2sis reads (an older pull): parsing its JSONL")
    district = load_district(snapshot)
    progress(f"loaded {len(district.users):,} users, {len(district.sections):,} sections")
    try:
        with atomic_directory(out, replace=force) as tmp:
            layout = BuildDir(tmp)
            layout.csv_dir.mkdir()
            written: dict[str, WrittenFile] = {}
            with (
                ZipWriter(layout.zip_file) as archive,
                InOrder(len(files.FILE_ORDER) + 1, "csv-files") as later,
            ):

                def write_file(name: str, frame: pd.DataFrame) -> None:
                    if name == IDENTITIES_NAME:  # beside the build, not in the zip
                        write_csv(frame, layout.identities_file)
                        return
                    with archive.member(name) as add_to_zip:
                        written[name] = write_csv(frame, layout.csv_file(name), also=add_to_zip)

                # Each file is written on its own thread as soon as it is final (see build_frames).
                built = build_frames(
                    district,
                    settings,
                    progress,
                    id_map=id_changes,
                    previous=previous,
                    claimed_logins=claimed_logins,
                    ready=functools.partial(later, write_file),
                    identities=identities,
                )
                del district
                release_freed_memory()
            check_canvas_unzips(layout.zip_file)
            csv_bytes = sum(f.bytes for f in written.values())
            zip_bytes = layout.zip_file.stat().st_size
            progress(
                f"wrote {len(written)} CSV files ({csv_bytes:,} bytes) and the zip ({zip_bytes:,} bytes)"
            )
            record = build_record(snapshot, settings, written, layout.zip_file, built, id_map)
            layout.write_record(record)
            if out.is_dir():
                for line in carry_over(BuildDir(out), layout):
                    progress(line)
    except OSError as error:
        # Disk full, permissions: nothing was replaced, and the message says where and why.
        where = f" ({error.filename})" if error.filename else ""
        raise BuildError(f"cannot write the build to {out}: {error.strerror or error}{where}") from None
    return record


def carry_over(old: BuildDir, new: BuildDir) -> list[str]:
    """Copy into ``new`` what ``old`` (the build it replaces) holds besides the build; say what, in lines.

    ``imports/`` (the id and results of every import posted from the old build: an import may still be
    running in Canvas) and ``approvals/`` are kept. A carried approval names the zip it approved by
    sha256, so it lets only those very bytes through (a rebuild that gives another zip is reported by
    ``upload`` as changed since it was signed off), and a carried import of another zip is not taken for
    this zip's test import nor for what Canvas holds. ``report.html`` and ``review/`` are left out: they
    describe the old build (its findings, snapshot and time, even when the zip came out the same), and a
    report of the old build must not pass for a review of the new one.
    """
    kept = [name for name in (IMPORTS_DIR_NAME, APPROVALS_DIR_NAME) if (old.path / name).is_dir()]
    for name in kept:
        shutil.copytree(old.path / name, new.path / name, symlinks=True)
    lines = [f"kept {', '.join(name + '/' for name in kept)} of the build this one replaces"] if kept else []
    reviews = [p.name + ("/" if p.is_dir() else "") for p in (old.report_file, old.review_dir) if p.exists()]
    if reviews:
        lines.append(
            f"left out {' and '.join(reviews)}: they describe the build this one replaces; run "
            "`clever2sis review` on this one"
        )
    return lines
