"""Which older build a review compares with when ``--against`` is not given.

Builds live side by side (``builds/2026-09-01``, ``builds/2026-09-02``, ...), and each records its own
uploads (``imports/<profile>/latest.json``) and sign-offs (``approvals/<profile>.json``). The baseline is
the sibling of BUILD_DIR with the newest such event for the profile: the last build uploaded to it (an
import that ended failed or aborted changed nothing, so it is passed over) or, when that is newer, the
last build signed off for it, so a rebuild after an SIS fix is reviewed against the approved one.

A sync run's build is different (:func:`choose_comparison`): it is reviewed against the run it was
compared with, under the import options it was sent with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from clever2sis.build_dir import BuildDir, ImportDir
from clever2sis.canvas.signoff import read_approval
from clever2sis.canvas.sis_import import FAILED_STATES, ImportOptions
from clever2sis.sync.runs import RUN_RECORD_NAME

NOTHING_APPLIED_STATES = FAILED_STATES | {"aborted"}


@dataclass(frozen=True)
class Baseline:
    path: Path
    reason: str
    at: str


def _load(path: Path) -> dict[str, Any] | None:
    try:
        value = orjson.loads(path.read_bytes())
    except (FileNotFoundError, NotADirectoryError, orjson.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _events(build_dir: Path, profile: str) -> list[Baseline]:
    """The build's uploads to and sign-offs for ``profile`` of the zip it holds now (one replaced with
    ``build --force`` keeps those of the zip it replaced, which Canvas may hold but this build does not)."""
    events = []
    zip_entry = (_load(BuildDir(build_dir).record_file) or {}).get("zip")
    zip_sha256 = zip_entry.get("sha256") if isinstance(zip_entry, dict) else None
    latest = _load(BuildDir(build_dir).latest_import_file(profile))
    if latest is not None and isinstance(latest.get("posted_at"), str):
        results = ImportDir(build_dir / str(latest.get("results", "")))
        final = _load(results.final) or {}
        state = final.get("workflow_state")
        uploaded = (_load(results.created) or {}).get("zip_sha256", zip_sha256)
        if state not in NOTHING_APPLIED_STATES and uploaded == zip_sha256:
            ended = f", {state}" if state else ""
            events.append(
                Baseline(
                    build_dir,
                    f"last upload to {profile}: sis_import {latest.get('sis_import_id')} posted "
                    f"{latest['posted_at']}{ended}",
                    latest["posted_at"],
                )
            )
    approval = read_approval(build_dir, profile)
    if (
        approval is not None
        and isinstance(approval.get("approved_at"), str)
        and approval.get("zip_sha256", zip_sha256) == zip_sha256
    ):
        events.append(
            Baseline(
                build_dir,
                f"last sign-off for {profile}: approved by {approval.get('approved_by')} at "
                f"{approval['approved_at']}",
                approval["approved_at"],
            )
        )
    return events


def find_baseline(build_dir: Path, profile: str) -> Baseline | None:
    """The sibling build last uploaded to (or signed off for) ``profile``, or None when there is none."""
    here = build_dir.resolve()
    if not here.parent.is_dir():
        return None
    events = [
        event
        for sibling in sorted(here.parent.iterdir())
        if sibling.is_dir() and sibling != here and not sibling.name.startswith(".")
        for event in _events(sibling, profile)
    ]
    # Timestamps are all ISO 8601 UTC to the second with a Z, so they sort as strings.
    return max(events, key=lambda event: (event.at, str(event.path)), default=None)


# --- a sync run's build ----------------------------------------------------------------------------------
# A sync run's build (RUNS_DIR/<run_id>/build) records in build.json's "sync" section what the run really
# sent: the import options (diffing, removal statuses, thresholds, remaster) and the run it compared with.
# A review of it uses those, not [upload]'s, and that run's build as the older one.

SYNC_SECTION = "sync"


@dataclass(frozen=True)
class Comparison:
    """What a review compares a build with, and under which import settings.

    ``older`` is the older build (None: nothing to compare with) and ``reason`` why it was chosen (or why
    there is none); ``options`` are the import settings the removals are judged under, and
    ``settings_from`` says where they come from.
    """

    older: Path | None
    reason: str
    options: ImportOptions
    settings_from: str
    profile: str


def sync_section(build_dir: Path) -> dict[str, Any] | None:
    """build.json's "sync" section: present only in a sync run's build."""
    record = _load(BuildDir(build_dir).record_file)
    section = record.get(SYNC_SECTION) if record is not None else None
    return section if isinstance(section, dict) else None


def _sync_options(build_dir: Path, section: Mapping[str, Any]) -> ImportOptions | None:
    """The import options the run sent: build.json's record of them, else run.json's form fields."""
    recorded = section.get("import_options")
    if isinstance(recorded, dict):
        return ImportOptions(**{k: v for k, v in recorded.items() if k in ImportOptions.names()})
    run = _load(build_dir.parent / RUN_RECORD_NAME) or {}
    form = run.get("import_options")
    if not isinstance(form, list):
        return None
    kinds = dict(ImportOptions.described())
    values: dict[str, Any] = {}
    for pair in form:
        if not (isinstance(pair, list) and len(pair) == 2 and pair[0] in kinds):
            continue
        name, text = pair
        kind = kinds[name].kind
        values[name] = text == "true" if kind == "flag" else int(text) if kind == "number" else text
    return ImportOptions(**values)


def choose_comparison(
    build_dir: Path, *, against: Path | None, profile: str, upload_options: ImportOptions
) -> Comparison:
    """The older build and the import settings for a review of ``build_dir``.

    A sync run's build is judged under the options that run sent, against the run it was compared with
    (``--against`` still wins for the older build). Any other build is judged under ``[upload]``'s options
    (``upload_options``), against ``--against`` or :func:`find_baseline`.
    """
    section = sync_section(build_dir)
    options = _sync_options(build_dir, section) if section is not None else None
    if section is None or options is None:
        older, reason = against, "--against"
        if older is None:
            baseline = find_baseline(build_dir, profile)
            older, reason = (baseline.path, baseline.reason) if baseline else (None, "no older build")
        return Comparison(older, reason, upload_options, "[upload] of the config", profile)
    run_id = section.get("run_id")
    sync_profile = str(section.get("profile") or profile)
    settings_from = f"sync run {run_id}: the import options it sent"
    if against is not None:
        return Comparison(against, "--against", options, settings_from, sync_profile)
    baseline_id = section.get("baseline_run_id")
    if not isinstance(baseline_id, str) or not baseline_id:
        return Comparison(
            None, f"sync run {run_id} had no earlier applied run", options, settings_from, sync_profile
        )
    older = build_dir.parent.parent / baseline_id / build_dir.name
    reason = f"the run sync run {run_id} compared with: run {baseline_id}"
    if not older.is_dir():
        return Comparison(
            None, f"{reason}, whose build is gone ({older})", options, settings_from, sync_profile
        )
    return Comparison(older, reason, options, settings_from, sync_profile)
