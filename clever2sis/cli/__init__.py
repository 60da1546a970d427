"""The ``clever2sis`` command line: a thin skin over the library, one module per command.

Each command parses its options, calls one library function, and leaves error wording and exit codes to
:func:`clever2sis.cli.common.run_command`. The command modules import only click and light library modules
at the top; what needs pandas, Arrow or httpx is imported inside the command that uses it, so that
``--help``, ``--version``, ``history`` and the like start without them.
"""

from __future__ import annotations

import click

from clever2sis import __version__
from clever2sis.cli.build import build_command
from clever2sis.cli.canvas import CANVAS_COMMANDS
from clever2sis.cli.doctor import doctor_command
from clever2sis.cli.init import init_command
from clever2sis.cli.map_ids import map_ids_command
from clever2sis.cli.pull import pull_command
from clever2sis.cli.reconcile import reconcile_command
from clever2sis.cli.review import REVIEW_COMMANDS
from clever2sis.cli.sample import sample_command
from clever2sis.cli.sync import SYNC_COMMANDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


COMMANDS: list[click.Command] = [
    init_command,
    sample_command,
    pull_command,
    build_command,
    map_ids_command,
    *REVIEW_COMMANDS,
    *CANVAS_COMMANDS,
    *SYNC_COMMANDS,
    reconcile_command,
    doctor_command,
]

for _command in COMMANDS:
    main.add_command(_command)
