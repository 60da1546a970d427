"""What Canvas must hold after a night of syncing, judged from what Clever says that night.

:func:`violations` checks the model of Canvas (:class:`~tests.canvas_model.CanvasModel`) against the night's
Clever records, and says each thing that is wrong as one sentence naming the ids. It follows the invariant
of the school-year design, with the simulation's settings (the defaults, observers on):

1. **Roster.** Every Clever roster slot (a section's student, a section's teacher) whose user and section
   are built is an active Canvas enrollment (section_id, user_id, role); in a section whose term has ended
   it is concluded (``completed``), as ``[sync] term_rollover`` says.
2. **Leavers.** No active enrollment exists that Clever does not have tonight, and a student or teacher
   enrollment Clever dropped is ``inactive`` or ``completed``, never deleted. A person Canvas holds that
   Clever no longer has is ``suspended`` (``[sync] user_remove_status``), never active or deleted (a person
   tonight's build left out with a finding may stay as Canvas holds them).
3. **Observers.** Every active observer link (and every active observer enrollment) in Canvas is a
   relationship Clever has tonight, of the configured types (``Parent/Guardian``), to a student Clever has
   in that section; and every such relationship between built people is an active link.
4. **Sign-in.** Every built person signs in with the login the build gave them, which is one of their own
   Clever usernames or emails, to the Canvas user holding their enrollments (an active login of a user not
   suspended: ``CanvasModel.signs_in_as``).
5. **Coursework.** No Canvas course holding coursework (every course that existed for a night) is deleted,
   or loses a section to another course, while Clever still has the section.

**Who is built.** A Clever user with a role the build builds (student, teacher, staff, district admin), and
a contact with a relationship of a configured type to a built student (an observer), is built unless the
night's build left them out *and said so*: a finding in build.json naming them (``record_id``) in
users.csv whose message says ``left out``. A built section is one in the night's sections.csv, or left out
with a finding naming it. Anyone or any section the build dropped without a finding is a violation, so an
exclusion counts only when the build reported it. Ids are the default templates': Canvas ids are Clever ids.

**When a section's term has ended.** When Clever's end date, at 23:59:59 UTC (``build.timezone``), is
before the night's run.

**Held schools.** On a night whose Clever data for some schools is known to be broken
(``Tonight.held_schools``), the invariant is judged on every other school: the rows of the held schools
(:func:`held_rows`) are left out of checks 1 to 4, on both sides (what Clever says and what Canvas holds).
Check 5 is judged everywhere. Whether the held schools stayed as Canvas had them is for the caller to judge,
against Canvas's state before the break. A held school's rows are its sections (Clever's tonight, and those
of Canvas's courses in its account), every enrollment in them, the people it holds and the links to them.
The people it holds: everyone with a roster slot tonight in a held school's section, or an active
enrollment in Canvas in a held school's course, who has no roster slot tonight in any other school (the
README's rule: a person who appears tonight in a healthy school is judged as tonight's, and their
enrollments in the held school are left out with the school); a person Clever does not serve tonight whose
Clever schools (``Tonight.hidden``: as the district holds them) include a held school, such as its staff,
who have no enrollment; and a contact whose observed students (in Clever tonight or in Canvas) are all
people the held schools hold. Staff in Clever tonight and district admins are always judged.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from clever2sis.config import BuildSettings, ObserverSettings, SyncSettings
from tests.canvas_model import CanvasModel, EnrollmentView

BUILT_ROLES = frozenset(BuildSettings().user_roles)
RELATIONSHIP_TYPES = frozenset(ObserverSettings().relationship_types)
USER_REMOVE_STATUS = SyncSettings().user_remove_status
ENROLLMENT_REMOVE_STATUS = SyncSettings().enrollment_remove_status
CONCLUDED = "completed"
ACTIVE = "active"
DELETED = "deleted"
LEFT_OUT = "left out"
# Every coursework violation says this: what no night may do, not even one that fails.
LOST_COURSEWORK = "holds coursework"
END_OF_DAY = dt.time(23, 59, 59, tzinfo=dt.UTC)
# Clever's roster lists and the Canvas role each gives (co-teachers: [build] coteacher_role, "teacher").
ROSTER_ROLES = (("students", "student"), ("teachers", "teacher"))

Slot = tuple[str, str, str]  # section_id, user_id, role
Records = Mapping[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class Tonight:
    """One night as the invariant reads it.

    ``records`` are what Clever served; ``build_dir`` is the run's build (build.json, csv/);
    ``import_ids`` the SIS imports the night posted; ``course_sections`` every section each Canvas course
    held after any earlier night (so a course deleted tonight is known by what it held).
    """

    number: int
    now: dt.datetime
    records: Records
    build_dir: Path
    import_ids: tuple[int, ...]
    course_sections: Mapping[str, frozenset[str]]
    held_schools: frozenset[str] = frozenset()  # Clever school ids (Canvas account ids) not judged tonight
    # The people the district holds whom Clever does not serve tonight, with their Clever schools.
    hidden: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class HeldRows:
    """What the invariant leaves out on a night with held schools (see the module doc)."""

    courses: frozenset[str] = frozenset()  # Canvas courses in the held schools' accounts
    sections: frozenset[str] = frozenset()  # their sections, and Clever's sections of the held schools
    people: frozenset[str] = frozenset()

    def enrollment(self, view: EnrollmentView) -> bool:
        """Whether a Canvas enrollment is a held school's row (in its course, or of a person it holds)."""
        return (
            view.course_id in self.courses
            or view.section_id in self.sections
            or view.user_id in self.people
            or view.associated_user_id in self.people
        )

    def link(self, observer: str | None, student: str | None) -> bool:
        return observer in self.people or student in self.people


@dataclass(frozen=True)
class Expected:
    """What tonight's Clever records and build say Canvas must hold."""

    people: Mapping[str, frozenset[str]]  # built person -> their own Clever login values, lower-cased
    kinds: Mapping[str, str]  # built person -> "student", "teacher", ..., "observer"
    logins: Mapping[str, str]  # user_id -> the login_id users.csv sent
    excluded: frozenset[
        str
    ]  # Clever users the build left out with a finding (Canvas may keep them as they are)
    unexplained: frozenset[str]  # Clever people the build left out without a finding
    slots: Mapping[Slot, bool]  # built roster slot -> whether its section's term has ended
    clever_slots: frozenset[Slot]  # every roster slot Clever has tonight
    sections: frozenset[str]  # every section Clever has tonight
    unexplained_sections: frozenset[str]
    links: frozenset[tuple[str, str]]  # (contact, student) of built people, no finding against the link
    clever_links: frozenset[tuple[str, str]]  # every relationship of a configured type tonight


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def findings(build_dir: Path) -> list[dict[str, str]]:
    """The findings of a build (build.json ``findings.items``)."""
    record = orjson.loads((build_dir / "build.json").read_bytes())
    items: list[dict[str, str]] = record["findings"]["items"]
    return items


def sent(build_dir: Path, file: str) -> list[dict[str, str]]:
    """The rows of one CSV of a build (``csv/<file>``; none when the build has no such file)."""
    return _rows(build_dir / "csv" / file)


def login_values(user: Mapping[str, Any]) -> frozenset[str]:
    """A Clever user's own usernames and emails, stripped and lower-cased."""
    values = {user.get("email")}
    for role in user["roles"].values():
        if isinstance(role, dict):
            values.add((role.get("credentials") or {}).get("district_username"))
            values.add(role.get("email"))
    return frozenset(str(v).strip().lower() for v in values if v and str(v).strip())


def ended(term: Mapping[str, Any] | None, now: dt.datetime) -> bool:
    if term is None or not term.get("end_date"):
        return False
    try:
        day = dt.date.fromisoformat(str(term["end_date"]))
    except ValueError:
        return False
    return dt.datetime.combine(day, END_OF_DAY) < now


def expected(night: Tonight) -> Expected:
    """Who and what is built tonight, and which roster slots and links Clever has (see the module doc)."""
    users = {u["id"]: u for u in night.records["users"]}
    items = findings(night.build_dir)
    left_out = {
        f["record_id"]
        for f in items
        if f["file"] == "users.csv" and LEFT_OUT in f["message"] and f["record_id"]
    }
    sent_users = {row["user_id"]: row for row in sent(night.build_dir, "users.csv")}
    kinds: dict[str, str] = {}
    for user_id, user in users.items():
        built = sorted(BUILT_ROLES & set(user["roles"]))
        if built:
            kinds[user_id] = built[0]
    students = {u for u, kind in kinds.items() if "student" in users[u]["roles"]}
    clever_links: set[tuple[str, str]] = set()
    for user_id, user in users.items():
        for link in (user["roles"].get("contact") or {}).get("student_relationships") or []:
            if link.get("type") in RELATIONSHIP_TYPES and link.get("student"):
                clever_links.add((user_id, str(link["student"])))
    built_students = students - left_out
    for contact, student in clever_links:
        if contact not in kinds and student in built_students:
            kinds[contact] = "observer"
    excluded = frozenset(set(users) & left_out)
    people = {p: login_values(users[p]) for p in set(kinds) - excluded}
    unexplained = frozenset(p for p in people if p not in sent_users)
    link_findings = {
        (f["record_id"], f["message"]) for f in items if f["file"] == "user_observers.csv" and f["record_id"]
    }
    links = frozenset(
        (contact, student)
        for contact, student in clever_links
        if contact in people
        and student in people
        and not any(c == contact and student in message for c, message in link_findings)
    )
    built_sections = {row["section_id"] for row in sent(night.build_dir, "sections.csv")}
    section_findings = {f["record_id"] for f in items if f["file"] == "sections.csv"}
    terms = {t["id"]: t for t in night.records["terms"]}
    slots: dict[Slot, bool] = {}
    clever_slots: set[Slot] = set()
    sections = {s["id"] for s in night.records["sections"]}
    for section in night.records["sections"]:
        over = ended(terms.get(str(section.get("term_id"))), night.now)
        for key, role in ROSTER_ROLES:
            for user_id in section.get(key) or []:
                clever_slots.add((section["id"], user_id, role))
                if user_id in people and kinds[user_id] != "observer" and section["id"] in built_sections:
                    slots[(section["id"], user_id, role)] = over
    return Expected(
        people=people,
        kinds=kinds,
        logins={user_id: row["login_id"] for user_id, row in sent_users.items()},
        excluded=excluded,
        unexplained=unexplained,
        slots=slots,
        clever_slots=frozenset(clever_slots),
        sections=frozenset(sections),
        unexplained_sections=frozenset(sections - built_sections - section_findings),
        links=links,
        clever_links=frozenset(clever_links),
    )


def held_rows(model: CanvasModel, night: Tonight) -> HeldRows:
    """The rows of ``night.held_schools`` that the invariant leaves out (see the module doc)."""
    if not night.held_schools:
        return HeldRows()
    courses = {
        c.sis_id
        for c in model.courses.values()
        if c.sis_id is not None and model.course_account(c.sis_id) in night.held_schools
    }
    sections = {
        s.sis_id
        for s in model.sections.values()
        if s.sis_id is not None and model.courses[s.course].sis_id in courses
    } | {s["id"] for s in night.records["sections"] if s["school"] in night.held_schools}
    placed: set[str] = set()
    tied: set[str] = set()
    for section in night.records["sections"]:
        for key, _role in ROSTER_ROLES:
            (tied if section["id"] in sections else placed).update(section.get(key) or [])
    for view in model.enrollment_views((ACTIVE,)):
        if view.course_id in courses and view.role != "observer" and view.user_id is not None:
            tied.add(view.user_id)
    tied |= {person for person, schools in night.hidden.items() if schools & night.held_schools}
    people = tied - placed
    observed: dict[str, set[str]] = {}
    for user in night.records["users"]:
        for link in (user["roles"].get("contact") or {}).get("student_relationships") or []:
            if link.get("type") in RELATIONSHIP_TYPES and link.get("student"):
                observed.setdefault(user["id"], set()).add(str(link["student"]))
    for observer, student in model.observer_links(ACTIVE):
        if observer is not None and student is not None:
            observed.setdefault(observer, set()).add(student)
    contacts = {c for c, students in observed.items() if students <= people and c not in placed}
    return HeldRows(frozenset(courses), frozenset(sections), frozenset(people | contacts))


def _healthy(want: Expected, held: HeldRows) -> Expected:
    """``want`` without the held schools' rows."""
    return dataclasses.replace(
        want,
        people={p: values for p, values in want.people.items() if p not in held.people},
        unexplained=want.unexplained - held.people,
        slots={
            (section, user, role): over
            for (section, user, role), over in want.slots.items()
            if section not in held.sections and user not in held.people
        },
        unexplained_sections=want.unexplained_sections - held.sections,
        links=frozenset(link for link in want.links if not held.link(*link)),
    )


def violations(model: CanvasModel, night: Tonight) -> list[str]:
    """Every way Canvas's state after ``night`` breaks the invariant (empty: it holds), the held schools'
    rows left out (:func:`held_rows`)."""
    held = held_rows(model, night)
    want = _healthy(expected(night), held)
    return [
        *_unbuilt(want),
        *_roster(model, want, held),
        *_people(model, want, held),
        *_observers(model, want, held),
        *_sign_in(model, want),
        *_coursework(model, night, want),
    ]


def _unbuilt(want: Expected) -> Iterable[str]:
    for person in sorted(want.unexplained):
        yield f"{want.kinds[person]} {person} is in Clever but not in users.csv, and no finding says why"
    for section in sorted(want.unexplained_sections):
        yield f"section {section} is in Clever but not in sections.csv, and no finding says why"


def _roster(model: CanvasModel, want: Expected, held: HeldRows) -> Iterable[str]:
    """Invariant 1 and the enrollment half of 2."""
    states: dict[Slot, str] = {}
    for view in model.enrollment_views():
        if view.role != "observer" and not held.enrollment(view):
            states[(str(view.section_id), str(view.user_id), view.role)] = view.state
    for (section, user, role), over in sorted(want.slots.items()):
        state = states.get((section, user, role))
        if not over and state != ACTIVE:
            yield (
                f"section {section}: {role} {user} is in Clever but has no active enrollment "
                f"(Canvas: {state or 'none'})"
            )
        elif over and state != CONCLUDED:
            yield (
                f"section {section} (its term has ended): {role} {user} should be concluded "
                f"(Canvas: {state or 'none'})"
            )
    for (section, user, role), state in sorted(states.items()):
        if (section, user, role) in want.clever_slots:
            continue
        if state == ACTIVE:
            yield f"section {section}: {role} {user} is active in Canvas but Clever no longer has them there"
        elif state == DELETED:
            yield (
                f"section {section}: {role} {user} was deleted, not concluded (Clever dropped them; the "
                f"configured removal is {ENROLLMENT_REMOVE_STATUS})"
            )


def _people(model: CanvasModel, want: Expected, held: HeldRows) -> Iterable[str]:
    """The people half of invariant 2: who is no longer built is suspended."""
    for user_id, state in sorted(model.user_states().items()):
        if user_id in want.people or user_id in want.excluded or user_id in held.people:
            continue
        if state == USER_REMOVE_STATUS:
            continue
        yield f"user {user_id} is {state} in Canvas, but Clever no longer has them (expected {USER_REMOVE_STATUS})"


def _observers(model: CanvasModel, want: Expected, held: HeldRows) -> Iterable[str]:
    """Invariant 3: links and observer enrollments only where Clever has the relationship."""
    active = model.observer_links(ACTIVE)
    for observer, student in sorted((str(o), str(s)) for o, s in active):
        if (observer, student) not in want.clever_links and not held.link(observer, student):
            yield f"observer {observer} still observes student {student} in Canvas, a link Clever no longer has"
    for observer, student in sorted(want.links - active):
        yield f"contact {observer}: the link to student {student} is in Clever but not active in Canvas"
    for view in model.enrollment_views((ACTIVE,)):
        if view.role != "observer" or held.enrollment(view):
            continue
        observer, student, section = str(view.user_id), str(view.associated_user_id), str(view.section_id)
        if (observer, student) not in want.clever_links:
            yield (
                f"section {section}: observer {observer} is enrolled for student {student}, a link Clever "
                "no longer has"
            )
        elif (section, student, "student") not in want.clever_slots:
            yield (
                f"section {section}: observer {observer} is enrolled for student {student}, who is not in "
                "that section in Clever"
            )


def _holders(model: CanvasModel, login: str) -> str:
    holders = model.login_holders(login)
    if not holders:
        return "no such login"
    return "; ".join(f"held by {state} user {sis_id}" for sis_id, state in holders)


def _sign_in(model: CanvasModel, want: Expected) -> Iterable[str]:
    """Invariant 4: each built person signs in, with a login of their own, as themself."""
    for person, values in sorted(want.people.items()):
        login = want.logins.get(person)
        if login is None:
            continue  # reported by _unbuilt
        if login.strip().lower() not in values:
            yield f"{want.kinds[person]} {person} was sent login_id '{login}', none of their Clever usernames or emails"
        if model.signs_in_as(login) != person:
            yield (
                f"{want.kinds[person]} {person} cannot sign in as '{login}' (Canvas: {_holders(model, login)})"
            )


def _coursework(model: CanvasModel, night: Tonight, want: Expected) -> Iterable[str]:
    """Invariant 5: tonight's imports deleted or emptied no course with coursework whose section Clever has."""
    for event in model.coursework_events:
        if event.import_id not in night.import_ids:
            continue
        if event.event == "section_moved":
            section = event.detail.split()[1]
            if section in want.sections:
                yield f"course {event.course_id} {LOST_COURSEWORK} and lost {event.detail}, which Clever still has"
        elif event.event == DELETED:
            held = night.course_sections.get(event.course_id, frozenset()) | set(
                model.course_sections(event.course_id, states=(ACTIVE, DELETED))
            )
            kept = sorted(held & want.sections)
            if kept:
                yield (
                    f"course {event.course_id} {LOST_COURSEWORK} and was deleted while Clever still has its "
                    f"section(s) {', '.join(kept)}"
                )
