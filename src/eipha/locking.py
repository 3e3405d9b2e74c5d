"""Per-EIP locks, so two eipha invocations on one node never interleave calls for one EIP.

``flock(2)`` on one file per allocation id: the kernel drops the lock when the process dies,
so a crash (even SIGKILL) never leaves a stale lock. Files are created owner-only.
"""

from __future__ import annotations

import fcntl
import os
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


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
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
    with ExitStack() as stack:
        for name in sorted(set(names)):
            fd = _open(directory / f"{name}.lock")
            stack.callback(os.close, fd)
            _acquire(fd, name, deadline)
        yield
