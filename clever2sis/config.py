"""Settings: one TOML file (``clever2sis.toml``) plus environment variables, resolved and validated here.

Each top-level table of the file has one parser in this module; a key nobody reads is an error, so a typo
never silently falls back to a default. Secrets never live in this file: it names the environment
variables (or files) that hold them.
"""

from __future__ import annotations

import hashlib
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from clever2sis.errors import ConfigError

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
        config_source=raw.source,
        config_sha256=raw.sha256(),
    )


# Every top-level table a config file may hold; each has its parser above.
KNOWN_TABLES: tuple[str, ...] = ("build", "terms", "ids", "names")
