"""Crash safety: ``eipha start`` and ``eipha stop`` killed with SIGKILL at random points.

Each node (lb-a with web-a, lb-b with web-b, in parallel: two independent EIPs, two locks)
runs a seeded sequence of cases. A case puts its EIP where the action has work to do, starts
``eipha start`` or ``eipha stop`` and SIGKILLs it at a random point of its run, a delay
drawn between 0 and the length (measured once per node and action) of one of three spans,
in turn: the whole run, process start to exit; from the moment the node's IMDS double sees
its ENI's id read (``interface-id``: at most one IMDS read follows it before the lock and the
EC2 calls) to its last
EC2 call answered; from its first DescribeAddresses answered (just before AssociateAddress
or DisassociateAddress) to its last call answered. The later spans keep start-up time on a
loaded machine from pushing most kills before the first call; 50 ms of region latency per
call widens the windows inside calls. Then it checks:

* the killed start never left the EIP unassociated (it never disassociates first);
* no stale lock: the lock file can be taken at once (flock dies with its process), and is
  owner-only in an owner-only directory;
* the next ``start`` or ``stop`` (either, seeded) exits 0 and EC2 shows what it promised.

Where each kill landed (in start-up, reading IMDS, between IMDS and EC2, during an EC2 call,
after one, or after the process had already finished) is read from the IMDS double's and the
region's request logs (each eipha process signs with its own access key), and printed (and
recorded as the ``sigkill_coverage`` property) as the coverage of the run.
"""

from __future__ import annotations

import fcntl
import os
import random
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eipha.sim.region import ApiRequest
from tests.integration.conftest import Lab

SEED = 8_2024
CASES_PER_NODE = 26  # two nodes: 52 kills
LATENCY = 0.05
PAIRS = {"lb-a": ("web-a", "lb-b"), "lb-b": ("web-b", "lb-a")}  # node: (its EIP, the peer)

ANCHORS = ("process start", "last IMDS read", "first call answered")


@dataclass(frozen=True)
class Timing:
    """A whole run's span from each anchor, in ANCHORS order: to its exit from process
    start, to its last EC2 call answered from the others."""

    spans: tuple[float, float, float]


@dataclass
class Kill:
    node: str
    action: str
    before: str  # where the EIP was: home, peer, unassociated
    delay: float
    landed: str  # e.g. "reading IMDS", "during AssociateAddress#1", "after exit (…)"
    then: str  # the next action, which must converge


def launch(lab: Lab, node: str, config: Path, key: str, *args: str) -> subprocess.Popen[str]:
    env = lab.env(node, config)
    env["AWS_ACCESS_KEY_ID"] = key  # tells this process's requests apart in the region log
    return subprocess.Popen(
        [sys.executable, "-m", "eipha", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    """Wait for ``proc``; on any failure (a timeout too), kill it by its pid and reap it."""
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def calls_of(lab: Lab, key: str) -> list[ApiRequest]:
    return [r for r in lab.region.requests if r.client == key]


def landed(calls: Sequence[ApiRequest], imds: Sequence[tuple[str, float]], killed_at: float) -> str:
    """Where a kill at ``killed_at`` fell among the process's EC2 calls, or before them
    among its IMDS reads (``(path, arrival)``)."""
    names = _ordinal_names(calls)
    for call, name in zip(calls, names, strict=True):
        if call.ended >= killed_at:  # sent before the kill (it is logged), not yet answered
            return f"during {name}"
    if calls:
        return f"after {names[-1]}"
    if not any(arrival < killed_at for _, arrival in imds):
        return "in start-up, before IMDS"
    if any(p.endswith("/interface-id") and arrival < killed_at for p, arrival in imds):
        return "after IMDS, before EC2"
    return "reading IMDS"


def _ordinal_names(calls: Sequence[ApiRequest]) -> list[str]:
    seen: Counter[str] = Counter()
    names = []
    for call in calls:
        seen[call.action] += 1
        names.append(f"{call.action}#{seen[call.action]}")
    return names


def place(lab: Lab, eip: str, node: str, where: str) -> None:
    """Put ``eip`` home on ``node``, on the peer's secondary IP, or nowhere."""
    peer = PAIRS[node][1]
    if where == "home":
        lab.associate(eip, node)
    elif where == "peer":
        lab.associate(eip, peer, lab.world.nodes[peer].secondary_ips[0])
    else:
        association = lab.where(eip).get("AssociationId")
        if association:
            lab.client.disassociate_address(AssociationId=association)


def on_node(lab: Lab, eip: str, node: str) -> bool:
    return lab.where(eip).get("NetworkInterfaceId") == lab.world.nodes[node].eni_id


def no_stale_lock(lock: Path) -> None:
    """The lock file, if the killed run got that far, is owner-only and free right now."""
    if not lock.exists():
        return
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600, oct(lock.stat().st_mode)
    assert stat.S_IMODE(lock.parent.stat().st_mode) == 0o700, oct(lock.parent.stat().st_mode)
    fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: a stale lock
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def identity_read(lab: Lab, node: str, since: int, proc: subprocess.Popen[str]) -> float | None:
    """When the node's IMDS double got its first read of the ENI's id (``interface-id``)
    after log position ``since``: at most one more IMDS read follows before eipha locks and
    calls EC2 (the ENI's private IPs for a takeover, the instance's other ENIs for a stop).
    None if the process exits (or 10 s pass) first."""
    double = lab.imds[node]
    end = time.monotonic() + 10
    while time.monotonic() < end:
        for index in range(since, len(double.arrivals)):  # requests[i] is logged first
            if double.requests[index][1].endswith("/interface-id"):
                return double.arrivals[index]
        if proc.poll() is not None:
            return None
        time.sleep(0.002)
    return None


def first_call_answered(lab: Lab, key: str, proc: subprocess.Popen[str]) -> float | None:
    """When the first EC2 request signed with ``key`` was answered (the region logs it
    then); None if the process exits (or 10 s pass) first."""
    end = time.monotonic() + 10
    while time.monotonic() < end:
        calls = calls_of(lab, key)
        if calls:
            return calls[0].ended
        if proc.poll() is not None:
            return None
        time.sleep(0.002)
    return None


def anchor_time(
    lab: Lab, node: str, key: str, anchor: str, since: int, proc: subprocess.Popen[str]
) -> float | None:
    if anchor == "last IMDS read":
        return identity_read(lab, node, since, proc)
    if anchor == "first call answered":
        return first_call_answered(lab, key, proc)
    return None


def calibrate(lab: Lab, node: str, config: Path, action: str) -> Timing:
    """One whole run of ``action`` with work to do, timed from each anchor."""
    eip = PAIRS[node][0]
    place(lab, eip, node, "peer" if action == "start" else "home")
    since = len(lab.imds[node].arrivals)
    key = f"calibrate-{node}-{action}"
    began = time.monotonic()
    proc = launch(lab, node, config, key, action, eip)
    code, _, err = finish(proc)
    ended = time.monotonic()
    assert code == 0, err
    imds_done = identity_read(lab, node, since, proc)
    assert imds_done is not None, lab.imds[node].requests[since:]
    calls = calls_of(lab, key)
    last = calls[-1].ended
    return Timing((ended - began, last - imds_done, last - calls[0].ended))


def kill_cases(lab: Lab, node: str, run_dir: Path) -> list[Kill]:
    rng = random.Random(f"{SEED}-{node}")
    eip, _ = PAIRS[node]
    config = lab.config(node)
    lock = run_dir / "locks" / f"{lab.alloc(eip)}.lock"
    timing = {action: calibrate(lab, node, config, action) for action in ("start", "stop")}
    kills = []
    for index in range(CASES_PER_NODE):
        action = rng.choice(["start", "stop"])
        before = rng.choice(["peer", "unassociated"]) if action == "start" else "home"
        anchor = index % len(ANCHORS)
        delay = rng.uniform(0.0, timing[action].spans[anchor])
        then = action if rng.random() < 0.7 else {"start": "stop", "stop": "start"}[action]
        place(lab, eip, node, before)

        key = f"kill-{node}-{index}"
        since = len(lab.imds[node].arrivals)
        proc = launch(lab, node, config, key, action, eip)
        began = time.monotonic()
        try:
            began = anchor_time(lab, node, key, ANCHORS[anchor], since, proc) or began
            time.sleep(max(0.0, began + delay - time.monotonic()))
            killed_at = time.monotonic()
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)  # by its pid; a no-op if it has just exited
        finally:
            killed_code, _, err = finish(proc)
        double = lab.imds[node]
        requests, arrivals = double.requests[since:], double.arrivals[since:]
        imds = [(r[1], t) for r, t in zip(requests, arrivals, strict=False)]
        label = f"{node} case {index}: {action} from {before}, kill {delay:.3f} s after"
        label += f" {ANCHORS[anchor]}"
        assert killed_code in (0, -signal.SIGKILL), (label, killed_code, err)
        if action == "start" and before == "peer":
            # AssociateAddress moves it in one step: never a moment with no association
            assert lab.where(eip).get("AssociationId"), (label, "left unassociated")
        no_stale_lock(lock)

        code, _, err = finish(launch(lab, node, config, f"then-{node}-{index}", then, eip))
        # by now every request the killed process sent has been answered and logged
        where = (
            "after exit (it had finished)"
            if killed_code == 0
            else landed(calls_of(lab, key), imds, killed_at)
        )
        assert code == 0, (label, where, then, err)
        assert "Traceback" not in err
        if then == "start":
            address = lab.where(eip)
            binding = (lab.world.nodes[node].eni_id, lab.world.nodes[node].primary_ip)
            assert (address.get("NetworkInterfaceId"), address.get("PrivateIpAddress")) == binding
        else:
            assert not on_node(lab, eip, node), (label, where, lab.where(eip))
        kills.append(Kill(node, action, before, delay, where, then))
    return kills


def coverage(kills: Sequence[Kill]) -> str:
    table = Counter((k.action, k.landed) for k in kills)
    rows = [f"  {action:5}  {where:40}  {n:3}" for (action, where), n in sorted(table.items())]
    return "\n".join([f"{len(kills)} SIGKILLs, where they landed:", *rows])


def test_sigkill_at_random_points_leaves_no_stale_lock_and_the_next_run_converges(
    lab: Lab, run_dir: Path, record_property: Any
):
    lab.region.latency = LATENCY
    try:
        with ThreadPoolExecutor(len(PAIRS)) as pool:
            futures = [pool.submit(kill_cases, lab, node, run_dir) for node in PAIRS]
            kills = [kill for future in futures for kill in future.result()]
    finally:
        lab.region.latency = 0.0
    report = coverage(kills)
    print(report)
    record_property("sigkill_coverage", report)
    assert len(kills) >= 50
    assert {k.action for k in kills} == {"start", "stop"}
    # the point of the exercise: some kills did land in the middle of an EC2 call
    assert any(k.landed.startswith("during ") for k in kills), report
