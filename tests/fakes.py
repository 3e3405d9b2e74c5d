"""In-memory stand-ins for eipha's ports, for unit tests of the core."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from eipha import errors
from eipha.clock import Deadline
from eipha.ec2 import Eni
from eipha.model import Address, Binding, NodeIdentity


@dataclass
class FakeEc2:
    """EC2 addresses in memory, implementing :class:`eipha.failover.Ec2Port`.

    ``lag`` makes the next N DescribeAddresses after an AssociateAddress return the old
    state (eventual consistency); ``after_associate`` lets a test play a racing peer.
    """

    addresses: dict[str, Address] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    lag: int = 0
    after_associate: Callable[[FakeEc2, str], None] | None = None
    fail: dict[str, errors.EiphaError] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _stale: dict[str, Address] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        allocation_id: str,
        public_ip: str,
        on: Binding | None = None,
        instance_id: str | None = None,
    ) -> None:
        self.addresses[allocation_id] = Address(allocation_id, public_ip)
        if on is not None:
            self.put(allocation_id, on, instance_id)

    def put(self, allocation_id: str, on: Binding, instance_id: str | None = None) -> str:
        association = f"eipassoc-{next(self._ids):08x}"
        for key, other in self.addresses.items():
            if other.network_interface_id == on.eni_id and other.private_ip == on.private_ip:
                self.addresses[key] = Address(other.allocation_id, other.public_ip)
        old = self.addresses[allocation_id]
        self.addresses[allocation_id] = replace(
            old,
            association_id=association,
            network_interface_id=on.eni_id,
            private_ip=on.private_ip,
            instance_id=instance_id,
        )
        return association

    def _maybe_fail(self, action: str) -> None:
        self.calls.append(action)
        if action in self.fail:
            raise self.fail[action]

    def describe_addresses(
        self,
        allocation_ids: Sequence[str] = (),
        public_ips: Sequence[str] = (),
        filters: Mapping[str, Sequence[str]] | None = None,
        *,
        dry_run: bool = False,
    ) -> list[Address]:
        with self._lock:
            self._maybe_fail("DescribeAddresses")
            found = [
                a
                for a in self.addresses.values()
                if (not allocation_ids or a.allocation_id in allocation_ids)
                and (not public_ips or a.public_ip in public_ips)
            ]
            if self.lag and self._stale:
                self.lag -= 1
                return [self._stale.get(a.allocation_id, a) for a in found]
            return found

    def associate_address(
        self, allocation_id: str, binding: Binding, *, dry_run: bool = False
    ) -> str:
        with self._lock:
            self._maybe_fail("AssociateAddress")
            self._stale[allocation_id] = self.addresses[allocation_id]
            association = self.put(allocation_id, binding)
        if self.after_associate is not None:
            self.after_associate(self, allocation_id)
        return association

    def disassociate_address(self, association_id: str, *, dry_run: bool = False) -> bool:
        with self._lock:
            self._maybe_fail("DisassociateAddress")
            for key, a in self.addresses.items():
                if a.association_id == association_id:
                    self.addresses[key] = Address(a.allocation_id, a.public_ip)
                    return True
            return False

    def describe_network_interfaces(
        self,
        eni_ids: Sequence[str] = (),
        instance_ids: Sequence[str] = (),
        *,
        dry_run: bool = False,
    ) -> list[Eni]:
        raise NotImplementedError("the fake EC2 knows addresses only")


@dataclass
class FakeAdapters:
    """What a :class:`eipha.node.Node` needs from the world, in memory: a :class:`FakeEc2`
    and who this node is (``node`` None: IMDS does not answer; ``enis``: the instance's ENIs,
    by default the node's one). ``reads`` records each read, as the real adapters make them
    from IMDS: ``"brief"`` (the ENI and primary IP), ``"secondaries"`` (the ENI's secondary
    IPs), ``"full"`` (both), ``"enis"`` (every ENI's id); ``deadlines`` the deadline each
    read saw, in seconds."""

    ec2: FakeEc2
    node: NodeIdentity | None
    deadline: Deadline
    enis: frozenset[str] | None = None
    instance: str = "i-aaaaaaaa"
    reads: list[str] = field(default_factory=list)
    deadlines: list[float] = field(default_factory=list)
    hold: Callable[[], object] | None = None  # called before each read (a test can hang it)

    @property
    def imds(self) -> Any:
        raise AssertionError("the node should ask the adapters, not IMDS itself")

    @property
    def region(self) -> str:
        return self.node.region if self.node else "eu-west-1"

    def prepare(self) -> None:
        pass  # the fake EC2 needs no client

    def connect(self) -> None:
        pass

    def primary_ip_of(self, eni_id: str) -> str:
        raise NotImplementedError

    def _read(self, what: str) -> NodeIdentity:
        if self.hold is not None:
            self.hold()
        self.reads.append(what)
        self.deadlines.append(self.deadline.seconds)
        if self.node is None:
            raise errors.MetadataError("IMDS did not answer", "connection refused")
        return self.node

    def with_secondaries(self, node: NodeIdentity) -> NodeIdentity:
        """``node`` as kept (its ENI and primary IP), with the secondary IPs there are now."""
        now = self._read("secondaries").interface
        ips = replace(node.interface, secondary_ips=now.secondary_ips, secondaries_known=True)
        return replace(node, interface=ips)

    def eni_ids(self) -> frozenset[str]:
        node = self._read("enis")
        return self.enis or frozenset({node.interface.eni_id})

    def identity(self, *, secondaries: bool = True) -> NodeIdentity:
        self._read("full" if secondaries else "brief")
        assert self.node is not None
        if secondaries:
            return self.node
        brief = replace(self.node.interface, secondary_ips=(), secondaries_known=False)
        return replace(self.node, interface=brief)

    def instance_id(self) -> str:
        return self.instance
