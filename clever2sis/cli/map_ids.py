"""``clever2sis map-ids``: match the SIS ids a Canvas already has to Clever records (for change_sis_id)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson

from clever2sis.cli.common import config_option, quiet_option, read_config, run_command, verbose_option
from clever2sis.config import build_settings
from clever2sis.errors import BuildError


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"wrote {result['mapping']} and {result['unmatched']}"]
    for kind, entry in result["by_type"].items():
        by = ", ".join(f"{step} {n:,}" for step, n in entry["matched_by"].items())
        lines.append(
            f"  {kind}s: {entry['canvas_rows']:,} in Canvas, {entry['mapped']:,} mapped"
            + (f" ({by})" if by else "")
            + f", {entry['unchanged']:,} of them already Clever ids, {entry['unmatched']:,} unmatched"
        )
        lines += [f"    {problem}: {n:,}" for problem, n in entry["unmatched_problems"].items()]
    return lines


@click.command("map-ids")
@click.argument("snapshot_dir", type=click.Path(path_type=Path))
@click.option("--canvas-users", type=click.Path(path_type=Path), help="Canvas provisioning report: users.")
@click.option(
    "--canvas-courses", type=click.Path(path_type=Path), help="Canvas provisioning report: courses."
)
@click.option(
    "--canvas-sections", type=click.Path(path_type=Path), help="Canvas provisioning report: sections."
)
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="The directory to write.")
@config_option
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON on stdout.")
@quiet_option
@verbose_option
def map_ids_command(
    snapshot_dir: Path,
    canvas_users: Path | None,
    canvas_courses: Path | None,
    canvas_sections: Path | None,
    out: Path,
    config_path: Path | None,
    force: bool,
    as_json: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Match a Canvas's existing SIS ids (provisioning reports) to the Clever records of SNAPSHOT_DIR.

    Writes OUT/id_map.csv (type, old_id, new_id, matched_by: give it to `build --id-map` for the first
    import) and OUT/unmatched.csv (every Canvas record not mapped, with the reason).

    \b
    Examples:
      clever2sis map-ids snapshots/2026-09-01 --canvas-users users.csv --out ids
      clever2sis build snapshots/2026-09-01 --out builds/first --id-map ids/id_map.csv
    """

    def action() -> dict[str, Any]:
        from clever2sis.sis.id_map import map_ids

        settings = build_settings(read_config(config_path, verbose=verbose))
        reports = {
            kind: path
            for kind, path in (
                ("user", canvas_users),
                ("course", canvas_courses),
                ("section", canvas_sections),
            )
            if path is not None
        }
        result = map_ids(snapshot_dir, out, settings, reports, force=force)
        if not quiet:
            for line in summary_lines(result):
                click.echo(line, err=True)
        if as_json:
            click.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return result

    run_command(action, verbose=verbose, io_error=BuildError)
