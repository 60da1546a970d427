"""Column helpers the builders share: string columns read, filtered, compared and looked up by Arrow.

A district has a million users and tens of millions of roster entries. pandas holds string columns as
Arrow arrays (``string[pyarrow]``) but many of its operations on them run value by value in Python or copy
the column first; these do the same work in one Arrow pass (each docstring says how much faster where it
was measured). Missing values are ``<NA>`` throughout, as the frames of :mod:`clever2sis.clever.frames`
hold them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# member(): look ``of`` up among ``values`` first when it is this many times longer.
_PROBE_THE_SET_FACTOR = 4


def arrow_strings(values: pd.Series | pd.Index) -> pa.ChunkedArray:
    """The Arrow strings (large_string) behind a string column or index, without a copy where pandas holds
    them in Arrow already; an Index is read through its array, never as Python objects."""
    array = pa.array(values.array, type=pa.large_string(), from_pandas=True)
    return array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])


def one_array(values: pd.Series, keep: np.ndarray | None = None) -> pa.Array:
    """The column (its rows where ``keep``) as one Arrow array: pandas may hold it in many chunks, which
    are filtered before they are joined."""
    strings = arrow_strings(values)
    if keep is not None:
        strings = strings.filter(keep)
    return strings.combine_chunks()


def string_series(strings: pa.Array | pa.ChunkedArray, index: pd.Index | None = None) -> pd.Series:
    """Arrow strings as a ``string[pyarrow]`` column, without a copy."""
    return pd.Series(pd.arrays.ArrowStringArray(strings), index=index, dtype="string")


def rows_of(frame: pd.DataFrame, keep: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """``frame.loc[keep, columns]`` for string columns, numbered from 0, filtered by Arrow (pandas takes by
    position, ~5x slower). Each column's chunks are filtered where they are and then joined once, so later
    steps find one array (joining them before would copy the rows left out too)."""
    return pd.DataFrame({column: string_series(one_array(frame[column], keep)) for column in columns})


def stacked(parts: list[pd.Series | int]) -> pd.Series:
    """The string columns of ``parts`` one after the other, numbered from 0; an int part is that many
    missing values (a column one group of rows does not have). The parts' chunks are kept, not copied."""
    chunks: list[pa.Array] = []
    for part in parts:
        chunks += [pa.nulls(part, pa.large_string())] if isinstance(part, int) else arrow_strings(part).chunks
    return string_series(pa.chunked_array(chunks, type=pa.large_string()))


def first_present(*columns: pd.Series) -> pd.Series:
    """Each row's first present value among ``columns`` (aligned string columns)."""
    if len(columns) == 1:
        return columns[0]
    return string_series(pc.coalesce(*(one_array(column) for column in columns)), columns[0].index)


def blank(values: pd.Series) -> pd.Series:
    """True where a string value is missing or only whitespace.

    Arrow strings are trimmed by Arrow directly (what pandas' ``str.strip`` calls), without first filling
    missing values into a copy of the column.
    """
    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"):
        return values.fillna("").str.strip() == ""
    empty = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(arrow_strings(values)), ""), True)
    return pd.Series(empty.to_numpy(zero_copy_only=False), index=values.index)


def unless_blank(values: pd.Series) -> pd.Series:
    """``values`` with blank ones (missing or only whitespace) made ``<NA>``; ``values`` itself if none is."""
    empty = blank(values)
    if not (empty & values.notna()).any():
        return values
    kept = pc.if_else(pa.array(empty.to_numpy()), pa.scalar(None, pa.large_string()), one_array(values))
    return string_series(kept, values.index)


def repeated(values: pd.Series, order: np.ndarray) -> pd.Series:
    """``values.duplicated()`` given ``order``, a stable sort of ``values``: in it a repeated value comes
    right after its first occurrence. Missing values read as empty."""
    in_order = pc.fill_null(one_array(values), "").take(pa.array(order))
    out = np.zeros(len(values), dtype=bool)
    if len(values) > 1:
        same = pc.equal(in_order.slice(1), in_order.slice(0, len(values) - 1))
        out[order[1:]] = same.to_numpy(zero_copy_only=False)
    return pd.Series(out, index=values.index)


def _hits(of: pa.ChunkedArray, strings: pa.ChunkedArray) -> np.ndarray | None:
    """The positions of ``of`` that hold one of ``strings``, when ``of`` is much the larger (then hashing
    ``strings`` and probing ``of`` is cheaper than hashing ``of``); None when it is not."""
    if len(of) <= _PROBE_THE_SET_FACTOR * len(strings):
        return None
    return np.flatnonzero(pc.is_in(of, value_set=strings, skip_nulls=True).to_numpy(zero_copy_only=False))


def member(values: pd.Series, of: pd.Series | pd.Index) -> pd.Series:
    """``values.isin(of)`` for strings, computed by Arrow (pandas' own is ~20x slower on Arrow strings).

    Missing values are never members. Arrow hashes the set it looks in, and building that table costs
    ~10x more per value than looking a value up in it; so when ``of`` is much the larger, the values of
    ``of`` are looked up among ``values`` first and only the hits become the set. When ``values`` are the
    very values of ``of`` in the same order (ids handed from one file to the next), nothing is hashed.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = member(pd.Series(values.cat.categories, dtype="string"), of).to_numpy()
        codes = values.cat.codes.to_numpy()
        return pd.Series(np.where(codes >= 0, categories[codes], False), index=values.index)
    strings, value_set = arrow_strings(values), arrow_strings(of)
    if len(strings) == len(value_set) and not strings.null_count and strings.equals(value_set):
        return pd.Series(True, index=values.index)
    hits = _hits(value_set, strings)
    if hits is not None:
        value_set = value_set.take(hits)
    found = pc.is_in(strings, value_set=value_set, skip_nulls=True)
    return pd.Series(found.to_numpy(zero_copy_only=False), index=values.index).fillna(False).astype(bool)


def lookup(keys: pd.Series, mapping: pd.Series) -> pd.Series:
    """``mapping[key]`` for each key, ``<NA>`` where the key is missing or unknown (first match wins)."""
    positions = pc.index_in(arrow_strings(keys), value_set=arrow_strings(mapping.index))
    taken = arrow_strings(mapping.reset_index(drop=True)).take(positions)
    # to_numpy, not to_pandas: a pandas Series would be re-aligned on its own RangeIndex.
    return pd.Series(taken.to_numpy(zero_copy_only=False), index=keys.index, dtype="string")


def positions(values: pd.Series | pd.Index, of: pa.ChunkedArray) -> np.ndarray:
    """Each value's position in ``of`` (-1 where absent or missing), by Arrow's hash lookup; a categorical
    column is looked up once per category (a roster names each student in many sections). When ``of`` is
    much the larger, only the part of it that holds the values is hashed, as in :func:`member` (a district's
    teachers among its million users)."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        per_category = positions(values.cat.categories, of)
        codes = values.cat.codes.to_numpy()
        return np.where(codes >= 0, per_category[codes], np.int32(-1))
    strings = arrow_strings(values)
    hits = _hits(of, strings)
    if hits is None:
        found = pc.index_in(strings, value_set=of)
        return np.asarray(pc.fill_null(found, -1).to_numpy(), dtype=np.int32)
    found = pc.index_in(strings, value_set=of.take(hits))
    at = np.asarray(pc.fill_null(found, -1).to_numpy(), dtype=np.int64)
    return np.where(at >= 0, hits[at], -1).astype(np.int32)


def ranks(values: pa.ChunkedArray) -> np.ndarray:
    """The rank of each string in sorted order (ties broken by position)."""
    order = pc.sort_indices(values).to_numpy()
    out = np.empty(len(order), dtype=np.int64)
    out[order] = np.arange(len(order))
    return out


def dense_ranks(values: pd.Series) -> np.ndarray:
    """Dense ranks of strings that may repeat (equal strings share a rank, the next rank follows)."""
    codes, _ = pd.factorize(values, sort=True)
    return np.asarray(codes, dtype=np.int64)
