"""Every check a build makes, declared once: the finding's kind, severity, file and message template.

A builder decides which rows fail and computes the values a message names; what the finding says is here,
so an admin's view of a build (build.json, the review report, docs/build.md's table of kinds) reads the same
texts. A kind may have several messages (a login lost and replaced, a login lost for good), always with one
severity. ``WARNING`` is for what to fix in the SIS (``--strict`` fails on it), ``INFO`` for what the build
handled by a documented rule (see :mod:`clever2sis.sis.findings`).
"""

from __future__ import annotations

from clever2sis.sis import files
from clever2sis.sis.findings import INFO, WARNING, Check

_declared: list[Check] = []


def _check(kind: str, severity: str, file: str | None, message: str) -> Check:
    """Declare a check (a kind keeps one severity wherever it is declared)."""
    check = Check(kind, severity, file, message)
    for other in _declared:
        if other.kind == kind and other.severity != severity:
            raise ValueError(f"finding kind {kind} is declared both {other.severity} and {severity}")
    _declared.append(check)
    return check


# accounts.csv
ACCOUNT_WITHOUT_ID = _check(
    "account_without_id", WARNING, files.ACCOUNTS, "school {school} renders an empty account_id; left out"
)
DUPLICATE_ACCOUNT_ID = _check(
    "duplicate_account_id",
    WARNING,
    files.ACCOUNTS,
    "school {school}: account_id '{account_id}' is already used by another school; left out",
)

# terms.csv
TERM_WITHOUT_ID = _check(
    "term_without_id",
    WARNING,
    files.TERMS,
    "term {term} has no name or dates to derive a term_id from; its sections go to the fallback term",
)
BAD_DATE = _check(
    "bad_date",
    WARNING,
    files.TERMS,
    "term {term}: start_date '{start_date}' or end_date '{end_date}' is not YYYY-MM-DD; sent without it",
)
TERMS_MERGED = _check(
    "terms_merged",
    INFO,
    files.TERMS,
    "term {term} has the same name and dates as another Clever term; both are Canvas term '{term_id}'",
)
# A re-created term (Clever gives a term a new id when its dates change): {term} is tonight's Clever term,
# {term_id} the Canvas term_id it derives, {old_term_id} the Canvas term its sections were in before.
TERM_RECREATED = _check(
    "term_recreated",
    INFO,
    files.TERMS,
    "term {term} re-creates Canvas term '{old_term_id}' (its sections were all in it, and no Clever term "
    "gives it any more): it keeps that term_id, with dates {old_start_date} – {old_end_date} now "
    "{start_date} – {end_date}",
)
TERM_NOT_KEPT_CLAIMED = _check(
    "term_not_kept",
    INFO,
    files.TERMS,
    "term {term}: its sections were in Canvas term '{old_term_id}', and so were those of new Canvas term(s) "
    "{others}; a term_id is kept by one new term only, so this is new Canvas term '{term_id}'",
)
TERM_NOT_KEPT_SPLIT = _check(
    "term_not_kept",
    INFO,
    files.TERMS,
    "term {term}: its sections were in several Canvas terms ({old_term_ids}); a term_id is kept only when "
    "they were all in one, so this is new Canvas term '{term_id}'",
)

# courses.csv and sections.csv (the section plan): {fallback_term} is "fallback term '<id>'" or "the default
# term"
SECTION_UNKNOWN_TERM = _check(
    "section_unknown_term",
    WARNING,
    files.COURSES,
    "section {section}: term {term} is not in the snapshot's terms; its course goes to {fallback_term}",
)
SECTION_WITHOUT_TERM = _check(
    "section_without_term",
    INFO,
    files.COURSES,
    "section {section} has no term; its course goes to {fallback_term}",
)
SECTION_UNKNOWN_COURSE = _check(
    "section_unknown_course",
    WARNING,
    files.COURSES,
    "section {section}: course {course} is not in the snapshot's courses; named from the section",
)
SECTION_WITHOUT_COURSE = _check(
    "section_without_course", INFO, files.COURSES, "section {section} has no course; named from the section"
)
SECTION_UNKNOWN_SCHOOL = _check(
    "section_unknown_school",
    WARNING,
    files.COURSES,
    "section {section}: school {school} is not in the snapshot's schools (or has no account); its course "
    "goes in the root account",
)
SECTION_WITHOUT_ID = _check(
    "section_without_id",
    WARNING,
    files.SECTIONS,
    "section {section} renders an empty section_id or course_id; left out",
)
DUPLICATE_SECTION_ID = _check(
    "duplicate_section_id",
    WARNING,
    files.SECTIONS,
    "section {section}: section_id '{section_id}' is already used by another section; left out",
)

# users.csv ({user} and {contact} are Clever ids; a contact is an observer)
INVALID_EMAIL = _check(
    "invalid_email",
    WARNING,
    files.USERS,
    "user {user}: email '{email}' is not a valid address; sent without an email",
)
EMAIL_TOO_LONG = _check(
    "invalid_email",
    WARNING,
    files.USERS,
    "user {user}: email '{email}' is {length} characters, more than the {limit} Canvas stores; sent without "
    "an email",
)
EMAIL_CONTROL_CHARACTERS = _check(
    "invalid_email",
    WARNING,
    files.USERS,
    "user {user}: email '{email}' holds control characters, which the build removes from every value; sent "
    "without an email",
)
DUPLICATE_LOGIN_REPLACED = _check(
    "duplicate_login",
    WARNING,
    files.USERS,
    "user {user}: login_id '{value}' ({field}) {reason}; sent with login_id '{login_id}' instead",
)
DUPLICATE_LOGIN_LEFT_OUT = _check(
    "duplicate_login",
    WARNING,
    files.USERS,
    "user {user}: login_id '{value}' ({field}) {reason}, and no other login field is usable; left out",
)
MISSING_LOGIN = _check(
    "missing_login",
    WARNING,
    files.USERS,
    "user {user} has no usable login_id ({login_id_fields}); left out",
)
# {reason}: "is 150 characters long, more than the 100 Canvas takes" or "holds U+2028 (LINE SEPARATOR), which
# Canvas does not take in a login" (the login rule, sis/builders/logins.py)
UNUSABLE_LOGIN_REPLACED = _check(
    "unusable_login",
    WARNING,
    files.USERS,
    "user {user}: login_id '{value}' ({field}) {reason}; sent with login_id '{login_id}' instead",
)
UNUSABLE_LOGIN_LEFT_OUT = _check(
    "missing_login",
    WARNING,
    files.USERS,
    "user {user}: login_id '{value}' ({field}) {reason}, and no other login field is usable; left out",
)
OBSERVER_MISSING_LOGIN = _check(
    "observer_missing_login",
    WARNING,
    files.USERS,
    "contact {contact} has no usable login_id (observers.login_id '{login_id_template}' renders empty); "
    "left out",
)
OBSERVER_UNUSABLE_LOGIN = _check(
    "observer_missing_login",
    WARNING,
    files.USERS,
    "contact {contact}: login_id '{value}' (observers.login_id) {reason}; left out",
)
OBSERVER_WITHOUT_STUDENTS = _check(
    "observer_without_students",
    INFO,
    files.USERS,
    "contact {contact}: none of the students it observes is in users.csv; left out",
)
USER_WITHOUT_ID = _check(
    "user_without_id", WARNING, files.USERS, "user {user} renders an empty user_id; left out"
)
DUPLICATE_USER_ID = _check(
    "duplicate_user_id",
    WARNING,
    files.USERS,
    "user {user}: user_id '{user_id}' is already used by another user; left out",
)
# A login Canvas still holds for a removed user the sync does not carry over to this one (see
# clever2sis/sync/identities.py); {claimant} is that user's user_id, {removed_on} the night it was removed.
LOGIN_CLAIMED_REPLACED = _check(
    "login_claimed_by_removed_user",
    WARNING,
    files.USERS,
    "user {user}: login_id '{value}' ({field}) is still held in Canvas by removed user {claimant} (removed "
    "{removed_on}), who is not carried over to this user; sent with login_id '{login_id}' instead",
)
LOGIN_CLAIMED_LEFT_OUT = _check(
    "login_claimed_by_removed_user",
    WARNING,
    files.USERS,
    "user {user}: login_id '{value}' ({field}) is still held in Canvas by removed user {claimant} (removed "
    "{removed_on}), who is not carried over to this user, and no other login field is usable; left out",
)
# A sync's identity changes ({new_id}: tonight's user_id; {old_id}: the Canvas user it is; {keys}: the keys
# they share, e.g. "login_id, sis_id"; {when}: "gone tonight" or "removed <night>").
IDENTITY_CARRIED = _check(
    "identity_carried",
    INFO,
    files.USERS,
    "user {user}: user_id '{new_id}' is Canvas user '{old_id}' ({when}; the same {keys}); carried over "
    "with {via}, so the person keeps their Canvas account, enrollments and coursework",
)
IDENTITY_AMBIGUOUS = _check(
    "identity_ambiguous",
    WARNING,
    files.USERS,
    "user {user}: user_id '{new_id}' shares {keys} with Canvas user(s) {old_ids}, which Clever no longer "
    "has, but not one to one; not carried over, so Canvas makes a new user",
)
CONTACTS_NOT_BUILT = _check(
    "contacts_not_built",
    INFO,
    files.USERS,
    "{count} contact(s) are not built as Canvas users (parents as observers are a separate option)",
)
CONTACTS_NOT_OBSERVERS = _check(
    "contacts_not_built",
    INFO,
    files.USERS,
    "{count} contact(s) have no relationship of type {relationship_types} to a student of the build",
)

# enrollments.csv ({role} is the Canvas role the roster entry would have had)
ENROLLMENT_UNKNOWN_USER = _check(
    "enrollment_unknown_user",
    WARNING,
    files.ENROLLMENTS,
    "section {section}: {role} {user} is not in the snapshot's users; enrollment left out",
)
ENROLLMENT_USER_NOT_BUILT = _check(
    "enrollment_user_not_built",
    WARNING,
    files.ENROLLMENTS,
    "section {section}: {role} {user} is not in users.csv (see that user's findings, or the user_roles "
    "setting); enrollment left out",
)
ENROLLMENT_SECTION_NOT_BUILT = _check(
    "enrollment_section_not_built",
    WARNING,
    files.ENROLLMENTS,
    "section {section} is not in sections.csv; {role} {user} not enrolled",
)

# user_observers.csv
OBSERVER_UNKNOWN_STUDENT = _check(
    "observer_unknown_student",
    WARNING,
    files.USER_OBSERVERS,
    "contact {contact}: student {student} is not a student in the snapshot's users; link left out",
)
OBSERVER_STUDENT_NOT_BUILT = _check(
    "observer_student_not_built",
    WARNING,
    files.USER_OBSERVERS,
    "contact {contact}: student {student} is not in users.csv (see that user's findings, or the user_roles "
    "setting); link left out",
)
OBSERVER_SELF = _check(
    "observer_self",
    INFO,
    files.USER_OBSERVERS,
    "contact {contact}: the link to student {student} would have the student observe themself (relationship "
    "'{relationship}'); link left out",
)
OBSERVER_NOT_BUILT = _check(
    "observer_not_built",
    INFO,
    files.USER_OBSERVERS,
    "contact {contact} is not in users.csv (see its findings); link to student {student} left out",
)
DUPLICATE_OBSERVER_LINK = _check(
    "duplicate_observer_link",
    INFO,
    files.USER_OBSERVERS,
    "contact {contact}: link to student {student} is listed more than once (relationship '{relationship}', "
    "type '{type}'); sent once",
)

# admins.csv ([admins] enabled): {what} is "school admin" or "district admin"
ADMIN_USER_NOT_BUILT = _check(
    "admin_user_not_built",
    WARNING,
    files.ADMINS,
    "{what} {user} is not in users.csv (see that user's findings, or the user_roles setting); not made an "
    "admin",
)
ADMIN_WITHOUT_SCHOOL = _check(
    "admin_without_school",
    WARNING,
    files.ADMINS,
    "school admin {user} (title '{title}') has no schools in Clever (roles.staff.schools); not made an admin",
)
ADMIN_SCHOOL_NOT_BUILT = _check(
    "admin_school_not_built",
    WARNING,
    files.ADMINS,
    "school admin {user}: school {school} is not in accounts.csv (not in the snapshot, or see its "
    "findings); not made an admin there",
)
DUPLICATE_ADMIN = _check(
    "duplicate_admin",
    INFO,
    files.ADMINS,
    "user {user} would be an admin of account '{account_id}' as both '{role}' and '{other_role}'; sent once, "
    "as '{role}' (Canvas pairs the rows of admins.csv by user_id and account_id)",
)

# change_sis_id.csv (--id-map): {type} is user, course or section; {clever_id} the id map's new_id
ID_MAP_NOT_BUILT = _check(
    "id_map_not_built",
    WARNING,
    files.CHANGE_SIS_ID,
    "{type} {old_id}: Clever record {clever_id} is not in {target_file}; its SIS id is not changed",
)
ID_MAP_SEVERAL_COURSES = _check(
    "id_map_not_built",
    WARNING,
    files.CHANGE_SIS_ID,
    "course {old_id}: Clever course {clever_id} is several Canvas courses (one per school and term); its SIS "
    "id is not changed",
)
ID_MAP_CONFLICT = _check(
    "id_map_conflict",
    WARNING,
    files.CHANGE_SIS_ID,
    "{type} {old_id} -> {new_id}: the id map gives this old id twice, this new id twice, or this new id as "
    "another old id; not changed",
)

# Every built file, checked as Canvas's importer would read it: {id} is the row's first column.
CONTROL_CHARACTERS = _check(
    "control_characters",
    WARNING,
    None,
    "{file} {id_column} {id}: control characters removed from {column}",
)
# ... and fitted to what Canvas stores (sis/lengths.py): {length} and {limit} are in characters.
VALUE_TOO_LONG = _check(
    "value_too_long",
    WARNING,
    None,
    "{file} {id_column} {id}: {column} is {length} characters, more than the {limit} Canvas stores; cut to "
    "{limit}",
)
NAME_PAIR_TOO_LONG = _check(
    "value_too_long",
    WARNING,
    None,
    "{file} {id_column} {id}: first_name and last_name are {length} characters together, more than the "
    "{limit} Canvas stores in the name made of them; the longer cut to fit",
)
ID_TOO_LONG = _check(
    "id_too_long",
    WARNING,
    None,
    "{file} {id_column} {id}: {column} is {length} characters, more than the {limit} Canvas stores, and an "
    "id cannot be cut safely; row left out",
)
DANGLING_REFERENCE = _check(
    "dangling_reference",
    WARNING,
    None,
    "{file} {id_column} {id}: {column} '{value}' is not in {target}; row left out",
)

# The snapshot, as it is loaded: about its {collection}.jsonl (see clever2sis.clever.frames).
MALFORMED_RECORD = _check(
    "malformed_record",
    WARNING,
    None,
    "{collection} record {record_id} (line {line}): {problem}; left out of the build",
)

CHECKS: tuple[Check, ...] = tuple(_declared)
