"""The review's facts about identity changes: who a build carries over to a new id, and who it could not.

A sync run finds the people Clever re-created under a new id (:mod:`clever2sis.sync.identities`) and
writes, into the build it uploads, ``change_sis_id.csv`` rows for those it carries over and findings for
each case (``identity_carried``, ``identity_ambiguous``, ``login_claimed_by_removed_user``). A build made
with ``build --id-map`` has user rows in change_sis_id.csv too. :func:`identity_facts` gathers them for
the report, the terminal summary and ``review --json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clever2sis.sis import files

if TYPE_CHECKING:
    from clever2sis.review.facts import BuildView

CARRIED = "identity_carried"
AMBIGUOUS = "identity_ambiguous"
CLAIMED = "login_claimed_by_removed_user"
KINDS = (CARRIED, AMBIGUOUS, CLAIMED)


def identity_facts(view: BuildView) -> dict[str, Any] | None:
    """The build's identity changes, or None when it has none: how many users it carries over
    (``carried``), how many matches were ambiguous and how many users lost a login a removed user holds,
    the user SIS ids change_sis_id.csv changes (``sis_id_changes``: old_id, new_id), and every finding of
    those kinds (``messages``: record_id, message)."""
    items = [item for item in (view.record.findings or {}).get("items") or [] if item.get("kind") in KINDS]
    changes = view.frames[files.CHANGE_SIS_ID]
    users = changes.loc[changes["type"] == "user", ["old_id", "new_id"]]
    if not items and users.empty:
        return None

    def count(kind: str) -> int:
        return sum(1 for item in items if item["kind"] == kind)

    return {
        "carried": count(CARRIED),
        "ambiguous": count(AMBIGUOUS),
        "logins_claimed": count(CLAIMED),
        "sis_id_changes": users.to_dict("records"),
        "messages": [
            {"kind": item["kind"], "record_id": item.get("record_id"), "message": item.get("message")}
            for item in items
        ],
    }


def summary_line(facts: dict[str, Any]) -> str | None:
    """The terminal summary's line about identity changes (None without any)."""
    found = facts.get("identities")
    if not found:
        return None
    parts = [f"{found['carried']:,} carried over to a new id"]
    if found["ambiguous"]:
        parts.append(f"{found['ambiguous']:,} ambiguous (not carried)")
    if found["logins_claimed"]:
        parts.append(f"{found['logins_claimed']:,} login(s) still held by removed users")
    other = len(found["sis_id_changes"]) - found["carried"]
    if other > 0:
        parts.append(f"{other:,} other user SIS id change(s)")
    return "  identities: " + ", ".join(parts)
