"""An upload whose answer is lost neither loses its import nor posts a second one.

Each fault happens after Canvas (the test double) has created the import: a lossy proxy that drops the
POST's answer, answers 502 after forwarding it or cuts its JSON short; ``httpx.MockTransport`` cases for
what the double cannot do (an import that shows up late, one that never comes); a kill -9 during the
POST; a full disk while the id is saved. After each, the test double holds exactly one import and the
build directory knows it.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner, Result

from clever2sis.build_dir import BuildDir
from clever2sis.canvas.client import CanvasClient, RetryPolicy
from clever2sis.canvas.intent import ANSWER_SLOT_BYTES, SETTLE_S, read_answer
from clever2sis.canvas.sis_import import ImportOptions, SisImports
from clever2sis.canvas.upload import post_build
from clever2sis.cli import main
from clever2sis.cli.common import CanvasRuntime
from clever2sis.errors import (
    BuildDirError,
    ImportAlreadyRunningError,
    ImportNotConfirmedError,
    ImportNotRecordedError,
)
from tests.canvas_server import ROOT_ACCOUNT, TEST_TOKEN, CanvasTestServer, FakeCanvas, Stall
from tests.conftest import make_build_dir
from tests.lossy_proxy import FAULTS, LossyProxy
from tests.test_sis_import import FakeTime

NOW = dt.datetime(2027, 1, 5, 6, 0, tzinfo=dt.UTC)


def run(args: list[str], base_url: str, *, now: Callable[[], dt.datetime] | None = None) -> Result:
    environ: Mapping[str, str] = {
        "CANVAS_BASE_URL": base_url,
        "CANVAS_TOKEN": TEST_TOKEN,
        "CANVAS_ACCOUNT_ID": ROOT_ACCOUNT,
    }
    fake = FakeTime()
    runtime = CanvasRuntime(
        environ=environ,
        sleep=fake.sleep,
        clock=fake.clock,
        attachment_wait_s=0,
        **({"now": now} if now is not None else {}),
    )
    return CliRunner().invoke(main, args, obj=runtime, catch_exceptions=False)


def created(build: Path, import_id: int) -> dict[str, Any]:
    value = orjson.loads((build / "imports" / "env" / str(import_id) / "created.json").read_bytes())
    assert isinstance(value, dict)
    return value


def pending(build: Path, profile: str = "env") -> list[str]:
    return [files.intent_id for files in BuildDir(build).pending_intents(profile)]


# --- a lossy proxy in front of the test double -----------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS)
def test_a_lost_answer_is_found_and_adopted_and_a_second_upload_is_refused(
    tmp_path: Path, fault: str
) -> None:
    build = make_build_dir(tmp_path / "build")
    canvas = FakeCanvas()
    with CanvasTestServer(canvas) as server, LossyProxy(server.base_url, fault) as proxy:
        first = run(["upload", str(build)], proxy.base_url)
        assert proxy.faulted == [fault]
        assert first.exit_code == 0, first.output
        assert first.stdout == "sis_import 101 created on env\n"
        assert "looking for it among the account's recent imports" in first.stderr
        assert "was posted earlier, its answer lost: found among the account's imports" in first.stderr

        second = run(["upload", str(build)], proxy.base_url)
    assert second.exit_code == 37, second.output
    assert "SIS import 101 (created, posted from this build) is already running or queued" in second.stderr
    assert "--queue" in second.stderr
    assert sorted(canvas.imports) == [101]
    receipt = created(build, 101)
    assert receipt["adopted"]["how"] == "found among the account's imports"
    assert receipt["form_fields"] == [["import_type", "instructure_csv"]]
    assert receipt["zip_sha256"] == BuildDir(build).verified_zip(error=BuildDirError).sha256
    assert orjson.loads((build / "imports/env/latest.json").read_bytes())["sis_import_id"] == 101
    assert pending(build) == []


def test_upload_upload_of_a_queued_import_is_refused_unless_queue(tmp_path: Path) -> None:
    build = make_build_dir(tmp_path / "build")
    canvas = FakeCanvas()
    with CanvasTestServer(canvas) as server:
        assert run(["upload", str(build)], server.base_url).exit_code == 0
        refused = run(["upload", str(build)], server.base_url)
        assert refused.exit_code == 37
        assert "error: SIS import 101 (created, posted from this build) is already running or queued" in (
            refused.stderr
        )
        queued = run(["upload", str(build), "--queue"], server.base_url)
    assert queued.exit_code == 0, queued.output
    assert queued.stdout == "sis_import 102 created on env\n"
    assert "is running or queued; this one will queue behind it" in queued.stderr
    assert sorted(canvas.imports) == [101, 102]


def test_an_import_in_initializing_state_blocks_an_upload(tmp_path: Path) -> None:
    build = make_build_dir(tmp_path / "build")
    canvas = FakeCanvas()
    canvas.seed(1, "initializing")
    with CanvasTestServer(canvas) as server:
        refused = run(["upload", str(build)], server.base_url)
    assert refused.exit_code == 37
    assert "SIS import 101 (initializing) is already running or queued" in refused.stderr
    assert sorted(canvas.imports) == [101]


# --- MockTransport: what the double cannot do ------------------------------------------------------------


class ScriptedCanvas:
    """A MockTransport handler: a POST that creates import 55 and answers as ``post`` says; a list that shows
    it only once ``visible`` is true (Canvas can be slow to list what it just created)."""

    def __init__(
        self, post: Callable[[], httpx.Response | Exception], *, created_at: dt.datetime = NOW
    ) -> None:
        self.post = post
        self.posts = 0
        self.visible = True
        self.created_at = created_at
        self.imports: list[dict[str, Any]] = []
        self.lists: list[httpx.QueryParams] = []

    def body(self, import_id: int) -> dict[str, Any]:
        return {
            "id": import_id,
            "workflow_state": "created",
            "progress": 0,
            "created_at": self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": {"import_type": "instructure_csv"},
            "skip_deletes": False,
            "batch_mode": None,
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST":
            self.posts += 1
            self.imports.append(self.body(54 + self.posts))
            answer = self.post()
            if isinstance(answer, Exception):
                raise answer
            return answer
        if path.endswith("/importing"):
            return httpx.Response(200, json={"sis_imports": []})
        if path.endswith("/sis_imports"):
            self.lists.append(request.url.params)
            if "workflow_state[]" in request.url.params:
                return httpx.Response(200, json={"sis_imports": []})
            shown = list(reversed(self.imports)) if self.visible else []
            return httpx.Response(200, json={"sis_imports": shown})
        found = next((item for item in self.imports if path.endswith(f"/{item['id']}")), None)
        if found is not None:
            return httpx.Response(200, json=found)
        return httpx.Response(404, json={"errors": [{"message": "The specified resource does not exist."}]})


def api_for(handler: ScriptedCanvas) -> SisImports:
    client = CanvasClient(
        "https://canvas.test",
        "tok",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(max_attempts=2),
        sleep=lambda _s: None,
    )
    return SisImports(client, "1")


def _post(api: SisImports, build: Path, now: dt.datetime, **kwargs: Any) -> Any:
    zip_ = BuildDir(build).verified_zip(error=BuildDirError)
    return post_build(api, zip_, ImportOptions(), profile="test", now=lambda: now, **kwargs)


@pytest.mark.parametrize(
    "answer",
    [
        lambda: httpx.ReadTimeout("the answer never came"),
        lambda: httpx.RemoteProtocolError("Server disconnected without sending a response."),
        lambda: httpx.Response(
            504, text="<html>Gateway Timeout</html>", headers={"content-type": "text/html"}
        ),
        lambda: httpx.Response(
            200, content=b'{"id": 55, "workflow_st', headers={"content-type": "application/json"}
        ),
        lambda: httpx.Response(200, text="<html>maintenance</html>", headers={"content-type": "text/html"}),
        lambda: httpx.Response(200, json={"unexpected": True}),
    ],
    ids=["read-timeout", "disconnected", "504", "truncated-json", "html", "not-a-sis-import"],
)
def test_every_doubtful_post_is_followed_by_a_search_not_a_second_post(
    tmp_path: Path, answer: Callable[[], httpx.Response | Exception]
) -> None:
    build = make_build_dir(tmp_path / "b")
    canvas = ScriptedCanvas(answer)
    posted = _post(api_for(canvas), build, NOW)
    assert canvas.posts == 1
    assert posted.sis_import.id == 55
    assert posted.adopted == "found among the account's imports"
    assert canvas.lists[-1]["created_since"] == "2027-01-05T05:55:00Z"
    assert (build / "imports/test/55/created.json").is_file()
    assert pending(build, "test") == []


def test_an_import_canvas_lists_late_is_adopted_by_the_next_upload(tmp_path: Path) -> None:
    build = make_build_dir(tmp_path / "b")
    canvas = ScriptedCanvas(
        lambda: httpx.Response(502, text="Bad Gateway", headers={"content-type": "text/plain"})
    )
    canvas.visible = False
    api = api_for(canvas)
    with pytest.raises(ImportNotConfirmedError) as lost:
        _post(api, build, NOW)
    message = str(lost.value)
    assert (
        "HTTP 502 (Bad Gateway) after the request was sent; it may have reached Canvas; no import matches it"
        in message
    )
    assert "the next upload or sync of this build looks for its import again before posting" in message
    assert len(pending(build, "test")) == 1

    canvas.visible = True
    again = _post(api, build, NOW + dt.timedelta(minutes=2))
    assert canvas.posts == 1
    assert again.sis_import.id == 55
    assert again.adopted == "found among the account's imports"
    assert created_of(build, 55)["posted_at"] == "2027-01-05T06:00:00Z"
    assert pending(build, "test") == []


def test_a_post_that_made_nothing_blocks_a_new_one_until_it_is_known_to_have_failed(tmp_path: Path) -> None:
    build = make_build_dir(tmp_path / "b")
    canvas = ScriptedCanvas(lambda: httpx.ReadTimeout("slow"))
    canvas.visible = False
    api = api_for(canvas)
    with pytest.raises(ImportNotConfirmedError, match="no import matches it yet"):
        _post(api, build, NOW)
    (intent_id,) = pending(build, "test")

    with pytest.raises(ImportNotConfirmedError) as waiting:
        _post(api, build, NOW + dt.timedelta(minutes=5))
    assert canvas.posts == 1
    settled_at = (NOW + dt.timedelta(seconds=SETTLE_S)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert str(waiting.value) == (
        f"not posting: the upload of {build} at 2027-01-05T06:00:00Z (intent {intent_id}) may still have "
        f"reached Canvas, but no import matches it yet; try again after {settled_at}, when a post that made "
        "nothing is known to have failed"
    )

    canvas.post = lambda: httpx.Response(200, json=canvas.body(56))
    canvas.imports.clear()  # the first POST really never arrived
    later = NOW + dt.timedelta(seconds=SETTLE_S + 1)
    posted = _post(api, build, later)
    assert canvas.posts == 2
    assert posted.sis_import.id == 56
    assert (build / "imports/test/intents" / f"{intent_id}.not-found.json").is_file()
    assert pending(build, "test") == []


def created_of(build: Path, import_id: int, profile: str = "test") -> dict[str, Any]:
    value = orjson.loads((build / "imports" / profile / str(import_id) / "created.json").read_bytes())
    assert isinstance(value, dict)
    return value


# --- the disk -------------------------------------------------------------------------------------------


def test_a_full_disk_while_saving_the_id_keeps_it_in_the_answer_slot(tmp_path: Path) -> None:
    build = make_build_dir(tmp_path / "b")
    canvas = ScriptedCanvas(lambda: httpx.Response(200, json=canvas.body(55)))

    def disk_full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    api = api_for(canvas)
    with pytest.raises(ImportNotRecordedError) as full:
        _post(api, build, NOW, write=disk_full)
    (files,) = BuildDir(build).pending_intents("test")
    created = build / "imports/test/55/created.json"
    assert str(full.value) == (
        f"SIS import 55 was created on Canvas, but {created} could not be written (No space left on device); "
        f"its id is kept in {files.answer}, and the next upload or sync of this build records it; follow it "
        "with `clever2sis status 55 --profile test`"
    )
    assert (full.value.exit_code, full.value.import_id, full.value.workflow_state) == (36, 55, "created")
    assert read_answer(files) == 55
    assert files.answer.stat().st_size == ANSWER_SLOT_BYTES
    assert not (build / "imports/test/55/created.json").exists()

    listed = len(canvas.lists)
    again = _post(api, build, NOW + dt.timedelta(minutes=1))
    assert canvas.posts == 1
    assert again.sis_import.id == 55
    assert again.adopted == "its id was in the answer slot"
    assert len(canvas.lists) == listed  # the answer slot was enough: no search
    assert created_of(build, 55)["intent_id"] == files.intent_id
    assert pending(build, "test") == []


def test_an_intent_that_cannot_be_written_stops_the_upload_before_the_post(tmp_path: Path) -> None:
    build = make_build_dir(tmp_path / "b")
    (build / "imports/test").mkdir(parents=True)
    (build / "imports/test/intents").write_text("a file where the directory should be")
    canvas = ScriptedCanvas(lambda: httpx.Response(200, json=canvas.body(55)))
    with pytest.raises(
        BuildDirError, match=r"cannot record the upload in .* before posting .*nothing was posted"
    ):
        _post(api_for(canvas), build, NOW)
    assert canvas.posts == 0


def test_a_refused_post_leaves_no_intent_behind(tmp_path: Path) -> None:
    build = make_build_dir(tmp_path / "b")
    canvas = ScriptedCanvas(
        lambda: httpx.Response(
            400, json={"message": "change_threshold is required to use multi term_batch mode."}
        )
    )
    with pytest.raises(Exception, match="HTTP 400"):
        _post(api_for(canvas), build, NOW)
    assert pending(build, "test") == []


def test_an_import_already_running_is_named_before_anything_is_recorded(tmp_path: Path) -> None:
    build = make_build_dir(tmp_path / "b")
    canvas = FakeCanvas()
    canvas.seed(1, "importing")
    with (
        CanvasTestServer(canvas) as server,
        CanvasClient(server.base_url, TEST_TOKEN) as client,
        pytest.raises(ImportAlreadyRunningError, match=r"SIS import 101 \(importing\)"),
    ):
        _post(SisImports(client, "1"), build, NOW)
    assert not (build / "imports").exists()


# --- kill -9 during the POST ----------------------------------------------------------------------------


def test_a_kill_during_the_post_is_adopted_by_the_next_upload(tmp_path: Path) -> None:
    build = make_build_dir(tmp_path / "build")
    stall = Stall()
    canvas = FakeCanvas(post_stall=stall)
    env = {
        **os.environ,
        "CANVAS_TOKEN": TEST_TOKEN,
        "CANVAS_ACCOUNT_ID": ROOT_ACCOUNT,
    }
    with CanvasTestServer(canvas) as server:
        env["CANVAS_BASE_URL"] = server.base_url
        process = subprocess.Popen(
            [sys.executable, "-m", "clever2sis", "upload", str(build), "--quiet"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert stall.reached.wait(60), "the upload never reached the POST"
            process.send_signal(signal.SIGKILL)
            process.wait(30)
        finally:
            stall.release()
            if process.poll() is None:
                process.kill()
        assert process.returncode == -signal.SIGKILL
        assert sorted(canvas.imports) == [101]
        assert len(pending(build)) == 1
        assert not (build / "imports/env/101").exists()

        again = run(["upload", str(build)], server.base_url)
    assert again.exit_code == 0, again.output
    assert again.stdout == "sis_import 101 created on env\n"
    assert "this zip was already posted with these options as sis_import 101" in again.stderr
    assert sorted(canvas.imports) == [101]
    assert created(build, 101)["adopted"]["how"] == "found among the account's imports"
    assert pending(build) == []


def test_the_answer_slot_is_written_in_place(tmp_path: Path) -> None:
    """The slot exists, blank, during the POST, and is overwritten after it, never replaced: the same
    inode and size, so saving the id allocates nothing."""
    build = make_build_dir(tmp_path / "b")
    during: dict[str, Any] = {}

    def answer() -> httpx.Response:
        (files,) = BuildDir(build).pending_intents("test")
        during.update(
            inode=files.answer.stat().st_ino, answer=read_answer(files), size=files.answer.stat().st_size
        )
        return httpx.Response(200, json=canvas.body(55))

    def disk_full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    canvas = ScriptedCanvas(answer)
    with pytest.raises(ImportNotRecordedError):
        _post(api_for(canvas), build, NOW, write=disk_full)
    (files,) = BuildDir(build).pending_intents("test")
    assert during == {"inode": files.answer.stat().st_ino, "answer": None, "size": ANSWER_SLOT_BYTES}
    assert (read_answer(files), files.answer.stat().st_size) == (55, ANSWER_SLOT_BYTES)
