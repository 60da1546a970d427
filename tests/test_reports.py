"""The account reports client: the provisioning report started, followed and streamed to disk, against the
local test double (a vcrpy cassette: the exact requests) and ``httpx.MockTransport`` for the faults."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import yaml

from clever2sis.canvas.client import CanvasClient, RetryPolicy
from clever2sis.canvas.reports import AccountReports, fetch_provisioning_report, report_parameters
from clever2sis.canvas.sis_import import WaitPolicy
from clever2sis.errors import CanvasError, CanvasUnavailableError, ReportFailedError
from tests.canvas_model import CanvasModel
from tests.canvas_server import TEST_TOKEN, FakeCanvas
from tests.conftest import canvas_cassette
from tests.test_sis_import import FakeTime

FAST = WaitPolicy(timeout_s=30, first_interval_s=1.0, max_interval_s=1.0)
ZIP = b"PK\x03\x04"


def zipped(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0)), text)
    return out.getvalue()


def small_model() -> CanvasModel:
    """Two users, a course with one section and two enrollments, imported; one enrollment added by hand."""
    model = CanvasModel()
    model.apply(
        1,
        {},
        zipped(
            {
                "courses.csv": "course_id,short_name,long_name,account_id,term_id,status\nC1,ALG,Algebra,,,active\n",
                "sections.csv": "section_id,course_id,name,status\nS1,C1,Algebra 1,active\n",
                "users.csv": "user_id,login_id,first_name,last_name,email,status\n"
                "U1,ada,Ada,Lovelace,ada@example.org,active\n"
                'U2,an,An,"Văn, Nguyễn",,active\n',
                "enrollments.csv": "course_id,section_id,user_id,role,status\n"
                "C1,S1,U1,student,active\nC1,S1,U2,teacher,active\n",
            }
        ),
    )
    model.ui_enroll("U1", course_id="C1", role="teacher")
    return model


def recorded_requests(path: Path) -> list[tuple[str, str, dict[str, str]]]:
    """(method, path with query, form fields) of every request in a cassette."""
    out = []
    for interaction in yaml.safe_load(path.read_text())["interactions"]:
        request = interaction["request"]
        parts = urlsplit(request["uri"])
        body = request.get("body") or ""
        body = body.decode() if isinstance(body, bytes) else body
        out.append(
            (
                request["method"],
                parts.path + (f"?{parts.query}" if parts.query else ""),
                dict(parse_qsl(body)),
            )
        )
    return out


def test_the_provisioning_report_is_started_followed_and_streamed_to_disk(tmp_path: Path) -> None:
    time = FakeTime()
    with (
        canvas_cassette("report_provisioning", FakeCanvas(model=small_model())) as cassette,
        CanvasClient(cassette.base_url, TEST_TOKEN, sleep=time.sleep) as client,
    ):
        lines: list[str] = []
        report, path = fetch_provisioning_report(
            AccountReports(client, "1"),
            tmp_path,
            policy=FAST,
            clock=time.clock,
            sleep=time.sleep,
            progress=lines.append,
        )
    assert recorded_requests(cassette.path) == [
        (
            "POST",
            "/api/v1/accounts/1/reports/provisioning_csv",
            {
                "parameters[users]": "true",
                "parameters[courses]": "true",
                "parameters[sections]": "true",
                "parameters[enrollments]": "true",
                "parameters[user_observers]": "true",
                "parameters[include_deleted]": "true",
            },
        ),
        ("GET", "/api/v1/accounts/1/reports/provisioning_csv/1", {}),
        ("GET", "/api/v1/accounts/1/reports/provisioning_csv/1", {}),
        ("GET", "/api/v1/accounts/1/reports/provisioning_csv/1", {}),
        ("GET", "/files/7001/download?download_frd=1&verifier=r3p0rt1", {}),
    ]
    assert (report.id, report.status, report.progress) == (1, "complete", 100)
    assert time.sleeps == [1.0, 1.0]
    assert path == tmp_path / "provisioning_report.zip"
    assert [p.name for p in tmp_path.iterdir()] == ["provisioning_report.zip"]
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == [
            "users.csv",
            "courses.csv",
            "sections.csv",
            "enrollments.csv",
            "user_observers.csv",
        ]
        users = archive.read("users.csv").decode().splitlines()
        enrollments = archive.read("enrollments.csv").decode().splitlines()
    assert users == [
        "canvas_user_id,user_id,integration_id,authentication_provider_id,login_id,first_name,last_name,"
        "full_name,sortable_name,short_name,email,status,created_by_sis",
        '4,U1,,,ada,Ada,Lovelace,Ada Lovelace,"Lovelace, Ada",,ada@example.org,active,true',
        '6,U2,,,an,Nguyễn An,Văn,"An Văn, Nguyễn","Văn, Nguyễn, An",,,active,true',  # first, last: lossy
    ]
    assert enrollments == [
        "canvas_course_id,course_id,canvas_user_id,user_id,role,role_id,canvas_section_id,section_id,status,"
        "canvas_associated_user_id,associated_user_id,created_by_sis,base_role_type,limit_section_privileges,"
        "canvas_enrollment_id",
        "2,C1,4,U1,student,3,3,S1,active,,,true,StudentEnrollment,false,8",
        "2,C1,6,U2,teacher,4,3,S1,active,,,true,TeacherEnrollment,false,9",
        "2,C1,4,U1,teacher,4,10,,active,,,false,TeacherEnrollment,false,11",
    ]
    assert lines[0] == (
        "provisioning report 1 started (users, courses, sections, enrollments, user_observers, deleted "
        "objects included)"
    )
    assert lines[1:4] == [
        "provisioning report 1: created 0%",
        "provisioning report 1: running 50%",
        "provisioning report 1: complete 100%",
    ]


def test_report_parameters_name_each_table_and_ask_for_deleted_objects() -> None:
    assert report_parameters(("users", "enrollments")) == [
        ("parameters[users]", "true"),
        ("parameters[enrollments]", "true"),
        ("parameters[include_deleted]", "true"),
    ]
    assert report_parameters(("users",), include_deleted=False) == [("parameters[users]", "true")]


# --- faults (httpx.MockTransport) ----------------------------------------------------------------------


def report(status: str, progress: int = 0, **extra: object) -> httpx.Response:
    return httpx.Response(
        200, json={"id": 5, "report": "provisioning_csv", "status": status, "progress": progress, **extra}
    )


class Script:
    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def api(script: Script, time: FakeTime) -> AccountReports:
    client = CanvasClient(
        "https://canvas.test",
        TEST_TOKEN,
        transport=httpx.MockTransport(script),
        sleep=time.sleep,
        retry=RetryPolicy(max_attempts=3),
    )
    return AccountReports(client, "1")


@pytest.mark.parametrize("state", ["error", "aborted", "deleted"])
def test_a_report_that_ends_badly_is_exit_61_and_downloads_nothing(tmp_path: Path, state: str) -> None:
    time = FakeTime()
    script = Script(report("created"), report("running", 30), report(state, 30))
    with pytest.raises(ReportFailedError) as raised:
        fetch_provisioning_report(
            api(script, time), tmp_path, policy=FAST, clock=time.clock, sleep=time.sleep
        )
    assert raised.value.exit_code == 61
    assert str(raised.value) == (
        f"Canvas's provisioning_csv report 5 ended {state}; nothing was compared. Run it again, or look at "
        "the account's Reports page in Canvas for its message"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_report_still_running_at_the_limit_is_exit_61(tmp_path: Path) -> None:
    time = FakeTime()
    script = Script(report("created"), report("running", 10))
    policy = WaitPolicy(timeout_s=5, first_interval_s=1.0, max_interval_s=1.0)
    with pytest.raises(ReportFailedError, match=r"report 5 is still running after 5s; .* --timeout"):
        fetch_provisioning_report(
            api(script, time), tmp_path, policy=policy, clock=time.clock, sleep=time.sleep
        )
    assert time.now == 5.0


class Dropping(httpx.SyncByteStream):
    """A body that sends ``before`` and then loses the connection."""

    def __init__(self, before: bytes) -> None:
        self.before = before

    def __iter__(self) -> Iterator[bytes]:
        yield self.before
        raise httpx.ReadError("connection reset")


def test_a_download_cut_mid_body_starts_again_and_leaves_no_partial_file(tmp_path: Path) -> None:
    time = FakeTime()
    body = zipped({"users.csv": "canvas_user_id,user_id\n1,U1\n"})
    done = report("complete", 100, attachment={"url": "https://files.example.net/report.zip?sig=1"})
    script = Script(
        report("created"),
        done,
        httpx.Response(200, stream=Dropping(body[:10])),
        httpx.Response(200, content=body),
    )
    final, path = fetch_provisioning_report(
        api(script, time), tmp_path, policy=FAST, clock=time.clock, sleep=time.sleep
    )
    assert path.read_bytes() == body
    assert [p.name for p in tmp_path.iterdir()] == ["provisioning_report.zip"]
    downloads = [r for r in script.requests if r.url.host == "files.example.net"]
    assert len(downloads) == 2
    assert all("authorization" not in r.headers for r in downloads)
    assert final.download_url == "https://files.example.net/report.zip?sig=1"


def test_a_download_that_keeps_dropping_gives_up_and_leaves_nothing(tmp_path: Path) -> None:
    time = FakeTime()
    done = report("complete", 100, attachment={"url": "https://canvas.test/files/9/download"})
    drops = [httpx.Response(200, stream=Dropping(ZIP)) for _ in range(3)]
    script = Script(report("created"), done, *drops)
    with pytest.raises(CanvasUnavailableError, match="mid-download; gave up after 3 attempts"):
        fetch_provisioning_report(
            api(script, time), tmp_path, policy=FAST, clock=time.clock, sleep=time.sleep
        )
    assert list(tmp_path.iterdir()) == []


def test_an_account_without_the_report_is_a_canvas_error(tmp_path: Path) -> None:
    time = FakeTime()
    script = Script(
        httpx.Response(404, json={"errors": [{"message": "The specified resource does not exist."}]})
    )
    with pytest.raises(
        CanvasError, match=r"POST https://canvas.test/api/v1/accounts/1/reports/provisioning_csv: not found"
    ):
        fetch_provisioning_report(
            api(script, time), tmp_path, policy=FAST, clock=time.clock, sleep=time.sleep
        )
    assert len(script.requests) == 1
