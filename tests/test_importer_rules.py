"""What Canvas's importer would refuse is a finding, not a row: emails, login_ids and field lengths, each
judged through a whole build and then through the Canvas test double (tests/canvas_model.py), which applies
the zip as canvas-lms would.

The expectations are Canvas's own rules, stated in each test: an email is kept when the mail gem's rule
takes it (clever2sis.sis.emails, itself checked against the gem by tests/test_emails_ruby.py); a login is
at most 100 characters of Onigmo's [[:print:]] (app/models/pseudonym.rb, checked against Ruby by
tests/test_logins_ruby.py); ids and names are at most 255 characters (ActiveRecord's
maximum_string_length).
"""

from __future__ import annotations

import random
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clever2sis.clever.frames import load_district
from clever2sis.clever.snapshot import Snapshot
from clever2sis.config import RawConfig, build_settings
from clever2sis.errors import BuildError
from clever2sis.sis import build as build_module
from clever2sis.sis import files
from clever2sis.sis.build import BuiltFiles, build, build_frames, check_canvas_unzips
from clever2sis.sis.emails import canvas_accepts_email
from clever2sis.sis.writer import ZipWriter
from tests.canvas_model import CanvasModel
from tests.conftest import DISTRICT_ID, SCHOOL_A, Records, student, teacher, tiny_district
from tests.test_emails import ACCEPTED, REFUSED, SPEC_ACCEPTED, SPEC_REFUSED

CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def built(snapshot: Path, **tables: dict[str, object]) -> BuiltFiles:
    return build_frames(load_district(Snapshot.open(snapshot)), build_settings(RawConfig(data=tables)))


def findings(result: BuiltFiles, *kinds: str) -> list[tuple[str, str, str]]:
    """(kind, record_id, message) of the findings of ``kinds``."""
    rows = result.findings[result.findings["kind"].isin(kinds)]
    return [(row.kind, row.record_id, row.message) for row in rows.itertuples(index=False)]


def applied(snapshot: Path, out: Path, **tables: dict[str, object]) -> tuple[CanvasModel, list[str]]:
    """The build of ``snapshot`` applied to an empty Canvas: the Canvas and the messages of its import."""
    build(snapshot, out, build_settings(RawConfig(data=tables)))
    canvas = CanvasModel()
    record = canvas.apply(1, {}, (out / "sis_import.zip").read_bytes())
    return canvas, [message.message for message in record.messages]


def uid(number: int) -> str:
    return f"5f00000000000000{number:08d}"


def district_of(users: list[dict[str, Any]], *, section_name: str = "Algebra I - Okafor - 2") -> Records:
    """One school, one term, one section holding every student of ``users`` and the teacher Okafor."""
    records = tiny_district()
    okafor = teacher(
        uid(9000), "Chidi", "Okafor", school=SCHOOL_A, username="cokafor", email="cokafor@example.org"
    )
    section = dict(
        records["sections"][0],
        name=section_name,
        teacher=okafor["id"],
        teachers=[okafor["id"]],
        students=[user["id"] for user in users if "student" in user["roles"]],
    )
    return {
        **records,
        "schools": records["schools"][:1],
        "sections": [section],
        "users": [*users, okafor],
    }


# -- emails -------------------------------------------------------------------------------------------------

CASES = [
    value
    for value in dict.fromkeys(SPEC_ACCEPTED + SPEC_REFUSED + ACCEPTED + REFUSED)
    if not any(0xD800 <= ord(char) <= 0xDFFF for char in value)  # a snapshot holds UTF-8 only
]


def sent_email(value: str) -> str:
    """What users.csv should hold for an email Clever gives: the value stripped, where Canvas keeps it (the
    mail gem's rule, at most 255 characters) and it holds no control character (which the build removes
    from every value, making it another address); else nothing."""
    stripped = value.strip()
    kept = canvas_accepts_email(stripped) and len(stripped) <= 255 and not CONTROL.search(stripped)
    return stripped if kept else ""


def test_every_email_canvas_keeps_is_sent_and_every_other_is_a_finding(
    snapshot_factory: Callable[[Records], Path], tmp_path: Path
) -> None:
    values = [*CASES, "x@" + "d" * 253, "x@" + "d" * 254]
    users = [
        student(uid(1000 + n), "Ann", f"Case{n}", school=SCHOOL_A, username=f"case{n}", email=value)
        for n, value in enumerate(values)
    ]
    snapshot = snapshot_factory(district_of(users))
    result = built(snapshot)
    frame = result.frames[files.USERS].set_index("user_id")
    assert {user["id"]: frame.loc[user["id"], "email"] for user in users} == {
        user["id"]: sent_email(value) for user, value in zip(users, values, strict=True)
    }
    reported = {record for _, record, _ in findings(result, "invalid_email")}
    assert reported == {
        user["id"]
        for user, value in zip(users, values, strict=True)
        if value.strip() and not sent_email(value)
    }
    assert any(canvas_accepts_email(value) and CONTROL.search(value) for value in CASES)
    assert any(sent_email(value) and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value) for value in CASES)
    canvas, messages = applied(snapshot, tmp_path / "build")
    assert not [message for message in messages if "email address" in message]
    assert {user["id"]: canvas.email(user["id"]) or "" for user in users} == {
        user["id"]: sent_email(value) for user, value in zip(users, values, strict=True)
    }


def test_the_email_findings_say_why(snapshot_factory: Callable[[Records], Path]) -> None:
    long_address = "x@" + "d" * 300
    users = [
        student(uid(1), "Ann", "A", school=SCHOOL_A, username="ann", email="a@b"),
        student(uid(2), "Bob", "B", school=SCHOOL_A, username="bob", email="Ann <ann@x.org>"),
        student(uid(3), "Cy", "C", school=SCHOOL_A, username="cy", email='"a\tb"@x.org'),
        student(uid(4), "Di", "D", school=SCHOOL_A, username="di", email=long_address),
        student(uid(5), "Ed", "E", school=SCHOOL_A, username="ed", email="   "),
    ]
    result = built(snapshot_factory(district_of(users)))
    assert findings(result, "invalid_email") == [
        (
            "invalid_email",
            uid(2),
            f"user {uid(2)}: email 'Ann <ann@x.org>' is not a valid address; sent without an email",
        ),
        (
            "invalid_email",
            uid(3),
            f"user {uid(3)}: email '\"a\tb\"@x.org' holds control characters, which the build removes from "
            "every value; sent without an email",
        ),
        (
            "invalid_email",
            uid(4),
            f"user {uid(4)}: email '{long_address[:100]}...' is 302 characters, more than the 255 Canvas "
            "stores; sent without an email",
        ),
    ]
    assert result.frames[files.USERS].set_index("user_id").loc[uid(1), "email"] == "a@b"


# -- login_id -----------------------------------------------------------------------------------------------


def test_a_login_canvas_would_not_save_falls_back_to_the_next_field(
    snapshot_factory: Callable[[Records], Path], tmp_path: Path
) -> None:
    """Pseudonym validates unique_id as 1..100 characters of [[:print:]]: a longer or unprintable username
    is not used, and the user signs in with their email; a user with no other field is left out."""
    users = [
        student(uid(1), "Ann", "A", school=SCHOOL_A, username="a" * 100, email="ann@x.org"),
        student(uid(2), "Bob", "B", school=SCHOOL_A, username="b" * 101, email="bob@x.org"),
        student(uid(3), "Cy", "C", school=SCHOOL_A, username="cy\u2028line", email="cy@x.org"),
        student(uid(4), "Di", "D", school=SCHOOL_A, username="di\tx", email="di@x.org"),
        student(uid(5), "Ed", "E", school=SCHOOL_A, username="ed\u00a0e\u200bf\ue000", email="ed@x.org"),
        student(uid(6), "Flo", "F", school=SCHOOL_A, username="f" * 5000),
        student(uid(7), "Gus", "G", school=SCHOOL_A, username="g\u0378"),
        student(uid(8), "Hal", "H", school=SCHOOL_A, username="hal", email="h" * 100 + "@x.org"),
    ]
    snapshot = snapshot_factory(district_of(users))
    result = built(snapshot)
    logins = dict(
        zip(result.frames[files.USERS]["user_id"], result.frames[files.USERS]["login_id"], strict=True)
    )
    assert {user: logins.get(user) for user in map(uid, range(1, 9))} == {
        uid(1): "a" * 100,
        uid(2): "bob@x.org",
        uid(3): "cy@x.org",
        uid(4): "di@x.org",
        uid(5): "ed\u00a0e\u200bf\ue000",  # a no-break space, a format and a private-use character print
        uid(6): None,
        uid(7): None,
        uid(8): "hal",
    }
    assert findings(result, "unusable_login", "missing_login") == [
        (
            "missing_login",
            uid(6),
            f"user {uid(6)}: login_id '{'f' * 100}...' (district_username) is 5,000 characters long, more than "
            "the 100 Canvas takes, and no other login field is usable; left out",
        ),
        (
            "missing_login",
            uid(7),
            f"user {uid(7)}: login_id 'g\u0378' (district_username) holds U+0378, which Canvas does not take in "
            "a login, and no other login field is usable; left out",
        ),
        (
            "unusable_login",
            uid(2),
            f"user {uid(2)}: login_id '{'b' * 100}...' (district_username) is 101 characters long, more than "
            "the 100 Canvas takes; sent with login_id 'bob@x.org' instead",
        ),
        (
            "unusable_login",
            uid(3),
            f"user {uid(3)}: login_id 'cy\u2028line' (district_username) holds U+2028 (LINE SEPARATOR), which "
            "Canvas does not take in a login; sent with login_id 'cy@x.org' instead",
        ),
        (
            "unusable_login",
            uid(4),
            f"user {uid(4)}: login_id 'di\tx' (district_username) holds U+0009, which Canvas does not take in "
            "a login; sent with login_id 'di@x.org' instead",
        ),
    ]
    assert not findings(result, "control_characters")
    assert findings(result, "enrollment_user_not_built") == [
        (
            "enrollment_user_not_built",
            user,
            f"section 5f00000000000000000000e1: student {user} is not in users.csv (see that user's findings, "
            "or the user_roles setting); enrollment left out",
        )
        for user in (uid(6), uid(7))
    ]
    canvas, messages = applied(snapshot, tmp_path / "build")
    assert messages == []
    assert {user: canvas.signs_in_as(login) for user, login in logins.items()} == {
        user: user for user in logins
    }


def test_an_observer_whose_login_canvas_would_not_save_is_left_out(
    snapshot_factory: Callable[[Records], Path],
) -> None:
    kid = student(uid(1), "Kim", "K", school=SCHOOL_A, username="kim")
    parent = {
        "id": uid(500),
        "district": DISTRICT_ID,
        "name": {"first": "", "last": "Pat K"},
        "email": "p" * 120 + "@x.org",
        "roles": {
            "contact": {
                "student_relationships": [
                    {"student": uid(1), "relationship": "Parent", "type": "Parent/Guardian"}
                ]
            }
        },
    }
    result = built(snapshot_factory(district_of([kid, parent])), observers={"enabled": True})
    assert uid(500) not in set(result.frames[files.USERS]["user_id"])
    assert findings(result, "observer_missing_login") == [
        (
            "observer_missing_login",
            uid(500),
            f"contact {uid(500)}: login_id '{'p' * 100}...' (observers.login_id) is 126 characters long, more "
            "than the 100 Canvas takes; left out",
        )
    ]


# -- field lengths --------------------------------------------------------------------------------------------

HUGE = 5_000_000


def test_a_five_million_character_section_name_is_cut_to_what_canvas_stores(
    snapshot_factory: Callable[[Records], Path], tmp_path: Path
) -> None:
    """A course's name and a section's name are at most 255 characters (app/models/course.rb,
    app/models/course_section.rb): the values are cut, and said so."""
    kid = student(uid(1), "Kim", "K", school=SCHOOL_A, username="kim")
    snapshot = snapshot_factory(district_of([kid], section_name="A" * HUGE))
    result = built(snapshot)
    assert result.frames[files.COURSES]["long_name"].tolist() == ["A" * 255]
    assert result.frames[files.SECTIONS]["name"].tolist() == ["A" * 255]
    assert findings(result, "value_too_long") == [
        (
            "value_too_long",
            "5f00000000000000000000e1",
            "courses.csv course_id 5f00000000000000000000e1: long_name is 5,000,000 characters, more than the "
            "255 Canvas stores; cut to 255",
        ),
        (
            "value_too_long",
            "5f00000000000000000000e1",
            "sections.csv section_id 5f00000000000000000000e1: name is 5,000,000 characters, more than the 255 "
            "Canvas stores; cut to 255",
        ),
    ]
    canvas, messages = applied(snapshot, tmp_path / "build")
    assert messages == []
    assert ("5f00000000000000000000e1", uid(1), "student") in canvas.active_enrollments()


def test_names_over_255_characters_are_cut_and_ids_leave_their_row_out(
    snapshot_factory: Callable[[Records], Path],
) -> None:
    """Names are cut (an account's, a course code); an id is never cut (a cut id could name another
    record): a user whose user_id is too long is left out, and so are the rows that refer to it."""
    records = district_of(
        [
            student(uid(1), "Kim", "K", school=SCHOOL_A, username="kim", sis_id="S" * 256),
            student(uid(2), "Lee", "L", school=SCHOOL_A, username="lee", sis_id="S" * 255),
        ]
    )
    records["schools"] = [dict(records["schools"][0], name="School " + "s" * 300)]
    records["courses"] = [dict(records["courses"][0], number="N" * 400)]
    result = built(snapshot_factory(records), ids={"user_id": "{{ user.sis_id }}"})
    assert result.frames[files.ACCOUNTS]["name"].tolist() == [("School " + "s" * 300)[:255]]
    assert result.frames[files.COURSES]["short_name"].tolist() == ["N" * 255]
    assert set(result.frames[files.USERS]["user_id"]) == {"S" * 255, "T9000"}
    assert set(result.frames[files.ENROLLMENTS]["user_id"]) == {"S" * 255, "T9000"}
    assert findings(result, "id_too_long", "dangling_reference") == [
        (
            "dangling_reference",
            "5f00000000000000000000e1",
            f"enrollments.csv course_id 5f00000000000000000000e1: user_id '{'S' * 100}...' is not in users.csv; "
            "row left out",
        ),
        (
            "id_too_long",
            "S" * 100 + "...",
            f"users.csv user_id {'S' * 100}...: user_id is 256 characters, more than the 255 Canvas stores, "
            "and an id cannot be cut safely; row left out",
        ),
    ]
    assert [kind for kind, _, _ in findings(result, "value_too_long")] == ["value_too_long"] * 2


@pytest.mark.parametrize(
    ("first", "last", "kept"),
    [
        (126, 127, (126, 127)),  # 253 together: fits
        (200, 100, (153, 100)),  # the longer is cut to the room the other leaves
        (10, 5_000, (10, 243)),
        (300, 300, (126, 127)),  # both long: half the room each
    ],
)
def test_a_users_first_and_last_name_fit_the_name_canvas_makes_of_them(
    snapshot_factory: Callable[[Records], Path], first: int, last: int, kept: tuple[int, int]
) -> None:
    """Canvas stores "first last" as the name and "last, first" as the sortable name, each at most 255
    characters (lib/sis/user_importer.rb, app/models/user.rb): first and last may hold 253 together."""
    kid = student(uid(1), "F" * first, "L" * last, school=SCHOOL_A, username="kim")
    result = built(snapshot_factory(district_of([kid])))
    row = result.frames[files.USERS].set_index("user_id").loc[uid(1)]
    assert (row["first_name"], row["last_name"]) == ("F" * kept[0], "L" * kept[1])
    assert len(f"{row['last_name']}, {row['first_name']}") <= 255
    expected = (
        []
        if (first, last) == kept
        else [
            (
                "value_too_long",
                uid(1),
                f"users.csv user_id {uid(1)}: first_name and last_name are {first + last:,} characters "
                "together, more than the 253 Canvas stores in the name made of them; the longer cut to fit",
            )
        ]
    )
    assert findings(result, "value_too_long") == expected


def test_an_observers_full_name_leaves_room_for_the_comma_of_its_sortable_name(
    snapshot_factory: Callable[[Records], Path],
) -> None:
    kid = student(uid(1), "Kim", "K", school=SCHOOL_A, username="kim")
    parent = {
        "id": uid(500),
        "district": DISTRICT_ID,
        "name": {"first": "", "last": "P" * 300},
        "email": "pat@x.org",
        "roles": {
            "contact": {
                "student_relationships": [
                    {"student": uid(1), "relationship": "Parent", "type": "Parent/Guardian"}
                ]
            }
        },
    }
    result = built(snapshot_factory(district_of([kid, parent])), observers={"enabled": True})
    row = result.frames[files.USERS].set_index("user_id").loc[uid(500)]
    assert row["full_name"] == "P" * 254
    assert findings(result, "value_too_long") == [
        (
            "value_too_long",
            uid(500),
            f"users.csv user_id {uid(500)}: full_name is 300 characters, more than the 254 Canvas stores; cut "
            "to 254",
        )
    ]


# -- the zip Canvas would refuse to extract -----------------------------------------------------------------


def constructed_zip(path: Path, members: dict[str, bytes]) -> Path:
    with ZipWriter(path) as archive:
        for name, data in members.items():
            with archive.member(name) as write:
                write(data)
    return path


def test_a_zip_expanding_over_100_times_is_refused_naming_the_file(tmp_path: Path) -> None:
    """CanvasUnzip.default_limits: at most 100 times the zip's size uncompressed (else SizeLimitExceeded,
    and the import fails)."""
    archive = constructed_zip(
        tmp_path / "sis_import.zip",
        {
            "accounts.csv": b"account_id,parent_account_id,name,status\nA,,A,active\n",
            "users.csv": b"a" * 2_000_000,
        },
    )
    with zipfile.ZipFile(archive) as opened:
        users = opened.getinfo("users.csv")
        total = sum(member.file_size for member in opened.infolist())
    assert total > 100 * archive.stat().st_size
    with pytest.raises(BuildError) as raised:
        check_canvas_unzips(archive)
    ratio = users.file_size / users.compress_size
    assert str(raised.value) == (
        f"sis_import.zip would expand to {total:,} bytes, more than 100 times its {archive.stat().st_size:,} "
        f"bytes, and Canvas refuses to extract such a zip: users.csv expands {ratio:,.0f} times "
        f"(2,000,000 bytes from {users.compress_size:,}); look in it for a value repeated over and over"
    )
    assert raised.value.exit_code == 4


def test_a_zip_within_100_times_is_taken_and_the_50_gib_cap_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    noise = random.Random(7).randbytes(102_400)  # barely compressible
    archive = constructed_zip(tmp_path / "sis_import.zip", {"users.csv": noise})
    check_canvas_unzips(archive)
    monkeypatch.setattr(build_module, "CANVAS_UNZIP_MAX_BYTES", 1_000)
    with pytest.raises(BuildError) as raised:
        check_canvas_unzips(archive)
    assert str(raised.value) == (
        "sis_import.zip would expand to 102,400 bytes, more than the 1,000 bytes (50 GiB) Canvas extracts; "
        "the largest file is users.csv (102,400 bytes)"
    )


def test_a_build_whose_zip_canvas_would_refuse_fails_and_writes_nothing(
    snapshot_factory: Callable[[Records], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the length limits a roster cannot reach 100 times (every row has an id of its own); the ratio is
    lowered here so that an ordinary build trips the same check."""
    users = [student(uid(n), "Ann", f"A{n}", school=SCHOOL_A, username=f"a{n}") for n in range(1, 300)]
    snapshot = snapshot_factory(district_of(users))
    monkeypatch.setattr(build_module, "CANVAS_UNZIP_MAX_RATIO", 2)
    out = tmp_path / "build"
    with pytest.raises(BuildError, match=r"^sis_import\.zip would expand to .* enrollments\.csv expands"):
        build(snapshot, out, build_settings(RawConfig(data={})))
    assert not out.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        ".build.lock",
        snapshot.name,
    ]  # nothing half-made


def overlong_district() -> Records:
    """A district tripping every check of Canvas's importer rules (tests/test_checks.py builds it with
    observers enabled and user_ids from SIS ids): an email too long and one with a control character,
    logins too long (replaced, and left out), an observer whose login is too long, a name, a name pair and
    an id too long."""
    parent = {
        "id": uid(500),
        "district": DISTRICT_ID,
        "name": {"first": "", "last": "Pat K"},
        "email": "p" * 120 + "@x.org",
        "roles": {
            "contact": {
                "student_relationships": [
                    {"student": uid(1), "relationship": "Parent", "type": "Parent/Guardian"}
                ]
            }
        },
    }
    users = [
        student(uid(1), "F" * 200, "L" * 200, school=SCHOOL_A, username="u" * 101, email="kim@x.org"),
        student(uid(2), "Lee", "L", school=SCHOOL_A, username="l" * 101, email="x@" + "d" * 300),
        student(uid(3), "Max", "M", school=SCHOOL_A, username="max", email='"a\tb"@x.org', sis_id="S" * 300),
        parent,
    ]
    return district_of(users, section_name="A" * 300)


OVERLONG_SETTINGS: dict[str, Any] = {"observers": {"enabled": True}, "ids": {"user_id": "{{ user.sis_id }}"}}


# -- fields as Canvas reads them ------------------------------------------------------------------------------


def test_ids_that_differ_only_by_white_space_around_them_are_one_id(
    snapshot_factory: Callable[[Records], Path], tmp_path: Path
) -> None:
    """Canvas strips every field it reads (lib/sis/csv/csv_base_importer.rb): "S1" and "S1 " are one user
    and "9001" and " 9001" one section to it. The second of each is a duplicate, not a second row Canvas
    would apply over the first (signing one person in as the other, moving a section)."""
    users = [
        student(uid(1), "Ann", "A", school=SCHOOL_A, username="ann", sis_id="S1"),
        student(uid(2), "Bob", "B", school=SCHOOL_A, username="bob", sis_id="S1 "),
        student(uid(3), "Cy", "C", school=SCHOOL_A, username="cy", sis_id="\tS3"),
    ]
    records = district_of(users)
    first = records["sections"][0]
    records["sections"] = [
        first,
        dict(first, id="5f00000000000000000000e9", sis_id=" 9001", students=[uid(3)]),
    ]
    snapshot = snapshot_factory(records)
    settings = {"ids": {"user_id": "{{ user.sis_id }}", "section_id": "{{ section.sis_id }}"}}
    result = built(snapshot, **settings)
    assert result.frames[files.USERS]["user_id"].tolist() == ["S1", "S3", "T9000"]
    assert result.frames[files.SECTIONS]["section_id"].tolist() == ["9001"]
    assert findings(result, "duplicate_user_id", "duplicate_section_id") == [
        (
            "duplicate_section_id",
            "5f00000000000000000000e9",
            "section 5f00000000000000000000e9: section_id '9001' is already used by another section; left out",
        ),
        (
            "duplicate_user_id",
            uid(2),
            f"user {uid(2)}: user_id 'S1' is already used by another user; left out",
        ),
    ]
    canvas, messages = applied(snapshot, tmp_path / "build", **settings)
    assert messages == []
    assert canvas.active_enrollments() == {
        ("9001", "S1", "student"),
        ("9001", "S3", "student"),
        ("9001", "T9000", "teacher"),
    }


def test_required_names_are_never_blank_as_canvas_reads_them(
    snapshot_factory: Callable[[Records], Path], tmp_path: Path
) -> None:
    """Canvas reads a blank cell as nothing (it strips every field) and refuses a new account, term, course
    or section without a name ("No name given for account ...", "No short_name given for course ...");
    the build names such a record from what it has."""
    records = district_of([student(uid(1), "Kim", "K", school=SCHOOL_A, username="kim")], section_name="   ")
    records["schools"] = [dict(records["schools"][0], name="  ")]
    records["terms"] = [dict(records["terms"][0], name=" ")]
    records["courses"] = [dict(records["courses"][0], name="", number="  ")]
    snapshot = snapshot_factory(records)
    result = built(snapshot)
    assert result.frames[files.ACCOUNTS]["name"].tolist() == [SCHOOL_A]
    assert result.frames[files.TERMS][["term_id", "name"]].values.tolist() == [
        ["2026-08-17_2027-06-11_", "2026-08-17_2027-06-11_"]
    ]
    # The course code's template is "{{ course.number or ... }} P{{ section.period }}": "   P2" as rendered.
    assert result.frames[files.COURSES][["short_name", "long_name"]].values.tolist() == [["P2", "P2"]]
    assert result.frames[files.SECTIONS]["name"].tolist() == ["P2"]
    _, messages = applied(snapshot, tmp_path / "build")
    assert messages == []


def test_a_file_without_rows_is_not_sent(snapshot_factory: Callable[[Records], Path], tmp_path: Path) -> None:
    """A header-only file is still read as its type, and in batch mode deletes every row of that type in
    the term (SisBatch#remove_previous_imports): a file with no rows is left out of the zip."""
    records = district_of([])
    records["users"] = []
    out = tmp_path / "build"
    record = build(snapshot_factory(records), out, build_settings(RawConfig(data={})))
    with zipfile.ZipFile(out / "sis_import.zip") as archive:
        assert archive.namelist() == [files.ACCOUNTS, files.TERMS, files.COURSES, files.SECTIONS]
    no_rows = "no rows (Canvas would take a header-only file as 'delete all')"
    assert record["skipped_files"] == {files.USERS: no_rows, files.ENROLLMENTS: no_rows}
