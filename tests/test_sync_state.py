"""The applied state (state_after for each mode and outcome, how it is kept and read back), what Canvas
applied (applied_of), Canvas's threshold checks, the carrying of terms and accounts, the rows the guard
compares, the role check of users, and the history's migration to the current schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pandas as pd
import pytest
from click.testing import CliRunner

from clever2sis.build_dir import BuildDir, BuildRecord, Frames, ZipEntry, empty_frames
from clever2sis.canvas.sis_import import ImportOptions, SisImport
from clever2sis.cli import main
from clever2sis.errors import RunsDirError
from clever2sis.sis import files
from clever2sis.sync import guard
from clever2sis.sync.changes import (
    Amended,
    carry_terms_and_accounts,
    current_terms_only,
    without_rows,
)
from clever2sis.sync.history import SCHEMA_VERSION, History
from clever2sis.sync.state import (
    BATCH,
    DIFF,
    EXPLICIT,
    NONE,
    REMASTER,
    REMOVED_USER_COLUMNS,
    WHOLE_NO_DELETES,
    AppliedState,
    CanvasBaseline,
    Outcome,
    ZipSizes,
    applied_of,
    read_legacy_state,
    read_state,
    sent_present,
    state_after,
    write_state,
    write_unchanged,
)
from clever2sis.sync.threshold import diff_row_count, diff_skipped, size_change_percent

NIGHT = "2027-01-06T06:00:00Z"
SIZES = ZipSizes({"users.csv": 1000, "enrollments.csv": 3000})


def frames(**rows: list[tuple[str, ...]]) -> Frames:
    """Frames with the given rows per file (``users=[...]`` for users.csv), every other file empty."""
    out = empty_frames()
    for stem, values in rows.items():
        name = f"{stem}.csv"
        out[name] = pd.DataFrame(values, columns=list(files.COLUMNS[name]), dtype="str")
    return out


def user(user_id: str, status: str = "active", login: str | None = None) -> tuple[str, ...]:
    return (user_id, login or f"Login.{user_id}", "First", f"Last{user_id}", f"{user_id}@example.org", status)


def enrollment(user_id: str, status: str = "active", section: str = "S1") -> tuple[str, ...]:
    return ("C1", section, user_id, "student", status)


HELD = frames(
    accounts=[("A1", "", "School", "active")],
    terms=[("T1", "Term", "active", "2026-08-17", "2027-06-11")],
    courses=[("C1", "C 1", "Course 1", "A1", "T1", "active")],
    sections=[("S1", "C1", "Section 1", "active")],
    users=[user("U1"), user("U2"), user("U3")],
    enrollments=[enrollment("U1"), enrollment("U2"), enrollment("U3")],
)


def previous_state(**changes: object) -> AppliedState:
    base = AppliedState(
        run_id="20270105T060000Z",
        applied=DIFF,
        present=HELD,
        canvas_baseline=CanvasBaseline("20270105T060000Z", ZipSizes({"users.csv": 900})),
    )
    return AppliedState(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def tonight(**rows: list[tuple[str, ...]]) -> Amended:
    """What a night sent: ``HELD``'s rows, but the files given here."""
    given = frames(**rows)
    return Amended(
        frames={
            name: given[name] if name.removesuffix(".csv") in rows else HELD[name]
            for name in files.FILE_ORDER
        }
    )


def outcome(applied: str) -> Outcome:
    return Outcome(run_id="20270106T060000Z", night=NIGHT, applied=applied, sizes=SIZES)


def ids(frame: pd.DataFrame, column: str = "user_id") -> list[str]:
    return sorted(frame[column])


# --- state_after ---------------------------------------------------------------------------------------------


def test_a_night_canvas_applied_nothing_leaves_the_state_as_it_was() -> None:
    before = previous_state()
    assert state_after(before, tonight(users=[user("U1")]), outcome(NONE)) is before


def test_a_diffed_night_holds_tonights_rows_and_ledgers_the_users_canvas_diffed_away() -> None:
    after = state_after(
        previous_state(),
        tonight(users=[user("U1"), user("U2"), user("U4")], enrollments=[enrollment("U1"), enrollment("U4")]),
        outcome(DIFF),
    )
    assert ids(after.present[files.USERS]) == ["U1", "U2", "U4"]
    assert ids(after.present[files.ENROLLMENTS]) == ["U1", "U4"]
    assert after.removed_users.to_dict("records") == [
        {
            "user_id": "U3",
            "login_id": "login.u3",
            "status": "suspended",
            "removed_on": NIGHT,
            "removed_run_id": "20270106T060000Z",
            "clever_id": "U3",
            "sis_id": "",
            "student_number": "",
            "teacher_number": "",
            "first_name": "First",
            "last_name": "LastU3",
            "roles": "",
        }
    ]
    assert after.canvas_baseline == CanvasBaseline("20270106T060000Z", SIZES)
    assert (after.run_id, after.applied) == ("20270106T060000Z", DIFF)


def test_a_remaster_holds_tonights_present_rows_and_ledgers_its_removal_rows() -> None:
    after = state_after(
        previous_state(),
        tonight(
            users=[user("U1"), user("U2"), user("U3", "suspended")],
            enrollments=[enrollment("U1"), enrollment("U2"), enrollment("U3", "inactive")],
            change_sis_id=[("U9", "U1", "user")],
        ),
        outcome(REMASTER),
    )
    assert ids(after.present[files.USERS]) == ["U1", "U2"]
    assert ids(after.present[files.ENROLLMENTS]) == ["U1", "U2"]
    assert after.present[files.CHANGE_SIS_ID].empty  # a rename, not something Canvas holds
    assert list(after.removed_users["user_id"]) == ["U3"]
    assert list(after.removed_users["status"]) == ["suspended"]
    assert after.canvas_baseline == CanvasBaseline("20270106T060000Z", SIZES)


def test_a_night_applied_without_deletes_holds_the_previous_rows_and_tonights_together() -> None:
    before = previous_state()
    after = state_after(
        before,
        tonight(
            users=[user("U1", login="New.Login"), user("U2", "suspended"), user("U4")],
            enrollments=[enrollment("U1"), enrollment("U4")],
        ),
        outcome(WHOLE_NO_DELETES),
    )
    users = after.present[files.USERS].set_index("user_id")["login_id"].to_dict()
    # U3 vanished but Canvas deleted nothing; U2's removal row was applied; U1 in tonight's version.
    assert users == {"U1": "New.Login", "U3": "Login.U3", "U4": "Login.U4"}
    assert ids(after.present[files.ENROLLMENTS]) == ["U1", "U2", "U3", "U4"]
    assert list(after.removed_users["user_id"]) == ["U2"]
    assert after.canvas_baseline == before.canvas_baseline  # Canvas keeps the older baseline
    assert after.needs_remaster


@pytest.mark.parametrize("applied", [EXPLICIT, BATCH])
def test_plain_and_batch_nights_hold_tonights_rows_and_keep_no_diff_baseline(applied: str) -> None:
    before = previous_state(canvas_baseline=None)
    after = state_after(before, tonight(users=[user("U1"), user("U3", "suspended")]), outcome(applied))
    assert ids(after.present[files.USERS]) == ["U1"]
    assert list(after.removed_users["user_id"]) == ["U3"]  # only the rows sent as removals
    assert after.canvas_baseline is None


def test_a_user_canvas_holds_again_leaves_the_ledger_and_a_ledgered_one_keeps_the_first_night() -> None:
    ledger = pd.DataFrame(
        [
            {
                **dict.fromkeys(REMOVED_USER_COLUMNS, ""),
                "user_id": "U1",
                "removed_on": "2026-01-01T00:00:00Z",
            },
            {
                **dict.fromkeys(REMOVED_USER_COLUMNS, ""),
                "user_id": "U8",
                "removed_on": "2026-01-01T00:00:00Z",
            },
        ],
        dtype="str",
    )
    after = state_after(
        previous_state(removed_users=ledger),
        tonight(users=[user("U1"), user("U2"), user("U3"), user("U8", "suspended")]),
        outcome(REMASTER),
    )
    assert after.removed_users[["user_id", "removed_on"]].to_dict("records") == [
        {"user_id": "U8", "removed_on": "2026-01-01T00:00:00Z"}
    ]


def test_the_first_night_starts_from_nothing() -> None:
    after = state_after(None, tonight(), outcome(REMASTER))
    assert ids(after.present[files.USERS]) == ["U1", "U2", "U3"]
    assert after.removed_users.empty
    assert after.observers.empty
    assert after.carried[files.TERMS].empty


# --- applied_of ------------------------------------------------------------------------------------------------


def sis_import(state: str = "imported", **fields: object) -> SisImport:
    return SisImport.from_json({"id": 1, "workflow_state": state, **fields})


DIFFING = ImportOptions(diffing_data_set_identifier="clever2sis:D:nightly", change_threshold=10)


@pytest.mark.parametrize(
    ("final", "options", "applied"),
    [
        (sis_import(diffing_threshold_exceeded=False), DIFFING, DIFF),
        (sis_import("imported_with_messages", diffing_threshold_exceeded=True), DIFFING, WHOLE_NO_DELETES),
        (
            sis_import(
                "imported_with_messages",
                processing_warnings=[
                    [None, "Diffing not performed because difference row count exceeded threshold"]
                ],
            ),
            DIFFING,
            WHOLE_NO_DELETES,
        ),
        (sis_import("imported_with_messages", processing_warnings=[["users.csv", "x"]]), DIFFING, DIFF),
        (
            sis_import(),
            ImportOptions(diffing_data_set_identifier="x", diffing_remaster_data_set=True),
            REMASTER,
        ),
        (sis_import(), ImportOptions(), EXPLICIT),
        (
            sis_import(),
            ImportOptions(batch_mode=True, multi_term_batch_mode=True, change_threshold=10),
            BATCH,
        ),
        (sis_import("failed_with_messages"), DIFFING, NONE),
        (sis_import("aborted"), ImportOptions(batch_mode=True, multi_term_batch_mode=True), NONE),
    ],
)
def test_what_canvas_applied_comes_from_the_final_import_and_the_options(
    final: SisImport, options: ImportOptions, applied: str
) -> None:
    assert applied_of(final, options) == applied


# --- keeping it ------------------------------------------------------------------------------------------------


def make_run(tmp_path: Path, sent: Frames, run_id: str = "20270106T060000Z") -> Path:
    run_dir = tmp_path / run_id
    build = BuildDir(run_dir / "build")
    build.path.mkdir(parents=True)
    carried = empty_frames()
    carried[files.TERMS] = sent[files.TERMS]
    build.rewrite(BuildRecord(zip=ZipEntry(sha256="0")), sent, sync_rows={"carried": carried}, sync={})
    return run_dir


def assert_same_state(one: AppliedState, other: AppliedState) -> None:
    assert (one.run_id, one.applied, one.canvas_baseline) == (
        other.run_id,
        other.applied,
        other.canvas_baseline,
    )
    for name in files.FILE_ORDER:
        key = list(files.SORT_KEYS[name])
        left = one.present[name].sort_values(key, ignore_index=True)
        right = other.present[name].sort_values(key, ignore_index=True)
        pd.testing.assert_frame_equal(left, right, check_dtype=False, check_index_type=False)
    pd.testing.assert_frame_equal(one.removed_users, other.removed_users, check_dtype=False)
    assert list(other.observers.columns) == ["observer_id", "student_id"]


def test_an_ordinary_night_is_kept_as_its_build_and_read_back_the_same(tmp_path: Path) -> None:
    sent = tonight(users=[user("U1"), user("U2"), user("U3", "suspended")])
    run_dir = make_run(tmp_path, sent.frames)
    state = state_after(previous_state(), sent, outcome(REMASTER))
    write_state(run_dir, state, build_present=sent_present(sent.frames))
    record = orjson.loads((run_dir / "state" / "state.json").read_bytes())
    assert record == {
        "format": 1,
        "run_id": "20270106T060000Z",
        "applied": "remaster",
        "present": "build",
        "canvas_baseline": {
            "run_id": "20270106T060000Z",
            "files": {"enrollments.csv": 3000, "users.csv": 1000},
            "total_bytes": 4000,
        },
        "removed_users": 1,
        "observers": 0,
    }
    assert not (run_dir / "state" / "present").exists()
    back = read_state(run_dir, "20270106T060000Z")
    assert_same_state(state, back)
    assert list(back.carried[files.TERMS]["term_id"]) == ["T1"]


def test_a_union_is_kept_in_full_and_read_back_the_same(tmp_path: Path) -> None:
    sent = tonight(users=[user("U1"), user("U4")])
    run_dir = make_run(tmp_path, sent.frames)
    state = state_after(previous_state(), sent, outcome(WHOLE_NO_DELETES))
    write_state(run_dir, state, build_present=sent_present(sent.frames))
    assert orjson.loads((run_dir / "state" / "state.json").read_bytes())["present"] == "files"
    assert (run_dir / "state" / "present" / "users.csv").read_text().splitlines()[1:] == [
        "U1,Login.U1,First,LastU1,U1@example.org,active",
        "U2,Login.U2,First,LastU2,U2@example.org,active",
        "U3,Login.U3,First,LastU3,U3@example.org,active",
        "U4,Login.U4,First,LastU4,U4@example.org,active",
    ]
    assert_same_state(state, read_state(run_dir, "20270106T060000Z"))


def test_a_night_that_changed_nothing_reads_as_the_state_it_started_from(tmp_path: Path) -> None:
    sent = tonight()
    earlier = make_run(tmp_path, sent.frames, "20270105T060000Z")
    state = state_after(None, sent, Outcome("20270105T060000Z", NIGHT, REMASTER, SIZES))
    write_state(earlier, state, build_present=sent_present(sent.frames))
    failed = make_run(tmp_path, sent.frames, "20270106T060000Z")
    write_unchanged(failed, "20270106T060000Z", state)
    assert_same_state(state, read_state(failed, "20270106T060000Z"))
    first = make_run(tmp_path, sent.frames, "20270107T060000Z")
    write_unchanged(first, "20270107T060000Z", None)
    assert read_state(first, "20270107T060000Z").present[files.USERS].empty


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("state.json", "state.json: missing"),
        ("state.json=[]", "not a whole applied state (format is not 1)"),
        ("state.json={", "state.json: not readable ("),
        ("removed_users.csv", "not a whole applied state ([Errno 2] No such file or directory"),
        ("removed_users.csv=x\n", "not a whole applied state (removed_users.csv has the columns x)"),
        ("build/sis_import.zip", "sis_import.zip: missing"),
    ],
)
def test_a_damaged_state_is_a_runs_dir_error_naming_the_file(tmp_path: Path, damage: str, says: str) -> None:
    sent = tonight()
    run_dir = make_run(tmp_path, sent.frames)
    write_state(run_dir, state_after(None, sent, outcome(DIFF)), build_present=sent_present(sent.frames))
    name, _, content = damage.partition("=")
    target = run_dir / name if name.startswith("build") else run_dir / "state" / name
    if content:
        target.write_text(content)
    else:
        target.unlink()
    with pytest.raises(RunsDirError) as raised:
        read_state(run_dir, "20270106T060000Z")
    assert says in str(raised.value)
    assert raised.value.exit_code == 54


def test_a_state_kept_for_another_run_is_refused(tmp_path: Path) -> None:
    sent = tonight()
    run_dir = make_run(tmp_path, sent.frames)
    write_state(run_dir, state_after(None, sent, outcome(DIFF)), build_present=sent_present(sent.frames))
    with pytest.raises(
        RunsDirError, match=r"it is the state of run '20270106T060000Z', not '20270101T000000Z'"
    ):
        read_state(run_dir, "20270101T000000Z")


def test_a_run_from_before_states_is_its_builds_present_rows(tmp_path: Path) -> None:
    sent = tonight(users=[user("U1"), user("U3", "suspended")])
    run_dir = make_run(tmp_path, sent.frames)
    state = read_legacy_state(run_dir, "20270106T060000Z", applied=DIFF)
    assert ids(state.present[files.USERS]) == ["U1"]
    zipped = run_dir / "build" / "sis_import.zip"
    assert state.canvas_baseline == CanvasBaseline("20270106T060000Z", ZipSizes.of_zip(zipped))
    assert read_legacy_state(run_dir, "20270106T060000Z", applied=EXPLICIT).canvas_baseline is None


# --- Canvas's threshold checks ---------------------------------------------------------------------------------


def test_the_size_change_is_canvas_file_diff_percent() -> None:
    # sis_batch_spec.rb: file_diff_percent(25, 100) and (175, 100) are both 75.
    assert size_change_percent(25, 100) == 75
    assert size_change_percent(175, 100) == 75
    # Canvas's floating point: 1,100 against 1,000 is a little more than 10%, so over a threshold of 10.
    assert size_change_percent(1100, 1000) > 10
    assert size_change_percent(1099, 1000) < 10


def test_the_diff_row_count_counts_new_changed_and_vanished_rows_of_files_both_zips_hold() -> None:
    baseline = frames(
        users=[user("U1"), user("U2"), user("U3")],
        enrollments=[enrollment("U1")],
        terms=[("T1", "Term", "active", "", "")],
    )
    now = frames(
        users=[user("U1"), user("U2", login="Changed"), user("U4")],  # 1 changed, 1 new, 1 vanished
        enrollments=[enrollment("U1"), enrollment("U1", section="S2")],  # 1 new (another section)
        courses=[("C1", "C", "C", "A1", "T1", "active")],  # only tonight: passed through, not counted
    )  # terms: only in the baseline: not diffed
    assert diff_row_count(baseline, now) == 4
    assert diff_row_count(baseline, baseline) == 0


def test_diff_skipped_says_why_canvas_would_not_diff() -> None:
    baseline = CanvasBaseline("20270105T060000Z", ZipSizes({"users.csv": 1000}))
    options = ImportOptions(diffing_data_set_identifier="x", change_threshold=10)
    assert (
        diff_skipped(baseline, ZipSizes({"users.csv": 1099}), options, baseline_frames=None, tonight=HELD)
        is None
    )
    assert diff_skipped(
        baseline, ZipSizes({"users.csv": 1101}), options, baseline_frames=None, tonight=HELD
    ) == (
        "the zip is 1101 bytes uncompressed against 1000 in run 20270105T060000Z's, Canvas's diff baseline: "
        "10.1% apart, more than change_threshold 10%"
    )
    rows = ImportOptions(diffing_data_set_identifier="x", diff_row_count_threshold=1)
    small = ZipSizes({"users.csv": 1000})
    changed = tonight(users=[user("U1"), user("U4")]).frames
    assert diff_skipped(baseline, small, rows, baseline_frames=HELD, tonight=changed) == (
        "the diff against run 20270105T060000Z's zip would hold 3 rows, more than diff_row_count_threshold 1"
    )
    assert diff_skipped(baseline, small, rows, baseline_frames=HELD, tonight=HELD) is None
    assert diff_skipped(baseline, small, rows, baseline_frames=None, tonight=HELD) == (
        "diff_row_count_threshold is set and run 20270105T060000Z's zip, Canvas's diff baseline, cannot be "
        "read to count the diff"
    )


# --- terms and accounts, and what the guard compares ------------------------------------------------------------


def test_terms_and_accounts_canvas_holds_are_carried_when_tonight_lacks_them() -> None:
    built = frames(
        accounts=[("A2", "", "Other school", "active")],
        terms=[("T2", "New term", "active", "", "")],
        users=[user("U1")],
    )
    carried = carry_terms_and_accounts(HELD, Amended(frames=built))
    assert ids(carried.frames[files.TERMS], "term_id") == ["T1", "T2"]
    assert ids(carried.frames[files.ACCOUNTS], "account_id") == ["A1", "A2"]
    assert carried.carried[files.TERMS].to_dict("records") == HELD[files.TERMS].to_dict("records")
    assert carried.carried[files.ACCOUNTS].to_dict("records") == HELD[files.ACCOUNTS].to_dict("records")
    assert carried.carried[files.COURSES].empty
    unchanged = carry_terms_and_accounts(HELD, Amended(frames=HELD))
    assert unchanged.carried[files.TERMS].empty


def test_the_guard_compares_current_terms_without_carried_rows() -> None:
    held = frames(
        terms=[("T1", "Old", "active", "", ""), ("T2", "Now", "active", "", "")],
        courses=[("C1", "C", "C", "A1", "T1", "active"), ("C2", "C", "C", "A1", "T2", "active")],
        sections=[("S1", "C1", "S", "active"), ("S2", "C2", "S", "active")],
        enrollments=[("C1", "S1", "U1", "teacher", "completed"), ("C2", "S2", "U2", "student", "active")],
        accounts=[("A1", "", "School", "active"), ("A9", "", "Gone", "active")],
    )
    current = current_terms_only(held, {"T1"})
    assert ids(current[files.TERMS], "term_id") == ["T2"]
    assert ids(current[files.COURSES], "course_id") == ["C2"]
    assert ids(current[files.SECTIONS], "section_id") == ["S2"]
    assert ids(current[files.ENROLLMENTS]) == ["U2"]
    assert len(current[files.ACCOUNTS]) == 2
    carried = empty_frames()
    carried[files.ACCOUNTS] = held[files.ACCOUNTS].iloc[[1]]
    assert ids(without_rows(held, carried)[files.ACCOUNTS], "account_id") == ["A1"]


def test_the_role_check_counts_users_by_their_clever_roles() -> None:
    roles = pd.DataFrame(
        {
            "id": ["c1", "c2", "c3", "c4"],
            "is_student": [True, False, False, False],
            "is_teacher": [False, True, False, True],
            "is_staff": [False, False, True, False],
            "is_district_admin": [False, False, False, False],
            "is_contact": [False, False, False, False],
        }
    )
    by_id = pd.DataFrame({"user_id": ["c1", "c2", "c3"]})
    assert guard.role_counts(by_id, roles) == {
        "student": 1,
        "teacher": 1,
        "staff": 1,
        "district_admin": 0,
        "contact": 0,
    }
    by_integration = pd.DataFrame({"user_id": ["s1", "s4", "c3"], "integration_id": ["c1", "c4", ""]})
    assert guard.role_counts(by_integration, roles)["teacher"] == 1
    verdict = guard.judge(
        HELD,
        HELD,
        guard.GuardInput(roles_before={"student": 3, "staff": 2}, roles_after={"student": 3, "staff": 0}),
    )
    assert verdict.stops
    assert verdict.message() == "all staff of users.csv vanished (2 before, 0 now)"
    assert guard.judge(HELD, HELD, guard.GuardInput(roles_before={"staff": 2})).verdict == guard.PASSED


# --- history ----------------------------------------------------------------------------------------------------


V1_SCHEMA = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, profile TEXT NOT NULL, district_id TEXT, started TEXT NOT NULL, finished TEXT,
    outcome TEXT NOT NULL, exit_code INTEGER, message TEXT, deletion_mode TEXT,
    remaster INTEGER NOT NULL DEFAULT 0, allow_large_change INTEGER NOT NULL DEFAULT 0, guard TEXT,
    guard_json TEXT, rows_json TEXT, changes_json TEXT, sis_import_id INTEGER, import_state TEXT, run_dir TEXT
);
CREATE INDEX runs_by_profile ON runs (profile, run_id);
INSERT INTO runs (run_id, profile, started, outcome, exit_code, import_state, run_dir, remaster)
VALUES ('20270105T060000Z', 'nightly', '2027-01-05T06:00:00Z', 'imported', 0, 'imported', '/runs/x', 1);
PRAGMA user_version = 1;
"""


def test_a_version_1_history_is_migrated_and_its_rows_read_as_before(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        db.executescript(V1_SCHEMA)
    db.close()
    with History(tmp_path) as history:
        (old,) = history.runs()
        assert old["applied"] is None
        assert old["identities_carried"] is None
        assert old["remaster"] is True
        assert history.last_baseline("nightly") == old
        history.record(
            {"run_id": "20270106T060000Z", "profile": "nightly", "started": "x", "outcome": "imported"}
        )
        history.record({"run_id": "20270106T060000Z", "applied": "diff"})
        assert [run["applied"] for run in history.runs()] == ["diff", None]
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    db.close()
    with History(tmp_path) as history:  # opening a current one again changes nothing
        assert len(history.runs()) == 2
    result = CliRunner().invoke(main, ["history", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[6] for line in result.stdout.splitlines()[1:]] == ["applied diff", "applied -"]


def test_a_history_newer_than_this_clever2sis_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        db.execute("PRAGMA user_version = 9")
    db.close()
    with pytest.raises(
        RunsDirError, match=rf"schema version 9, newer than this clever2sis reads \({SCHEMA_VERSION}\)"
    ):
        History(tmp_path)
