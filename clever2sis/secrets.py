"""Tokens: what a usable one looks like, and the one redactor that keeps them out of every message and file.

A token is refused before any request unless it is **one line of visible ASCII** (``!`` to ``~``, no space)
of at least :data:`MIN_TOKEN_CHARS` characters. Anything else would either end up in an HTTP error that
quotes the header it could not send (the token with it), or be too short to find reliably in a message.
The refusal names the variable or file and what is wrong with it, never a byte of the value.

Real tokens are far longer than the minimum: a Canvas access token is its shard's id, ``~`` and 64 random
characters (``TOKEN_SIZE`` in canvas-lms ``app/models/access_token.rb``); a Clever district-app token is 40
hexadecimal characters (https://dev.clever.com/docs/api-overview). 32 characters still refuses the
placeholders people paste by mistake (``x``, ``TODO``, ``$CANVAS_TOKEN``) and anything a redactor would find
by chance in ordinary text.

:class:`Redactor` replaces each secret with :data:`REDACTED`, case-insensitively, in one pass (so the marker
it writes is never matched again), in the forms a server or a library may echo it back in:

* as sent (``Authorization: Bearer <token>``, an error that quotes a request header);
* backslash-escaped, as in a JSON string or a Python ``repr`` (an exception message quoting bytes);
* percent-encoded, by today's encoders (``~`` kept) and by the older ones that encode every
  non-alphanumeric character (``~`` as ``%7E``): a server echoing a URL or a form body.

Base64 is not redacted: the token is only ever sent as a bearer token, never in HTTP Basic auth, so no
server has a base64 form to echo; and the base64 of a token inside a longer value depends on where it
falls in that value, so matching ``base64(token)`` would promise more than it could keep.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

import orjson

from clever2sis.errors import Clever2SisError, UsageError

REDACTED = "[redacted]"
MIN_TOKEN_CHARS = 32
_FIRST_VISIBLE, _LAST_VISIBLE = "!", "~"
_SURROUNDING_SPACE = " \t\r\n"  # ASCII only: str.strip() would also eat a non-ASCII space next to the token
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def token_problem(token: str) -> str | None:
    """What makes ``token`` unusable, in words that quote none of it; None when it is fine.

    Surrounding spaces and line breaks (a token file's final newline) are not part of the token.
    """
    token = token.strip(_SURROUNDING_SPACE)
    lines = len(_LINE_BREAK.split(token))
    if lines > 1:
        return f"has {lines} lines; a token is one line"
    for position, character in enumerate(token, start=1):
        if character == " ":
            return f"contains a space (character {position} of {len(token)}); a token has none, give it alone"
        if not _FIRST_VISIBLE <= character <= _LAST_VISIBLE:
            return f"contains a non-printable or non-ASCII character (character {position} of {len(token)})"
    if len(token) < MIN_TOKEN_CHARS:
        return (
            f"is shorter than {MIN_TOKEN_CHARS} characters (it has {len(token)}), too short to redact safely"
        )
    return None


def check_token(token: str, source: str, *, fix: str, error: type[Clever2SisError] = UsageError) -> str:
    """``token`` without its surrounding spaces, or ``error`` naming ``source`` (where it came from: a
    variable, a file), what is wrong with it and ``fix`` (what to put there)."""
    problem = token_problem(token)
    if problem is not None:
        raise error(f"{source} {problem}: {fix}")
    return token.strip(_SURROUNDING_SPACE)


def encodings(secret: str) -> set[str]:
    """``secret`` and the encoded forms of it that :class:`Redactor` also looks for (see the module doc)."""
    return {
        secret,
        orjson.dumps(secret).decode()[1:-1],
        repr(secret)[1:-1],
        quote(secret, safe=""),
        _percent_encode_all(secret),
    }


def _percent_encode_all(secret: str) -> str:
    """Every character but ASCII letters and digits as ``%XX`` (how older encoders treat ``~``)."""
    return "".join(
        c if c.isascii() and c.isalnum() else "".join(f"%{byte:02X}" for byte in c.encode()) for c in secret
    )


class Redactor:
    """Replaces every secret it holds, in each of its :func:`encodings`, with :data:`REDACTED`.

    One regular expression, the forms longest first so that a secret containing another is replaced
    whole, matched case-insensitively (a server may echo a header upper-cased). The marker is an
    alternative too, tried first and replaced by itself: a marker already in the text is never cut into
    (redacting twice changes nothing), and in one pass the markers written are never looked at again.
    :meth:`add` lets a redactor made before the tokens were read (a progress callback) learn them.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Redact ``secrets`` too (empty strings are ignored)."""
        forms = {form for secret in secrets if secret for form in encodings(secret) if form}
        if not forms - self._forms:
            return
        self._forms |= forms
        alternatives = sorted(self._forms, key=lambda form: (-len(form), form))
        marker = f"(?-i:{re.escape(REDACTED)})"
        self._pattern = re.compile("|".join([marker, *map(re.escape, alternatives)]), re.IGNORECASE)

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)

    def __repr__(self) -> str:
        return f"Redactor(forms={len(self._forms)})"
