"""terms.csv: Canvas terms keyed on what stays when Clever recreates a term (its name and dates).

Clever gives a term a new id whenever it re-creates it (Clever's API docs,
https://dev.clever.com/docs/terms), so the default term_id is derived from the dates and the name. Clever
terms that derive the same term_id are one Canvas term. Names that two Canvas terms share get their dates
appended, so they can be told apart.

A term whose dates are edited in the SIS is re-created by Clever, and so derives another term_id. Canvas
would then get a second term, the courses would move to it, and a diff would ask Canvas to delete the old
term while it still has courses, which Canvas refuses (``EnrollmentTerm#check_if_deletable``,
``app/models/enrollment_term.rb``). So, given what Canvas holds (``previous``),
:func:`keep_recreated_terms` lets a re-created term keep the old term_id (see its docstring for the rule).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from clever2sis.clever.frames import District
from clever2sis.config import BuildSettings
from clever2sis.sis import checks, files
from clever2sis.sis.arrow import blank, lookup, member
from clever2sis.sis.builders import Built, ordered, prefixed, template
from clever2sis.sis.findings import combine, text

START_OF_DAY = "00:00:00"
END_OF_DAY = "23:59:59"
DELETED = "deleted"
DATE_LENGTH = len("YYYY-MM-DD")  # the date part of a Canvas datetime, for messages
# What Canvas holds, as far as the build needs it: file name -> rows (terms.csv, courses.csv, sections.csv).
Previous = Mapping[str, pd.DataFrame]


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


def held_terms(previous: Previous) -> pd.DataFrame:
    """The terms ``previous`` holds (not deleted): term_id, name, start_date, end_date as strings."""
    return _held(previous, files.TERMS, ["term_id", "name", "start_date", "end_date"])


def held_section_terms(previous: Previous) -> pd.Series:
    """Section_id -> the term_id of its course in ``previous`` (sections and courses not deleted; ``""``
    is Canvas's default term, ``<NA>`` a section whose course ``previous`` does not hold)."""
    sections = _held(previous, files.SECTIONS, ["section_id", "course_id"])
    courses = _held(previous, files.COURSES, ["course_id", "term_id"])
    term_of_course = pd.Series(courses["term_id"].to_numpy(), index=courses["course_id"], dtype="string")
    return pd.Series(
        lookup(sections["course_id"], term_of_course).to_numpy(),
        index=sections["section_id"].to_numpy(),
        dtype="string",
    )


def _held(previous: Previous, name: str, columns: list[str]) -> pd.DataFrame:
    frame = previous.get(name)
    if frame is None or frame.empty:
        return pd.DataFrame({column: pd.Series([], dtype="string") for column in columns})
    if "status" in frame.columns:
        frame = frame.loc[(frame["status"].astype("string").str.lower() != DELETED).to_numpy()]
    return frame.loc[:, columns].astype("string").fillna("").reset_index(drop=True)


def keep_recreated_terms(
    terms: Built,
    term_map: pd.Series,
    district: District,
    section_terms: pd.DataFrame,
    previous: Previous,
    settings: BuildSettings,
) -> tuple[Built, pd.Series]:
    """The terms file and term map with each re-created term keeping the Canvas term_id it had.

    A Canvas term_id derived tonight that ``previous`` does not hold takes the term_id of an old term when
    the sections in it that ``previous`` holds (``section_terms``: tonight's section_id and term_id, from
    the section plan) were all in that one old term, no Clever term derives the old term_id tonight, and no
    other new term_id claims it. The row keeps tonight's name and dates (Canvas updates the term in place),
    and an info finding ``term_recreated`` says so. A new term whose sections were in several old terms, or
    an old term two new ones claim, keeps nothing (``term_not_kept`` says why): a term_id handed to the
    wrong term would move courses between terms. The fallback term is never a candidate either way.
    """
    skip = ["", settings.fallback_term_id]
    held = held_terms(previous)
    derived = pd.Index(term_map.unique())
    new_ids = derived.difference(held["term_id"]).difference(skip)
    gone = pd.Index(held["term_id"]).difference(derived).difference(skip)
    if new_ids.empty or gone.empty:
        return terms, term_map
    tonight = section_terms.loc[member(section_terms["term_id"], new_ids), ["section_id", "term_id"]]
    pairs = pd.DataFrame(
        {
            "term_id": tonight["term_id"].astype("string"),
            "old": lookup(tonight["section_id"], held_section_terms(previous)),
        }
    )
    pairs = pairs.dropna().drop_duplicates().sort_values(["term_id", "old"], ignore_index=True)
    pairs["gone"] = pairs["old"].isin(gone)
    per_new = pairs.groupby("term_id", sort=True).agg(
        count=("old", "size"), old=("old", "first"), any_gone=("gone", "any")
    )
    single = per_new[(per_new["count"] == 1) & per_new["any_gone"]]
    claims = single["old"].map(single["old"].value_counts())
    kept = single.loc[claims == 1, "old"].astype("string")
    contested = single.loc[claims > 1, "old"].astype("string")
    split = pairs[pairs["term_id"].isin(per_new.index[(per_new["count"] > 1) & per_new["any_gone"]])]

    found = _keeping_findings(term_map, district, held, kept, contested, split)
    pinned = lookup(terms.frame["term_id"], kept).fillna(terms.frame["term_id"])
    frame = terms.frame.assign(term_id=pinned)
    frame = frame.sort_values(list(files.SORT_KEYS[files.TERMS]), kind="stable", ignore_index=True)
    kept_map = pd.Series(
        lookup(term_map, kept).fillna(term_map).to_numpy(), index=term_map.index, dtype="string"
    )
    return Built(frame, combine([terms.findings, found])), kept_map


def _keeping_findings(
    term_map: pd.Series,
    district: District,
    held: pd.DataFrame,
    kept: pd.Series,
    contested: pd.Series,
    split: pd.DataFrame,
) -> pd.DataFrame:
    """One finding per Clever term whose new term_id kept an old one, or could not (see the caller).

    ``kept`` and ``contested``: new term_id -> old term_id; ``split``: (term_id, old) pairs of new term_ids
    whose sections were in several old terms. Terms are few, so the lists a message names are joined per
    term.
    """
    clever = pd.DataFrame({"term": term_map.index, "term_id": term_map.to_numpy()}, dtype="string")
    cid = clever["term"]
    dates = district.terms.set_index("id")
    old_id = lookup(clever["term_id"], kept)
    held_by_id = held.set_index("term_id")
    claimers = contested.index.to_series().groupby(contested.to_numpy()).agg(list)
    others = pd.Series(
        [
            ", ".join(f"'{other}'" for other in claimers[old] if other != new)
            for new, old in contested.items()
        ],
        index=contested.index.astype("string"),
        dtype="string",
    )
    listed = split.groupby("term_id")["old"].agg(lambda old: ", ".join(f"'{o}'" for o in old))
    return combine(
        [
            checks.TERM_RECREATED(
                old_id.notna(),
                cid,
                term=cid,
                old_term_id=old_id,
                old_start_date=lookup(old_id, held_by_id["start_date"]).str.slice(0, DATE_LENGTH),
                old_end_date=lookup(old_id, held_by_id["end_date"]).str.slice(0, DATE_LENGTH),
                start_date=lookup(cid, dates["start_date"]),
                end_date=lookup(cid, dates["end_date"]),
            ),
            checks.TERM_NOT_KEPT_CLAIMED(
                member(clever["term_id"], contested.index),
                cid,
                term=cid,
                old_term_id=lookup(clever["term_id"], contested),
                others=lookup(clever["term_id"], others),
                term_id=clever["term_id"],
            ),
            checks.TERM_NOT_KEPT_SPLIT(
                member(clever["term_id"], listed.index),
                cid,
                term=cid,
                old_term_ids=lookup(clever["term_id"], listed.astype("string")),
                term_id=clever["term_id"],
            ),
        ]
    )
