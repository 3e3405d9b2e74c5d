"""The sandbox's directory: its state file (and whether a sandbox still runs there), the
owner-only files it writes, the lock that makes it the only sandbox there, and their removal."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eipha.sim.sandbox_layout import HOST, LOCK_FILE, NODES, STATE_FILE, Layout, SandboxError


def read_state(layout: Layout) -> dict[str, Any] | None:
    """The state of the sandbox running in ``layout.directory``, or None when none runs
    there (no state file, or one left by a sandbox that is gone)."""
    from eipha.monitor.state import alive

    try:
        state: dict[str, Any] = json.loads(layout.state.read_text())
        pid, port = int(state["pid"]), int(state["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if alive(pid) and _answers(port) else None


def _answers(port: int) -> bool:
    """Something accepts connections on the sandbox's EC2 port (a reused pid alone is not
    a running sandbox)."""
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def own_dir(directory: Path) -> bool:
    """Create ``directory`` owner-only (0700), or check that an existing one is the user's
    and that nobody else may write to it (its files are 0600); True if it was created."""
    from eipha.locking import private_dir

    existed = os.path.lexists(directory)
    private_dir(directory, "sandbox directory", "pick another with --dir")
    return not existed


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` owner-only, replacing it at once."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def claimed(layout: Layout) -> Iterator[None]:
    """Hold the directory's lock (``flock``, gone with the process) while the sandbox runs,
    so that a second one started in the same directory at the same moment is refused before
    it can write or remove anything of the first one's."""
    fd = os.open(
        layout.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
    )
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SandboxError(
                f"another sandbox is starting or running in {layout.directory}",
                "wait for its ready line and use it, or start another with --dir DIR and --port N",
            ) from None
        yield
    finally:
        os.close(fd)


def sandbox_names() -> set[str]:
    files = [STATE_FILE, *(f"{node}.yaml" for node in NODES)]
    return {*files, *(f".{name}.tmp" for name in files), *NODES, LOCK_FILE}


def only_sandbox_files(layout: Layout) -> bool:
    """Does the directory hold nothing but what a sandbox writes?"""
    return set(os.listdir(layout.directory)) <= sandbox_names()


def remove_files(layout: Layout, ours: bool) -> None:
    """Remove every file the sandbox wrote, and the directory if it is the sandbox's."""
    layout.state.unlink(missing_ok=True)
    (layout.directory / LOCK_FILE).unlink(missing_ok=True)
    for name in NODES:
        with contextlib.suppress(FileNotFoundError):
            layout.config(name).unlink()
        shutil.rmtree(layout.run_dir(name), ignore_errors=True)
    if ours:
        with contextlib.suppress(OSError):  # not empty: someone put files there meanwhile
            layout.directory.rmdir()
