"""``clever2sis build``: a snapshot becomes Canvas SIS Import CSVs and a zip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson

from clever2sis.build_dir import RECORD_NAME, BuildDir
from clever2sis.cli.common import (
    StderrProgress,
    config_option,
    quiet_option,
    read_config,
    run_command,
    verbose_option,
)
from clever2sis.config import build_settings
from clever2sis.errors import BuildError, UsageError

EXAMPLES_PER_KIND = 3


def summary_lines(record: dict[str, Any], out: Path) -> list[str]:
    """The terminal summary: rows per file, then findings by kind with a few examples."""
    lines = [f"built {BuildDir(out).zip_file} (sha256 {record['zip']['sha256'][:12]}…)"]
    width = max(len(name) for name in record["files"]) if record["files"] else 0
    lines += [f"  {name:<{width}}  {entry['rows']:>10,} rows" for name, entry in record["files"].items()]
    lines += [f"  {name:<{width}}  not written: {why}" for name, why in record["skipped_files"].items()]
    findings = record["findings"]
    if not findings["total"]:
        lines.append("no findings")
        return lines
    lines.append(f"findings: {findings['total']:,} ({findings['warnings']:,} warnings); all in {RECORD_NAME}")
    for kind, entry in findings["by_kind"].items():
        lines.append(f"  {kind} ({entry['severity']}): {entry['count']:,}")
        examples = [item for item in findings["items"] if item["kind"] == kind][:EXAMPLES_PER_KIND]
        lines += [f"    - {item['message']}" for item in examples]
    return lines


@click.command("build")
@click.argument("snapshot_dir", type=click.Path(path_type=Path))
@click.option(
    "--out", "out", required=True, type=click.Path(path_type=Path), help="The build directory to write."
)
@config_option
@click.option(
    "--force", is_flag=True, help="Replace BUILD_DIR if it exists (only once the new build is whole)."
)
@click.option(
    "--id-map",
    "id_map",
    type=click.Path(path_type=Path),
    help="A mapping from `clever2sis map-ids`: adds change_sis_id.csv (for the first import only).",
)
@click.option(
    "--against",
    "against",
    type=click.Path(path_type=Path),
    help="The last build uploaded: a term Clever re-created keeps its Canvas term_id from it.",
)
@click.option("--strict", is_flag=True, help="Exit non-zero (5) when the build has warning findings.")
@click.option("--json", "as_json", is_flag=True, help="Print build.json on stdout.")
@quiet_option
@verbose_option
def build_command(
    snapshot_dir: Path,
    out: Path,
    config_path: Path | None,
    force: bool,
    id_map: Path | None,
    against: Path | None,
    strict: bool,
    as_json: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Build Canvas SIS Import CSVs and sis_import.zip from SNAPSHOT_DIR into --out BUILD_DIR.

    Writes BUILD_DIR/csv/*.csv, BUILD_DIR/sis_import.zip and BUILD_DIR/build.json (what was built from
    what, and every validation finding). Nothing is written at BUILD_DIR unless the whole build succeeds.
    With --against OLDER_BUILD_DIR (the build Canvas last imported), a term Clever re-created keeps the
    Canvas term_id it had there.

    \b
    Examples:
      clever2sis build snapshots/2026-09-01 --out builds/2026-09-01
      clever2sis build snapshots/2026-09-02 --out builds/2026-09-02 --against builds/2026-09-01 --strict
    """
    progress = StderrProgress(quiet)

    def action() -> dict[str, Any]:
        from clever2sis.sis.build import build, previous_build

        settings = build_settings(read_config(config_path, verbose=verbose))
        try:
            previous = previous_build(against) if against is not None else None
        except UsageError as error:
            raise UsageError(f"--against: {error}") from None
        record: dict[str, Any] = {}
        try:
            record = build(
                snapshot_dir,
                out,
                settings,
                force=force,
                strict=strict,
                progress=progress,
                id_map=id_map,
                previous=previous,
            )
        finally:
            if record or (strict and BuildDir(out).record_file.exists()):
                _report(record or orjson.loads(BuildDir(out).record_file.read_bytes()), out, quiet, as_json)
        return record

    run_command(action, verbose=verbose, io_error=BuildError)


def _report(record: dict[str, Any], out: Path, quiet: bool, as_json: bool) -> None:
    if not quiet:
        for line in summary_lines(record, out):
            click.echo(line, err=True)
    if as_json:
        click.echo(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode())
