"""Settings: one TOML file (``clever2sis.toml``) plus environment variables, found, read and checked here.

Every command finds the file the same way (:func:`find_config`): the ``--config`` flag, else the
``CLEVER2SIS_CONFIG`` environment variable, else ``./clever2sis.toml`` when it exists, else the built-in
defaults. A flag or variable naming a missing file is an error, never a silent fall back to defaults.

Each top-level table is described by a dataclass whose fields are its keys: the field's default is the
setting's default, its type says which values are allowed (a ``Literal`` names the closed set of strings),
and its metadata (:class:`SettingDoc`) carries the one-line help that the example config
(:mod:`clever2sis.example_config`) shows. A key nobody reads is an error, so a typo never silently falls back
to a default. Secrets never live in this file: it names the environment variables that hold them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

import orjson

from clever2sis.canvas.sis_import import ImportOptions
from clever2sis.errors import CanvasSettingsError, ConfigError
from clever2sis.secrets import check_token

DEFAULT_CONFIG_NAME = "clever2sis.toml"
CONFIG_ENV = "CLEVER2SIS_CONFIG"
SETTING = "clever2sis.setting"  # the key of a settings field's metadata

ConfigOrigin = Literal["flag", "env", "default file", "defaults"]


# ---------------------------------------------------------------------------------------------------------
# Finding and reading the file.


@dataclass(frozen=True)
class ConfigLocation:
    """Which settings file a command reads (``path`` None: the built-in defaults) and how it was found."""

    path: Path | None
    found_by: ConfigOrigin

    def describe(self) -> str:
        """One line for ``--verbose``: the file and how it was found."""
        how = {
            "flag": "from --config",
            "env": f"from {CONFIG_ENV}",
            "default file": "found in the current directory",
        }
        if self.path is None:
            return f"config: none; built-in defaults (no --config, {CONFIG_ENV} or ./{DEFAULT_CONFIG_NAME})"
        return f"config: {self.path} ({how[self.found_by]})"


def find_config(flag: Path | None, environ: Mapping[str, str], cwd: Path | None = None) -> ConfigLocation:
    """Where the settings come from: ``flag``, else ``$CLEVER2SIS_CONFIG``, else ``./clever2sis.toml``.

    An empty ``CLEVER2SIS_CONFIG`` counts as unset. A flag or variable naming a file that does not exist
    (or is not a file) is a :class:`ConfigError` naming the file and where its name came from.
    """
    named = environ.get(CONFIG_ENV, "").strip()
    if flag is not None:
        given, origin, fix = flag, "--config", "check the path"
    elif named:
        given, origin, fix = Path(named), CONFIG_ENV, f"check the path or unset {CONFIG_ENV}"
    else:
        default = Path(DEFAULT_CONFIG_NAME) if cwd is None else cwd / DEFAULT_CONFIG_NAME
        if default.is_file():
            return ConfigLocation(default, "default file")
        return ConfigLocation(None, "defaults")
    if not given.exists():
        raise ConfigError(f"config file {given} not found (named by {origin}); {fix}")
    if not given.is_file():
        raise ConfigError(f"config file {given} is not a file (named by {origin}); {fix}")
    return ConfigLocation(given, "flag" if flag is not None else "env")


def load_config(flag: Path | None, environ: Mapping[str, str], cwd: Path | None = None) -> RawConfig:
    """Find the settings file as every command does (:func:`find_config`) and read it."""
    location = find_config(flag, environ, cwd)
    return load_raw_config(location.path, found_by=location.found_by)


@dataclass(frozen=True)
class RawConfig:
    """The parsed TOML document and where it came from (``path`` is None when no file was given)."""

    data: Mapping[str, Any]
    path: Path | None = None
    found_by: ConfigOrigin = "defaults"

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "defaults"

    @property
    def location(self) -> ConfigLocation:
        return ConfigLocation(self.path, self.found_by)

    def table(self, name: str) -> Mapping[str, Any]:
        value = self.data.get(name, {})
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.source}: [{name}] must be a table")
        return value

    def sha256(self) -> str:
        """A hash of the settings themselves (not of the file's formatting)."""
        import hashlib  # here: the commands that never hash their settings start without OpenSSL's hashes

        return hashlib.sha256(orjson.dumps(self.data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def load_raw_config(path: Path | None, *, found_by: ConfigOrigin | None = None) -> RawConfig:
    """Read the TOML file at ``path`` (None: built-in defaults only); ``found_by`` defaults to "flag"."""
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
    unknown = sorted(set(data) - set(KNOWN_TABLES))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting {unknown[0]!r}; known tables: {', '.join(sorted(KNOWN_TABLES))}"
        )
    return RawConfig(data=data, path=path, found_by=found_by or "flag")


# ---------------------------------------------------------------------------------------------------------
# Settings declared by dataclass fields, and checked against their types.


@dataclass(frozen=True)
class SettingDoc:
    """A setting's help line, its table when the dataclass spans two, and a value to show if unset."""

    help: str
    table: str | None = None
    example: Any = None


def about(help: str, *, table: str | None = None, example: Any = None) -> dict[str, SettingDoc]:
    """The metadata of a settings field: ``field(default=..., metadata=about("what it does"))``."""
    return {SETTING: SettingDoc(help, table, example)}


def setting_fields(cls: type, table: str) -> dict[str, tuple[SettingDoc, Any]]:
    """The settings of ``cls`` that are keys of ``[table]``: name → (doc, type), in declaration order."""
    hints = typing.get_type_hints(cls)
    found: dict[str, tuple[SettingDoc, Any]] = {}
    for item in fields(cls):
        doc = item.metadata.get(SETTING)
        if isinstance(doc, SettingDoc) and doc.table in (None, table):
            found[item.name] = (doc, hints[item.name])
    return found


def check_keys(raw: RawConfig, table: str, allowed: Iterable[str]) -> Mapping[str, Any]:
    """Return ``[table]``, refusing any key not in ``allowed``."""
    values = raw.table(table)
    known = sorted(set(allowed))
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{raw.source}: unknown key {table}.{unknown[0]}; known keys: {', '.join(known)}")
    return values


def typed(raw: RawConfig, table: str, key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    """``value`` if it is a ``kind`` (a bool is not an int here), else a ConfigError naming the key."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ConfigError(f"{raw.source}: {table}.{key} must be a {names}, not {value!r}")
    return value


def check_value(raw: RawConfig, table: str, key: str, value: Any, hint: Any) -> Any:
    """``value`` checked against a field's type and converted to it (a list becomes a tuple, and so on).

    Types: ``str``, ``bool``, ``int``, ``float`` (an int is accepted), ``Path``, a ``Literal`` of strings,
    ``tuple[X, ...]`` (a non-empty list), ``list[X]`` (a list that may be empty), ``dict[K, V]`` (a table)
    and ``X | None`` (TOML has no null, so a given value is an ``X``).
    """
    origin = get_origin(hint)
    if origin is Literal:
        allowed = get_args(hint)
        typed(raw, table, key, value, str)
        if value not in allowed:
            raise ConfigError(f"{raw.source}: {table}.{key} = {value!r}; use one of: {', '.join(allowed)}")
        return value
    if origin in (Union, types.UnionType):
        (inner,) = (arg for arg in get_args(hint) if arg is not type(None))
        return check_value(raw, table, key, value, inner)
    if origin is tuple:
        typed(raw, table, key, value, list)
        if not value:
            raise ConfigError(f"{raw.source}: {table}.{key} must not be empty")
        return tuple(check_value(raw, table, key, item, get_args(hint)[0]) for item in value)
    if origin is list:
        return [
            check_value(raw, table, key, item, get_args(hint)[0])
            for item in typed(raw, table, key, value, list)
        ]
    if origin is dict:
        key_hint, value_hint = get_args(hint)
        allowed = get_args(key_hint)
        checked = {}
        for name, item in typed(raw, table, key, value, dict).items():
            if allowed and name not in allowed:
                raise ConfigError(f"{raw.source}: {table}.{key}.{name}: use one of {', '.join(allowed)}")
            checked[name] = check_value(raw, table, f"{key}.{name}", item, value_hint)
        return checked
    if hint is PauseWindow:
        return PauseWindow.from_setting(value, f"{raw.source}: {table}.{key}")
    if hint is Path:
        if not typed(raw, table, key, value, str).strip():
            raise ConfigError(f"{raw.source}: {table}.{key} must name a directory")
        return Path(value).expanduser()
    if hint is float:
        return float(typed(raw, table, key, value, (int, float)))
    if hint in (str, bool, int):
        return typed(raw, table, key, value, hint)
    raise TypeError(f"no check for settings of type {hint!r}")  # a new field type needs a case above


def read_table(raw: RawConfig, table: str, hints: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of ``[table]`` that are given, each checked against its type in ``hints`` (name → type).

    Keys left out are left out here too: the dataclass's defaults fill them in.
    """
    values = check_keys(raw, table, hints)
    return {key: check_value(raw, table, key, values[key], hints[key]) for key in hints if key in values}


def _hints(cls: type, table: str) -> dict[str, Any]:
    return {name: hint for name, (_, hint) in setting_fields(cls, table).items()}


# ---------------------------------------------------------------------------------------------------------
# [build], [terms], [ids], [names]: how a snapshot becomes Canvas CSVs.

CourseStructure = Literal["section", "course"]
BuildRole = Literal["student", "teacher", "staff", "district_admin"]
LoginField = Literal["district_username", "email", "sis_id", "student_number", "state_id", "id"]
CoteacherRole = Literal["teacher", "ta"]
CourseStatus = Literal["active", "unpublished", "published"]


@dataclass(frozen=True)
class IdTemplates:
    """``[ids]``: jinja2 templates of the Canvas SIS ids (None: the default of the course structure)."""

    account_id: str = field(default="{{ school.id }}", metadata=about("A school's sub-account id."))
    term_id: str = field(
        default="{{ term.start_date }}_{{ term.end_date }}_{{ term.name|slug }}",
        metadata=about("A term's id (Clever recreates term ids, so the default is its dates and name)."),
    )
    course_id: str | None = field(
        default=None,
        metadata=about(
            "A course's id. A Canvas course belongs to one school's account: a template that gives "
            "sections of several schools one course is refused, so keep {{ school.id }} in it."
        ),
    )
    section_id: str = field(default="{{ section.id }}", metadata=about("A section's id."))
    user_id: str = field(default="{{ user.id }}", metadata=about("A user's id."))


@dataclass(frozen=True)
class NameTemplates:
    """``[names]``: jinja2 templates of the Canvas names (None: the default of the course structure)."""

    account: str = field(default="{{ school.name }}", metadata=about("A school's sub-account name."))
    term: str = field(default="{{ term.name }}", metadata=about("A term's name."))
    course_long_name: str | None = field(default=None, metadata=about("A course's name."))
    course_short_name: str | None = field(
        default=None, metadata=about("A course's code (made unique by appending the section's SIS id).")
    )
    section: str = field(default="{{ section.name }}", metadata=about("A section's name."))


@dataclass(frozen=True)
class CourseTemplates:
    """The templates whose default depends on ``course_structure``."""

    course_id: str
    course_long_name: str
    course_short_name: str


COURSE_TEMPLATES: dict[CourseStructure, CourseTemplates] = {
    "section": CourseTemplates(
        course_id="{{ section.id }}",
        course_long_name="{{ section.name }}",
        course_short_name="{{ course.number or course.name or section.sis_id }}"
        "{% if section.period %} P{{ section.period }}{% endif %}",
    ),
    "course": CourseTemplates(
        course_id="{{ course.id }}_{{ school.id }}_{{ canvas.term_id }}",
        course_long_name="{{ course.name or section.name }}",
        course_short_name="{{ course.number or course.name or section.sis_id }}",
    ),
}
# The table each of CourseTemplates' fields is a key of.
COURSE_TEMPLATE_TABLES = {"course_id": "ids", "course_long_name": "names", "course_short_name": "names"}


@dataclass(frozen=True)
class BuildSettings:
    """How to map a Clever snapshot to Canvas CSVs (the [build], [terms], [ids] and [names] tables)."""

    course_structure: CourseStructure = field(
        default="section",
        metadata=about(
            "A Canvas course per Clever section, or per Clever course, school and term.",
            table="build",
        ),
    )
    user_roles: tuple[BuildRole, ...] = field(
        default=("student", "teacher", "staff", "district_admin"),
        metadata=about("The Clever roles whose users become Canvas users.", table="build"),
    )
    login_id_fields: tuple[LoginField, ...] = field(
        default=("district_username", "email"),
        metadata=about("Where login_id comes from: the first usable, unique value wins.", table="build"),
    )
    authentication_provider_id: str = field(
        default="",
        metadata=about(
            'The logins\' provider, e.g. "saml", "google", "ldap" or a provider id; blank leaves it out.',
            table="build",
        ),
    )
    coteacher_role: CoteacherRole = field(
        default="teacher",
        metadata=about("The Canvas role of a section's teachers after the first.", table="build"),
    )
    course_status: CourseStatus = field(
        default="active",
        metadata=about('The courses\' status; "active" leaves new courses unpublished.', table="build"),
    )
    timezone: str = field(
        default="UTC",
        metadata=about(
            "Term dates become local midnight (start) and 23:59:59 (end) in this time zone.", table="build"
        ),
    )
    fallback_term_id: str = field(
        default="",
        metadata=about(
            "Where courses of sections without a (known) term go; blank: Canvas's default term.",
            table="terms",
        ),
    )
    fallback_term_name: str = field(
        default="No term", metadata=about("The name of the fallback term.", table="terms")
    )
    ids: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    observers: ObserverSettings = field(default_factory=lambda: ObserverSettings())
    admins: AdminSettings = field(default_factory=lambda: AdminSettings())
    config_source: str = "defaults"
    config_sha256: str = ""


def _templates(raw: RawConfig, table: str, cls: type, structure: CourseStructure) -> dict[str, str]:
    """``[ids]`` or ``[names]``: each template as given, else its default (by structure where it has one)."""
    course = vars(COURSE_TEMPLATES[structure])
    defaults = {key: course[key] if value is None else value for key, value in vars(cls()).items()}
    return {**defaults, **read_table(raw, table, _hints(cls, table))}


def build_settings(raw: RawConfig) -> BuildSettings:
    """Resolve and check the build tables of ``raw`` (unknown keys and bad values are errors)."""
    given = {
        **read_table(raw, "build", _hints(BuildSettings, "build")),
        **read_table(raw, "terms", _hints(BuildSettings, "terms")),
    }
    import zoneinfo  # here, not at the top: the Canvas commands read their settings without it

    structure: CourseStructure = given.get("course_structure", BuildSettings.course_structure)
    timezone = given.get("timezone", BuildSettings.timezone)
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{raw.source}: build.timezone {timezone!r} is not a known time zone") from None
    return BuildSettings(
        **given,
        ids=_templates(raw, "ids", IdTemplates, structure),
        names=_templates(raw, "names", NameTemplates, structure),
        observers=observer_settings(raw),
        admins=admin_settings(raw),
        config_source=raw.source,
        config_sha256=raw.sha256(),
    )


def config_warnings(raw: RawConfig) -> tuple[str, ...]:
    """Settings that another setting makes pointless, each as one line (the caller shows them).

    An explicit ``ids.course_id`` or ``names.course_*`` equal to the default of the *other*
    ``course_structure`` is almost always left over from a copied example: it wins over the structure's
    own default, so flipping ``course_structure`` would silently change less than it says. Settings with
    bad values are not judged here; :func:`build_settings` refuses them.
    """
    build, found = raw.data.get("build", {}), []
    structure = build.get("course_structure", "section") if isinstance(build, Mapping) else None
    if structure not in COURSE_TEMPLATES:
        return ()
    for key, table in COURSE_TEMPLATE_TABLES.items():
        values = raw.data.get(table, {})
        value = values.get(key) if isinstance(values, Mapping) else None
        own = getattr(COURSE_TEMPLATES[structure], key)
        for other, templates in COURSE_TEMPLATES.items():
            if value is not None and value == getattr(templates, key) != own:
                found.append(
                    f'{raw.source}: {table}.{key} = {value!r} is the course_structure = "{other}" default, '
                    f'but course_structure is "{structure}": the explicit {table}.{key} wins over the '
                    f'"{structure}" default {own!r}, so course_structure does not change it (probably a line '
                    f'kept from an example); remove {table}.{key} to use the "{structure}" default'
                )
    return tuple(found)


# ---------------------------------------------------------------------------------------------------------
# [observers]: Clever contacts (parents, guardians) as Canvas observers of their students. Opt-in.

RelationshipType = Literal["Parent/Guardian", "Emergency", "Primary", "Secondary", "Family", "Other"]


@dataclass(frozen=True)
class ObserverSettings:
    """The ``[observers]`` table: whether contacts become observers, which links count, their ids."""

    enabled: bool = field(
        default=False,
        metadata=about("true: contacts go into users.csv and their links into user_observers.csv."),
    )
    relationship_types: tuple[RelationshipType, ...] = field(
        default=("Parent/Guardian",), metadata=about("Which student_relationships types count.")
    )
    login_id: str = field(
        default="{{ contact.email }}",
        metadata=about(
            "A template over contact.id, contact.sis_id, contact.name and contact.email (a valid address "
            "or empty)."
        ),
    )
    user_id: str = field(
        default="{{ contact.id }}",
        metadata=about("Any other template adds integration_id (the Clever id) to users.csv."),
    )
    authentication_provider_id: str = field(
        default="", metadata=about('For observers only, e.g. "canvas"; blank: Canvas\'s default.')
    )


def observer_settings(raw: RawConfig) -> ObserverSettings:
    return ObserverSettings(**read_table(raw, "observers", _hints(ObserverSettings, "observers")))


# ---------------------------------------------------------------------------------------------------------
# [admins]: Clever school and district admins as admins of Canvas sub-accounts (admins.csv). Opt-in.

# The one account role Canvas has built in (Account#available_account_roles, app/models/account.rb); any other
# is a custom account role of the account, found by its exact name (lib/sis/admin_importer.rb).
ACCOUNT_ADMIN_ROLE = "AccountAdmin"
DistrictAdmins = Literal["none", "schools", "account"]


@dataclass(frozen=True)
class AdminSettings:
    """The ``[admins]`` table: who becomes an admin of which sub-account, with which Canvas role."""

    enabled: bool = field(
        default=False,
        metadata=about(
            "true: Clever school admins become admins of their school's sub-account (admins.csv)."
        ),
    )
    staff_titles: list[str] = field(
        default_factory=lambda: ["Principal", "Assistant Principal"],
        metadata=about(
            "Clever staff whose title is one of these (case and surrounding spaces aside) are school admins."
        ),
    )
    staff_roles: list[str] = field(
        default_factory=list,
        metadata=about(
            "Clever staff with one of these in their roles (roles.staff.roles) are school admins too."
        ),
    )
    role: str = field(
        default=ACCOUNT_ADMIN_ROLE,
        metadata=about(
            f'The Canvas account role of school admins: "{ACCOUNT_ADMIN_ROLE}" or one of custom_roles '
            "(names are case-sensitive)."
        ),
    )
    custom_roles: list[str] = field(
        default_factory=list,
        metadata=about(
            "The custom account roles your Canvas has (Admin > Permissions > Account Roles), by exact name."
        ),
    )
    district_admins: DistrictAdmins = field(
        default="none",
        metadata=about(
            "Clever district admins: not admins, admins of every school's sub-account, or of the sub-account "
            "district_admin_account_id. Never of the root account."
        ),
    )
    district_admin_account_id: str = field(
        default="",
        metadata=about(
            'With district_admins = "account": the SIS id of the sub-account district admins administer.'
        ),
    )
    district_admin_role: str = field(
        default=ACCOUNT_ADMIN_ROLE, metadata=about("The Canvas account role of district admins (see role).")
    )

    def school_admin_titles(self) -> frozenset[str]:
        """The titles that make a school admin, as compared: stripped and lower-cased."""
        return frozenset(title.strip().lower() for title in self.staff_titles)

    def school_admin_roles(self) -> frozenset[str]:
        return frozenset(role.strip().lower() for role in self.staff_roles)


def admin_settings(raw: RawConfig) -> AdminSettings:
    """Read ``[admins]``, refusing a role Canvas would refuse for every row (``Invalid role '{r}' for
    admin``) and a district admin account that is not a sub-account's id."""
    given = read_table(raw, "admins", _hints(AdminSettings, "admins"))
    settings = AdminSettings(**given)
    where = f"{raw.source}: admins"
    for key in ("staff_titles", "staff_roles", "custom_roles"):
        if any(not item.strip() for item in getattr(settings, key)):
            raise ConfigError(f"{where}.{key} holds an empty name; remove it")
    known = (ACCOUNT_ADMIN_ROLE, *settings.custom_roles)
    for key in ("role", "district_admin_role"):
        value = getattr(settings, key)
        if value not in known:
            near = next((name for name in known if name.lower() == value.strip().lower()), None)
            hint = f' (did you mean "{near}"? role names are case-sensitive)' if near else ""
            raise ConfigError(
                f"{where}.{key} = {value!r} is not {ACCOUNT_ADMIN_ROLE!r} nor a role of admins.custom_roles"
                f"{hint}; Canvas would refuse every row (\"Invalid role '{value}' for admin\"): use "
                f"{ACCOUNT_ADMIN_ROLE!r}, or add your custom account role's exact name to admins.custom_roles"
            )
    account = settings.district_admin_account_id.strip()
    if settings.district_admins == "account" and not account:
        raise ConfigError(
            f'{where}.district_admins = "account" needs district_admin_account_id: the SIS id of the '
            "sub-account district admins administer (a blank account_id would make them root account admins)"
        )
    if settings.district_admins != "account" and account:
        raise ConfigError(
            f"{where}.district_admin_account_id is set but district_admins is {settings.district_admins!r}; "
            'set district_admins = "account" or remove district_admin_account_id'
        )
    return dataclasses.replace(settings, district_admin_account_id=account)


# ---------------------------------------------------------------------------------------------------------
# Canvas: [profiles.<name>] and [upload]. Without a [profiles] table, CANVAS_BASE_URL, CANVAS_TOKEN and
# CANVAS_ACCOUNT_ID describe the one Canvas.

ENV_BASE_URL = "CANVAS_BASE_URL"
ENV_TOKEN = "CANVAS_TOKEN"
ENV_ACCOUNT_ID = "CANVAS_ACCOUNT_ID"
ENV_PROFILE_NAME = "env"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_WAIT_TIMEOUT_S = 2 * 60 * 60
PRODUCTION_PROFILE = "production"  # uploads to it need a sign-off unless its require_approval says otherwise
_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ACCOUNT_ID = re.compile(r"[1-9][0-9]*|self|sis_account_id:\S+")


def needs_approval(profile: str, require_approval: bool | None) -> bool:
    """Whether uploads to ``profile`` need a sign-off (:mod:`clever2sis.canvas.signoff`): as its
    ``require_approval`` says, else only for ``production``."""
    return require_approval if require_approval is not None else profile == PRODUCTION_PROFILE


@dataclass(frozen=True)
class CanvasProfile:
    """One Canvas instance to upload to. It names the token's environment variable, never the token."""

    name: str
    base_url: str = field(
        metadata=about(
            "The Canvas to upload to (https://; plain http only for this machine).",
            example="https://district.test.instructure.com",
        )
    )
    account_id: str = field(
        metadata=about('The root account: a number, "self" or "sis_account_id:<id>".', example=1)
    )
    token_env: str = field(
        default=ENV_TOKEN,
        metadata=about("The environment variable holding the Canvas token (the token never goes here)."),
    )
    require_approval: bool | None = field(
        default=None,
        metadata=about(
            "true: uploads need `clever2sis approve` first; false: never; not set: only a profile named "
            "production does.",
            example=True,
        ),
    )

    def token(self, environ: Mapping[str, str]) -> str:
        """The access token from ``token_env``: one line of visible ASCII (see :mod:`clever2sis.secrets`)."""
        fix = f"set {self.token_env} to a Canvas access token (profile {self.name!r} reads it from there)"
        token = environ.get(self.token_env, "")
        if not token.strip():
            raise CanvasSettingsError(fix)
        return check_token(token, self.token_env, fix=fix, error=CanvasSettingsError)


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
    keys = setting_fields(CanvasProfile, "profiles")
    required = [item.name for item in fields(CanvasProfile) if item.name in keys and item.default is MISSING]
    profiles: dict[str, CanvasProfile] = {}
    for name, table in raw.table("profiles").items():
        where = f"{raw.source}: profiles.{name}"
        if not _PROFILE_NAME.fullmatch(name):
            raise ConfigError(f"{where}: a profile name is letters, digits, '-' and '_' only")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table")
        unknown = sorted(set(table) - set(keys))
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(keys))}")
        missing = [key for key in required if key not in table]
        if missing:
            raise ConfigError(f"{where}: {missing[0]} is required")
        base_url = typed(raw, f"profiles.{name}", "base_url", table["base_url"], str)
        token_env = typed(raw, f"profiles.{name}", "token_env", table.get("token_env", ENV_TOKEN), str)
        if not _ENV_NAME.fullmatch(token_env):
            raise ConfigError(
                f"{where}.token_env: name an environment variable (the token never goes in this file)"
            )
        approval = table.get("require_approval")
        profiles[name] = CanvasProfile(
            name=name,
            base_url=check_base_url(base_url, f"{where}.base_url"),
            account_id=check_account_id(table["account_id"], f"{where}.account_id"),
            token_env=token_env,
            require_approval=None
            if approval is None
            else typed(raw, f"profiles.{name}", "require_approval", approval, bool),
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
    """The ``[upload]`` table: the default profile, how to wait, and the default import options.

    The import options are keys of ``[upload]`` too, by their Canvas names (the fields of
    :class:`~clever2sis.canvas.sis_import.ImportOptions`); they are type-checked when read and validated
    as a whole before anything is posted.
    """

    profile: str | None = field(
        default=None, metadata=about("The profile used when --profile is not given.", example="test")
    )
    messages_ok: bool = field(
        default=False, metadata=about("true: an import ending imported_with_messages exits 0, not 20.")
    )
    wait_timeout_s: float = field(
        default=DEFAULT_WAIT_TIMEOUT_S,
        metadata=about("How long upload --wait and sync follow an import, in seconds."),
    )
    options: ImportOptions = field(default_factory=ImportOptions)


def parse_upload(raw: RawConfig) -> UploadSettings:
    """Read ``[upload]``: its own settings and the import options given there."""
    own = _hints(UploadSettings, "upload")
    options = typing.get_type_hints(ImportOptions)
    given = read_table(raw, "upload", {**own, **options})
    if given.get("wait_timeout_s", 1) <= 0:
        raise ConfigError(f"{raw.source}: upload.wait_timeout_s must be a positive number of seconds")
    return UploadSettings(
        **{key: value for key, value in given.items() if key in own},
        options=ImportOptions(**{key: value for key, value in given.items() if key in options}),
    )


# ---------------------------------------------------------------------------------------------------------
# The nightly job: [sync].

DeletionMode = Literal["diffing", "explicit", "batch"]
EnrollmentRemoveStatus = Literal["inactive", "completed", "deleted", "deleted_last_completed"]
UserRemoveStatus = Literal["suspended", "deleted"]
ShrinkFile = Literal["accounts", "terms", "courses", "sections", "users", "enrollments", "admins"]
TeacherDatesRole = Literal["teacher", "ta", "designer"]
IdentityChanges = Literal["change_sis_id", "update_sis_id_if_login_claimed", "off"]
MAX_TEACHER_DAYS = 366
PERCENT_RANGE = (0, 100)
CHANGE_THRESHOLD_RANGE_PERCENT = (1, 100)
SchoolMeasure = Literal["students", "teachers", "sections", "enrollments"]
GUARD_TABLE = "sync.guard"
# The guard's floors per school: a school losing this many or fewer of a measure is never held for it.
DEFAULT_SCHOOL_MIN_LOSS: dict[SchoolMeasure, int] = {
    "students": 5,
    "teachers": 2,
    "sections": 3,
    "enrollments": 30,
}

PAUSE_KEYS = ("from", "to")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class PauseWindow:
    """One ``[sync] pause`` window: the nights from ``start`` to ``end``, both included, in build.timezone.

    Written ``{ from = "2027-06-12", to = "2027-08-20" }`` (TOML dates without quotes work too).
    """

    start: dt.date
    end: dt.date

    @classmethod
    def from_setting(cls, value: Any, where: str) -> PauseWindow:
        """A window from its TOML table; a ConfigError naming ``where`` for anything else."""
        if not isinstance(value, Mapping):
            raise ConfigError(
                f'{where}: each window is a table like {{ from = "2027-06-12", to = "2027-08-20" }}'
            )
        unknown = sorted(set(value) - set(PAUSE_KEYS))
        missing = [key for key in PAUSE_KEYS if key not in value]
        if unknown or missing:
            problem = f"unknown key {unknown[0]!r}" if unknown else f"no {missing[0]!r} date"
            raise ConfigError(f"{where}: {problem}; a window has from and to (dates, both included)")
        start, end = (cls._date(value[key], f"{where}.{key}") for key in PAUSE_KEYS)
        if start > end:
            raise ConfigError(f"{where}: from {start} is after to {end}; swap them")
        return cls(start, end)

    @staticmethod
    def _date(value: Any, where: str) -> dt.date:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{where} = {value!r} is not a date; write YYYY-MM-DD, e.g. 2027-06-12")

    def covers(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    def describe(self) -> str:
        return f"{self.start} to {self.end}"


@dataclass(frozen=True)
class GuardSettings:
    """The ``[sync.guard]`` table: when the guard holds a school, and when it stops the whole night.

    See :mod:`clever2sis.sync.guard` for how each limit is measured.
    """

    school_max_loss_percent: float = field(
        default=10.0,
        metadata=about(
            "A school (Canvas sub-account) is held (its rows stay as Canvas has them, the other schools are "
            "updated) when it loses more than this share of its students, teachers, sections or enrollments "
            "(percent) ..."
        ),
    )
    school_min_loss: dict[SchoolMeasure, int] = field(
        default_factory=lambda: dict(DEFAULT_SCHOOL_MIN_LOSS),
        metadata=about(
            "... and more of them than this floor (a small school is not held for a few). A school that "
            "vanishes, or loses every student or every teacher, is held whatever its size."
        ),
    )
    max_held_schools_percent: float = field(
        default=25.0,
        metadata=about(
            "More held schools than this share of the schools stops the whole night (exit 51); a single "
            "held school never does, unless it is the only school."
        ),
    )
    max_changed_percent: float = field(
        default=75.0,
        metadata=about("A file whose rows Canvas holds change by more than this share stops the night ..."),
    )
    max_identity_changes_percent: float = field(
        default=5.0,
        metadata=about(
            "... and one whose ids or logins (user_id, login_id, section_id, course_id, account_id) change "
            "for more than this share of its rows (rows paired by their Clever id)."
        ),
    )
    min_changes: int = field(
        default=25,
        metadata=about("The two limits above apply only to a file with more changed rows than this."),
    )
    max_identity_carryovers: int = field(
        default=25,
        metadata=about("People carried over to a new Clever id in one night, at most (more stops it)."),
    )


@dataclass(frozen=True)
class SyncSettings:
    """The ``[sync]`` table: where runs live, how removals reach Canvas, and the local guard's limits."""

    runs_dir: Path = field(
        default=Path("runs"),
        metadata=about("Runs, the lock and history.sqlite live here; relative to this file's directory."),
    )
    deletion_mode: DeletionMode = field(
        default="diffing",
        metadata=about("How removals reach Canvas: Canvas's diffing, rows the sync sends, or batch mode."),
    )
    remaster_every_days: int = field(
        default=7, metadata=about("Diffing: re-send everything (a remaster) this often, in days.")
    )
    max_shrink_percent: float = field(
        default=10.0, metadata=about("The guard: a file may lose at most this share of its rows (percent).")
    )
    max_shrink_percent_by_file: dict[ShrinkFile, float] = field(
        default_factory=dict,
        metadata=about("Per-file exceptions to max_shrink_percent.", example={"enrollments": 15}),
    )
    change_threshold: int = field(
        default=10, metadata=about("Canvas's change_threshold (percent), unless [upload] sets one.")
    )
    enrollment_remove_status: EnrollmentRemoveStatus = field(
        default="inactive", metadata=about("What a vanished enrollment becomes.")
    )
    user_remove_status: UserRemoveStatus = field(
        default="suspended", metadata=about("What a vanished user becomes.")
    )
    term_rollover: bool = field(
        default=True, metadata=about("Enrollments of ended terms are concluded (completed), not dropped.")
    )
    diffing_data_set_identifier: str | None = field(
        default=None,
        metadata=about(
            'Canvas\'s diffing_data_set_identifier; when not set, "clever2sis:<district id>:<profile>".',
            example="clever2sis:district:production",
        ),
    )
    keep_runs: int = field(
        default=0,
        metadata=about("Run directories to keep (older ones are removed after a run); 0 keeps all."),
    )
    reconcile_every_days: int = field(
        default=0,
        metadata=about(
            "After a night's import succeeds, compare Canvas with it and fix the drift this often, in "
            "days; 0 never."
        ),
    )
    teacher_start_days_before: int = field(
        default=0,
        metadata=about(
            "After each applied import, teachers may enter their courses this many days before each term of "
            "terms.csv starts (a term date override); 0: their start is left as Canvas has it."
        ),
    )
    teacher_end_days_after: int = field(
        default=0,
        metadata=about("... and stay this many days after it ends; 0: their end is left as Canvas has it."),
    )
    teacher_dates_roles: tuple[TeacherDatesRole, ...] = field(
        default=("teacher",),
        metadata=about("Whose term dates teacher_start_days_before and teacher_end_days_after set."),
    )
    identity_changes: IdentityChanges = field(
        default="change_sis_id",
        metadata=about(
            "A person Clever re-creates under a new id keeps their Canvas user: by change_sis_id.csv rows, "
            "by Canvas's update_sis_id_if_login_claimed (same login), or off (a new Canvas user)."
        ),
    )
    pause: tuple[PauseWindow, ...] = field(
        default=(),
        metadata=about(
            "Nights the sync does nothing (exit 55; e.g. the year-end rollover): from and to, both "
            "included, in build.timezone; the first night after a pause is a remaster.",
            example=({"from": "2027-06-12", "to": "2027-08-20"},),
        ),
    )

    def paused_on(self, day: dt.date) -> PauseWindow | None:
        """The pause window ``day`` (a local date) falls in, if any (the first, when windows overlap)."""
        return next((window for window in self.pause if window.covers(day)), None)

    guard: GuardSettings = field(default_factory=GuardSettings)

    def shrink_limit_percent(self, file_name: str) -> float:
        """The guard's limit for ``file_name`` (``users.csv`` or ``users``)."""
        stem = file_name.removesuffix(".csv")
        return next(
            (limit for name, limit in self.max_shrink_percent_by_file.items() if name == stem),
            self.max_shrink_percent,
        )


def parse_sync(raw: RawConfig) -> SyncSettings:
    """Read ``[sync]`` and ``[sync.guard]``; unknown keys and bad values are errors, as in every table."""
    own = dict(raw.table("sync"))
    guard = own.pop("guard", {})
    given = read_table(RawConfig({"sync": own}, raw.path, raw.found_by), "sync", _hints(SyncSettings, "sync"))
    runs_dir = given.get("runs_dir", SyncSettings.runs_dir)
    if not runs_dir.is_absolute() and raw.path is not None:
        given["runs_dir"] = raw.path.parent / runs_dir
    low, high = PERCENT_RANGE
    limits = {"max_shrink_percent": given.get("max_shrink_percent", low)} | {
        f"max_shrink_percent_by_file.{name}": limit
        for name, limit in given.get("max_shrink_percent_by_file", {}).items()
    }
    for key, limit in limits.items():
        if not low <= limit <= high:
            raise ConfigError(f"{raw.source}: sync.{key} is a percentage from {low} to {high}, not {limit!r}")
    remaster = given.get("remaster_every_days", 1)
    if remaster < 1:
        raise ConfigError(f"{raw.source}: sync.remaster_every_days must be 1 or more days, not {remaster}")
    low, high = CHANGE_THRESHOLD_RANGE_PERCENT
    threshold = given.get("change_threshold", low)
    if not low <= threshold <= high:
        raise ConfigError(
            f"{raw.source}: sync.change_threshold is a percentage from {low} to {high}, not {threshold}"
        )
    keep_runs = given.get("keep_runs", 0)
    if keep_runs < 0:
        raise ConfigError(
            f"{raw.source}: sync.keep_runs is how many run directories to keep (0 keeps all), not {keep_runs}"
        )
    reconcile_days = given.get("reconcile_every_days", 0)
    if reconcile_days < 0:
        raise ConfigError(
            f"{raw.source}: sync.reconcile_every_days is a number of days (0 never reconciles), not "
            f"{reconcile_days}"
        )
    for key in ("teacher_start_days_before", "teacher_end_days_after"):
        days = given.get(key, 0)
        if not 0 <= days <= MAX_TEACHER_DAYS:
            raise ConfigError(
                f"{raw.source}: sync.{key} is a number of days from 0 (off) to {MAX_TEACHER_DAYS}, not {days}"
            )
    return SyncSettings(**given, guard=parse_guard(raw, guard))


def parse_guard(raw: RawConfig, table: Any) -> GuardSettings:
    """Read ``[sync.guard]`` (``table``: its value in the file); a floor not given keeps its default."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{raw.source}: [{GUARD_TABLE}] must be a table")
    given = read_table(
        RawConfig({GUARD_TABLE: table}, raw.path, raw.found_by),
        GUARD_TABLE,
        _hints(GuardSettings, GUARD_TABLE),
    )
    low, high = PERCENT_RANGE
    for key in (
        "school_max_loss_percent",
        "max_held_schools_percent",
        "max_changed_percent",
        "max_identity_changes_percent",
    ):
        if not low <= given.get(key, low) <= high:
            raise ConfigError(
                f"{raw.source}: {GUARD_TABLE}.{key} is a percentage from {low} to {high}, not {given[key]!r}"
            )
    counts = {f"school_min_loss.{name}": n for name, n in given.get("school_min_loss", {}).items()}
    for key in ("min_changes", "max_identity_carryovers"):
        if key in given:
            counts[key] = given[key]
    for key, count in counts.items():
        if count < 0:
            raise ConfigError(f"{raw.source}: {GUARD_TABLE}.{key} is a count (0 or more), not {count}")
    if "school_min_loss" in given:
        given["school_min_loss"] = {**DEFAULT_SCHOOL_MIN_LOSS, **given["school_min_loss"]}
    return GuardSettings(**given)


# [notify] is declared in clever2sis.notify.settings, with this module's helpers above (hence at the end).
from clever2sis.notify.settings import NotifySettings  # noqa: E402

# Every top-level table a config file may hold, and the dataclass whose fields are its keys.
TABLES: dict[str, type] = {
    "build": BuildSettings,
    "terms": BuildSettings,
    "ids": IdTemplates,
    "names": NameTemplates,
    "observers": ObserverSettings,
    "admins": AdminSettings,
    "profiles": CanvasProfile,
    "upload": UploadSettings,
    "sync": SyncSettings,
    GUARD_TABLE: GuardSettings,
    "notify": NotifySettings,
}
# The top-level tables (a dotted name is a table inside another: [sync.guard] is the key "guard" of [sync]).
KNOWN_TABLES: tuple[str, ...] = tuple(table for table in TABLES if "." not in table)
