"""Load a snapshot into pandas DataFrames, once, reading only the fields a build uses.

Each collection is read from the snapshot's columnar copy (an Arrow IPC file already in the collection's
schema, see :mod:`clever2sis.clever.schemas`) when it has one; otherwise its JSONL is parsed by Arrow's
multithreaded JSON reader against that schema (unknown fields are skipped). Either way the same table is
then flattened into string columns. Clever's ``""`` means "no value" and becomes
``<NA>`` here, so every later step has one notion of missing.

Frames (one row per record unless said otherwise):

- ``schools``: id, name, sis_id, school_number, state_id, nces_id, low_grade, high_grade
- ``terms``: id, name, start_date, end_date
- ``courses``: id, name, number
- ``sections``: id, school, name, sis_id, course, term_id, period, subject, grade, section_number, teacher
- ``section_students``: section (the section's row in ``sections``), user_id; one row per student listed.
  ``user_id`` is categorical (each student's id stored once, however many sections list them: at a
  million students that is 60 MB instead of 210, and a lookup per student instead of per enrollment)
- ``section_teachers``: section, user_id, position (0 is the primary teacher)
- ``users``: id, first, middle, last, email, one ``is_<role>`` flag per role, and the role fields below
- ``contact_links``: contact_id, student_id, relationship, type (one row per student_relationships entry)
- ``staff_schools``: user_id, school (one row per entry of a staff member's ``roles.staff.schools``)
- ``staff_roles``: user_id, role (one row per entry of a staff member's ``roles.staff.roles``, Clever's
  permissions of the staff member, such as a school admin's)

and ``malformed``: per collection, the records left out of the frames because a field has another type
than Clever gives it (``"roles": "student"``); the build lists each as a finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from clever2sis.clever.schemas import SCHEMAS
from clever2sis.clever.snapshot import JSON_BLOCK_BYTES, MalformedRecord, Snapshot, parse_jsonl_leniently
from clever2sis.errors import SnapshotError

ROLES = ("student", "teacher", "staff", "district_admin", "contact")

# Flattened Arrow column -> frame column, for the users frame.
_USER_COLUMNS = {
    "id": "id",
    "email": "email",
    "name.first": "first",
    "name.middle": "middle",
    "name.last": "last",
    "roles.student.school": "student_school",
    "roles.student.sis_id": "student_sis_id",
    "roles.student.student_number": "student_number",
    "roles.student.state_id": "student_state_id",
    "roles.student.grade": "grade",
    "roles.student.credentials.district_username": "student_username",
    "roles.teacher.school": "teacher_school",
    "roles.teacher.sis_id": "teacher_sis_id",
    "roles.teacher.teacher_number": "teacher_number",
    "roles.teacher.state_id": "teacher_state_id",
    "roles.teacher.title": "teacher_title",
    "roles.teacher.credentials.district_username": "teacher_username",
    "roles.staff.staff_id": "staff_id",
    "roles.staff.title": "staff_title",
    "roles.staff.credentials.district_username": "staff_username",
    "roles.district_admin.title": "district_admin_title",
    "roles.contact.sis_id": "contact_sis_id",
}


@dataclass(frozen=True)
class District:
    """One district's records as DataFrames (see the module docstring for the columns)."""

    district: dict[str, Any]
    schools: pd.DataFrame
    terms: pd.DataFrame
    courses: pd.DataFrame
    sections: pd.DataFrame
    section_students: pd.DataFrame
    section_teachers: pd.DataFrame
    users: pd.DataFrame
    contact_links: pd.DataFrame
    malformed: dict[str, list[MalformedRecord]] = field(default_factory=dict)
    staff_schools: pd.DataFrame = field(default_factory=lambda: _user_items("school"))
    staff_roles: pd.DataFrame = field(default_factory=lambda: _user_items("role"))


def _user_items(column: str) -> pd.DataFrame:
    """An empty frame of a list field of users, one row per item: user_id and ``column``."""
    return pd.DataFrame({"user_id": pd.Series([], dtype="string"), column: pd.Series([], dtype="string")})


def _read_table(snapshot: Snapshot, collection: str) -> tuple[pa.Table, list[MalformedRecord]]:
    """The collection's records in its schema: from the columnar copy if the snapshot has one this
    clever2sis reads, otherwise parsed from the JSONL (the same table either way).

    A JSONL with records whose fields have other types than Clever gives them (which is why it has no
    columnar copy) is parsed again without them (:func:`~clever2sis.clever.snapshot.parse_jsonl_leniently`):
    the table of the others, and those records, which the build reports and leaves out.
    """
    schema = SCHEMAS[collection]
    if snapshot.manifest["collections"][collection]["records"] == 0:
        return schema.empty_table(), []
    table = snapshot.read_columnar(collection)
    if table is not None:
        return table, []
    file = snapshot.path / snapshot.manifest["collections"][collection]["file"]
    try:
        with snapshot.reader(collection) as stream:
            return pajson.read_json(
                stream,
                read_options=pajson.ReadOptions(block_size=JSON_BLOCK_BYTES),
                parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
            ), []
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        refused = error
    try:
        with snapshot.reader(collection) as stream:
            table, malformed = parse_jsonl_leniently(stream, collection)
    except SnapshotError as error:
        raise SnapshotError(f"{file}: {error}") from None
    if not malformed:
        raise SnapshotError(f"{file}: not Clever {collection} records ({refused})")
    return table, malformed


def _flatten(table: pa.Table) -> pa.Table:
    while any(pa.types.is_struct(field.type) for field in table.schema):
        table = table.flatten()
    return table


def _without_empty(chunk: pa.Array) -> pa.Array:
    """A string chunk as large strings (what pandas keeps) with ``""`` made null, characters not copied: the
    validity bitmap is replaced by one of the non-empty values, beside the same offsets and data."""
    large = chunk.cast(pa.large_string())
    if large.offset:
        large = pa.concat_arrays([large])
    if not len(large):
        return large
    present = pc.greater(pc.binary_length(large), 0)
    if present.null_count:
        present = pc.fill_null(present, False)
    _, offsets, data = large.buffers()
    return pa.Array.from_buffers(pa.large_string(), len(large), [present.buffers()[1], offsets, data])


def _string_series(values: pa.ChunkedArray) -> pd.Series:
    """Arrow strings as a pandas string column, with ``""`` turned into ``<NA>``."""
    chunks = pa.chunked_array([_without_empty(chunk) for chunk in values.chunks], type=pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(chunks), dtype="string", copy=False)


def _strings(table: pa.Table, columns: dict[str, str]) -> pd.DataFrame:
    """Take ``columns`` (Arrow name -> frame name) as pandas strings, with ``""`` turned into ``<NA>``."""
    return pd.DataFrame({target: _string_series(table.column(source)) for source, target in columns.items()})


def _explode(
    lists: pa.ChunkedArray, *, positions: bool = True
) -> tuple[np.ndarray, pa.ChunkedArray, np.ndarray | None]:
    """Flatten a list column chunk by chunk (no copy of the values): each item's owning row, the items, and
    (unless not wanted) each item's position in its list; rows and positions as int32."""
    parents, items, where = [], [], []
    base = 0
    for chunk in lists.chunks:
        local = pc.list_parent_indices(chunk).to_numpy()
        parents.append((local + base).astype(np.int32))
        if positions:
            offsets = chunk.offsets.to_numpy()
            where.append(np.arange(len(local), dtype=np.int32) - (offsets[local] - offsets[0]))
        items.append(pc.list_flatten(chunk))
        base += len(chunk)
    if not items:
        empty = np.zeros(0, np.int32)
        return empty, pa.chunked_array([], type=lists.type.value_type), empty if positions else None
    return np.concatenate(parents), pa.chunked_array(items), np.concatenate(where) if positions else None


def unique_categorical(codes: np.ndarray, categories: pd.Index) -> pd.Series:
    """A categorical Series of ``codes`` (-1 for missing) into ``categories``, which the caller guarantees
    are unique strings.

    pandas checks that categories are unique by hashing a Python string object made for each (a million
    user ids: about 100 MB, which then stay cached on the Index, and a third of a second). Every caller
    here has unique categories by construction (dictionary-encoded values, factorized ids, a built file's
    key), so where this pandas still offers it the check is skipped.
    """
    make_dtype = getattr(pd.CategoricalDtype, "_from_fastpath", None)
    dtype = make_dtype(categories, False) if make_dtype is not None else pd.CategoricalDtype(categories)
    return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype, validate=False))


def encoded_categorical(strings: pa.ChunkedArray) -> pd.Series:
    """Strings as a pandas categorical, dictionary-encoded by Arrow (each distinct value once; missing
    values have no category)."""
    encoded = pc.dictionary_encode(strings).combine_chunks()
    categories = pd.Index(pd.arrays.ArrowStringArray(encoded.dictionary.cast(pa.large_string())))
    return unique_categorical(pc.fill_null(encoded.indices, -1).to_numpy(), categories)


def _roster(
    table: pa.Table, list_column: str, *, positions: bool = True, categorical: bool = False
) -> pd.DataFrame:
    """One row per user listed on a section: the section's row in ``sections``, the user id (``categorical``:
    as a pandas categorical of strings), and (unless not wanted) its position.

    Sections are named by row, not id: a district has millions of roster entries, and repeating each
    section's id on every one of them would cost a copy of hundreds of megabytes for nothing.
    """
    parents, items, where = _explode(table.column(list_column), positions=positions)
    user_id: pd.Series = (
        pd.Series(pd.arrays.ArrowStringArray(items.cast(pa.large_string())), dtype="string")
        if len(items)
        else pd.Series([], dtype="string")
    )
    if categorical and len(items):
        user_id = encoded_categorical(items)
    elif categorical:
        user_id = user_id.astype(pd.CategoricalDtype(pd.Index([], dtype="string")))
    columns: dict[str, Any] = {"section": parents, "user_id": user_id}
    if where is not None:
        columns["position"] = where
    frame = pd.DataFrame(columns)
    return frame.dropna(subset=["user_id"]) if items.null_count else frame


def user_roles(snapshot: Snapshot) -> pd.DataFrame:
    """Each user's id and one ``is_<role>`` flag per role of :data:`ROLES`, read from the users collection
    alone (what the sync's guard needs of a night's snapshot; malformed records are left out, as the build
    leaves them out)."""
    table, _ = _read_table(snapshot, "users")
    roles = table.column("roles")
    out = pd.DataFrame({"id": _string_series(table.column("id"))})
    for role in ROLES:
        out[f"is_{role}"] = np.asarray(pc.is_valid(pc.struct_field(roles, role)).to_numpy(), dtype=bool)
    return out


def load_district(snapshot: Snapshot) -> District:
    """Parse every collection of ``snapshot`` into the frames of a :class:`District`."""
    read = {name: _read_table(snapshot, name) for name in SCHEMAS}
    tables = {name: table for name, (table, _) in read.items()}
    malformed = {name: found for name, (_, found) in read.items() if found}
    districts = tables["districts"].to_pylist()
    if not districts:
        raise SnapshotError(f"{snapshot.path}: districts.jsonl holds no district")

    def plain(name: str) -> pd.DataFrame:
        return _strings(tables[name], {column: column for column in SCHEMAS[name].names})

    sections_table = tables["sections"]
    scalar_section_columns = [n for n in SCHEMAS["sections"].names if n not in ("students", "teachers")]
    sections = _strings(sections_table, {n: n for n in scalar_section_columns})
    section_students = _roster(sections_table, "students", positions=False, categorical=True)
    section_teachers = _roster(sections_table, "teachers")

    users_table = tables["users"]
    roles = users_table.column("roles")
    users = _strings(_flatten(users_table), {k: v for k, v in _USER_COLUMNS.items()})
    for role in ROLES:
        flags = pc.is_valid(pc.struct_field(roles, role)).to_numpy()
        users[f"is_{role}"] = np.asarray(flags, dtype=bool)
    relationships = pc.struct_field(pc.struct_field(roles, "contact"), "student_relationships")
    owners, links, _ = _explode(relationships)

    contact_links = pd.DataFrame(
        {
            "contact_id": _string_series(users_table.column("id").take(pa.array(owners))),
            "student_id": _string_series(pc.struct_field(links, "student")),
            "relationship": _string_series(pc.struct_field(links, "relationship")),
            "type": _string_series(pc.struct_field(links, "type")),
        }
    )
    staff = pc.struct_field(roles, "staff")

    return District(
        district={k: v for k, v in districts[0].items() if v not in ("", None)},
        schools=plain("schools"),
        terms=plain("terms"),
        courses=plain("courses"),
        sections=sections,
        section_students=section_students,
        section_teachers=section_teachers,
        users=users,
        contact_links=contact_links,
        malformed=malformed,
        staff_schools=_staff_items(users_table, pc.struct_field(staff, "schools"), "school"),
        staff_roles=_staff_items(users_table, pc.struct_field(staff, "roles"), "role"),
    )


def _staff_items(users: pa.Table, lists: pa.ChunkedArray, column: str) -> pd.DataFrame:
    """One row per item of a staff list field (``lists``, aligned with ``users``): the user's id and the
    item, blank items left out."""
    owners, items, _ = _explode(lists, positions=False)
    frame = pd.DataFrame(
        {
            "user_id": _string_series(users.column("id").take(pa.array(owners, type=pa.int32()))),
            column: _string_series(items),
        }
    )
    return frame.dropna().reset_index(drop=True)
