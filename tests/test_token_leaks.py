"""A representative slice of the CLI with known tokens, against servers that echo them back: pull, build,
upload, status, list and two sync nights write into one directory, and no file there (nor any stdout or
stderr) holds either token, raw, in another case or in an encoding the redactor covers."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson
import pyarrow as pa
import pytest
from click.testing import CliRunner, Result

from clever2sis.canvas.intent import SETTLE_S
from clever2sis.cli import main
from clever2sis.cli.common import CanvasRuntime
from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas
from tests.clever_server import CleverTestServer, Faults
from tests.nightly_district import NightlyDistrict
from tests.test_sis_import import FakeTime

CLEVER_TOKEN = "e2e~c1ever~0123456789abcdef0123456789"


class EchoingCanvas(httpx.BaseTransport):
    """Passes requests to the local Canvas, except: every third GET, and the POSTs numbered in
    ``failing_posts``, are answered by an error whose body quotes the Authorization header (upper-cased
    too), as a misconfigured proxy in front of Canvas might."""

    def __init__(self, failing_posts: frozenset[int] = frozenset()) -> None:
        self.inner = httpx.HTTPTransport()
        self.failing_posts = failing_posts
        self.gets = self.posts = self.echoed = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if request.method == "GET":
                self.gets += 1
                echo, status = self.gets % 3 == 0, 503
            else:
                self.posts += request.method == "POST"
                echo, status = request.method == "POST" and self.posts in self.failing_posts, 500
            self.echoed += echo
        if not echo:
            return self.inner.handle_request(request)
        header = request.headers["Authorization"]
        message = f"proxy error for Authorization: {header} ({header.upper()})"
        return httpx.Response(status, json={"errors": [{"message": message}]}, request=request)


def forms(token: str) -> list[str]:
    """The token as a leak could show it: raw (any case: haystacks are lower-cased), URL-encoded by
    today's and by older encoders, JSON-escaped."""
    return sorted(
        {
            token.lower(),
            quote(token, safe="").lower(),
            token.replace("~", "%7e").lower(),
            orjson.dumps(token).decode()[1:-1].lower(),
        }
    )


def readable(path: Path) -> Iterator[str]:
    """The text a file holds, decoded the way its format needs (zip members, Arrow tables, SQLite rows)."""
    data = path.read_bytes()
    yield data.decode("latin-1")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                yield archive.read(name).decode("latin-1")
    elif path.suffix == ".arrow":
        with pa.memory_map(str(path)) as source:
            yield str(pa.ipc.open_file(source).read_all().to_pylist())
    elif data.startswith(b"SQLite format 3\x00"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            yield "\n".join(db.iterdump())


def invoke(
    args: list[str],
    environ: Mapping[str, str],
    transport: httpx.BaseTransport | None = None,
    *,
    later_s: float = 0.0,
) -> Result:
    time = FakeTime()
    runtime = CanvasRuntime(
        environ=environ,
        transport=transport,
        sleep=time.sleep,
        clock=time.clock,
        attachment_wait_s=0,
        now=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(seconds=later_s),
    )
    return CliRunner().invoke(main, args, obj=runtime, env=dict(environ), catch_exceptions=False)


@pytest.mark.slow
def test_no_file_written_and_no_output_holds_a_token(tmp_path: Path) -> None:
    private, work = tmp_path / "private", tmp_path / "work"
    private.mkdir()
    work.mkdir()
    token_file = private / "clever.token"
    token_file.write_text(CLEVER_TOKEN + "\n")
    district = NightlyDistrict(private / "district", students=60)
    night = district.night(0)
    config = work / "clever2sis.toml"
    outputs: list[Result] = []

    with (
        CleverTestServer(night.served(), token=CLEVER_TOKEN, faults=Faults(echoed=0.25, seed=4)) as clever,
        CanvasTestServer(FakeCanvas(script=[("importing", 50), ("imported", 100)])) as canvas,
    ):
        config.write_text(
            f'[profiles.nightly]\nbase_url = "{canvas.base_url}"\naccount_id = 1\ntoken_env = "CANVAS_NIGHTLY"\n'
            'require_approval = false\n[upload]\nprofile = "nightly"\n[sync]\nruns_dir = "runs"\n'
        )
        env = {
            "CLEVER_TOKEN": "",
            "CLEVER_TOKEN_FILE": str(token_file),
            "CLEVER_API_BASE": clever.url,
            "CANVAS_NIGHTLY": TEST_TOKEN,
            "CLEVER2SIS_CONFIG": str(config),
        }
        echoing = EchoingCanvas(failing_posts=frozenset({2, 3}))
        # A POST answered 500 may still have reached Canvas: the night after the failed one runs once the
        # upload it left is known never to have arrived (SETTLE_S later), and so posts.
        later_s = SETTLE_S + 60
        steps = [
            (["pull", "--out", str(work / "snap"), "--workers", "1", "--page-size", "40"], 0, 0.0),
            (["build", str(work / "snap"), "--out", str(work / "build")], 0, 0.0),
            (["upload", str(work / "build"), "--wait", "--verbose"], 0, 0.0),
            (["upload", str(work / "build"), "--queue", "--verbose"], 38, 0.0),
            (["status", "101"], 0, 0.0),
            (["list", "--json"], 0, 0.0),
            (["sync", "--profile", "nightly"], 38, 0.0),
            (["sync", "--profile", "nightly", "--verbose"], 0, later_s),
            (["history", "--json"], 0, later_s),
        ]
        for args, exit_code, offset_s in steps:
            result = invoke(args, env, echoing, later_s=offset_s)
            outputs.append(result)
            assert result.exit_code == exit_code, (args, result.output)
        assert clever.stats["echoed"] >= 3
        assert echoing.echoed >= 5

    pull, failed_upload, failed_sync = outputs[0], outputs[3], outputs[6]
    assert "Authorization: Bearer [redacted] (BEARER [redacted])" in pull.stderr
    assert (
        "HTTP 500 (proxy error for Authorization: Bearer [redacted] (BEARER [redacted])) after the request was "
        "sent; it may have reached Canvas; no import matches it yet" in failed_upload.stderr.splitlines()[-1]
    )
    assert "\nTraceback (most recent call last):\n" in failed_upload.stderr
    assert "Bearer [redacted]" in orjson.loads(failed_sync.stdout)["message"]
    run_logs = sorted(work.glob("runs/*/run.log"))
    assert len(run_logs) == 2
    assert "Bearer [redacted]" in run_logs[0].read_text()

    written = sorted(path for path in work.rglob("*") if path.is_file())
    assert len(written) > 40
    texts = [(str(path.relative_to(work)), text.lower()) for path in written for text in readable(path)]
    texts += [
        (f"output of {' '.join(step[0][:1])}", r.output.lower())
        for step, r in zip(steps, outputs, strict=True)
    ]
    for token in (CLEVER_TOKEN, TEST_TOKEN):
        for form in forms(token):
            leaks = [where for where, text in texts if form in text]
            assert leaks == [], (form, leaks)
