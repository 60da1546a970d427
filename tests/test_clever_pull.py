"""pull_district against the local Clever test server: exact records, dangling references, no half-writes."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pyarrow as pa
import pytest

from clever2sis.clever.client import CleverClient, Page
from clever2sis.clever.pull import pull_district
from clever2sis.clever.snapshot import COLLECTIONS, Snapshot
from clever2sis.errors import CleverApiError, CleverAuthError, SnapshotError, UsageError
from tests.clever_server import CleverTestServer, Faults, district_from_snapshot
from tests.conftest import reparsed
from tests.synthetic import write_district

TOKEN = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    source = write_district(tmp_path_factory.mktemp("source") / "district", 240, seed=3, dangling=True)
    return district_from_snapshot(source)


def assert_snapshot_equals_served(dest: Path, server: CleverTestServer) -> Snapshot:
    snapshot = Snapshot.open(dest)
    for name in COLLECTIONS:
        assert snapshot.read_bytes(name).splitlines() == server.served_lines(name), name
    return snapshot


def assert_columnar_copy_is_the_jsonl_parsed(dest: Path, tmp_path: Path) -> None:
    """Every collection's columnar copy is byte for byte the one parsing its JSONL gives."""
    again = reparsed(dest, tmp_path / "reparsed")
    manifest = Snapshot.open(dest).manifest
    assert manifest["columnar"] == Snapshot.open(again).manifest["columnar"]
    for name in manifest["columnar"]["collections"]:
        assert (dest / f"{name}.arrow").read_bytes() == (again / f"{name}.arrow").read_bytes(), name


def fast_client(server: CleverTestServer, **kwargs: object) -> CleverClient:
    """A client whose backoff waits are short: the server's windows are real, so real sleep is used."""
    return CleverClient(TOKEN, server.url, "v3.0", rng=random.Random(1), **kwargs)  # type: ignore[arg-type]


def test_pull_writes_exactly_the_served_records_and_counts_dangling_references(
    district: dict[str, list[bytes]], tmp_path: Path
) -> None:
    messages: list[str] = []
    with CleverTestServer(district, token=TOKEN) as server, fast_client(server, page_size=37) as client:
        manifest = pull_district(client, tmp_path / "snap", progress=messages.append)
    snapshot = assert_snapshot_equals_served(tmp_path / "snap", server)
    assert snapshot.manifest == manifest
    assert manifest["source"] == "clever-api"
    assert manifest["api_base"] == server.url
    assert manifest["district"]["name"] == "Synthetic District 3"
    assert manifest["started_at"] <= manifest["finished_at"]
    assert manifest["dangling_references"] == {
        "sections.students": 1,
        "sections.teachers": 0,
        "sections.teacher": 0,
        "sections.course": 1,
        "sections.term_id": 0,
        "sections.school": 0,
        "users.contact.student_relationships": 1,
    }
    users = manifest["collections"]["users"]["records"]
    assert manifest["pull"]["pages"]["users"] == -(-users // 37)
    assert manifest["pull"]["reserialised_records"] == 0
    assert any(m.startswith("users: page 2,") for m in messages)
    assert TOKEN not in orjson.dumps(manifest).decode()
    assert [p.name for p in tmp_path.iterdir()] == ["snap"]
    assert set(manifest["columnar"]["collections"]) == set(COLLECTIONS)
    assert_columnar_copy_is_the_jsonl_parsed(tmp_path / "snap", tmp_path)


class RecordPagesClient(CleverClient):
    """A client whose ``fallback`` pages come without their Arrow table, as pages Arrow cannot parse do."""

    def __init__(self, *args: object, fallback: set[tuple[str, int]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fallback = fallback

    def iter_pages(self, collection: str, schema: pa.Schema) -> Iterator[Page]:  # type: ignore[override]
        for page in super().iter_pages(collection, schema):
            if (collection, page.number) in self.fallback:
                page = dataclasses.replace(page, table=None)
            yield page


def test_a_page_kept_record_by_record_still_gives_the_copy_the_jsonl_gives(
    district: dict[str, list[bytes]], tmp_path: Path
) -> None:
    fallback = {("users", 2), ("sections", 1), ("terms", 1)}
    with (
        CleverTestServer(district, token=TOKEN) as server,
        RecordPagesClient(TOKEN, server.url, "v3.0", page_size=37, fallback=fallback) as client,
    ):
        manifest = pull_district(client, tmp_path / "snap")
    assert_snapshot_equals_served(tmp_path / "snap", server)
    assert set(manifest["columnar"]["collections"]) == set(COLLECTIONS)
    assert_columnar_copy_is_the_jsonl_parsed(tmp_path / "snap", tmp_path)
    assert sorted(p.name for p in (tmp_path / "snap").iterdir()) == sorted(
        [
            *(f"{name}.jsonl" for name in COLLECTIONS),
            *(f"{name}.arrow" for name in COLLECTIONS),
            "manifest.json",
        ]
    )


def test_the_rate_limit_and_faults_are_survived_and_change_nothing(
    district: dict[str, list[bytes]], tmp_path: Path
) -> None:
    faults = Faults(bad_gateway=0.08, dropped=0.08, throttled=0.03, seed=11)
    with (
        CleverTestServer(district, token=TOKEN, rate_limit=12, window_s=1, faults=faults) as server,
        fast_client(server, page_size=40) as client,
    ):
        manifest = pull_district(client, tmp_path / "snap")
    assert_snapshot_equals_served(tmp_path / "snap", server)
    stats = manifest["pull"]
    assert stats["requests"] == server.stats["requests"]
    assert stats["throttled"] == server.stats["status_429"] > 0
    assert stats["retries"] == server.stats["status_502"] + server.stats["dropped"] > 0


def test_a_failed_collection_is_named_and_leaves_nothing_behind(
    district: dict[str, list[bytes]], tmp_path: Path
) -> None:
    without_terms = {name: lines for name, lines in district.items() if name != "terms"}
    with (
        CleverTestServer(without_terms, token=TOKEN) as server,
        fast_client(server) as client,
        pytest.raises(CleverApiError, match=r"pulling terms failed: Clever has no /v3\.0/terms"),
    ):
        pull_district(client, tmp_path / "snap")
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_token_is_an_auth_error(district: dict[str, list[bytes]], tmp_path: Path) -> None:
    with (
        CleverTestServer(district, token=TOKEN) as server,
        CleverClient("not-the-token", server.url) as client,
        pytest.raises(CleverAuthError) as caught,
    ):
        pull_district(client, tmp_path / "snap", workers=1)
    assert "not-the-token" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_destination_is_refused_before_any_request(tmp_path: Path) -> None:
    (tmp_path / "snap").mkdir()
    client = CleverClient(TOKEN, transport=httpx.MockTransport(lambda request: pytest.fail("no request")))
    with pytest.raises(UsageError, match="already exists"):
        pull_district(client, tmp_path / "snap")


def test_replace_swaps_in_the_new_snapshot_only_when_whole(
    district: dict[str, list[bytes]], tmp_path: Path
) -> None:
    dest = tmp_path / "snap"
    dest.mkdir()
    (dest / "old").write_text("old")
    with CleverTestServer(district, token=TOKEN) as server, fast_client(server) as client:
        pull_district(client, dest, replace=True)
    assert not (dest / "old").exists()
    assert_snapshot_equals_served(dest, server)


def test_duplicates_across_pages_are_dropped(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        collection = request.url.path.rsplit("/", 1)[1]
        ids = ["a1", "a2", "a3"] if collection == "users" else [f"{collection}1"]
        after = request.url.params.get("starting_after")
        page = ids[:2] if after is None else ids[1:]  # the second page repeats "a2"
        items = [
            {
                "data": {"id": i, "name": {"first": i} if collection == "users" else i},
                "uri": f"/v3.0/{collection}/{i}",
            }
            for i in page
        ]
        links = (
            [{"rel": "next", "uri": f"/v3.0/{collection}?starting_after={page[-1]}"}] if after is None else []
        )
        body = orjson.dumps({"data": items, "links": links})
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    client = CleverClient(TOKEN, transport=httpx.MockTransport(answer), sleep=lambda s: None)
    manifest = pull_district(client, tmp_path / "snap", workers=2)
    assert manifest["collections"]["users"]["records"] == 3
    assert manifest["pull"]["duplicates_dropped"]["users"] == 1
    lines = (tmp_path / "snap" / "users.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["id"] for line in lines] == ["a1", "a2", "a3"]
    users = Snapshot.open(tmp_path / "snap").read_columnar("users")
    assert users is not None
    assert users.column("id").to_pylist() == ["a1", "a2", "a3"]
    assert_columnar_copy_is_the_jsonl_parsed(tmp_path / "snap", tmp_path)


def test_records_that_do_not_fit_the_arrow_schema_are_kept_and_counted_the_same(tmp_path: Path) -> None:
    odd = {
        "users": [{"id": "u1", "roles": {"student": {}}}, {"id": "u2", "roles": "not an object"}],
        "sections": [
            {"id": "s1", "students": "u1", "teachers": ["u2", 7, ""], "course": "gone"},
            {"id": "s2", "students": ["u1", "u9", None]},
        ],
    }

    def answer(request: httpx.Request) -> httpx.Response:
        collection = request.url.path.rsplit("/", 1)[1]
        records = odd.get(collection, [{"id": f"{collection}1", "name": collection}])
        items = [{"data": r, "uri": f"/v3.0/{collection}/{r['id']}"} for r in records]
        body = orjson.dumps({"data": items, "links": []})
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    client = CleverClient(TOKEN, transport=httpx.MockTransport(answer), sleep=lambda s: None)
    manifest = pull_district(client, tmp_path / "snap")
    lines = (tmp_path / "snap" / "sections.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == odd["sections"]
    assert manifest["collections"]["users"]["records"] == 2
    assert manifest["dangling_references"]["sections.students"] == 1
    assert manifest["dangling_references"]["sections.teachers"] == 0
    assert manifest["dangling_references"]["sections.course"] == 1
    # Records that do not fit the build's schema get no columnar copy (the build reports them from the JSONL).
    assert set(manifest["columnar"]["collections"]) == {"districts", "schools", "terms", "courses"}
    assert not (tmp_path / "snap" / "users.arrow").exists()


def test_an_interrupted_pull_leaves_nothing_behind(district: dict[str, list[bytes]], tmp_path: Path) -> None:
    calls = 0

    def progress(message: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt

    with CleverTestServer(district, token=TOKEN) as server, fast_client(server, page_size=10) as client:
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            pull_district(client, tmp_path / "snap", progress=progress)
        assert time.monotonic() - started < 30
    assert list(tmp_path.iterdir()) == []


def test_a_disk_full_while_writing_is_a_snapshot_error_naming_the_file_and_leaves_nothing(
    district: dict[str, list[bytes]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clever2sis.clever import snapshot as snapshot_module

    append = snapshot_module._CollectionFile._append

    def disk_full_at_users(self, lines, count, table):  # type: ignore[no-untyped-def]
        if self.path.name == "users.jsonl":
            raise OSError(28, "No space left on device", str(self.path))
        return append(self, lines, count, table)

    monkeypatch.setattr(snapshot_module._CollectionFile, "_append", disk_full_at_users)
    dest = tmp_path / "snap"
    with (
        CleverTestServer(district, token=TOKEN) as server,
        fast_client(server) as client,
        pytest.raises(SnapshotError) as caught,
    ):
        pull_district(client, dest)
    assert str(caught.value).startswith(f"cannot write the snapshot to {dest}: No space left on device (")
    assert str(caught.value).endswith("users.jsonl)")
    assert list(tmp_path.iterdir()) == []


def test_out_of_order_ids_are_counted_on_every_kind_of_page(tmp_path: Path) -> None:
    pages = {
        # all new (read whole), then a repeated id (read record by record): b1 and a0 come after a later id
        "users": [["b2", "b1"], ["b1", "a0", "c3"]],
        # records that do not fit the Arrow schema (kept in Python): s1 comes after s2
        "sections": [["s2", "s1"]],
    }

    def answer(request: httpx.Request) -> httpx.Response:
        collection = request.url.path.rsplit("/", 1)[1]
        chain = pages.get(collection, [[f"{collection}1"]])
        number = int(request.url.params.get("starting_after", "0-").split("-")[0] or 0)
        records = [
            {"id": i, "students": "not a list"} if collection == "sections" else {"id": i}
            for i in chain[number]
        ]
        items = [{"data": r, "uri": f"/v3.0/{collection}/{r['id']}"} for r in records]
        more = number + 1 < len(chain)
        links = [{"rel": "next", "uri": f"/v3.0/{collection}?starting_after={number + 1}-x"}] if more else []
        body = orjson.dumps({"data": items, "links": links})
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    client = CleverClient(TOKEN, transport=httpx.MockTransport(answer), sleep=lambda s: None)
    manifest = pull_district(client, tmp_path / "snap")
    assert manifest["pull"]["ids_out_of_order"]["users"] == 2
    assert manifest["pull"]["duplicates_dropped"]["users"] == 1
    assert manifest["pull"]["ids_out_of_order"]["sections"] == 1
    assert manifest["collections"]["users"]["records"] == 4
