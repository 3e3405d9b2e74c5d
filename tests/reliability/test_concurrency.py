"""Concurrency: many eipha processes on one node, and two nodes racing for one EIP.

Every process goes through a :class:`~tests.reliability.faultproxy.FaultProxy` (one per node)
with its own fake access key, so the proxy's request log says which process made which call
and when: that is what "no interleaved calls" and "the serialized order" are checked against.

eipha's contract, from docs/how-it-works.md (what eipha does on EC2, exactly):

* on one node, two eipha processes never interleave their calls for one EIP (an ``flock`` per
  allocation id), so concurrent starts and stops behave as if run one after another, in the
  order they took the lock;
* across nodes, AssociateAddress is last-writer-wins and nobody fights back: a start exits 0
  only if it saw its own association on its binding (at that moment), and a start whose
  association was overtaken by the other node's before it became visible exits 1 saying where
  the EIP is now.
"""

from __future__ import annotations

import functools
import itertools
import random
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from tests.integration.conftest import Lab
from tests.reliability.faultproxy import (
    ASSOCIATE,
    DESCRIBE,
    DISASSOCIATE,
    Exchange,
    Rig,
    Run,
    proxied,
)

SEED = 20_240_808
PROCESSES = 16
NETWORK_DELAY = 0.05  # per EC2 call: long enough that unserialized processes would overlap


@pytest.fixture
def rigged(lab: Lab) -> Iterator[Rig]:
    with proxied(lab) as r:
        yield r


def clean(run: Run) -> None:
    """Exit 0, one informational line on stderr, nothing on stdout, no traceback."""
    assert "Traceback" not in run.err + run.out, run.err
    assert run.code == 0, run.err
    assert run.out == ""
    assert len(run.lines) == 1, run.err
    assert not run.lines[0].startswith("eipha: error"), run.err


def by_process(log: list[Exchange]) -> dict[str, list[Exchange]]:
    blocks: dict[str, list[Exchange]] = {}
    for exchange in log:
        blocks.setdefault(exchange.client, []).append(exchange)
    return blocks


def test_sixteen_starts_and_stops_on_one_node_run_one_at_a_time(rigged: Rig):
    """16 simultaneous ``start``/``stop`` of web-a on lb-a (a seeded mix), every EC2 call
    slowed by 50 ms: the proxy log shows one process's calls at a time, each process did
    exactly what the state left by the one before it called for, and the final state is what
    that serialized order ends in — the last start's association, unless a stop came after."""
    proxy = rigged.proxies["lb-a"]
    rng = random.Random(SEED)
    ops = [rng.choice(("start", "stop")) for _ in range(PROCESSES)]
    assert 4 <= ops.count("start") <= PROCESSES - 4  # the seed gives a real mix
    association = rigged.lab.associate("web-a", "lb-b", "10.0.0.22")
    proxy.add(None, "pass", times=None, before=lambda: time.sleep(NETWORK_DELAY))
    with ExitStack() as stack:
        started = [
            stack.enter_context(rigged.launch("lb-a", op, "web-a", timeout=60)) for op in ops
        ]
        runs = {running.key: running.wait() for running in started}
    proxy.settle()
    assert proxy.errors == []
    blocks = by_process(proxy.log)
    assert set(blocks) == set(runs)  # every process reached EC2, and nobody else did

    # no interleaving: each process's calls end before the next one's begin
    order = sorted(blocks, key=lambda key: blocks[key][0].started)
    for before, after in itertools.pairwise(order):
        assert max(x.ended for x in blocks[before]) < blocks[after][0].started, (
            f"{runs[before].args} and {runs[after].args} interleaved their calls"
        )

    # replay the serialized order: each process did what the state before it called for
    here = (rigged.eni("lb-a"), "10.0.0.11")
    where: tuple[str | None, str | None] = (rigged.eni("lb-b"), "10.0.0.22")
    for key in order:
        run, calls = runs[key], blocks[key]
        clean(run)
        actions = [x.action for x in calls]
        if run.args[0] == "start" and where == here:
            assert actions == [DESCRIBE]
            assert "already on" in run.err
        elif run.args[0] == "start":
            assert actions == [DESCRIBE, ASSOCIATE, DESCRIBE]
            assert "associated with" in run.err
            association = calls[1].association_id or ""
            assert calls[2].association_id == association  # read back until visible
            where = here
        elif where[0] == rigged.eni("lb-a"):
            assert actions == [DESCRIBE, DISASSOCIATE]
            assert calls[1].association_id == association  # the one just read
            assert "disassociated from" in run.err
            association, where = "", (None, None)
        else:
            assert actions == [DESCRIBE]
            assert "nothing to do" in run.err
    final = rigged.lab.where("web-a")
    assert (final.get("NetworkInterfaceId"), final.get("PrivateIpAddress")) == where
    assert final.get("AssociationId", "") == association
    serialized = [runs[key].args[0] for key in order]
    if serialized[-1] == "start":
        assert where == here
    else:  # a stop after the last start took it off again
        assert where == (None, None) or "start" not in serialized


@dataclass(frozen=True)
class Round:
    initial: str | None  # the node whose binding holds web-a before the round, or None
    held: str | None = None  # this node's AssociateAddress lands first, answered after the other's


# 10 rounds: natural races from "unassociated", rounds where one node's association is
# forced to be overtaken before its read-back, and rounds where one node already holds it.
ROUNDS = (
    Round(None),
    Round(None),
    Round(None),
    Round(None),
    Round(None, held="lb-a"),
    Round(None, held="lb-b"),
    Round(None, held="lb-a"),
    Round(None, held="lb-b"),
    Round("lb-a"),
    Round("lb-b"),
)


def line_up(rigged: Rig, plan: Round, rng: random.Random) -> None:
    """Both first DescribeAddresses wait for each other; each AssociateAddress waits a seeded
    0-50 ms; with ``plan.held``, that node's AssociateAddress lands first and is answered only
    after the other's has landed."""
    barrier = threading.Barrier(2, timeout=20)
    landed = {node: threading.Event() for node in rigged.proxies}

    def before(node: str, jitter: float) -> None:
        time.sleep(jitter)
        if plan.held not in (None, node):
            assert landed[plan.held].wait(10), "the held node never associated"

    def after(node: str, other: str) -> None:
        landed[node].set()
        if plan.held == node:
            assert landed[other].wait(10), "the other node never associated"

    for node, proxy in rigged.proxies.items():
        other = next(n for n in rigged.proxies if n != node)
        jitter = rng.uniform(0, 0.05)
        proxy.add(DESCRIBE, "pass", before=barrier.wait)
        proxy.add(
            ASSOCIATE,
            "pass",
            before=functools.partial(before, node, jitter),
            after=functools.partial(after, node, other),
        )


def test_two_nodes_racing_start_agree_with_where_the_eip_ends(rigged: Rig):
    """lb-a and lb-b run ``start web-a`` at once, 10 rounds, lined up by :func:`line_up`.
    Each round: the EIP ends on exactly one node's binding, the process there exited 0,
    nobody associated twice, and the other process either exited 0 having seen its own
    association (it was there, then lost it: last writer wins) or exited 1 naming where the
    EIP is now — never 0 without having seen it."""
    rng = random.Random(SEED)
    bindings = {
        "lb-a": (rigged.eni("lb-a"), "10.0.0.11"),
        "lb-b": (rigged.eni("lb-b"), "10.0.0.22"),
    }
    tally: dict[str, int] = {}
    for number, plan in enumerate(ROUNDS):
        for proxy in rigged.proxies.values():
            proxy.clear()
        if plan.initial is None:
            now = rigged.lab.where("web-a")
            if now.get("AssociationId"):
                rigged.lab.client.disassociate_address(AssociationId=now["AssociationId"])
        else:
            rigged.lab.associate("web-a", plan.initial, bindings[plan.initial][1])
        marks = {node: len(proxy.log) for node, proxy in rigged.proxies.items()}
        line_up(rigged, plan, rng)
        with ExitStack() as stack:
            started = {
                node: stack.enter_context(rigged.launch(node, "start", "web-a", timeout=30))
                for node in bindings
            }
            runs = {node: running.wait() for node, running in started.items()}
        logs: dict[str, list[Exchange]] = {}
        for node, proxy in rigged.proxies.items():
            proxy.settle()
            assert proxy.errors == [], f"round {number}"
            logs[node] = proxy.log[marks[node] :]

        final = rigged.lab.where("web-a")
        where = (final.get("NetworkInterfaceId"), final.get("PrivateIpAddress"))
        assert where in bindings.values(), f"round {number}: web-a ended on {where}"
        [winner] = [node for node, binding in bindings.items() if binding == where]
        [loser] = [node for node in bindings if node != winner]
        context = f"round {number} {plan}: {runs}"
        for node, run in runs.items():
            assert "Traceback" not in run.err + run.out, context
            assert run.out == "", context
            assert len(run.lines) == 1, context
            assert [x.action for x in logs[node]].count(ASSOCIATE) <= 1, context  # no fight
        # the winner: exit 0, and it is its association that stands
        assert runs[winner].code == 0, context
        ours = [x for x in logs[winner] if x.action == ASSOCIATE]
        if ours:
            assert final["AssociationId"] == ours[0].association_id, context
        # the loser: 0 only having seen its own association there; else 1, saying where
        lost = runs[loser]
        mine = [x for x in logs[loser] if x.action == ASSOCIATE]
        if not mine:
            outcome = "already there, then taken"
            assert lost.code == 0, context
            assert "already on" in lost.err, context
        elif lost.code == 0:
            outcome = "associated, then overtaken"
            index = logs[loser].index(mine[0])
            seen = [x.association_id for x in logs[loser][index + 1 :] if x.action == DESCRIBE]
            assert mine[0].association_id in seen, context
            assert "associated with" in lost.err, context
        else:
            outcome = "race reported"
            assert lost.code == 1, context
            line = lost.lines[0]
            assert line.startswith("eipha: error: web-a: another node associated it"), context
            assert f"{bindings[winner][0]} of " in line, context
            assert f" {bindings[winner][1]};" in line, context
        if plan.held is not None:
            assert (loser, outcome) == (plan.held, "race reported"), context
        if plan.initial is not None:
            assert (loser, outcome) == (plan.initial, "already there, then taken"), context
        tally[outcome] = tally.get(outcome, 0) + 1
    print(f"two nodes racing start, {len(ROUNDS)} rounds: {tally}")
