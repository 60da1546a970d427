"""A local Clever API that serves one snapshot from pre-rendered pages, so the server is never the bottleneck.

Every page a client can ask for is rendered once, up front, into the exact bytes Clever would send: the
double-``data`` envelope and root-relative ``self``/``prev``/``next`` links that carry the version, ``limit``
and ``starting_after`` / ``ending_before`` (as ``tests/clever_server.py`` and Clever do; a full page always
gets a ``next`` link, so every collection ends with an empty page). Requests are then answered from a dict
of path -> bytes by a ``ThreadingHTTPServer`` on 127.0.0.1. Every answer carries Clever's ``x-ratelimit-*``
headers, counted per token in fixed 60-second windows (a benchmark run uses a fresh token, as one nightly
sync would). ``latency_s`` delays every answer, to stand for the distance to api.clever.com.

Run on its own (the harness starts it in a separate process so it does not share the client's GIL)::

    python -m bench.server SNAPSHOT_DIR [--latency-ms 200] [--page-size 10000]

prints ``ready <url> <pages> <bytes>`` on stdout once it listens, and serves until it is terminated.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from clever2sis.clever.snapshot import COLLECTIONS, Snapshot

API_VERSION = "v3.0"
PAGE_SIZE = 10_000
RATE_LIMIT_PER_WINDOW = 1200
RATE_LIMIT_WINDOW_S = 60
# Collections Clever serves without paging parameters.
UNPAGED = frozenset({"districts"})


def render_pages(
    snapshot_dir: Path, *, page_size: int = PAGE_SIZE, version: str = API_VERSION
) -> dict[str, bytes]:
    """Every page of every collection, keyed by the path and query a client requests it with."""
    snapshot = Snapshot.open(snapshot_dir)
    pages: dict[str, bytes] = {}
    for name in COLLECTIONS:
        lines = [line for line in snapshot.read_bytes(name).splitlines() if line]
        ids = [str(orjson.loads(line)["id"]) for line in lines]
        order = sorted(range(len(ids)), key=ids.__getitem__)
        lines = [lines[i] for i in order]
        ids = [ids[i] for i in order]
        base = f"/{version}/{name}"
        if name in UNPAGED:
            pages[base] = _page(base, base, lines, ids, 0, len(ids), prev=None, next_=None)
            continue
        query = [("limit", str(page_size))]
        first, after = 0, None
        for _ in range(len(ids) // page_size + 2):
            self_query = query + ([("starting_after", after)] if after is not None else [])
            path = f"{base}?{urlencode(self_query)}"
            last = min(first + page_size, len(ids))
            prev = next_ = None
            if first < last and after is not None:
                prev = f"{base}?{urlencode([*query, ('ending_before', ids[first])])}"
            if first < last and last - first == page_size:
                next_ = f"{base}?{urlencode([*query, ('starting_after', ids[last - 1])])}"
            pages[path] = _page(base, path, lines, ids, first, last, prev=prev, next_=next_)
            if next_ is None:
                break
            first, after = last, ids[last - 1]
    return pages


def _page(
    base: str,
    path: str,
    lines: list[bytes],
    ids: list[str],
    first: int,
    last: int,
    *,
    prev: str | None,
    next_: str | None,
) -> bytes:
    links = [{"rel": "self", "uri": path}]
    if prev is not None:
        links.append({"rel": "prev", "uri": prev})
    if next_ is not None:
        links.append({"rel": "next", "uri": next_})
    items = [
        b'{"data":' + lines[i] + b',"uri":"' + f"{base}/{ids[i]}".encode() + b'"}' for i in range(first, last)
    ]
    return b'{"data":[' + b",".join(items) + b'],"links":' + orjson.dumps(links) + b"}"


class PrerenderedServer:
    """``with PrerenderedServer(pages) as server: ... server.url``; any bearer token is accepted."""

    def __init__(
        self,
        pages: Mapping[str, bytes],
        *,
        latency_s: float = 0.0,
        rate_limit: int = RATE_LIMIT_PER_WINDOW,
        port: int = 0,
    ) -> None:
        self.pages = pages
        self.latency_s = latency_s
        self.rate_limit = rate_limit
        self.stats: Counter[str] = Counter()
        self._windows: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.app = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="bench-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> PrerenderedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def count(self, token: str) -> dict[str, str]:
        now = time.time()
        window = int(now // RATE_LIMIT_WINDOW_S) * RATE_LIMIT_WINDOW_S
        with self._lock:
            self.stats["requests"] += 1
            self._windows[(token, window)] += 1
            used = self._windows[(token, window)]
        return {
            "x-ratelimit-bucket": "bearer",
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": str(max(self.rate_limit - used, 0)),
            "x-ratelimit-reset": str(window + RATE_LIMIT_WINDOW_S),
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "envoy"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        app: PrerenderedServer = self.server.app  # type: ignore[attr-defined]
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[len("Bearer ") :].strip():
            self._send(401, b'{"message":"Unauthorized"}', "application/json; charset=utf-8", {})
            return
        headers = app.count(auth[len("Bearer ") :])
        if app.latency_s > 0:
            time.sleep(app.latency_s)
        body = app.pages.get(self.path)
        if body is None:
            page = f"<!DOCTYPE html>\n<html><body><pre>Cannot GET {self.path}</pre></body></html>\n"
            self._send(404, page.encode(), "text/html; charset=utf-8", headers)
            return
        self._send(200, body, "application/json; charset=utf-8", headers)

    def _send(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--page-size", type=int, default=PAGE_SIZE)
    args = parser.parse_args(argv)
    pages = render_pages(args.snapshot, page_size=args.page_size)
    server = PrerenderedServer(pages, latency_s=args.latency_ms / 1000)
    print(f"ready {server.url} {len(pages)} {sum(map(len, pages.values()))}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
