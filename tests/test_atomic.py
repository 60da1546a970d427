"""Atomic directories under kill -9: what a killed writer leaves is recovered or removed by the next run,
and nothing a live writer holds is touched.

The writer runs in a subprocess (tests/atomic_child.py) that kills itself with SIGKILL at the step, or
pauses there while the test acts as the next run.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import clever2sis.atomic as atomic
from clever2sis.atomic import atomic_directory, recover_directory
from clever2sis.build_dir import BuildDir
from clever2sis.clever.snapshot import Snapshot
from clever2sis.errors import ReviewError, SnapshotError
from tests.conftest import tiny_district, write_snapshot

ROOT = Path(__file__).resolve().parents[1]
CHILD_TIMEOUT_S = 60


def _old(final: Path) -> Path:
    final.mkdir()
    (final / "old.txt").write_text("old")
    return final


def _beside(final: Path) -> list[str]:
    return sorted(p.name for p in final.parent.iterdir() if p.name != final.name)


def _contents(final: Path) -> list[str]:
    return sorted(p.name for p in final.iterdir())


def _killed(final: Path, step: str, *, gap: bool = False) -> None:
    args = [sys.executable, "-m", "tests.atomic_child", str(final), step, "kill", *(["gap"] if gap else [])]
    done = subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
    )
    assert done.returncode == -9, done.stderr


@contextmanager
def _paused(final: Path, step: str, *, gap: bool = False) -> Iterator[subprocess.Popen[str]]:
    """A live writer stopped at ``step``; it goes on (and finishes) when the block ends."""
    args = [sys.executable, "-m", "tests.atomic_child", str(final), step, "pause", *(["gap"] if gap else [])]
    child = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdin is not None
    try:
        assert child.stdout.readline() == "paused\n"
        yield child
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline() == "done\n"
        assert child.wait(CHILD_TIMEOUT_S) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(CHILD_TIMEOUT_S)


def test_a_replacement_never_leaves_the_directory_missing(tmp_path: Path) -> None:
    final = _old(tmp_path / "out")
    with _paused(final, "swapped"):
        assert _contents(final) == ["new.txt"]
    assert _contents(final) == ["new.txt"]
    assert _beside(final) == []


def test_a_writer_killed_after_the_swap_leaves_the_new_directory_and_the_next_run_clears_the_old(
    tmp_path: Path,
) -> None:
    final = _old(tmp_path / "out")
    _killed(final, "swapped")
    assert _contents(final) == ["new.txt"]
    [left] = _beside(final)
    assert left.startswith(".out.partial-")
    with atomic_directory(final, replace=True) as tmp:
        (tmp / "third.txt").write_text("3")
    assert _contents(final) == ["third.txt"]
    assert _beside(final) == []


def test_a_writer_killed_while_writing_leaves_a_partial_that_the_next_run_removes(tmp_path: Path) -> None:
    final = _old(tmp_path / "out")
    _killed(final, "writing")
    assert _contents(final) == ["old.txt"]
    [left] = _beside(final)
    assert left.startswith(".out.partial-")
    with atomic_directory(final, replace=True) as tmp:
        assert _beside(final) == [tmp.name]
        (tmp / "third.txt").write_text("3")
    assert _beside(final) == []


def test_the_partial_of_a_live_writer_is_never_removed(tmp_path: Path) -> None:
    final = _old(tmp_path / "out")
    with _paused(final, "writing"):
        [live] = _beside(final)
        assert (final.parent / live / "new.txt").read_text() == "new"
        recover_directory(final)
        with atomic_directory(tmp_path / "out", replace=True) as tmp:
            (tmp / "other.txt").write_text("other")
        assert _beside(final) == [live]
        assert _contents(final) == ["other.txt"]
    assert _contents(final) == ["new.txt"]
    assert _beside(final) == []


def test_a_partial_held_in_this_process_is_never_removed(tmp_path: Path) -> None:
    final = tmp_path / "out"
    with atomic_directory(final) as outer:
        (outer / "a.txt").write_text("a")
        recover_directory(final)
        assert outer.is_dir()


@pytest.fixture
def without_renameat2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atomic, "rename_with_flags", lambda source, target, flags: False)


def test_without_renameat2_a_replacement_still_works(tmp_path: Path, without_renameat2: None) -> None:
    final = _old(tmp_path / "out")
    with atomic_directory(final, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert _contents(final) == ["new.txt"]
    assert _beside(final) == []
    with pytest.raises(FileExistsError), atomic_directory(final) as tmp:
        (tmp / "x.txt").write_text("x")
    assert _contents(final) == ["new.txt"]
    assert _beside(final) == []


def test_a_writer_killed_in_the_gap_gets_the_old_directory_put_back_by_the_next_run(tmp_path: Path) -> None:
    final = _old(tmp_path / "out")
    _killed(final, "gap", gap=True)
    assert not final.exists()
    assert sorted(name.split("-")[0] for name in _beside(final)) == [".out.old", ".out.partial"]
    with pytest.raises(FileExistsError), atomic_directory(final) as tmp:
        assert _contents(final) == ["old.txt"]
        assert _beside(final) == [tmp.name]
        (tmp / "third.txt").write_text("3")
    assert _contents(final) == ["old.txt"]
    assert _beside(final) == []


def test_the_next_writer_puts_the_old_directory_back_before_replacing_it(tmp_path: Path) -> None:
    final = _old(tmp_path / "out")
    _killed(final, "gap", gap=True)
    with atomic_directory(final, replace=True) as tmp:
        assert _contents(final) == ["old.txt"]
        (tmp / "third.txt").write_text("3")
    assert _contents(final) == ["third.txt"]
    assert _beside(final) == []


def test_a_reader_that_finds_the_snapshot_missing_puts_the_old_one_back(tmp_path: Path) -> None:
    final = write_snapshot(tmp_path / "snap", tiny_district())
    _killed(final, "gap", gap=True)
    assert not final.exists()
    assert Snapshot.open(final).district_id
    assert _beside(final) == []


def test_a_reader_that_finds_the_build_missing_puts_the_old_one_back(tmp_path: Path) -> None:
    final = tmp_path / "build"
    final.mkdir()
    (final / "build.json").write_bytes(b'{"zip": {"sha256": "00"}}')
    _killed(final, "gap", gap=True)
    assert not final.exists()
    assert BuildDir(final).read_record(error=ReviewError).zip.sha256 == "00"


def test_a_writer_paused_in_the_gap_is_left_alone(tmp_path: Path) -> None:
    final = _old(tmp_path / "out")
    with _paused(final, "gap", gap=True):
        assert not final.exists()
        recover_directory(final)
        assert not final.exists()
        with pytest.raises(SnapshotError, match="no such snapshot directory"):
            Snapshot.open(final)
    assert _contents(final) == ["new.txt"]
    assert _beside(final) == []
