"""The observer links a sync run removed and added, with the people's names, for a review of its build.

With ``[observers] enabled`` a sync run sends the links in imports of their own (see
clever2sis/sync/observers.py), beside its build: ``RUN/observers-removed/`` (links Clever no longer has,
removed before the main import) and ``RUN/observers/`` (every link Clever has, after it). Each keeps the
links that changed tonight, named, under ``sync/<kind>/user_observers.csv``; :func:`observer_link_changes`
reads them back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from clever2sis.build_dir import BuildDir
from clever2sis.sis import files
from clever2sis.sync.observers import ADDED_KIND, IMPORT_DIR_NAMES, LINKS, REMOVALS, REMOVED_KIND
from clever2sis.sync.runs import RUN_RECORD_NAME


def _named_links(build_dir: Path, kind: str) -> list[dict[str, str]]:
    path = BuildDir(build_dir).sync_rows_dir(kind) / files.USER_OBSERVERS
    if not path.is_file():
        return []
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return [{str(k): str(v) for k, v in row.items()} for row in frame.to_dict("records")]


def observer_link_changes(build_dir: Path) -> dict[str, Any] | None:
    """The links the sync run of ``build_dir`` (``RUN/build``) removed before its main import and added
    after it (observer_id, observer_name, student_id, student_name), and the night's imports as run.json
    names them; None when the run sent no observer import (or ``build_dir`` is not a sync run's build).
    """
    run_dir = build_dir.parent
    removals, links = (run_dir / IMPORT_DIR_NAMES[REMOVALS], run_dir / IMPORT_DIR_NAMES[LINKS])
    if not (removals.is_dir() or links.is_dir()):
        return None
    try:
        run = orjson.loads((run_dir / RUN_RECORD_NAME).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        run = {}
    imports = run.get("imports") if isinstance(run, dict) else None
    return {
        "removed": _named_links(removals, REMOVED_KIND),
        "added": _named_links(links, ADDED_KIND),
        "imports": imports if isinstance(imports, list) else [],
    }


def observer_summary_lines(changes: dict[str, Any], *, examples: int) -> list[str]:
    """Terminal lines for :func:`observer_link_changes`: the counts, then up to ``examples`` of each."""
    removed, added = changes["removed"], changes["added"]
    lines = [f"observer links: {len(removed):,} removed before the main import, {len(added):,} new after it"]
    for label, links in (("removed", removed), ("new", added)):
        for link in links[:examples]:
            lines.append(
                f"  {label}: {link['observer_name'] or '?'} ({link['observer_id']}) observing "
                f"{link['student_name'] or '?'} ({link['student_id']})"
            )
    return lines
