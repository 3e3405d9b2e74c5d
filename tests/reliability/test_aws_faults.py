"""EC2 API faults between eipha and the region, injected by :mod:`tests.reliability.faultproxy`.

The fault matrix: every fault class (throttling, InternalError, Unavailable, connection reset,
an answer slower than the read timeout, a black hole) on each EC2 call of each action:

* status: its DescribeAddresses;
* stop: its DescribeAddresses and its DisassociateAddress;
* start: its AssociateAddress and its read-back DescribeAddresses (its first DescribeAddresses
  is stop's and status's call, tried there).

Each target is tried *transient* (the call fails ``ATTEMPTS - 1`` times, then succeeds: the
most botocore's retries absorb; a timeout once, as each costs the 5 s read timeout) and
*persistent* (it never succeeds). The 60 cases run side by side, two per world (a VPC, two
ENIs, two EIPs) in the one simulated region, with at most two eipha processes starting up at
once; the parametrized tests then check each case's outcome:

* transient: the action succeeds within its deadline, the EIP where it should be;
* persistent: exit 1 (status: 4, printing ``not running``) within deadline + 2 s, stderr one
  ``eipha: error:`` line naming the AWS error code (or, with no code, the timeout or the
  dropped connection), no traceback; the EIP left where it was, or where the call that did
  land put it: start and status never leave it unassociated, stop only if its
  DisassociateAddress reached EC2.

Then eventual consistency and racing peers, through the proxy's ``invisible`` fault and hooks.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import cast

import pytest

from eipha.sim.region import SimulatedRegion
from tests.integration.conftest import Lab
from tests.reliability.faultproxy import (
    ASSOCIATE,
    DESCRIBE,
    DISASSOCIATE,
    ERROR_FAULTS,
    Exchange,
    Fault,
    Rig,
    Run,
    proxied,
    rig,
)

FAULTS: tuple[Fault, ...] = ("throttle", "internal", "unavailable", "reset", "slow", "blackhole")
TARGETS = (  # (action, EC2 call that fails, how many of that call to let through first)
    ("status", DESCRIBE, 0),
    ("stop", DESCRIBE, 0),
    ("stop", DISASSOCIATE, 0),
    ("start", ASSOCIATE, 0),
    ("start", DESCRIBE, 1),  # the read-back
)
ATTEMPTS = 4  # docs/how-it-works.md: "botocore standard mode (4 attempts, jittered backoff)"
# Transient: the retry budget (the last attempt succeeds); a timeout costs eipha's 5 s read
# timeout per attempt, so slow and blackhole fail once (three would take 15 s a case).
TRANSIENT_FAULTS = {
    fault: 1 if fault in ("slow", "blackhole") else ATTEMPTS - 1 for fault in FAULTS
}
TRANSIENT_TIMEOUT = 20.0  # the default deadline (docs/configuration.md)
# Persistent: room for a retry or two; a hung call gets a deadline well inside botocore's 5 s
# read timeout, so only eipha's own cut-off can keep it within deadline + 2 s.
PERSISTENT_TIMEOUT = {fault: 2.5 if fault in ("slow", "blackhole") else 4.0 for fault in FAULTS}
OVERRUN = 2.0  # docs: an action never runs more than 2 s past its deadline
STARTUP = 3.0  # exec to the deadline clock (interpreter, imports, config) on a busy 2-core box
WORLDS = 7
STARTING = 2  # processes starting up at once: one per core
EXIT_FAILED = {"start": 1, "stop": 1, "status": 4}  # docs/exit-codes.md; status: unknown


@dataclass(frozen=True)
class Case:
    fault: Fault
    action: str
    call: str
    skip: int
    persistent: bool

    @property
    def name(self) -> str:
        call = "ReadBack" if self.skip else self.call
        return f"{self.fault}-{self.action}-{call}"

    def cost(self) -> float:
        """Rough seconds, to start the long ones first."""
        if self.fault in ("slow", "blackhole"):
            return 6.0 if not self.persistent else 4.0
        return 3.0 if self.fault == "throttle" else 0.6


def cases(persistent: bool) -> list[Case]:
    return [Case(f, a, c, s, persistent) for f in FAULTS for (a, c, s) in TARGETS]


@dataclass
class Outcome:
    case: Case
    run: Run
    before: tuple[str | None, str | None]
    after: tuple[str | None, str | None]
    moved: tuple[str, str]  # where start puts it
    log: list[Exchange]
    proxy_errors: list[str]

    def faulted(self) -> list[Exchange]:
        return [x for x in self.log if x.fault == self.case.fault]

    def attempts(self) -> list[Exchange]:
        """Every request for the faulted call (after the ones let through)."""
        calls = [x for x in self.log if x.action == self.case.call]
        return calls[self.case.skip :]

    def landed(self, action: str) -> bool:
        return any(x.action == action and x.landed for x in self.log)


class StartupGate:
    """At most ``n`` eipha processes starting up at once (from exec to their first EC2
    request): 72 interpreters starting together on two cores would measure the scheduler,
    not eipha, and eat the short deadlines before the first call."""

    def __init__(self, n: int) -> None:
        self.slots = threading.Semaphore(n)

    def run(self, r: Rig, lane: Lane, case: Case, key: str, timeout: float) -> Run:
        proxy = r.proxies["lb-a"]
        self.slots.acquire()
        starting = True
        try:
            with r.launch("lb-a", case.action, lane.eip, key=key, timeout=timeout) as running:
                while running.proc.poll() is None and not proxy.reached(key):
                    time.sleep(0.01)
                self.slots.release()
                starting = False
                return running.wait()
        finally:
            if starting:
                self.slots.release()


@dataclass(frozen=True)
class Lane:
    """One EIP of a world and the private IPs a case uses: two lanes share a world (and its
    proxy, told apart by access key) without sharing an EIP, a lock or a private IP."""

    eip: str
    mine: str  # its binding on lb-a, where start puts it
    peer: str  # where lb-b holds it before a start


LANES = (Lane("web-a", "10.0.0.11", "10.0.0.22"), Lane("web-b", "10.0.0.12", "10.0.0.21"))


def run_case(r: Rig, lane: Lane, case: Case, gate: StartupGate) -> Outcome:
    proxy = r.proxies["lb-a"]
    key = r.new_key("lb-a")
    # start takes the EIP over from the peer; stop and status find it on this node
    if case.action == "start":
        r.lab.associate(lane.eip, "lb-b", lane.peer)
    else:
        r.lab.associate(lane.eip, "lb-a", lane.mine)
    before = r.where(lane.eip)
    times = None if case.persistent else TRANSIENT_FAULTS[case.fault]
    proxy.add(case.call, case.fault, times=times, skip=case.skip, client=key)
    timeout = PERSISTENT_TIMEOUT[case.fault] if case.persistent else TRANSIENT_TIMEOUT
    run = gate.run(r, lane, case, key, timeout)
    proxy.settle(key)
    proxy.clear(key)
    return Outcome(
        case,
        run,
        before,
        r.where(lane.eip),
        (r.eni("lb-a"), lane.mine),
        proxy.calls(client=key),
        list(proxy.errors),
    )


@pytest.fixture(scope="module")
def matrix(
    region: SimulatedRegion, tmp_path_factory: pytest.TempPathFactory
) -> dict[Case, Outcome]:
    """Every case of the matrix, run once: ``WORLDS`` worlds of two lanes each side by side."""
    tmp = tmp_path_factory.mktemp("faults")
    todo: queue.Queue[Case] = queue.Queue()
    for case in sorted(cases(False) + cases(True), key=Case.cost, reverse=True):
        todo.put(case)
    results: dict[Case, Outcome] = {}
    failures: list[BaseException] = []
    gate = StartupGate(STARTING)

    def work(r: Rig, lane: Lane) -> None:
        try:
            while True:
                try:
                    case = todo.get_nowait()
                except queue.Empty:
                    return
                results[case] = run_case(r, lane, case, gate)
        except BaseException as exc:  # reported below, in the test thread
            failures.append(exc)

    with ExitStack() as stack:
        rigs = [stack.enter_context(rig(region, tmp / f"w{i}", ("lb-a",))) for i in range(WORLDS)]
        threads = [
            threading.Thread(target=work, args=(r, lane), daemon=True)
            for r in rigs
            for lane in LANES
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        if any(thread.is_alive() for thread in threads):
            pytest.fail("the fault matrix did not finish in 300 s")
    if failures:
        raise failures[0]
    return results


def error_line(run: Run) -> str:
    """stderr is exactly one ``eipha: error:`` line; no traceback anywhere."""
    assert "Traceback" not in run.err + run.out, run.err
    assert len(run.lines) == 1, run.err
    assert run.lines[0].startswith("eipha: error: "), run.err
    return run.lines[0]


def within_deadline(outcome: Outcome, timeout: float) -> None:
    """Sharp: from eipha's first EC2 request (after its deadline started) to its exit.
    Loose: from exec, allowing for start-up before the deadline clock starts."""
    run = outcome.run
    assert outcome.log, "eipha made no EC2 request at all"
    assert run.exited - outcome.log[0].started <= timeout + OVERRUN, run.err
    assert run.elapsed <= STARTUP + timeout + OVERRUN, run.err


@pytest.mark.parametrize("case", cases(False), ids=lambda c: c.name)
def test_transient_faults_are_retried_to_success(matrix: dict[Case, Outcome], case: Case):
    got = matrix[case]
    run = got.run
    assert got.proxy_errors == []
    n = TRANSIENT_FAULTS[case.fault]
    assert len(got.faulted()) == n, "the faults were not all injected"
    assert [x.fault for x in got.attempts()][: n + 1] == [case.fault] * n + [None], (
        "the faulted call was not retried to success"
    )
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    assert not any(line.startswith("eipha: error") for line in run.lines), run.err
    within_deadline(got, TRANSIENT_TIMEOUT)
    assert run.elapsed < STARTUP + TRANSIENT_TIMEOUT  # inside the deadline, not just near it
    if case.action == "status":
        assert run.out == "running\n"
        assert got.after == got.before
    elif case.action == "stop":
        assert got.after == (None, None)
    else:
        assert got.after == got.moved, run.err
        assert "associated with" in run.err


@pytest.mark.parametrize("case", cases(True), ids=lambda c: c.name)
def test_persistent_faults_fail_cleanly_within_the_deadline(
    matrix: dict[Case, Outcome], case: Case
):
    got = matrix[case]
    run = got.run
    assert got.proxy_errors == []
    assert got.faulted(), "the fault was never injected"
    assert run.code == EXIT_FAILED[case.action], run.err
    line = error_line(run)
    if case.fault in ERROR_FAULTS:
        assert ERROR_FAULTS[case.fault][1] in line  # the AWS error code, by name
    else:
        assert re.search(r"deadline|did not answer|timeout|closed|unreachable", line, re.I), line
    within_deadline(got, PERSISTENT_TIMEOUT[case.fault])
    attempts = len(got.attempts())
    if case.fault in ("internal", "unavailable", "reset"):
        assert attempts == ATTEMPTS  # quick backoffs: the whole budget fits
    elif case.fault == "throttle":
        # retried while a backoff (1, 2, 4 s at most) and one more attempt fit the deadline
        assert 1 <= attempts <= ATTEMPTS
    if case.action == "status":
        assert run.out == "not running\n"  # never "running" when it does not know
    else:
        assert run.out == ""
    # where the EIP is: unchanged unless the mutating call reached EC2
    if case.action == "start":
        assert got.after == (got.moved if got.landed(ASSOCIATE) else got.before)
    elif case.action == "stop":
        assert got.after == ((None, None) if got.landed(DISASSOCIATE) else got.before)
    else:
        assert got.after == got.before
    if case.action != "stop":
        assert got.after != (None, None), "eipha left the EIP unassociated"


# -- eventual consistency and racing peers ---------------------------------------------------


@pytest.fixture
def rigged(lab: Lab) -> Iterator[Rig]:
    with proxied(lab) as r:
        yield r


def read_backs(r: Rig, node: str = "lb-a") -> list[Exchange]:
    log = r.proxies[node].log
    associate = next(i for i, x in enumerate(log) if x.action == ASSOCIATE)
    return [x for x in log[associate + 1 :] if x.action == DESCRIBE]


@pytest.mark.parametrize("reads", [1, 4])
def test_start_reads_back_until_the_association_is_visible(rigged: Rig, reads: int):
    old = rigged.lab.associate("web-a", "lb-b", "10.0.0.22")
    rigged.proxies["lb-a"].add(ASSOCIATE, "invisible", reads=reads)
    run = rigged.run("lb-a", "start", "web-a")
    assert run.code == 0, run.err
    assert rigged.proxies["lb-a"].errors == []
    backs = read_backs(rigged)
    assert len(backs) == reads + 1
    # the proxy really showed the old association that many times, then ours
    assert [x.association_id for x in backs[:-1]] == [old] * reads
    ours = rigged.proxies["lb-a"].calls(ASSOCIATE)[0].association_id
    assert backs[-1].association_id == ours
    assert rigged.where("web-a") == (rigged.eni("lb-a"), "10.0.0.11")
    assert re.search(r"web-a: .* associated with .*; visible after", run.err), run.err


def test_start_that_never_becomes_visible_fails_at_the_deadline(rigged: Rig):
    rigged.lab.associate("web-a", "lb-b", "10.0.0.22")
    rigged.proxies["lb-a"].add(ASSOCIATE, "invisible", reads=10_000)
    run = rigged.run("lb-a", "start", "web-a", timeout=3)
    assert run.code == 1
    line = error_line(run)
    assert "waiting for web-a to show on" in line
    assert "deadline" in line
    assert len(read_backs(rigged)) > 2  # kept reading, with backoff
    assert run.elapsed <= STARTUP + 3 + OVERRUN
    # it did land: on this node, not unassociated
    assert rigged.where("web-a") == (rigged.eni("lb-a"), "10.0.0.11")


@pytest.mark.parametrize("invisible_reads", [0, 2])
def test_a_racing_peer_that_wins_is_reported_not_hidden(rigged: Rig, invisible_reads: int):
    """lb-b's AssociateAddress lands between ours and our read-back (the proxy makes it
    right after forwarding ours); with ``invisible_reads``, ours was not visible yet either."""
    rigged.lab.associate("web-a", "lb-b", "10.0.0.22")
    peer: list[str] = []

    def peer_wins() -> None:
        peer.append(rigged.lab.associate("web-a", "lb-b", "10.0.0.22"))

    fault: Fault = "invisible" if invisible_reads else "pass"
    rigged.proxies["lb-a"].add(ASSOCIATE, fault, reads=invisible_reads, after=peer_wins)
    run = rigged.run("lb-a", "start", "web-a")
    assert rigged.proxies["lb-a"].errors == []
    assert run.code == 1, run.err
    line = error_line(run)
    assert "another node associated it after our AssociateAddress" in line
    assert f"{rigged.eni('lb-b')} of {rigged.world.nodes['lb-b'].instance_id} 10.0.0.22" in line
    assert "not fighting back" in line
    assert rigged.proxies["lb-a"].actions().count(ASSOCIATE) == 1  # no fight
    assert len(read_backs(rigged)) == invisible_reads + 1
    assert rigged.lab.where("web-a")["AssociationId"] == peer[0]  # the peer's stands
    status = rigged.run("lb-a", "status", "web-a")
    assert (status.code, status.out) == (3, "not running\n")


def test_a_peer_that_moves_it_before_our_associate_is_overtaken(rigged: Rig):
    """The peer's association lands after our DescribeAddresses but before our
    AssociateAddress: ours comes later, so ours stands and start succeeds."""
    rigged.lab.associate("web-a", "lb-b", "10.0.0.22")
    rigged.proxies["lb-a"].add(
        ASSOCIATE, "pass", before=lambda: rigged.lab.associate("web-a", "lb-b", "10.0.0.22")
    )
    run = rigged.run("lb-a", "start", "web-a")
    assert run.code == 0, run.err
    assert rigged.where("web-a") == (rigged.eni("lb-a"), "10.0.0.11")


def test_a_stale_stop_never_removes_the_peers_new_association(rigged: Rig):
    """stop reads our association; the peer takes the EIP over before our
    DisassociateAddress, which then names an association that no longer exists."""
    rigged.lab.associate("web-a", "lb-a")
    peer: list[str] = []
    rigged.proxies["lb-a"].add(
        DISASSOCIATE,
        "pass",
        before=lambda: peer.append(rigged.lab.associate("web-a", "lb-b", "10.0.0.22")),
    )
    run = rigged.run("lb-a", "stop", "web-a")
    assert run.code == 0, run.err
    assert "already gone" in run.err
    [disassociate] = rigged.proxies["lb-a"].calls(DISASSOCIATE)
    assert disassociate.upstream_status == 400  # InvalidAssociationID.NotFound
    assert rigged.lab.where("web-a")["AssociationId"] == peer[0]


def test_the_proxy_answers_like_ec2(rigged: Rig):
    """The proxy itself: an injected error reaches botocore with its code and status, a reset
    is a reset, and requests are told apart by access key and source port."""
    import botocore.config
    import botocore.exceptions
    import botocore.session

    proxy = rigged.proxies["lb-a"]
    client = botocore.session.get_session().create_client(
        "ec2",
        region_name=rigged.world.region,
        endpoint_url=proxy.endpoint,
        aws_access_key_id="AKIDPROXYCHECK",
        aws_secret_access_key="testing",  # fake
        config=botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=1),
    )
    try:
        for fault, (status, code, _) in ERROR_FAULTS.items():
            proxy.add(DESCRIBE, cast(Fault, fault))
            with pytest.raises(botocore.exceptions.ClientError) as raised:
                client.describe_addresses()
            assert raised.value.response["Error"]["Code"] == code
            assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
        proxy.add(DESCRIBE, "reset")
        with pytest.raises(botocore.exceptions.ConnectionClosedError):
            client.describe_addresses()
        proxy.add(DESCRIBE, "blackhole")
        with pytest.raises(botocore.exceptions.ReadTimeoutError):
            client.describe_addresses()
        assert len(client.describe_addresses()["Addresses"]) == 2
    finally:
        client.close()
    proxy.settle()
    log = proxy.log
    assert [x.fault for x in log] == [*ERROR_FAULTS, "reset", "blackhole", None]
    assert {x.client for x in log} == {"AKIDPROXYCHECK"}
    assert all(x.port > 0 and x.started <= x.ended for x in log)
    assert log[-1].status == 200
    assert log[-1].landed
    assert proxy.errors == []
