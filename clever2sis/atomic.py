"""Atomic outputs: everything is written beside its destination first and renamed into place when whole.

A directory (a snapshot, a build) is written as ``.NAME.partial-<pid>-<random>`` beside ``NAME``. While a
process writes it, it holds an ``flock`` on that directory, which the kernel drops when the process dies
however it dies. Replacing an existing ``NAME`` swaps the two in one step, ``renameat2(RENAME_EXCHANGE)``
(Linux 3.15+, on the file systems that support it), so ``NAME`` is never missing; the old directory then has
the partial name and is removed. Where the exchange is not available, the old directory is renamed aside to
``.NAME.old-<pid>-<random>`` (and locked) and the new one renamed in: a process killed between the two
renames leaves no ``NAME``.

What a killed writer leaves is cleaned up by the next one, and by a reader that finds ``NAME`` missing
(:func:`recover_directory`): a ``.NAME.old-*`` that no live process holds is put back as ``NAME`` when
``NAME`` is missing (the old directory was whole; the new one never finished its swap) and removed
otherwise, and a ``.NAME.partial-*`` that no live process holds is removed. A directory counts as held
while its ``flock`` cannot be taken or the pid in its name is a live process other than this one (the
second covers the instant between creating a partial directory and locking it).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

PARTIAL = "partial"
OLD = "old"
# renameat2(2): the flags, and the "current directory" file descriptor for absolute paths.
_AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
# What renameat2 answers when the kernel or the file system cannot do what a flag asks.
_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP})


@functools.cache
def _libc_renameat2() -> Callable[..., int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def rename_with_flags(source: Path, target: Path, flags: int) -> bool:
    """``renameat2(source, target, flags)``: True when done, False when this system cannot do it.

    Any other failure (``target`` exists under ``RENAME_NOREPLACE``, permissions) raises ``OSError``.
    """
    function = _libc_renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(source), None, str(target))


@contextlib.contextmanager
def atomic_directory(final: Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``final``; on success rename it to ``final``.

    On any exception the temporary directory is removed and ``final`` is left as it was, so a reader never
    sees a half-written directory. With ``replace`` an existing ``final`` is swapped out only once the new
    one is complete. What an earlier, killed writer of ``final`` left is dealt with first
    (:func:`recover_directory`).
    """
    final = final.resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    recover_directory(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{PARTIAL}-{os.getpid()}-", dir=final.parent))
    claim = _lock(tmp)
    try:
        yield tmp
        _move_into_place(tmp, final, replace=replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if claim is not None:
            os.close(claim)


def _move_into_place(tmp: Path, final: Path, *, replace: bool) -> None:
    """Rename the whole ``tmp`` to ``final``; with ``replace``, swap out what is there.

    After an exchange ``tmp`` names the old directory, which is removed (the caller's clean-up removes it
    too if this is interrupted).
    """
    try:
        if rename_with_flags(tmp, final, RENAME_NOREPLACE):
            return
    except FileExistsError:
        if not replace:
            raise
    else:
        if not os.path.lexists(final):
            os.rename(tmp, final)
            return
        if not replace:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(final))
    if rename_with_flags(tmp, final, RENAME_EXCHANGE):
        shutil.rmtree(tmp, ignore_errors=True)
        return
    _swap_with_a_gap(tmp, final)


def _swap_with_a_gap(tmp: Path, final: Path) -> None:
    """Rename ``final`` aside (locked, so that no one restores it meanwhile), then ``tmp`` in."""
    old = final.with_name(f".{final.name}.{OLD}-{os.getpid()}-{secrets.token_hex(4)}")
    held = _lock(final, wait=True)
    try:
        os.rename(final, old)
        try:
            os.rename(tmp, final)
        except BaseException:
            os.rename(old, final)
            raise
    finally:
        if held is not None:
            os.close(held)
    shutil.rmtree(old, ignore_errors=True)


def _lock(directory: Path, *, wait: bool = False) -> int | None:
    """An open descriptor of ``directory`` holding its exclusive ``flock``; None when it cannot be had.

    Without ``wait`` a lock another descriptor holds (in this process or another) gives None at once.
    """
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:
        os.close(fd)
        return None
    return fd


def _leftovers(final: Path) -> tuple[list[Path], list[Path]]:
    """The ``.NAME.old-*`` and ``.NAME.partial-*`` directories beside ``final`` (this release's names,
    and the ``.NAME.old-<pid>`` and ``.NAME.partial-<random>`` of earlier ones)."""
    name = re.escape(final.name)
    ours = re.compile(rf"\.{name}\.({PARTIAL}|{OLD})-\d+-[a-z0-9_]+")
    earlier = re.compile(rf"\.{name}\.(?:({PARTIAL})-[a-z0-9_]{{8}}|({OLD})-\d+)")
    olds: list[Path] = []
    partials: list[Path] = []
    try:
        entries = sorted(os.scandir(final.parent), key=lambda entry: entry.name)
    except OSError:
        return olds, partials
    for entry in entries:
        match = ours.fullmatch(entry.name)
        kind = match.group(1) if match else None
        if match is None and (old_match := earlier.fullmatch(entry.name)):
            kind = old_match.group(1) or old_match.group(2)
        if kind is not None and entry.is_dir(follow_symlinks=False):
            (olds if kind == OLD else partials).append(Path(entry.path))
    return olds, partials


def _pid_in(path: Path) -> int | None:
    match = re.search(r"\.(?:partial|old)-(\d+)(?:-|$)", path.name)
    return int(match.group(1)) if match else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _if_abandoned(path: Path) -> Iterator[bool]:
    """Whether no live process holds ``path``; while True, this process holds it."""
    pid = _pid_in(path)
    if pid is not None and pid != os.getpid() and _alive(pid):
        yield False
        return
    held = _lock(path)
    try:
        yield held is not None
    finally:
        if held is not None:
            os.close(held)


def recover_directory(final: Path) -> None:
    """Deal with what a killed writer of ``final`` left beside it (see the module docstring).

    Put back a replaced directory when ``final`` is missing; remove abandoned partial and replaced
    directories. Nothing that a live process holds is touched, and nothing is raised: a directory that
    cannot be cleaned now is tried again next time.
    """
    olds, partials = _leftovers(final)
    for old in olds:
        with _if_abandoned(old) as abandoned:
            if not abandoned:
                continue
            if not os.path.lexists(final):
                with contextlib.suppress(OSError):
                    os.rename(old, final)
                    continue
            shutil.rmtree(old, ignore_errors=True)
    for partial in partials:
        with _if_abandoned(partial) as abandoned:
            if abandoned:
                shutil.rmtree(partial, ignore_errors=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and an atomic rename.

    An ``OSError`` (a full disk, a directory that cannot be made) names ``path`` as its ``filename``,
    whichever step failed, so that a message shows the file the caller meant rather than a temporary one.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as error:
        raise _naming(error, path) from error
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(error, OSError):
            raise _naming(error, path) from error
        raise


def _naming(error: OSError, path: Path) -> OSError:
    """``error`` again (its subclass kept, as ``OSError(errno, ...)`` picks it) with ``path`` as filename."""
    if error.errno is None:
        return error
    return OSError(error.errno, error.strerror or os.strerror(error.errno), str(path))
