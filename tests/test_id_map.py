"""map-ids (Canvas provisioning reports matched to Clever records) and change_sis_id.csv from its mapping."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from clever2sis.cli import main
from tests.canvas_rules import canvas_messages
from tests.conftest import tiny_district, write_snapshot

# Made-up Canvas provisioning reports of a district whose older feed used SIS numbers. The extra column
# checks that columns map-ids does not use are ignored.
USERS_REPORT = (
    "canvas_user_id,user_id,integration_id,login_id,first_name,last_name,full_name,sortable_name,"
    "short_name,email,status,created_by_sis\n"
    "101,S0101,,zobrien,Zoe,O'Brien,Zoe O'Brien,\"O'Brien, Zoe\",Zoe,zoe@example.org,active,true\n"
    '102,N0102,,an,An,Van,An Van,"Van, An",An,,active,true\n'
    '103,OLD-CHIDI,,chidi,Chidi,Okafor,Chidi Okafor,"Okafor, Chidi",Chidi,COKAFOR@example.org,active,true\n'
    '104,5f0000000000000000000f02,,greta,Greta,L,Greta L,"L, Greta",Greta,,active,true\n'
    '105,,,manual,Man,Ual,Man Ual,"Ual, Man",Man,,active,false\n'
    '106,GONE,,gone,Go,Ne,Go Ne,"Ne, Go",Go,,deleted,true\n'
    '107,X999,,nobody,No,Body,No Body,"Body, No",No,nobody@example.org,active,true\n'
    '108,DUP,,dup,Du,P,Du P,"P, Du",Du,an@example.org,active,true\n'
    '109,ST1,,twins,Tw,In,Tw In,"In, Tw",Tw,,active,true\n'
    '110,5f0000000000000000000104,,old104,Ana,P,Ana P,"P, Ana",Ana,,deleted,true\n'
    '111,S0104,,ana,Ana,Perez,Ana Perez,"Perez, Ana",Ana,,active,true\n'
)
SECTIONS_REPORT = (
    "canvas_section_id,section_id,integration_id,canvas_course_id,course_id,name,status\n"
    "201,9001,,301,9001,Algebra,active\n"
    "202,5f00000000000000000000e2,,302,x,Homeroom,active\n"
    "203,7777,,303,y,Gone,active\n"
)
COURSES_REPORT = (
    "canvas_course_id,course_id,integration_id,short_name,long_name,canvas_account_id,account_id,status\n"
    "301,9001,,ALG,Algebra I,1,A,active\n"
    "302,9003,,ART,Art,1,A,unpublished\n"
)


@pytest.fixture
def district_dir(tmp_path: Path) -> Path:
    records = tiny_district()
    for user in records["users"][2:4]:
        user["roles"]["student"]["state_id"] = "ST1"
    return write_snapshot(tmp_path / "snapshot", records)


def reports(tmp_path: Path) -> list[str]:
    for name, text in (("users", USERS_REPORT), ("sections", SECTIONS_REPORT), ("courses", COURSES_REPORT)):
        (tmp_path / f"{name}.csv").write_text(text, encoding="utf-8")
    return [
        "--canvas-users",
        str(tmp_path / "users.csv"),
        "--canvas-sections",
        str(tmp_path / "sections.csv"),
        "--canvas-courses",
        str(tmp_path / "courses.csv"),
    ]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_map_ids_matches_in_order_and_lists_what_it_cannot(district_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ids"
    code, stdout, stderr = run("map-ids", str(district_dir), *reports(tmp_path), "--out", str(out), "--json")
    assert code == 0, stderr
    assert (out / "id_map.csv").read_text() == (
        "type,old_id,new_id,matched_by\n"
        "course,9001,5f00000000000000000000e1,sis_id\n"
        "course,9003,5f00000000000000000000e3,sis_id\n"
        "section,5f00000000000000000000e2,5f00000000000000000000e2,id\n"
        "section,9001,5f00000000000000000000e1,sis_id\n"
        "user,5f0000000000000000000f02,5f0000000000000000000f02,id\n"
        "user,OLD-CHIDI,5f0000000000000000000f01,email\n"
        "user,S0101,5f0000000000000000000101,sis_id\n"
    )
    assert (out / "unmatched.csv").read_text() == (
        "type,old_id,canvas_id,name,email,problem,reason\n"
        "section,7777,203,Gone,,no_match,no Clever record matches\n"
        "user,,105,Man Ual,,no_sis_id,no SIS id in Canvas (change_sis_id needs one)\n"
        "user,5f0000000000000000000104,110,Ana P,,deleted,deleted in Canvas\n"
        "user,DUP,108,Du P,an@example.org,ambiguous_record,"
        "Clever record 5f0000000000000000000102 is matched by several Canvas records\n"
        "user,GONE,106,Go Ne,,deleted,deleted in Canvas\n"
        "user,N0102,102,An Van,,ambiguous_record,"
        "Clever record 5f0000000000000000000102 is matched by several Canvas records\n"
        "user,S0104,111,Ana Perez,,id_taken,"
        "its new id 5f0000000000000000000104 is already another Canvas record's SIS id\n"
        "user,ST1,109,Tw In,,ambiguous_value,its state_id 'ST1' matches 2 Clever records\n"
        "user,X999,107,No Body,nobody@example.org,no_match,no Clever record matches\n"
    )
    counts = orjson.loads(stdout)["by_type"]["user"]
    assert counts == {
        "canvas_rows": 11,
        "mapped": 3,
        "unchanged": 1,
        "matched_by": {"email": 1, "id": 1, "sis_id": 1},
        "unmatched": 8,
        "unmatched_problems": {
            "ambiguous_record": 2,
            "ambiguous_value": 1,
            "deleted": 2,
            "id_taken": 1,
            "no_match": 1,
            "no_sis_id": 1,
        },
    }
    assert (
        "  users: 11 in Canvas, 3 mapped (email 1, id 1, sis_id 1), 1 of them already Clever ids, 8 unmatched"
        in (stderr.splitlines())
    )


def test_build_with_the_id_map_writes_change_sis_id_first(district_dir: Path, tmp_path: Path) -> None:
    import zipfile

    import pandas as pd

    run("map-ids", str(district_dir), *reports(tmp_path), "--out", str(tmp_path / "ids"), "-q")
    out = tmp_path / "build"
    code, _, stderr = run(
        "build", str(district_dir), "--out", str(out), "--id-map", str(tmp_path / "ids" / "id_map.csv"), "-q"
    )
    assert code == 0, stderr
    with zipfile.ZipFile(out / "sis_import.zip") as archive:
        assert archive.namelist()[0] == "change_sis_id.csv"
        assert archive.read("change_sis_id.csv").decode() == (
            "old_id,new_id,type\n"
            "9001,5f00000000000000000000e1,course\n"
            "9003,5f00000000000000000000e3,course\n"
            "9001,5f00000000000000000000e1,section\n"
            "OLD-CHIDI,5f0000000000000000000f01,user\n"
            "S0101,5f0000000000000000000101,user\n"
        )
        frames = {
            name: pd.read_csv(archive.open(name), dtype=str, keep_default_na=False)
            for name in archive.namelist()
        }
    assert canvas_messages(frames) == []
    record = orjson.loads((out / "build.json").read_bytes())
    assert record["config"]["id_map"]["source"] == str(tmp_path / "ids" / "id_map.csv")


def test_change_sis_id_uses_the_builds_ids_and_refuses_conflicts(district_dir: Path) -> None:
    import pandas as pd

    from clever2sis.clever.frames import load_district
    from clever2sis.clever.snapshot import Snapshot
    from clever2sis.config import RawConfig, build_settings
    from clever2sis.sis import files
    from clever2sis.sis.build import build_frames
    from clever2sis.sis.writer import csv_bytes

    rows = [
        ("user", "OLD1", "5f0000000000000000000101"),  # the build's id is S0101: written
        (
            "user",
            "S0101",
            "5f0000000000000000000102",
        ),  # S0101 -> S0102 is fine; OLD1 -> S0101 is then refused
        ("user", "T0f02", "5f0000000000000000000f02"),  # unchanged under this template: nothing to write
        ("user", "OLD104", "5f0000000000000000000104"),  # not built (no login)
        ("user", "A", "5f0000000000000000000f01"),  # two old ids for one new id: both refused
        ("user", "B", "5f0000000000000000000f01"),
        ("course", "MA", "5f00000000000000000000d1"),  # a Clever course (course_structure = "course")
        ("section", "9002", "5f00000000000000000000e2"),
    ]
    id_map = pd.DataFrame(rows, columns=["type", "old_id", "new_id"], dtype="string")
    settings = build_settings(
        RawConfig(data={"ids": {"user_id": "{{ user.sis_id }}"}, "build": {"course_structure": "course"}})
    )
    result = build_frames(load_district(Snapshot.open(district_dir)), settings, id_map=id_map)
    assert csv_bytes(result.frames[files.CHANGE_SIS_ID]).decode() == (
        "old_id,new_id,type\n"
        "MA,5f00000000000000000000d1_5f00000000000000000000a1_2026-08-17_2027-06-11_year,course\n"
        "9002,5f00000000000000000000e2,section\n"
        "S0101,S0102,user\n"
    )
    found = result.findings[result.findings["file"] == files.CHANGE_SIS_ID]
    assert found["message"].tolist() == [
        "user A -> T0f01: the id map gives this old id twice, this new id twice, or this new id as another "
        "old id; not changed",
        "user B -> T0f01: the id map gives this old id twice, this new id twice, or this new id as another "
        "old id; not changed",
        "user OLD1 -> S0101: the id map gives this old id twice, this new id twice, or this new id as another "
        "old id; not changed",
        "user OLD104: Clever record 5f0000000000000000000104 is not in users.csv; its SIS id is not changed",
    ]
    assert canvas_messages(result.frames) == []


def test_a_bad_id_map_is_a_usage_error(district_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "map.csv").write_text("type,old_id,new_id\ngroup,a,b\n")
    code, _, stderr = run(
        "build", str(district_dir), "--out", str(tmp_path / "b"), "--id-map", str(tmp_path / "map.csv")
    )
    assert (code, stderr) == (
        2,
        f"error: {tmp_path / 'map.csv'}: type 'group' is not one of user, course, section\n",
    )
    assert not (tmp_path / "b").exists()


def test_map_ids_needs_a_report_and_the_right_columns(district_dir: Path, tmp_path: Path) -> None:
    code, _, stderr = run("map-ids", str(district_dir), "--out", str(tmp_path / "ids"))
    assert (code, stderr) == (
        2,
        "error: give at least one Canvas report: --canvas-users, --canvas-courses or --canvas-sections\n",
    )
    (tmp_path / "users.csv").write_text("id,login\n1,a\n")
    code, _, stderr = run(
        "map-ids",
        str(district_dir),
        "--canvas-users",
        str(tmp_path / "users.csv"),
        "--out",
        str(tmp_path / "ids"),
    )
    assert code == 2
    assert stderr == (
        f"error: {tmp_path / 'users.csv'}: no user_id column; give the Canvas provisioning report of users "
        "(columns canvas_user_id, user_id, ...)\n"
    )
