"""Upload intents: an upload is written down before its POST, so that no import is lost or posted twice.

Canvas can create an import and still give no usable answer: the connection drops, a proxy answers 502
after forwarding the request, the body comes back cut short, the process is killed during the POST, or the
disk fills up before the id is saved. Posting again would create a second import. So, before the POST, an
upload records its *intent* under ``BUILD_DIR/imports/<profile>/intents/``
(:class:`~clever2sis.build_dir.IntentFiles`):

``<intent_id>.intent.json``
    the zip (sha256, size, the name and size of every file in it), the time, the profile, the Canvas host
    and account and the exact form fields: what it takes to recognise the import later;
``<intent_id>.answer``
    a slot of :data:`ANSWER_SLOT_BYTES` spaces, written in place with the import's id the moment the POST
    answers. Its blocks are allocated before the POST, so that saving the id needs no free disk space on a
    file system that overwrites in place (ext4, xfs); created.json is written after it.

Once created.json is saved, both files go. An intent left behind is *settled* later (:func:`settle_intents`:
the next upload or sync of that build, or the next sync reconciling the killed run that left it): from its
answer slot when the id got there, or else by finding the import among the account's imports and
*adopting* it (writing created.json as if the POST had answered).

How an import is recognised. Canvas keeps no name the uploader chooses: the uploaded file is stored as
``sis_upload_<batch id>.zip`` whatever its multipart filename (``SisBatch.create_with_attachment`` in
canvas-lms ``app/models/sis_batch.rb``), and ``csv_attachments`` (``lib/api/v1/sis_import.rb``) lists the
files extracted from the zip under their own names and sizes, once the import has started
(``create_batch_attachment`` in ``lib/sis/csv/import_refactored.rb``). So an import matches an intent when

* it was created between :data:`CLOCK_SKEW_S` before the intent and :data:`SETTLE_S` after it (asked for with
  ``created_since``, ``SisImportsApiController#index``);
* each option it echoes (``SisBatch#as_json``) is what the form fields asked for, and the ones not sent are
  unset;
* when it lists ``csv_attachments``, they are the zip's files, by name and size;
* no created.json of the build already names it.

Exactly one match is adopted. None leaves the intent for a later run, until :data:`SETTLE_S` after it: by
then a POST that never created anything is known never to will, and the intent is closed as
``<intent_id>.not-found.json``. Several matches are left for a person to decide.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from clever2sis.atomic import atomic_write_bytes
from clever2sis.build_dir import BuildDir, IntentFiles
from clever2sis.canvas.client import UPLOAD_TIMEOUT_S, safe_url
from clever2sis.canvas.results import record_created
from clever2sis.canvas.sis_import import IMPORT_TYPE, ImportOptions, SisImport, SisImports
from clever2sis.progress import Progress, silent

ANSWER_SLOT_BYTES = 512
CLOCK_SKEW_S = 300.0
# A POST still unanswered this long after it was sent has given up on our side (UPLOAD_TIMEOUT_S), and
# Canvas creates the import while it handles the request: after it, a missing import never comes.
SETTLE_S = UPLOAD_TIMEOUT_S + CLOCK_SKEW_S
MAX_IMPORTS_SCANNED = 500
INTENT_FORMAT = "clever2sis.upload_intent"
INTENT_ID_FORMAT = "%Y%m%dT%H%M%SZ"
INTENT_ID_RANDOM_BYTES = 4

# The SisImport key that echoes a form field, where the names differ (SisBatch#as_json).
_ECHOED_AS = {"diffing_remaster_data_set": "diffing_remaster"}
# Echoed in another form than sent: the term's Canvas id for "sis_term_id:X". Only whether it is set counts.
_PRESENCE_ONLY = frozenset({"batch_mode_term_id"})


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Intent:
    """One upload about to be posted: what was sent, where, when (see the module docstring)."""

    intent_id: str
    profile: str
    canvas: str
    account_id: str
    intended_at: dt.datetime
    zip_sha256: str
    zip_bytes: int
    files: tuple[tuple[str, int], ...]
    form_fields: tuple[tuple[str, str], ...]
    signoff: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": INTENT_FORMAT,
            "intent_id": self.intent_id,
            "profile": self.profile,
            "canvas": self.canvas,
            "account_id": self.account_id,
            "intended_at": stamp(self.intended_at),
            "zip_sha256": self.zip_sha256,
            "zip_bytes": self.zip_bytes,
            "files": [list(pair) for pair in self.files],
            "form_fields": [list(pair) for pair in self.form_fields],
        }
        if self.signoff is not None:
            out["signoff"] = dict(self.signoff)
        return out

    @classmethod
    def from_dict(cls, value: Any) -> Intent:
        """The intent a parsed ``.intent.json`` holds; ValueError when it is not one."""
        if not isinstance(value, dict) or value.get("format") != INTENT_FORMAT:
            raise ValueError("not an upload intent")
        intended_at = _parse_time(value.get("intended_at"))
        if intended_at is None:
            raise ValueError("no intended_at time")
        try:
            return cls(
                intent_id=str(value["intent_id"]),
                profile=str(value["profile"]),
                canvas=str(value["canvas"]),
                account_id=str(value["account_id"]),
                intended_at=intended_at,
                zip_sha256=str(value["zip_sha256"]),
                zip_bytes=int(value["zip_bytes"]),
                files=tuple((str(name), int(size)) for name, size in value["files"]),
                form_fields=tuple((str(name), str(field)) for name, field in value["form_fields"]),
                signoff=value.get("signoff"),
            )
        except (KeyError, TypeError, ValueError) as problem:
            raise ValueError(f"incomplete upload intent ({problem})") from None


def new_intent(
    *,
    profile: str,
    canvas: str,
    account_id: str,
    zip_path: Path,
    zip_sha256: str,
    options: ImportOptions,
    now: dt.datetime,
    signoff: Mapping[str, Any] | None = None,
) -> Intent:
    """The intent of posting ``zip_path`` now, with a fresh id (the time and random hex)."""
    intent_id = (
        f"{now.astimezone(dt.UTC).strftime(INTENT_ID_FORMAT)}-{secrets.token_hex(INTENT_ID_RANDOM_BYTES)}"
    )
    return Intent(
        intent_id=intent_id,
        profile=profile,
        canvas=safe_url(canvas),
        account_id=account_id,
        intended_at=now,
        zip_sha256=zip_sha256,
        zip_bytes=zip_path.stat().st_size,
        files=zip_files(zip_path),
        form_fields=tuple(options.form_fields()),
        signoff=signoff,
    )


def zip_files(path: Path) -> tuple[tuple[str, int], ...]:
    """The files Canvas extracts from the zip at ``path``: (base name, size), sorted; empty ones are skipped
    as Canvas skips them (``create_batch_attachment``)."""
    with zipfile.ZipFile(path) as archive:
        return tuple(
            sorted(
                (Path(info.filename).name, info.file_size)
                for info in archive.infolist()
                if not info.is_dir() and info.file_size
            )
        )


# --- the files -------------------------------------------------------------------------------------------


def write_intent(files: IntentFiles, intent: Intent) -> None:
    """Write the answer slot (allocated, blank) and then the intent; OSError before anything is posted."""
    try:
        atomic_write_bytes(files.answer, b" " * (ANSWER_SLOT_BYTES - 1) + b"\n")
        atomic_write_bytes(files.intent, orjson.dumps(intent.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    except BaseException:
        discard(files)
        raise


def write_answer(files: IntentFiles, sis_import: SisImport, now: dt.datetime) -> None:
    """Write the new import's id into the answer slot, in place: the slot's blocks are already allocated."""
    body = orjson.dumps(
        {
            "sis_import_id": sis_import.id,
            "workflow_state": sis_import.workflow_state,
            "answered_at": stamp(now),
        }
    )
    data = body.ljust(ANSWER_SLOT_BYTES - 1) + b"\n"
    fd = os.open(files.answer, os.O_WRONLY)
    try:
        os.pwrite(fd, data, 0)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_answer(files: IntentFiles) -> int | None:
    """The import id in the answer slot; None while it is blank (or unreadable: a write cut short)."""
    try:
        body = orjson.loads(files.answer.read_bytes().strip() or b"null")
    except (OSError, orjson.JSONDecodeError):
        return None
    value = body.get("sis_import_id") if isinstance(body, dict) else None
    return value if isinstance(value, int) else None


def read_intent(files: IntentFiles) -> Intent:
    """The intent in ``files``; ValueError (saying what is wrong) when it cannot be read."""
    try:
        return Intent.from_dict(orjson.loads(files.intent.read_bytes()))
    except (OSError, orjson.JSONDecodeError) as problem:
        raise ValueError(str(problem)) from None


def discard(files: IntentFiles) -> None:
    """Remove a settled intent (created.json now holds everything it did)."""
    files.intent.unlink(missing_ok=True)
    files.answer.unlink(missing_ok=True)


def close_not_found(files: IntentFiles) -> None:
    """Keep an intent that no import ever matched as ``<id>.not-found.json``; it no longer blocks a post."""
    files.intent.replace(files.not_found)
    files.answer.unlink(missing_ok=True)


# --- recognising the import ------------------------------------------------------------------------------


def _sent_value(value: str) -> Any:
    if value == "true":
        return True
    return int(value) if value.isdigit() else value


def _same_option(echoed: Any, sent: Any) -> bool:
    if isinstance(sent, bool) or sent is None:
        return bool(echoed) == bool(sent)
    if isinstance(sent, int):
        try:
            return echoed is not None and int(echoed) == sent
        except (TypeError, ValueError):
            return False
    return bool(echoed == sent)


def matches(sis_import: SisImport, intent: Intent) -> bool:
    """Whether ``sis_import`` is what posting ``intent`` would have created (see the module docstring)."""
    raw = sis_import.raw
    created_at = _parse_time(raw.get("created_at"))
    earliest = intent.intended_at - dt.timedelta(seconds=CLOCK_SKEW_S)
    latest = intent.intended_at + dt.timedelta(seconds=SETTLE_S)
    if created_at is None or not earliest <= created_at <= latest:
        return False
    sent = dict(intent.form_fields)
    import_type = sis_import.data.get("import_type")
    if import_type is not None and import_type != sent.get("import_type", IMPORT_TYPE):
        return False
    for name in ImportOptions.names():
        key = _ECHOED_AS.get(name, name)
        if key not in raw:
            continue
        wanted = _sent_value(sent[name]) if name in sent else None
        if name in _PRESENCE_ONLY:
            if (raw[key] is not None) != (wanted is not None):
                return False
        elif not _same_option(raw[key], wanted):
            return False
    attachments = raw.get("csv_attachments")
    if isinstance(attachments, list) and attachments:
        listed = sorted(
            (str(item.get("display_name") or item.get("filename")), item.get("size"))
            for item in attachments
            if isinstance(item, Mapping)
        )
        if listed != sorted(intent.files):
            return False
    return True


def find_import(
    api: SisImports, intent: Intent, *, exclude: Iterable[int] = (), scanned: int = MAX_IMPORTS_SCANNED
) -> list[SisImport]:
    """Every import of the account that matches ``intent`` and is not in ``exclude``, newest first."""
    since = intent.intended_at - dt.timedelta(seconds=CLOCK_SKEW_S)
    excluded = set(exclude)
    return [
        sis_import
        for sis_import in islice(api.list(created_since=since), scanned)
        if sis_import.id not in excluded and matches(sis_import, intent)
    ]


# --- settling what earlier uploads left ------------------------------------------------------------------


@dataclass(frozen=True)
class Adopted:
    """An import an intent led to: ``how`` says whether its id came from the answer slot or a search."""

    intent: Intent
    sis_import: SisImport
    directory: Path
    how: str


@dataclass
class Settlement:
    """What :func:`settle_intents` made of a build's pending intents."""

    adopted: list[Adopted] = field(default_factory=list)
    not_found: list[Intent] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # why an intent is still pending, one line each


ANSWERED = "its id was in the answer slot"
FOUND = "found among the account's imports"


def adopt(
    api: SisImports,
    layout: BuildDir,
    intent: Intent,
    sis_import: SisImport,
    how: str,
    *,
    write: Callable[[Path, bytes], None] | None = None,
) -> Adopted:
    """Record ``sis_import`` in created.json as the answer to ``intent`` (``how``: how it was found)."""
    directory = record_created(
        layout.path,
        intent.profile,
        sis_import,
        base_url=str(api.client.base_url),
        account_id=api.account_id,
        zip_sha256=intent.zip_sha256,
        form_fields=intent.form_fields,
        signoff=intent.signoff,
        posted_at=stamp(intent.intended_at),
        intent_id=intent.intent_id,
        adopted=how,
        write=write,
    )
    return Adopted(intent, sis_import, directory, how)


def settle_intents(
    api: SisImports,
    build_dir: Path,
    profile: str,
    *,
    now: dt.datetime,
    progress: Progress = silent,
) -> Settlement:
    """Settle the pending intents of ``profile`` in ``build_dir``: adopt, close or leave each one."""
    layout = BuildDir(build_dir)
    settlement = Settlement()
    for files in layout.pending_intents(profile):
        try:
            intent = read_intent(files)
        except ValueError as problem:
            settlement.waiting.append(
                f"{files.intent} cannot be read ({problem}); check it and remove it by hand"
            )
            continue
        where = f"the upload of {layout.path} at {stamp(intent.intended_at)} (intent {intent.intent_id})"
        if intent.canvas != safe_url(str(api.client.base_url)) or intent.account_id != api.account_id:
            settlement.waiting.append(
                f"{where} went to {intent.canvas} account {intent.account_id}, not this Canvas; "
                "settle it with that profile"
            )
            continue
        adopted = _settle_one(api, layout, files, intent, where, settlement, now, progress)
        if adopted is not None:
            discard(files)
            settlement.adopted.append(adopted)
            progress(
                f"sis_import {adopted.sis_import.id} ({adopted.sis_import.workflow_state}) adopted for "
                f"{where}: {adopted.how}"
            )
    return settlement


def _settle_one(
    api: SisImports,
    layout: BuildDir,
    files: IntentFiles,
    intent: Intent,
    where: str,
    settlement: Settlement,
    now: dt.datetime,
    progress: Progress,
) -> Adopted | None:
    """Adopt the import of one readable intent, or note why not (closing it when it never arrived)."""
    answered = read_answer(files)
    if answered is not None:
        return adopt(api, layout, intent, api.get(answered), ANSWERED)
    exclude = {*layout.recorded_imports(intent.profile), *(a.sis_import.id for a in settlement.adopted)}
    found = find_import(api, intent, exclude=exclude)
    if len(found) == 1:
        return adopt(api, layout, intent, found[0], FOUND)
    if found:
        ids = ", ".join(str(item.id) for item in found)
        settlement.waiting.append(
            f"{where} matches several imports ({ids}); find the one it made with `clever2sis status`, "
            f"then remove {files.intent}"
        )
        return None
    settled_at = intent.intended_at + dt.timedelta(seconds=SETTLE_S)
    if now < settled_at:
        settlement.waiting.append(
            f"{where} may still have reached Canvas, but no import matches it yet; try again after "
            f"{stamp(settled_at)}, when a post that made nothing is known to have failed"
        )
        return None
    close_not_found(files)
    settlement.not_found.append(intent)
    progress(f"{where} never reached Canvas (no import matches it); kept as {files.not_found.name}")
    return None
