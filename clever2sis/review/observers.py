"""The observer links a sync run removed and added, with the people's names, for a review of its build.

With ``[observers] enabled`` a sync run sends the links in imports of their own (see
clever2sis/sync/observers.py), beside its build: ``RUN/observers-removed/`` (links Clever no longer has,
removed before the main import) and ``RUN/observers/`` (every link Clever has, after it). Each keeps the
links that changed tonight, named, under ``sync/<kind>/user_observers.csv``.

The sync writes its report before it posts either import, so its build also keeps the links it plans to
remove and to add (``sync/observers-removed/`` and ``sync/observers-added/``, and their counts in
build.json's ``sync.observer_links``). :func:`observer_link_changes` reads what an import sent when that
import was posted, and the plan otherwise; run.json's ``imports`` (written when the run ends) says which
imports were posted and how they ended.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from clever2sis.build_dir import BuildDir
from clever2sis.sis import files
from clever2sis.sync.observers import (
    ADDED_KIND,
    IMPORT_DIR_NAMES,
    LINKS,
    PLANNED_KINDS,
    REMOVALS,
    REMOVED_KIND,
)
from clever2sis.sync.runs import RUN_RECORD_NAME

# Each kind of change and the import that sends it.
IMPORTS = {REMOVED_KIND: REMOVALS, ADDED_KIND: LINKS}
# How far a kind's links got (``status`` in the facts).
PLANNED = "planned"  # the run had not posted its import when the review was written
SENT = "sent"  # its import was posted (``import`` holds its id and state)
NOT_SENT = "not sent"  # the run ended without posting it


Schools = Callable[[pd.Series], pd.DataFrame]


def _named_links(build_dir: Path, kind: str, schools: Schools | None) -> list[dict[str, str]]:
    path = BuildDir(build_dir).sync_rows_dir(kind) / files.USER_OBSERVERS
    if not path.is_file():
        return []
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if schools is not None and len(frame):
        found = schools(frame["student_id"])
        frame = frame.assign(school_ids=found["school_ids"].to_numpy(), school=found["school"].to_numpy())
    return [{str(k): str(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _run_record(run_dir: Path) -> dict[str, Any] | None:
    """run.json, or None while the run is going on (it is written when the run ends) or unreadable."""
    try:
        run = orjson.loads((run_dir / RUN_RECORD_NAME).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return run if isinstance(run, dict) else None


def observer_link_changes(
    build_dir: Path, sync: Mapping[str, Any] | None = None, *, schools: Schools | None = None
) -> dict[str, Any] | None:
    """The links the sync run of ``build_dir`` (``RUN/build``; ``sync``: its build.json's ``sync``) removed
    before its main import and added after it (``removed``, ``added``: observer_id, observer_name,
    student_id, student_name, and with ``schools`` (student ids -> their ``school_ids`` and ``school``)
    the student's schools), the night's imports as run.json names them (``imports``), and for each of
    the two kinds its ``status`` (:data:`PLANNED`, :data:`SENT`, :data:`NOT_SENT`) and ``import`` (the
    entry of the import that sent it, or None).

    None when the run does not manage observer links (or ``build_dir`` is not a sync run's build).
    """
    run_dir = build_dir.parent
    planned = isinstance(sync, Mapping) and isinstance(sync.get("observer_links"), Mapping)
    import_dirs = {kind: run_dir / IMPORT_DIR_NAMES[role] for kind, role in IMPORTS.items()}
    if not (planned or any(path.is_dir() for path in import_dirs.values())):
        return None
    run = _run_record(run_dir)
    imports = run.get("imports") if run is not None else None
    imports = imports if isinstance(imports, list) else []
    out: dict[str, Any] = {}
    status: dict[str, str] = {}
    posted: dict[str, dict[str, Any] | None] = {}
    for kind, role in IMPORTS.items():
        entry = next((e for e in imports if isinstance(e, dict) and e.get("import") == role), None)
        if import_dirs[kind].is_dir():
            out[kind] = _named_links(import_dirs[kind], kind, schools)
        else:
            out[kind] = _named_links(build_dir, PLANNED_KINDS[kind], schools)
        posted[kind] = entry
        status[kind] = SENT if entry is not None else (PLANNED if run is None else NOT_SENT)
    return {**out, "imports": imports, "status": status, "import": posted}


def observer_summary_lines(changes: dict[str, Any], *, examples: int) -> list[str]:
    """Terminal lines for :func:`observer_link_changes`: the counts, then up to ``examples`` of each."""
    removed, added = changes["removed"], changes["added"]
    status = changes.get("status") or {}
    notes = {kind: "" if status.get(kind, SENT) == SENT else f" ({status[kind]})" for kind in IMPORTS}
    lines = [
        f"observer links: {len(removed):,} removed before the main import{notes[REMOVED_KIND]}, "
        f"{len(added):,} new after it{notes[ADDED_KIND]}"
    ]
    for label, links in (("removed", removed), ("new", added)):
        for link in links[:examples]:
            lines.append(
                f"  {label}: {link['observer_name'] or '?'} ({link['observer_id']}) observing "
                f"{link['student_name'] or '?'} ({link['student_id']})"
            )
    return lines
