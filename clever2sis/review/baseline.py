"""Which older build a review compares with when ``--against`` is not given.

Builds live side by side (``builds/2026-09-01``, ``builds/2026-09-02``, ...), and each records its own
uploads (``imports/<profile>/latest.json``) and sign-offs (``approvals/<profile>.json``). The baseline is
the sibling of BUILD_DIR with the newest such event for the profile: the last build uploaded to it (an
import that ended failed or aborted changed nothing, so it is passed over) or, when that is newer, the
last build signed off for it, so a rebuild after an SIS fix is reviewed against the approved one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from clever2sis.build_dir import BuildDir, ImportDir
from clever2sis.canvas.signoff import read_approval
from clever2sis.canvas.sis_import import FAILED_STATES

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
