"""``clever2sis pull``: the district the token belongs to, from the Clever API into a snapshot directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import orjson

from clever2sis.clever.settings import (
    API_BASE_ENV,
    API_VERSION_ENV,
    CLEVER_API_BASE,
    CLEVER_API_VERSIONS,
    CLEVER_MAX_PAGE_SIZE,
    DEFAULT_API_VERSION,
    DEFAULT_WORKERS,
    token_from_env,
)
from clever2sis.cli.common import (
    StderrProgress,
    keep_secret,
    quiet_option,
    run_command,
    use_arrow_memory,
    verbose_option,
)
from clever2sis.errors import SnapshotError


@click.command("pull")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Snapshot directory to create.",
)
@click.option(
    "--api-base",
    envvar=API_BASE_ENV,
    default=CLEVER_API_BASE,
    show_default=True,
    help=f"Clever API host (scheme and host only) [env: {API_BASE_ENV}].",
)
@click.option(
    "--api-version",
    envvar=API_VERSION_ENV,
    type=click.Choice(CLEVER_API_VERSIONS),
    default=DEFAULT_API_VERSION,
    show_default=True,
    help=f"Clever API version [env: {API_VERSION_ENV}].",
)
@click.option(
    "--page-size",
    type=click.IntRange(1, CLEVER_MAX_PAGE_SIZE),
    default=CLEVER_MAX_PAGE_SIZE,
    show_default=True,
    help="Records per request.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 6),
    default=DEFAULT_WORKERS,
    show_default=True,
    help="Collections pulled at once (they share the token's rate limit).",
)
@click.option(
    "--force", is_flag=True, help="Replace --out if it exists (only once the new snapshot is whole)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot's manifest as JSON on stdout.")
@quiet_option
@verbose_option
def pull_command(
    out: Path,
    api_base: str,
    api_version: str,
    page_size: int,
    workers: int,
    force: bool,
    as_json: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Pull the district that CLEVER_TOKEN belongs to into a new snapshot at OUT.

    The token is read only from the environment: CLEVER_TOKEN, or a file named by CLEVER_TOKEN_FILE.

    \b
    Examples:
      CLEVER_TOKEN_FILE=/etc/clever2sis/clever.token clever2sis pull --out snapshots/2026-09-01
      clever2sis pull --out snapshots/today --api-version v3.1 --force --json > manifest.json
    """
    progress = StderrProgress(quiet=quiet)

    def action() -> dict[str, object]:
        from clever2sis.clever.client import CleverClient
        from clever2sis.clever.pull import pull_district

        use_arrow_memory()
        token = keep_secret(token_from_env(os.environ))
        with CleverClient(token, api_base, api_version, page_size=page_size, progress=progress) as client:
            return pull_district(client, out, progress=progress, replace=force, workers=workers)

    manifest = run_command(action, verbose=verbose, io_error=SnapshotError)
    if as_json:
        sys.stdout.buffer.write(
            orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
