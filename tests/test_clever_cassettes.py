"""Replays of vcrpy cassettes recorded from the local Clever test server (tests/clever_server.py).

The cassettes hold a whole pull of a small synthetic district (several pages per collection, a final empty
page, a 429 from the fixed-window limit) and the error answers (HTML 404, 401), with Clever's headers.
They replay without a server; a missing one is recorded on the next run, and
``CLEVER2SIS_RECORD=1 pytest tests/test_clever_cassettes.py`` re-records them;
the Authorization header is filtered out when recording, and a test checks that it stays out.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import vcr
import yaml

from clever2sis.clever.client import CleverClient
from clever2sis.clever.pull import pull_district
from clever2sis.clever.snapshot import COLLECTIONS, Snapshot
from clever2sis.errors import CleverApiError, CleverAuthError
from tests.clever_server import CleverTestServer, Faults
from tests.synthetic import district_records

CASSETTES = Path(__file__).parent / "cassettes" / "clever"
TOKEN = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
STUDENTS = 30
SEED = 9
PAGE_SIZE = 6  # 42 users: seven full pages, then the empty page a full one leads to
RECORDING = os.environ.get("CLEVER2SIS_RECORD") == "1"
# The server's port changes from run to run; everything else about a request must match.
MATCH_ON = ("method", "scheme", "host", "path", "query")


def served_records() -> dict[str, list[dict[str, Any]]]:
    return district_records(STUDENTS, seed=SEED, dangling=True)


@contextmanager
def clever_api(name: str, **server_options: Any) -> Iterator[tuple[str, bool]]:
    """(API base, recording?): a live local server while recording, any local URL while replaying."""
    cassette = CASSETTES / f"{name}.yaml"
    recording = RECORDING or not cassette.is_file()
    if recording:
        cassette.unlink(missing_ok=True)
    recorder = vcr.VCR(
        filter_headers=["authorization"],
        match_on=MATCH_ON,
        record_mode="all" if recording else "none",
        decode_compressed_response=True,
    )
    with ExitStack() as stack:
        if recording:
            lines = {n: [orjson.dumps(r) for r in records] for n, records in served_records().items()}
            server = stack.enter_context(CleverTestServer(lines, token=TOKEN, **server_options))
            base = server.url
        else:
            base = "http://127.0.0.1:8080"
        stack.enter_context(recorder.use_cassette(str(cassette)))
        yield base, recording


def no_sleep(seconds: float) -> None:
    """Replays need no waiting: the recorded resets are long past."""


def replay_client(base: str, recording: bool) -> CleverClient:
    sleep = time.sleep if recording else no_sleep
    return CleverClient(TOKEN, base, "v3.0", page_size=PAGE_SIZE, rng=random.Random(0), sleep=sleep)


def test_a_recorded_pull_replays_to_exactly_the_served_records(tmp_path: Path) -> None:
    faults = Faults(throttled=0.1, seed=4)
    with (
        clever_api("pull_small_district", faults=faults) as (base, recording),
        replay_client(base, recording) as client,
    ):
        manifest = pull_district(client, tmp_path / "snap", workers=1)
    snapshot = Snapshot.open(tmp_path / "snap")
    for name, records in served_records().items():
        assert snapshot.read_bytes(name).splitlines() == [orjson.dumps(r) for r in records], name
    assert manifest["pull"]["throttled"] >= 1
    assert manifest["pull"]["pages"]["users"] == 7
    assert manifest["dangling_references"]["sections.students"] == 1
    assert set(manifest["collections"]) == set(COLLECTIONS)
    assert set(manifest["columnar"]["collections"]) == set(COLLECTIONS)


def test_recorded_error_answers_map_to_clear_errors() -> None:
    with clever_api("errors") as (base, recording):
        with (
            replay_client(base, recording) as client,
            pytest.raises(CleverApiError, match=r"Cannot GET /v3\.0/resources"),
        ):
            list(client.iter_records("resources"))
        wrong = CleverClient("wrong-token", base, "v3.0", sleep=no_sleep)
        with wrong, pytest.raises(CleverAuthError, match="401"):
            list(wrong.iter_records("users"))


@pytest.mark.parametrize("cassette", sorted(CASSETTES.glob("*.yaml")), ids=lambda p: p.name)
def test_cassettes_hold_no_authorization_header_and_no_token(cassette: Path) -> None:
    text = cassette.read_text(encoding="utf-8")
    assert TOKEN not in text
    assert "wrong-token" not in text
    for interaction in yaml.safe_load(text)["interactions"]:
        assert not any(h.lower() == "authorization" for h in interaction["request"]["headers"])
        headers = {h.lower() for h in interaction["response"]["headers"]}
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= headers or (
            interaction["response"]["status"]["code"] == 401
        )
