"""``clever2sis build`` through the CLI: outputs, exact messages and exit codes."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from clever2sis.clever.snapshot import MAX_MALFORMED_RECORDS
from clever2sis.cli import main
from clever2sis.sis import files


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


# The files a build writes by default (user_observers.csv and change_sis_id.csv are opt-in).
DEFAULT_FILES = [files.ACCOUNTS, files.TERMS, files.COURSES, files.SECTIONS, files.USERS, files.ENROLLMENTS]


def test_build_writes_csvs_zip_and_record(tiny_snapshot: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    code, stdout, stderr = run("build", str(tiny_snapshot), "--out", str(out))
    assert (code, stdout) == (0, "")
    assert sorted(p.name for p in (out / "csv").iterdir()) == sorted(DEFAULT_FILES)
    with zipfile.ZipFile(out / "sis_import.zip") as archive:
        assert archive.namelist() == DEFAULT_FILES
        for name in DEFAULT_FILES:
            assert archive.read(name) == (out / "csv" / name).read_bytes()
    record = orjson.loads((out / "build.json").read_bytes())
    assert record["files"]["users.csv"]["rows"] == 4
    assert record["findings"]["by_kind"]["duplicate_login"] == {"severity": "warning", "count": 2}
    assert record["snapshot"]["district_id"] == "5f0000000000000000000001"
    assert "  enrollments.csv           8 rows" in stderr.splitlines()
    assert "findings: 12 (9 warnings); all in build.json" in stderr.splitlines()


def test_json_prints_the_record_on_stdout(tiny_snapshot: Path, tmp_path: Path) -> None:
    code, stdout, _ = run("build", str(tiny_snapshot), "--out", str(tmp_path / "b"), "--json", "--quiet")
    assert code == 0
    assert orjson.loads(stdout) == orjson.loads((tmp_path / "b" / "build.json").read_bytes())


def test_same_snapshot_and_config_give_a_byte_identical_zip(tiny_snapshot: Path, tmp_path: Path) -> None:
    run("build", str(tiny_snapshot), "--out", str(tmp_path / "one"), "-q")
    run("build", str(tiny_snapshot), "--out", str(tmp_path / "two"), "-q")
    assert (tmp_path / "one" / "sis_import.zip").read_bytes() == (
        tmp_path / "two" / "sis_import.zip"
    ).read_bytes()


def test_existing_build_dir_needs_force(tiny_snapshot: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    out.mkdir()
    code, _, stderr = run("build", str(tiny_snapshot), "--out", str(out))
    assert (code, stderr) == (2, f"error: {out} already exists; use --force to replace it\n")
    code, _, _ = run("build", str(tiny_snapshot), "--out", str(out), "--force", "-q")
    assert code == 0
    assert (out / "sis_import.zip").exists()


def test_strict_exits_5_and_keeps_the_build_for_review(tiny_snapshot: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    code, _, stderr = run("build", str(tiny_snapshot), "--out", str(out), "--strict", "-q")
    assert code == 5
    assert (
        stderr
        == f"error: 9 warning finding(s) and --strict was given; the build is in {out} for review (see build.json)\n"
    )


@pytest.mark.parametrize(
    ("config", "code", "message"),
    [
        (
            '[build]\ncourse_structure = "term"\n',
            2,
            "{c}: build.course_structure = 'term'; use one of: section, course",
        ),
        (
            '[names]\nsection = "{{ section.room }}"\n',
            2,
            "names.section: unknown template variable 'section.room' in '{{ section.room }}'; section has: id, name, "
            "sis_id, period, subject, grade, section_number",
        ),
        (
            "[build\n",
            2,
            "{c}: not valid TOML (Expected ']' at the end of a table declaration (at line 1, column 7))",
        ),
        (
            "[colours]\nx = 1\n",
            2,
            "{c}: unknown setting 'colours'; known tables: admins, build, ids, names, notify, observers, profiles, sync, terms, upload",
        ),
    ],
)
def test_bad_config_is_one_line_and_writes_nothing(
    tiny_snapshot: Path, tmp_path: Path, config: str, code: int, message: str
) -> None:
    path = tmp_path / "clever2sis.toml"
    path.write_text(config)
    out = tmp_path / "b"
    result = run("build", str(tiny_snapshot), "--out", str(out), "--config", str(path), "-q")
    assert result[0] == code
    assert result[2] == "error: " + message.replace("{c}", str(path)) + "\n"
    assert not out.exists()


def test_truncated_snapshot_writes_nothing(tiny_snapshot: Path, tmp_path: Path) -> None:
    sections = tiny_snapshot / "sections.jsonl"
    sections.write_bytes(sections.read_bytes()[:100])
    out = tmp_path / "b"
    code, _, stderr = run("build", str(tiny_snapshot), "--out", str(out), "-q")
    assert code == 3
    assert stderr.startswith(f"error: {sections}: 100 bytes, but the manifest says ")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".b")] == []


def test_not_clever_records(snapshot_factory, tmp_path: Path) -> None:
    sections = [{"id": f"x{n:05d}", "students": "not-a-list"} for n in range(MAX_MALFORMED_RECORDS + 1)]
    snapshot = snapshot_factory({"sections": sections})
    code, _, stderr = run("build", str(snapshot), "--out", str(tmp_path / "b"), "-q")
    assert code == 3
    assert stderr.startswith(f"error: {snapshot / 'sections.jsonl'}: not Clever sections records: more than ")


def test_failed_rebuild_keeps_the_previous_build(tiny_snapshot: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    run("build", str(tiny_snapshot), "--out", str(out), "-q")
    before = (out / "sis_import.zip").read_bytes()
    (tiny_snapshot / "users.jsonl").write_bytes(b"")
    code, _, _ = run("build", str(tiny_snapshot), "--out", str(out), "--force", "-q")
    assert code == 3
    assert (out / "sis_import.zip").read_bytes() == before


@pytest.mark.parametrize("command", ["build", "map-ids"])
def test_help(command: str) -> None:
    code, stdout, _ = run(command, "--help")
    assert code == 0
    assert stdout.startswith(f"Usage: main {command} [OPTIONS]")


def test_a_write_failing_on_the_writing_thread_fails_the_build_and_keeps_the_previous_one(
    tiny_snapshot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clever2sis.sis import build as build_module

    out = tmp_path / "b"
    run("build", str(tiny_snapshot), "--out", str(out), "-q")
    before = (out / "sis_import.zip").read_bytes()
    write_csv = build_module.write_csv

    def disk_full_at_users(frame, path, **kwargs):  # type: ignore[no-untyped-def]
        if path.name == files.USERS:
            raise OSError(28, "No space left on device", str(path))
        return write_csv(frame, path, **kwargs)

    monkeypatch.setattr(build_module, "write_csv", disk_full_at_users)
    code, stdout, stderr = run("build", str(tiny_snapshot), "--out", str(out), "--force", "-q")
    assert (code, stdout) == (4, "")
    assert stderr.startswith(f"error: cannot write the build to {out}: No space left on device (")
    assert stderr.endswith(f"{files.USERS})\n")
    assert (out / "sis_import.zip").read_bytes() == before
    # No partial build left; the lock file beside the build stays (a lock is the open file, not the file).
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [".b.lock"]


# Each a template that must not build; the message the CLI gives for it (after "error: names.section: ").
UNSAFE_TEMPLATES = [
    (
        "{{ cycler.__init__.__globals__.os.environ.CANVAS_TOKEN }}",
        "unknown template variable 'cycler' in '{{ cycler.__init__.__globals__.os.environ.CANVAS_TOKEN }}'; "
        "available here: canvas, course, school, section, teacher, term",
    ),
    (
        "{{ section.name.__class__.__mro__ }}",
        "the attribute '__class__' is not allowed in template '{{ section.name.__class__.__mro__ }}'; name a field "
        "of a namespace (e.g. section.name) or call one of the methods split(), rsplit(), startswith(), endswith()",
    ),
    (
        "{% include 'x' %}",
        "{% include %} is not allowed in template \"{% include 'x' %}\"; templates may use text, "
        "{{ namespace.field }}, the filters default, lower, replace, slug, title, trim, truncate, upper, ~, and, or, "
        "not, comparisons (== != < <= > >= in), a if b else c, [n] and [a:b], the methods split(), rsplit(), "
        "startswith(), endswith(), {% if %} and {% for %}",
    ),
    (
        "{% import 'x' as y %}{{ y.z }}",
        "{% import %} is not allowed in template \"{% import 'x' as y %}{{ y.z }}\"; templates may use text, "
        "{{ namespace.field }}, the filters default, lower, replace, slug, title, trim, truncate, upper, ~, and, or, "
        "not, comparisons (== != < <= > >= in), a if b else c, [n] and [a:b], the methods split(), rsplit(), "
        "startswith(), endswith(), {% if %} and {% for %}",
    ),
    (
        "{{ section.name|nope }}",
        "unknown filter 'nope' in template '{{ section.name|nope }}'; filters: default, lower, replace, slug, "
        "title, trim, truncate, upper",
    ),
]


@pytest.mark.parametrize(("source", "message"), UNSAFE_TEMPLATES)
def test_an_unsafe_template_exits_2_with_one_line_and_no_token(
    tiny_snapshot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, message: str
) -> None:
    monkeypatch.setenv("CANVAS_TOKEN", "tok-7f3a9c-secret")
    path = tmp_path / "clever2sis.toml"
    path.write_text(f"[names]\nsection = {orjson.dumps(source).decode()}\n")
    out = tmp_path / "b"
    code, stdout, stderr = run("build", str(tiny_snapshot), "--out", str(out), "--config", str(path))
    assert (code, stdout, stderr) == (2, "", f"error: names.section: {message}\n")
    assert not out.exists()


def test_an_unsafe_template_is_refused_before_the_snapshot_is_read(tmp_path: Path) -> None:
    path = tmp_path / "clever2sis.toml"
    path.write_text("[ids]\nuser_id = \"{{ user.id|attr('upper') }}\"\n")
    code, _, stderr = run(
        "build", str(tmp_path / "no-snapshot"), "--out", str(tmp_path / "b"), "--config", str(path)
    )
    assert (code, stderr) == (
        2,
        "error: ids.user_id: unknown filter 'attr' in template \"{{ user.id|attr('upper') }}\"; filters: default, "
        "lower, replace, slug, title, trim, truncate, upper\n",
    )


def test_against_the_last_build_a_recreated_term_keeps_its_term_id(
    tiny_snapshot: Path, snapshot_factory, tmp_path: Path
) -> None:
    from tests.conftest import tiny_district
    from tests.test_terms import NEW_YEAR, YEAR, YEAR_ID, recreate

    first = tmp_path / "first"
    assert run("build", str(tiny_snapshot), "--out", str(first), "-q")[0] == 0
    records = tiny_district()
    recreate(records, YEAR, NEW_YEAR, sections=["5f00000000000000000000e1"], end_date="2027-06-18")
    tonight = snapshot_factory(records)

    code, _, stderr = run("build", str(tonight), "--out", str(tmp_path / "second"), "--against", str(first))
    assert code == 0, stderr
    terms = (tmp_path / "second" / "csv" / files.TERMS).read_text()
    assert (
        f"{YEAR_ID},Year (2026-08-17 – 2027-06-18),active,2026-08-17T00:00:00Z,2027-06-18T23:59:59Z\n"
        in terms
    )
    assert "2027-06-18_year" not in terms
    courses = (tmp_path / "second" / "csv" / files.COURSES).read_text()
    assert courses == (first / "csv" / files.COURSES).read_text()
    assert "  term_recreated (info): 1" in stderr.splitlines()
    record = orjson.loads((tmp_path / "second" / "build.json").read_bytes())
    assert [
        item["record_id"] for item in record["findings"]["items"] if item["kind"] == "term_recreated"
    ] == [NEW_YEAR]

    # Without --against, the term is new: its old one would be left behind in Canvas.
    run("build", str(tonight), "--out", str(tmp_path / "unaware"), "-q")
    assert "2026-08-17_2027-06-18_year" in (tmp_path / "unaware" / "csv" / files.TERMS).read_text()


def test_against_a_directory_that_is_not_a_whole_build_is_exit_2(tiny_snapshot: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    code, _, stderr = run("build", str(tiny_snapshot), "--out", str(out), "--against", str(tmp_path / "gone"))
    assert (code, stderr) == (
        2,
        f"error: --against: {tmp_path / 'gone'}: no such build directory; run `clever2sis build` first\n",
    )
    (tmp_path / "half").mkdir()
    code, _, stderr = run("build", str(tiny_snapshot), "--out", str(out), "--against", str(tmp_path / "half"))
    assert (code, stderr) == (
        2,
        f"error: --against: {tmp_path / 'half' / 'build.json'}: missing; {tmp_path / 'half'} is not a complete "
        "build\n",
    )
    assert not out.exists()


def test_a_course_id_that_spans_schools_is_exit_4_and_writes_nothing(
    snapshot_factory, tmp_path: Path
) -> None:
    from tests.conftest import SCHOOL_B, tiny_district

    records = tiny_district()
    records["sections"].append(dict(records["sections"][0], id="5f00000000000000000000e4", school=SCHOOL_B))
    config = tmp_path / "c.toml"
    config.write_text('[build]\ncourse_structure = "course"\n[ids]\ncourse_id = "{{ course.id }}"\n')
    out = tmp_path / "b"
    code, _, stderr = run("build", str(snapshot_factory(records)), "--out", str(out), "--config", str(config))
    assert (code, stderr.splitlines()[-1]) == (
        4,
        "error: ids.course_id = '{{ course.id }}' puts sections of several schools in one Canvas course "
        "('5f00000000000000000000d1': schools 5f00000000000000000000a1, 5f00000000000000000000b1), and a Canvas "
        "course belongs to one school's account; add {{ school.id }} to ids.course_id",
    )
    assert not out.exists()


def test_a_zip_canvas_would_refuse_to_extract_exits_4_and_keeps_the_previous_build(
    tiny_snapshot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Canvas extracts at most 100 times the zip's size (CanvasUnzip.default_limits); no roster within the
    length limits reaches it, so the ratio is lowered for the tiny district's build to trip it."""
    from clever2sis.sis import build as build_module

    out = tmp_path / "b"
    run("build", str(tiny_snapshot), "--out", str(out), "-q")
    before = (out / "sis_import.zip").read_bytes()
    monkeypatch.setattr(build_module, "CANVAS_UNZIP_MAX_RATIO", 1)
    code, stdout, stderr = run("build", str(tiny_snapshot), "--out", str(out), "--force", "-q")
    assert (code, stdout) == (4, "")
    assert re.fullmatch(
        r"error: sis_import\.zip would expand to [\d,]+ bytes, more than 1 times its [\d,]+ bytes, and Canvas "
        r"refuses to extract such a zip: \w+\.csv expands \d+ times \([\d,]+ bytes from [\d,]+\); look in it for "
        r"a value repeated over and over\n",
        stderr,
    )
    assert (out / "sis_import.zip").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [".b.lock"]  # no partial build
