"""The review report: the facts rendered as one self-contained HTML file (``templates/report.html.j2``).

The file opens offline in any browser: inline CSS, a little inline JavaScript, inline SVG charts, and no
reference to anything outside it. Every value goes through jinja2's autoescaping, so a name such as
``<script>`` shows as text. It reads top down as the document a district admin signs:

- the verdict (:mod:`clever2sis.review.verdict`), each line linking to the table it counts;
- a table of contents with the counts, then collapsible sections: provenance, counts (per school, each
  school linking to the school filter), findings by kind, then for a sync run's build what the night did
  beyond the CSVs (the schools its guard held or released, identity changes, observer links removed and
  added; each only when the build has it), the changes per file, and the sign-off;
- a school filter that narrows every findings and changes table to one school's rows, and per table a
  text filter and sortable headings;
- a print stylesheet: every section expanded, no controls, rows not cut across pages.

Tables show at most :data:`ROW_LIMIT` rows, with a note; ``review --json`` and ``review --excel`` hold
every row. A table of more than :data:`OPEN_ROW_LIMIT` rows starts folded, and one of more than
:data:`PAGE_ROWS` shows that many rows at a time (filters and sorting apply to all of them; print shows
every row), so the page opens, and a sort lays out, fast.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from clever2sis import __version__
from clever2sis.atomic import atomic_write_bytes
from clever2sis.build_dir import BuildDir
from clever2sis.errors import ReviewError
from clever2sis.review.identities import CLAIMED, other_sis_id_changes
from clever2sis.review.names import FOUND_IN_BUILD, ID_SEPARATOR
from clever2sis.review.verdict import (
    CHANGE_ORDER,
    HELD_ANCHOR,
    IDENTITIES_ANCHOR,
    diff_anchor,
    finding_anchor,
    observer_anchor,
)
from clever2sis.sis import files

TEMPLATE_NAME = "report.html.j2"
ROW_LIMIT = 10_000
OPEN_ROW_LIMIT = 1_000
PAGE_ROWS = 500
CHART_BAR_WIDTH = 360
CHART_ROW_HEIGHT = 18
CHART_LABEL_WIDTH = 220
NO_SCHOOL = "-"


def templates_dir() -> Path:
    """The templates shipped inside the wheel, or the repository's ``templates/`` in a checkout."""
    installed = Path(__file__).resolve().parents[1] / "_templates"
    return installed if installed.is_dir() else Path(__file__).resolve().parents[2] / "templates"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def bar_chart(rows: Sequence[tuple[str, Mapping[str, int]]], series: Sequence[str]) -> dict[str, Any]:
    """Geometry of a horizontal grouped bar chart: one group per row, one bar per series."""
    peak = max((value for _, values in rows for value in values.values()), default=0) or 1
    bar_height = CHART_ROW_HEIGHT
    group_height = bar_height * len(series) + 8
    groups = []
    for index, (label, values) in enumerate(rows):
        top = index * group_height
        bars = [
            {
                "series": name,
                "series_index": position,
                "value": int(values.get(name, 0)),
                "y": top + position * bar_height,
                "width": round(CHART_BAR_WIDTH * int(values.get(name, 0)) / peak, 1),
            }
            for position, name in enumerate(series)
        ]
        groups.append({"label": label, "y": top, "bars": bars})
    return {
        "series": list(series),
        "groups": groups,
        "label_width": CHART_LABEL_WIDTH,
        "bar_width": CHART_BAR_WIDTH,
        "bar_height": bar_height - 3,
        "width": CHART_LABEL_WIDTH + CHART_BAR_WIDTH + 80,
        "height": max(group_height * len(rows), bar_height),
    }


# --- tables ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a report table: its heading and how a row's cell is made.

    ``kind``: ``id`` (a Canvas or Clever id), ``text``, ``named`` (the name in ``field`` with the id in
    ``id_field`` beside it), ``school`` (school names with their account ids), ``found`` (a finding's
    name, or where its record was looked for when it has none), ``before``/``after`` (a changed value).
    """

    label: str
    kind: str
    field: str = ""
    id_field: str = ""

    def cell(self, row: Mapping[str, Any]) -> str:
        """This column's ``<td>`` for ``row``, every value escaped."""
        value = escape(row.get(self.field, ""))
        ident = escape(row.get(self.id_field, "")) if self.id_field else ""
        if self.kind == "id":
            return f'<td class="id">{value}</td>'
        if self.kind in ("named", "school"):
            return f'<td>{value} <span class="id">{ident}</span></td>' if ident else f"<td>{value}</td>"
        if self.kind == "found":
            if not value:
                return f'<td><span class="missing">{escape(row.get("found_in", ""))}</span></td>'
            tag = (
                "" if row.get("found_in") == FOUND_IN_BUILD else ' <span class="tag">from the snapshot</span>'
            )
            return f"<td>{value}{tag}</td>"
        if self.kind in ("before", "after"):
            css = "old" if self.kind == "before" else "new"
            if self.id_field in row:  # a change of ids: their names, then the ids
                return f'<td class="{css}">{ident} <span class="id">({value})</span></td>'
            return f'<td class="{css}">{value}</td>'
        return f"<td>{value}</td>"


def _id(field: str) -> Column:
    return Column(field, "id", field)


def _text(field: str, label: str = "") -> Column:
    return Column(label or field, "text", field)


def _named(label: str, field: str, id_field: str) -> Column:
    return Column(label, "named", field, id_field)


SCHOOL = Column("school", "school", "school", "school_ids")
ROLE = _text("role")
# Leading columns of each file's added and removed rows; the file's other columns follow.
ROW_COLUMNS: dict[str, list[Column]] = {
    files.USERS: [_named("user", "name", "user_id"), ROLE, SCHOOL],
    files.ENROLLMENTS: [
        _named("user", "user_name", "user_id"),
        ROLE,
        _named("section", "section_name", "section_id"),
        SCHOOL,
    ],
    files.SECTIONS: [_named("section", "name", "section_id"), SCHOOL],
    files.COURSES: [_named("course", "long_name", "course_id"), SCHOOL],
    files.ACCOUNTS: [_named("school", "name", "account_id")],
    files.TERMS: [_named("term", "name", "term_id")],
    files.USER_OBSERVERS: [
        _named("observer", "observer_name", "observer_id"),
        _named("student", "student_name", "student_id"),
        SCHOOL,
    ],
}
# Leading columns of each file's changed rows (key and context); field, before and after follow.
CHANGED_COLUMNS: dict[str, list[Column]] = {
    **ROW_COLUMNS,
    files.COURSES: [_named("course", "name", "course_id"), SCHOOL],
    files.CHANGE_SIS_ID: [_id("type"), _id("old_id")],
}
# Not shown as columns of their own: shown within another (names, school ids) or derived for the diff.
HIDDEN = frozenset({"school_ids", "schools", "first_name", "last_name", "name", "school"})
FINDING_COLUMNS = [
    _id("record_id"),
    Column("name", "found", "name"),
    ROLE,
    SCHOOL,
    _named("section", "section", "section_id"),
    _text("message"),
]


def _rest(rows: Sequence[Mapping[str, Any]], lead: Sequence[Column]) -> list[Column]:
    shown = {field for column in lead for field in (column.field, column.id_field)}
    columns = list(rows[0].keys()) if rows else []
    return [_id(c) if c.endswith("_id") else _text(c) for c in columns if c not in shown | HIDDEN]


def _body(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], row_class: str) -> Markup:
    """A table's rows as HTML. Made here, not in the template: a cell per column per row is most of the
    report, and jinja2 takes about four times as long for the same output."""
    css = f' class="{escape(row_class)}"' if row_class else ""
    return Markup(
        "".join(
            f'<tr{css} data-schools="{escape(row.get("school_ids", ""))}">'
            + "".join(column.cell(row) for column in columns)
            + "</tr>\n"
            for row in rows
        )
    )


def _table(
    anchor: str,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    row_class: str = "",
    scoped: bool = True,
) -> dict[str, Any]:
    shown = list(rows[:ROW_LIMIT])
    return {
        "id": anchor,
        "columns": list(columns),
        "body": _body(shown, columns, row_class),
        "total": len(rows),
        "shown": len(shown),
        "scoped": scoped,
        "open": len(shown) <= OPEN_ROW_LIMIT,
    }


def _flat_changes(changed: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per changed field, with the row's key and context beside it."""
    return [
        {**row["key"], **row.get("context", {}), **change} for row in changed for change in row["changes"]
    ]


def _school_activity(tables: Iterable[tuple[str, Sequence[Mapping[str, Any]]]]) -> dict[str, Counter[str]]:
    """Per school (account id): how many findings and changed rows name it (all rows, not only shown)."""
    activity: dict[str, Counter[str]] = {}
    for what, rows in tables:
        for row in rows:
            for school in str(row.get("school_ids") or "").split(ID_SEPARATOR):
                if school:
                    activity.setdefault(school, Counter())[what] += 1
    return activity


# --- everything the template needs -----------------------------------------------------------------------


def _files_in_either(facts: Mapping[str, Any]) -> list[str]:
    present = set(facts["counts"]["files"]) | set((facts.get("against_counts") or {}).get("files", {}))
    return [name for name in files.FILE_ORDER if name in present]


CHANGE_COLUMNS = [
    _text("field"),
    Column("before", "before", "old", "old_names"),
    Column("after", "after", "new", "new_names"),
]


def _file_tables(name: str, rows: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A file's added, removed and changed rows as report tables."""
    lead = ROW_COLUMNS.get(name, [])
    return [
        *(
            (part, _table(diff_anchor(name, part), rows[part], lead + _rest(rows[part], lead), row_class=css))
            for part, css in (("added", "new"), ("removed", "old"))
        ),
        (
            "changed",
            _table(
                diff_anchor(name, "changed"),
                _flat_changes(rows["changed"]),
                [*CHANGED_COLUMNS.get(name, []), *CHANGE_COLUMNS],
            ),
        ),
    ]


def _diff_model(facts: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[str, Any]]]:
    """Per file either build has (people first): its diff and tables; and its rows, for school activity."""
    diff: list[dict[str, Any]] = []
    activity: list[tuple[str, Any]] = []
    present = _files_in_either(facts)
    for name in (name for name in CHANGE_ORDER if name in present and name in facts["diff"]):
        entry = facts["diff"][name]
        rows = entry["rows"]
        anchor = f"diff-{name.removesuffix('.csv')}"
        diff.append({"name": name, "anchor": anchor, **entry, "tables": _file_tables(name, rows)})
        contexts = [row.get("context", {}) for row in rows["changed"]]
        activity += [("changes", rows["added"]), ("changes", rows["removed"]), ("changes", contexts)]
    return diff, activity


def _schools(facts: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every school either build has, for the school filter: by name, then id."""
    seen: dict[str, str] = {}
    for counts in (facts["counts"], facts.get("against_counts") or {}):
        for school in counts.get("by_school", []):
            if school["account_id"]:
                seen.setdefault(school["account_id"], school["name"])
    return [{"id": i, "name": n} for i, n in sorted(seen.items(), key=lambda item: (item[1], item[0]))]


# --- what a sync night did beyond the CSVs -----------------------------------------------------------------

HELD_COLUMNS = [
    _named("school", "name", "account_id"),
    Column("Clever school id", "id", "school_id"),
    _text("since", "held since"),
    _text("reason", "why"),
    _text("lost", "would have lost tonight"),
]
RELEASE_COLUMN = _text("release", "release with")
CARRIED_COLUMNS = [
    _named("user", "name", "new_id"),
    Column("was user_id", "id", "old_id"),
    _text("keys", "the same"),
    _text("via", "carried with"),
    _text("removed_on", "old id gone since"),
    SCHOOL,
]
SIS_ID_COLUMNS = [Column("old user_id", "id", "old_id"), Column("new user_id", "id", "new_id")]
AMBIGUOUS_COLUMNS = [
    _named("user", "name", "new_id"),
    _text("keys", "shares"),
    Column("with removed Canvas users", "id", "old_ids"),
    SCHOOL,
]
OBSERVER_KINDS = ("removed", "added")
SYNC_COMMAND = "clever2sis sync"


def losses_text(school: Mapping[str, Any]) -> str:
    """What a held (or released) school would have lost tonight, in words: ``88 of 88 students, ...``."""
    return ", ".join(
        f"{loss['lost']:,} of {loss['before']:,} {loss['measure']}" for loss in school.get("losses") or []
    )


def guard_section(facts: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The guard's facts when the review shows a held schools' section (a school held or released, or a
    finding let through), else None. The report and the workbook both ask here."""
    guard: Mapping[str, Any] | None = facts.get("guard")
    if not guard or not (guard["held"] or guard["released"] or guard["findings"]):
        return None
    return guard


def _guard_model(facts: Mapping[str, Any]) -> dict[str, Any] | None:
    """The held schools' section: held and released schools as tables, the findings let through, and
    the command that releases the held ones (None: nothing was held or let through)."""
    guard = guard_section(facts)
    if guard is None:
        return None

    def rows(schools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**school, "school_ids": school["account_id"], "lost": losses_text(school)} for school in schools
        ]

    releases = " ".join(str(school["release"]) for school in guard["held"])
    profile = f" --profile {guard['profile']}" if guard.get("profile") else ""
    return {
        **guard,
        "held_table": _table(HELD_ANCHOR + "-rows", rows(guard["held"]), [*HELD_COLUMNS, RELEASE_COLUMN]),
        "released_table": _table("released-schools-rows", rows(guard["released"]), HELD_COLUMNS),
        "command": f"{SYNC_COMMAND}{profile} {releases}" if releases else "",
    }


def _identity_model(facts: Mapping[str, Any]) -> dict[str, Any] | None:
    """The identity changes' section: who was carried over (old id -> new id), other user SIS id changes,
    and the ambiguous matches (None: the build has no identity changes)."""
    found = facts.get("identities")
    if not found:
        return None
    return {
        **found,
        "carried_table": _table(
            IDENTITIES_ANCHOR + "-rows", found.get("carried_users") or [], CARRIED_COLUMNS
        ),
        "others_table": _table(
            "identities-sis-ids-rows", other_sis_id_changes(found), SIS_ID_COLUMNS, scoped=False
        ),
        "ambiguous_table": _table(
            "identities-ambiguous-rows", found.get("ambiguous_users") or [], AMBIGUOUS_COLUMNS
        ),
        "claimed_anchor": finding_anchor(CLAIMED),
    }


def _observer_model(facts: Mapping[str, Any]) -> dict[str, Any] | None:
    """The observer links' section: the links removed and added, each a table, with how far its import
    got (None: the run does not manage observer links)."""
    links = facts.get("observer_links")
    if not links:
        return None
    columns = ROW_COLUMNS[files.USER_OBSERVERS]
    return {
        kind: {
            "table": _table(observer_anchor(kind), links[kind], columns, row_class=css),
            "status": links["status"][kind],
            "import": links["import"][kind],
        }
        for kind, css in zip(OBSERVER_KINDS, ("old", "new"), strict=True)
    }


def view_model(facts: Mapping[str, Any]) -> dict[str, Any]:
    """What the template needs beyond the facts: tables, chart geometry, contents and school activity."""
    counts = facts["counts"]
    school_chart = bar_chart(
        [
            (
                school["name"],
                {
                    "students": school["people"].get("student", 0),
                    "teachers": sum(n for role, n in school["people"].items() if role != "student"),
                },
            )
            for school in counts["by_school"]
        ],
        ["students", "teachers"],
    )
    findings = {
        kind: {
            **entry,
            "anchor": finding_anchor(kind),
            "table": _table(f"{finding_anchor(kind)}-rows", entry["items"], FINDING_COLUMNS),
        }
        for kind, entry in facts["findings"]["by_kind"].items()
    }
    activity_rows: list[tuple[str, Any]] = [
        ("findings", entry["items"]) for entry in facts["findings"]["by_kind"].values()
    ]
    diff = None
    change_chart = None
    if facts.get("diff"):
        diff, changed_rows = _diff_model(facts)
        activity_rows += changed_rows
        change_chart = bar_chart(
            [
                (d["name"], {"added": d["added"], "removed": d["removed"], "changed": d["changed"]})
                for d in diff
            ],
            ["added", "removed", "changed"],
        )
    return {
        "facts": facts,
        "verdict": facts["verdict"],
        "signoff": facts["signoff"],
        "school_chart": school_chart,
        "change_chart": change_chart,
        "findings": findings,
        "diff": diff,
        "guard": _guard_model(facts),
        "identities": _identity_model(facts),
        "observer_links": _observer_model(facts),
        "schools": _schools(facts),
        "activity": _school_activity(activity_rows),
        "row_limit": ROW_LIMIT,
        "tool_version": __version__,
        "no_school": NO_SCHOOL,
        "page_rows": PAGE_ROWS,
    }


def render_report(facts: Mapping[str, Any]) -> str:
    """The report's HTML for ``facts`` (see :func:`clever2sis.review.facts.review_facts`)."""
    return _environment().get_template(TEMPLATE_NAME).render(**view_model(facts))


def write_report(build_dir: Path, facts: Mapping[str, Any]) -> Path:
    """Render the report into ``build_dir/report.html`` (atomically) and return its path.

    A file that cannot be written is a :class:`~clever2sis.errors.ReviewError` naming it; an older report
    is then left as it was.
    """
    path = BuildDir(build_dir).report_file
    html = render_report(facts).encode("utf-8")
    try:
        atomic_write_bytes(path, html)
    except OSError as error:
        raise ReviewError(f"cannot write the review report {path}: {error.strerror or error}") from None
    return path
