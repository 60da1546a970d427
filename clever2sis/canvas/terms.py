"""The Enrollment Terms API: read the terms' date overrides, and set those of teachers (TAs, designers).

What Canvas does (``app/controllers/terms_api_controller.rb``, ``app/controllers/terms_controller.rb``,
``app/models/enrollment_term.rb`` and the public Enrollment Terms API doc):

* ``GET /api/v1/accounts/:account_id/terms?include[]=overrides`` lists the root account's active terms,
  paginated under ``enrollment_terms``, each with its ``sis_term_id`` and, asked for, its ``overrides``:
  ``{"TeacherEnrollment": {"start_at": ..., "end_at": ...}}`` (times in UTC, ``null`` when not set);
* ``PUT /api/v1/accounts/:account_id/terms/:id`` finds the term by Canvas id or ``sis_term_id:<id>``
  (``hex:sis_term_id:<hex>`` for an id a path cannot carry, ``Api.sis_parse_id``) and, for each enrollment
  type in ``enrollment_term[overrides][<type>][start_at]`` / ``[end_at]``, sets **both** dates of that
  type's override (``EnrollmentTerm#set_overrides``): a date left out is cleared. So every request here
  sends both, the one not managed as Canvas has it;
* a teacher's, TA's or designer's access runs from the override's ``start_at``, else whenever (Canvas
  lets them in before the term starts by default), to the override's ``end_at``, else the term's end
  (``EnrollmentTerm#enrollment_dates_for``).

:func:`set_teacher_dates` is the sync's step: it reads every term once, works out the overrides the
managed terms should have, and sends only those that differ (so a second run sends nothing).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from clever2sis.canvas.client import CanvasClient
from clever2sis.errors import CanvasError, Clever2SisError
from clever2sis.progress import Progress, silent

TERMS_PER_PAGE = 100
# [sync] teacher_dates_roles -> Canvas's enrollment types (the overrides' keys).
ENROLLMENT_TYPES = {"teacher": "TeacherEnrollment", "ta": "TaEnrollment", "designer": "DesignerEnrollment"}
_PLAIN_SIS_ID = re.compile(r"[A-Za-z0-9_-]+")


def term_ref(sis_term_id: str) -> str:
    """How a path names the term with SIS id ``sis_term_id`` (hex-encoded unless it is plain)."""
    if _PLAIN_SIS_ID.fullmatch(sis_term_id):
        return f"sis_term_id:{sis_term_id}"
    return f"hex:sis_term_id:{sis_term_id.encode().hex()}"


@dataclass(frozen=True)
class Override:
    """An enrollment type's access dates in a term (``None``: not set, Canvas's default applies)."""

    start_at: str | None = None
    end_at: str | None = None

    def same_as(self, other: Override) -> bool:
        """The same moments (written in any zone)."""
        return _same_moment(self.start_at, other.start_at) and _same_moment(self.end_at, other.end_at)

    def as_dict(self) -> dict[str, str | None]:
        return {"start_at": self.start_at, "end_at": self.end_at}


@dataclass(frozen=True)
class CanvasTerm:
    """A term as the Terms API shows it."""

    id: int
    sis_term_id: str | None
    name: str | None
    overrides: Mapping[str, Override]

    @classmethod
    def from_json(cls, body: Any) -> CanvasTerm:
        if not isinstance(body, Mapping) or not isinstance(body.get("id"), int):
            raise CanvasError(f"Canvas sent a term without an id: {str(body)[:100]}")
        overrides = body.get("overrides") or {}
        if not isinstance(overrides, Mapping):
            raise CanvasError(f"term {body['id']}: overrides is not an object")
        return cls(
            id=body["id"],
            sis_term_id=_text(body.get("sis_term_id")),
            name=_text(body.get("name")),
            overrides={
                str(kind): Override(_text(dates.get("start_at")), _text(dates.get("end_at")))
                for kind, dates in overrides.items()
                if isinstance(dates, Mapping)
            },
        )


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


class EnrollmentTerms:
    """The ``/api/v1/accounts/:account_id/terms`` endpoints of one root account."""

    def __init__(self, client: CanvasClient, account_id: str) -> None:
        self.client = client
        self.base = f"/api/v1/accounts/{quote(account_id, safe=':')}/terms"

    def list(self) -> Iterator[CanvasTerm]:
        """Every active term, with its overrides."""
        query = [("include[]", "overrides"), ("per_page", str(TERMS_PER_PAGE))]
        for item in self.client.paginate(self.base, "enrollment_terms", query):
            yield CanvasTerm.from_json(item)

    def set_overrides(self, sis_term_id: str, overrides: Mapping[str, Override]) -> CanvasTerm:
        """Set the overrides of the term ``sis_term_id``: both dates of each enrollment type given."""
        fields = [
            (f"enrollment_term[overrides][{kind}][{name}]", value or "")
            for kind, override in overrides.items()
            for name, value in (("start_at", override.start_at), ("end_at", override.end_at))
        ]
        return CanvasTerm.from_json(self.client.put_json(f"{self.base}/{term_ref(sis_term_id)}", fields))


# --- the sync's step --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeacherDates:
    """``[sync] teacher_start_days_before``, ``teacher_end_days_after`` and ``teacher_dates_roles``, with the
    build's time zone (term dates are local days)."""

    start_days_before: int = 0
    end_days_after: int = 0
    roles: tuple[str, ...] = ("teacher",)
    timezone: str = "UTC"

    @property
    def on(self) -> bool:
        return bool(self.start_days_before or self.end_days_after)

    @property
    def enrollment_types(self) -> tuple[str, ...]:
        return tuple(ENROLLMENT_TYPES[role] for role in self.roles)


@dataclass(frozen=True)
class ManagedTerm:
    """A term of the build's terms.csv: its SIS id and dates as sent (blank: none)."""

    term_id: str
    start_date: str
    end_date: str


def shifted(moment: str, days: int, timezone: str) -> str:
    """``moment`` moved by ``days`` calendar days in ``timezone`` (the same wall-clock time, whatever a
    daylight-saving change in between), written as terms.csv writes times: ``Z`` in UTC, else an offset."""
    local = dt.datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(zoneinfo.ZoneInfo(timezone))
    moved = local + dt.timedelta(days=days)
    moved = moved.astimezone(zoneinfo.ZoneInfo(timezone))  # the offset of the new wall-clock time
    return moved.strftime("%Y-%m-%dT%H:%M:%SZ") if timezone == "UTC" else moved.isoformat()


def _same_moment(one: str | None, other: str | None) -> bool:
    if one is None or other is None:
        return one is other
    try:
        return dt.datetime.fromisoformat(one.replace("Z", "+00:00")) == dt.datetime.fromisoformat(
            other.replace("Z", "+00:00")
        )
    except ValueError:
        return one == other


def wanted_override(term: ManagedTerm, held: Override, dates: TeacherDates) -> Override:
    """The override ``term`` should have for an enrollment type that has ``held``: the dates the settings
    manage, and the others as held."""
    start, end = held.start_at, held.end_at
    if dates.start_days_before and term.start_date:
        start = shifted(term.start_date, -dates.start_days_before, dates.timezone)
    if dates.end_days_after and term.end_date:
        end = shifted(term.end_date, dates.end_days_after, dates.timezone)
    return Override(start, end)


def set_teacher_dates(
    terms: EnrollmentTerms, managed: Sequence[ManagedTerm], dates: TeacherDates, progress: Progress = silent
) -> dict[str, Any]:
    """Give each managed term the teachers' (TAs', designers') overrides ``dates`` asks for, sending only
    what differs from what Canvas has; what was set, left and failed, as plain data.

    A term Canvas does not have, and a request Canvas refuses (after the client's retries), is a failure
    of that term only; the others go on. Failures never raise: the import they follow is done.
    """
    facts: dict[str, Any] = {
        "enrollment_types": list(dates.enrollment_types),
        "start_days_before": dates.start_days_before,
        "end_days_after": dates.end_days_after,
        "terms": len(managed),
        "set": 0,
        "unchanged": 0,
        "failed": 0,
        "changes": [],
        "failures": [],
    }
    try:
        held = {term.sis_term_id: term for term in terms.list() if term.sis_term_id is not None}
    except Clever2SisError as error:
        facts["failed"] = len(managed)
        facts["failures"] = [{"term_id": None, "error": f"the terms could not be read: {error}"}]
        return _with_message(facts)
    for term in managed:
        canvas = held.get(term.term_id)
        if canvas is None:
            _failed(
                facts, term.term_id, "Canvas has no active term with this SIS id (see the import's messages)"
            )
            continue
        changes = {}
        for kind in dates.enrollment_types:
            before = canvas.overrides.get(kind, Override())
            after = wanted_override(term, before, dates)
            if not after.same_as(before):
                changes[kind] = (before, after)
        if not changes:
            facts["unchanged"] += 1
            continue
        try:
            terms.set_overrides(term.term_id, {kind: after for kind, (_, after) in changes.items()})
        except Clever2SisError as error:
            _failed(facts, term.term_id, str(error))
            continue
        facts["set"] += 1
        for kind, (before, after) in changes.items():
            facts["changes"].append(
                {"term_id": term.term_id, "enrollment_type": kind, **after.as_dict(), "was": before.as_dict()}
            )
            progress(
                f"term {term.term_id}: {kind} from {after.start_at or 'whenever'} to "
                f"{after.end_at or 'the term end'} (was {before.start_at or 'whenever'} to "
                f"{before.end_at or 'the term end'})"
            )
    return _with_message(facts)


def _failed(facts: dict[str, Any], term_id: str, error: str) -> None:
    facts["failed"] += 1
    facts["failures"].append({"term_id": term_id, "error": error})


def _with_message(facts: dict[str, Any]) -> dict[str, Any]:
    """``facts`` with its one-line ``message`` (empty when nothing was set and nothing failed)."""
    parts = [f"{facts[key]} {key}" for key in ("set", "failed") if facts[key]]
    facts["message"] = f"teacher term dates: {', '.join(parts)} of {facts['terms']} term(s)" if parts else ""
    return facts
