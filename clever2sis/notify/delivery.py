"""Sending an alert: a JSON POST to a webhook, or a mail through an SMTP relay, each retried briefly.

An attempt that fails for a reason that may pass (a timeout, a refused connection, HTTP 429 or 5xx, an SMTP
4xx) is tried again after a short backoff, at most :data:`ATTEMPTS` times and within
:data:`DEADLINE_S` in all; one that cannot pass (HTTP 4xx, a refused login, an untrusted certificate, a
relay without STARTTLS) is not. Nothing here raises: each channel ends as a :class:`Delivery`.

SMTP credentials are only ever sent over TLS: with ``security = "starttls"`` the relay must offer
STARTTLS, or nothing is sent at all.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from clever2sis import __version__
from clever2sis.notify.facts import Redactor
from clever2sis.notify.settings import EmailSettings
from clever2sis.progress import Progress

ATTEMPTS = 3
BACKOFF_S = (1.0, 2.0)  # before the second and the third attempt
RETRY_AFTER_MAX_S = 5.0
DEADLINE_S = 20.0  # for all attempts of one channel, waits included
MIN_ATTEMPT_S = 0.5  # no attempt is started with less time left than this
ERROR_MAX_CHARS = 200
USER_AGENT = f"clever2sis/{__version__}"


class DeliveryError(Exception):
    """One attempt failed; ``retry`` says whether another attempt may succeed."""

    def __init__(self, message: str, *, retry: bool, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Delivery:
    """How one channel (``webhook`` or ``email``) ended."""

    channel: str
    sent: bool
    attempts: int
    error: str | None = None


def deliver(
    channel: str,
    where: str,
    send: Callable[[float], None],
    *,
    timeout_s: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    log: Progress,
) -> Delivery:
    """Call ``send(timeout_s)`` until it returns, with bounded retries; log how it ended."""
    started = clock()
    attempt = 0
    error: DeliveryError | None = None
    while attempt < ATTEMPTS:
        attempt += 1
        remaining = DEADLINE_S - (clock() - started)
        try:
            send(min(timeout_s, max(MIN_ATTEMPT_S, remaining)))
        except DeliveryError as failed:
            error = failed
        else:
            log(f"alert sent by {channel} ({where})")
            return Delivery(channel, True, attempt)
        wait = min(error.retry_after_s or BACKOFF_S[min(attempt, len(BACKOFF_S)) - 1], RETRY_AFTER_MAX_S)
        if not error.retry or attempt == ATTEMPTS or clock() - started + wait + MIN_ATTEMPT_S > DEADLINE_S:
            break
        log(f"alert by {channel} ({where}): attempt {attempt} failed ({error}); trying again in {wait:g} s")
        sleep(wait)
    log(
        f"warning: alert by {channel} ({where}) not sent after {attempt} attempt"
        f"{'' if attempt == 1 else 's'}: {error}; the run's outcome is unchanged"
    )
    return Delivery(channel, False, attempt, str(error))


def webhook_host(url: str) -> str:
    """What a log line may say about a webhook: its host (the path of a webhook URL is its secret)."""
    return urlsplit(url).hostname or "?"


def post_json(client: httpx.Client, url: str, body: bytes, timeout_s: float, *, redact: Redactor) -> None:
    """One POST of ``body``; raises :class:`DeliveryError` unless the webhook answered 2xx."""
    try:
        response = client.post(
            url,
            content=body,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
            timeout=timeout_s,
        )
    except httpx.TimeoutException:
        raise DeliveryError(f"no answer within {timeout_s:g} s", retry=True) from None
    except httpx.HTTPError as error:
        raise DeliveryError(redact(f"{type(error).__name__}: {error}", ERROR_MAX_CHARS), retry=True) from None
    if response.is_success:
        return
    status = response.status_code
    said = redact(response.text, ERROR_MAX_CHARS)
    retry_after = response.headers.get("Retry-After", "")
    raise DeliveryError(
        f"HTTP {status}" + (f" {said}" if said else ""),
        retry=status in (408, 429) or status >= 500,
        retry_after_s=float(retry_after) if retry_after.isdigit() else None,
    )


class SmtpFactory(Protocol):
    """Opens an SMTP connection; ``tls_context`` is given for implicit TLS (and None for STARTTLS)."""

    def __call__(
        self, host: str, port: int, *, timeout_s: float, tls_context: ssl.SSLContext | None
    ) -> smtplib.SMTP: ...


def connect_smtp(
    host: str, port: int, *, timeout_s: float, tls_context: ssl.SSLContext | None
) -> smtplib.SMTP:
    if tls_context is not None:
        return smtplib.SMTP_SSL(host, port, timeout=timeout_s, context=tls_context)
    return smtplib.SMTP(host, port, timeout=timeout_s)


def tls_context(settings: EmailSettings) -> ssl.SSLContext:
    """Certificates and host names verified, against ``ca_file`` when set, else the system's CAs."""
    return ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)


def send_mail(
    settings: EmailSettings,
    message: EmailMessage,
    credentials: tuple[str, str] | None,
    timeout_s: float,
    *,
    smtp_factory: SmtpFactory,
    redact: Redactor,
) -> None:
    """One attempt to hand ``message`` to the relay; raises :class:`DeliveryError` when it fails."""
    context = tls_context(settings)
    implicit = settings.security == "tls"
    try:
        with smtp_factory(
            settings.host, settings.port, timeout_s=timeout_s, tls_context=context if implicit else None
        ) as smtp:
            smtp.ehlo()
            if not implicit:
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(
                        "the relay does not offer STARTTLS, so nothing was sent (no credentials either); "
                        'use a relay that does, or security = "tls"',
                        retry=False,
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
            if credentials is not None:
                smtp.login(*credentials)
            smtp.send_message(message)
    except ssl.SSLCertVerificationError as error:
        raise DeliveryError(
            f"the relay's certificate is not trusted ({error.verify_message}); for a private CA set "
            "notify.email.ca_file",
            retry=False,
        ) from None
    except smtplib.SMTPAuthenticationError as error:
        raise DeliveryError(f"the relay refused the login (SMTP {error.smtp_code})", retry=False) from None
    except smtplib.SMTPRecipientsRefused as error:
        codes = sorted({code for code, _ in error.recipients.values()})
        raise DeliveryError(
            f"the relay refused the recipients (SMTP {', '.join(map(str, codes))})",
            retry=all(400 <= code < 500 for code in codes),
        ) from None
    except smtplib.SMTPResponseException as error:
        said = error.smtp_error
        text = redact(said.decode("utf-8", "replace") if isinstance(said, bytes) else said, ERROR_MAX_CHARS)
        raise DeliveryError(f"SMTP {error.smtp_code} {text}", retry=400 <= error.smtp_code < 500) from None
    except (smtplib.SMTPException, OSError) as error:
        # smtplib reports a read that timed out as SMTPServerDisconnected, with the timeout as its context.
        if isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError):
            raise DeliveryError(f"no answer within {timeout_s:g} s", retry=True) from None
        raise DeliveryError(redact(f"{type(error).__name__}: {error}", ERROR_MAX_CHARS), retry=True) from None
