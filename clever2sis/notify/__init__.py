"""Alerts: tell people when a night's sync needs them (the ``[notify]`` table).

Modules: ``settings`` (the table), ``facts`` (what an alert may say, checked fact by fact), ``message``
(triggers, text and payloads), ``delivery`` (HTTP and SMTP with bounded retries) and ``alerts``
(:func:`~clever2sis.notify.alerts.notify_run`, which puts them together).

The package itself imports nothing heavy: :mod:`clever2sis.config` declares ``[notify]`` with
:class:`~clever2sis.notify.settings.NotifySettings`, and every command reads the config, so sending
(httpx, smtplib) is loaded only by a run that may send. The names of ``alerts`` are still reachable from
here (``from clever2sis.notify import notify_run``), loaded on first use.
"""

from __future__ import annotations

from typing import Any

# config.py imports notify.settings (for its TABLES) and notify.settings imports config's helpers: config
# must be imported first, whichever of the two a caller asks for first.
import clever2sis.config  # noqa: F401

_ALERTS_NAMES = frozenset(
    {"Alert", "Delivery", "DeliveryError", "EmailSettings", "NotifySettings", "RunFacts", "WebhookSettings"}
    | {"notify_run", "parse_notify"}
)


def __getattr__(name: str) -> Any:
    if name in _ALERTS_NAMES:
        from clever2sis.notify import alerts

        return getattr(alerts, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
