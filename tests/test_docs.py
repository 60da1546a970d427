"""Every command's help shows a real example, every option is in the README, and the README and ``make help``
speak to users (no internal references, no paths outside the repository)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from clever2sis.canvas.sis_import import ImportOptions
from clever2sis.cli import COMMANDS, main

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# Internal references a user cannot follow: issue numbers, the machine's shared folders, other helpers.
INTERNAL = re.compile(r"\bissue \d+|\bissues? #\d+|\.\./shared|/work/|\bshared/reference\b", re.IGNORECASE)


def command_names() -> list[str]:
    return sorted(command.name for command in COMMANDS if command.name)


def help_of(*args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def examples(text: str) -> list[str]:
    """The lines of the help's ``Examples:`` block."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Examples:")
    block = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        block.append(line.strip())
    return block


def test_the_main_help_has_examples() -> None:
    assert any(line.startswith("clever2sis ") for line in examples(help_of()))


@pytest.mark.parametrize("name", command_names())
def test_every_command_shows_an_example_of_itself(name: str) -> None:
    shown = examples(help_of(name))
    assert shown, name
    mine = [line for line in shown if re.search(rf"\bclever2sis {re.escape(name)}\b", line)]
    assert mine, f"{name}: no example runs `clever2sis {name}`: {shown}"
    command = main.commands[name]
    flags = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for line in mine:
        own = re.split(r"\s(?:\||>>?|&&|#)\s", line.split(f"clever2sis {name}", 1)[1])[0]  # not what follows
        used = set(re.findall(r"(?<!\S)(--?[a-z][a-z-]*)", own))
        assert used <= flags, f"{name}: the example uses flags it does not have: {used - flags}"


def _documented(name: str, option: click.Option) -> bool:
    long = [opt for opt in option.opts if opt.startswith("--")]
    if any(re.search(rf"{re.escape(opt)}\b", README) for opt in long):
        return True
    # upload's import options are documented by their Canvas names (the README's table of options).
    return name == "upload" and option.name in ImportOptions.names() and f"`{option.name}`" in README


@pytest.mark.parametrize("name", command_names())
def test_every_option_of_every_command_is_in_the_readme(name: str) -> None:
    command = main.commands[name]
    missing = [
        option.opts[-1]
        for option in command.params
        if isinstance(option, click.Option) and "--help" not in option.opts and not _documented(name, option)
    ]
    assert missing == [], f"clever2sis {name}: options not in the README: {missing}"


def test_every_command_has_a_readme_section() -> None:
    for name in command_names():
        assert f"clever2sis {name}" in README, name


def test_the_readme_and_make_help_speak_to_users() -> None:
    assert INTERNAL.findall(README) == []
    make = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "bench" in make.stdout
    assert INTERNAL.findall(make.stdout) == []
