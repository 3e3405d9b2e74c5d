"""The peer monitor's status document: one JSON-ready dict of what the daemon knows now.

:func:`of` is what the daemon writes to its state file (read by
``eipha monitor --status``) and what the metrics exporter collects from: this node's health
and quorum, the EIPs it claims, each peer's last heartbeat and verdict, where each EIP is,
the last decision and the counters.

Importing this module only defines things.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eipha.monitor.daemon import Monitor


def of(monitor: Monitor, now: float) -> dict[str, Any]:
    """The status of ``monitor`` at ``now`` (its monotonic clock)."""
    return {
        "node": monitor.me,
        "pid": os.getpid(),
        "updated": monitor.wall(),
        "uptime": round(now - monitor.started, 1),
        "healthy": monitor.health.healthy,
        "health": monitor.health.last_detail,
        "quorum": monitor.quorum.ok,
        "quorum_detail": monitor.quorum.detail,
        "holding": sorted(monitor.claims.hold),
        "peers": {
            name: {
                "address": monitor.peer_addresses[name][0],
                "last_heard": None if v.last_seen is None else round(now - v.last_seen, 1),
                "verdict": monitor.book.verdict(name, now),
                "holding": sorted(v.holding),
            }
            for name, v in monitor.book.views.items()
        },
        "eips": {
            name: {
                "home": home,
                "where": monitor.where.get(name, "unknown"),
                "claimed_here": name in monitor.claims.hold,
            }
            for name, home in sorted(monitor.homes.items())
        },
        "decision": list(monitor.last_reasons),
        "counters": {**vars(monitor.counters), "rejected": dict(monitor.receiver.counts)},
    }
