"""CleverClient against httpx.MockTransport: paging, rate limits, retries and error mapping."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from clever2sis.clever.client import CLEVER_MAX_PAGE_SIZE, CleverClient
from clever2sis.clever.scan import raw_record_spans, split_list_body
from clever2sis.errors import CleverApiError, CleverAuthError, UsageError

TOKEN = "0123456789abcdef0123456789abcdef01234567"
HOST = "https://api.clever.com"
NOW = 1_700_000_000.0
JSON = "application/json; charset=utf-8"


def record(n: int) -> dict[str, Any]:
    return {"id": f"{n:024x}", "name": f"Record {n}", "district": "d" * 24}


def envelope(records: list[dict[str, Any]], links: list[dict[str, str]], collection: str = "users") -> bytes:
    items = [{"data": r, "uri": f"/v3.0/{collection}/{r['id']}"} for r in records]
    return orjson.dumps({"data": items, "links": links})


def ok(body: bytes, *, remaining: int = 1000, reset: int = int(NOW) + 30) -> httpx.Response:
    return httpx.Response(
        200,
        content=body,
        headers={
            "content-type": JSON,
            "x-ratelimit-limit": "1200",
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-bucket": "bearer",
        },
    )


class Recorder:
    """A MockTransport handler answering from a list of callables, and remembering each request."""

    def __init__(self, *answers: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answers: Iterator[Callable[[httpx.Request], httpx.Response]] = iter(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return next(self.answers)(request)

    @property
    def urls(self) -> list[str]:
        return [str(r.url) for r in self.requests]


class FakeTime:
    """An injected clock and sleep: sleeping moves the clock, and every sleep is remembered."""

    def __init__(self) -> None:
        self.now = NOW
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(
    handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any
) -> tuple[CleverClient, list[float]]:
    time = FakeTime()
    client = CleverClient(
        TOKEN,
        HOST,
        "v3.0",
        transport=httpx.MockTransport(handler),
        sleep=time.sleep,
        clock=time.clock,
        rng=random.Random(7),
        **kwargs,
    )
    return client, time.sleeps


def test_pages_follow_next_links_joined_to_the_host_not_the_versioned_base() -> None:
    handler = Recorder(
        lambda r: ok(
            envelope([record(1), record(2)], [{"rel": "next", "uri": "/v3.0/users?limit=2&starting_after=2"}])
        ),
        lambda r: ok(envelope([record(3)], [{"rel": "self", "uri": "/v3.0/users?limit=2&starting_after=2"}])),
    )
    client, _ = make_client(handler, page_size=2)
    records = list(client.iter_records("users"))
    assert [r["id"] for r in records] == [record(n)["id"] for n in (1, 2, 3)]
    assert handler.urls == [f"{HOST}/v3.0/users?limit=2", f"{HOST}/v3.0/users?limit=2&starting_after=2"]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in handler.requests)


def test_default_page_size_is_the_maximum_and_districts_take_no_paging_parameters() -> None:
    client, _ = make_client(Recorder())
    assert client.collection_url("sections") == f"{HOST}/v3.0/sections?limit={CLEVER_MAX_PAGE_SIZE}"
    assert client.collection_url("districts") == f"{HOST}/v3.0/districts"


def test_an_empty_page_ends_the_collection_even_with_a_next_link() -> None:
    handler = Recorder(
        lambda r: ok(envelope([record(1)], [{"rel": "next", "uri": "/v3.0/users?starting_after=1"}])),
        lambda r: ok(envelope([], [{"rel": "next", "uri": "/v3.0/users?starting_after=1x"}])),
    )
    client, _ = make_client(handler)
    assert [p.number for p in client.iter_pages("users")] == [1]
    assert len(handler.requests) == 2


def test_a_prev_link_on_the_first_page_is_not_followed() -> None:
    links = [
        {"rel": "self", "uri": "/v3.0/users"},
        {"rel": "prev", "uri": "/v3.0/users?ending_before=1"},
    ]
    handler = Recorder(lambda r: ok(envelope([record(1)], links)))
    client, _ = make_client(handler)
    assert len(list(client.iter_records("users"))) == 1
    assert len(handler.requests) == 1


def test_a_429_waits_until_the_reset_header_then_retries() -> None:
    throttled = httpx.Response(
        429, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 42)}
    )
    handler = Recorder(lambda r: throttled, lambda r: ok(envelope([record(1)], [])))
    client, sleeps = make_client(handler)
    assert len(list(client.iter_records("users"))) == 1
    assert len(sleeps) == 1
    assert 42 <= sleeps[0] <= 43
    assert client.stats.throttled == 1
    assert client.stats.retries == 0


def test_a_429_without_a_reset_header_backs_off() -> None:
    handler = Recorder(lambda r: httpx.Response(429), lambda r: ok(envelope([record(1)], [])))
    client, sleeps = make_client(handler)
    assert len(list(client.iter_records("users"))) == 1
    assert len(sleeps) == 1
    assert 0 < sleeps[0] <= 1


def test_slows_down_when_few_requests_are_left_and_waits_for_the_reset_when_none_are() -> None:
    next_link = [{"rel": "next", "uri": "/v3.0/users?starting_after=x"}]
    handler = Recorder(
        lambda r: ok(envelope([record(1)], next_link), remaining=3, reset=int(NOW) + 20),
        lambda r: ok(
            envelope([record(2)], [{"rel": "next", "uri": "/v3.0/users?starting_after=y"}]),
            remaining=0,
            reset=int(NOW) + 20,
        ),
        lambda r: ok(envelope([record(3)], [])),
    )
    client, sleeps = make_client(handler)
    assert len(list(client.iter_records("users"))) == 3
    assert sleeps[0] == pytest.approx(20 / 4)
    assert 15 <= sleeps[1] <= 16
    assert client.stats.slowdowns == 2


def test_a_502_is_retried_with_backoff() -> None:
    handler = Recorder(
        lambda r: httpx.Response(502, text="upstream connect error", headers={"content-type": "text/plain"}),
        lambda r: ok(envelope([record(1)], [])),
    )
    client, sleeps = make_client(handler)
    assert len(list(client.iter_records("users"))) == 1
    assert client.stats.retries == 1
    assert 0.25 <= sleeps[0] <= 0.5


def test_a_dropped_connection_is_retried() -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)

    handler = Recorder(drop, lambda r: ok(envelope([record(1)], [])))
    client, _ = make_client(handler)
    assert len(list(client.iter_records("users"))) == 1
    assert client.stats.retries == 1


def test_retries_are_bounded_and_the_error_names_the_path() -> None:
    handler = Recorder(*[lambda r: httpx.Response(503) for _ in range(10)])
    client, sleeps = make_client(handler, max_retries=3)
    with pytest.raises(
        CleverApiError, match=r"GET /v3.0/users\?limit=10000 failed after 4 attempts \(HTTP 503\)"
    ):
        list(client.iter_records("users"))
    assert len(handler.requests) == 4
    assert sleeps == sorted(sleeps)


def test_401_is_an_auth_error_that_says_what_to_check_and_never_shows_the_token() -> None:
    handler = Recorder(
        lambda r: httpx.Response(401, json={"message": f"invalid token {TOKEN}"}),
    )
    client, _ = make_client(handler)
    with pytest.raises(CleverAuthError) as caught:
        list(client.iter_records("users"))
    message = str(caught.value)
    assert "CLEVER_TOKEN" in message
    assert "401" in message
    assert TOKEN not in message
    assert len(handler.requests) == 1
    assert TOKEN not in repr(client)


def test_an_html_404_reports_the_path_without_parsing_it_as_json() -> None:
    page = (
        "<!DOCTYPE html>\n<html><head><title>Error</title></head>"
        "<body><pre>Cannot GET /v3.0/xyz</pre></body></html>"
    )
    handler = Recorder(
        lambda r: httpx.Response(404, text=page, headers={"content-type": "text/html; charset=utf-8"})
    )
    client, _ = make_client(handler)
    with pytest.raises(
        CleverApiError, match=r"Clever has no /v3.0/xyz\?limit=10000 \(404: Cannot GET /v3.0/xyz\)"
    ):
        list(client.iter_records("xyz"))


def test_a_200_that_is_not_json_is_refused() -> None:
    handler = Recorder(
        lambda r: httpx.Response(200, text="<html></html>", headers={"content-type": "text/html"})
    )
    client, _ = make_client(handler)
    with pytest.raises(CleverApiError, match="200 with text/html, not JSON"):
        list(client.iter_records("users"))


def test_413_says_the_page_size_is_too_big() -> None:
    handler = Recorder(lambda r: httpx.Response(413, json={"message": "Request Entity Too Large"}))
    client, _ = make_client(handler)
    with pytest.raises(CleverApiError, match="at most 10000"):
        list(client.iter_records("users"))


def test_a_next_link_to_another_host_is_refused() -> None:
    handler = Recorder(
        lambda r: ok(envelope([record(1)], [{"rel": "next", "uri": "https://evil.example/v3.0/users"}]))
    )
    client, _ = make_client(handler)
    with pytest.raises(CleverApiError, match=r"leaves https://api\.clever\.com"):
        list(client.iter_records("users"))
    assert len(handler.requests) == 1


def test_a_next_link_that_repeats_a_page_is_an_error_not_a_loop() -> None:
    loop = [{"rel": "next", "uri": "/v3.0/users?limit=10000"}]
    handler = Recorder(lambda r: ok(envelope([record(1)], loop)))
    client, _ = make_client(handler)
    with pytest.raises(CleverApiError, match="repeats a page"):
        list(client.iter_records("users"))


def test_records_keep_the_bytes_clever_sent_even_when_escaped_or_spaced() -> None:
    body = (
        b'{ "data" : [ {"uri": "/v3.0/users/1", "data": {"name": "Jos\\u00e9", "id": "1", "lat": 1.50}},\n'
        b'  {"data": {"id": "2", "tags": ["a", {"b": "}"}]}, "uri": "/v3.0/users/2"} ], "links": [] }'
    )
    handler = Recorder(lambda r: ok(body))
    client, _ = make_client(handler)
    (page,) = client.iter_pages("users")
    assert page.raw == [
        b'{"name": "Jos\\u00e9", "id": "1", "lat": 1.50}',
        b'{"id": "2", "tags": ["a", {"b": "}"}]}',
    ]
    assert page.records[0]["name"] == "José"
    assert client.stats.reserialised_records == 0


def test_a_compact_page_is_cut_into_json_lines_with_the_bytes_as_sent() -> None:
    records = [record(1), {"id": "2", "name": 'Zoë "Z" O\'Neil', "tags": ["}", "{"]}, record(3)]
    body = envelope(records, [{"rel": "next", "uri": "/v3.0/users?starting_after=3"}])
    lines, count, links = split_list_body(body) or (b"", 0, [])
    assert lines.split(b"\n") == [orjson.dumps(r) for r in records]
    assert count == 3
    assert links == [{"rel": "next", "uri": "/v3.0/users?starting_after=3"}]
    client, _ = make_client(Recorder(lambda r: ok(envelope(records, []))))
    (page,) = client.iter_pages("users")
    assert page.table is not None
    assert page.table.column("id").to_pylist() == [r["id"] for r in records]
    assert page.records == records


def test_a_record_that_looks_like_the_envelope_inside_is_still_cut_right() -> None:
    trap = {"id": "2", "list": [{"data": {}, "uri": "x"}, {"data": {"uri": "y"}}], "uri": "z"}
    records = [record(1), trap, record(3)]
    client, _ = make_client(Recorder(lambda r: ok(envelope(records, []))))
    (page,) = client.iter_pages("users")
    assert page.raw == [orjson.dumps(r) for r in records]
    assert page.records == records


def test_items_in_another_order_take_the_slow_path_and_keep_their_bytes() -> None:
    body = b'{"data":[{"uri":"/v3.0/users/1","data":{"id":"1"}},{"uri":"/v3.0/users/2","data":{"id":"2"}}],"links":[]}'
    client, _ = make_client(Recorder(lambda r: ok(body)))
    (page,) = client.iter_pages("users")
    assert page.raw == [b'{"id":"1"}', b'{"id":"2"}']
    assert page.table is not None
    assert page.table.column("id").to_pylist() == ["1", "2"]


def test_the_next_page_is_requested_while_this_one_is_read_but_never_after_an_empty_page() -> None:
    handler = Recorder(
        lambda r: ok(envelope([record(1)], [{"rel": "next", "uri": "/v3.0/users?starting_after=1"}])),
        lambda r: ok(envelope([], [{"rel": "next", "uri": "/v3.0/users?starting_after=2"}])),
    )
    client, _ = make_client(handler)
    pages = client.iter_pages("users")
    next(pages)
    assert list(pages) == []
    assert len(handler.requests) == 2


def test_compact_utf8_records_are_found_without_the_tokenizer() -> None:
    records = [{"id": "1", "name": "Zoë"}, {"id": "2", "name": "Ωmega"}]
    body = envelope(records, [])
    assert raw_record_spans(body, records) == [orjson.dumps(r) for r in records]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"page_size": 0}, "between 1 and 10000"),
        ({"page_size": CLEVER_MAX_PAGE_SIZE + 1}, "between 1 and 10000"),
        ({"api_base": "https://api.clever.com/v3.0"}, "give only the scheme and host"),
        ({"api_base": "api.clever.com"}, "not an http"),
        ({"api_version": "v2.1"}, "unsupported Clever API version"),
    ],
)
def test_settings_are_checked_before_any_request(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"api_base": HOST, "api_version": "v3.0", **kwargs}
    with pytest.raises(UsageError, match=message):
        CleverClient(TOKEN, transport=httpx.MockTransport(Recorder()), **arguments)


@pytest.mark.parametrize("status", [401, 404, 503])
def test_an_echoed_token_is_redacted_before_the_detail_is_cut(status: int) -> None:
    # The token straddles the 200-character cut: redacting after cutting would leave its first half.
    body = {"message": "x" * 150 + f" Authorization: Bearer {TOKEN.upper()} (echoed)"}
    handler = Recorder(*[lambda r: httpx.Response(status, json=body)] * 3)
    progress: list[str] = []
    client, _ = make_client(handler, max_retries=2, progress=progress.append)
    with pytest.raises((CleverAuthError, CleverApiError)) as caught:
        list(client.iter_records("users"))
    for text in (str(caught.value), *progress):
        assert "[redac" in text
        assert not any(TOKEN[i : i + 8] in text.lower() for i in range(len(TOKEN) - 7)), text
