"""``eipha install-agents``: put the shipped shims and systemd units where their managers look.

The wheel carries, as package data under ``eipha/resource_agents/``, the small shell shims
that Heartbeat, keepalived and Pacemaker run, and the systemd units of the secondary-IP timer
and the peer monitor. Installing them is a plan, then its application: :func:`plan` compares
what each destination holds with what it should (content with the eipha path written in,
mode, owner) and :func:`apply` writes only what differs, each file atomically. A second run
changes nothing and says so.

Standard library only; importing this module only defines things.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from eipha.errors import EiphaError, NotConfigured, PermissionDenied, UsageError

DEFAULT_BIN = "/usr/local/bin/eipha"
"""The eipha path the shipped files name; replaced by the one given at install time."""

# A path written into a shell script and a unit's ExecStart: plain characters only, so
# neither sh nor systemd can read it as anything but one word.
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._+/-]*")


@dataclass(frozen=True)
class Agent:
    """One shipped file: where it comes from in the package and where it goes."""

    manager: str
    source: str  # relative to eipha/resource_agents
    dest: str  # absolute, on the node
    mode: int
    what: str


AGENTS: tuple[Agent, ...] = (
    Agent("heartbeat", "heartbeat/eipha", "/etc/ha.d/resource.d/eipha", 0o755,
          "Heartbeat resource script"),
    Agent("keepalived", "keepalived/eipha-notify", "/etc/keepalived/eipha-notify", 0o755,
          "keepalived notify script"),
    Agent("ocf", "ocf/eipha", "/usr/lib/ocf/resource.d/eipha/eipha", 0o755,
          "Pacemaker resource agent ocf:eipha:eipha"),
    Agent("systemd", "systemd/eipha-secondary-ips.service",
          "/etc/systemd/system/eipha-secondary-ips.service", 0o644, "secondary-IP oneshot"),
    Agent("systemd", "systemd/eipha-secondary-ips.timer",
          "/etc/systemd/system/eipha-secondary-ips.timer", 0o644, "secondary-IP timer"),
    Agent("systemd", "systemd/eipha-monitor.service",
          "/etc/systemd/system/eipha-monitor.service", 0o644, "peer monitor unit"),
)  # fmt: skip
MANAGERS: tuple[str, ...] = tuple(dict.fromkeys(a.manager for a in AGENTS))


@dataclass(frozen=True)
class Change:
    """What installing one file takes: ``install`` (absent), ``update`` (differs in content,
    mode or owner) or ``unchanged``."""

    agent: Agent
    path: Path  # the destination, under the staging root if any
    content: bytes
    uid: int
    gid: int
    action: str

    @property
    def needed(self) -> bool:
        return self.action != "unchanged"


def default_bin() -> str:
    """The eipha to write in: the one beside the running Python (a virtualenv's or pipx's
    ``bin/eipha``), else the one on PATH, else :data:`DEFAULT_BIN`."""
    beside = Path(sys.executable).parent / "eipha"
    if os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("eipha") or DEFAULT_BIN


def check_bin(path: str) -> str:
    if not os.path.isabs(path):
        raise UsageError(f"--bin {path!r} is not an absolute path", "give the full path to eipha")
    if not _SAFE_PATH.fullmatch(path):
        raise UsageError(
            f"--bin {path!r} has characters a shell script or systemd unit would misread",
            "use a path of letters, digits and . _ + - /",
        )
    return path


def select(managers: Sequence[str]) -> list[Agent]:
    """The files of the managers named, in table order; an unknown name is a usage error."""
    unknown = [m for m in managers if m not in MANAGERS]
    if unknown:
        raise UsageError(f"unknown manager {unknown[0]!r}", f"choose from {', '.join(MANAGERS)}")
    if not managers:
        raise UsageError("no manager given", f"name one or more of {', '.join(MANAGERS)}")
    return [a for a in AGENTS if a.manager in managers]


def shipped(agent: Agent) -> bytes:
    """The file as the package ships it."""
    return (resources.files("eipha") / "resource_agents" / agent.source).read_bytes()


def render(agent: Agent, eipha_bin: str) -> bytes:
    """The shipped file with ``eipha_bin`` in place of :data:`DEFAULT_BIN`."""
    return shipped(agent).replace(DEFAULT_BIN.encode(), eipha_bin.encode())


def plan(agents: Iterable[Agent], root: Path, eipha_bin: str) -> list[Change]:
    """What installing ``agents`` under ``root`` takes; reads, never writes."""
    uid, gid = (0, 0) if os.geteuid() == 0 else (os.geteuid(), os.getegid())
    changes = []
    for agent in agents:
        path = root / agent.dest.lstrip("/")
        content = render(agent, eipha_bin)
        changes.append(
            Change(agent, path, content, uid, gid, _action(path, content, agent, uid, gid))
        )
    return changes


def _action(path: Path, content: bytes, agent: Agent, uid: int, gid: int) -> str:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return "install"
    except OSError as exc:
        raise _os_error(path, exc) from None
    if path.is_symlink() or not path.is_file():
        return "update"  # replaced by a regular file
    try:
        same = path.read_bytes() == content
    except OSError as exc:
        raise _os_error(path, exc) from None
    right = same and (st.st_mode & 0o7777) == agent.mode and (st.st_uid, st.st_gid) == (uid, gid)
    return "unchanged" if right else "update"


def apply(changes: Iterable[Change]) -> None:
    """Write every needed change: parents created 0755, each file written beside its
    destination and renamed over it, so a reader sees the old file or the new one."""
    for change in changes:
        if change.needed:
            try:
                _write(change)
            except OSError as exc:
                raise _os_error(change.path, exc) from None


def _write(change: Change) -> None:
    _make_parents(change.path.parent, change.uid, change.gid)
    partial = change.path.with_name(f".{change.path.name}.eipha-{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(change.content)
            stream.flush()
            if os.geteuid() == 0:
                os.fchown(stream.fileno(), change.uid, change.gid)
            os.fchmod(stream.fileno(), change.agent.mode)
            os.fsync(stream.fileno())
        os.replace(partial, change.path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _make_parents(directory: Path, uid: int, gid: int) -> None:
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    if not directory.is_dir():
        raise NotADirectoryError(20, "Not a directory", str(directory))
    for path in reversed(missing):
        path.mkdir(mode=0o755)
        os.chmod(path, 0o755)  # whatever the umask
        if os.geteuid() == 0:
            os.chown(path, uid, gid)


def _os_error(path: Path, exc: OSError) -> EiphaError:
    why = exc.strerror or str(exc)
    if isinstance(exc, PermissionError):
        return PermissionDenied(
            f"cannot write {path}", f"{why}; run as root, or stage with --root DIR"
        )
    if isinstance(exc, (NotADirectoryError, IsADirectoryError)):
        return NotConfigured(f"cannot install {path}", f"{why}: {exc.filename or path}")
    return EiphaError(f"cannot install {path}", why)


def summary(changes: Sequence[Change], eipha_bin: str, dry_run: bool) -> str:
    """The last line: what was (or would be) done, and which eipha the files run."""
    count = f"{len(changes)} file{'s' if len(changes) != 1 else ''}"
    head = "dry run: " if dry_run else ""
    needed = [c for c in changes if c.needed]
    if not needed:
        return f"{head}{count}: nothing to change (eipha is {eipha_bin})"
    verbs = ("would install", "would update") if dry_run else ("installed", "updated")
    done = [sum(c.action == a for c in changes) for a in ("install", "update", "unchanged")]
    parts = f"{done[0]} {verbs[0]}, {done[1]} {verbs[1]}, {done[2]} unchanged"
    return f"{head}{count}: {parts} (eipha is {eipha_bin})"


def line(change: Change, dry_run: bool) -> str:
    """One line per file: ``installed PATH (what, MODE)``."""
    verbs = {
        "install": "would install" if dry_run else "installed",
        "update": "would update" if dry_run else "updated",
        "unchanged": "unchanged",
    }
    verb = verbs[change.action]
    return f"{verb:<9} {change.path} ({change.agent.what}, {change.agent.mode:04o})"
