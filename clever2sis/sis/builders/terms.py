"""terms.csv: Canvas terms keyed on what stays when Clever recreates a term (its name and dates).

Clever gives a term a new id whenever its sections change (Clever's API docs,
https://dev.clever.com/docs/terms), so the default term_id is derived from the dates and the name. Clever
terms that derive the same term_id are one Canvas term. Names that two Canvas terms share get their dates
appended, so they can be told apart.
"""

from __future__ import annotations

import pandas as pd

from clever2sis.clever.frames import District
from clever2sis.config import BuildSettings
from clever2sis.sis import checks, files
from clever2sis.sis.arrow import blank
from clever2sis.sis.builders import Built, ordered, prefixed, template
from clever2sis.sis.findings import combine, text

START_OF_DAY = "00:00:00"
END_OF_DAY = "23:59:59"


def canvas_datetime(dates: pd.Series, clock: str, timezone: str) -> tuple[pd.Series, pd.Series]:
    """``YYYY-MM-DD`` dates as ISO 8601 local times in ``timezone`` with an explicit zone.

    Returns the formatted strings (empty where there is no date) and a mask of values that are not dates.
    """
    present = ~blank(dates)
    parsed = pd.to_datetime(dates.where(present), format="%Y-%m-%d", errors="coerce")
    bad = present & parsed.isna()
    stamp = (parsed + pd.to_timedelta(clock)).dt.tz_localize(
        timezone, ambiguous="NaT", nonexistent="shift_forward"
    )
    if timezone == "UTC":
        out = stamp.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        raw = stamp.dt.strftime("%Y-%m-%dT%H:%M:%S%z")
        out = raw.str.slice(0, -2) + ":" + raw.str.slice(-2)
    return out.astype("string").fillna(""), bad


def term_columns(settings: BuildSettings) -> tuple[str, ...]:
    return files.COLUMNS[files.TERMS]


def build_terms(district: District, settings: BuildSettings) -> tuple[Built, pd.Series]:
    """The terms file, and each Clever term id's Canvas term_id (for courses)."""
    terms = district.terms
    context = prefixed(terms, "term")
    start, bad_start = canvas_datetime(terms["start_date"], START_OF_DAY, settings.timezone)
    end, bad_end = canvas_datetime(terms["end_date"], END_OF_DAY, settings.timezone)
    rows = pd.DataFrame(
        {
            "clever_id": terms["id"],
            "term_id": template(settings, "ids.term_id").render(context),
            "name": template(settings, "names.term").render(context),
            "status": "active",
            "start_date": start,
            "end_date": end,
        }
    )
    no_id = ~rows["term_id"].str.contains(r"[0-9A-Za-z]", regex=True)
    rows.loc[blank(rows["name"]), "name"] = rows["term_id"]
    bad_date = bad_start | bad_end
    canvas = rows[~no_id].drop_duplicates("term_id")
    shared = canvas["name"].duplicated(keep=False)
    canvas.loc[shared, "name"] = text(
        canvas.loc[shared, "name"],
        " (",
        terms.loc[canvas.index[shared], "start_date"],
        " – ",
        terms.loc[canvas.index[shared], "end_date"],
        ")",
    )
    merged = rows["term_id"].duplicated() & ~no_id
    cid = rows["clever_id"]
    found = [
        checks.TERM_WITHOUT_ID(no_id, cid, term=cid),
        checks.BAD_DATE(bad_date, cid, term=cid, start_date=terms["start_date"], end_date=terms["end_date"]),
        checks.TERMS_MERGED(merged, cid, term=cid, term_id=rows["term_id"]),
    ]
    if settings.fallback_term_id:
        fallback = pd.DataFrame(
            [
                {
                    "term_id": settings.fallback_term_id,
                    "name": settings.fallback_term_name,
                    "status": "active",
                    "start_date": "",
                    "end_date": "",
                }
            ]
        )
        canvas = pd.concat(
            [canvas, fallback[~fallback["term_id"].isin(canvas["term_id"])]], ignore_index=True
        )
    term_map = pd.Series(
        rows.loc[~no_id, "term_id"].to_numpy(), index=rows.loc[~no_id, "clever_id"].to_numpy(), dtype="string"
    )
    return Built(
        ordered(canvas, term_columns(settings), files.SORT_KEYS[files.TERMS]), combine(found)
    ), term_map
