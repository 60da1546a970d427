"""The Arrow schemas a snapshot's records are read into: the fields a build uses, and nothing else.

They live apart so that the pull (which parses each page into them), the snapshot (whose columnar copy holds
exactly them) and the build (which reads them) share one definition without importing each other. Fields
Clever sends that are not here are skipped when parsing; they stay in the JSONL.

``SCHEMA_FINGERPRINT`` names this set of schemas. A snapshot's columnar copy records the fingerprint it was
written with; a copy written by a clever2sis with other schemas carries another one and is ignored (the
JSONL is parsed instead), never misread. Bump ``COLUMNAR_VERSION`` when the copy's contents change meaning
without a schema change.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pyarrow as pa

COLUMNAR_VERSION = 1

_S = pa.string()
_CREDENTIALS = pa.struct([("district_username", _S)])


def _fields(*names: str) -> list[tuple[str, pa.DataType]]:
    return [(name, _S) for name in names]


SCHEMAS: dict[str, pa.Schema] = {
    "districts": pa.schema(_fields("id", "name")),
    "schools": pa.schema(
        _fields("id", "name", "sis_id", "school_number", "state_id", "nces_id", "low_grade", "high_grade")
    ),
    "terms": pa.schema(_fields("id", "name", "start_date", "end_date")),
    "courses": pa.schema(_fields("id", "name", "number")),
    "sections": pa.schema(
        [
            *_fields(
                "id",
                "school",
                "name",
                "sis_id",
                "course",
                "term_id",
                "period",
                "subject",
                "grade",
                "section_number",
                "teacher",
            ),
            ("students", pa.list_(_S)),
            ("teachers", pa.list_(_S)),
        ]
    ),
    "users": pa.schema(
        [
            ("id", _S),
            ("email", _S),
            ("name", pa.struct(_fields("first", "middle", "last"))),
            (
                "roles",
                pa.struct(
                    [
                        (
                            "student",
                            pa.struct(
                                [
                                    *_fields("school", "sis_id", "student_number", "state_id", "grade"),
                                    ("credentials", _CREDENTIALS),
                                ]
                            ),
                        ),
                        (
                            "teacher",
                            pa.struct(
                                [
                                    *_fields("school", "sis_id", "teacher_number", "state_id", "title"),
                                    ("credentials", _CREDENTIALS),
                                ]
                            ),
                        ),
                        (
                            "staff",
                            pa.struct(
                                [
                                    *_fields("staff_id", "title"),
                                    ("credentials", _CREDENTIALS),
                                    ("schools", pa.list_(_S)),
                                    ("roles", pa.list_(_S)),
                                ]
                            ),
                        ),
                        ("district_admin", pa.struct(_fields("title"))),
                        (
                            "contact",
                            pa.struct(
                                [
                                    *_fields("sis_id"),
                                    (
                                        "student_relationships",
                                        pa.list_(pa.struct(_fields("student", "relationship", "type"))),
                                    ),
                                ]
                            ),
                        ),
                    ]
                ),
            ),
        ]
    ),
}


def _describe(data_type: pa.DataType) -> Any:
    """A plain-data form of a type that does not depend on how pyarrow prints or serialises types."""
    if pa.types.is_struct(data_type):
        return {"struct": [_describe_field(data_type.field(i)) for i in range(data_type.num_fields)]}
    if pa.types.is_list(data_type):
        return {"list": _describe_field(data_type.value_field)}
    return str(data_type)


def _describe_field(field: pa.Field) -> list[Any]:
    return [field.name, _describe(field.type), field.nullable]


def schema_fingerprint(schemas: dict[str, pa.Schema], version: int = COLUMNAR_VERSION) -> str:
    """The sha256 of ``schemas`` (every field's name, type and nullability, in order) and ``version``."""
    described = {name: [_describe_field(field) for field in schema] for name, schema in schemas.items()}
    return hashlib.sha256(
        orjson.dumps({"version": version, "schemas": described}, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


SCHEMA_FINGERPRINT = schema_fingerprint(SCHEMAS)
