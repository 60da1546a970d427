"""The [profiles] and [upload] tables, and the CANVAS_* environment fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from clever2sis.canvas.sis_import import ImportOptions
from clever2sis.config import RawConfig, load_raw_config, parse_profiles, parse_upload, resolve_profile
from clever2sis.errors import CanvasSettingsError, ConfigError

GOOD = """
[profiles.test]
base_url = "https://district.test.instructure.com/"
token_env = "CANVAS_TEST_TOKEN"
account_id = 1

[profiles.production]
base_url = "https://district.instructure.com"
account_id = "sis_account_id:district"

[upload]
profile = "test"
messages_ok = true
wait_timeout_s = 600
batch_mode = true
batch_mode_term_id = "sis_term_id:T1"
change_threshold = 10
"""


def parse_everything(raw: RawConfig) -> None:
    parse_profiles(raw)
    parse_upload(raw)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "clever2sis.toml"
    path.write_text(text)
    return path


def test_profiles_and_upload_are_read(tmp_path: Path) -> None:
    raw = load_raw_config(write(tmp_path, GOOD))
    profiles = parse_profiles(raw)
    assert profiles["test"].base_url == "https://district.test.instructure.com"
    assert profiles["test"].account_id == "1"
    assert profiles["production"].token_env == "CANVAS_TOKEN"
    upload = parse_upload(raw)
    assert upload.messages_ok is True
    assert upload.wait_timeout_s == 600
    assert upload.options == ImportOptions(
        batch_mode=True, batch_mode_term_id="sis_term_id:T1", change_threshold=10
    )
    assert resolve_profile(raw, None, {}).name == "test"
    assert resolve_profile(raw, "production", {}).name == "production"


def test_token_comes_from_the_named_variable(tmp_path: Path) -> None:
    profile = parse_profiles(load_raw_config(write(tmp_path, GOOD)))["test"]
    token = "7~" + "t0k" * 22
    assert profile.token({"CANVAS_TEST_TOKEN": f" {token}\n"}) == token
    with pytest.raises(CanvasSettingsError, match="set CANVAS_TEST_TOKEN"):
        profile.token({"CANVAS_TOKEN": "other"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[profiles.test]\nbase_url = "https://c.test"\naccount_id = 1\ntoken = "x"\n',
            "unknown key 'token'",
        ),
        ("[profiles.test]\naccount_id = 1\n", "base_url is required"),
        ('[profiles.test]\nbase_url = "http://c.test"\naccount_id = 1\n', "use https://"),
        ('[profiles.test]\nbase_url = "https://c.test?x=1"\naccount_id = 1\n', "without query"),
        ('[profiles.test]\nbase_url = "https://c.test"\naccount_id = "abc"\n', "account id must be"),
        (
            '[profiles.test]\nbase_url = "https://c.test"\naccount_id = 1\ntoken_env = "a b"\n',
            "environment variable",
        ),
        ('[profiles."../x"]\nbase_url = "https://c.test"\naccount_id = 1\n', "letters, digits"),
        ('[upload]\nchange_threshold = "10"\n', "upload.change_threshold must be a int"),
        ("[upload]\nskip_deletes = 1\n", "upload.skip_deletes must be a bool"),
        ("[upload]\nbogus = 1\n", "unknown key upload.bogus"),
        ("[upload]\nwait_timeout_s = 0\n", "positive number of seconds"),
    ],
)
def test_bad_settings_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    raw = load_raw_config(write(tmp_path, text))
    with pytest.raises(ConfigError, match=message):
        parse_everything(raw)


def test_unknown_profile_names_the_known_ones(tmp_path: Path) -> None:
    raw = load_raw_config(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match="no profile 'staging'; known: production, test"):
        resolve_profile(raw, "staging", {})


def test_environment_serves_without_a_config() -> None:
    raw = load_raw_config(None)
    env = {"CANVAS_BASE_URL": "https://c.test/", "CANVAS_ACCOUNT_ID": "self", "CANVAS_TOKEN": "t"}
    profile = resolve_profile(raw, None, env)
    assert (profile.name, profile.base_url, profile.account_id, profile.token_env) == (
        "env",
        "https://c.test",
        "self",
        "CANVAS_TOKEN",
    )
    assert resolve_profile(raw, "test", env).name == "test"
    with pytest.raises(CanvasSettingsError, match="set CANVAS_BASE_URL"):
        resolve_profile(raw, None, {})
