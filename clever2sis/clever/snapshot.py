"""The snapshot: one district's raw Clever records, as pulled, in a directory a build can trust.

Layout (documented in docs/pull.md, "The snapshot format")::

    SNAPSHOT_DIR/
      manifest.json        what, when, from where; per collection: file, record count, bytes, sha256;
                           and the ``columnar`` section: the schemas' fingerprint, and the same four per copy
      districts.jsonl      one Clever record per line: the inner ``data`` object of the list envelope,
      schools.jsonl        byte-for-byte the JSON Clever sent for it (fields in Clever's order), so
      terms.jsonl          nothing is lost; lines in ascending id order
      courses.jsonl
      sections.jsonl
      users.jsonl          every role: students, teachers, staff, district admins, contacts
      districts.arrow      the columnar copy: each collection's records parsed into its schema in
      ...                  :mod:`clever2sis.clever.schemas` (an Arrow IPC file, LZ4-compressed), so a build
      users.arrow          reads columns instead of parsing JSON

The JSONL is the pull as Clever sent it and stays authoritative; the columnar copy is derived from it (the
same table Arrow's JSON reader gives for it with that schema: same rows, same order) and is optional: a
snapshot written before it existed, or with other schemas (another fingerprint), is read from its JSONL.
The same JSONL always gives the same ``.arrow`` bytes, however it was made (page by page while pulling, or by
parsing the JSONL when the snapshot is finished).

A snapshot is written into a temporary directory beside its destination and renamed into place only after
the manifest, written last, is complete; a directory without a valid manifest is never a snapshot.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.ipc as paipc
import pyarrow.json as pajson

from clever2sis.atomic import atomic_directory, atomic_write_bytes, recover_directory
from clever2sis.clever.schemas import SCHEMA_FINGERPRINT, SCHEMAS
from clever2sis.errors import SnapshotError

SNAPSHOT_FORMAT = "clever2sis-snapshot"
SNAPSHOT_FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
COLLECTIONS = ("districts", "schools", "terms", "courses", "sections", "users")
API_VERSIONS = ("v3.0", "v3.1")
_HASH_CHUNK_BYTES = 8 << 20
COLUMNAR_SECTION = "columnar"
# Measured at 1M students (users + sections): LZ4 makes the copy 268 MB (uncompressed 746 MB, zstd 170 MB)
# and is the quickest to read and check (0.33 s, against 0.48 s for either of the others).
COLUMNAR_COMPRESSION = "lz4"
# Rows per record batch. Fewer, larger batches make a smaller file that reads faster; this many users take
# about 30 MB, held while a pull fills a batch.
COLUMNAR_BATCH_ROWS = 1 << 17
# Arrow parses JSONL in blocks of this size on its own threads; a record must fit in one.
JSON_BLOCK_BYTES = 16 << 20
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
MALFORMED_SECTION = "malformed_records"
# A collection with more records than this that do not fit its schema is not taken for Clever data at all.
MAX_MALFORMED_RECORDS = 1000
# The malformed records a manifest lists by id (it counts them all).
MALFORMED_EXAMPLES = 20
_TYPE_CHANGE = re.compile(r"Column\((/[^)]*)\) changed from (\w+) to (\w+)")
_ARTICLE = {"array": "an array", "object": "an object", "number": "a number", "string": "a string"}


def utc_timestamp(moment: dt.datetime | None = None) -> str:
    """ISO 8601 UTC with a ``Z``, to the second: the form every timestamp in a manifest takes."""
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _HashingWriter(io.RawIOBase):
    """Write through to ``path``, hashing and counting every byte (Arrow's IPC writer writes here)."""

    def __init__(self, path: Path) -> None:
        self._handle: IO[bytes] = path.open("wb")
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._handle.write(view)
        self.digest.update(view)
        self.size += len(view)
        return len(view)

    def tell(self) -> int:
        return self.size

    def close(self) -> None:
        self._handle.close()
        super().close()


class _ColumnarFile:
    """Streams one collection's records, as Arrow tables of its schema, into an Arrow IPC file.

    Rows are regrouped into record batches of ``batch_rows`` (the last one shorter) whatever tables they come
    in, and each batch is a fresh copy of its rows, so the file depends on the rows alone: a pull's pages and
    a parse of the finished JSONL give the same bytes. (A batch cut from a larger array without copying would
    also carry that array's whole buffers into the file: Arrow's IPC writer does not trim the children of a
    sliced list of structs.)
    """

    def __init__(self, path: Path, schema: pa.Schema, batch_rows: int = COLUMNAR_BATCH_ROWS) -> None:
        self.path = path
        self.schema = schema
        self.records = 0
        self._batch_rows = batch_rows
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._sink = _HashingWriter(path)
        self._writer = paipc.new_file(
            self._sink, schema, options=paipc.IpcWriteOptions(compression=COLUMNAR_COMPRESSION)
        )

    def write(self, table: pa.Table) -> None:
        if not table.schema.equals(self.schema):
            raise ValueError(f"{self.path.name}: a table of another schema:\n{table.schema}")
        if not table.num_rows:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.records += table.num_rows
        while self._pending_rows >= self._batch_rows:
            self._write_batch(self._batch_rows)

    def _write_batch(self, rows: int) -> None:
        pending = pa.concat_tables(self._pending)
        columns = [pa.concat_arrays(column.chunks) for column in pending.slice(0, rows).columns]
        self._writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=self.schema))
        rest = pending.slice(rows)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows -= rows

    def close(self) -> dict[str, Any]:
        """Write the last batch and the file's footer; the manifest entry."""
        if self._pending_rows:
            self._write_batch(self._pending_rows)
        self._writer.close()
        self._sink.close()
        return {
            "file": self.path.name,
            "records": self.records,
            "bytes": self._sink.size,
            "sha256": self._sink.digest.hexdigest(),
        }

    def discard(self) -> None:
        self._pending = []
        with contextlib.suppress(pa.ArrowException, ValueError):
            self._writer.close()
        self._sink.close()
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class MalformedRecord:
    """A record whose fields do not have the types Clever gives them (a string where Clever sends an
    object, say): ``line`` is its 1-based line in the collection's JSONL, ``record_id`` its id if it has
    one, ``problem`` what is wrong, in words."""

    line: int
    record_id: str | None
    problem: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "id": self.record_id, "problem": self.problem}


def _problem(error: Exception) -> str:
    """Arrow's complaint about one record, as ``roles is a string where Clever sends an object``."""
    found = _TYPE_CHANGE.search(str(error))
    if found is None:
        return " ".join(str(error).split())
    path, expected, got = found.groups()
    field = path.strip("/").replace("/[]", "[]").replace("/", ".")
    return f"{field} is {_ARTICLE.get(got, got)} where Clever sends {_ARTICLE.get(expected, expected)}"


def _record_id(line: bytes) -> str | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    found = record.get("id") if isinstance(record, dict) else None
    return found if isinstance(found, str) and found else None


def _parse_lines(lines: bytes, schema: pa.Schema) -> pa.Table:
    """JSON Lines parsed into ``schema`` as one block (so no record is too long for the block)."""
    return pajson.read_json(
        io.BytesIO(lines),
        read_options=pajson.ReadOptions(block_size=max(len(lines), 1), use_threads=False),
        parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
    )


def _sift(
    lines: list[bytes], first: int, schema: pa.Schema, tables: list[pa.Table], bad: list[MalformedRecord]
) -> None:
    """Parse ``lines`` (numbered from ``first``) into ``tables``, halving any run Arrow refuses until each
    refused record is alone, and listed in ``bad``: a few Arrow parses per bad record, never one per record
    (unless most are bad, which :data:`MAX_MALFORMED_RECORDS` cuts short)."""
    runs = [(first, lines)]
    while runs:
        start, run = runs.pop()
        try:
            tables.append(_parse_lines(b"\n".join(run) + b"\n", schema))
            continue
        except _ARROW_ERRORS as error:
            if len(run) == 1:
                bad.append(MalformedRecord(start, _record_id(run[0]), _problem(error)))
                if len(bad) > MAX_MALFORMED_RECORDS:
                    return
                continue
        half = len(run) // 2
        runs += [(start + half, run[half:]), (start, run[:half])]


def malformed_records(lines: list[bytes], collection: str) -> list[MalformedRecord]:
    """The records among ``lines`` (one JSON record each) that do not fit the collection's schema, with
    their position in ``lines`` (1-based); at most :data:`MAX_MALFORMED_RECORDS` and one more."""
    bad: list[MalformedRecord] = []
    _sift(lines, 1, SCHEMAS[collection], [], bad)
    return sorted(bad, key=lambda record: record.line)


def parse_jsonl_leniently(
    stream: IO[bytes], collection: str, block_bytes: int = JSON_BLOCK_BYTES
) -> tuple[pa.Table, list[MalformedRecord]]:
    """A collection's JSONL in its schema, leaving out the records that do not fit it, and those records.

    For a JSONL that Arrow's reader refuses as a whole (:data:`SCHEMAS`): the table holds every other
    record, in order, as that reader gives them. The JSONL is read ``block_bytes`` at a time (cut at line
    ends); a block Arrow refuses is sifted (:func:`_sift`). More than :data:`MAX_MALFORMED_RECORDS` bad
    records raise :class:`SnapshotError`: the collection is not Clever data at all.
    """
    schema = SCHEMAS[collection]
    tables: list[pa.Table] = []
    bad: list[MalformedRecord] = []
    line = 1
    rest = b""
    while True:
        chunk = stream.read(block_bytes)
        data = rest + chunk
        cut = data.rfind(b"\n") + 1 if chunk else len(data)
        block, rest = data[:cut], data[cut:]
        lines = [item for item in block.split(b"\n") if item] if block.strip() else []
        if lines:
            try:
                tables.append(_parse_lines(block, schema))
            except _ARROW_ERRORS:
                _sift(lines, line, schema, tables, bad)
            line += len(lines)
        if len(bad) > MAX_MALFORMED_RECORDS:
            raise SnapshotError(
                f"not Clever {collection} records: more than {MAX_MALFORMED_RECORDS} of them do not have "
                f"Clever's field types (the first, line {bad[0].line}: {bad[0].problem})"
            )
        if not chunk:
            break
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    return table, sorted(bad, key=lambda record: record.line)


def _columnar_from_jsonl(
    source: Path | IO[bytes], dest: Path, collection: str, records: int
) -> dict[str, Any] | None:
    """Parse a collection's JSONL (``records`` lines) into its columnar copy at ``dest``; the manifest entry.

    None, and no file, when the records do not fit the collection's schema: the build then parses the JSONL
    and says what is wrong with it.
    """
    columnar = _ColumnarFile(dest, SCHEMAS[collection])
    try:
        if records:
            reader = pajson.open_json(
                source,
                read_options=pajson.ReadOptions(block_size=JSON_BLOCK_BYTES),
                parse_options=pajson.ParseOptions(
                    explicit_schema=SCHEMAS[collection], unexpected_field_behavior="ignore"
                ),
            )
            for batch in reader:
                columnar.write(pa.Table.from_batches([batch]))
    except _ARROW_ERRORS:
        columnar.discard()
        return None
    except BaseException:
        columnar.discard()
        raise
    if columnar.records != records:
        columnar.discard()
        return None
    return columnar.close()


class _CollectionFile:
    """Streams records of one collection to ``<name>.jsonl``, counting and hashing as it goes.

    Records written with their Arrow table (:meth:`write_lines`) go to the columnar copy as they come. Once
    any record comes without one, the copy is made instead by parsing the JSONL when the snapshot is
    finished.
    """

    def __init__(self, path: Path, collection: str) -> None:
        self.path = path
        self.collection = collection
        self.records = 0
        self.bytes = 0
        self._sha = hashlib.sha256()
        self._handle: IO[bytes] = path.open("wb")
        self._columnar: _ColumnarFile | None = None
        self._every_record_has_a_table = True

    def write_raw(self, lines: Iterable[bytes]) -> None:
        """Append already-serialised records, one JSON object per item, without a trailing newline."""
        for line in lines:
            self._append(line + b"\n", 1, None)

    def write(self, records: Iterable[Mapping[str, Any]]) -> None:
        self.write_raw(orjson.dumps(record) for record in records)

    def write_lines(self, lines: bytes, count: int, table: pa.Table | None = None) -> None:
        """Append ``count`` records given as JSON Lines (joined by newlines, none at the end) in one write.

        ``table``, when the caller has parsed them, holds the same records in the collection's schema
        (:data:`~clever2sis.clever.schemas.SCHEMAS`), row for row, as Arrow's JSON reader gives them.
        """
        if not count:
            return
        if table is not None and table.num_rows != count:
            raise ValueError(f"{self.path.name}: {count} records but a table of {table.num_rows} rows")
        self._append(lines + b"\n", count, table)

    def _append(self, chunk: bytes, count: int, table: pa.Table | None) -> None:
        self._handle.write(chunk)
        self._sha.update(chunk)
        self.records += count
        self.bytes += len(chunk)
        if table is None:
            if self._every_record_has_a_table:
                self._every_record_has_a_table = False
                if self._columnar is not None:
                    self._columnar.discard()
                    self._columnar = None
        elif self._every_record_has_a_table:
            if self._columnar is None:
                self._columnar = _ColumnarFile(self._columnar_path, SCHEMAS[self.collection])
            self._columnar.write(table)

    @property
    def _columnar_path(self) -> Path:
        return self.path.with_suffix(".arrow")

    def close(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Close the JSONL and finish the columnar copy: the manifest entries of both (None: no copy)."""
        self._handle.close()
        entry = {
            "file": self.path.name,
            "records": self.records,
            "bytes": self.bytes,
            "sha256": self._sha.hexdigest(),
        }
        if self._every_record_has_a_table:
            columnar = self._columnar or _ColumnarFile(self._columnar_path, SCHEMAS[self.collection])
            return entry, columnar.close()
        return entry, _columnar_from_jsonl(self.path, self._columnar_path, self.collection, self.records)

    def abandon(self) -> None:
        """Close what is open (the snapshot is being discarded)."""
        self._handle.close()
        if self._columnar is not None:
            self._columnar.discard()


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


class SnapshotWriter:
    """Write a snapshot atomically.

    ::

        with SnapshotWriter(dest, api_version="v3.0", source="clever-api") as snap:
            snap.collection("users").write(page_of_records)
            ...
            snap.finish(started_at=..., extra={...})

    A caller that has parsed its records into the collection's schema (the pull) gives their table with
    ``write_lines``, and the columnar copy is written as they come; otherwise ``finish()`` makes it by parsing
    the collection's JSONL. Leaving the ``with`` block without ``finish()`` (or with an exception) discards
    everything.
    """

    def __init__(self, dest: Path, *, api_version: str, source: str, replace: bool = False) -> None:
        if api_version not in API_VERSIONS:
            raise SnapshotError(f"unsupported Clever API version {api_version!r}; use one of {API_VERSIONS}")
        self.dest = dest
        self.api_version = api_version
        self.source = source
        self._replace = replace
        self._files: dict[str, _CollectionFile] = {}
        self._finished = False
        self._context = atomic_directory(dest, replace=replace)
        self._tmp: Path | None = None

    def __enter__(self) -> SnapshotWriter:
        self._tmp = self._context.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._finished:
            for file in self._files.values():
                file.abandon()
        if exc_type is None and not self._finished:
            exc = SnapshotError(f"snapshot {self.dest} was not finished; nothing was written")
            self._context.__exit__(type(exc), exc, None)
            raise exc
        self._context.__exit__(exc_type, exc, tb)

    def collection(self, name: str) -> _CollectionFile:
        if name not in COLLECTIONS:
            raise SnapshotError(f"unknown collection {name!r}; snapshots hold {', '.join(COLLECTIONS)}")
        if self._tmp is None:
            raise SnapshotError("SnapshotWriter must be used as a context manager")
        if name not in self._files:
            self._files[name] = _CollectionFile(self._tmp / f"{name}.jsonl", name)
        return self._files[name]

    def finish(
        self,
        *,
        district: Mapping[str, Any],
        started_at: str,
        finished_at: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Close every collection, finish the columnar copy, write the manifest (last) and return it."""
        missing = [name for name in COLLECTIONS if name not in self._files]
        if missing:
            raise SnapshotError(f"snapshot is missing collections: {', '.join(missing)}")
        assert self._tmp is not None
        entries = {name: self._files[name].close() for name in COLLECTIONS}
        manifest: dict[str, Any] = {
            "format": SNAPSHOT_FORMAT,
            "format_version": SNAPSHOT_FORMAT_VERSION,
            "source": self.source,
            "api_version": self.api_version,
            "district": {"id": district.get("id"), "name": district.get("name")},
            "started_at": started_at,
            "finished_at": finished_at or utc_timestamp(),
            "collections": {name: jsonl for name, (jsonl, _) in entries.items()},
            COLUMNAR_SECTION: {
                "schema": SCHEMA_FINGERPRINT,
                "collections": {name: copy for name, (_, copy) in entries.items() if copy is not None},
            },
        }
        manifest.update(extra or {})
        (self._tmp / MANIFEST_NAME).write_bytes(_manifest_bytes(manifest))
        self._finished = True
        return manifest


class _HashingReader(io.RawIOBase):
    """Pass reads through from ``raw``, hashing and counting every byte."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            view = memoryview(buffer)[:count]
            self.digest.update(view)
            self.size += count
        return int(count or 0)


@dataclass(frozen=True)
class Snapshot:
    """A snapshot directory whose manifest has been read and checked against the files beside it."""

    path: Path
    manifest: dict[str, Any]
    manifest_sha256: str

    @classmethod
    def open(cls, path: Path) -> Snapshot:
        """Read and check the manifest: format, version, every collection file there at its recorded size."""
        manifest_path = path / MANIFEST_NAME
        if not os.path.lexists(path):
            recover_directory(path.resolve())  # a replacement killed halfway (see clever2sis.atomic)
        if not path.is_dir():
            raise SnapshotError(f"{path}: no such snapshot directory")
        if not manifest_path.is_file():
            raise SnapshotError(f"{path}: not a clever2sis snapshot (no {MANIFEST_NAME})")
        raw = manifest_path.read_bytes()
        try:
            manifest = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise SnapshotError(f"{manifest_path}: not valid JSON ({error})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError(f"{manifest_path}: not a clever2sis snapshot manifest")
        if manifest.get("format_version") != SNAPSHOT_FORMAT_VERSION:
            raise SnapshotError(
                f"{manifest_path}: snapshot format version {manifest.get('format_version')!r} is not "
                f"supported (this clever2sis reads version {SNAPSHOT_FORMAT_VERSION})"
            )
        collections = manifest.get("collections")
        if not isinstance(collections, dict):
            raise SnapshotError(f"{manifest_path}: manifest has no collections")
        for name in COLLECTIONS:
            entry = collections.get(name)
            if not isinstance(entry, dict):
                raise SnapshotError(f"{manifest_path}: collection {name!r} is missing from the manifest")
            _check_file(path, entry, f"collection {name!r}", f"{name}.jsonl")
            _check_size(path, entry)
        for name, entry in _columnar_entries(manifest, manifest_path).items():
            if name not in COLLECTIONS or not isinstance(entry, dict):
                raise SnapshotError(f"{manifest_path}: columnar entry {name!r} is not a snapshot collection")
            _check_file(path, entry, f"the columnar copy of {name!r}", f"{name}.arrow")
            if entry.get("records") != collections[name]["records"]:
                raise SnapshotError(
                    f"{manifest_path}: the columnar copy of {name} holds {entry.get('records')!r} records, "
                    f"the JSONL {collections[name]['records']}"
                )
            _check_size(path, entry)
        return cls(path=path, manifest=manifest, manifest_sha256=hashlib.sha256(raw).hexdigest())

    @property
    def district_id(self) -> str:
        return str(self.manifest["district"]["id"])

    @property
    def api_version(self) -> str:
        return str(self.manifest["api_version"])

    def read_bytes(self, collection: str) -> bytes:
        """The collection's JSONL bytes, after checking them against the manifest's sha256."""
        entry = self.manifest["collections"][collection]
        file = self.path / entry["file"]
        data: bytes = file.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry["sha256"]:
            raise SnapshotError(f"{file}: sha256 does not match the manifest (changed or corrupt)")
        return data

    @contextlib.contextmanager
    def reader(self, collection: str) -> Iterator[IO[bytes]]:
        """A binary stream of the collection's JSONL, hashed as it is read.

        When the ``with`` block ends, the bytes read are checked against the manifest's size and sha256, so
        a caller that parses the stream in one pass never acts on changed data without an error.
        """
        entry = self.manifest["collections"][collection]
        file = self.path / entry["file"]
        with file.open("rb", buffering=0) as raw:
            hashing = _HashingReader(raw)
            yield io.BufferedReader(hashing, buffer_size=_HASH_CHUNK_BYTES)
        if hashing.size != entry["bytes"] or hashing.digest.hexdigest() != entry["sha256"]:
            raise SnapshotError(f"{file}: sha256 does not match the manifest (changed or corrupt)")

    @property
    def has_columnar_copy(self) -> bool:
        """Whether the snapshot has a columnar section this clever2sis reads (a collection whose records did
        not fit the schema has no entry in it)."""
        section = self.manifest.get(COLUMNAR_SECTION)
        return isinstance(section, dict) and section.get("schema") == SCHEMA_FINGERPRINT

    def columnar_entry(self, collection: str) -> dict[str, Any] | None:
        """The manifest's entry for the collection's columnar copy; None if there is none this clever2sis
        reads (none written, or written with other schemas)."""
        entry = _columnar_entries(self.manifest, self.path / MANIFEST_NAME).get(collection)
        return entry if isinstance(entry, dict) else None

    def read_columnar(self, collection: str) -> pa.Table | None:
        """The collection's columnar copy, checked against the manifest; None if it has none to read.

        The file is memory-mapped and its sha256 computed on another thread while Arrow reads the same
        bytes; the table is returned only once they match.
        """
        entry = self.columnar_entry(collection)
        if entry is None:
            return None
        file = self.path / entry["file"]
        data = pa.memory_map(str(file)).read_buffer()
        table: pa.Table | None = None
        error: pa.ArrowException | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="snapshot-sha256") as pool:
            digest = pool.submit(_sha256_hex, data)
            try:
                table = paipc.open_file(data).read_all()
            except pa.ArrowException as caught:
                error = caught
            if digest.result() != entry["sha256"]:
                raise SnapshotError(f"{file}: sha256 does not match the manifest (changed or corrupt)")
        if (
            table is None
            or not table.schema.equals(SCHEMAS[collection])
            or table.num_rows != entry["records"]
        ):
            detail = f" ({error})" if error is not None else ""
            raise SnapshotError(
                f"{file}: not the columnar copy of {collection} the manifest describes{detail}"
            )
        return table

    def iter_records(self, collection: str) -> Iterable[dict[str, Any]]:
        """Every record of a collection as a dict (checked against the manifest first)."""
        for line in self.read_bytes(collection).splitlines():
            if line:
                yield orjson.loads(line)

    def identity(self) -> dict[str, Any]:
        """What names this snapshot in a build's record."""
        return {
            "path": str(self.path),
            "district_id": self.manifest["district"]["id"],
            "district_name": self.manifest["district"].get("name"),
            "api_version": self.manifest["api_version"],
            "source": self.manifest.get("source"),
            "started_at": self.manifest.get("started_at"),
            "finished_at": self.manifest.get("finished_at"),
            "manifest_sha256": self.manifest_sha256,
            "records": {name: self.manifest["collections"][name]["records"] for name in COLLECTIONS},
        }


def _check_file(path: Path, entry: Mapping[str, Any], what: str, example: str) -> None:
    """Refuse a manifest entry whose file is not a plain name of a file inside the snapshot at ``path``.

    A manifest is data that comes with the snapshot: a name such as ``../x``, ``/etc/x`` or ``a/b`` (or a
    link to a file elsewhere) would have a build read, and show in its findings, a file that is not part of
    the snapshot.
    """
    name = entry.get("file")
    plain = (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(character in name for character in ("/", "\\", "\0"))
    )
    if not plain:
        raise SnapshotError(
            f"{path / MANIFEST_NAME}: {what} names the file {name!r}; a manifest names its files by plain "
            f"name inside the snapshot ({example}), so it was changed by hand or not written by clever2sis: "
            "pull the snapshot again"
        )
    file = path / str(name)
    if file.is_symlink() and file.resolve().parent != path.resolve():
        raise SnapshotError(
            f"{file}: a link to {file.resolve()}, outside the snapshot; a snapshot holds its own files: pull "
            "the snapshot again"
        )


def _check_size(path: Path, entry: Mapping[str, Any]) -> None:
    file = path / str(entry.get("file"))
    if not file.is_file():
        raise SnapshotError(f"{file}: missing from the snapshot")
    size = file.stat().st_size
    if size != entry.get("bytes"):
        raise SnapshotError(
            f"{file}: {size} bytes, but the manifest says {entry.get('bytes')} (truncated or changed)"
        )


def _columnar_entries(manifest: Mapping[str, Any], manifest_path: Path) -> dict[str, Any]:
    """The columnar section's entries by collection, if it was written with this clever2sis's schemas."""
    section = manifest.get(COLUMNAR_SECTION)
    if not isinstance(section, dict) or section.get("schema") != SCHEMA_FINGERPRINT:
        return {}
    entries = section.get("collections")
    if not isinstance(entries, dict):
        raise SnapshotError(f"{manifest_path}: the columnar section lists no collections")
    return entries


def _sha256_hex(data: Any) -> str:
    return hashlib.sha256(memoryview(data)).hexdigest()


def add_columnar_copy(path: Path) -> dict[str, Any]:
    """Give the snapshot at ``path`` the columnar copy this clever2sis reads, if it lacks it; its manifest.

    For snapshots written before the copy existed, or with other schemas. Each collection's JSONL is parsed
    as it is checked against the manifest. The ``.arrow`` files are written under temporary names and
    renamed, and the manifest is replaced (atomically) last, so an interruption leaves the snapshot as it
    was, perhaps beside unlisted files that nothing reads. The manifest's sha256 changes.
    """
    snapshot = Snapshot.open(path)
    if snapshot.has_columnar_copy:
        return snapshot.manifest
    entries: dict[str, Any] = {}
    for name in COLLECTIONS:
        records = snapshot.manifest["collections"][name]["records"]
        partial = path / f".{name}.arrow.partial"
        try:
            with snapshot.reader(name) as stream:
                entry = _columnar_from_jsonl(stream, partial, name, records)
                while stream.read(_HASH_CHUNK_BYTES):
                    pass
            if entry is not None:
                entries[name] = {**entry, "file": f"{name}.arrow"}
                partial.replace(path / entries[name]["file"])
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    manifest = {
        **snapshot.manifest,
        COLUMNAR_SECTION: {"schema": SCHEMA_FINGERPRINT, "collections": entries},
    }
    atomic_write_bytes(path / MANIFEST_NAME, _manifest_bytes(manifest))
    return manifest
