"""Conformance of the login rule's printable check (clever2sis/sis/builders/logins.py) with Ruby itself.

canvas-lms's ``Pseudonym`` validates ``unique_id`` with ``/\\A[[:print:]]+\\z/`` (app/models/pseudonym.rb).
One ruby process answers that regex for every code point (surrogates aside: UTF-8 cannot hold them), and
the rule, in its scalar and its vectorised (RE2) form, must answer the same. The one allowed difference
is the Unicode version: Python's tables and the installed Ruby's may be of different versions, and then the
code points that only the newer one assigns print there and not in the older. Skipped without ruby.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import unicodedata

import pyarrow as pa
import pytest

from clever2sis.sis.builders.logins import _first_unprintable, printable

RUBY_TIMEOUT_S = 120
LAST_CODE_POINT = 0x10FFFF
SURROGATES = range(0xD800, 0xE000)

# One character per code point on stdin (UTF-8, newline-free); a "1" or "0" per character on stdout.
PRINT_RB = r"""
$stdout.write(RbConfig::CONFIG["UNICODE_VERSION"] + "\n")
$stdin.set_encoding("UTF-8")
$stdout.write($stdin.read.each_char.map { |c| c.match?(/\A[[:print:]]+\z/) ? "1" : "0" }.join)
"""


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@pytest.fixture(scope="module")
def ruby_verdicts() -> tuple[str, list[int], str]:
    ruby = shutil.which("ruby")
    if ruby is None:
        pytest.skip("ruby is not installed")
    codes = [code for code in range(LAST_CODE_POINT + 1) if code not in SURROGATES]
    text = "".join(map(chr, codes))
    answer = subprocess.run(
        [ruby, "-e", PRINT_RB], input=text.encode(), capture_output=True, timeout=RUBY_TIMEOUT_S, check=True
    ).stdout.decode()
    ruby_unicode, verdicts = answer.split("\n", 1)
    assert len(verdicts) == len(codes)
    return ruby_unicode, codes, verdicts


def test_printable_is_rubys_print_class(ruby_verdicts: tuple[str, list[int], str]) -> None:
    ruby_unicode, codes, verdicts = ruby_verdicts
    ours = [printable(chr(code)) for code in codes]
    theirs = [verdict == "1" for verdict in verdicts]
    differ = [code for code, a, b in zip(codes, ours, theirs, strict=True) if a != b]
    if version(ruby_unicode) == version(unicodedata.unidata_version):
        assert differ == []
        return
    newer_is_ours = version(unicodedata.unidata_version) > version(ruby_unicode)
    # Only the code points one version assigns and the other leaves unassigned may differ, and then the
    # newer version prints them.
    assert all(printable(chr(code)) == newer_is_ours for code in differ)
    assert all(
        unicodedata.category(chr(code)) != "Cn" if newer_is_ours else unicodedata.category(chr(code)) == "Cn"
        for code in differ
    )
    assert len(differ) < 5_000, f"{len(differ)} differences between Unicode {ruby_unicode} and ours"


def test_the_vectorised_check_is_the_scalar_one() -> None:
    """Every code point of the Basic Multilingual Plane and every 89th above, each inside a value."""
    codes = [
        code
        for code in range(LAST_CODE_POINT + 1)
        if code not in SURROGATES and (code < 0x10000 or code % 89 == 0)
    ]
    rows, chars = _first_unprintable(pa.array([f"a{chr(code)}b" for code in codes], pa.large_string()))
    unprintable = [code for code in codes if not printable(chr(code))]
    assert [codes[row] for row in rows] == unprintable
    assert chars == [chr(code) for code in unprintable]
    assert sys.maxunicode == LAST_CODE_POINT
    mixed = pa.array(["ok", None, "t\tab\u2028", "é\u0378", "plain"], pa.large_string())
    rows, chars = _first_unprintable(mixed)
    assert (rows.tolist(), chars) == ([2, 3], ["\t", "\u0378"])
