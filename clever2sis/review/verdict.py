"""The verdict at the top of a review: ready to sign off, or what needs a decision first.

The verdict is made from the review facts alone, by the rules of :data:`RULES`, in their order. Each rule
gives plain-worded lines with counts ("5 students would be suspended"), each linking to the table it
counts. A rule that ``needs_decision`` puts its lines under "needs a decision before sign-off"; the
others' lines are for information. A build is ready to sign off when no line needs a decision.

``review --json`` carries the verdict (``verdict.ready``, ``verdict.needs_decision``, ...), so a script
can gate on it; the report shows the same lines. docs/review.md's "The verdict" lists the same rules: change
both together (a test compares them).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from clever2sis.sis import files

READY = "Ready to sign off: nothing needs a decision."
NOT_READY = "Not ready to sign off: {n} {things} a decision."


@dataclass(frozen=True)
class Line:
    """One line of the verdict: what the rule counted, in words, and the table that lists it."""

    rule: str
    count: int
    text: str
    anchor: str


Facts = Mapping[str, Any]


@dataclass(frozen=True)
class Rule:
    """A verdict rule: its name, whether its lines need a decision, what it counts, and how."""

    name: str
    needs_decision: bool
    counts: str
    lines: Callable[[Facts], list[Line]]


def diff_anchor(name: str, part: str) -> str:
    """The report's id of one table of a file's changes (``part``: added, removed or changed)."""
    return f"diff-{name.removesuffix('.csv')}-{part}"


def finding_anchor(kind: str) -> str:
    return f"finding-{kind}"


REMOVALS_ANCHOR = "removals"
CHANGES_ANCHOR = "changes"
HELD_ANCHOR = "held-schools"
IDENTITIES_ANCHOR = "identities-carried"


def observer_anchor(kind: str) -> str:
    """The report's id of the table of observer links ``kind`` (removed or added)."""
    return f"observer-links-{kind}"


# --- words ---------------------------------------------------------------------------------------------

FILE_NOUNS: dict[str, tuple[str, str]] = {
    files.CHANGE_SIS_ID: ("SIS id change", "SIS id changes"),
    files.ACCOUNTS: ("school account", "school accounts"),
    files.TERMS: ("term", "terms"),
    files.COURSES: ("course", "courses"),
    files.SECTIONS: ("section", "sections"),
    files.USERS: ("user", "users"),
    files.ENROLLMENTS: ("enrollment", "enrollments"),
    files.USER_OBSERVERS: ("parent link", "parent links"),
    files.ADMINS: ("school admin", "school admins"),
}
ROLE_NOUNS: dict[str, tuple[str, str]] = {
    "student": ("student", "students"),
    "teacher": ("teacher", "teachers"),
    "ta": ("TA", "TAs"),
    "designer": ("designer", "designers"),
    "observer": ("observer", "observers"),
    "staff": ("staff member", "staff members"),
    "district_admin": ("district administrator", "district administrators"),
    "contact": ("contact", "contacts"),
    "": ("user with no enrollment", "users with no enrollment"),
}
PERSON_NOUNS = ("user", "users")
# The order of the verdict's lines about files: people first.
CHANGE_ORDER = (
    files.USERS,
    files.ENROLLMENTS,
    files.ADMINS,
    files.SECTIONS,
    files.COURSES,
    files.ACCOUNTS,
    files.TERMS,
    files.USER_OBSERVERS,
    files.CHANGE_SIS_ID,
)
STATUS_WORDS: dict[str, str] = {
    "deleted": "deleted",
    "suspended": "suspended",
    "completed": "concluded",
    "inactive": "made inactive",
    "deleted_last_completed": "deleted (concluded where it is the user's last in the course)",
}


def counted(n: int, nouns: tuple[str, str]) -> str:
    """``n`` and the noun that goes with it: "1 section", "2,087 sections"."""
    return f"{n:,} {nouns[0] if n == 1 else nouns[1]}"


def people(roles: Iterable[str]) -> str:
    """People counted by role, biggest group first: "4 students and 1 teacher"."""
    by_role = Counter(roles)
    groups = sorted(by_role.items(), key=lambda item: (-item[1], item[0]))
    words = [counted(n, ROLE_NOUNS.get(role, PERSON_NOUNS)) for role, n in groups]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _choose(n: int, one: str, many: str, **values: Any) -> str:
    return (one if n == 1 else many).format(n=f"{n:,}", **values)


# --- findings ------------------------------------------------------------------------------------------

# kind -> (one, many): {n} is the number of findings, {who} the people they name counted by role.
FINDING_LINES: dict[str, tuple[str, str]] = {
    "account_without_id": (
        "{n} school has an empty account_id: left out",
        "{n} schools have an empty account_id: left out",
    ),
    "duplicate_account_id": (
        "{n} school has an account_id another school has: left out",
        "{n} schools have an account_id another school has: left out",
    ),
    "id_map_not_built": (
        "{n} id-map row names a record this build does not send: its SIS id is not changed",
        "{n} id-map rows name a record this build does not send: their SIS ids are not changed",
    ),
    "id_map_conflict": (
        "{n} id-map row conflicts with another: not changed",
        "{n} id-map rows conflict with others: not changed",
    ),
    "section_unknown_term": (
        "{n} section names a term Clever did not send: its course goes to the default term",
        "{n} sections name a term Clever did not send: their courses go to the default term",
    ),
    "section_without_term": (
        "{n} section has no term: its course goes to the default term",
        "{n} sections have no term: their courses go to the default term",
    ),
    "section_unknown_course": (
        "{n} section names a course Clever did not send: named from the section",
        "{n} sections name a course Clever did not send: named from the section",
    ),
    "section_without_course": (
        "{n} section has no course: named from the section",
        "{n} sections have no course: named from the section",
    ),
    "section_unknown_school": (
        "{n} section names a school Clever did not send: its course goes in the root account",
        "{n} sections name a school Clever did not send: their courses go in the root account",
    ),
    "section_without_id": (
        "{n} section has an empty section_id or course_id: left out",
        "{n} sections have an empty section_id or course_id: left out",
    ),
    "duplicate_section_id": (
        "{n} section has a section_id another section has: left out",
        "{n} sections have a section_id another section has: left out",
    ),
    "enrollment_unknown_user": (
        "{n} enrollment names a user Clever did not send: left out",
        "{n} enrollments name a user Clever did not send: left out",
    ),
    "enrollment_user_not_built": (
        "{n} enrollment is left out: its user is not in users.csv",
        "{n} enrollments are left out: their users are not in users.csv",
    ),
    "enrollment_section_not_built": (
        "{n} roster entry names a section not in sections.csv: not enrolled",
        "{n} roster entries name a section not in sections.csv: not enrolled",
    ),
    "term_without_id": (
        "{n} term has no name or dates to make a term_id from: its sections go to the fallback term",
        "{n} terms have no name or dates to make a term_id from: their sections go to the fallback term",
    ),
    "bad_date": (
        "{n} term has a date that is not YYYY-MM-DD: sent without it",
        "{n} terms have a date that is not YYYY-MM-DD: sent without it",
    ),
    "terms_merged": (
        "{n} term has the same name and dates as another: both are one Canvas term",
        "{n} terms have the same name and dates as another: each such pair is one Canvas term",
    ),
    "term_recreated": (
        "{n} term Clever re-created keeps its Canvas term_id, with its new dates",
        "{n} terms Clever re-created keep their Canvas term_ids, with their new dates",
    ),
    "term_not_kept": (
        "{n} new term cannot keep an older Canvas term_id: it is a new Canvas term",
        "{n} new terms cannot keep an older Canvas term_id: each is a new Canvas term",
    ),
    "malformed_record": (
        "{n} Clever record has a field of another type than Clever's: left out",
        "{n} Clever records have a field of another type than Clever's: left out",
    ),
    "unusable_login": (
        "{who} has a login Canvas would not save: sent with another login",
        "{who} have a login Canvas would not save: sent with another login",
    ),
    "value_too_long": (
        "{n} value is longer than Canvas stores: cut to fit",
        "{n} values are longer than Canvas stores: cut to fit",
    ),
    "id_too_long": (
        "{n} id is longer than Canvas stores: its row is left out",
        "{n} ids are longer than Canvas stores: their rows are left out",
    ),
    "missing_login": ("{who} has no usable login: left out", "{who} have no usable login: left out"),
    "admin_user_not_built": (
        "{n} school admin is not in users.csv: not made an admin",
        "{n} school admins are not in users.csv: not made admins",
    ),
    "admin_without_school": (
        "{n} school admin has no schools in Clever: not made an admin",
        "{n} school admins have no schools in Clever: not made admins",
    ),
    "admin_school_not_built": (
        "{n} school admin's school is not in accounts.csv: not made an admin there",
        "{n} school admins' schools are not in accounts.csv: not made admins there",
    ),
    "duplicate_admin": (
        "{n} admin would have two roles in one account: sent once, with the first role",
        "{n} admins would have two roles in one account: sent once each, with the first role",
    ),
    "login_claimed_by_removed_user": (
        "{who} asks for a login Canvas still holds for a removed user: sent with another login, or left out",
        "{who} ask for logins Canvas still holds for removed users: sent with other logins, or left out",
    ),
    "identity_carried": (
        "{who} Clever gave a new id keeps their Canvas user (carried over to the new id)",
        "{who} Clever gave new ids keep their Canvas users (carried over to the new ids)",
    ),
    "identity_ambiguous": (
        "{who} shares keys with removed Canvas users, not one to one: not carried over, a new Canvas user",
        "{who} share keys with removed Canvas users, not one to one: not carried over, new Canvas users",
    ),
    "observer_missing_login": (
        "{n} contact has no usable login: left out",
        "{n} contacts have no usable login: left out",
    ),
    "observer_without_students": (
        "{n} contact observes no student in users.csv: left out",
        "{n} contacts observe no student in users.csv: left out",
    ),
    "user_without_id": ("{who} has an empty user_id: left out", "{who} have an empty user_id: left out"),
    "duplicate_user_id": (
        "{who} has a user_id another user has: left out",
        "{who} have a user_id another user has: left out",
    ),
    "invalid_email": (
        "{who} has an email address that is not valid: sent without one",
        "{who} have an email address that is not valid: sent without one",
    ),
    "observer_unknown_student": (
        "{n} parent link names a student Clever did not send: left out",
        "{n} parent links name a student Clever did not send: left out",
    ),
    "observer_student_not_built": (
        "{n} parent link names a student not in users.csv: left out",
        "{n} parent links name a student not in users.csv: left out",
    ),
    "observer_self": (
        "{n} parent link would have a student observe themself: left out",
        "{n} parent links would have a student observe themself: left out",
    ),
    "observer_not_built": (
        "{n} parent link's contact is not in users.csv: left out",
        "{n} parent links' contacts are not in users.csv: left out",
    ),
    "duplicate_observer_link": (
        "{n} parent link is listed more than once: sent once",
        "{n} parent links are listed more than once: each sent once",
    ),
    "control_characters": (
        "{n} value held control characters: removed",
        "{n} values held control characters: removed",
    ),
    "dangling_reference": (
        "{n} row names a record the build does not have: left out",
        "{n} rows name a record the build does not have: left out",
    ),
}
# Kinds whose one finding says it all: the line is its message.
MESSAGE_KINDS = frozenset({"contacts_not_built"})
_SHARED_LOGIN = re.compile(r"login_id '(?P<login>.*?)' \(")


def _shared_logins(items: Sequence[Mapping[str, Any]]) -> str:
    logins = {_login(item) for item in items}
    who = people(str(item.get("role") or "") for item in items)
    if len(logins) == 1:
        return f"1 login is taken by {who}"
    return f"{len(logins):,} logins are each taken by more than one user: {who}"


def _login(item: Mapping[str, Any]) -> str:
    found = _SHARED_LOGIN.search(str(item.get("message") or ""))
    return found.group("login") if found else f"record {item.get('record_id')}"


def finding_line(kind: str, entry: Mapping[str, Any]) -> str:
    """The verdict's words for the ``entry`` of findings of one ``kind``."""
    items: list[Mapping[str, Any]] = entry["items"]
    n = int(entry["count"])
    if kind == "duplicate_login":
        return _shared_logins(items)
    if kind in MESSAGE_KINDS:
        return "; ".join(str(item["message"]) for item in items)
    one, many = FINDING_LINES.get(kind, ("{n} " + kind + " finding", "{n} " + kind + " findings"))
    return _choose(n, one, many, who=people(str(item.get("role") or "") for item in items))


CARRIED_KIND = "identity_carried"


def _findings(severity: str) -> Callable[[Facts], list[Line]]:
    def lines(facts: Facts) -> list[Line]:
        # The identities rule says the carry-overs, beside the table of who became whom.
        owned = {CARRIED_KIND} if facts.get("identities") else set()
        return [
            Line(severity, int(entry["count"]), finding_line(kind, entry), finding_anchor(kind))
            for kind, entry in facts["findings"]["by_kind"].items()
            if entry["severity"] == severity and kind not in owned
        ]

    return lines


# --- what a sync night did beyond the CSVs ---------------------------------------------------------------

RELEASES_SHOWN = 3


def _held_schools(facts: Facts) -> list[Line]:
    held: list[Mapping[str, Any]] = (facts.get("guard") or {}).get("held") or []
    if not held:
        return []
    n = len(held)
    since = sorted(str(school["since"]) for school in held if school.get("since"))
    when = ""
    if since:
        when = f" since {since[0]}" if since[0] == since[-1] else f" (the first since {since[0]})"
    if n <= RELEASES_SHOWN:
        releases = "release with " + " ".join(str(school["release"]) for school in held)
    else:
        releases = "release each with the --allow-large-change the held schools table gives it"
    text = _choose(
        n,
        "{n} school held{when}: its rows stay as Canvas has them; {releases} after checking Clever, or "
        "wait for its data to recover",
        "{n} schools held{when}: their rows stay as Canvas has them; {releases} after checking Clever, or "
        "wait for their data to recover",
        when=when,
        releases=releases,
    )
    return [Line("held_schools", n, text, HELD_ANCHOR)]


def _identities(facts: Facts) -> list[Line]:
    entry = facts["findings"]["by_kind"].get(CARRIED_KIND)
    if not facts.get("identities") or not entry:
        return []
    return [Line("identities", int(entry["count"]), finding_line(CARRIED_KIND, entry), IDENTITIES_ANCHOR)]


# (kind, status) -> words; {links}: "2 parent links", {posted}: " (sis_import 12: imported)".
OBSERVER_WORDS: dict[tuple[str, str], str] = {
    ("removed", "sent"): "{links} removed before the main import{posted}",
    ("removed", "planned"): "{links} to be removed before the main import, in an import of their own",
    ("removed", "not sent"): (
        "{links} Clever no longer has: not removed, the run ended before their import was posted (the "
        "next run sends it)"
    ),
    ("added", "sent"): "{links} added after the main import{posted}",
    ("added", "planned"): "{links} to be added after the main import, in an import of their own",
    ("added", "not sent"): (
        "{links} new tonight: not added, the run ended before their import was posted (the next run sends it)"
    ),
}


def _observer_links(facts: Facts) -> list[Line]:
    links = facts.get("observer_links")
    if not links:
        return []
    out = []
    for kind in ("removed", "added"):
        n = len(links[kind])
        if not n:
            continue
        entry = links["import"][kind]
        posted = f" (sis_import {entry['sis_import_id']}: {entry['import_state']})" if entry else ""
        words = OBSERVER_WORDS[(kind, links["status"][kind])]
        text = words.format(links=counted(n, FILE_NOUNS[files.USER_OBSERVERS]), posted=posted)
        out.append(Line("observer_links", n, text, observer_anchor(kind)))
    return out


# --- removals and changes ------------------------------------------------------------------------------


def _rows(facts: Facts, name: str, part: str) -> list[Mapping[str, Any]]:
    rows: list[Mapping[str, Any]] = facts["diff"][name]["rows"][part]
    return rows


def _compared(by_file: Mapping[str, Any]) -> list[str]:
    """The files of CHANGE_ORDER the review compared (admins.csv only when a build has it)."""
    return [name for name in CHANGE_ORDER if name in by_file]


def _removals(facts: Facts) -> list[Line]:
    if not facts.get("removals"):
        return []
    out = []
    for name in _compared(facts["removals"]["files"]):
        entry = facts["removals"]["files"][name]
        n = int(entry["affected"])
        if not n:
            continue
        verb = STATUS_WORDS.get(str(entry["status"]), str(entry["status"]))
        removed = _rows(facts, name, "removed")
        if name == files.USERS and n == len(removed):
            who = people(str(row.get("role") or "") for row in removed)
        else:
            who = counted(n, FILE_NOUNS.get(name, ("row", "rows")))
        out.append(Line("removals", n, f"{who} would be {verb}", diff_anchor(name, "removed")))
    return out


def _aborted(facts: Facts) -> list[Line]:
    if not facts.get("removals"):
        return []
    return [
        Line("aborted", int(entry["removed"]), f"{name}: {entry['effect']}", REMOVALS_ANCHOR)
        for name, entry in facts["removals"]["files"].items()
        if entry.get("aborts_import")
    ]


def _changed_rows(facts: Facts, name: str, fields: set[str]) -> list[Mapping[str, Any]]:
    return [row for row in _rows(facts, name, "changed") if any(c["field"] in fields for c in row["changes"])]


def _roles_of(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str((row.get("context") or row).get("role") or "") for row in rows]


def _login_changes(facts: Facts) -> list[Line]:
    if not facts.get("diff"):
        return []
    changed = _changed_rows(facts, files.USERS, {"login_id"})
    if not changed:
        return []
    text = f"{people(_roles_of(changed))} would sign in with a new login (login_id changed)"
    return [Line("login_changes", len(changed), text, diff_anchor(files.USERS, "changed"))]


def _kept(facts: Facts) -> list[Line]:
    if not facts.get("removals"):
        return []
    out = []
    for name in _compared(facts["removals"]["files"]):
        entry = facts["removals"]["files"][name]
        n = int(entry["removed"])
        if not n or entry["affected"] or entry.get("aborts_import"):
            continue
        if name == files.USERS:
            who = people(_roles_of(_rows(facts, name, "removed")))
            text = f"{who} {'is' if n == 1 else 'are'} no longer sent; Canvas keeps them as they are"
        else:
            text = _choose(
                n,
                "{n} {noun} is no longer sent; Canvas keeps it as it is",
                "{n} {noun} are no longer sent; Canvas keeps them as they are",
                noun=FILE_NOUNS.get(name, ("row", "rows"))[0 if n == 1 else 1],
            )
        out.append(Line("kept_in_canvas", n, text, diff_anchor(name, "removed")))
    return out


NAME_FIELDS = {"first_name", "last_name"}
SCHOOLS_FIELD = "schools"
TEACHERS_FIELD = "teachers"


def _changes(facts: Facts) -> list[Line]:
    if not facts.get("diff"):
        return []
    out = []
    for name in _compared(facts["diff"]):
        entry = facts["diff"][name]
        nouns = FILE_NOUNS.get(name, ("row", "rows"))
        added = _rows(facts, name, "added")
        if added:
            who = people(_roles_of(added)) if name == files.USERS else counted(len(added), nouns)
            out.append(Line("changes", len(added), f"{who} added", diff_anchor(name, "added")))
        if not entry["changed"]:
            continue
        anchor = diff_anchor(name, "changed")
        if name == files.USERS:
            renamed = _changed_rows(facts, name, NAME_FIELDS)
            moved = _changed_rows(facts, name, {SCHOOLS_FIELD})
            if renamed:
                out.append(
                    Line(
                        "changes",
                        len(renamed),
                        _choose(len(renamed), "{n} name changed", "{n} names changed"),
                        anchor,
                    )
                )
            if moved:
                out.append(Line("changes", len(moved), f"{people(_roles_of(moved))} moved school", anchor))
            named = NAME_FIELDS | {SCHOOLS_FIELD, "login_id"}
        elif name == files.SECTIONS:
            retaught = _changed_rows(facts, name, {TEACHERS_FIELD})
            if retaught:
                text = _choose(
                    len(retaught),
                    "{n} section has a new or added teacher",
                    "{n} sections have a new or added teacher",
                )
                out.append(Line("changes", len(retaught), text, anchor))
            named = {TEACHERS_FIELD}
        else:
            named = set()
        others = [
            row
            for row in _rows(facts, name, "changed")
            if any(c["field"] not in named for c in row["changes"])
        ]
        if others:
            fields = sorted({c["field"] for row in others for c in row["changes"] if c["field"] not in named})
            text = f"{counted(len(others), nouns)} changed ({', '.join(fields)})"
            out.append(Line("changes", len(others), text, anchor))
    return out


def _no_baseline(facts: Facts) -> list[Line]:
    if facts.get("diff"):
        return []
    text = "No older build to compare with: this review cannot say what the import would change or remove"
    return [Line("no_baseline", 0, text, CHANGES_ANCHOR)]


RULES: tuple[Rule, ...] = (
    Rule(
        "held_schools",
        True,
        "schools the sync's guard held: their rows are sent as Canvas has them until their data recovers "
        "or they are released with --allow-large-change SCHOOL_ID",
        _held_schools,
    ),
    Rule(
        "removals",
        True,
        "rows the older build had and this one does not, which Canvas would act on under the import "
        "settings: users deleted or suspended, enrollments deleted, concluded or made inactive, courses and "
        "sections deleted",
        _removals,
    ),
    Rule(
        "aborted",
        True,
        "batch mode would abort the import: the removals of a file exceed change_threshold",
        _aborted,
    ),
    Rule(
        "login_changes",
        True,
        "users whose login_id changes: they must sign in with the new one",
        _login_changes,
    ),
    Rule(
        "warning",
        True,
        "validation findings of severity warning: records the build left out or changed because of data to "
        "fix in Clever or the SIS",
        _findings("warning"),
    ),
    Rule(
        "kept_in_canvas",
        False,
        "rows no longer sent that Canvas leaves as they are (no diffing or batch mode, skip_deletes, or a "
        "threshold that makes Canvas apply whole files)",
        _kept,
    ),
    Rule(
        "changes",
        False,
        "rows added, and rows changed: names, schools, teachers, other fields",
        _changes,
    ),
    Rule(
        "identities",
        False,
        "people Clever gave a new id whom the sync carries over to it (they keep their Canvas user; an "
        "ambiguous match is a warning)",
        _identities,
    ),
    Rule(
        "observer_links",
        False,
        "parent links a sync run removes before its main import and adds after it, in imports of their own",
        _observer_links,
    ),
    Rule(
        "info",
        False,
        "validation findings of severity info: handled by a documented rule",
        _findings("info"),
    ),
    Rule("no_baseline", False, "no older build to compare with", _no_baseline),
)


def verdict(facts: Facts) -> dict[str, Any]:
    """The verdict of the review ``facts`` (see :func:`clever2sis.review.facts.review_facts`)."""
    decide: list[Line] = []
    inform: list[Line] = []
    for rule in RULES:
        (decide if rule.needs_decision else inform).extend(rule.lines(facts))
    n = len(decide)
    headline = READY if not n else NOT_READY.format(n=n, things="thing needs" if n == 1 else "things need")
    return {
        "ready": not decide,
        "headline": headline,
        "needs_decision": [asdict(line) for line in decide],
        "for_information": [asdict(line) for line in inform],
    }
