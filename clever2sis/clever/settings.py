"""Where a pull's settings come from: the token only from the environment, never from an argument or a file
of settings, so it stays out of shell history, process lists, logs and manifests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from clever2sis.errors import UsageError

TOKEN_ENV = "CLEVER_TOKEN"
TOKEN_FILE_ENV = "CLEVER_TOKEN_FILE"
API_BASE_ENV = "CLEVER_API_BASE"
API_VERSION_ENV = "CLEVER_API_VERSION"


def token_from_env(environ: Mapping[str, str]) -> str:
    """The district-app token from ``CLEVER_TOKEN``, or from the file ``CLEVER_TOKEN_FILE`` names."""
    token = environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    token_file = environ.get(TOKEN_FILE_ENV, "").strip()
    if token_file:
        path = Path(token_file)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else "not readable text"
            raise UsageError(f"cannot read {TOKEN_FILE_ENV} file {path}: {reason}") from None
        if not token:
            raise UsageError(f"{TOKEN_FILE_ENV} file {path} is empty; put the district-app token in it")
        return token
    raise UsageError(
        f"no Clever token: set {TOKEN_ENV} to the district-app token "
        f"(or {TOKEN_FILE_ENV} to a file holding it)"
    )
