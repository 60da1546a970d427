"""Sending the alert a finished sync run calls for (the ``[notify]`` table).

:func:`notify_run` takes a finished run's summary (the JSON line of ``clever2sis sync``), decides from the
settings whether the run calls for an alert (:func:`~clever2sis.notify.message.reasons`), and sends it by
webhook (Slack, Teams or clever2sis's own JSON) and/or email. It never raises and never changes the run's
outcome: a failed alert is a warning in the log.

Modules: ``settings`` (the table), ``facts`` (what an alert may say, checked fact by fact), ``message``
(triggers, text and payloads), ``delivery`` (HTTP and SMTP with bounded retries).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from clever2sis import tls
from clever2sis.errors import Clever2SisError
from clever2sis.notify.delivery import (
    ERROR_MAX_CHARS,
    Delivery,
    DeliveryError,
    SmtpFactory,
    connect_smtp,
    deliver,
    post_json,
    send_mail,
    webhook_host,
)
from clever2sis.notify.facts import Redactor, RunFacts, read_facts
from clever2sis.notify.message import PAYLOADS, Alert, email_message, reasons
from clever2sis.notify.settings import EmailSettings, NotifySettings, WebhookSettings, parse_notify
from clever2sis.progress import Progress, silent

ALERT = "alert"  # the channel of a Delivery when the alert failed before any channel was tried

__all__ = [
    "Alert",
    "Delivery",
    "DeliveryError",
    "EmailSettings",
    "NotifySettings",
    "RunFacts",
    "WebhookSettings",
    "notify_run",
    "parse_notify",
]


@dataclass(frozen=True)
class _Channels:
    """What sending needs besides the alert: the injected transports, sleep, clock and log."""

    environ: Mapping[str, str]
    transport: httpx.BaseTransport | None
    smtp_factory: SmtpFactory
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    log: Progress
    redact: Redactor

    def webhook(self, settings: NotifySettings, webhook: WebhookSettings, alert: Alert) -> Delivery:
        try:
            url = webhook.resolve_url(self.environ)
        except Clever2SisError as error:
            return self.not_sent("webhook", str(error))
        body = orjson.dumps(PAYLOADS[webhook.format](alert))
        where = f"{webhook.format} to {webhook_host(url)}"
        with httpx.Client(
            transport=self.transport, verify=tls.verify(self.transport), follow_redirects=False
        ) as client:

            def send(timeout_s: float) -> None:
                post_json(client, url, body, timeout_s, redact=self.redact)

            return self._deliver("webhook", where, send, settings.timeout_s)

    def email(
        self, settings: NotifySettings, email: EmailSettings, alert: Alert, summary: Mapping[str, Any]
    ) -> Delivery:
        try:
            credentials = email.credentials(self.environ)
        except Clever2SisError as error:
            return self.not_sent("email", str(error))
        message = email_message(alert, email, summary)

        def send(timeout_s: float) -> None:
            send_mail(
                email, message, credentials, timeout_s, smtp_factory=self.smtp_factory, redact=self.redact
            )

        return self._deliver("email", f"{email.host}:{email.port}", send, settings.timeout_s)

    def _deliver(self, channel: str, where: str, send: Callable[[float], None], timeout_s: float) -> Delivery:
        return deliver(
            channel, where, send, timeout_s=timeout_s, sleep=self.sleep, clock=self.clock, log=self.log
        )

    def not_sent(self, channel: str, reason: str) -> Delivery:
        what = "alert" if channel == ALERT else f"alert by {channel}"
        self.log(f"warning: {what} not sent: {reason}; the run's outcome is unchanged")
        return Delivery(channel, False, 0, reason)


def notify_run(
    settings: NotifySettings,
    summary: Mapping[str, Any],
    *,
    transport: httpx.BaseTransport | None = None,
    smtp_factory: SmtpFactory = connect_smtp,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    log: Progress = silent,
    environ: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> list[Delivery]:
    """Send the alert ``summary`` calls for, if any; one :class:`Delivery` per channel tried.

    ``secrets`` (the run's tokens) are redacted from every text, as are the webhook URL and the SMTP
    password. ``environ`` (default ``os.environ``) holds the webhook URL and the credentials the settings
    name. ``clock`` (monotonic seconds) and ``sleep`` pace the retries. Every failure, even an unexpected
    one, ends as a log line: an alert never fails a run.
    """
    if not settings.enabled:
        return []
    environ = os.environ if environ is None else environ
    redact = Redactor([*secrets, *_settings_secrets(settings, environ)])
    channels = _Channels(environ, transport, smtp_factory, sleep, clock, log, redact)
    try:
        facts = read_facts(summary, report_base_url=settings.report_base_url, secrets=redact.secrets)
        alert = Alert(facts, reasons(settings, facts))
        if not alert.reasons:
            return []
        deliveries = []
        if settings.webhook is not None:
            deliveries.append(channels.webhook(settings, settings.webhook, alert))
        if settings.email is not None:
            deliveries.append(channels.email(settings, settings.email, alert, summary))
        return deliveries
    except Exception as error:  # an alert must never change the run's outcome, whatever went wrong
        return [channels.not_sent(ALERT, redact(f"{type(error).__name__}: {error}", ERROR_MAX_CHARS))]


def _settings_secrets(settings: NotifySettings, environ: Mapping[str, str]) -> list[str]:
    """The secrets the settings lead to: the webhook URL (its path is the credential), the SMTP password."""
    found = []
    if settings.webhook is not None:
        found.append(settings.webhook.url or environ.get(settings.webhook.url_env or "", ""))
    if settings.email is not None and settings.email.password_env:
        found.append(environ.get(settings.email.password_env, ""))
    return [secret for secret in found if secret]
