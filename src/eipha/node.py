"""This node's use cases: the one layer every front end calls.

A :class:`Node` is built once per process (:func:`eipha.wiring.node`) and kept as long as
the process lives: the CLI's one command, a cluster manager's one call, the keepalived FIFO
reader and the peer monitor for their whole lives. It holds the config, the adapters (the
IMDS client and the EC2 gateway, built on first use), who this node is (read from IMDS once,
read again after a miss), and runs each action under **one** watchdog: the action gets its
own deadline, every IMDS and API call inside it shares that deadline, and the caller gets an
answer at most :data:`OVERRUN` seconds after it, whatever a hung socket does.

Names are resolved once per action: config names and allocation ids with no I/O (a bad name
fails before any), public IPs with one DescribeAddresses. The plans themselves are
:mod:`eipha.failover`'s; the binding rule is :mod:`eipha.binding`'s, applied by
:mod:`eipha.placements`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from eipha import errors, failover, locking, placements
from eipha.clock import Deadline
from eipha.config import Config
from eipha.failover import Events, Outcome, Placement, Progress
from eipha.model import Address, NodeIdentity
from eipha.ports import Adapters, Ec2

if TYPE_CHECKING:
    from eipha.imds import ImdsClient

log = logging.getLogger(__name__)
T = TypeVar("T")

OVERRUN = 1.5
"""How far past its deadline an action may run before the watchdog gives up on it (the
exit-code docs promise at most 2 s)."""


@dataclass(frozen=True)
class Answer:
    """One EIP of a status: where it belongs on this node, whether it is there, where it is."""

    target: Placement
    running: bool
    address: Address


@dataclass(frozen=True)
class Sighting:
    """One EIP of a survey: where it is, and whether that is on this node."""

    label: str
    address: Address
    here: bool


@dataclass(frozen=True)
class Release:
    """A stop as a cluster manager needs it: each EIP's outcome and, when some failed, which
    of those one more DescribeAddresses found still on this node (None: it could not tell,
    ``unknown`` says why)."""

    outcomes: list[Outcome]
    still_here: list[str] | None = None
    unknown: errors.EiphaError | None = None


@dataclass
class Kept:
    """What a node keeps between actions: its adapters and the part of who it is that does
    not change while the instance runs (its ENI, MAC and primary IP; the secondary IPs and the
    instance's other ENIs do change, and are read in each action that needs them)."""

    adapters: Adapters
    identity: NodeIdentity | None = None


@dataclass
class Run:
    """One action: the adapters it started with (a thread the watchdog gave up on keeps
    using these, never newer ones), its deadline and what it has done so far."""

    kept: Kept
    progress: Progress = field(default_factory=Progress)

    @property
    def adapters(self) -> Adapters:
        return self.kept.adapters

    @property
    def ec2(self) -> Ec2:
        return self.kept.adapters.ec2

    @property
    def deadline(self) -> Deadline:
        return self.kept.adapters.deadline


class Node:
    """Start, stop and status for this node, and what drills, validate and the monitor need."""

    def __init__(self, config: Config, build: Callable[[Deadline], Adapters]) -> None:
        self.config = config
        self._build = build
        self._kept = Kept(build(Deadline(config.timeout)))
        self._busy = threading.Lock()  # one action at a time: they share one deadline

    @property
    def adapters(self) -> Adapters:
        return self._kept.adapters

    @property
    def deadline(self) -> Deadline:
        return self._kept.adapters.deadline

    @property
    def ec2(self) -> Ec2:
        return self._kept.adapters.ec2

    @property
    def imds(self) -> ImdsClient:
        return self._kept.adapters.imds

    @property
    def region(self) -> str:
        return self._kept.adapters.region

    # -- who this node is --------------------------------------------------------------------

    def identity(self, *, secondaries: bool = True) -> NodeIdentity:
        """This node (what a check like validate shows): its ENI and primary IP, kept, and
        with ``secondaries`` its secondary IPs, read now."""
        return _identity(Run(self._kept), secondaries)

    def forget(self) -> None:
        """What was kept about this node may be out of date (EC2 refused a binding): the
        next action reads it again."""
        self._kept.identity = None

    def renew(self) -> None:
        """New adapters (EC2 client, credentials, IMDS token) and nothing kept: after a
        failure that what was kept may have caused. A call still running on the old ones
        (left behind by the watchdog) goes on with them and their passed deadline."""
        self._kept = Kept(self._build(Deadline(self.config.timeout)))

    def warm(self, seconds: float | None = None) -> tuple[NodeIdentity, str]:
        """Do ahead what every action does before its first API call (import botocore, make
        the EC2 client, get an IMDS token, read who this node is); this node and its instance
        id. A long-lived caller then pays only each action's own calls."""

        def work(run: Run) -> tuple[NodeIdentity, str]:
            run.adapters.prepare()
            node = _identity(run, secondaries=False)
            instance = run.adapters.instance_id()
            run.adapters.connect()
            return node, instance

        return self._bounded("prepare", seconds, work)

    # -- the use cases -----------------------------------------------------------------------

    def start(
        self,
        eips: Sequence[str],
        private_ip: str | None = None,
        *,
        agree: bool = False,
        seconds: float | None = None,
        events: Events | None = None,
    ) -> list[Outcome]:
        """Put the EIPs on this node's bindings. ``private_ip`` overrides the binding rule;
        with ``agree`` (a cluster manager's resource) it may only restate it for an EIP the
        config has. One outcome per EIP; raises for a failure before any EIP was tried."""
        chosen = placements.select_all(eips, self.config)  # a bad name fails before any I/O

        def work(run: Run) -> list[Outcome]:
            wanted = self._placements(run, chosen, private_ip, agree)
            with locking.locked([t.allocation_id for t in wanted], run.deadline):
                return failover.start(
                    wanted, run.ec2, run.deadline, events=events, progress=run.progress
                )

        return self._outcomes("start", seconds, work)

    def stop(self, eips: Sequence[str], *, seconds: float | None = None) -> list[Outcome]:
        """Take the EIPs off this node (only those on one of its ENIs)."""
        chosen = placements.select_all(eips, self.config)
        return self._outcomes("stop", seconds, lambda run: self._stop(run, chosen)[0])

    def release(self, eips: Sequence[str], *, seconds: float | None = None) -> Release:
        """A stop, and for the EIPs whose DisassociateAddress failed one more
        DescribeAddresses (is it still here?), all under the one deadline: what a cluster
        manager's stop needs to decide (:mod:`eipha.agents.verdicts`)."""
        chosen = placements.select_all(eips, self.config)

        def work(run: Run) -> Release:
            outcomes, mine = self._stop(run, chosen)
            failed = [o.target for o in outcomes if o.error is not None]
            if not failed:
                return Release(outcomes)
            try:
                found = failover.describe(run.ec2, failed)
            except errors.EiphaError as exc:
                return Release(outcomes, None, exc)
            return Release(outcomes, [t.label for t in failed if mine(found[t.allocation_id])])

        def late(run: Run) -> Release | None:
            outcomes = run.progress.outcomes(run.deadline)
            if outcomes is None:
                return None
            passed = errors.DeadlineExceeded(
                "re-reading after a failed stop did not finish",
                f"deadline of {run.deadline.seconds:g} s passed",
            )
            return Release(outcomes, None, passed)

        return self._bounded("stop", seconds, work, late)

    def status(
        self,
        eips: Sequence[str],
        private_ip: str | None = None,
        *,
        agree: bool = False,
        seconds: float | None = None,
    ) -> list[Answer]:
        """Is each EIP exactly on this node's binding for it? One DescribeAddresses."""
        chosen = placements.select_all(eips, self.config)

        def work(run: Run) -> list[Answer]:
            wanted = self._placements(run, chosen, private_ip, agree)
            return [Answer(*answer) for answer in failover.status(wanted, run.ec2)]

        return self._bounded("status", seconds, work)

    def survey(self, eips: Sequence[str], seconds: float | None = None) -> list[Sighting]:
        """Where each EIP is, and whether on one of this node's ENIs: one DescribeAddresses
        (the monitor's reconcile)."""
        chosen = placements.select_all(eips, self.config)

        def work(run: Run) -> list[Sighting]:
            run.adapters.prepare()
            mine = _on(run.adapters.eni_ids())
            wanted = placements.placements(self._resolve(run, chosen), self.config)
            found = failover.describe(run.ec2, wanted)
            return [
                Sighting(t.label, found[t.allocation_id], mine(found[t.allocation_id]))
                for t in wanted
            ]

        return self._bounded("reading where the EIPs are", seconds, work)

    def place(
        self,
        target: Placement,
        *,
        seconds: float | None = None,
        events: Events | None = None,
        locked: bool = False,
    ) -> Outcome:
        """Move one EIP onto ``target.binding`` (any node's: a drill), or off wherever it is
        when that is None, by the same plans as start and stop. ``locked``: the caller holds
        the EIP's lock already (a drill holds it over both of its moves)."""

        def move(run: Run) -> list[Outcome]:
            ec2, deadline, progress = run.ec2, run.deadline, run.progress
            if target.binding is None:
                return failover.stop([target], ec2, deadline, _anywhere, events, progress)
            return failover.start([target], ec2, deadline, events=events, progress=progress)

        def work(run: Run) -> list[Outcome]:
            if locked:
                return move(run)
            with locking.locked([target.allocation_id], run.deadline):
                return move(run)

        [outcome] = self._outcomes("move", seconds, work)
        return outcome

    # -- inside an action --------------------------------------------------------------------

    def _stop(
        self, run: Run, chosen: Sequence[placements.Selector]
    ) -> tuple[list[Outcome], Callable[[Address], bool]]:
        run.adapters.prepare()
        mine = _on(run.adapters.eni_ids())  # every ENI of the instance, read now
        wanted = placements.placements(self._resolve(run, chosen), self.config)
        with locking.locked([t.allocation_id for t in wanted], run.deadline):
            outcomes = failover.stop(wanted, run.ec2, run.deadline, mine, progress=run.progress)
        return outcomes, mine

    def _resolve(
        self, run: Run, chosen: Sequence[placements.Selector]
    ) -> list[placements.Selector]:
        return placements.resolve_public_ips(
            chosen,
            self.config,
            lambda ips: run.ec2.describe_addresses(public_ips=ips),
            run.adapters.region,
        )

    def _placements(
        self,
        run: Run,
        chosen: Sequence[placements.Selector],
        private_ip: str | None,
        agree: bool,
    ) -> list[Placement]:
        """Where each EIP belongs on this node, learned with the EC2 client being built
        alongside. The ENI's secondary IPs are read only when a binding needs more than the
        primary IP: the binding rule, given none of them, either binds an EIP to the primary
        IP (its home) or fails; then they are read (one request) and it is asked again."""
        run.adapters.prepare()
        node = _identity(run, secondaries=False)
        resolved = self._resolve(run, chosen)
        try:
            return placements.placements(resolved, self.config, node, private_ip, agree=agree)
        except errors.NotConfigured:
            pass  # it needs a secondary IP, or it is wrong: the full answer says which
        node = run.adapters.with_secondaries(node)
        return placements.placements(resolved, self.config, node, private_ip, agree=agree)

    # -- the one watchdog --------------------------------------------------------------------

    def _outcomes(
        self, doing: str, seconds: float | None, work: Callable[[Run], list[Outcome]]
    ) -> list[Outcome]:
        outcomes = self._bounded(
            doing, seconds, work, lambda run: run.progress.outcomes(run.deadline)
        )
        if any(isinstance(o.error, errors.NotConfigured) for o in outcomes):
            self.forget()  # EC2 refused a binding (an IP not on the ENI): read it again
        return outcomes

    def _bounded(
        self,
        doing: str,
        seconds: float | None,
        work: Callable[[Run], T],
        late: Callable[[Run], T | None] | None = None,
    ) -> T:
        """Run ``work`` in a thread and wait until the deadline plus :data:`OVERRUN`.

        botocore's own timeouts and retries bound each call, but not the sum of them; this is
        the hard bound an action promises, the wait for another action of this node to finish
        included. When time is up, ``late`` may still make an answer of what ``work`` got
        done (start and stop: the EIPs whose steps finished keep their outcomes, the others
        are reported as timed out); otherwise the action fails whole.
        """
        budget = self.config.timeout if seconds is None else seconds
        began = self.deadline.clock()
        if not self._busy.acquire(timeout=budget + OVERRUN):
            raise errors.DeadlineExceeded(
                f"{doing} did not start", "another action of this node did not finish in time"
            )
        try:
            run = Run(self._kept)
            run.deadline.seconds = budget
            run.deadline.started = began  # the wait for the lock counts
            box: list[T] = []
            failure: list[BaseException] = []

            def go() -> None:
                try:
                    box.append(work(run))
                except BaseException as exc:
                    failure.append(exc)

            thread = threading.Thread(target=go, daemon=True, name=f"eipha-{doing}")
            thread.start()
            thread.join(max(0.0, run.deadline.remaining() + OVERRUN))
            if failure:
                self.forget()
                raise failure[0]
            if box:
                return box[0]
            self.renew()  # the thread left behind keeps the old adapters, and their deadline
        finally:
            self._busy.release()
        landed = late(run) if late is not None else None
        if landed is not None:
            return landed
        raise errors.DeadlineExceeded(
            f"{doing} did not finish",
            f"EC2 did not answer within the {run.deadline.seconds:g} s deadline",
        )


def _identity(run: Run, secondaries: bool) -> NodeIdentity:
    """Who this node is: what does not change is kept (read once per process, again after
    :meth:`Node.forget`); with ``secondaries``, the ENI's secondary IPs, read now."""
    node = run.kept.identity
    if node is None:
        node = run.kept.identity = run.adapters.identity(secondaries=False)
    return run.adapters.with_secondaries(node) if secondaries else node


def _on(enis: frozenset[str]) -> Callable[[Address], bool]:
    """Is an EIP on one of these ENIs (any private IP)?"""
    return lambda address: address.associated and address.network_interface_id in enis


def _anywhere(address: Address) -> bool:
    return True


class Keeper:
    """One node for a long-lived process (the keepalived FIFO reader, the peer monitor):
    kept while the config is unchanged, a new one when it changes or after :meth:`drop`."""

    def __init__(self, build: Callable[[Config], Node]) -> None:
        self._build = build
        self.node: Node | None = None
        self.reused = False

    def get(self, config: Config) -> Node:
        node = self.node
        if node is None or node.config != config:
            node = self.node = self._build(config)
            self.reused = False
        else:
            self.reused = True
        return node

    def drop(self) -> None:
        self.node = None
