"""Reading a Clever list answer: its records as JSON Lines with their bytes as sent, its next link, Arrow.

A list answer is ``{"data": [{"data": {...record...}, "uri": "/v3.0/users/<id>"}, ...], "links": [{"rel":
"next", "uri": "/v3.0/users?starting_after=<id>"}]}``, the record nested one level down in each item
(Clever's API reference, https://dev.clever.com/reference, and https://dev.clever.com/docs/paging-and-limits
for the links). Nothing here does HTTP: :mod:`clever2sis.clever.client` fetches the body, checks its status
and content type, and hands it to :func:`read_answer`, then to :func:`read_records`.

Two ways through a body, one result:

* **Cut** (the fast path). Clever writes compact JSON, so a body that starts ``{"data":[`` and ends with
  ``],"links":[...]}`` has its records cut out of the data array with a regular expression, with no Python
  object per record. Arrow's parse of the cut lines into the caller's schema proves the cut right: a cut in
  the wrong place leaves a line that is not one JSON object, and the page takes the other path.
* **Parse** (any other body: spaces, items with ``uri`` first, a cut Arrow refused). The body is parsed
  whole with orjson, and each record's bytes are found in it (:func:`raw_record_spans`), so a snapshot
  still holds what Clever sent. Only a record that cannot be found, or spans several lines, is written
  again by orjson (compact, its field order kept): a snapshot holds one record per line.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pajson

from clever2sis.errors import CleverApiError

# The fields a page's records are parsed into when the caller asks for none.
ID_SCHEMA = pa.schema([("id", pa.string())])
# Arrow parses a page's records in blocks of this size on its own threads; a record must fit in one.
_ARROW_BLOCK_BYTES = 4 << 20

_LIST_HEAD = b'{"data":['
_ITEM_HEAD = b'{"data":'
_LINKS_KEY = b'],"links":'
# Between two records of a compact answer: the end of one item (its uri holds no quote or backslash) and
# the start of the next. ``,"`` cannot occur inside a JSON string (a quote in one is escaped), so a match
# is always at a real item boundary or at a ``"uri"`` key nested inside a record; the latter leaves an
# unbalanced record that Arrow refuses, and the page then takes the slow path.
_BETWEEN_ITEMS = re.compile(rb'\},"uri":"[^"\\]*"\},\{"data":')
_LAST_ITEM_END = re.compile(rb'\},"uri":"[^"\\]*"\}')
# The tokens that shape a JSON document: whole strings (escapes included) and the structural characters.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]:,]', re.DOTALL)


@dataclass(frozen=True)
class Answer:
    """A list answer read just far enough to know whether it is empty and where it leads.

    ``items`` is where a compact answer's data array lies in ``body`` (see :func:`_envelope`); otherwise the
    body was parsed whole and ``records`` holds its records.
    """

    body: bytes
    empty: bool
    next_uri: str | None
    items: tuple[int, int] | None = None
    records: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Records:
    """An answer's records: ``count`` records joined by ``\\n`` in ``lines``, and Arrow's parse of them.

    ``table`` is None when the records do not fit the schema's types. ``reserialised`` counts the records
    whose bytes are orjson's rather than Clever's (see the module docstring).
    """

    lines: bytes
    count: int
    table: pa.Table | None
    reserialised: int = 0


def read_answer(body: bytes, path: str) -> Answer:
    """The list answer ``body`` (to ``GET path``): empty or not, and its next link.

    A compact answer is only located (its records are cut later, by :func:`read_records`); any other is
    parsed whole. Raises :class:`CleverApiError` naming ``path`` when the body is not JSON, not a list
    answer, or its ``links`` is not a list.
    """
    envelope = _envelope(body)
    if envelope is not None:
        start, end, links = envelope
        return Answer(body, start == end, _next_link(links, path), items=(start, end))
    records, next_uri = _parse_list(_loads(body, path), path)
    return Answer(body, not records, next_uri, records=records)


def read_records(answer: Answer, path: str, schema: pa.Schema = ID_SCHEMA) -> Records:
    """The answer's records as JSON Lines, with their Arrow table in ``schema`` (other fields skipped).

    The cut (:func:`_cut_records`) is taken when Arrow accepts it; otherwise the body is parsed whole and
    its records found by :func:`raw_record_spans`.
    """
    if answer.items is not None:
        cut = _cut_records(answer.body, *answer.items)
        if cut is not None and b"\r" not in cut[0]:
            lines, count = cut
            table = _records_table(lines, count, schema)
            if table is not None:
                return Records(lines, count, table)
    records = answer.records
    if records is None:
        records, _ = _parse_list(_loads(answer.body, path), path)
    raw, reserialised = _raw_records(answer.body, records)
    lines = b"\n".join(raw)
    return Records(lines, len(records), _records_table(lines, len(records), schema), reserialised)


def split_list_body(body: bytes) -> tuple[bytes, int, Any] | None:
    """A compact list answer's records as JSON Lines (unchecked), their count and its links; else None."""
    envelope = _envelope(body)
    if envelope is None:
        return None
    start, end, links = envelope
    cut = _cut_records(body, start, end)
    return None if cut is None else (*cut, links)


def raw_record_spans(body: bytes, records: list[dict[str, Any]]) -> list[bytes] | None:
    """The bytes of each ``data[i].data`` object in ``body``, exactly as served; None if they cannot be found.

    The fast path: Clever writes compact UTF-8 JSON, which is what ``orjson`` writes too, so each record's
    re-serialisation is found in the body in order. When it is not (other escaping or spacing), a small
    tokenizer walks the envelope to find each object's span, and every span is checked to parse back to its
    record. None means neither worked and the caller falls back to order-preserving re-serialisation.
    """
    raw: list[bytes] = []
    cursor = 0
    for record in records:
        encoded = orjson.dumps(record)
        at = body.find(encoded, cursor)
        if at < 0:
            return _scanned_spans(body, records)
        raw.append(encoded)
        cursor = at + len(encoded)
    return raw


def _loads(body: bytes, path: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise CleverApiError(f"GET {path}: Clever's answer is not valid JSON ({error})") from None


def _parse_list(document: Any, path: str) -> tuple[list[dict[str, Any]], str | None]:
    """Unwrap ``{"data": [{"data": record, "uri": ...}], "links": [...]}``: the records and the next link."""
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise CleverApiError(f"GET {path}: not a Clever list answer (no data array)")
    records: list[dict[str, Any]] = []
    for item in document["data"]:
        if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
            raise CleverApiError(f"GET {path}: a list item has no data object")
        records.append(item["data"])
    return records, _next_link(document.get("links"), path)


def _next_link(links: Any, path: str) -> str | None:
    """The ``uri`` of the first ``rel: next`` link; a missing or null ``links`` has none."""
    links = links or []
    if not isinstance(links, list):
        raise CleverApiError(f"GET {path}: links is not a list")
    for link in links:
        if isinstance(link, dict) and link.get("rel") == "next" and isinstance(link.get("uri"), str):
            return str(link["uri"])
    return None


def _envelope(body: bytes) -> tuple[int, int, Any] | None:
    """Where a compact list answer's data array lies, and its links; None if it is not one.

    Clever writes ``{"data":[{"data":{...},"uri":"..."},...],"links":[...]}`` with no spaces. The links are
    the last ``],"links":`` to the end: one nested in the links would leave an unbalanced tail that orjson
    refuses, and a quote inside a JSON string is escaped, so the key cannot be inside a string.
    """
    if not body.startswith(_LIST_HEAD) or not body.endswith(b"}"):
        return None
    at = body.rfind(_LINKS_KEY)
    if at < len(_LIST_HEAD):
        return None
    try:
        links = orjson.loads(body[at + len(_LINKS_KEY) : -1])
    except orjson.JSONDecodeError:
        return None
    return len(_LIST_HEAD), at, links


def _cut_records(body: bytes, start: int, end: int) -> tuple[bytes, int] | None:
    """The records of the data array ``body[start:end]`` as JSON Lines, each with its bytes as sent.

    The cut is only right if every line then parses as one JSON object, which the caller checks
    (:func:`_records_table`). None if the array does not look like compact items at all.
    """
    items = body[start:end]
    if not items:
        return b"", 0
    last = items.rfind(b'},"uri":"')
    if not items.startswith(_ITEM_HEAD) or last < 0 or not _LAST_ITEM_END.fullmatch(items, last):
        return None
    lines, joins = _BETWEEN_ITEMS.subn(b"}\n", items[len(_ITEM_HEAD) : last + 1])
    return lines, joins + 1


def _records_table(lines: bytes, count: int, schema: pa.Schema) -> pa.Table | None:
    """``lines`` parsed by Arrow into ``schema``; None unless each line is one JSON object of those types."""
    if count == 0:
        return schema.empty_table()
    try:
        table = pajson.read_json(
            io.BytesIO(lines),
            read_options=pajson.ReadOptions(block_size=_ARROW_BLOCK_BYTES),
            parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    return table if table.num_rows == count else None


def _raw_records(body: bytes, records: list[dict[str, Any]]) -> tuple[list[bytes], int]:
    """Each record's bytes as served (see :func:`raw_record_spans`), and how many had to be re-serialised.

    A record sent over several lines is re-serialised (compactly, in its field order), since a snapshot
    holds one record per line.
    """
    raw = raw_record_spans(body, records)
    if raw is None:
        return [orjson.dumps(record) for record in records], len(records)
    multiline = [i for i, span in enumerate(raw) if b"\n" in span or b"\r" in span]
    for i in multiline:
        raw[i] = orjson.dumps(records[i])
    return raw, len(multiline)


def _scanned_spans(body: bytes, records: list[dict[str, Any]]) -> list[bytes] | None:
    """Each record's span found by walking ``body``'s tokens; None unless every span parses to its record.

    A record is an object opened at depth three of ``{"data": [ {"data": {`` (the envelope's data array,
    an item, the item's ``data`` key); its span ends where that object closes.
    """
    spans: list[bytes] = []
    stack: list[list[Any]] = []  # [kind, last key] per open container
    want_key = False
    start = -1
    for match in _TOKEN.finditer(body):
        token = match.group()
        if token[:1] == b'"':
            if want_key and stack and stack[-1][0] == "o":
                stack[-1][1] = token
                want_key = False
        elif token in (b"{", b"["):
            is_record = (
                token == b"{"
                and len(stack) == 3
                and stack[0] == ["o", b'"data"']
                and stack[1][0] == "a"
                and stack[2] == ["o", b'"data"']
            )
            if is_record:
                start = match.start()
            stack.append(["o" if token == b"{" else "a", None])
            want_key = token == b"{"
        elif token in (b"}", b"]"):
            if not stack:
                return None
            stack.pop()
            want_key = False
            if len(stack) == 3 and start >= 0:
                spans.append(body[start : match.end()])
                start = -1
        elif token == b",":
            want_key = bool(stack) and stack[-1][0] == "o"
    if len(spans) != len(records):
        return None
    for span, record in zip(spans, records, strict=True):
        try:
            if orjson.loads(span) != record:
                return None
        except orjson.JSONDecodeError:
            return None
    return spans
