"""Pull one district from the Clever API into a snapshot.

Each collection streams page by page into its ``.jsonl`` file (records are never all held in memory), in
parallel threads that share one client and so one rate limit. Records are written byte for byte as Clever
sent them, de-duplicated by id. Each page is parsed by Arrow into the collection's build schema
(:data:`~clever2sis.clever.schemas.SCHEMAS`, which holds every field a reference check reads), and the
records kept go to the snapshot's columnar copy as well, so a build never parses the JSON again; a
collection with a page Arrow could not parse gets its copy from its JSONL when the snapshot is finished.

When every collection is in, references between them are checked (a section naming a student missing from
``/users`` happens while a district sync runs): they are counted in the manifest, not fatal. Only then is
the snapshot finished and renamed into place; any failure or interruption before that leaves nothing at
``dest``.
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
import pyarrow as pa
import pyarrow.compute as pc

from clever2sis.clever.client import CleverClient, Page
from clever2sis.clever.schemas import SCHEMAS
from clever2sis.clever.settings import DEFAULT_WORKERS
from clever2sis.clever.snapshot import (
    COLLECTIONS,
    MALFORMED_EXAMPLES,
    MALFORMED_SECTION,
    MalformedRecord,
    SnapshotWriter,
    malformed_records,
    utc_timestamp,
)
from clever2sis.errors import CleverApiError, CleverError, SnapshotError, UsageError
from clever2sis.progress import Progress, silent

SNAPSHOT_SOURCE = "clever-api"
# Largest first, so the long pulls start at once and the small ones fill in beside them.
PULL_ORDER = ("users", "sections", "districts", "schools", "terms", "courses")


_S = pa.string()


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


def _present(values: pa.Array) -> pa.Array:
    """The non-null, non-empty strings of ``values``."""
    return values.filter(pc.and_kleene(pc.is_valid(values), pc.not_equal(values, "")).fill_null(False))


def _column_ids(name: str) -> Callable[[pa.Table], pa.Array]:
    def ids(table: pa.Table) -> pa.Array:
        column = table.column(name).combine_chunks()
        return _present(pc.list_flatten(column) if pa.types.is_list(column.type) else column)

    return ids


def _arrow_contact_students(table: pa.Table) -> pa.Array:
    # struct_field() and list_flatten() honour the parents' nulls (a user without a contact role).
    roles = table.column("roles").combine_chunks()
    relationships = pc.struct_field(roles, ["contact", "student_relationships"])
    return _present(pc.struct_field(pc.list_flatten(relationships), "student"))


@dataclass(frozen=True)
class Reference:
    """A field of ``source`` records that names records of ``target``; ``key`` is its manifest name.

    ``ids`` reads the referenced ids from one record; ``arrow_ids`` from a page's Arrow table.
    """

    key: str
    source: str
    target: str
    ids: Callable[[dict[str, Any]], Iterable[str]]
    arrow_ids: Callable[[pa.Table], pa.Array]


REFERENCES: tuple[Reference, ...] = (
    Reference("sections.students", "sections", "users", _field("students"), _column_ids("students")),
    Reference("sections.teachers", "sections", "users", _field("teachers"), _column_ids("teachers")),
    Reference("sections.teacher", "sections", "users", _field("teacher"), _column_ids("teacher")),
    Reference("sections.course", "sections", "courses", _field("course"), _column_ids("course")),
    Reference("sections.term_id", "sections", "terms", _field("term_id"), _column_ids("term_id")),
    Reference("sections.school", "sections", "schools", _field("school"), _column_ids("school")),
    Reference(
        "users.contact.student_relationships", "users", "users", _contact_students, _arrow_contact_students
    ),
)


@dataclass
class _Pulled:
    """What pulling one collection produced besides its file."""

    ids: set[str] = field(default_factory=set)
    pages: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    first: dict[str, Any] | None = None
    # The ids of every page, and the ids each of this collection's references name (for the dangling count).
    id_arrays: list[pa.Array] = field(default_factory=list)
    referenced: dict[str, list[pa.Array]] = field(default_factory=dict)
    last_id: str = ""  # the last id kept, for the out-of-order count
    # Records kept whose field types are not Clever's (the build leaves them out, as findings).
    malformed: list[MalformedRecord] = field(default_factory=list)

    def keep(self, record_id: str) -> bool:
        """Whether a record is new (a repeated id is dropped and counted); counts it if out of order."""
        if record_id in self.ids:
            self.duplicates += 1
            return False
        if record_id < self.last_id:
            self.out_of_order += 1
        self.ids.add(record_id)
        self.last_id = record_id
        return True


# Appends a page's kept records to its collection in one write: their JSON Lines, their count, and their
# Arrow table when Arrow parsed the page (SnapshotWriter's write_lines).
Write = Callable[[bytes, int, pa.Table | None], None]


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
            dangling = _dangling_references(pulled)
            for key, count in dangling.items():
                if count:
                    progress(f"warning: {count} dangling {key} reference(s) (ids missing from the pull)")
            malformed = _malformed(pulled, progress)
            manifest = snapshot.finish(
                district=district,
                started_at=started_at,
                extra={
                    "api_base": client.origin,
                    "page_size": client.page_size,
                    "dangling_references": dangling,
                    MALFORMED_SECTION: malformed,
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
    except OSError as error:
        # Disk full, permissions: the snapshot was discarded whole, and the message says where and why.
        where = f" ({error.filename})" if error.filename else ""
        raise SnapshotError(
            f"cannot write the snapshot to {dest}: {error.strerror or error}{where}"
        ) from None
    counts = ", ".join(f"{manifest['collections'][n]['records']} {n}" for n in COLLECTIONS)
    progress(f"snapshot complete: {counts}")
    return manifest


def _pull_all(
    client: CleverClient, snapshot: SnapshotWriter, progress: Progress, workers: int
) -> dict[str, _Pulled]:
    writers: dict[str, Write] = {name: snapshot.collection(name).write_lines for name in COLLECTIONS}
    stop = threading.Event()
    pulled: dict[str, _Pulled] = {}
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clever-pull")
    futures: dict[Future[_Pulled], str] = {}
    try:
        for name in PULL_ORDER:
            futures[pool.submit(_pull_collection, client, name, writers[name], progress, stop)] = name
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
    write: Write,
    progress: Progress,
    stop: threading.Event,
) -> _Pulled:
    result = _Pulled()
    references = [reference for reference in REFERENCES if reference.source == name]
    result.referenced = {reference.key: [] for reference in references}
    for page in client.iter_pages(name, SCHEMAS[name]):
        if stop.is_set():
            raise _Cancelled(name)
        if page.table is not None:
            _take_table_page(page, result, references, write)
        else:
            _take_record_page(page, result, references, write)
        if result.first is None:
            result.first = orjson.loads(page.lines.split(b"\n", 1)[0])
        result.pages = page.number
        progress(f"{name}: page {page.number}, {len(result.ids)} records")
    return result


def _take_table_page(page: Page, result: _Pulled, references: list[Reference], write: Write) -> None:
    """Keep a page whose records Arrow parsed: de-duplicate by id, write it, note its references."""
    table = page.table
    assert table is not None
    id_column = table.column("id")
    if id_column.null_count or pc.any(pc.equal(id_column, "")).as_py():
        raise CleverApiError(f"a record on page {page.number} has no id")
    ids: list[str] = id_column.to_pylist()
    fresh = set(ids)
    if len(fresh) == len(ids) and result.ids.isdisjoint(fresh):
        # The common page, all new ids: the same counts as keep() gives, without a call per record.
        result.out_of_order += sum(
            1 for before, after in zip([result.last_id, *ids], ids, strict=False) if after < before
        )
        result.ids |= fresh
        result.last_id = ids[-1]
        write(page.lines, page.count, table)
        kept = table
    else:
        keep = [result.keep(record_id) for record_id in ids]
        lines = [line for line, kept_line in zip(page.raw, keep, strict=True) if kept_line]
        kept = table.filter(pa.array(keep))
        write(b"\n".join(lines), len(lines), kept)
    result.id_arrays.append(id_column.combine_chunks())
    for reference in references:
        result.referenced[reference.key].append(reference.arrow_ids(kept))


def _take_record_page(page: Page, result: _Pulled, references: list[Reference], write: Write) -> None:
    """Keep a page record by record (its records do not fit the Arrow schema): the same rules, in Python."""
    lines: list[bytes] = []
    kept: list[str] = []
    referenced: dict[str, list[str]] = {reference.key: [] for reference in references}
    for record, raw in zip(page.records, page.raw, strict=True):
        record_id = record.get("id")
        if not isinstance(record_id, str) or not record_id:
            raise CleverApiError(f"a record on page {page.number} has no id")
        if not result.keep(record_id):
            continue
        kept.append(record_id)
        lines.append(raw)
        for reference in references:
            referenced[reference.key].extend(reference.ids(record))
    write(b"\n".join(lines), len(lines), None)
    result.malformed += malformed_records(lines, page.collection)
    result.id_arrays.append(pa.array(kept, type=_S))
    for key, ids in referenced.items():
        result.referenced[key].append(pa.array(ids, type=_S))


def _malformed(pulled: dict[str, _Pulled], progress: Progress) -> dict[str, Any]:
    """The manifest's ``malformed_records``: per collection with any, how many and the first ids."""
    out: dict[str, Any] = {}
    for name in COLLECTIONS:
        found = pulled[name].malformed
        if found:
            first = found[0]
            progress(
                f"warning: {len(found)} {name} record(s) with fields of another type than Clever's (the "
                f"first: {first.record_id}, {first.problem}); a build leaves them out"
            )
            out[name] = {
                "records": len(found),
                "ids": [record.record_id for record in found[:MALFORMED_EXAMPLES]],
            }
    return out


def _the_district(pulled: _Pulled) -> dict[str, Any]:
    if pulled.first is None:
        raise CleverApiError("Clever returned no district for this token; is it a district-app token?")
    if len(pulled.ids) > 1:
        raise CleverApiError(
            f"Clever returned {len(pulled.ids)} districts; a pull needs a district-app token, which sees one"
        )
    return pulled.first


def _dangling_references(pulled: dict[str, _Pulled]) -> dict[str, int]:
    """Count references to ids that are not in the pulled collections (with Arrow, from the noted ids).

    All references to one collection are looked up together, so its ids are hashed once.
    """
    counts = {}
    for target in dict.fromkeys(reference.target for reference in REFERENCES):
        references = [reference for reference in REFERENCES if reference.target == target]
        named = [pulled[reference.source].referenced[reference.key] for reference in references]
        known = pa.chunked_array(pulled[target].id_arrays, type=_S).combine_chunks()
        found = pc.is_in(
            pa.chunked_array([array for arrays in named for array in arrays], type=_S), value_set=known
        )
        start = 0
        for reference, arrays in zip(references, named, strict=True):
            length = sum(len(array) for array in arrays)
            counts[reference.key] = length - (pc.sum(found.slice(start, length)).as_py() or 0)
            start += length
    return {reference.key: counts[reference.key] for reference in REFERENCES}
