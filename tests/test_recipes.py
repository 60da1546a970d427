"""The scheduling recipes of docs/sync.md, tested as written: the crontab line is run with ``sh -c`` (only the
paths changed to this machine's; the README shows the same line), the systemd units pass
``systemd-analyze verify``, and the CronJob parses."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from tests import documentation
from tests.canvas_server import TEST_TOKEN, CanvasTestServer, FakeCanvas
from tests.clever_server import CleverTestServer
from tests.nightly_district import NightlyDistrict
from tests.webhook_server import WEBHOOK_PATH, WebhookReceiver

CLEVER_TOKEN = "0123456789abcdef0123456789abcdef01234567"
CONFIG_DIR = "/etc/clever2sis"
BINARY = "/opt/clever2sis/bin/clever2sis"
LOG = "/var/log/clever2sis/sync.jsonl"
RUN_TIMEOUT_S = 300
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def scheduling_blocks() -> list[tuple[str, str]]:
    """(info string, text) of each fenced block of docs/sync.md's "Scheduling it" section, in order."""
    section = documentation.section(documentation.page("sync"), "Scheduling it")
    return [(match.group(1), match.group(2)) for match in FENCE.finditer(section)]


def crontab_command() -> str:
    """The command of the recipe's crontab line (after its five schedule fields)."""
    return crontab_line().split(None, 5)[5]


def crontab_line() -> str:
    (block,) = [text for info, text in scheduling_blocks() if "# m h dom mon dow" in text]
    (line,) = [line for line in block.splitlines() if line and not line.startswith("#")]
    return line


def test_the_readme_shows_the_crontab_line_of_the_recipe() -> None:
    readme = documentation.README.read_text(encoding="utf-8")
    shown = [line for line in readme.splitlines() if re.match(r"^[0-9*/,-]+ [0-9*/,-]+ .* sync ", line)]
    assert shown == [crontab_line()]


def test_the_crontab_line_runs_a_sync_as_written(tmp_path: Path) -> None:
    command = crontab_command()
    for path in (CONFIG_DIR, BINARY, LOG):
        assert path in command
    config_dir, log = tmp_path / "etc", tmp_path / "log" / "sync.jsonl"
    config_dir.mkdir()
    log.parent.mkdir()
    binary = Path(sys.executable).parent / "clever2sis"
    assert binary.is_file(), "the package's console script, installed by make install"
    command = command.replace(CONFIG_DIR, str(config_dir)).replace(BINARY, str(binary)).replace(LOG, str(log))
    night = NightlyDistrict(tmp_path / "district").night(0)
    hook_path = WEBHOOK_PATH + "?channel=rostering&x=$HOME%20y"  # '&' and '$' must arrive as written
    with (
        CleverTestServer(night.served(), token=CLEVER_TOKEN) as clever,
        CanvasTestServer(FakeCanvas(script=[("imported", 100)])) as canvas,
        WebhookReceiver() as hook,
    ):
        (config_dir / "tokens.env").write_text(
            f"CLEVER_TOKEN='{CLEVER_TOKEN}'\n"
            f"CANVAS_PROD_TOKEN='{TEST_TOKEN}'\n"
            f"CLEVER_API_BASE='{clever.url}'\n"
            f"CLEVER2SIS_WEBHOOK_URL='{hook.url.removesuffix(WEBHOOK_PATH)}{hook_path}'\n",
            encoding="utf-8",
        )
        (config_dir / "tokens.env").chmod(0o600)
        (config_dir / "clever2sis.toml").write_text(
            f'[profiles.production]\nbase_url = "{canvas.base_url}"\naccount_id = 1\n'
            'token_env = "CANVAS_PROD_TOKEN"\nrequire_approval = false\n'
            '[sync]\nruns_dir = "runs"\n'
            '[notify]\ndaily_summary = true\n[notify.webhook]\nurl_env = "CLEVER2SIS_WEBHOOK_URL"\n',
            encoding="utf-8",
        )
        done = subprocess.run(
            ["sh", "-c", command],
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHELL": "/bin/sh"},  # cron's few variables
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # the JSON line went to the log
    (line,) = log.read_text().splitlines()
    summary = orjson.loads(line)
    assert (summary["outcome"], summary["exit_code"]) == ("imported", 0)
    assert (config_dir / "runs" / summary["run_id"] / "build" / "report.html").is_file()
    assert [received.path for received in hook.received] == [hook_path]
    for text in (done.stderr, line):
        assert CLEVER_TOKEN not in text
        assert TEST_TOKEN not in text


def test_the_old_recipe_s_dot_alone_exports_nothing(tmp_path: Path) -> None:
    """Why the recipe says ``set -a``: a sourced NAME=value file does not reach the sync's environment."""
    (tmp_path / "tokens.env").write_text("CLEVER_TOKEN='abc def $x'\n")
    show = [sys.executable, "-c", "import os; print(repr(os.environ.get('CLEVER_TOKEN')))"]
    shown = shlex.join(show)
    plain = subprocess.run(
        ["sh", "-c", f"cd {tmp_path} && . ./tokens.env && {shown}"],
        capture_output=True,
        text=True,
        check=True,
    )
    exported = subprocess.run(
        ["sh", "-c", f"cd {tmp_path} && set -a && . ./tokens.env && set +a && {shown}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert plain.stdout == "None\n"
    assert exported.stdout == "'abc def $x'\n"


def systemd_units() -> dict[str, str]:
    units = [text for info, text in scheduling_blocks() if info == "ini"]
    service, timer = units
    assert "[Service]" in service
    assert "[Timer]" in timer
    return {"clever2sis-sync.service": service, "clever2sis-sync.timer": timer}


def test_the_systemd_units_say_what_the_docs_say() -> None:
    units = systemd_units()
    service = units["clever2sis-sync.service"]
    assert f"ExecStart={BINARY} sync --profile production --quiet" in service
    assert f"EnvironmentFile={CONFIG_DIR}/tokens.env" in service
    assert "SuccessExitStatus=55" in service
    assert "Type=oneshot" in service
    assert "OnCalendar=*-*-* 02:30:00" in units["clever2sis-sync.timer"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    binary = tmp_path / "clever2sis"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    (tmp_path / "tokens.env").write_text("CLEVER_TOKEN='x'\n")
    paths = []
    for name, text in systemd_units().items():
        text = text.replace(BINARY, str(binary)).replace(CONFIG_DIR, str(tmp_path))
        text = text.replace("User=clever2sis", "User=root")  # a user that exists on this machine
        (tmp_path / name).write_text(text)
        paths.append(str(tmp_path / name))
    done = subprocess.run(
        ["systemd-analyze", "verify", *paths], capture_output=True, text=True, timeout=60, check=False
    )
    ours = [line for line in done.stderr.splitlines() if str(tmp_path) in line or "clever2sis" in line]
    assert done.returncode == 0, done.stderr
    assert ours == [], done.stderr


def test_the_kubernetes_cronjob_parses_and_has_the_documented_fields() -> None:
    (text,) = [text for info, text in scheduling_blocks() if info == "yaml"]
    job = yaml.safe_load(text)
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "CronJob")
    spec = job["spec"]
    assert spec["schedule"] == "30 2 * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["args"][:3] == ["sync", "--profile", "production"]
    assert container["args"][container["args"].index("--config") + 1].startswith("/config/")
    assert container["envFrom"] == [{"secretRef": {"name": "clever2sis-tokens"}}]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts == {"config": "/config", "runs": "/runs"}
    assert {volume["name"] for volume in pod["volumes"]} == {"config", "runs"}
