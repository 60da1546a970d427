"""Import options (validation and the exact form fields), the SisImport object, and the wait loop."""

from __future__ import annotations

from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import httpx
import pytest

from clever2sis.canvas.client import CanvasClient, RetryPolicy
from clever2sis.canvas.sis_import import (
    RUNNING_STATES,
    TERMINAL_STATES,
    ImportOptions,
    ImportOptionsError,
    SisImport,
    SisImports,
    WaitPolicy,
    check_outcome,
    wait_for_import,
)
from clever2sis.errors import (
    CanvasUnavailableError,
    ImportAbortedError,
    ImportedWithMessagesError,
    ImportFailedError,
    WaitTimeoutError,
)

BASE = "https://canvas.test"


class FakeTime:
    """A clock that only moves when something sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def api_for(handler: Callable[[httpx.Request], httpx.Response], time: FakeTime) -> SisImports:
    client = CanvasClient(
        BASE,
        "tok",
        transport=httpx.MockTransport(handler),
        sleep=time.sleep,
        retry=RetryPolicy(max_attempts=3),
    )
    return SisImports(client, "1")


def state(workflow_state: str, progress: int = 0, **extra: Any) -> httpx.Response:
    return httpx.Response(
        200, json={"id": 42, "workflow_state": workflow_state, "progress": progress, **extra}
    )


def sequence(*answers: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    remaining = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler


# --- options -------------------------------------------------------------------------------------------


FORM_CASES: list[tuple[dict[str, Any], list[tuple[str, str]]]] = [
    ({}, []),
    ({"diffing_data_set_identifier": "clever:d1"}, [("diffing_data_set_identifier", "clever:d1")]),
    (
        {"diffing_data_set_identifier": "d", "diffing_remaster_data_set": True},
        [("diffing_data_set_identifier", "d"), ("diffing_remaster_data_set", "true")],
    ),
    (
        {"diffing_data_set_identifier": "d", "diffing_drop_status": "inactive"},
        [("diffing_data_set_identifier", "d"), ("diffing_drop_status", "inactive")],
    ),
    (
        {"diffing_data_set_identifier": "d", "diffing_user_remove_status": "suspended"},
        [("diffing_data_set_identifier", "d"), ("diffing_user_remove_status", "suspended")],
    ),
    (
        {"diffing_data_set_identifier": "d", "change_threshold": 10},
        [("diffing_data_set_identifier", "d"), ("change_threshold", "10")],
    ),
    (
        {"diffing_data_set_identifier": "d", "diff_row_count_threshold": 500},
        [("diffing_data_set_identifier", "d"), ("diff_row_count_threshold", "500")],
    ),
    (
        {"batch_mode": True, "batch_mode_term_id": "sis_term_id:T1", "change_threshold": 5},
        [("change_threshold", "5"), ("batch_mode", "true"), ("batch_mode_term_id", "sis_term_id:T1")],
    ),
    (
        {"batch_mode": True, "multi_term_batch_mode": True, "change_threshold": 5},
        [("change_threshold", "5"), ("batch_mode", "true"), ("multi_term_batch_mode", "true")],
    ),
    (
        {
            "batch_mode": True,
            "batch_mode_term_id": "7",
            "change_threshold": 5,
            "batch_mode_enrollment_drop_status": "completed",
        },
        [
            ("change_threshold", "5"),
            ("batch_mode", "true"),
            ("batch_mode_term_id", "7"),
            ("batch_mode_enrollment_drop_status", "completed"),
        ],
    ),
    ({"skip_deletes": True}, [("skip_deletes", "true")]),
    ({"override_sis_stickiness": True}, [("override_sis_stickiness", "true")]),
    (
        {"override_sis_stickiness": True, "add_sis_stickiness": True},
        [("override_sis_stickiness", "true"), ("add_sis_stickiness", "true")],
    ),
    (
        {"override_sis_stickiness": True, "clear_sis_stickiness": True},
        [("override_sis_stickiness", "true"), ("clear_sis_stickiness", "true")],
    ),
    ({"update_sis_id_if_login_claimed": True}, [("update_sis_id_if_login_claimed", "true")]),
    ({"skip_deletes": False, "multi_term_batch_mode": False}, []),
]


@pytest.mark.parametrize(("values", "expected"), FORM_CASES)
def test_exact_form_fields_sent_for_each_option(
    values: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    """What goes over the wire, parsed back out of the multipart body the client really sends."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return state("created")

    zip_path = Path(__file__).with_name("__init__.py")
    api_for(handler, FakeTime()).create(zip_path, ImportOptions(**values))
    request = sent[0]
    content_type = request.headers["content-type"]
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + request.read()
    )
    fields = []
    files = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename():
            files.append((name, part.get_filename()))
        else:
            fields.append((name, part.get_payload(decode=True).decode()))  # type: ignore[union-attr]
    assert fields == [("import_type", "instructure_csv"), *expected]
    assert files == [("attachment", "sis_import.zip")]
    assert request.url.path == "/api/v1/accounts/1/sis_imports"


def test_every_option_is_covered_by_a_form_case() -> None:
    covered = {name for values, _ in FORM_CASES for name in values}
    assert covered == set(ImportOptions.names())


def test_multi_term_batch_mode_false_is_never_sent() -> None:
    assert ("multi_term_batch_mode", "false") not in ImportOptions(multi_term_batch_mode=False).form_fields()
    assert all(name != "multi_term_batch_mode" for name, _ in ImportOptions().form_fields())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"batch_mode": True, "batch_mode_term_id": "7"}, "set change_threshold"),
        ({"batch_mode": True, "multi_term_batch_mode": True}, "set change_threshold"),
        ({"batch_mode": True, "change_threshold": 5}, "needs batch_mode_term_id"),
        ({"multi_term_batch_mode": True, "change_threshold": 5}, "needs batch_mode as well"),
        (
            {
                "batch_mode": True,
                "multi_term_batch_mode": True,
                "batch_mode_term_id": "7",
                "change_threshold": 5,
            },
            "drop batch_mode_term_id",
        ),
        ({"batch_mode_term_id": "7"}, "only applies to batch mode"),
        ({"batch_mode_enrollment_drop_status": "completed"}, "only applies to batch mode"),
        ({"add_sis_stickiness": True}, "without override_sis_stickiness"),
        ({"clear_sis_stickiness": True}, "without override_sis_stickiness"),
        (
            {"override_sis_stickiness": True, "add_sis_stickiness": True, "clear_sis_stickiness": True},
            "contradict",
        ),
        ({"diffing_remaster_data_set": True}, "set diffing_data_set_identifier"),
        ({"diffing_drop_status": "deleted"}, "set diffing_data_set_identifier"),
        ({"diffing_user_remove_status": "deleted"}, "set diffing_data_set_identifier"),
        ({"diff_row_count_threshold": 5}, "set diffing_data_set_identifier"),
        ({"diffing_data_set_identifier": "x" * 129}, "longer than 128"),
        ({"diffing_data_set_identifier": " "}, "must not be empty"),
        ({"diffing_data_set_identifier": "d", "diffing_drop_status": "gone"}, "must be one of"),
        ({"diffing_data_set_identifier": "d", "diffing_user_remove_status": "inactive"}, "must be one of"),
        ({"change_threshold": 0}, "from 1 to 100"),
        ({"change_threshold": 101}, "from 1 to 100"),
        ({"diffing_data_set_identifier": "d", "diff_row_count_threshold": 0}, "positive row count"),
        (
            {
                "batch_mode": True,
                "batch_mode_term_id": "7",
                "change_threshold": 5,
                "diffing_data_set_identifier": "d",
            },
            "cannot be combined",
        ),
        (
            {
                "batch_mode": True,
                "batch_mode_term_id": "7",
                "change_threshold": 5,
                "batch_mode_enrollment_drop_status": "gone",
            },
            "must be one of",
        ),
    ],
)
def test_refused_options(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ImportOptionsError, match=message):
        ImportOptions(**values).validate()


def test_refused_options_never_reach_canvas() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    with pytest.raises(ImportOptionsError):
        api_for(handler, FakeTime()).create(Path(__file__), ImportOptions(batch_mode=True))


def test_merged_applies_only_given_values() -> None:
    base = ImportOptions(skip_deletes=True, change_threshold=10)
    merged = base.merged(
        {"skip_deletes": False, "change_threshold": None, "diffing_data_set_identifier": "d"}
    )
    assert merged == ImportOptions(skip_deletes=False, change_threshold=10, diffing_data_set_identifier="d")
    with pytest.raises(ImportOptionsError, match="unknown import option"):
        base.merged({"bogus": 1})


# --- states and outcomes -------------------------------------------------------------------------------


def test_states_are_disjoint_and_complete() -> None:
    assert not RUNNING_STATES & TERMINAL_STATES
    assert {
        "imported",
        "imported_with_messages",
        "failed",
        "failed_with_messages",
        "aborted",
        "restored",
        "partially_restored",
    } == TERMINAL_STATES


@pytest.mark.parametrize(
    ("workflow_state", "error"),
    [
        ("imported", None),
        ("restored", None),
        ("imported_with_messages", ImportedWithMessagesError),
        ("failed", ImportFailedError),
        ("failed_with_messages", ImportFailedError),
        ("aborted", ImportAbortedError),
        ("importing", WaitTimeoutError),
    ],
)
def test_outcomes(workflow_state: str, error: type[Exception] | None) -> None:
    sis_import = SisImport({"id": 1, "workflow_state": workflow_state})
    if error is None:
        check_outcome(sis_import)
    else:
        with pytest.raises(error):
            check_outcome(sis_import)


def test_messages_ok_makes_imported_with_messages_a_success() -> None:
    check_outcome(SisImport({"id": 1, "workflow_state": "imported_with_messages"}), messages_ok=True)


def test_exit_codes_are_distinct() -> None:
    codes = [ImportedWithMessagesError, ImportFailedError, ImportAbortedError, WaitTimeoutError]
    assert len({c.exit_code for c in codes}) == len(codes)
    assert ImportOptionsError.exit_code == 2


# --- the wait loop -------------------------------------------------------------------------------------


def test_wait_follows_states_with_a_growing_interval() -> None:
    time = FakeTime()
    handler = sequence(
        state("created"), state("importing", 30), state("importing", 60), state("imported", 100)
    )
    seen: list[str] = []
    final = wait_for_import(
        api_for(handler, time),
        42,
        policy=WaitPolicy(first_interval_s=2, growth=2, max_interval_s=5),
        clock=time.clock,
        sleep=time.sleep,
        on_update=lambda s: seen.append(s.workflow_state),
    )
    assert final.workflow_state == "imported"
    assert seen == ["created", "importing", "importing", "imported"]
    assert time.sleeps == [2, 4, 5]


def test_stuck_import_times_out() -> None:
    time = FakeTime()
    api = api_for(sequence(state("initializing")), time)
    with pytest.raises(WaitTimeoutError, match=r"still initializing.*clever2sis status 42"):
        wait_for_import(api, 42, policy=WaitPolicy(timeout_s=120), clock=time.clock, sleep=time.sleep)
    assert time.now == pytest.approx(120)


def test_unknown_state_counts_as_running() -> None:
    time = FakeTime()
    api = api_for(sequence(state("some_new_state"), state("imported", 100)), time)
    final = wait_for_import(api, 42, clock=time.clock, sleep=time.sleep)
    assert final.workflow_state == "imported"


@pytest.mark.parametrize("end", ["failed_with_messages", "aborted"])
def test_wait_returns_failed_and_aborted_imports(end: str) -> None:
    time = FakeTime()
    api = api_for(sequence(state("importing", 10), state(end, 40)), time)
    final = wait_for_import(api, 42, clock=time.clock, sleep=time.sleep)
    assert final.workflow_state == end


def test_rate_limit_and_500_mid_poll_are_ridden_out() -> None:
    time = FakeTime()
    throttled = httpx.Response(403, text="403 Forbidden (Rate Limit Exceeded)")
    api = api_for(sequence(state("importing"), throttled, httpx.Response(500), state("imported", 100)), time)
    assert wait_for_import(api, 42, clock=time.clock, sleep=time.sleep).workflow_state == "imported"


def test_connection_lost_mid_poll_then_back() -> None:
    time = FakeTime()
    lost = httpx.ConnectError("network unreachable")
    problems: list[str] = []
    answers = [state("importing", 20), *[lost] * 4, state("imported", 100)]
    api = api_for(sequence(*answers), time)
    final = wait_for_import(api, 42, clock=time.clock, sleep=time.sleep, on_problem=problems.append)
    assert final.workflow_state == "imported"
    assert len(problems) == 1


def test_connection_lost_for_good_ends_the_wait_with_the_id() -> None:
    time = FakeTime()
    api = api_for(sequence(state("importing", 20), httpx.ConnectError("down")), time)
    with pytest.raises(CanvasUnavailableError, match=r"SIS import 42.*may still be running"):
        wait_for_import(api, 42, policy=WaitPolicy(max_poll_failures=3), clock=time.clock, sleep=time.sleep)
