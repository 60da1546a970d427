"""The ``[notify]`` table: where alerts go (a webhook, email) and which runs send one.

::

    [notify]
    on_failure = true              # a run that failed: any exit code but 0, 50 (locked) and 51
    on_guard_stop = true           # the guard stopped the run (exit 51)
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

Like every table of the config file, an unknown key or a bad value is an error naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clever2sis.config import LOCAL_HOSTS, RawConfig, typed
from clever2sis.errors import ConfigError, UsageError

TABLE = "notify"
WEBHOOK_FORMATS = ("slack", "teams", "json")
SMTP_SECURITY = ("starttls", "tls")
DEFAULT_SMTP_PORTS = {"starttls": 587, "tls": 465}
DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 30.0
MAX_PORT = 65535
NOTIFY_KEYS = frozenset(
    {
        "on_failure",
        "on_guard_stop",
        "on_messages",
        "messages_threshold",
        "daily_summary",
        "report_base_url",
        "timeout_s",
        "webhook",
        "email",
    }
)
WEBHOOK_KEYS = frozenset({"url", "url_env", "format"})
EMAIL_KEYS = frozenset({"host", "port", "security", "from", "to", "username_env", "password_env", "ca_file"})
# Keys someone might try for a secret; the error says where the secret goes instead.
_SECRET_KEYS = {"password": "password_env", "username": "username_env", "user": "username_env"}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]{1,253}")
_ADDRESS = re.compile(r"[^@\s<>,;\"']+@[^@\s<>,;\"']+")


@dataclass(frozen=True)
class WebhookSettings:
    """One webhook: its URL (from the file, or from the environment variable named) and its payload."""

    format: str = "json"
    url: str | None = None
    url_env: str | None = None

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
    """An SMTP relay and the people to write to; credentials are named environment variables."""

    host: str
    sender: str
    to: tuple[str, ...]
    port: int = DEFAULT_SMTP_PORTS["starttls"]
    security: str = "starttls"
    username_env: str | None = None
    password_env: str | None = None
    ca_file: Path | None = None

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
    """The ``[notify]`` table. Without a webhook or an email nothing is ever sent."""

    webhook: WebhookSettings | None = None
    email: EmailSettings | None = None
    on_failure: bool = True
    on_guard_stop: bool = True
    on_messages: bool = True
    messages_threshold: int = 0
    daily_summary: bool = False
    report_base_url: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

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


def _table(raw: RawConfig, where: str, value: Any, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{raw.source}: [{where}] must be a table")
    for key in sorted(value):
        if key in _SECRET_KEYS and key not in allowed:
            raise ConfigError(
                f"{raw.source}: {where}.{key}: credentials never go in this file; set "
                f"{_SECRET_KEYS[key]} to the name of an environment variable that holds it"
            )
        if key not in allowed:
            raise ConfigError(
                f"{raw.source}: unknown key {where}.{key}; known keys: {', '.join(sorted(allowed))}"
            )
    return value


def _env_name(raw: RawConfig, where: str, key: str, value: Any) -> str:
    name = typed(raw, where, key, value, str)
    if not _ENV_NAME.fullmatch(name):
        raise ConfigError(f"{raw.source}: {where}.{key} = {name!r}: name an environment variable")
    return str(name)


def _choice(raw: RawConfig, where: str, key: str, value: Any, choices: tuple[str, ...]) -> str:
    typed(raw, where, key, value, str)
    if value not in choices:
        raise ConfigError(f"{raw.source}: {where}.{key} = {value!r}; use one of: {', '.join(choices)}")
    return str(value)


def parse_webhook(raw: RawConfig, value: Any) -> WebhookSettings:
    where = f"{TABLE}.webhook"
    values = _table(raw, where, value, WEBHOOK_KEYS)
    if ("url" in values) == ("url_env" in values):
        raise ConfigError(
            f"{raw.source}: [{where}] needs url_env (the environment variable holding the URL) or url"
        )
    url = values.get("url")
    if url is not None:
        url = check_url(typed(raw, where, "url", url, str), f"{raw.source}: {where}.url")
    url_env = values.get("url_env")
    return WebhookSettings(
        format=_choice(raw, where, "format", values.get("format", "json"), WEBHOOK_FORMATS),
        url=url,
        url_env=None if url_env is None else _env_name(raw, where, "url_env", url_env),
    )


def _address(raw: RawConfig, where: str, key: str, value: Any) -> str:
    address = typed(raw, where, key, value, str).strip()
    if not _ADDRESS.fullmatch(address):
        raise ConfigError(f"{raw.source}: {where}.{key}: {value!r} is not an email address (name@domain)")
    return str(address)


def parse_email(raw: RawConfig, value: Any) -> EmailSettings:
    where = f"{TABLE}.email"
    values = _table(raw, where, value, EMAIL_KEYS)
    for key in ("host", "from", "to"):
        if key not in values:
            raise ConfigError(f"{raw.source}: {where}.{key} is required")
    host = typed(raw, where, "host", values["host"], str).strip()
    if not _HOST.fullmatch(host):
        raise ConfigError(f"{raw.source}: {where}.host = {host!r}: give a host name or address only")
    security = _choice(raw, where, "security", values.get("security", "starttls"), SMTP_SECURITY)
    port = typed(raw, where, "port", values.get("port", DEFAULT_SMTP_PORTS[security]), int)
    if not 1 <= port <= MAX_PORT:
        raise ConfigError(f"{raw.source}: {where}.port must be from 1 to {MAX_PORT}, not {port}")
    to = typed(raw, where, "to", values["to"], list)
    if not to:
        raise ConfigError(f"{raw.source}: {where}.to must list at least one address")
    names = {key: values.get(key) for key in ("username_env", "password_env")}
    if (names["username_env"] is None) != (names["password_env"] is None):
        raise ConfigError(f"{raw.source}: {where}: give both username_env and password_env, or neither")
    ca_file = values.get("ca_file")
    ca_path = None
    if ca_file is not None:
        ca_path = Path(typed(raw, where, "ca_file", ca_file, str)).expanduser()
        if not ca_path.is_absolute() and raw.path is not None:
            ca_path = raw.path.parent / ca_path
        if not ca_path.is_file():
            raise ConfigError(f"{raw.source}: {where}.ca_file: {ca_path} is not a file")
    return EmailSettings(
        host=host,
        sender=_address(raw, where, "from", values["from"]),
        to=tuple(_address(raw, where, "to", item) for item in to),
        port=port,
        security=security,
        username_env=None
        if names["username_env"] is None
        else _env_name(raw, where, "username_env", names["username_env"]),
        password_env=None
        if names["password_env"] is None
        else _env_name(raw, where, "password_env", names["password_env"]),
        ca_file=ca_path,
    )


def parse_notify(raw: RawConfig) -> NotifySettings:
    """Read ``[notify]`` (see the module docstring); unknown keys and bad values are errors."""
    values = _table(raw, TABLE, raw.table(TABLE), NOTIFY_KEYS)
    defaults = NotifySettings()
    flags = {
        key: typed(raw, TABLE, key, values.get(key, getattr(defaults, key)), bool)
        for key in ("on_failure", "on_guard_stop", "on_messages", "daily_summary")
    }
    threshold = typed(raw, TABLE, "messages_threshold", values.get("messages_threshold", 0), int)
    if threshold < 0:
        raise ConfigError(
            f"{raw.source}: {TABLE}.messages_threshold is a count of warnings (0 or more), not {threshold}"
        )
    timeout_s = typed(raw, TABLE, "timeout_s", values.get("timeout_s", DEFAULT_TIMEOUT_S), (int, float))
    if isinstance(timeout_s, bool) or not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise ConfigError(
            f"{raw.source}: {TABLE}.timeout_s is seconds per attempt, more than 0 and at most "
            f"{MAX_TIMEOUT_S:g}, not {timeout_s!r}"
        )
    base_url = values.get("report_base_url")
    if base_url is not None:
        where = f"{raw.source}: {TABLE}.report_base_url"
        base_url = typed(raw, TABLE, "report_base_url", base_url, str)
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError(
                f"{where}: {base_url!r} is not a URL; use e.g. https://reports.example.org/runs"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ConfigError(f"{where}: give only scheme, host and path, without query or credentials")
        base_url = base_url.strip().rstrip("/")
    return NotifySettings(
        webhook=None if "webhook" not in values else parse_webhook(raw, values["webhook"]),
        email=None if "email" not in values else parse_email(raw, values["email"]),
        messages_threshold=threshold,
        report_base_url=base_url,
        timeout_s=float(timeout_s),
        **flags,
    )
