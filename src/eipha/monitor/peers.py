"""What this node knows of its peers, built from the heartbeats it accepted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from eipha.monitor.decide import PeerView
from eipha.monitor.protocol import Heartbeat


@dataclass
class PeerBook:
    """Peer views keyed by node name, on the daemon's monotonic clock."""

    dead_after: float
    views: dict[str, PeerView]

    @classmethod
    def of(cls, names: Iterable[str], dead_after: float) -> PeerBook:
        return cls(
            dead_after, {n: PeerView(n, None, False, False, frozenset(), None) for n in names}
        )

    def _healthy_now(self, view: PeerView, now: float) -> bool:
        live = view.last_seen is not None and now - view.last_seen < self.dead_after
        return live and view.healthy and not view.leaving

    def heard(self, hb: Heartbeat, now: float) -> bool:
        """Record a heartbeat; True if the peer's state changed (seen, health, leaving, claims)."""
        old = self.views.get(hb.node)
        if old is None:
            return False
        was_healthy = self._healthy_now(old, now)
        healthy = hb.healthy and not hb.leaving
        since = old.healthy_since if was_healthy and healthy else now if healthy else None
        new = PeerView(hb.node, now, hb.healthy, hb.leaving, frozenset(hb.holding), since)
        self.views[hb.node] = new
        return (
            (not was_healthy and healthy)
            or old.leaving != new.leaving
            or old.holding != new.holding
            or old.healthy != new.healthy
        )

    def expire(self, now: float) -> None:
        """A peer silent for dead_after is no longer healthy: forget its healthy_since."""
        for name, view in self.views.items():
            if view.healthy_since is not None and not self._healthy_now(view, now):
                self.views[name] = replace(view, healthy_since=None)

    def verdict(self, name: str, now: float) -> str:
        view = self.views[name]
        if view.last_seen is None:
            return "never heard from"
        age = now - view.last_seen
        if age >= self.dead_after:
            return f"dead (silent {age:.1f} s)"
        if view.leaving:
            return "leaving"
        return "healthy" if view.healthy else "unhealthy"
