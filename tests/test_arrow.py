"""The Arrow column helpers, each against what pandas (or plain Python) computes value by value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from clever2sis.sis.arrow import (
    arrow_strings,
    blank,
    dense_ranks,
    first_present,
    lookup,
    member,
    one_array,
    positions,
    ranks,
    repeated,
    rows_of,
    stacked,
    string_series,
    unless_blank,
)


def chunked(*chunks: list[object]) -> pd.Series:
    """A string column pandas holds as several Arrow chunks (as a concatenation or a file read leaves it)."""
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array(chunks, type=pa.large_string())))


def test_arrow_strings_of_a_column_an_index_and_object_strings() -> None:
    values = chunked(["a", None], ["b"])
    strings = arrow_strings(values)
    assert strings.type == pa.large_string()
    assert strings.num_chunks == 2
    assert strings.to_pylist() == ["a", None, "b"]
    assert arrow_strings(pd.Index(["x", "y"], dtype="string")).to_pylist() == ["x", "y"]
    assert arrow_strings(pd.Series(["p", None], dtype=object)).to_pylist() == ["p", None]


def test_one_array_joins_the_chunks_after_filtering() -> None:
    values = chunked(["a", "b"], ["c", None])
    assert one_array(values).to_pylist() == ["a", "b", "c", None]
    assert one_array(values, np.array([False, True, True, False])).to_pylist() == ["b", "c"]
    assert isinstance(one_array(values), pa.Array)


def test_string_series_keeps_the_index_given() -> None:
    series = string_series(pa.array(["a", None], pa.large_string()), pd.Index([7, 3]))
    assert series.dtype == pd.StringDtype("pyarrow")
    assert series.index.tolist() == [7, 3]
    assert series.fillna("-").tolist() == ["a", "-"]


def test_rows_of_is_loc_numbered_from_zero() -> None:
    frame = pd.DataFrame(
        {"id": chunked(["1", "2"], ["3"]), "name": pd.Series(["a", None, "c"], dtype="string")}
    )
    frame.index = [10, 20, 30]
    keep = np.array([True, False, True])
    out = rows_of(frame, keep, ["name", "id"])
    expected = frame.loc[keep, ["name", "id"]].reset_index(drop=True)
    assert out.columns.tolist() == ["name", "id"]
    assert out.fillna("-").to_dict("list") == expected.fillna("-").to_dict("list")
    assert out.index.tolist() == [0, 1]


def test_stacked_puts_parts_one_after_the_other_with_missing_runs() -> None:
    first = pd.Series(["a", None], index=[5, 6], dtype="string")
    out = stacked([first, 2, chunked(["b"], ["c"])])
    assert out.fillna("-").tolist() == ["a", "-", "-", "-", "b", "c"]
    assert out.index.tolist() == list(range(6))
    assert stacked([0, first]).fillna("-").tolist() == ["a", "-"]


def test_first_present_is_each_rows_first_value() -> None:
    a = pd.Series(["a", None, None], dtype="string")
    b = pd.Series(["x", "y", None], dtype="string")
    c = pd.Series(["p", "q", "r"], dtype="string")
    assert first_present(a, b, c).tolist() == ["a", "y", "r"]
    assert first_present(a) is a


@pytest.mark.parametrize("dtype", ["string", object])
def test_blank_is_missing_or_whitespace(dtype: str | type) -> None:
    values = pd.Series(["a", " ", "", pd.NA, "\u2003", " b ", "\x0b"], dtype=dtype)
    assert blank(values).tolist() == [False, True, True, True, True, False, True]


def test_unless_blank_makes_blank_values_missing() -> None:
    values = pd.Series(["a", " ", None, "\t b"], index=[4, 5, 6, 7], dtype="string")
    out = unless_blank(values)
    assert out.fillna("-").tolist() == ["a", "-", "-", "\t b"]
    assert out.index.tolist() == [4, 5, 6, 7]
    clean = pd.Series(["a", None], dtype="string")
    assert unless_blank(clean) is clean


def test_repeated_is_duplicated_given_a_stable_order() -> None:
    values = pd.Series(["b", "a", "b", None, "a", "", "c"], dtype="string")
    order = np.argsort(values.fillna("").to_numpy(dtype=object), kind="stable")
    assert repeated(values, order).tolist() == values.fillna("").duplicated().tolist()
    assert repeated(values.iloc[:1], np.array([0])).tolist() == [False]


@pytest.mark.parametrize(
    ("values", "of"),
    [
        (["a", "b", pd.NA, "c", "a"], ["a", "c", "a", "zz"]),  # a set with repeats
        (["a", "b", pd.NA], ["a", "b", pd.NA]),  # the same values: missing is still no member
        (["b", "a"], ["a", "b"]),  # the same set in another order
        (["a", "q"], [f"v{i}" for i in range(20)] + ["a"]),  # a set much larger than the values
        ([], ["a"]),
        (["a"], []),
    ],
)
def test_member_is_isin_with_missing_never_a_member(values: list[object], of: list[object]) -> None:
    series = pd.Series(values, index=range(10, 10 + len(values)), dtype="string")
    expected = series.isin(pd.Series(of, dtype="string").dropna()) & series.notna()
    assert member(series, pd.Series(of, dtype="string")).tolist() == expected.tolist()
    categorical = series.astype("category")
    assert member(categorical, pd.Series(of, dtype="string")).tolist() == expected.tolist()


def test_member_of_chunked_columns() -> None:
    values = chunked(["a", "b"], ["c"])
    assert member(values, pd.Series(["c", "a", "b"], dtype="string")).tolist() == [True, True, True]
    assert member(pd.Series(["c", "d"], dtype="string"), values).tolist() == [True, False]
    assert member(values, values).tolist() == [True, True, True]


def test_lookup_keeps_the_keys_index() -> None:
    keys = pd.Series(["b", "x", "a", pd.NA], index=[7, 3, 5, 1], dtype="string")
    mapping = pd.Series(["B", "A", "A2"], index=["b", "a", "a"], dtype="string")
    assert lookup(keys, mapping).fillna("-").to_dict() == {7: "B", 3: "-", 5: "A", 1: "-"}


def test_positions_in_an_array_for_plain_and_categorical_columns() -> None:
    of = pa.chunked_array([["u1", "u2"], ["u3"]], type=pa.large_string())
    values = pd.Series(["u3", "nobody", "u1", None, "u3"], dtype="string")
    assert positions(values, of).tolist() == [2, -1, 0, -1, 2]
    assert positions(values.astype("category"), of).tolist() == [2, -1, 0, -1, 2]
    assert positions(values, of).dtype == np.int32


def test_positions_in_a_much_larger_array_hash_only_its_hits_and_keep_the_first_match() -> None:
    of = pa.chunked_array([[f"u{n}" for n in range(40)], ["u7", None, "u39"]], type=pa.large_string())
    values = pd.Series(["u39", "nobody", "u7", None], dtype="string")
    assert positions(values, of).tolist() == [39, -1, 7, -1]
    assert positions(values.astype("category"), of).tolist() == [39, -1, 7, -1]


def test_ranks_are_sorted_positions_and_dense_ranks_share_ties() -> None:
    values = pa.chunked_array([["b", "é", "a"], ["c"]], type=pa.large_string())
    assert ranks(values).tolist() == [1, 3, 0, 2]
    courses = pd.Series(["m", "a", "m", "z", "a"], dtype="string")
    assert dense_ranks(courses).tolist() == [1, 0, 1, 2, 0]
