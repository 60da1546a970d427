"""Settings: one TOML file (``clever2sis.toml``) plus environment variables, resolved and validated here.

Each top-level table of the file has one parser in this module; a key nobody reads is an error, so a typo
never silently falls back to a default. Secrets never live in this file: it names the environment
variables (or files) that hold them.
"""

from __future__ import annotations

import hashlib
import tomllib
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


@dataclass(frozen=True)
class Settings:
    """Everything resolved from the config file, one attribute per table."""

    raw: RawConfig
    tables: dict[str, Any] = field(default_factory=dict)


# Table name -> what reads it; filled by the modules that own each table (see ``KNOWN_TABLES`` users).
KNOWN_TABLES: tuple[str, ...] = ("build", "terms", "ids", "names")
