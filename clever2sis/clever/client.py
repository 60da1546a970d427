"""The Clever Data API client: auth, URLs, paging, rate limits, retries and error mapping in one place.

Callers ask for a collection and get its records, page by page; they never see links, cursors, headers or
status codes, only :class:`Page` objects and the exceptions in :mod:`clever2sis.errors`. Reading a list
answer's body into records, their bytes and Arrow is :mod:`clever2sis.clever.scan`'s job.

Protocol notes (see docs/pull.md, and Clever's public docs: https://dev.clever.com/docs/api-overview for
auth, https://dev.clever.com/docs/paging-and-limits for paging and the rate limit,
https://dev.clever.com/docs/error-messages and https://dev.clever.com/reference/responses-errors for
statuses and error bodies):

* ``Authorization: Bearer <district-app token>``; list answers are
  ``{"data": [{"data": {...}, "uri": ...}], "links": [{"rel": "next", "uri": "/v3.0/users?..."}]}``.
* ``links`` are root-relative and already carry the version, so they are joined to the host, never to
  ``<host>/v3.0``. A link to another host is refused: the token must not leave the configured origin.
* Paging stops on a missing ``next`` link or an empty page (a ``next`` may lead to nothing).
* The rate limit is 1,200 requests a minute per token in fixed windows. Every answer carries
  ``x-ratelimit-remaining`` and ``x-ratelimit-reset`` (epoch seconds); a throttled request gets an empty
  429 with no ``Retry-After``. The limiter is shared by every thread using one client.
* Some errors (unknown paths, wrong token type) come back as HTML, so the content type is checked first.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html import unescape
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import httpx
import orjson

from clever2sis import __version__, tls
from clever2sis.clever.settings import (
    CLEVER_API_BASE,
    CLEVER_API_VERSIONS,
    CLEVER_MAX_PAGE_SIZE,
    DEFAULT_API_VERSION,
)
from clever2sis.errors import CleverApiError, CleverAuthError, UsageError
from clever2sis.progress import Progress, silent
from clever2sis.secrets import Redactor

if TYPE_CHECKING:  # Arrow is imported when pages are read, so that commands that never read one start fast
    import pyarrow as pa

    from clever2sis.clever.scan import Answer

__all__ = [
    "CLEVER_API_BASE",
    "CLEVER_API_VERSIONS",
    "CLEVER_MAX_PAGE_SIZE",
    "DEFAULT_API_VERSION",
    "CleverClient",
    "Page",
]
RATE_LIMIT_PER_MINUTE = 1200
RATE_LIMIT_WINDOW_S = 60.0
# Below this share of the window's requests left, spread the rest evenly over the time until the reset.
RATE_LIMIT_LOW_FRACTION = 0.05
# Pauses shorter than this are counted but not reported as progress.
REPORT_WAIT_MIN_S = 1.0
# A reset further away than one window means the clocks disagree; never wait longer than this for one.
RATE_LIMIT_MAX_WAIT_S = RATE_LIMIT_WINDOW_S + 5.0
RATE_LIMIT_RESET_JITTER_S = 1.0
MAX_RETRIES = 6
MAX_THROTTLED_ATTEMPTS = 8
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 120.0
MAX_PAGES_PER_COLLECTION = 100_000
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_DETAIL_MAX_CHARS = 200
_COLLECTION_NAME = re.compile(r"^[a-z_]+$")
# Collections that take no paging parameters (the swagger gives /districts only ``count``).
_UNPAGED = frozenset({"districts"})

Sleep = Callable[[float], object]
Clock = Callable[[], float]


@dataclass
class ClientStats:
    """What a client did, for progress and the manifest. Updated under the limiter's lock."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    throttle_wait_s: float = 0.0
    slowdowns: int = 0
    slowdown_wait_s: float = 0.0
    backoff_wait_s: float = 0.0
    reserialised_records: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "throttle_wait_s": round(self.throttle_wait_s, 3),
            "slowdowns": self.slowdowns,
            "slowdown_wait_s": round(self.slowdown_wait_s, 3),
            "backoff_wait_s": round(self.backoff_wait_s, 3),
            "reserialised_records": self.reserialised_records,
        }


@dataclass(frozen=True)
class Page:
    """One page of a collection: its records as JSON Lines, each exactly as Clever sent it.

    ``lines`` holds ``count`` records joined by ``\\n`` (no trailing newline). ``table`` is the records parsed
    by Arrow into the fields the caller asked for (``ID_SCHEMA`` by default), or None when they do not fit
    those types; ``raw`` and ``records`` give the records one by one.
    """

    collection: str
    number: int
    lines: bytes = field(repr=False)
    count: int
    table: pa.Table | None = field(repr=False)

    @property
    def raw(self) -> list[bytes]:
        return self.lines.split(b"\n") if self.count else []

    @property
    def records(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.raw]


class RateLimiter:
    """Clever's per-token fixed window, as the answers' ``x-ratelimit-*`` headers describe it.

    Thread-safe: every request of one client (from any thread) goes through :meth:`before_request`, which
    counts the request against the window and, when the window is nearly spent, says how long to wait.
    """

    def __init__(self, *, clock: Clock, rng: random.Random) -> None:
        self._clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self.remaining: int | None = None
        self.reset_at: float | None = None
        self.limit: int | None = None

    def before_request(self) -> float:
        """Reserve one request in the current window; return the seconds to wait before sending it."""
        with self._lock:
            if self.remaining is None or self.reset_at is None:
                return 0.0
            until_reset = self.reset_at - self._clock()
            if until_reset <= 0:
                self.remaining = None
                return 0.0
            remaining = self.remaining
            self.remaining = remaining - 1
            if remaining <= 0:
                return min(
                    until_reset + RATE_LIMIT_RESET_JITTER_S * self._rng.random(), RATE_LIMIT_MAX_WAIT_S
                )
            low_watermark = max(1, int((self.limit or RATE_LIMIT_PER_MINUTE) * RATE_LIMIT_LOW_FRACTION))
            if remaining < low_watermark:
                return min(until_reset / (remaining + 1), RATE_LIMIT_MAX_WAIT_S)
            return 0.0

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take the window's state from an answer's headers (answers may arrive out of order)."""
        remaining = _int_header(headers, "x-ratelimit-remaining")
        reset_at = _int_header(headers, "x-ratelimit-reset")
        limit = _int_header(headers, "x-ratelimit-limit")
        with self._lock:
            if limit is not None:
                self.limit = limit
            if remaining is None or reset_at is None:
                return
            if self.reset_at is None or reset_at > self.reset_at:
                self.reset_at, self.remaining = float(reset_at), remaining
            elif reset_at == self.reset_at:
                self.remaining = remaining if self.remaining is None else min(self.remaining, remaining)

    def throttled(self, headers: Mapping[str, str]) -> float | None:
        """After a 429: the seconds until the window resets, or None when the answer did not say."""
        reset_at = _int_header(headers, "x-ratelimit-reset")
        with self._lock:
            if reset_at is None:
                return None
            self.reset_at, self.remaining = float(reset_at), 0
            until_reset = reset_at - self._clock()
        return min(
            max(until_reset, 0.0) + RATE_LIMIT_RESET_JITTER_S * self._rng.random(), RATE_LIMIT_MAX_WAIT_S
        )


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def check_api_base(api_base: str) -> str:
    """``scheme://host[:port]`` without a trailing slash; the version is never part of the base."""
    parts = urlsplit(api_base.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise UsageError(f"API base {api_base!r} is not an http(s) URL; use e.g. {CLEVER_API_BASE}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(
            f"API base {api_base!r} has a path; give only the scheme and host (e.g. {CLEVER_API_BASE}) "
            "and choose the version with --api-version"
        )
    return f"{parts.scheme}://{parts.netloc}"


class CleverClient:
    """One Clever district-app token against one API host and version.

    ``transport``, ``sleep``, ``clock`` and ``rng`` are injected so tests run without a network or real waits.
    The client is safe to share between threads; they share its rate-limit state.
    """

    def __init__(
        self,
        token: str,
        api_base: str = CLEVER_API_BASE,
        api_version: str = DEFAULT_API_VERSION,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.time,
        rng: random.Random | None = None,
        page_size: int = CLEVER_MAX_PAGE_SIZE,
        max_retries: int = MAX_RETRIES,
        progress: Progress = silent,
    ) -> None:
        if not token or not token.strip():
            raise UsageError("the Clever token is empty; set CLEVER_TOKEN to the district-app token")
        if api_version not in CLEVER_API_VERSIONS:
            raise UsageError(
                f"unsupported Clever API version {api_version!r}; use one of {', '.join(CLEVER_API_VERSIONS)}"
            )
        if not 1 <= page_size <= CLEVER_MAX_PAGE_SIZE:
            raise UsageError(f"page size must be between 1 and {CLEVER_MAX_PAGE_SIZE}, not {page_size}")
        if max_retries < 0:
            raise UsageError(f"max_retries must be 0 or more, not {max_retries}")
        self._token = token.strip()
        self._redact = Redactor([self._token])
        self.origin = check_api_base(api_base)
        self.api_version = api_version
        self.page_size = page_size
        self.max_retries = max_retries
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._progress = progress
        self.limiter = RateLimiter(clock=clock, rng=self._rng)
        self.stats = ClientStats()
        self._stats_lock = threading.Lock()
        self._http = httpx.Client(
            transport=transport,
            verify=tls.verify(transport),
            headers={
                "Authorization": f"Bearer {self._token}",
                "Accept": "application/json",
                "User-Agent": f"clever2sis/{__version__}",
            },
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"CleverClient(origin={self.origin!r}, api_version={self.api_version!r})"

    def __enter__(self) -> CleverClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def collection_url(self, collection: str) -> str:
        """The first page of ``collection``."""
        if not _COLLECTION_NAME.match(collection):
            raise UsageError(f"not a Clever collection name: {collection!r}")
        url = f"{self.origin}/{self.api_version}/{collection}"
        if collection in _UNPAGED:
            return url
        return f"{url}?{urlencode({'limit': self.page_size})}"

    def iter_records(self, collection: str) -> Iterator[dict[str, Any]]:
        """Every record of ``collection``, unwrapped from the list envelope, in Clever's order."""
        for page in self.iter_pages(collection):
            yield from page.records

    def get_json(self, path: str) -> Any:
        """One GET of an API path (``/v3.0/districts``) with the usual retries; its decoded JSON body.

        For small answers (the district, a one-record page): a collection is read with :meth:`iter_pages`.
        """
        if not path.startswith("/") or path.startswith("//"):
            raise UsageError(f"not a Clever API path: {path!r}")
        body = self._get_body(self.origin + path)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise CleverApiError(f"GET {path}: Clever's answer is not valid JSON") from None

    def iter_pages(self, collection: str, schema: pa.Schema | None = None) -> Iterator[Page]:
        """The pages of ``collection``, following ``next`` links until none is left or a page is empty.

        Each page's records are parsed by Arrow into ``schema`` (None: ``ID_SCHEMA``, the ids only; fields
        not in it are skipped). The next page is requested as soon as this one's ``next`` link is read, so
        it downloads while the caller handles this one (one request in flight per collection, never more).
        """
        from clever2sis.clever.scan import ID_SCHEMA, read_answer

        schema = ID_SCHEMA if schema is None else schema
        url = self.collection_url(collection)
        seen = {url}
        with ThreadPoolExecutor(1, thread_name_prefix=f"clever-{collection}") as prefetch:
            pending = prefetch.submit(self._get_body, url)
            for number in range(1, MAX_PAGES_PER_COLLECTION + 1):
                path = self._path(url)
                answer = read_answer(pending.result(), path)
                if answer.empty:
                    return
                if answer.next_uri is not None:
                    url = self._join(answer.next_uri, path)
                    if url in seen:
                        raise CleverApiError(
                            f"{collection}: Clever's next link {answer.next_uri} repeats a page already read"
                        )
                    seen.add(url)
                    pending = prefetch.submit(self._get_body, url)
                yield self._page(collection, number, answer, path, schema)
                if answer.next_uri is None:
                    return
        raise CleverApiError(f"{collection}: more than {MAX_PAGES_PER_COLLECTION} pages; giving up")

    def _join(self, uri: str, path: str) -> str:
        if uri.startswith("/") and not uri.startswith("//"):
            return self.origin + uri
        parts = urlsplit(uri)
        if f"{parts.scheme}://{parts.netloc}" == self.origin:
            return uri
        raise CleverApiError(
            f"GET {path}: Clever's next link {uri!r} leaves {self.origin}; refusing to follow it"
        )

    def _path(self, url: str) -> str:
        return url[len(self.origin) :] if url.startswith(self.origin) else url

    def _count(self, **deltas: float) -> None:
        with self._stats_lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def _backoff_s(self, retry: int) -> float:
        """Exponential backoff with equal jitter: half the step fixed, half random."""
        step: float = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2.0 ** (retry - 1))
        return step / 2 + self._rng.uniform(0, step / 2)

    def _page(self, collection: str, number: int, answer: Answer, path: str, schema: pa.Schema) -> Page:
        """The answer's records as a :class:`Page` (see :func:`~clever2sis.clever.scan.read_records`)."""
        from clever2sis.clever.scan import read_records

        records = read_records(answer, path, schema)
        if records.reserialised:
            self._count(reserialised_records=records.reserialised)
        return Page(
            collection=collection,
            number=number,
            lines=records.lines,
            count=records.count,
            table=records.table,
        )

    def _get_body(self, url: str) -> bytes:
        """GET ``url`` with the retry and rate-limit policy; return the body of a 200 JSON answer."""
        path = self._path(url)
        retries = 0
        throttled = 0
        last_failure = ""
        for _attempt in range(self.max_retries + MAX_THROTTLED_ATTEMPTS + 1):
            wait_s = self.limiter.before_request()
            if wait_s > 0:
                if wait_s >= REPORT_WAIT_MIN_S:
                    self._progress(f"rate limit: few requests left in this window; pausing {wait_s:.1f}s")
                self._count(slowdowns=1, slowdown_wait_s=wait_s)
                self._sleep(wait_s)
            self._count(requests=1)
            try:
                response = self._http.get(url)
            except _RETRYABLE_ERRORS as error:
                last_failure = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            else:
                self.limiter.observe(response.headers)
                if response.status_code == 429:
                    throttled += 1
                    if throttled > MAX_THROTTLED_ATTEMPTS:
                        raise CleverApiError(
                            f"GET {path}: still rate-limited (429) after {MAX_THROTTLED_ATTEMPTS} waits; "
                            "another client may be using the same token"
                        )
                    reset_wait = self.limiter.throttled(response.headers)
                    wait_s = reset_wait if reset_wait is not None else self._backoff_s(throttled)
                    self._progress(f"rate limit reached (429); waiting {wait_s:.1f}s for the window to reset")
                    self._count(throttled=1, throttle_wait_s=wait_s)
                    self._sleep(wait_s)
                    continue
                if response.status_code not in RETRYABLE_STATUSES:
                    return self._decode(response, path)
                last_failure = f"HTTP {response.status_code}{_detail(response, self._redact)}"
            if retries >= self.max_retries:
                raise CleverApiError(
                    f"GET {path} failed after {retries + 1} attempts ({self._redact(last_failure)}); "
                    "Clever or the network is having trouble, try again later"
                )
            retries += 1
            wait_s = self._backoff_s(retries)
            self._progress(f"GET {path}: {self._redact(last_failure)}; retry {retries} in {wait_s:.1f}s")
            self._count(retries=1, backoff_wait_s=wait_s)
            self._sleep(wait_s)
        raise CleverApiError(f"GET {path}: gave up after too many attempts ({self._redact(last_failure)})")

    def _decode(self, response: httpx.Response, path: str) -> bytes:
        status = response.status_code
        if status == 200:
            if not _is_json(response):
                content_type = response.headers.get("content-type") or "no content type"
                raise CleverApiError(f"GET {path}: Clever answered 200 with {content_type}, not JSON")
            return response.content
        # Only an error's body is read for a reason: a page's body is megabytes of records.
        detail = _detail(response, self._redact)
        if status in (401, 403):
            raise CleverAuthError(
                f"Clever refused the token ({status}{detail}) for GET {path}: check that CLEVER_TOKEN holds "
                "this district's district-app token, that the district still authorizes the app, and that "
                "the app may read rosters (sections need Secure Sync)"
            )
        if status == 404:
            raise CleverApiError(
                f"Clever has no {path} (404{detail}); check --api-base and --api-version "
                f"(now {self.origin}, {self.api_version})"
            )
        if status == 413:
            raise CleverApiError(
                f"GET {path}: Clever refused the page size (413); use at most {CLEVER_MAX_PAGE_SIZE}"
            )
        raise CleverApiError(f"GET {path}: Clever answered {status}{detail}")


def _is_json(response: httpx.Response) -> bool:
    media_type: str = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _detail(response: httpx.Response, redact: Callable[[str], str]) -> str:
    """A short, printable reason from an error body: JSON ``message``, or the text of an HTML page.

    ``redact`` runs before the cut, so that a token the body echoes is never left half-hidden.
    """
    try:
        text = response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return ""
    if not text.strip():
        return ""
    if _is_json(response):
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            document = None
        if isinstance(document, dict) and isinstance(document.get("message"), str):
            text = document["message"]
    else:
        text = unescape(_TAG.sub(" ", re.sub(r"(?is)<(head|title|style|script)\b.*?</\1>", " ", text)))
    text = redact(_SPACE.sub(" ", text).strip())
    if len(text) > _DETAIL_MAX_CHARS:
        text = text[: _DETAIL_MAX_CHARS - 1] + "…"
    return f": {text}" if text else ""
