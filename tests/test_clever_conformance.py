"""The client against Clever's real recorded traffic (the reference recordings beside the repository, see
tests/conftest.py: their cassettes).

Those are Ruby VCR cassettes (not vcrpy's layout); the few fields needed are read here and answered through
httpx.MockTransport. Requests match on path and query, except ``limit``: the recordings' first pages were
fetched without it and the client always sends one.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from clever2sis.clever.client import CleverClient
from clever2sis.errors import CleverApiError
from tests.conftest import REFERENCE

RECORDED = REFERENCE / "clever-recorded" / "cassettes"

pytestmark = pytest.mark.skipif(
    not RECORDED.is_dir(), reason=f"real Clever recordings not available at {RECORDED}"
)

PAGED = ("courses", "schools", "sections", "terms", "users")


def load(cassette: Path) -> list[dict[str, Any]]:
    return list(yaml.safe_load(cassette.read_text(encoding="utf-8"))["http_interactions"])


def key(url: httpx.URL | str) -> tuple[str, tuple[tuple[str, str], ...]]:
    url = httpx.URL(str(url))
    return url.path, tuple(sorted((k, v) for k, v in url.params.multi_items() if k != "limit"))


class Replay:
    """Answers requests from recorded interactions, and remembers what was asked."""

    def __init__(self, interactions: list[dict[str, Any]]) -> None:
        self.answers = {key(i["request"]["uri"]): i["response"] for i in interactions}
        self.requested: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requested.append(str(request.url))
        recorded = self.answers.get(key(request.url))
        if recorded is None:
            return httpx.Response(599, text=f"not recorded: {request.url}")
        headers = [(name, value) for name, values in recorded["headers"].items() for value in values]
        headers = [(n, v) for n, v in headers if n.lower() not in ("content-length", "content-encoding")]
        body = recorded["body"]["string"].encode("utf-8")
        return httpx.Response(recorded["status"]["code"], headers=headers, content=body)


def client_for(replay: Replay) -> CleverClient:
    return CleverClient("TEST_TOKEN", "https://api.clever.com", "v3.0", transport=httpx.MockTransport(replay))


@pytest.mark.parametrize("collection", PAGED)
def test_recorded_pages_parse_and_their_next_links_are_followed(collection: str) -> None:
    interactions = load(RECORDED / "client" / f"{collection}_next.yml")
    first, second = (orjson.loads(i["response"]["body"]["string"]) for i in interactions)
    replay = Replay(interactions)
    last_headers = interactions[1]["response"]["headers"]
    reset_at = int(last_headers["x-ratelimit-reset"][0])
    # The recorded window's clock, so that the window is still open when the pages are read.
    with CleverClient(
        "TEST_TOKEN",
        "https://api.clever.com",
        "v3.0",
        transport=httpx.MockTransport(replay),
        clock=lambda: reset_at - 30.0,
    ) as client:
        iterator = client.iter_pages(collection)
        pages = list(itertools.islice(iterator, 2))
        iterator.close()  # waits for the request of page 3 (sent while page 2 was read; not recorded)
        next_link = next(link["uri"] for link in first["links"] if link["rel"] == "next")
        assert replay.requested[1] == f"https://api.clever.com{next_link}"
        assert [page.records for page in pages] == [
            [item["data"] for item in first["data"]],
            [item["data"] for item in second["data"]],
        ]
        prefetched = len(replay.requested) - 2
        assert client.limiter.remaining == int(last_headers["x-ratelimit-remaining"][0]) - prefetched
        assert client.limiter.reset_at == reset_at
        assert client.limiter.limit == 1200
    for page, interaction in zip(pages, interactions, strict=True):
        body = interaction["response"]["body"]["string"].encode("utf-8")
        assert all(raw in body for raw in page.raw)
        assert [orjson.loads(raw) for raw in page.raw] == page.records


@pytest.mark.parametrize("collection", PAGED)
def test_recorded_pages_with_a_limit_and_a_starting_after_parse_losslessly(collection: str) -> None:
    for variant in ("with_limit", "with_starting_after"):
        (interaction,) = load(RECORDED / "client" / f"{collection}_{variant}.yml")
        interaction["request"]["uri"] = f"https://api.clever.com/v3.0/{collection}"  # served as a first page
        replay = Replay([interaction])
        with client_for(replay) as client:
            (page,) = itertools.islice(client.iter_pages(collection), 1)
        recorded = orjson.loads(interaction["response"]["body"]["string"])
        assert page.records == [item["data"] for item in recorded["data"]]
        assert client.stats.reserialised_records == 0


def test_the_recorded_html_404_is_reported_with_its_path() -> None:
    replay = Replay(load(RECORDED / "api" / "resources_teacher.yml"))
    with client_for(replay) as client, pytest.raises(CleverApiError) as caught:
        list(client.iter_records("resources"))
    assert "Clever has no /v3.0/resources" in str(caught.value)
    assert "Cannot GET /v3.0/resources" in str(caught.value)
    assert client.limiter.remaining == 1199
