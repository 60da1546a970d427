"""Which runs send an alert, and what it says: one plain text, and the Slack, Teams and JSON payloads of it.

Every payload is made from :class:`~clever2sis.notify.facts.RunFacts` only, so they all say the same
thing, and none can say more than the facts hold (no token, no name, no email of the run's data).
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from clever2sis import __version__
from clever2sis.errors import GuardStoppedError, SchoolsHeldError, SyncLockedError, SyncPausedError
from clever2sis.notify.facts import RunFacts
from clever2sis.notify.settings import EmailSettings, NotifySettings

EXIT_OK = 0
EXIT_LOCKED = SyncLockedError.exit_code
EXIT_PAUSED = SyncPausedError.exit_code
EXIT_GUARD_STOPPED = GuardStoppedError.exit_code
EXIT_SCHOOLS_HELD = SchoolsHeldError.exit_code
# Why an alert is sent (its "reasons"), most urgent first.
FAILURE = "failure"
GUARD_STOP = "guard_stop"
SCHOOLS_HELD = "schools_held"
MESSAGES = "messages"
DAILY_SUMMARY = "daily_summary"
REPORT = "Report"
JSON_FORMAT = "clever2sis.alert"
JSON_FORMAT_VERSION = 1
SLACK_HEADER_MAX_CHARS = 150  # Slack's limit for a header block's plain text
SLACK_SECTION_MAX_CHARS = 3000  # ... and for a section block's text
ADAPTIVE_CARD_VERSION = "1.4"
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


def reasons(settings: NotifySettings, facts: RunFacts) -> tuple[str, ...]:
    """The triggers a run sets off (empty: no alert). A run that found the lock taken (50) never alerts:
    it did nothing, and the run holding the lock reports for itself; nor does a paused night (55), which
    does nothing by design. A night the guard held schools on (56) is not a
    failure: every other school was applied. A summary without an exit code counts as failed."""
    code = facts.exit_code
    if code in (EXIT_LOCKED, EXIT_PAUSED):
        return ()
    found = []
    if code == EXIT_GUARD_STOPPED:
        if settings.on_guard_stop:
            found.append(GUARD_STOP)
    elif code == EXIT_SCHOOLS_HELD:
        if settings.on_schools_held:
            found.append(SCHOOLS_HELD)
    elif code != EXIT_OK and settings.on_failure:
        found.append(FAILURE)
    if settings.on_messages and facts.warnings is not None and facts.warnings > settings.messages_threshold:
        found.append(MESSAGES)
    if code == EXIT_OK and settings.daily_summary:
        found.append(DAILY_SUMMARY)
    return tuple(found)


@dataclass(frozen=True)
class Alert:
    """One alert: the run's facts and why it is sent."""

    facts: RunFacts
    reasons: tuple[str, ...]

    @property
    def urgent(self) -> bool:
        return FAILURE in self.reasons or GUARD_STOP in self.reasons

    def color(self) -> str:
        """An Adaptive Card text colour: red for a failure or a guard stop, amber for held schools and
        warnings."""
        if self.urgent:
            return "Attention"
        return "Warning" if MESSAGES in self.reasons or SCHOOLS_HELD in self.reasons else "Good"

    def headline(self) -> str:
        facts = self.facts
        if GUARD_STOP in self.reasons:
            what = "the guard stopped the sync; nothing was uploaded"
        elif SCHOOLS_HELD in self.reasons:
            what = f"the guard held {facts.held_count} school(s); every other school was updated"
        elif FAILURE in self.reasons:
            code = facts.exit_code if facts.exit_code is not None else "?"
            what = f"sync failed: {facts.outcome} (exit {code})"
        elif MESSAGES in self.reasons:
            what = f"sync {facts.outcome} with {facts.warnings} warnings"
        else:
            what = f"sync {facts.outcome}"
        return f"clever2sis: {what} for {facts.district}, profile {facts.profile or 'unknown'}"

    def fields(self) -> list[tuple[str, str]]:
        """(label, value) of every fact that is known, in the order every payload shows them."""
        facts = self.facts
        out = [
            ("District", facts.district),
            ("Profile", facts.profile or "unknown"),
            ("Outcome", f"{facts.outcome}, exit {facts.exit_code if facts.exit_code is not None else '?'}"),
        ]
        if facts.message:
            out.append(("Message", facts.message))
        if facts.changes is not None:
            out.append(("Changes", "; ".join(c.short() for c in facts.changes) or "none"))
        if facts.findings:
            out.append((f"Guard ({facts.guard})", "; ".join(facts.findings)))
        if facts.held:
            label = "Held schools" if facts.guard == "held" else "Schools that would be held"
            more = facts.held_count - len(facts.held)
            rest = [f"and {more} more"] if more > 0 else []
            out.append((label, "; ".join([*(school.text() for school in facts.held), *rest])))
        if facts.sis_import_id is not None:
            state = f" {facts.import_state}" if facts.import_state else ""
            warnings = f", {facts.warnings} warnings" if facts.warnings is not None else ""
            out.append(("Import", f"sis_import {facts.sis_import_id}{state}{warnings}"))
        if facts.run_id or facts.run_dir:
            where = f" in {facts.run_dir}" if facts.run_dir else ""
            out.append(("Run", f"{facts.run_id or 'not started'}{where}"))
        if facts.report_url:
            out.append((REPORT, facts.report_url))
        out.append(("Sent because", ", ".join(self.reasons)))
        return out

    def text(self) -> str:
        """The alert as plain text: the headline, then one ``Label: value`` line per fact."""
        lines = [self.headline(), ""]
        lines.extend(f"{label}: {value}" for label, value in self.fields())
        return "\n".join(lines) + "\n"


def _slack_escape(text: str) -> str:
    # Slack reads &, < and > as markup (<!channel> would ping a whole channel).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Alert) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (the notification line) and Block Kit ``blocks``."""
    headline = alert.headline()
    lines = [
        f"*{label}:* <{value}>" if label == REPORT else f"*{label}:* {_slack_escape(value)}"
        for label, value in alert.fields()
    ]
    return {
        "text": _slack_escape(headline),
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _cut(headline, SLACK_HEADER_MAX_CHARS)},
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _cut("\n".join(lines), SLACK_SECTION_MAX_CHARS)},
            },
        ],
    }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def teams_payload(alert: Alert) -> dict[str, Any]:
    """A Teams message with one Adaptive Card, as Teams workflows and incoming webhooks take it."""
    facts = alert.facts
    card: dict[str, Any] = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": [
            {
                "type": "TextBlock",
                "text": alert.headline(),
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": alert.color(),
            },
            {
                "type": "FactSet",
                "facts": [{"title": label, "value": value} for label, value in alert.fields()],
            },
        ],
    }
    if facts.report_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the run", "url": facts.report_url}]
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def json_payload(alert: Alert) -> dict[str, Any]:
    """clever2sis's own alert object (documented in docs/sync.md, "Alerts"); every key is always present."""
    facts = alert.facts
    return {
        "format": JSON_FORMAT,
        "format_version": JSON_FORMAT_VERSION,
        "clever2sis_version": __version__,
        "headline": alert.headline(),
        "reasons": list(alert.reasons),
        "run_id": facts.run_id,
        "profile": facts.profile,
        "district": {"id": facts.district_id, "name": facts.district_name},
        "outcome": facts.outcome,
        "exit_code": facts.exit_code,
        "message": facts.message,
        "changes": None if facts.changes is None else [change.as_dict() for change in facts.changes],
        "guard": {"verdict": facts.guard, "findings": list(facts.findings)},
        "held_schools": {"count": facts.held_count, "shown": [school.as_dict() for school in facts.held]},
        "sis_import": {"id": facts.sis_import_id, "state": facts.import_state, "warnings": facts.warnings},
        "run_dir": facts.run_dir,
        "report_url": facts.report_url,
        "text": alert.text(),
    }


PAYLOADS = {"slack": slack_payload, "teams": teams_payload, "json": json_payload}


def email_message(alert: Alert, settings: EmailSettings, summary: Mapping[str, Any]) -> EmailMessage:
    """The alert as a plain-text email; its Date is when the run finished (or started)."""
    message = EmailMessage()
    message["Subject"] = alert.headline()
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.to)
    message["Date"] = _date(summary)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    message.set_content(alert.text())
    return message


def _date(summary: Mapping[str, Any]) -> str:
    for key in ("finished", "started"):
        value = summary.get(key)
        try:
            moment = (
                dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
            )
        except ValueError:
            continue
        if moment is not None and moment.tzinfo is not None:
            return email.utils.format_datetime(moment.astimezone(dt.UTC), usegmt=True)
    return email.utils.formatdate(usegmt=True)
