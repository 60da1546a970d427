"""The list-body scanner: Clever answers, compact or not, read into records with their bytes as sent.

Bodies are written out by hand, byte for byte, so that "the bytes as sent" is checked against the input
itself and not against what orjson would write.
"""

from __future__ import annotations

import re

import orjson
import pyarrow as pa
import pytest

from clever2sis.clever.scan import (
    ID_SCHEMA,
    Answer,
    Records,
    raw_record_spans,
    read_answer,
    read_records,
    split_list_body,
)
from clever2sis.errors import CleverApiError

PATH = "/v3.0/users?limit=3"
NOT_JSON = r"^GET /v3\.0/users\?limit=3: Clever's answer is not valid JSON \("
NEXT = b'[{"rel":"next","uri":"/v3.0/users?limit=3&starting_after=3"}]'
NEXT_URI = "/v3.0/users?limit=3&starting_after=3"
ID_AND_GRADE = pa.schema([("id", pa.string()), ("grade", pa.int64())])


def compact(*records: bytes, links: bytes = NEXT) -> bytes:
    """A list answer as Clever writes it: no spaces, each record's item ``{"data":...,"uri":...}``."""
    items = b",".join(
        b'{"data":' + raw + b',"uri":"/v3.0/users/' + str(n).encode() + b'"}'
        for n, raw in enumerate(records, 1)
    )
    return b'{"data":[' + items + b'],"links":' + links + b"}"


def scan(body: bytes, schema: pa.Schema = ID_SCHEMA) -> tuple[Answer, Records]:
    answer = read_answer(body, PATH)
    return answer, read_records(answer, PATH, schema)


def test_a_compact_answer_is_cut_into_its_records_bytes_and_its_next_link() -> None:
    raw = [b'{"id":"1","grade":9}', b'{"id":"2","grade":10,"lat":1.50}', b'{"grade":11,"id":"3"}']
    answer, records = scan(compact(*raw), ID_AND_GRADE)
    assert answer.items is not None
    assert answer.records is None
    assert not answer.empty
    assert answer.next_uri == NEXT_URI
    assert records.lines == b"\n".join(raw)  # 1.50 and the field order kept, as sent
    assert records.count == 3
    assert records.reserialised == 0
    assert records.table is not None
    assert records.table.to_pylist() == [
        {"id": "1", "grade": 9},
        {"id": "2", "grade": 10},
        {"id": "3", "grade": 11},
    ]


def test_a_pretty_answer_is_parsed_whole_and_keeps_each_records_bytes() -> None:
    first = b'{ "id": "1", "name": "Ana" }'
    second = b'{"name":"Bo", "id":"2"}'
    body = (
        b'{\n  "data": [\n    {"uri": "/v3.0/users/1", "data": ' + first + b"},\n"
        b'    {"data": ' + second + b', "uri": "/v3.0/users/2"}\n  ],\n'
        b'  "links": [{"rel": "self", "uri": "/v3.0/users"}, {"rel": "next", "uri": "'
        + NEXT_URI.encode()
        + b'"}]\n}'
    )
    answer, records = scan(body)
    assert answer.items is None
    assert answer.records == [{"id": "1", "name": "Ana"}, {"name": "Bo", "id": "2"}]
    assert answer.next_uri == NEXT_URI
    assert records.lines == first + b"\n" + second
    assert records.reserialised == 0
    assert records.table is not None
    assert records.table.column("id").to_pylist() == ["1", "2"]


def test_a_record_over_several_lines_is_written_again_on_one_line_in_its_field_order() -> None:
    body = (
        b'{"data": [{"data": {"id": "1"}, "uri": "/v3.0/users/1"},\n'
        b'{"data": {\n  "name": "Cy",\r\n  "id": "2"\n}, "uri": "/v3.0/users/2"}], "links": []}'
    )
    _, records = scan(body)
    assert records.lines == b'{"id": "1"}\n{"name":"Cy","id":"2"}'
    assert records.count == 2
    assert records.reserialised == 1


def test_a_carriage_return_between_a_compact_records_fields_takes_the_parse_path() -> None:
    body = compact(b'{"id":"1",\r"grade":9}', b'{"id":"2","grade":10}', links=b"[]")
    _, records = scan(body, ID_AND_GRADE)
    assert records.lines == b'{"id":"1","grade":9}\n{"id":"2","grade":10}'
    assert records.reserialised == 1
    assert records.table is not None
    assert records.table.column("grade").to_pylist() == [9, 10]


def test_quotes_braces_and_the_item_boundary_inside_strings_do_not_cut_a_record() -> None:
    tricky = [
        b'{"id":"1","name":"O\'Neil \\"Oz\\" {x}"}',
        b'{"id":"2","note":"a},\\"uri\\":\\"/v3.0/users/9\\"},{\\"data\\":{b","tags":["]","[",",\\""]}',
        b'{"id":"3","path":"C:\\\\dir\\\\","uri":"nested"}',
    ]
    answer, records = scan(compact(*tricky))
    assert answer.items is not None
    assert records.lines.split(b"\n") == tricky
    assert records.reserialised == 0
    assert [orjson.loads(line)["id"] for line in records.lines.split(b"\n")] == ["1", "2", "3"]


def test_a_record_holding_the_envelope_shape_is_refused_by_arrow_and_found_by_parsing() -> None:
    trap = b'{"id":"2","list":[{"data":{},"uri":"x"},{"data":{"uri":"y"}}],"uri":"z"}'
    raw = [b'{"id":"1"}', trap, b'{"id":"3"}']
    body = compact(*raw)
    _, count, _ = split_list_body(body) or (b"", 0, None)
    assert count == 4  # the unchecked cut went wrong inside the trap
    _, records = scan(body)
    assert records.lines.split(b"\n") == raw
    assert records.count == 3
    assert records.table is not None
    assert records.table.column("id").to_pylist() == ["1", "2", "3"]


def test_unicode_keeps_its_bytes_whether_sent_raw_or_escaped() -> None:
    raw_utf8 = '{"id":"1","name":"Zoë Ωmega 王"}'.encode()
    escaped = b'{"id":"2","name":"Jos\\u00e9 \\ud83d\\ude00"}'
    _, records = scan(compact(raw_utf8, escaped))
    assert records.lines == raw_utf8 + b"\n" + escaped
    pretty = b'{"data": [{"data": ' + escaped + b', "uri": "/v3.0/users/2"}], "links": []}'
    answer, parsed = scan(pretty)
    assert answer.records == [{"id": "2", "name": "José 😀"}]
    assert parsed.lines == escaped  # orjson would write the characters raw; the tokenizer found the span
    assert parsed.reserialised == 0


@pytest.mark.parametrize(
    "body",
    [b'{"data":[],"links":[]}', b'{"data":[],"links":' + NEXT + b"}", b'{ "data": [ ], "links": [ ] }'],
)
def test_an_empty_data_array_is_an_empty_answer_with_an_empty_table(body: bytes) -> None:
    answer, records = scan(body, ID_AND_GRADE)
    assert answer.empty
    assert records == Records(b"", 0, ID_AND_GRADE.empty_table())
    assert records.table is not None
    assert records.table.schema == ID_AND_GRADE


@pytest.mark.parametrize(
    "body",
    [
        b'{"data":[{"data":{"id":"1"},"uri":"/v3.0/users/1"}]}',
        b'{"data":[{"data":{"id":"1"},"uri":"/v3.0/users/1"}],"links":null}',
        b'{"data":[{"data":{"id":"1"},"uri":"/v3.0/users/1"}],"links":[]}',
        b'{"data":[{"data":{"id":"1"},"uri":"/v3.0/users/1"}],"links":[{"rel":"self","uri":"/v3.0/users"}]}',
        b'{"data":[{"data":{"id":"1"},"uri":"/v3.0/users/1"}],"links":[{"rel":"next"},"next",{"rel":"next","uri":7}]}',
    ],
)
def test_no_next_link_when_links_is_missing_null_empty_or_has_no_usable_next(body: bytes) -> None:
    answer, records = scan(body)
    assert answer.next_uri is None
    assert records.lines == b'{"id":"1"}'


def test_the_first_next_link_is_the_one_followed() -> None:
    links = b'[{"rel":"prev","uri":"/p"},{"rel":"next","uri":"/v3.0/a"},{"rel":"next","uri":"/v3.0/b"}]'
    assert read_answer(compact(b'{"id":"1"}', links=links), PATH).next_uri == "/v3.0/a"


@pytest.mark.parametrize(
    "body",
    [
        b'{"data":[{"data":{"id":"1"},"uri":"/v3.0/users/1"}],"links":{"rel":"next","uri":"/v3.0/x"}}',
        b'{"data": [{"data": {"id": "1"}}], "links": "next"}',
    ],
)
def test_links_that_are_not_a_list_are_an_error_naming_the_request(body: bytes) -> None:
    with pytest.raises(CleverApiError) as raised:
        read_answer(body, PATH)
    assert str(raised.value) == f"GET {PATH}: links is not a list"


@pytest.mark.parametrize(
    "body",
    [b'{"data":{"id":"1"},"links":[]}', b'[{"data":{"id":"1"}}]', b'{"users":[]}', b'"data"', b"null"],
)
def test_a_body_without_a_data_array_is_not_a_list_answer(body: bytes) -> None:
    with pytest.raises(CleverApiError) as raised:
        read_answer(body, PATH)
    assert str(raised.value) == f"GET {PATH}: not a Clever list answer (no data array)"


@pytest.mark.parametrize(
    "body",
    [b'{"data":[{"uri":"/v3.0/users/1"}],"links":[]}', b'{"data": [{"data": "1", "uri": "/v3.0/users/1"}]}'],
)
def test_an_item_without_a_data_object_is_an_error(body: bytes) -> None:
    with pytest.raises(CleverApiError) as raised:
        scan(body)
    assert str(raised.value) == f"GET {PATH}: a list item has no data object"


@pytest.mark.parametrize(
    "cut",
    [
        len(b'{"data":[{"data":{"id":"1"},"uri":"/v3.0/users/1"}],"links":[]'),  # the last brace lost
        len(b'{"data":[{"data":{"id":"1"},"ur'),
        len(b'{"data":[{"data":{"id":"1"}'),  # ends on a brace, still unbalanced
        0,
    ],
)
def test_a_truncated_body_is_an_error_saying_it_is_not_json(cut: int) -> None:
    body = b'{"data":[{"data":{"id":"1"},"uri":"/v3.0/users/1"}],"links":[]}'[:cut]
    with pytest.raises(CleverApiError) as raised:
        read_answer(body, PATH)
    assert re.match(NOT_JSON, str(raised.value))


def test_malformed_links_in_a_compact_envelope_make_the_whole_body_invalid() -> None:
    body = b'{"data":[{"data":{"id":"1"},"uri":"/v3.0/users/1"}],"links":[{"rel":}]}'
    with pytest.raises(CleverApiError, match=NOT_JSON):
        read_answer(body, PATH)


def test_records_of_the_wrong_types_keep_their_bytes_and_have_no_table() -> None:
    raw = [b'{"id":"1","grade":9}', b'{"id":"2","grade":"Kindergarten"}']
    answer, records = scan(compact(*raw, links=b"[]"), ID_AND_GRADE)
    assert answer.items is not None
    assert records.lines.split(b"\n") == raw
    assert records.count == 2
    assert records.table is None
    assert records.reserialised == 0


def test_items_with_the_uri_first_take_the_parse_path_and_still_get_a_table() -> None:
    body = b'{"data":[{"uri":"/v3.0/users/1","data":{"id":"1","grade":9}}],"links":[]}'
    answer, records = scan(body, ID_AND_GRADE)
    assert answer.items is not None  # the envelope is compact; its items are not
    assert records.lines == b'{"id":"1","grade":9}'
    assert records.table is not None
    assert records.table.to_pylist() == [{"id": "1", "grade": 9}]


def test_split_list_body_cuts_only_compact_answers() -> None:
    raw = [b'{"id":"1"}', b'{"id":"2"}']
    assert split_list_body(compact(*raw)) == (b'{"id":"1"}\n{"id":"2"}', 2, orjson.loads(NEXT))
    assert split_list_body(b'{"data":[],"links":[]}') == (b"", 0, [])
    assert split_list_body(b'{ "data": [], "links": [] }') is None
    assert split_list_body(b'{"data":[{"id":"1"}],"links":[]}') is None
    assert split_list_body(b'{"data":[{"data":{"id":"1"},"uri":"/v3.0/users/1"}]}') is None


def test_raw_record_spans_are_slices_of_the_body_in_order() -> None:
    body = (
        b'{"data": [{"data": {"id": "1", "n": 1.0}, "uri": "/1"}, {"uri": "/2", "data": {"id":"2"}},'
        b' {"data": {"id": "1", "n": 1.0}, "uri": "/3"}], "links": []}'
    )
    records = orjson.loads(body)["data"]
    spans = raw_record_spans(body, [item["data"] for item in records])
    assert spans == [b'{"id": "1", "n": 1.0}', b'{"id":"2"}', b'{"id": "1", "n": 1.0}']
    assert body.count(spans[0]) == 2


def test_raw_record_spans_is_none_when_the_records_are_not_the_bodys() -> None:
    body = b'{"data": [{"data": {"id": "1"}, "uri": "/1"}], "links": []}'
    assert raw_record_spans(body, [{"id": "2"}]) is None
    assert raw_record_spans(body, [{"id": "1"}, {"id": "1"}]) is None
    assert raw_record_spans(b'{"data": [{"data": {"id": "1"}}]}]}', [{"id": "x"}]) is None


def test_records_not_found_in_the_body_are_all_written_again() -> None:
    # Two data arrays: orjson keeps the last, so the spans found (both arrays') are not the records.
    body = b'{"data": [{"data": {"id": "1"}}], "data": [{"data": {"id": "2"}}], "links": []}'
    answer, records = scan(body)
    assert answer.records == [{"id": "2"}]
    assert records.lines == b'{"id":"2"}'
    assert records.reserialised == 1


@pytest.mark.parametrize("gap", [b" ", b"\n"])
def test_a_corrupt_compact_body_whose_cut_arrow_reads_as_more_records_is_refused(gap: bytes) -> None:
    body = b'{"data":[{"data":{"id":"1"}' + gap + b'{"id":"2"},"uri":"/v3.0/users/1"}],"links":[]}'
    answer = read_answer(body, PATH)
    assert answer.items is not None
    with pytest.raises(CleverApiError, match=NOT_JSON):
        read_records(answer, PATH)
