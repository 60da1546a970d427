"""Validation findings: every record a build changed, left out or doubts, with the reason.

Findings are kept as a DataFrame (one row each) so that a million of them cost no more than the rows they
describe. ``severity`` is ``warning`` for what an admin should fix in the SIS (and what ``--strict`` fails
on) and ``info`` for what the build handled by a documented rule.
"""

from __future__ import annotations

import pandas as pd

FINDING_COLUMNS = ("kind", "severity", "file", "record_id", "message")
WARNING = "warning"
INFO = "info"


def findings(kind: str, severity: str, file: str, record_id: pd.Series, message: pd.Series) -> pd.DataFrame:
    """A findings frame for one kind: ``record_id`` and ``message`` are aligned Series."""
    record_id = record_id.astype("string").fillna("")
    return pd.DataFrame(
        {
            "kind": pd.Series(kind, index=record_id.index, dtype="string"),
            "severity": pd.Series(severity, index=record_id.index, dtype="string"),
            "file": pd.Series(file, index=record_id.index, dtype="string"),
            "record_id": record_id,
            "message": message.astype("string"),
        }
    ).reset_index(drop=True)


def report(
    kind: str, severity: str, file: str, mask: pd.Series, record_id: pd.Series, *parts: pd.Series | str
) -> pd.DataFrame:
    """Findings for the rows where ``mask`` is true; the message is ``parts`` joined (Series are aligned).

    Only the masked rows are formatted, so a check over millions of rows costs little when few fail.
    """
    if not mask.any():
        return no_findings()
    return findings(
        kind,
        severity,
        file,
        record_id[mask],
        text(*(part[mask] if isinstance(part, pd.Series) else part for part in parts)),
    )


def no_findings() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series([], dtype="string") for column in FINDING_COLUMNS})


def combine(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """All findings in one frame, in a stable order (by file, kind, record, message)."""
    frames = [part for part in parts if len(part)]
    if not frames:
        return no_findings()
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["file", "kind", "record_id", "message"], kind="stable").reset_index(drop=True)


def text(*parts: pd.Series | str) -> pd.Series:
    """Concatenate strings and string Series element-wise (``<NA>`` reads as empty)."""
    index = next(part.index for part in parts if isinstance(part, pd.Series))
    out = pd.Series("", index=index, dtype="string")
    for part in parts:
        out = out + (part.fillna("").astype("string") if isinstance(part, pd.Series) else part)
    return out
