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
from dataclasses import dataclass
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


class Node:
    """Start, stop and status for this node, and what drills, validate and the monitor need."""

    def __init__(self, config: Config, build: Callable[[Deadline], Adapters]) -> None:
        self.config = config
        self._build = build
        self.adapters = build(Deadline(config.timeout))
        self._identity: dict[bool, NodeIdentity] = {}  # by: secondary IPs read
        self._enis: frozenset[str] | None = None
        self._busy = threading.Lock()  # one action at a time: they share one deadline

    @property
    def deadline(self) -> Deadline:
        return self.adapters.deadline

    @property
    def ec2(self) -> Ec2:
        return self.adapters.ec2

    @property
    def imds(self) -> ImdsClient:
        return self.adapters.imds

    @property
    def region(self) -> str:
        return self.adapters.region

    # -- who this node is --------------------------------------------------------------------

    def identity(self, *, secondaries: bool = True) -> NodeIdentity:
        """This node, read from IMDS on first use and kept (``secondaries``: the ENI's
        private IPs too, which an EIP bound to the primary IP does not need). :meth:`forget`
        makes the next call read it again."""
        known = self._identity.get(True) or (None if secondaries else self._identity.get(False))
        if known is None:
            known = self._identity[secondaries] = self.adapters.identity(secondaries=secondaries)
        return known

    def eni_ids(self) -> frozenset[str]:
        """Every ENI of this instance, read on first use and kept like :meth:`identity`."""
        if self._enis is None:
            self._enis = self.adapters.eni_ids()
        return self._enis

    def holds(self, address: Address) -> bool:
        """Is this EIP on one of this node's ENIs (any private IP)?"""
        return address.associated and address.network_interface_id in self.eni_ids()

    def forget(self) -> None:
        """A miss: what was read about this node may be out of date (an IP was added, an
        action failed); the next action reads it again."""
        self._identity.clear()
        self._enis = None

    def renew(self) -> None:
        """New adapters (EC2 client, credentials, IMDS token) and identity: after a failure
        that what was kept may have caused. A call still running on the old ones (left
        behind by the watchdog) keeps its own deadline and cannot touch the new ones."""
        self.adapters = self._build(Deadline(self.config.timeout))
        self.forget()

    def warm(self, seconds: float | None = None) -> tuple[NodeIdentity, str]:
        """Do ahead what every action does before its first API call (import botocore, make
        the EC2 client, get an IMDS token, read who this node is); this node and its instance
        id. A long-lived caller then pays only each action's own calls."""

        def work(progress: Progress) -> tuple[NodeIdentity, str]:
            self.adapters.prepare()
            node = self.identity()
            instance = self.adapters.instance_id()
            self.adapters.connect()
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

        def work(progress: Progress) -> list[Outcome]:
            wanted = self._placements(chosen, private_ip, agree)
            with locking.locked([t.allocation_id for t in wanted], self.deadline):
                return failover.start(
                    wanted, self.ec2, self.deadline, events=events, progress=progress
                )

        return self._outcomes("start", seconds, work)

    def stop(self, eips: Sequence[str], *, seconds: float | None = None) -> list[Outcome]:
        """Take the EIPs off this node (only those on one of its ENIs)."""
        chosen = placements.select_all(eips, self.config)

        def work(progress: Progress) -> list[Outcome]:
            self.adapters.prepare()
            self.eni_ids()
            wanted = placements.placements(self._resolve(chosen, self.region), self.config)
            with locking.locked([t.allocation_id for t in wanted], self.deadline):
                return failover.stop(wanted, self.ec2, self.deadline, self.holds, progress=progress)

        return self._outcomes("stop", seconds, work)

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

        def work(progress: Progress) -> list[Answer]:
            wanted = self._placements(chosen, private_ip, agree)
            return [Answer(*answer) for answer in failover.status(wanted, self.ec2)]

        return self._bounded("status", seconds, work)

    def holding(self, wanted: Sequence[Placement], seconds: float | None = None) -> list[str]:
        """The labels of ``wanted`` that are on one of this node's ENIs right now (what a
        failed stop asks before it may call itself done)."""

        def work(progress: Progress) -> list[str]:
            addresses = failover.describe(self.ec2, wanted)
            return [t.label for t in wanted if self.holds(addresses[t.allocation_id])]

        return self._bounded("re-reading after a failed stop", seconds, work)

    def survey(self, eips: Sequence[str], seconds: float | None = None) -> list[Sighting]:
        """Where each EIP is, and whether on this node: one DescribeAddresses (the monitor's
        reconcile)."""
        chosen = placements.select_all(eips, self.config)

        def work(progress: Progress) -> list[Sighting]:
            self.adapters.prepare()
            node = self.identity(secondaries=False)
            wanted = placements.placements(self._resolve(chosen, node.region), self.config)
            found = failover.describe(self.ec2, wanted)
            return [
                Sighting(t.label, found[t.allocation_id], node.holds(found[t.allocation_id]))
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

        def move(progress: Progress) -> list[Outcome]:
            if target.binding is None:
                return failover.stop([target], self.ec2, self.deadline, _anywhere, events, progress)
            return failover.start(
                [target], self.ec2, self.deadline, events=events, progress=progress
            )

        def work(progress: Progress) -> list[Outcome]:
            if locked:
                return move(progress)
            with locking.locked([target.allocation_id], self.deadline):
                return move(progress)

        [outcome] = self._outcomes("move", seconds, work)
        return outcome

    # -- inside an action --------------------------------------------------------------------

    def _resolve(
        self, chosen: Sequence[placements.Selector], region: str
    ) -> list[placements.Selector]:
        return placements.resolve_public_ips(
            chosen,
            self.config,
            lambda ips: self.ec2.describe_addresses(public_ips=ips),
            region,
        )

    def _placements(
        self, chosen: Sequence[placements.Selector], private_ip: str | None, agree: bool
    ) -> list[Placement]:
        """Where each EIP belongs on this node, read with the EC2 client being built
        alongside. The ENI's private IPs are read only when a binding needs more than the
        primary IP: the binding rule, given none of them, either binds an EIP to the primary
        IP (its home) or fails, and then they are read (one request) and it is asked again.
        If the binding IP is not among the private IPs that were kept, who this node is is
        read once more (an IP may have been added since)."""
        self.adapters.prepare()
        fresh = not self._identity  # nothing kept: what is read now is as new as it gets
        node = self.identity(secondaries=False)
        resolved = self._resolve(chosen, node.region)
        try:
            return placements.placements(resolved, self.config, node, private_ip, agree=agree)
        except errors.NotConfigured:
            if fresh and node.interface.secondaries_known:
                raise  # everything was just read: the config or the ENI is wrong
        if not node.interface.secondaries_known:  # read them now (they may be new, too)
            node = self._identity[True] = self.adapters.with_secondaries(node)
        else:  # kept with them, and still not enough: read all of it afresh
            self.forget()
            node = self.identity()
        return placements.placements(resolved, self.config, node, private_ip, agree=agree)

    # -- the one watchdog --------------------------------------------------------------------

    def _outcomes(
        self, doing: str, seconds: float | None, work: Callable[[Progress], list[Outcome]]
    ) -> list[Outcome]:
        outcomes = self._bounded(doing, seconds, work, Progress.outcomes)
        if any(isinstance(o.error, errors.NotConfigured) for o in outcomes):
            self.forget()  # EC2 refused a binding (an IP not on the ENI): read it again
        return outcomes

    def _bounded(
        self,
        doing: str,
        seconds: float | None,
        work: Callable[[Progress], T],
        late: Callable[[Progress, Deadline], T | None] | None = None,
    ) -> T:
        """Run ``work`` in a thread and wait until the deadline plus :data:`OVERRUN`.

        botocore's own timeouts and retries bound each call, but not the sum of them; this is
        the hard bound an action promises. When time is up, ``late`` may still make an answer
        of what ``work`` got done (start and stop: the EIPs whose steps finished keep their
        outcomes, the others are reported as timed out); otherwise the action fails whole.
        """
        with self._busy:
            deadline = self.deadline
            deadline.seconds = self.config.timeout if seconds is None else seconds
            deadline.restart()
            progress = Progress()
            box: list[T] = []
            failure: list[BaseException] = []

            def run() -> None:
                try:
                    box.append(work(progress))
                except BaseException as exc:
                    failure.append(exc)

            thread = threading.Thread(target=run, daemon=True, name=f"eipha-{doing}")
            thread.start()
            thread.join(max(0.0, deadline.remaining() + OVERRUN))
        if failure:
            self.forget()
            raise failure[0]
        if box:
            return box[0]
        self.renew()  # the thread left behind still holds the old adapters
        landed = late(progress, deadline) if late is not None else None
        if landed is not None:
            return landed
        raise errors.DeadlineExceeded(
            f"{doing} did not finish",
            f"EC2 did not answer within the {deadline.seconds:g} s deadline",
        )


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
