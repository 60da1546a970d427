"""The example clever2sis.toml: generated from the settings dataclasses, every setting commented out."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path

import pytest

from clever2sis.canvas.sis_import import ImportOptions
from clever2sis.config import (
    TABLES,
    CanvasProfile,
    PauseWindow,
    RawConfig,
    SyncSettings,
    build_settings,
    parse_profiles,
    parse_sync,
    parse_upload,
    setting_fields,
)
from clever2sis.errors import UsageError
from clever2sis.example_config import NOTIFY_OMITTED, example_config, toml_value, write_example_config
from clever2sis.notify.settings import SUBTABLES as NOTIFY_SUBTABLES
from clever2sis.notify.settings import EmailSettings, WebhookSettings, parse_notify

SAMPLE = Path(__file__).parents[1] / "samples" / "clever2sis.example.toml"
SETTING_LINE = re.compile(r"^# ([a-z_]+ = .*)$")
TABLE_LINE = re.compile(r"^# (\[[a-z_.]+\])$")


def uncommented(text: str) -> str:
    """The example with every setting line and table header uncommented (help lines stay comments)."""
    lines = []
    for line in text.splitlines():
        match = SETTING_LINE.match(line) or TABLE_LINE.match(line)
        lines.append(match.group(1) if match else line)
    return "\n".join(lines) + "\n"


def table_of(data: dict[str, object], name: str) -> dict[str, object]:
    """The keys of ``[name]`` in ``data`` (a dotted name is a table inside another), without its own
    tables (``[sync.guard]`` is not a key of ``[sync]``)."""
    table: object = data
    for part in name.split("."):
        assert isinstance(table, dict), name
        table = table[part]
    assert isinstance(table, dict), name
    return {key: value for key, value in table.items() if f"{name}.{key}" not in TABLES}


def settings_of(data: dict[str, object]) -> RawConfig:
    return RawConfig(data=data, path=Path("/etc/clever2sis/clever2sis.toml"))


def test_the_shipped_example_is_what_the_generator_makes() -> None:
    assert SAMPLE.read_text(encoding="utf-8") == example_config(), "run: make example-config"


def test_as_shipped_it_sets_nothing() -> None:
    data = tomllib.loads(example_config())
    assert set(data) == {name for name in TABLES if "." not in name and name != "profiles"}
    for name in TABLES:
        if name != "profiles":
            assert table_of(data, name) == {}, name
    raw = settings_of(data)
    assert build_settings(raw).ids == build_settings(RawConfig(data={})).ids
    assert parse_profiles(raw) == {}
    assert parse_sync(raw) == parse_sync(settings_of({}))


def test_flipping_course_structure_in_a_copy_changes_the_course_templates() -> None:
    text = example_config().replace('# course_structure = "section"', 'course_structure = "course"')
    settings = build_settings(settings_of(tomllib.loads(text)))
    assert settings.ids["course_id"] == "{{ course.id }}_{{ school.id }}_{{ canvas.term_id }}"
    assert settings.names["course_long_name"] == "{{ course.name or section.name }}"


def test_every_line_uncommented_gives_the_defaults_and_the_shown_examples() -> None:
    data = tomllib.loads(uncommented(example_config()))
    raw = settings_of(data)
    defaults = build_settings(RawConfig(data={}))
    built = build_settings(raw)
    assert {k: v for k, v in vars(built).items() if not k.startswith("config_")} == {
        k: v for k, v in vars(defaults).items() if not k.startswith("config_")
    }
    assert parse_profiles(raw) == {
        "test": CanvasProfile(
            name="test",
            base_url="https://district.test.instructure.com",
            account_id="1",
            token_env="CANVAS_TOKEN",
            require_approval=True,
        )
    }
    upload = parse_upload(raw)
    assert (upload.profile, upload.messages_ok, upload.wait_timeout_s) == ("test", False, 7200.0)
    assert upload.options == ImportOptions(
        diffing_data_set_identifier="clever2sis:district:production",
        diffing_drop_status="inactive",
        diffing_user_remove_status="suspended",
        change_threshold=10,
        diff_row_count_threshold=50000,
        batch_mode_term_id="sis_term_id:T1",
        batch_mode_enrollment_drop_status="completed",
    )
    assert parse_sync(raw) == SyncSettings(
        runs_dir=Path("/etc/clever2sis/runs"),
        max_shrink_percent_by_file={"enrollments": 15.0},
        diffing_data_set_identifier="clever2sis:district:production",
        pause=(PauseWindow(dt.date(2027, 6, 12), dt.date(2027, 8, 20)),),
    )


def test_every_declared_setting_is_in_the_example() -> None:
    data = tomllib.loads(uncommented(example_config()))
    for table, cls in TABLES.items():
        shown = data[table]["test"] if table == "profiles" else table_of(data, table)
        expected = set(setting_fields(cls, table))
        if table == "upload":
            expected |= set(ImportOptions.names())
        if table == "notify":
            expected |= set(NOTIFY_SUBTABLES)
        assert set(shown) == expected, table
    for key, (cls, table, renamed) in NOTIFY_SUBTABLES.items():
        keys = {field: toml for toml, field in renamed.items()}
        declared = {keys.get(name, name) for name in setting_fields(cls, table)}
        assert set(data["notify"][key]) == declared - set(NOTIFY_OMITTED.get(key, {})), table


def test_the_notify_example_reads_back_as_the_settings_it_shows(tmp_path: Path) -> None:
    (tmp_path / "relay-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    data = tomllib.loads(uncommented(example_config()))
    notify = parse_notify(RawConfig(data=data, path=tmp_path / "clever2sis.toml"))
    assert notify.webhook == WebhookSettings(format="json", url_env="CLEVER2SIS_WEBHOOK_URL")
    assert notify.email == EmailSettings(
        host="smtp.example.org",
        sender="clever2sis@example.org",
        to=("rostering@example.org",),
        username_env="SMTP_USERNAME",
        password_env="SMTP_PASSWORD",
        ca_file=tmp_path / "relay-ca.pem",
    )
    assert (notify.on_failure, notify.daily_summary, notify.report_base_url) == (
        True,
        False,
        "https://reports.example.org/clever2sis",
    )


@pytest.mark.parametrize(
    ("value", "toml"),
    [
        (True, "true"),
        (10.0, "10"),
        (2.5, "2.5"),
        ('a "q" \\ b', '"a \\"q\\" \\\\ b"'),
        (("a", "b"), '["a", "b"]'),
        ({"users": 5}, "{ users = 5 }"),
        ({}, "{}"),
    ],
)
def test_toml_values_read_back(value: object, toml: str) -> None:
    assert toml_value(value) == toml
    assert tomllib.loads(f"x = {toml}")["x"] == (list(value) if isinstance(value, tuple) else value)


def test_write_refuses_to_replace_without_force(tmp_path: Path) -> None:
    path = write_example_config(tmp_path / "new")
    assert path == tmp_path / "new" / "clever2sis.toml"
    assert path.read_text(encoding="utf-8") == example_config()
    path.write_text("# mine\n")
    with pytest.raises(UsageError) as error:
        write_example_config(tmp_path / "new")
    assert str(error.value) == f"{path} already exists; use --force to replace it"
    assert path.read_text() == "# mine\n"
    write_example_config(tmp_path / "new", force=True)
    assert path.read_text(encoding="utf-8") == example_config()
    assert [p.name for p in path.parent.iterdir()] == ["clever2sis.toml"]
