"""Validation findings: every record a build changed, left out or doubts, with the reason.

Findings are kept as a DataFrame (one row each) so that a million of them cost no more than the rows they
describe. ``severity`` is ``warning`` for what an admin should fix in the SIS (and what ``--strict`` fails
on) and ``info`` for what the build handled by a documented rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

FINDING_COLUMNS = ("kind", "severity", "file", "record_id", "message")
ORDER = ("file", "kind", "record_id", "message")
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
    """All findings in one frame, in a stable order (by file, kind, record, message).

    Sorted by Arrow (pandas sorts several string keys ~4x slower). Parts are most often the combined (so
    sorted) findings of one builder each, which do not interleave: put in order of their first rows, they
    are checked to be sorted as they stand, and only sorted when they are not.
    """
    frames = [part for part in parts if len(part)]
    if not frames:
        return no_findings()
    tables = [
        pa.Table.from_pandas(part.loc[:, list(FINDING_COLUMNS)], preserve_index=False).cast(_SCHEMA)
        for part in frames
    ]
    firsts = [tuple(table.column(key)[0].as_py() or "" for key in ORDER) for table in tables]
    by_first = sorted(range(len(tables)), key=lambda i: (firsts[i], i))
    ordered = pa.concat_tables([tables[i] for i in by_first])
    boundaries = np.cumsum([len(tables[i]) for i in by_first])[:-1] - 1
    if not _sorted(ordered, strictly_at=boundaries):
        whole = pa.concat_tables(tables)
        ordered = whole.take(pc.sort_indices(whole, sort_keys=[(key, "ascending") for key in ORDER]))
    out: pd.DataFrame = ordered.to_pandas(types_mapper={pa.large_string(): pd.StringDtype("pyarrow")}.get)
    return out


_SCHEMA = pa.schema([(column, pa.large_string()) for column in FINDING_COLUMNS])


def _sorted(table: pa.Table, strictly_at: np.ndarray) -> bool:
    """Whether each row of ``table`` is ordered before the next by ``ORDER`` (missing values never are);
    at the rows ``strictly_at`` (the last of a part) it must be strictly before, or a stable sort of the
    parts as given could have put the next part's equal row first."""
    if len(table) < 2:
        return True
    before = pa.scalar(False)
    same = pa.scalar(True)
    for key in ORDER:
        column = table.column(key)
        this, following = column.slice(0, len(table) - 1), column.slice(1)
        before = pc.or_(before, pc.and_(same, pc.less(this, following)))
        same = pc.and_(same, pc.equal(this, following))
    before = pc.fill_null(before, False).to_numpy(zero_copy_only=False)
    same = pc.fill_null(same, False).to_numpy(zero_copy_only=False)
    return bool((before | same).all() and before[strictly_at].all())


def text(*parts: pd.Series | str) -> pd.Series:
    """Concatenate strings and string Series element-wise (``<NA>`` reads as empty)."""
    index = next(part.index for part in parts if isinstance(part, pd.Series))
    if all(part.index.equals(index) for part in parts if isinstance(part, pd.Series)):
        # Aligned already (as callers pass them): one Arrow pass instead of a new column per part.
        columns = [
            pc.fill_null(pa.array(part.astype("string"), type=pa.large_string(), from_pandas=True), "")
            if isinstance(part, pd.Series)
            else pa.scalar(part, pa.large_string())
            for part in parts
        ]
        joined = pc.binary_join_element_wise(*columns, pa.scalar("", pa.large_string()))
        return pd.Series(pd.arrays.ArrowStringArray(joined), index=index, dtype="string")
    out = pd.Series("", index=index, dtype="string")
    for part in parts:
        out = out + (part.fillna("").astype("string") if isinstance(part, pd.Series) else part)
    return out
