"""``clever2sis sample``: write a synthetic district snapshot (see :mod:`clever2sis.clever.sample`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson

from clever2sis.cli.common import StderrProgress, quiet_option, run_command, use_arrow_memory, verbose_option
from clever2sis.errors import SnapshotError


@click.command("sample")
@click.option("--students", type=int, required=True, help="Number of students; the rest scales with it.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Snapshot directory to write.",
)
@click.option("--force", is_flag=True, help="Replace --out if it already exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot manifest as JSON on stdout.")
@quiet_option
@verbose_option
def sample_command(
    students: int, seed: int, out: Path, force: bool, as_json: bool, quiet: bool, verbose: bool
) -> None:
    """Generate a synthetic Clever district (a snapshot, as `pull` writes) with real-world quirks.

    A line of counts goes to stderr (none with --quiet); stdout holds only the manifest, with --json.

    \b
    Examples:
      clever2sis sample --students 600 --seed 7 --out samples/demo-district
      clever2sis sample --students 100000 --out /tmp/big --force --quiet --json > manifest.json
    """
    progress = StderrProgress(quiet=quiet)

    def action() -> dict[str, Any]:
        from clever2sis.clever.sample import generate_district

        use_arrow_memory()
        return generate_district(out, students=students, seed=seed, replace=force, progress=progress)

    manifest = run_command(action, verbose=verbose, io_error=SnapshotError)
    if as_json:
        click.echo(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    if not quiet:
        counts = ", ".join(f"{entry['records']:,} {name}" for name, entry in manifest["collections"].items())
        click.echo(f"wrote {out}: {counts}", err=True)
