"""Settings: one TOML file (``clever2sis.toml``) plus environment variables, resolved and validated here.

Each top-level table of the file has one parser in this module; a key nobody reads is an error, so a typo
never silently falls back to a default. Secrets never live in this file: it names the environment
variables (or files) that hold them.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from clever2sis.canvas.sis_import import ImportOptions
from clever2sis.errors import CanvasSettingsError, ConfigError

DEFAULT_CONFIG_NAME = "clever2sis.toml"


@dataclass(frozen=True)
class RawConfig:
    """The parsed TOML document and where it came from (``path`` is None when no file was given)."""

    data: Mapping[str, Any]
    path: Path | None = None

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "defaults"

    def table(self, name: str) -> Mapping[str, Any]:
        value = self.data.get(name, {})
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.source}: [{name}] must be a table")
        return value

    def sha256(self) -> str:
        """A hash of the settings themselves (not of the file's formatting)."""
        return hashlib.sha256(orjson.dumps(self.data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def load_raw_config(path: Path | None) -> RawConfig:
    """Read the TOML file at ``path`` (None: built-in defaults only)."""
    if path is None:
        return RawConfig(data={})
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read config file ({error})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    known = set(KNOWN_TABLES)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]!r}; known tables: {', '.join(sorted(known))}")
    return RawConfig(data=data, path=path)


def check_keys(raw: RawConfig, table: str, allowed: Mapping[str, Any] | set[str]) -> Mapping[str, Any]:
    """Return ``[table]``, refusing any key not in ``allowed``."""
    values = raw.table(table)
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{raw.source}: unknown key {table}.{unknown[0]}; known keys: {', '.join(sorted(allowed))}"
        )
    return values


def typed(raw: RawConfig, table: str, key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ConfigError(f"{raw.source}: {table}.{key} must be a {names}, not {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything resolved from the config file, one attribute per table."""

    raw: RawConfig
    tables: dict[str, Any] = field(default_factory=dict)


# Table name -> what reads it; filled by the modules that own each table (see ``KNOWN_TABLES`` users).
KNOWN_TABLES: tuple[str, ...] = ("build", "terms", "ids", "names")


# --- Canvas: [profiles.<name>] and [upload] --------------------------------------------------------------
#
#   [profiles.test]
#   base_url = "https://district.test.instructure.com"
#   token_env = "CANVAS_TEST_TOKEN"     # the environment variable holding the token (default CANVAS_TOKEN)
#   account_id = 1                      # the root account: an id, "self" or "sis_account_id:<id>"
#
#   [upload]
#   profile = "test"                    # used when --profile is not given
#   messages_ok = false                 # imported_with_messages exits 0 instead of 20
#   wait_timeout_s = 7200               # how long --wait follows an import
#   change_threshold = 10               # ... and every import option of ImportOptions, by its Canvas name
#
# Without a [profiles] table, CANVAS_BASE_URL, CANVAS_TOKEN and CANVAS_ACCOUNT_ID describe the one Canvas.

ENV_BASE_URL = "CANVAS_BASE_URL"
ENV_TOKEN = "CANVAS_TOKEN"
ENV_ACCOUNT_ID = "CANVAS_ACCOUNT_ID"
ENV_PROFILE_NAME = "env"
PROFILE_KEYS = frozenset({"base_url", "token_env", "account_id"})
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_WAIT_TIMEOUT_S = 2 * 60 * 60
_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ACCOUNT_ID = re.compile(r"[1-9][0-9]*|self|sis_account_id:\S+")


@dataclass(frozen=True)
class CanvasProfile:
    """One Canvas instance to upload to. It names the token's environment variable, never the token."""

    name: str
    base_url: str
    account_id: str
    token_env: str = ENV_TOKEN

    def token(self, environ: Mapping[str, str]) -> str:
        token = environ.get(self.token_env, "").strip()
        if not token:
            raise CanvasSettingsError(
                f"set {self.token_env} to a Canvas access token (profile {self.name!r} reads it from there)"
            )
        return token


def check_base_url(value: str, where: str) -> str:
    """A Canvas base URL without its trailing slash; plain http only for this machine (the token travels)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{where}: {value!r} is not a URL; use e.g. https://district.instructure.com")
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise ConfigError(f"{where}: use https:// (the token would cross the network in clear)")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{where}: give only scheme, host and path, without query or credentials")
    return value.strip().rstrip("/")


def check_account_id(value: Any, where: str) -> str:
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not _ACCOUNT_ID.fullmatch(text):
        raise ConfigError(
            f"{where}: account id must be a number, 'self' or 'sis_account_id:<id>', not {value!r}"
        )
    return text


def parse_profiles(raw: RawConfig) -> dict[str, CanvasProfile]:
    """The ``[profiles.<name>]`` tables, each checked for unknown keys and bad values."""
    profiles: dict[str, CanvasProfile] = {}
    for name, table in raw.table("profiles").items():
        where = f"{raw.source}: profiles.{name}"
        if not _PROFILE_NAME.fullmatch(name):
            raise ConfigError(f"{where}: a profile name is letters, digits, '-' and '_' only")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table")
        unknown = sorted(set(table) - PROFILE_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(PROFILE_KEYS))}"
            )
        missing = sorted({"base_url", "account_id"} - set(table))
        if missing:
            raise ConfigError(f"{where}: {missing[0]} is required")
        base_url = typed(raw, f"profiles.{name}", "base_url", table["base_url"], str)
        token_env = typed(raw, f"profiles.{name}", "token_env", table.get("token_env", ENV_TOKEN), str)
        if not _ENV_NAME.fullmatch(token_env):
            raise ConfigError(
                f"{where}.token_env: name an environment variable (the token never goes in this file)"
            )
        profiles[name] = CanvasProfile(
            name=name,
            base_url=check_base_url(base_url, f"{where}.base_url"),
            account_id=check_account_id(table["account_id"], f"{where}.account_id"),
            token_env=token_env,
        )
    return profiles


def resolve_profile(raw: RawConfig, name: str | None, environ: Mapping[str, str]) -> CanvasProfile:
    """The profile to talk to: ``name``, else ``upload.profile``, else the environment variables."""
    profiles = parse_profiles(raw)
    name = name or parse_upload(raw).profile
    if profiles:
        if name is None:
            raise ConfigError(
                f"{raw.source}: choose a profile with --profile ({', '.join(sorted(profiles))})"
            )
        if name not in profiles:
            raise ConfigError(f"{raw.source}: no profile {name!r}; known: {', '.join(sorted(profiles))}")
        return profiles[name]
    name = name or ENV_PROFILE_NAME
    if not _PROFILE_NAME.fullmatch(name):
        raise ConfigError(f"profile name {name!r}: letters, digits, '-' and '_' only")
    base_url = environ.get(ENV_BASE_URL, "").strip()
    account_id = environ.get(ENV_ACCOUNT_ID, "").strip()
    if not base_url:
        raise CanvasSettingsError(
            f"set {ENV_BASE_URL} (e.g. https://district.instructure.com) or add [profiles.{name}] to "
            f"{DEFAULT_CONFIG_NAME}"
        )
    if not account_id:
        raise CanvasSettingsError(f"set {ENV_ACCOUNT_ID} to the root account id (or add [profiles.{name}])")
    return CanvasProfile(
        name=name,
        base_url=check_base_url(base_url, ENV_BASE_URL),
        account_id=check_account_id(account_id, ENV_ACCOUNT_ID),
    )


@dataclass(frozen=True)
class UploadSettings:
    """The ``[upload]`` table: the default profile, how to wait, and the default import options."""

    profile: str | None = None
    messages_ok: bool = False
    wait_timeout_s: float = DEFAULT_WAIT_TIMEOUT_S
    options: ImportOptions = field(default_factory=ImportOptions)


def parse_upload(raw: RawConfig) -> UploadSettings:
    """Read ``[upload]``; import options are type-checked here and validated as a whole before posting."""
    option_kinds = ImportOptions.kinds()
    values = check_keys(raw, "upload", {"profile", "messages_ok", "wait_timeout_s", *option_kinds})
    options: dict[str, Any] = {}
    for key, kind in option_kinds.items():
        if key in values:
            options[key] = typed(raw, "upload", key, values[key], kind)
    profile = values.get("profile")
    if profile is not None:
        typed(raw, "upload", "profile", profile, str)
    wait_timeout_s = typed(
        raw, "upload", "wait_timeout_s", values.get("wait_timeout_s", DEFAULT_WAIT_TIMEOUT_S), (int, float)
    )
    if isinstance(wait_timeout_s, bool) or wait_timeout_s <= 0:
        raise ConfigError(f"{raw.source}: upload.wait_timeout_s must be a positive number of seconds")
    return UploadSettings(
        profile=profile,
        messages_ok=typed(raw, "upload", "messages_ok", values.get("messages_ok", False), bool),
        wait_timeout_s=float(wait_timeout_s),
        options=ImportOptions(**options),
    )


KNOWN_TABLES = (*KNOWN_TABLES, "profiles", "upload")
