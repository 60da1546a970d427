"""Tokens through the CLI: a token that is not one printable line is refused before any request and quoted
nowhere; whatever a server echoes back is redacted in every message, progress line and traceback."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner, Result

from clever2sis.cli import main
from clever2sis.cli.common import CanvasRuntime
from tests.test_sis_import import FakeTime

CLEVER_TOKEN = "0123456789abcdef0123456789abcdef01234567"
CANVAS_TOKEN = "7~" + "AbCdEfGhJkMnPqRsTuVwXyZ0123456789" * 2
CANVAS_BASE = "https://canvas.invalid"
PASSWD_LIKE = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "clever2sis:x:999:999:clever2sis service:/var/lib/clever2sis:/usr/sbin/nologin\n"
)


def lines_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# --- a refused token: exit 2 (Clever) or 30 (Canvas), one line, no byte of it ---------------------------


def pull(tmp_path: Path, env: Mapping[str, str], *args: str) -> Result:
    # An address nothing listens on: a refused token must stop the command before any request.
    environ = {"CLEVER_TOKEN": "", "CLEVER_API_BASE": "http://127.0.0.1:9", **env}
    return CliRunner().invoke(main, ["pull", "--out", str(tmp_path / "snap"), *args], env=environ)


def test_a_two_line_token_file_is_refused_before_any_request(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"{CLEVER_TOKEN}\nSECONDLINE\n")
    result = pull(tmp_path, {"CLEVER_TOKEN_FILE": str(token_file)})
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: CLEVER_TOKEN_FILE file {token_file} has 2 lines; a token is one line: "
        "put the district-app token alone in it\n"
    )
    assert result.stdout == ""
    assert not (tmp_path / "snap").exists()


@pytest.mark.parametrize("which", ["synthetic", "/etc/passwd"])
def test_a_password_file_as_token_file_prints_none_of_it(tmp_path: Path, which: str) -> None:
    if which == "synthetic":
        token_file = tmp_path / "passwd"
        token_file.write_text(PASSWD_LIKE)
    else:
        token_file = Path(which)
        if not token_file.is_file():
            pytest.skip("no /etc/passwd on this machine")
    content = token_file.read_bytes().decode("latin-1")
    result = pull(tmp_path, {"CLEVER_TOKEN_FILE": str(token_file)})
    assert result.exit_code == 2
    assert lines_of(result.output) == [result.stderr.rstrip("\n")]
    prefix = f"error: CLEVER_TOKEN_FILE file {token_file} "
    assert result.stderr.startswith(prefix)
    said = result.stderr.removeprefix(prefix)
    assert said in (
        f"has {len(lines_of(content))} lines; a token is one line: put the district-app token alone in it\n",
        "is larger than 4096 bytes: put the district-app token alone in it\n",
    )
    for line in lines_of(content):
        assert line not in result.output
        assert not [field for field in line.split(":") if len(field) > 3 and field in said]


def test_a_token_file_with_a_non_utf8_byte_says_where_it_is(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_bytes(b"\xef\xbb\xbf" + CLEVER_TOKEN.encode() + b"\n")  # a byte-order mark
    result = pull(tmp_path, {"CLEVER_TOKEN_FILE": str(token_file)})
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: CLEVER_TOKEN_FILE file {token_file} contains a non-printable or non-ASCII character "
        "(character 1 of 43): put the district-app token alone in it\n"
    )


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        (
            CLEVER_TOKEN[:20] + "é" + CLEVER_TOKEN[20:],
            "contains a non-printable or non-ASCII character (character 21 of 41)",
        ),
        (
            CLEVER_TOKEN[:20] + "\x1b" + CLEVER_TOKEN[20:],
            "contains a non-printable or non-ASCII character (character 21 of 41)",
        ),
        ("Bearer " + CLEVER_TOKEN, "contains a space (character 7 of 47); a token has none, give it alone"),
        ("t", "is shorter than 32 characters (it has 1), too short to redact safely"),
        (CLEVER_TOKEN[:31], "is shorter than 32 characters (it has 31), too short to redact safely"),
    ],
)
def test_a_bad_clever_token_is_a_usage_error_that_quotes_none_of_it(
    tmp_path: Path, token: str, problem: str
) -> None:
    result = pull(tmp_path, {"CLEVER_TOKEN": token})
    assert result.exit_code == 2
    assert (
        result.stderr == f"error: CLEVER_TOKEN {problem}: set CLEVER_TOKEN to the district-app token alone\n"
    )
    assert CLEVER_TOKEN[:8] not in result.output


def canvas(
    args: list[str], handler: Callable[[httpx.Request], httpx.Response] | None = None, **env: str
) -> Result:
    environ = {"CANVAS_BASE_URL": CANVAS_BASE, "CANVAS_TOKEN": CANVAS_TOKEN, "CANVAS_ACCOUNT_ID": "1", **env}
    time = FakeTime()
    transport = httpx.MockTransport(handler or refuse_every_request)
    runtime = CanvasRuntime(environ=environ, transport=transport, sleep=time.sleep, clock=time.clock)
    return CliRunner().invoke(main, args, obj=runtime, catch_exceptions=False)


def refuse_every_request(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request should be sent, got {request.method} {request.url}")


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("t", "is shorter than 32 characters (it has 1), too short to redact safely"),
        (f"{CANVAS_TOKEN}\n{CANVAS_TOKEN}", "has 2 lines; a token is one line"),
        (
            CANVAS_TOKEN[:10] + "\u00a0" + CANVAS_TOKEN[10:],
            "contains a non-printable or non-ASCII character (character 11 of 69)",
        ),
    ],
)
@pytest.mark.parametrize("command", [["status", "101"], ["list"], ["abort", "101"]])
def test_a_bad_canvas_token_exits_30_before_any_request(command: list[str], token: str, problem: str) -> None:
    result = canvas(command, CANVAS_TOKEN=token)
    assert result.exit_code == 30
    assert result.stderr == (
        f"error: CANVAS_TOKEN {problem}: set CANVAS_TOKEN to a Canvas access token "
        "(profile 'env' reads it from there)\n"
    )
    assert CANVAS_TOKEN[:10] not in result.output


def test_sync_refuses_a_two_line_token_file_before_anything_starts(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"{CLEVER_TOKEN}\nroot:x:0:0:root:/root:/bin/bash\n")
    config = tmp_path / "clever2sis.toml"
    config.write_text(
        f'[profiles.nightly]\nbase_url = "{CANVAS_BASE}"\naccount_id = 1\ntoken_env = "CANVAS_NIGHTLY"\n'
        "require_approval = false\n"
        '[sync]\nruns_dir = "runs"\n'
    )
    env = {"CLEVER_TOKEN_FILE": str(token_file), "CANVAS_NIGHTLY": CANVAS_TOKEN}
    result = canvas(["sync", "--profile", "nightly", "--config", str(config)], **env)
    assert result.exit_code == 2
    message = f"CLEVER_TOKEN_FILE file {token_file} has 2 lines; a token is one line: put the district-app token alone in it"
    assert result.stderr == f"error: {message}\n"
    summary = orjson.loads(result.stdout)
    assert (summary["outcome"], summary["exit_code"], summary["message"]) == ("not_started", 2, message)
    for line in token_file.read_text().splitlines():
        assert line not in result.output
    assert not (tmp_path / "runs").exists()


# --- what a server echoes back ------------------------------------------------------------------------


def echo(
    token: str, status: int, *, pass_importing: bool = False
) -> Callable[[httpx.Request], httpx.Response]:
    """A Canvas that answers ``status`` with a body quoting the request's Authorization header, its token
    replaced by ``token`` (the same token in another case or encoding)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if pass_importing and (
            request.url.path.endswith("/importing") or "workflow_state[]" in request.url.params
        ):
            return httpx.Response(200, json={"sis_imports": []})
        header = request.headers["Authorization"].replace(CANVAS_TOKEN, token)
        return httpx.Response(status, json={"errors": [{"message": f"bad request: Authorization: {header}"}]})

    return handler


ECHOED = {
    "as sent": CANVAS_TOKEN,
    "upper": CANVAS_TOKEN.upper(),
    "lower": CANVAS_TOKEN.lower(),
    "url-encoded": CANVAS_TOKEN.replace("~", "%7e"),
}
DETAIL = "bad request: Authorization: Bearer [redacted]"
IMPORTS = f"{CANVAS_BASE}/api/v1/accounts/1/sis_imports"


@pytest.mark.parametrize("form", sorted(ECHOED))
@pytest.mark.parametrize(
    ("args", "status", "exit_code", "error"),
    [
        (
            ["upload", "{build}"],
            401,
            31,
            f"{CANVAS_BASE} rejected the token in CANVAS_TOKEN (HTTP 401: {DETAIL}): check that it is current "
            "and that its user may import SIS data on this account",
        ),
        (
            ["upload", "{build}"],
            500,
            38,
            f"POST {IMPORTS}: HTTP 500 ({DETAIL}) after the request was sent; it may have reached Canvas; the "
            f"account's imports could not be listed either (GET {IMPORTS}: HTTP 500: {DETAIL}; gave up after 6 "
            "attempts)",
        ),
        (["status", "101"], 500, 38, f"GET {IMPORTS}/101: HTTP 500: {DETAIL}; gave up after 6 attempts"),
        (["list"], 500, 38, f"GET {IMPORTS}: HTTP 500: {DETAIL}; gave up after 6 attempts"),
        (
            ["status", "101"],
            401,
            31,
            f"{CANVAS_BASE} rejected the token in CANVAS_TOKEN (HTTP 401: {DETAIL})",
        ),
        (["list"], 403, 33, f"GET {IMPORTS}: permission denied (HTTP 403): {DETAIL}"),
    ],
)
def test_what_canvas_echoes_back_is_redacted(
    build_dir: Path, args: list[str], status: int, exit_code: int, error: str, form: str
) -> None:
    argv = [arg.format(build=build_dir) for arg in args]
    result = canvas(argv, echo(ECHOED[form], status, pass_importing=True))
    assert result.exit_code == exit_code, result.output
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"error: {error}"), last
    retries = [line for line in result.stderr.splitlines() if "retrying in" in line]
    # A POST is never retried; after a doubtful one, the list of imports the upload looks in is.
    assert len(retries) == (5 if exit_code == 38 else 0)
    assert all(DETAIL in line for line in retries), retries
    for text in (result.output.lower(), *(path.read_text().lower() for path in build_dir.rglob("*.json"))):
        assert CANVAS_TOKEN.lower() not in text
        assert CANVAS_TOKEN.lower().replace("~", "%7e") not in text
        assert CANVAS_TOKEN[2:12].lower() not in text


def test_verbose_shows_the_traceback_redacted(build_dir: Path) -> None:
    result = canvas(
        ["upload", str(build_dir), "--verbose"], echo(CANVAS_TOKEN.upper(), 500, pass_importing=True)
    )
    assert result.exit_code == 38
    assert "\nTraceback (most recent call last):\n" in result.stderr
    lost = (
        f"POST {IMPORTS}: HTTP 500 ({DETAIL}) after the request was sent; it may have reached Canvas; the "
        "account's imports could not be listed either"
    )
    assert f"clever2sis.errors.ImportNotConfirmedError: {lost}" in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"error: {lost}")
    assert CANVAS_TOKEN.lower() not in result.stderr.lower()


def test_a_bug_that_quotes_the_token_prints_its_traceback_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise RuntimeError(
            f"unexpected: {request.headers['Authorization']!r} / {request.headers['Authorization'].lower()}"
        )

    result = canvas(["status", "101"], handler)
    assert result.exit_code == 1
    assert result.stderr.startswith("Traceback (most recent call last):\n")
    assert "RuntimeError: unexpected: 'Bearer [redacted]' / bearer [redacted]\n" in result.stderr
    assert result.stderr.endswith(
        "error: unexpected RuntimeError (a bug in clever2sis; please report it with the traceback above)\n"
    )
    assert CANVAS_TOKEN.lower() not in result.stderr.lower()
