"""Findings frames: combine's order is the stable sort of all parts, however the parts come."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from clever2sis.sis.findings import (
    FINDING_COLUMNS,
    Check,
    _ordered_runs,
    combine,
    findings,
    no_findings,
    text,
)

ORDER = ["file", "kind", "record_id", "message"]


def stable_sort(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """What combine promises, spelled the plain pandas way."""
    whole = pd.concat([part for part in parts if len(part)], ignore_index=True)
    return whole.sort_values(ORDER, kind="stable").reset_index(drop=True)


def part(rows: list[tuple[str, str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(FINDING_COLUMNS)).astype("string")


def random_rows(rng: random.Random, n: int) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            rng.choice(["kind_a", "kind_b"]),
            rng.choice(["warning", "info"]),
            rng.choice(["users.csv", "enrollments.csv", "courses.csv"]),
            rng.choice(["1", "2", "10", "é", "z", "𝒜", ""]),
            rng.choice(["m", "m2", "Ω", ""]),
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("seed", range(40))
def test_combine_is_a_stable_sort_of_the_parts(seed: int) -> None:
    rng = random.Random(seed)
    parts = [part(random_rows(rng, rng.randint(0, 12))) for _ in range(rng.randint(1, 6))]
    if seed % 2:  # parts combined already, as builders hand them on
        parts = [combine([p]) for p in parts]
    pd.testing.assert_frame_equal(combine(parts), stable_sort(parts))


def test_equal_rows_in_two_parts_keep_the_parts_order() -> None:
    first = part([("k", "warning", "users.csv", "1", "m"), ("k", "warning", "users.csv", "2", "m")])
    second = part([("k", "info", "users.csv", "0", "m"), ("k", "info", "users.csv", "1", "m")])
    pd.testing.assert_frame_equal(combine([first, second]), stable_sort([first, second]))
    assert combine([first, second])["severity"].tolist() == ["info", "warning", "info", "warning"]


def test_parts_that_do_not_interleave_come_out_in_order() -> None:
    users = part([("k", "warning", "users.csv", "1", "m")])
    accounts = part([("k", "warning", "accounts.csv", "9", "m"), ("z", "info", "accounts.csv", "1", "m")])
    pd.testing.assert_frame_equal(combine([users, accounts]), stable_sort([users, accounts]))


def test_runs_of_sorted_parts_are_placed_not_sorted() -> None:
    users = part([("b", "info", "users.csv", "1", "m"), ("d", "info", "users.csv", "0", "m")])
    cleaned = part([("c", "warning", "users.csv", "5", "m")])
    plan = part([("a", "info", "courses.csv", "2", "m"), ("a", "info", "sections.csv", "1", "m")])
    parts = [users, cleaned, plan]
    whole = pa.concat_tables([pa.Table.from_pandas(p, preserve_index=False) for p in parts])
    assert _ordered_runs(whole, np.cumsum([len(p) for p in parts])) == [
        (3, 4),
        (4, 5),
        (0, 1),
        (2, 3),
        (1, 2),
    ]
    pd.testing.assert_frame_equal(combine(parts), stable_sort(parts))


def test_a_part_out_of_order_is_sorted() -> None:
    unsorted = part([("k", "info", "users.csv", "2", "m"), ("k", "info", "users.csv", "1", "m")])
    whole = pa.Table.from_pandas(unsorted, preserve_index=False)
    assert _ordered_runs(whole, np.array([2])) is None
    assert combine([unsorted])["record_id"].tolist() == ["1", "2"]


def test_no_parts_and_empty_parts() -> None:
    assert combine([]).empty
    assert list(combine([no_findings(), no_findings()]).columns) == list(FINDING_COLUMNS)
    one = findings("k", "info", "users.csv", pd.Series(["1"]), pd.Series(["m"]))
    pd.testing.assert_frame_equal(combine([no_findings(), one]), stable_sort([one]))


def test_text_reads_missing_as_empty() -> None:
    index = pd.Index([5, 3, 9])
    names = pd.Series(["a", pd.NA, "c"], index=index, dtype="string")
    counts = pd.Series([1, 2, 3], index=index)
    assert text("user ", names, ": ", counts, "!").tolist() == ["user a: 1!", "user : 2!", "user c: 3!"]
    assert text("x", names).index.equals(index)


def test_text_of_series_on_different_rows_aligns_them() -> None:
    left = pd.Series(["a", "b"], index=[0, 1], dtype="string")
    right = pd.Series(["c", "d"], index=[1, 0], dtype="string")
    assert text(left, right).tolist() == ["ad", "bc"]


def test_a_check_renders_its_message_for_the_masked_rows() -> None:
    check = Check("k", "warning", "users.csv", "user {user}: email '{email}' is {what}; sent without it")
    index = pd.Index([7, 3, 9])
    user = pd.Series(["u7", "u3", "u9"], index=index, dtype="string")
    email = pd.Series(["a", pd.NA, "c"], index=index, dtype="string")
    found = check(pd.Series([True, True, False], index=index), user, user=user, email=email, what="bad")
    assert found.to_dict("list") == {
        "kind": ["k", "k"],
        "severity": ["warning", "warning"],
        "file": ["users.csv", "users.csv"],
        "record_id": ["u7", "u3"],
        "message": [
            "user u7: email 'a' is bad; sent without it",
            "user u3: email '' is bad; sent without it",
        ],
    }
    assert check.names == ("user", "email", "what")
    none = check(pd.Series([False] * 3, index=index), user, user=user, email=email, what="bad")
    pd.testing.assert_frame_equal(none, no_findings())


def test_a_check_of_constant_values_and_a_check_of_every_file() -> None:
    count = Check("n", "info", "users.csv", "{count} contact(s) left")
    assert count(pd.Series([True]), pd.Series(["d1"]), count="3")["message"].tolist() == ["3 contact(s) left"]
    every = Check("c", "warning", None, "{file} row {id}: cleaned")
    ids = pd.Series(["r1"], dtype="string")
    found = every.about("terms.csv")(pd.Series([True]), ids, id=ids)
    assert found[["file", "message"]].values.tolist() == [["terms.csv", "terms.csv row r1: cleaned"]]


def test_a_check_refuses_values_its_message_does_not_name() -> None:
    check = Check("k", "info", "users.csv", "user {user}")
    ids = pd.Series(["u"], dtype="string")
    with pytest.raises(TypeError, match=r"^check k: its message names user, given user, what$"):
        check(pd.Series([True]), ids, user=ids, what="x")
    with pytest.raises(TypeError, match=r"^check k: its message names user, given none$"):
        check(pd.Series([True]), ids)
    with pytest.raises(TypeError, match=r"^check k is about users.csv only$"):
        check.about("terms.csv")
    with pytest.raises(TypeError, match=r"^check c is of every file: name the file with about\(\)$"):
        Check("c", "info", None, "{file}")(pd.Series([True]), ids)
