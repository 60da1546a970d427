"""``review`` and ``approve``: look at a build before it goes to Canvas, then sign it off for a profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson

from clever2sis.build_dir import BuildDir, BuildLock
from clever2sis.canvas.signoff import TEST_PROFILE, approve
from clever2sis.canvas.sis_import import SUCCESS_STATES
from clever2sis.cli.common import (
    StderrProgress,
    config_option,
    quiet_option,
    read_config,
    run_command,
    verbose_option,
)
from clever2sis.config import UploadSettings, parse_upload
from clever2sis.errors import ApprovalError, ReviewError
from clever2sis.review.approvals import DEFAULT_PROFILE as DEFAULT_REVIEW_PROFILE
from clever2sis.review.identities import summary_line as identity_summary
from clever2sis.sis import files

EXAMPLES_PER_KIND = 2
SHORT_SHA = 12


def summary_lines(facts: dict[str, Any]) -> list[str]:
    """The short terminal summary of a review."""
    build = facts["build"]
    lines = [
        f"build {build['path']}: {build['district']['name'] or build['district']['id']}, "
        f"snapshot {build['snapshot']['finished_at']}, zip sha256 {str(build['zip']['sha256'])[:SHORT_SHA]}…"
    ]
    rows = facts["counts"]["files"]
    lines.append("  rows: " + ", ".join(f"{name.removesuffix('.csv')} {n:,}" for name, n in rows.items()))
    found = facts["findings"]
    kinds = ", ".join(f"{kind} {entry['count']:,}" for kind, entry in found["by_kind"].items())
    lines.append(
        f"  findings: {found['total']:,} ({found['warnings']:,} warnings){': ' + kinds if kinds else ''}"
    )
    identities = identity_summary(facts)
    if identities is not None:
        lines.append(identities)
    links = facts.get("observer_links")
    observer_lines = _observer_lines(links) if links else []
    comparison = facts.get("comparison") or {}
    if comparison:
        lines.append(f"  import settings: {comparison['import_settings_from']}")
    against = facts["against"]
    if against is None:
        why = comparison.get("reason", "no older build")
        hint = "" if why.startswith("sync run") else " (--against, or upload/approve a build beside this one)"
        lines.append(f"  no older build to compare with: {why}{hint}")
        return lines + observer_lines
    lines.append(f"against {against['path']} ({against['chosen_by']})")
    for name in (name for name in files.FILE_ORDER if name in facts["diff"]):
        entry = facts["diff"][name]
        if not (entry["added"] or entry["removed"] or entry["changed"]):
            continue
        fields = ", ".join(f"{field} {n:,}" for field, n in entry["fields_changed"].items())
        lines.append(
            f"  {name}: +{entry['added']:,} -{entry['removed']:,} ~{entry['changed']:,}"
            + (f" ({fields})" if fields else "")
        )
    removals = facts["removals"]
    acted = [(name, e) for name, e in removals["files"].items() if e["removed"]]
    if acted:
        lines.append(f"removals in Canvas ({removals['mode']}):")
        lines += [f"  {name}: {e['removed']:,} removed: {e['effect']}" for name, e in acted]
    return lines + observer_lines


def _observer_lines(links: dict[str, Any]) -> list[str]:
    from clever2sis.review.observers import observer_summary_lines  # reads frames: pandas

    return observer_summary_lines(links, examples=EXAMPLES_PER_KIND)


def verdict_lines(facts: dict[str, Any]) -> list[str]:
    """The verdict, as the report opens with it: what needs a decision before sign-off."""
    verdict = facts["verdict"]
    lines = [verdict["headline"]]
    lines += [f"  - {line['text']}" for line in verdict["needs_decision"]]
    approved = facts["signoff"]["approved"]
    if approved:
        lines.append(
            f"signed off for {facts['signoff']['profile']} by {approved['approved_by']} at "
            f"{approved['approved_at']}"
        )
    return lines


@click.command("review")
@click.argument("build_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--against",
    type=click.Path(file_okay=False, path_type=Path),
    help="The older build to compare with (default: the last build uploaded to or approved for --profile).",
)
@click.option(
    "--profile",
    metavar="NAME",
    help=f"Whose last upload to compare with, and whose import settings apply (default upload.profile, "
    f"else {DEFAULT_REVIEW_PROFILE}).",
)
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the review facts as JSON on stdout.")
@click.option("--excel", is_flag=True, help="Also write BUILD_DIR/review/: CSV copies safe for spreadsheets.")
@quiet_option
@verbose_option
def review_command(
    build_dir: Path,
    against: Path | None,
    profile: str | None,
    config_path: Path | None,
    as_json: bool,
    excel: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Write BUILD_DIR/report.html: counts, findings, and what changed since an older build.

    The report is one HTML file that opens offline. Without --against, the build beside BUILD_DIR last
    uploaded to (or approved for) the profile is the one compared with.

    \b
    Examples:
      clever2sis review builds/2026-09-02 --profile production
      clever2sis review builds/2026-09-02 --against builds/2026-09-01 --excel
      clever2sis review /var/lib/clever2sis/runs/20270105T060000Z/build --json > review.json
    """
    progress = StderrProgress(quiet)

    def action() -> None:
        upload = parse_upload(read_config(config_path, verbose=verbose))
        upload.options.validate()
        with BuildLock(build_dir, shared=True, error=ReviewError):
            review(upload)

    def review(upload: UploadSettings) -> None:
        from clever2sis.review.run import review_build

        done = review_build(
            build_dir,
            profile=profile or upload.profile or DEFAULT_REVIEW_PROFILE,
            upload_options=upload.options,
            against=against,
            excel=excel,
        )
        progress(f"report written: {done.report}")
        if done.spreadsheets is not None:
            progress(f"spreadsheet copies written: {done.spreadsheets}")
        if not quiet:
            for line in summary_lines(done.facts) + verdict_lines(done.facts):
                click.echo(line, err=True)
        if as_json:
            click.echo(orjson.dumps(done.facts, option=orjson.OPT_INDENT_2).decode())

    run_command(action, verbose=verbose, io_error=ReviewError)


@click.command("approve")
@click.argument("build_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--profile", required=True, metavar="NAME", help="The profile this build is approved for.")
@click.option("--by", "by", required=True, metavar="NAME", help="Who signs off (recorded).")
@click.option(
    "--test-profile",
    default=TEST_PROFILE,
    show_default=True,
    metavar="NAME",
    help="The profile whose import of this build is recorded as its test.",
)
@quiet_option
@verbose_option
def approve_command(
    build_dir: Path, profile: str, by: str, test_profile: str, quiet: bool, verbose: bool
) -> None:
    """Sign off BUILD_DIR's exact zip for --profile: BUILD_DIR/approvals/<profile>.json.

    `upload --profile production` (or any profile with require_approval = true) then takes this zip, and
    only while its bytes are unchanged.

    \b
    Examples:
      clever2sis approve builds/2026-09-02 --profile production --by "Dana Ortiz"
    """

    def action() -> None:
        with BuildLock(build_dir, shared=True, error=ApprovalError):
            record = approve(build_dir, profile, by, test_profile=test_profile)
        click.echo(
            f"approved {BuildDir(build_dir).zip_file} (sha256 {record['zip_sha256'][:SHORT_SHA]}…) for "
            f"{profile} by {record['approved_by']} at {record['approved_at']}"
        )
        tested = record["test_import"]
        if tested is None and profile != test_profile:
            click.echo(f"warning: this build was never imported with profile {test_profile!r}", err=True)
        elif tested is not None:
            state = tested["workflow_state"] or "not followed to its end"
            click.echo(f"test import: sis_import {tested['sis_import_id']} on {tested['canvas']}: {state}")
            if tested["workflow_state"] not in SUCCESS_STATES:
                click.echo(f"warning: the test import did not end imported ({state})", err=True)
        report = BuildDir(build_dir).report_file
        if report.is_file() and not quiet:
            click.echo(
                f"{report} was written before this sign-off: run the same "
                f"`clever2sis review {build_dir} ...` again to show the sign-off in it",
                err=True,
            )

    run_command(action, verbose=verbose, io_error=ApprovalError)


REVIEW_COMMANDS: list[click.Command] = [review_command, approve_command]
