"""CanvasModel against hand-written imports: each canvas-lms behaviour it models, with Canvas's exact words.

Every test feeds small CSVs (zipped as a sync would post them) through the model, directly or through the
local sis_imports server, and asserts the state the account is left in and the messages Canvas gives. Several
tests pin Canvas behaviours a rostering tool must work around (a removed parent link that keeps observing
under diffing, a suspended login that locks a new user out, a growth night whose removals are not applied,
an old term that cannot be deleted).
"""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any

import httpx
import pytest

from tests.canvas_model import (
    CanvasModel,
    ImportRecord,
    Message,
    StateChange,
    default_email_valid,
)
from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas

ACCOUNTS = ("account_id,parent_account_id,name,status", "A1,,North School,active")
TERMS = (
    "term_id,name,status,start_date,end_date",
    "T1,Fall,active,2026-08-17T00:00:00Z,2027-01-15T23:59:59Z",
)
COURSES = (
    "course_id,short_name,long_name,account_id,term_id,status",
    "C1,MATH,Math,A1,T1,active",
    "C2,ART,Art,A1,T1,active",
)
SECTIONS = ("section_id,course_id,name,status", "S1,C1,Math 1,active", "S2,C2,Art 1,active")
USERS = (
    "user_id,login_id,first_name,last_name,email,status",
    "U1,ann,Ann,Lee,ann@example.org,active",
    "U2,bob,Bob,Ray,bob@example.org,active",
    "P1,pat,Pat,Lee,pat@example.org,active",
)
ENROLLMENTS = (
    "course_id,section_id,user_id,role,status",
    "C1,S1,U1,student,active",
    "C2,S2,U2,student,active",
)
DIFFING = {"diffing_data_set_identifier": "clever:d1", "diffing_drop_status": "inactive"}


def csv_text(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def zipped(files: dict[str, tuple[str, ...] | str | bytes]) -> bytes:
    """A zip as a build writes it: one entry per file, fixed timestamps."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in files.items():
            if isinstance(content, tuple):
                content = csv_text(*content)
            data = content if isinstance(content, bytes) else content.encode()
            archive.writestr(zipfile.ZipInfo(name, date_time=(2027, 1, 5, 6, 0, 0)), data)
    return out.getvalue()


def district(**changes: tuple[str, ...] | None) -> dict[str, tuple[str, ...] | str | bytes]:
    """The small district above, with files replaced (or dropped with ``None``)."""
    files: dict[str, tuple[str, ...] | None] = {
        "accounts.csv": ACCOUNTS,
        "terms.csv": TERMS,
        "courses.csv": COURSES,
        "sections.csv": SECTIONS,
        "users.csv": USERS,
        "enrollments.csv": ENROLLMENTS,
        **{f"{name}.csv": content for name, content in changes.items()},
    }
    return {name: content for name, content in files.items() if content is not None}


def apply(model: CanvasModel, files: dict[str, Any], **options: Any) -> ImportRecord:
    return model.apply(len(model.imports) + 101, options, zipped(files))


def texts(record: ImportRecord) -> list[str]:
    return [message.message for message in record.messages]


@pytest.fixture
def model() -> CanvasModel:
    canvas = CanvasModel()
    first = apply(canvas, district())
    assert first.workflow_state == "imported", first.messages
    return canvas


# -- reading the attachment --------------------------------------------------------------------------------


def test_a_file_is_read_by_its_header_and_the_first_predicate_wins() -> None:
    canvas = CanvasModel()
    record = apply(
        canvas,
        {
            # named for sections, but term_id + name make it a terms file (terms come before sections)
            "sections.csv": ("term_id,name,status,section_id", "T9,Spring,active,S9"),
            # named for enrollments, but section_id + name make it a sections file
            "enrollments.csv": ("section_id,course_id,name,status,user_id", "S9,C9,Lab,active,U1"),
            "people.csv": ("user_id,login_id,status", "U1,ann,active"),
            "notes.txt": "not a csv",
            "__MACOSX/._people.csv": "ignored",
            "extra.csv": ("student_number,grade", "1,9"),
        },
    )
    assert [(f.path, f.importer) for f in record.files] == [
        ("enrollments.csv", "section"),
        ("people.csv", "user"),
        ("sections.csv", "term"),
    ]
    assert record.messages == [
        Message("extra.csv", "Couldn't find Canvas CSV import headers", failure=True),
        Message("notes.txt", "Skipping unknown file type"),
        Message("enrollments.csv", "Section S9 references course C9 which doesn't exist", row=2),
    ]
    # A failure ends the import failed_with_messages, though the other files were imported.
    assert record.workflow_state == "failed_with_messages"
    assert canvas.term("T9") is not None
    assert canvas.user_status("U1") == "active"
    assert record.counts["terms"] == record.counts["users"] == 1
    assert (record.counts["sections"], record.counts["error_count"], record.counts["warning_count"]) == (
        0,
        1,
        2,
    )


def test_bom_invalid_utf8_and_malformed_csv() -> None:
    canvas = CanvasModel()
    record = apply(
        canvas,
        {
            "users.csv": "\ufeffUSER_ID,Login_ID,Status\n  U1 , ann ,active\n\n,,\n".encode(),
            "bad.csv": b"user_id,login_id,status\nU2,b\xffob,active\n",
            "broken.csv": 'user_id,login_id,status\nU3,"cat,active\n',
        },
    )
    assert record.messages == [
        Message("bad.csv", "Invalid UTF-8", failure=True),
        Message("broken.csv", "Malformed CSV", failure=True),
    ]
    # Headers are lower-cased, values stripped; an empty line and a row of blanks are skipped.
    assert canvas.logins("U1") == [("ann", None, "active", "U1")]
    assert record.counts["users"] == 1


def test_files_run_in_canvas_order_not_the_zip_order() -> None:
    canvas = CanvasModel()
    record = apply(
        canvas,
        {
            "a_enrollments.csv": ENROLLMENTS,
            "b_users.csv": USERS,
            "c_sections.csv": SECTIONS,
            "d_courses.csv": COURSES,
            "e_terms.csv": TERMS,
            "f_accounts.csv": ACCOUNTS,
        },
    )
    assert record.workflow_state == "imported", record.messages
    assert record.supplied_batches == ["account", "term", "course", "section", "user", "enrollment"]
    assert canvas.active_enrollments() == {("S1", "U1", "student"), ("S2", "U2", "student")}


# -- diffing -------------------------------------------------------------------------------------------------


def test_diffing_sends_new_and_changed_rows_and_the_vanished_with_the_removal_statuses(
    model: CanvasModel,
) -> None:
    options = {**DIFFING, "diffing_user_remove_status": "suspended"}
    first = apply(model, district(), **options)
    assert (first.mode, first.diffed_against, first.threshold_exceeded) == ("first", None, None)
    users = (*USERS[:2], "U2,bob,Bob,Rae,bob@example.org,active", "U3,cy,Cy,Ng,cy@example.org,active")
    enrollments = (ENROLLMENTS[0], ENROLLMENTS[1], "C1,S1,U3,student,active")
    second = apply(model, district(users=users, enrollments=enrollments), **options)
    assert (second.mode, second.diffed_against, second.threshold_exceeded) == ("diffing", first.id, False)
    assert second.rows("user") == [
        {
            "user_id": "U2",
            "login_id": "bob",
            "first_name": "Bob",
            "last_name": "Rae",
            "email": "bob@example.org",
            "status": "active",
        },
        {
            "user_id": "U3",
            "login_id": "cy",
            "first_name": "Cy",
            "last_name": "Ng",
            "email": "cy@example.org",
            "status": "active",
        },
        {
            "user_id": "P1",
            "login_id": "pat",
            "first_name": "Pat",
            "last_name": "Lee",
            "email": "pat@example.org",
            "status": "suspended",
        },
    ]
    assert second.rows("enrollment") == [
        {"course_id": "C1", "section_id": "S1", "user_id": "U3", "role": "student", "status": "active"},
        {"course_id": "C2", "section_id": "S2", "user_id": "U2", "role": "student", "status": "inactive"},
    ]
    assert second.rows("course") == second.rows("account") == []
    assert model.user_status("P1") == "suspended"
    assert model.enrollment_state("S2", "U2", "student") == "inactive"
    assert model.active_enrollments() == {("S1", "U1", "student"), ("S1", "U3", "student")}
    assert second.workflow_state == "imported"


def test_a_parent_link_removed_under_diffing_sends_nothing_and_the_parent_keeps_observing(
    model: CanvasModel,
) -> None:
    """user_observers are diffed by observer_id alone: the second link of a parent hides the first."""
    both = ("observer_id,student_id,status", "P1,U1,active", "P1,U2,active")
    first = apply(model, district(user_observers=both), **DIFFING)
    assert model.observer_links() == {("P1", "U1"), ("P1", "U2")}
    assert ("S1", "P1", "observer") in model.active_enrollments()
    # Clever drops the link to U1; the stored rows of P1 are (P1,U2) before and after: no row at all.
    second = apply(
        model, district(user_observers=("observer_id,student_id,status", "P1,U2,active")), **DIFFING
    )
    assert second.diffed_against == first.id
    assert second.rows("user_observer") == []
    assert model.observer_links() == {("P1", "U1"), ("P1", "U2")}
    assert model.enrollment_state("S1", "P1", "observer", associated_user_id="U1") == "active"
    # An explicit deleted row, in an import that is not diffed, removes the link and its enrollments.
    removal = apply(model, {"user_observers.csv": ("observer_id,student_id,status", "P1,U1,deleted")})
    assert removal.workflow_state == "imported"
    assert model.observer_links() == {("P1", "U2")}
    assert model.observer_links("deleted") == {("P1", "U1")}
    assert model.enrollment_state("S1", "P1", "observer", associated_user_id="U1") == "deleted"
    assert model.enrollment_state("S2", "P1", "observer", associated_user_id="U2") == "active"


def test_a_sibling_listed_before_the_linked_child_is_never_linked_under_diffing(model: CanvasModel) -> None:
    apply(model, district(user_observers=("observer_id,student_id,status", "P1,U1,active")), **DIFFING)
    second = apply(
        model,
        district(user_observers=("observer_id,student_id,status", "P1,U2,active", "P1,U1,active")),
        **DIFFING,
    )
    assert second.rows("user_observer") == []
    assert model.observer_links() == {("P1", "U1")}


def test_a_file_type_left_out_deletes_nothing_and_a_new_type_passes_whole(model: CanvasModel) -> None:
    apply(model, district(), **DIFFING)
    second = apply(
        model,
        district(enrollments=None, user_observers=("observer_id,student_id,status", "P1,U1,active")),
        **DIFFING,
    )
    assert second.supplied_batches == ["account", "term", "course", "section", "user", "user_observer"]
    assert second.rows("user_observer") == [{"observer_id": "P1", "student_id": "U1", "status": "active"}]
    assert model.active_enrollments() >= {("S1", "U1", "student"), ("S2", "U2", "student")}


def test_changed_headers_apply_the_whole_file_with_the_warning(model: CanvasModel) -> None:
    apply(model, district(), **DIFFING)
    users = ("user_id,login_id,first_name,last_name,status", "U1,ann,Ann,Lee,active")
    second = apply(model, district(users=users), **DIFFING)
    assert second.messages == [
        Message("users.csv", "Couldn't generate diff: CSV headers do not match, cannot diff")
    ]
    assert second.rows("user") == [
        {"user_id": "U1", "login_id": "ann", "first_name": "Ann", "last_name": "Lee", "status": "active"}
    ]
    # Whole file, no deletes: the users left out stay active.
    assert (model.user_status("U2"), model.user_status("P1")) == ("active", "active")
    assert second.workflow_state == "imported_with_messages"
    assert second.diffed_against is not None


def test_several_files_of_a_type_pair_by_name_or_pass_whole() -> None:
    canvas = CanvasModel()
    files = {**district(users=None), "users_a.csv": USERS[:2], "users_b.csv": (USERS[0], USERS[2])}
    apply(canvas, files, **DIFFING)
    same = apply(canvas, files, **DIFFING)
    assert same.rows("user") == []
    assert same.messages == []
    renamed = {**district(users=None), "users_a.csv": USERS[:2], "users_c.csv": (USERS[0], USERS[2])}
    mismatched = apply(canvas, renamed, **DIFFING)
    assert mismatched.messages == [
        Message(
            "users_a.csv", "Unable to perform diffing against mismatched previous and current user imports"
        )
    ]
    assert len(mismatched.rows("user")) == 2


def test_a_growth_night_over_change_threshold_applies_without_deletes_and_is_no_baseline(
    model: CanvasModel,
) -> None:
    options = {**DIFFING, "change_threshold": 10, "diffing_user_remove_status": "suspended"}
    night1 = apply(model, district(), **options)
    night2 = apply(
        model, district(), **options
    )  # nothing changed: header-only files, a baseline all the same
    assert (night2.workflow_state, night2.diffed_against, night2.generated_diff) == (
        "imported",
        night1.id,
        True,
    )
    assert [len(f.rows) for f in night2.applied] == [0, 0, 0, 0, 0, 0]
    # Night 3: a burst of new users (the zip grows well past 10%) while P1 leaves.
    joiners = tuple(f"N{i},new{i},New,Student{i},new{i}@example.org,active" for i in range(20))
    night3 = apply(model, district(users=(*USERS[:3], *joiners)), **options)
    assert night3.threshold_exceeded is True
    assert night3.messages == [
        Message(None, "Diffing not performed because file size difference exceeded threshold")
    ]
    assert night3.workflow_state == "imported_with_messages"
    assert night3.diffed_against is None
    assert model.user_status("N0") == "active"
    assert model.user_status("P1") == "active"  # the removal was not applied
    # Night 4 (the burst gone again) diffs against night 2, night 3 being no baseline: P1's removal is sent
    # now, but the 20 users night 3 created are in neither file, so they stay active in Canvas.
    night4 = apply(model, district(users=USERS[:3]), **options)
    assert night4.diffed_against == night2.id
    assert night4.rows("user") == [
        {
            "user_id": "P1",
            "login_id": "pat",
            "first_name": "Pat",
            "last_name": "Lee",
            "email": "pat@example.org",
            "status": "suspended",
        }
    ]
    assert model.user_status("P1") == "suspended"
    assert {model.user_status(f"N{i}") for i in range(20)} == {"active"}


def test_the_file_size_threshold_is_on_the_whole_attachment_not_per_file(model: CanvasModel) -> None:
    options = {**DIFFING, "change_threshold": 10}
    apply(model, district(), **options)
    # enrollments.csv doubles, but the whole zip grows by less than 10%: the diff goes ahead.
    enrollments = (*ENROLLMENTS, "C1,S1,U2,student,active", "C2,S2,U1,student,active")
    record = apply(model, district(enrollments=enrollments), **options)
    assert record.threshold_exceeded is False
    assert len(record.rows("enrollment")) == 2


def test_diff_row_count_threshold(model: CanvasModel) -> None:
    options = {**DIFFING, "diff_row_count_threshold": 1}
    apply(model, district(), **options)
    record = apply(model, district(users=USERS[:2], enrollments=ENROLLMENTS[:2]), **options)
    assert record.threshold_exceeded is True
    assert record.messages == [
        Message(None, "Diffing not performed because difference row count exceeded threshold")
    ]
    assert model.user_status("U2") == "active"
    assert model.enrollment_state("S2", "U2", "student") == "active"


def test_a_failed_import_is_never_a_baseline_and_a_remaster_always_is() -> None:
    canvas = CanvasModel()
    failed = apply(canvas, {**district(), "bad.csv": ("nothing,known", "1,2")}, **DIFFING)
    assert failed.workflow_state == "failed_with_messages"
    first = apply(canvas, district(), **DIFFING)
    assert first.mode == "first"  # the failed import is not a baseline
    second = apply(canvas, district(users=USERS[:2]), **DIFFING)
    assert second.diffed_against == first.id
    remaster = apply(canvas, district(users=USERS[:3]), **DIFFING, diffing_remaster_data_set="true")
    assert (remaster.mode, remaster.diffed_against) == ("remaster", None)
    assert len(remaster.rows("user")) == 2  # whole files
    after = apply(canvas, district(users=USERS[:3]), **DIFFING)
    assert after.diffed_against == remaster.id
    assert after.rows("user") == []


def test_a_student_removed_with_the_default_user_status_warns_for_each_dropped_enrollment(
    model: CanvasModel,
) -> None:
    """The vanished user is sent deleted first (users run before enrollments), which deletes its enrollments;
    the vanished enrollments then arrive as inactive rows on deleted enrollments of a deleted login."""
    apply(model, district(), **DIFFING)
    record = apply(
        model, district(users=(USERS[0], USERS[1], USERS[3]), enrollments=ENROLLMENTS[:2]), **DIFFING
    )
    assert record.rows("user")[0]["status"] == "deleted"
    assert record.rows("enrollment") == [
        {"course_id": "C2", "section_id": "S2", "user_id": "U2", "role": "student", "status": "inactive"}
    ]
    assert record.messages == [
        Message("enrollments.csv", "Attempted enrolling with deleted sis login bob in course C2", 2)
    ]
    assert record.workflow_state == "imported_with_messages"
    assert model.enrollment_state("S2", "U2", "student") == "deleted"


def test_what_vanished_before_a_remaster_is_never_removed(model: CanvasModel) -> None:
    """A remaster applies whole files, without deletes, and is the next diff's baseline."""
    options = {**DIFFING, "diffing_user_remove_status": "suspended"}
    apply(model, district(), **options)
    remaster = apply(model, district(users=USERS[:3]), **options, diffing_remaster_data_set="true")
    assert remaster.changes == []
    after = apply(model, district(users=USERS[:3]), **options)
    assert after.diffed_against == remaster.id
    assert after.rows("user") == []
    assert model.user_status("P1") == "active"


def test_skip_deletes_ignores_deleted_rows_and_the_diffs_deletes(model: CanvasModel) -> None:
    apply(model, district(), **DIFFING)
    record = apply(model, district(users=USERS[:2]), **DIFFING, skip_deletes="true")
    assert record.rows("user")[0]["status"] == "deleted"
    assert (model.user_status("P1"), record.counts["users"]) == ("active", 0)
    explicit = apply(model, {"users.csv": (USERS[0], "U1,ann,Ann,Lee,,deleted")}, skip_deletes="true")
    assert (model.user_status("U1"), explicit.messages, explicit.counts["users"]) == ("active", [], 0)


# -- users and logins ----------------------------------------------------------------------------------------


def test_a_suspended_login_still_claims_its_name_and_locks_the_new_user_out(model: CanvasModel) -> None:
    apply(model, {"users.csv": (USERS[0], "U1,ann,Ann,Lee,ann@example.org,suspended")})
    assert model.signs_in_as("ann") is None
    assert model.enrollment_state("S1", "U1", "student") == "active"  # suspension keeps enrollments
    # The student comes back with a new SIS id and the same login (any case).
    record = apply(
        model,
        {
            "users.csv": (USERS[0], "U9,ANN,Ann,Lee,ann@example.org,active"),
            "enrollments.csv": (ENROLLMENTS[0], "C1,S1,U9,student,active"),
        },
    )
    assert record.messages == [
        Message(
            "users.csv",
            "An existing Canvas user with the SIS ID U1 has already claimed U9's user_id requested login "
            "information, skipping",
            row=2,
        ),
        Message(
            "enrollments.csv",
            "User not found for enrollment (User ID: U9, Course ID: C1, Section ID: S1)",
            row=2,
        ),
    ]
    assert record.workflow_state == "imported_with_messages"
    assert model.user_status("U9") is None
    assert model.signs_in_as("ann") is None  # nobody can sign in as ann


def test_update_sis_id_if_login_claimed_repoints_the_login_with_the_user_and_its_enrollments(
    model: CanvasModel,
) -> None:
    apply(model, {"users.csv": (USERS[0], "U1,ann,Ann,Lee,ann@example.org,suspended")})
    record = apply(
        model,
        {"users.csv": (USERS[0], "U9,ann,Ann,Lee,ann@example.org,active")},
        update_sis_id_if_login_claimed="true",
    )
    assert record.messages == []
    assert record.changes == [StateChange("user", ("U9",), None, "active")]
    assert model.user_status("U1") is None
    assert model.logins("U9") == [("ann", None, "active", "U9")]
    assert model.signs_in_as("ann") == "U9"
    # The Canvas user behind the login is the same: U1's enrollment is now U9's.
    assert model.enrollment_state("S1", "U9", "student") == "active"
    later = apply(model, {"enrollments.csv": (ENROLLMENTS[0], "C2,S2,U1,student,active")})
    assert texts(later) == ["User not found for enrollment (User ID: U1, Course ID: C2, Section ID: S2)"]


def test_deleting_the_last_login_deletes_the_users_enrollments_and_linked_ones_but_not_the_link(
    model: CanvasModel,
) -> None:
    apply(model, {"user_observers.csv": ("observer_id,student_id,status", "P1,U1,active")})
    assert model.enrollment_state("S1", "P1", "observer", associated_user_id="U1") == "active"
    record = apply(model, {"users.csv": (USERS[0], "U1,ann,Ann,Lee,ann@example.org,deleted")})
    assert record.messages == []
    assert model.user_status("U1") == "deleted"
    assert model.enrollment_state("S1", "U1", "student") == "deleted"
    assert model.enrollment_state("S1", "P1", "observer", associated_user_id="U1") == "deleted"
    assert model.observer_links() == {("P1", "U1")}
    assert model.signs_in_as("ann") is None
    # The deleted login frees its name: a new user may take it.
    again = apply(model, {"users.csv": (USERS[0], "U7,ann,Ann,Lee,ann@example.org,active")})
    assert again.messages == []
    assert model.signs_in_as("ann") == "U7"
    # Deleting an already deleted login is skipped, and not counted.
    twice = apply(model, {"users.csv": (USERS[0], "U1,ann,Ann,Lee,ann@example.org,deleted")})
    assert (twice.messages, twice.counts["users"]) == ([], 0)


def test_a_login_over_100_characters_or_unprintable_is_not_saved() -> None:
    canvas = CanvasModel()
    long_login = "a" * 101
    record = apply(
        canvas,
        {
            "users.csv": (
                "user_id,login_id,status",
                f"U1,{long_login},active",
                f"U2,{'b' * 100},active",
                "U3,tab\there,active",
                "U4,no\u00a0break\u200bspace,active",
                "U5,line\u2028separator,active",
            )
        },
    )
    assert texts(record) == [
        "Could not save the user with user_id: 'U1'. Unknown reason: unique_id is too long (maximum is 100 characters)",
        "Could not save the user with user_id: 'U3'. Invalid login_id: 'tab\there'",
        "Could not save the user with user_id: 'U5'. Invalid login_id: 'line\u2028separator'",
    ]
    assert [m.row for m in record.messages] == [2, 4, 6]
    assert [canvas.user_status(f"U{n}") for n in range(1, 6)] == [None, "active", None, "active", None]
    assert canvas.users.keys() == {canvas.pseudonyms[p].user for p in canvas.pseudonyms}  # nothing half-saved


def test_an_invalid_email_is_a_warning_and_the_user_is_saved_without_it() -> None:
    canvas = CanvasModel()
    record = apply(
        canvas,
        {
            "users.csv": (
                USERS[0],
                "U1,ann,Ann,Lee,ann(at)example.org,active",
                "U2,bob,Bob,Ray,bob@example.org,active",
            )
        },
    )
    assert record.messages == [
        Message(
            "users.csv",
            "The email address associated with user 'U1' is invalid (email: 'ann(at)example.org')",
            2,
        )
    ]
    assert (canvas.user_status("U1"), canvas.email("U1"), canvas.email("U2")) == (
        "active",
        None,
        "bob@example.org",
    )
    assert record.counts["users"] == 1  # the row with the bad email is not counted


def test_the_email_rule_is_a_predicate_the_model_takes() -> None:
    canvas = CanvasModel(email_valid=lambda email: email.endswith(".edu"))
    record = apply(canvas, {"users.csv": USERS})
    assert [m.message for m in record.messages] == [
        f"The email address associated with user '{u}' is invalid (email: '{e}@example.org')"
        for u, e in (("U1", "ann"), ("U2", "bob"), ("P1", "pat"))
    ]


@pytest.mark.parametrize(
    ("email", "valid"),
    [
        ("ann@example.org", True),
        ("a@b", True),
        ("a..b@x.org", True),
        (".a@x.org", True),
        ('"john doe"@x.org', True),
        ("o'brien@x.org", True),
        ('o"neil@example.com', False),
        ("a(b)@x.org", False),
        ("a,b@x.org", False),
        ("first.last.example.org", False),
        ("Ann <ann@x.org>", False),
    ],
)
def test_the_default_email_rule_follows_the_reference_examples(email: str, valid: bool) -> None:
    assert default_email_valid(email) is valid


def test_user_rows_canvas_refuses() -> None:
    canvas = CanvasModel(authentication_providers={"saml"})
    record = apply(
        canvas,
        {
            "users.csv": (
                "user_id,login_id,authentication_provider_id,status",
                ",ann,,active",
                "U2,,,active",
                "U3,cy,,",
                "U4,dee,,retired",
                "U5,e\x00d,,active",
                "U6,fay,google,active",
                "U7,gus,saml,active",
                "U8,ivy\x00,,active",  # Ruby's strip removes a trailing NUL before the check
            )
        },
    )
    assert [(m.row, m.message) for m in record.messages] == [
        (2, "No user_id given for a user"),
        (3, "No login_id given for user U2"),
        (4, "No status given for user U3"),
        (5, "Improper status for user U4"),
        (6, "Some of the fields contain NULL character"),
        (7, "unrecognized authentication provider google for U6, skipping"),
    ]
    assert canvas.logins("U7") == [("gus", "saml", "active", "U7")]
    assert canvas.signs_in_as("gus") is None
    assert canvas.signs_in_as("gus", "saml") == "U7"
    assert canvas.user_status("U8") == "active"
    assert record.counts["users"] == 2


def test_a_suspended_user_keeps_enrollments_and_signs_in_again_once_active(model: CanvasModel) -> None:
    apply(model, {"users.csv": (USERS[0], "U1,ann,Ann,Lee,ann@example.org,suspended")})
    record = apply(model, {"enrollments.csv": (ENROLLMENTS[0], "C2,S2,U1,student,active")})
    assert record.messages == []
    assert {("S1", "U1", "student"), ("S2", "U1", "student")} <= model.active_enrollments()
    apply(model, {"users.csv": (USERS[0], "U1,ann,Ann,Lee,ann@example.org,active")})
    assert model.signs_in_as("Ann") == "U1"


def test_a_login_change_moves_the_sign_in_and_a_taken_login_is_refused(model: CanvasModel) -> None:
    record = apply(
        model,
        {"users.csv": (USERS[0], "U1,ann.lee,Ann,Lee,ann@example.org,active", "U2,pat,Bob,Ray,,active")},
    )
    assert texts(record) == [
        "An existing Canvas user with the SIS ID P1 has already claimed U2's user_id requested login information, skipping"
    ]
    assert (model.signs_in_as("ann.lee"), model.signs_in_as("ann"), model.signs_in_as("bob")) == (
        "U1",
        None,
        "U2",
    )


# -- accounts and terms --------------------------------------------------------------------------------------


def test_a_term_with_courses_cannot_be_deleted_and_the_refused_row_changes_nothing(
    model: CanvasModel,
) -> None:
    record = apply(
        model, {"terms.csv": (TERMS[0], "T1,Fall,deleted,2026-09-01T00:00:00Z,2027-01-15T23:59:59Z")}
    )
    assert record.messages == [
        Message(
            "terms.csv",
            "A term did not pass validation (term: T1 / Fall, error: Workflow state Cannot delete a term with "
            "active courses)",
            row=2,
        )
    ]
    term = model.term("T1")
    assert term is not None
    assert (term.state, term.start) == ("active", "2026-08-17T00:00:00Z")
    # A concluded course still holds the term; only once its courses are deleted can it go.
    apply(model, {"courses.csv": (COURSES[0], "C1,MATH,Math,A1,T1,completed", "C2,ART,Art,A1,T1,deleted")})
    assert texts(apply(model, {"terms.csv": (TERMS[0], "T1,Fall,deleted,,")}))[0].startswith(
        "A term did not pass"
    )
    apply(model, {"courses.csv": (COURSES[0], "C1,MATH,Math,A1,T1,deleted")})
    assert apply(model, {"terms.csv": (TERMS[0], "T1,Fall,deleted,,")}).messages == []
    assert model.term("T1").state == "deleted"  # type: ignore[union-attr]


def test_a_term_date_edit_under_diffing_leaves_the_old_term_behind_for_good(model: CanvasModel) -> None:
    """Clever re-creates a term with a new id when its dates change; terms run before courses."""
    apply(model, district(), **DIFFING)
    terms = (TERMS[0], "T2,Fall,active,2026-08-24T00:00:00Z,2027-01-15T23:59:59Z")
    courses = (COURSES[0], "C1,MATH,Math,A1,T2,active", "C2,ART,Art,A1,T2,active")
    moved = apply(model, district(terms=terms, courses=courses), **DIFFING)
    assert moved.rows("term") == [
        {
            "term_id": "T2",
            "name": "Fall",
            "status": "active",
            "start_date": "2026-08-24T00:00:00Z",
            "end_date": "2027-01-15T23:59:59Z",
        },
        {
            "term_id": "T1",
            "name": "Fall",
            "status": "deleted",
            "start_date": "2026-08-17T00:00:00Z",
            "end_date": "2027-01-15T23:59:59Z",
        },
    ]
    assert texts(moved) == [
        "A term did not pass validation (term: T1 / Fall, error: Workflow state Cannot delete a term with active courses)"
    ]
    assert (model.course_term("C1"), model.course_term("C2")) == ("T2", "T2")
    again = apply(model, district(terms=terms, courses=courses), **DIFFING)
    assert again.rows("term") == []
    assert again.messages == []
    assert model.term("T1").state == "active"  # type: ignore[union-attr]


def test_term_dates_update_and_an_empty_date_clears(model: CanvasModel) -> None:
    record = apply(
        model, {"terms.csv": (TERMS[0], "T1,Fall term,active,2026-08-20T00:00:00Z,", "T3,Later,active,soon,")}
    )
    assert record.messages == [Message("terms.csv", "Bad date format for term T3", row=3)]
    term = model.term("T1")
    assert term is not None
    assert (term.name, term.start, term.end) == ("Fall term", "2026-08-20T00:00:00Z", None)
    assert model.term("T3").start is None  # type: ignore[union-attr]


def test_account_rules() -> None:
    canvas = CanvasModel()
    record = apply(
        canvas,
        {
            "accounts.csv": (
                "account_id,parent_account_id,name,status",
                "A1,,District,active",
                "A2,A1,North,active",
                "A3,A9,South,active",
                "A4,,,active",
                "A5,,East,open",
                "A1,,District,deleted",
            ),
            "courses.csv": (COURSES[0], "C1,MATH,Math,A2,,active"),
        },
    )
    assert texts(record) == [
        "Parent account didn't exist for A3",
        "No name given for account A4, skipping",
        'Improper status "open" for account A5, skipping',
        "Cannot delete the sub_account with ID: A1 because it has active sub accounts.",
    ]
    refused = apply(
        canvas, {"accounts.csv": ("account_id,parent_account_id,name,status", "A2,A1,North,deleted")}
    )
    assert texts(refused) == ["Cannot delete the sub_account with ID: A2 because it has active courses."]
    apply(canvas, {"courses.csv": (COURSES[0], "C1,MATH,Math,A2,,deleted")})
    removed = apply(
        canvas,
        {
            "accounts.csv": (
                "account_id,parent_account_id,name,status",
                "A2,A1,North,deleted",
                "A6,A2,West,active",
            )
        },
    )
    assert texts(removed) == [
        "Cannot restore sub_account with ID: A6 because parent_account with ID: A2 has been deleted."
    ]
    assert canvas.account("A2").state == "deleted"  # type: ignore[union-attr]
    restore = apply(canvas, {"courses.csv": (COURSES[0], "C1,MATH,Math,A2,,active")})
    assert texts(restore) == ["Cannot restore course C1 because the associated account A2 is deleted"]


# -- courses and sections ------------------------------------------------------------------------------------


def test_an_unknown_or_deleted_term_puts_a_new_course_in_the_default_term_silently(
    model: CanvasModel,
) -> None:
    apply(model, {"terms.csv": (TERMS[0], "T4,Old,active,,")})
    apply(model, {"courses.csv": (COURSES[0], "C9,X,X,A1,T4,deleted")})
    apply(model, {"terms.csv": (TERMS[0], "T4,Old,deleted,,")})
    record = apply(
        model,
        {
            "courses.csv": (
                COURSES[0],
                "C3,BIO,Biology,A1,T7,active",
                "C4,GEO,Geography,A1,T4,active",
                "C1,MATH,Math,A1,T7,active",
            )
        },
    )
    assert record.messages == []
    assert (model.course_term("C3"), model.course_term("C4")) == (None, None)
    assert model.course_term("C1") == "T1"  # an existing course keeps its term


def test_course_status_semantics(model: CanvasModel) -> None:
    assert model.course_status("C1") == "claimed"  # active: created unpublished
    apply(model, {"courses.csv": (COURSES[0], "C1,MATH,Math,A1,T1,published")})
    apply(model, {"courses.csv": (COURSES[0], "C1,MATH,Math,A1,T1,active")})
    assert model.course_status("C1") == "available"  # active does not unpublish
    apply(model, {"courses.csv": (COURSES[0], "C1,MATH,Math,A1,T1,completed")})
    assert (model.course_status("C1"), model.enrollment_state("S1", "U1", "student")) == (
        "completed",
        "completed",
    )
    apply(model, {"courses.csv": (COURSES[0], "C1,MATH,Math,A1,T1,active")})
    assert model.course_status("C1") == "available"  # restored; its enrollments stay concluded
    assert model.enrollment_state("S1", "U1", "student") == "completed"
    record = apply(
        model,
        {
            "courses.csv": (
                COURSES[0],
                "C2,ART,Art,A1,T1,deleted",
                "C5,,Five,A1,T1,active",
                "C6,SIX,Six,A9,T1,active",
                "C7,SEV,Seven,A1,T1,open",
            )
        },
    )
    assert texts(record) == [
        "No short_name given for course C5",
        'Account not found "A9" for course C6',
        'Improper status "open" for course C7',
    ]
    assert (model.course_status("C2"), model.enrollment_state("S2", "U2", "student")) == (
        "deleted",
        "deleted",
    )
    assert model.section("S2").state == "active"  # type: ignore[union-attr]  # its section is not deleted


def test_a_section_moving_course_takes_its_enrollments_and_is_recorded_for_coursework(
    model: CanvasModel,
) -> None:
    model.mark_coursework("C1")
    record = apply(model, {"sections.csv": (SECTIONS[0], "S1,C2,Math 1,active")})
    assert record.messages == []
    assert model.section_course("S1") == "C2"
    view = next(v for v in model.enrollment_views() if v.section_id == "S1")
    assert (view.course_id, view.user_id, view.state) == ("C2", "U1", "active")
    assert [(e.import_id, e.course_id, e.event, e.detail) for e in model.coursework_events] == [
        (record.id, "C1", "section_moved", "section S1 moved to course C2")
    ]


def test_deleting_a_section_deletes_its_enrollments_and_a_course_with_coursework_is_recorded(
    model: CanvasModel,
) -> None:
    model.mark_coursework("C2")
    record = apply(
        model,
        {
            "sections.csv": (SECTIONS[0], "S1,C1,Math 1,deleted", "S3,C9,Lab,active", "S4,C1,,active"),
            "courses.csv": (COURSES[0], "C2,ART,Art,A1,T1,deleted"),
        },
    )
    assert texts(record) == [
        "Section S3 references course C9 which doesn't exist",
        "No name given for section S4 in course C1",
    ]
    assert model.enrollment_state("S1", "U1", "student") == "deleted"
    assert [(e.course_id, e.event) for e in model.coursework_events] == [("C2", "deleted")]


# -- enrollments -----------------------------------------------------------------------------------------------


def test_an_enrollment_is_its_section_user_and_role(model: CanvasModel) -> None:
    record = apply(
        model,
        {
            "enrollments.csv": (
                ENROLLMENTS[0],
                "C1,S1,U1,ta,active",
                "C1,S1,U1,StudentEnrollment,completed",
                "C1,,U2,teacher,active",
            )
        },
    )
    assert record.messages == []
    assert model.enrollment_state("S1", "U1", "ta") == "active"  # another role: another enrollment
    assert model.enrollment_state("S1", "U1", "student") == "completed"  # the built-in role's own name
    assert model.enrollment_state(None, "U2", "teacher", course_id="C1") == "active"  # the default section
    custom = CanvasModel(custom_roles={"Aide": "TaEnrollment"})
    apply(custom, district())
    roles = apply(
        custom, {"enrollments.csv": (ENROLLMENTS[0], "C1,S1,U2,Aide,active", "C1,S1,U2,aide,active")}
    )
    assert texts(roles) == ['Improper role "aide" for an enrollment']
    assert custom.enrollment_state("S1", "U2", "Aide") == "active"


def test_enrollment_rows_canvas_refuses(model: CanvasModel) -> None:
    apply(model, {"sections.csv": (SECTIONS[0], "S3,C2,Art 2,active")})
    record = apply(
        model,
        {
            "enrollments.csv": (
                "course_id,section_id,user_id,role,status,associated_user_id",
                ",,U1,student,active,",
                "C1,S1,,student,active,",
                "C1,S1,U1,student,dropped,",
                "C1,S1,U5,student,active,",
                "C8,S8,U1,student,active,",
                "C1,S8,U1,student,active,",
                "C8,S1,U1,student,active,",
                "C1,S3,U1,student,active,",
                "C1,S1,U1,pupil,active,",
                "C1,S1,P1,observer,active,U5",
            )
        },
    )
    assert [(m.row, m.message) for m in record.messages] == [
        (2, "No course_id or section_id given for an enrollment"),
        (3, "No user_id given for an enrollment"),
        (4, 'Improper status "dropped" for an enrollment'),
        (5, "User not found for enrollment (User ID: U5, Course ID: C1, Section ID: S1)"),
        (
            6,
            "Neither course nor section existed for user enrollment (Course ID: C8, Section ID: S8, User ID: U1)",
        ),
        (7, "An enrollment referenced a non-existent section S8"),
        (8, "An enrollment referenced a non-existent course C8"),
        (9, "An enrollment listed a section (S3) and a course (C1) that are unrelated for user (U1)"),
        (10, 'Improper role "pupil" for an enrollment'),
        (11, "An enrollment referenced a non-existent associated user U5"),
    ]
    assert record.counts["enrollments"] == 0


def test_enrolling_a_user_whose_login_is_deleted(model: CanvasModel) -> None:
    apply(model, {"users.csv": (USERS[0], "U1,ann,Ann,Lee,,deleted")})
    record = apply(
        model, {"enrollments.csv": (ENROLLMENTS[0], "C2,S2,U1,student,active", "C1,S1,U1,student,active")}
    )
    assert [(m.row, m.message) for m in record.messages] == [
        (2, "Attempted enrolling of deleted user U1 in course C2"),
        (3, "Attempted enrolling with deleted sis login ann in course C1"),
    ]
    assert model.enrollment_state("S2", "U1", "student") == "deleted"  # created, as deleted
    assert record.counts["enrollments"] == 1


def test_deleted_last_completed_and_deleted(model: CanvasModel) -> None:
    apply(model, {"enrollments.csv": (ENROLLMENTS[0], "C1,,U1,student,active")})
    record = apply(
        model,
        {
            "enrollments.csv": (
                ENROLLMENTS[0],
                "C1,S1,U1,student,deleted_last_completed",
                "C2,S2,U2,student,deleted_last_completed",
            )
        },
    )
    # U1 keeps another active student enrollment in C1 (its default section): this one is deleted.
    assert model.enrollment_state("S1", "U1", "student") == "deleted"
    assert model.enrollment_state("S2", "U2", "student") == "completed"  # the last one is concluded
    assert record.counts["enrollments"] == 2
    deleted = apply(
        model, {"enrollments.csv": (ENROLLMENTS[0], "C1,,U1,student,deleted", "C1,S1,U2,student,deleted")}
    )
    assert model.enrollment_state(None, "U1", "student", course_id="C1") == "deleted"
    assert model.enrollment_state("S1", "U2", "student") == "deleted"  # a new enrollment, created deleted
    assert deleted.counts["enrollments"] == 2


# -- user_observers --------------------------------------------------------------------------------------------


def test_user_observer_rows_canvas_refuses(model: CanvasModel) -> None:
    apply(model, {"users.csv": (USERS[0], "U2,bob,Bob,Ray,,deleted")})
    record = apply(
        model,
        {
            "user_observers.csv": (
                "observer_id,student_id,status",
                ",U1,active",
                "P1,,active",
                "P1,P1,active",
                "P1,U1,Active ",
                "P1,U1,removed",
                "P9,U1,active",
                "P1,U9,active",
                "U2,U1,active",
                "P1,U1,deleted",
            )
        },
    )
    assert [(m.row, m.message) for m in record.messages] == [
        (2, "No observer_id given for a user observer"),
        (3, "No user_id given for a user observer"),
        (4, "Can't observe yourself user P1"),
        (6, 'Improper status "removed" for a user_observer'),
        (7, "An observer referenced a non-existent user P9"),
        (8, "A student referenced a non-existent user U9"),
        (9, "An observer referenced a non-existent user U2"),  # a deleted login is no observer
    ]
    # Row 5 ("Active ", stripped) linked P1 to U1; row 10 removed it again.
    assert model.observer_links("deleted") == {("P1", "U1")}
    again = apply(model, {"user_observers.csv": ("observer_id,student_id,status", "P1,U1,deleted")})
    assert texts(again) == ["Can't delete a non-existent observer for observer: P1, student: U1"]


def test_an_active_link_enrols_the_observer_in_each_course_of_the_student_and_follows_it(
    model: CanvasModel,
) -> None:
    apply(model, {"enrollments.csv": (ENROLLMENTS[0], "C2,S2,U1,student,inactive")})
    apply(model, {"user_observers.csv": ("observer_id,student_id,status", "P1,U1,active")})
    observing = {(v.section_id, v.state) for v in model.enrollment_views() if v.user_id == "P1"}
    assert observing == {("S1", "active")}  # only the student's active enrollments
    # The student's later enrollments and changes reach the observer.
    apply(
        model, {"enrollments.csv": (ENROLLMENTS[0], "C2,S2,U1,student,active", "C1,S1,U1,student,completed")}
    )
    observing = {
        (v.section_id, v.role, v.associated_user_id, v.state)
        for v in model.enrollment_views()
        if v.user_id == "P1"
    }
    assert observing == {("S1", "observer", "U1", "completed"), ("S2", "observer", "U1", "active")}


# -- change_sis_id ---------------------------------------------------------------------------------------------


def test_change_sis_id_runs_first_and_refuses_conflicts(model: CanvasModel) -> None:
    record = apply(
        model,
        {
            "change_sis_id.csv": (
                "old_id,new_id,old_integration_id,new_integration_id,type",
                "U1,U10,,,user",
                "C1,C10,,,course",
                "U2,P1,,,user",
                "S9,S10,,,section",
                ",,,,user",
                "T1,T10,,,semester",
                "U2,,,,user",
                "A1,,,X1,account",
                ",A2,X1,,account",
            ),
            # Already written with the new ids: change_sis_id runs before everything else.
            "enrollments.csv": (ENROLLMENTS[0], "C10,S1,U10,ta,active"),
        },
    )
    assert [(m.row, m.message) for m in record.messages] == [
        (4, "A new_id, 'P1', referenced an existing user and the user with sis_user_id 'U2' was not updated"),
        (5, "An old_id, 'S9', referenced a non-existent section and was not changed."),
        (6, "No old_id or old_integration_id given for change_sis_id"),
        (7, "Invalid type 'semester' for change_sis_id"),
        (8, "No new_id or new_integration_id given for change_sis_id"),
    ]
    assert record.counts["change_sis_ids"] == 4
    assert model.active_enrollments() >= {("S1", "U10", "student"), ("S1", "U10", "ta")}
    assert (model.user_status("U1"), model.signs_in_as("ann")) == (None, "U10")
    assert (model.course("C1"), model.account("A1"), model.account("A2").integration_id) == (None, None, "X1")  # type: ignore[union-attr]


def test_the_queries_a_school_year_judges_by(model: CanvasModel) -> None:
    """Who holds a login, every login's state, the Canvas user behind a SIS id, a course's account and
    sections: what the school-year simulation reads to judge Canvas's state night by night."""
    person = model.canvas_user_id("U1")
    assert person is not None
    apply(model, {"users.csv": (USERS[0], "U1,ann,Ann,Lee,ann@example.org,suspended")})
    assert model.login_holders("ANN") == [("U1", "suspended")]
    assert model.user_states() == {"U1": "suspended", "U2": "active", "P1": "active"}
    apply(model, {"change_sis_id.csv": ("old_id,new_id,type", "U1,U10,user")})
    assert (model.canvas_user_id("U10"), model.canvas_user_id("U1")) == (person, None)
    apply(model, {"sections.csv": (SECTIONS[0], "S2,C1,Art 1,active", "S3,C1,Lab,deleted")})
    assert model.course_sections("C1") == ["S1", "S2"]
    assert model.course_sections("C1", states=("deleted",)) == ["S3"]
    assert (model.course_account("C1"), model.course_account("C9")) == ("A1", None)


# -- batch mode -------------------------------------------------------------------------------------------------


def test_batch_mode_removes_what_the_batch_left_out_in_its_terms(model: CanvasModel) -> None:
    apply(
        model,
        {
            "terms.csv": (TERMS[0], "T2,Spring,active,,"),
            "courses.csv": (COURSES[0], "C3,BIO,Biology,A1,T2,active"),
            "sections.csv": (SECTIONS[0], "S3,C3,Bio 1,active"),
            "enrollments.csv": (ENROLLMENTS[0], "C3,S3,U1,student,active"),
        },
    )
    record = apply(
        model,
        {
            "terms.csv": TERMS,
            "courses.csv": COURSES[:2],
            "sections.csv": SECTIONS[:2],
            "enrollments.csv": ENROLLMENTS[:1],  # header only: every SIS enrollment of the term goes
        },
        batch_mode="true",
        multi_term_batch_mode="true",
        change_threshold=100,
        batch_mode_enrollment_drop_status="inactive",
    )
    assert (record.mode, record.workflow_state, record.messages) == ("batch", "imported", [])
    assert (record.counts["batch_courses_deleted"], record.counts["batch_sections_deleted"]) == (1, 1)
    assert record.counts["batch_enrollments_deleted"] == 2
    assert (model.course_status("C2"), model.section("S2").state) == ("deleted", "deleted")  # type: ignore[union-attr]
    assert model.enrollment_state("S1", "U1", "student") == "inactive"
    assert model.enrollment_state("S2", "U2", "student") == "deleted"  # its course was deleted after
    # Another term, and users, are never touched.
    assert (model.course_status("C3"), model.enrollment_state("S3", "U1", "student")) == ("claimed", "active")
    assert model.user_status("U2") == "active"


def test_batch_mode_over_change_threshold_aborts_before_removing_anything(model: CanvasModel) -> None:
    record = apply(
        model,
        {"terms.csv": TERMS, "enrollments.csv": ENROLLMENTS[:2]},
        batch_mode="true",
        multi_term_batch_mode="true",
        change_threshold=20,
    )
    assert (record.workflow_state, record.aborted) == ("aborted", True)
    assert record.messages == [
        Message(None, "1 enrollments would be deleted and exceeds the set threshold of 20%")
    ]
    assert model.enrollment_state("S2", "U2", "student") == "active"
    no_terms = apply(
        model,
        {"enrollments.csv": ENROLLMENTS},
        batch_mode="true",
        multi_term_batch_mode="true",
        change_threshold=20,
    )
    assert (no_terms.workflow_state, texts(no_terms)) == (
        "aborted",
        ["Terms not found. Terms must be included with multi_term_batch_mode"],
    )
    single = apply(
        model, {"enrollments.csv": ENROLLMENTS[:2]}, batch_mode="true", batch_mode_term_id="sis_term_id:T1"
    )
    assert single.workflow_state == "imported"
    assert model.enrollment_state("S2", "U2", "student") == "deleted"  # no threshold given: nothing stops it


# -- the import's outcome --------------------------------------------------------------------------------------


def test_messages_are_capped_at_24_with_the_trailer_and_the_counts_are_per_type(model: CanvasModel) -> None:
    rows = tuple(f"C1,S1,X{i},student,active" for i in range(30))
    record = apply(
        model,
        {"enrollments.csv": (ENROLLMENTS[0], *rows, "C1,S1,U2,student,active"), "bad.csv": ("x,y", "1,2")},
    )
    assert record.workflow_state == "failed_with_messages"
    warnings = record.processing(failures=False)
    assert len(warnings) == 25
    assert warnings[0] == [
        "enrollments.csv",
        "User not found for enrollment (User ID: X0, Course ID: C1, Section ID: S1)",
    ]
    assert warnings[-1] == [
        "and 6 more warnings that were not included",
        "Download the error file to see all warnings.",
    ]
    assert record.processing(failures=True) == [["bad.csv", "Couldn't find Canvas CSV import headers"]]
    assert (record.counts["enrollments"], record.counts["warning_count"], record.counts["error_count"]) == (
        1,
        30,
        1,
    )


# -- through the sis_imports server ----------------------------------------------------------------------------

POLLS = 10


def post_and_wait(client: httpx.Client, zip_bytes: bytes, **fields: str) -> dict[str, Any]:
    """POST a zip as the product does and poll it to its end (at most POLLS times)."""
    created = client.post(
        "/api/v1/accounts/1/sis_imports",
        data={"import_type": "instructure_csv", **fields},
        files={"attachment": ("sis_import.zip", zip_bytes, "application/zip")},
    )
    assert created.status_code == 200, created.text
    for _ in range(POLLS):
        body: dict[str, Any] = client.get(f"/api/v1/accounts/1/sis_imports/{created.json()['id']}").json()
        if body["workflow_state"] not in ("created", "importing"):
            return body
    raise AssertionError(f"import {created.json()['id']} never ended")


def test_the_server_reports_what_the_model_did() -> None:
    model = CanvasModel()
    canvas = FakeCanvas(script=[("importing", 50), ("imported", 100)], attachment_delay_gets=1, model=model)
    fields = {"diffing_data_set_identifier": "clever:d1", "diffing_user_remove_status": "suspended"}
    headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
    with (
        CanvasTestServer(canvas) as server,
        httpx.Client(base_url=server.base_url, headers=headers) as client,
    ):
        first = post_and_wait(client, zipped(district()), **fields)
        assert first["workflow_state"] == "imported"
        assert (first["diffed_against_import_id"], first["diffing_threshold_exceeded"]) == (None, None)
        assert first["data"]["counts"]["users"] == 3
        assert first["data"]["supplied_batches"] == [
            "account",
            "term",
            "course",
            "section",
            "user",
            "enrollment",
        ]
        assert "processing_warnings" not in first
        assert "errors_attachment" not in first
        users = (*USERS[:3], "U9,ANN,Ann,Lee,ann@example.org,active")
        second = post_and_wait(client, zipped(district(users=users)), **fields)
        assert second["workflow_state"] == "imported_with_messages"
        assert (second["diffed_against_import_id"], second["diffing_threshold_exceeded"]) == (
            first["id"],
            False,
        )
        claimed = "An existing Canvas user with the SIS ID U1 has already claimed U9's user_id requested login information, skipping"
        assert second["processing_warnings"] == [["users.csv", claimed]]
        assert (second["data"]["counts"]["users"], second["data"]["counts"]["warning_count"]) == (1, 1)
        errors = client.get(f"/api/v1/accounts/1/sis_imports/{second['id']}/sis_import_errors").json()
        # The diffed users.csv holds U9 first (line 2), then P1 (suspended: it vanished).
        assert errors["sis_import_errors"] == [
            {
                "sis_import_id": second["id"],
                "file": "users.csv",
                "message": claimed,
                "row": 2,
                "row_info": None,
            }
        ]
        url = client.get(f"/api/v1/accounts/1/sis_imports/{second['id']}").json()["errors_attachment"]["url"]
        assert (
            client.get(url).text
            == f'sis_import_id,file,message,row\n{second["id"]},users.csv,"{claimed}",2\n'
        )
        assert client.get(
            f"/api/v1/accounts/1/sis_imports/{second['id']}/sis_import_errors?failure=true"
        ).json() == {"sis_import_errors": []}
    assert model.user_status("P1") == "suspended"
    assert model.import_record(second["id"]).rows("user")[1]["status"] == "suspended"


def test_the_server_checks_options_against_the_model() -> None:
    canvas = FakeCanvas(model=CanvasModel())
    headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
    with (
        CanvasTestServer(canvas) as server,
        httpx.Client(base_url=server.base_url, headers=headers) as client,
    ):

        def post(**fields: str) -> httpx.Response:
            return client.post(
                "/api/v1/accounts/1/sis_imports",
                data={"import_type": "instructure_csv", **fields},
                files={"attachment": ("sis_import.zip", zipped(district()), "application/zip")},
            )

        refused = post(batch_mode="true", batch_mode_term_id="sis_term_id:T1")
        assert (refused.status_code, refused.json()) == (
            400,
            {"message": "Batch mode specified, but the given batch_mode_term_id cannot be found."},
        )
        assert post(diffing_drop_status="gone").json() == {"message": "Invalid diffing_drop_status"}
        assert post().status_code == 200
        assert post(batch_mode="true", batch_mode_term_id="sis_term_id:T1").status_code == 200
    assert [r.mode for r in canvas.model.imports] == ["plain", "batch"]  # type: ignore[union-attr]


def test_thirty_nights_of_a_300_student_district_take_a_few_seconds() -> None:
    """The model must stay fast enough for month-long simulations (plain dicts, no per-import rebuilds)."""
    users = ["user_id,login_id,first_name,last_name,email,status"]
    enrollments = ["course_id,section_id,user_id,role,status"]
    courses = ["course_id,short_name,long_name,account_id,term_id,status"]
    sections = ["section_id,course_id,name,status"]
    for c in range(40):
        courses.append(f"C{c},K{c},Course {c},A1,T1,active")
        sections.append(f"S{c},C{c},Section {c},active")
    for u in range(300):
        users.append(f"U{u},user{u},First,Last{u},user{u}@example.org,active")
        enrollments.extend(f"C{(u + k) % 40},S{(u + k) % 40},U{u},student,active" for k in range(6))
    model = CanvasModel()
    started = time.perf_counter()
    for night in range(30):
        # Each night one more student has left: their user and their enrollments are gone from the files.
        def stayed(row: str, night: int = night) -> bool:
            return not any(f",U{gone}," in f",{row}," for gone in range(night))

        files = district(
            courses=tuple(courses),
            sections=tuple(sections),
            users=(users[0], *filter(stayed, users[1:])),
            enrollments=(enrollments[0], *filter(stayed, enrollments[1:])),
        )
        options = {**DIFFING, "diffing_user_remove_status": "suspended"}
        if night % 7 == 0:
            options["diffing_remaster_data_set"] = "true"
        assert apply(model, files, **options).workflow_state == "imported"
    assert time.perf_counter() - started < 10
    assert len(model.enrollments) == 300 * 6
    # Who left just before a remaster night (7, 14, 21, 28) was never removed (see the remaster test).
    kept = {6, 13, 20, 27}
    assert len(model.active_enrollments()) == (300 - 29 + len(kept)) * 6
    assert {u for u in range(29) if model.user_status(f"U{u}") != "suspended"} == kept
    assert model.user_status("U29") == "active"
