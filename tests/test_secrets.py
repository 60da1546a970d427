"""The token check and the redactor (clever2sis/secrets.py)."""

from __future__ import annotations

import pytest

from clever2sis.errors import CanvasSettingsError, UsageError
from clever2sis.secrets import MIN_TOKEN_CHARS, REDACTED, Redactor, check_token, token_problem
from tests.canvas_server import TEST_TOKEN
from tests.test_sync_month import CLEVER_TOKEN as MONTH_CLEVER_TOKEN

CLEVER_SHAPED = "3f5a" * 10  # Clever: 40 hex characters
CANVAS_SHAPED = "1~" + "Zq8RtY2uWx" * 6 + "AbCd"  # Canvas: shard id, "~", 64 random characters


@pytest.mark.parametrize("token", [CLEVER_SHAPED, CANVAS_SHAPED, TEST_TOKEN, MONTH_CLEVER_TOKEN])
def test_real_token_shapes_and_the_suites_tokens_pass(token: str) -> None:
    assert len(token) >= MIN_TOKEN_CHARS
    assert token_problem(token) is None
    assert check_token(f"  {token}\r\n", "X", fix="-") == token


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        (f"{CLEVER_SHAPED}\n{CLEVER_SHAPED}", "has 2 lines; a token is one line"),
        (f"{CLEVER_SHAPED}\r\n\r\n{CLEVER_SHAPED}\r\n", "has 3 lines; a token is one line"),
        (f"{CLEVER_SHAPED}\r{CLEVER_SHAPED}", "has 2 lines; a token is one line"),
        (f"{CLEVER_SHAPED}\t", None),
        (
            f"{CLEVER_SHAPED[:5]}\t{CLEVER_SHAPED[5:]}",
            "contains a non-printable or non-ASCII character (character 6 of 41)",
        ),
        (f"{CLEVER_SHAPED}\x7f", "contains a non-printable or non-ASCII character (character 41 of 41)"),
        (f"\u00e9{CLEVER_SHAPED}", "contains a non-printable or non-ASCII character (character 1 of 41)"),
        (f"\u2028{CLEVER_SHAPED}", "contains a non-printable or non-ASCII character (character 1 of 41)"),
        (f"Bearer {CLEVER_SHAPED}", "contains a space (character 7 of 47); a token has none, give it alone"),
        ("t", "is shorter than 32 characters (it has 1), too short to redact safely"),
        ("", "is shorter than 32 characters (it has 0), too short to redact safely"),
        ("x" * 31, "is shorter than 32 characters (it has 31), too short to redact safely"),
        ("x" * 32, None),
    ],
)
def test_token_problems_are_named_without_quoting_the_token(token: str, problem: str | None) -> None:
    assert token_problem(token) == problem
    if problem is not None:
        assert not any(token.strip()[i : i + 4] in problem for i in range(max(len(token.strip()) - 3, 0)))


def test_check_token_raises_the_given_error_naming_the_source() -> None:
    with pytest.raises(UsageError) as raised:
        check_token("ab\ncd", "CLEVER_TOKEN_FILE file /tmp/t", fix="put the token alone in it")
    assert (
        str(raised.value)
        == "CLEVER_TOKEN_FILE file /tmp/t has 2 lines; a token is one line: put the token alone in it"
    )
    with pytest.raises(
        CanvasSettingsError, match=r"^CANVAS_TOKEN is shorter than 32 characters \(it has 1\)"
    ):
        check_token("t", "CANVAS_TOKEN", fix="set it", error=CanvasSettingsError)


def test_redaction_ignores_case() -> None:
    redact = Redactor([CANVAS_SHAPED])
    echoed = f"AUTHORIZATION: BEARER {CANVAS_SHAPED.upper()}; authorization: bearer {CANVAS_SHAPED.lower()}"
    assert redact(echoed) == f"AUTHORIZATION: BEARER {REDACTED}; authorization: bearer {REDACTED}"


def test_a_secret_inside_another_is_replaced_whole_whichever_comes_first() -> None:
    short, long = CLEVER_SHAPED, CLEVER_SHAPED + "-extended"
    text = f"a {long} b {short} c {long.upper()}"
    expected = f"a {REDACTED} b {REDACTED} c {REDACTED}"
    assert Redactor([short, long])(text) == expected
    assert Redactor([long, short])(text) == expected
    later = Redactor([short])
    later.add(long)
    assert later(text) == expected


def test_one_character_secrets_never_garble_the_marker() -> None:
    # The old loop of str.replace turned "t" into the marker, then "e" inside every marker, and so on.
    redact = Redactor(["t", "e", "d", "[", "]"])
    assert (
        redact("the date [redacted]") == f"{REDACTED}h{REDACTED} {REDACTED}a{REDACTED}{REDACTED} {REDACTED}"
    )
    assert redact(redact("the date")) == redact("the date")
    assert Redactor(["redacted"])("REDACTED [redacted]") == f"{REDACTED} {REDACTED}"


@pytest.mark.parametrize(
    "echoed",
    [
        CANVAS_SHAPED.replace("~", "%7E"),  # an older URL encoder
        CANVAS_SHAPED.replace("~", "%7e"),
        "b'Bearer " + CANVAS_SHAPED + "'",  # a repr of the header's bytes
    ],
)
def test_the_encodings_a_server_echoes_are_redacted(echoed: str) -> None:
    assert CANVAS_SHAPED[2:] not in Redactor([CANVAS_SHAPED])(f"echo: {echoed}")


def test_json_and_repr_escapes_of_a_token_with_quotes_are_redacted() -> None:
    token = "ab\"cd'ef\\gh" + "x" * 30
    redact = Redactor([token])
    assert (
        redact('{"message": "ab\\"cd\'ef\\\\ghxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}')
        == f'{{"message": "{REDACTED}"}}'
    )
    assert redact(repr(token)) == f"'{REDACTED}'"


def test_no_secret_changes_nothing() -> None:
    assert Redactor()("[redacted] t") == "[redacted] t"
    assert Redactor([""])("anything") == "anything"
    assert repr(Redactor([CANVAS_SHAPED])) == "Redactor(forms=2)"  # never the secret itself
