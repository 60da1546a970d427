"""The schemas' fingerprint: the same for the same schemas, different for any change a reader would see."""

from __future__ import annotations

import pyarrow as pa

from clever2sis.clever.schemas import SCHEMA_FINGERPRINT, SCHEMAS, schema_fingerprint


def test_the_fingerprint_is_that_of_the_schemas() -> None:
    assert schema_fingerprint(dict(SCHEMAS)) == SCHEMA_FINGERPRINT
    assert len(SCHEMA_FINGERPRINT) == 64


def test_any_change_a_reader_would_see_changes_the_fingerprint() -> None:
    courses = SCHEMAS["courses"]
    users = SCHEMAS["users"]
    roles = users.field("roles").type
    renamed_contact = pa.struct(
        [
            roles.field(i).with_name("parent") if roles.field(i).name == "contact" else roles.field(i)
            for i in range(roles.num_fields)
        ]
    )
    changed = [
        {**SCHEMAS, "courses": courses.append(pa.field("subject", pa.string()))},
        {**SCHEMAS, "courses": courses.remove(courses.get_field_index("number"))},
        {**SCHEMAS, "courses": pa.schema([f.with_type(pa.large_string()) for f in courses])},
        {**SCHEMAS, "courses": pa.schema([f.with_nullable(False) for f in courses])},
        {**SCHEMAS, "courses": pa.schema(list(reversed(list(courses))))},
        {**SCHEMAS, "users": users.set(users.get_field_index("roles"), pa.field("roles", renamed_contact))},
    ]
    fingerprints = {schema_fingerprint(schemas) for schemas in changed}
    assert len(fingerprints) == len(changed)
    assert SCHEMA_FINGERPRINT not in fingerprints
    assert schema_fingerprint(SCHEMAS, version=2) != SCHEMA_FINGERPRINT
