"""The peer monitor's decision core (docs/monitor.md), table-tested with explicit ``now`` values,
then two simulated nodes deciding against each other's claims over time."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from eipha.config import MonitorSpec
from eipha.monitor.decide import Decision, Params, PeerView, View, decide, describe

PARAMS = Params(dead_after=5.0, init_dead=15.0, min_hold=10.0, auto_failback=True)
NO_FAILBACK = replace(PARAMS, auto_failback=False)
PAIR = {"web-a": "lb-a", "web-b": "lb-b"}
FOUR = {"api-a": "lb-a", "web-a": "lb-a", "api-b": "lb-b", "web-b": "lb-b"}
NOW = 100.0


def peer(
    last_seen: float | None = NOW - 0.5,
    *,
    name: str = "lb-b",
    healthy: bool = True,
    leaving: bool = False,
    holding: frozenset[str] = frozenset({"web-b"}),
    healthy_since: float | None = 0.0,
) -> PeerView:
    return PeerView(name, last_seen, healthy, leaving, holding, healthy_since)


def view(
    *peers: PeerView,
    healthy: bool = True,
    quorum: bool = True,
    started_at: float = 0.0,
    homes: dict[str, str] | None = None,
    held_since: dict[str, float] | None = None,
) -> View:
    return View(
        me="lb-a",
        started_at=started_at,
        healthy=healthy,
        quorum=quorum,
        peers={p.name: p for p in (peers or (peer(),))},
        homes=PAIR if homes is None else homes,
        held_since=held_since or {},
    )


def reason_for(decision: Decision, eip: str) -> str:
    found = [r for r in decision.reasons if r.startswith(f"{eip}: ")]
    assert len(found) == 1, decision.reasons
    return found[0]


A, AB = frozenset({"web-a"}), frozenset({"web-a", "web-b"})
NONE: frozenset[str] = frozenset()


# --------------------------------------------------------------------------- the table

CASES = [
    # (id, view, params, now, hold, sentence about web-b or None if it is not mentioned)
    ("all-well", view(), PARAMS, NOW, A, None),
    ("silent-just-under", view(peer(NOW - 4.9)), PARAMS, NOW, A, None),
    (
        "silent-at",
        view(peer(NOW - 5.0)),
        PARAMS,
        NOW,
        AB,
        "web-b: peer lb-b silent for 5.0 s (dead_after 5 s); taking it over",
    ),
    ("silent-over", view(peer(NOW - 60)), PARAMS, NOW, AB, "silent for 60.0 s"),
    ("leaving", view(peer(leaving=True)), PARAMS, NOW, AB, "peer lb-b is leaving; taking"),
    (
        "leaving-within-init-dead",
        view(peer(2.0, leaving=True)),
        PARAMS,
        3.0,
        AB,
        "web-b: peer lb-b is leaving; taking it over",
    ),
    ("unhealthy-peer", view(peer(healthy=False)), PARAMS, NOW, AB, "says it is unhealthy; taking"),
    (
        "unhealthy-peer-within-init-dead",
        view(peer(2.0, healthy=False)),
        PARAMS,
        3.0,
        A,
        "web-b: peer lb-b says it is unhealthy but I started 3.0 s ago (init_dead 15 s); "
        "not taking over yet",
    ),
    (
        "dead-within-init-dead",
        view(peer(1.0)),
        PARAMS,
        10.0,
        A,
        "silent for 9.0 s (dead_after 5 s) but I started 10.0 s ago (init_dead 15 s)",
    ),
    ("dead-at-init-dead", view(peer(1.0)), PARAMS, 15.0, AB, "silent for 14.0 s"),
    (
        "never-seen-within-init-dead",
        view(peer(None)),
        PARAMS,
        14.9,
        NONE,
        "web-b: no word from lb-b yet (14.9 s of init_dead 15 s); not taking over",
    ),
    (
        "never-seen-after-init-dead",
        view(peer(None)),
        PARAMS,
        15.0,
        AB,
        "web-b: peer lb-b never heard from in 15.0 s (init_dead 15 s); taking it over",
    ),
    (
        "quorum-lost",
        view(peer(NOW - 10), quorum=False),
        PARAMS,
        NOW,
        A,
        "web-b: peer lb-b silent for 10.0 s (dead_after 5 s) but quorum is lost; not taking over",
    ),
    ("quorum-lost-leaving", view(peer(leaving=True), quorum=False), PARAMS, NOW, A, "quorum"),
    (
        "quorum-lost-keeps-what-it-holds",
        view(peer(NOW - 10), quorum=False, held_since={"web-b": 50.0}),
        PARAMS,
        NOW,
        AB,
        "web-b: peer lb-b silent for 10.0 s (dead_after 5 s); keeping it",
    ),
    (
        "unhealthy-self",
        view(peer(NOW - 10), healthy=False),
        PARAMS,
        NOW,
        NONE,
        "web-b: peer lb-b silent for 10.0 s (dead_after 5 s) but I am unhealthy; not taking over",
    ),
    (
        "unhealthy-self-lets-go",
        view(peer(NOW - 10), healthy=False, held_since={"web-b": 50.0}),
        PARAMS,
        NOW,
        NONE,
        "web-b: I am unhealthy; letting it go",
    ),
    ("unhealthy-self-peer-fine", view(healthy=False), PARAMS, NOW, NONE, None),
    (
        "keep-while-still-dead",
        view(peer(NOW - 30), held_since={"web-b": 70.0}),
        PARAMS,
        NOW,
        AB,
        "web-b: peer lb-b silent for 30.0 s (dead_after 5 s); keeping it",
    ),
    (
        "keep-while-still-unhealthy",
        view(peer(healthy=False, healthy_since=None), held_since={"web-b": 0.0}),
        PARAMS,
        NOW,
        AB,
        "says it is unhealthy; keeping it",
    ),
    (
        "flapping-peer",
        view(peer(healthy_since=NOW - 3), held_since={"web-b": 20.0}),
        PARAMS,
        NOW,
        AB,
        "web-b: lb-b healthy again for 3.0 s (held 80.0 s, min_hold 10 s); keeping it for now",
    ),
    (
        "failback-after-min-hold",
        view(peer(healthy_since=NOW - 10), held_since={"web-b": 20.0}),
        PARAMS,
        NOW,
        A,
        "web-b: lb-b healthy again for 10.0 s (min_hold 10 s); handing it back",
    ),
    (
        "held-too-briefly",
        view(peer(healthy_since=NOW - 60), held_since={"web-b": NOW - 9.9}),
        PARAMS,
        NOW,
        AB,
        "(held 9.9 s, min_hold 10 s); keeping it for now",
    ),
    (
        "healthy-since-unknown",
        view(peer(healthy_since=None), held_since={"web-b": 0.0}),
        PARAMS,
        NOW,
        AB,
        "healthy again for 0.0 s",
    ),
    (
        "no-auto-failback",
        view(peer(healthy_since=0.0), held_since={"web-b": 0.0}),
        NO_FAILBACK,
        NOW,
        AB,
        "web-b: lb-b healthy again for 100.0 s but auto_failback is off; keeping it (lb-b waits)",
    ),
    (
        "no-auto-failback-still-dead",
        view(peer(NOW - 30), held_since={"web-b": 0.0}),
        NO_FAILBACK,
        NOW,
        AB,
        "keeping it",
    ),
    (
        "home-of-unknown-node",
        view(homes={"web-a": "lb-a", "web-c": "lb-c"}),
        PARAMS,
        NOW,
        A,
        None,
    ),
]


@pytest.mark.parametrize(
    ("the_view", "params", "now", "hold", "sentence"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_decide(
    the_view: View, params: Params, now: float, hold: frozenset[str], sentence: str | None
) -> None:
    decision = decide(the_view, params, now)
    assert decision.hold == hold
    about_b = [r for r in decision.reasons if r.startswith("web-b: ")]
    if sentence is None:
        assert about_b == []
    else:
        assert len(about_b) == 1
        assert sentence in about_b[0]


# --------------------------------------------------------------------------- my home EIP


def test_home_held_while_healthy() -> None:
    decision = decide(view(), PARAMS, NOW)
    assert reason_for(decision, "web-a") == "web-a: my home EIP, I am healthy; holding it"


def test_home_not_claimed_when_unhealthy() -> None:
    decision = decide(view(healthy=False), PARAMS, NOW)
    assert decision.hold == NONE
    assert "I am unhealthy; not claiming it" in reason_for(decision, "web-a")


@pytest.mark.parametrize("params", [PARAMS, NO_FAILBACK], ids=["failback", "no-failback"])
def test_home_waits_while_a_healthy_peer_holds_it(params: Params) -> None:
    """The tie-break: back from the dead, I do not take my home EIP from a healthy peer that
    took it over; I wait until it stops claiming it, so the pair never ping-pongs."""
    holder = peer(holding=frozenset({"web-a", "web-b"}))
    decision = decide(view(holder), params, NOW)
    assert decision.hold == NONE
    expected = "web-a: my home EIP, but healthy peer lb-b holds it; waiting for it"
    assert reason_for(decision, "web-a") == expected


@pytest.mark.parametrize(
    "holder",
    [
        peer(NOW - 5, holding=frozenset({"web-a", "web-b"})),
        peer(healthy=False, holding=frozenset({"web-a"})),
        peer(leaving=True, holding=frozenset({"web-a"})),
    ],
    ids=["dead", "unhealthy", "leaving"],
)
def test_home_reclaimed_from_a_failed_holder(holder: PeerView) -> None:
    decision = decide(view(holder), NO_FAILBACK, NOW)
    assert decision.hold == AB


def test_home_waits_for_word_from_peers_at_start() -> None:
    """Within init_dead a peer never heard from may hold my home EIP: wait for its word."""
    decision = decide(view(peer(None)), PARAMS, 1.0)
    assert decision.hold == NONE
    expected = "web-a: my home EIP; waiting for word from lb-b (1.0 s of init_dead 15 s)"
    assert reason_for(decision, "web-a") == expected
    assert decide(view(peer(0.9)), PARAMS, 1.0).hold == A


# --------------------------------------------------------------------------- several EIPs


def test_two_eips_per_node_peer_dead() -> None:
    decision = decide(view(peer(NOW - 6, holding=frozenset()), homes=FOUR), PARAMS, NOW)
    assert decision.hold == frozenset(FOUR)
    assert [r.split(":")[0] for r in decision.reasons] == ["api-a", "api-b", "web-a", "web-b"]


def test_two_eips_per_node_all_well() -> None:
    decision = decide(view(homes=FOUR), PARAMS, NOW)
    assert decision.hold == frozenset({"api-a", "web-a"})
    assert len(decision.reasons) == 2


def test_two_eips_per_node_failback_one_at_a_time() -> None:
    """Each EIP has its own held_since: the one held long enough goes back first."""
    the_view = view(
        peer(healthy_since=NOW - 20, holding=frozenset()),
        homes=FOUR,
        held_since={"api-b": NOW - 30, "web-b": NOW - 4},
    )
    assert decide(the_view, PARAMS, NOW).hold == frozenset({"api-a", "web-a", "web-b"})


def test_three_nodes_first_taker_keeps_lower_name_wins_a_tie() -> None:
    dead_c = peer(NOW - 10, name="lb-c", holding=frozenset({"web-c"}))
    homes = {"web-a": "lb-a", "web-b": "lb-b", "web-c": "lb-c"}
    b_holds_c = peer(holding=frozenset({"web-b", "web-c"}))
    # lb-b took web-c first: I leave it there
    decision = decide(view(b_holds_c, dead_c, homes=homes), PARAMS, NOW)
    assert decision.hold == A
    assert reason_for(decision, "web-c") == "web-c: lb-b already holds it; leaving it there"
    # we both claim it: lb-a < lb-b, so I keep it (and lb-b, by the same rule, lets go)
    both = view(b_holds_c, dead_c, homes=homes, held_since={"web-c": NOW - 1})
    assert decide(both, PARAMS, NOW).hold == frozenset({"web-a", "web-c"})
    # nobody holds it yet: I take it
    b_alone = peer(holding=frozenset({"web-b"}))
    assert decide(view(b_alone, dead_c, homes=homes), PARAMS, NOW).hold == frozenset(
        {"web-a", "web-c"}
    )


def test_lower_named_rival_wins_the_tie() -> None:
    me_is_lb_z = View(
        me="lb-z",
        started_at=0.0,
        healthy=True,
        quorum=True,
        peers={
            "lb-b": peer(holding=frozenset({"web-b", "web-c"})),
            "lb-c": peer(NOW - 10, name="lb-c", holding=frozenset()),
        },
        homes={"web-b": "lb-b", "web-c": "lb-c"},
        held_since={"web-c": NOW - 1},
    )
    decision = decide(me_is_lb_z, PARAMS, NOW)
    assert decision.hold == NONE
    assert "lower node name" in reason_for(decision, "web-c")


# --------------------------------------------------------------------------- the rest


def test_describe() -> None:
    decision = decide(view(peer(NOW - 5.2)), PARAMS, NOW)
    assert describe(decision) == (
        "web-a: my home EIP, I am healthy; holding it. "
        "web-b: peer lb-b silent for 5.2 s (dead_after 5 s); taking it over."
    )
    assert describe(Decision(NONE, ())) == "nothing to claim"


def test_params_from_spec() -> None:
    spec = MonitorSpec(
        port=7694,
        key_file="/etc/eipha/monitor.key",
        interval=1.0,
        dead_after=5.0,
        init_dead=15.0,
        quorum=(),
        health_check=None,
        auto_failback=False,
        min_hold=10.0,
        release_on_exit=False,
    )
    assert Params.from_spec(spec) == NO_FAILBACK


def test_decide_is_pure() -> None:
    the_view = view(peer(NOW - 10), held_since={"web-b": 50.0})
    assert decide(the_view, PARAMS, NOW) == decide(the_view, PARAMS, NOW)
    assert the_view.held_since == {"web-b": 50.0}


# --------------------------------------------------------------------------- two nodes over time


@dataclass
class Node:
    """One simulated peer monitor: what it last heard of the other, and its claims."""

    name: str
    started_at: float = 0.0
    alive: bool = True
    healthy: bool = True
    hold: frozenset[str] = NONE
    held_since: dict[str, float] = field(default_factory=dict)
    heard: PeerView | None = None

    def hear(self, other: Node, now: float) -> None:
        """A heartbeat from ``other``; healthy_since survives only an unbroken healthy run."""
        before, since = self.heard, now
        if (
            before is not None
            and before.healthy_since is not None
            and before.last_seen is not None
            and now - before.last_seen < PARAMS.dead_after
        ):
            since = before.healthy_since
        self.heard = PeerView(
            other.name, now, other.healthy, False, other.hold, since if other.healthy else None
        )

    def decide(self, other: str, params: Params, now: float) -> Decision:
        known = self.heard or PeerView(other, None, False, False, NONE, None)
        the_view = View(
            self.name, self.started_at, self.healthy, True, {other: known}, PAIR, self.held_since
        )
        decision = decide(the_view, params, now)
        home = {e for e, n in PAIR.items() if n == self.name}
        self.held_since = {e: self.held_since.get(e, now) for e in decision.hold if e not in home}
        self.hold = decision.hold
        return decision


def run(params: Params, events: dict[float, str], until: float) -> list[tuple[float, str, str]]:
    """Tick once a second; returns (time, node, claims) at every change of claims, and checks
    that two live healthy nodes never claim one EIP at the same time."""
    nodes = {"lb-a": Node("lb-a"), "lb-b": Node("lb-b")}
    a, b = nodes.values()
    changes: list[tuple[float, str, str]] = []
    now = 0.0
    while now <= until:
        if now in events:
            _apply(events[now], nodes, now)
        for me, other in ((a, b), (b, a)):
            if me.alive and other.alive:
                me.hear(other, now)
        for me, other in ((a, b), (b, a)):
            if me.alive:
                before = me.hold
                me.decide(other.name, params, now)
                if me.hold != before:
                    changes.append((now, me.name, ",".join(sorted(me.hold)) or "-"))
        both = [n for n in (a, b) if n.alive and n.healthy]
        assert len(both) < 2 or not (a.hold & b.hold), (now, a.hold, b.hold)
        now += 1.0
    return changes


def _apply(event: str, nodes: dict[str, Node], now: float) -> None:
    what, name = event.split()
    node = nodes[name]
    if what == "kill":
        node.alive, node.hold = False, NONE
    elif what == "start":
        node.alive, node.started_at, node.heard, node.held_since = True, now, None, {}
    else:
        node.healthy = what == "well"


def test_simulated_takeover_and_failback() -> None:
    events = {0.0: "kill lb-b", 3.0: "start lb-b", 20.0: "kill lb-b", 40.0: "start lb-b"}
    events |= {60.0: "sick lb-b", 62.0: "well lb-b", 80.0: "sick lb-b", 82.0: "well lb-b"}
    events |= {85.0: "sick lb-b", 87.0: "well lb-b"}
    assert run(PARAMS, events, until=110.0) == [
        (3.0, "lb-a", "web-a"),  # lb-a waited for lb-b's first word
        (3.0, "lb-b", "web-b"),
        (24.0, "lb-a", "web-a,web-b"),  # last heard at 19: silent 5 s at 24
        # 40: lb-b is back, sees lb-a holding web-b and waits
        (50.0, "lb-a", "web-a"),  # lb-b healthy for min_hold: lb-a lets go
        (51.0, "lb-b", "web-b"),  # lb-b hears it and re-associates
        (60.0, "lb-a", "web-a,web-b"),  # lb-b says unhealthy: taken at once
        (60.0, "lb-b", "-"),
        (72.0, "lb-a", "web-a"),  # healthy again since 62
        (73.0, "lb-b", "web-b"),
        (80.0, "lb-a", "web-a,web-b"),  # flapping: each relapse restarts min_hold
        (80.0, "lb-b", "-"),
        (97.0, "lb-a", "web-a"),
        (98.0, "lb-b", "web-b"),
    ]


def test_simulated_takeover_without_failback() -> None:
    events = {20.0: "kill lb-b", 40.0: "start lb-b", 60.0: "kill lb-a"}
    assert run(NO_FAILBACK, events, until=80.0) == [
        (0.0, "lb-a", "web-a"),
        (0.0, "lb-b", "web-b"),
        (24.0, "lb-a", "web-a,web-b"),
        # lb-b is back at 40 and waits for as long as lb-a is healthy
        (64.0, "lb-b", "web-a,web-b"),  # lb-a last heard at 59
    ]
