"""The gate every upload passes before its zip is posted.

Production sign-off (checking that a person approved this build for this profile) is another issue; it
belongs here. Until then the gate lets every upload through. :func:`clever2sis.canvas.upload.upload_build`
calls :func:`check_before_post` after every local check and before the first byte goes to Canvas.
"""

from __future__ import annotations

from clever2sis.canvas.upload import BuildZip


def check_before_post(profile: str, build: BuildZip) -> None:
    """Raise a :class:`~clever2sis.errors.Clever2SisError` to stop an upload of ``build`` to ``profile``."""
