"""The example ``clever2sis.toml``: every setting with its default, commented out, made from the dataclasses.

Nothing here is a second list of settings: each line comes from a field of the settings dataclasses in
:mod:`clever2sis.config` (its default, its type's allowed values, its help in the field's metadata) or
from an :class:`~clever2sis.canvas.sis_import.ImportOptions` field's :class:`OptionInfo`. Because every
setting is commented out, a copy changes nothing until a line is uncommented, and a default that follows
another setting (the course templates follow ``course_structure``) keeps following it.
``samples/clever2sis.example.toml`` is this text (a test keeps them equal), and ``clever2sis init`` writes it.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import orjson

from clever2sis.atomic import atomic_write_bytes
from clever2sis.canvas.sis_import import ImportOptions, OptionInfo
from clever2sis.config import (
    CONFIG_ENV,
    COURSE_TEMPLATE_TABLES,
    COURSE_TEMPLATES,
    DEFAULT_CONFIG_NAME,
    TABLES,
    SettingDoc,
    setting_fields,
)
from clever2sis.errors import ConfigError, UsageError
from clever2sis.notify.settings import SUBTABLES as NOTIFY_SUBTABLES

LINE_WIDTH = 110
_UNSET_NOTE = " Not set by default."  # shown with the example value of a setting that has no default
EXAMPLE_PROFILE = "test"

HEADER = f"""\
{DEFAULT_CONFIG_NAME}: every clever2sis setting, commented out at its default.
Uncomment only what you change: a setting left commented keeps its default, and a default that depends on
another setting (the course templates on course_structure) keeps following it. Unknown keys are errors.
clever2sis reads the file given by --config, else the one ${CONFIG_ENV} names, else ./{DEFAULT_CONFIG_NAME}.
Templates are jinja2. Namespaces: school, term, course, section, teacher (the primary teacher), user, canvas
(canvas.account_id, canvas.term_id: the Canvas ids already derived for a section's school and term), and
contact (only in [observers]: contact.id, contact.sis_id, contact.name, contact.email).
Secrets never go here: a profile names the environment variable that holds its token."""

# What each table is for, shown above its settings.
INTROS = {
    "build": "How a Clever snapshot becomes Canvas SIS Import CSVs.",
    "terms": "Terms: where sections without a (known) term go.",
    "ids": "The Canvas SIS ids. Clever ids by default (they are stable); a template that makes an id "
    "something else also sends the Clever id as integration_id.",
    "names": "The Canvas names.",
    "observers": "Clever contacts (parents, guardians) as Canvas observers of their students (opt-in).",
    "admins": "Clever school admins (and, if you choose, district admins) as admins of Canvas sub-accounts, "
    "through admins.csv (opt-in). Never of the root account; an admin added in Canvas is never removed.",
    "profiles": "One table per Canvas instance, [profiles.<name>]. Without any, the environment variables "
    "CANVAS_BASE_URL, CANVAS_TOKEN and CANVAS_ACCOUNT_ID describe the one Canvas.",
    "upload": "Uploads: the default profile, how long to follow an import, and the import options.",
    "sync": "The nightly `clever2sis sync`: where runs live, how removals reach Canvas, the guard's limits.",
    "sync.guard": "The guard's per-school holds and its stops for mass changes (`--allow-large-change "
    "[SCHOOL_ID]` releases them after a review).",
    "notify": "Alerts from the nightly sync: which runs send one, and where ([notify.webhook] and/or "
    "[notify.email] below; without either nothing is sent).",
}
# Keys of a [notify.*] table the example leaves out, with the line shown instead: url and url_env cannot
# both be set, so an example with every line uncommented shows only url_env.
NOTIFY_OMITTED = {"webhook": {"url": 'Instead of url_env, url = "https://..." can hold the URL itself.'}}
IMPORT_OPTIONS_INTRO = (
    "Every option of Canvas's SIS import, by its Canvas name; a flag of `clever2sis upload` overrides it."
)


def toml_value(value: Any) -> str:
    """``value`` written as TOML (strings as basic strings, tuples as arrays, dicts as inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return orjson.dumps(str(value)).decode()
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"no TOML form for {value!r}")


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, LINE_WIDTH - 2, initial_indent="# ", subsequent_indent="# ") or ["#"]


def _allowed(hint: Any) -> str:
    """``" One of: a, b."`` for a Literal (or a tuple of them), else nothing."""
    origin = get_origin(hint)
    if origin is tuple:
        return _allowed(get_args(hint)[0]).replace("One of", "Any of")
    if origin is Literal:
        return f" One of: {', '.join(get_args(hint))}."
    return ""


def _setting(key: str, help: str, value: Any, *, note: str = "", more: tuple[str, ...] = ()) -> list[str]:
    return [*_comment(help + note), *more, f"# {key} = {toml_value(value)}"]


def _field_default(item: Any) -> Any:
    """The field's default; ``MISSING`` for a required one."""
    if item.default_factory is not MISSING:
        return item.default_factory()
    return item.default


def _table_settings(table: str) -> list[list[str]]:
    """The commented lines of every setting of ``[table]`` that its dataclass declares."""
    cls = TABLES[table]
    defaults = {item.name: _field_default(item) for item in fields(cls)}
    entries = []
    for key, (doc, hint) in setting_fields(cls, table).items():
        entries.append(_documented(table, key, doc, hint, defaults[key]))
    return entries


def _documented(table: str, key: str, doc: SettingDoc, hint: Any, default: Any) -> list[str]:
    if COURSE_TEMPLATE_TABLES.get(key) == table:
        by_structure = tuple(
            f"#   {structure}: {toml_value(getattr(templates, key))}"
            for structure, templates in COURSE_TEMPLATES.items()
        )
        help = f"{doc.help} Its default follows course_structure:"
        return _setting(key, help, getattr(COURSE_TEMPLATES["section"], key), more=by_structure)
    help = doc.help + _allowed(hint)
    if default is MISSING:
        return _setting(key, help, doc.example, note=" Required.")
    if doc.example is not None:
        return _setting(key, help, doc.example, note=_UNSET_NOTE if "not set" not in help else "")
    return _setting(key, help, default)


def _import_option(name: str, info: OptionInfo) -> list[str]:
    help = re.sub(r"--([a-z-]+)", lambda match: match.group(1).replace("-", "_"), info.help)
    if info.choices:
        help += f" One of: {', '.join(info.choices)}."
    if info.kind == "flag":
        return _setting(name, help, False)
    return _setting(name, help, info.example, note=_UNSET_NOTE)


def _notify_subtables() -> list[list[str]]:
    """``# [notify.webhook]`` and ``# [notify.email]`` with their settings, like ``[profiles.test]``."""
    entries: list[list[str]] = []
    for key, (cls, table, renamed) in NOTIFY_SUBTABLES.items():
        keys = {field: toml for toml, field in renamed.items()}
        defaults = {item.name: _field_default(item) for item in fields(cls)}
        omitted = NOTIFY_OMITTED.get(key, {})
        entries.append([f"# [{table}]"])
        for name, (doc, hint) in setting_fields(cls, table).items():
            if name in omitted:
                entries.append(_comment(omitted[name]))
                continue
            entries.append(_documented(table, keys.get(name, name), doc, hint, defaults[name]))
    return entries


def example_config() -> str:
    """The text of the example ``clever2sis.toml`` (every setting commented out at its default)."""
    blocks = ["\n".join(f"# {line}" for line in HEADER.splitlines())]
    for table in TABLES:
        intro = _comment(INTROS[table])
        entries = _table_settings(table)
        if table == "profiles":
            entries = [[f"# [profiles.{EXAMPLE_PROFILE}]"], *entries]
            blocks.append("\n\n".join(["\n".join(intro), *("\n".join(entry) for entry in entries)]))
            continue
        if table == "upload":
            entries.append(_comment(IMPORT_OPTIONS_INTRO))
            entries += [_import_option(name, info) for name, info in ImportOptions.described()]
        if table == "notify":
            entries += _notify_subtables()
        blocks.append("\n\n".join(["\n".join([f"[{table}]", *intro]), *("\n".join(e) for e in entries)]))
    return "\n\n".join(blocks) + "\n"


def write_example_config(directory: Path, *, force: bool = False) -> Path:
    """Write :func:`example_config` as ``directory/clever2sis.toml``; an existing one only with ``force``."""
    path = directory / DEFAULT_CONFIG_NAME
    if path.exists() and not force:
        raise UsageError(f"{path} already exists; use --force to replace it")
    if path.is_dir():
        raise UsageError(f"{path} is a directory; remove it or choose another directory")
    try:
        atomic_write_bytes(path, example_config().encode())
    except OSError as error:
        raise ConfigError(f"{path}: cannot write the config file ({error.strerror or error})") from None
    return path
