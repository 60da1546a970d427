"""The review report: the facts rendered as one self-contained HTML file (``templates/report.html.j2``).

The file opens offline in any browser: inline CSS, a little inline JavaScript (search and sort on every
table), inline SVG charts, and no reference to anything outside it. Every value goes through jinja2's
autoescaping, so a name such as ``<script>`` shows as text. Tables show at most :data:`ROW_LIMIT` rows,
with a note; ``review --json`` and ``review --excel`` hold every row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from clever2sis import __version__
from clever2sis.atomic import atomic_write_bytes
from clever2sis.build_dir import BuildDir
from clever2sis.errors import ReviewError
from clever2sis.sis import files

TEMPLATE_NAME = "report.html.j2"
ROW_LIMIT = 500
CHART_BAR_WIDTH = 360
CHART_ROW_HEIGHT = 18
CHART_LABEL_WIDTH = 220


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


def _capped(rows: Sequence[Any]) -> dict[str, Any]:
    return {"rows": list(rows[:ROW_LIMIT]), "total": len(rows), "shown": min(len(rows), ROW_LIMIT)}


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(rows[0].keys()) if rows else []


def view_model(facts: Mapping[str, Any]) -> dict[str, Any]:
    """What the template needs beyond the facts: capped tables and chart geometry."""
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
        kind: {**entry, "table": _capped(entry["items"])}
        for kind, entry in facts["findings"]["by_kind"].items()
    }
    diff = None
    change_chart = None
    if facts.get("diff"):
        diff = {}
        for name in (name for name in files.FILE_ORDER if name in facts["diff"]):
            entry = facts["diff"][name]
            rows = entry["rows"]
            flat_changes = [{**row["key"], **change} for row in rows["changed"] for change in row["changes"]]
            diff[name] = {
                **entry,
                "added_table": {**_capped(rows["added"]), "columns": _columns(rows["added"])},
                "removed_table": {**_capped(rows["removed"]), "columns": _columns(rows["removed"])},
                "changed_table": {**_capped(flat_changes), "key": entry["key"]},
            }
        change_chart = bar_chart(
            [
                (name, {"added": e["added"], "removed": e["removed"], "changed": e["changed"]})
                for name, e in facts["diff"].items()
            ],
            ["added", "removed", "changed"],
        )
    return {
        "facts": facts,
        "school_chart": school_chart,
        "change_chart": change_chart,
        "findings": findings,
        "diff": diff,
        "row_limit": ROW_LIMIT,
        "tool_version": __version__,
        "file_order": [name for name in files.FILE_ORDER if diff is None or name in diff],
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
