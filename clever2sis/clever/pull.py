"""Pull one district from the Clever API into a snapshot.

Each collection streams page by page into its ``.jsonl`` file (records are never all held in memory), in
parallel threads that share one client and so one rate limit. Records are written byte for byte as Clever
sent them, de-duplicated by id. When every collection is in, references between them are checked (a section
naming a student missing from ``/users`` happens while a district sync runs): they are counted in the
manifest, not fatal. Only then is the snapshot finished and renamed into place; any failure or interruption
before that leaves nothing at ``dest``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from clever2sis.clever.client import CleverClient
from clever2sis.clever.snapshot import COLLECTIONS, SnapshotWriter, utc_timestamp
from clever2sis.errors import CleverApiError, CleverError, SnapshotError, UsageError
from clever2sis.progress import Progress, silent

SNAPSHOT_SOURCE = "clever-api"
DEFAULT_WORKERS = 3
# Largest first, so the long pulls start at once and the small ones fill in beside them.
PULL_ORDER = ("users", "sections", "districts", "schools", "terms", "courses")


def _ids(value: Any) -> Iterator[str]:
    """The ids in a reference field: a single id, a list of ids; empty strings and nulls are no reference."""
    if isinstance(value, str):
        if value:
            yield value
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str) and item:
                yield item


def _field(name: str) -> Callable[[dict[str, Any]], Iterator[str]]:
    return lambda record: _ids(record.get(name))


def _contact_students(record: dict[str, Any]) -> Iterator[str]:
    roles = record.get("roles")
    contact = roles.get("contact") if isinstance(roles, dict) else None
    relationships = contact.get("student_relationships") if isinstance(contact, dict) else None
    for relationship in relationships if isinstance(relationships, list) else ():
        if isinstance(relationship, dict):
            yield from _ids(relationship.get("student"))


@dataclass(frozen=True)
class Reference:
    """A field of ``source`` records that names records of ``target``; ``key`` is its manifest name."""

    key: str
    source: str
    target: str
    ids: Callable[[dict[str, Any]], Iterable[str]]
    # Lines without these bytes cannot hold the reference and are not parsed again.
    marker: bytes = b""


REFERENCES: tuple[Reference, ...] = (
    Reference("sections.students", "sections", "users", _field("students")),
    Reference("sections.teachers", "sections", "users", _field("teachers")),
    Reference("sections.teacher", "sections", "users", _field("teacher")),
    Reference("sections.course", "sections", "courses", _field("course")),
    Reference("sections.term_id", "sections", "terms", _field("term_id")),
    Reference("sections.school", "sections", "schools", _field("school")),
    Reference("users.contact.student_relationships", "users", "users", _contact_students, b'"contact"'),
)


@dataclass
class _Pulled:
    """What pulling one collection produced besides its file."""

    ids: set[str] = field(default_factory=set)
    pages: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    first: dict[str, Any] | None = None


class _Cancelled(Exception):
    """Another collection failed or the pull was interrupted; stop quietly."""


def pull_district(
    client: CleverClient,
    dest: Path,
    *,
    progress: Progress = silent,
    replace: bool = False,
    workers: int = DEFAULT_WORKERS,
) -> dict[str, Any]:
    """Pull every collection of the token's district into a new snapshot at ``dest``; return its manifest."""
    if dest.exists() and not replace:
        raise UsageError(f"{dest} already exists; choose another --out or replace it with --force")
    if workers < 1:
        raise UsageError(f"workers must be 1 or more, not {workers}")
    started_at = utc_timestamp()
    started = time.monotonic()
    progress(f"pulling from {client.origin}/{client.api_version} into {dest} ({client.page_size} per page)")
    try:
        with SnapshotWriter(
            dest, api_version=client.api_version, source=SNAPSHOT_SOURCE, replace=replace
        ) as snapshot:
            pulled = _pull_all(client, snapshot, progress, workers)
            district = _the_district(pulled["districts"])
            dangling = _dangling_references(snapshot, pulled)
            for key, count in dangling.items():
                if count:
                    progress(f"warning: {count} dangling {key} reference(s) (ids missing from the pull)")
            manifest = snapshot.finish(
                district=district,
                started_at=started_at,
                extra={
                    "api_base": client.origin,
                    "page_size": client.page_size,
                    "dangling_references": dangling,
                    "pull": {
                        "duration_s": round(time.monotonic() - started, 3),
                        "pages": {name: pulled[name].pages for name in COLLECTIONS},
                        "duplicates_dropped": {name: pulled[name].duplicates for name in COLLECTIONS},
                        "ids_out_of_order": {name: pulled[name].out_of_order for name in COLLECTIONS},
                        **client.stats.as_dict(),
                    },
                },
            )
    except FileExistsError:
        raise UsageError(f"{dest} appeared while pulling; nothing was replaced (use --force)") from None
    counts = ", ".join(f"{manifest['collections'][n]['records']} {n}" for n in COLLECTIONS)
    progress(f"snapshot complete: {counts}")
    return manifest


def _pull_all(
    client: CleverClient, snapshot: SnapshotWriter, progress: Progress, workers: int
) -> dict[str, _Pulled]:
    files = {name: snapshot.collection(name) for name in COLLECTIONS}
    stop = threading.Event()
    pulled: dict[str, _Pulled] = {}
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clever-pull")
    futures: dict[Future[_Pulled], str] = {}
    try:
        for name in PULL_ORDER:
            futures[pool.submit(_pull_collection, client, name, files[name].write_raw, progress, stop)] = name
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            error = future.exception()
            if error is not None:
                stop.set()
                name = futures[future]
                if isinstance(error, CleverError):
                    raise type(error)(f"pulling {name} failed: {error}") from error
                raise error
        for future, name in futures.items():
            pulled[name] = future.result()
            progress(f"{name}: {len(pulled[name].ids)} records in {pulled[name].pages} page(s)")
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
    return pulled


def _pull_collection(
    client: CleverClient,
    name: str,
    write: Callable[[Iterable[bytes]], None],
    progress: Progress,
    stop: threading.Event,
) -> _Pulled:
    result = _Pulled()
    last_id = ""
    for page in client.iter_pages(name):
        if stop.is_set():
            raise _Cancelled(name)
        lines: list[bytes] = []
        for record, raw in zip(page.records, page.raw, strict=True):
            record_id = record.get("id")
            if not isinstance(record_id, str) or not record_id:
                raise CleverApiError(f"a record on page {page.number} has no id")
            if record_id in result.ids:
                result.duplicates += 1
                continue
            if record_id < last_id:
                result.out_of_order += 1
            result.ids.add(record_id)
            last_id = record_id
            lines.append(raw)
            if result.first is None:
                result.first = record
        write(lines)
        result.pages = page.number
        progress(f"{name}: page {page.number}, {len(result.ids)} records")
    return result


def _the_district(pulled: _Pulled) -> dict[str, Any]:
    if pulled.first is None:
        raise CleverApiError("Clever returned no district for this token; is it a district-app token?")
    if len(pulled.ids) > 1:
        raise CleverApiError(
            f"Clever returned {len(pulled.ids)} districts; a pull needs a district-app token, which sees one"
        )
    return pulled.first


def _dangling_references(snapshot: SnapshotWriter, pulled: dict[str, _Pulled]) -> dict[str, int]:
    """Count references to ids that are not in the pulled collections, reading the written files back."""
    counts = {reference.key: 0 for reference in REFERENCES}
    for source in dict.fromkeys(reference.source for reference in REFERENCES):
        references = [reference for reference in REFERENCES if reference.source == source]
        markers = {reference.marker for reference in references}
        file = snapshot.collection(source)
        file.close()  # complete: flush it to read it back (finish() closes it again, harmlessly)
        with file.path.open("rb") as lines:
            for line in lines:
                if b"" not in markers and not any(marker in line for marker in markers):
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError as error:
                    raise SnapshotError(
                        f"{file.path}: unreadable line written during the pull ({error})"
                    ) from None
                for reference in references:
                    known = pulled[reference.target].ids
                    counts[reference.key] += sum(1 for i in reference.ids(record) if i not in known)
    return counts
