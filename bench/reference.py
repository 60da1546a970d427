"""The reference: the script a district's IT person would write, with nothing but the standard library.

Fetch: every collection page by page in a simple loop (``urllib`` + ``json``), the records kept in lists of
dicts. Build: read a snapshot's JSON Lines with ``json``, map the records to rows (dicts) with the same rules
as ``clever2sis build`` with its default settings (docs/build.md, "What becomes what"; the login rule
included), write each file with ``csv.DictWriter`` and zip them with ``zipfile``.

It is here to give the benchmark an honest baseline and to check our output: :func:`compare` says, per
file, whether its rows equal ours. Intended differences from ``clever2sis build``:

* no findings and no build.json: the reference only writes the CSVs and the zip;
* only the default settings (``course_structure = "section"``, UTC, the default templates);
* the fetch keeps every record it is sent (no de-duplication by id) and writes no snapshot.

    python -m bench.reference build SNAPSHOT_DIR OUT_DIR
    python -m bench.reference fetch http://127.0.0.1:PORT
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

COLLECTIONS = ("districts", "schools", "terms", "courses", "sections", "users")
MAX_PAGES = 100_000
BUILD_ROLES = ("student", "teacher", "staff", "district_admin")
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
COLUMNS = {
    "accounts.csv": ["account_id", "parent_account_id", "name", "status"],
    "terms.csv": ["term_id", "name", "status", "start_date", "end_date"],
    "courses.csv": ["course_id", "short_name", "long_name", "account_id", "term_id", "status"],
    "sections.csv": ["section_id", "course_id", "name", "status"],
    "users.csv": ["user_id", "login_id", "first_name", "last_name", "email", "status"],
    "enrollments.csv": ["course_id", "section_id", "user_id", "role", "status"],
}


# -- fetch -------------------------------------------------------------------------------------------------


def fetch(base: str, token: str, page_size: int = 10_000) -> dict[str, list[dict[str, Any]]]:
    """Every record of every collection, following the ``next`` links."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in COLLECTIONS:
        url: str | None = (
            f"{base}/v3.0/{name}" if name == "districts" else f"{base}/v3.0/{name}?limit={page_size}"
        )
        records: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            if url is None:
                break
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=120) as response:
                page = json.loads(response.read())
            if not page["data"]:
                break
            records.extend(item["data"] for item in page["data"])
            url = next((base + link["uri"] for link in page["links"] if link["rel"] == "next"), None)
        out[name] = records
    return out


# -- build -------------------------------------------------------------------------------------------------


def load_snapshot(path: Path) -> dict[str, list[dict[str, Any]]]:
    records = {}
    for name in COLLECTIONS:
        with open(path / f"{name}.jsonl", encoding="utf-8") as lines:
            records[name] = [json.loads(line) for line in lines if line.strip()]
    return records


def s(value: Any) -> str:
    """A field as a string; missing is ``""``."""
    return "" if value is None else str(value)


def blank(value: str) -> bool:
    return value.strip() == ""


def slug(value: str) -> str:
    return re.sub(r"[^0-9a-z]+", "-", value.lower()).strip("-")


def first_of(*values: str) -> str:
    return next((value for value in values if value), "")


def canvas_date(value: str, clock: str) -> str:
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d").strftime(f"%Y-%m-%dT{clock}Z")
    except ValueError:
        return ""


def build(records: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, str]]]:
    """The rows of the six Canvas files (default settings)."""
    accounts = []
    school_account = {}
    for school in records["schools"]:
        account_id = s(school.get("id"))
        if blank(account_id) or account_id in school_account.values():
            continue
        name = s(school.get("name"))
        school_account[account_id] = account_id
        accounts.append(
            {
                "account_id": account_id,
                "parent_account_id": "",
                "name": account_id if blank(name) else name,
                "status": "active",
            }
        )

    terms: dict[str, dict[str, str]] = {}
    term_dates = {}
    term_map = {}
    for term in records["terms"]:
        start, end, name = s(term.get("start_date")), s(term.get("end_date")), s(term.get("name"))
        term_id = f"{start}_{end}_{slug(name)}"
        if not re.search(r"[0-9A-Za-z]", term_id):
            continue
        term_map[s(term.get("id"))] = term_id
        if term_id not in terms:
            terms[term_id] = {
                "term_id": term_id,
                "name": term_id if blank(name) else name,
                "status": "active",
                "start_date": canvas_date(start, "00:00:00") if start else "",
                "end_date": canvas_date(end, "23:59:59") if end else "",
            }
            term_dates[term_id] = (start, end)
    names: dict[str, int] = {}
    for row in terms.values():
        names[row["name"]] = names.get(row["name"], 0) + 1
    for term_id, row in terms.items():
        if names[row["name"]] > 1:
            start, end = term_dates[term_id]
            row["name"] = f"{row['name']} ({start} – {end})"

    courses_by_id = {s(course.get("id")): course for course in records["courses"]}
    courses = []
    sections = []
    section_course = {}
    for section in sorted(records["sections"], key=lambda section: s(section.get("id"))):
        section_id = s(section.get("id"))
        if blank(section_id) or section_id in section_course:
            continue
        course = courses_by_id.get(s(section.get("course")), {})
        period = s(section.get("period"))
        short = first_of(s(course.get("number")), s(course.get("name")), s(section.get("sis_id")))
        short += f" P{period}" if period else ""
        long = s(section.get("name"))
        if blank(long):
            long = short
        if blank(long):
            long = section_id
        if blank(short):
            short = long
        section_course[section_id] = section_id
        courses.append(
            {
                "course_id": section_id,
                "short_name": short,
                "long_name": long,
                "account_id": school_account.get(s(section.get("school")), ""),
                "term_id": term_map.get(s(section.get("term_id")), ""),
                "status": "active",
                "_sis_id": s(section.get("sis_id")),
                "_code": short,
            }
        )
        sections.append(
            {
                "section_id": section_id,
                "course_id": section_id,
                "name": long if blank(s(section.get("name"))) else s(section.get("name")),
                "status": "active",
            }
        )
    for tiebreak in ("_sis_id", "course_id"):
        counts: dict[str, int] = {}
        for course in courses:
            counts[course["short_name"]] = counts.get(course["short_name"], 0) + 1
        shared = [c for c in courses if counts[c["short_name"]] > 1 and not blank(c[tiebreak])]
        if not shared:
            break
        for course in shared:
            course["short_name"] = f"{course['_code']} ({course[tiebreak]})"
    for course in courses:
        del course["_sis_id"], course["_code"]

    users = [
        user
        for user in records["users"]
        if any(user.get("roles", {}).get(role) is not None for role in BUILD_ROLES)
    ]
    candidates = []
    for user in users:
        roles = user.get("roles", {})
        username = first_of(
            *(
                s(roles.get(role, {}).get("credentials", {}).get("district_username"))
                for role in BUILD_ROLES[:3]
            )
        )
        email = s(user.get("email")).strip()
        email = email if EMAIL_PATTERN.fullmatch(email) else ""
        candidates.append((username.strip(), email))
    logins: list[str | None] = [None] * len(users)
    given: set[str] = set()
    contested: set[str] = set()
    for field in range(2):
        open_ = [i for i in range(len(users)) if logins[i] is None and candidates[i][field]]
        counts = {}
        for i in open_:
            key = candidates[i][field].lower()
            counts[key] = counts.get(key, 0) + 1
        taken = given | contested
        for i in open_:
            key = candidates[i][field].lower()
            if counts[key] == 1 and key not in taken:
                logins[i] = candidates[i][field]
                given.add(key)
        contested |= {key for key, n in counts.items() if n > 1}
    user_rows = []
    for user, login, (_, email) in zip(users, logins, candidates, strict=True):
        if login is None or blank(s(user.get("id"))):
            continue
        name = user.get("name", {})
        user_rows.append(
            {
                "user_id": s(user.get("id")),
                "login_id": login,
                "first_name": s(name.get("first")),
                "last_name": s(name.get("last")),
                "email": email,
                "status": "active",
            }
        )
    built_users = {row["user_id"] for row in user_rows}

    enrollments = []
    seen = set()
    for section in records["sections"]:
        section_id = s(section.get("id"))
        if section_id not in section_course:
            continue
        roster = [(user_id, "student") for user_id in section.get("students") or []]
        roster += [(user_id, "teacher") for user_id in section.get("teachers") or []]
        for user_id, role in roster:
            if (
                isinstance(user_id, str)
                and user_id in built_users
                and (section_id, role, user_id) not in seen
            ):
                seen.add((section_id, role, user_id))
                enrollments.append(
                    {
                        "course_id": section_course[section_id],
                        "section_id": section_id,
                        "user_id": user_id,
                        "role": role,
                        "status": "active",
                    }
                )

    files = {
        "accounts.csv": accounts,
        "terms.csv": list(terms.values()),
        "courses.csv": courses,
        "sections.csv": sections,
        "users.csv": user_rows,
        "enrollments.csv": enrollments,
    }
    for rows in files.values():
        for row in rows:
            for key, value in row.items():
                if CONTROL.search(value):
                    row[key] = CONTROL.sub(" ", value).strip()
    known = {name: {row[COLUMNS[name][0]] for row in rows} for name, rows in files.items()}
    references = [
        ("courses.csv", "account_id", "accounts.csv", True),
        ("courses.csv", "term_id", "terms.csv", True),
        ("sections.csv", "course_id", "courses.csv", False),
        ("enrollments.csv", "course_id", "courses.csv", False),
        ("enrollments.csv", "section_id", "sections.csv", False),
        ("enrollments.csv", "user_id", "users.csv", False),
    ]
    for name, column, target, blank_ok in references:
        files[name] = [
            row for row in files[name] if row[column] in known[target] or (blank_ok and row[column] == "")
        ]
        known[name] = {row[COLUMNS[name][0]] for row in files[name]}
    return files


def write(files: dict[str, list[dict[str, str]]], out: Path) -> list[Path]:
    """Each file with rows as CSV in ``out/csv``, zipped into ``out/sis_import.zip``."""
    (out / "csv").mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in files.items():
        if not rows:
            continue
        path = out / "csv" / name
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS[name], lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        written.append(path)
    with zipfile.ZipFile(out / "sis_import.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in written:
            archive.write(path, path.name)
    return written


# -- check -------------------------------------------------------------------------------------------------


def compare(ours: Path, reference: Path) -> dict[str, dict[str, Any]]:
    """Per file: rows in each, and whether the sorted rows are equal (with a few rows only one side has).

    Rows are compared as CSV lines: after control characters are cleaned no field holds a line break, and
    both writers quote a field exactly when it holds a comma, a quote or a line break.
    """
    result = {}
    for name in COLUMNS:
        sides = []
        for directory in (ours, reference):
            path = directory / name
            lines = path.read_bytes().split(b"\n") if path.is_file() else [b""]
            sides.append((lines[0], sorted(line for line in lines[1:] if line)))
        (our_header, our_rows), (ref_header, ref_rows) = sides
        entry: dict[str, Any] = {
            "rows_ours": len(our_rows),
            "rows_reference": len(ref_rows),
            "equal": our_header == ref_header and our_rows == ref_rows,
        }
        if not entry["equal"]:
            only_ours = set(our_rows) - set(ref_rows)
            only_ref = set(ref_rows) - set(our_rows)
            entry["only_ours"] = [line.decode() for line in sorted(only_ours)[:3]]
            entry["only_reference"] = [line.decode() for line in sorted(only_ref)[:3]]
            entry["headers"] = [our_header.decode(), ref_header.decode()]
        result[name] = entry
    return result


def main(argv: list[str]) -> int:
    if argv[:1] == ["build"] and len(argv) == 3:
        write(build(load_snapshot(Path(argv[1]))), Path(argv[2]))
        return 0
    if argv[:1] == ["fetch"] and len(argv) == 2:
        records = fetch(argv[1], "reference-token")
        print({name: len(rows) for name, rows in records.items()})
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
