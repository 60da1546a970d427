"""CanvasModel's admins.csv (lib/sis/admin_importer.rb) and term date overrides (app/models/enrollment_term.rb),
against hand-written imports: Canvas's exact warnings, SIS-managed against manual admins, the diff's pairing,
and the access dates an override gives."""

from __future__ import annotations

import pytest

from tests.canvas_model import CanvasModel, Message, StateChange
from tests.test_canvas_model import DIFFING, apply, district, texts

ADMINS_HEADER = "user_id,account_id,role,status"


@pytest.fixture
def model() -> CanvasModel:
    canvas = CanvasModel(account_roles=("Principal",))
    first = apply(canvas, district())
    assert first.workflow_state == "imported", first.messages
    return canvas


def admins(*rows: str) -> dict[str, tuple[str, ...]]:
    return {"admins.csv": (ADMINS_HEADER, *rows)}


def test_each_refused_row_gets_canvas_s_warning(model: CanvasModel) -> None:
    record = apply(
        model,
        {
            **district(),
            **admins(
                ",A1,AccountAdmin,active",
                "U1,A1,AccountAdmin,",
                "U1,A1,,active",
                "U1,A1,AccountAdmin,suspended",
                "U1,A9,AccountAdmin,active",
                "U1,A1,accountadmin,active",
                "U1,A1,principal,active",
                "U9,A1,AccountAdmin,active",
            ),
        },
    )
    assert [(m.file, m.row, m.message) for m in record.messages] == [
        ("admins.csv", 2, "No user_id given for admin"),
        ("admins.csv", 3, "No status given for admin"),
        ("admins.csv", 4, "No role_id or role given for admin"),
        ("admins.csv", 5, "Invalid status suspended for admin"),
        ("admins.csv", 6, "Invalid account_id given for admin"),
        ("admins.csv", 7, "Invalid role 'accountadmin' for admin"),
        ("admins.csv", 8, "Invalid role 'principal' for admin"),
        ("admins.csv", 9, "Invalid or unknown user_id 'U9' for admin"),
    ]
    assert record.workflow_state == "imported_with_messages"
    assert model.admins() == frozenset()
    assert record.counts["admins"] == 0


def test_an_admin_of_a_sub_account_or_with_a_blank_account_of_the_root(model: CanvasModel) -> None:
    record = apply(
        model,
        {
            **district(),
            **admins("U1,A1,AccountAdmin,active", "U2,A1,Principal,active", "P1,,AccountAdmin,active"),
        },
    )
    assert record.workflow_state == "imported", record.messages
    assert model.admins() == {
        ("A1", "U1", "AccountAdmin"),
        ("A1", "U2", "Principal"),
        (None, "P1", "AccountAdmin"),
    }
    assert record.counts["admins"] == 3
    assert record.changed("admin") == {
        ("A1", "U1", "AccountAdmin"): "active",
        ("A1", "U2", "Principal"): "active",
        (None, "P1", "AccountAdmin"): "active",
    }


def test_deleted_removes_only_an_admin_an_import_made(model: CanvasModel) -> None:
    apply(model, {**district(), **admins("U1,A1,AccountAdmin,active")})
    model.add_manual_admin("U2", "A1")
    model.add_manual_admin("P1", None)
    record = apply(
        model,
        {
            **district(),
            **admins("U1,A1,AccountAdmin,deleted", "U2,A1,AccountAdmin,deleted", "P1,,AccountAdmin,deleted"),
        },
    )
    # A deletion that finds no SIS-made admin is no warning, and counts.
    assert (record.workflow_state, record.counts["admins"]) == ("imported", 3)
    assert model.admins() == {("A1", "U2", "AccountAdmin"), (None, "P1", "AccountAdmin")}
    assert model.admins("deleted") == {("A1", "U1", "AccountAdmin")}
    assert model.sis_admins() == frozenset()


def test_an_active_row_takes_over_a_manual_admin_which_a_later_deletion_then_removes(
    model: CanvasModel,
) -> None:
    model.add_manual_admin("U1", "A1")
    apply(model, {**district(), **admins("U1,A1,AccountAdmin,active")})
    assert model.sis_admins() == {("A1", "U1", "AccountAdmin")}
    apply(model, {**district(), **admins("U1,A1,AccountAdmin,deleted")})
    assert model.admins() == frozenset()


def test_a_suspended_user_is_not_found_so_cannot_lose_an_admin_role(model: CanvasModel) -> None:
    apply(model, {**district(), **admins("U1,A1,AccountAdmin,active")})
    users = tuple(
        line.replace("U1,ann,Ann,Lee,ann@example.org,active", "U1,ann,Ann,Lee,ann@example.org,suspended")
        for line in district()["users.csv"]
    )  # type: ignore[union-attr]
    record = apply(model, {**district(users=users), **admins("U1,A1,AccountAdmin,deleted")})
    assert texts(record) == ["Invalid or unknown user_id 'U1' for admin"]
    assert model.admins() == {("A1", "U1", "AccountAdmin")}


def test_skip_deletes_skips_a_deletion_silently(model: CanvasModel) -> None:
    apply(model, {**district(), **admins("U1,A1,AccountAdmin,active")})
    record = apply(model, {**district(), **admins("U1,A1,AccountAdmin,deleted")}, skip_deletes="true")
    assert (record.workflow_state, record.counts["admins"]) == ("imported", 0)
    assert model.admins() == {("A1", "U1", "AccountAdmin")}


def test_the_diff_pairs_admins_by_user_and_account_so_a_new_role_keeps_the_old(model: CanvasModel) -> None:
    first = apply(
        model, {**district(), **admins("U1,A1,AccountAdmin,active", "U2,A1,AccountAdmin,active")}, **DIFFING
    )
    assert first.mode == "first"
    gone = apply(model, {**district(), **admins("U1,A1,AccountAdmin,active")}, **DIFFING)
    # The vanished row comes out of the diff as deleted.
    assert gone.rows("admin") == [
        {"user_id": "U2", "account_id": "A1", "role": "AccountAdmin", "status": "deleted"}
    ]
    assert model.admins() == {("A1", "U1", "AccountAdmin")}
    moved = apply(model, {**district(), **admins("U1,A1,Principal,active")}, **DIFFING)
    assert moved.rows("admin") == [
        {"user_id": "U1", "account_id": "A1", "role": "Principal", "status": "active"}
    ]
    assert model.admins() == {("A1", "U1", "AccountAdmin"), ("A1", "U1", "Principal")}
    # Both rows in one file: one key, so the diff keeps the last; a remaster applies both.
    both = (
        "U1,A1,AccountAdmin,deleted",
        "U1,A1,Principal,active",
    )
    remaster = apply(model, {**district(), **admins(*both)}, **DIFFING, diffing_remaster_data_set="true")
    assert remaster.mode == "remaster"
    assert model.admins() == {("A1", "U1", "Principal")}


def test_admins_are_processed_after_users_and_enrollments(model: CanvasModel) -> None:
    users = (*district()["users.csv"], "U7,gil,Gil,Moe,gil@example.org,active")  # type: ignore[misc]
    record = apply(model, {**district(users=users), **admins("U7,A1,AccountAdmin,active")})
    assert record.workflow_state == "imported", record.messages
    assert model.admins() == {("A1", "U7", "AccountAdmin")}


def test_an_override_sets_both_dates_and_gives_teachers_their_access(model: CanvasModel) -> None:
    term = model.term("T1")
    assert term is not None
    assert model.access_dates("S1", "U1", "student") == ("2026-08-17T00:00:00Z", "2027-01-15T23:59:59Z")
    enrollments = (*district()["enrollments.csv"], "C1,S1,U2,teacher,active")  # type: ignore[misc]
    apply(model, district(enrollments=enrollments))
    # Canvas's default: teachers may enter whenever before the term, until its end.
    assert model.access_dates("S1", "U2", "teacher") == (None, "2027-01-15T23:59:59Z")
    model.set_term_overrides(term, {"TeacherEnrollment": {"start_at": "2026-08-03T00:00:00Z", "end_at": ""}})
    assert model.access_dates("S1", "U2", "teacher") == ("2026-08-03T00:00:00Z", "2027-01-15T23:59:59Z")
    assert model.access_dates("S1", "U1", "student") == ("2026-08-17T00:00:00Z", "2027-01-15T23:59:59Z")
    # A type given without one of its dates loses it (EnrollmentTerm#set_overrides sets both).
    model.set_term_overrides(term, {"TeacherEnrollment": {"end_at": "2027-01-29T23:59:59Z"}})
    assert model.access_dates("S1", "U2", "teacher") == (None, "2027-01-29T23:59:59Z")


def test_terms_by_canvas_id_sis_id_and_hex_sis_id(model: CanvasModel) -> None:
    term = model.term("T1")
    assert term is not None
    assert model.term_by_ref(str(term.id)) is term
    assert model.term_by_ref("sis_term_id:T1") is term
    assert model.term_by_ref("hex:sis_term_id:" + b"T1".hex()) is term
    assert model.term_by_ref("sis_term_id:T9") is None


def test_a_refused_row_names_its_file_and_line_and_makes_nothing(model: CanvasModel) -> None:
    record = apply(model, {**district(), **admins("U1,A1,AccountAdmin,active")})
    assert record.messages == []
    record = apply(model, {**district(), **admins("U1,A9,AccountAdmin,active")})
    assert record.messages == [Message("admins.csv", "Invalid account_id given for admin", 2)]
    assert model.admins() == {("A1", "U1", "AccountAdmin")}
    assert [c for c in record.changes if c.kind == "admin"] == []


def test_state_changes_of_admins_are_logged(model: CanvasModel) -> None:
    made = apply(model, {**district(), **admins("U1,A1,AccountAdmin,active")})
    removed = apply(model, {**district(), **admins("U1,A1,AccountAdmin,deleted")})
    assert [c for c in made.changes if c.kind == "admin"] == [
        StateChange("admin", ("A1", "U1", "AccountAdmin"), None, "active")
    ]
    assert [c for c in removed.changes if c.kind == "admin"] == [
        StateChange("admin", ("A1", "U1", "AccountAdmin"), "active", "deleted")
    ]
