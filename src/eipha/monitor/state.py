"""The monitor's state file: written by the daemon, read by ``eipha monitor --status``.

One JSON document, replaced atomically, owner-only, in eipha's run directory (next to the
locks). A file older than STALE seconds, or whose PID is gone, means the daemon is not
running.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from eipha.locking import lock_dir, private_dir

STALE = 10.0


def path() -> Path:
    return lock_dir().parent / "monitor.json"


def write(snapshot: dict[str, Any], where: Path | None = None) -> None:
    target = where or path()
    private_dir(target.parent)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(snapshot, f, indent=1, sort_keys=True)
    os.replace(tmp, target)


def remove(where: Path | None = None) -> None:
    (where or path()).unlink(missing_ok=True)


def read(where: Path | None = None) -> dict[str, Any] | None:
    """The daemon's last snapshot, or None when it is not running."""
    try:
        snapshot: dict[str, Any] = json.loads((where or path()).read_text())
    except (OSError, ValueError):
        return None
    running = alive(int(snapshot.get("pid", 0)))
    fresh = time.time() - float(snapshot.get("updated", 0)) < STALE
    return snapshot if running and fresh else None


def alive(pid: int) -> bool:
    """Is process ``pid`` running (ours or another user's)?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def render(s: dict[str, Any]) -> str:
    """The snapshot for people."""
    lines = [
        f"node {s['node']} (pid {s['pid']}, up {s['uptime']:.0f} s): "
        f"{'healthy' if s['healthy'] else 'UNHEALTHY'} ({s['health']}), "
        f"quorum {'ok' if s['quorum'] else 'LOST'} ({s['quorum_detail']})",
        f"holding: {', '.join(s['holding']) or 'nothing'}",
        "peers:",
    ]
    for name, p in sorted(s["peers"].items()):
        heard = "never" if p["last_heard"] is None else f"{p['last_heard']:.1f} s ago"
        lines.append(
            f"  {name} ({p['address']}): {p['verdict']}; last heartbeat {heard}; "
            f"claims {', '.join(p['holding']) or 'nothing'}"
        )
    lines.append("EIPs:")
    for name, e in sorted(s["eips"].items()):
        mine = "claimed here" if e["claimed_here"] else "not claimed here"
        lines.append(f"  {name} (home {e['home']}): {mine}; EC2 has it on {e['where']}")
    if s.get("decision"):
        lines.append("last decision: " + "; ".join(s["decision"]))
    c = s["counters"]
    rejected = sum(c["rejected"].values()) if c.get("rejected") else 0
    lines.append(
        f"heartbeats sent {c['sent']}, received {c['received']}, rejected {rejected}; "
        f"takeovers {c['takeovers']}, failbacks {c['failbacks']}, "
        f"API errors {c['api_errors']}"
    )
    return "\n".join(lines)
