"""What an alert may say about a run: the facts of its summary, each one checked, none passed through whole.

An alert leaves the machine (a chat channel, a mailbox), so it is built from a closed list of facts, never
from the summary as a whole: ids and states must look like ids and states, counts must be integers, file
names must be Canvas file names, and anything else in the summary is ignored. Free text (the run's one-line
message, the district's name, a school the guard missed) is redacted: every secret given (tokens, the
webhook URL, the SMTP password) becomes ``[redacted]`` and anything shaped like an email address
``[email]``. So a token or a student's name or email that ended up in some unexpected place of a summary
does not travel; counts and ids do.

Schools the guard held (``held_schools`` of the summary) are facts too: their ids, their name (redacted
like any free text), since when they are held, what they would have lost (counts) and the flag that
releases them.

Beyond the summary (the JSON line), three files of the run directory are read when they are there: its
``run.json`` (the guard's findings, the import's counts), the snapshot's ``manifest.json`` (the district's
name) and the final SisImport object (its ``processing_warnings``, when the counts have no
``warning_count``). A file that is missing or unreadable only leaves its facts out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from clever2sis.build_dir import BuildDir
from clever2sis.canvas.sis_import import SisImport
from clever2sis.clever.snapshot import MANIFEST_NAME
from clever2sis.sis import files
from clever2sis.sync.guard import MEASURES, RELEASE_FLAG, Shrink
from clever2sis.sync.runs import BUILD_DIR_NAME, RUN_RECORD_NAME, SNAPSHOT_DIR_NAME

TOP_CHANGES = 3
FINDINGS_SHOWN = 5
HELD_SHOWN = 10  # held schools an alert names; the rest are counted
MESSAGE_MAX_CHARS = 1000
NAME_MAX_CHARS = 120
PATH_MAX_CHARS = 400
REDACTED = "[redacted]"
EMAIL_REDACTED = "[email]"
UNKNOWN = "unknown"
CHANGE_KINDS = ("added", "removed", "changed")
# Guard verdicts whose findings an alert lists (a first run and a pass have none).
GUARD_REPORTED = ("stopped", "allowed", "held")
# Finding kinds rebuilt from their numbers (``school``: records of older runs). An identity finding's
# examples (old -> new ids and logins) are personal data: an alert says only how many changed.
GUARD_KINDS = ("file", "school", "role", "schools", "changes", "identity", "carryovers")

_RUN_ID = re.compile(r"\d{8}T\d{6}Z(-[a-z0-9_]{1,20})?")
_WORD = re.compile(r"[a-z][a-z_]{0,39}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
_PROFILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_EMAIL = re.compile(r"[^\s@<>()\[\]{},;:'\"`]+@[^\s@<>()\[\]{},;:'\"`]+")
# Canvas lists at most 24 warnings, then the pair ["and N more warnings that were not included", "Download
# the error file to see all warnings."] (SisBatch#finalize_workflow_state, app/models/sis_batch.rb).
_MORE_WARNINGS = re.compile(r"and (\d+) more")


@dataclass(frozen=True)
class FileChange:
    """Rows a file gained, lost and changed against the last applied run."""

    file: str
    added: int = 0
    removed: int = 0
    changed: int = 0

    @property
    def total(self) -> int:
        return self.added + self.removed + self.changed

    def short(self) -> str:
        return f"{self.file} +{self.added} -{self.removed} ~{self.changed}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "added": self.added, "removed": self.removed, "changed": self.changed}


@dataclass(frozen=True)
class HeldSchool:
    """A school the guard held: its Canvas account id and Clever id, its name, the first night of the hold,
    and what it would have lost (measure, count)."""

    account_id: str
    school_id: str
    name: str
    since: str | None
    lost: tuple[tuple[str, int], ...]

    @property
    def release(self) -> str:
        return f"{RELEASE_FLAG} {self.account_id}"

    def text(self) -> str:
        name = f"{self.name} ({self.account_id})" if self.name else self.account_id
        since = f" since {self.since}" if self.since else ""
        lost = ", ".join(f"{count} {measure}" for measure, count in self.lost)
        would = f": would lose {lost}" if lost else ""
        return f"{name}{since}{would}; release with {self.release}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "school_id": self.school_id,
            "name": self.name or None,
            "since": self.since,
            "lost": dict(self.lost),
            "release": self.release,
        }


@dataclass(frozen=True)
class RunFacts:
    """Everything an alert can say; each field checked (None: absent or not of the expected shape)."""

    run_id: str | None = None
    profile: str | None = None
    district_id: str | None = None
    district_name: str | None = None
    outcome: str = UNKNOWN
    exit_code: int | None = None
    message: str = ""
    changes: tuple[FileChange, ...] | None = None
    guard: str | None = None
    findings: tuple[str, ...] = ()
    held: tuple[HeldSchool, ...] = ()
    held_count: int = 0
    sis_import_id: int | None = None
    import_state: str | None = None
    warnings: int | None = None
    run_dir: str | None = None
    report_url: str | None = None

    @property
    def district(self) -> str:
        """``name (id)``, or whichever of the two is known."""
        if self.district_name and self.district_id:
            return f"{self.district_name} ({self.district_id})"
        return self.district_name or self.district_id or "unknown district"


class Redactor:
    """Turns free text into one safe line: secrets and email addresses out, whitespace folded, length cut."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    def __call__(self, value: Any, limit: int) -> str:
        if not isinstance(value, str):
            return ""
        for secret in self.secrets:
            value = value.replace(secret, REDACTED)
        line = " ".join(_EMAIL.sub(EMAIL_REDACTED, value).split())
        return line if len(line) <= limit else line[: limit - 1] + "…"


def _match(pattern: re.Pattern[str], value: Any) -> str | None:
    return value if isinstance(value, str) and pattern.fullmatch(value) else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _read_json(path: Path | None) -> Mapping[str, Any]:
    if path is None:
        return {}
    try:
        value = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return value if isinstance(value, Mapping) else {}


def top_changes(changes: Any, top: int = TOP_CHANGES) -> tuple[FileChange, ...] | None:
    """The ``top`` files that changed most (Canvas file names only; other keys are ignored)."""
    if not isinstance(changes, Mapping):
        return None
    found = []
    for name in files.FILE_ORDER:
        counts = changes.get(name)
        if not isinstance(counts, Mapping):
            continue
        change = FileChange(name, *(_count(counts.get(kind)) or 0 for kind in CHANGE_KINDS))
        if change.total:
            found.append(change)
    return tuple(sorted(found, key=lambda change: -change.total)[:top])


def guard_findings(details: Any, redact: Redactor) -> tuple[str, ...]:
    """The guard's findings (what shrank, by how much), rebuilt from their numbers, never copied as text."""
    shrinks = details.get("shrinks") if isinstance(details, Mapping) else None
    if not isinstance(shrinks, list):
        return ()
    found = []
    for shrink in shrinks[:FINDINGS_SHOWN]:
        if not isinstance(shrink, Mapping) or shrink.get("kind") not in GUARD_KINDS:
            continue
        numbers = [_count(shrink.get(key)) for key in ("before", "after", "lost")]
        what = redact(shrink.get("what"), NAME_MAX_CHARS)
        if shrink["kind"] in ("file", "changes") and what not in files.FILE_ORDER:
            continue
        if None in numbers or not what:
            continue
        before, after, lost = (int(number or 0) for number in numbers)
        limit = _number(shrink.get("limit_percent"))
        found.append(Shrink(shrink["kind"], what, before, after, lost, limit, _count(shrink.get("limit"))))
    return tuple(shrink.message() for shrink in found)


def held_schools(value: Any, redact: Redactor) -> tuple[tuple[HeldSchool, ...], int]:
    """The first ``HELD_SHOWN`` held schools of the summary's ``held_schools`` (a school whose account id
    does not look like an id is left out), and how many there were."""
    if not isinstance(value, list):
        return (), 0
    found = []
    for school in value:
        if not isinstance(school, Mapping) or (account_id := _match(_ID, school.get("account_id"))) is None:
            continue
        lost = school.get("lost")
        counts = ((m, _count(lost.get(m)) if isinstance(lost, Mapping) else None) for m in MEASURES)
        found.append(
            HeldSchool(
                account_id,
                _match(_ID, school.get("school_id")) or account_id,
                redact(school.get("name"), NAME_MAX_CHARS),
                _match(_STAMP, school.get("since")),
                tuple((measure, count) for measure, count in counts if count),
            )
        )
    return tuple(found[:HELD_SHOWN]), len(found)


def warning_count(record: Mapping[str, Any], final_import: Mapping[str, Any]) -> int | None:
    """The import's warnings: ``data.counts.warning_count``, else the ``processing_warnings`` listed."""
    counts = record.get("import_counts")
    if isinstance(counts, Mapping) and _count(counts.get("warning_count")) is not None:
        return int(counts["warning_count"])
    if not final_import:
        return None
    warnings = SisImport(raw=final_import).processing_warnings
    more = _MORE_WARNINGS.match((warnings[-1][0] or "") if warnings else "")
    return len(warnings) - 1 + int(more.group(1)) if more else len(warnings)


def read_facts(
    summary: Mapping[str, Any], *, report_base_url: str | None = None, secrets: Iterable[str] = ()
) -> RunFacts:
    """The facts of a finished run's ``summary`` (its JSON line), and of its run directory when it has one."""
    redact = Redactor(secrets)
    run_id = _match(_RUN_ID, summary.get("run_id"))
    profile = _match(_PROFILE, summary.get("profile"))
    raw_dir = summary.get("run_dir")
    run_dir = Path(raw_dir) if isinstance(raw_dir, str) and raw_dir else None
    record = _read_json(run_dir / RUN_RECORD_NAME if run_dir else None)
    manifest = _read_json(run_dir / SNAPSHOT_DIR_NAME / MANIFEST_NAME if run_dir else None)
    sis_import_id = _count(summary.get("sis_import_id"))
    final_import = _read_json(
        BuildDir(run_dir / BUILD_DIR_NAME).import_dir(profile, sis_import_id).final
        if run_dir and profile and sis_import_id is not None
        else None
    )
    district = manifest.get("district")
    district_name = redact(district.get("name"), NAME_MAX_CHARS) if isinstance(district, Mapping) else ""
    guard = _match(_WORD, summary.get("guard"))
    held, held_count = held_schools(summary.get("held_schools"), redact)
    exit_code = summary.get("exit_code")
    return RunFacts(
        run_id=run_id,
        profile=profile,
        district_id=_match(_ID, summary.get("district_id")),
        district_name=district_name or None,
        outcome=_match(_WORD, summary.get("outcome")) or UNKNOWN,
        exit_code=exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
        message=redact(summary.get("message"), MESSAGE_MAX_CHARS),
        changes=top_changes(summary.get("changes")),
        guard=guard,
        findings=guard_findings(record.get("guard_details"), redact) if guard in GUARD_REPORTED else (),
        held=held,
        held_count=held_count,
        sis_import_id=sis_import_id,
        import_state=_match(_WORD, summary.get("import_state")),
        warnings=warning_count(record, final_import),
        run_dir=redact(raw_dir, PATH_MAX_CHARS) or None,
        report_url=f"{report_base_url}/{quote(run_id)}/" if report_base_url and run_id else None,
    )
