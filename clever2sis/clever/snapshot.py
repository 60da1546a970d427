"""The snapshot: one district's raw Clever records, as pulled, in a directory a build can trust.

Layout (documented in the README)::

    SNAPSHOT_DIR/
      manifest.json        what, when, from where; per collection: file, record count, bytes, sha256
      districts.jsonl      one Clever record per line: the inner ``data`` object of the list envelope,
      schools.jsonl        byte-for-byte the JSON Clever sent for it (fields in Clever's order), so
      terms.jsonl          nothing is lost; lines in ascending id order
      courses.jsonl
      sections.jsonl
      users.jsonl          every role: students, teachers, staff, district admins, contacts

A snapshot is written into a temporary directory beside its destination and renamed into place only after
the manifest, written last, is complete; a directory without a valid manifest is never a snapshot.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

from clever2sis.atomic import atomic_directory
from clever2sis.errors import SnapshotError

SNAPSHOT_FORMAT = "clever2sis-snapshot"
SNAPSHOT_FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
COLLECTIONS = ("districts", "schools", "terms", "courses", "sections", "users")
API_VERSIONS = ("v3.0", "v3.1")
_HASH_CHUNK_BYTES = 8 << 20


def utc_timestamp(moment: dt.datetime | None = None) -> str:
    """ISO 8601 UTC with a ``Z``, to the second: the form every timestamp in a manifest takes."""
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _CollectionFile:
    """Streams records of one collection to ``<name>.jsonl``, counting and hashing as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records = 0
        self.bytes = 0
        self._sha = hashlib.sha256()
        self._handle: IO[bytes] = path.open("wb")

    def write_raw(self, lines: Iterable[bytes]) -> None:
        """Append already-serialised records, one JSON object per item, without a trailing newline."""
        for line in lines:
            chunk = line + b"\n"
            self._handle.write(chunk)
            self._sha.update(chunk)
            self.records += 1
            self.bytes += len(chunk)

    def write(self, records: Iterable[Mapping[str, Any]]) -> None:
        self.write_raw(orjson.dumps(record) for record in records)

    def close(self) -> dict[str, Any]:
        self._handle.close()
        return {
            "file": self.path.name,
            "records": self.records,
            "bytes": self.bytes,
            "sha256": self._sha.hexdigest(),
        }


class SnapshotWriter:
    """Write a snapshot atomically.

    ::

        with SnapshotWriter(dest, api_version="v3.0", source="clever-api") as snap:
            snap.collection("users").write(page_of_records)
            ...
            snap.finish(started_at=..., extra={...})

    Leaving the ``with`` block without ``finish()`` (or with an exception) discards everything.
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
        for handle in self._files.values():
            handle._handle.close()
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
            self._files[name] = _CollectionFile(self._tmp / f"{name}.jsonl")
        return self._files[name]

    def finish(
        self,
        *,
        district: Mapping[str, Any],
        started_at: str,
        finished_at: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Close every collection, write the manifest (last) and return it."""
        missing = [name for name in COLLECTIONS if name not in self._files]
        if missing:
            raise SnapshotError(f"snapshot is missing collections: {', '.join(missing)}")
        assert self._tmp is not None
        manifest: dict[str, Any] = {
            "format": SNAPSHOT_FORMAT,
            "format_version": SNAPSHOT_FORMAT_VERSION,
            "source": self.source,
            "api_version": self.api_version,
            "district": {"id": district.get("id"), "name": district.get("name")},
            "started_at": started_at,
            "finished_at": finished_at or utc_timestamp(),
            "collections": {name: self._files[name].close() for name in COLLECTIONS},
        }
        manifest.update(extra or {})
        (self._tmp / MANIFEST_NAME).write_bytes(
            orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
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
            file = path / str(entry.get("file"))
            if not file.is_file():
                raise SnapshotError(f"{file}: missing from the snapshot")
            size = file.stat().st_size
            if size != entry.get("bytes"):
                raise SnapshotError(
                    f"{file}: {size} bytes, but the manifest says {entry.get('bytes')} (truncated or changed)"
                )
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
