"""Teachers in before students: after each applied import the sync gives the terms of its terms.csv the
teachers' term date override, through the Terms API of the Canvas double. Exact requests, a second night
that sends nothing, a term whose start moves, a term the product does not manage, and failures that never
hide a good import."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from clever2sis.canvas.terms import shifted, term_ref
from clever2sis.sync.history import History
from clever2sis.sync.pipeline import RunResult
from tests.canvas_server import CanvasTestServer, TermRequest
from tests.test_canvas_model import zipped
from tests.test_sync_nights import JANUARY, Nights, run_json

BASE = "/api/v1/accounts/1/terms"
LIST = [TermRequest("GET", BASE, (("include[]", "overrides"), ("per_page", "100")))]
FOLLOWING = TermRequest("GET", BASE, (("page", "{page}"), ("per_page", "2"), ("include[]", "overrides")))
DAYS = 14


@contextlib.contextmanager
def nights(tmp: Path, **sync: Any) -> Iterator[Nights]:
    district = Nights(tmp, teacher_start_days_before=DAYS, **sync)
    with CanvasTestServer(district.canvas) as server:
        district.server = server
        yield district


def night(number: int) -> dt.datetime:
    return JANUARY + dt.timedelta(days=number)


def sent_terms(result: RunResult) -> list[dict[str, str]]:
    assert result.run_dir is not None
    text = (result.run_dir / "build" / "csv" / "terms.csv").read_text()
    return list(csv.DictReader(io.StringIO(text)))


def list_requests(count: int) -> list[TermRequest]:
    """The list of ``count`` terms: the first page asked for, then Canvas's links (2 a page in the double)."""
    pages = (count + 1) // 2
    follow = [
        TermRequest("GET", BASE, (("page", str(page)), ("per_page", "2"), ("include[]", "overrides")))
        for page in range(2, pages + 1)
    ]
    return [*LIST, *follow]


def put(term_id: str, start: str, end: str = "") -> TermRequest:
    return TermRequest(
        "PUT",
        f"{BASE}/{term_ref(term_id)}",
        (),
        (
            ("enrollment_term[overrides][TeacherEnrollment][start_at]", start),
            ("enrollment_term[overrides][TeacherEnrollment][end_at]", end),
        ),
    )


def history_message(district: Nights) -> str:
    with History(district.runs_dir) as history:
        return str(history.runs()[0]["message"])


def test_the_overrides_are_set_once_with_exact_requests_and_reported(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        first = district.night(night(0))
        requests_first = list(district.canvas.term_requests)
        first_message = history_message(district)
        second = district.night(night(1))
        requests_second = district.canvas.term_requests[len(requests_first) :]

    assert [first.exit_code, second.exit_code] == [0, 0], (first.message, second.message)
    terms = sent_terms(first)
    assert len(terms) == 6
    # Canvas's list, newest start first; the PUTs in terms.csv's order.
    assert requests_first == [
        *list_requests(len(terms)),
        *(put(t["term_id"], shifted(t["start_date"], -DAYS, "UTC")) for t in terms),
    ]
    assert requests_first[-1] == put("2027-01-26_2027-06-18_semester-2", "2027-01-12T00:00:00Z")
    model = district.model
    for term in terms:
        held = model.term(term["term_id"])
        assert held is not None
        assert (held.overrides["TeacherEnrollment"].start, held.overrides["TeacherEnrollment"].end) == (
            shifted(term["start_date"], -DAYS, "UTC"),
            None,
        )
    # A teacher of a course in the first semester may enter 14 days before it, until its end.
    view = next(v for v in model.enrollment_views(("active",)) if v.role == "teacher")
    start, end = model.access_dates(str(view.section_id), str(view.user_id), "teacher")
    course_term = model.term(model.course_term(str(view.course_id)) or "")
    assert course_term is not None
    assert start == shifted(str(course_term.start), -DAYS, "UTC")
    assert end == course_term.end
    # Reported: the JSON line, run.json, the log and history.
    assert first.summary["term_overrides"] == {"set": 6, "unchanged": 0, "failed": 0}
    facts = run_json(first)["term_overrides"]
    assert (facts["terms"], facts["start_days_before"], facts["enrollment_types"]) == (
        6,
        14,
        ["TeacherEnrollment"],
    )
    assert facts["changes"][0] == {
        "term_id": terms[0]["term_id"],
        "enrollment_type": "TeacherEnrollment",
        "start_at": shifted(terms[0]["start_date"], -DAYS, "UTC"),
        "end_at": None,
        "was": {"start_at": None, "end_at": None},
    }
    log = (first.run_dir / "run.log").read_text()  # type: ignore[operator]
    assert "teacher term dates: 6 set, 0 already right, 0 failed, of 6 term(s)" in log
    assert (
        first_message
        == f"sis_import {first.summary['sis_import_id']} ended imported; teacher term dates: 6 set of 6 term(s)"
    )
    # The second night reads the terms and sends nothing.
    assert requests_second == list_requests(len(terms))
    assert second.summary["term_overrides"] == {"set": 0, "unchanged": 6, "failed": 0}
    assert history_message(district) == f"sis_import {second.summary['sis_import_id']} ended imported"


def test_a_term_whose_start_moves_gets_its_override_moved(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        district.night(night(0))
        year = next(
            t for t in district.records["terms"] if t["name"] == "Year" and t["start_date"] == "2026-08-17"
        )
        year["start_date"] = "2026-08-18"
        before = len(district.canvas.term_requests)
        moved = district.night(night(1))
        requests = district.canvas.term_requests[before:]

    assert moved.exit_code == 0, moved.message
    # The re-dated term keeps its Canvas term_id (term_recreated) and gets its new start.
    kept = "2026-08-17_2027-06-11_year"
    assert [t["start_date"] for t in sent_terms(moved) if t["term_id"] == kept] == ["2026-08-18T00:00:00Z"]
    assert requests == [*list_requests(6), put(kept, "2026-08-04T00:00:00Z")]
    held = district.model.term(kept)
    assert held is not None
    assert (held.start, held.overrides["TeacherEnrollment"].start) == (
        "2026-08-18T00:00:00Z",
        "2026-08-04T00:00:00Z",
    )
    assert moved.summary["term_overrides"] == {"set": 1, "unchanged": 5, "failed": 0}


def test_a_term_the_product_does_not_manage_is_left_alone(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        other_feed = zipped(
            {
                "terms.csv": (
                    "term_id,name,status,start_date,end_date",
                    "SUMMER,Summer,active,2027-06-21,2027-07-30",
                )
            }
        )
        district.model.apply(900, {}, other_feed)
        term = district.model.term("SUMMER")
        assert term is not None
        district.model.set_term_overrides(term, {"TeacherEnrollment": {"start_at": "2027-06-01T00:00:00Z"}})
        result = district.night(night(0))

    assert result.exit_code == 0, result.message
    puts = [r for r in district.canvas.term_requests if r.method == "PUT"]
    assert len(puts) == 6
    assert all("SUMMER" not in r.path for r in puts)
    assert (term.overrides["TeacherEnrollment"].start, term.overrides["TeacherEnrollment"].end) == (
        "2027-06-01T00:00:00Z",
        None,
    )


def test_a_failed_override_is_a_warning_that_never_hides_the_good_import(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        district.canvas.term_faults[f"{BASE}/sis_term_id:2026-08-17_2027-06-11_year"] = [500] * 6
        district.canvas.term_faults[f"{BASE}/sis_term_id:2026-08-24_2027-01-22_semester-1"] = [500]
        result = district.night(night(0))
        message = history_message(district)

    assert result.exit_code == 0, result.message
    assert result.summary["outcome"] == "imported"
    assert result.summary["term_overrides"] == {"set": 5, "unchanged": 0, "failed": 1}
    assert message.endswith("; teacher term dates: 5 set, 1 failed of 6 term(s)")
    retried = [
        r for r in district.canvas.term_requests if r.path.endswith("2026-08-24_2027-01-22_semester-1")
    ]
    assert len(retried) == 2  # a 500, then the retry that worked
    log = (result.run_dir / "run.log").read_text()  # type: ignore[operator]
    assert (
        "warning: teacher term dates not set for term 2026-08-17_2027-06-11_year: PUT "
        f"{district.server.base_url}{BASE}/sis_term_id:2026-08-17_2027-06-11_year: HTTP 500: Internal "  # type: ignore[union-attr]
        "Server Error; gave up after 6 attempts"
    ) in log
    failure = run_json(result)["term_overrides"]["failures"]
    assert [f["term_id"] for f in failure] == ["2026-08-17_2027-06-11_year"]
    assert orjson.dumps(result.summary)  # the JSON line is whole


def test_no_request_when_the_import_was_not_applied_or_the_setting_is_off(tmp_path: Path) -> None:
    with nights(tmp_path) as district:
        district.canvas.script = [("importing", 50), ("failed", 100)]
        district.model = district.canvas.model = None  # type: ignore[assignment]
        failed = district.night(night(0))
    assert failed.exit_code == 21, failed.message
    assert district.canvas.term_requests == []
    assert "term_overrides" not in failed.summary

    off = Nights(tmp_path / "off")
    with CanvasTestServer(off.canvas) as server:
        off.server = server
        result = off.night(night(0))
    assert result.exit_code == 0, result.message
    assert off.canvas.term_requests == []
    assert "term_overrides" not in result.summary
    assert "term_overrides" not in run_json(result)
