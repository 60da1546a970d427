"""Which email addresses Canvas keeps: its own rule, in Python and as one RE2 pattern for Arrow.

Canvas's SIS importer saves a user's email only when ``EmailAddressValidator.valid?`` says yes
(canvas-lms ``lib/email_address_validator.rb``, called from ``lib/sis/user_importer.rb``); otherwise it warns
``The email address associated with user '{user_id}' is invalid (email: '{email}')`` and saves the user
without it. The validator parses the value with the Ruby ``mail`` gem (canvas-lms pins 2.8.1) and accepts it
when ``Mail::Address.new(value)`` raises no ``Mail::Field::ParseError``, finds a domain, and gives back an
``address`` equal to the value itself. So the rule is the gem's grammar plus what the gem does to a parsed
address on its way back out:

* **The grammar** is RFC 2822 §3.4.1's addr-spec with the obsolete forms of §4.4, as the gem's Ragel
  machines spell them (``lib/mail/parsers/rfc5322_address.rl``, ``rfc5322_lexical_tokens.rl``,
  ``rfc5234_abnf_core_rules.rl`` and ``rfc3629_utf8.rl``, run by ``address_lists_parser.rl``). A local part
  is any run of atoms, dots and non-empty quoted strings with at least one atom or string in it, so leading,
  trailing and doubled dots pass (``.a@x.org``, ``a..b@x.org``, ``a.@x.org``), or one quoted string alone,
  even an empty one (``""@x.org``). A domain is a run of atoms and non-empty quoted strings with dots
  between and before them but not after (``a@b``, ``a@.b``, ``a@x."y"``; not ``a@x.``), atoms with folding
  white space around their dots (§4.4's obs-domain: ``a@x . y``), or a domain literal (``a@[1.2.3.4]``:
  any character but ``[``, ``]``, ``\\``, NUL, CR and LF, any character after a backslash, and folding
  white space). Atoms are RFC 2822's atext and
  every non-ASCII character (RFC 6532: ``é@x.org`` and IDN domains pass as they are); a quoted string holds
  any character but ``"``, ``\\``, NUL, CR and LF, any character after a backslash, and folding white space
  (a CR LF only with a space or tab after it). Angle brackets, display names, groups and lists never give
  back the value itself.
* **Nothing may be lost on the way back out** (``lib/mail/elements/address.rb``). The gem strips white
  space around the local part and the domain, rebuilds a lone quoted local part from its contents, loses a
  comment that starts the local part, and deletes from the domain the text of every comment of the
  address, squeezed of its runs of spaces and put back in parentheses; any of those makes ``address``
  differ from the value. So comments survive in two places only: after white space at the end of a dotted
  local part (``a (note)@x.org``; after a final dot, one space or CR LF space and then comments back to
  back), and in a domain that none of the address's comments reappears in, squeezed
  (``a@x.org (two  spaces)`` passes, ``a@x.org (one)`` does not). After a local part that ends in a dot and
  a comment the gem's machine reads the domain another way, which this rule does not follow: it accepts such
  an address only with a bare domain (no white space, no comment) and refuses the rest, some of which the
  gem would take.
* **Encoded words are decoded** (``lib/mail/encodings.rb`` with ``Mail::Constants::ENCODED_VALUE``): a local
  part or domain holding ``=?charset?Q?text?=`` or ``=?charset?B?text?=``, in either case, comes back
  decoded, so it never equals the value.

Without comments the rule but for encoded words is a regular language, compiled into one pattern
(``ADDRESS_PATTERN``) that Python's ``re`` and Arrow's RE2 read alike. Comments nest to any depth, and the
domain check compares a comment's text with the rest of the domain: no regular expression does either. An
encoded word counts only inside the local part or the domain, not across the ``@``. So
``canvas_accepts_emails`` runs RE2 over a million values and gives Python only those that hold a ``=?`` and
pass the pattern, or hold a ``(`` and fail it but pass a looser pattern with comments in it: none in a real
roster.

Checked against the gem itself on generated strings (``tests/test_emails_ruby.py``). mail 2.7.1 (Debian 12's
``ruby-mail``) has the same grammar; its encoded-word pattern stops at a ``?`` in the encoded text.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Character classes (the insides of [...]), in syntax that Python's re and RE2 read the same way.
# Every non-ASCII character: UTF-8 has no surrogates, so Python must not let them pass either.
_NON_ASCII = "\u0080-\ud7ff\ue000-\U0010ffff"
# RFC 2822 §3.2.4 atext, and (RFC 6532) any non-ASCII character.
_ATEXT = "A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~" + _NON_ASCII
# The controls RFC 2822 §4.1 keeps as obs-NO-WS-CTL: all but NUL, tab, CR, LF; and DEL.
_OBS_NO_WS_CTL = "\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f"
# qtext: printable ASCII but space, " and \, the obsolete controls, non-ASCII.
_QTEXT = _OBS_NO_WS_CTL + "\\x21\\x23-\\x5b\\x5d-\\x7e" + _NON_ASCII
# dtext (inside a domain literal): printable ASCII but space, [, ] and \, the obsolete controls, non-ASCII.
_DTEXT = _OBS_NO_WS_CTL + "\\x21-\\x5a\\x5e-\\x7e" + _NON_ASCII

# A backslash and any character (quoted-pair with obs-qp: NUL, CR and LF too).
_QUOTED_PAIR = "\\\\[\\x00-\\x7f" + _NON_ASCII + "]"
# One unit of folding white space: a space or tab, with a CR LF before it or not (obs-FWS).
_WSP = "(?:\\r\\n)?[\\t ]"
_FWS = f"(?:{_WSP})+"
_QCONTENT = f"(?:[{_QTEXT}]|{_QUOTED_PAIR})"
_QUOTED = f'"(?:{_QCONTENT}|{_WSP})*"'
# The mail gem's domain_text takes a quoted string only with something besides white space inside.
_QUOTED_NON_EMPTY = f'"(?:{_WSP})*{_QCONTENT}(?:{_QCONTENT}|{_WSP})*"'
# One element of a dotted local part or domain: a character of an atom, or a non-empty quoted string.
_ELEMENT = f"(?:[{_ATEXT}]|{_QUOTED_NON_EMPTY})"
_DOMAIN_LITERAL = f"\\[(?:[{_DTEXT}]|{_QUOTED_PAIR}|{_WSP})*\\]"

# Where a comment stood in a value, once _skeleton has taken it out: a NUL, which the grammar never admits
# outside a quoted string, a domain literal or a comment.
_COMMENT = "\\x00"
# For RE2, in place of that NUL: a "(", anything, a ")". Every comment is one, so the pattern it makes
# accepts every address with comments that Canvas accepts (and more, which Python then refuses).
_ANY_COMMENT = "\\((?s:.)*\\)"


_DOTTED_LOCAL_PART = f"\\.*(?:{_ELEMENT}\\.*)+"
_ENDS_IN_DOT = f"(?:\\.*{_ELEMENT})+\\.+"
_DOTTED_DOMAIN = f"\\.*{_ELEMENT}(?:\\.*{_ELEMENT})*"


def _local_part(comment: str | None) -> str:
    """The local parts the gem gives back unchanged: without comments, or with the ones it keeps, each
    written as the pattern ``comment``."""
    dotted = _DOTTED_LOCAL_PART
    if comment is None:
        return f"(?:{dotted}|{_QUOTED})"
    comments = f"(?:(?:{_FWS})?{comment})+"
    # A local part that is one quoted string is rebuilt from the string's contents, without its comments.
    ends_in_element = (
        f"(?:\\.+{_ELEMENT}(?:\\.*{_ELEMENT})*|[{_ATEXT}](?:\\.*{_ELEMENT})*"
        f"|{_QUOTED_NON_EMPTY}(?:\\.*{_ELEMENT})+)"
    )
    return f"(?:{dotted}|{_QUOTED}|{ends_in_element}{_FWS}{comments}|{_ENDS_IN_DOT}{_WSP}(?:{comment})+)"


def _domain(comment: str | None) -> str:
    """The domains the gem gives back unchanged (as ``_local_part``), save for the check of comments'
    texts, which needs the text."""
    dotted = _DOTTED_DOMAIN
    if comment is None:
        obs_domain = f"[{_ATEXT}]+(?:(?:{_FWS})?\\.(?:{_FWS})?[{_ATEXT}]+)*"
        return f"(?:{dotted}|{obs_domain}|{_DOMAIN_LITERAL})"
    comments = f"(?:(?:{_FWS})?{comment})+"
    cfws = f"(?:{comments}(?:{_FWS})?|{_FWS})"
    obs_domain = f"[{_ATEXT}]+(?:(?:{cfws})?\\.(?:{cfws})?[{_ATEXT}]+)*"
    return f"(?:{dotted}(?:{comments})?|{obs_domain}(?:{comments})?|{_DOMAIN_LITERAL}(?:{comment})*)"


# The addresses without a comment that Canvas accepts, save those holding an encoded word; for Arrow, whose
# match_substring_regex searches, it is anchored (RE2's $ is the end of the text, never before a newline).
ADDRESS_PATTERN = f"^{_local_part(None)}@{_domain(None)}$"
# The Python patterns (sources here, compiled by _compiled on first use: compiling them all takes ~0.3 s,
# and a roster's addresses are judged by RE2 alone).
_ADDRESS = f"({_local_part(None)})@{_domain(None)}"
_ADDRESS_WITH_COMMENTS = f"({_local_part(_COMMENT)})@{_domain(_COMMENT)}"
# What _ADDRESS_WITH_COMMENTS would accept with the comments in place, and more (see _ANY_COMMENT).
_MAYBE_WITH_COMMENTS_RE2 = f"^{_local_part(_ANY_COMMENT)}@{_domain(_ANY_COMMENT)}$"
# mail 2.8.1's ENCODED_VALUE: =?charset?Q?text?= or B, either case, text over any characters, lazily.
_ENCODED_WORD = re.compile("=\\?[^?]+\\?[QqBb]\\?(?s:.)*?\\?=")
_SPACES = re.compile(" +")
# A comment needs a "(", an encoded word a "=": the values without either are judged by the pattern alone.
_RARE_BYTES = b"(="
# The local parts after which the gem reads a domain its other way (see the module docstring), and the
# domains this rule accepts there: the ones without white space or comments, read alike both ways.
_ENDS_IN_DOT_AND_COMMENT = f"{_ENDS_IN_DOT}{_WSP}(?:{_COMMENT})+"
_BARE_DOMAIN = f"{_DOTTED_DOMAIN}|{_DOMAIN_LITERAL}"


_compiled = functools.cache(re.compile)


def canvas_accepts_email(value: str) -> bool:
    """Whether Canvas saves ``value`` as a user's email (see the module docstring for the rule)."""
    match = _compiled(_ADDRESS).fullmatch(value)
    if match is not None:
        return not _encoded(value[: match.end(1)], value[match.end(1) + 1 :])
    if "(" not in value:
        return False
    return _accepts_with_comments(value)


def canvas_accepts_emails(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.BooleanArray:
    """``canvas_accepts_email`` for every value, as one Arrow array (``null`` where a value is missing).

    RE2 judges every value that holds no comment and no ``=?``, which is the whole of any real roster.
    Python judges the others one by one: the values with a ``=?`` that pass ``ADDRESS_PATTERN`` (an encoded
    word counts only inside the local part or the domain, so they must be split at their ``@``), and the
    values with a ``(`` that fail it but pass a looser pattern with comments in it.
    """
    strings = _strings(values)
    accepted = _filled(pc.match_substring_regex(strings, ADDRESS_PATTERN))
    rare = _rows_holding(strings, _RARE_BYTES)
    if len(rare):
        some = strings.take(rare)
        encoded = accepted[rare] & _filled(pc.match_substring(some, "=?"))
        commented = ~accepted[rare] & _filled(pc.match_substring_regex(some, _MAYBE_WITH_COMMENTS_RE2))
        slow = rare[encoded | commented]
        accepted[slow] = [canvas_accepts_email(value) for value in strings.take(slow).to_pylist()]
    missing = _filled(pc.is_null(strings))
    return pa.array(accepted, type=pa.bool_(), mask=missing)


def _rows_holding(strings: pa.ChunkedArray, characters: bytes) -> np.ndarray:
    """The rows whose text holds one of the ASCII ``characters``, read off the arrays' data buffers with
    numpy (five times quicker than Arrow's match_substring, and one pass for all the characters)."""
    rows: list[np.ndarray] = []
    first_row = 0
    for chunk in strings.chunks:
        if not len(chunk):
            continue
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)[
            chunk.offset : chunk.offset + len(chunk) + 1
        ]
        data = chunk.buffers()[2]
        if data is not None and offsets[-1] > offsets[0]:
            text = np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]]
            found = np.zeros(len(text), dtype=bool)
            for character in characters:
                found |= text == character
            at = np.flatnonzero(found) + offsets[0]
            rows.append(first_row + np.unique(np.searchsorted(offsets, at, side="right") - 1))
        first_row += len(chunk)
    return np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)


def _strings(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """The values as one chunked Arrow array of large_string (the builders' string type)."""
    if isinstance(values, pd.Series):
        values = pa.array(values.array, type=pa.large_string(), from_pandas=True)
    elif values.type != pa.large_string():
        values = values.cast(pa.large_string())
    return values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values], pa.large_string())


def _filled(mask: pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as numpy, ``False`` where it is null."""
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _encoded(local: str, domain: str) -> bool:
    """Whether the gem would decode an encoded word in the local part or the domain."""
    return _ENCODED_WORD.search(local) is not None or _ENCODED_WORD.search(domain) is not None


def _accepts_with_comments(value: str) -> bool:
    """The rule for a value with comments: the grammar on its skeleton, then the gem's comment deletion."""
    skeleton = _skeleton(value)
    if skeleton is None:
        return False
    text, comments, where = skeleton
    match = _compiled(_ADDRESS_WITH_COMMENTS).fullmatch(text)
    if match is None:
        return False
    ends_in_dot = _compiled(_ENDS_IN_DOT_AND_COMMENT).fullmatch(match[1])
    if ends_in_dot and not _compiled(_BARE_DOMAIN).fullmatch(text, match.end(1) + 1):
        return False
    at = where[match.end(1)]
    local, domain = value[:at], value[at + 1 :]
    # Mail::Address#comments squeezes runs of spaces; #domain then deletes "(comment)" wherever it occurs.
    if any(f"({_SPACES.sub(' ', comment)})" in domain for comment in set(comments)):
        return False
    return not _encoded(local, domain)


def _skeleton(value: str) -> tuple[str, list[str], list[int]] | None:
    """``value`` with each comment replaced by one NUL, the comments' texts, and where each character of
    the skeleton stood in ``value``. ``None`` when a comment, quoted string or domain literal is not closed
    or a comment holds a character the grammar refuses there, and for a NUL outside them."""
    parts: list[str] = []
    comments: list[str] = []
    where: list[int] = []
    position = 0
    while position < len(value):
        char = value[position]
        if char in '"[':
            end = _closing(value, position, '"' if char == '"' else "]")
            if end is None:
                return None
            parts.append(value[position:end])
            where.extend(range(position, end))
        elif char == "(":
            end = _comment_end(value, position)
            if end is None:
                return None
            comments.append(value[position + 1 : end - 1])
            parts.append("\x00")
            where.append(position)
        elif char == "\x00":
            return None
        else:
            end = position + 1
            parts.append(char)
            where.append(position)
        position = end
    return "".join(parts), comments, where


def _closing(value: str, start: int, close: str) -> int | None:
    """Just past the ``close`` that ends the quoted string or domain literal opened at ``start``."""
    position = start + 1
    while position < len(value):
        if value[position] == close:
            return position + 1
        position += 2 if value[position] == "\\" else 1
    return None


def _comment_end(value: str, start: int) -> int | None:
    """Just past the ``)`` that closes the comment opened at ``start`` (nested comments, quoted pairs and
    folding white space inside), or ``None`` when it is not closed or holds a character that ctext refuses."""
    depth = 0
    position = start
    while position < len(value):
        char = value[position]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return position + 1
        elif char == "\\":
            if position + 1 == len(value):
                return None
            position += 1
        elif char == "\r":
            if value[position + 1 : position + 3] not in ("\n ", "\n\t"):
                return None
            position += 2
        elif not _is_ctext(char):
            return None
        position += 1
    return None


def _is_ctext(char: str) -> bool:
    """RFC 2822's ctext with its obsolete controls and (RFC 6532) non-ASCII, or a space or tab."""
    return _CTEXT.fullmatch(char) is not None


_CTEXT = re.compile(f"[\\t {_OBS_NO_WS_CTL}\\x21-\\x27\\x2a-\\x5b\\x5d-\\x7e{_NON_ASCII}]")
