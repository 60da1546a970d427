"""Test → production sign-off: a person approves one exact zip for a profile; the upload gate checks it.

``clever2sis approve BUILD_DIR --profile production --by NAME`` writes::

    BUILD_DIR/approvals/<profile>.json   zip sha256 and size, who, when (UTC), what was built from what, and
                                         the result of this build's test-instance import when there is one

:func:`clever2sis.canvas.upload.post_build` calls :func:`check_before_post` after every local check and
before the first byte goes to Canvas. For a profile that needs a sign-off (``require_approval = true`` in
its ``[profiles.<name>]`` table; true by default for a profile named ``production``: ``needs_approval``,
which lives with the profile's settings in :mod:`clever2sis.config`) it refuses a zip
without an approval, or whose bytes are not the ones approved. ``force`` lets the upload through with a
loud warning; what let it through (the approval, or the override) goes into the import's created.json.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from clever2sis.atomic import atomic_write_bytes
from clever2sis.build_dir import BuildDir, BuildZip, ImportDir
from clever2sis.config import needs_approval
from clever2sis.errors import ApprovalError, ApprovalMismatchError, ApprovalRequiredError
from clever2sis.progress import Progress, silent

TEST_PROFILE = "test"
APPROVAL_FORMAT_VERSION = 1
SHORT_SHA = 12

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _load(path: Path) -> dict[str, Any] | None:
    try:
        value = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def read_approval(build_dir: Path, profile: str) -> dict[str, Any] | None:
    """The sign-off recorded for ``profile`` in ``build_dir``, or None."""
    return _load(BuildDir(build_dir).approval_file(profile))


def last_import_result(
    build_dir: Path, profile: str = TEST_PROFILE, *, zip_sha256: str | None = None
) -> dict[str, Any] | None:
    """What the last import of this build into the ``profile`` instance did, from its saved results.

    With ``zip_sha256``, an import whose created.json names another zip does not count: a build replaced
    with ``build --force`` keeps the imports of the zip it replaced, which say nothing about the new one.
    """
    latest = _load(BuildDir(build_dir).latest_import_file(profile))
    if latest is None:
        return None
    results = ImportDir(build_dir / str(latest.get("results", "")))
    created = _load(results.created) or {}
    if zip_sha256 is not None and created.get("zip_sha256", zip_sha256) != zip_sha256:
        return None
    final = _load(results.final)
    return {
        "profile": profile,
        "sis_import_id": latest.get("sis_import_id"),
        "canvas": latest.get("canvas"),
        "posted_at": latest.get("posted_at"),
        "zip_sha256": created.get("zip_sha256"),
        "workflow_state": final.get("workflow_state") if final else None,
        "followed_to_end": final is not None,
        "counts": (final.get("data") or {}).get("counts") if final else None,
        "ended_at": final.get("ended_at") if final else None,
    }


def approve(
    build_dir: Path,
    profile: str,
    by: str,
    *,
    test_profile: str = TEST_PROFILE,
    clock: Clock = utc_now,
) -> dict[str, Any]:
    """Record that ``by`` signed off this build's zip for ``profile``; returns the record written."""
    who = by.strip()
    if not who:
        raise ApprovalError("--by must name the person signing off")
    build = BuildDir(build_dir).verified_zip(error=ApprovalError)
    built = build.record
    snapshot = built.snapshot or {}
    record = {
        "approval_format_version": APPROVAL_FORMAT_VERSION,
        "profile": profile,
        "zip_sha256": build.sha256,
        "zip_bytes": build.size_bytes,
        "approved_by": who,
        "approved_at": _stamp(clock()),
        "build": {
            "built_at": built.built_at,
            "district_id": snapshot.get("district_id"),
            "district_name": snapshot.get("district_name"),
            "snapshot_finished_at": snapshot.get("finished_at"),
            "snapshot_manifest_sha256": snapshot.get("manifest_sha256"),
            "config_sha256": (built.config or {}).get("sha256"),
            "tool": built.tool,
        },
        "test_import": (
            last_import_result(build_dir, test_profile, zip_sha256=build.sha256)
            if profile != test_profile
            else None
        ),
    }
    path = BuildDir(build_dir).approval_file(profile)
    try:
        atomic_write_bytes(path, orjson.dumps(record, option=orjson.OPT_INDENT_2))
    except OSError as error:
        raise ApprovalError(f"cannot record the sign-off in {path}: {error.strerror or error}") from None
    return record


def check_before_post(
    profile: str,
    build: BuildZip,
    *,
    require_approval: bool | None = None,
    force: bool = False,
    warn: Progress = silent,
    clock: Clock = utc_now,
) -> dict[str, Any] | None:
    """Stop an upload of ``build`` to ``profile`` that lacks a sign-off of these exact bytes.

    Returns what let the upload through, for created.json: ``{"approval": ...}``, or ``{"override": ...}``
    when ``force`` overrode a missing or stale sign-off; None when the profile needs no sign-off.
    """
    if not needs_approval(profile, require_approval):
        return None
    approval = read_approval(build.build_dir, profile)
    problem: ApprovalRequiredError
    if approval is None:
        problem = ApprovalRequiredError(
            f"{build.build_dir} has no sign-off for profile {profile!r}; review it "
            f"(`clever2sis review {build.build_dir}`) and record one with "
            f"`clever2sis approve {build.build_dir} --profile {profile} --by NAME`"
        )
    elif approval.get("zip_sha256") != build.sha256:
        problem = ApprovalMismatchError(
            f"{build.path} changed since {approval.get('approved_by')} signed it off for {profile!r} at "
            f"{approval.get('approved_at')} (approved sha256 {str(approval.get('zip_sha256'))[:SHORT_SHA]}…, "
            f"now {build.sha256[:SHORT_SHA]}…); review the new build and approve it"
        )
    else:
        return {"approval": approval}
    if not force:
        raise problem
    warn(f"WARNING: --force: uploading to {profile!r} WITHOUT a valid sign-off: {problem}")
    warn("WARNING: this override is recorded in the import's created.json")
    return {
        "override": {
            "forced": True,
            "at": _stamp(clock()),
            "reason": str(problem),
            "approval_found": approval,
        }
    }
