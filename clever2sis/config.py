"""Settings: one TOML file (``clever2sis.toml``) plus environment variables, resolved and validated here.

Each top-level table of the file has one parser in this module; a key nobody reads is an error, so a typo
never silently falls back to a default. Secrets never live in this file: it names the environment
variables (or files) that hold them.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
import zoneinfo
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


# ---------------------------------------------------------------------------------------------------------
# [build], [terms], [ids], [names]: how a snapshot becomes Canvas CSVs.

COURSE_STRUCTURES = ("section", "course")
BUILD_ROLES = ("student", "teacher", "staff", "district_admin")
LOGIN_FIELDS = ("district_username", "email", "sis_id", "student_number", "state_id", "id")
COTEACHER_ROLES = ("teacher", "ta")
COURSE_STATUSES = ("active", "unpublished", "published")

DEFAULT_BUILD: dict[str, Any] = {
    "course_structure": "section",
    "user_roles": list(BUILD_ROLES),
    "login_id_fields": ["district_username", "email"],
    "authentication_provider_id": "",
    "coteacher_role": "teacher",
    "course_status": "active",
    "timezone": "UTC",
}
DEFAULT_TERMS: dict[str, Any] = {"fallback_term_id": "", "fallback_term_name": "No term"}
DEFAULT_IDS: dict[str, str] = {
    "account_id": "{{ school.id }}",
    "term_id": "{{ term.start_date }}_{{ term.end_date }}_{{ term.name|slug }}",
    "section_id": "{{ section.id }}",
    "user_id": "{{ user.id }}",
    # course_id depends on course_structure; see COURSE_ID_DEFAULTS.
}
COURSE_ID_DEFAULTS = {"section": "{{ section.id }}", "course": "{{ course.id }}_{{ canvas.term_id }}"}
DEFAULT_NAMES: dict[str, str] = {
    "account": "{{ school.name }}",
    "term": "{{ term.name }}",
    "section": "{{ section.name }}",
}
COURSE_NAME_DEFAULTS = {
    "section": {
        "course_long_name": "{{ section.name }}",
        "course_short_name": "{{ course.number or course.name or section.sis_id }}"
        "{% if section.period %} P{{ section.period }}{% endif %}",
    },
    "course": {
        "course_long_name": "{{ course.name or section.name }}",
        "course_short_name": "{{ course.number or course.name or section.sis_id }}",
    },
}


@dataclass(frozen=True)
class BuildSettings:
    """How to map a Clever snapshot to Canvas CSVs (the [build], [terms], [ids] and [names] tables)."""

    course_structure: str = "section"
    user_roles: tuple[str, ...] = BUILD_ROLES
    login_id_fields: tuple[str, ...] = ("district_username", "email")
    authentication_provider_id: str = ""
    coteacher_role: str = "teacher"
    course_status: str = "active"
    timezone: str = "UTC"
    fallback_term_id: str = ""
    fallback_term_name: str = "No term"
    ids: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    observers: ObserverSettings = field(default_factory=lambda: ObserverSettings())
    config_source: str = "defaults"
    config_sha256: str = ""


def _choice(raw: RawConfig, table: str, key: str, value: Any, choices: tuple[str, ...]) -> str:
    typed(raw, table, key, value, str)
    if value not in choices:
        raise ConfigError(f"{raw.source}: {table}.{key} = {value!r}; use one of: {', '.join(choices)}")
    return str(value)


def _choices(raw: RawConfig, table: str, key: str, value: Any, choices: tuple[str, ...]) -> tuple[str, ...]:
    typed(raw, table, key, value, list)
    if not value:
        raise ConfigError(f"{raw.source}: {table}.{key} must not be empty")
    return tuple(_choice(raw, table, key, item, choices) for item in value)


def build_settings(raw: RawConfig) -> BuildSettings:
    """Resolve and check the build tables of ``raw`` (unknown keys and bad values are errors)."""
    build = {**DEFAULT_BUILD, **check_keys(raw, "build", DEFAULT_BUILD)}
    terms = {**DEFAULT_TERMS, **check_keys(raw, "terms", DEFAULT_TERMS)}
    structure = _choice(raw, "build", "course_structure", build["course_structure"], COURSE_STRUCTURES)
    ids = {**DEFAULT_IDS, "course_id": COURSE_ID_DEFAULTS[structure]}
    ids.update(check_keys(raw, "ids", ids))
    names = {**DEFAULT_NAMES, **COURSE_NAME_DEFAULTS[structure]}
    names.update(check_keys(raw, "names", names))
    for table, templates in (("ids", ids), ("names", names)):
        for key, value in templates.items():
            typed(raw, table, key, value, str)
    timezone = typed(raw, "build", "timezone", build["timezone"], str)
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{raw.source}: build.timezone {timezone!r} is not a known time zone") from None
    return BuildSettings(
        course_structure=structure,
        user_roles=_choices(raw, "build", "user_roles", build["user_roles"], BUILD_ROLES),
        login_id_fields=_choices(raw, "build", "login_id_fields", build["login_id_fields"], LOGIN_FIELDS),
        authentication_provider_id=typed(
            raw, "build", "authentication_provider_id", build["authentication_provider_id"], str
        ),
        coteacher_role=_choice(raw, "build", "coteacher_role", build["coteacher_role"], COTEACHER_ROLES),
        course_status=_choice(raw, "build", "course_status", build["course_status"], COURSE_STATUSES),
        timezone=timezone,
        fallback_term_id=typed(raw, "terms", "fallback_term_id", terms["fallback_term_id"], str),
        fallback_term_name=typed(raw, "terms", "fallback_term_name", terms["fallback_term_name"], str),
        ids=ids,
        names=names,
        observers=observer_settings(raw),
        config_source=raw.source,
        config_sha256=raw.sha256(),
    )


# ---------------------------------------------------------------------------------------------------------
# [observers]: Clever contacts (parents, guardians) as Canvas observers of their students. Opt-in.

CONTACT_RELATIONSHIP_TYPES = ("Parent/Guardian", "Emergency", "Primary", "Secondary", "Family", "Other")
DEFAULT_OBSERVERS: dict[str, Any] = {
    "enabled": False,
    "relationship_types": ["Parent/Guardian"],
    "login_id": "{{ contact.email }}",
    "user_id": "{{ contact.id }}",
    "authentication_provider_id": "",
}


@dataclass(frozen=True)
class ObserverSettings:
    """The ``[observers]`` table: whether contacts become observers, which links count, their ids."""

    enabled: bool = False
    relationship_types: tuple[str, ...] = ("Parent/Guardian",)
    login_id: str = "{{ contact.email }}"
    user_id: str = "{{ contact.id }}"
    authentication_provider_id: str = ""


def observer_settings(raw: RawConfig) -> ObserverSettings:
    values = {**DEFAULT_OBSERVERS, **check_keys(raw, "observers", DEFAULT_OBSERVERS)}
    return ObserverSettings(
        enabled=typed(raw, "observers", "enabled", values["enabled"], bool),
        relationship_types=_choices(
            raw, "observers", "relationship_types", values["relationship_types"], CONTACT_RELATIONSHIP_TYPES
        ),
        login_id=typed(raw, "observers", "login_id", values["login_id"], str),
        user_id=typed(raw, "observers", "user_id", values["user_id"], str),
        authentication_provider_id=typed(
            raw, "observers", "authentication_provider_id", values["authentication_provider_id"], str
        ),
    )


# Every top-level table a config file may hold; each has its parser above.
KNOWN_TABLES: tuple[str, ...] = ("build", "terms", "ids", "names", "observers")


# --- Canvas: [profiles.<name>] and [upload] --------------------------------------------------------------
#
#   [profiles.test]
#   base_url = "https://district.test.instructure.com"
#   token_env = "CANVAS_TEST_TOKEN"     # the environment variable holding the token (default CANVAS_TOKEN)
#   account_id = 1                      # the root account: an id, "self" or "sis_account_id:<id>"
#   require_approval = true             # uploads need `clever2sis approve` first (default: production only)
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
PROFILE_KEYS = frozenset({"base_url", "token_env", "account_id", "require_approval"})
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
    require_approval: bool | None = None  # None: only a profile named "production" needs a sign-off

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
            require_approval=_optional_bool(raw, f"profiles.{name}", "require_approval", table),
        )
    return profiles


def _optional_bool(raw: RawConfig, table: str, key: str, values: Mapping[str, Any]) -> bool | None:
    return None if key not in values else bool(typed(raw, table, key, values[key], bool))


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


# --- The nightly job: [sync] -----------------------------------------------------------------------------
#
#   [sync]
#   runs_dir = "runs"                      # a run directory per run, the lock and history.sqlite live here
#   deletion_mode = "diffing"              # "diffing" (default), "explicit" or "batch"
#   remaster_every_days = 7                # diffing: re-send everything (a remaster) this often
#   max_shrink_percent = 10                # the local guard: a file may lose at most this share of its rows
#   max_shrink_percent_by_file = { enrollments = 15 }   # per-file exceptions (file names without .csv)
#   change_threshold = 10                  # Canvas's own threshold, unless [upload] sets change_threshold
#   enrollment_remove_status = "inactive"  # what a vanished enrollment becomes (diffing_drop_status, ...)
#   user_remove_status = "suspended"       # what a vanished user becomes (diffing_user_remove_status, ...)
#   term_rollover = true                   # enrollments of ended terms are concluded (completed), not dropped
#   diffing_data_set_identifier = "..."    # default "clever2sis:<district id>:<profile>"

DELETION_MODES = ("diffing", "explicit", "batch")
SYNC_ENROLLMENT_REMOVE_STATUSES = ("inactive", "completed", "deleted", "deleted_last_completed")
SYNC_USER_REMOVE_STATUSES = ("suspended", "deleted")
SYNC_SHRINK_FILES = ("accounts", "terms", "courses", "sections", "users", "enrollments")
DEFAULT_RUNS_DIR = "runs"
DEFAULT_REMASTER_EVERY_DAYS = 7
DEFAULT_MAX_SHRINK_PERCENT = 10.0
DEFAULT_SYNC_CHANGE_THRESHOLD_PERCENT = 10
SYNC_KEYS = set(
    {
        "runs_dir",
        "deletion_mode",
        "remaster_every_days",
        "max_shrink_percent",
        "max_shrink_percent_by_file",
        "change_threshold",
        "enrollment_remove_status",
        "user_remove_status",
        "term_rollover",
        "diffing_data_set_identifier",
        "keep_runs",
    }
)


@dataclass(frozen=True)
class SyncSettings:
    """The ``[sync]`` table: where runs live, how removals reach Canvas, and the local guard's limits."""

    runs_dir: Path = Path(DEFAULT_RUNS_DIR)
    deletion_mode: str = "diffing"
    remaster_every_days: int = DEFAULT_REMASTER_EVERY_DAYS
    max_shrink_percent: float = DEFAULT_MAX_SHRINK_PERCENT
    max_shrink_percent_by_file: dict[str, float] = field(default_factory=dict)
    change_threshold: int = DEFAULT_SYNC_CHANGE_THRESHOLD_PERCENT
    enrollment_remove_status: str = "inactive"
    user_remove_status: str = "suspended"
    term_rollover: bool = True
    diffing_data_set_identifier: str | None = None
    keep_runs: int = 0  # 0 keeps every run directory

    def shrink_limit_percent(self, file_name: str) -> float:
        """The guard's limit for ``file_name`` (``users.csv`` or ``users``)."""
        return self.max_shrink_percent_by_file.get(file_name.removesuffix(".csv"), self.max_shrink_percent)


def _percent(raw: RawConfig, key: str, value: Any) -> float:
    number = typed(raw, "sync", key, value, (int, float))
    if not 0 <= number <= 100:
        raise ConfigError(f"{raw.source}: sync.{key} is a percentage from 0 to 100, not {number!r}")
    return float(number)


def parse_sync(raw: RawConfig) -> SyncSettings:
    """Read ``[sync]``; unknown keys and bad values are errors, like every other table."""
    values = check_keys(raw, "sync", SYNC_KEYS)
    defaults = SyncSettings()
    runs_dir = typed(raw, "sync", "runs_dir", values.get("runs_dir", DEFAULT_RUNS_DIR), str)
    if not runs_dir.strip():
        raise ConfigError(f"{raw.source}: sync.runs_dir must name a directory")
    path = Path(runs_dir).expanduser()
    if not path.is_absolute() and raw.path is not None:
        path = raw.path.parent / path
    remaster = typed(raw, "sync", "remaster_every_days", values.get("remaster_every_days", 7), int)
    if remaster < 1:
        raise ConfigError(f"{raw.source}: sync.remaster_every_days must be 1 or more days, not {remaster}")
    by_file_raw = typed(
        raw, "sync", "max_shrink_percent_by_file", values.get("max_shrink_percent_by_file", {}), dict
    )
    by_file: dict[str, float] = {}
    for name, limit in by_file_raw.items():
        if name not in SYNC_SHRINK_FILES:
            raise ConfigError(
                f"{raw.source}: sync.max_shrink_percent_by_file.{name}: use one of "
                f"{', '.join(SYNC_SHRINK_FILES)}"
            )
        by_file[name] = _percent(raw, f"max_shrink_percent_by_file.{name}", limit)
    threshold = typed(
        raw, "sync", "change_threshold", values.get("change_threshold", defaults.change_threshold), int
    )
    if not 1 <= threshold <= 100:
        raise ConfigError(
            f"{raw.source}: sync.change_threshold is a percentage from 1 to 100, not {threshold}"
        )
    identifier = values.get("diffing_data_set_identifier")
    if identifier is not None:
        typed(raw, "sync", "diffing_data_set_identifier", identifier, str)
    keep_runs = typed(raw, "sync", "keep_runs", values.get("keep_runs", defaults.keep_runs), int)
    if keep_runs < 0:
        raise ConfigError(
            f"{raw.source}: sync.keep_runs is how many run directories to keep (0 keeps all), not {keep_runs}"
        )
    return SyncSettings(
        runs_dir=path,
        deletion_mode=_choice(
            raw, "sync", "deletion_mode", values.get("deletion_mode", defaults.deletion_mode), DELETION_MODES
        ),
        remaster_every_days=remaster,
        max_shrink_percent=_percent(
            raw, "max_shrink_percent", values.get("max_shrink_percent", defaults.max_shrink_percent)
        ),
        max_shrink_percent_by_file=by_file,
        change_threshold=threshold,
        enrollment_remove_status=_choice(
            raw,
            "sync",
            "enrollment_remove_status",
            values.get("enrollment_remove_status", defaults.enrollment_remove_status),
            SYNC_ENROLLMENT_REMOVE_STATUSES,
        ),
        user_remove_status=_choice(
            raw,
            "sync",
            "user_remove_status",
            values.get("user_remove_status", defaults.user_remove_status),
            SYNC_USER_REMOVE_STATUSES,
        ),
        term_rollover=typed(raw, "sync", "term_rollover", values.get("term_rollover", True), bool),
        diffing_data_set_identifier=identifier,
        keep_runs=keep_runs,
    )


KNOWN_TABLES = (*KNOWN_TABLES, "sync")
