"""Deterministic CSV files and zip: the same rows always give the same bytes.

CSV: UTF-8 without BOM, ``\\n`` line ends, RFC 4180 quoting (a field is quoted only when it holds a comma, a
quote or a line break, and quotes inside are doubled). Rows are rendered by Arrow compute kernels a chunk at
a time and streamed to disk, so memory stays flat however many enrollments a district has. Chunks are small
(tens of thousands of rows) so that their buffers are reused from the allocator's cache instead of being
mapped fresh, page by page, each time. The writing, hashing and zipping of one chunk runs on a thread
while the next is rendered (Arrow, hashlib and deflate all release the GIL).

Zip: members in the order given, each with a fixed timestamp and permissions, deflated in independent
chunks on a thread pool and joined into one deflate stream per member: every chunk but the last ends with a
sync flush, which is how parallel gzip tools make one valid stream from many.

Deflate is Intel's ISA-L (the ``isal`` package), at its level 1: on our CSVs it runs at about 2 GB/s, ten
times zlib's level 6, for a zip about 7% larger. Its output is plain deflate that every unzip reads. The
bytes depend on the ISA-L version as zlib's do on zlib's, so the zip is byte-identical for the same rows on
the same install; the CSVs' sha256 in build.json name the content whatever the compressor.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Generic, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from isal import isal_zlib

T = TypeVar("T")

CSV_ROWS_PER_CHUNK = 1 << 14
CSV_CHUNKS_AHEAD = 16  # rendered chunks that may wait for the writing thread
CSV_RENDER_THREADS = max(1, min(2, os.cpu_count() or 1))
ZIP_CHUNK_BYTES = 16 << 20
ZIP_COMPRESSION_LEVEL = 1  # ISA-L's levels are 0-3; 1 is its default
ZIP_THREADS = max(1, min(4, os.cpu_count() or 1))
_NEEDS_QUOTES = r'[",\r\n]'
_QUOTE_BYTES = (b",", b'"', b"\r", b"\n")

# Zip format constants (PKWARE APPNOTE 6.3): 1980-01-01 00:00 as a DOS date, Unix "made by", rw-r--r--.
_DOS_DATE = (0 << 9) | (1 << 5) | 1
_DOS_TIME = 0
_VERSION_MADE_BY = (3 << 8) | 20
_VERSION_NEEDED = 20
_DEFLATED = 8
_EXTERNAL_ATTR = 0o100644 << 16
_ZIP32_LIMIT = 0xFFFFFFFF - (64 << 20)  # leave room for deflate's worst-case growth


@dataclass(frozen=True)
class WrittenFile:
    rows: int
    bytes: int
    sha256: str


def _value_bytes(values: pa.Array | pa.ChunkedArray) -> Iterator[bytes]:
    """The UTF-8 bytes of a large_string array's values, back to back, a chunk at a time."""
    for chunk in values.chunks if isinstance(values, pa.ChunkedArray) else [values]:
        data = chunk.buffers()[2]
        if len(chunk) and data is not None:
            offsets = np.frombuffer(
                chunk.buffers()[1], np.int64, count=len(chunk) + 1, offset=chunk.offset * 8
            )
            yield bytes(memoryview(data)[int(offsets[0]) : int(offsets[-1])])


def _csv_field(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    values = pc.fill_null(values.cast(pa.large_string()), "")
    if not any(byte in data for data in _value_bytes(values) for byte in _QUOTE_BYTES):
        return values  # most columns hold no comma, quote or line break at all: a memchr scan tells
    needs = pc.match_substring_regex(values, _NEEDS_QUOTES)
    if not pc.any(needs).as_py():
        return values
    quote = pa.scalar('"', pa.large_string())
    empty = pa.scalar("", pa.large_string())
    quoted = pc.binary_join_element_wise(quote, pc.replace_substring(values, '"', '""'), quote, empty)
    return pc.if_else(needs, quoted, values)


def _joined_bytes(lines: pa.Array) -> memoryview:
    """The UTF-8 bytes of every value of a string array, back to back: a view of its data buffer, no copy."""
    lines = lines.cast(pa.large_string())
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    if len(lines) == 0:
        return memoryview(b"")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64, count=len(lines) + 1, offset=lines.offset * 8)
    return memoryview(lines.buffers()[2])[int(offsets[0]) : int(offsets[-1])]


def _header(columns: Sequence[str]) -> bytes:
    fields = [
        f'"{name.replace(chr(34), chr(34) * 2)}"' if re.search(_NEEDS_QUOTES, name) else name
        for name in columns
    ]
    return (",".join(fields) + "\n").encode("utf-8")


def _column(values: pd.Series, end: str = "") -> Callable[[int, int], pa.Array | pa.ChunkedArray]:
    """A function giving rows [start, start + length) of ``values`` as CSV fields, each followed by ``end``.

    A categorical column is rendered once per category and then gathered by code, so an id that a million
    enrollments share is quoted and encoded once.
    """
    tail = pa.scalar(end, pa.large_string())
    empty = pa.scalar("", pa.large_string())
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = _csv_field(
            pa.array(values.cat.categories.array, type=pa.large_string(), from_pandas=True)
        )
        if end:
            categories = pc.binary_join_element_wise(categories, tail, empty)
        codes = pa.array(values.cat.codes.to_numpy())

        def gather(start: int, length: int) -> pa.Array:
            return categories.take(codes.slice(start, length))

        return gather
    strings = pa.array(values, type=pa.large_string(), from_pandas=True)

    def render(start: int, length: int) -> pa.Array | pa.ChunkedArray:
        fields = _csv_field(strings.slice(start, length))
        return pc.binary_join_element_wise(fields, tail, empty) if end else fields

    return render


def csv_chunks(frame: pd.DataFrame) -> Iterator[bytes | memoryview]:
    """``frame`` (string columns, in order) as CSV: the header, then rows a chunk at a time.

    Chunks are rendered on ``CSV_RENDER_THREADS`` threads (Arrow's kernels release the GIL) and come out in
    order.
    """
    rows_per_chunk = CSV_ROWS_PER_CHUNK
    yield _header([str(column) for column in frame.columns])
    names = list(frame.columns)
    columns = [_column(frame[name], "\n" if i == len(names) - 1 else "") for i, name in enumerate(names)]
    comma = pa.scalar(",", pa.large_string())

    def render(start: int) -> memoryview:
        fields = [column(start, rows_per_chunk) for column in columns]
        return _joined_bytes(pc.binary_join_element_wise(*fields, comma) if len(fields) > 1 else fields[0])

    starts = range(0, len(frame), rows_per_chunk)
    if len(starts) < 2:
        yield from map(render, starts)
        return
    with ThreadPoolExecutor(CSV_RENDER_THREADS, thread_name_prefix="csv-render") as pool:
        rendered = Ahead[memoryview](CSV_CHUNKS_AHEAD)
        for start in starts:
            yield from rendered.add(pool.submit(render, start))
        yield from rendered.drain()


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as CSV bytes with a header row (for small files and tests)."""
    return b"".join(csv_chunks(frame))


def write_csv(
    frame: pd.DataFrame, path: Path, *, also: Callable[[bytes | memoryview], None] | None = None
) -> WrittenFile:
    """Stream ``frame`` to ``path`` as CSV; return its row count, size and sha256.

    ``also`` receives every chunk too (a zip member being written), so the CSV is rendered once. It is
    called on a thread of its own (the file is written and hashed on another), in order, and never after
    this function returns.
    """
    digest = hashlib.sha256()
    size = 0
    with (
        path.open("wb") as handle,
        InOrder(CSV_CHUNKS_AHEAD, "csv-file") as to_file,
        InOrder(CSV_CHUNKS_AHEAD, "csv-zip") as to_zip,
    ):

        def keep(chunk: bytes | memoryview) -> None:
            handle.write(chunk)
            digest.update(chunk)

        for chunk in csv_chunks(frame):
            size += len(chunk)
            to_file(keep, chunk)
            if also is not None:
                to_zip(also, chunk)
    return WrittenFile(rows=len(frame), bytes=size, sha256=digest.hexdigest())


class Ahead(Generic[T]):
    """Futures in the order they were started, at most ``limit`` of them not yet read: :meth:`add` and
    :meth:`drain` give, in that order, the results of the ones they had to wait for (raising a failed one's
    error)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending: collections.deque[Future[T]] = collections.deque()

    def add(self, future: Future[T]) -> list[T]:
        self.pending.append(future)
        done = []
        while len(self.pending) > self.limit:
            done.append(self.pending.popleft().result())
        return done

    def drain(self) -> Iterator[T]:
        while self.pending:
            yield self.pending.popleft().result()


class InOrder:
    """Run calls one at a time, in the order given, on a thread of their own, at most ``ahead`` calls behind.

    Leaving the ``with`` block waits for every call and raises the first error one raised (the calls after it
    are not run). Left by an exception, it runs no call not yet started and lets that exception through.
    """

    def __init__(self, ahead: int, name: str) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=name)
        self.pending = Ahead[None](ahead)

    def __enter__(self) -> Callable[..., None]:
        return self.submit

    def submit(self, call: Callable[..., None], *args: object) -> None:
        self.pending.add(self.pool.submit(call, *args))

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        try:
            if exc_type is None:
                for _ in self.pending.drain():
                    pass
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _deflate(data: bytes, last: bool) -> bytes:
    compressor = isal_zlib.compressobj(ZIP_COMPRESSION_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
    mode = isal_zlib.Z_FINISH if last else isal_zlib.Z_SYNC_FLUSH
    return compressor.compress(data) + compressor.flush(mode)


class _Member:
    """One zip member being written: data is cut into ``ZIP_CHUNK_BYTES`` blocks deflated on the pool.

    The blocks depend only on the member's bytes, never on how they arrive, so a zip streamed while its
    CSVs are rendered and one made later from the files are identical.
    """

    def __init__(self, out: IO[bytes], pool: ThreadPoolExecutor, name: str) -> None:
        self.out = out
        self.pool = pool
        self.name = name.encode("utf-8")
        self.offset = out.tell()
        self.crc = 0
        self.size = 0
        self.compressed = 0
        self.buffer = bytearray()
        self.pending = Ahead[bytes](ZIP_THREADS)
        out.write(_local_header(self.name, crc=0, compressed=0, size=0))

    def write(self, data: bytes | memoryview) -> None:
        self.crc = isal_zlib.crc32(data, self.crc)
        self.size += len(data)
        if self.size > _ZIP32_LIMIT:
            raise ValueError(
                f"{self.name.decode()} is over {_ZIP32_LIMIT} bytes; zip64 members are not supported yet"
            )
        self.buffer += data
        start = 0
        with memoryview(self.buffer) as view:
            while len(view) - start > ZIP_CHUNK_BYTES:
                self._submit(bytes(view[start : start + ZIP_CHUNK_BYTES]), last=False)
                start += ZIP_CHUNK_BYTES
        del self.buffer[:start]

    def _submit(self, block: bytes, *, last: bool) -> None:
        for deflated in self.pending.add(self.pool.submit(_deflate, block, last)):
            self.compressed += self.out.write(deflated)

    def close(self) -> tuple[bytes, int, int, int, int]:
        self._submit(bytes(self.buffer), last=True)
        for deflated in self.pending.drain():
            self.compressed += self.out.write(deflated)
        end = self.out.tell()
        self.out.seek(self.offset)
        self.out.write(_local_header(self.name, crc=self.crc, compressed=self.compressed, size=self.size))
        self.out.seek(end)
        return self.name, self.crc, self.compressed, self.size, self.offset


class ZipWriter:
    """A deterministic zip written member by member::

    with ZipWriter(dest) as archive, archive.member("users.csv") as write:
        write(chunk)
    """

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self._central: list[tuple[bytes, int, int, int, int]] = []

    def __enter__(self) -> ZipWriter:
        self._out = self.dest.open("wb")
        self._pool = ThreadPoolExecutor(ZIP_THREADS)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        try:
            if exc_type is None:
                self._write_central_directory()
        finally:
            self._pool.shutdown()
            self._out.close()

    @contextlib.contextmanager
    def member(self, name: str) -> Iterator[Callable[[bytes | memoryview], None]]:
        member = _Member(self._out, self._pool, name)
        yield member.write
        self._central.append(member.close())

    def _write_central_directory(self) -> None:
        out = self._out
        start = out.tell()
        for encoded, crc, compressed, size, offset in self._central:
            out.write(
                struct.pack(
                    "<IHHHHHHIIIHHHHHII",
                    0x02014B50,
                    _VERSION_MADE_BY,
                    _VERSION_NEEDED,
                    0,
                    _DEFLATED,
                    _DOS_TIME,
                    _DOS_DATE,
                    crc,
                    compressed,
                    size,
                    len(encoded),
                    0,
                    0,
                    0,
                    0,
                    _EXTERNAL_ATTR,
                    offset,
                )
                + encoded
            )
        length = out.tell() - start
        count = len(self._central)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, length, start, 0))


def write_zip(members: Sequence[tuple[str, Path]], dest: Path) -> None:
    """Zip the files ``members`` (name in the zip, file on disk) into ``dest``, deterministically."""
    with ZipWriter(dest) as archive:
        for name, path in members:
            with archive.member(name) as write, path.open("rb") as handle:
                while chunk := handle.read(ZIP_CHUNK_BYTES):
                    write(chunk)


def _local_header(name: bytes, *, crc: int, compressed: int, size: int) -> bytes:
    return (
        struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            _VERSION_NEEDED,
            0,
            _DEFLATED,
            _DOS_TIME,
            _DOS_DATE,
            crc,
            compressed,
            size,
            len(name),
            0,
        )
        + name
    )
