"""The exceptions the library raises; the CLI maps each to a one-line message and an exit code."""

from __future__ import annotations


class Clever2SisError(Exception):
    """Base of every error a user can act on. ``str(error)`` is the message shown to them."""

    exit_code = 1


class UsageError(Clever2SisError):
    """Bad arguments or settings: fix the command line or the config file."""

    exit_code = 2


class ConfigError(UsageError):
    """The config file cannot be read, or a key in it is unknown or has a bad value."""


class SnapshotError(Clever2SisError):
    """A snapshot directory is missing, truncated, or not a clever2sis snapshot."""

    exit_code = 3


class BuildError(Clever2SisError):
    """The build could not be completed (for example an unknown template variable)."""

    exit_code = 4


class StrictFindingsError(Clever2SisError):
    """``--strict`` was given and the build has validation findings."""

    exit_code = 5


class CleverError(Clever2SisError):
    """The Clever API could not be read: it kept failing, or answered something the client cannot use."""

    exit_code = 10


class CleverApiError(CleverError):
    """Clever answered with an error, an unexpected page, or kept failing after the bounded retries."""

    exit_code = 10


class CleverAuthError(CleverError):
    """Clever refused the token (401/403): it is wrong, revoked, or lacks the scopes a pull needs."""

    exit_code = 11
