"""The Enrollment Terms client (clever2sis/canvas/terms.py) and the sync's step that sets teachers' term dates:
exact requests (method, path, query, form), replayed from cassettes recorded against tests/canvas_server.py or
read off the live double; what is sent only when it differs; failures kept to their term."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import yaml

from clever2sis.canvas.client import CanvasClient, RetryPolicy
from clever2sis.canvas.terms import (
    CanvasTerm,
    EnrollmentTerms,
    ManagedTerm,
    Override,
    TeacherDates,
    set_teacher_dates,
    shifted,
    term_ref,
)
from clever2sis.errors import CanvasError
from tests.canvas_model import CanvasModel
from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas, TermRequest
from tests.conftest import canvas_cassette
from tests.test_canvas_model import apply, district

TERMS = (
    "term_id,name,status,start_date,end_date",
    "T1,Fall,active,2026-08-17T00:00:00Z,2027-01-15T23:59:59Z",
    "T2,Spring,active,2027-01-25T00:00:00Z,2027-06-11T23:59:59Z",
    "Y 26/27,Year,active,2026-08-17T00:00:00Z,2027-06-11T23:59:59Z",
    "HAND,Made by hand,active,2026-09-01T00:00:00Z,2027-05-01T23:59:59Z",
)
MANAGED = [
    ManagedTerm("T1", "2026-08-17T00:00:00Z", "2027-01-15T23:59:59Z"),
    ManagedTerm("T2", "2027-01-25T00:00:00Z", "2027-06-11T23:59:59Z"),
    ManagedTerm("Y 26/27", "2026-08-17T00:00:00Z", "2027-06-11T23:59:59Z"),
]
BASE = "/api/v1/accounts/1/terms"
LIST = TermRequest("GET", BASE, (("include[]", "overrides"), ("per_page", "100")))
FIELD = "enrollment_term[overrides][{kind}][{date}]"


def put(ref: str, *overrides: tuple[str, str, str]) -> TermRequest:
    """The PUT of ``ref`` with (enrollment type, start_at, end_at) per type, in the order sent."""
    form = tuple(
        (FIELD.format(kind=kind, date=date), value)
        for kind, start, end in overrides
        for date, value in (("start_at", start), ("end_at", end))
    )
    return TermRequest("PUT", f"{BASE}/{ref}", (), form)


def list_pages(count: int) -> list[TermRequest]:
    """The list's requests: the first with the client's query, the next ones following Canvas's links."""
    follow = [
        TermRequest("GET", BASE, (("page", str(n)), ("per_page", "2"), ("include[]", "overrides")))
        for n in range(2, count + 1)
    ]
    return [LIST, *follow]


def canvas_with_terms() -> FakeCanvas:
    model = CanvasModel()
    record = apply(model, district(terms=TERMS))
    assert record.workflow_state == "imported", record.messages
    return FakeCanvas(model=model)


@contextmanager
def terms_client(base_url: str, **retry: float) -> Iterator[EnrollmentTerms]:
    policy = RetryPolicy(**retry) if retry else RetryPolicy(max_attempts=3)  # type: ignore[arg-type]
    with CanvasClient(base_url, TEST_TOKEN, sleep=lambda _s: None, retry=policy) as client:
        yield EnrollmentTerms(client, "1")


# --- the client -------------------------------------------------------------------------------------------


def test_a_path_names_a_term_by_sis_id_hex_encoded_unless_plain() -> None:
    assert term_ref("2026-08-17_2027-01-15_semester-1") == "sis_term_id:2026-08-17_2027-01-15_semester-1"
    assert term_ref("Y 26/27") == "hex:sis_term_id:592032362f3237"


def test_the_list_reads_every_page_with_the_overrides() -> None:
    canvas = canvas_with_terms()
    model = canvas.model
    assert model is not None
    hand = model.term("HAND")
    assert hand is not None
    model.set_term_overrides(
        hand, {"TeacherEnrollment": {"start_at": "2026-08-01T00:00:00Z", "end_at": None}}
    )
    with canvas_cassette("terms_list", canvas) as cassette, terms_client(cassette.base_url) as terms:
        found = list(terms.list())
    assert [(t.sis_term_id, t.name) for t in found] == [
        ("T2", "Spring"),
        ("HAND", "Made by hand"),
        ("Y 26/27", "Year"),
        ("T1", "Fall"),
    ]
    assert found[1].overrides == {"TeacherEnrollment": Override("2026-08-01T00:00:00Z", None)}
    assert all(not t.overrides for t in (found[0], found[2], found[3]))
    requests = yaml.safe_load(cassette.path.read_text())["interactions"]
    assert [r["request"]["method"] for r in requests] == ["GET", "GET"]
    assert requests[0]["request"]["uri"].endswith(f"{BASE}?include%5B%5D=overrides&per_page=100")
    assert "authorization" not in {k.lower() for k in requests[0]["request"]["headers"]}


def test_setting_overrides_sends_both_dates_of_each_type() -> None:
    with (
        canvas_cassette("terms_set_overrides", canvas_with_terms(), match_body=True) as cassette,
        terms_client(cassette.base_url) as terms,
    ):
        term = terms.set_overrides(
            "Y 26/27",
            {
                "TeacherEnrollment": Override("2026-08-03T00:00:00Z", None),
                "TaEnrollment": Override("2026-08-10T00:00:00Z", "2027-06-25T23:59:59Z"),
            },
        )
    assert term.sis_term_id == "Y 26/27"
    assert term.overrides == {
        "TaEnrollment": Override("2026-08-10T00:00:00Z", "2027-06-25T23:59:59Z"),
        "TeacherEnrollment": Override("2026-08-03T00:00:00Z", None),
    }
    (interaction,) = yaml.safe_load(cassette.path.read_text())["interactions"]
    request = interaction["request"]
    assert (request["method"], request["uri"].split("1/terms/")[1]) == (
        "PUT",
        "hex:sis_term_id:592032362f3237",
    )
    assert request["body"] == (
        "enrollment_term%5Boverrides%5D%5BTeacherEnrollment%5D%5Bstart_at%5D=2026-08-03T00%3A00%3A00Z"
        "&enrollment_term%5Boverrides%5D%5BTeacherEnrollment%5D%5Bend_at%5D="
        "&enrollment_term%5Boverrides%5D%5BTaEnrollment%5D%5Bstart_at%5D=2026-08-10T00%3A00%3A00Z"
        "&enrollment_term%5Boverrides%5D%5BTaEnrollment%5D%5Bend_at%5D=2027-06-25T23%3A59%3A59Z"
    )


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (404, {"errors": [{"message": "The specified resource does not exist."}]}, "not found (HTTP 404)"),
        (
            400,
            {"message": "Invalid enrollment type in overrides"},
            "HTTP 400: Invalid enrollment type in overrides",
        ),
        (
            400,
            {"message": "Terms only belong to root_accounts."},
            "HTTP 400: Terms only belong to root_accounts.",
        ),
    ],
)
def test_canvas_refusals_are_errors_naming_the_request(status: int, body: object, message: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    transport = httpx.MockTransport(answer)
    with (
        CanvasClient("https://canvas.invalid", TEST_TOKEN, transport=transport) as client,
        pytest.raises(CanvasError) as error,
    ):
        EnrollmentTerms(client, "1").set_overrides("T1", {"TeacherEnrollment": Override("x", None)})
    assert str(error.value) == f"PUT https://canvas.invalid/api/v1/accounts/1/terms/sis_term_id:T1: {message}"


def test_a_term_without_an_id_is_refused() -> None:
    with pytest.raises(CanvasError, match="Canvas sent a term without an id"):
        CanvasTerm.from_json({"name": "x"})


# --- the dates --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "days", "timezone", "expected"),
    [
        ("2026-08-17T00:00:00Z", -14, "UTC", "2026-08-03T00:00:00Z"),
        ("2027-01-15T23:59:59Z", 14, "UTC", "2027-01-29T23:59:59Z"),
        ("2026-08-17T00:00:00-07:00", -14, "America/Los_Angeles", "2026-08-03T00:00:00-07:00"),
        # Across the end of daylight saving time (2026-11-01): the same midnight, another offset.
        ("2026-11-09T00:00:00-08:00", -14, "America/Los_Angeles", "2026-10-26T00:00:00-07:00"),
        ("2027-03-20T23:59:59-07:00", -14, "America/Los_Angeles", "2027-03-06T23:59:59-08:00"),
    ],
)
def test_days_are_calendar_days_in_the_district_time_zone(
    moment: str, days: int, timezone: str, expected: str
) -> None:
    assert shifted(moment, days, timezone) == expected


# --- the sync's step, against the live double --------------------------------------------------------------

FOURTEEN = TeacherDates(start_days_before=14)


def test_overrides_are_set_for_the_managed_terms_only_and_a_second_night_sends_nothing() -> None:
    canvas = canvas_with_terms()
    lines: list[str] = []
    with CanvasTestServer(canvas) as server, terms_client(server.base_url) as terms:
        first = set_teacher_dates(terms, MANAGED, FOURTEEN, progress=lines.append)
        requests_first = list(canvas.term_requests)
        second = set_teacher_dates(terms, MANAGED, FOURTEEN)
    assert requests_first == [
        *list_pages(2),
        put("sis_term_id:T1", ("TeacherEnrollment", "2026-08-03T00:00:00Z", "")),
        put("sis_term_id:T2", ("TeacherEnrollment", "2027-01-11T00:00:00Z", "")),
        put("hex:sis_term_id:592032362f3237", ("TeacherEnrollment", "2026-08-03T00:00:00Z", "")),
    ]
    assert canvas.term_requests[len(requests_first) :] == list_pages(2)
    assert (first["set"], first["unchanged"], first["failed"]) == (3, 0, 0)
    assert (second["set"], second["unchanged"], second["failed"], second["message"]) == (0, 3, 0, "")
    assert first["message"] == "teacher term dates: 3 set of 3 term(s)"
    assert first["changes"][0] == {
        "term_id": "T1",
        "enrollment_type": "TeacherEnrollment",
        "start_at": "2026-08-03T00:00:00Z",
        "end_at": None,
        "was": {"start_at": None, "end_at": None},
    }
    assert (
        lines[0]
        == "term T1: TeacherEnrollment from 2026-08-03T00:00:00Z to the term end (was whenever to the term end)"
    )
    model = canvas.model
    assert model is not None
    hand = model.term("HAND")
    assert hand is not None
    assert hand.overrides == {}


def test_a_term_whose_start_moved_gets_its_override_moved_and_an_end_set_in_canvas_is_kept() -> None:
    canvas = canvas_with_terms()
    model = canvas.model
    assert model is not None
    term = model.term("T1")
    assert term is not None
    model.set_term_overrides(
        term, {"TeacherEnrollment": {"start_at": "2026-08-03T00:00:00Z", "end_at": "2027-01-22T23:59:59Z"}}
    )
    moved = [ManagedTerm("T1", "2026-08-24T00:00:00Z", "2027-01-15T23:59:59Z")]
    with CanvasTestServer(canvas) as server, terms_client(server.base_url) as terms:
        facts = set_teacher_dates(terms, moved, FOURTEEN)
    assert canvas.term_requests[2:] == [
        put("sis_term_id:T1", ("TeacherEnrollment", "2026-08-10T00:00:00Z", "2027-01-22T23:59:59Z"))
    ]
    assert facts["changes"][0]["was"] == {
        "start_at": "2026-08-03T00:00:00Z",
        "end_at": "2027-01-22T23:59:59Z",
    }
    assert (term.overrides["TeacherEnrollment"].start, term.overrides["TeacherEnrollment"].end) == (
        "2026-08-10T00:00:00Z",
        "2027-01-22T23:59:59Z",
    )


def test_end_days_after_and_tas_and_designers_too() -> None:
    canvas = canvas_with_terms()
    dates = TeacherDates(start_days_before=7, end_days_after=14, roles=("teacher", "ta", "designer"))
    with CanvasTestServer(canvas) as server, terms_client(server.base_url) as terms:
        set_teacher_dates(terms, MANAGED[:1], dates)
    assert canvas.term_requests[2:] == [
        put(
            "sis_term_id:T1",
            ("TeacherEnrollment", "2026-08-10T00:00:00Z", "2027-01-29T23:59:59Z"),
            ("TaEnrollment", "2026-08-10T00:00:00Z", "2027-01-29T23:59:59Z"),
            ("DesignerEnrollment", "2026-08-10T00:00:00Z", "2027-01-29T23:59:59Z"),
        )
    ]


def test_a_failure_is_that_term_s_alone_after_the_client_s_retries() -> None:
    canvas = canvas_with_terms()
    canvas.term_faults[f"{BASE}/sis_term_id:T1"] = [500, 500, 500]
    canvas.term_faults[f"{BASE}/sis_term_id:T2"] = [500]
    managed = [*MANAGED[:2], ManagedTerm("GONE", "2026-08-17T00:00:00Z", "")]
    with CanvasTestServer(canvas) as server, terms_client(server.base_url) as terms:
        facts = set_teacher_dates(terms, managed, FOURTEEN)
        origin = server.base_url
    t1 = put("sis_term_id:T1", ("TeacherEnrollment", "2026-08-03T00:00:00Z", ""))
    t2 = put("sis_term_id:T2", ("TeacherEnrollment", "2027-01-11T00:00:00Z", ""))
    assert canvas.term_requests[2:] == [t1, t1, t1, t2, t2]
    assert (facts["set"], facts["unchanged"], facts["failed"]) == (1, 0, 2)
    assert facts["failures"] == [
        {
            "term_id": "T1",
            "error": f"PUT {origin}{BASE}/sis_term_id:T1: HTTP 500: Internal Server Error; gave up "
            "after 3 attempts",
        },
        {
            "term_id": "GONE",
            "error": "Canvas has no active term with this SIS id (see the import's messages)",
        },
    ]
    assert facts["message"] == "teacher term dates: 1 set, 2 failed of 3 term(s)"


def test_the_terms_not_read_fail_every_term_and_raise_nothing() -> None:
    canvas = canvas_with_terms()
    canvas.term_faults[BASE] = [403]
    with CanvasTestServer(canvas) as server, terms_client(server.base_url, max_attempts=1) as terms:
        facts = set_teacher_dates(terms, MANAGED, FOURTEEN)
        origin = server.base_url
    assert (facts["set"], facts["failed"]) == (0, 3)
    assert facts["failures"] == [
        {
            "term_id": None,
            "error": f"the terms could not be read: GET {origin}{BASE}: rate limited by Canvas (403 Rate "
            "Limit Exceeded); gave up after 1 attempts",
        }
    ]
