"""The Canvas SIS CSV files clever2sis writes: names, headers and processing order.

Headers are fixed per file (and per setting where a column is optional) because Canvas's diffing compares
files by name and header set, and detects each file's type from its header alone (canvas-lms
``lib/sis/csv/import_refactored.rb`` and each ``lib/sis/csv/*_importer.rb``): no column may trigger an
earlier importer's predicate, so courses and enrollments never carry ``name``, accounts always carry
``parent_account_id``, and admins.csv (``account_id`` and ``user_id``: ``lib/sis/csv/admin_importer.rb``)
never carries ``course_id`` or ``section_id``, which would make it an enrollments file.
"""

from __future__ import annotations

CHANGE_SIS_ID = "change_sis_id.csv"
ACCOUNTS = "accounts.csv"
TERMS = "terms.csv"
COURSES = "courses.csv"
SECTIONS = "sections.csv"
USERS = "users.csv"
ENROLLMENTS = "enrollments.csv"
ADMINS = "admins.csv"
USER_OBSERVERS = "user_observers.csv"

# Canvas processes files in a fixed order whatever the zip holds; we write and zip them in that order too.
FILE_ORDER = (CHANGE_SIS_ID, ACCOUNTS, TERMS, COURSES, SECTIONS, USERS, ENROLLMENTS, ADMINS, USER_OBSERVERS)
# Files a review lists only when one of the builds it compares wrote them: admins.csv is opt-in, and a review
# of builds without it says nothing of it.
LISTED_WHEN_BUILT = frozenset({ADMINS})

COLUMNS: dict[str, tuple[str, ...]] = {
    CHANGE_SIS_ID: ("old_id", "new_id", "type"),
    ACCOUNTS: ("account_id", "parent_account_id", "name", "status"),
    TERMS: ("term_id", "name", "status", "start_date", "end_date"),
    COURSES: ("course_id", "short_name", "long_name", "account_id", "term_id", "status"),
    SECTIONS: ("section_id", "course_id", "name", "status"),
    USERS: ("user_id", "login_id", "first_name", "last_name", "email", "status"),
    ENROLLMENTS: ("course_id", "section_id", "user_id", "role", "status"),
    ADMINS: ("user_id", "account_id", "role", "status"),
    USER_OBSERVERS: ("observer_id", "student_id", "status"),
}

# The key each file's rows are sorted by (so output is stable and diffs stay small).
SORT_KEYS: dict[str, tuple[str, ...]] = {
    CHANGE_SIS_ID: ("type", "old_id"),
    ACCOUNTS: ("account_id",),
    TERMS: ("term_id",),
    COURSES: ("course_id",),
    SECTIONS: ("section_id",),
    USERS: ("user_id",),
    ENROLLMENTS: ("course_id", "section_id", "role", "user_id"),
    ADMINS: ("account_id", "user_id", "role"),
    USER_OBSERVERS: ("observer_id", "student_id"),
}
