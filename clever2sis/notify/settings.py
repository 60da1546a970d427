"""The ``[notify]`` table: where alerts go (a webhook, email) and which runs send one.

::

    [notify]
    on_failure = true              # a run that failed: any exit code but 0, 50 (locked), 51, 55 (paused), 56
    on_guard_stop = true           # the guard stopped the run (exit 51)
    on_schools_held = true         # the guard held schools; every other school was updated (exit 56)
    on_messages = true             # the import ended with more warnings than messages_threshold
    messages_threshold = 0
    daily_summary = false          # also a message after every successful run
    report_base_url = "https://reports.example.org/clever2sis"   # links <report_base_url>/<run_id>/
    timeout_s = 5                  # per attempt

    [notify.webhook]
    url_env = "CLEVER2SIS_WEBHOOK_URL"   # or url = "https://..."; a webhook URL is a password: prefer _env
    format = "slack"                     # "slack", "teams" or "json"

    [notify.email]
    host = "smtp.example.org"
    port = 587                     # default 587 for starttls, 465 for tls
    security = "starttls"          # or "tls" (implicit TLS)
    from = "clever2sis@example.org"
    to = ["rostering@example.org"]
    username_env = "SMTP_USERNAME" # credentials live in the environment, never in this file
    password_env = "SMTP_PASSWORD"
    ca_file = "relay-ca.pem"       # a private CA for the relay (relative to this file)

As in :mod:`clever2sis.config`, each table is a dataclass whose fields are its keys (the default, the
allowed values as a ``Literal``, the help line in the field's metadata), read with
:func:`~clever2sis.config.read_table`; an unknown key or a bad value is an error naming the file. The one
key that is not a field name is ``from`` (a Python keyword): it is :attr:`EmailSettings.sender`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from clever2sis.config import LOCAL_HOSTS, RawConfig, about, check_keys, read_table, setting_fields
from clever2sis.errors import ConfigError, UsageError

TABLE = "notify"
WEBHOOK_TABLE = "notify.webhook"
EMAIL_TABLE = "notify.email"
WebhookFormat = Literal["slack", "teams", "json"]
SmtpSecurity = Literal["starttls", "tls"]
DEFAULT_SMTP_PORTS: dict[SmtpSecurity, int] = {"starttls": 587, "tls": 465}
DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 30.0
MAX_PORT = 65535
# TOML keys that cannot be field names (``from`` is a Python keyword): key → field.
EMAIL_KEY_FIELDS = {"from": "sender"}
# Keys someone might try for a secret; the error says where the secret goes instead.
_SECRET_KEYS = {"password": "password_env", "username": "username_env", "user": "username_env"}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]{1,253}")
_ADDRESS = re.compile(r"[^@\s<>,;\"']+@[^@\s<>,;\"']+")


@dataclass(frozen=True)
class WebhookSettings:
    """``[notify.webhook]``: where to post (the URL, or the environment variable holding it) and what."""

    format: WebhookFormat = field(
        default="json",
        metadata=about(
            "The payload: a Slack message, a Teams Adaptive Card, or clever2sis's own JSON object."
        ),
    )
    url_env: str | None = field(
        default=None,
        metadata=about(
            "The environment variable holding the webhook URL (whoever has the URL can post, so it is "
            "best kept out of this file).",
            example="CLEVER2SIS_WEBHOOK_URL",
        ),
    )
    url: str | None = field(
        default=None,
        metadata=about(
            "Or the URL itself (https://); give url_env or url.",
            example="https://hooks.example.org/services/T000/B000/XXXX",
        ),
    )

    def resolve_url(self, environ: Mapping[str, str]) -> str:
        """The URL to post to; from the environment when ``url_env`` is set (checked like one in the file)."""
        if self.url is not None:
            return self.url
        assert self.url_env is not None
        value = environ.get(self.url_env, "").strip()
        if not value:
            raise UsageError(f"set {self.url_env} to the webhook URL (notify.webhook.url_env names it)")
        return check_url(value, self.url_env)


@dataclass(frozen=True)
class EmailSettings:
    """``[notify.email]``: an SMTP relay and who to write to; credentials are named environment variables."""

    host: str = field(metadata=about("The SMTP relay's host name.", example="smtp.example.org"))
    sender: str = field(
        metadata=about("The From address (the key is `from`).", example="clever2sis@example.org")
    )
    to: tuple[str, ...] = field(metadata=about("Who gets the alerts.", example=("rostering@example.org",)))
    port: int = field(
        default=DEFAULT_SMTP_PORTS["starttls"],
        metadata=about('The relay\'s port; the default is 465 with security = "tls".'),
    )
    security: SmtpSecurity = field(
        default="starttls",
        metadata=about(
            "STARTTLS on a plain connection (required before any login or mail), or implicit TLS."
        ),
    )
    username_env: str | None = field(
        default=None,
        metadata=about(
            "The environment variable holding the SMTP user name; not set: a relay without login.",
            example="SMTP_USERNAME",
        ),
    )
    password_env: str | None = field(
        default=None,
        metadata=about(
            "The environment variable holding the SMTP password (never this file).", example="SMTP_PASSWORD"
        ),
    )
    ca_file: Path | None = field(
        default=None,
        metadata=about(
            "A CA certificate file for a relay with a private CA; relative to this file's directory.",
            example="relay-ca.pem",
        ),
    )

    def credentials(self, environ: Mapping[str, str]) -> tuple[str, str] | None:
        """(username, password) from the environment, or None when the relay needs no login."""
        if self.username_env is None or self.password_env is None:
            return None
        missing = [name for name in (self.username_env, self.password_env) if not environ.get(name)]
        if missing:
            raise UsageError(
                f"set {missing[0]} for the SMTP login (notify.email names it); or remove username_env and "
                "password_env for a relay without login"
            )
        return environ[self.username_env], environ[self.password_env]


@dataclass(frozen=True)
class NotifySettings:
    """``[notify]``: which runs send an alert, and where (``[notify.webhook]``, ``[notify.email]``).

    Without a webhook or an email nothing is ever sent.
    """

    on_failure: bool = field(
        default=True,
        metadata=about(
            "Alert on a failed run: any exit code but 0, 50 (locked), 51, 55 (paused) and 56 (held)."
        ),
    )
    on_guard_stop: bool = field(default=True, metadata=about("Alert when the guard stopped the run (51)."))
    on_schools_held: bool = field(
        default=True,
        metadata=about("Alert when the guard held schools and updated every other school (56)."),
    )
    on_messages: bool = field(
        default=True,
        metadata=about("Alert when the import ended with more warnings than messages_threshold."),
    )
    messages_threshold: int = field(
        default=0, metadata=about("How many warnings an import may have without an alert.")
    )
    daily_summary: bool = field(
        default=False, metadata=about("Also send a message after every successful run.")
    )
    report_base_url: str | None = field(
        default=None,
        metadata=about(
            "Where the runs directory is served: alerts link <report_base_url>/<run_id>/.",
            example="https://reports.example.org/clever2sis",
        ),
    )
    timeout_s: float = field(
        default=DEFAULT_TIMEOUT_S,
        metadata=about(f"Seconds per attempt to send (at most {MAX_TIMEOUT_S:g}); 3 attempts at most."),
    )
    webhook: WebhookSettings | None = None
    email: EmailSettings | None = None

    @property
    def enabled(self) -> bool:
        return self.webhook is not None or self.email is not None

    def check_environment(self, environ: Mapping[str, str]) -> None:
        """Refuse, before a run starts, settings whose environment variables are not set."""
        if self.webhook is not None:
            self.webhook.resolve_url(environ)
        if self.email is not None:
            self.email.credentials(environ)


def check_url(value: str, where: str) -> str:
    """An https URL (plain http only for this machine): a webhook URL is itself the credential."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{where}: {value!r} is not a URL; use e.g. https://hooks.example.org/...")
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise ConfigError(f"{where}: use https:// (the alert would cross the network in clear)")
    if parts.username or parts.password or parts.fragment:
        raise ConfigError(f"{where}: give the URL without credentials or #fragment")
    return value.strip()


def _hints(cls: type, table: str, renamed: Mapping[str, str] | None = None) -> dict[str, Any]:
    """TOML key → type of the settings ``cls`` declares (``renamed``: key → field, for keys like ``from``)."""
    fields_of = {name: hint for name, (_, hint) in setting_fields(cls, table).items()}
    for key, name in (renamed or {}).items():
        fields_of[key] = fields_of.pop(name)
    return fields_of


def _read(raw: RawConfig, table: str, value: Any, hints: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a ``[notify...]`` table, each checked against its type; a secret given as a key is
    refused with where it belongs instead."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{raw.source}: [{table}] must be a table")
    for key in sorted(set(value) & set(_SECRET_KEYS)):
        raise ConfigError(
            f"{raw.source}: {table}.{key}: credentials never go in this file; set {_SECRET_KEYS[key]} to "
            "the name of an environment variable that holds it"
        )
    return read_table(RawConfig({table: value}, raw.path, raw.found_by), table, hints)


def _env_name(raw: RawConfig, table: str, key: str, given: Mapping[str, Any]) -> None:
    name = given.get(key)
    if name is not None and not _ENV_NAME.fullmatch(name):
        raise ConfigError(f"{raw.source}: {table}.{key} = {name!r}: name an environment variable")


def parse_webhook(raw: RawConfig, value: Any) -> WebhookSettings:
    given = _read(raw, WEBHOOK_TABLE, value, _hints(WebhookSettings, WEBHOOK_TABLE))
    if ("url" in given) == ("url_env" in given):
        raise ConfigError(
            f"{raw.source}: [{WEBHOOK_TABLE}] needs url_env (the environment variable holding the URL) or url"
        )
    _env_name(raw, WEBHOOK_TABLE, "url_env", given)
    if "url" in given:
        given["url"] = check_url(given["url"], f"{raw.source}: {WEBHOOK_TABLE}.url")
    return WebhookSettings(**given)


def parse_email(raw: RawConfig, value: Any) -> EmailSettings:
    given = _read(raw, EMAIL_TABLE, value, _hints(EmailSettings, EMAIL_TABLE, EMAIL_KEY_FIELDS))
    for key in ("host", "from", "to"):
        if key not in given:
            raise ConfigError(f"{raw.source}: {EMAIL_TABLE}.{key} is required")
    given["sender"] = given.pop("from")
    host = given["host"] = given["host"].strip()
    if not _HOST.fullmatch(host):
        raise ConfigError(f"{raw.source}: {EMAIL_TABLE}.host = {host!r}: give a host name or address only")
    for key, address in [("from", given["sender"]), *(("to", item) for item in given["to"])]:
        if not _ADDRESS.fullmatch(address):
            raise ConfigError(
                f"{raw.source}: {EMAIL_TABLE}.{key}: {address!r} is not an email address (name@domain)"
            )
    port = given.setdefault("port", DEFAULT_SMTP_PORTS[given.get("security", "starttls")])
    if not 1 <= port <= MAX_PORT:
        raise ConfigError(f"{raw.source}: {EMAIL_TABLE}.port must be from 1 to {MAX_PORT}, not {port}")
    if ("username_env" in given) != ("password_env" in given):
        raise ConfigError(f"{raw.source}: {EMAIL_TABLE}: give both username_env and password_env, or neither")
    for key in ("username_env", "password_env"):
        _env_name(raw, EMAIL_TABLE, key, given)
    ca_file = given.get("ca_file")
    if ca_file is not None:
        if not ca_file.is_absolute() and raw.path is not None:
            ca_file = given["ca_file"] = raw.path.parent / ca_file
        if not ca_file.is_file():
            raise ConfigError(f"{raw.source}: {EMAIL_TABLE}.ca_file: {ca_file} is not a file")
    return EmailSettings(**given)


# The tables under [notify]: its key → (dataclass, table name, TOML keys that are not field names).
SUBTABLES: dict[str, tuple[type, str, Mapping[str, str]]] = {
    "webhook": (WebhookSettings, WEBHOOK_TABLE, {}),
    "email": (EmailSettings, EMAIL_TABLE, EMAIL_KEY_FIELDS),
}


def parse_notify(raw: RawConfig) -> NotifySettings:
    """Read ``[notify]`` and its ``webhook`` and ``email`` tables; unknown keys and bad values are errors."""
    hints = _hints(NotifySettings, TABLE)
    values = check_keys(raw, TABLE, {*hints, *SUBTABLES})
    own = {key: value for key, value in values.items() if key in hints}
    given = _read(raw, TABLE, own, hints)
    if given.get("messages_threshold", 0) < 0:
        raise ConfigError(
            f"{raw.source}: {TABLE}.messages_threshold is a count of warnings (0 or more), not "
            f"{given['messages_threshold']}"
        )
    timeout_s = given.get("timeout_s", DEFAULT_TIMEOUT_S)
    if not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise ConfigError(
            f"{raw.source}: {TABLE}.timeout_s is seconds per attempt, more than 0 and at most "
            f"{MAX_TIMEOUT_S:g}, not {timeout_s:g}"
        )
    if "report_base_url" in given:
        given["report_base_url"] = _report_base_url(raw, given["report_base_url"])
    return NotifySettings(
        **given,
        webhook=parse_webhook(raw, values["webhook"]) if "webhook" in values else None,
        email=parse_email(raw, values["email"]) if "email" in values else None,
    )


def _report_base_url(raw: RawConfig, value: str) -> str:
    where = f"{raw.source}: {TABLE}.report_base_url"
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{where}: {value!r} is not a URL; use e.g. https://reports.example.org/runs")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{where}: give only scheme, host and path, without query or credentials")
    return value.strip().rstrip("/")
