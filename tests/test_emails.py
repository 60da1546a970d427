"""Canvas's email rule (clever2sis/sis/emails.py): the values Canvas keeps and the ones it warns about.

Every expectation here is what canvas-lms's ``EmailAddressValidator.valid?`` answers with the mail gem 2.8.1
(tests/test_emails_ruby.py asks the gem itself about thousands more). Each case goes through both forms of
the rule, the scalar one and the vectorised one, which must agree.
"""

from __future__ import annotations

import random
import re

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from clever2sis.sis.emails import ADDRESS_PATTERN, canvas_accepts_email, canvas_accepts_emails

# The examples of Canvas's importer rules (users.csv, email) and of canvas-lms's own spec for the validator.
SPEC_ACCEPTED = [
    "a@b",  # no dot needed in the domain
    "a..b@x.org",  # doubled and leading dots: mail 2.8.1 takes them
    ".a@x.org",
    '"john doe"@x.org',
    "o'brien@x.org",
    "user@example.com",
    '"non\\@triv"/ial@example.com',
]
SPEC_REFUSED = [
    'o"neil@example.com',  # a quote that opens no quoted string
    "a(b)@x.org",  # a comment right after the local part is lost
    "a,b@x.org",  # a list of two addresses
    "first.last.example.org",  # no @, so no domain
    "Ann <ann@x.org>",  # gives back ann@x.org, not the value
    "None",
    "@example.com",
    "user@",
    "user1@example.com, user2@example.com",
]

ACCEPTED = [
    # dots
    "a.@x.org",
    "a...b.@x.org",
    "a@.x.org",
    "a@x..org",
    '"."@x.org',
    # quoted strings: escapes, quoted pairs of any character, folding white space, next to atoms
    '"a\\"b"@x.org',
    '"a\\\\b"@x.org',
    '"\\é"@x.org',
    '"a\\ b"@x.org',
    '"\\\x00"@x.org',
    '"\\\n"@x.org',
    '"a\tb"@x.org',
    '"a\r\n b"@x.org',
    '""@x.org',
    '" "@x.org',
    '"a@b"@x.org',
    '"a".b@x.org',
    'a."b"@x.org',
    '"a""b"@x.org',
    'a"b"c@x.org',
    '"(not a comment)"@x.org',
    '"a\x01\x7f"@x.org',  # obsolete controls are qtext
    'a@"x".org',
    'a@x."y z"',
    # domain literals
    "a@[1.2.3.4]",
    "a@[IPv6:::1]",
    "a@[ 1.2.3.4 ]",
    "a@[\r\n 1]",
    "a@[]",
    "a@[a\\]b]",
    "a@[é]",
    "a@[(x)]",
    # obsolete domain: folding white space around the dots
    "a@x . org",
    "a@x.\r\n org",
    # comments the gem keeps
    "a (note)@x.org",
    "a\t(note)@x.org",
    "a\r\n (note)@x.org",
    "a (b(c))@x.org",
    "a (\\))@x.org",
    "a ()@x.org",
    "a (c) (d)@x.org",
    "a. (c)@x.org",
    "a. (c)(d)@x.org",
    "a@x.org (two  spaces)",
    "a@x.org(two  spaces)",
    "a@x (two  spaces).org",
    "a@[1.2.3.4](two  spaces)",
    "a (c)@x.org (two  spaces)",
    "a@x (a  (c))",
    # unicode (RFC 6532) and IDN
    "é@x.org",
    "a@bücher.de",
    "日本@例え.jp",
    "😀@x.org",
    "a@xn--bcher-kva.de",
    "\u00a0@x.org",  # a no-break space is just a non-ASCII character to the gem
    # an encoded word only counts inside the local part or the domain
    "=?a?q?x@y?=",
    "=?@x.org",
    "?=@x.org",
]

REFUSED = [
    "",
    " ",
    # white space and comments that the gem strips or deletes
    " a@x.org",
    "a@x.org ",
    "a @x.org",
    "a@ x.org",
    "(c)a@x.org",
    "a (c) @x.org",
    "a.  (c)@x.org",  # after a final dot only one space before the comment
    "a. (c) (d)@x.org",
    '"a" (c)@x.org',  # a lone quoted local part comes back without its comment
    '"a"(c)@x.org',
    "a@x.org (one)",
    "a@x.org (c)(two  spaces)",
    "a@(c)x.org",
    "a@[1.2.3.4] (two  spaces)",
    "a (c)@x.org(c)",
    'a (c)@"(c)"',  # the local part's comment deleted from the domain
    "a@x.org ((c))",
    "a (c",  # a comment never closed
    "a (c)x@x.org",
    # obsolete local parts the gem parses but cannot give back
    '"".a@x.org',
    'a.""@x.org',
    "a .b@x.org",
    "a. b@x.org",
    # dots
    ".@x.org",
    "a@x.org.",
    "a@.",
    "a@x .org.",
    # quoted strings and literals that do not close, or hold what they may not
    '"a@x.org',
    'a"@x.org',
    'a@""',
    '"a\r\nb"@x.org',
    '"a\nb"@x.org',
    '"a\x00"@x.org',
    '"a\r\n"@x.org',
    "a@[a[b]",
    "a@[1.2.3.4",
    # characters an atom may not hold
    "a b@x.org",
    "a\\b@x.org",
    "a@b\\c",
    "a\x01@x.org",
    "a\x7f@x.org",
    "a\x00@x.org",
    "a@x.org\n",
    "a@x.org\r\n",
    "a[b]@x.org",
    "a:b@x.org",
    "a;b@x.org",
    # the other shapes of an address field
    "<a@x.org>",
    "g: a@x.org;",
    "a@x.org;",
    "a@x.org,",
    "a@b@c",
    "@",
    "@x",
    "a@",
    # encoded words are decoded
    "=?utf-8?q?a?=@x.org",
    "a@=?utf-8?q?x?=.org",
    "=?UTF-8?B?YQ==?=@x.org",
    "=?a?q?b?c?=@x.org",  # mail 2.8.1 reads past a ? in the encoded text (2.7.1 does not)
    "a (=?u?q?x?=)@x.org",
    # no surrogates in UTF-8: nothing Canvas can be sent
    "\ud800@x.org",
]


def judge_both(values: list[str]) -> list[bool]:
    """The scalar rule for each value, after checking that the vectorised rule agrees on all of them."""
    scalar = [canvas_accepts_email(value) for value in values]
    arrow = [value for value in values if not _has_surrogate(value)]
    vectorised = canvas_accepts_emails(pa.array(arrow, pa.large_string())).to_pylist()
    assert vectorised == [canvas_accepts_email(value) for value in arrow]
    return scalar


def _has_surrogate(value: str) -> bool:
    return any(0xD800 <= ord(char) <= 0xDFFF for char in value)


@pytest.mark.parametrize("value", SPEC_ACCEPTED + ACCEPTED)
def test_accepted(value: str) -> None:
    assert judge_both([value]) == [True]


@pytest.mark.parametrize("value", SPEC_REFUSED + REFUSED)
def test_refused(value: str) -> None:
    assert judge_both([value]) == [False]


def test_all_cases_in_one_column() -> None:
    values = SPEC_ACCEPTED + ACCEPTED + SPEC_REFUSED + REFUSED
    expected = [True] * len(SPEC_ACCEPTED + ACCEPTED) + [False] * len(SPEC_REFUSED + REFUSED)
    assert judge_both(values) == expected


def test_vectorised_keeps_nulls_and_takes_series_and_arrays() -> None:
    values = ["a@x.org", None, "a(b)@x.org", "a (b)@x.org", "=?u?q?a?=@x.org", ""]
    expected = [True, None, False, True, False, False]
    assert canvas_accepts_emails(pd.Series(values, dtype="string[pyarrow]")).to_pylist() == expected
    assert canvas_accepts_emails(pd.Series(values, dtype=object)).to_pylist() == expected
    assert canvas_accepts_emails(pa.array(values)).to_pylist() == expected
    assert canvas_accepts_emails(pa.chunked_array([values[:2], values[2:]])).to_pylist() == expected
    assert canvas_accepts_emails(pa.array([], pa.string())).to_pylist() == []
    assert canvas_accepts_emails(pa.array([None, None], pa.string())).to_pylist() == [None, None]


def test_vectorised_reads_sliced_and_chunked_arrays() -> None:
    """Arrays that start inside their buffers, and empty chunks, find the same rare rows (here a comment
    and an encoded word, each right after the slice's start or next to an empty value)."""
    values = ["(x)", "a (b)@x.org", "", "=?u?q?a?=@x.org", "a@x.org", None, "a (b)@x.org (two  spaces)", ""]
    expected = [canvas_accepts_email(value) if value is not None else None for value in values]
    whole = pa.array(values, pa.large_string())
    assert canvas_accepts_emails(whole).to_pylist() == expected
    for start in range(len(values)):
        assert canvas_accepts_emails(whole.slice(start)).to_pylist() == expected[start:]
    pieces = [whole.slice(0, 0), whole.slice(0, 3), whole.slice(3, 0), whole.slice(3, 2), whole.slice(5)]
    assert canvas_accepts_emails(pa.chunked_array(pieces)).to_pylist() == expected


def test_address_pattern_reads_alike_in_re2_and_python() -> None:
    """ADDRESS_PATTERN is the rule for values without comments or encoded words, for either engine; RE2's
    $ never matches before a final newline, and Python's fullmatch stands in for its anchors."""
    values = [
        value for value in ACCEPTED + REFUSED + SPEC_ACCEPTED + SPEC_REFUSED if not _has_surrogate(value)
    ]
    in_re2 = pc.match_substring_regex(pa.array(values), ADDRESS_PATTERN).to_pylist()
    in_python = [re.fullmatch(ADDRESS_PATTERN[1:-1], value) is not None for value in values]
    assert in_re2 == in_python
    assert in_re2[values.index("a@x.org\n")] is False


class AddressMaker:
    """Addresses and near-addresses from the grammar's pieces (seeded, so the same every run): atoms with
    non-ASCII among them, dots, quoted strings with quoted pairs, controls and folding white space, domain
    literals, comments (nested, with doubled spaces, in the places the gem keeps them and elsewhere),
    encoded words, then for some a mutation (a special character put in, a character taken out, angle
    brackets, a list, white space or a comment in front)."""

    ATEXT = "abcXYZ019!#$%&'*+-/=?^_`{|}~"
    NON_ASCII = ("é", "ü", "日本", "\u00a0", "\u200b", "😀", "\u0085", "\u2028", "ß")
    CONTROLS = ("\x00", "\x01", "\x07", "\x0b", "\x0c", "\x1f", "\x7f", "\r", "\n", "\t", " ", "\r\n")
    SPECIALS = (*'()<>[]:;@\\,."', " ")
    FOLDS = (" ", "\t", "\r\n ", "\r\n\t", " \r\n ", "  ")
    ENCODED = ("=?utf-8?q?a?=", "=?x?b?YQ==?=", "=?a?q?b?c?=", "=?", "?=")

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def address(self, comments: float) -> str:
        rng = self.rng
        local = self.dotted(comments) if rng.random() < 0.85 else self.quoted()
        domain = self.dotted(comments) if rng.random() < 0.85 else self.literal()
        if rng.random() < comments:
            local += rng.choice(self.FOLDS[:3]) + self.comment()
        if rng.random() < comments:
            domain += rng.choice(("", " ")) + self.comment()
        value = f"{local}@{domain}"
        return self.mutated(value) if rng.random() < 0.3 else value

    def atom(self) -> str:
        rng = self.rng
        length = rng.choice((1, 1, 1, 2, 3, 5))
        return "".join(
            rng.choice(self.ATEXT) if rng.random() < 0.85 else rng.choice(self.NON_ASCII)
            for _ in range(length)
        )

    def quoted(self) -> str:
        rng = self.rng
        items = []
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            kind = rng.random()
            if kind < 0.5:
                items.append(self.atom())
            elif kind < 0.65:
                items.append(
                    "\\" + rng.choice((*self.ATEXT, *self.CONTROLS, *self.NON_ASCII, '"', "\\", "("))
                )
            elif kind < 0.8:
                items.append(rng.choice((*self.FOLDS, "\r\n", "\r", "\n")))
            else:
                items.append(rng.choice(self.CONTROLS + self.SPECIALS))
        return '"' + "".join(items) + '"'

    def comment(self, depth: int = 0) -> str:
        rng = self.rng
        items = []
        for _ in range(rng.choice((0, 1, 1, 2))):
            kind = rng.random()
            if kind < 0.5:
                items.append(self.atom())
            elif kind < 0.65:
                items.append(rng.choice(self.FOLDS))
            elif kind < 0.75 and depth < 3:
                items.append(self.comment(depth + 1))
            elif kind < 0.85:
                items.append("\\" + rng.choice(("(", ")", "\\", "a", " ", *self.NON_ASCII)))
            else:
                items.append(rng.choice(self.SPECIALS + self.CONTROLS))
        return "(" + "".join(items) + ")"

    def element(self) -> str:
        kind = self.rng.random()
        if kind < 0.7:
            return self.atom()
        return self.quoted() if kind < 0.9 else self.rng.choice(self.ENCODED)

    def dotted(self, comments: float) -> str:
        rng = self.rng
        parts = ["." * rng.choice((1, 2))] if rng.random() < 0.1 else []
        for index in range(rng.choice((1, 1, 2, 3))):
            if index:
                parts.append("." * rng.choice((1, 1, 1, 1, 2, 0)))
            if rng.random() < comments:
                parts.append(rng.choice((*self.FOLDS, self.comment())))
            parts.append(self.element())
            if rng.random() < comments:
                parts.append(rng.choice((*self.FOLDS, self.comment())))
        if rng.random() < 0.1:
            parts.append(".")
        return "".join(parts)

    def literal(self) -> str:
        rng = self.rng
        items = []
        for _ in range(rng.choice((0, 1, 2, 3))):
            kind = rng.random()
            if kind < 0.5:
                items.append(rng.choice(("1.2.3.4", "IPv6:::1", "x", "é", "a:b")))
            elif kind < 0.7:
                items.append(
                    "\\" + rng.choice(("[", "]", "\\", "a", " ", *self.NON_ASCII, *self.CONTROLS[:5]))
                )
            elif kind < 0.85:
                items.append(rng.choice((" ", "\t", "\r\n ", "\r\n")))
            else:
                items.append(rng.choice(self.SPECIALS + self.CONTROLS))
        return "[" + "".join(items) + "]"

    def mutated(self, value: str) -> str:
        rng = self.rng
        kind, at = rng.random(), rng.randrange(len(value) + 1)
        if kind < 0.4:
            return (
                value[:at] + rng.choice((*self.SPECIALS, *self.CONTROLS, *self.NON_ASCII, "@")) + value[at:]
            )
        if kind < 0.6:
            return value[:at] + value[at + 1 :]
        if kind < 0.7:
            return f"Ann <{value}>"
        if kind < 0.8:
            return value + rng.choice((",", ";", " ", ".", ",b@c"))
        return rng.choice((" ", "\t", "(c)")) + value


def generated_addresses(count: int, seed: int) -> list[str]:
    """``count`` values from AddressMaker, a third of them with comments about."""
    maker = AddressMaker(seed)
    return [maker.address(comments=0.3 if index % 3 == 0 else 0.0) for index in range(count)]


def test_scalar_and_vectorised_agree_on_generated_values() -> None:
    values = generated_addresses(5000, seed=2822)
    vectorised = canvas_accepts_emails(pa.array(values)).to_pylist()
    scalar = [canvas_accepts_email(value) for value in values]
    assert vectorised == scalar
    assert 100 < sum(scalar) < len(values) - 100  # the values are near the boundary, on both sides of it


def test_long_values_are_judged_in_linear_time() -> None:
    """No pattern backtracks badly: a long value without its @, or with comments, is refused at once."""
    for value in ["a" * 100_000, "a." * 50_000 + " (c)", '"' + "a" * 100_000, "a (" + "(" * 5_000 + "@x"]:
        assert judge_both([value]) == [False]
