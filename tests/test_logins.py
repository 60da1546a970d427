"""The login rule (clever2sis/sis/builders/logins.py) on candidate columns made here."""

from __future__ import annotations

import pandas as pd

from clever2sis.sis.builders.logins import assign_logins


def column(*values: str | None, index: list[int] | None = None) -> pd.Series:
    return pd.Series([pd.NA if value is None else value for value in values], index=index, dtype="string")


def lost_rows(lost: pd.DataFrame) -> list[tuple[object, ...]]:
    return [(index, *row) for index, row in zip(lost.index, lost.itertuples(index=False), strict=True)]


def test_login_value_contested_once_is_never_given_to_anyone() -> None:
    usernames = column("jsmith", "JSmith ", None, "ok")
    emails = column("a@x.org", None, "jsmith", "ok@x.org")
    login, lost, _ = assign_logins([("district_username", usernames), ("email", emails)])
    assert login.tolist() == ["a@x.org", pd.NA, pd.NA, "ok"]
    assert lost_rows(lost) == [
        (0, "district_username", "jsmith", "is shared by 2 users"),
        (1, "district_username", "JSmith", "is shared by 2 users"),
        (2, "email", "jsmith", "is already another user's login"),
    ]


def test_the_first_usable_field_wins_and_values_are_trimmed() -> None:
    login, lost, _ = assign_logins(
        [("sis_id", column(None, " S1 ", "S2")), ("email", column("a@x.org", "b@x.org", None))]
    )
    assert login.tolist() == ["a@x.org", "S1", "S2"]
    assert lost.empty
    assert list(lost.columns) == ["field", "value", "reason"]


def test_a_value_given_to_one_user_is_refused_to_a_later_field_regardless_of_case() -> None:
    login, lost, _ = assign_logins(
        [("district_username", column("Ann", None)), ("email", column(None, "ANN"))]
    )
    assert login.tolist() == ["Ann", pd.NA]
    assert lost_rows(lost) == [(1, "email", "ANN", "is already another user's login")]


def test_everyone_s_first_field_is_settled_before_anyone_s_second() -> None:
    """User 1 offers "kim" as a second choice: user 0, offering it first, still gets it."""
    login, lost, _ = assign_logins(
        [("district_username", column("kim", "lee")), ("email", column(None, "kim"))]
    )
    assert login.tolist() == ["kim", "lee"]
    assert lost.empty


def test_a_user_who_loses_twice_is_listed_with_the_first_loss() -> None:
    usernames = column("x", "x", "x", "y")
    emails = column("y", None, "q", None)
    login, lost, _ = assign_logins(
        [("district_username", usernames), ("email", emails)],
    )
    assert login.tolist() == [pd.NA, pd.NA, "q", "y"]
    assert lost_rows(lost) == [
        (0, "district_username", "x", "is shared by 3 users"),
        (1, "district_username", "x", "is shared by 3 users"),
        (2, "district_username", "x", "is shared by 3 users"),
    ]


def test_results_keep_the_candidates_index_and_a_field_nobody_has_is_harmless() -> None:
    index = [30, 10, 20]
    usernames = column("a", "a", "b", index=index)
    login, lost, _ = assign_logins(
        [("district_username", usernames), ("observers.login_id", column(None, None, None, index=index))]
    )
    assert login.index.tolist() == index
    assert login.fillna("-").tolist() == ["-", "-", "b"]
    assert lost.index.tolist() == [30, 10]


def test_a_value_canvas_would_not_save_is_refused_only_while_its_user_has_no_login() -> None:
    """Pseudonym takes at most 100 characters of [[:print:]]: a refused value is passed over like a lost
    one, and one the rule never reaches (the user has a login already) is not judged."""
    usernames = column("a" * 101, "ok", "x\u2028y", None)
    emails = column("a@x.org", "b" * 101, "c@x.org", "d\x00")
    login, lost, refused = assign_logins([("district_username", usernames), ("email", emails)])
    assert login.tolist() == ["a@x.org", "ok", "c@x.org", pd.NA]
    assert lost.empty
    assert lost_rows(refused) == [
        (0, "district_username", "a" * 101, "is 101 characters long, more than the 100 Canvas takes"),
        (
            2,
            "district_username",
            "x\u2028y",
            "holds U+2028 (LINE SEPARATOR), which Canvas does not take in a login",
        ),
        (3, "email", "d\x00", "holds U+0000, which Canvas does not take in a login"),
    ]


def test_a_refused_value_takes_no_login_from_anyone() -> None:
    """Two users offering the same 101-character value: neither is given it, and it does not count as
    contested (it was never a login)."""
    login, lost, refused = assign_logins([("district_username", column("x" * 101, "X" * 101))])
    assert login.tolist() == [pd.NA, pd.NA]
    assert lost.empty
    assert list(refused.index) == [0, 1]
