"""Pre-flight: check both tokens and the Canvas account in a few requests, before minutes of pulling.

``clever2sis sync`` runs these checks before its pull, and ``clever2sis doctor`` runs them alone. Each
check is one :class:`Check`: what was found when it passed, or what is wrong and how to fix it when it
failed, with the exit code the command would have ended with.

* **Clever** (https://dev.clever.com/docs/api-overview): ``GET /v3.0/districts`` answers a district-app
  token with the one district that authorized the app (Clever's ``/me`` identifies a signed-in user,
  not a district's token; https://dev.clever.com/docs/build-guides), and ``GET /v3.0/sections?limit=1``
  shows that the token may read rosters (sections need Secure Sync).
* **Canvas** (https://canvas.instructure.com/doc/api/accounts.html, .../sis_imports.html):
  ``GET /api/v1/accounts/:id`` shows that the token works and that the account is a root account
  (``root_account_id`` is null for a root account: ``lib/api/v1/account.rb``), and
  ``GET /api/v1/accounts/:id/sis_imports?per_page=1`` that SIS imports are enabled there and that the
  token's user may import (``app/controllers/sis_imports_api_controller.rb`` answers 400 off a root
  account, 403 when SIS imports are disabled, and 401 to a user without the import permission).

Library code: nothing here prints; the CLI and the sync's run log show :meth:`Check.line`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from clever2sis.errors import (
    CanvasAuthError,
    CanvasError,
    CanvasNotFoundError,
    CanvasPermissionError,
    Clever2SisError,
    CleverAuthError,
    CleverError,
    NotRootAccountError,
    SisImportsDisabledError,
)

if TYPE_CHECKING:  # the clients (and httpx) come with the caller; ``doctor --help`` never loads them
    from clever2sis.canvas.client import CanvasClient
    from clever2sis.clever.client import CleverClient

OK = "ok"
FAILED = "FAIL"
SKIPPED = "skip"
# Clever's own sync with the district's SIS (District.state): a state worth a word in the check's line.
CLEVER_SYNC_STATES_TO_MENTION = frozenset({"error", "paused", "pending"})


@dataclass(frozen=True)
class Check:
    """One pre-flight check: ``status`` ok, FAIL or skip; ``detail`` what was found, or what to fix."""

    name: str
    status: str
    detail: str
    exit_code: int = 0

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    def line(self) -> str:
        return f"{self.status:<4}  {self.name}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status, "detail": self.detail, "exit_code": self.exit_code}


def passed(name: str, detail: str) -> Check:
    return Check(name, OK, detail)


def failed(name: str, error: Clever2SisError | str, exit_code: int | None = None) -> Check:
    """A failed check; its exit code is the error's unless ``exit_code`` says otherwise."""
    code = exit_code if exit_code is not None else getattr(error, "exit_code", 1)
    return Check(name, FAILED, str(error), code)


def skipped(name: str, reason: str) -> Check:
    return Check(name, SKIPPED, reason)


def first_failure(checks: Iterable[Check]) -> Check | None:
    return next((check for check in checks if check.failed), None)


def exit_code(checks: Sequence[Check]) -> int:
    """0 when every check passed (or was skipped because of another check), else the first failure's code."""
    failure = first_failure(checks)
    return 0 if failure is None else failure.exit_code


# --- Clever ----------------------------------------------------------------------------------------------


def check_clever(client: CleverClient) -> list[Check]:
    """The token's district, and whether the token may read rosters."""
    version = client.api_version
    try:
        body = client.get_json(f"/{version}/districts")
    except CleverError as error:
        return [
            failed("clever district", error),
            skipped("clever rosters", "needs the district check to pass first"),
        ]
    districts: list[dict[str, Any]] = [
        item["data"] for item in _items(body) if isinstance(item.get("data"), dict)
    ]
    if len(districts) != 1:
        found = (
            "no district: the district has not authorized the app, or has revoked it"
            if not districts
            else f"{len(districts)} districts: use the district-app token of the one district to roster"
        )
        return [
            failed(
                "clever district",
                f"{client.origin}/{version}/districts shows {found}",
                CleverAuthError.exit_code,
            ),
            skipped("clever rosters", "needs the district check to pass first"),
        ]
    district = districts[0]
    detail = f"{district.get('name') or '(no name)'} ({district.get('id')}) at {client.origin} {version}"
    state = district.get("state")
    if state in CLEVER_SYNC_STATES_TO_MENTION:
        detail += f"; Clever's own sync with the district's SIS is {state!r}, so the data may be stale"
    checks = [passed("clever district", detail)]
    try:
        client.get_json(f"/{version}/sections?limit=1")
    except CleverAuthError as error:
        checks.append(failed("clever rosters", f"the token cannot read sections ({error})", error.exit_code))
    except CleverError as error:
        checks.append(failed("clever rosters", error))
    else:
        checks.append(passed("clever rosters", "the token may read sections"))
    return checks


def _items(body: Any) -> list[dict[str, Any]]:
    items = body.get("data") if isinstance(body, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


# --- Canvas ----------------------------------------------------------------------------------------------


def check_canvas(client: CanvasClient, account_id: str) -> list[Check]:
    """The account (it exists, the token works, it is a root account), then SIS imports on it."""
    from clever2sis.canvas.client import safe_url

    host = safe_url(client.base_url).rstrip("/")
    path = f"/api/v1/accounts/{quote(account_id, safe=':')}"
    try:
        account = client.get_json(path)
    except CanvasAuthError:
        return [
            failed(
                "canvas account",
                f"{host} refused the token in {client.token_source} for account {account_id} (HTTP 401): "
                "the token is wrong, expired or revoked, or its user is not an admin of this account; make "
                "a new token as an account admin",
                CanvasAuthError.exit_code,
            ),
            skipped("canvas sis imports", "needs the account check to pass first"),
        ]
    except CanvasNotFoundError:
        return [
            failed(
                "canvas account",
                f"{host} has no account {account_id} (HTTP 404): set account_id to the root account's id "
                '(Admin → the account: the number in its URL), or "self"',
                CanvasError.exit_code,
            ),
            skipped("canvas sis imports", "needs the account check to pass first"),
        ]
    except CanvasError as error:
        return [failed("canvas account", error), skipped("canvas sis imports", "needs the account check")]
    if not isinstance(account, dict):
        return [
            failed("canvas account", f"{host}{path} did not answer with an account", CanvasError.exit_code)
        ]
    name = account.get("name") or "(no name)"
    root = account.get("root_account_id")
    if root is not None:
        return [
            failed(
                "canvas account",
                f"account {account_id} ({name}) is a sub-account of account {root}; SIS imports run on the "
                f"root account: set account_id = {root}",
                NotRootAccountError.exit_code,
            ),
            skipped("canvas sis imports", "needs a root account"),
        ]
    checks = [
        passed(
            "canvas account", f"account {account.get('id', account_id)} ({name}) on {host}, a root account"
        )
    ]
    checks.append(_check_sis_imports(client, f"{path}/sis_imports", account_id))
    return checks


def _check_sis_imports(client: CanvasClient, path: str, account_id: str) -> Check:
    name = "canvas sis imports"
    try:
        body = client.get_json(path, {"per_page": "1"})
    except SisImportsDisabledError as error:
        return failed(name, error)
    except NotRootAccountError as error:
        return failed(name, error)
    except (CanvasAuthError, CanvasPermissionError) as error:
        # The account check passed with the same token, so a 401 here is the user's permission, not the token.
        return failed(
            name,
            f"the token's user may not import SIS data on account {account_id} ({_reason(error)}); give "
            "its account role the permission to import SIS data (or use an admin's token)",
            CanvasPermissionError.exit_code,
        )
    except CanvasError as error:
        return failed(name, error)
    imports = body.get("sis_imports") if isinstance(body, dict) else None
    latest = imports[0] if isinstance(imports, list) and imports and isinstance(imports[0], dict) else None
    if latest is None:
        last = "no import yet"
    else:
        when = f" {latest['created_at']}" if latest.get("created_at") else ""
        last = f"latest: sis_import {latest.get('id')} {latest.get('workflow_state')}{when}"
    return passed(name, f"enabled, and the token's user may import ({last})")


def _reason(error: CanvasError) -> str:
    return "HTTP 401" if isinstance(error, CanvasAuthError) else "HTTP 403"


# --- both ------------------------------------------------------------------------------------------------


def run_checks(
    clever: CleverClient, canvas: CanvasClient, account_id: str, *, log: Callable[[str], None] | None = None
) -> list[Check]:
    """Every check of both services, in order (Clever, then Canvas); each line to ``log`` as it is known."""
    checks = []
    for check in (*check_clever(clever), *check_canvas(canvas, account_id)):
        if log is not None:
            log(check.line())
        checks.append(check)
    return checks
