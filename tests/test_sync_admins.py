"""School and district admins through nightly syncs into the Canvas double: added, moved, removed, leaving the
district, a role changed, an admin added in Canvas's UI (never removed), district admins, and the guard.

Each test judges the admins Canvas holds (the model) against what Clever says that night, and that no import
drew a warning from Canvas's admins importer.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from clever2sis.canvas.client import CanvasClient
from clever2sis.canvas.sis_import import SisImports
from clever2sis.clever.client import CleverClient
from clever2sis.config import CanvasProfile, RawConfig, SyncSettings, UploadSettings, build_settings
from clever2sis.sync.pipeline import RunOptions, RunResult, SyncJob, SyncRuntime, run_sync
from tests.canvas_model import CanvasModel
from tests.canvas_server import TEST_TOKEN, CanvasTestServer
from tests.clever_server import CleverTestServer
from tests.school_year import VANISHED, break_school
from tests.test_sync_month import CLEVER_TOKEN, FAST
from tests.test_sync_nights import JANUARY, Nights, history_applied, run_json, user_status

Admin = tuple[str | None, str | None, str]
LIMITS = {"max_shrink_percent_by_file": {"admins": 100}}  # a few admins: one move is a large share


class AdminNights(Nights):
    """Nights with ``[admins]`` (changeable between nights) and three school admins set by title."""

    def __init__(self, tmp: Path, **sync: Any) -> None:
        super().__init__(tmp, **sync)
        self.model = CanvasModel(account_roles=("Principal", "District Admin"))
        self.canvas.model = self.model
        self.admins: dict[str, Any] = {"enabled": True}
        self.remaster = False
        staff = sorted((u for u in self.records["users"] if "staff" in u["roles"]), key=lambda u: u["id"])
        schools = sorted(s["id"] for s in self.records["schools"])
        for user in staff:
            user["roles"]["staff"]["title"] = "Counselor"
        self.principal, self.second, self.assistant = (user["id"] for user in staff[:3])
        self.set_staff(self.principal, title="Principal", schools=[schools[2]])
        self.set_staff(self.second, title="Principal", schools=[schools[0]])
        self.set_staff(self.assistant, title="Assistant Principal", schools=[schools[2]])
        self.schools = schools

    @property
    def job(self) -> SyncJob:
        assert self.server is not None
        return SyncJob(
            profile=CanvasProfile("nightly", self.server.base_url, "1"),
            sync=SyncSettings(runs_dir=self.runs_dir, **self.sync),
            build=build_settings(RawConfig({"admins": self.admins})),
            upload=UploadSettings(),
        )

    def set_staff(self, user_id: str, **fields: Any) -> None:
        user = next(u for u in self.records["users"] if u["id"] == user_id)
        user["roles"]["staff"].update(fields)

    def night(self, now: dt.datetime, *, allow_large_change: bool = False) -> RunResult:
        assert self.server is not None
        served = {
            name: [orjson.dumps(record) for record in sorted(records, key=lambda r: r["id"])]
            for name, records in self.records.items()
        }
        with (
            CleverTestServer(served, token=CLEVER_TOKEN) as clever_server,
            CleverClient(CLEVER_TOKEN, clever_server.url) as clever,
            CanvasClient(self.server.base_url, TEST_TOKEN, sleep=lambda _s: None) as client,
        ):
            result = run_sync(
                self.job,
                clever,
                SisImports(client, "1"),
                options=RunOptions(
                    allow_large_change=allow_large_change, remaster=self.remaster, wait_policy=FAST
                ),
                runtime=SyncRuntime(clock=lambda: now, sleep=lambda _s: None, attachment_wait_s=0),
            )
        self.remaster = False
        return result


@contextlib.contextmanager
def admin_nights(tmp: Path, **sync: Any) -> Iterator[AdminNights]:
    district = AdminNights(tmp, **{**LIMITS, **sync})
    with CanvasTestServer(district.canvas) as server:
        district.server = server
        yield district


def night(number: int) -> dt.datetime:
    return JANUARY + dt.timedelta(days=number)


def admin_messages(district: AdminNights) -> list[str]:
    """Every message Canvas gave about admins.csv, on every night."""
    return [m.message for done in district.model.imports for m in done.messages if m.file == "admins.csv"]


def sent_admins(result: RunResult) -> str:
    assert result.run_dir is not None
    return (result.run_dir / "build" / "csv" / "admins.csv").read_text()


def test_a_school_admin_added_moved_removed_and_leaving_while_a_manual_admin_stays(tmp_path: Path) -> None:
    with admin_nights(tmp_path) as district:
        a, b, c = district.schools
        first = district.night(night(0))
        made = district.model.sis_admins()
        teacher = next(u["id"] for u in district.records["users"] if "teacher" in u["roles"])
        district.model.add_manual_admin(teacher, b)  # added in Canvas's UI
        district.model.add_manual_admin(district.assistant, a)  # another account than Clever's
        district.set_staff(district.principal, schools=[a])
        moved = district.night(night(1))
        after_move = district.model.sis_admins()
        district.set_staff(district.second, title="Librarian")
        demoted = district.night(night(2))
        after_demotion = district.model.sis_admins()
        district.leave(district.assistant)
        left = district.night(night(3))
        leaver_that_night = user_status(district, district.assistant)
        after_leaving = district.model.sis_admins()
        suspended = district.night(night(4))

    results = [first, moved, demoted, left, suspended]
    assert [r.exit_code for r in results] == [0] * 5, [r.message for r in results]
    assert history_applied(district.runs_dir) == ["remaster", "diff", "diff", "diff", "diff"]
    p, s, ap = district.principal, district.second, district.assistant
    assert made == {(c, p, "AccountAdmin"), (a, s, "AccountAdmin"), (c, ap, "AccountAdmin")}
    assert sent_admins(first) == (
        "user_id,account_id,role,status\n"
        f"{s},{a},AccountAdmin,active\n"
        f"{p},{c},AccountAdmin,active\n"
        f"{ap},{c},AccountAdmin,active\n"
    )
    assert after_move == {(a, p, "AccountAdmin"), (a, s, "AccountAdmin"), (c, ap, "AccountAdmin")}
    assert after_demotion == {(a, p, "AccountAdmin"), (c, ap, "AccountAdmin")}
    assert user_status(district, s) == "active"
    # The night the assistant principal leaves: the admin role goes, the person stays one more night.
    assert after_leaving == {(a, p, "AccountAdmin")}
    assert leaver_that_night == "active"
    assert left.run_dir is not None
    carried = (left.run_dir / "build" / "sync" / "carried" / "users.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in carried[1:]] == [ap]
    # ... and the deletions of the nights before are sent again unchanged (Canvas's diff drops them).
    assert run_json(left)["sync_changes"]["carried"] == {"users.csv": 1, "admins.csv": 2}
    assert (left.run_dir / "build" / "sync" / "carried" / "admins.csv").read_text() == (
        f"user_id,account_id,role,status\n{s},{a},AccountAdmin,deleted\n{p},{c},AccountAdmin,deleted\n"
    )
    assert user_status(district, ap) == "suspended"
    # Never touched: the admins added by hand, of an account the product never made them admin of.
    assert {(b, teacher, "AccountAdmin"), (a, ap, "AccountAdmin")} <= district.model.admins()
    assert district.model.admins() == {
        (a, p, "AccountAdmin"),
        (b, teacher, "AccountAdmin"),
        (a, ap, "AccountAdmin"),
    }
    assert admin_messages(district) == []
    assert [done.workflow_state for done in district.model.imports] == ["imported"] * 5
    assert all(admin[0] is not None for admin in district.model.admins("deleted"))


@pytest.mark.parametrize("deletion_mode", ["explicit", "batch"])
def test_without_diffing_the_removals_are_the_sync_s_own_rows(tmp_path: Path, deletion_mode: str) -> None:
    with admin_nights(tmp_path, deletion_mode=deletion_mode) as district:
        a, _, c = district.schools
        district.night(night(0))
        district.set_staff(district.principal, schools=[a])
        district.leave(district.assistant)
        moved = district.night(night(1))
        after = district.model.sis_admins()
        last = district.night(night(2))

    assert [moved.exit_code, last.exit_code] == [0, 0], (moved.message, last.message)
    p, s = district.principal, district.second
    assert after == {(a, p, "AccountAdmin"), (a, s, "AccountAdmin")}
    assert moved.run_dir is not None
    removed = (moved.run_dir / "build" / "sync" / "removed" / "admins.csv").read_text()
    assert removed == (
        "user_id,account_id,role,status\n"
        f"{p},{c},AccountAdmin,deleted\n"
        f"{district.assistant},{c},AccountAdmin,deleted\n"
    )
    assert admin_messages(district) == []


def test_a_leaver_on_a_remaster_night_draws_no_warning_the_next_diffed_night(tmp_path: Path) -> None:
    with admin_nights(tmp_path) as district:
        district.night(night(0))
        district.night(night(1))
        district.leave(district.assistant)
        district.remaster = True
        remaster = district.night(night(2))
        kept_active = user_status(district, district.assistant)
        diffed = district.night(night(3))

    assert [remaster.exit_code, diffed.exit_code] == [0, 0], (remaster.message, diffed.message)
    assert history_applied(district.runs_dir)[-2:] == ["remaster", "diff"]
    assert kept_active == "active"
    assert user_status(district, district.assistant) == "suspended"
    # The remaster's deletion row is sent again unchanged on the diffed night: Canvas's diff drops it
    # rather than sending it once more for a person suspended first.
    deleted = f"{district.assistant},{district.schools[2]},AccountAdmin,deleted\n"
    assert deleted in sent_admins(remaster)
    assert deleted in sent_admins(diffed)
    assert diffed.run_dir is not None
    assert deleted in (diffed.run_dir / "build" / "sync" / "carried" / "admins.csv").read_text()
    assert district.model.imports[-1].rows("admin") == []
    assert admin_messages(district) == []


def test_the_last_admin_removed_on_a_diffed_night_still_reaches_canvas(tmp_path: Path) -> None:
    with admin_nights(tmp_path) as district:
        district.night(night(0))
        district.night(night(1))
        for user in (district.principal, district.second, district.assistant):
            district.set_staff(user, title="Counselor")
        emptied = district.night(night(2))
        again = district.night(night(3))

    assert [emptied.exit_code, again.exit_code] == [0, 0], (emptied.message, again.message)
    assert history_applied(district.runs_dir)[-2:] == ["diff", "diff"]
    assert district.model.sis_admins() == frozenset()
    assert len(district.model.admins("deleted")) == 3
    assert admin_messages(district) == []


def test_a_new_role_goes_as_a_remaster_so_canvas_drops_the_old_one(tmp_path: Path) -> None:
    with admin_nights(tmp_path) as district:
        a, _, c = district.schools
        district.night(night(0))
        district.night(night(1))
        district.admins = {"enabled": True, "custom_roles": ["Principal"], "role": "Principal"}
        changed = district.night(night(2))
        quiet = district.night(night(3))

    assert [changed.exit_code, quiet.exit_code] == [0, 0], (changed.message, quiet.message)
    assert history_applied(district.runs_dir) == ["remaster", "diff", "remaster", "diff"]
    assert run_json(changed)["remaster_reason"] == (
        "admins: admins.csv gives 3 admin(s) another role in an account, and Canvas's diff pairs admins by "
        "user_id and account_id only (the old role would stay)"
    )
    p, s, ap = district.principal, district.second, district.assistant
    assert district.model.admins() == {(c, p, "Principal"), (a, s, "Principal"), (c, ap, "Principal")}
    assert district.model.imports[-1].rows("admin") == []
    assert admin_messages(district) == []


def test_district_admins_of_every_school_or_of_one_sub_account(tmp_path: Path) -> None:
    with admin_nights(tmp_path) as district:
        admins = sorted(u["id"] for u in district.records["users"] if "district_admin" in u["roles"])
        district.admins = {
            "enabled": True,
            "staff_titles": [],
            "custom_roles": ["District Admin"],
            "district_admins": "schools",
            "district_admin_role": "District Admin",
        }
        every = district.night(night(0))
        held_every = district.model.sis_admins()
        district.admins = {"enabled": True, "staff_titles": [], "district_admins": "account"}
        district.admins["district_admin_account_id"] = district.schools[1]
        one = district.night(night(1))

    assert [every.exit_code, one.exit_code] == [0, 0], (every.message, one.message)
    assert held_every == {(school, user, "District Admin") for school in district.schools for user in admins}
    assert district.model.sis_admins() == {(district.schools[1], user, "AccountAdmin") for user in admins}
    assert admin_messages(district) == []


def test_a_held_school_keeps_its_admins_and_its_vanished_school_admins_their_users(tmp_path: Path) -> None:
    """School c vanishes from Clever with the people only in it: its principal and assistant principal
    (staff, no enrollment) and the district admins keep their admin roles of c, and the two their Canvas
    users, while c is held; once c returns everything is as Clever says."""
    with admin_nights(tmp_path) as district:
        c = district.schools[2]
        district.admins = {
            "enabled": True,
            "custom_roles": ["District Admin"],
            "district_admins": "schools",
            "district_admin_role": "District Admin",
        }
        first = district.night(night(0))
        before = district.model.sis_admins()
        users = [district.principal, district.assistant]
        statuses = [user_status(district, user) for user in users]
        sound = copy.deepcopy(district.records)
        break_school(district.records, c, VANISHED)
        gone = {district.principal, district.assistant} - {u["id"] for u in district.records["users"]}
        held = district.night(night(1))
        held_admins = district.model.sis_admins()
        held_statuses = [user_status(district, user) for user in users]
        district.records = sound
        back = district.night(night(2))

    assert [first.exit_code, held.exit_code, back.exit_code] == [0, 56, 0], (held.message, back.message)
    assert gone == set(users)
    p, ap = district.principal, district.assistant
    assert {(c, p, "AccountAdmin"), (c, ap, "AccountAdmin")} <= before
    assert sum(1 for account, _user, role in before if account == c and role == "District Admin") == 2
    assert held_admins == before
    assert statuses == held_statuses == ["active", "active"]
    assert district.model.sis_admins() == before
    assert admin_messages(district) == []


def test_the_guard_counts_admins_like_any_file(tmp_path: Path) -> None:
    with admin_nights(tmp_path, max_shrink_percent_by_file={}) as district:
        district.night(night(0))
        district.set_staff(district.second, title="Librarian")
        stopped = district.night(night(1))
        held = district.model.sis_admins()
        allowed = district.night(night(1) + dt.timedelta(hours=1), allow_large_change=True)

    assert stopped.exit_code == 51
    assert "admins.csv lost 1 of 3 rows (33.3%, limit 10%)" in stopped.message
    assert len(held) == 3
    assert allowed.exit_code == 0, allowed.message
    assert len(district.model.sis_admins()) == 2
