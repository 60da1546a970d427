"""A writer of one directory through ``atomic_directory``, stopped at a chosen step (for tests/test_atomic.py).

``python -m tests.atomic_child FINAL STEP ACTION [gap]`` writes a directory holding ``new.txt`` into FINAL
(replacing what is there) and, at STEP, either kills itself with SIGKILL (ACTION ``kill``: what ``kill -9``
does at that instant) or prints ``paused`` and waits for a line on stdin (ACTION ``pause``), then goes on.
With ``gap`` the system is made to lack ``renameat2``, so the replacement takes the two-rename swap.

Steps: ``writing`` (inside the ``with`` block, the new directory half-written), ``gap`` (the old directory
renamed aside, the new one not yet in), ``swapped`` (the new directory in place, the old one not yet
removed).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import clever2sis.atomic as atomic


def stop(action: str) -> None:
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    print("paused", flush=True)
    sys.stdin.readline()


def main(final: Path, step: str, action: str, gap: bool) -> None:
    if gap:
        atomic.rename_with_flags = lambda source, target, flags: False  # type: ignore[assignment]
    rename, rmtree = os.rename, shutil.rmtree

    def renaming(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        if step == "gap" and Path(target) == final and ".partial-" in Path(source).name:
            stop(action)
        rename(source, target, *args, **kwargs)

    def removing(path: Any, *args: Any, **kwargs: Any) -> None:
        if step == "swapped":
            stop(action)
        rmtree(path, *args, **kwargs)

    os.rename = renaming  # type: ignore[assignment]
    shutil.rmtree = removing  # type: ignore[assignment]
    with atomic.atomic_directory(final, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
        if step == "writing":
            stop(action)
    print("done", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), sys.argv[2], sys.argv[3], len(sys.argv) > 4 and sys.argv[4] == "gap")
