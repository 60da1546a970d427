"""Every command's help shows a real example, every option is documented (README.md or a page of docs/), the
README's tour names every command, every relative link of the documentation leads to a file and a heading,
and the documentation and ``make help`` speak to users (no internal references, no paths outside the
repository)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from clever2sis.canvas.sis_import import ImportOptions
from clever2sis.cli import commands, main
from tests import documentation
from tests.documentation import ROOT, anchor, broken_links, pages

README = documentation.README.read_text(encoding="utf-8")
DOCUMENTED = documentation.every_page()
# Internal references a user cannot follow: issue numbers, the machine's shared folders, other helpers.
INTERNAL = re.compile(r"\bissue \d+|\bissues? #\d+|\.\./shared|/work/|\bshared/reference\b", re.IGNORECASE)


def command_names() -> list[str]:
    return sorted(command.name for command in commands() if command.name)


def command_of(name: str) -> click.Command:
    found = main.get_command(click.Context(main), name)
    assert found is not None, name
    return found


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
    command = command_of(name)
    flags = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for line in mine:
        own = re.split(r"\s(?:\||>>?|&&|#)\s", line.split(f"clever2sis {name}", 1)[1])[0]  # not what follows
        used = set(re.findall(r"(?<!\S)(--?[a-z][a-z-]*)", own))
        assert used <= flags, f"{name}: the example uses flags it does not have: {used - flags}"


def _documented(name: str, option: click.Option) -> bool:
    long = [opt for opt in option.opts if opt.startswith("--")]
    if any(re.search(rf"{re.escape(opt)}\b", DOCUMENTED) for opt in long):
        return True
    # upload's import options are documented by their Canvas names (docs/upload.md's table of options).
    return name == "upload" and option.name in ImportOptions.names() and f"`{option.name}`" in DOCUMENTED


@pytest.mark.parametrize("name", command_names())
def test_every_option_of_every_command_is_documented(name: str) -> None:
    command = command_of(name)
    missing = [
        option.opts[-1]
        for option in command.params
        if isinstance(option, click.Option) and "--help" not in option.opts and not _documented(name, option)
    ]
    assert missing == [], f"clever2sis {name}: options not in README.md or docs/: {missing}"


def test_the_readme_tour_names_every_command() -> None:
    for name in command_names():
        assert f"clever2sis {name}" in README, name


@pytest.mark.parametrize("path", pages(), ids=lambda path: path.name)
def test_every_relative_link_leads_to_a_file_and_a_heading(path: Path) -> None:
    assert broken_links(path) == []


def test_a_link_to_a_missing_file_or_heading_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## Exit codes (sync, history)\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page: `clever2sis page`\n\n"
        "[ok](#page-clever2sis-page) [ok](other.md#exit-codes-sync-history) [ok](other.md) [ok](https://x.org/#y)\n"
        "[gone](missing.md) [no heading](other.md#exit-codes) [not here](#other)\n"
        "`[in code](nowhere.md)`\n\n```\n[in a block](nowhere.md)\n# not a heading\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "page.md:4: missing.md: no such file",
        "page.md:4: other.md#exit-codes: no heading with that anchor in other.md",
        "page.md:4: #other: no heading with that anchor in page.md",
    ]


def test_anchors_follow_github() -> None:
    assert anchor("Settings: `clever2sis.toml`") == "settings-clever2sistoml"
    assert (
        anchor("Test → production sign-off: `clever2sis approve`")
        == "test--production-sign-off-clever2sis-approve"
    )
    assert (
        anchor("In the nightly job: `[sync] reconcile_every_days`")
        == "in-the-nightly-job-sync-reconcile_every_days"
    )
    assert (
        anchor("What becomes what (defaults; see [Settings](x.md#s))")
        == "what-becomes-what-defaults-see-settings"
    )
    text = "# A\n\n## Exit codes\n\n```\n# Exit codes\n```\n\n### Exit codes\n"
    assert [heading.anchor for heading in documentation.headings(text)] == ["a", "exit-codes", "exit-codes-1"]


@pytest.mark.parametrize("path", pages(), ids=lambda path: path.name)
def test_the_documentation_speaks_to_users(path: Path) -> None:
    assert INTERNAL.findall(path.read_text(encoding="utf-8")) == []


def test_make_help_speaks_to_users() -> None:
    make = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "bench" in make.stdout
    assert INTERNAL.findall(make.stdout) == []
