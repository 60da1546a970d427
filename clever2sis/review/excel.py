"""CSV copies of a build and its review made for spreadsheets: ``BUILD_DIR/review/``. Never uploaded.

Spreadsheets open a plain CSV by guessing: they read UTF-8 as another encoding, strip the leading zeros of
an id such as ``00123``, turn long digit strings into rounded numbers and ``1E5`` into 100000, and run a
cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula. The copies here are written so that none
of that happens:

- UTF-8 with a byte order mark, so the encoding is recognised;
- a value a spreadsheet would read as a number or a date is written as the text formula ``="00123"``,
  which shows exactly ``00123`` (quotes inside are doubled, so it can only ever be that text);
- any other value starting with a formula character gets a leading apostrophe (``'=1+2``), so it is
  shown, never run.

Files: the six Canvas files (``accounts.csv`` ...), ``findings.csv``, then for a sync run's build the
report's sections about what the night did beyond the CSVs, each only when the report has it (the same
facts, not found again): ``held_schools.csv`` (the schools the guard held or released, and the findings
it let through), ``identity_changes.csv`` (people carried over to a new id, other user SIS id changes, the
ambiguous matches) and ``observer_links.csv`` (the links removed and added, and how far each import
got); and, with an older build, ``changes.csv`` (one row per added row, removed row and changed field).

Beside them, ``review.xlsx`` holds the same tables as an Excel workbook, one sheet per file (``findings``,
``held_schools``, ...). There no trick is needed: every cell is a text cell, written as it was
sent, so ``00123`` keeps its zeros and ``2026-08-17`` stays text; a value starting with ``=``, ``+``,
``-`` or ``@`` is a text cell with Excel's quote prefix (shown as typed, never run, even once edited), and
the workbook holds no formula at all. It is written with XlsxWriter in its constant-memory mode (each row
is written out as it is added, so a million-row sheet does not sit in memory); a file longer than a sheet
(1,048,575 rows under the header) continues on ``<name> (2)``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from clever2sis.atomic import atomic_directory
from clever2sis.build_dir import BuildDir
from clever2sis.errors import ReviewError
from clever2sis.review.facts import DERIVED, BuildView
from clever2sis.review.identities import other_sis_id_changes
from clever2sis.review.report import OBSERVER_KINDS, guard_section, losses_text
from clever2sis.sis import files

WORKBOOK_NAME = "review.xlsx"
SHEET_MAX_ROWS = 1_048_576  # Excel's rows per sheet, the header included
SHEET_NAME_MAX_CHARS = 31
FINDINGS_NAME = "findings.csv"
CHANGES_NAME = "changes.csv"
HELD_SCHOOLS_NAME = "held_schools.csv"
IDENTITY_CHANGES_NAME = "identity_changes.csv"
OBSERVER_LINKS_NAME = "observer_links.csv"
README_NAME = "README.txt"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
_NUMBER_OR_DATE = re.compile(
    r"""\s*(
        [-+]?(\d[\d,]*\.?\d*|\.\d+)([eE][-+]?\d+)?%?    # 00123, 1,234, 1.5, 1E5, 12%
      | \d{1,4}[-/.]\d{1,2}([-/.]\d{1,4})?              # 2026-08-17, 8/17, 17.08.2026
      | \d{1,2}:\d{2}(:\d{2})?                           # 10:30
    )\s*""",
    re.VERBOSE,
)
README = """\
Spreadsheet copies made by `clever2sis review --excel`. Never uploaded: Canvas gets sis_import.zip.
review.xlsx: the same tables as an Excel workbook, every cell text exactly as sent (no formulas).
The CSVs: values a spreadsheet would turn into numbers or dates are written as ="value" so they stay as
sent; values starting with = + - @ are prefixed with an apostrophe so they are shown, not run.
"""
ABOUT = (
    ("Made by `clever2sis review --excel`. Never uploaded: Canvas gets sis_import.zip.",),
    ("Every cell is text, exactly as the build sends it; the workbook holds no formulas.",),
    ("One sheet per Canvas file, then findings; a sync run's build: held_schools, identity_changes and",),
    ("observer_links (each when its report has the section); against an older build: changes.",),
)


def spreadsheet_cell(value: Any) -> str:
    """``value`` as a cell that a spreadsheet shows exactly and never evaluates."""
    text = "" if value is None else str(value)
    if not text:
        return text
    if _NUMBER_OR_DATE.fullmatch(text):
        return '="' + text.replace('"', '""') + '"'
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def spreadsheet_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A CSV for spreadsheets: UTF-8 with BOM, CRLF line ends, every cell made safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([spreadsheet_cell(name) for name in header])
    writer.writerows([spreadsheet_cell(value) for value in row] for row in rows)
    return buffer.getvalue().encode("utf-8-sig")


def _change_rows(diff: Mapping[str, Any]) -> Iterable[list[Any]]:
    for name in (name for name in files.FILE_ORDER if name in diff):
        entry = diff[name]
        key = entry["key"]
        for change in ("added", "removed"):
            for row in entry["rows"][change]:
                values = "; ".join(f"{c}={row[c]}" for c in row if c not in key)
                before, after = ("", values) if change == "added" else (values, "")
                yield [name, change, *(row.get(k, "") for k in key), "", before, after]
        for row in entry["rows"]["changed"]:
            for field in row["changes"]:
                old = field.get("old_names") or field["old"]
                new = field.get("new_names") or field["new"]
                yield [name, "changed", *(row["key"].get(k, "") for k in key), field["field"], old, new]


FINDINGS_HEADER = ["kind", "severity", "file", "record_id", "name", "message"]
CHANGES_HEADER = ["file", "change", "key_1", "key_2", "key_3", "field", "before", "after"]
HELD_SCHOOLS_HEADER = ["status", "account_id", "school_id", "name", "since", "reason", "lost", "release"]
IDENTITY_CHANGES_HEADER = [
    "change",
    "new_id",
    "old_id",
    "name",
    "school",
    "school_ids",
    "keys",
    "via",
    "removed_on",
]
OBSERVER_LINKS_HEADER = [
    "change",
    "status",
    "sis_import_id",
    "import_state",
    "observer_id",
    "observer_name",
    "student_id",
    "student_name",
    "school",
    "school_ids",
]
# The ``status`` of a held_schools row and the ``change`` of an identity_changes row.
HELD, RELEASED, LET_THROUGH = "held", "released", "let through"
CARRIED, OTHER_SIS_ID, AMBIGUOUS = "carried over", "other SIS id change", "ambiguous"
Table = tuple[str, Sequence[str], Iterable[Sequence[Any]]]


def _held_school_rows(guard: Mapping[str, Any]) -> list[list[Any]]:
    """The held schools' section as rows: each school held tonight (with the option that releases it),
    each one released tonight, then each finding ``--allow-large-change`` let through (under ``reason``)."""
    rows = [
        [
            status,
            *(school.get(field, "") for field in ("account_id", "school_id", "name", "since", "reason")),
            losses_text(school),
            school.get("release", "") if status == HELD else "",
        ]
        for status, schools in ((HELD, guard["held"]), (RELEASED, guard["released"]))
        for school in schools
    ]
    return rows + [[LET_THROUGH, "", "", "", "", message, "", ""] for message in guard["findings"]]


def _identity_rows(found: Mapping[str, Any]) -> list[list[Any]]:
    """The identity changes' section as rows: who was carried over (old_id -> new_id), the other user SIS
    id changes, then the ambiguous matches (``old_id``: the removed users each shares keys with)."""
    fields = IDENTITY_CHANGES_HEADER[1:]
    parts = (
        (CARRIED, found.get("carried_users") or []),
        (OTHER_SIS_ID, other_sis_id_changes(found)),
        (
            AMBIGUOUS,
            [{**row, "old_id": row.get("old_ids", "")} for row in found.get("ambiguous_users") or []],
        ),
    )
    return [[change, *(row.get(field, "") for field in fields)] for change, rows in parts for row in rows]


def _observer_rows(links: Mapping[str, Any]) -> list[list[Any]]:
    """The observer links' section as rows: the links removed, then those added, each with how far its
    import got (``status``: planned, sent, not sent) and, once sent, the sis_import's id and state."""
    fields = OBSERVER_LINKS_HEADER[4:]
    rows = []
    for kind in OBSERVER_KINDS:
        posted = links["import"][kind] or {}
        sent = [kind, links["status"][kind], posted.get("sis_import_id"), posted.get("import_state")]
        rows += [[*sent, *(link.get(field, "") for field in fields)] for link in links[kind]]
    return rows


def _sync_tables(facts: Mapping[str, Any]) -> Iterable[Table]:
    """The tables of the report's sections about a sync night, each only when the report shows it."""
    guard = guard_section(facts)
    if guard is not None:
        yield HELD_SCHOOLS_NAME, HELD_SCHOOLS_HEADER, _held_school_rows(guard)
    if facts.get("identities"):
        yield IDENTITY_CHANGES_NAME, IDENTITY_CHANGES_HEADER, _identity_rows(facts["identities"])
    if facts.get("observer_links"):
        yield OBSERVER_LINKS_NAME, OBSERVER_LINKS_HEADER, _observer_rows(facts["observer_links"])


def _tables(view: BuildView, facts: Mapping[str, Any]) -> Iterable[Table]:
    """(file name, header, rows) of every table the copies hold, in order."""
    for name in files.FILE_ORDER:
        if name not in (view.record.files or {}):
            continue
        frame = view.frames[name]
        columns = [c for c in frame.columns if c not in DERIVED.get(name, ())]
        yield name, columns, frame[columns].itertuples(index=False, name=None)
    findings = [
        [kind, entry["severity"], item["file"], item["record_id"], item["name"], item["message"]]
        for kind, entry in facts["findings"]["by_kind"].items()
        for item in entry["items"]
    ]
    yield FINDINGS_NAME, FINDINGS_HEADER, findings
    yield from _sync_tables(facts)
    if facts.get("diff"):
        yield CHANGES_NAME, CHANGES_HEADER, [_padded(row) for row in _change_rows(facts["diff"])]


def write_spreadsheet_copies(view: BuildView, facts: Mapping[str, Any]) -> Path:
    """Write ``BUILD_DIR/review/`` (replacing an older one once the new one is complete).

    A file that cannot be written is a :class:`~clever2sis.errors.ReviewError` naming the directory and
    the file; an older ``review/`` is then left as it was.
    """
    out = BuildDir(view.path).review_dir
    try:
        _write_copies(out, view, facts)
    except OSError as error:
        name = f" ({Path(error.filename).name})" if error.filename else ""
        raise ReviewError(
            f"cannot write the spreadsheet copies {out}: {error.strerror or error}{name}"
        ) from None
    return out


def _write_copies(out: Path, view: BuildView, facts: Mapping[str, Any]) -> None:
    with atomic_directory(out, replace=True) as tmp:
        (tmp / README_NAME).write_text(README, encoding="utf-8")
        for name, header, rows in _tables(view, facts):
            (tmp / name).write_bytes(spreadsheet_csv(header, rows))
        write_workbook(tmp / WORKBOOK_NAME, _tables(view, facts))


def write_workbook(path: Path, tables: Iterable[Table]) -> None:
    """An .xlsx workbook at ``path``: a sheet per table (see the module docstring), every cell text."""
    import xlsxwriter

    options = {
        "constant_memory": True,
        "strings_to_numbers": False,
        "strings_to_formulas": False,
        "strings_to_urls": False,
    }
    with xlsxwriter.Workbook(str(path), options) as book:
        bold = book.add_format({"bold": True})
        quoted = book.add_format({"quote_prefix": True})
        about = book.add_worksheet("about")
        for number, (line,) in enumerate(ABOUT):
            about.write_string(number, 0, line)
        for name, header, rows in tables:
            _write_sheets(book, name.removesuffix(".csv"), header, rows, bold, quoted)


def _write_sheets(
    book: Any, title: str, header: Sequence[str], rows: Iterable[Sequence[Any]], bold: Any, quoted: Any
) -> None:
    """One table on as many sheets as it needs (``title``, ``title (2)``, ...), a header row on each."""
    sheet, number, row_number = None, 0, SHEET_MAX_ROWS
    for row in rows:
        if row_number == SHEET_MAX_ROWS:
            number += 1
            sheet = _new_sheet(book, title if number == 1 else f"{title} ({number})", header, bold)
            row_number = 1
        assert sheet is not None
        for column, value in enumerate(row):
            text = "" if value is None else str(value)
            if text:
                sheet.write_string(
                    row_number, column, text, quoted if text.startswith(FORMULA_STARTS) else None
                )
        row_number += 1
    if sheet is None:
        _new_sheet(book, title, header, bold)


def _new_sheet(book: Any, title: str, header: Sequence[str], bold: Any) -> Any:
    sheet = book.add_worksheet(title[:SHEET_NAME_MAX_CHARS])
    for column, name in enumerate(header):
        sheet.set_column(column, column, max(12, min(len(name) + 4, 40)))
        sheet.write_string(0, column, name, bold)
    sheet.freeze_panes(1, 0)
    return sheet


def _padded(row: list[Any]) -> list[Any]:
    """Line up key columns (one to three of them) under key_1..key_3."""
    name, change, *rest = row
    key_count = len(rest) - 3
    keys = rest[:key_count] + [""] * (3 - key_count)
    return [name, change, *keys, *rest[key_count:]]
