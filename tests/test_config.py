"""Finding the settings file, the defaults the dataclasses declare, typed values, and override warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from clever2sis.config import (
    ConfigLocation,
    RawConfig,
    build_settings,
    config_warnings,
    find_config,
    load_config,
    parse_sync,
    parse_upload,
)
from clever2sis.errors import ConfigError

ENV = "CLEVER2SIS_CONFIG"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A directory holding ./clever2sis.toml, plus two other config files elsewhere."""
    cwd = tmp_path / "work"
    cwd.mkdir()
    paths = {"default": cwd / "clever2sis.toml", "env": tmp_path / "env.toml", "flag": tmp_path / "flag.toml"}
    for name, path in paths.items():
        path.write_text(f'[terms]\nfallback_term_name = "{name}"\n')
    return {"cwd": cwd, **paths}


def test_the_flag_wins_then_the_variable_then_the_file_here(files: dict[str, Path]) -> None:
    cwd, env = files["cwd"], {ENV: str(files["env"])}
    assert find_config(files["flag"], env, cwd) == ConfigLocation(files["flag"], "flag")
    assert find_config(None, env, cwd) == ConfigLocation(files["env"], "env")
    assert find_config(None, {}, cwd) == ConfigLocation(files["default"], "default file")
    assert find_config(None, {ENV: "  "}, cwd) == ConfigLocation(files["default"], "default file")
    files["default"].unlink()
    assert find_config(None, {}, cwd) == ConfigLocation(None, "defaults")
    assert build_settings(load_config(None, env, cwd)).fallback_term_name == "env"
    assert build_settings(load_config(files["flag"], env, cwd)).fallback_term_name == "flag"
    assert build_settings(load_config(None, {}, cwd)).fallback_term_name == "No term"


def test_how_it_was_found_is_one_line(files: dict[str, Path]) -> None:
    cwd = files["cwd"]
    assert find_config(files["flag"], {}, cwd).describe() == f"config: {files['flag']} (from --config)"
    assert (
        find_config(None, {ENV: str(files["env"])}, cwd).describe()
        == f"config: {files['env']} (from CLEVER2SIS_CONFIG)"
    )
    assert (
        find_config(None, {}, cwd).describe()
        == f"config: {files['default']} (found in the current directory)"
    )
    assert (
        ConfigLocation(None, "defaults").describe()
        == "config: none; built-in defaults (no --config, CLEVER2SIS_CONFIG or ./clever2sis.toml)"
    )


def test_a_named_file_that_is_missing_is_an_error_not_the_defaults(files: dict[str, Path]) -> None:
    missing = files["cwd"] / "nope.toml"
    with pytest.raises(ConfigError) as error:
        find_config(missing, {}, files["cwd"])
    assert str(error.value) == f"config file {missing} not found (named by --config); check the path"
    with pytest.raises(ConfigError) as error:
        find_config(None, {ENV: str(missing)}, files["cwd"])
    assert str(error.value) == (
        f"config file {missing} not found (named by CLEVER2SIS_CONFIG); check the path or unset CLEVER2SIS_CONFIG"
    )
    with pytest.raises(ConfigError) as error:
        find_config(files["cwd"], {}, files["cwd"])
    assert str(error.value) == f"config file {files['cwd']} is not a file (named by --config); check the path"
    assert error.value.exit_code == 2


def test_defaults_are_the_documented_ones() -> None:
    settings = build_settings(RawConfig(data={}))
    assert settings.course_structure == "section"
    assert settings.user_roles == ("student", "teacher", "staff", "district_admin")
    assert settings.login_id_fields == ("district_username", "email")
    assert (settings.coteacher_role, settings.course_status, settings.timezone) == (
        "teacher",
        "active",
        "UTC",
    )
    assert (settings.fallback_term_id, settings.fallback_term_name) == ("", "No term")
    assert settings.ids == {
        "account_id": "{{ school.id }}",
        "term_id": "{{ term.start_date }}_{{ term.end_date }}_{{ term.name|slug }}",
        "course_id": "{{ section.id }}",
        "section_id": "{{ section.id }}",
        "user_id": "{{ user.id }}",
    }
    assert settings.names == {
        "account": "{{ school.name }}",
        "term": "{{ term.name }}",
        "course_long_name": "{{ section.name }}",
        "course_short_name": "{{ course.number or course.name or section.sis_id }}"
        "{% if section.period %} P{{ section.period }}{% endif %}",
        "section": "{{ section.name }}",
    }
    by_course = build_settings(
        RawConfig(data={"build": {"course_structure": "course"}, "ids": {"user_id": "x"}})
    )
    assert by_course.ids["course_id"] == "{{ course.id }}_{{ school.id }}_{{ canvas.term_id }}"
    assert by_course.ids["user_id"] == "x"
    assert by_course.names["course_long_name"] == "{{ course.name or section.name }}"
    assert by_course.names["course_short_name"] == "{{ course.number or course.name or section.sis_id }}"


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        (
            {"build": {"coteacher_role": "aide"}},
            "defaults: build.coteacher_role = 'aide'; use one of: teacher, ta",
        ),
        (
            {"build": {"user_roles": ["student", "parent"]}},
            "defaults: build.user_roles = 'parent'; use one of: student, teacher, staff, district_admin",
        ),
        ({"build": {"user_roles": "student"}}, "defaults: build.user_roles must be a list, not 'student'"),
        (
            {"ids": {"course": "x"}},
            "defaults: unknown key ids.course; known keys: account_id, course_id, section_id, term_id, user_id",
        ),
        (
            {"names": {"course": "x"}},
            "defaults: unknown key names.course; known keys: account, course_long_name, course_short_name, "
            "section, term",
        ),
        ({"names": {"term": 1}}, "defaults: names.term must be a str, not 1"),
        (
            {"terms": {"fallback": "x"}},
            "defaults: unknown key terms.fallback; known keys: fallback_term_id, fallback_term_name",
        ),
        (
            {"observers": {"on": True}},
            "defaults: unknown key observers.on; known keys: authentication_provider_id, enabled, login_id, "
            "relationship_types, user_id",
        ),
    ],
)
def test_bad_build_values_name_the_key_and_the_allowed_values(
    tables: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        build_settings(RawConfig(data=tables))
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"deletion_mode": "wipe"},
            "/etc/c.toml: sync.deletion_mode = 'wipe'; use one of: diffing, explicit, batch",
        ),
        (
            {"enrollment_remove_status": "gone"},
            "/etc/c.toml: sync.enrollment_remove_status = 'gone'; use one of: inactive, completed, deleted, "
            "deleted_last_completed",
        ),
        (
            {"max_shrink_percent_by_file": {"pupils": 5}},
            "/etc/c.toml: sync.max_shrink_percent_by_file.pupils: use one of accounts, terms, courses, sections, "
            "users, enrollments, admins",
        ),
        (
            {"max_shrink_percent_by_file": {"users": 150}},
            "/etc/c.toml: sync.max_shrink_percent_by_file.users is a percentage from 0 to 100, not 150.0",
        ),
        (
            {"max_shrink_percent": True},
            "/etc/c.toml: sync.max_shrink_percent must be a int or float, not True",
        ),
        ({"remaster_every_days": 0}, "/etc/c.toml: sync.remaster_every_days must be 1 or more days, not 0"),
        ({"change_threshold": 0}, "/etc/c.toml: sync.change_threshold is a percentage from 1 to 100, not 0"),
        ({"runs_dir": " "}, "/etc/c.toml: sync.runs_dir must name a directory"),
        (
            {"keep": 1},
            "/etc/c.toml: unknown key sync.keep; known keys: change_threshold, deletion_mode, "
            "diffing_data_set_identifier, enrollment_remove_status, identity_changes, keep_runs, "
            "max_shrink_percent, max_shrink_percent_by_file, pause, reconcile_every_days, "
            "remaster_every_days, runs_dir, teacher_dates_roles, teacher_end_days_after, "
            "teacher_start_days_before, term_rollover, user_remove_status",
        ),
        (
            {"identity_changes": "update"},
            "/etc/c.toml: sync.identity_changes = 'update'; use one of: change_sis_id, "
            "update_sis_id_if_login_claimed, off",
        ),
        (
            {"reconcile_every_days": -1},
            "/etc/c.toml: sync.reconcile_every_days is a number of days (0 never reconciles), not -1",
        ),
    ],
)
def test_bad_sync_values_name_the_key(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_sync(RawConfig(data={"sync": values}, path=Path("/etc/c.toml")))
    assert str(error.value) == message


def test_runs_dir_is_relative_to_the_config_file_unless_absolute() -> None:
    here = Path("/etc/clever2sis/clever2sis.toml")
    assert parse_sync(RawConfig(data={}, path=here)).runs_dir == Path("/etc/clever2sis/runs")
    assert parse_sync(RawConfig(data={"sync": {"runs_dir": "nightly"}}, path=here)).runs_dir == Path(
        "/etc/clever2sis/nightly"
    )
    assert parse_sync(RawConfig(data={"sync": {"runs_dir": "/var/runs"}}, path=here)).runs_dir == Path(
        "/var/runs"
    )
    assert parse_sync(RawConfig(data={})).runs_dir == Path("runs")


def test_upload_keys_are_its_own_settings_and_every_import_option() -> None:
    with pytest.raises(ConfigError) as error:
        parse_upload(RawConfig(data={"upload": {"wait": 1}}))
    assert str(error.value) == (
        "defaults: unknown key upload.wait; known keys: add_sis_stickiness, batch_mode, "
        "batch_mode_enrollment_drop_status, batch_mode_term_id, change_threshold, clear_sis_stickiness, "
        "diff_row_count_threshold, diffing_data_set_identifier, diffing_drop_status, diffing_remaster_data_set, "
        "diffing_user_remove_status, messages_ok, multi_term_batch_mode, override_sis_stickiness, profile, "
        "skip_deletes, update_sis_id_if_login_claimed, wait_timeout_s"
    )
    upload = parse_upload(RawConfig(data={"upload": {"wait_timeout_s": 60, "diff_row_count_threshold": 5}}))
    assert (upload.wait_timeout_s, upload.options.diff_row_count_threshold, upload.profile) == (60.0, 5, None)


# --- a setting that another one overrides ----------------------------------------------------------------

SECTION_SHORT_NAME = "{{ course.number or course.name or section.sis_id }}{% if section.period %} P{{ section.period }}{% endif %}"


def test_section_templates_kept_with_the_course_structure_are_warned_about() -> None:
    raw = RawConfig(
        data={
            "build": {"course_structure": "course"},
            "ids": {"course_id": "{{ section.id }}", "user_id": "{{ user.sis_id }}"},
            "names": {"course_long_name": "{{ section.name }}", "course_short_name": SECTION_SHORT_NAME},
        },
        path=Path("clever2sis.toml"),
    )
    warnings = config_warnings(raw)
    assert warnings[0] == (
        "clever2sis.toml: ids.course_id = '{{ section.id }}' is the course_structure = \"section\" default, but "
        'course_structure is "course": the explicit ids.course_id wins over the "course" default '
        "'{{ course.id }}_{{ school.id }}_{{ canvas.term_id }}', so course_structure does not change it (probably a line kept "
        'from an example); remove ids.course_id to use the "course" default'
    )
    assert [line.split(" = ")[0] for line in warnings] == [
        "clever2sis.toml: ids.course_id",
        "clever2sis.toml: names.course_long_name",
        "clever2sis.toml: names.course_short_name",
    ]


def test_course_templates_kept_with_the_section_structure_are_warned_about() -> None:
    raw = RawConfig(data={"ids": {"course_id": "{{ course.id }}_{{ school.id }}_{{ canvas.term_id }}"}})
    (warning,) = config_warnings(raw)
    assert warning.startswith(
        "defaults: ids.course_id = '{{ course.id }}_{{ school.id }}_{{ canvas.term_id }}' is the course_structure = \"course\" "
        'default, but course_structure is "section": the explicit ids.course_id wins'
    )


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"build": {"course_structure": "section"}, "ids": {"course_id": "{{ section.id }}"}},
        {"build": {"course_structure": "course"}, "ids": {"course_id": "{{ course.sis_id }}"}},
        {"build": {"course_structure": "course"}, "names": {"course_long_name": "{{ course.name }}"}},
        {"build": {"course_structure": "term"}, "ids": {"course_id": "{{ section.id }}"}},
        {"build": "not a table"},
    ],
)
def test_no_warning_for_deliberate_or_invalid_settings(data: dict[str, object]) -> None:
    assert config_warnings(RawConfig(data=data)) == ()
