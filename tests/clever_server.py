"""A local stand-in for api.clever.com, for tests and measurements: serves a district from memory.

It speaks the protocol the client must handle (Clever reference notes §1-4): the double-``data`` list
envelope, root-relative ``self``/``next``/``prev`` links that carry the version and repeat the query,
``limit`` up to 10,000 (413 above), ``x-ratelimit-*`` headers on every answer, a fixed-window per-token
limit answered with an empty 429 and no Retry-After, HTML 404 ``Cannot GET <path>`` for unknown paths and
401 for a wrong token.
Faults (502s, dropped connections, extra 429s, 502s that echo the token) are injected from a seeded generator so runs repeat.

Listens on 127.0.0.1 only, on a free port; every loop in it is bounded by the data or the request.
"""

from __future__ import annotations

import bisect
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from clever2sis.clever.snapshot import COLLECTIONS, Snapshot

SERVED_VERSIONS = ("v3.0", "v3.1")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 10_000
RATE_LIMIT_PER_WINDOW = 1200
RATE_LIMIT_WINDOW_S = 60


@dataclass(frozen=True)
class Faults:
    """Fractions of requests answered with a fault instead of the page (decided per request, seeded)."""

    bad_gateway: float = 0.0
    dropped: float = 0.0
    throttled: float = 0.0
    echoed: float = 0.0  # a 502 whose body quotes the request's Authorization header, as a bad proxy might
    seed: int = 0


@dataclass(frozen=True)
class Stall:
    """Hold every answer for ``collection`` after its first page until ``release`` is set.

    ``reached`` is set when the first such request comes in, so a test knows the client is mid-pull (its
    first page written) and can kill it there. Each held request waits at most ``max_wait_s``. With
    ``first_page`` the first page is held too (a collection that fits in one page). A one-record request
    (``limit=1``, the sync's pre-flight probe, not a page of its pull) is never held.
    """

    collection: str
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    max_wait_s: float = 120.0
    first_page: bool = False


@dataclass
class _Collection:
    ids: list[str]
    raw: list[bytes]


def district_from_snapshot(path: Path) -> dict[str, list[bytes]]:
    """Each collection's records as raw JSON lines, in the snapshot's (ascending id) order."""
    snapshot = Snapshot.open(path)
    return {name: snapshot.read_bytes(name).splitlines() for name in COLLECTIONS}


class CleverTestServer:
    """``with CleverTestServer(records, token=...) as server: CleverClient(token, server.url)``."""

    def __init__(
        self,
        records: Mapping[str, Sequence[bytes]],
        *,
        token: str,
        rate_limit: int = RATE_LIMIT_PER_WINDOW,
        window_s: int = RATE_LIMIT_WINDOW_S,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.time,
        stall: Stall | None = None,
    ) -> None:
        self.token = token
        self.stall = stall
        self.rate_limit = rate_limit
        self.window_s = window_s
        self.faults = faults or Faults()
        self.clock = clock
        self.collections: dict[str, _Collection] = {}
        for name, lines in records.items():
            pairs = sorted((str(orjson.loads(line)["id"]), bytes(line)) for line in lines if line)
            self.collections[name] = _Collection(ids=[i for i, _ in pairs], raw=[r for _, r in pairs])
        self.stats: Counter[str] = Counter()
        self.paths: list[str] = []
        self.arrivals: list[float] = []  # time.time() as each request reached the handler (bench/startup.py)
        self._windows: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.app = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="clever-test-server", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> CleverTestServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def served_lines(self, collection: str) -> list[bytes]:
        return list(self.collections[collection].raw)

    # -- request handling ------------------------------------------------------------------------------

    def count_request(self, token: str) -> tuple[int, int, str | None]:
        """Count one request in its window; return (remaining, reset epoch s, fault or None)."""
        now = self.clock()
        window = int(now // self.window_s) * self.window_s
        reset = window + self.window_s
        with self._lock:
            self.stats["requests"] += 1
            self._windows[(token, window)] += 1
            used = self._windows[(token, window)]
            fault = None
            draw = self._rng.random()
            faults = self.faults
            if used > self.rate_limit:
                fault = "rate_limited"
            elif draw < faults.dropped:
                fault = "dropped"
            elif draw < faults.dropped + faults.bad_gateway:
                fault = "bad_gateway"
            elif draw < faults.dropped + faults.bad_gateway + faults.throttled:
                fault = "throttled"
                self._windows[(token, window)] = self.rate_limit
                used = self.rate_limit
            elif draw < faults.dropped + faults.bad_gateway + faults.throttled + faults.echoed:
                fault = "echoed"
            if fault:
                self.stats[fault] += 1
        return max(self.rate_limit - used, 0), reset, fault

    def page(self, version: str, name: str, query: list[tuple[str, str]]) -> tuple[int, bytes]:
        params = dict(query)
        try:
            limit = int(params.get("limit", DEFAULT_PAGE_SIZE))
        except ValueError:
            return 400, orjson.dumps({"message": "limit must be an integer"})
        if limit > MAX_PAGE_SIZE:
            return 413, orjson.dumps({"message": "Request Entity Too Large"})
        if limit < 1:
            return 400, orjson.dumps({"message": "limit must be positive"})
        collection = self.collections[name]
        ids = collection.ids
        if "starting_after" in params:
            first = bisect.bisect_right(ids, params["starting_after"])
            last = min(first + limit, len(ids))
        elif "ending_before" in params:
            last = bisect.bisect_left(ids, params["ending_before"])
            first = max(last - limit, 0)
        else:
            first, last = 0, min(limit, len(ids))
        kept = [(k, v) for k, v in query if k not in ("starting_after", "ending_before")]
        base = f"/{version}/{name}"
        self_query = urlencode(query)
        links: list[dict[str, str]] = [
            {"rel": "self", "uri": base + (f"?{self_query}" if self_query else "")}
        ]
        if first < last and ("starting_after" in params or "ending_before" in params):
            links.append(
                {"rel": "prev", "uri": f"{base}?{urlencode([*kept, ('ending_before', ids[first])])}"}
            )
        if first < last and last - first == limit:
            # A full page always gets a next link, even when nothing follows (Clever does the same).
            links.append(
                {"rel": "next", "uri": f"{base}?{urlencode([*kept, ('starting_after', ids[last - 1])])}"}
            )
        items = [
            b'{"data":' + collection.raw[i] + b',"uri":"' + f"{base}/{ids[i]}".encode() + b'"}'
            for i in range(first, last)
        ]
        return 200, b'{"data":[' + b",".join(items) + b'],"links":' + orjson.dumps(links) + b"}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "envoy"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and measurements read the counters instead."""

    def do_GET(self) -> None:
        arrived = time.time()
        app: CleverTestServer = self.server.app  # type: ignore[attr-defined]
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        parts = urlsplit(self.path)
        with app._lock:
            app.arrivals.append(arrived)
            app.paths.append(self.path)
        if token != app.token:
            app.stats["unauthorized"] += 1
            self._send(401, orjson.dumps({"message": "Unauthorized"}), "application/json; charset=utf-8", {})
            return
        remaining, reset, fault = app.count_request(token)
        headers = {
            "x-ratelimit-bucket": "bearer",
            "x-ratelimit-limit": str(app.rate_limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(reset),
        }
        if fault == "dropped":
            self._drop()
            return
        if fault == "bad_gateway":
            self._send(502, b"upstream connect error", "text/plain", headers)
            return
        if fault == "echoed":
            echo = f"upstream error; request had Authorization: {auth} ({auth.upper()})"
            self._send(502, echo.encode(), "text/plain", headers)
            return
        if fault in ("rate_limited", "throttled"):
            headers["x-ratelimit-remaining"] = "0"
            self._send(429, b"", None, headers)
            return
        segments = parts.path.strip("/").split("/")
        if len(segments) == 2 and segments[0] in SERVED_VERSIONS and segments[1] in app.collections:
            query = parse_qsl(parts.query, keep_blank_values=True)
            stall = app.stall
            if (
                stall is not None
                and segments[1] == stall.collection
                and (stall.first_page or "starting_after" in dict(query))
                and dict(query).get("limit") != "1"
            ):
                stall.reached.set()
                stall.release.wait(stall.max_wait_s)
            status, body = app.page(segments[0], segments[1], query)
            self._send(status, body, "application/json; charset=utf-8", headers)
            return
        page = (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            "<title>Error</title>\n</head>\n"
            f"<body>\n<pre>Cannot GET {parts.path}</pre>\n</body>\n</html>\n"
        )
        self._send(404, page.encode(), "text/html; charset=utf-8", headers)

    def _send(self, status: int, body: bytes, content_type: str | None, headers: Mapping[str, str]) -> None:
        app: CleverTestServer = self.server.app  # type: ignore[attr-defined]
        with app._lock:
            app.stats[f"status_{status}"] += 1
        self.send_response(status)
        if content_type:
            self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.send_header("cache-control", "no-store")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _drop(self) -> None:
        """Close the connection without an answer, as a reset proxy or a dying server would."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
