"""``clever2sis init``: write a commented clever2sis.toml with every setting at its default."""

from __future__ import annotations

from pathlib import Path

import click

from clever2sis.cli.common import run_command
from clever2sis.config import DEFAULT_CONFIG_NAME
from clever2sis.errors import ConfigError
from clever2sis.example_config import write_example_config


@click.command("init")
@click.argument("directory", default=".", metavar="[DIR]", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help=f"Replace an existing DIR/{DEFAULT_CONFIG_NAME}.")
def init_command(directory: Path, force: bool) -> None:
    """Write DIR/clever2sis.toml (default DIR: here), every setting commented out at its default.

    Uncomment only what you change; commands run in DIR then read it without --config.

    \b
    Examples:
      clever2sis init
      clever2sis init /etc/clever2sis --force
    """

    def action() -> None:
        path = write_example_config(directory, force=force)
        click.echo(f"wrote {path}; every setting is commented out at its default", err=True)

    run_command(action, io_error=ConfigError)
