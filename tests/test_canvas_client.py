"""The requester against ``httpx.MockTransport``: retries, status mapping, pagination, token hygiene."""

from __future__ import annotations

import httpx
import pytest

from clever2sis.canvas.client import CanvasClient, RetryPolicy, safe_url
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

BASE = "https://canvas.test"
TOKEN = "secret-token-abc"
JSON = {"content-type": "application/json"}


class Recorder:
    """A transport handler that answers from a list, and remembers every request and every sleep."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, **kwargs: object) -> CanvasClient:
        return CanvasClient(
            BASE,
            TOKEN,
            transport=httpx.MockTransport(self),
            sleep=self.sleeps.append,
            **kwargs,  # type: ignore[arg-type]
        )


def ok(body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(200, json=body, headers=headers)


def rate_limited() -> httpx.Response:
    return httpx.Response(
        403, text="403 Forbidden (Rate Limit Exceeded)", headers={"content-type": "text/plain"}
    )


def test_token_is_sent_as_bearer_and_hidden_from_repr() -> None:
    recorder = Recorder(ok({"id": 1}))
    client = recorder.client()
    client.get_json("/api/v1/accounts/1")
    assert recorder.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in repr(client)
    assert str(recorder.requests[0].url) == f"{BASE}/api/v1/accounts/1"


def test_rate_limit_403_backs_off_then_succeeds() -> None:
    recorder = Recorder(rate_limited(), rate_limited(), ok({"id": 1}))
    assert recorder.client().get_json("/x") == {"id": 1}
    assert recorder.sleeps == [1.0, 2.0]


def test_rate_limit_honours_a_longer_retry_after() -> None:
    throttled = httpx.Response(403, text="Rate Limit Exceeded", headers={"retry-after": "7"})
    recorder = Recorder(throttled, ok({}))
    recorder.client().get_json("/x")
    assert recorder.sleeps == [7.0]


def test_rate_limit_gives_up_after_bounded_attempts() -> None:
    recorder = Recorder(*[rate_limited() for _ in range(3)])
    with pytest.raises(CanvasUnavailableError, match=r"rate limited.*3 attempts"):
        recorder.client(retry=RetryPolicy(max_attempts=3)).get_json("/x")
    assert len(recorder.requests) == 3


def test_retries_stop_at_the_total_sleep_budget() -> None:
    recorder = Recorder(*[httpx.Response(502) for _ in range(10)])
    policy = RetryPolicy(max_attempts=10, first_delay_s=4, max_total_sleep_s=10)
    with pytest.raises(CanvasUnavailableError, match="HTTP 502"):
        recorder.client(retry=policy).get_json("/x")
    assert sum(recorder.sleeps) <= 10


def test_plain_403_is_a_permission_error_and_not_retried() -> None:
    recorder = Recorder(httpx.Response(403, json={"errors": [{"message": "user not authorized"}]}))
    with pytest.raises(CanvasPermissionError, match=r"permission denied.*user not authorized"):
        recorder.client().get_json("/x")
    assert recorder.sleeps == []


def test_500_on_get_is_retried() -> None:
    recorder = Recorder(httpx.Response(500), httpx.Response(503), ok({"id": 2}))
    assert recorder.client().get_json("/x") == {"id": 2}
    assert len(recorder.sleeps) == 2


def test_network_error_on_get_is_retried() -> None:
    recorder = Recorder(httpx.ReadError("reset"), ok({"id": 3}))
    assert recorder.client().get_json("/x") == {"id": 3}


def _post(client: CanvasClient) -> object:
    return client.post_file(
        "/p", [("a", "b")], field="attachment", filename="f.zip", open_file=lambda: _Bytes()
    )


class _Bytes:
    def __enter__(self) -> _Bytes:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def read(self, size: int = -1) -> bytes:
        return b""


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (httpx.Response(500, text="Internal Server Error"), "HTTP 500 (Internal Server Error)"),
        (httpx.Response(503, text="<html>busy</html>"), "HTTP 503 (<html>busy</html>)"),
        (httpx.ReadTimeout("slow"), "network error (ReadTimeout)"),
    ],
)
def test_post_is_not_retried_after_a_5xx_or_a_lost_response(
    answer: httpx.Response | Exception, problem: str
) -> None:
    recorder = Recorder(answer)
    with pytest.raises(PostOutcomeUnknownError) as caught:
        _post(recorder.client())
    assert str(caught.value) == (
        f"POST {BASE}/p: {problem} after the request was sent; it may have reached Canvas"
    )
    assert caught.value.exit_code == CanvasUnavailableError.exit_code == 38
    assert len(recorder.requests) == 1
    assert recorder.sleeps == []


def test_post_is_retried_when_it_never_left_or_was_throttled() -> None:
    recorder = Recorder(httpx.ConnectError("refused"), rate_limited(), ok({"id": 4}))
    assert _post(recorder.client()) == {"id": 4}
    assert len(recorder.requests) == 3


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        (
            httpx.Response(401, json={"errors": [{"message": "Invalid access token."}]}),
            CanvasAuthError,
            "MY_TOKEN",
        ),
        (
            httpx.Response(400, json={"errors": ["SIS imports can only be executed on root accounts"]}),
            NotRootAccountError,
            "root account id",
        ),
        (
            httpx.Response(403, json={"errors": ["SIS imports are not enabled for this account"]}),
            SisImportsDisabledError,
            "not enabled",
        ),
        (
            httpx.Response(
                400,
                json={"message": "Batch mode specified, but the given batch_mode_term_id cannot be found."},
            ),
            UnknownBatchTermError,
            "batch_mode_term_id",
        ),
        (httpx.Response(404, json={}), CanvasNotFoundError, "not found"),
        (httpx.Response(422, json={"error_message": "nope"}), CanvasError, "HTTP 422: nope"),
    ],
)
def test_statuses_map_to_errors(response: httpx.Response, error: type[Exception], message: str) -> None:
    recorder = Recorder(response)
    with pytest.raises(error, match=message) as raised:
        recorder.client(token_source="MY_TOKEN").get_json("/x")
    assert TOKEN not in str(raised.value)
    assert type(raised.value) is error


def test_non_json_answer_is_an_error() -> None:
    recorder = Recorder(
        httpx.Response(200, text="<html>maintenance</html>", headers={"content-type": "text/html"})
    )
    with pytest.raises(CanvasError, match="expected JSON"):
        recorder.client().get_json("/x")


def _link(url: str) -> dict[str, str]:
    return {"link": f'<{url}>; rel="next", <{BASE}/l?page=1>; rel="first"'}


def test_pagination_follows_link_headers_and_unwraps() -> None:
    recorder = Recorder(
        ok({"items": [1, 2]}, _link(f"{BASE}/l?page=2&per_page=2")),
        ok({"items": [3]}, {"link": f'<{BASE}/l?page=1>; rel="first"'}),
    )
    assert list(recorder.client().paginate("/l", "items", {"per_page": "2"})) == [1, 2, 3]
    assert recorder.requests[0].url.params["per_page"] == "2"
    assert str(recorder.requests[1].url) == f"{BASE}/l?page=2&per_page=2"


def test_pagination_stops_on_a_repeated_next_link() -> None:
    loop = f"{BASE}/l?page=2"
    recorder = Recorder(ok({"items": [1]}, _link(loop)), ok({"items": [2]}, _link(loop)))
    assert list(recorder.client().paginate("/l", "items")) == [1, 2]


def test_pagination_refuses_links_to_another_host() -> None:
    recorder = Recorder(ok({"items": [1]}, _link("https://evil.test/steal")))
    with pytest.raises(CanvasError, match="another host"):
        list(recorder.client().paginate("/l", "items"))


def test_download_sends_the_token_only_to_canvas() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"csv")

    client = CanvasClient(BASE, TOKEN, transport=httpx.MockTransport(handler))
    assert client.download(f"{BASE}/files/1/download?verifier=v") == b"csv"
    assert client.download("https://files.instructure.test/x?sig=s") == b"csv"
    assert seen[0].headers.get("authorization") == f"Bearer {TOKEN}"
    assert "authorization" not in seen[1].headers


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://u:p@c.test:8443/f/1?verifier=x#y", "https://c.test:8443/f/1"),
        ("https://c.test/a", "https://c.test/a"),
    ],
)
def test_safe_url_drops_query_and_credentials(url: str, safe: str) -> None:
    assert safe_url(url) == safe


CANVAS_TOKEN = "7~" + "Kp3Xw9Lm2Qr8" * 5 + "Zt4V"


@pytest.mark.parametrize(
    ("status", "error"), [(401, CanvasAuthError), (403, CanvasPermissionError), (500, CanvasUnavailableError)]
)
def test_an_echoed_token_is_redacted_before_the_message_is_cut(status: int, error: type[Exception]) -> None:
    # The token straddles the 200-character cut: redacting after cutting would leave its first half.
    body = {"errors": [{"message": "x" * 150 + f" Authorization: Bearer {CANVAS_TOKEN.lower()} (echoed)"}]}
    recorder = Recorder(*[httpx.Response(status, json=body)] * 6)
    progress: list[str] = []
    client = CanvasClient(
        BASE,
        CANVAS_TOKEN,
        transport=httpx.MockTransport(recorder),
        sleep=recorder.sleeps.append,
        progress=progress.append,
    )
    with pytest.raises(error) as raised:
        client.get_json("/x")
    assert len(progress) == (5 if status == 500 else 0)
    for text in (str(raised.value), *progress):
        assert "Bearer [redacted]" in text
        assert not any(
            CANVAS_TOKEN[i : i + 8].lower() in text.lower() for i in range(len(CANVAS_TOKEN) - 7)
        ), text


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_a_5xx_on_get_or_put_is_retried_then_exits_38_as_canvas_unavailable(method: str) -> None:
    recorder = Recorder(*[httpx.Response(503) for _ in range(3)])
    client = recorder.client(retry=RetryPolicy(max_attempts=3))
    with pytest.raises(CanvasUnavailableError) as caught:
        client.get_json("/x") if method == "GET" else client.put_json("/x")
    assert str(caught.value) == f"{method} {BASE}/x: HTTP 503; gave up after 3 attempts"
    assert caught.value.exit_code == 38
    assert not isinstance(caught.value, PostOutcomeUnknownError)
    assert [request.method for request in recorder.requests] == [method] * 3
