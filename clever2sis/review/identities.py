"""The review's facts about identity changes: who a build carries over to a new id, and who it could not.

A sync run finds the people Clever re-created under a new id (:mod:`clever2sis.sync.identities`) and
writes, into the build it uploads, ``change_sis_id.csv`` rows for those it carries over and findings for
each case (``identity_carried``, ``identity_ambiguous``, ``login_claimed_by_removed_user``). A build made
with ``build --id-map`` has user rows in change_sis_id.csv too. :func:`identity_facts` gathers them for
the report, the terminal summary and ``review --json``.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    those kinds (``messages``: record_id, message).

    A sync run's build also names each person (build.json ``sync.identity_changes``): ``carried_users``
    (old_id, new_id, keys, via, removed_on, name, school_ids, school) and ``ambiguous_users`` (new_id,
    keys, old_ids, name, school_ids, school), the name and schools from this build's users.csv."""
    items = [item for item in (view.record.findings or {}).get("items") or [] if item.get("kind") in KINDS]
    changes = view.frames[files.CHANGE_SIS_ID]
    users = changes.loc[changes["type"] == "user", ["old_id", "new_id"]]
    if not items and users.empty:
        return None

    def count(kind: str) -> int:
        return sum(1 for item in items if item["kind"] == kind)

    facts: dict[str, Any] = {
        "carried": count(CARRIED),
        "ambiguous": count(AMBIGUOUS),
        "logins_claimed": count(CLAIMED),
        "sis_id_changes": users.to_dict("records"),
        "messages": [
            {"kind": item["kind"], "record_id": item.get("record_id"), "message": item.get("message")}
            for item in items
        ],
    }
    details = (view.record.sync or {}).get("identity_changes")
    if isinstance(details, Mapping):
        facts["carried_users"] = _people(view, details.get("carried"), CARRIED_FIELDS)
        facts["ambiguous_users"] = _people(view, details.get("ambiguous"), AMBIGUOUS_FIELDS)
    return facts


CARRIED_FIELDS = ("old_id", "new_id", "keys", "via", "removed_on")
AMBIGUOUS_FIELDS = ("new_id", "keys", "old_ids")


def _people(view: BuildView, rows: Any, fields: tuple[str, ...]) -> list[dict[str, str]]:
    """``rows`` (a sync's records of people, by their new user_id) with each one's name and schools."""
    import pandas as pd  # here, not above: the CLI imports this module and must start without pandas

    people = [row for row in rows if isinstance(row, Mapping)] if isinstance(rows, list) else []
    if not people:
        return []
    new_ids = pd.Series([str(row.get("new_id") or "") for row in people], dtype="str")
    names = new_ids.map(view.user_names()).fillna("").astype("str")
    schools = view.user_schools(new_ids)
    return [
        {
            **{field: str(row.get(field) or "") for field in fields},
            "name": name,
            "school_ids": school_ids,
            "school": school,
        }
        for row, name, school_ids, school in zip(
            people, names, schools["school_ids"], schools["school"], strict=True
        )
    ]


def other_sis_id_changes(found: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The user SIS id changes of :func:`identity_facts` ``found`` that are not a sync's carry-over (a
    ``build --id-map`` row, say): a carried-over person's change_sis_id.csv row is the carry-over itself."""
    carried = {(row["old_id"], row["new_id"]) for row in found.get("carried_users") or []}
    return [row for row in found["sis_id_changes"] if (row["old_id"], row["new_id"]) not in carried]


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
