"""Reading a provisioning report: the zip Canvas makes (``<table>.csv`` inside), one of its CSVs, or a
directory holding them.

Column names are those of the provisioning report (``lib/account_reports/sis_exporter.rb`` of canvas-lms's
account_reports plugin); columns are found by name and extra ones are ignored, so a report with more
columns (pronouns, temporary enrollments, a trusted account's ``root_account``) reads the same. Only the
columns reconcile compares are kept.

A million-student report is gigabytes of CSV, so it is never read whole: Arrow's streaming CSV reader
takes :data:`READ_BLOCK_BYTES` at a time straight out of the zip, and each kept column is dictionary-encoded
as it is read (ids repeat: each user is named in several enrollments, each status is one of a few words).
What stays in memory is four bytes per row and column, plus each column's distinct values.
"""

from __future__ import annotations

import contextlib
import io
import struct
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.csv as pa_csv
from isal import isal_zlib

from clever2sis.errors import ReportFileError

READ_BLOCK_BYTES = 32 << 20
INFLATE_CHUNK_BYTES = 4 << 20
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
CODES = pa.dictionary(pa.int32(), pa.large_string())
TRUE = "true"

# What reconcile reads of each table: the key, the compared fields, the state, who made it, Canvas's id.
REPORT_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "users": (
        "canvas_user_id",
        "user_id",
        "integration_id",
        "login_id",
        "full_name",
        "sortable_name",
        "email",
        "status",
        "created_by_sis",
    ),
    "courses": (
        "canvas_course_id",
        "course_id",
        "short_name",
        "long_name",
        "account_id",
        "term_id",
        "status",
        "created_by_sis",
    ),
    "sections": ("canvas_section_id", "section_id", "course_id", "name", "status", "created_by_sis"),
    "enrollments": (
        "canvas_enrollment_id",
        "course_id",
        "user_id",
        "role",
        "section_id",
        "status",
        "canvas_associated_user_id",
        "created_by_sis",
    ),
    "user_observers": ("canvas_observer_id", "observer_id", "student_id", "status", "created_by_sis"),
}
# A lone CSV is known by the first of its columns that only its table has.
_MARKS = (
    ("canvas_enrollment_id", "enrollments"),
    ("canvas_observer_id", "user_observers"),
    ("canvas_section_id", "sections"),
    ("canvas_user_id", "users"),
    ("canvas_course_id", "courses"),
)


@dataclass(frozen=True)
class ReportSource:
    """Where a provisioning report is: a zip of ``<table>.csv``, one such CSV, or a directory of them."""

    path: Path

    def describe(self) -> str:
        return str(self.path)

    def tables(self) -> list[str]:
        """The tables the report holds."""
        if self.path.is_dir():
            return [t for t in REPORT_COLUMNS if (self.path / f"{t}.csv").is_file()]
        if not self.path.is_file():
            raise ReportFileError(f"{self.path}: no such report file; give the provisioning report's zip")
        if zipfile.is_zipfile(self.path):
            with zipfile.ZipFile(self.path) as archive:
                names = {name.rsplit("/", 1)[-1] for name in archive.namelist()}
            return [t for t in REPORT_COLUMNS if f"{t}.csv" in names]
        with self.path.open("rb") as handle:
            header = handle.readline().decode("utf-8-sig", errors="replace").strip().split(",")
        return [next((table for mark, table in _MARKS if mark in header), "unknown")]

    @contextlib.contextmanager
    def open(self, table: str) -> Iterator[IO[bytes]]:
        """The bytes of ``table``'s CSV, streamed (from inside the zip when it is one)."""
        if table not in self.tables():
            raise ReportFileError(
                f"{self.path}: the report has no {table}.csv; run the provisioning report with {table} "
                "checked (clever2sis reconcile asks Canvas for it when --report is not given)"
            )
        if self.path.is_dir():
            with (self.path / f"{table}.csv").open("rb") as handle:
                yield handle
        elif zipfile.is_zipfile(self.path):
            with zipfile.ZipFile(self.path) as archive:
                member = next(
                    i for i in archive.infolist() if i.filename.rsplit("/", 1)[-1] == f"{table}.csv"
                )
            with open_member(self.path, member) as handle:
                yield handle
        else:
            with self.path.open("rb") as handle:
                yield handle


def read_table(source: ReportSource, table: str, *, block_bytes: int = READ_BLOCK_BYTES) -> pa.Table:
    """``table``'s columns reconcile uses (:data:`REPORT_COLUMNS`), each dictionary-encoded, read in blocks.

    Empty fields are empty strings. A missing column is a :class:`ReportFileError` naming it.
    """
    columns = REPORT_COLUMNS[table]
    with source.open(table) as handle:
        try:
            reader = pa_csv.open_csv(
                handle,
                read_options=pa_csv.ReadOptions(block_size=block_bytes),
                convert_options=pa_csv.ConvertOptions(
                    column_types=dict.fromkeys(columns, CODES),
                    include_columns=list(columns),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            batches = list(reader)
            schema = reader.schema
        except pa.ArrowKeyError as error:
            missing = next((c for c in columns if f"'{c}'" in str(error)), str(error))
            raise ReportFileError(
                f"{source.describe()}: {table}.csv has no column {missing!r}; give a provisioning report "
                "(Canvas's account Reports → Provisioning), not an SIS export"
            ) from None
        except (pa.ArrowInvalid, zipfile.BadZipFile, OSError) as error:
            raise ReportFileError(
                f"{source.describe()}: {table}.csv cannot be read as CSV ({error})"
            ) from None
    return compact(pa.Table.from_batches(batches, schema=schema).select(list(columns)))


def compact(table: pa.Table) -> pa.Table:
    """One chunk per column, the blocks' dictionaries unified: a row taken is a lookup, not a concatenation
    (Arrow joins a chunked column's chunks to take from it), and codes mean the same in every row."""
    return table.unify_dictionaries().combine_chunks()


class _Inflated(io.RawIOBase):
    """A deflated zip member's bytes, inflated by ISA-L (about twice zlib's speed, and it releases the GIL),
    its CRC-32 checked at the end as :mod:`zipfile` checks it."""

    def __init__(self, handle: IO[bytes], info: zipfile.ZipInfo) -> None:
        self._handle = handle
        self._info = info
        self._left = info.compress_size
        self._inflate = isal_zlib.decompressobj(-15)
        self._pending = memoryview(b"")
        self._crc = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending and (self._left or not self._inflate.eof):
            raw = self._handle.read(min(INFLATE_CHUNK_BYTES, self._left))
            self._left -= len(raw)
            self._pending = memoryview(self._inflate.decompress(raw) if raw else self._inflate.flush())
            self._crc = isal_zlib.crc32(self._pending, self._crc)
            if not raw and not self._pending:
                break
        if not self._pending and self._crc != self._info.CRC:
            raise zipfile.BadZipFile(f"bad CRC-32 for {self._info.filename}")
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


@contextlib.contextmanager
def open_member(path: Path, info: zipfile.ZipInfo) -> Iterator[IO[bytes]]:
    """The bytes of one member of the zip at ``path``, streamed: deflated ones inflated by ISA-L."""
    if info.compress_type != zipfile.ZIP_DEFLATED:
        with zipfile.ZipFile(path) as archive, archive.open(info) as handle:
            yield handle
        return
    with path.open("rb") as handle:
        handle.seek(info.header_offset)
        signature, name_bytes, extra_bytes = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
        if signature != _LOCAL_HEADER_SIGNATURE:
            raise zipfile.BadZipFile(f"{path}: {info.filename} has no local header")
        handle.seek(name_bytes + extra_bytes, io.SEEK_CUR)
        with io.BufferedReader(_Inflated(handle, info), INFLATE_CHUNK_BYTES) as stream:
            yield stream
