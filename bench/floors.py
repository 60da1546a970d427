"""The floors: what the same work costs when nothing but the unavoidable part is done.

* Download-and-parse floor: every page of every collection fetched with httpx and parsed with orjson (the
  fastest JSON parser installed), nothing else: no record is looked at, nothing is written. The six
  collections are fetched concurrently, each following its own ``next`` links: Clever's cursors
  (``starting_after`` the last id of the page before) make the pages of one collection a chain that no
  client can fetch out of order, so this is the floor for any client of the protocol.
* Zip floor: the CSV bytes our build wrote, already in memory, zipped with the standard ``zipfile`` module
  (deflate at zlib's default level, as the issue defines the floor; the build itself deflates with ISA-L) to a
"""

from __future__ import annotations

import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson

from clever2sis.clever.snapshot import COLLECTIONS
from clever2sis.sis import files

MAX_PAGES = 100_000


def _chain(http: httpx.Client, origin: str, first: str) -> dict[str, int]:
    url = origin + first
    pages = records = size = 0
    for _ in range(MAX_PAGES):
        body = http.get(url).raise_for_status().content
        document = orjson.loads(body)
        pages += 1
        size += len(body)
        records += len(document["data"])
        next_uri = next((link["uri"] for link in document["links"] if link["rel"] == "next"), None)
        if not document["data"] or next_uri is None:
            break
        url = origin + next_uri
    return {"pages": pages, "records": records, "bytes": size}


def download_and_parse(origin: str, token: str, *, page_size: int = 10_000) -> dict[str, Any]:
    """Fetch and parse every page; return pages, records and bytes (the clock is the caller's)."""
    firsts = [
        f"/v3.0/{name}" if name == "districts" else f"/v3.0/{name}?limit={page_size}" for name in COLLECTIONS
    ]
    with (
        httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=120.0) as http,
        ThreadPoolExecutor(len(firsts)) as pool,
    ):
        results = list(pool.map(lambda first: _chain(http, origin, first), firsts))
    return {key: sum(result[key] for result in results) for key in ("pages", "records", "bytes")}


def csv_bytes_of(csv_dir: Path) -> list[tuple[str, bytes]]:
    """The build's CSV files, in Canvas's order, read into memory (before the clock starts)."""
    return [(name, (csv_dir / name).read_bytes()) for name in files.FILE_ORDER if (csv_dir / name).is_file()]


def zip_only(members: list[tuple[str, bytes]], dest: Path) -> float:
    """Zip ``members`` into ``dest`` with zipfile; return the seconds it took."""
    started = time.perf_counter()
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return time.perf_counter() - started
