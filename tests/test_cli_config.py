"""How every command finds its settings: --config, CLEVER2SIS_CONFIG, ./clever2sis.toml; init; python -m."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from clever2sis import __version__
from clever2sis.cli import main
from clever2sis.cli.common import CanvasRuntime
from clever2sis.example_config import example_config

# courses.csv of the tiny district with course_structure = "course": section e1 of course d1 (Algebra I,
# MA101) of school a1 in term c1 (the "Year" 2026-08-17..2027-06-11) becomes course d1 of that school in
# that term; e2 has no course and e3's course is not in the snapshot, so each keeps a course of its own,
# keyed and named by the section.
COURSES_BY_COURSE = (
    "course_id,short_name,long_name,account_id,term_id,status\n"
    "5f00000000000000000000d1_5f00000000000000000000a1_2026-08-17_2027-06-11_year,MA101,Algebra I,"
    "5f00000000000000000000a1,2026-08-17_2027-06-11_year,active\n"
    "5f00000000000000000000e2,9002,Homeroom - Lindqvist - 1,5f00000000000000000000b1,,active\n"
    "5f00000000000000000000e3,9003,Art - Okafor - 5,5f00000000000000000000a1,2026-08-17_2027-01-15_semester-1,"
    "active\n"
)
# The same district with the defaults: a course per section, named by the section, coded with its period.
COURSES_BY_SECTION = (
    "course_id,short_name,long_name,account_id,term_id,status\n"
    "5f00000000000000000000e1,MA101 P2,Algebra I - Okafor - 2,5f00000000000000000000a1,"
    "2026-08-17_2027-06-11_year,active\n"
    "5f00000000000000000000e2,9002 P1,Homeroom - Lindqvist - 1,5f00000000000000000000b1,,active\n"
    "5f00000000000000000000e3,9003 P5,Art - Okafor - 5,5f00000000000000000000a1,2026-08-17_2027-01-15_semester-1,"
    "active\n"
)


def invoke(
    args: list[str], env: Mapping[str, str] | None = None, obj: object = None, catch: bool = False
) -> Result:
    return CliRunner().invoke(main, args, env=env, obj=obj, catch_exceptions=catch)


def built(out: Path) -> tuple[str, dict[str, object]]:
    record = orjson.loads((out / "build.json").read_bytes())
    return (out / "csv" / "courses.csv").read_text(), record["config"]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory whose ./clever2sis.toml asks for the course structure."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "clever2sis.toml").write_text('[build]\ncourse_structure = "course"\n')
    monkeypatch.chdir(work)
    return work


def test_build_reads_the_config_file_in_the_current_directory(tiny_snapshot: Path, here: Path) -> None:
    result = invoke(["build", str(tiny_snapshot), "--out", "b", "-q", "-v"])
    assert result.exit_code == 0, result.output
    assert result.stderr == "config: clever2sis.toml (found in the current directory)\n"
    courses, config = built(here / "b")
    assert courses == COURSES_BY_COURSE
    assert (config["source"], config["course_structure"]) == ("clever2sis.toml", "course")


def test_build_without_any_config_uses_the_defaults(tiny_snapshot: Path, here: Path) -> None:
    (here / "clever2sis.toml").unlink()
    result = invoke(["build", str(tiny_snapshot), "--out", "b", "-q", "-v"])
    assert (
        result.stderr
        == "config: none; built-in defaults (no --config, CLEVER2SIS_CONFIG or ./clever2sis.toml)\n"
    )
    courses, config = built(here / "b")
    assert courses == COURSES_BY_SECTION
    assert config["source"] == "defaults"


def test_the_variable_wins_over_the_file_here_and_the_flag_over_both(
    tiny_snapshot: Path, here: Path, tmp_path: Path
) -> None:
    published = tmp_path / "published.toml"
    published.write_text('[build]\ncourse_status = "published"\n')
    env = {"CLEVER2SIS_CONFIG": str(published)}
    result = invoke(["build", str(tiny_snapshot), "--out", "by-env", "-q", "-v"], env=env)
    assert result.stderr == f"config: {published} (from CLEVER2SIS_CONFIG)\n"
    courses, config = built(here / "by-env")
    assert courses == COURSES_BY_SECTION.replace(",active\n", ",published\n")
    assert config["source"] == str(published)

    flag = tmp_path / "flag.toml"
    flag.write_text('[build]\ncourse_structure = "course"\ncourse_status = "unpublished"\n')
    result = invoke(
        ["build", str(tiny_snapshot), "--out", "by-flag", "--config", str(flag), "-q", "-v"], env=env
    )
    assert result.stderr == f"config: {flag} (from --config)\n"
    courses, config = built(here / "by-flag")
    assert courses == COURSES_BY_COURSE.replace(",active\n", ",unpublished\n")
    assert config["source"] == str(flag)


def test_a_missing_file_named_by_the_flag_or_the_variable_is_exit_2(tiny_snapshot: Path, here: Path) -> None:
    result = invoke(["build", str(tiny_snapshot), "--out", "b", "--config", "nope.toml"])
    assert (result.exit_code, result.stderr) == (
        2,
        "error: config file nope.toml not found (named by --config); check the path\n",
    )
    result = invoke(["build", str(tiny_snapshot), "--out", "b"], env={"CLEVER2SIS_CONFIG": "/etc/gone.toml"})
    assert (result.exit_code, result.stderr) == (
        2,
        "error: config file /etc/gone.toml not found (named by CLEVER2SIS_CONFIG); check the path or unset "
        "CLEVER2SIS_CONFIG\n",
    )
    assert not (here / "b").exists()


def test_a_kept_section_template_is_warned_about_on_stderr(tiny_snapshot: Path, here: Path) -> None:
    (here / "clever2sis.toml").write_text(
        '[build]\ncourse_structure = "course"\n[ids]\ncourse_id = "{{ section.id }}"\n'
    )
    result = invoke(["build", str(tiny_snapshot), "--out", "b", "-q"])
    assert result.exit_code == 0
    assert result.stderr == (
        "warning: clever2sis.toml: ids.course_id = '{{ section.id }}' is the course_structure = \"section\" "
        'default, but course_structure is "course": the explicit ids.course_id wins over the "course" default '
        "'{{ course.id }}_{{ school.id }}_{{ canvas.term_id }}', so course_structure does not change it (probably a line kept "
        'from an example); remove ids.course_id to use the "course" default\n'
    )
    courses, _ = built(here / "b")
    assert courses.splitlines()[1].startswith("5f00000000000000000000e1,MA101,Algebra I,")


# --- every command that reads settings takes the one --config ---------------------------------------------

COMMANDS = {
    "build": ["build", "snapshot", "--out", "b"],
    "map-ids": ["map-ids", "snapshot", "--out", "ids"],
    "review": ["review", "build"],
    "upload": ["upload", "build"],
    "status": ["status", "1"],
    "list": ["list"],
    "abort": ["abort", "1"],
    "restore": ["restore", "1"],
    "sync": ["sync"],
    "history": ["history"],
}
NO_CANVAS = CanvasRuntime(environ={})


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_that_reads_settings_takes_config(command: str, tmp_path: Path) -> None:
    args = COMMANDS[command]
    result = invoke([*args, "--config", str(tmp_path / "nope.toml")], obj=NO_CANVAS)
    assert result.exit_code == 2
    assert f"error: config file {tmp_path / 'nope.toml'} not found (named by --config); check the path\n" in (
        result.stderr
    )
    assert "--config FILE" in invoke([command, "--help"]).stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_reads_the_variable_and_says_so(command: str, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[sync]\nruns_dir = "{tmp_path / "runs"}"\n')
    environ = {"CLEVER2SIS_CONFIG": str(config)}
    # With --verbose the command's own failure (no snapshot, no Canvas) is a traceback; the line comes first.
    result = invoke([*COMMANDS[command], "-v"], env=environ, obj=CanvasRuntime(environ=environ), catch=True)
    assert result.stderr.startswith(f"config: {config} (from CLEVER2SIS_CONFIG)\n"), result.stderr


# --- init, python -m -------------------------------------------------------------------------------------


def test_init_writes_the_commented_config_that_commands_then_find(
    tmp_path: Path, tiny_snapshot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = invoke(["init", str(tmp_path / "district")])
    path = tmp_path / "district" / "clever2sis.toml"
    assert (result.exit_code, result.stderr) == (
        0,
        f"wrote {path}; every setting is commented out at its default\n",
    )
    assert path.read_text(encoding="utf-8") == example_config()
    monkeypatch.chdir(tmp_path / "district")
    result = invoke(["build", str(tiny_snapshot), "--out", "b", "-q", "-v"])
    assert result.stderr == "config: clever2sis.toml (found in the current directory)\n"
    assert built(tmp_path / "district" / "b")[0] == COURSES_BY_SECTION


def test_init_refuses_to_overwrite_without_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clever2sis.toml").write_text("# mine\n")
    result = invoke(["init"])
    assert (result.exit_code, result.stderr) == (
        2,
        "error: clever2sis.toml already exists; use --force to replace it\n",
    )
    assert (tmp_path / "clever2sis.toml").read_text() == "# mine\n"
    assert invoke(["init", "--force"]).exit_code == 0
    assert (tmp_path / "clever2sis.toml").read_text(encoding="utf-8") == example_config()


def test_python_dash_m_runs_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clever2sis", "--version"], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout) == (0, f"clever2sis, version {__version__}\n")
