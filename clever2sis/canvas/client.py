"""The Canvas requester: the only code that talks HTTP to Canvas.

It owns the bearer token, the base URL, retries and the mapping of HTTP statuses to
:mod:`clever2sis.errors`. Callers get JSON, pages and exceptions, never status codes or ``Link`` headers.

Retries are bounded in attempts and in total sleep:

* a 403 whose body says ``Rate Limit Exceeded`` is Canvas's throttle signal (doc/api/throttling.md): back off
  and try again; any other 403 is a permission problem and is raised at once;
* 5xx and network errors are retried for idempotent requests (GET, PUT). A POST is retried only when it
  certainly never reached Canvas (connection refused, rate limited), so an import is never created twice.
  A POST that may have reached Canvas but has no usable answer (a network error once it was sent, a 5xx,
  a body that is not JSON) raises :class:`~clever2sis.errors.PostOutcomeUnknownError`, so that the caller
  can look for what it created (:mod:`clever2sis.canvas.intent`) instead of guessing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from clever2sis import tls
from clever2sis.errors import (
    CanvasAuthError,
    CanvasError,
    CanvasNotFoundError,
    CanvasPermissionError,
    CanvasUnavailableError,
    NotRootAccountError,
    PostOutcomeUnknownError,
    SisImportsDisabledError,
    UnknownBatchTermError,
)
from clever2sis.progress import Progress, silent
from clever2sis.secrets import Redactor

HTTP_TIMEOUT_S = 60.0
UPLOAD_TIMEOUT_S = 600.0
RATE_LIMIT_MARKER = "Rate Limit Exceeded"
ROOT_ACCOUNT_MARKER = "can only be executed on root accounts"
SIS_DISABLED_MARKER = "SIS imports are not enabled"
UNKNOWN_BATCH_TERM_MARKER = "batch_mode_term_id cannot be found"
MAX_PAGES = 10_000
ERROR_DETAIL_CHARS = 200
DOWNLOAD_CHUNK_BYTES = 1 << 20

Query = Sequence[tuple[str, str]] | Mapping[str, str] | None
FormFields = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry one request: exponential backoff from ``first_delay_s`` up to ``max_delay_s``."""

    max_attempts: int = 6
    first_delay_s: float = 1.0
    max_delay_s: float = 60.0
    max_total_sleep_s: float = 300.0

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Sleep before retry number ``attempt`` (1-based); a server's Retry-After wins when it is longer."""
        backoff = min(self.first_delay_s * 2.0 ** (attempt - 1), self.max_delay_s)
        if retry_after_s is not None:
            return min(max(backoff, retry_after_s), self.max_delay_s)
        return backoff


@dataclass(frozen=True)
class Page:
    """One page of a paginated list: the URL it came from (query stripped) and its decoded JSON body."""

    number: int
    url: str
    body: Any


def safe_url(url: str | httpx.URL) -> str:
    """``url`` without its query string or user info, fit for a message or a log line."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def canvas_message(response: httpx.Response, redact: Callable[[str], str] = str) -> str:
    """The human part of a Canvas error body, whatever its shape, cut to a sensible length.

    ``redact`` runs before the cut, so that a token the body echoes is never left half-hidden.
    """
    text = response.text
    message = text
    if "json" in response.headers.get("content-type", ""):
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        message = _message_from_body(body) or text
    message = redact(" ".join(message.split()))
    if len(message) > ERROR_DETAIL_CHARS:
        message = message[: ERROR_DETAIL_CHARS - 1] + "…"
    return message


def _message_from_body(body: Any) -> str | None:
    if isinstance(body, str):
        return body
    if not isinstance(body, dict):
        return None
    for key in ("message", "error_message"):
        if isinstance(body.get(key), str):
            return str(body[key])
    errors = body.get("errors")
    if isinstance(errors, list):
        parts = [e.get("message", "") if isinstance(e, dict) else str(e) for e in errors]
        return "; ".join(p for p in parts if p) or None
    if isinstance(errors, dict):
        return "; ".join(f"{k}: {v}" for k, v in errors.items())
    if isinstance(errors, str):
        return errors
    return None


class CanvasClient:
    """Authenticated requests to one Canvas instance.

    ``token_source`` names where the token came from (an environment variable) so that a 401 can say which
    setting to fix; the token itself is never part of a message, a repr or a log line.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        token_source: str = "CANVAS_TOKEN",
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        progress: Progress = silent,
        timeout_s: float = HTTP_TIMEOUT_S,
    ) -> None:
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self.token_source = token_source
        self._redact = Redactor([token])
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.progress = progress
        self._http = httpx.Client(
            transport=transport,
            verify=tls.verify(transport),
            timeout=timeout_s,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"CanvasClient({safe_url(self.base_url)!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CanvasClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def url(self, path_or_url: str) -> httpx.URL:
        """An absolute URL for an API path (``/api/v1/...``) or a URL Canvas handed us."""
        if path_or_url.startswith(("http://", "https://")):
            url = httpx.URL(path_or_url)
            if _origin(url) != _origin(self.base_url):
                raise CanvasError(f"Canvas sent a link to another host ({safe_url(url)}); refusing to follow")
            return url
        return self.base_url.join(path_or_url.lstrip("/"))

    def get_json(self, path: str, params: Query = None) -> Any:
        return self._json(self.request("GET", path, params=params))

    def put_json(self, path: str, data: FormFields = ()) -> Any:
        return self._json(self.request("PUT", path, data=dict(data)))

    def post_form(self, path: str, data: FormFields) -> Any:
        """POST a urlencoded form; the JSON answer. Like every POST, retried only when it never left."""
        return self._json(self.request("POST", path, data=dict(data)))

    def post_file(
        self,
        path: str,
        data: FormFields,
        *,
        field: str,
        filename: str,
        open_file: Callable[[], IO[bytes]],
        content_type: str = "application/zip",
    ) -> Any:
        """POST a multipart form with one file part, streamed from ``open_file()`` (reopened per attempt).

        :class:`~clever2sis.errors.PostOutcomeUnknownError` when the POST may have reached Canvas and its
        answer is lost: no answer, a 5xx, or a success whose body is not JSON.
        """

        def send() -> httpx.Response:
            with open_file() as handle:
                return self._http.request(
                    "POST",
                    self.url(path),
                    data=dict(data),
                    files={field: (filename, handle, content_type)},
                    timeout=UPLOAD_TIMEOUT_S,
                )

        response = self._with_retries(f"POST {safe_url(self.url(path))}", send, idempotent=False)
        try:
            return self._json(response)
        except CanvasError as error:
            raise PostOutcomeUnknownError(f"{error}; the POST may have reached Canvas") from None

    def pages(self, path: str, params: Query = None) -> Iterator[Page]:
        """Every page of a paginated list, following ``Link: rel="next"`` (Canvas's own URLs, opaque)."""
        url: str | None = path
        seen: set[str] = set()
        for number in range(1, MAX_PAGES + 1):
            if url is None:
                return
            response = self.request("GET", url, params=params if number == 1 else None)
            yield Page(number=number, url=safe_url(response.request.url), body=self._json(response))
            next_link = response.links.get("next", {}).get("url")
            if next_link is None or next_link in seen:
                return
            seen.add(next_link)
            url = next_link
        raise CanvasError(f"{safe_url(self.url(path))}: more than {MAX_PAGES} pages; giving up")

    def paginate(self, path: str, key: str, params: Query = None) -> Iterator[dict[str, Any]]:
        """The items of every page; ``key`` unwraps Canvas's ``{"key": [...]}`` envelope."""
        for page in self.pages(path, params):
            body = page.body
            items = body.get(key) if isinstance(body, dict) else body
            if not isinstance(items, list):
                raise CanvasError(f"{page.url}: expected a list under {key!r}")
            yield from items

    def download(self, url: str) -> bytes:
        """The bytes behind a file URL Canvas gave us; the token goes only to Canvas's own host."""
        target = httpx.URL(url)
        same_origin = _origin(target) == _origin(self.base_url)

        def send() -> httpx.Response:
            request = self._http.build_request("GET", target)
            if not same_origin:
                del request.headers["Authorization"]
            return self._http.send(request, follow_redirects=True)

        return self._with_retries(f"GET {safe_url(target)}", send, idempotent=True).content

    def download_to(self, url: str, dest: Path, *, chunk_bytes: int = DOWNLOAD_CHUNK_BYTES) -> int:
        """Stream the file behind ``url`` to ``dest`` (through a temporary file beside it); its size in bytes.

        The body is never held in memory: it is written ``chunk_bytes`` at a time. A connection that drops
        mid-body starts the download again, within the same bounds as every other retry. As for
        :meth:`download`, the token goes only to Canvas's own host.
        """
        target = httpx.URL(url)
        same_origin = _origin(target) == _origin(self.base_url)
        where = f"GET {safe_url(target)}"

        def send() -> httpx.Response:
            request = self._http.build_request("GET", target)
            if not same_origin:
                del request.headers["Authorization"]
            response = self._http.send(request, follow_redirects=True, stream=True)
            if not response.is_success:
                response.read()  # the retry loop reads an error's body
            return response

        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{dest.name}.partial")
        problem = "no attempt made"
        for attempt in range(1, self.retry.max_attempts + 1):
            response = self._with_retries(where, send, idempotent=True)
            try:
                size = 0
                with partial.open("wb") as handle:
                    for chunk in response.iter_bytes(chunk_bytes):
                        handle.write(chunk)
                        size += len(chunk)
                partial.replace(dest)
                return size
            except httpx.TransportError as error:
                problem = f"network error ({type(error).__name__}) mid-download"
                if attempt < self.retry.max_attempts:
                    delay_s = self.retry.delay_s(attempt)
                    self.progress(f"{where}: {problem}; starting again in {delay_s:.0f}s")
                    self.sleep(delay_s)
            finally:
                response.close()
                partial.unlink(missing_ok=True)
        raise CanvasUnavailableError(f"{where}: {problem}; gave up after {self.retry.max_attempts} attempts")

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> httpx.Response:
        url = self.url(path_or_url)
        return self._with_retries(
            f"{method} {safe_url(url)}",
            lambda: self._http.request(method, url, **kwargs),
            idempotent=method in {"GET", "PUT", "HEAD"},
        )

    def _with_retries(
        self, where: str, send: Callable[[], httpx.Response], *, idempotent: bool
    ) -> httpx.Response:
        slept_s = 0.0
        problem = "no attempt made"
        attempt = 0
        for attempt in range(1, self.retry.max_attempts + 1):
            retry_after_s: float | None = None
            try:
                response = send()
            except httpx.TransportError as error:
                never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
                problem = f"network error ({type(error).__name__})"
                if not (idempotent or never_sent):
                    raise PostOutcomeUnknownError(
                        f"{where}: {problem} after the request was sent; it may have reached Canvas"
                    ) from None
            else:
                if response.is_success:
                    return response
                status = response.status_code
                if status == 403 and RATE_LIMIT_MARKER.lower() in response.text.lower():
                    problem = "rate limited by Canvas (403 Rate Limit Exceeded)"
                    retry_after_s = _retry_after_s(response)
                elif status >= 500 and idempotent:
                    detail = canvas_message(response, self._redact)
                    problem = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
                elif status >= 500:
                    # A gateway timing out a slow upload answers 502/504 after Canvas has the import.
                    detail = canvas_message(response, self._redact)
                    raise PostOutcomeUnknownError(
                        f"{where}: HTTP {status}{f' ({detail})' if detail else ''} after the request was "
                        "sent; it may have reached Canvas"
                    )
                else:
                    raise self._error_for(response, where)
            if attempt == self.retry.max_attempts:
                break
            delay_s = self.retry.delay_s(attempt, retry_after_s)
            if slept_s + delay_s > self.retry.max_total_sleep_s:
                break
            self.progress(f"{where}: {problem}; retrying in {delay_s:.0f}s")
            self.sleep(delay_s)
            slept_s += delay_s
        raise CanvasUnavailableError(f"{where}: {problem}; gave up after {attempt} attempts")

    def _error_for(self, response: httpx.Response, where: str) -> CanvasError:
        status = response.status_code
        message = canvas_message(response, self._redact)
        host = safe_url(self.base_url).rstrip("/")
        if status == 401:
            said = f": {message}" if message else ""
            return CanvasAuthError(
                f"{host} rejected the token in {self.token_source} (HTTP 401{said}): check that it is "
                "current and that its user may import SIS data on this account"
            )
        if status == 400 and ROOT_ACCOUNT_MARKER in message:
            return NotRootAccountError(f"{where}: not a root account; use the root account id ({message})")
        if status == 400 and UNKNOWN_BATCH_TERM_MARKER in message:
            return UnknownBatchTermError(
                "Canvas cannot find the batch_mode_term_id term; give the Canvas id or "
                "sis_term_id:<id> of an active term"
            )
        if status == 403 and SIS_DISABLED_MARKER in message:
            return SisImportsDisabledError(
                f"SIS imports are not enabled for this account on {host}; ask a Canvas admin to enable them"
            )
        if status == 403:
            return CanvasPermissionError(f"{where}: permission denied (HTTP 403): {message}")
        if status == 404:
            return CanvasNotFoundError(f"{where}: not found (HTTP 404)")
        return CanvasError(f"{where}: HTTP {status}: {message}")

    def _json(self, response: httpx.Response) -> Any:
        content_type = response.headers.get("content-type", "")
        if "json" not in content_type:
            raise CanvasError(
                f"{response.request.method} {safe_url(response.request.url)}: expected JSON, got "
                f"{content_type or 'no content type'}"
            )
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise CanvasError(
                f"{response.request.method} {safe_url(response.request.url)}: response is not valid JSON"
            ) from None


def _retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
