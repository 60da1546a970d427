"""Where a pull's settings come from: the token only from the environment, never from an argument or a file
of settings, so it stays out of shell history, process lists, logs and manifests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from clever2sis.errors import UsageError
from clever2sis.secrets import check_token

CLEVER_API_BASE = "https://api.clever.com"
DEFAULT_API_VERSION = "v3.0"
CLEVER_API_VERSIONS = ("v3.0", "v3.1")
CLEVER_MAX_PAGE_SIZE = 10_000
DEFAULT_WORKERS = 3  # collections pulled at once; they share the token's rate limit
TOKEN_ENV = "CLEVER_TOKEN"
TOKEN_FILE_ENV = "CLEVER_TOKEN_FILE"
API_BASE_ENV = "CLEVER_API_BASE"
API_VERSION_ENV = "CLEVER_API_VERSION"
# A token file holds one line of some 40 characters; anything this large is some other file.
MAX_TOKEN_FILE_BYTES = 4096


def token_from_env(environ: Mapping[str, str]) -> str:
    """The district-app token from ``CLEVER_TOKEN``, or from the file ``CLEVER_TOKEN_FILE`` names.

    Either must hold the token alone on one line (a final newline is fine); see
    :func:`clever2sis.secrets.check_token`. A refused token is a :class:`UsageError` that quotes none of it.
    """
    token = environ.get(TOKEN_ENV, "")
    if token.strip():
        return check_token(token, TOKEN_ENV, fix=f"set {TOKEN_ENV} to the district-app token alone")
    token_file = environ.get(TOKEN_FILE_ENV, "").strip()
    if token_file:
        path = Path(token_file)
        token = _read_token_file(path)
        if not token.strip(" \t\r\n"):
            raise UsageError(f"{TOKEN_FILE_ENV} file {path} is empty; put the district-app token in it")
        return check_token(
            token,
            f"{TOKEN_FILE_ENV} file {path}",
            fix="put the district-app token alone in it",
        )
    raise UsageError(
        f"no Clever token: set {TOKEN_ENV} to the district-app token "
        f"(or {TOKEN_FILE_ENV} to a file holding it)"
    )


def _read_token_file(path: Path) -> str:
    """The file's bytes as text, one character per byte (so that a bad byte is reported by its position);
    a file larger than :data:`MAX_TOKEN_FILE_BYTES` is refused without reading the rest."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as error:
        raise UsageError(
            f"cannot read {TOKEN_FILE_ENV} file {path}: {error.strerror or 'unreadable'}"
        ) from None
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise UsageError(
            f"{TOKEN_FILE_ENV} file {path} is larger than {MAX_TOKEN_FILE_BYTES} bytes: "
            "put the district-app token alone in it"
        )
    return data.decode("latin-1")
