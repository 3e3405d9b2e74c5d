"""The peer monitor's decision core (docs/monitor.md): a pure function of the view and ``now``.

No I/O and no clock reads. :func:`decide` returns the EIPs this node should claim (the daemon
runs ``start`` for them; an EIP left out is simply not claimed: eipha never disassociates on
failback, the home node re-associates) and one sentence per EIP worth a word, in the manner
of Patroni's "no action. I am the leader with the lock".

Words used below. A peer is *live* when heard from less than ``dead_after`` ago; *healthy*
when live, saying ``healthy`` and not ``leaving``; *failed* when silent for ``dead_after`` or
more (or never heard from and ``init_dead`` has passed since this node started), or live
and saying ``leaving`` or unhealthy; *unknown* when never heard from within ``init_dead``.
A node *claims* an EIP when it is in its last decision's ``hold``; heartbeats carry these
claims (``holding``). ``held_since`` tells when this node started claiming a foreign EIP.

Rules, per EIP, in this order:

1. Unhealthy, I claim nothing: my home EIPs are left to a peer, foreign ones let go.
2. My home EIP: claimed unless a healthy peer claims it (it took the EIP while I was
   failed; I wait until it lets go: with ``auto_failback`` after ``min_hold``, without it
   when that peer fails) or a peer is still unknown (start-up: it may hold the EIP and I
   would not know; waits at most ``init_dead``).
3. A foreign EIP (its home is a peer):
   a. another healthy peer, not its home, already claims it: leave it there; if we both
      claim it, the lower node name keeps it (pairs never meet this; three nodes may);
   b. claimed by me: keep it while its home is failed or unknown; once the home is healthy
      again, keep it without ``auto_failback``, and with it hand it back when the home has
      been healthy for ``min_hold`` *and* I have held it for ``min_hold`` (hysteresis);
   c. not claimed by me: take it when its home is failed, I am healthy, the quorum target
      answers and ``init_dead`` has passed since I started; a home that says ``leaving`` is
      taken at once, even within ``init_dead`` (a graceful handover must be fast); quorum
      is still required. Keeping (b) needs no quorum: it moves nothing.

Together, 2 and 3 never let two healthy nodes claim one EIP for longer than a heartbeat,
so the pair cannot ping-pong: the home node yields to whoever took over, and the taker gives
it back only by ceasing to claim it. Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:
    from eipha.config import MonitorSpec

State: TypeAlias = Literal["healthy", "unknown", "dead", "leaving", "unhealthy"]


@dataclass(frozen=True)
class PeerView:
    """What this node knows of one peer, from its heartbeats (times on the daemon's clock).
    ``healthy_since`` is when it last became healthy (seen, not leaving, healthy) and has
    stayed so; None when it is not healthy now."""

    name: str
    last_seen: float | None
    healthy: bool
    leaving: bool
    holding: frozenset[str]
    healthy_since: float | None


@dataclass(frozen=True)
class View:
    """This node's picture of the pair. ``homes`` maps every EIP to its home node;
    ``held_since`` maps the foreign EIPs this node claims to when it began claiming them."""

    me: str
    started_at: float
    healthy: bool
    quorum: bool
    peers: Mapping[str, PeerView]
    homes: Mapping[str, str]
    held_since: Mapping[str, float]


@dataclass(frozen=True)
class Params:
    """The timing of ``monitor:`` that decisions use (seconds)."""

    dead_after: float
    init_dead: float
    min_hold: float
    auto_failback: bool

    @classmethod
    def from_spec(cls, spec: MonitorSpec) -> Params:
        return cls(
            dead_after=spec.dead_after,
            init_dead=spec.init_dead,
            min_hold=spec.min_hold,
            auto_failback=spec.auto_failback,
        )


@dataclass(frozen=True)
class Decision:
    """The EIPs to claim, and one sentence per EIP whose status is worth a word."""

    hold: frozenset[str]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class _Peer:
    """A peer's state at ``now`` and the phrase that says why."""

    name: str
    state: State
    says: str

    @property
    def failed(self) -> bool:
        return self.state in ("dead", "leaving", "unhealthy")


_Verdict: TypeAlias = tuple[bool, str | None]


def decide(view: View, params: Params, now: float) -> Decision:
    """What to claim at ``now``; see the module docstring for the rules."""
    hold: set[str] = set()
    reasons: list[str] = []
    for eip in sorted(view.homes):
        claim, reason = _decide_eip(eip, view, params, now)
        if claim:
            hold.add(eip)
        if reason is not None:
            reasons.append(f"{eip}: {reason}")
    return Decision(frozenset(hold), tuple(reasons))


def describe(decision: Decision) -> str:
    """The one INFO line for a decision that changes something."""
    if not decision.reasons:
        return "nothing to claim"
    return ". ".join(decision.reasons) + "."


def _decide_eip(eip: str, view: View, params: Params, now: float) -> _Verdict:
    home = view.homes[eip]
    if home == view.me:
        return _home(eip, view, params, now)
    peer = view.peers.get(home)
    if peer is None:
        return False, f"its home {home} is not a known peer; not claiming it"
    return _foreign(eip, _assess(peer, view, params, now), view, params, now)


# --------------------------------------------------------------------------- peers


def _assess(peer: PeerView, view: View, params: Params, now: float) -> _Peer:
    up = now - view.started_at
    if peer.last_seen is None:
        if up >= params.init_dead:
            said = f"never heard from in {up:.1f} s (init_dead {params.init_dead:g} s)"
            return _Peer(peer.name, "dead", f"peer {peer.name} {said}")
        said = f"no word from {peer.name} yet ({up:.1f} s of init_dead {params.init_dead:g} s)"
        return _Peer(peer.name, "unknown", said)
    silent = now - peer.last_seen
    if silent >= params.dead_after:
        said = f"silent for {silent:.1f} s (dead_after {params.dead_after:g} s)"
        return _Peer(peer.name, "dead", f"peer {peer.name} {said}")
    if peer.leaving:
        return _Peer(peer.name, "leaving", f"peer {peer.name} is leaving")
    if not peer.healthy:
        return _Peer(peer.name, "unhealthy", f"peer {peer.name} says it is unhealthy")
    said = f"{peer.name} healthy again for {_healthy_for(peer, now):.1f} s"
    return _Peer(peer.name, "healthy", said)


def _healthy_claimants(eip: str, view: View, params: Params, now: float) -> list[str]:
    """Healthy peers whose heartbeats claim ``eip``, in name order."""
    return sorted(
        peer.name
        for peer in view.peers.values()
        if eip in peer.holding and _assess(peer, view, params, now).state == "healthy"
    )


def _unknown_peers(view: View, params: Params, now: float) -> list[str]:
    return sorted(
        peer.name
        for peer in view.peers.values()
        if _assess(peer, view, params, now).state == "unknown"
    )


# --------------------------------------------------------------------------- my home EIPs


def _home(eip: str, view: View, params: Params, now: float) -> _Verdict:
    if not view.healthy:
        return False, "my home EIP, but I am unhealthy; not claiming it (a peer may take it)"
    claimants = _healthy_claimants(eip, view, params, now)
    if claimants:
        return False, f"my home EIP, but healthy peer {claimants[0]} holds it; waiting for it"
    unknown = _unknown_peers(view, params, now)
    if unknown:
        up = f"{now - view.started_at:.1f} s of init_dead {params.init_dead:g} s"
        return False, f"my home EIP; waiting for word from {', '.join(unknown)} ({up})"
    return True, "my home EIP, I am healthy; holding it"


# --------------------------------------------------------------------------- foreign EIPs


def _foreign(eip: str, home: _Peer, view: View, params: Params, now: float) -> _Verdict:
    held = eip in view.held_since
    if not view.healthy:
        return _unhealthy_me(home, held)
    rivals = [n for n in _healthy_claimants(eip, view, params, now) if n != home.name]
    if rivals and not held:
        return False, f"{rivals[0]} already holds it; leaving it there"
    if rivals and rivals[0] < view.me:
        return False, f"{rivals[0]} holds it too and keeps it (lower node name); letting it go"
    if held:
        return _keep(home, now - view.held_since[eip], view, params, now)
    return _take(home, view, params, now)


def _unhealthy_me(home: _Peer, held: bool) -> _Verdict:
    if held:
        return False, "I am unhealthy; letting it go"
    if home.failed:
        return False, f"{home.says} but I am unhealthy; not taking over"
    return False, None


def _keep(home: _Peer, held_for: float, view: View, params: Params, now: float) -> _Verdict:
    if home.state != "healthy":
        return True, f"{home.says}; keeping it"
    if not params.auto_failback:
        return True, f"{home.says} but auto_failback is off; keeping it ({home.name} waits)"
    healthy_for = _healthy_for(view.peers[home.name], now)
    if healthy_for >= params.min_hold and held_for >= params.min_hold:
        return False, f"{home.says} (min_hold {params.min_hold:g} s); handing it back"
    hint = f"held {held_for:.1f} s, min_hold {params.min_hold:g} s"
    return True, f"{home.says} ({hint}); keeping it for now"


def _healthy_for(peer: PeerView, now: float) -> float:
    """How long a live, healthy peer has been so (0 when ``healthy_since`` is unknown)."""
    return now - peer.healthy_since if peer.healthy_since is not None else 0.0


def _take(home: _Peer, view: View, params: Params, now: float) -> _Verdict:
    if home.state == "healthy":
        return False, None
    if home.state == "unknown":
        return False, f"{home.says}; not taking over"
    if not view.quorum:
        return False, f"{home.says} but quorum is lost; not taking over"
    up = now - view.started_at
    if up < params.init_dead and home.state != "leaving":
        grace = f"I started {up:.1f} s ago (init_dead {params.init_dead:g} s)"
        return False, f"{home.says} but {grace}; not taking over yet"
    return True, f"{home.says}; taking it over"
