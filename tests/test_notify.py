"""Alerts (``[notify]``): settings, which runs alert, the exact webhook bodies and mail, TLS before login,
bounded retries that never raise, and that no token, name or email of the run's data ever goes out.

Webhooks are posted to a real receiver on 127.0.0.1 (tests/webhook_server.py) and mail to a real SMTP relay
(tests/smtp_server.py) with a throwaway self-signed certificate made by openssl.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from clever2sis.config import RawConfig
from clever2sis.errors import ConfigError, UsageError
from clever2sis.notify import Delivery, NotifySettings, notify_run, parse_notify
from clever2sis.notify.facts import read_facts
from clever2sis.notify.message import (
    DAILY_SUMMARY,
    FAILURE,
    GUARD_STOP,
    MESSAGES,
    SCHOOLS_HELD,
    reasons,
)
from clever2sis.notify.settings import EmailSettings, WebhookSettings
from tests.smtp_server import PASSWORD, USERNAME, SmtpRelay, make_certificate
from tests.webhook_server import WEBHOOK_PATH, WebhookReceiver

CONFIG = Path("/etc/clever2sis/clever2sis.toml")
RUN_ID = "20270105T060000Z"
DISTRICT_ID = "5f0c1d2e3a4b5c6d7e8f9a0b"
CANVAS_TOKEN = "canvas-token-7~Zq81kRmN2pVxT4yW"
CLEVER_TOKEN = "clever-token-0f9e8d7c6b5a4f3e2d1c"
SMTP_ENV = {"SMTP_USERNAME": USERNAME, "SMTP_PASSWORD": PASSWORD}


def raw(notify: object) -> RawConfig:
    return RawConfig(data={"notify": notify}, path=CONFIG)


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, message: str) -> None:
        self.lines.append(message)


class Sleeps:
    """An injected sleep that records each wait and moves the injected clock on by it."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 0.0

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def run_dir(tmp: Path, *, record: dict[str, Any], district_name: str = "Springfield Unified") -> Path:
    """A run directory as a sync leaves it, with the three files an alert reads."""
    directory = tmp / "runs" / RUN_ID
    (directory / "snapshot").mkdir(parents=True)
    (directory / "snapshot" / "manifest.json").write_bytes(
        orjson.dumps(
            {"format": "clever2sis-snapshot", "district": {"id": DISTRICT_ID, "name": district_name}}
        )
    )
    (directory / "run.json").write_bytes(orjson.dumps(record))
    return directory


def with_messages(tmp: Path) -> dict[str, Any]:
    """An import that ended imported_with_messages (exit 20): a failure with 3 warnings."""
    directory = run_dir(tmp, record={"import_counts": {"users": 600, "warning_count": 3}})
    return {
        "run_id": RUN_ID,
        "profile": "nightly",
        "district_id": DISTRICT_ID,
        "started": "2027-01-05T06:00:00Z",
        "finished": "2027-01-05T06:12:30Z",
        "outcome": "imported_with_messages",
        "exit_code": 20,
        "message": "SIS import 101 ended imported_with_messages; some rows were skipped (--messages-ok makes "
        "this exit 0)",
        "rows": {"users.csv": 612, "enrollments.csv": 4410},
        "changes": {
            "accounts.csv": {"added": 0, "removed": 0, "changed": 0},
            "courses.csv": {"added": 1, "removed": 0, "changed": 0},
            "sections.csv": {"added": 1, "removed": 0, "changed": 0},
            "users.csv": {"added": 2, "removed": 2, "changed": 1},
            "enrollments.csv": {"added": 8, "removed": 9, "changed": 3},
        },
        "guard": "passed",
        "remaster": False,
        "sis_import_id": 101,
        "import_state": "imported_with_messages",
        "run_dir": str(directory),
    }


def guard_stopped(tmp: Path) -> dict[str, Any]:
    shrinks = [
        {"kind": "file", "what": "accounts.csv", "before": 3, "after": 2, "lost": 1, "limit_percent": 10.0},
        {"kind": "school", "what": "school Lincoln Middle (S2)", "before": 40, "after": 0, "lost": 40},
    ]
    directory = run_dir(tmp, record={"guard_details": {"verdict": "stopped", "shrinks": shrinks}})
    return {
        "run_id": RUN_ID,
        "profile": "nightly",
        "district_id": DISTRICT_ID,
        "outcome": "guard_stopped",
        "exit_code": 51,
        "message": "nothing was uploaded: against run 20270104T060000Z, accounts.csv lost 1 of 3 rows (33.3%, "
        "limit 10%); school Lincoln Middle (S2) vanished (40 before, 0 now). If the district really changed "
        "this much, re-run with --allow-large-change",
        "changes": {"accounts.csv": {"added": 0, "removed": 1, "changed": 0}},
        "guard": "stopped",
        "sis_import_id": None,
        "import_state": None,
        "run_dir": str(directory),
    }


def webhook_settings(url: str, fmt: str = "json", **notify: Any) -> NotifySettings:
    return NotifySettings(webhook=WebhookSettings(format=fmt, url=url), **notify)


# --- settings ---------------------------------------------------------------------------------------------


def test_no_notify_table_sends_nothing_and_a_full_table_is_read(tmp_path: Path) -> None:
    assert parse_notify(RawConfig({})) == NotifySettings()
    assert not NotifySettings().enabled
    assert notify_run(NotifySettings(), {"exit_code": 52}) == []
    (tmp_path / "relay-ca.pem").write_text("x")
    settings = parse_notify(
        RawConfig(
            {
                "notify": {
                    "on_messages": False,
                    "messages_threshold": 5,
                    "daily_summary": True,
                    "report_base_url": "https://reports.example.org/clever2sis/",
                    "timeout_s": 2,
                    "webhook": {"url_env": "C2S_WEBHOOK", "format": "teams"},
                    "email": {
                        "host": "smtp.example.org",
                        "security": "tls",
                        "from": "clever2sis@example.org",
                        "to": ["it@example.org", "rostering@example.org"],
                        "username_env": "SMTP_USERNAME",
                        "password_env": "SMTP_PASSWORD",
                        "ca_file": "relay-ca.pem",
                    },
                }
            },
            tmp_path / "clever2sis.toml",
        )
    )
    assert settings == NotifySettings(
        webhook=WebhookSettings(format="teams", url_env="C2S_WEBHOOK"),
        email=EmailSettings(
            host="smtp.example.org",
            sender="clever2sis@example.org",
            to=("it@example.org", "rostering@example.org"),
            port=465,
            security="tls",
            username_env="SMTP_USERNAME",
            password_env="SMTP_PASSWORD",
            ca_file=tmp_path / "relay-ca.pem",
        ),
        on_messages=False,
        messages_threshold=5,
        daily_summary=True,
        report_base_url="https://reports.example.org/clever2sis",
        timeout_s=2.0,
    )
    assert parse_notify(raw({"email": {"host": "h", "from": "a@b.org", "to": ["c@d.org"]}})).email == (
        EmailSettings(host="h", sender="a@b.org", to=("c@d.org",), port=587, security="starttls")
    )


S = "/etc/clever2sis/clever2sis.toml"


@pytest.mark.parametrize(
    ("notify", "message"),
    [
        ({"on_fail": True}, f"{S}: unknown key notify.on_fail; known keys: daily_summary, email, "),
        ({"daily_summary": "yes"}, f"{S}: notify.daily_summary must be a bool, not 'yes'"),
        (
            {"messages_threshold": -1},
            f"{S}: notify.messages_threshold is a count of warnings (0 or more), not -1",
        ),
        (
            {"timeout_s": 0},
            f"{S}: notify.timeout_s is seconds per attempt, more than 0 and at most 30, not 0",
        ),
        (
            {"timeout_s": True},
            f"{S}: notify.timeout_s must be a int or float, not True",
        ),
        ({"report_base_url": "reports"}, f"{S}: notify.report_base_url: 'reports' is not a URL; use e.g. "),
        ({"webhook": "https://x"}, f"{S}: [notify.webhook] must be a table"),
        ({"webhook": {"format": "slack"}}, f"{S}: [notify.webhook] needs url_env (the environment variable "),
        ({"webhook": {"url": "https://h.example", "url_env": "X"}}, f"{S}: [notify.webhook] needs url_env "),
        (
            {"webhook": {"url_env": "X", "format": "discord"}},
            f"{S}: notify.webhook.format = 'discord'; use one of: slack, teams, json",
        ),
        (
            {"webhook": {"url_env": "my-url"}},
            f"{S}: notify.webhook.url_env = 'my-url': name an environment variable",
        ),
        (
            {"webhook": {"url": "http://hooks.example.org/x"}},
            f"{S}: notify.webhook.url: use https:// (the alert would cross the network in clear)",
        ),
        (
            {"webhook": {"url": "https://u:p@hooks.example.org/x"}},
            f"{S}: notify.webhook.url: give the URL without credentials or #fragment",
        ),
        ({"email": {"host": "h", "from": "a@b.org"}}, f"{S}: notify.email.to is required"),
        (
            {"email": {"host": "h", "from": "a@b.org", "to": []}},
            f"{S}: notify.email.to must not be empty",
        ),
        (
            {"email": {"host": "h", "from": "a@b.org", "to": ["Ann <a@b.org>"]}},
            f"{S}: notify.email.to: 'Ann <a@b.org>' is not an email address (name@domain)",
        ),
        (
            {"email": {"host": "h", "from": "a@b.org", "to": ["c@d.org"], "port": 0}},
            f"{S}: notify.email.port must be from 1 to 65535, not 0",
        ),
        (
            {"email": {"host": "h", "from": "a@b.org", "to": ["c@d.org"], "security": "none"}},
            f"{S}: notify.email.security = 'none'; use one of: starttls, tls",
        ),
        (
            {"email": {"host": "h", "from": "a@b.org", "to": ["c@d.org"], "password": "hunter2"}},
            f"{S}: notify.email.password: credentials never go in this file; set password_env to the name of an environment variable that holds it",
        ),
        (
            {"email": {"host": "h", "from": "a@b.org", "to": ["c@d.org"], "password_env": "P"}},
            f"{S}: notify.email: give both username_env and password_env, or neither",
        ),
        (
            {"email": {"host": "h", "from": "a@b.org", "to": ["c@d.org"], "ca_file": "nope.pem"}},
            f"{S}: notify.email.ca_file: /etc/clever2sis/nope.pem is not a file",
        ),
        (
            {"email": {"host": "smtp example", "from": "a@b.org", "to": ["c@d.org"]}},
            f"{S}: notify.email.host = 'smtp example': give a host name or address only",
        ),
    ],
)
def test_bad_notify_settings_are_refused_with_the_file_named(notify: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_notify(raw(notify))
    assert str(caught.value).startswith(message)


def test_the_environment_is_checked_before_a_run_and_named_when_missing() -> None:
    settings = parse_notify(
        raw(
            {
                "webhook": {"url_env": "C2S_WEBHOOK"},
                "email": {
                    "host": "h",
                    "from": "a@b.org",
                    "to": ["c@d.org"],
                    "username_env": "SMTP_USERNAME",
                    "password_env": "SMTP_PASSWORD",
                },
            }
        )
    )
    with pytest.raises(
        UsageError, match=r"^set C2S_WEBHOOK to the webhook URL \(notify\.webhook\.url_env names it\)$"
    ):
        settings.check_environment({})
    with pytest.raises(ConfigError, match=r"^C2S_WEBHOOK: use https:// "):
        settings.check_environment({"C2S_WEBHOOK": "http://hooks.example.org/x"})
    with pytest.raises(
        UsageError, match=r"^set SMTP_PASSWORD for the SMTP login \(notify\.email names it\); "
    ):
        settings.check_environment({"C2S_WEBHOOK": "https://hooks.example.org/x", "SMTP_USERNAME": "u"})
    settings.check_environment({"C2S_WEBHOOK": "https://hooks.example.org/x", **SMTP_ENV})


# --- triggers ---------------------------------------------------------------------------------------------


def facts(exit_code: int | None, warnings: int | None = None, tmp: Path | None = None) -> Any:
    summary: dict[str, Any] = {"exit_code": exit_code, "outcome": "x"}
    if warnings is not None and tmp is not None:
        directory = tmp / f"w{warnings}-{exit_code}"
        directory.mkdir()
        (directory / "run.json").write_bytes(orjson.dumps({"import_counts": {"warning_count": warnings}}))
        summary["run_dir"] = str(directory)
    return read_facts(summary)


@pytest.mark.parametrize(
    ("exit_code", "warnings", "settings", "expected"),
    [
        (0, 0, {}, ()),
        (0, 0, {"daily_summary": True}, (DAILY_SUMMARY,)),
        (50, None, {"daily_summary": True}, ()),
        (50, 7, {"daily_summary": True}, ()),
        (51, None, {}, (GUARD_STOP,)),
        (51, None, {"on_guard_stop": False}, ()),
        (52, None, {}, (FAILURE,)),
        (2, None, {}, (FAILURE,)),
        (None, None, {}, (FAILURE,)),
        (52, None, {"on_failure": False}, ()),
        (51, None, {"on_failure": False}, (GUARD_STOP,)),
        (56, None, {}, (SCHOOLS_HELD,)),
        (56, None, {"on_schools_held": False}, ()),
        (56, None, {"on_failure": False}, (SCHOOLS_HELD,)),
        (56, 3, {}, (SCHOOLS_HELD, MESSAGES)),
        (20, 3, {}, (FAILURE, MESSAGES)),
        (20, 3, {"on_failure": False}, (MESSAGES,)),
        (0, 3, {}, (MESSAGES,)),
        (0, 3, {"daily_summary": True}, (MESSAGES, DAILY_SUMMARY)),
        (0, 3, {"messages_threshold": 3}, ()),
        (0, 4, {"messages_threshold": 3}, (MESSAGES,)),
        (0, 3, {"on_messages": False}, ()),
    ],
)
def test_which_runs_alert(
    tmp_path: Path,
    exit_code: int | None,
    warnings: int | None,
    settings: dict[str, Any],
    expected: tuple[str, ...],
) -> None:
    assert reasons(NotifySettings(**settings), facts(exit_code, warnings, tmp_path)) == expected


def test_warnings_are_counted_from_processing_warnings_when_the_counts_lack_them(tmp_path: Path) -> None:
    directory = run_dir(tmp_path, record={"import_counts": {"users": 3}})
    final = directory / "build" / "imports" / "nightly" / "101" / "sis_import.json"
    final.parent.mkdir(parents=True)
    listed = [["users.csv", f"warning {n}"] for n in range(24)]
    more = ["and 6 more warnings that were not included", "Download the error file to see all warnings."]
    final.write_bytes(orjson.dumps({"id": 101, "processing_warnings": [*listed, more]}))
    summary = {"run_dir": str(directory), "profile": "nightly", "sis_import_id": 101, "exit_code": 0}
    assert read_facts(summary).warnings == 30
    final.write_bytes(orjson.dumps({"id": 101, "processing_warnings": listed[:2]}))
    assert read_facts(summary).warnings == 2
    assert read_facts({**summary, "sis_import_id": None}).warnings is None


# --- webhooks: the exact bodies ---------------------------------------------------------------------------

HEADLINE = (
    f"clever2sis: sync failed: imported_with_messages (exit 20) for Springfield Unified ({DISTRICT_ID}), "
    "profile nightly"
)
REPORT_URL = f"https://reports.example.org/clever2sis/{RUN_ID}/"
MESSAGE = (
    "SIS import 101 ended imported_with_messages; some rows were skipped (--messages-ok makes this exit 0)"
)


def expected_fields(run_dir: str) -> list[tuple[str, str]]:
    return [
        ("District", f"Springfield Unified ({DISTRICT_ID})"),
        ("Profile", "nightly"),
        ("Outcome", "imported_with_messages, exit 20"),
        ("Message", MESSAGE),
        ("Changes", "enrollments.csv +8 -9 ~3; users.csv +2 -2 ~1; courses.csv +1 -0 ~0"),
        ("Import", "sis_import 101 imported_with_messages, 3 warnings"),
        ("Run", f"{RUN_ID} in {run_dir}"),
        ("Report", REPORT_URL),
        ("Sent because", "failure, messages"),
    ]


def expected_body(fmt: str, run_dir: str) -> dict[str, Any]:
    fields = expected_fields(run_dir)
    if fmt == "slack":
        lines = [
            f"*{label}:* <{value}>" if label == "Report" else f"*{label}:* {value}" for label, value in fields
        ]
        return {
            "text": HEADLINE,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": HEADLINE}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            ],
        }
    if fmt == "teams":
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {
                                "type": "TextBlock",
                                "text": HEADLINE,
                                "weight": "Bolder",
                                "size": "Medium",
                                "wrap": True,
                                "color": "Attention",
                            },
                            {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in fields]},
                        ],
                        "actions": [{"type": "Action.OpenUrl", "title": "Open the run", "url": REPORT_URL}],
                    },
                }
            ],
        }
    return {
        "format": "clever2sis.alert",
        "format_version": 1,
        "clever2sis_version": "0.1.0",
        "headline": HEADLINE,
        "reasons": ["failure", "messages"],
        "run_id": RUN_ID,
        "profile": "nightly",
        "district": {"id": DISTRICT_ID, "name": "Springfield Unified"},
        "outcome": "imported_with_messages",
        "exit_code": 20,
        "message": MESSAGE,
        "changes": [
            {"file": "enrollments.csv", "added": 8, "removed": 9, "changed": 3},
            {"file": "users.csv", "added": 2, "removed": 2, "changed": 1},
            {"file": "courses.csv", "added": 1, "removed": 0, "changed": 0},
        ],
        "guard": {"verdict": "passed", "findings": []},
        "held_schools": {"count": 0, "shown": []},
        "sis_import": {"id": 101, "state": "imported_with_messages", "warnings": 3},
        "run_dir": run_dir,
        "report_url": REPORT_URL,
        "text": HEADLINE + "\n\n" + "".join(f"{label}: {value}\n" for label, value in fields),
    }


@pytest.mark.parametrize("fmt", ["slack", "teams", "json"])
def test_each_webhook_format_posts_its_exact_json(tmp_path: Path, fmt: str) -> None:
    summary = with_messages(tmp_path)
    log = Log()
    with WebhookReceiver() as hook:
        settings = webhook_settings(hook.url, fmt, report_base_url="https://reports.example.org/clever2sis")
        deliveries = notify_run(settings, summary, log=log, sleep=Sleeps())
    assert deliveries == [Delivery("webhook", True, 1)]
    assert log.lines == [f"alert sent by webhook ({fmt} to 127.0.0.1)"]
    [received] = hook.received
    assert received.path == WEBHOOK_PATH
    assert received.headers["content-type"] == "application/json"
    assert received.headers["user-agent"] == "clever2sis/0.1.0"
    assert received.json() == expected_body(fmt, summary["run_dir"])


def test_a_guard_stop_lists_what_shrank_and_slack_text_is_escaped(tmp_path: Path) -> None:
    summary = guard_stopped(tmp_path)
    summary["message"] = "nothing was uploaded: <!channel> & more"
    with WebhookReceiver() as hook:
        notify_run(webhook_settings(hook.url, "json"), summary)
        notify_run(webhook_settings(hook.url, "slack"), summary)
    body, slack = (r.json() for r in hook.received)
    assert body["headline"] == (
        f"clever2sis: the guard stopped the sync; nothing was uploaded for Springfield Unified ({DISTRICT_ID}), "
        "profile nightly"
    )
    assert body["reasons"] == ["guard_stop"]
    assert body["guard"] == {
        "verdict": "stopped",
        "findings": [
            "accounts.csv lost 1 of 3 rows (33.3%, limit 10%)",
            "school Lincoln Middle (S2) vanished (40 before, 0 now)",
        ],
    }
    assert body["sis_import"] == {"id": None, "state": None, "warnings": None}
    assert (
        "Guard (stopped): accounts.csv lost 1 of 3 rows (33.3%, limit 10%); school Lincoln Middle (S2) "
        in (body["text"])
    )
    assert (
        "*Message:* nothing was uploaded: &lt;!channel&gt; &amp; more" in slack["blocks"][1]["text"]["text"]
    )
    assert "<!channel>" not in orjson.dumps(slack).decode()


def schools_held(tmp: Path) -> dict[str, Any]:
    """A night the guard held two schools (exit 56): one named with an email in it, one held since an
    earlier night; a third entry whose account id is no id."""
    shrinks = [
        {"kind": "identity", "what": "users.csv login_id", "before": 90, "after": 90, "lost": 80,
         "limit_percent": 5.0, "examples": ["ann@old.example.org -> ann@new.example.org"]},
    ]  # fmt: skip
    directory = run_dir(tmp, record={"guard_details": {"verdict": "held", "shrinks": shrinks}})
    held = [
        {"account_id": "S2", "school_id": "5c1a", "name": "Lincoln Middle (ask jo@example.org)",
         "since": "2027-01-03T06:00:00Z", "lost": {"students": 40, "enrollments": 80, "teachers": "x"},
         "release": "--allow-large-change S2"},
        {"account_id": "S7", "school_id": "5c1b", "name": "Oak Elementary", "since": "yesterday",
         "lost": {"sections": 4}, "release": "--allow-large-change S7"},
        {"account_id": "S 9; rm", "name": "x", "lost": {}},
    ]  # fmt: skip
    return {
        "run_id": RUN_ID,
        "profile": "nightly",
        "district_id": DISTRICT_ID,
        "outcome": "schools_held",
        "exit_code": 56,
        "message": "2 school(s) held, every other school updated",
        "guard": "held",
        "held_schools": held,
        "sis_import_id": 101,
        "import_state": "imported",
        "run_dir": str(directory),
    }


def test_held_schools_are_named_with_what_they_would_lose_and_how_to_release_them(tmp_path: Path) -> None:
    summary = schools_held(tmp_path)
    with WebhookReceiver() as hook:
        notify_run(webhook_settings(hook.url, "json"), summary)
        notify_run(webhook_settings(hook.url, "teams"), summary)
    body, teams = (r.json() for r in hook.received)
    assert body["headline"] == (
        "clever2sis: the guard held 2 school(s); every other school was updated for Springfield Unified "
        f"({DISTRICT_ID}), profile nightly"
    )
    assert body["reasons"] == ["schools_held"]
    assert body["held_schools"] == {
        "count": 2,
        "shown": [
            {
                "account_id": "S2",
                "school_id": "5c1a",
                "name": "Lincoln Middle (ask [email])",
                "since": "2027-01-03T06:00:00Z",
                "lost": {"students": 40, "enrollments": 80},
                "release": "--allow-large-change S2",
            },
            {
                "account_id": "S7",
                "school_id": "5c1b",
                "name": "Oak Elementary",
                "since": None,
                "lost": {"sections": 4},
                "release": "--allow-large-change S7",
            },
        ],
    }
    # An identity finding says how many changed, never the logins it changed.
    assert body["guard"] == {
        "verdict": "held",
        "findings": ["users.csv login_id changed for 80 of 90 rows (88.9%, limit 5%)"],
    }
    assert "example.org" not in orjson.dumps(body).decode()
    assert (
        "Held schools: Lincoln Middle (ask [email]) (S2) since 2027-01-03T06:00:00Z: would lose 40 students, "
        "80 enrollments; release with --allow-large-change S2; Oak Elementary (S7): would lose 4 sections; "
        "release with --allow-large-change S7\n"
    ) in body["text"]
    card = teams["attachments"][0]["content"]["body"]
    assert card[0]["color"] == "Warning"


def test_an_alert_names_ten_held_schools_and_counts_the_rest(tmp_path: Path) -> None:
    summary = schools_held(tmp_path)
    summary["held_schools"] = [
        {"account_id": f"S{n:02d}", "name": f"School {n}", "lost": {"students": n + 1}} for n in range(12)
    ]
    found = read_facts(summary)
    assert (found.held_count, [school.account_id for school in found.held]) == (
        12,
        [f"S{n:02d}" for n in range(10)],
    )


def test_a_webhook_url_from_the_environment_is_used_and_never_logged(tmp_path: Path) -> None:
    log = Log()
    with WebhookReceiver() as hook:
        settings = NotifySettings(webhook=WebhookSettings(format="json", url_env="C2S_WEBHOOK"))
        assert notify_run(settings, guard_stopped(tmp_path), log=log, environ={"C2S_WEBHOOK": hook.url})[
            0
        ].sent
        assert notify_run(settings, guard_stopped(tmp_path / "b"), log=log, environ={}) == [
            Delivery(
                "webhook", False, 0, "set C2S_WEBHOOK to the webhook URL (notify.webhook.url_env names it)"
            )
        ]
    assert len(hook.received) == 1
    assert log.lines == [
        "alert sent by webhook (json to 127.0.0.1)",
        "warning: alert by webhook not sent: set C2S_WEBHOOK to the webhook URL (notify.webhook.url_env names "
        "it); the run's outcome is unchanged",
    ]
    assert all(WEBHOOK_PATH not in line for line in log.lines)


# --- retries, give-ups, timeouts --------------------------------------------------------------------------


def test_a_webhook_is_retried_with_backoff_until_it_answers(tmp_path: Path) -> None:
    sleeps, log = Sleeps(), Log()
    with WebhookReceiver([500, 503]) as hook:
        deliveries = notify_run(
            webhook_settings(hook.url), guard_stopped(tmp_path), sleep=sleeps, clock=sleeps.clock, log=log
        )
    assert deliveries == [Delivery("webhook", True, 3)]
    assert sleeps.waits == [1.0, 2.0]
    assert len(hook.received) == 3
    assert hook.received[0].body == hook.received[2].body
    assert log.lines == [
        "alert by webhook (json to 127.0.0.1): attempt 1 failed (HTTP 500 invalid_payload); trying again in 1 s",
        "alert by webhook (json to 127.0.0.1): attempt 2 failed (HTTP 503 invalid_payload); trying again in 2 s",
        "alert sent by webhook (json to 127.0.0.1)",
    ]


def test_a_webhook_that_keeps_failing_is_given_up_without_raising(tmp_path: Path) -> None:
    sleeps, log = Sleeps(), Log()
    with WebhookReceiver([502] * 5) as hook:
        deliveries = notify_run(webhook_settings(hook.url), guard_stopped(tmp_path), sleep=sleeps, log=log)
    assert deliveries == [Delivery("webhook", False, 3, "HTTP 502 invalid_payload")]
    assert len(hook.received) == 3
    assert log.lines[-1] == (
        "warning: alert by webhook (json to 127.0.0.1) not sent after 3 attempts: HTTP 502 invalid_payload; "
        "the run's outcome is unchanged"
    )


def test_a_webhook_that_refuses_the_payload_is_not_retried(tmp_path: Path) -> None:
    sleeps = Sleeps()
    with WebhookReceiver([400, 400]) as hook:
        deliveries = notify_run(webhook_settings(hook.url), guard_stopped(tmp_path), sleep=sleeps)
    assert deliveries == [Delivery("webhook", False, 1, "HTTP 400 invalid_payload")]
    assert sleeps.waits == []


def test_a_closed_port_is_retried_then_given_up(tmp_path: Path) -> None:
    with WebhookReceiver() as hook:
        url = hook.url
    sleeps, log = Sleeps(), Log()
    [delivery] = notify_run(webhook_settings(url), guard_stopped(tmp_path), sleep=sleeps, log=log)
    assert (delivery.sent, delivery.attempts) == (False, 3)
    assert delivery.error is not None
    assert delivery.error.startswith("ConnectError: ")
    assert WEBHOOK_PATH not in "\n".join(log.lines)


def test_retry_after_is_honoured_up_to_a_cap_and_the_deadline_bounds_all_attempts(tmp_path: Path) -> None:
    sleeps = Sleeps()
    answers = iter([httpx.Response(429, headers={"Retry-After": "60"}), httpx.Response(204)])
    transport = httpx.MockTransport(lambda request: next(answers))
    settings = webhook_settings("https://hooks.example.org/x")
    assert notify_run(settings, guard_stopped(tmp_path), transport=transport, sleep=sleeps) == [
        Delivery("webhook", True, 2)
    ]
    assert sleeps.waits == [5.0]

    slow = Sleeps()

    def nine_seconds_then_500(request: httpx.Request) -> httpx.Response:
        slow.now += 9.0
        return httpx.Response(500)

    deliveries = notify_run(
        settings,
        guard_stopped(tmp_path / "b"),
        transport=httpx.MockTransport(nine_seconds_then_500),
        sleep=slow,
        clock=slow.clock,
    )
    # 9 s, a 1 s wait, 9 s: a 2 s wait and another attempt would end past the 20 s deadline.
    assert deliveries == [Delivery("webhook", False, 2, "HTTP 500")]
    assert slow.waits == [1.0]


def test_a_hanging_webhook_does_not_hang_the_run(tmp_path: Path) -> None:
    log = Log()
    with WebhookReceiver(hang_s=30) as hook:
        started = time.monotonic()
        deliveries = notify_run(
            webhook_settings(hook.url, timeout_s=0.2), guard_stopped(tmp_path), sleep=Sleeps(), log=log
        )
        elapsed = time.monotonic() - started
    assert deliveries == [Delivery("webhook", False, 3, "no answer within 0.2 s")]
    assert elapsed < 5
    assert log.lines[-1].startswith("warning: alert by webhook (json to 127.0.0.1) not sent after 3 attempts")


def test_an_unexpected_error_is_logged_and_never_raised(tmp_path: Path) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError(f"boom with {CANVAS_TOKEN}")

    log = Log()
    deliveries = notify_run(
        webhook_settings("https://hooks.example.org/x"),
        guard_stopped(tmp_path),
        transport=httpx.MockTransport(broken),
        log=log,
        secrets=[CANVAS_TOKEN],
    )
    assert deliveries == [Delivery("alert", False, 0, "RuntimeError: boom with [redacted]")]
    assert log.lines == [
        "warning: alert not sent: RuntimeError: boom with [redacted]; the run's outcome is unchanged"
    ]


# --- email ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    made = make_certificate(tmp_path_factory.mktemp("tls"))
    if made is None:
        pytest.skip("no openssl on PATH to make a throwaway certificate for the TLS relay")
    return made


def email_settings(relay: SmtpRelay, ca_file: Path | None, **changes: Any) -> NotifySettings:
    mail = EmailSettings(
        host=relay.host,
        port=relay.port,
        sender="clever2sis@example.org",
        to=("it@example.org", "rostering@example.org"),
        username_env="SMTP_USERNAME",
        password_env="SMTP_PASSWORD",
        ca_file=ca_file,
    )
    return NotifySettings(email=dataclasses.replace(mail, **changes), timeout_s=2)


def test_email_goes_over_starttls_and_logs_in_only_after_it(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    summary = with_messages(tmp_path)
    log = Log()
    with SmtpRelay(certificate) as relay:
        deliveries = notify_run(email_settings(relay, certificate[0]), summary, environ=SMTP_ENV, log=log)
    assert deliveries == [Delivery("email", True, 1)]
    assert log.lines == [f"alert sent by email (127.0.0.1:{relay.port})"]
    [session] = relay.sessions
    verbs = [(line.split(" ")[0].upper(), tls) for line, tls in session.commands]
    assert verbs == [
        ("EHLO", False),
        ("STARTTLS", False),
        ("EHLO", True),
        ("AUTH", True),
        ("MAIL", True),
        ("RCPT", True),
        ("RCPT", True),
        ("DATA", True),
        ("QUIT", True),
    ]
    assert session.logins == [(USERNAME, PASSWORD, True)]
    assert session.recipients == ["it@example.org", "rostering@example.org"]
    [raw_message] = session.messages
    message = email.message_from_bytes(raw_message, policy=email.policy.default)
    assert message["Subject"] == HEADLINE
    assert message["From"] == "clever2sis@example.org"
    assert message["To"] == "it@example.org, rostering@example.org"
    assert message["Date"] == "Tue, 05 Jan 2027 06:12:30 +0000"
    assert message["Auto-Submitted"] == "auto-generated"
    body = message.get_body()
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == expected_body("json", summary["run_dir"])[
        "text"
    ].replace(f"Report: {REPORT_URL}\n", "")


def test_a_relay_without_starttls_gets_nothing_not_even_the_credentials(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    log = Log()
    with SmtpRelay(certificate, starttls=False) as relay:
        deliveries = notify_run(
            email_settings(relay, certificate[0]),
            guard_stopped(tmp_path),
            environ=SMTP_ENV,
            log=log,
            sleep=Sleeps(),
        )
    reason = (
        "the relay does not offer STARTTLS, so nothing was sent (no credentials either); use a relay that "
        'does, or security = "tls"'
    )
    assert deliveries == [Delivery("email", False, 1, reason)]
    assert log.lines == [
        f"warning: alert by email (127.0.0.1:{relay.port}) not sent after 1 attempt: {reason}; the run's "
        "outcome is unchanged"
    ]
    [session] = relay.sessions
    assert [line.split(" ")[0].upper() for line, _ in session.commands] == ["EHLO", "QUIT"]
    assert session.logins == []
    assert session.messages == []


def test_implicit_tls_and_a_relay_without_login(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    with SmtpRelay(certificate, implicit_tls=True, auth=False) as relay:
        settings = email_settings(relay, certificate[0], security="tls", username_env=None, password_env=None)
        assert notify_run(settings, guard_stopped(tmp_path), environ={}) == [Delivery("email", True, 1)]
    [session] = relay.sessions
    assert all(tls for _, tls in session.commands)
    assert "STARTTLS" not in [line for line, _ in session.commands]
    assert len(session.messages) == 1


def test_an_untrusted_certificate_is_refused_and_not_retried(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    sleeps = Sleeps()
    with SmtpRelay(certificate) as relay:
        [delivery] = notify_run(
            email_settings(relay, None), guard_stopped(tmp_path), environ=SMTP_ENV, sleep=sleeps
        )
    assert (delivery.sent, delivery.attempts, sleeps.waits) == (False, 1, [])
    assert delivery.error is not None
    assert delivery.error.startswith("the relay's certificate is not trusted (")
    assert delivery.error.endswith("); for a private CA set notify.email.ca_file")
    assert relay.sessions[0].logins == []


def test_a_busy_relay_is_retried_and_wrong_credentials_are_not(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    sleeps, log = Sleeps(), Log()
    with SmtpRelay(certificate, refuse_first=1) as relay:
        deliveries = notify_run(
            email_settings(relay, certificate[0]),
            guard_stopped(tmp_path),
            environ=SMTP_ENV,
            sleep=sleeps,
            log=log,
        )
        assert deliveries == [Delivery("email", True, 2)]
        assert sleeps.waits == [1.0]
        assert log.lines[0] == (
            f"alert by email (127.0.0.1:{relay.port}): attempt 1 failed (SMTP 421 test relay busy, try again "
            "later); trying again in 1 s"
        )
        wrong = {**SMTP_ENV, "SMTP_PASSWORD": "wrong"}
        assert notify_run(
            email_settings(relay, certificate[0]), guard_stopped(tmp_path / "b"), environ=wrong, sleep=sleeps
        ) == [Delivery("email", False, 1, "the relay refused the login (SMTP 535)")]
        assert notify_run(
            email_settings(relay, certificate[0]), guard_stopped(tmp_path / "c"), environ={}, sleep=sleeps
        ) == [
            Delivery(
                "email",
                False,
                0,
                "set SMTP_USERNAME for the SMTP login (notify.email names it); or remove username_env and "
                "password_env for a relay without login",
            )
        ]


def test_a_hanging_relay_does_not_hang_the_run(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    with SmtpRelay(certificate, hang=True) as relay:
        settings = dataclasses.replace(email_settings(relay, certificate[0]), timeout_s=0.2)
        started = time.monotonic()
        deliveries = notify_run(settings, guard_stopped(tmp_path), environ=SMTP_ENV, sleep=Sleeps())
        elapsed = time.monotonic() - started
    assert deliveries == [Delivery("email", False, 3, "no answer within 0.2 s")]
    assert elapsed < 5


# --- nothing secret, nothing personal ---------------------------------------------------------------------

# A student's details, planted where a summary should never hold them.
NAME, EMAIL, LOGIN = "Avery Quintanilla", "avery.quintanilla@students.example.org", "aquintanilla07"


def planted(tmp: Path) -> dict[str, Any]:
    shrinks = [
        {"kind": "file", "what": f"{NAME} {EMAIL}", "before": 3, "after": 2, "lost": 1, "limit_percent": 10},
        {"kind": "role", "what": f"all students of school {EMAIL}", "before": 4, "after": 0, "lost": 4},
        {"kind": "user", "what": NAME, "before": 1, "after": 0, "lost": 1},
        {"kind": "school", "what": "school Lincoln Middle (S2)", "before": LOGIN, "after": 0, "lost": 40},
    ]
    record = {
        "guard_details": {"verdict": "stopped", "shrinks": shrinks},
        "import_counts": {"warning_count": 2, "users": NAME},
        "users": [{"name": NAME, "email": EMAIL, "login_id": LOGIN}],
    }
    directory = run_dir(tmp, record=record, district_name=f"Springfield Unified (contact {EMAIL})")
    return {
        "run_id": f"{RUN_ID} {NAME}",
        "profile": LOGIN + " " + NAME,
        "district_id": NAME,
        "outcome": EMAIL,
        "exit_code": 51,
        "message": f"nothing was uploaded ({CANVAS_TOKEN}, {CLEVER_TOKEN}, mail {EMAIL}, token={PASSWORD})",
        "rows": {NAME: 1, "users.csv": LOGIN},
        "changes": {
            NAME: {"added": 1},
            "users.csv": {"added": EMAIL, "removed": 2, LOGIN: 3},
            EMAIL: {"added": 5},
        },
        "guard": "stopped",
        "sis_import_id": LOGIN,
        "import_state": NAME,
        "students": [{"first_name": "Avery", "last_name": "Quintanilla", "email": EMAIL, "login": LOGIN}],
        "run_dir": str(directory),
    }


def test_no_token_name_or_email_reaches_any_alert(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    summary = planted(tmp_path)
    secrets = [CANVAS_TOKEN, CLEVER_TOKEN]
    bodies: list[str] = []
    log = Log()
    with WebhookReceiver() as hook, SmtpRelay(certificate) as relay:
        mail = email_settings(relay, certificate[0]).email
        for fmt in ("slack", "teams", "json"):
            settings = webhook_settings(hook.url, fmt, email=mail)
            notify_run(settings, summary, environ=SMTP_ENV, secrets=secrets, log=log)
    bodies += [received.body.decode() for received in hook.received]
    bodies += [message.decode() for session in relay.sessions for message in session.messages]
    assert len(bodies) == 6
    for body in [*bodies, *log.lines]:
        for forbidden in (
            CANVAS_TOKEN,
            CLEVER_TOKEN,
            PASSWORD,
            WEBHOOK_PATH,
            NAME,
            EMAIL,
            LOGIN,
            "Quintanilla",
            "Avery",
        ):
            assert forbidden not in body, (forbidden, body)
    body = orjson.loads(hook.received[2].body)
    assert body["message"] == (
        "nothing was uploaded ([redacted], [redacted], mail [email], token=[redacted])"
    )
    assert body["district"] == {"id": None, "name": "Springfield Unified (contact [email])"}
    assert (body["run_id"], body["profile"], body["outcome"]) == (None, None, "unknown")
    assert body["changes"] == [{"file": "users.csv", "added": 0, "removed": 2, "changed": 0}]
    assert body["guard"]["findings"] == ["all students of school [email] vanished (4 before, 0 now)"]
    assert body["sis_import"] == {"id": None, "state": None, "warnings": 2}


# --- real runs --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nightly_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """Two real sync runs against the local Clever and Canvas servers: a first night, then a night on which
    a school vanished from Clever and the guard held it (every other school updated)."""
    from clever2sis.canvas.client import CanvasClient
    from clever2sis.canvas.sis_import import SisImports
    from clever2sis.clever.client import CleverClient
    from clever2sis.sync.pipeline import RunOptions, SyncRuntime, run_sync
    from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas
    from tests.clever_server import CleverTestServer
    from tests.nightly_district import VANISH_NIGHT, NightlyDistrict
    from tests.test_sync_month import CLEVER_TOKEN as MONTH_CLEVER_TOKEN
    from tests.test_sync_month import FAST, sync_job

    tmp = tmp_path_factory.mktemp("nights")
    district = NightlyDistrict(tmp / "d")
    results = []
    with CanvasTestServer(FakeCanvas(script=[("imported", 100)])) as server:
        job = sync_job(server.base_url, tmp / "runs")
        for number in (0, VANISH_NIGHT):
            night = district.night(number)
            with (
                CleverTestServer(night.served(), token=MONTH_CLEVER_TOKEN) as clever_server,
                CleverClient(MONTH_CLEVER_TOKEN, clever_server.url) as clever,
                CanvasClient(server.base_url, TEST_TOKEN) as client,
            ):
                results.append(
                    run_sync(
                        job,
                        clever,
                        SisImports(client, "1"),
                        options=RunOptions(wait_policy=FAST),
                        runtime=SyncRuntime(
                            clock=lambda night=night: night.now,
                            sleep=lambda _s: None,
                            attachment_wait_s=0,
                            secrets=(MONTH_CLEVER_TOKEN, TEST_TOKEN),
                        ),
                    )
                )
    return results


def personal_values(snapshot: Path) -> set[str]:
    """Every person's full name, email and login in a snapshot (the values no alert may carry)."""
    values: set[str] = set()
    for line in (snapshot / "users.jsonl").read_bytes().splitlines():
        user = orjson.loads(line)
        name = user.get("name") or {}
        values.add(f"{name.get('first', '')} {name.get('last', '')}".strip())
        if user.get("email"):
            values.add(user["email"])
        for role in (user.get("roles") or {}).values():
            credentials = role.get("credentials") if isinstance(role, dict) else None
            if isinstance(credentials, dict) and credentials.get("district_username"):
                values.add(credentials["district_username"])
    return {value for value in values if value}


def test_alerts_of_real_runs_say_what_the_runs_did_and_nothing_personal(nightly_runs: list[Any]) -> None:
    first, held = nightly_runs
    assert (first.exit_code, held.exit_code) == (0, 56)
    with WebhookReceiver() as hook:
        settings = webhook_settings(hook.url, "json", daily_summary=True)
        assert [d.sent for d in notify_run(settings, first.summary)] == [True]
        assert [d.sent for d in notify_run(settings, held.summary)] == [True]
    daily, guard = (received.json() for received in hook.received)

    district = orjson.loads((first.run_dir / "snapshot" / "districts.jsonl").read_bytes().splitlines()[0])
    for body, result in ((daily, first), (guard, held)):
        assert body["district"] == {"id": district["id"], "name": district["name"]}
        assert body["run_id"] == result.run_id
        assert (body["outcome"], body["exit_code"]) == (result.outcome, result.exit_code)
        assert body["run_dir"] == str(result.run_dir)
    assert daily["reasons"] == ["daily_summary"]
    assert daily["sis_import"] == {"id": first.summary["sis_import_id"], "state": "imported", "warnings": 0}
    moved = sorted(
        ((sum(c.values()), name) for name, c in first.summary["changes"].items() if sum(c.values())),
        key=lambda pair: -pair[0],
    )
    assert [change["file"] for change in daily["changes"]] == [name for _, name in moved[:3]]

    assert guard["reasons"] == ["schools_held"]
    run_json = orjson.loads((held.run_dir / "run.json").read_bytes())
    (school,) = run_json["guard_details"]["held"]
    assert guard["guard"] == {"verdict": "held", "findings": []}
    assert guard["held_schools"] == {
        "count": 1,
        "shown": [
            {
                "account_id": school["account_id"],
                "school_id": school["school_id"],
                "name": school["name"],
                "since": held.summary["started"],
                "lost": {loss["measure"]: loss["lost"] for loss in school["losses"]},
                "release": f"--allow-large-change {school['account_id']}",
            }
        ],
    }
    assert guard["message"] == held.message

    texts = [received.body.decode() for received in hook.received]
    people = personal_values(first.run_dir / "snapshot") | personal_values(held.run_dir / "snapshot")
    assert len(people) > 600
    for text in texts:
        assert not [value for value in people if value in text]
