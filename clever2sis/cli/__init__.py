"""The ``clever2sis`` command line: a thin skin over the library, one module per command.

Each command parses its options, calls one library function, and leaves error wording and exit codes to
:func:`clever2sis.cli.common.run_command`. The group imports a command's module only when that command runs
(click's "lazy loading subcommands" pattern), so ``--version`` loads none of them and ``status`` loads only
the Canvas commands' module; the root ``--help`` loads them all for their one-line help. The command
modules import only click and light library modules at the top; what needs pandas, Arrow or httpx is
imported inside the command that uses it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click

from clever2sis import __version__

# Each command's name -> "module:attribute" of its click.Command, in the order of the pipeline.
COMMAND_TABLE: dict[str, str] = {
    "init": "clever2sis.cli.init:init_command",
    "sample": "clever2sis.cli.sample:sample_command",
    "pull": "clever2sis.cli.pull:pull_command",
    "build": "clever2sis.cli.build:build_command",
    "map-ids": "clever2sis.cli.map_ids:map_ids_command",
    "review": "clever2sis.cli.review:review_command",
    "approve": "clever2sis.cli.review:approve_command",
    "upload": "clever2sis.cli.canvas:upload_command",
    "status": "clever2sis.cli.canvas:status_command",
    "list": "clever2sis.cli.canvas:list_command",
    "abort": "clever2sis.cli.canvas:abort_command",
    "restore": "clever2sis.cli.canvas:restore_command",
    "sync": "clever2sis.cli.sync:sync_command",
    "history": "clever2sis.cli.sync:history_command",
    "reconcile": "clever2sis.cli.reconcile:reconcile_command",
    "doctor": "clever2sis.cli.doctor:doctor_command",
}


class LazyGroup(click.Group):
    """A group whose commands are named in a table and imported when they are first looked up."""

    def __init__(self, name: str | None = None, *, table: Mapping[str, str], **attrs: Any) -> None:
        super().__init__(name, **attrs)
        self.table = dict(table)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.table)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.table:
            return None
        module, attribute = self.table[cmd_name].split(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command) or command.name != cmd_name:
            raise TypeError(f"{self.table[cmd_name]} is not the click command {cmd_name!r}")
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """As click's, but "Did you mean" offers every command, not only the ones loaded so far."""
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as error:
            raise click.exceptions.NoSuchCommand(
                error.command_name, possibilities=self.table, ctx=ctx
            ) from None


@click.group(cls=LazyGroup, table=COMMAND_TABLE, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="clever2sis")
def main() -> None:
    """Roster Canvas from Clever: pull a district, build SIS Import CSVs, upload them, follow the import.

    \b
    Examples:
      clever2sis init                      # a commented clever2sis.toml here
      clever2sis doctor --profile test     # check the tokens and the Canvas account
      clever2sis pull --out snapshots/today && clever2sis build snapshots/today --out builds/today
      clever2sis sync --profile production --quiet
    """


def commands() -> list[click.Command]:
    """Every command, loaded, in the table's order (for the tests that walk them all)."""
    ctx = click.Context(main)
    loaded = [main.get_command(ctx, name) for name in COMMAND_TABLE]
    return [command for command in loaded if command is not None]
