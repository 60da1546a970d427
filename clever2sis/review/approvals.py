"""The sign-off part of a review: what approving this zip means, the command to do it, and who has.

A review ends with what a sign-off would record: the zip's sha256 and size, the profile it would let
``upload`` send that zip to, the last import of this build into the test instance, and the exact
``clever2sis approve`` command. It also lists every sign-off the build directory already holds
(``approvals/<profile>.json``, written by :func:`clever2sis.canvas.signoff.approve`), saying for each
whether it is of this zip's bytes: a sign-off of other bytes lets nothing through.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from clever2sis.build_dir import APPROVALS_DIR_NAME, BuildRecord
from clever2sis.canvas.signoff import TEST_PROFILE, last_import_result, read_approval

DEFAULT_PROFILE = "production"
SIGNER_PLACEHOLDER = "YOUR NAME"


def approve_command(build_dir: Path, profile: str) -> str:
    """The shell command that signs ``build_dir`` off for ``profile`` (the signer's name to fill in)."""
    return (
        f"clever2sis approve {shlex.quote(str(build_dir))} --profile {shlex.quote(profile)} "
        f"--by {shlex.quote(SIGNER_PLACEHOLDER)}"
    )


def approvals_held(build_dir: Path, zip_sha256: str) -> list[dict[str, Any]]:
    """Every sign-off recorded in ``build_dir``, by profile, each saying whether it is of this zip."""
    folder = build_dir / APPROVALS_DIR_NAME
    if not folder.is_dir():
        return []
    held = []
    for path in sorted(folder.glob("*.json")):
        record = read_approval(build_dir, path.stem)
        if record is None:
            continue
        held.append(
            {
                "profile": path.stem,
                "approved_by": record.get("approved_by"),
                "approved_at": record.get("approved_at"),
                "zip_sha256": record.get("zip_sha256"),
                "this_zip": record.get("zip_sha256") == zip_sha256,
            }
        )
    return held


def signoff_facts(
    build_dir: Path, record: BuildRecord, profile: str, *, test_profile: str = TEST_PROFILE
) -> dict[str, Any]:
    """What signing ``build_dir`` off for ``profile`` means, and the sign-offs it already holds."""
    zip_sha256 = record.zip.sha256
    held = approvals_held(build_dir, zip_sha256)
    tested = (
        last_import_result(build_dir, test_profile, zip_sha256=zip_sha256)
        if profile != test_profile
        else None
    )
    return {
        "profile": profile,
        "zip_sha256": zip_sha256,
        "zip_bytes": record.zip.bytes,
        "command": approve_command(build_dir, profile),
        "approved": next((a for a in held if a["profile"] == profile and a["this_zip"]), None),
        "approvals": held,
        "test_profile": test_profile,
        "test_import": tested,
    }
