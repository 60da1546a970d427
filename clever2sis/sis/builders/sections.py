"""sections.csv: one Canvas section per Clever section, in the course the section plan gives it."""

from __future__ import annotations

import pandas as pd

from clever2sis.config import BuildSettings
from clever2sis.sis import files
from clever2sis.sis.builders import Built, ordered
from clever2sis.sis.findings import combine
from clever2sis.sis.templates import is_identity


def section_columns(settings: BuildSettings) -> tuple[str, ...]:
    extra = () if is_identity(settings.ids["section_id"], "section") else ("integration_id",)
    return files.COLUMNS[files.SECTIONS] + extra


def build_sections(plan: pd.DataFrame, settings: BuildSettings) -> Built:
    sections = plan.assign(name=plan["section_name"], status="active", integration_id=plan["clever_id"])
    return Built(ordered(sections, section_columns(settings), files.SORT_KEYS[files.SECTIONS]), combine([]))
