"""The Canvas commands end to end, replayed from cassettes recorded against tests/canvas_server.py."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Mapping
from pathlib import Path

import click
import httpx
import orjson
import pytest
from click.testing import CliRunner, Result

from clever2sis.build_dir import BuildDir
from clever2sis.canvas.sis_import import ImportOptions
from clever2sis.cli import main
from clever2sis.cli.canvas import CANVAS_COMMANDS, upload_command
from clever2sis.cli.common import CanvasRuntime
from tests.canvas_server import ROOT_ACCOUNT, SIS_DISABLED_ACCOUNT, SUB_ACCOUNT, TEST_TOKEN, FakeCanvas
from tests.conftest import CASSETTES, canvas_cassette, make_build_dir
from tests.test_sis_import import FakeTime


def run(args: list[str], base_url: str = "https://canvas.invalid", **env: str) -> Result:
    environ: Mapping[str, str] = {
        "CANVAS_BASE_URL": base_url,
        "CANVAS_TOKEN": TEST_TOKEN,
        "CANVAS_ACCOUNT_ID": ROOT_ACCOUNT,
        **env,
    }
    time = FakeTime()
    runtime = CanvasRuntime(environ=environ, sleep=time.sleep, clock=time.clock, attachment_wait_s=30)
    return CliRunner().invoke(main, args, obj=runtime, catch_exceptions=False)


def seeded(count: int, state: str = "imported", *, running: bool = False) -> FakeCanvas:
    canvas = FakeCanvas()
    canvas.seed(count, state)
    if running:
        canvas.running = [canvas.next_id - 1]
    return canvas


# --- upload ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("flags", "exit_code"), [([], 20), (["--messages-ok"], 0)])
def test_upload_wait_follows_the_import_and_saves_everything(
    build_dir: Path, flags: list[str], exit_code: int
) -> None:
    name = "upload_wait_messages" + ("_ok" if flags else "")
    with canvas_cassette(name) as cassette:
        result = run(["upload", str(build_dir), "--wait", *flags], cassette.base_url)
    assert result.exit_code == exit_code, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "sis_import 101 created on env"
    assert "SIS import 101: imported_with_messages (progress 100%)" in lines
    assert "rows imported: users 3, enrollments 4" in lines
    assert "warnings: 3, failures: 0" in lines
    assert any(line.startswith("  warning: users.csv: An existing Canvas user") for line in lines)
    if exit_code:
        assert "error: SIS import 101 ended imported_with_messages" in result.stderr

    results = build_dir / "imports" / "env" / "101"
    created = orjson.loads((results / "created.json").read_bytes())
    assert created["sis_import"]["workflow_state"] == "created"
    assert created["form_fields"] == [["import_type", "instructure_csv"]]
    latest = orjson.loads((build_dir / "imports" / "env" / "latest.json").read_bytes())
    assert latest["sis_import_id"] == 101
    final = orjson.loads((results / "sis_import.json").read_bytes())
    assert final["workflow_state"] == "imported_with_messages"
    assert "errors_attachment" in final
    pages = sorted((results / "sis_import_errors").iterdir())
    assert [p.name for p in pages] == ["page-0001.json", "page-0002.json"]
    rows = [row for p in pages for row in orjson.loads(p.read_bytes())["sis_import_errors"]]
    assert len(rows) == 3
    csv = (results / "errors_attachment.csv").read_text()
    assert csv.splitlines()[0] == "sis_import_id,file,message,row"
    assert len(csv.splitlines()) == 4


def test_upload_without_wait_prints_the_id_and_records_it(build_dir: Path) -> None:
    with canvas_cassette("upload_no_wait") as cassette:
        result = run(["upload", str(build_dir), "--skip-deletes"], cassette.base_url)
    assert result.exit_code == 0, result.output
    assert result.stdout == "sis_import 101 created on env\n"
    assert "clever2sis status 101" in result.stderr
    created = orjson.loads((build_dir / "imports/env/101/created.json").read_bytes())
    assert created["form_fields"] == [["import_type", "instructure_csv"], ["skip_deletes", "true"]]
    assert created["sis_import"]["skip_deletes"] is True


def test_upload_stops_when_an_import_is_running(build_dir: Path) -> None:
    with canvas_cassette("upload_busy", seeded(1, "importing", running=True)) as cassette:
        result = run(["upload", str(build_dir)], cassette.base_url)
    assert result.exit_code == 37
    assert "error: SIS import 101 (importing) is already running" in result.stderr
    assert "--queue" in result.stderr
    assert not (build_dir / "imports").exists()


def test_upload_queue_posts_behind_a_running_import(build_dir: Path) -> None:
    with canvas_cassette("upload_queue", seeded(1, "importing", running=True)) as cassette:
        result = run(["upload", str(build_dir), "--queue"], cassette.base_url)
    assert result.exit_code == 0, result.output
    assert result.stdout == "sis_import 102 created on env\n"
    assert "will queue behind it" in result.stderr


@pytest.mark.parametrize(
    ("name", "env", "args", "exit_code", "message"),
    [
        (
            "error_bad_token",
            {"CANVAS_TOKEN": "wrong-token-0123456789-not-the-one"},
            [],
            31,
            "rejected the token in CANVAS_TOKEN",
        ),
        ("error_sub_account", {"CANVAS_ACCOUNT_ID": SUB_ACCOUNT}, [], 32, "not a root account"),
        ("error_sis_disabled", {"CANVAS_ACCOUNT_ID": SIS_DISABLED_ACCOUNT}, [], 34, "not enabled"),
        (
            "error_unknown_term",
            {},
            ["--batch-mode", "--batch-mode-term-id", "sis_term_id:NOPE", "--change-threshold", "10"],
            35,
            "cannot find batch_mode_term_id 'sis_term_id:NOPE'",
        ),
    ],
)
def test_upload_errors_a_user_can_act_on(
    build_dir: Path, name: str, env: dict[str, str], args: list[str], exit_code: int, message: str
) -> None:
    with canvas_cassette(name) as cassette:
        result = run(["upload", str(build_dir), *args], cassette.base_url, **env)
    assert result.exit_code == exit_code, result.output
    assert message in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        line for line in result.stderr.splitlines() if not line.startswith("[")
    ]
    assert "wrong-token-0123456789-not-the-one" not in result.output
    assert TEST_TOKEN not in result.output


@pytest.mark.parametrize(
    ("env", "exit_code", "message"),
    [
        ({"CANVAS_TOKEN": ""}, 30, "set CANVAS_TOKEN"),
        ({"CANVAS_BASE_URL": ""}, 30, "set CANVAS_BASE_URL"),
        ({"CANVAS_ACCOUNT_ID": ""}, 30, "set CANVAS_ACCOUNT_ID"),
        ({"CANVAS_BASE_URL": "http://canvas.example.edu"}, 2, "use https://"),
    ],
)
def test_missing_settings_fail_before_any_request(
    build_dir: Path, env: dict[str, str], exit_code: int, message: str
) -> None:
    result = run(["upload", str(build_dir)], **env)
    assert result.exit_code == exit_code
    assert message in result.stderr


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (httpx.Response(500, text="Internal Server Error"), "HTTP 500 (Internal Server Error)"),
        (httpx.RemoteProtocolError("closed"), "network error (RemoteProtocolError)"),
    ],
)
def test_a_5xx_or_a_lost_answer_to_the_post_exits_38_and_says_the_import_may_exist(
    build_dir: Path, answer: httpx.Response | Exception, problem: str
) -> None:
    posts: list[httpx.Request] = []

    def canvas(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":  # nothing running or queued, and no import made by the POST
            return httpx.Response(200, json={"sis_imports": []})
        posts.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    time = FakeTime()
    runtime = CanvasRuntime(
        environ={
            "CANVAS_BASE_URL": "https://canvas.invalid",
            "CANVAS_TOKEN": TEST_TOKEN,
            "CANVAS_ACCOUNT_ID": "1",
        },
        transport=httpx.MockTransport(canvas),
        sleep=time.sleep,
        clock=time.clock,
    )
    result = CliRunner().invoke(main, ["upload", str(build_dir), "-q"], obj=runtime, catch_exceptions=False)
    assert result.exit_code == 38
    (intent,) = BuildDir(build_dir).pending_intents("env")
    assert result.stderr == (
        f"error: POST https://canvas.invalid/api/v1/accounts/1/sis_imports: {problem} after the request "
        f"was sent; it may have reached Canvas; no import matches it yet. The upload is recorded in "
        f"{intent.intent}: the next upload or sync of this build looks for its import again before posting "
        "anything (`clever2sis list` shows the account's imports)\n"
    )
    assert len(posts) == 1
    assert time.sleeps == []
    assert not (build_dir / "imports/env/latest.json").exists()


def test_missing_zip(build_dir: Path) -> None:
    (build_dir / "sis_import.zip").unlink()
    result = run(["upload", str(build_dir)])
    assert result.exit_code == 36
    assert result.stderr == (
        f"error: {build_dir / 'sis_import.zip'}: missing; {build_dir} is not a complete build\n"
    )


def test_changed_zip_is_refused(build_dir: Path) -> None:
    (build_dir / "sis_import.zip").write_bytes(b"PK not the zip that was built")
    result = run(["upload", str(build_dir)])
    assert result.exit_code == 36
    assert "does not match build.json" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-mode", "--batch-mode-term-id", "7"], "set change_threshold"),
        (["--add-sis-stickiness"], "ignored by Canvas without override_sis_stickiness"),
    ],
)
def test_bad_option_combinations_are_usage_errors(build_dir: Path, args: list[str], message: str) -> None:
    result = run(["upload", str(build_dir), *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_a_dry_run_without_a_token_exits_30_like_the_upload_would(build_dir: Path) -> None:
    result = run(["upload", str(build_dir), "--dry-run"], CANVAS_TOKEN="")
    assert result.exit_code == 30
    assert result.stdout == ""
    assert result.stderr.startswith("error: set CANVAS_TOKEN to a Canvas access token")


def test_a_dry_run_says_what_it_did_not_check(build_dir: Path) -> None:
    result = run(["upload", str(build_dir), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "dry run: nothing was sent to Canvas, so the token, the account and the imports running on it "
        "were not checked (clever2sis doctor --profile env checks the first two)\n"
    )


def test_dry_run_prints_the_fields(build_dir: Path) -> None:
    args = ["--batch-mode", "--batch-mode-term-id", "7", "--change-threshold", "10", "--dry-run"]
    result = run(["upload", str(build_dir), *args])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        "  import_type=instructure_csv",
        "  change_threshold=10",
        "  batch_mode=true",
        "  batch_mode_term_id=7",
    ]


# The import option flags of `upload` as they were written by hand before they were made from ImportOptions:
# (name, flags, off flags, help, metavar, choices, type).
IMPORT_FLAGS = [
    (
        "diffing_data_set_identifier",
        ["--diffing-data-set-identifier"],
        [],
        "Diff against earlier imports of ID.",
        "ID",
        None,
        "text",
    ),
    (
        "diffing_remaster_data_set",
        ["--diffing-remaster-data-set"],
        ["--no-diffing-remaster-data-set"],
        "Apply the whole file and restart the diff chain.",
        None,
        None,
        "boolean",
    ),
    (
        "diffing_drop_status",
        ["--diffing-drop-status"],
        [],
        "Status for enrollments missing from a diffed import.",
        None,
        ("deleted", "completed", "inactive", "deleted_last_completed"),
        "choice",
    ),
    (
        "diffing_user_remove_status",
        ["--diffing-user-remove-status"],
        [],
        "Status for users missing from a diffed import.",
        None,
        ("deleted", "suspended"),
        "choice",
    ),
    (
        "change_threshold",
        ["--change-threshold"],
        [],
        "Stop batch cleanup / diffing beyond this percentage of changes (1-100).",
        "PERCENT",
        None,
        "integer",
    ),
    (
        "diff_row_count_threshold",
        ["--diff-row-count-threshold"],
        [],
        "Apply the whole file when the diff has more rows than this.",
        "ROWS",
        None,
        "integer",
    ),
    (
        "batch_mode",
        ["--batch-mode"],
        ["--no-batch-mode"],
        "Delete what this import leaves out of the term (needs --change-threshold).",
        None,
        None,
        "boolean",
    ),
    (
        "batch_mode_term_id",
        ["--batch-mode-term-id"],
        [],
        "The term for batch mode (or sis_term_id:X).",
        "TERM",
        None,
        "text",
    ),
    (
        "multi_term_batch_mode",
        ["--multi-term-batch-mode"],
        ["--no-multi-term-batch-mode"],
        "Batch mode over every term in terms.csv (with --batch-mode).",
        None,
        None,
        "boolean",
    ),
    (
        "batch_mode_enrollment_drop_status",
        ["--batch-mode-enrollment-drop-status"],
        [],
        "Status for enrollments batch mode removes.",
        None,
        ("deleted", "completed", "inactive"),
        "choice",
    ),
    (
        "skip_deletes",
        ["--skip-deletes"],
        ["--no-skip-deletes"],
        "Ignore rows whose status is deleted.",
        None,
        None,
        "boolean",
    ),
    (
        "override_sis_stickiness",
        ["--override-sis-stickiness"],
        ["--no-override-sis-stickiness"],
        "Overwrite fields changed in the Canvas UI.",
        None,
        None,
        "boolean",
    ),
    (
        "add_sis_stickiness",
        ["--add-sis-stickiness"],
        ["--no-add-sis-stickiness"],
        "Make the imported values sticky (with --override-sis-stickiness).",
        None,
        None,
        "boolean",
    ),
    (
        "clear_sis_stickiness",
        ["--clear-sis-stickiness"],
        ["--no-clear-sis-stickiness"],
        "Clear stickiness on the fields touched (with --override-sis-stickiness).",
        None,
        None,
        "boolean",
    ),
    (
        "update_sis_id_if_login_claimed",
        ["--update-sis-id-if-login-claimed"],
        ["--no-update-sis-id-if-login-claimed"],
        "Move a claimed login's SIS id instead of skipping the row.",
        None,
        None,
        "boolean",
    ),
]


def test_the_import_flags_made_from_import_options_are_the_ones_written_before() -> None:
    options = [p for p in upload_command.params if isinstance(p, click.Option)]
    generated = [
        (p.name, p.opts, p.secondary_opts, p.help, p.metavar, getattr(p.type, "choices", None), p.type.name)
        for p in options
        if p.name in ImportOptions.names()
    ]
    assert [(*row[:5], tuple(row[5]) if row[5] else None, row[6]) for row in generated] == IMPORT_FLAGS
    assert [p.name for p in options][-len(IMPORT_FLAGS) :] == [row[0] for row in IMPORT_FLAGS]
    assert all(p.default is None for p in options if p.name in ImportOptions.names() and p.is_bool_flag)


def test_every_import_option_flag_reaches_the_form(build_dir: Path) -> None:
    args = [
        "--diffing-data-set-identifier", "d1", "--diffing-remaster-data-set", "--diffing-drop-status", "completed",
        "--diffing-user-remove-status", "deleted", "--change-threshold", "7", "--diff-row-count-threshold", "900",
        "--skip-deletes", "--override-sis-stickiness", "--clear-sis-stickiness", "--update-sis-id-if-login-claimed",
        "--dry-run",
    ]  # fmt: skip
    result = run(["upload", str(build_dir), *args])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        "  import_type=instructure_csv",
        "  diffing_data_set_identifier=d1",
        "  diffing_remaster_data_set=true",
        "  diffing_drop_status=completed",
        "  diffing_user_remove_status=deleted",
        "  change_threshold=7",
        "  diff_row_count_threshold=900",
        "  skip_deletes=true",
        "  override_sis_stickiness=true",
        "  clear_sis_stickiness=true",
        "  update_sis_id_if_login_claimed=true",
    ]
    result = run(["upload", str(build_dir), "--diffing-drop-status", "gone", "--dry-run"])
    assert result.exit_code == 2
    assert (
        "'gone' is not one of 'deleted', 'completed', 'inactive', 'deleted_last_completed'" in result.stderr
    )


def test_config_profile_and_upload_options(build_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "clever2sis.toml"
    config.write_text(
        '[profiles.test]\nbase_url = "https://district.test.instructure.com"\ntoken_env = "T_TOKEN"\n'
        'account_id = "self"\n\n[upload]\nprofile = "test"\nskip_deletes = true\n'
    )
    result = run(["upload", str(build_dir), "--config", str(config), "--dry-run"], T_TOKEN=TEST_TOKEN)
    assert result.exit_code == 0, result.output
    assert "https://district.test.instructure.com account self" in result.stdout
    assert "  skip_deletes=true" in result.stdout
    result = run(
        ["upload", str(build_dir), "--config", str(config), "--no-skip-deletes", "--dry-run"],
        T_TOKEN=TEST_TOKEN,
    )
    assert result.exit_code == 0, result.output
    assert "skip_deletes" not in result.stdout


# --- managing imports ------------------------------------------------------------------------------------


def test_status_prints_json() -> None:
    with canvas_cassette("status", seeded(1)) as cassette:
        result = run(["status", "101"], cassette.base_url)
    assert result.exit_code == 0, result.output
    body = orjson.loads(result.stdout)
    assert body["id"] == 101
    assert body["workflow_state"] == "imported"


def test_list_pages_through_link_headers() -> None:
    with canvas_cassette("list", seeded(5)) as cassette:
        result = run(["list", "--limit", "4"], cassette.base_url)
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header == "id\tworkflow_state\tprogress\tcreated_at\tended_at"
    assert [line.split("\t")[0] for line in rows] == ["105", "104", "103", "102"]
    assert rows[0] == "105\timported\t100%\t2025-01-06T10:00:00Z\t2025-01-06T10:03:00Z"


def test_abort_running_then_finished() -> None:
    with canvas_cassette("abort", seeded(1, "importing", running=True)) as cassette:
        first = run(["abort", "101"], cassette.base_url)
        second = run(["abort", "101"], cassette.base_url)
    assert first.exit_code == 0, first.output
    assert first.stdout == "sis_import 101 aborted\n"
    assert second.exit_code == 39
    assert "not found" in second.stderr


def test_restore_follows_the_progress() -> None:
    with canvas_cassette("restore", seeded(1)) as cassette:
        result = run(["restore", "101", "--undelete-only"], cassette.base_url)
    assert result.exit_code == 0, result.output
    assert result.stdout == "restore completed; sis_import 101 is partially_restored\n"


def test_restore_refuses_both_filters() -> None:
    result = run(["restore", "101", "--undelete-only", "--unconclude-only"])
    assert result.exit_code == 2


# --- hygiene ---------------------------------------------------------------------------------------------


def test_cassettes_hold_no_token() -> None:
    cassettes = sorted(CASSETTES.glob("*.yaml"))
    assert cassettes, "run the tests once to record the cassettes"
    for path in cassettes:
        text = path.read_text()
        assert TEST_TOKEN not in text, path
        assert "authorization" not in text.lower(), path


def test_saved_results_hold_no_token(build_dir: Path) -> None:
    with canvas_cassette("upload_wait_messages_ok") as cassette:
        run(["upload", str(build_dir), "--wait", "--messages-ok"], cassette.base_url)
    files = [p for p in (build_dir / "imports").rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert TEST_TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("command", [c.name for c in CANVAS_COMMANDS])
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_a_diffed_upload_of_observer_links_warns_once(tmp_path: Path) -> None:
    users = (
        b"user_id,login_id,first_name,last_name,email,status\nP1,p1,Pat,Doe,,active\nS1,s1,Sam,Doe,,active\n"
    )
    links = b"observer_id,student_id,status\nP1,S1,active\n"
    build = tmp_path / "build"
    build.mkdir()
    with zipfile.ZipFile(build / "sis_import.zip", "w") as archive:
        archive.writestr("users.csv", users)
        archive.writestr("user_observers.csv", links)
    digest = hashlib.sha256((build / "sis_import.zip").read_bytes()).hexdigest()
    (build / "build.json").write_bytes(orjson.dumps({"zip": {"sha256": digest}}))
    diffed = run(["upload", str(build), "--diffing-data-set-identifier", "district", "--dry-run"])
    plain = run(["upload", str(build), "--dry-run"])
    without = run(
        [
            "upload",
            str(make_build_dir(tmp_path / "no-links")),
            "--diffing-data-set-identifier",
            "d",
            "--dry-run",
        ]
    )

    assert [diffed.exit_code, plain.exit_code, without.exit_code] == [0, 0, 0]
    assert diffed.stderr.count("warning:") == 1
    assert diffed.stderr.startswith(
        f"warning: {build / 'sis_import.zip'} holds user_observers.csv and the upload is diffed "
        "(diffing_data_set_identifier): Canvas pairs user_observers.csv rows by observer_id alone"
    )
    assert "clever2sis sync" in diffed.stderr
    assert "warning" not in plain.stderr
    assert "warning" not in without.stderr
