"""The rules Canvas's importer applies to the files we write, restated from the spec so tests can check a build.

canvas-lms: a file's type from its header, first predicate wins (lib/sis/csv/import_refactored.rb and each
``lib/sis/csv/*_importer.rb``'s predicate), users.csv (lib/sis/user_importer.rb), user_observers.csv
(lib/sis/user_observer_importer.rb), change_sis_id.csv (lib/sis/change_sis_id_importer.rb), admins.csv
(lib/sis/admin_importer.rb). Each rule returns
the message Canvas would give, so a failing test says what Canvas would have said.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd

Predicate = Callable[[set[str]], bool]

# (importer, predicate) in Canvas's IMPORTERS order (lib/sis/csv/import_refactored.rb).
DETECTION: tuple[tuple[str, Predicate], ...] = (
    ("change_sis_id", lambda h: "old_id" in h or "old_integration_id" in h),
    ("account", lambda h: {"account_id", "parent_account_id"} <= h),
    ("term", lambda h: {"term_id", "name"} <= h),
    ("abstract_course", lambda h: {"abstract_course_id", "short_name"} <= h and "course_id" not in h),
    ("course", lambda h: {"course_id", "short_name"} <= h),
    ("section", lambda h: {"section_id", "name"} <= h),
    ("xlist", lambda h: {"xlist_course_id", "section_id"} <= h),
    (
        "user",
        lambda h: (
            {"user_id", "login_id"} <= h
            and not h & {"existing_user_id", "existing_integration_id", "existing_canvas_user_id"}
        ),
    ),
    ("login", lambda h: bool(h & {"existing_user_id", "existing_integration_id", "existing_canvas_user_id"})),
    (
        "enrollment",
        lambda h: bool(h & {"section_id", "course_id"}) and bool(h & {"user_id", "user_integration_id"}),
    ),
    ("admin", lambda h: {"account_id", "user_id"} <= h),
    ("group_category", lambda h: {"group_category_id", "category_name"} <= h),
    ("group", lambda h: {"group_id", "name"} <= h),
    ("user_observer", lambda h: {"observer_id", "student_id"} <= h),
)

FILE_TYPES = {
    "accounts.csv": "account",
    "terms.csv": "term",
    "courses.csv": "course",
    "sections.csv": "section",
    "users.csv": "user",
    "enrollments.csv": "enrollment",
    "user_observers.csv": "user_observer",
    "change_sis_id.csv": "change_sis_id",
    "admins.csv": "admin",
}
CHANGE_SIS_ID_TYPES = {"account", "term", "course", "section", "group", "group_category", "user"}


def detect(columns: pd.Index) -> str | None:
    header = {str(c).strip().lower() for c in columns}
    return next((name for name, predicate in DETECTION if predicate(header)), None)


def _blank(values: pd.Series) -> pd.Series:
    return values.fillna("").astype(str).str.strip() == ""


def canvas_messages(frames: Mapping[str, pd.DataFrame]) -> list[str]:
    """Every message Canvas would give for ``frames`` (file name -> rows, as written) under these rules."""
    out: list[str] = []
    for name, frame in frames.items():
        if detect(frame.columns) != FILE_TYPES[name]:
            out.append(f"{name}: read as {detect(frame.columns)!r}, not {FILE_TYPES[name]!r}")
    users = frames.get("users.csv")
    user_ids = set(users["user_id"]) if users is not None else set()
    if users is not None:
        logins = users["login_id"].str.lower()
        out += [f"No login_id given for user {u}" for u in users.loc[_blank(users["login_id"]), "user_id"]]
        out += [f"login_id {v} given twice" for v in logins[logins.duplicated()]]
        out += [f"user_id {v} given twice" for v in users.loc[users["user_id"].duplicated(), "user_id"]]
    observers = frames.get("user_observers.csv")
    if observers is not None:
        for row in observers.itertuples(index=False):
            if not str(row.observer_id).strip():
                out.append("No observer_id given for a user observer")
            elif row.observer_id not in user_ids:
                out.append(f"An observer referenced a non-existent user {row.observer_id}")
            if not str(row.student_id).strip():
                out.append("No user_id given for a user observer")
            elif row.student_id not in user_ids:
                out.append(f"A student referenced a non-existent user {row.student_id}")
            if row.status not in ("active", "deleted"):
                out.append(f'Improper status "{row.status}" for a user_observer')
            if row.observer_id == row.student_id:
                out.append(f"Can't observe yourself user {row.observer_id}")
        pairs = observers[["observer_id", "student_id"]]
        out += [
            f"observer link {tuple(p)} given twice" for p in pairs[pairs.duplicated()].itertuples(index=False)
        ]
    admins = frames.get("admins.csv")
    if admins is not None:
        accounts = frames.get("accounts.csv")
        account_ids = set(accounts["account_id"]) if accounts is not None else set()
        for row in admins.itertuples(index=False):
            if not str(row.user_id).strip():
                out.append("No user_id given for admin")
            elif row.user_id not in user_ids:
                out.append(f"Invalid or unknown user_id '{row.user_id}' for admin")
            if not str(row.account_id).strip():
                out.append(f"admin {row.user_id}: a blank account_id makes a root account admin")
            elif row.account_id not in account_ids:
                out.append("Invalid account_id given for admin")
            if row.status not in ("active", "deleted"):
                out.append(f"Invalid status {row.status} for admin")
        keys = admins[["user_id", "account_id"]]
        out += [f"admin {tuple(k)} given twice" for k in keys[keys.duplicated()].itertuples(index=False)]
    changes = frames.get("change_sis_id.csv")
    if changes is not None:
        for row in changes.to_dict(orient="records"):
            if not (row.get("old_id") or row.get("old_integration_id")):
                out.append("No old_id or old_integration_id given for change_sis_id")
            if not (row.get("new_id") or row.get("new_integration_id")):
                out.append("No new_id or new_integration_id given for change_sis_id")
            if not row.get("type"):
                out.append("No type given for change_sis_id")
            elif row["type"] not in CHANGE_SIS_ID_TYPES:
                out.append(f"Invalid type '{row['type']}' for change_sis_id")
        keys = changes[["type", "old_id"]]
        out += [
            f"change_sis_id {tuple(k)} given twice" for k in keys[keys.duplicated()].itertuples(index=False)
        ]
    return out
