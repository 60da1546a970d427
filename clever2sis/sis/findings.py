"""Validation findings: every record a build changed, left out or doubts, with the reason.

Findings are kept as a DataFrame (one row each) so that a million of them cost no more than the rows they
describe. ``severity`` is ``warning`` for what an admin should fix in the SIS (and what ``--strict`` fails
on) and ``info`` for what the build handled by a documented rule.

Each kind of finding is a :class:`Check`, declared once (in :mod:`clever2sis.sis.checks`) with its
severity, file and message template; a builder computes which rows fail and the values the message names.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace
from functools import cache
from itertools import pairwise

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


@dataclass(frozen=True)
class Check:
    """One kind of finding: its ``kind``, ``severity``, the ``file`` it is about, and its ``message``.

    The message is a template over named values, ``{name}`` in :meth:`str.format`'s syntax without format
    specs: ``"user {user}: email '{email}' is not a valid address; sent without an email"``. Calling the check
    with a mask, the record ids and a value for each name gives the findings for the masked rows, the
    message rendered per row. ``file`` is None for a check of every file (the validation of the built
    files), called through :meth:`about`; ``{file}`` in a message is the finding's file.
    """

    kind: str
    severity: str
    file: str | None
    message: str

    def __post_init__(self) -> None:
        _template(self.message)  # a malformed template fails where it is declared, not mid-build

    @property
    def names(self) -> tuple[str, ...]:
        """The names the message template reads, in order (each once)."""
        return tuple(dict.fromkeys(name for _, name in _template(self.message) if name is not None))

    def about(self, file: str) -> Check:
        """This check of every file, about ``file``."""
        if self.file is not None:
            raise TypeError(f"check {self.kind} is about {self.file} only")
        return replace(self, file=file)

    def __call__(self, mask: pd.Series, record_id: pd.Series, /, **values: pd.Series | str) -> pd.DataFrame:
        """Findings for the rows where ``mask`` is true; a value is a Series aligned with ``mask`` (one value
        per row) or a string (the same for every row).

        Only the masked rows are formatted, so a check over millions of rows costs little when few fail.
        """
        if self.file is None:
            raise TypeError(f"check {self.kind} is of every file: name the file with about()")
        if "file" in self.names:
            values = {**values, "file": self.file}
        if set(values) != set(self.names):
            raise TypeError(
                f"check {self.kind}: its message names {', '.join(self.names) or 'no values'}, "
                f"given {', '.join(sorted(values)) or 'none'}"
            )
        if not mask.any():
            return no_findings()
        rows = record_id[mask]
        parts: list[pd.Series | str] = [pd.Series("", index=rows.index, dtype="string")]
        for literal, name in _template(self.message):
            parts.append(literal)
            if name is not None:
                value = values[name]
                parts.append(value[mask] if isinstance(value, pd.Series) else value)
        return findings(self.kind, self.severity, self.file, rows, text(*parts))


@cache
def _template(message: str) -> tuple[tuple[str, str | None], ...]:
    """A message template as (literal text, name after it or None), checked to use names only."""
    out = []
    for literal, name, spec, conversion in string.Formatter().parse(message):
        if spec or conversion or (name is not None and not name.isidentifier()):
            raise ValueError(f"message template {message!r}: use plain {{name}} fields only")
        out.append((literal, name))
    return tuple(out)


def no_findings() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series([], dtype="string") for column in FINDING_COLUMNS})


def combine(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """All findings in one frame, in a stable order (by file, kind, record, message).

    Parts are most often the combined, so sorted, findings of one builder, and each kind of finding is made
    in one place: cut where a part ends or its file or kind changes, the sorted runs do not interleave. They
    are put in order of their first rows, and only when that cannot give the stable order is the whole
    sorted (by Arrow: pandas sorts several string keys ~4x slower).
    """
    frames = [part for part in parts if len(part)]
    if not frames:
        return no_findings()
    tables = [
        pa.Table.from_pandas(part.loc[:, list(FINDING_COLUMNS)], preserve_index=False).cast(_SCHEMA)
        for part in frames
    ]
    whole = pa.concat_tables(tables)
    runs = _ordered_runs(whole, np.cumsum([len(table) for table in tables]))
    if runs is None:
        whole = whole.take(pc.sort_indices(whole, sort_keys=[(key, "ascending") for key in ORDER]))
    else:
        whole = pa.concat_tables([whole.slice(start, stop - start) for start, stop in runs])
    out: pd.DataFrame = whole.to_pandas(types_mapper={pa.large_string(): pd.StringDtype("pyarrow")}.get)
    return out


_SCHEMA = pa.schema([(column, pa.large_string()) for column in FINDING_COLUMNS])
# combine(): past this many sorted runs, sorting the whole is simpler than putting the runs in order.
_MAX_RUNS = 256


def _ordered_runs(table: pa.Table, part_ends: np.ndarray) -> list[tuple[int, int]] | None:
    """The (start, stop) row ranges whose concatenation is ``table`` in stable ``ORDER``, or None.

    A run ends where a part ends or the file or kind changes, and must be sorted within itself. Put in
    order of their first rows, each run must end strictly before the next begins: with equal rows on
    both sides of a cut, a stable sort could have put the later part's row first.
    """
    if any(table.column(key).null_count for key in ORDER):
        return None
    length = len(table)
    before = same = same_group = np.zeros(0, dtype=bool)
    if length > 1:
        less, equal = pa.scalar(False), pa.scalar(True)
        for key in ORDER:
            column = table.column(key)
            this, following = column.slice(0, length - 1), column.slice(1)
            less = pc.or_(less, pc.and_(equal, pc.less(this, following)))
            equal = pc.and_(equal, pc.equal(this, following))
            if key == "kind":
                same_group = equal.to_numpy(zero_copy_only=False)
        before, same = less.to_numpy(zero_copy_only=False), equal.to_numpy(zero_copy_only=False)
    cut = ~same_group
    cut[part_ends[:-1] - 1] = True
    if not (before | same)[~cut].all():
        return None
    stops = np.append(np.flatnonzero(cut) + 1, length)
    starts = np.append(0, stops[:-1])
    if len(starts) > _MAX_RUNS:
        return None
    keys = table.select(list(ORDER))
    firsts = [tuple(row.values()) for row in keys.take(starts).to_pylist()]
    lasts = [tuple(row.values()) for row in keys.take(stops - 1).to_pylist()]
    order = sorted(range(len(starts)), key=lambda run: (firsts[run], run))
    if any(not lasts[this] < firsts[following] for this, following in pairwise(order)):
        return None
    return [(int(starts[run]), int(stops[run])) for run in order]


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
