"""One review of one build, as ``clever2sis review`` and each sync run make it: compare, judge, write.

:func:`review_build` chooses what to compare with and under which import settings
(:func:`~clever2sis.review.baseline.choose_comparison`), gathers the facts and writes ``report.html``
(and, when asked, the spreadsheet copies) into the build directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clever2sis.canvas.sis_import import ImportOptions
from clever2sis.review.baseline import Comparison, choose_comparison
from clever2sis.review.facts import open_build, review_facts
from clever2sis.review.report import write_report


@dataclass(frozen=True)
class Review:
    """A review written: its facts, the report's path, the spreadsheet workbook's (with ``excel``)."""

    facts: dict[str, Any]
    report: Path
    comparison: Comparison
    spreadsheets: Path | None = None


def review_build(
    build_dir: Path,
    *,
    profile: str,
    upload_options: ImportOptions,
    against: Path | None = None,
    excel: bool = False,
) -> Review:
    """Review ``build_dir`` (see the module docstring); raises ReviewError for a build that is not whole."""
    comparison = choose_comparison(build_dir, against=against, profile=profile, upload_options=upload_options)
    new = open_build(build_dir)
    old = open_build(comparison.older) if comparison.older is not None else None
    facts = review_facts(
        new, old, options=comparison.options, against_reason=comparison.reason, profile=profile
    )
    facts["comparison"] = {
        "profile": comparison.profile,
        "import_settings_from": comparison.settings_from,
        "older_build": str(comparison.older) if comparison.older is not None else None,
        "reason": comparison.reason,
    }
    report = write_report(build_dir, facts)
    spreadsheets = None
    if excel:
        from clever2sis.review.excel import write_spreadsheet_copies

        spreadsheets = write_spreadsheet_copies(new, facts)
    return Review(facts, report, comparison, spreadsheets)
