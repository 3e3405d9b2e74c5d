"""Per-EIP locks, so two eipha invocations on one node never interleave calls for one EIP.

``flock(2)`` on one file per allocation id: the kernel drops the lock when the process dies,
so a crash (even SIGKILL) never leaves a stale lock. Files and directories are created
owner-only, and a run directory someone else controls is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from eipha.clock import Deadline
from eipha.errors import DeadlineExceeded, PermissionDenied

POLL = 0.02


def lock_dir(env: dict[str, str] | None = None) -> Path:
    """Where lock files live: ``$EIPHA_RUN_DIR/locks``, else ``/run/eipha/locks`` for root,
    else a per-user directory under ``$XDG_RUNTIME_DIR`` or ``/tmp``."""
    env = dict(os.environ) if env is None else env
    if env.get("EIPHA_RUN_DIR"):
        return Path(env["EIPHA_RUN_DIR"]) / "locks"
    if os.geteuid() == 0:
        return Path("/run/eipha/locks")
    base = env.get("XDG_RUNTIME_DIR") or "/tmp"  # noqa: S108 - per-user, owner-only below
    return Path(base) / f"eipha-{os.geteuid()}" / "locks"


def private_dir(
    directory: Path,
    what: str = "run directory",
    fix: str = "remove it, or set EIPHA_RUN_DIR to a directory of your own",
) -> Path:
    """``directory``, created owner-only (whatever the umask, missing parents too) if it does
    not exist; refused if it is a symlink, another user's, or writable by group or others:
    in a shared /tmp someone else may have made ``/tmp/eipha-UID`` first. ``what`` and
    ``fix`` name the directory and the way out in the error."""
    try:
        _makedirs(directory)
        st = os.lstat(directory)
    except OSError as exc:
        raise PermissionDenied(f"cannot create {what} {directory}", exc.strerror) from None
    me = os.geteuid()
    if not stat.S_ISDIR(st.st_mode):
        why = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
    elif st.st_uid != me:
        why = f"owned by uid {st.st_uid}, not by uid {me} running eipha"
    elif st.st_mode & 0o022:
        why = f"writable by group or others: mode {stat.S_IMODE(st.st_mode):04o}"
    else:
        return directory
    raise PermissionDenied(f"unsafe {what} {directory}", f"{why}; {fix}")


def _makedirs(directory: Path) -> None:
    if not os.path.lexists(directory):
        _makedirs(directory.parent)
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise PermissionDenied(f"cannot open lock file {path}", exc.strerror) from None


def _acquire(fd: int, name: str, deadline: Deadline) -> None:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if deadline.expired():
                raise DeadlineExceeded(
                    f"waiting for the lock on {name}",
                    f"another eipha is still working on it after {deadline.seconds:g} s",
                ) from None
            time.sleep(POLL)


@contextmanager
def locked(
    names: Iterable[str], deadline: Deadline, directory: Path | None = None
) -> Iterator[None]:
    """Hold an exclusive lock on each name (sorted, so two callers cannot deadlock)."""
    directory = directory or lock_dir()
    private_dir(directory.parent)  # the run directory
    private_dir(directory)
    with ExitStack() as stack:
        for name in sorted(set(names)):
            fd = _open(directory / f"{name}.lock")
            stack.callback(os.close, fd)
            _acquire(fd, name, deadline)
        yield
